"""Optimizer goldens: constraints, objective, ranking ties, splits, overfitting, and a tiny
hand-made dataset whose frontier is computed by hand below (with the ``original``
objective, whose scores these goldens have always pinned).

The dataset (fees 0, horizon 3 minutes, entry = anchor close = 100, one call per mint):

====  ======  =====================================================  ==========
mint  caller  window candles (open, high, low, close) at minutes 1-3  peak bps
====  ======  =====================================================  ==========
m1    alice   (100,150,100,140) (140,140,130,130) (130,130,120,125)  5000
m2    alice   (100,100, 80, 85) ( 85, 90, 85, 90) ( 90, 95, 90, 95)  0 (null)
m3    bob     (100,100, 95,100) (100,100,100,100) (100,100,100,100)  0 (null)
m4    bob     (100,105,100,105) (105,110,105,110) (110,112,110,112)  1200
====  ======  =====================================================  ==========

Policies and their trades (return bps; tail capture; MAE bps is [0, -2000, -500, 0], except
P2's [0, -1000, -500, 0]: a stop exit's candle counts at its fill, 90, not its low, 80):

- P1 ``fixed_stop:tp0.2``: take profit 120 on m1; [2000, -500, 0, 1200]; tail [0.4, -, -, 1]
- P2 ``fixed_stop:sl0.1``: stopped at 90 on m2; [2500, -1000, 0, 1200]; tail [0.5, -, -, 1]
- P3 ``time_stop:hold1m``: minute-1 closes; [4000, -1500, 0, 500]; tail [0.8, -, -, 500/1200]
- P4 ``fixed_stop:sl0.25:tp0.2``: the stop (75) never fires: P1's trades exactly.

Pooled: median MAE -250, p95 drawdown = 5th pct of [-2000,-500,0,0] = -1775 (P2: of
  [-1000,-500,0,0] = -925).
  P1 600 + 200·0.7 − 2.5 = 737.5 · P2 600 + 200·0.75 − 2.5 = 747.5 (stop-out 0.25) ·
  P3 250 + 200·0.608333 − 2.5 = 369.1667 · P4 = P1 (identical trades: P4 is P1's alias,
  one frontier row, P1's rank).
alice (m1, m2): median MAE -1000 (P2: -500); P1 750 + 80 − 10 = 820 · P2 750 + 100 − 5 = 845
  but stop-out 0.5 (infeasible) · P3 1250 + 160 − 10 = 1400 · P4 = P1. p95 drawdown -1900
  (P2: -950).
"""

from __future__ import annotations

import numpy as np
import pytest

from quantbot.backtest.engine.simulate import simulate
from quantbot.backtest.engine.summary import frontier_stats
from quantbot.backtest.engine.windows import prepare_windows
from quantbot.backtest.optimize.grid import parse_grid
from quantbot.backtest.optimize.objective import (
    OptimizerConfig,
    OptimizerConfigError,
    PolicyStats,
    feasible,
    group_stats,
    make_config,
    objective_scores,
    overfit_flags,
    rank_policies,
    ranking_order,
)
from quantbot.backtest.optimize.search import (
    FRONTIER_VALIDATION_COLUMNS,
    POOLED,
    frontier_columns,
    optimize_grid,
)
from quantbot.backtest.optimize.splits import (
    ValidationSpecError,
    ValidationSplit,
    held_out_callers,
    make_split,
    parse_validation,
)

from .reference import MIN, make_candles

P1, P2, P3 = "fixed_stop:tp0.2", "fixed_stop:sl0.1", "time_stop:hold1m"
P4 = "fixed_stop:sl0.25:tp0.2"
HAND_GRID = {"families": {
    "fixed": [{"kind": "fixed_stop", "take_profit_pct": 0.2},
              {"kind": "fixed_stop", "stop_pct": 0.1}],
    "time": [{"kind": "time_stop", "max_hold_ms": "1m"}],
    "twin": [{"kind": "fixed_stop", "stop_pct": 0.25, "take_profit_pct": 0.2}],
}}
HAND_WINDOWS = {
    "m1": [(100, 150, 100, 140), (140, 140, 130, 130), (130, 130, 120, 125)],
    "m2": [(100, 100, 80, 85), (85, 90, 85, 90), (90, 95, 90, 95)],
    "m3": [(100, 100, 95, 100), (100, 100, 100, 100), (100, 100, 100, 100)],
    "m4": [(100, 105, 100, 105), (105, 110, 105, 110), (110, 112, 110, 112)],
}
HAND_CALLERS = ["alice", "alice", "bob", "bob"]
HAND_START_MIN = {"m1": 0, "m2": 10, "m3": 20, "m4": 30}  # alert (= anchor) minute per mint
NO_FEES = dict(taker_fee_bps=0.0, slippage_bps=0.0)


