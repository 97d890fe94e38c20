"""Timestamp formats (strptime) and the time zone of naive timestamps (issue 10), checked
against zoneinfo as the independent reference."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quantbot.backtest.data.inputs import InputSpec
from quantbot.backtest.data.load import load_alerts, load_candles
from quantbot.errors import DataError

HOUR, DAY = 3_600_000, 86_400_000
FMT = "%m/%d/%Y %I:%M %p"


def epoch_ms(text: str, fmt: str, tz: str) -> int:
    """Reference: ``text`` parsed by Python's strptime, localised with zoneinfo."""
    local = datetime.strptime(text, fmt).replace(tzinfo=ZoneInfo(tz))
    return round(local.astimezone(UTC).timestamp() * 1000)


def write_text(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Europe/London", "Asia/Kolkata"])
def test_alert_times_with_a_format_and_a_time_zone(tmp_path, tz):
    texts = ["02/03/2005 09:05 PM", "07/04/2005 12:30 AM", "11/06/2005 01:30 AM"]
    path = write_text(tmp_path / "a.csv", ["id,symbol,caller,alert_time",
                                           *(f"{i},AAPL,me,{t}" for i, t in enumerate(texts))])
    alerts = load_alerts(path, ts_format=FMT, tz=tz)
    assert alerts.column("alert_ts_ms").to_pylist() == sorted(epoch_ms(t, FMT, tz) for t in texts)
    first = datetime.fromtimestamp(epoch_ms(texts[0], FMT, tz) / 1000, UTC)
    assert alerts.column("created_at")[0].as_py() == first.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_candle_times_with_a_format_and_a_time_zone(tmp_path):
    tz = "America/New_York"
    texts = [f"01/{d:02d}/2024 09:30 AM" for d in range(2, 13)]
    path = write_text(tmp_path / "c.csv", ["Date,Open,High,Low,Close",
                                           *(f"{t},10,11,9,10.5" for t in texts)])
    want = [epoch_ms(t, FMT, tz) for t in texts]
    alerts = pa.table({"mint": ["AAPL"], "alert_ts_ms": pa.array([want[3] - HOUR], pa.int64())})
    got = load_candles(path, alerts, interval_ms=DAY, horizon_ms=3 * DAY, pre_window_ms=DAY,
                       ts_format=FMT, tz=tz)
    assert got.ts_ms.tolist() == want[2:7]  # pre-window 1d, horizon 3d after the entry
    assert want[3] - want[2] == DAY  # 09:30 New York is 14:30 UTC in January


def test_naive_timestamps_are_in_tz_and_offsets_are_kept(tmp_path):
    path = write_text(tmp_path / "a.csv", ["id,mint,caller,ts", "1,A,me,2024-07-01 09:30:00",
                                           "2,A,me,2024-07-01T09:30:00+02:00"])
    alerts = load_alerts(path, tz="America/New_York")
    naive = epoch_ms("2024-07-01 09:30", "%Y-%m-%d %H:%M", "America/New_York")
    offset = round(datetime.fromisoformat("2024-07-01T09:30:00+02:00").timestamp() * 1000)
    assert sorted(alerts.column("alert_ts_ms").to_pylist()) == sorted([naive, offset])


def test_naive_parquet_datetimes_are_in_tz_and_epochs_stay_utc(tmp_path):
    moment = datetime(2024, 7, 1, 9, 30)
    pq.write_table(pa.table({"call_id": ["1"], "mint": ["A"], "caller_name": ["me"],
                             "ts": pa.array([moment], pa.timestamp("ms"))}), tmp_path / "a.parquet")
    got = load_alerts(tmp_path / "a.parquet", tz="Asia/Tokyo").column("alert_ts_ms").to_pylist()
    assert got == [epoch_ms("2024-07-01 09:30", "%Y-%m-%d %H:%M", "Asia/Tokyo")]
    epoch = write_text(tmp_path / "e.csv", ["id,mint,caller,ts", "1,A,me,1719826200000"])
    assert load_alerts(epoch, tz="Asia/Tokyo").column("alert_ts_ms").to_pylist() == [1719826200000]


def test_date_filters_follow_tz(tmp_path):
    path = write_text(tmp_path / "a.csv", ["id,mint,caller,ts", "1,A,me,2024-07-01 23:30:00",
                                           "2,A,me,2024-07-02 00:30:00"])
    kept = load_alerts(path, tz="America/New_York", date_to="2024-07-01")
    assert kept.column("call_id").to_pylist() == ["1"]


def test_a_format_that_does_not_match_names_row_value_and_format(tmp_path):
    path = write_text(tmp_path / "alerts.csv", ["id,mint,caller,alert_time", "1,A,me,02/03/2005 09:05 PM",
                                                "2,A,me,2005-02-03 21:05"])
    with pytest.raises(DataError) as err:
        load_alerts(path, ts_format=FMT)
    assert str(err.value).endswith(
        "alerts.csv: column 'alert_time' row 2: value '2005-02-03 21:05' does not match "
        "--alerts-ts-format '%m/%d/%Y %I:%M %p'")
    candles = write_text(tmp_path / "c.csv", ["mint,ts,open,high,low,close", "A,2024-01-02,1,1,1,1"])
    alerts = pa.table({"mint": ["A"], "alert_ts_ms": pa.array([0], pa.int64())})
    with pytest.raises(DataError, match=r"c\.csv: column 'ts' row 1: value '2024-01-02' does not "
                                        r"match --candles-ts-format '%d\.%m\.%Y'"):
        load_candles(candles, alerts, interval_ms=DAY, horizon_ms=DAY, pre_window_ms=0,
                     ts_format="%d.%m.%Y")


def test_an_invalid_format_or_time_zone_is_one_line(tmp_path):
    path = write_text(tmp_path / "a.csv", ["id,mint,caller,ts", "1,A,me,2024"])
    with pytest.raises(DataError, match=r"column 'ts': --alerts-ts-format '%Q' cannot be used") as err:
        load_alerts(path, ts_format="%Q")
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match=r"^tz: unknown time zone 'Nowhere/City': expected an IANA "
                                        r"name such as 'UTC'"):
        InputSpec(alerts=path, candles=path, tz="Nowhere/City")
