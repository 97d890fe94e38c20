"""The completion protocol's unfinished states are all resolvable.

* a run whose manifest says ``completed`` but that has no ``_SUCCESS`` (a writer killed
  between its final manifest and the marker) is stale for gc, reported by verify, and
  ``gc --apply`` turns it into a failed run that sync registers and archive accepts;
* a writer that gc marked failed while it was still running notices it and writes no
  marker; a marker on a failed run is reported by verify and by sync.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qbtest import make_run, rows, run_cli

from quantbot.artifacts import catalog_all_runs, create_run_directory, query_runs
from quantbot.artifacts.ops.gc import collect_stale_runs
from quantbot.artifacts.ops.verify import verify_runs
from quantbot.artifacts.schema.manifest import parse_manifest
from quantbot.artifacts.store.backends import open_storage
from quantbot.artifacts.store.runs import iter_run_locations
from quantbot.artifacts.store.validate import classify
from quantbot.errors import RunMarkedFailedError, RunStateError


def _manifest(run_dir: Path):
    return parse_manifest((run_dir / "run.json").read_bytes())


def _completed_without_marker(base: Path) -> Path:
    """The exact on-disk state a SIGKILL between the final manifest and _SUCCESS leaves."""
    run = make_run(base, artifacts={"trades": rows("trades", 3), "errors": []})
    run_dir = Path(run.path)
    (run_dir / "_SUCCESS").unlink()
    assert _manifest(run_dir).status == "completed"
    return run_dir


def test_completed_without_marker_is_reported_and_resolved_by_gc(tmp_path):
    base, db = tmp_path / "runs", tmp_path / "c.duckdb"
    run_dir = _completed_without_marker(base)
    run_id = _manifest(run_dir).run_id
    problems = verify_runs(base).problems
    assert [p.problem for p in problems] == [(
        "status completed but _SUCCESS is missing: the writer stopped before sealing the run; "
        "`quantbot backtest gc --apply` marks it failed")]
    assert catalog_all_runs(catalog=db, base_dir=base).incomplete == 1

    dry = collect_stale_runs(base, "0s")
    assert [(s.run_id, s.status, s.marked_failed) for s in dry] == [(run_id, "completed", False)]
    assert _manifest(run_dir).status == "completed"  # a dry run changes nothing

    applied = collect_stale_runs(base, "0s", apply=True)
    assert [s.marked_failed for s in applied] == [True]
    m = _manifest(run_dir)
    assert m.status == "failed" and m.error.type == "UnsealedRun"
    assert "no _SUCCESS" in m.error.message
    assert verify_runs(base).ok
    report = catalog_all_runs(catalog=db, base_dir=base)
    assert (report.registered, report.incomplete, report.invalid) == (1, 0, [])
    assert [r.run_id for r in query_runs(db, status="failed")] == [run_id]
    assert query_runs(db, status="completed") == []
    # archive refuses a month while classify says "incomplete": now it says "failed"
    storage = open_storage(base)
    assert [classify(storage, loc) for loc in iter_run_locations(storage)] == ["failed"]


def test_completed_without_marker_respects_the_threshold(tmp_path):
    base = tmp_path / "runs"
    _completed_without_marker(base)
    assert collect_stale_runs(base, "1h", apply=True) == []  # completed just now: not yet stale


def test_gc_cli_marks_a_live_run_failed_and_the_writer_stops(tmp_path):
    base, db = tmp_path / "runs", tmp_path / "c.duckdb"
    run = create_run_directory("policy", base_dir=base, git=False)
    run.write_artifact("trades", rows("trades", 3))
    proc = run_cli("backtest", "gc", "--stale", "0s", "--apply", "--base-dir", str(base),
                   "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [s["marked_failed"] for s in json.loads(proc.stdout)["stale"]] == [True]
    with pytest.raises(RunMarkedFailedError, match=r"marked failed by another process.*StaleRun"):
        run.write_artifact("errors", [])
    run_dir = Path(run.path)
    assert run.status == "failed"
    assert not (run_dir / "_SUCCESS").exists()
    assert not list(run_dir.rglob(".tmp-*"))
    with pytest.raises(RunStateError, match="is failed"):  # the writer knows its state now
        run.mark_success()
    assert not (run_dir / "_SUCCESS").exists()
    m = _manifest(run_dir)
    assert m.status == "failed" and m.error.type == "StaleRun"  # gc's record is kept
    assert verify_runs(base).ok
    catalog_all_runs(catalog=db, base_dir=base)
    assert [r.status for r in query_runs(db, limit=None)] == ["failed"]


def test_writer_in_a_with_block_stops_before_the_marker(tmp_path):
    base = tmp_path / "runs"
    with (pytest.raises(RunMarkedFailedError),
          create_run_directory("policy", base_dir=base, git=False, durable=False) as run):
        run.write_artifact("trades", rows("trades", 3))
        assert [s.marked_failed for s in collect_stale_runs(base, "0s", apply=True)] == [True]
        # nothing notices yet; the clean exit's mark_success must
    run_dir = Path(run.path)
    assert not (run_dir / "_SUCCESS").exists()
    assert _manifest(run_dir).error.type == "StaleRun"
    assert verify_runs(base).ok


def test_marker_on_a_failed_run_is_reported_by_verify_and_sync(tmp_path):
    """gc winning the race by a hair: its failed manifest lands just before the marker."""
    base, db = tmp_path / "runs", tmp_path / "c.duckdb"
    run = make_run(base)
    run_dir = Path(run.path)
    data = json.loads((run_dir / "run.json").read_text())
    data.update(status="failed", error={"type": "StaleRun", "message": "m", "traceback": None})
    (run_dir / "run.json").write_text(json.dumps(data))
    problems = [p.problem for p in verify_runs(base).problems]
    assert problems == ["_SUCCESS present but manifest status is failed (StaleRun: m)"]
    report = catalog_all_runs(catalog=db, base_dir=base)
    assert report.registered == 0
    assert [r for _, r in report.invalid] == ["_SUCCESS present but manifest status is failed"]
