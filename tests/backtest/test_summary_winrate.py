"""win_rate, profit_factor, avg_win_bps, avg_loss_bps: summary rows, frontier_stats and the
optimizer's per-policy statistics, against plain-Python sums."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantbot.backtest.engine.summary import frontier_stats, summarize, trimmed_mean, win_loss
from quantbot.backtest.optimize.objective import group_stats

KEYS = ("win_rate", "profit_factor", "avg_win_bps", "avg_loss_bps")


def columns(returns):
    n = len(returns)
    return {"realized_return_bps": np.array(returns, dtype=float),
            "stop_out": np.zeros(n, bool),
            "max_adverse_excursion_bps": np.zeros(n),
            "time_exposed_ms": np.zeros(n, dtype=np.int64),
            "tail_capture": pa.array([None] * n, pa.float64())}


def ref(returns):
    wins = [r for r in returns if r > 0]
    losses = [r for r in returns if r < 0]
    return {
        "win_rate": len(wins) / len(returns) if returns else None,
        "profit_factor": sum(wins) / -sum(losses) if losses else None,
        "avg_win_bps": sum(wins) / len(wins) if wins else None,
        "avg_loss_bps": sum(losses) / len(losses) if losses else None,
    }


def test_hand_values():
    s = summarize(columns([300.0, -100.0, 0.0, 100.0, -300.0]), 5, 0)
    assert s["win_rate"] == 0.4  # the zero-return trade is not a win
    assert s["profit_factor"] == 1.0  # 400 / |-400|
    assert s["avg_win_bps"] == 200.0 and s["avg_loss_bps"] == -200.0


def test_no_losing_trade_gives_a_null_profit_factor_and_empty_gives_nulls():
    s = summarize(columns([10.0, 0.0]), 2, 0)
    assert s["profit_factor"] is None and s["avg_loss_bps"] is None
    assert s["win_rate"] == 0.5 and s["avg_win_bps"] == 10.0
    empty = summarize(columns([]), 0, 3)
    assert all(empty[k] is None for k in KEYS)
    assert all(frontier_stats(columns([]))[k] is None for k in KEYS)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from([-250.0, -1.5, 0.0, 3.0, 75.0, 1e4]), min_size=8,
                         max_size=8), min_size=1, max_size=5))
def test_summary_frontier_and_group_stats_agree_with_the_reference(rows):
    mat = np.array(rows)
    g = group_stats(mat, np.zeros(mat.shape, bool), np.zeros(mat.shape), np.zeros(mat.shape),
                    np.full(mat.shape, np.nan))
    for i, r in enumerate(rows):
        expected = ref(r)
        for source in (summarize(columns(r), 8, 0), frontier_stats(columns(r)), g.row(i)):
            for k in KEYS:
                assert source[k] == (pytest.approx(expected[k]) if expected[k] is not None
                                     else None), k


def test_along_the_last_axis_and_trimmed_mean():
    m = np.array([[1.0, -1.0, 2.0], [-3.0, -3.0, 6.0]])
    wl = win_loss(m)
    assert wl["win_rate"].tolist() == [2 / 3, 1 / 3]
    assert wl["profit_factor"].tolist() == [3.0, 1.0]
    assert trimmed_mean(m, 0.1).tolist() == [1.0, -3.0]  # n = 3: k = 1, the median
    assert np.isnan(trimmed_mean(np.empty((2, 0)), 0.1)).all()
