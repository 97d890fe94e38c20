"""Intervals (issue 10): any positive duration, calendar months refused, and the declared
interval checked against the spacing of the loaded candles (real CSV files)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from quantbot.backtest.data.load import load_candles
from quantbot.durations import parse_interval
from quantbot.errors import DataError

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000


@pytest.mark.parametrize("text, ms", [("30s", 30_000), ("2m", 120_000), ("1w", 7 * DAY),
                                      ("90m", 90 * MIN), ("250ms", 250), ("1d", DAY), (" 4h ", 4 * HOUR)])
def test_any_positive_duration_is_an_interval(text, ms):
    assert parse_interval(text) == ms


@pytest.mark.parametrize("text", ["1mo", "1M", "month", "3months", "1y"])
def test_calendar_months_are_refused_with_the_reason(text):
    with pytest.raises(DataError, match="calendar months are irregular bars; quantbot needs a "
                                        r"fixed interval \(e\.g\. 30d\) or resampled data") as err:
        parse_interval(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["0m", "0s", "-1m", "1.5h", "abc", "", "1h30m", None, 60])
def test_zero_negative_and_garbage_are_refused(text):
    with pytest.raises(DataError, match=r"invalid candle interval .*positive whole number"):
        parse_interval(text)


def ms(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))


def write_csv(path: Path, times: list[int], mint: str = "AAPL") -> Path:
    lines = ["mint,ts,open,high,low,close,volume"]
    lines += [f"{mint},{t},10,11,9,10.5,100" for t in times]
    path.write_text("\n".join(lines) + "\n")
    return path


def alerts_at(*times: int, mint: str = "AAPL") -> pa.Table:
    return pa.table({"mint": [mint] * len(times), "alert_ts_ms": pa.array(list(times), pa.int64())})


def test_hourly_bars_declared_one_minute_are_refused_naming_1h(tmp_path):
    t0 = ms(datetime(2024, 3, 4, tzinfo=UTC))
    path = write_csv(tmp_path / "eurusd.csv", [t0 + i * HOUR for i in range(48)], "EURUSD")
    alerts = alerts_at(t0 + 5 * HOUR + 30 * MIN, t0 + 20 * HOUR, mint="EURUSD")
    with pytest.raises(DataError, match=r"eurusd\.csv: mint 'EURUSD': candles are 1h apart "
                                        r"\(smallest spacing; median 1h\), but --interval is 1m; "
                                        r"pass --interval 1h$"):
        load_candles(path, alerts, interval_ms=MIN, horizon_ms=60 * MIN, pre_window_ms=10 * MIN)
    got = load_candles(path, alerts, interval_ms=HOUR, horizon_ms=6 * HOUR, pre_window_ms=HOUR)
    assert got.n_rows > 2


def test_monthly_bars_declared_daily_are_refused(tmp_path):
    month_ends = [date(2017, m + 1, 1) - timedelta(days=1) for m in range(1, 12)]
    times = [ms(datetime(d.year, d.month, d.day, tzinfo=UTC)) for d in month_ends]
    path = write_csv(tmp_path / "btc.csv", times, "BTCUSD")
    alerts = alerts_at(ms(datetime(2017, 1, 15, tzinfo=UTC)), ms(datetime(2017, 5, 10, tzinfo=UTC)),
                       mint="BTCUSD")
    with pytest.raises(DataError, match=r"mint 'BTCUSD': candles are (28|29|30|31)d apart .*"
                                        r"--interval is 1d; these look like calendar months"):
        load_candles(path, alerts, interval_ms=DAY, horizon_ms=5 * DAY, pre_window_ms=DAY)


def test_daily_stock_bars_with_weekends_are_accepted(tmp_path):
    start = date(2024, 1, 1)  # a Monday
    days = [start + timedelta(days=i) for i in range(60)]
    times = [ms(datetime(d.year, d.month, d.day, tzinfo=UTC)) for d in days if d.weekday() < 5]
    path = write_csv(tmp_path / "aapl.csv", times)
    alerts = alerts_at(ms(datetime(2024, 1, 12, 20, tzinfo=UTC)), ms(datetime(2024, 2, 2, tzinfo=UTC)))
    got = load_candles(path, alerts, interval_ms=DAY, horizon_ms=10 * DAY, pre_window_ms=3 * DAY)
    gaps = {b - a for a, b in zip(got.ts_ms.tolist(), got.ts_ms.tolist()[1:])}
    assert DAY in gaps and 3 * DAY in gaps  # weekends inside the windows


def test_minute_bars_declared_hourly_are_refused(tmp_path):
    t0 = ms(datetime(2024, 3, 4, tzinfo=UTC))
    path = write_csv(tmp_path / "m.csv", [t0 + i * MIN for i in range(600)], "X")
    with pytest.raises(DataError, match=r"candles are 1m apart .*--interval is 1h"):
        load_candles(path, alerts_at(t0 + 2 * HOUR, mint="X"), interval_ms=HOUR,
                     horizon_ms=2 * HOUR, pre_window_ms=HOUR)


def test_spacing_is_not_measured_across_candles_that_were_not_loaded(tmp_path):
    # Two alerts a week apart, each window holding one daily candle: the week between the
    # two loaded candles is not a spacing of the data.
    times = [ms(datetime(2024, 1, 1, tzinfo=UTC)) + i * DAY for i in range(30)]
    path = write_csv(tmp_path / "d.csv", times)
    alerts = alerts_at(times[3] - HOUR, times[10] - HOUR)
    got = load_candles(path, alerts, interval_ms=DAY, horizon_ms=0, pre_window_ms=0)
    assert got.ts_ms.tolist() == [times[3], times[10]]
