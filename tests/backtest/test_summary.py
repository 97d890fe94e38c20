"""Summary and frontier statistics: true medians, linear percentiles, empty sets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from quantbot.backtest.engine.simulate import simulate
from quantbot.backtest.engine.summary import (
    frontier_stats,
    median_mae_bps,
    p95_drawdown_bps,
    summarize,
)
from quantbot.backtest.engine.windows import prepare_windows

from .reference import MIN, make_candles


def trades_columns(returns, mae=None, tail=None):
    n = len(returns)
    return {
        "realized_return_bps": np.array(returns, dtype=float),
        "stop_out": np.array([r < 0 for r in returns]),
        "max_adverse_excursion_bps": np.array(mae if mae is not None else [-100.0] * n),
        "time_exposed_ms": np.arange(n, dtype=np.int64) * 1000,
        "tail_capture": pa.array(tail if tail is not None else [None] * n, pa.float64()),
    }


def test_true_median_and_linear_percentiles():
    s = summarize(trades_columns([-100.0, 10.0, 20.0, 400.0], tail=[0.5, None, 0.1, 1.0]), 10, 6)
    assert s["calls_processed"] == 10 and s["calls_excluded"] == 6 and s["trades_count"] == 4
    assert s["median_return_bps"] == 15.0  # mean of the middle two
    assert s["avg_return_bps"] == 82.5
    assert s["p25_return_bps"] == pytest.approx(-100 + 0.75 * 110)
    assert s["p75_return_bps"] == pytest.approx(20 + 0.25 * 380)
    assert s["p90_return_bps"] == pytest.approx(20 + 0.7 * 380)
    assert s["stop_out_rate"] == 0.25
    assert s["avg_time_exposed_ms"] == 1500.0 and s["median_time_exposed_ms"] == 1500.0
    assert s["avg_tail_capture"] == pytest.approx(1.6 / 3) and s["median_tail_capture"] == 0.5
    assert s["avg_max_adverse_excursion_bps"] == -100.0


def test_empty_trade_set_gives_zero_counts_and_null_statistics():
    s = summarize(trades_columns([]), 3, 3)
    assert s["trades_count"] == 0 and s["calls_processed"] == 3
    assert all(v is None for k, v in s.items() if k not in ("trades_count", "calls_processed", "calls_excluded"))
    assert frontier_stats(trades_columns([]))["p95_drawdown_bps"] is None


def test_tail_capture_all_null():
    s = summarize(trades_columns([1.0, 2.0]), 2, 0)
    assert s["avg_tail_capture"] is None and s["median_tail_capture"] is None


def test_frontier_drawdown_statistics():
    mae = np.array([-5000.0, -100.0, -50.0, 0.0, 0.0])
    assert p95_drawdown_bps(mae) == pytest.approx(np.percentile(mae, 5))
    assert p95_drawdown_bps(mae) < -3000  # the severe end
    assert median_mae_bps(mae) == -50.0
    stats = frontier_stats(trades_columns([1.0, 2.0, 3.0, 4.0, -5.0], mae=mae, tail=[1.0, 0.5, None, None, None]))
    assert stats["median_mae_bps"] == -50.0 and stats["trades_count"] == 5
    assert stats["avg_tail_capture"] == 0.75 and stats["median_return_bps"] == 2.0


def test_summarize_accepts_trades_from_the_engine():
    rows = [(t, 100, 100, 100, 100) for t in range(6)]
    candles = make_candles({"A": rows})
    w = prepare_windows(candles, np.array([0, -1]), np.array([0, 0]), 5 * MIN)
    trades = simulate({"kind": "fixed_stop", "stop_pct": 0.2}, candles, w)
    s = summarize(trades, 2, 1)
    assert s["median_return_bps"] == -80.0 and s["stop_out_rate"] == 0.0 and s["avg_tail_capture"] is None
    assert summarize(trades.columns(), 2, 1) == s
