"""Large local scans hand half of the runs to a worker process; results must not change."""

from __future__ import annotations

from pathlib import Path

import pytest
from qbtest import make_run

from quantbot.artifacts.catalog import scan
from quantbot.artifacts.store.backends import open_storage
from quantbot.artifacts.store.runs import iter_run_locations


def test_worker_process_scan_equals_thread_scan(base_dir: Path, monkeypatch: pytest.MonkeyPatch):
    for i in range(6):
        make_run(base_dir, "policy", fail=(i == 4))
    (base_dir / "2026-01" / "run_id=00000000-0000-4000-8000-000000000000").mkdir(parents=True)
    storage = open_storage(base_dir)
    locations = iter_run_locations(storage)
    threads = scan.scan_runs(storage, locations)
    monkeypatch.setattr(scan, "_PROCESS_THRESHOLD", 2)
    workers = scan.scan_runs(storage, locations)
    assert [r.manifest.run_id for r in workers.runs] == [r.manifest.run_id for r in threads.runs]
    assert [r.manifest.status for r in workers.runs] == [r.manifest.status for r in threads.runs]
    assert workers.incomplete == threads.incomplete and len(workers.incomplete) == 1
    assert {k.value for r in workers.runs for k in r.files} == {"trades", "errors"}