def hand_candle_rows():
    """(mint, minute, open, high, low, close) rows of the hand-made dataset."""
    rows = []
    for mint, window in HAND_WINDOWS.items():
        t0 = HAND_START_MIN[mint]
        rows.append((mint, t0, 100.0, 100.0, 100.0, 100.0))
        rows += [(mint, t0 + i + 1, *map(float, c)) for i, c in enumerate(window)]
    return rows


@pytest.fixture(scope="module")
def hand():
    blocks: dict[str, list[tuple]] = {}
    for mint, minute, o, h, lo, c in hand_candle_rows():
        blocks.setdefault(mint, []).append((minute, o, h, lo, c, 10.0))
    candles = make_candles(blocks)
    alert_ts = np.array([HAND_START_MIN[m] * MIN for m in HAND_WINDOWS], dtype=np.int64)
    windows = prepare_windows(candles, candles.mint_index(list(HAND_WINDOWS)), alert_ts, 3 * MIN)
    assert windows.eligible.all()
    return candles, windows, parse_grid(HAND_GRID)


def _by_id(result, caller):
    g = result.group(caller)
    return {pid: i for i, pid in enumerate(result.grid.policy_ids)}, g


def test_hand_dataset_pooled_frontier(hand):
    candles, windows, grid = hand
    assert grid.policy_ids == [P1, P2, P3, P4]
    result = optimize_grid(grid, candles, windows, HAND_CALLERS, make_config(objective="original", min_calls=2),
                           **NO_FEES)
    ids, g = _by_id(result, POOLED)
    assert g.score == pytest.approx([737.5, 747.5, 250 + 200 * (0.8 + 500 / 1200) / 2 - 2.5, 737.5])
    assert g.stats.median_return_bps == pytest.approx([600.0, 600.0, 250.0, 600.0])
    assert g.stats.avg_return_bps == pytest.approx([675.0, 675.0, 750.0, 675.0])
    assert g.stats.stop_out_rate.tolist() == [0.0, 0.25, 0.0, 0.0]
    assert g.stats.p95_drawdown_bps == pytest.approx([-1775.0, -925.0, -1775.0, -1775.0])
    assert g.stats.avg_time_exposed_ms.tolist() == [2.5 * MIN, 2.5 * MIN, 1 * MIN, 2.5 * MIN]
    assert g.stats.trades_count == 4
    assert g.meets_constraints.tolist() == [True, True, True, True]
    # P2 best; P4 has P1's trades: one frontier row (P1's), the same rank.
    assert result.alias_of.tolist() == [0, 1, 2, 0]
    assert g.rank.tolist() == [2, 1, 3, 2]
    assert result.grid.policy_ids[g.best] == P2


def test_hand_dataset_infeasible_ranks_after_every_feasible(hand):
    candles, windows, grid = hand
    result = optimize_grid(grid, candles, windows, HAND_CALLERS,
                           make_config(objective="original", min_calls=2, max_stop_out_rate=0.2), **NO_FEES)
    g = result.group(POOLED)
    assert g.meets_constraints.tolist() == [True, False, True, True]
    assert g.score[1] == pytest.approx(747.5)  # scored although infeasible
    assert g.rank.tolist() == [1, 3, 2, 1]


def test_hand_dataset_per_caller(hand):
    candles, windows, grid = hand
    result = optimize_grid(grid, candles, windows, HAND_CALLERS, make_config(objective="original", min_calls=2),
                           **NO_FEES)
    assert [g.caller_name for g in result.groups] == [POOLED, "alice", "bob"]
    alice = result.group("alice")
    assert alice.score == pytest.approx([820.0, 845.0, 1400.0, 820.0])
    assert alice.meets_constraints.tolist() == [True, False, True, True]
    assert alice.rank.tolist() == [2, 3, 1, 2]
    assert alice.stats.p95_drawdown_bps == pytest.approx([-1900.0, -950.0, -1900.0, -1900.0])
    assert alice.best_trades is not None and alice.best_trades.alert_idx.tolist() == [0, 1]
    assert alice.best_trades.realized_return_bps == pytest.approx([4000.0, -1500.0])
    skipped = optimize_grid(grid, candles, windows, HAND_CALLERS, make_config(objective="original", min_calls=3),
                            **NO_FEES)
    assert [g.caller_name for g in skipped.groups] == [POOLED]
    assert [(s.caller_name, s.train_calls, s.reason) for s in skipped.skipped] == [
        ("alice", 2, "min_calls"), ("bob", 2, "min_calls")]


