"""Finding runs to register: validate many run folders at once (threads, and a second
interpreter for a large local rebuild). The checks of one run are in
:mod:`quantbot.artifacts.store.validate`.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from quantbot.artifacts.store.backends import Storage
from quantbot.artifacts.store.runs import RunLocation, duplicate_reason, run_id_copies
from quantbot.artifacts.store.validate import (
    InvalidRunError,
    ScannedRun,
    classify,
    load_run,
    tree_problem,
)

_READ_THREADS = 4
_PROCESS_THRESHOLD = 2_000  # below this, a worker's start-up costs more than it saves


@dataclass
class ScanResult:
    runs: list[ScannedRun] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def _check(storage: Storage, loc: RunLocation) -> tuple[str, ScannedRun | str | None]:
    unsafe = tree_problem(storage, loc)  # links, FIFOs, files as folders: never opened
    if unsafe is not None:
        return "invalid", unsafe[1]
    try:  # for an unparsable run.json or a store that does not answer: the reason
        state = classify(storage, loc, check_tree=False)
        if state == "incomplete":
            return state, None
        run = load_run(storage, loc, parse=False, check_tree=False)
    except InvalidRunError as err:
        return "invalid", str(err)
    status = run.manifest.status  # re-read: a writer may have replaced run.json meanwhile
    if state == "completed":
        if status != "completed":
            return "invalid", f"_SUCCESS present but manifest status is {status}"
        return state, run
    return ("failed", run) if status == "failed" else ("incomplete", None)


def _check_threads(storage: Storage, locations: list[RunLocation]
                   ) -> list[tuple[str, ScannedRun | str | None]]:
    with ThreadPoolExecutor(_READ_THREADS) as pool:
        return list(pool.map(lambda loc: _check(storage, loc), locations))


def _check_all(storage: Storage, locations: list[RunLocation]
               ) -> list[tuple[str, ScannedRun | str | None]]:
    """Validation is mostly Python work (manifests, footers), so threads share one core.

    A large local scan (a rebuild) hands its second half to a worker process
    (``python -m quantbot.artifacts.catalog.scan_worker``: a fresh interpreter, never a
    fork of this possibly multi-threaded one) while this process checks the first half.
    Object stores are network-bound: threads suffice there.
    """
    if (len(locations) < _PROCESS_THRESHOLD or (os.cpu_count() or 1) < 2
            or storage.local_path(storage.root) is None):
        return _check_threads(storage, locations)
    half = len(locations) // 2
    worker = subprocess.Popen([sys.executable, "-m", "quantbot.artifacts.catalog.scan_worker"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert worker.stdin is not None and worker.stdout is not None
    with worker.stdin:
        pickle.dump((storage, locations[half:]), worker.stdin)
    mine = _check_threads(storage, locations[:half])
    try:
        theirs = pickle.load(worker.stdout)
    except (EOFError, pickle.UnpicklingError):
        theirs = None
    if worker.wait() != 0 or theirs is None:  # e.g. no memory for a second interpreter
        theirs = _check_threads(storage, locations[half:])
    return mine + theirs


def scan_runs(storage: Storage, locations: list[RunLocation],
              copies: dict[str, list[str]] | None = None) -> ScanResult:
    """Validate the given run folders; the result keeps the order of ``locations``.

    A run id found in two month partitions is invalid in both: which copy is the run
    cannot be told from the files, so neither is registered. ``copies`` (from
    ``run_id_copies``) spares a second listing to a caller that has just listed the months.
    """
    result = ScanResult()
    if copies is None:
        copies = run_id_copies(storage) if locations else {}
    for loc, (state, payload) in zip(locations, _check_all(storage, locations)):
        if loc.run_id in copies:
            result.invalid.append((loc.path, duplicate_reason(loc.run_id, copies[loc.run_id])))
        elif state == "incomplete":
            result.incomplete.append(loc.path)
        elif state == "invalid":
            result.invalid.append((loc.path, str(payload)))
        else:
            assert isinstance(payload, ScannedRun)
            result.runs.append(payload)
    return result
