"""A bad run never aborts a sync, whatever the batch looks like; writers fail loudly and
cleanly on misuse. (Each case was once a real bug.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qbtest import alert_row, assert_clean_error, make_run, run_cli, trade_row

from quantbot.artifacts import catalog_all_runs, create_run_directory, query_runs, run_sql
from quantbot.artifacts.store.runs import read_manifest
from quantbot.errors import ManifestError, QuantbotError, RunStateError, SchemaMismatchError


def _alerts_run(base: Path, notes: list) -> str:
    rows = [alert_row(i, note=n) for i, n in enumerate(notes)]
    return make_run(base, artifacts={"alerts": rows}).run_id


def test_clashing_extra_column_types_widen_to_text(base_dir: Path, catalog: Path):
    _alerts_run(base_dir, [1, 2])
    _alerts_run(base_dir, ["x", "y"])
    for _ in range(3):
        make_run(base_dir)
    report = catalog_all_runs(catalog=catalog, base_dir=base_dir)
    # One rule, whatever the order: an int column and a text column make a text column.
    assert report.registered == 5 and not report.invalid
    notes = run_sql(catalog, "SELECT note FROM all_alerts ORDER BY note").column("note").to_pylist()
    assert notes == ["1", "2", "x", "y"]


def test_a_single_new_bad_run_is_reported_not_raised(base_dir: Path, catalog: Path):
    _alerts_run(base_dir, [1, 2])
    assert catalog_all_runs(catalog=catalog, base_dir=base_dir).registered == 1
    rows = [alert_row(i, note="a", NOTE="b") for i in range(2)]  # same column ignoring case
    bad = make_run(base_dir, artifacts={"alerts": rows}).run_id
    report = catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert report.registered == 0 and bad in report.invalid[0][0]
    assert "NOTE and note differ only in case" in report.invalid[0][1]
    proc = run_cli("backtest", "catalog-sync", "--base-dir", str(base_dir), "--duckdb", str(catalog),
                   cwd=base_dir.parent)
    assert proc.returncode == 0 and "invalid" in proc.stdout


def test_all_null_extra_column_does_not_poison_later_runs(base_dir: Path, catalog: Path):
    _alerts_run(base_dir, [None, None])
    assert catalog_all_runs(catalog=catalog, base_dir=base_dir).registered == 1
    later = _alerts_run(base_dir, ["x", "y"])
    assert catalog_all_runs(catalog=catalog, base_dir=base_dir).registered == 1
    notes = run_sql(catalog, "SELECT note FROM all_alerts WHERE run_id = ? ORDER BY note", [later])
    assert notes.column("note").to_pylist() == ["x", "y"]


def test_manifest_timestamps_must_be_iso_with_a_time_zone(base_dir: Path, catalog: Path):
    good = make_run(base_dir)
    bad = make_run(base_dir)
    path = Path(bad.path) / "run.json"
    manifest = json.loads(path.read_text())
    manifest["created_at"] = "yesterday"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="created_at"):
        read_manifest(bad.path)
    report = catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert report.registered == 1 and [r.run_id for r in query_runs(catalog)] == [good.run_id]
    manifest["created_at"] = "2026-01-01T00:00:00"  # no zone
    path.write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="time zone"):
        read_manifest(bad.path)
    proc = run_cli("backtest", "verify", "--all", "--base-dir", str(base_dir), cwd=base_dir.parent)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    proc = run_cli("backtest", "gc", "--stale", "1h", "--base-dir", str(base_dir), cwd=base_dir.parent)
    assert proc.returncode == 0, proc.stderr


def test_unclosed_incremental_writer_fails_the_run(base_dir: Path):
    with pytest.raises(RunStateError, match="never closed"):
        with create_run_directory("policy", base_dir=base_dir, git=False) as run:
            writer = run.artifact_writer("trades")
            writer.write([trade_row(0)])
    assert read_manifest(run.path).status == "failed"
    assert not (Path(run.path) / "_SUCCESS").exists()
    assert not list(Path(run.path).rglob(".tmp-*"))


def test_batches_with_clashing_extra_types_name_the_column(base_dir: Path):
    with create_run_directory("policy", base_dir=base_dir, git=False) as run:
        with pytest.raises(SchemaMismatchError, match="note"):
            with run.artifact_writer("alerts") as writer:
                writer.write([alert_row(0, note=1)])
                writer.write([alert_row(1, note="x")])
        with run.artifact_writer("features") as writer:  # all-null first, values later
            writer.write([{"call_id": "a", "extra": None}])
            writer.write([{"call_id": "b", "extra": "v"}])
    assert read_manifest(run.path).artifacts["features"].rows == 2


def test_empty_sql_is_an_error(base_dir: Path, catalog: Path):
    make_run(base_dir)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    with pytest.raises(QuantbotError, match="empty SQL"):
        run_sql(catalog, "   ")
    assert_clean_error(run_cli("backtest", "sql", "", "--duckdb", str(catalog), cwd=base_dir.parent),
                       contains="empty SQL")