def test_time_split_trains_early_and_reports_on_validation(hand):
    candles, windows, grid = hand
    cfg = make_config(objective="original", min_calls=1, validation="time:0.5")
    result = optimize_grid(grid, candles, windows, HAND_CALLERS, cfg, **NO_FEES)
    g = result.group(POOLED)
    assert result.split.train.tolist() == [True, True, False, False]
    assert g.stats.trades_count == 2 and g.validation_stats.trades_count == 2
    # Train = alice's calls: the alice ranking; validation = bob's calls (m3, m4).
    assert g.rank.tolist() == [2, 3, 1, 2]
    assert result.grid.policy_ids[g.best] == P3
    assert g.best_trades.alert_idx.tolist() == [2, 3]  # reported on validation calls
    # P3 on m3, m4: returns [0, 500], tail [-, 500/1200], MAE [-500, 0]
    assert g.validation_score[2] == pytest.approx(250 + 200 * 500 / 1200 - 2.5)
    # P1/P4 validate at 600 + 200 - 2.5 = 797.5 vs 820 train: within max(100, 410);
    # P2 797.5 vs 840: fine; P3 330.8 vs 1400: more than 700 below and validation rank 3
    # of 3 (outside the top ceil(0.25·3) = 1) -> overfit.
    assert g.validation_score == pytest.approx([797.5, 797.5, 250 + 200 * 500 / 1200 - 2.5,
                                                797.5])
    assert g.overfit.tolist() == [False, False, True, False]
    alice = result.group("alice")
    assert alice.validated and alice.validation_stats.trades_count == 0
    assert alice.best_trades is not None and len(alice.best_trades) == 0
    assert [s.caller_name for s in result.skipped] == ["bob"]  # no calls before the cutoff


def test_running_best_matches_rank_one_across_batches(hand):
    candles, windows, grid = hand
    for batch in (1, 2, 3, 64):
        result = optimize_grid(grid, candles, windows, HAND_CALLERS, make_config(objective="original", min_calls=2),
                               batch_size=batch, **NO_FEES)
        for g in result.groups:
            assert g.rank[g.best] == 1


def test_per_caller_reuses_one_simulation_per_batch(hand, monkeypatch):
    import quantbot.backtest.optimize.search as opt

    calls = []
    real = opt.simulate_many

    def counting(policies, *a, **k):
        calls.append(len(policies))
        return real(policies, *a, **k)

    monkeypatch.setattr(opt, "simulate_many", counting)
    candles, windows, grid = hand
    result = optimize_grid(grid, candles, windows, HAND_CALLERS, make_config(objective="original", min_calls=1),
                           batch_size=3, **NO_FEES)
    assert len(result.groups) == 3 and calls == [3, 1]


def test_progress_reports_policies_done(hand):
    candles, windows, grid = hand
    seen = []
    optimize_grid(grid, candles, windows, HAND_CALLERS, batch_size=3,
                  on_progress=lambda d, t: seen.append((d, t)), **NO_FEES)
    assert seen == [(3, 4), (4, 4)]


def test_group_stats_equal_frontier_stats_per_policy(hand):
    candles, windows, grid = hand
    per = [simulate(p, candles, windows, 30.0, 10.0) for p in grid.policies]
    mats = [np.stack([getattr(t, n) for t in per]) for n in (
        "realized_return_bps", "stop_out", "max_adverse_excursion_bps", "time_exposed_ms",
        "tail_capture")]
    stats = group_stats(*mats)
    for i, trades in enumerate(per):
        ref = frontier_stats(trades)
        row = stats.row(i)
        for key, value in ref.items():
            assert row[key] == (pytest.approx(value) if value is not None else None), key


def test_frontier_columns_and_validation_extras(hand):
    candles, windows, grid = hand
    result = optimize_grid(grid, candles, windows, HAND_CALLERS, make_config(objective="original", min_calls=2),
                           **NO_FEES)
    cols = frontier_columns(result, "run-1")
    assert list(cols) == ["run_id", "caller_name", "policy_id", "policy_params",
                          "meets_constraints", "objective_score", "avg_return_bps",
                          "median_return_bps", "stop_out_rate", "p95_drawdown_bps",
                          "avg_time_exposed_ms", "trades_count", "rank"]
    # P4 is P1's alias: three rows per group
    assert cols["caller_name"].to_pylist() == ["*"] * 3 + ["alice"] * 3 + ["bob"] * 3
    assert cols["policy_id"].to_pylist()[:3] == [P1, P2, P3]
    assert cols["rank"].to_pylist()[:6] == [2, 1, 3, 2, 3, 1]
    extras = frontier_columns(result, allowed=list(FRONTIER_VALIDATION_COLUMNS))
    assert extras["overfit"].null_count == 9  # no split: validation columns are null
    assert extras["validation_trades_count"].type == FRONTIER_VALIDATION_COLUMNS[
        "validation_trades_count"]


