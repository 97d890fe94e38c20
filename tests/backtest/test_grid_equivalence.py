"""Equivalent policies are evaluated once and reported once, with their aliases; ties in
score share a rank (1, 2, 2, 4) while the order stays deterministic (grid order)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantbot.backtest.engine.simulate import Trades, simulate
from quantbot.backtest.engine.windows import prepare_windows
from quantbot.backtest.optimize.grid import parse_grid
from quantbot.backtest.optimize.objective import make_config, rank_policies, ranking_order
from quantbot.backtest.optimize.search import (
    FRONTIER_EXTRA_COLUMNS,
    POOLED,
    canonical_groups,
    frontier_columns,
    optimize_grid,
    windows_aligned,
)

from .reference import MIN, make_candles, random_candle_set

DAY = 24 * 60 * MIN
HOLDS = ["5m", "1h", "4h", "12h", "1d", "36h", "2d", "30d"]


def daily_set(n_mints: int = 6, days: int = 12, seed: int = 0):
    """Daily candles (ts in minutes, one a day) with random closes; one alert per mint.
    Seed 0: the 5 % target fires on some alert (fixed_stop:tp0.05 differs from holding)."""
    rng = np.random.default_rng(seed)
    blocks = {}
    for j in range(n_mints):
        px, rows = 100.0, []
        for d in range(days):
            c = max(1.0, px * (1 + rng.normal(0, 0.03)))
            rows.append((d * 24 * 60, px, max(px, c) * 1.01, min(px, c) * 0.99, c))
            px = c
        blocks[f"s{j}"] = rows
    candles = make_candles(blocks)
    mints = list(blocks)
    windows = prepare_windows(candles, candles.mint_index(mints),
                              np.array([DAY * (j % 3) for j in range(n_mints)]), 5 * DAY)
    return candles, windows


def daily_grid():
    return parse_grid({"families": {
        "time": {"kind": "time_stop", "product": {"max_hold_ms": HOLDS}},
        "time_tp": {"kind": "time_stop", "take_profit_pct": 0.05,
                    "product": {"max_hold_ms": ["30d"]}},
        "fixed": [{"kind": "fixed_stop", "take_profit_pct": 0.05},
                  {"kind": "fixed_stop", "stop_pct": 0.5}],
    }})


def same_trades(a: Trades, b: Trades) -> bool:
    """Identical in every field but the exit reason's name (a fixed stop's stop_loss and a
    trailing stop's hard_stop at the same fill are the same trade)."""
    return all(np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True)
               for f in Trades.__dataclass_fields__ if f != "exit_reason")


def test_daily_time_stops_collapse_to_whole_bars(monkeypatch):
    import quantbot.backtest.optimize.search as opt

    candles, windows = daily_set()
    grid = daily_grid()
    ids = grid.policy_ids
    assert windows_aligned(candles, windows, DAY)
    # 5m .. 1d exit at the next daily close; 36h and 2d at the second; 30d never fires
    canon = canonical_groups(grid.policies, candles, windows, DAY)
    assert canon.tolist() == [0, 0, 0, 0, 0, 5, 5, 7, 8, 9, 10]
    simulated: list[str] = []
    real = opt.simulate_many

    def counting(policies, *a, **k):
        simulated.extend(p.kind for p in policies)
        return real(policies, *a, **k)

    monkeypatch.setattr(opt, "simulate_many", counting)
    res = optimize_grid(grid, candles, windows, ["a"] * 6, make_config(min_calls=1),
                        interval_ms=DAY, taker_fee_bps=0.0, slippage_bps=0.0)
    assert len(simulated) == 6  # one per canonical form
    # after simulating: 30d (never fires) holds to the end like fixed_stop:sl0.5, and
    # time_stop:hold30d:tp0.05 is fixed_stop:tp0.05
    assert res.alias_of.tolist() == [0, 0, 0, 0, 0, 5, 5, 7, 8, 8, 7]
    aliases = res.aliases()
    assert aliases == {0: ids[1:5], 5: [ids[6]], 7: [ids[10]], 8: [ids[9]]}
    cols = frontier_columns(res, allowed=list(FRONTIER_EXTRA_COLUMNS))
    assert cols["policy_id"].to_pylist() == [ids[i] for i in (0, 5, 7, 8)] * 2
    assert [json.loads(a) for a in cols["aliases"].to_pylist()[:4]] == [
        ids[1:5], [ids[6]], [ids[10]], [ids[9]]]
    # every alias carries its representative's numbers
    g = res.group(POOLED)
    for i, r in enumerate(res.alias_of):
        assert g.score[i] == g.score[r] and g.rank[i] == g.rank[r]


def test_without_the_interval_only_identical_trades_merge():
    candles, windows = daily_set()
    grid = daily_grid()
    canon = canonical_groups(grid.policies, candles, windows, None)
    assert canon.tolist() == list(range(7)) + [7, 8, 9, 10]  # only 30d: beyond the windows
    res = optimize_grid(grid, candles, windows, ["a"] * 6, make_config(min_calls=1),
                        taker_fee_bps=0.0, slippage_bps=0.0)
    assert res.alias_of.tolist() == [0, 0, 0, 0, 0, 5, 5, 7, 8, 8, 7]  # (b) finds them all


