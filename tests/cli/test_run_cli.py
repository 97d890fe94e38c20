"""run path-only / run policy / rerun / sample-data with ``cwd=tmp_path`` on the sample data.

Each command runs once through the installed console script (``run_cli``); the rest
in-process through ``quantbot.cli.main`` (``run_main``), with the same one-line errors.
"""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from qbtest import assert_clean_error, assert_usage_error, run_cli, run_main

from quantbot.artifacts import read_manifest
from quantbot.artifacts.store.writer import RunDirectory
from quantbot.backtest.data.sample import write_sample_data

COUNT_KEYS = {"run_id", "run_dir", "status", "calls", "eligible", "excluded", "excluded_total",
              "trades", "metrics", "timing", "cataloged"}


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    write_sample_data(out, n_alerts=120)
    return out


@pytest.fixture
def work(tmp_path, sample_dir) -> Path:
    shutil.copytree(sample_dir, tmp_path / "data" / "sample")
    return tmp_path


INPUTS = ("--alerts", "data/sample/alerts.parquet", "--candles", "data/sample/candles.parquet")


def test_sample_data_command(tmp_path):
    proc = run_cli("backtest", "sample-data", "--out", "data/sample", "--seed", "3",
                   "--n-alerts", "20", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["data/sample/alerts.parquet", "data/sample/candles.parquet"]
    assert pq.read_metadata(tmp_path / "data/sample/alerts.parquet").num_rows == 20
    write_sample_data(tmp_path / "api", seed=3, n_alerts=20)
    for name in ("alerts.parquet", "candles.parquet"):  # deterministic: same bytes as the API
        assert (tmp_path / "data/sample" / name).read_bytes() == (tmp_path / "api" / name).read_bytes()


def test_path_only_json_and_sync(work):
    proc = run_cli("backtest", "run", "path-only", *INPUTS, "--sync", "--format", "json",
                   "--no-durable", cwd=work)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert COUNT_KEYS <= set(out) and out["status"] == "completed" and out["cataloged"]
    assert out["calls"] == 120 and out["eligible"] + out["excluded_total"] == 120
    assert out["excluded"] == {"no_candles": 2, "too_new": 2, "invalid_price": 2,
                               "missing_range": 2}
    assert out["trades"] is None and set(out["metrics"]) >= {"hit_2x_rate", "hit_3x_rate",
                                                             "hit_4x_rate"}
    run_dir = work / out["run_dir"]
    assert (run_dir / "_SUCCESS").exists()
    m = read_manifest(run_dir)
    assert {k: v.rows for k, v in m.artifacts.items()} == {
        "alerts": 120, "paths": out["eligible"], "features": 120, "errors": 8}
    errors = pq.read_table(run_dir / "errors/errors.parquet").to_pylist()
    assert {(e["phase"], e["level"]) for e in errors} == {("coverage", "warning")}
    with duckdb.connect(str(work / "data/backtest_catalog.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT run_type, status, dataset_calls_count FROM "
                           "backtest_runs_catalog WHERE run_id = ?", [out["run_id"]]).fetchall()
    assert rows == [("path-only", "completed", 120)]


def test_policy_report_and_policy_file(work):
    (work / "policy.json").write_text('{"kind": "fixed_stop", "stopPct": 0.2, "takeProfitPct": 1}')
    proc = run_cli("backtest", "run", "policy", *INPUTS, "--policy-file", "policy.json",
                   "--taker-fee-bps", "20", "--slippage-bps", "5", "--horizon", "6h",
                   "--from", "2026-01-02", "--to", "2026-01-31", cwd=work)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for text in ("run ", "(policy, completed)", "directory", "eligible", "excluded",
                 "fixed_stop:sl0.2:tp1", "trades", "avg", "median", "stop-out", "win ",
                 "portfolio  return", "fees 20 + slippage 5 bps per side"):
        assert text in out, out
    run_dir = work / out.split("directory")[1].split()[0]
    p = read_manifest(run_dir).parameters.model_dump()
    assert p["policy"] == {"kind": "fixed_stop", "stop_pct": 0.2, "take_profit_pct": 1.0}
    assert (p["taker_fee_bps"], p["slippage_bps"], p["horizon"]) == (20.0, 5.0, "6h")
    assert (p["date_from"], p["date_to"]) == ("2026-01-02", "2026-01-31")
    summary = pq.read_table(run_dir / "results/summary.parquet").to_pylist()
    assert summary[0]["caller_name"] is None and summary[0]["split"] == "all"
    assert [r["caller_name"] for r in summary[1:]] == sorted({r["caller_name"] for r in summary[1:]})
    assert p["portfolio"]["capital"] == 100000  # the default account, recorded


def test_rerun_identical_then_changed_input(work):
    proc = run_main("backtest", "run", "policy", *INPUTS, "--policy",
                    '{"kind":"ladder","levels":[{"multiple":2,"fraction":0.5}],"stop_pct":0.3}',
                    "--format", "json", "--no-durable", cwd=work)
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout)["run_id"]
    as_json = run_main("backtest", "rerun", run_id, "--format", "json", "--no-durable", cwd=work)
    assert as_json.returncode == 0 and not as_json.stderr, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["identical"] is True and report["differing"] == []
    assert report["original_run_id"] == run_id and report["run_id"] != run_id
    assert {a["artifact"] for a in report["artifacts"]} == {"alerts", "trades", "summary", "equity",
                                                         "errors"}

    table = pq.read_table(work / "data/sample/candles.parquet")
    pq.write_table(table.slice(0, table.num_rows // 2), work / "data/sample/candles.parquet")
    again = run_cli("backtest", "rerun", run_id, "--no-durable", cwd=work)
    assert again.returncode == 1, again.stderr
    assert "warning: input fingerprint of candles differs" in again.stderr
    assert "NOT reproduced" in again.stdout and "Traceback" not in again.stderr
    assert "alerts     identical" in again.stdout and "errors     DIFFERS" in again.stdout


@pytest.mark.parametrize("extra, contains", [
    (("--policy", '{"kind": "fixed_stop", '), "policy: not valid JSON"),
    (("--policy", '{"kind": "fixed_stop", "stop_pct": 2}'), "policy.stop_pct"),
    (("--policy", '{"kind": "fixed_stop"}', "--horizon", "90s"), "whole number of 1m intervals"),
    (("--policy", '{"kind": "fixed_stop"}', "--candles", "nope.parquet"), "not found"),
    (("--policy", '{"kind": "fixed_stop"}', "--candles", "data/sample/alerts.parquet"),
     "missing column 'ts'"),
])
def test_bad_inputs_give_one_line_errors(work, extra, contains):
    proc = run_main("backtest", "run", "policy", *INPUTS, *extra, cwd=work)
    assert contains in assert_clean_error(proc, 1)


def test_policy_flags_are_exclusive(work):
    proc = run_main("backtest", "run", "policy", *INPUTS, cwd=work)
    assert_usage_error(proc, "exactly one of --policy and --policy-file")
    proc = run_main("backtest", "run", "path-only", *INPUTS, "--ts-unit", "us", cwd=work)
    assert_usage_error(proc, "--ts-unit")


def test_csv_alerts_and_seconds_candles_with_ts_unit(work):
    """CSV alerts and CSV candles in epoch seconds (--ts-unit s) give the Parquet results."""
    from quantbot.backtest import run_path_only

    alerts = pq.read_table(work / "data/sample/alerts.parquet").slice(0, 30)
    alerts.to_pandas().to_csv(work / "alerts.csv", index=False)
    candles = pq.read_table(work / "data/sample/candles.parquet").to_pandas()
    candles = candles[candles["mint"].isin(set(alerts.column("mint").to_pylist()))].copy()
    candles["ts"] = candles["ts"] // 1000
    candles.to_csv(work / "candles.csv", index=False)
    base = run_path_only(work / "alerts.csv", work / "data/sample/candles.parquet",
                         base_dir=work / "runs", durable=False)
    csv = run_main("backtest", "run", "path-only", "--alerts", "alerts.csv", "--candles",
                   "candles.csv", "--ts-unit", "s", "--format", "json", "--no-durable", cwd=work)
    assert csv.returncode == 0, csv.stderr
    out = json.loads(csv.stdout)
    assert (base.eligible, base.excluded) == (out["eligible"], out["excluded"])
    assert base.metrics["hit_2x_rate"] == pytest.approx(out["metrics"]["hit_2x_rate"])
    p = read_manifest(work / out["run_dir"]).parameters.model_dump()
    assert p["ts_unit"] == "s" and p["inputs"]["candles"]["kind"] == "csv"


def test_failed_run_with_sync_is_cataloged_as_failed(work, monkeypatch):
    def full_disk(self, *args, **kwargs):  # the disk fills up while artifacts are written
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(RunDirectory, "write_artifact", full_disk)
    proc = run_main("backtest", "run", "path-only", *INPUTS, "--sync", "--no-durable", cwd=work)
    assert "No space left on device" in assert_clean_error(proc, 1)
    with duckdb.connect(str(work / "data/backtest_catalog.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT run_type, status FROM backtest_runs_catalog").fetchall()
    assert rows == [("path-only", "failed")]


def test_input_refused_before_a_run_exists_leaves_the_catalog_alone(work):
    proc = run_main("backtest", "run", "path-only", "--alerts", "data/sample/alerts.parquet",
                    "--candles", "data/sample/alerts.parquet", "--sync", "--no-durable", cwd=work)
    assert assert_clean_error(proc, 1).startswith("error: candles source")
    assert not (work / "runs").exists() and not (work / "data/backtest_catalog.duckdb").exists()
