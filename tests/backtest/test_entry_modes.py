"""entry='close' vs 'next-open' (COMMON contract "Entry"): anchor, price, scanned rows, features."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantbot.backtest.engine.features import compute_features
from quantbot.backtest.engine.price_paths import compute_paths
from quantbot.backtest.engine.simulate import simulate
from quantbot.backtest.engine.windows import STATUS_OK, prepare_windows

from .reference import MIN, make_candles, random_candle_set, ref_paths, ref_window

ROWS = [(0, 90, 91, 89, 90), (1, 100, 130, 70, 110), (2, 110, 112, 108, 111), (3, 111, 111, 111, 111),
        (4, 111, 111, 111, 111)]


def window(entry, alert_min, rows=ROWS, horizon_min=2, side=1):
    candles = make_candles({"A": rows})
    w = prepare_windows(candles, np.array([0]), np.array([int(alert_min * MIN)]), horizon_min * MIN,
                        entry=entry, side=np.array([side], np.int8))
    return candles, w


def test_next_open_anchor_is_strictly_after_the_alert_and_its_open_is_the_entry():
    _, close = window("close", 1)
    _, nxt = window("next-open", 1)
    assert (close.anchor[0], close.p0[0], close.start[0], close.end[0]) == (1, 110.0, 2, 4)
    assert (nxt.anchor[0], nxt.p0[0], nxt.start[0], nxt.end[0]) == (2, 110.0, 2, 5)
    _, between = window("next-open", 0.5)  # a candle opening after the alert: that one
    assert (between.anchor[0], between.p0[0], between.anchor_ts_ms[0]) == (1, 100.0, MIN)
    assert close.entry == "close" and nxt.entry == "next-open"


def test_next_open_scans_the_entry_candle_itself():
    candles, w = window("next-open", 0.5)
    t = simulate({"kind": "fixed_stop", "stop_pct": 0.2}, candles, w)
    # E = open 100 of minute 1; its low 70 happens after the fill: stopped at 80 in that candle
    assert (t.exit_ts_ms[0], t.exit_px[0], t.entry_ts_ms[0], t.time_exposed_ms[0]) == (MIN, 80.0, MIN, 0)
    m = compute_paths(candles, w)
    assert m.peak_multiple[0] == pytest.approx(1.3) and m.dd_bps[0] == pytest.approx(-3000.0)
    short = compute_paths(*window("next-open", 0.5, side=-1))
    assert short.peak_multiple[0] == pytest.approx(100 / 70) and short.dd_bps[0] == pytest.approx(-3000.0)


def test_next_open_time_stop_counts_from_the_entry_candles_open():
    candles, w = window("next-open", 0.5, horizon_min=3)
    t = simulate({"kind": "time_stop", "max_hold_ms": MIN}, candles, w)
    assert (t.exit_ts_ms[0], t.exit_px[0]) == (2 * MIN, 111.0)


def test_next_open_without_a_later_candle_is_no_candles():
    _, w = window("next-open", 4)
    assert w.reasons() == ["no_candles"]
    _, w = window("close", 4, horizon_min=1)
    assert w.reasons() == ["missing_range"]


def test_features_with_next_open_windows():
    # pre-alert window [alert - 1 h, alert): minutes -30, -20, -10; the candle at the alert time
    # itself is neither pre-alert nor the anchor, which is the next candle (volume 50)
    rows = [(-30, 100, 100, 100, 100, 10.0), (-20, 100, 100, 100, 110, 10.0), (-10, 110, 110, 110, 99, 10.0),
            (0, 99, 99, 99, 99, 1000.0), (1, 99, 200, 99, 199, 50.0), (2, 199, 199, 199, 199, 1.0),
            (3, 199, 199, 199, 199, 1.0)]
    candles = make_candles({"A": rows})
    w = prepare_windows(candles, np.array([0, 0]), np.array([0, 2 * MIN]), 2 * MIN, entry="next-open")
    assert w.status[0] == STATUS_OK and w.anchor[0] == 4
    paths = compute_paths(candles, w)
    feats = compute_features(candles, w, np.array(["c", "c"]), paths)
    assert feats["volume_spike"].to_pylist()[0] == pytest.approx(50.0 / 10.0)
    assert feats["vol_pre_alert"].to_pylist()[0] == pytest.approx(np.std(np.log([1.1, 0.9])))
    # the first call's 2x candle (minute 1, high 200 >= 2 * 99) opened before the second alert
    assert paths.hit_2x.tolist()[0] and feats["caller_prior_hit_2x_rate"].to_pylist() == [None, 1.0]


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), horizon=st.integers(1, 30), move=st.sampled_from([0.05, 0.1, 0.25]),
       entry=st.sampled_from(["close", "next-open"]))
def test_windows_and_paths_match_reference_both_entries_both_sides(seed, horizon, move, entry):
    rng = np.random.default_rng(seed)
    candles = random_candle_set(rng)
    n = 12
    mint_idx = rng.integers(-1, len(candles.mints), size=n)
    alert_ts = rng.integers(-5 * MIN, 45 * MIN, size=n)
    sides = rng.choice(np.array([1, -1], np.int8), size=n)
    w = prepare_windows(candles, mint_idx, alert_ts, horizon * MIN, entry=entry, side=sides)
    m = compute_paths(candles, w, activity_move=move)
    cols = {k: (v.to_pylist() if isinstance(v, pa.Array) else v.tolist()) for k, v in m.columns().items()}
    row = 0
    for k in range(n):
        ref = ref_window(candles, int(mint_idx[k]), int(alert_ts[k]), horizon * MIN, entry, int(sides[k]))
        assert (w.reasons()[k], int(w.anchor[k]), int(w.anchor_ts_ms[k])) == (
            ref["reason"], ref["anchor"], ref["anchor_ts"])
        if ref["reason"] is not None:
            continue
        assert (w.start[k], w.end[k], w.p0[k]) == (ref["start"], ref["end"], ref["p0"])
        assert {name: values[row] for name, values in cols.items()} == ref_paths(candles, ref, int(alert_ts[k]), move)
        row += 1
    assert row == len(m.alert_idx)