# -- objective, constraints, ranking on hand-written statistics --------------------------

def _stats(**over):
    base = dict(avg_return_bps=[0.0], median_return_bps=[100.0], stop_out_rate=[0.1],
                p95_drawdown_bps=[-1000.0], median_mae_bps=[-300.0],
                avg_time_exposed_ms=[3_600_000.0], avg_tail_capture=[0.5])
    base.update(over)
    n = len(next(iter(base.values())))
    empty = PolicyStats.empty(n, 10)
    return PolicyStats(10, **{k: np.asarray(base.get(k, getattr(empty, k)), dtype=float)
                              for k in vars(empty) if k != "trades_count"})


def test_objective_score_formula_and_weights():
    s = _stats(median_return_bps=[100.0, -50.0, np.nan], avg_tail_capture=[0.5, np.nan, 0.1],
               median_mae_bps=[-300.0, -1000.0, 0.0], stop_out_rate=[0.1] * 3,
               p95_drawdown_bps=[-1000.0] * 3, avg_time_exposed_ms=[1.0] * 3,
               avg_return_bps=[0.0] * 3)
    score = objective_scores(s, make_config(objective="original"))
    assert score[0] == 100 + 200 * 0.5 - 3.0  # the drawdown term penalises
    assert score[1] == -50 + 0 - 10.0  # null tail capture counts as 0
    assert np.isnan(score[2])  # no trades
    weighted = objective_scores(s, make_config(objective="original", return_weight=2,
                                               tail_capture_weight=0,
                                               mae_weight=0.1))
    assert weighted[0] == 200 - 30


@pytest.mark.parametrize("over, ok", [
    ({}, True),
    ({"stop_out_rate": [0.30]}, True), ({"stop_out_rate": [0.3001]}, False),
    ({"p95_drawdown_bps": [-3000.0]}, True), ({"p95_drawdown_bps": [-3000.1]}, False),
    ({"avg_time_exposed_ms": [48 * 3_600_000.0]}, True),
    ({"avg_time_exposed_ms": [48 * 3_600_000.0 + 1]}, False),
    ({"stop_out_rate": [np.nan]}, False),
])
def test_constraints_are_inclusive_and_nan_fails(over, ok):
    assert feasible(_stats(**over), OptimizerConfig()).tolist() == [ok]


def test_configured_constraints():
    cfg = make_config(max_stop_out_rate=0.05, min_p95_drawdown_bps=-500,
                      max_avg_time_exposed_ms="30m")
    assert cfg.max_avg_time_exposed_ms == 1_800_000
    assert feasible(_stats(stop_out_rate=[0.05], p95_drawdown_bps=[-500.0],
                           avg_time_exposed_ms=[1_800_000.0]), cfg).tolist() == [True]
    assert feasible(_stats(), cfg).tolist() == [False]


def test_rank_feasible_first_then_score_ties_share_a_rank():
    ok = np.array([False, True, True, True, True, False])
    score = np.array([999.0, 10.0, 10.0, np.nan, 50.0, np.nan])
    # feasible: e (50), a/c tie at 10 (both 2), d (NaN) 4; then infeasible b, f (NaN)
    assert rank_policies(ok, score).tolist() == [5, 2, 2, 4, 1, 6]
    assert rank_policies(np.ones(3, bool), np.zeros(3)).tolist() == [1, 1, 1]
    # the order among tied policies is the input (grid) order
    assert ranking_order(ok, score).tolist() == [4, 1, 2, 3, 0, 5]


def test_overfit_rule():
    cfg = OptimizerConfig()  # gap = max(100, 0.5·|train|); top ceil(0.25·8) = 2 ranks
    train = np.array([100.0, 1000.0, 1000.0, -400.0, 50.0, np.nan, 1000.0, 10.0])
    val = np.array([0.0, 501.0, 499.0, -601.0, np.nan, 0.0, 1.0, 500.0])
    rank = np.array([3, 3, 3, 3, 3, 3, 1, 3])
    # [6] far below train but still rank 1 on validation; [7] validation above training
    assert overfit_flags(train, val, rank, cfg).tolist() == [False, False, True, True,
                                                             False, False, False, False]
    strict = make_config(overfit_min_gap=0, overfit_rel_gap=0, overfit_top_fraction=0.5)
    assert overfit_flags(np.array([1.0, 1.0]), np.array([0.999, 0.5]), np.array([2, 1]),
                         strict).tolist() == [True, False]


