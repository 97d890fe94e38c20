"""Issue 11 on daily stocks: the default time-exposure constraint follows the run's bars.

With a 48 h limit, every daily policy holding past the next bar was infeasible, so a losing
one-bar time stop ranked first ahead of fixed stops with large positive medians (the
issue's perverse ranking, now through feasibility). The default is 2880 bars (48 h on the
original 1m bars). Real data: ``bokeh_sampledata``'s daily AAPL/GOOG/IBM/MSFT file, as a
user has it (one CSV, a ``Ticker`` column, capitalised OHLCV).
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from quantbot.backtest import run_optimization
from quantbot.backtest.optimize.objective import (
    OptimizerConfig,
    PolicyStats,
    feasible,
    make_config,
)
from quantbot.errors import OptimizerConfigError

HOUR_MS, DAY_MS = 3_600_000, 86_400_000
STOCKS_GZ = Path(__import__("bokeh_sampledata").__file__).parent / "_data" / "stocks.csv.gz"
GRID = {"description": "stocks", "families": {
    "fixed_stop": {"kind": "fixed_stop", "product": {
        "stop_pct": [0.05, 0.1], "take_profit_pct": [0.03, 0.05, None]}},
    "time_stop": {"kind": "time_stop", "product": {
        "max_hold_ms": ["5m", "4h", "12h", "1d", "5d", "10d"], "take_profit_pct": [None]}},
}}


def test_the_default_limit_is_in_bars_of_the_run():
    cfg = OptimizerConfig()
    assert cfg.max_avg_time_exposed_ms == "2880bars"
    assert cfg.in_ms(60_000).max_avg_time_exposed_ms == 48 * HOUR_MS  # the original system
    assert cfg.in_ms(None).max_avg_time_exposed_ms == 48 * HOUR_MS  # 1m, as default_grid()
    assert cfg.in_ms(DAY_MS).max_avg_time_exposed_ms == 2880 * DAY_MS
    assert make_config(max_avg_time_exposed_ms="10 bars").max_avg_time_exposed_ms == "10bars"
    assert make_config(max_avg_time_exposed_ms="12h").in_ms(DAY_MS).max_avg_time_exposed_ms \
        == 12 * HOUR_MS  # a duration stays a duration on any bar
    with pytest.raises(OptimizerConfigError, match="max_avg_time_exposed_ms"):
        make_config(max_avg_time_exposed_ms="2 weeks")


def test_feasible_reads_bars_with_the_interval():
    empty = PolicyStats.empty(1, 10)
    five_days = PolicyStats(10, **{k: np.zeros(1) for k in vars(empty) if k != "trades_count"}
                            | {"avg_time_exposed_ms": np.array([5.0 * DAY_MS])})
    assert feasible(five_days, OptimizerConfig(), interval_ms=DAY_MS).tolist() == [True]
    assert feasible(five_days, OptimizerConfig()).tolist() == [False]  # 1m bars: 48 h
    ten_bars = make_config(max_avg_time_exposed_ms="10bars")
    assert feasible(five_days, ten_bars, interval_ms=HOUR_MS).tolist() == [False]


@pytest.fixture(scope="module")
def stock_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The stocks CSV as shipped (unzipped) and 240 calls on session dates, 3 callers."""
    folder = tmp_path_factory.mktemp("stocks")
    candles = folder / "stocks.csv"
    candles.write_bytes(gzip.decompress(STOCKS_GZ.read_bytes()))
    dates: dict[str, list[str]] = {}
    with candles.open() as f:
        for row in csv.DictReader(f):
            dates.setdefault(row["Ticker"], []).append(row["Date"])
    rng = random.Random(11)
    alerts = folder / "alerts.csv"
    with alerts.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "alert_time", "symbol", "caller"])
        for t in ("AAPL", "GOOG", "IBM", "MSFT"):
            for d in rng.sample(dates[t][:-20], 60):
                w.writerow([f"{t}-{d}", d, t, rng.choice("abc")])
    return alerts, candles


