"""Truth-layer levels (COMMON contract "Levels"): the standard columns always, extra ones named by
level_column_suffix, for longs and shorts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantbot.backtest.engine.price_paths import compute_paths, level_column_suffix
from quantbot.backtest.engine.windows import prepare_windows

from .reference import MIN, make_candles, random_candle_set, ref_paths, ref_window

STANDARD = ["p0", "hit_2x", "t_2x_ms", "hit_3x", "t_3x_ms", "hit_4x", "t_4x_ms", "dd_bps", "dd_to_2x_bps",
            "alert_to_activity_ms", "peak_multiple"]


@pytest.mark.parametrize("m, tag", [(1.05, "1_05"), (10.0, "10"), (2.5, "2_5"), (1.1, "1_1"), (7, "7"),
                                    (1.001, "1_001")])
def test_level_column_suffix(m, tag):
    assert level_column_suffix(m) == tag


def paths(rows, levels, side=1, horizon_min=4):
    candles = make_candles({"A": [(0, 100, 100, 100, 100), *rows]})
    w = prepare_windows(candles, np.array([0]), np.array([0]), horizon_min * MIN, side=np.array([side], np.int8))
    return compute_paths(candles, w, levels=levels)


ROWS = [(1, 100, 104, 96, 103), (2, 103, 111, 91, 110), (3, 110, 125, 80, 120), (4, 120, 121, 119, 120)]


def test_extra_levels_follow_the_standard_columns_in_the_given_order():
    m = paths(ROWS, (1.2, 2.0, 1.05, 1.1, 3.0, 1.05))
    cols = m.columns()
    assert list(cols) == STANDARD + ["hit_1_2x", "t_1_2x_ms", "hit_1_05x", "t_1_05x_ms", "hit_1_1x", "t_1_1x_ms"]
    assert [cols[f"t_{t}x_ms"].to_pylist() for t in ("1_2", "1_05", "1_1")] == [[3 * MIN], [2 * MIN], [2 * MIN]]
    assert cols["hit_1_2x"].tolist() == [True] and cols["hit_2x"].tolist() == [False]
    assert cols["t_2x_ms"].to_pylist() == [None]


def test_default_levels_give_only_the_standard_columns_and_a_miss_is_null():
    assert list(paths(ROWS, (2.0, 3.0, 4.0)).columns()) == STANDARD
    cols = paths(ROWS, (1.5,)).columns()
    assert cols["hit_1_5x"].tolist() == [False] and cols["t_1_5x_ms"].to_pylist() == [None]
    assert cols["t_1_5x_ms"].type == pa.int64()


def test_short_levels_are_entry_over_multiple():
    cols = paths(ROWS, (1.05, 1.1, 1.25), side=-1).columns()
    # lows 96, 91, 80: 100/1.05 = 95.24 (minute 2), 100/1.1 = 90.9 (minute 3), 100/1.25 = 80 (minute 3)
    assert [cols[f"t_{t}x_ms"].to_pylist()[0] for t in ("1_05", "1_1", "1_25")] == [2 * MIN, 3 * MIN, 3 * MIN]


@pytest.mark.parametrize("bad", [1.0, 0.5, float("nan"), float("inf"), -2.0])
def test_levels_must_be_finite_multiples_above_one(bad):
    with pytest.raises(ValueError, match="levels"):
        paths(ROWS, (2.0, bad))


_levels = st.lists(st.sampled_from([1.01, 1.05, 1.1, 1.2, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0]), max_size=5)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), horizon=st.integers(1, 40), levels=_levels,
       entry=st.sampled_from(["close", "next-open"]))
def test_extra_levels_match_reference(seed, horizon, levels, entry):
    rng = np.random.default_rng(seed)
    candles = random_candle_set(rng, max_candles=60)
    n = 10
    mint_idx = rng.integers(0, len(candles.mints), size=n)
    alert_ts = rng.integers(-5 * MIN, 45 * MIN, size=n)
    sides = rng.choice(np.array([1, -1], np.int8), size=n)
    w = prepare_windows(candles, mint_idx, alert_ts, horizon * MIN, entry=entry, side=sides)
    m = compute_paths(candles, w, levels=tuple(levels))
    cols = {k: (v.to_pylist() if isinstance(v, pa.Array) else v.tolist()) for k, v in m.columns().items()}
    for row, k in enumerate(m.alert_idx):
        ref = ref_paths(candles, ref_window(candles, int(mint_idx[k]), int(alert_ts[k]), horizon * MIN, entry,
                                            int(sides[k])), int(alert_ts[k]), levels=tuple(levels))
        assert {name: values[row] for name, values in cols.items()} == ref
