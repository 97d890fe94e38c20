"""late_entry and invalid_candles exclusions: the order, the cheap count, and their errors rows."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantbot.backtest.engine.error_rows import coverage_error_rows, exclusion_counts
from quantbot.backtest.engine.price_paths import compute_paths
from quantbot.backtest.engine.simulate import simulate
from quantbot.backtest.engine.windows import (
    EXCLUSION_REASONS,
    INVALID_CANDLES,
    LATE_ENTRY,
    STATUS_OK,
    TOO_NEW,
    impossible_in,
    prepare_windows,
    usual_gap_ms,
)

from .reference import MIN, corrupt, make_candles, random_candle_set, ref_window

DAY = 1440  # minutes


def flat(minutes, px=100.0):
    return [(t, px, px, px, px) for t in minutes]


def windows(rows, alert_minutes, horizon_min=5, **kw):
    candles = make_candles({"A": rows})
    n = len(alert_minutes)
    w = prepare_windows(candles, np.zeros(n, np.int64), np.array([int(a * MIN) for a in alert_minutes]),
                        horizon_min * MIN, **kw)
    return candles, w


def test_reasons_in_the_contract_order():
    assert list(EXCLUSION_REASONS.values()) == ["no_candles", "too_new", "late_entry", "invalid_price",
                                                "invalid_candles", "missing_range"]


def test_late_entry_beyond_the_limit_only():
    rows = flat([0, 1, 2, *range(10, 30)])
    _, w = windows(rows, [2, 2.5, 5, 6], horizon_min=10, max_entry_delay_ms=4 * MIN)
    # anchors: minute 2 (0 late), 10 (7.5 min late), 10 (5 min late), 10 (4 min: at the limit)
    assert w.reasons()[:3] == [None, "late_entry", "late_entry"] and w.status[3] == STATUS_OK
    for no_limit in (None, 0, -5):
        assert windows(rows, [2.5], 10, max_entry_delay_ms=no_limit)[1].status[0] == STATUS_OK
    assert w.max_entry_delay_ms == 4 * MIN


def test_too_new_beats_late_entry_and_late_entry_beats_invalid_price():
    rows = flat(range(5, 20))
    rows[0] = (5, 100.0, 100.0, 100.0, 0.0)
    candles = make_candles({"A": rows}, first_ts_ms={"A": 4 * MIN})
    w = prepare_windows(candles, np.zeros(2, np.int64), np.array([3 * MIN, 4 * MIN]), 5 * MIN,
                        max_entry_delay_ms=MIN // 2)
    assert list(w.status) == [TOO_NEW, LATE_ENTRY]


BAD = {
    "zero close": (3, 100.0, 100.0, 100.0, 0.0),
    "negative low": (3, 100.0, 100.0, -1.0, 100.0),
    "infinite high": (3, 100.0, math.inf, 100.0, 100.0),
    "nan open": (3, math.nan, 100.0, 100.0, 100.0),
    "high below low": (3, 100.0, 99.0, 101.0, 100.0),
    "open above high": (3, 102.0, 101.0, 99.0, 100.0),
    "close below low": (3, 100.0, 101.0, 99.0, 98.0),
}


@pytest.mark.parametrize("bad", list(BAD))
@pytest.mark.parametrize("entry", ["close", "next-open"])
def test_an_impossible_candle_inside_the_window_excludes_the_alert_never_traded(bad, entry):
    rows = flat(range(12))
    rows[3] = BAD[bad]
    candles, w = windows(rows, [0, 3.5], entry=entry)
    assert w.reasons() == ["invalid_candles", None]  # the second window starts after it
    assert simulate({"kind": "fixed_stop", "stop_pct": 0.1}, candles, w).alert_idx.tolist() == [1]
    assert compute_paths(candles, w).alert_idx.tolist() == [1]


def test_the_anchor_candle_is_checked_and_candles_outside_the_window_are_not():
    rows = flat(range(12))
    rows[0] = (0, 100.0, 99.0, 101.0, 100.0)  # before the alert's anchor
    rows[2] = (2, 100.0, 99.0, 101.0, 100.0)  # the anchor of the alert at minute 2 (close is fine)
    rows[10] = (10, 100.0, 99.0, 101.0, 100.0)  # after the horizon of the alert at 3
    _, w = windows(rows, [2, 3], horizon_min=5)
    assert w.reasons() == ["invalid_candles", None]


def test_invalid_price_comes_before_invalid_candles():
    rows = flat(range(10))
    rows[2] = (2, 100.0, 100.0, 100.0, math.nan)
    assert windows(rows, [2])[1].reasons() == ["invalid_price"]
    assert windows(rows, [1.5], entry="next-open")[1].reasons() == ["invalid_candles"]  # E = open 100


def test_errors_rows_explain_late_entry_and_invalid_candles():
    rows = flat([0, 1, 2, 3, 4, 5, 6, 7, 100, 101, 102, 103, 104, 105])
    rows[4] = (4, 100.0, 99.0, 101.0, 100.0)
    rows[6] = (6, 100.0, 100.0, 100.0, 0.0)
    candles, w = windows(rows, [2, 30], max_entry_delay_ms=MIN)
    alerts = pa.table({"call_id": ["c1", "c2"], "mint": ["A", "A"]})
    errs = coverage_error_rows(alerts, w, candles)
    assert errs["message"] == ["invalid_candles", "late_entry"]
    bad, late = (json.loads(d) for d in errs["details"])
    assert bad["invalid_candles"] == 2
    assert bad["first_invalid"] == {"ts_ms": 4 * MIN, "open": 100.0, "high": 99.0, "low": 101.0, "close": 100.0}
    assert "2 impossible candle(s)" in bad["note"] and "1970-01-01T00:04:00.000Z" in bad["note"]
    assert (late["entry_delay_ms"], late["max_entry_delay_ms"]) == (70 * MIN, MIN)
    assert "70m after it" in late["note"] and "limit is 1m" in late["note"]
    assert exclusion_counts(w) == {"late_entry": 1, "invalid_candles": 1}
    assert impossible_in(candles, 0, len(rows)) == (2, 4)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), horizon=st.integers(1, 120), n_bad=st.integers(0, 6),
       entry=st.sampled_from(["close", "next-open"]), delay=st.sampled_from([None, MIN, 3 * MIN]))
def test_exclusions_match_the_reference(seed, horizon, n_bad, entry, delay):
    """The chunked impossible-candle count (whole 32-row chunks + edges) is exact."""
    rng = np.random.default_rng(seed)
    candles = corrupt(rng, random_candle_set(rng, n_mints=3, max_candles=200), n_bad)
    n = 16
    mint_idx = rng.integers(-1, 3, size=n)
    alert_ts = rng.integers(-5 * MIN, 150 * MIN, size=n)
    w = prepare_windows(candles, mint_idx, alert_ts, horizon * MIN, entry=entry, max_entry_delay_ms=delay)
    for k in range(n):
        ref = ref_window(candles, int(mint_idx[k]), int(alert_ts[k]), horizon * MIN, entry, 1, delay)
        assert w.reasons()[k] == ref["reason"]
        assert (int(w.anchor[k]), int(w.anchor_ts_ms[k])) == (ref["anchor"], ref["anchor_ts"])
        if ref["reason"] is None:
            assert (w.start[k], w.end[k], w.p0[k]) == (ref["start"], ref["end"], ref["p0"])
    assert w.status.dtype == np.int8 and set(np.unique(w.status)) <= {STATUS_OK, *EXCLUSION_REASONS}
    assert INVALID_CANDLES in EXCLUSION_REASONS


def _weekdays(n_weeks, skip=()):
    """Daily bars (minutes) on weekdays only, Monday first, minus the days in ``skip``."""
    return [w * 7 * DAY + d * DAY for w in range(n_weeks) for d in range(5)
            if w * 7 + d not in skip]


def _usual(rows, alert_minutes, horizon_min, entry="close"):
    candles, w = windows(flat(rows), alert_minutes, horizon_min, entry=entry)
    return usual_gap_ms(candles, w, DAY * MIN)


def test_the_usual_gap_of_weekday_bars_is_the_weekend():
    rows = _weekdays(30)
    fridays = [w * 7 * DAY + 4 * DAY + 600 for w in range(0, 28, 3)]  # Friday 10:00
    assert _usual(rows, fridays, 10 * DAY) == 3 * DAY * MIN
    assert _usual(list(range(0, 200 * DAY, DAY)), [5 * DAY, 50 * DAY], 20 * DAY) == DAY * MIN


def test_a_hole_seen_once_is_no_usual_gap_however_many_alerts_fall_in_it():
    rows = _weekdays(30, skip=range(70, 84))  # weeks 10 and 11 missing: a 17-day hole
    in_hole = [75 * DAY + k * 60 for k in range(40)]  # 40 alerts, one hole
    others = [w * 7 * DAY + 2 * DAY for w in (1, 4, 15, 20, 25)]
    gap = _usual(rows, in_hole + others, 10 * DAY)
    assert gap == 3 * DAY * MIN
    _, w = windows(flat(rows), in_hole + others, 10 * DAY, max_entry_delay_ms=gap + DAY * MIN)
    assert exclusion_counts(w) == {"late_entry": 40}


def test_nothing_located_means_one_bar():
    assert _usual([10, 11, 12], [50, 60], 5) == DAY * MIN  # alerts after the data
    assert _usual([], [1], 5) == DAY * MIN


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), horizon=st.integers(1, 60),
       interval=st.sampled_from([1, 2, 5]), entry=st.sampled_from(["close", "next-open"]))
def test_the_usual_gap_matches_the_reference(seed, horizon, interval, entry):
    """Random walks with holes and gaps, alerts anywhere (before, inside, after the data)."""
    from market_reference import usual_gap_ms as ref_usual_gap

    rng = np.random.default_rng(seed)
    candles = random_candle_set(rng, n_mints=3, max_candles=120)
    mint_idx = rng.integers(-1, 3, size=12)
    alert_ts = rng.integers(-5 * MIN, 150 * MIN, size=12)
    w = prepare_windows(candles, mint_idx, alert_ts, horizon * MIN, entry=entry)
    times = {m: candles.ts_ms[candles.offsets[j]:candles.offsets[j + 1]].tolist()
             for j, m in enumerate(candles.mints)}
    alerts = [(candles.mints[j], int(t)) for j, t in zip(mint_idx, alert_ts) if j >= 0]
    assert usual_gap_ms(candles, w, interval * MIN) == ref_usual_gap(
        times, alerts, horizon_ms=horizon * MIN, interval_ms=interval * MIN, entry=entry)
