"""Crash safety: a writer SIGKILLed at random instants never leaves a torn file under a
final name, and the catalog never shows an incomplete run as completed."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from qbtest import HELPERS_DIR, catalog_fingerprint, make_run, rows, snapshot_tree

from quantbot.artifacts import catalog_all_runs, list_run_directories, query_runs, run_sql
from quantbot.artifacts.schema.manifest import parse_manifest

TRIALS = 50


_VERIFIED: set[tuple[str, int, int]] = set()


def _read_fully(f: Path) -> None:
    st = f.stat()
    key = (str(f), st.st_size, st.st_mtime_ns)
    if key in _VERIFIED:  # already read in full after an earlier kill, unchanged since
        return
    table = pq.read_table(f)  # a file under a final name reads fully
    assert int(table.schema.metadata[b"rows"]) == table.num_rows
    _VERIFIED.add(key)


def check_tree(base: Path) -> dict[str, int]:
    """Every file under a final name is complete; returns counts by state."""
    seen = {"complete": 0, "failed": 0, "partial": 0}
    for run_dir in map(Path, list_run_directories(base)):
        manifest_file = run_dir / "run.json"
        manifest = None
        if manifest_file.exists():
            manifest = parse_manifest(manifest_file.read_bytes(), str(manifest_file))  # validates
            assert manifest.run_id == run_dir.name.split("=", 1)[1]
        for f in run_dir.rglob("*.parquet"):
            if f.name.startswith(".tmp-"):
                continue
            _read_fully(f)
        success = run_dir / "_SUCCESS"
        if success.exists():
            assert manifest is not None and manifest.status == "completed"
            assert success.read_text() == manifest.completed_at
            for name, entry in manifest.artifacts.items():
                f = run_dir / entry.path
                key = ("sha", str(f), entry.sha256)
                if key not in _VERIFIED:
                    data = f.read_bytes()
                    assert len(data) == entry.bytes, name
                    assert hashlib.sha256(data).hexdigest() == entry.sha256, name
                    _VERIFIED.add(key)
            if manifest.run_type == "full":  # written by the crash writer
                assert set(manifest.artifacts) == {"alerts", "trades", "paths", "errors"}
            seen["complete"] += 1
        elif manifest is not None and manifest.status == "failed":
            seen["failed"] += 1
        else:
            seen["partial"] += 1
    return seen


@pytest.mark.slow
def test_sigkill_at_random_instants(tmp_path):
    base = tmp_path / "runs"
    base.mkdir()
    db = tmp_path / "catalog.duckdb"
    anchor = make_run(base, artifacts={"trades": rows("trades", 5), "errors": []})
    catalog_all_runs(db, base)
    anchor_files = snapshot_tree(anchor.path)
    anchor_query = [m.to_dict() for m in query_runs(db, limit=None)]
    rng = random.Random(1234)
    registered_ids: set[str] = {anchor.run_id}
    totals = {"complete": 0, "failed": 0, "partial": 0}
    zyg = subprocess.Popen([sys.executable, str(HELPERS_DIR / "crash_writer.py"), "--zygote",
                            str(base)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        trials = _trials(zyg, base, db, rng, registered_ids, totals)
    finally:
        zyg.stdin.close()
        zyg.wait(timeout=30)
    assert trials == TRIALS
    assert snapshot_tree(anchor.path) == anchor_files
    anchor_now = [m.to_dict() for m in query_runs(db, limit=None) if m.run_id == anchor.run_id]
    assert anchor_now == [d for d in anchor_query if d["run_id"] == anchor.run_id]
    assert totals["partial"] > 0  # kills did land mid-run
    assert totals["complete"] > 1  # ... and after runs completed
    # the interrupted runs stay incomplete and are reported as such, never as invalid
    final = catalog_all_runs(db, base)
    assert final.invalid == [] and final.registered == 0
    assert final.incomplete == totals["partial"]


def _trials(zyg, base, db, rng, registered_ids, totals):
    trials = 0
    before_dump = catalog_fingerprint(db)
    while trials < TRIALS:
        trials += 1
        zyg.stdin.write("go\n")
        zyg.stdin.flush()
        line = zyg.stdout.readline().split()
        assert line and line[0] == "ready", line
        pid = int(line[1])
        time.sleep(rng.uniform(0, 0.3))
        os.kill(pid, signal.SIGKILL)
        zyg.stdin.write(f"reap {pid}\n")
        zyg.stdin.flush()
        status = int(zyg.stdout.readline().split()[1])
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        for k, v in check_tree(base).items():
            totals[k] = v
        if trials % 10 == 0 or trials == TRIALS:
            # the catalog's earlier contents were untouched by the crashes
            assert catalog_fingerprint(db) == before_dump
            report = catalog_all_runs(db, base)
            assert report.invalid == [], report.invalid
            cataloged = {m.run_id: m for m in query_runs(db, limit=None)}
            for run_id, m in cataloged.items():
                run_dir = next(Path(p) for p in list_run_directories(base) if run_id in p)
                if m.status == "completed":
                    assert (run_dir / "_SUCCESS").exists()
                else:
                    assert m.status == "failed" and not (run_dir / "_SUCCESS").exists()
            # nothing without _SUCCESS shows up as completed, and nothing is lost
            assert registered_ids <= set(cataloged)
            registered_ids |= set(cataloged)
            n_view = run_sql(db, "SELECT count(DISTINCT run_id) AS n FROM all_trades").to_pylist()
            assert n_view[0]["n"] == len(cataloged)
            before_dump = catalog_fingerprint(db)
    return trials
