"""MAE rule (COMMON contract "MAE"): candles before the exit give their adverse extreme; the exit
candle gives the fill on a stop exit and its adverse extreme on every other exit."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from quantbot.backtest.engine.simulate import simulate
from quantbot.backtest.engine.windows import prepare_windows

from .reference import MIN, make_candles, ref_trade, ref_window

ANCHOR = (0, 100.0, 100.0, 100.0, 100.0)


def trade(policy, rows, side=1, horizon_min=5):
    candles = make_candles({"A": [ANCHOR, *rows]})
    w = prepare_windows(candles, np.array([0]), np.array([0]), horizon_min * MIN,
                        side=np.array([side], np.int8))
    cols = simulate(policy, candles, w).columns()
    got = {k: (v.to_pylist() if isinstance(v, pa.Array) else v.tolist())[0] for k, v in cols.items()}
    ref = ref_trade(policy, candles, ref_window(candles, 0, 0, horizon_min * MIN, side=side))
    assert got["max_adverse_excursion_bps"] == pytest.approx(ref["max_adverse_excursion_bps"])
    return got


def flat(minutes, px=100.0):
    return [(t, px, px, px, px) for t in minutes]


STOP5 = {"kind": "fixed_stop", "stop_pct": 0.05}


def test_a_5pct_stop_crossed_inside_a_deep_candle_has_the_fill_as_mae():
    # the case: low 92.63 would say -737 bps; the position was closed at 95
    t = trade(STOP5, [(1, 100, 101, 92.63, 93), *flat(range(2, 6))])
    assert (t["exit_reason"], t["exit_px"]) == ("stop_loss", 95.0)
    assert t["max_adverse_excursion_bps"] == pytest.approx(-500.0)


def test_a_stop_gapping_through_has_the_open_fill_as_mae():
    t = trade(STOP5, [(1, 93, 94, 90, 91), *flat(range(2, 6))])
    assert (t["exit_px"], t["max_adverse_excursion_bps"]) == (93.0, pytest.approx(-700.0))


def test_earlier_candles_deeper_than_the_fill_still_count():
    t = trade({"kind": "trailing_stop", "activation_pct": 0.1, "trail_pct": 0.1},
              [(1, 100, 101, 96, 97), (2, 97, 115, 97, 114), (3, 114, 114, 100, 101), *flat(range(4, 6))])
    assert (t["exit_reason"], t["exit_px"]) == ("trailing_stop", pytest.approx(103.5))
    assert t["max_adverse_excursion_bps"] == pytest.approx(-400.0)  # minute 1's low, not the fill


def test_hard_stop_exit_candle_gives_its_fill():
    t = trade({"kind": "trailing_stop", "trail_pct": 0.5, "hard_stop_pct": 0.1},
              [(1, 100, 100, 50, 60), *flat(range(2, 6))])
    assert (t["exit_reason"], t["max_adverse_excursion_bps"]) == ("hard_stop", pytest.approx(-1000.0))


def test_non_stop_exits_hold_through_the_exit_candle():
    tp = trade({"kind": "fixed_stop", "take_profit_pct": 0.2}, [(1, 100, 125, 85, 120), *flat(range(2, 6))])
    assert (tp["exit_reason"], tp["max_adverse_excursion_bps"]) == ("take_profit", pytest.approx(-1500.0))
    hold = trade({"kind": "time_stop", "max_hold_ms": MIN}, [(1, 100, 101, 80, 99), *flat(range(2, 6))])
    assert (hold["exit_reason"], hold["max_adverse_excursion_bps"]) == ("time_stop", pytest.approx(-2000.0))
    end = trade({"kind": "fixed_stop"}, [*flat(range(1, 5)), (5, 100, 100, 70, 90)])
    assert (end["exit_reason"], end["max_adverse_excursion_bps"]) == ("end_of_data", pytest.approx(-3000.0))
    ladder = trade({"kind": "ladder", "levels": [{"multiple": 1.5, "fraction": 1.0}]},
                   [(1, 100, 160, 60, 150), *flat(range(2, 6))])
    assert (ladder["exit_reason"], ladder["max_adverse_excursion_bps"]) == (
        "ladder_complete", pytest.approx(-4000.0))


def test_short_stop_exit_gives_its_fill_and_other_exits_the_high():
    t = trade(STOP5, [(1, 100, 110, 99, 108), *flat(range(2, 6))], side=-1)
    assert (t["exit_px"], t["max_adverse_excursion_bps"]) == (105.0, pytest.approx(-500.0))
    t = trade({"kind": "fixed_stop", "take_profit_pct": 0.2}, [(1, 100, 112, 75, 80), *flat(range(2, 6))], side=-1)
    assert (t["exit_reason"], t["max_adverse_excursion_bps"]) == ("take_profit", pytest.approx(-1200.0))


def test_mae_is_zero_when_price_only_moves_in_favour():
    t = trade(STOP5, [(1, 100, 130, 100, 120), *flat(range(2, 6), 120.0)])
    assert t["max_adverse_excursion_bps"] == 0.0
