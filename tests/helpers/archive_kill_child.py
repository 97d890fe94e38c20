"""``quantbot backtest archive ...`` that SIGKILLs itself just before its k-th file-system
step (rename, replace, unlink, rmtree, fsync, mkdir, catalog removal); k = 0 never kills.

Usage: archive_kill_child.py K ARGS... . Prints the number of steps seen (when not killed)
on stderr as ``steps=N``. The hook is a profiler installed here, not in quantbot.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys

import quantbot.artifacts.ops.archive
import quantbot.cli
from quantbot.artifacts.catalog import remove

_C_TARGETS = {os.rename, os.replace, os.unlink, os.fsync, os.mkdir, os.rmdir}
_PY_TARGETS = {shutil.rmtree.__code__, remove.unregister_runs.__code__}
kill_at = int(sys.argv[1])
steps = 0


def _profile(frame, event, arg):
    global steps
    if ((event == "c_call" and arg in _C_TARGETS)
            or (event == "call" and frame.f_code in _PY_TARGETS)):
        steps += 1
        if steps == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


sys.setprofile(_profile)
try:
    quantbot.cli.main(sys.argv[2:])
except SystemExit as exc:
    sys.setprofile(None)
    print(f"steps={steps}", file=sys.stderr)
    raise SystemExit(exc.code) from None
