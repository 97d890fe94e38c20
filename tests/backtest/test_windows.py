"""Anchor rule, window bounds by time, and the exclusion order."""

from __future__ import annotations

import numpy as np
import pytest

from quantbot.backtest.engine.windows import (
    EXCLUSION_REASONS,
    INVALID_PRICE,
    MISSING_RANGE,
    NO_CANDLES,
    STATUS_OK,
    TOO_NEW,
    prepare_windows,
)

from .reference import MIN, make_candles


def flat(minutes, px=100.0):
    return [(t, px, px, px, px) for t in minutes]


def windows_for(candles, mints, alert_minutes, horizon_min=5):
    idx = candles.mint_index(mints)
    return prepare_windows(candles, idx, np.array([int(a * MIN) for a in alert_minutes]), horizon_min * MIN)


def test_anchor_is_first_candle_at_or_after_alert_and_window_is_by_time():
    candles = make_candles({"A": flat([0, 1, 2, 4, 5, 7, 9, 12]), "B": flat(range(10))})
    w = windows_for(candles, ["A", "A"], [0.5, 2])
    assert list(w.status) == [STATUS_OK, STATUS_OK]
    # alert 0.5 min -> anchor at minute 1 (row 1); window (1, 6] -> rows 2..4 (minutes 2, 4, 5)
    assert (w.anchor[0], w.start[0], w.end[0], w.anchor_ts_ms[0]) == (1, 2, 5, 1 * MIN)
    # alert exactly at a candle -> that candle; window (2, 7] includes minute 7 (inclusive end)
    assert (w.anchor[1], w.start[1], w.end[1]) == (2, 3, 6)
    assert w.p0[0] == 100.0
    assert list(w.eligible_idx) == [0, 1]


def test_no_candles_unknown_mint_and_nothing_after_alert():
    candles = make_candles({"A": flat(range(6))})
    w = windows_for(candles, ["ZZZ", "A"], [0, 6])
    assert list(w.status) == [NO_CANDLES, NO_CANDLES]
    assert w.reasons() == ["no_candles", "no_candles"]
    assert w.anchor[0] == -1 and np.isnan(w.p0[1])


def test_too_new_uses_first_ts_of_the_whole_source():
    candles = make_candles({"A": flat(range(3, 20))}, first_ts_ms={"A": 3 * MIN})
    w = windows_for(candles, ["A", "A"], [2, 3])
    assert list(w.status) == [TOO_NEW, STATUS_OK]
    # the loaded slice may start later than the mint's real first candle
    sliced = make_candles({"A": flat(range(3, 20))}, first_ts_ms={"A": 0})
    assert windows_for(sliced, ["A"], [2]).status[0] == STATUS_OK


@pytest.mark.parametrize("p0", [0.0, -1.0, float("nan"), float("inf")])
def test_invalid_price(p0):
    rows = flat(range(10))
    rows[2] = (2, 100.0, 100.0, 100.0, p0)
    w = windows_for(make_candles({"A": rows}), ["A"], [2])
    assert w.status[0] == INVALID_PRICE


def test_missing_range_when_data_ends_before_horizon_or_window_empty():
    candles = make_candles({"A": flat([0, 1, 2, 3, 4]), "B": flat([0, 10])})
    w = windows_for(candles, ["A", "A", "B"], [0, 0, 0], horizon_min=4)
    assert w.status[0] == STATUS_OK  # minute 4 == anchor + horizon is enough
    w = windows_for(candles, ["A", "B"], [0, 0], horizon_min=5)
    # A ends at minute 4 < 5; B has a candle after the horizon but none inside the window
    assert list(w.status) == [MISSING_RANGE, MISSING_RANGE]
    assert EXCLUSION_REASONS[MISSING_RANGE] == "missing_range"


def test_exclusion_order_first_match_wins():
    rows = flat([5, 6])
    rows[0] = (5, 1.0, 1.0, 1.0, 0.0)  # invalid p0 and missing range and too new
    w = windows_for(make_candles({"A": rows}), ["A", "A"], [4, 5], horizon_min=10)
    assert list(w.status) == [TOO_NEW, INVALID_PRICE]


def test_holes_inside_window_are_allowed():
    candles = make_candles({"A": flat([0, 1, 4, 5])})
    w = windows_for(candles, ["A"], [0], horizon_min=5)
    assert w.status[0] == STATUS_OK and (w.start[0], w.end[0]) == (1, 4)


def test_input_validation():
    candles = make_candles({"A": flat(range(3))})
    with pytest.raises(ValueError):
        prepare_windows(candles, np.array([0]), np.array([0]), 0)
    with pytest.raises(ValueError):
        prepare_windows(candles, np.array([3]), np.array([0]), MIN)
    empty = prepare_windows(candles, np.zeros(0, np.int64), np.zeros(0, np.int64), MIN)
    assert len(empty.status) == 0
