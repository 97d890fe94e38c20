"""A durable run fsyncs the parent of every folder it creates before ``_SUCCESS``.

Observed with real syscalls: the writer runs in a child process under ``strace -f -y``,
which prints each fsync'd descriptor with its path.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from qbtest import unavailable


@pytest.fixture(autouse=True)
def _strace() -> None:
    if shutil.which("strace") is None:
        unavailable("strace not installed (make test installs it)")

CHILD = """
import sys
from quantbot.artifacts import create_run_directory
with create_run_directory("policy", base_dir=sys.argv[1], git=False) as run:
    run.write_artifact("alerts", [])
    run.write_artifact("trades", [])
    run.write_log("note.txt", "hello")
"""

_LINE = re.compile(r'^(?:\[pid\s+\d+\]\s+|\d+\s+)?(\w+)\((.*)\)\s+=\s+(-?\d+)')


def _trace(base: Path, tmp_path: Path) -> list[tuple[str, str]]:
    out = tmp_path / "trace.txt"
    subprocess.run(["strace", "-f", "-y", "-qq", "-o", str(out),
                    "-e", "trace=mkdir,mkdirat,fsync,rename,renameat,renameat2",
                    sys.executable, "-c", CHILD, str(base)], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    events = []
    for line in out.read_text().splitlines():
        m = _LINE.match(line)
        if not m or int(m.group(3)) < 0:
            continue
        call, args = m.group(1), m.group(2)
        if call in ("mkdir", "mkdirat"):
            events.append(("mkdir", re.findall(r'"([^"]*)"', args)[0]))
        elif call == "fsync":
            events.append(("fsync", re.search(r"<([^>]*)>", args).group(1)))
        else:
            events.append(("rename", re.findall(r'"([^"]*)"', args)[-1]))
    return events


def test_every_new_folder_is_fsynced_in_its_parent_before_the_marker(tmp_path):
    base = tmp_path / "runs"  # missing: the writer creates it, the month and the run folders
    events = _trace(base, tmp_path)
    marker = next(i for i, (kind, p) in enumerate(events)
                  if kind == "rename" and p.endswith("/_SUCCESS"))
    created = [(i, os.path.abspath(p)) for i, (kind, p) in enumerate(events) if kind == "mkdir"]
    names = {os.path.relpath(p, tmp_path) for _, p in created}
    assert "runs" in names and any(n.startswith("runs/") and n.count("/") == 1 for n in names)
    assert any(n.endswith("/inputs") for n in names) and any(n.endswith("/logs") for n in names)
    for i, path in created:
        parent = os.path.dirname(path)
        assert any(kind == "fsync" and p == parent for kind, p in events[i + 1:marker]), \
            f"{path} created but its parent {parent} is not fsynced before _SUCCESS"
