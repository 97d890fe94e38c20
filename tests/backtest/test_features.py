"""Pre-alert features and caller priors: definitions, nulls and no look-ahead."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantbot.backtest.data.candle_set import NO_TS
from quantbot.backtest.engine.features import caller_priors, compute_features, pre_alert_features
from quantbot.backtest.engine.price_paths import compute_paths
from quantbot.backtest.engine.windows import prepare_windows

from .reference import MIN, make_candles, random_candle_set


def test_vol_pre_alert_and_volume_spike():
    closes = [100.0, 110.0, 99.0, 120.0]
    rows = [(t, c, c, c, c, v) for t, c, v in zip([-90, -50, -30, -10], closes, [5, 10, 20, 30])]
    rows += [(0, 120, 130, 110, 125, 120.0)] + [(t, 125, 125, 125, 125, 1.0) for t in range(1, 6)]
    candles = make_candles({"A": rows})
    w = prepare_windows(candles, np.array([0]), np.array([0]), 5 * MIN)
    vol, spike = pre_alert_features(candles, w)  # 1 h window: minutes -50, -30, -10 (not -90, not 0)
    expected = np.std(np.log([99.0 / 110.0, 120.0 / 99.0]))
    assert vol[0] == pytest.approx(expected)
    assert spike[0] == pytest.approx(120.0 / 20.0)
    vol2, spike2 = pre_alert_features(candles, w, pre_window_ms=120 * MIN)  # includes minute -90
    assert vol2[0] == pytest.approx(np.std(np.log([1.1, 0.9, 120.0 / 99.0])))
    assert spike2[0] == pytest.approx(120.0 / 16.25)


def test_nulls_without_enough_pre_alert_candles_or_zero_volume():
    rows = [(-10, 100, 100, 100, 100, 0.0), (-5, 100, 100, 100, 101, 0.0)]
    rows += [(t, 100, 100, 100, 100, 7.0) for t in range(0, 6)]
    candles = make_candles({"A": rows, "B": [(t, 1, 1, 1, 1, 1.0) for t in range(6)]})
    w = prepare_windows(candles, np.array([0, 1, -1]), np.array([0, 0, 0]), 5 * MIN)
    vol, spike = pre_alert_features(candles, w)
    assert math.isnan(vol[0])  # a single return is not a volatility
    assert math.isnan(spike[0])  # mean pre-alert volume is 0
    assert math.isnan(vol[1]) and math.isnan(spike[1])  # no pre-alert candles
    assert math.isnan(vol[2]) and math.isnan(spike[2])  # no candles at all
    with pytest.raises(ValueError):
        pre_alert_features(candles, w, pre_window_ms=0)


def test_caller_priors_are_strictly_earlier_and_per_caller():
    caller = np.array(["a", "b", "a", "a", "a", "b"])
    ts = np.array([10, 10, 20, 20, 30, 5])
    hit = np.array([True, True, False, True, False, False])
    known = np.array([True, True, True, True, True, False])
    calls, rate = caller_priors(caller, ts, hit, known)
    assert calls.tolist() == [0, 1, 1, 1, 3, 0]
    assert math.isnan(rate[0])
    assert rate[2] == 1.0 and rate[3] == 1.0  # same-time alerts do not see each other
    assert rate[4] == pytest.approx(2 / 3)
    assert math.isnan(rate[5])
    assert math.isnan(rate[1])  # the only earlier "b" alert has an unknown outcome


def test_caller_priors_empty_input():
    calls, rate = caller_priors(np.array([], dtype=str), np.array([], dtype=np.int64), np.array([], dtype=bool))
    assert len(calls) == 0 and len(rate) == 0


def test_compute_features_columns_one_row_per_alert():
    rows = [(t, 100, 100 if t < 3 else 250, 100, 100, 1.0) for t in range(-3, 8)]
    candles = make_candles({"A": rows})
    w = prepare_windows(candles, np.array([0, 0, -1, 0]),
                        np.array([0, 2 * MIN, 3 * MIN, 5 * MIN]), 3 * MIN)
    paths = compute_paths(candles, w)
    cols = compute_features(candles, w, np.array(["x", "x", "x", "x"]), paths)
    assert set(cols) == {"vol_pre_alert", "volume_spike", "caller_prior_calls", "caller_prior_hit_2x_rate"}
    assert cols["caller_prior_calls"].tolist() == [0, 1, 2, 3]
    # No look-ahead: the first two calls hit 2x in the candle opening at 3 min, so their
    # outcome is unknown at 2 min and at 3 min, and known (two hits) at 5 min.
    assert cols["caller_prior_hit_2x_rate"].to_pylist() == [None, None, None, 1.0]
    assert cols["vol_pre_alert"].to_pylist()[:2] == [0.0, 0.0]
    assert cols["volume_spike"].to_pylist()[:3] == [1.0, 1.0, None]


def test_caller_priors_count_only_outcomes_resolved_before_the_alert():
    caller = np.array(["a", "a", "a", "a"])
    ts = np.array([0, 10, 20, 30])
    hit = np.array([True, False, True, False])
    resolved = np.array([25, 15, 100, 200])  # call 0's 2x at 25; call 1's horizon ends at 15
    calls, rate = caller_priors(caller, ts, hit, None, resolved)
    assert calls.tolist() == [0, 1, 2, 3]
    assert np.isnan(rate[0]) and np.isnan(rate[1])  # nothing resolved before 0 or 10
    assert rate[2] == 0.0  # at 20 only call 1 (a miss) is resolved
    assert rate[3] == 0.5  # at 30: call 1 miss, call 0 hit; call 2 still open


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), horizon=st.integers(1, 40),
       levels=st.sampled_from([(1.05, 1.1), (1.5, 2.0, 2.5), (2.0, 3.0, 4.0)]))
def test_a_prior_hit_rate_per_extra_level_matches_a_plain_loop(seed, horizon, levels):
    """``caller_prior_hit_<m>x_rate`` for levels beyond 2/3/4: the share of hits among the
    caller's earlier eligible calls resolved strictly before (hit candle, or horizon end)."""
    rng = np.random.default_rng(seed)
    candles = random_candle_set(rng, n_mints=2, max_candles=80)
    n = 14
    mint_idx = rng.integers(0, 2, size=n)
    alert_ts = rng.integers(0, 90 * MIN, size=n)
    caller = rng.choice(np.array(["a", "b"]), size=n)
    w = prepare_windows(candles, mint_idx, alert_ts, horizon * MIN)
    paths = compute_paths(candles, w, levels=levels)
    cols = compute_features(candles, w, caller, paths)
    extra = [m for m in levels if m not in (2.0, 3.0, 4.0)]
    names = [c for c in cols if c.startswith("caller_prior_hit_") and c != "caller_prior_hit_2x_rate"]
    assert names == [f"caller_prior_hit_{repr(m).replace('.', '_')}x_rate" for m in extra]
    row = {int(k): j for j, k in enumerate(paths.alert_idx)}
    for m, name in zip(extra, names, strict=True):
        t_hit = paths.t_extra_ms[paths.extra_levels.index(m)]
        expected = []
        for k in range(n):
            known = [t_hit[row[i]] != NO_TS for i in row if caller[i] == caller[k]
                     and (t_hit[row[i]] if t_hit[row[i]] != NO_TS
                          else w.anchor_ts_ms[i] + w.horizon_ms) < alert_ts[k]]
            expected.append(sum(known) / len(known) if known else None)
        got = cols[name].to_pylist()
        assert got == pytest.approx(expected, nan_ok=False), (name, got, expected)
