"""Every exit rule on hand-made candles, plus a randomized cross-check against the reference."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantbot.backtest.engine.simulate import (
    EXIT_REASONS,
    encode_policies,
    iter_simulate,
    simulate,
    simulate_many,
)
from quantbot.backtest.engine.windows import prepare_windows

from .reference import MIN, make_candles, random_candle_set, ref_trade, ref_window

ANCHOR = (0, 100.0, 100.0, 100.0, 100.0)  # entry candle: E = 100 at minute 0


def run(policy, rows, horizon_min=5, **fees):
    """The single trade of an alert at minute 0 as a {column: python value} dict."""
    candles = make_candles({"A": [ANCHOR, *rows]})
    w = prepare_windows(candles, np.array([0]), np.array([0]), horizon_min * MIN)
    assert w.eligible[0]
    cols = simulate(policy, candles, w, **fees).columns()
    return {k: (v.to_pylist() if isinstance(v, pa.Array) else v.tolist())[0] for k, v in cols.items()}


def flat(minutes, px=100.0):
    return [(t, px, px, px, px) for t in minutes]


FIXED = {"kind": "fixed_stop", "stop_pct": 0.2, "take_profit_pct": 1.0}


def test_stop_and_target_in_one_candle_stop_wins():
    t = run(FIXED, [(1, 100, 250, 79, 150), *flat(range(2, 6))])
    assert (t["exit_reason"], t["exit_px"], t["exit_ts_ms"]) == ("stop_loss", 80.0, MIN)
    assert t["stop_out"] and t["realized_return_bps"] == pytest.approx(-2080.0)
    assert t["max_adverse_excursion_bps"] == pytest.approx(-2000.0)  # the fill, not the low 79
    assert t["tail_capture"] == pytest.approx(-2000.0 / 15000.0)  # peak over the whole window


def test_gap_through_stop_fills_at_open():
    t = run(FIXED, [(1, 70, 75, 60, 65), *flat(range(2, 6))])
    assert (t["exit_reason"], t["exit_px"]) == ("stop_loss", 70.0)


def test_take_profit_fills_at_level_even_after_gap_up():
    t = run(FIXED, [(1, 100, 150, 90, 140), (2, 250, 260, 240, 255), *flat(range(3, 6))])
    assert (t["exit_reason"], t["exit_px"], t["exit_ts_ms"]) == ("take_profit", 200.0, 2 * MIN)
    assert not t["stop_out"]
    assert t["realized_return_bps"] == pytest.approx(10000.0 - 80.0)
    assert t["tail_capture"] == pytest.approx(10000.0 / 16000.0)
    assert t["max_adverse_excursion_bps"] == pytest.approx(-1000.0)  # lows up to the exit candle


def test_flat_price_costs_exactly_80_bps_and_ends_at_horizon():
    t = run({"kind": "fixed_stop", "stop_pct": 0.2}, flat(range(1, 9)), horizon_min=5)
    assert t["exit_reason"] == "end_of_data" and t["exit_ts_ms"] == 5 * MIN
    assert t["realized_return_bps"] == -80.0
    assert t["max_adverse_excursion_bps"] == 0.0 and t["tail_capture"] is None
    assert t["time_exposed_ms"] == 5 * MIN and t["entry_ts_ms"] == 0 and t["entry_px"] == 100.0
    t = run({"kind": "fixed_stop"}, flat(range(1, 6)), taker_fee_bps=10, slippage_bps=5)
    assert t["realized_return_bps"] == -30.0


def test_candles_after_the_horizon_are_ignored():
    t = run(FIXED, [(1, 100, 110, 95, 105), (3, 105, 106, 100, 103), (4, 103, 104, 10, 20)], horizon_min=3)
    assert (t["exit_reason"], t["exit_px"], t["exit_ts_ms"]) == ("end_of_data", 103.0, 3 * MIN)
    assert t["max_adverse_excursion_bps"] == pytest.approx(-500.0)


def test_holes_inside_the_window():
    t = run(FIXED, [(1, 100, 101, 99, 100), (4, 100, 101, 60, 70), (5, 70, 70, 70, 70)])
    assert (t["exit_reason"], t["exit_ts_ms"], t["time_exposed_ms"]) == ("stop_loss", 4 * MIN, 4 * MIN)


def test_zero_volume_candles_do_not_matter_for_trades():
    t = run(FIXED, [(1, 100, 101, 99, 100, 0.0), (2, 100, 201, 99, 200, 0.0), *flat(range(3, 6))])
    assert t["exit_reason"] == "take_profit"


TRAIL = {"kind": "trailing_stop", "activation_pct": 0.2, "trail_pct": 0.1}


def test_trailing_activation_candle_cannot_exit_by_trail():
    rows = [
        (1, 100, 130, 100, 125),  # activates (130 >= 120); low 100 <= 117 but the trail was off
        (2, 125, 131, 118, 125),  # level 130 * 0.9 = 117 < 118: holds, peak -> 131
        (3, 120, 125, 110, 112),  # level 131 * 0.9 = 117.9: exits at min(open 120, 117.9)
        *flat(range(4, 6)),
    ]
    t = run(TRAIL, rows)
    assert t["exit_reason"] == "trailing_stop" and t["exit_ts_ms"] == 3 * MIN
    assert t["exit_px"] == pytest.approx(131 * 0.9) and t["stop_out"]
    assert t["tail_capture"] == pytest.approx((131 * 0.9 - 100) / 31.0)  # gross / peak bps


def test_trailing_gap_below_trail_fills_at_open():
    t = run(TRAIL, [(1, 100, 130, 100, 125), (2, 100, 101, 90, 95), *flat(range(3, 6))])
    assert (t["exit_reason"], t["exit_px"]) == ("trailing_stop", 100.0)


def test_trailing_without_activation_is_active_from_first_candle_with_peak_entry():
    t = run({"kind": "trailing_stop", "trail_pct": 0.1}, [(1, 100, 100, 90, 95), *flat(range(2, 6))])
    assert (t["exit_reason"], t["exit_px"], t["exit_ts_ms"]) == ("trailing_stop", 90.0, MIN)


def test_trailing_never_activated_runs_to_end():
    t = run(TRAIL, [(1, 100, 119, 50, 60), *flat(range(2, 6), 60.0)])
    assert t["exit_reason"] == "end_of_data" and t["exit_px"] == 60.0


def test_hard_stop_is_checked_before_trail():
    policy = {"kind": "trailing_stop", "trail_pct": 0.1, "hard_stop_pct": 0.2}
    t = run(policy, [(1, 100, 100, 70, 75), *flat(range(2, 6))])
    assert (t["exit_reason"], t["exit_px"], t["stop_out"]) == ("hard_stop", 80.0, True)


HOLD = {"kind": "time_stop", "max_hold_ms": 3 * MIN, "take_profit_pct": 0.5}


def test_time_stop_at_close_of_first_candle_past_max_hold_with_holes():
    t = run(HOLD, [(1, 100, 101, 99, 100), (2, 100, 101, 99, 100), (4, 100, 101, 96, 97), (5, 97, 97, 97, 97)])
    assert (t["exit_reason"], t["exit_px"], t["exit_ts_ms"]) == ("time_stop", 97.0, 4 * MIN)
    assert not t["stop_out"] and t["time_exposed_ms"] == 4 * MIN


def test_time_stop_beats_take_profit_in_the_same_candle():
    t = run(HOLD, [(1, 100, 101, 99, 100), (3, 100, 170, 99, 160), *flat([4, 5])])
    assert (t["exit_reason"], t["exit_px"]) == ("time_stop", 160.0)
    t = run(HOLD, [(1, 100, 150, 99, 100), *flat(range(2, 6))])
    assert (t["exit_reason"], t["exit_px"]) == ("take_profit", 150.0)


def test_time_stop_accepts_duration_strings():
    t = run({"kind": "time_stop", "maxHoldMs": "2m"}, flat(range(1, 6)))
    assert (t["exit_reason"], t["exit_ts_ms"]) == ("time_stop", 2 * MIN)


LADDER = {"kind": "ladder", "stop_pct": 0.5,
          "levels": [{"multiple": 4, "fraction": 0.5}, {"multiple": 2, "fraction": 0.25},
                     {"multiple": 3, "fraction": 0.25}]}


def test_ladder_several_levels_in_one_candle_then_stop_closes_the_rest():
    t = run(LADDER, [(1, 100, 310, 95, 250), (2, 45, 50, 40, 42), *flat(range(3, 6))])
    assert (t["exit_reason"], t["exit_ts_ms"], t["stop_out"]) == ("stop_loss", 2 * MIN, True)
    assert t["exit_px"] == pytest.approx(0.25 * 200 + 0.25 * 300 + 0.5 * 45)
    assert t["realized_return_bps"] == pytest.approx(2500 + 5000 + 0.5 * -5500 - 80)


def test_ladder_complete_at_last_fill_at_the_levels():
    t = run(LADDER, [(1, 100, 310, 95, 250), (2, 500, 600, 450, 550), *flat(range(3, 6))])
    assert (t["exit_reason"], t["exit_ts_ms"]) == ("ladder_complete", 2 * MIN)
    assert t["exit_px"] == pytest.approx(0.25 * 200 + 0.25 * 300 + 0.5 * 400)
    assert t["realized_return_bps"] == pytest.approx(2500 + 5000 + 15000 - 80)
    assert t["tail_capture"] == pytest.approx(22500 / 50000)


def test_ladder_fractions_that_sum_to_one_up_to_rounding_complete():
    policy = {"kind": "ladder", "levels": [{"multiple": 1.5, "fraction": 0.1}] * 10}
    assert sum([0.1] * 10) != 1.0
    t = run(policy, [(1, 100, 160, 95, 150), *flat(range(2, 6))])
    assert t["exit_reason"] == "ladder_complete" and t["exit_px"] == pytest.approx(150.0)


def test_ladder_remainder_closes_at_last_close():
    policy = {"kind": "ladder", "levels": [{"multiple": 2, "fraction": 0.5}]}
    t = run(policy, [(1, 100, 210, 95, 180), *flat(range(2, 6), 120.0)])
    assert (t["exit_reason"], t["exit_ts_ms"]) == ("end_of_data", 5 * MIN)
    assert t["exit_px"] == pytest.approx(160.0) and t["realized_return_bps"] == pytest.approx(6000 - 80)


def test_combo_earliest_exit_wins():
    combo = {"kind": "combo", "policies": [{"kind": "fixed_stop", "stop_pct": 0.2},
                                           {"kind": "time_stop", "max_hold_ms": 2 * MIN}]}
    t = run(combo, [(1, 100, 101, 99, 100), (2, 100, 101, 95, 96), (3, 96, 96, 50, 60), *flat([4, 5])])
    assert (t["exit_reason"], t["exit_px"], t["exit_ts_ms"]) == ("time_stop", 96.0, 2 * MIN)
    t = run(combo, [(1, 100, 101, 70, 75), *flat(range(2, 6))])
    assert (t["exit_reason"], t["exit_ts_ms"]) == ("stop_loss", MIN)


def test_combo_ties_go_to_the_first_listed():
    tp = {"kind": "fixed_stop", "take_profit_pct": 0.5}
    hold = {"kind": "time_stop", "max_hold_ms": MIN}
    rows = [(1, 100, 160, 99, 155), *flat(range(2, 6))]
    assert run({"kind": "combo", "policies": [tp, hold]}, rows)["exit_reason"] == "take_profit"
    assert run({"kind": "combo", "policies": [hold, tp]}, rows)["exit_reason"] == "time_stop"
    nested = {"kind": "combo", "policies": [{"kind": "combo", "policies": [hold]}, tp]}
    assert run(nested, rows)["exit_reason"] == "time_stop"


def test_simulate_many_equals_simulate_and_iter_batches():
    rng = np.random.default_rng(3)
    candles = random_candle_set(rng, n_mints=6)
    w = prepare_windows(candles, np.arange(6), np.zeros(6, dtype=np.int64), 5 * MIN)
    policies = [FIXED, TRAIL, HOLD, LADDER, {"kind": "combo", "policies": [TRAIL, LADDER]}]
    many = simulate_many(policies, candles, w)
    batched = [t for _, t in iter_simulate(policies, candles, w, batch_size=2)]
    for p, a, b in zip(policies, many, batched):
        one = simulate(p, candles, w)
        for name in one.__dataclass_fields__:
            np.testing.assert_array_equal(getattr(one, name), getattr(a, name))
            np.testing.assert_array_equal(getattr(one, name), getattr(b, name))
    assert encode_policies(policies).offsets.tolist() == [0, 1, 2, 3, 4, 6]


def test_no_eligible_alerts_gives_empty_trades():
    candles = make_candles({"A": flat(range(3))})
    w = prepare_windows(candles, np.array([-1]), np.array([0]), 5 * MIN)
    t = simulate(FIXED, candles, w)
    assert len(t) == 0 and set(t.columns()) >= {"exit_reason", "tail_capture"}


# --- randomized cross-check against tests/backtest/reference.py ---------------------------

_frac = st.sampled_from([0.0, 0.05, 0.1, 0.2, 0.25, 0.5])
_tp = st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.0, 2.0])
_fixed = st.builds(lambda sl, tp: {"kind": "fixed_stop", "stop_pct": sl, "take_profit_pct": tp}, _frac, _tp)
_time = st.builds(lambda h, tp: {"kind": "time_stop", "max_hold_ms": h * MIN, "take_profit_pct": tp},
                  st.integers(1, 15), _tp)
_trail = st.builds(lambda a, t, hs: {"kind": "trailing_stop", "activation_pct": a, "trail_pct": t,
                                     "hard_stop_pct": hs},
                   st.sampled_from([0.0, 0.1, 0.2, 0.5]), st.sampled_from([0.05, 0.1, 0.2, 0.5]), _frac)


def _ladder_policy(levels, sl):
    kept, total = [], 0.0
    for multiple, fraction in levels:
        if total + fraction <= 1.0:
            kept.append({"multiple": multiple, "fraction": fraction})
            total += fraction
    return {"kind": "ladder", "levels": kept or [{"multiple": 2.0, "fraction": 1.0}], "stop_pct": sl}


_ladder = st.builds(_ladder_policy, st.lists(st.tuples(st.sampled_from([1.1, 1.2, 1.5, 2.0, 3.0]),
                                                       st.sampled_from([0.1, 0.25, 0.3, 0.5, 1.0])),
                                             min_size=1, max_size=4), _frac)
_single = st.one_of(_fixed, _time, _trail, _ladder)
_policy = st.one_of(_single, st.builds(lambda ps: {"kind": "combo", "policies": ps},
                                       st.lists(_single, min_size=1, max_size=3)))


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), horizon=st.integers(1, 25), policy=_policy)
def test_engine_matches_reference(seed, horizon, policy):
    rng = np.random.default_rng(seed)
    candles = random_candle_set(rng, n_mints=4)
    alert_ts = rng.integers(-2 * MIN, 30 * MIN, size=20)
    check_against_reference(policy, candles, alert_ts, horizon, rng)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), horizon=st.integers(32, 200), policy=_policy)
def test_engine_matches_reference_on_long_quiet_windows(seed, horizon, policy):
    """Windows long enough for the 32-candle ScanIndex skips, with calm stretches."""
    rng = np.random.default_rng(seed)
    candles = random_candle_set(rng, n_mints=3, max_candles=300, step=3)
    alert_ts = rng.integers(-2 * MIN, 100 * MIN, size=8)
    check_against_reference(policy, candles, alert_ts, horizon, rng)


def check_against_reference(policy, candles, alert_ts, horizon, rng):
    n = len(alert_ts)
    mint_idx = rng.integers(0, len(candles.mints), size=n)
    w = prepare_windows(candles, mint_idx, alert_ts, horizon * MIN)
    trades = simulate(policy, candles, w)
    cols = {k: (v.to_pylist() if isinstance(v, pa.Array) else v.tolist()) for k, v in trades.columns().items()}
    for row, k in enumerate(trades.alert_idx):
        ref = ref_trade(policy, candles, ref_window(candles, int(mint_idx[k]), int(alert_ts[k]), horizon * MIN))
        got = {name: values[row] for name, values in cols.items()}
        for name, value in got.items():
            if isinstance(value, float):
                assert value == pytest.approx(ref[name], rel=1e-12, abs=1e-9), name
            else:
                assert value == ref[name], name
        # invariants
        assert got["max_adverse_excursion_bps"] <= 0.0 and got["time_exposed_ms"] >= 0
        assert got["tail_capture"] is None or got["tail_capture"] <= 1.0
        assert got["stop_out"] == (got["exit_reason"] in ("stop_loss", "hard_stop", "trailing_stop"))
        assert got["exit_reason"] in EXIT_REASONS
        assert trades.gross_return_bps[row] - trades.realized_return_bps[row] == pytest.approx(80.0)
