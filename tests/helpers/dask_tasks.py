"""Task functions for the executor tests.

Task functions live in this importable module (workers unpickle them by reference: the
LocalCluster's spawned workers inherit ``sys.path``; ``dask worker`` subprocesses get
PYTHONPATH). Side effects go to files, so that calls are counted across processes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def square(x: int) -> int:
    return x * x


def total(values: list[int], i: int) -> int:
    return sum(values) + i


def fail_counted(counter: str, value: int) -> int:
    """Appends one line per call, then fails deterministically."""
    with open(counter, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
    raise ValueError(f"bad input {value}\nsecond line")


def die_once(marker: str, value: int) -> int:
    """The first call (no marker yet) kills its own worker process; later calls succeed."""
    p = Path(marker)
    if not p.exists():
        p.write_text(str(os.getpid()), encoding="utf-8")
        os.kill(os.getpid(), signal.SIGKILL)
    return value


def always_die(counter: str) -> None:
    with open(counter, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
        f.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_then_mark(folder: str, key: str, seconds: float) -> str:
    time.sleep(seconds)
    Path(folder, key).write_text("done", encoding="utf-8")
    return key
