"""Helpers of the sweep tests: a project folder (sample data + the shipped examples) and
``around_run`` hooks, importable on Dask workers (tests/helpers is
on ``sys.path``; the LocalCluster's spawned workers inherit it). Bound with
``functools.partial`` (pickled by reference); side effects go to files so that calls are
seen across processes."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def task_key(run: Any) -> str | None:
    return (run.manifest.parameters.model_dump().get("sweep") or {}).get("task")


@contextmanager
def hold_first_attempt(run: Any, *, key: str, marker: str) -> Iterator[None]:
    """Task ``key``'s first attempt writes its pid to ``marker`` and then waits (for the
    test to SIGKILL its worker); a later attempt (the marker exists) runs through."""
    if task_key(run) == key and not Path(marker).exists():
        Path(marker + ".tmp").write_text(str(os.getpid()), encoding="utf-8")
        os.replace(marker + ".tmp", marker)
        while True:
            time.sleep(0.05)
    yield


@contextmanager
def fail_counted(run: Any, *, key: str, counter: str) -> Iterator[None]:
    """Task ``key`` appends a line to ``counter`` and fails (a deterministic bad input)."""
    if task_key(run) == key:
        with open(counter, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
        raise ValueError(f"bad input for task {key}")
    yield


REPO = Path(__file__).resolve().parents[2]
N_ALERTS = 60  # small sample data: every task stays well under a second


def make_project(root: Path) -> Path:
    """``root/data/sample`` (sample data) and ``root/examples`` (examples/sweep.json and the
    grid it uses, unchanged): the layout the docs describe. Returns the spec's path."""
    from quantbot.backtest.data.sample import write_sample_data

    write_sample_data(root / "data" / "sample", n_alerts=N_ALERTS)
    (root / "examples").mkdir(parents=True, exist_ok=True)
    for name in ("sweep.json", "small_grid.json"):
        shutil.copy(REPO / "examples" / name, root / "examples" / name)
    return root / "examples" / "sweep.json"
