"""A pandas frame's index is data when it holds the bar times or has a name: backtesting.py's
GOOG frame (dates in an unnamed index, capitalised OHLC) loads as it is."""

from __future__ import annotations

import backtesting.test as bt
import pandas as pd
import pyarrow as pa

from quantbot.backtest.data.load import load_candles
from quantbot.backtest.data.sources import in_memory_table

DAY = 86_400_000


def test_a_time_index_becomes_the_ts_column_and_a_named_one_keeps_its_name():
    assert in_memory_table(bt.GOOG, "candles").column_names == [
        "ts", "Open", "High", "Low", "Close", "Volume"]
    named = bt.GOOG.rename_axis("Date")
    assert in_memory_table(named, "candles").column_names[0] == "Date"
    ids = pd.DataFrame({"x": [1, 2]}, index=pd.Index(["a", "b"], name="call_id"))
    assert in_memory_table(ids, "alerts").column_names == ["call_id", "x"]


def test_a_row_number_index_or_a_repeated_name_is_left_out():
    frame = pd.DataFrame({"ts": [1, 2], "x": [3, 4]}).iloc[[1, 0]]
    assert in_memory_table(frame, "candles").column_names == ["ts", "x"]
    clash = pd.DataFrame({"ts": [1, 2]}, index=pd.DatetimeIndex(["2020-01-01", "2020-01-02"]))
    assert in_memory_table(clash, "candles").column_names == ["ts"]


def test_the_goog_frame_loads_its_bars_from_the_index():
    alert_ms = int(bt.GOOG.index[100].value // 1_000_000)  # pandas keeps ns
    alerts = pa.table({"mint": ["GOOG"], "alert_ts_ms": pa.array([alert_ms], pa.int64())})
    candles = load_candles(bt.GOOG, alerts, interval_ms=DAY, horizon_ms=10 * DAY,
                           pre_window_ms=5 * DAY)
    expected = bt.GOOG.loc[bt.GOOG.index[100]]
    k = int((candles.ts_ms == alert_ms).nonzero()[0][0])
    assert (candles.open[k], candles.close[k]) == (expected.Open, expected.Close)
    assert candles.mints == ("GOOG",)
