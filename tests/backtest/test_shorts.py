"""Shorts mirror every rule (COMMON contract "Sides"): hand cases and a randomized cross-check."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantbot.backtest.engine.price_paths import compute_paths
from quantbot.backtest.engine.simulate import simulate
from quantbot.backtest.engine.windows import prepare_windows

from .reference import MIN, assert_trades_match, make_candles, random_candle_set
from .test_simulate import _policy

ANCHOR = (0, 100.0, 100.0, 100.0, 100.0)  # E = 100 at minute 0


def flat(minutes, px=100.0):
    return [(t, px, px, px, px) for t in minutes]


def short(policy, rows, horizon_min=5):
    """The single short trade of an alert at minute 0 as a {column: python value} dict."""
    candles = make_candles({"A": [ANCHOR, *rows]})
    w = prepare_windows(candles, np.array([0]), np.array([0]), horizon_min * MIN,
                        side=np.array([-1], dtype=np.int8))
    assert w.eligible[0]
    cols = simulate(policy, candles, w).columns()
    return {k: (v.to_pylist() if isinstance(v, pa.Array) else v.tolist())[0] for k, v in cols.items()}


STOP = {"kind": "fixed_stop", "stop_pct": 0.2, "take_profit_pct": 0.5}


def test_short_stop_is_above_entry_and_fills_at_max_of_open_and_level():
    t = short(STOP, [(1, 100, 125, 95, 110), *flat(range(2, 6))])
    assert (t["side"], t["exit_reason"], t["exit_px"], t["exit_ts_ms"]) == ("short", "stop_loss", 120.0, MIN)
    assert t["realized_return_bps"] == pytest.approx(-2000.0 - 80.0) and t["stop_out"]
    t = short(STOP, [(1, 130, 135, 125, 130), *flat(range(2, 6))])  # gap up through the stop
    assert (t["exit_reason"], t["exit_px"]) == ("stop_loss", 130.0)
    assert t["realized_return_bps"] == pytest.approx(-3000.0 - 80.0)


def test_short_take_profit_below_entry_fills_at_the_level():
    t = short(STOP, [(1, 100, 101, 60, 70), (2, 40, 45, 30, 35), *flat(range(3, 6))])
    assert (t["exit_reason"], t["exit_px"], t["exit_ts_ms"]) == ("take_profit", 50.0, 2 * MIN)
    assert t["realized_return_bps"] == pytest.approx(5000.0 - 80.0)
    assert t["tail_capture"] == pytest.approx(5000.0 / 7000.0)  # peak: (1 - 30/100) * 1e4
    assert t["max_adverse_excursion_bps"] == pytest.approx(-100.0)  # the highs held through


def test_short_take_profit_of_100_percent_or_more_never_fires():
    t = short({"kind": "fixed_stop", "take_profit_pct": 1.0}, [(1, 100, 101, 1, 2), *flat(range(2, 6), 2.0)])
    assert t["exit_reason"] == "end_of_data" and t["exit_px"] == 2.0
    assert t["realized_return_bps"] == pytest.approx(9800.0 - 80.0)


def test_same_pessimistic_order_stop_before_target_in_one_candle():
    t = short(STOP, [(1, 100, 125, 40, 60), *flat(range(2, 6))])
    assert (t["exit_reason"], t["exit_px"]) == ("stop_loss", 120.0)


TRAIL = {"kind": "trailing_stop", "activation_pct": 0.2, "trail_pct": 0.1}


def test_short_trails_the_running_trough():
    rows = [
        (1, 100, 100, 75, 78),  # activates (75 <= 80); its high cannot exit by trail
        (2, 78, 82, 74, 80),    # level 75 * 1.1 = 82.5 > 82: holds; trough -> 74
        (3, 80, 85, 79, 84),    # level 74 * 1.1 = 81.4 <= 85: fills at max(open 80, 81.4)
        *flat(range(4, 6)),
    ]
    t = short(TRAIL, rows)
    assert (t["exit_reason"], t["exit_ts_ms"], t["stop_out"]) == ("trailing_stop", 3 * MIN, True)
    assert t["exit_px"] == pytest.approx(74 * 1.1)
    assert t["realized_return_bps"] == pytest.approx((1 - 0.814) * 1e4 - 80.0)
    gap = short(TRAIL, [(1, 100, 100, 75, 78), (2, 90, 95, 88, 92), *flat(range(3, 6))])
    assert (gap["exit_reason"], gap["exit_px"]) == ("trailing_stop", 90.0)  # open above 82.5


def test_short_hard_stop_and_trail_from_entry_without_activation():
    t = short({"kind": "trailing_stop", "trail_pct": 0.1, "hard_stop_pct": 0.3},
              [(1, 100, 135, 99, 130), *flat(range(2, 6))])
    assert (t["exit_reason"], t["exit_px"]) == ("hard_stop", 130.0)
    t = short({"kind": "trailing_stop", "trail_pct": 0.1}, [(1, 100, 111, 99, 105), *flat(range(2, 6))])
    assert (t["exit_reason"], t["exit_px"]) == ("trailing_stop", pytest.approx(110.0))


LADDER = {"kind": "ladder", "stop_pct": 0.5,
          "levels": [{"multiple": 4, "fraction": 0.5}, {"multiple": 2, "fraction": 0.5}]}


def test_short_ladder_fills_at_entry_over_multiple():
    t = short(LADDER, [(1, 100, 101, 45, 50), (2, 50, 52, 20, 22), *flat(range(3, 6))])
    assert (t["exit_reason"], t["exit_ts_ms"]) == ("ladder_complete", 2 * MIN)
    assert t["exit_px"] == pytest.approx(0.5 * 50 + 0.5 * 25)
    assert t["realized_return_bps"] == pytest.approx(0.5 * 5000 + 0.5 * 7500 - 80)
    t = short(LADDER, [(1, 100, 101, 45, 50), (2, 140, 160, 130, 150), *flat(range(3, 6))])
    assert (t["exit_reason"], t["exit_px"]) == ("stop_loss", pytest.approx(0.5 * 50 + 0.5 * 150))


def test_short_time_stop_exits_at_the_close():
    t = short({"kind": "time_stop", "max_hold_ms": 2 * MIN}, [(1, 100, 101, 90, 95), (2, 95, 96, 80, 85),
                                                                *flat(range(3, 6))])
    assert (t["exit_reason"], t["exit_px"]) == ("time_stop", 85.0)
    assert t["realized_return_bps"] == pytest.approx(1500.0 - 80.0)


def test_short_path_metrics():
    candles = make_candles({"A": [ANCHOR, (1, 100, 130, 90, 95), (2, 95, 96, 50, 55), (3, 55, 60, 24, 30)]})
    w = prepare_windows(candles, np.array([0]), np.array([0]), 3 * MIN, side=np.array([-1], np.int8))
    m = compute_paths(candles, w)
    assert m.hit_2x[0] and m.t_2x_ms[0] == 2 * MIN  # low 50 <= 100 / 2
    assert m.hit_3x[0] and m.t_3x_ms[0] == 3 * MIN  # 24 <= 33.33
    assert m.hit_4x[0] and m.t_4x_ms[0] == 3 * MIN  # 24 <= 25
    assert m.peak_multiple[0] == pytest.approx(100 / 24)
    assert m.dd_bps[0] == pytest.approx(-3000.0) and m.dd_to_2x_bps[0] == pytest.approx(-3000.0)
    assert m.alert_to_activity_ms[0] == MIN


def test_trades_carry_the_side_per_alert():
    candles = make_candles({"A": [ANCHOR, *flat(range(1, 6))]})
    w = prepare_windows(candles, np.array([0, 0]), np.array([0, 0]), 5 * MIN,
                        side=np.array([1, -1], np.int8))
    t = simulate({"kind": "fixed_stop"}, candles, w)
    assert t.side.tolist() == [1, -1] and t.columns()["side"].to_pylist() == ["long", "short"]
    assert t.take(np.array([1])).side.tolist() == [-1]
    with pytest.raises(ValueError):
        prepare_windows(candles, np.array([0]), np.array([0]), MIN, side=np.array([0], np.int8))


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), horizon=st.integers(1, 25), policy=_policy,
       entry=st.sampled_from(["close", "next-open"]))
def test_engine_matches_reference_long_and_short(seed, horizon, policy, entry):
    rng = np.random.default_rng(seed)
    candles = random_candle_set(rng, n_mints=4)
    n = 20
    sides = rng.choice(np.array([1, -1], np.int8), size=n)
    assert_trades_match(policy, candles, rng.integers(0, 4, size=n), rng.integers(-2 * MIN, 30 * MIN, size=n),
                        horizon * MIN, entry, sides)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), horizon=st.integers(32, 200), policy=_policy,
       entry=st.sampled_from(["close", "next-open"]))
def test_engine_matches_reference_short_on_long_quiet_windows(seed, horizon, policy, entry):
    """Windows long enough for the ScanIndex chunk skips, which must stay exact for shorts."""
    rng = np.random.default_rng(seed)
    candles = random_candle_set(rng, n_mints=3, max_candles=300, step=3)
    n = 8
    sides = rng.choice(np.array([1, -1], np.int8), size=n)
    assert_trades_match(policy, candles, rng.integers(0, 3, size=n), rng.integers(-2 * MIN, 100 * MIN, size=n),
                        horizon * MIN, entry, sides)
