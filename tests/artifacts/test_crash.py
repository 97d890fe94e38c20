"""Crash safety: a writer SIGKILLed at random instants, or right before each step of the
completion protocol, never leaves a torn file under a final name; the catalog never shows
an incomplete run as completed, and `gc --apply` resolves every unfinished run."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from qbtest import HELPERS_DIR, catalog_fingerprint, make_run, rows, run_cli, snapshot_tree

from quantbot.artifacts import catalog_all_runs, list_run_directories, query_runs, run_sql
from quantbot.artifacts.ops.verify import verify_runs
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
    catalog_all_runs(catalog=db, base_dir=base)
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
    final = catalog_all_runs(catalog=db, base_dir=base)
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
            report = catalog_all_runs(catalog=db, base_dir=base)
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



def _step_run(zyg: subprocess.Popen, base: Path, scenario: str, kill_at: int) -> int | None:
    """Fork one run killed before boundary ``kill_at``; its boundary count if it finished."""
    zyg.stdin.write(f"go {base} {scenario} {kill_at}\n")
    zyg.stdin.flush()
    line = zyg.stdout.readline().split()
    assert line and line[0] == "started", line
    zyg.stdin.write(f"reap {line[1]}\n")
    zyg.stdin.flush()
    steps = None
    while (line := zyg.stdout.readline().split())[0] != "reaped":
        assert line[0] == "steps", line
        steps = int(line[1])
    status = int(line[1])
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert killed == (steps is None), (status, steps)
    return steps


def _state(run_dir: Path) -> str:
    if (run_dir / "_SUCCESS").exists():
        return "complete"
    manifest = run_dir / "run.json"
    return parse_manifest(manifest.read_bytes()).status if manifest.exists() else "no run.json"


def _kill_at_every_boundary(zyg, tmp_path: Path, base: Path) -> dict[Path, str]:
    """Each run killed before one boundary; the run folder each kill left -> its state."""
    left: dict[Path, str] = {}
    for scenario in ("complete", "fail"):
        fresh = _step_run(zyg, tmp_path / f"fresh-{scenario}", scenario, 0)  # makes the base
        before = set(map(Path, list_run_directories(base)))
        _step_run(zyg, base, scenario, 0)  # base and month exist from here on
        steady = _step_run(zyg, base, scenario, 0)
        assert steady > 20 and fresh > steady
        left.update((d, _state(d)) for d in set(map(Path, list_run_directories(base))) - before)
        # the boundaries only a first run has: base folder, month folder and their fsyncs
        for k in range(1, fresh - steady + 1):
            fresh_base = tmp_path / f"fresh-{scenario}-{k}"
            assert _step_run(zyg, fresh_base, scenario, k) is None
            assert list_run_directories(fresh_base) == []  # nothing to resolve
        for k in range(1, steady + 1):
            before = set(map(Path, list_run_directories(base)))
            assert _step_run(zyg, base, scenario, k) is None  # killed before boundary k
            new = set(map(Path, list_run_directories(base))) - before
            assert len(new) <= 1
            left.update((d, _state(d)) for d in new)
    return left


@pytest.mark.slow
def test_sigkill_at_every_step_boundary(tmp_path):
    """Kill a durable writer right before each of its disk-changing calls in turn (mkdir,
    open, write, fsync, replace, unlink), through a complete and a failing run. Every
    outcome is complete (marker, verify clean) or shown as completed by no command, and the
    documented resolution (`gc --stale 0s --apply`, then `catalog-sync`) turns it into a
    failed run with no leftover `.tmp-*` file."""
    base, db = tmp_path / "runs", tmp_path / "catalog.duckdb"
    zyg = subprocess.Popen([sys.executable, str(HELPERS_DIR / "crash_writer.py"), "--steps-zygote"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        left = _kill_at_every_boundary(zyg, tmp_path, base)
    finally:
        zyg.stdin.close()
        zyg.wait(timeout=30)
    states = {s: sum(1 for v in left.values() if v == s) for s in set(left.values())}
    assert states.get("complete", 0) >= 3  # unkilled, or killed after the marker (its fsync)
    assert states.get("completed", 0) >= 1  # killed between the final manifest and the marker
    assert states.get("running", 0) > 10 and states.get("no run.json", 0) >= 1
    assert states.get("failed", 0) >= 2  # the unkilled failing runs
    assert set(states) <= {"complete", "completed", "running", "no run.json", "failed"}
    ids = {d: d.name.split("=", 1)[1] for d in left}
    unfinished = {ids[d] for d, s in left.items() if s not in ("complete", "failed")}
    for d, s in left.items():
        if s == "complete":
            assert verify_runs(base, ids[d]).ok and not list(d.rglob(".tmp-*"))

    def cli(*args: str) -> dict:
        proc = run_cli("backtest", *args, "--base-dir", str(base), "--duckdb", str(db),
                       "--format", "json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    sync = cli("catalog-sync")
    assert sync["invalid"] == [] and sync["incomplete"] == len(unfinished)
    completed = {m.run_id for m in query_runs(db, status="completed", limit=None)}
    assert completed.isdisjoint(unfinished)
    assert {ids[d] for d, s in left.items() if s == "complete"} <= completed
    proc = run_cli("backtest", "gc", "--stale", "0s", "--apply", "--base-dir", str(base),
                   "--format", "json", cwd=tmp_path)  # the documented resolution
    assert proc.returncode == 0, proc.stderr
    assert {r["run_id"] for r in json.loads(proc.stdout)["stale"] if r["marked_failed"]} == unfinished
    sync = cli("catalog-sync")
    assert (sync["registered"], sync["incomplete"], sync["invalid"]) == (len(unfinished), 0, [])
    status = {m.run_id: m.status for m in query_runs(db, limit=None)}
    assert all(status[ids[d]] == ("completed" if s == "complete" else "failed")
               for d, s in left.items())
    assert verify_runs(base).ok, verify_runs(base).problems
    assert not [p for p in base.rglob(".tmp-*")]
