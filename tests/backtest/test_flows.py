"""The Python API flows on the sample data: artifacts, manifest, exclusions, failure, rerun.

The numbers themselves are covered by the engine's golden tests; here: wiring and contracts.
"""

from __future__ import annotations

import json
import os

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from quantbot.artifacts import find_run_directory, is_complete, read_manifest
from quantbot.artifacts.ops.diff import compare_artifact
from quantbot.artifacts.schema.arrow_schemas import ARTIFACT_SPECS, ArtifactType
from quantbot.backtest import (
    FlowParameterError,
    run_from_manifest,
    run_path_only,
    run_policy_backtest,
)
from quantbot.backtest.data.sample import write_sample_data
from quantbot.backtest.flows.rerun import rerun
from quantbot.errors import DataError, PolicyError

SAMPLE_EXCLUDED = {"no_candles": 2, "too_new": 2, "invalid_price": 2, "missing_range": 2}
PHASES = ("plan_ms", "slice_ms", "coverage_ms", "execution_ms", "store_ms", "total_ms")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_data(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="module")
def path_run(sample, tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    return run_path_only(*sample, base_dir=base, durable=False), base


def _read(run_dir: str, kind: str) -> pa.Table:
    return pq.read_table(os.path.join(run_dir, ARTIFACT_SPECS[ArtifactType(kind)].path))


def _check_schema(table: pa.Table, kind: str) -> None:
    expected = ARTIFACT_SPECS[ArtifactType(kind)].schema
    assert table.schema.names[:len(expected)] == expected.names
    for f in expected:
        assert table.schema.field(f.name).type == f.type, f.name


def test_path_only_artifacts_and_counts(path_run):
    result, _ = path_run
    assert result.status == "completed" and is_complete(result.run_dir)
    assert (result.calls, result.eligible, result.excluded) == (500, 492, SAMPLE_EXCLUDED)
    assert result.trades is None and 0 < result.metrics["hit_2x_rate"] < 1
    manifest = read_manifest(result.run_dir)
    assert {k: v.rows for k, v in manifest.artifacts.items()} == {
        "alerts": 500, "paths": 492, "features": 500, "errors": 8}
    for kind in manifest.artifacts:
        _check_schema(_read(result.run_dir, kind), kind)
    paths = _read(result.run_dir, "paths")
    assert set(paths.column("interval").to_pylist()) == {"1m"}
    assert set(paths.column("run_id").to_pylist()) == {result.run_id}


def test_exclusions_become_coverage_warnings(path_run):
    result, _ = path_run
    errors = _read(result.run_dir, "errors")
    assert set(errors.column("phase").to_pylist()) == {"coverage"}
    assert set(errors.column("level").to_pylist()) == {"warning"}
    reasons = errors.column("message").to_pylist()
    assert {r: reasons.count(r) for r in set(reasons)} == SAMPLE_EXCLUDED
    paths_ids = set(_read(result.run_dir, "paths").column("call_id").to_pylist())
    for row in errors.to_pylist():
        assert row["call_id"] not in paths_ids
        details = json.loads(row["details"])
        assert isinstance(details["alert_ts_ms"], int) and details["mint"]
        if row["message"] != "no_candles":
            assert details["anchor_ts_ms"] >= details["alert_ts_ms"]
        if row["message"] == "too_new":
            assert details["first_candle_ts_ms"] > details["alert_ts_ms"]


def test_path_only_manifest_records_everything(path_run, sample):
    result, _ = path_run
    m = read_manifest(result.run_dir)
    assert m.run_type == "path-only" and m.status == "completed"
    assert m.dataset.interval == "1m" and m.dataset.calls_count == 500
    alert_ts = pq.read_table(sample[0]).column("alert_ts_ms")
    as_iso = {t: pa.scalar(t, pa.timestamp("ms", tz="UTC")).as_py().isoformat(
        timespec="milliseconds").replace("+00:00", "Z") for t in (
        pc.min(alert_ts).as_py(), pc.max(alert_ts).as_py())}
    assert (m.dataset.from_, m.dataset.to) == tuple(as_iso.values())
    p = m.parameters.model_dump()
    assert (p["interval"], p["horizon"], p["horizon_ms"], p["pre_window"],
            p["activity_move_pct"]) == ("1m", "1d", 86_400_000, "1h", 0.1)
    for name, path in zip(("alerts", "candles"), sample):
        rec = p["inputs"][name]
        assert rec["path"] == str(path.resolve()) and rec["kind"] == "parquet"
        assert rec["fingerprint"].startswith("sha256:") and rec["rows"] > 0
    assert len(p["config_hash"]) == 64
    timing = m.timing.model_dump()
    assert all(timing[k] is not None and timing[k] >= 0 for k in PHASES)
    assert timing["total_ms"] >= timing["execution_ms"]


def test_policy_run_with_camel_case_policy(sample, tmp_path):
    policy = '{"kind": "trailing_stop", "activationPct": 0.3, "trailPct": 0.2, "hardStopPct": 0.3}'
    result = run_policy_backtest(*sample, policy, base_dir=tmp_path, durable=False,
                                 taker_fee_bps=25, slippage_bps=5)
    assert result.trades == 492 and result.metrics["policy_id"] == "trailing_stop:act0.3:trail0.2:hs0.3"
    m = read_manifest(result.run_dir)
    p = m.parameters.model_dump()
    assert p["policy"] == {"kind": "trailing_stop", "activation_pct": 0.3, "trail_pct": 0.2,
                           "hard_stop_pct": 0.3}
    assert (p["policy_id"], p["taker_fee_bps"], p["slippage_bps"]) == (
        result.metrics["policy_id"], 25.0, 5.0)
    rows = {k: v.rows for k, v in m.artifacts.items()}
    assert {k: v for k, v in rows.items() if k not in ("summary", "equity")} == {
        "alerts": 500, "trades": 492, "errors": 8}
    all_rows = _read(result.run_dir, "summary").to_pylist()
    summary, per_caller = all_rows[0], all_rows[1:]
    assert summary["caller_name"] is None and summary["policy_id"] == p["policy_id"]
    assert summary["split"] == "all" and summary["trades_taken"] == 492
    assert (summary["calls_processed"], summary["calls_excluded"], summary["trades_count"]) == (
        492, 8, 492)
    callers = sorted(set(_read(result.run_dir, "alerts").column("caller_name").to_pylist()))
    assert [r["caller_name"] for r in per_caller] == callers  # then one row per caller
    assert sum(r["trades_count"] for r in per_caller) == 492
    assert sum(r["calls_excluded"] for r in per_caller) == 8
    equity = _read(result.run_dir, "equity")
    assert rows["equity"] == equity.num_rows > 0
    assert set(equity.column("caller_name").to_pylist()) == {None, *callers}
    trades = _read(result.run_dir, "trades")
    _check_schema(trades, "trades")
    assert set(trades.column("policy_id").to_pylist()) == {p["policy_id"]}


def test_policy_id_override(sample, tmp_path):
    result = run_policy_backtest(*sample, {"kind": "fixed_stop", "stop_pct": 0.1},
                                 policy_id="my-stop", base_dir=tmp_path, durable=False)
    assert read_manifest(result.run_dir).parameters.policy_id == "my-stop"


def test_zero_eligible_run_completes_with_empty_artifacts(sample, tmp_path):
    result = run_policy_backtest(*sample, {"kind": "fixed_stop", "stop_pct": 0.1},
                                 date_from="2030-01-01", base_dir=tmp_path, durable=False)
    assert result.status == "completed" and (result.calls, result.eligible, result.trades) == (0, 0, 0)
    m = read_manifest(result.run_dir)
    assert {k: v.rows for k, v in m.artifacts.items()} == {
        "alerts": 0, "trades": 0, "summary": 1, "equity": 0, "errors": 0}
    summary = _read(result.run_dir, "summary").to_pylist()[0]
    assert summary["trades_count"] == 0 and summary["avg_return_bps"] is None
    assert m.dataset.from_ is None and m.dataset.calls_count == 0


def test_all_calls_excluded(tmp_path, sample):
    alerts = tmp_path / "alerts.csv"
    alerts.write_text("call_id,mint,caller_name,alert_ts_ms\nc1,nomint,bob,1767225600000\n"
                      "c2,nomint2,bob,1767225660000\n")
    result = run_path_only(alerts, sample[1], base_dir=tmp_path / "runs", durable=False)
    assert result.status == "completed" and result.excluded == {"no_candles": 2}
    m = read_manifest(result.run_dir)
    assert (m.artifacts["paths"].rows, m.artifacts["features"].rows, m.artifacts["errors"].rows) == (
        0, 2, 2)


def test_exception_marks_run_failed(sample, tmp_path, monkeypatch):
    import quantbot.backtest.engine.price_paths as paths_module

    def boom(*args, **kwargs):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(paths_module, "compute_paths", boom)
    with pytest.raises(RuntimeError, match="engine exploded"):
        run_path_only(*sample, base_dir=tmp_path, durable=False)
    (run_dir,) = [os.path.join(r, d) for r, ds, _ in os.walk(tmp_path) for d in ds
                  if d.startswith("run_id=")]
    m = read_manifest(run_dir)
    assert m.status == "failed" and m.error.type == "RuntimeError"
    assert not is_complete(run_dir)
    assert m.parameters.model_dump()["inputs"]["alerts"]["fingerprint"].startswith("sha256:")


def test_bad_data_is_refused_with_one_line_and_no_run(sample, tmp_path):
    with pytest.raises(DataError, match="missing column 'ts'") as err:
        run_path_only(sample[0], sample[0], base_dir=tmp_path, durable=False)
    assert "\n" not in str(err.value)
    assert not any(tmp_path.rglob("run.json"))  # refused before a run directory exists


@pytest.mark.parametrize("kwargs, error, match", [
    ({"horizon": "90s"}, FlowParameterError, "whole number of 1m intervals"),
    ({"interval": "1mo"}, FlowParameterError, "calendar months"),
    ({"horizon": "5x"}, FlowParameterError, "horizon '5x': expected a duration"),
    ({"activity_move_pct": 10}, FlowParameterError, "activity_move_pct"),
    ({"date_from": "2026-13-01"}, DataError, "date_from: invalid date"),
    ({"ts_unit": "us"}, DataError, "invalid ts_unit"),
])
def test_parameters_are_checked_before_a_run_exists(sample, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        run_path_only(*sample, base_dir=tmp_path / "runs", **kwargs)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_bad_policy_and_unknown_file_leave_no_run(sample, tmp_path):
    with pytest.raises(PolicyError, match="not valid JSON"):
        run_policy_backtest(*sample, "{nope", base_dir=tmp_path / "runs")
    with pytest.raises(DataError, match="not found"):
        run_path_only(tmp_path / "missing.csv", sample[1], base_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_duckdb_query_and_hive_candles_match_parquet(path_run, sample, tmp_path):
    """Same data from a DuckDB query and a Hive-partitioned folder: identical artifacts."""
    result, _ = path_run
    db = tmp_path / "alerts.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(f"CREATE TABLE calls AS SELECT * FROM read_parquet('{sample[0]}')")
    candles = pq.read_table(sample[1])
    bucket = pc.utf8_slice_codeunits(candles.column("mint"), 0, 1)
    pq.write_to_dataset(candles.append_column("bucket", bucket), tmp_path / "candles",
                        partition_cols=["bucket"])
    again = run_path_only(db, tmp_path / "candles", alerts_query="SELECT * FROM calls",
                          base_dir=tmp_path / "runs", durable=False)
    a, b = read_manifest(result.run_dir), read_manifest(again.run_dir)
    for kind in ("alerts", "paths", "features", "errors"):
        cmp = compare_artifact(kind, result.run_dir, a, again.run_dir, b)
        assert cmp.identical, (kind, cmp)
    inputs = b.parameters.model_dump()["inputs"]
    assert inputs["alerts"]["query"] == "SELECT * FROM calls" and inputs["alerts"]["kind"] == "duckdb"
    assert inputs["candles"]["kind"] == "parquet_dataset"


def test_rerun_identical_then_detects_changed_input(sample, tmp_path):
    data = tmp_path / "data"
    alerts, candles = write_sample_data(data, n_alerts=60)
    base = tmp_path / "runs"
    original = run_policy_backtest(alerts, candles, {"kind": "fixed_stop", "stop_pct": 0.2,
                                                     "take_profit_pct": 1.0},
                                   base_dir=base, durable=False)
    report = rerun(original.run_id, base_dir=base, durable=False)
    assert report.identical and not report.warnings
    assert report.fingerprints_match == {"alerts": True, "candles": True}
    assert report.rerun.run_id != original.run_id
    assert {a.artifact for a in report.artifacts} == {"alerts", "trades", "summary", "equity",
                                                      "errors"}

    table = pq.read_table(candles)
    table = table.set_column(table.schema.get_field_index("high"), "high",
                             pc.multiply(table.column("high"), 1.5))
    pq.write_table(table, candles)
    changed = rerun(original.run_id, base_dir=base, durable=False)
    assert not changed.identical and "trades" in changed.differing
    assert changed.fingerprints_match == {"alerts": True, "candles": False}
    assert any("candles" in w for w in changed.warnings)


def test_run_from_manifest_rejects_unknown_run_types_and_missing_grid(sample):
    inputs = {"inputs": {"alerts": {"path": str(sample[0])}, "candles": {"path": str(sample[1])}}}
    with pytest.raises(FlowParameterError, match="cannot rerun run type 'backfill'"):
        run_from_manifest("backfill", inputs)
    with pytest.raises(FlowParameterError, match="no parameters.grid"):
        run_from_manifest("optimization", inputs)


def test_find_run_directory_for_flow_result(path_run):
    result, base = path_run
    assert os.path.samefile(find_run_directory(base, result.run_id), result.run_dir)
