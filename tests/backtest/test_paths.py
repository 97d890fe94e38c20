"""Truth layer: golden numbers on hand-made candles and a cross-check against the reference."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantbot.backtest.data.candle_set import NO_TS
from quantbot.backtest.engine.price_paths import compute_paths
from quantbot.backtest.engine.windows import STATUS_OK, prepare_windows

from .reference import MIN, make_candles, random_candle_set, ref_paths, ref_window


def test_golden_path_metrics():
    # anchor at minute 0 closes at 100; its own high (500) must be ignored (look-ahead)
    candles = make_candles({"A": [
        (-1, 100, 100, 100, 100),   # before the alert: not the anchor
        (0, 90, 500, 10, 100),
        (1, 100, 105, 95, 100),     # no activity yet (+-10 %)
        (2, 100, 109, 85, 105),     # activity: low 85 <= 90
        (4, 110, 200, 70, 190),     # 2x exactly at 200; min low up to here 70
        (5, 190, 350, 60, 300),     # 3x, not 4x
        (7, 300, 310, 50, 300),     # later low 50: counts in dd, not in dd_to_2x
        (9, 300, 999, 300, 300),    # beyond horizon (8 min): ignored
    ]})
    w = prepare_windows(candles, np.array([0]), np.array([-30_000]), 8 * MIN)
    assert w.status[0] == STATUS_OK
    m = compute_paths(candles, w)
    assert m.p0[0] == 100.0
    assert m.hit_2x[0] and m.t_2x_ms[0] == 4 * MIN
    assert m.hit_3x[0] and m.t_3x_ms[0] == 5 * MIN
    assert not m.hit_4x[0] and m.t_4x_ms[0] == NO_TS  # every int64 but this is a time
    assert m.dd_bps[0] == -5000.0
    assert m.dd_to_2x_bps[0] == pytest.approx(-3000.0)
    assert m.alert_to_activity_ms[0] == 2 * MIN + 30_000  # from the alert, not the anchor
    assert m.peak_multiple[0] == 3.5
    cols = m.columns()
    assert cols["t_4x_ms"].null_count == 1 and cols["t_2x_ms"].to_pylist() == [4 * MIN]
    assert cols["dd_to_2x_bps"].to_pylist() == [pytest.approx(-3000.0)]


def test_nulls_when_nothing_happens_and_dd_is_capped_at_zero():
    candles = make_candles({"A": [(0, 100, 100, 100, 100), (1, 101, 105, 101, 104), (2, 104, 106, 100, 100)]})
    m = compute_paths(candles, prepare_windows(candles, np.array([0]), np.array([0]), 2 * MIN))
    assert m.dd_bps[0] == 0.0
    assert not m.hit_2x[0] and math.isnan(m.dd_to_2x_bps[0])
    assert m.alert_to_activity_ms[0] == -1
    cols = m.columns()
    assert cols["alert_to_activity_ms"].to_pylist() == [None]
    assert cols["dd_to_2x_bps"].to_pylist() == [None]
    assert isinstance(cols["t_2x_ms"], pa.Array) and cols["t_2x_ms"].type == pa.int64()
    assert m.peak_multiple[0] == 1.06


def test_activity_move_parameter_and_peak_below_one():
    candles = make_candles({"A": [(0, 100, 100, 100, 100), (1, 99, 99, 94, 95), (2, 95, 96, 90, 92)]})
    w = prepare_windows(candles, np.array([0]), np.array([0]), 2 * MIN)
    assert compute_paths(candles, w, activity_move=0.05).alert_to_activity_ms[0] == MIN
    assert compute_paths(candles, w).alert_to_activity_ms[0] == 2 * MIN  # low 90 <= 100 * 0.9
    assert compute_paths(candles, w).peak_multiple[0] == 0.99


def test_only_eligible_alerts_in_alert_order():
    candles = make_candles({"A": [(t, 100, 100, 100, 100) for t in range(5)]})
    w = prepare_windows(candles, np.array([0, -1, 0]), np.array([0, 0, 4 * MIN]), 2 * MIN)
    m = compute_paths(candles, w)
    assert list(m.alert_idx) == [0]
    assert set(m.columns()) == {"p0", "hit_2x", "t_2x_ms", "hit_3x", "t_3x_ms", "hit_4x", "t_4x_ms",
                                "dd_bps", "dd_to_2x_bps", "alert_to_activity_ms", "peak_multiple"}


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), horizon=st.integers(1, 30), move=st.sampled_from([0.05, 0.1, 0.25]))
def test_windows_and_paths_match_reference(seed, horizon, move):
    rng = np.random.default_rng(seed)
    candles = random_candle_set(rng)
    n = 12
    mint_idx = rng.integers(-1, len(candles.mints), size=n)
    alert_ts = rng.integers(-5 * MIN, 45 * MIN, size=n)
    w = prepare_windows(candles, mint_idx, alert_ts, horizon * MIN)
    m = compute_paths(candles, w, activity_move=move)
    cols = {k: (v.to_pylist() if isinstance(v, pa.Array) else v.tolist()) for k, v in m.columns().items()}
    row = 0
    for k in range(n):
        ref = ref_window(candles, int(mint_idx[k]), int(alert_ts[k]), horizon * MIN)
        assert (w.reasons()[k], int(w.anchor[k]), int(w.anchor_ts_ms[k])) == (
            ref["reason"], ref["anchor"], ref["anchor_ts"])
        if ref["reason"] is not None:
            continue
        assert (w.start[k], w.end[k]) == (ref["start"], ref["end"])
        expected = ref_paths(candles, ref, int(alert_ts[k]), move)
        got = {name: values[row] for name, values in cols.items()}
        assert got == expected
        row += 1
    assert row == len(m.alert_idx)
