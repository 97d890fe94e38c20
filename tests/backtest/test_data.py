"""Loaders over real files in tmp_path: every format, timestamp unit and column variant."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from quantbot.backtest.data.candle_set import CandleSet
from quantbot.backtest.data.load import (
    ALERT_COLUMNS,
    describe_source,
    fingerprint_candles,
    load_alerts,
    load_candles,
)
from quantbot.errors import DataError

MIN = 60_000
HOUR = 60 * MIN
T0 = 1_767_614_400_000  # 2026-01-05T12:00:00Z
WINDOW = dict(interval_ms=MIN, horizon_ms=HOUR, pre_window_ms=10 * MIN)


def grid(mint: str, start_ms: int, minutes: int) -> dict[str, np.ndarray]:
    ts = start_ms + np.arange(minutes, dtype=np.int64) * MIN
    close = 1.0 + np.arange(minutes) / 100
    return {"mint": np.full(minutes, mint, dtype=object), "ts": ts, "open": close - 0.001,
            "high": close + 0.01, "low": close - 0.01, "close": close, "volume": np.full(minutes, 5.0)}


def candles_table(**rename: str) -> pa.Table:
    """MintA: 2 days of minutes around T0; MintB: from T0 - 1h for 3h; Zed: not alerted."""
    parts = [grid("MintA", T0 - 24 * HOUR, 48 * 60), grid("MintB", T0 - HOUR, 180),
             grid("Zed", T0 - HOUR, 180)]
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    table = pa.table({k: pa.array(v, pa.string() if k == "mint" else None) for k, v in cols.items()})
    return table.rename_columns([rename.get(n, n) for n in table.column_names])


def alerts_table() -> pa.Table:
    return pa.table({"call_id": ["a1", "a2", "a3"], "mint": ["MintA", "MintB", "NoSuchMint"],
                     "caller_name": ["bob", "al", "al"], "chain": ["solana"] * 3,
                     "alert_ts_ms": pa.array([T0 + 30_000, T0, T0 + HOUR], pa.int64())})


def write_candles(tmp_path: Path, kind: str, table: pa.Table | None = None) -> Path:
    table = candles_table() if table is None else table
    if kind == "csv":
        pacsv.write_csv(table, tmp_path / "c.csv")
        return tmp_path / "c.csv"
    if kind == "parquet":
        pq.write_table(table, tmp_path / "c.parquet")
        return tmp_path / "c.parquet"
    if kind == "folder":
        (tmp_path / "folder").mkdir()
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), tmp_path / "folder" / "part-0.parquet")
        pq.write_table(table.slice(half), tmp_path / "folder" / "part-1.parquet")
        return tmp_path / "folder"
    if kind == "hive":
        for mint in set(table.column("mint").to_pylist()):
            part = tmp_path / "hive" / f"mint={mint}"
            part.mkdir(parents=True)
            rows = table.filter(pa.compute.equal(table.column("mint"), mint)).drop_columns(["mint"])
            pq.write_table(rows, part / "part.parquet")
        return tmp_path / "hive"
    assert kind == "duckdb"
    path = tmp_path / "c.duckdb"
    with duckdb.connect(str(path)) as con:
        con.register("t", table)
        con.execute("CREATE TABLE candles AS SELECT * FROM t")
    return path


@pytest.mark.parametrize("kind", ["csv", "parquet", "folder", "hive", "duckdb"])
def test_load_candles_every_format_gives_the_same_set(tmp_path, kind):
    source = write_candles(tmp_path, kind)
    cs = load_candles(source, alerts_table(), **WINDOW)
    assert cs.mints == ("MintA", "MintB")  # Zed never alerted, NoSuchMint absent
    a = cs.ts_ms[cs.offsets[0]:cs.offsets[1]]
    # MintA: [alert - 10m, alert + 1h + 1m] -> minutes 11:51 .. 13:01
    assert a[0] == T0 - 9 * MIN and a[-1] == T0 + HOUR + MIN and np.all(np.diff(a) == MIN)
    b = cs.ts_ms[cs.offsets[1]:cs.offsets[2]]
    assert b[0] == T0 - 10 * MIN and b[-1] == T0 + HOUR + MIN
    assert cs.first_ts_ms.tolist() == [T0 - 24 * HOUR, T0 - HOUR]  # from the whole source
    again = load_candles(source, alerts_table(), **WINDOW)
    assert describe_source(source, cs).fingerprint == describe_source(source, again).fingerprint


def test_formats_agree_exactly(tmp_path):
    prints = set()
    for kind in ("csv", "parquet", "folder", "hive", "duckdb"):
        (tmp_path / kind).mkdir()
        source = write_candles(tmp_path / kind, kind)
        record = describe_source(source, load_candles(source, alerts_table(), **WINDOW))
        prints.add(record.fingerprint)
        assert record.kind == {"folder": "parquet_dataset", "hive": "parquet_dataset"}.get(kind, kind)
    assert len(prints) == 1
    assert next(iter(prints)).startswith("sha256:") and len(next(iter(prints))) == 71


def test_only_needed_candles_are_loaded(tmp_path):
    cs = load_candles(write_candles(tmp_path, "parquet"), alerts_table(), **WINDOW)
    assert cs.n_rows == 71 + 72  # of 2880 + 180 + 180 rows in the file
    assert cs.ts_ms.min() >= T0 - 10 * MIN and cs.ts_ms.max() <= T0 + HOUR + MIN


@pytest.mark.parametrize("ts_unit, scale", [(None, 1000), ("s", 1000), (None, 1), ("ms", 1)])
def test_integer_seconds_and_milliseconds(tmp_path, ts_unit, scale):
    table = candles_table()
    table = table.set_column(1, "ts", pa.compute.divide(table.column("ts"), scale))
    cs = load_candles(write_candles(tmp_path, "parquet", table), alerts_table(), ts_unit=ts_unit, **WINDOW)
    assert cs.first_ts_ms.tolist() == [T0 - 24 * HOUR, T0 - HOUR]


def test_seconds_from_the_year_2000_are_inferred(tmp_path):
    y2000 = 946_684_800_000
    table = pa.table({"mint": ["M"] * 3, "time": pa.array([y2000 // 1000 + 60 * i for i in range(3)]),
                      "o": [1.0] * 3, "h": [1.0] * 3, "l": [1.0] * 3, "c": [1.0] * 3, "v": [0.0] * 3})
    alerts = pa.table({"mint": ["M"], "alert_ts_ms": pa.array([y2000], pa.int64())})
    cs = load_candles(write_candles(tmp_path, "csv", table), alerts, **WINDOW)
    assert cs.ts_ms.tolist() == [y2000, y2000 + MIN, y2000 + 2 * MIN]


def test_explicit_unit_overrides_inference(tmp_path):
    table = candles_table()
    # ms read as seconds (the unit is taken, not inferred): the year ~57 000, out of range
    with pytest.raises(DataError, match=r"column 'ts' row 1: value \d+ is out of range"):
        load_candles(write_candles(tmp_path, "parquet", table), alerts_table(), ts_unit="s", **WINDOW)
    with pytest.raises(DataError, match="ts_unit"):
        load_candles(tmp_path / "c.parquet", alerts_table(), ts_unit="us", **WINDOW)


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_datetime_timestamps(tmp_path, kind):
    table = candles_table()
    as_dt = table.column("ts").cast(pa.timestamp("ms", tz="UTC"))
    table = table.set_column(1, "timestamp", as_dt.cast(pa.timestamp("us")) if kind == "csv" else as_dt)
    cs = load_candles(write_candles(tmp_path, kind, table), alerts_table(), **WINDOW)
    assert cs.first_ts_ms.tolist() == [T0 - 24 * HOUR, T0 - HOUR]


def test_iso_string_timestamps_in_csv(tmp_path):
    (tmp_path / "c.csv").write_text("token_address,time,open,high,low,close,volume\n"
                                    "MintB,2026-01-05T12:00:00Z,1,1,1,1,0\n"
                                    "MintB,2026-01-05 12:01:00+00:00,2,2,2,2,0\n")
    cs = load_candles(tmp_path / "c.csv", alerts_table(), **WINDOW)
    assert cs.ts_ms.tolist() == [T0, T0 + MIN] and cs.close.tolist() == [1.0, 2.0]


def test_column_variants(tmp_path):
    table = candles_table(mint="token_address", ts="timestamp_ms", volume="vol")
    cs = load_candles(write_candles(tmp_path, "parquet", table), alerts_table(), **WINDOW)
    assert cs.mints == ("MintA", "MintB")


def test_ambiguous_column_names_both(tmp_path):
    table = candles_table(ts="timestamp").append_column("time", candles_table().column("ts"))
    with pytest.raises(DataError, match=r"column 'ts' is ambiguous: candidates timestamp, time"):
        load_candles(write_candles(tmp_path, "parquet", table), alerts_table(), **WINDOW)


def test_missing_column_is_named(tmp_path):
    table = candles_table().drop_columns(["close"])  # volume is optional since issue 10
    with pytest.raises(DataError, match=r"c\.parquet: missing column 'close'.*--candles-columns close="):
        load_candles(write_candles(tmp_path, "parquet", table), alerts_table(), **WINDOW)


def test_bad_price_value_is_named(tmp_path):
    (tmp_path / "c.csv").write_text("mint,ts,open,high,low,close,volume\n"
                                    f"MintB,{T0},1,1,1,abc,0\nMintB,{T0 + MIN},1,1,1,1,0\n")
    with pytest.raises(DataError, match=r"column 'close': value 'abc'"):
        load_candles(tmp_path / "c.csv", alerts_table(), **WINDOW)


def test_duplicates_nulls_and_zero_prices(tmp_path):
    # issue 10: conflicting duplicates are refused unless --duplicates first|last
    # (tests/backtest/test_candle_checks.py); here the last row in file order is kept.
    table = pa.table({"mint": ["MintB"] * 5, "ts": pa.array([T0, T0, T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN]),
                      "open": [1.0, 1.0, None, 0.0, 1.0], "high": [1.0, 1.0, 1.0, 0.0, 1.0],
                      "low": [1.0, 1.0, 1.0, 0.0, 1.0], "close": [1.0, 2.0, 1.0, 0.0, 1.0],
                      "volume": [9.0, 1.0, 1.0, 0.0, 1.0]})
    cs = load_candles(write_candles(tmp_path, "parquet", table), alerts_table(), duplicates="last",
                      **WINDOW)
    # an empty open is NaN (the engine excludes windows holding it), the duplicate collapsed
    assert cs.ts_ms.tolist() == [T0, T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN]
    assert np.isnan(cs.open[1])
    assert cs.close.tolist() == [2.0, 1.0, 0.0, 1.0]  # the last duplicate wins; zero price kept
    assert cs.first_ts_ms.tolist() == [T0]


def test_window_is_extended_past_a_hole_at_the_entry(tmp_path):
    # No candle for 5 minutes after the alert: the entry opens at T0+5m, so the engine needs
    # candles up to T0+5m+1h, beyond alert + horizon + one interval.
    table = candles_table()
    hole = pa.compute.and_(pa.compute.equal(table.column("mint"), "MintB"),
                           pa.compute.and_(pa.compute.greater(table.column("ts"), T0),
                                           pa.compute.less(table.column("ts"), T0 + 5 * MIN)))
    table = table.filter(pa.compute.invert(hole))
    alerts = pa.table({"mint": ["MintB"], "alert_ts_ms": pa.array([T0 + 1], pa.int64())})
    cs = load_candles(write_candles(tmp_path, "parquet", table), alerts, **WINDOW)
    assert cs.ts_ms[-1] == T0 + 5 * MIN + HOUR
    assert len(np.unique(cs.ts_ms)) == cs.n_rows


def test_empty_block_for_a_mint_without_candles_near_the_alert(tmp_path):
    alerts = pa.table({"mint": ["MintB"], "alert_ts_ms": pa.array([T0 + 30 * 24 * HOUR], pa.int64())})
    cs = load_candles(write_candles(tmp_path, "parquet"), alerts, **WINDOW)
    assert cs.mints == ("MintB",) and cs.n_rows == 0 and cs.first_ts_ms.tolist() == [T0 - HOUR]


def test_no_alerts_gives_an_empty_set(tmp_path):
    alerts = pa.table({"mint": pa.array([], pa.string()), "alert_ts_ms": pa.array([], pa.int64())})
    assert load_candles(write_candles(tmp_path, "parquet"), alerts, **WINDOW).mints == ()


def test_duckdb_table_selection(tmp_path):
    path = write_candles(tmp_path, "duckdb")
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE other AS SELECT 1 AS x")
    with pytest.raises(DataError, match=r"pass table= or query= \(tables: candles, other\)"):
        load_candles(path, alerts_table(), **WINDOW)
    with pytest.raises(DataError, match=r"no table 'nope'"):
        load_candles(path, alerts_table(), table="nope", **WINDOW)
    assert load_candles(path, alerts_table(), table="candles", **WINDOW).n_rows == 143


# --- alerts -----------------------------------------------------------------------------

def test_alerts_csv_with_variants_and_iso_times(tmp_path):
    (tmp_path / "a.csv").write_text(
        "id,token_address,caller,created_at,note\n"
        "007,MintA,bob,2026-01-05T12:00:30Z,x\n"
        "2,MintB,al,2026-01-05 12:00:00,y\n"
        "3,MintC,al,2026-01-05T14:00:00.250+02:00,z\n")
    alerts = load_alerts(tmp_path / "a.csv")
    assert alerts.column_names == [*ALERT_COLUMNS, "note"]
    assert alerts.column("call_id").to_pylist() == ["2", "3", "007"]  # sorted by time; id kept as text
    assert alerts.column("alert_ts_ms").to_pylist() == [T0, T0 + 250, T0 + 30_000]
    assert alerts.column("created_at").to_pylist() == [
        "2026-01-05T12:00:00.000Z", "2026-01-05T12:00:00.250Z", "2026-01-05T12:00:30.000Z"]
    assert alerts.column("chain").to_pylist() == ["unknown"] * 3
    assert alerts.schema.field("alert_ts_ms").type == pa.int64()


@pytest.mark.parametrize("scale", [1000, 1])
def test_alerts_parquet_with_integer_seconds_or_ms(tmp_path, scale):
    table = alerts_table().set_column(4, "timestamp", pa.array([(T0 + 30_000) // scale, T0 // scale,
                                                                (T0 + HOUR) // scale]))
    pq.write_table(table, tmp_path / "a.parquet")
    alerts = load_alerts(tmp_path / "a.parquet")
    assert alerts.column("alert_ts_ms").to_pylist() == [T0, T0 + 30_000 // scale * scale, T0 + HOUR]


def test_alerts_from_duckdb_table_and_query(tmp_path):
    path = tmp_path / "a.db"
    with duckdb.connect(str(path)) as con:
        con.register("t", alerts_table())
        con.execute("CREATE TABLE calls AS SELECT * FROM t")
        con.execute("CREATE TABLE other AS SELECT 1 AS x")
    assert load_alerts(path, table="calls").num_rows == 3
    picked = load_alerts(path, query="SELECT * FROM calls WHERE caller_name = 'al';")
    assert picked.column("call_id").to_pylist() == ["a2", "a3"]
    with pytest.raises(DataError, match="a.db: cannot read it"):
        load_alerts(path, query="DELETE FROM calls")
    assert load_alerts(path, table="calls").num_rows == 3  # read-only: nothing deleted


def test_alerts_errors_name_the_culprit(tmp_path):
    def write(text: str) -> Path:
        (tmp_path / "a.csv").write_text(text)
        return tmp_path / "a.csv"

    with pytest.raises(DataError, match=r"missing column 'caller_name'"):
        load_alerts(write("call_id,mint,alert_ts_ms\n1,M,1767614400000\n"))
    with pytest.raises(DataError, match=r"duplicate call_id '1'"):
        load_alerts(write("call_id,mint,caller,ts\n1,M,a,1767614400000\n1,N,b,1767614400001\n"))
    with pytest.raises(DataError, match=r"column 'call_id' is ambiguous: candidates id, alert_id"):
        load_alerts(write("id,alert_id,mint,caller,ts\n1,1,M,a,1767614400000\n"))
    with pytest.raises(DataError, match=r"column 'created_at' row 1: value 'yesterday' is not "
                       r"an ISO-8601 timestamp: give its strptime format with --alerts-ts-format"):
        load_alerts(write("call_id,mint,caller,created_at\n1,M,a,yesterday\n"))
    with pytest.raises(DataError, match=r"column 'mint' is empty at row 2"):
        load_alerts(write("call_id,mint,caller,ts\n1,M,a,1767614400000\n2,,a,1767614400000\n"))
    with pytest.raises(DataError, match="input not found"):
        load_alerts(tmp_path / "nope.csv")
    (tmp_path / "x.bin").write_bytes(b"\x00\x01binary")
    with pytest.raises(DataError, match="unrecognised input format"):
        load_alerts(tmp_path / "x.bin")
    with pytest.raises(DataError, match="DuckDB databases only"):
        load_alerts(write("call_id\n1\n"), table="t")


def test_alerts_date_filters(tmp_path):
    pq.write_table(alerts_table(), tmp_path / "a.parquet")
    load = lambda **kw: load_alerts(tmp_path / "a.parquet", **kw).column("call_id").to_pylist()  # noqa: E731
    assert load(date_from="2026-01-05T12:00:30Z") == ["a1", "a3"]
    assert load(date_to="2026-01-05T12:00:00") == ["a2"]  # naive = UTC, inclusive
    assert load(date_to="2026-01-05") == ["a2", "a1", "a3"]  # a date includes its whole day
    assert load(date_from="2026-01-06") == []
    with pytest.raises(DataError, match="date_from: invalid date 'soon'"):
        load(date_from="soon")


def test_alerts_keep_extra_columns_and_rewrite_created_at(tmp_path):
    table = alerts_table().append_column("created_at", pa.array(["junk"] * 3)).append_column(
        "score", pa.array([1.5, 2.5, 3.5]))
    pq.write_table(table, tmp_path / "a.parquet")
    alerts = load_alerts(tmp_path / "a.parquet")
    assert alerts.column_names == [*ALERT_COLUMNS, "score"]
    assert alerts.column("created_at")[0].as_py() == "2026-01-05T12:00:00.000Z"
    assert alerts.schema.field("score").type == pa.float64()


def test_alert_fingerprint_is_stable_and_sensitive(tmp_path):
    pq.write_table(alerts_table(), tmp_path / "a.parquet")
    first = describe_source(tmp_path / "a.parquet", load_alerts(tmp_path / "a.parquet"))
    again = describe_source(tmp_path / "a.parquet", load_alerts(tmp_path / "a.parquet"))
    assert first == again and first.kind == "parquet" and first.rows == 3
    assert first.to_dict()["path"] == str((tmp_path / "a.parquet").resolve())
    pq.write_table(alerts_table().set_column(2, "caller_name", pa.array(["x", "al", "al"])),
                   tmp_path / "a.parquet")
    changed = describe_source(tmp_path / "a.parquet", load_alerts(tmp_path / "a.parquet"))
    assert changed.fingerprint != first.fingerprint


def test_candle_fingerprint_changes_with_data():
    def one(close: float) -> CandleSet:
        f = np.array([close])
        return CandleSet(("M",), np.array([0, 1]), np.array([T0]), f, f, f, f, f, np.array([T0]))

    assert fingerprint_candles(one(1.0)) == fingerprint_candles(one(1.0))
    assert fingerprint_candles(one(1.0)) != fingerprint_candles(one(1.5))