def _frontier(stock_files: tuple[Path, Path], base: Path, **config: Any) -> dict[str, dict]:
    alerts, candles = stock_files
    result = run_optimization(
        alerts, candles, grid=GRID, config={"validation": "time:0.7", **config},
        per_caller=False, interval="1d", horizon="10d", base_dir=base, durable=False,
        alerts_columns={"call_id": "id", "alert_ts": "alert_time", "mint": "symbol",
                        "caller_name": "caller"},
        candles_columns={"mint": "Ticker"}, taker_fee_bps=1, slippage_bps=2)
    assert result.status == "completed"
    rows = pq.read_table(Path(result.run_dir) / "results" / "frontier.parquet").to_pylist()
    return {r["policy_id"]: r for r in rows}


def test_daily_stocks_rank_on_the_objective_not_on_a_minute_bar_limit(stock_files, tmp_path):
    rows = _frontier(stock_files, tmp_path / "runs")
    one_bar = rows["time_stop:hold5m"]  # exits at the next daily bar: one class, named first
    assert set(json.loads(one_bar["aliases"])) == {"time_stop:hold4h", "time_stop:hold12h",
                                                   "time_stop:hold1d"}
    feasible_rows = [r for r in rows.values() if r["meets_constraints"]]
    assert len(feasible_rows) > 1  # not only the one-bar exits
    best = min(rows.values(), key=lambda r: r["rank"])
    assert best["policy_id"] != "time_stop:hold5m"
    assert best["objective_score"] > one_bar["objective_score"]
    # every policy that scores higher also ranks ahead (all are feasible on one footing)
    for r in feasible_rows:
        if r["objective_score"] > one_bar["objective_score"]:
            assert r["rank"] < one_bar["rank"], r["policy_id"]


def test_with_the_old_48h_limit_only_one_bar_exits_were_feasible(stock_files, tmp_path):
    """The same data under the old default: the perverse ranking this file guards against."""
    rows = _frontier(stock_files, tmp_path / "runs", max_avg_time_exposed_ms="48h")
    feasible_ids = {p for p, r in rows.items() if r["meets_constraints"]}
    assert feasible_ids == {"time_stop:hold5m"}
    assert rows["time_stop:hold5m"]["rank"] == 1
    higher = [r for r in rows.values()
              if r["objective_score"] > rows["time_stop:hold5m"]["objective_score"]]
    assert higher and np.all([r["rank"] > 1 for r in higher])


def test_the_default_grid_on_daily_stocks_has_no_duplicate_rows(stock_files, tmp_path):
    """Done-when of issue 11: every frontier row is a distinct policy. Rows with the same
    figures on 180 training and 60 validation calls would be the same trades reported twice
    (before, e.g. fixed_stop:sl0.1:tp0.5 and a trailing stop never activated with a 10 %
    hard stop: the same fills, only the exit reason's name differed)."""
    from quantbot.backtest.optimize.grid import default_grid

    holds = [p.max_hold_ms for p in default_grid(DAY_MS).policies if p.kind == "time_stop"]
    assert min(holds) == 5 * DAY_MS  # no time stop below one bar
    alerts, candles = stock_files
    result = run_optimization(
        alerts, candles, config={"validation": "time:0.75"}, per_caller=False, interval="1d",
        base_dir=tmp_path / "runs", durable=False,
        alerts_columns={"call_id": "id", "alert_ts": "alert_time", "mint": "symbol",
                        "caller_name": "caller"},
        candles_columns={"mint": "Ticker"}, taker_fee_bps=1, slippage_bps=2)
    rows = pq.read_table(Path(result.run_dir) / "results" / "frontier.parquet").to_pylist()
    ids = [r["policy_id"] for r in rows]
    listed = ids + [a for r in rows for a in json.loads(r["aliases"])]
    assert len(set(ids)) == len(ids) and sorted(listed) == sorted(set(listed))
    assert len(listed) == 594 and len(rows) < 594  # every policy once, as a row or an alias
    figures = ("avg_return_bps", "median_return_bps", "stop_out_rate", "p95_drawdown_bps",
               "avg_time_exposed_ms", "win_rate", "profit_factor", "sharpe",
               "validation_objective_score", "validation_median_return_bps")
    seen: dict[tuple, str] = {}
    for r in rows:
        key = tuple(r[f] for f in figures)
        assert key not in seen, (r["policy_id"], seen.get(key))
        seen[key] = r["policy_id"]