def test_misaligned_candles_are_not_canonicalised():
    blocks = {"m": [(0, 100, 101, 99, 100), (1, 100, 101, 99, 100), (3, 100, 101, 99, 100),
                    (4, 100, 101, 99, 100)]}
    candles = make_candles(blocks)
    windows = prepare_windows(candles, candles.mint_index(["m"]), np.array([0]), 4 * MIN)
    assert windows_aligned(candles, windows, MIN)
    assert not windows_aligned(candles, windows, 2 * MIN)  # minute 1 is off the 2m grid
    policies = parse_grid({"families": {"t": {"kind": "time_stop", "product": {
        "max_hold_ms": ["1m", "2m"]}}}}).policies
    assert canonical_groups(policies, candles, windows, 2 * MIN).tolist() == [0, 1]
    assert canonical_groups(policies, candles, windows, MIN).tolist() == [0, 1]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([MIN, 2 * MIN, 3 * MIN]))
def test_grouping_is_exact(seed, interval):
    """Policies share a representative exactly when their trades are identical."""
    rng = np.random.default_rng(seed)
    candles = random_candle_set(rng, n_mints=3, max_candles=30)
    alert_ts = np.array([int(rng.integers(0, 10)) * MIN // 2 for _ in range(5)])
    mints = [f"m{int(rng.integers(0, 3))}" for _ in range(5)]
    windows = prepare_windows(candles, candles.mint_index(mints), alert_ts, 8 * MIN)
    grid = parse_grid({"families": {
        "time": {"kind": "time_stop", "product": {
            "max_hold_ms": ["30s", "1m", "90s", "2m", "3m", "4m", "7m", "8m", "9m", "1h"],
            "take_profit_pct": [0, 0.1]}},
        "fixed": {"kind": "fixed_stop", "product": {"stop_pct": [0, 0.5],
                                                    "take_profit_pct": [0, 0.1]}},
    }})
    res = optimize_grid(grid, candles, windows, ["a"] * 5, make_config(min_calls=1),
                        interval_ms=interval, batch_size=7)
    trades = [simulate(p, candles, windows) for p in grid.policies]
    rep = res.alias_of
    for i in range(len(grid)):
        assert rep[i] <= i and rep[rep[i]] == rep[i]
        for j in range(i):
            assert (rep[i] == rep[j]) == same_trades(trades[i], trades[j]), (i, j)


# -- tie ranks -----------------------------------------------------------------------------

def ref_ranks(ok: list[bool], score: list[float]) -> list[int]:
    """1 + the number of policies strictly better (feasible first, NaN last)."""
    def key(i):
        s = score[i]
        nan = math.isnan(s)
        return (0 if ok[i] else 1, 1 if nan else 0, 0.0 if nan else -s)
    return [1 + sum(key(j) < key(i) for j in range(len(ok))) for i in range(len(ok))]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from([1.0, 2.0, 2.0, 3.0, float("nan")])),
                min_size=1, max_size=25))
def test_competition_ranks_and_a_deterministic_order(rows):
    ok = np.array([r[0] for r in rows])
    score = np.array([r[1] for r in rows])
    ranks = rank_policies(ok, score)
    assert ranks.tolist() == ref_ranks(ok.tolist(), score.tolist())
    order = ranking_order(ok, score)
    assert sorted(order.tolist()) == list(range(len(rows)))
    assert ranks[order].tolist() == sorted(ranks.tolist())
    for a, b in itertools.pairwise(order):  # ties in input order
        if ranks[a] == ranks[b]:
            assert a < b


def test_tied_distinct_policies_share_a_rank_in_the_frontier():
    """Distinct policies (different trades) with the same score keep their own rows but
    share the rank."""
    blocks = {f"m{i}": [(10 * i, 100, 100, 100, 100), (10 * i + 1, 100, 112 - 6 * i, 100, 105),
                        (10 * i + 2, 105, 105, 95, 100)] for i in range(2)}
    candles = make_candles(blocks)
    windows = prepare_windows(candles, candles.mint_index(list(blocks)),
                              np.array([0, 10 * MIN]), 2 * MIN)
    grid = parse_grid({"families": {"f": [
        {"kind": "fixed_stop", "take_profit_pct": 0.05},  # +500 and +500 at minute 1
        {"kind": "fixed_stop", "take_profit_pct": 0.1},  # +1000 at minute 1, 0 at the end
        {"kind": "fixed_stop", "stop_pct": 0.5},  # 0 at the end
    ]}})
    res = optimize_grid(grid, candles, windows, ["a", "a"], make_config(min_calls=1),
                        taker_fee_bps=0.0, slippage_bps=0.0, interval_ms=MIN)
    g = res.group(POOLED)
    assert res.alias_of.tolist() == [0, 1, 2]  # different trades: not merged
    assert g.score[0] == g.score[1] == pytest.approx(500.0)
    assert g.rank.tolist() == [1, 1, 3]
    assert g.best == 0  # the first of the tie in grid order
