"""CLI: backtest optimize and backtest run full on the sample data with a small grid,
in-process through ``quantbot.cli.main`` (the console script's error handling included)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from qbtest import assert_clean_error, run_main

from quantbot.artifacts import read_manifest
from quantbot.backtest.data.sample import write_sample_data

GRID = {"families": {
    "fixed_stop": {"kind": "fixed_stop", "product": {"stop_pct": [0.1, 0.3],
                                                     "take_profit_pct": [0.5, 2.0]}},
    "time_stop": {"kind": "time_stop", "product": {"max_hold_ms": ["30m", "4h"]}},
}}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    alerts, candles = write_sample_data(folder / "sample")
    grid = folder / "grid.json"
    grid.write_text(json.dumps(GRID))
    return ["--alerts", str(alerts), "--candles", str(candles), "--grid", str(grid),
            "--no-durable"]


def test_optimize_json(inputs, tmp_path):
    res = run_main("backtest", "optimize", *inputs, "--base-dir", str(tmp_path),
                   "--validation", "random:3", "--min-calls", "5", "--format", "json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["run_type"] == "optimization" and out["status"] == "completed"
    m = out["metrics"]
    assert m["policies"] == 6 and m["objective"] == "robust"
    assert set(m["splits"]) == {"train", "validation"}  # nested: every figure says its calls
    for figures in m["splits"].values():
        assert {"objective_score", "trades_count", "median_return_bps", "win_rate",
                "total_return", "max_drawdown", "sharpe"} <= set(figures)
    assert "avg_return_bps" not in m  # no unlabelled figure at the top
    manifest = read_manifest(out["run_dir"])
    assert set(manifest.artifacts) == {"alerts", "frontier", "trades", "summary", "equity",
                                       "errors"}
    opt = manifest.parameters.model_dump()["optimizer"]
    assert opt["validation"] == "random:3:0.8" and opt["min_calls"] == 5
    frontier = pq.read_table(f"{out['run_dir']}/results/frontier.parquet")
    assert set(frontier.column("caller_name").to_pylist()) >= {"*"}


def test_table_report_shows_train_and_validation(inputs, tmp_path):
    res = run_main("backtest", "optimize", *inputs, "--base-dir", str(tmp_path),
                   "--validation", "time:0.7", "--min-calls", "5", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    train = next(line for line in lines if line.startswith("  train "))
    validation = next(line for line in lines if line.startswith("  validation "))
    for line in (train, validation):
        assert "score " in line and "median " in line and "portfolio " in line


def test_run_full_table_report(inputs, tmp_path):
    res = run_main("backtest", "run", "full", *inputs, "--base-dir", str(tmp_path),
                   "--max-stop-out-rate", "0.5", "--max-avg-time-exposed", "6h",
                   "--tail-capture-weight", "100", "--mae-weight", "0", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "(full, completed)" in res.stdout and "6 policies" in res.stdout
    assert "best (*)" in res.stdout and "objective  robust" in res.stdout
    assert "\n  all        score " in res.stdout  # no split: the figures say "all"
    run_dir = res.stdout.split("directory")[1].split()[0]
    manifest = read_manifest(run_dir)
    assert set(manifest.artifacts) == {"alerts", "paths", "features", "frontier", "trades",
                                       "summary", "equity", "errors"}
    opt = manifest.parameters.model_dump()["optimizer"]
    assert opt["max_stop_out_rate"] == 0.5 and opt["max_avg_time_exposed_ms"] == 6 * 3_600_000
    assert opt["tail_capture_weight"] == 100 and opt["mae_weight"] == 0


@pytest.mark.parametrize("extra, message", [
    (["--validation", "weekly"], "--validation 'weekly'"),
    (["--min-calls", "0"], "optimizer.min_calls"),
    (["--max-avg-time-exposed", "2x"], "invalid duration"),
])
def test_bad_options_are_one_line_errors(inputs, tmp_path, extra, message):
    proc = run_main("backtest", "optimize", *inputs, "--base-dir", str(tmp_path / "runs"), *extra,
                    cwd=tmp_path)
    assert message in assert_clean_error(proc, 1)
    assert not list(tmp_path.iterdir())  # nothing was created


def test_bad_grid_file_is_one_line_error(inputs, tmp_path):
    grid = tmp_path / "bad.json"
    grid.write_text('{"families": {"x": [{"kind": "fixed_stop", "stop_pct": 3}]}}')
    args = [a if a != inputs[5] else str(grid) for a in inputs]
    proc = run_main("backtest", "optimize", *args, "--base-dir", str(tmp_path / "runs"),
                    cwd=tmp_path)
    assert "grid.families.x[0]" in assert_clean_error(proc, 1)
    assert not (tmp_path / "runs").exists()


def test_ctrl_c_exits_130_and_marks_the_run_failed(inputs, tmp_path, monkeypatch):
    import quantbot.backtest.optimize.search as opt

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(opt, "simulate_many", interrupted)
    proc = run_main("backtest", "optimize", *inputs, "--base-dir", str(tmp_path), cwd=tmp_path)
    # click turns KeyboardInterrupt into Abort; quantbot.cli.main prints one line for it
    assert assert_clean_error(proc, 130) == "error: interrupted"
    (run_dir,) = list(tmp_path.glob("*/run_id=*"))
    assert read_manifest(str(run_dir)).status == "failed"