def test_config_errors_are_one_line():
    for bad, match in [({"min_calls": 0}, "optimizer.min_calls"),
                       ({"validation": "time:2"}, "train fraction must be > 0 and < 1"),
                       ({"max_avg_time_exposed_ms": "2 weeks"}, "invalid duration"),
                       ({"bogus": 1}, "optimizer.bogus")]:
        with pytest.raises(OptimizerConfigError, match=match) as err:
            make_config(bad)
        assert "\n" not in str(err.value)


# -- splits ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("time:0.8", ValidationSplit(kind="time", train_fraction=0.8)),
    ("time", ValidationSplit(kind="time")),
    ("caller", ValidationSplit(kind="caller")),
    ("caller:0.7:3", ValidationSplit(kind="caller", train_fraction=0.7, seed=3)),
    ("random:42", ValidationSplit(kind="random", seed=42)),
    ("random:42:0.6", ValidationSplit(kind="random", seed=42, train_fraction=0.6)),
    ("none", None), ("", None), (None, None),
])
def test_parse_validation(text, expected):
    assert parse_validation(text) == expected
    if expected is not None:
        assert parse_validation(expected.spec()) == expected


@pytest.mark.parametrize("text", ["time:1", "time:0", "time:x", "random", "random:1:2:3",
                                  "caller:0.5:x", "months:3", "time:0.5:1"])
def test_parse_validation_rejects(text):
    with pytest.raises(ValidationSpecError, match="--validation"):
        parse_validation(text)


def test_time_split_by_alert_time_ties_in_input_order():
    ts = np.array([50, 10, 30, 30, 20, 40, 60, 70, 80, 90])
    split = make_split(parse_validation("time:0.8"), ts, np.array(["a"] * 10))
    # the 8 earliest: 10, 20, 30, 30, 40, 50, 60, 70
    assert split.train.tolist() == [True] * 8 + [False] * 2
    split = make_split(parse_validation("time:0.3"), ts, np.array(["a"] * 10))
    assert np.flatnonzero(split.train).tolist() == [1, 2, 4]  # 10, 20 and the first 30
    assert make_split(None, ts, np.array(["a"] * 10)).train.all()


def test_random_split_is_seeded_and_exact_in_size():
    ts = np.arange(100)
    callers = np.array(["a"] * 100)
    a = make_split(parse_validation("random:7:0.7"), ts, callers).train
    b = make_split(parse_validation("random:7:0.7"), ts, callers).train
    c = make_split(parse_validation("random:8:0.7"), ts, callers).train
    assert a.sum() == 70 and (a == b).all() and not (a == c).all()
    assert make_split(parse_validation("random:7:0.29"), ts, callers).train.sum() == 29


def test_caller_split_holds_out_whole_callers():
    names = [f"c{i}" for i in range(10)]
    held = held_out_callers(names, 0.8, seed=0)
    assert len(held) == 2 and held == tuple(sorted(held))
    assert held_out_callers(names, 0.8, seed=0) == held
    assert held_out_callers(names, 0.8, seed=1) != held
    assert len(held_out_callers(names[:2], 0.1, 0)) == 1  # at least one caller trains
    assert len(held_out_callers(names[:3], 0.99, 0)) == 1  # at least one held out
    callers = np.array(names * 3)
    split = make_split(parse_validation("caller:0.8"), np.arange(30), callers)
    assert split.held_out_callers == held
    assert (split.validation == np.isin(callers, held)).all()
    with pytest.raises(ValidationSpecError, match="at least 2 callers"):
        make_split(parse_validation("caller"), np.arange(3), np.array(["a"] * 3))


def test_caller_split_per_caller_groups_are_in_sample(hand):
    candles, windows, grid = hand
    cfg = make_config(objective="original", min_calls=1, validation="caller:0.5:0")
    result = optimize_grid(grid, candles, windows, HAND_CALLERS, cfg, **NO_FEES)
    (held,) = result.split.held_out_callers
    kept = ({"alice", "bob"} - {held}).pop()
    assert [s.caller_name for s in result.skipped] == [held]
    pooled, own = result.group(POOLED), result.group(kept)
    assert pooled.validated and pooled.validation_stats.trades_count == 2
    assert not own.validated and own.validation_stats is None
    assert own.best_trades is not None and len(own.best_trades) == 2  # its own calls
