"""Input timestamps (alerts, candles): out-of-range values and negative epochs are one-line
DataErrors naming the file, column, row and value; the unit is never guessed from a
negative value."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from qbtest import alert_row, assert_clean_error, run_cli

from quantbot.backtest.data.alerts import load_alerts
from quantbot.backtest.data.candles import load_candles
from quantbot.errors import DataError

YEAR_1E8_MS = 3_155_760_000_000_000_000  # about the year 100 000 000, fits int64
NEG_MS = -1_000_000_000_000  # 1938-04-24 in ms; read as seconds it would be year -29719
MINUTE = 60_000


def write_alerts(path: Path, ts: list[int]) -> Path:
    rows = [alert_row(i, alert_ts_ms=t) for i, t in enumerate(ts)]
    for r in rows:
        del r["created_at"]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_candles(path: Path, ts: list[int]) -> Path:
    n = len(ts)
    pq.write_table(pa.table({"mint": ["mint-0"] * n, "timestamp": pa.array(ts, pa.int64()),
                             "open": [1.0] * n, "high": [1.0] * n, "low": [1.0] * n,
                             "close": [1.0] * n, "volume": [1.0] * n}), path)
    return path


@pytest.mark.parametrize("bad, words", [
    (NEG_MS, ["negative", "unit"]),
    (YEAR_1E8_MS, ["out of range"]),
])
def test_cli_run_names_file_column_row_value(tmp_path, bad, words):
    alerts = write_alerts(tmp_path / "alerts.parquet", [1_700_000_000_000, 1_700_000_060_000, bad])
    candles = write_candles(tmp_path / "candles.parquet", [1_700_000_000_000 + i * MINUTE for i in range(5)])
    proc = run_cli("backtest", "run", "path-only", "--alerts", str(alerts), "--candles", str(candles),
                   "--base-dir", "runs", "--duckdb", "cat.duckdb", cwd=tmp_path)
    line = assert_clean_error(proc, contains="alerts.parquet")
    assert "ValueError" not in line
    for word in ["alert_ts_ms", "row 3", str(bad), *words]:
        assert word in line, line


def test_load_alerts_negative_ms_is_an_error_not_seconds(tmp_path):
    src = write_alerts(tmp_path / "a.parquet", [1_700_000_000_000, NEG_MS])
    with pytest.raises(DataError, match=r"a\.parquet.*'alert_ts_ms'.*row 2.*-1000000000000.*negative"):
        load_alerts(src)


def test_load_alerts_iso_strings_before_1970_are_fine(tmp_path):
    rows = [alert_row(0, alert_ts_ms=None, created_at="1938-04-24T22:13:20Z")]
    for r in rows:
        del r["alert_ts_ms"]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    out = load_alerts(tmp_path / "a.parquet")
    assert out.column("alert_ts_ms").to_pylist() == [NEG_MS]


def test_load_alerts_year_1e8_is_an_error(tmp_path):
    src = write_alerts(tmp_path / "a.parquet", [YEAR_1E8_MS])
    with pytest.raises(DataError, match=rf"'alert_ts_ms'.*row 1.*{YEAR_1E8_MS}.*out of range"):
        load_alerts(src)


def alerts_at(ts: int) -> pa.Table:
    return pa.table({"mint": ["mint-0"], "alert_ts_ms": pa.array([ts], pa.int64())})


def test_candles_negative_ms_without_unit_is_an_error(tmp_path):
    ts = [NEG_MS + i * MINUTE for i in range(3)]
    src = write_candles(tmp_path / "c.parquet", ts)
    with pytest.raises(DataError, match=r"c\.parquet.*'timestamp'.*row 1.*-1000000000000.*negative.*ts_unit"):
        load_candles(src, alerts_at(NEG_MS), interval_ms=MINUTE, horizon_ms=MINUTE, pre_window_ms=0)


def test_candles_negative_with_explicit_unit_are_read_in_that_unit(tmp_path):
    ts = [NEG_MS + i * MINUTE for i in range(3)]
    src = write_candles(tmp_path / "c.parquet", ts)
    got = load_candles(src, alerts_at(NEG_MS), interval_ms=MINUTE, horizon_ms=MINUTE,
                       pre_window_ms=0, ts_unit="ms")
    assert got.ts_ms.tolist() == ts
    src_s = write_candles(tmp_path / "s.parquet", [t // 1000 for t in ts])
    got = load_candles(src_s, alerts_at(NEG_MS), interval_ms=MINUTE, horizon_ms=MINUTE,
                       pre_window_ms=0, ts_unit="s")
    assert got.ts_ms.tolist() == ts


@pytest.mark.parametrize("unit, value", [("s", YEAR_1E8_MS // 1000), ("ms", YEAR_1E8_MS),
                                         (None, YEAR_1E8_MS), ("s", 2**62)])
def test_candles_out_of_range_names_row_and_value(tmp_path, unit, value):
    ts = [1_700_000_000_000, 1_700_000_060_000, value]
    if unit == "s":
        ts = [1_700_000_000, 1_700_000_060, value]
    src = write_candles(tmp_path / "c.parquet", ts)
    with pytest.raises(DataError, match=rf"c\.parquet.*'timestamp'.*row 3.*{value}.*out of range"):
        load_candles(src, alerts_at(1_700_000_000_000), interval_ms=MINUTE, horizon_ms=MINUTE,
                     pre_window_ms=0, ts_unit=unit)


def test_load_alerts_datetimes_and_iso_strings_past_9999(tmp_path):
    rows = [alert_row(i) for i in range(3)]
    for r in rows:
        del r["alert_ts_ms"], r["created_at"]
    table = pa.Table.from_pylist(rows)
    cases = {
        "dt.parquet": (pa.array([0, 1, 316_000_000_000_000], pa.timestamp("ms", tz="UTC")),
                       r"column 'created_at' row 3: value '11983-.*' is out of range"),
        "iso.parquet": (pa.array(["2026-01-01", "12000-01-01T00:00:00Z", "2026-01-02"]),
                        r"column 'created_at' row 2: value '12000-01-01T00:00:00Z' is out of range"),
        # year 1e8: DuckDB cannot read the value at all; the file and column are named
        "huge.parquet": (pa.array([0, 1, YEAR_1E8_MS], pa.timestamp("ms", tz="UTC")),
                         r"huge\.parquet: column 'created_at': .*"),
    }
    for name, (column, pattern) in cases.items():
        pq.write_table(table.append_column("created_at", column), tmp_path / name)
        with pytest.raises(DataError, match=pattern):
            load_alerts(tmp_path / name)
