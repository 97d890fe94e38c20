"""The candle loader's fast path (``direct_scan``) gives the SQL path's CandleSet bit for bit,
and steps aside (SQL answers, with its own errors) wherever it could differ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantbot.backtest.data.direct_scan import read_direct
from quantbot.backtest.data.load import fingerprint_candles, load_candles
from quantbot.errors import DataError

MIN = 60_000
T0 = 1_767_614_400_000  # 2026-01-05T12:00:00Z
ROLES = {r: r for r in ("mint", "ts", "open", "high", "low", "close", "volume")}
SQL = "SELECT * FROM candles"  # a query: the same source through the SQL path


def load(source: object, alerts: pa.Table, **kw: object):
    return load_candles(source, alerts, interval_ms=MIN, horizon_ms=20 * MIN,
                        pre_window_ms=5 * MIN, **kw)


def same(a, b) -> bool:
    return (fingerprint_candles(a) == fingerprint_candles(b) and a.warnings == b.warnings
            and a.mints == b.mints)


def candle_table(rng: np.random.Generator, n_mints: int, n_bars: int) -> pa.Table:
    mint = np.repeat([f"M{j}" for j in range(n_mints)], n_bars)
    start = T0 + rng.integers(0, 30, n_mints) * MIN
    ts = (start[:, None] + np.arange(n_bars)[None, :] * MIN).ravel()
    close = np.round(rng.uniform(1, 2, ts.size), 3)
    return pa.table({"mint": mint, "ts": ts, "open": close, "high": close + 0.5,
                     "low": close - 0.5, "close": close, "volume": rng.uniform(0, 9, ts.size)})


def alerts_for(rng: np.random.Generator, n_mints: int, n: int) -> pa.Table:
    mint = [f"M{j}" for j in rng.integers(0, n_mints + 1, n)]  # M<n_mints>: not in the source
    return pa.table({"mint": mint, "alert_ts_ms": pa.array(T0 + rng.integers(-5, 80, n) * MIN,
                                                           pa.int64())})


@st.composite
def sources(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_mints = draw(st.integers(1, 4))
    table = candle_table(rng, n_mints, draw(st.integers(2, 60)))
    ts = table.column("ts").to_numpy()
    unit = draw(st.sampled_from(["ms", "s", "timestamp_ms", "timestamp_us", "timestamp_ns", "naive"]))
    if unit == "s":
        ts = ts // 1000
        table = table.set_column(1, "ts", pa.array(ts))
    elif unit != "ms":
        kind = {"timestamp_ms": pa.timestamp("ms", "UTC"), "timestamp_us": pa.timestamp("us", "UTC"),
                "timestamp_ns": pa.timestamp("ns", "UTC"), "naive": pa.timestamp("us")}[unit]
        scale = {"ms": 1, "us": 1000, "ns": 1_000_000}[kind.unit]
        table = table.set_column(1, "ts", pa.array(ts * scale, pa.int64()).cast(kind))
    if draw(st.booleans()):
        table = table.set_column(2, "open", table.column("open").cast(pa.float32()))
    if draw(st.booleans()):  # empty prices: NaN on both paths
        high = table.column("high").to_pylist()
        for i in draw(st.lists(st.integers(0, len(high) - 1), max_size=3)):
            high[i] = None
        table = table.set_column(3, "high", pa.array(high, pa.float64()))
    if draw(st.booleans()):
        table = table.drop_columns(["volume"])
    if draw(st.booleans()):
        table = table.set_column(0, "mint", table.column("mint").dictionary_encode())
    if draw(st.booleans()):  # identical duplicates
        table = pa.concat_tables([table, table.slice(0, draw(st.integers(1, 5)))])
    if draw(st.booleans()):  # rows in no particular order
        table = table.take(rng.permutation(table.num_rows))
    return table, alerts_for(rng, n_mints, draw(st.integers(1, 12))), draw(st.integers(3, 50))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=sources())
def test_fast_path_equals_the_sql_path(tmp_path: Path, case) -> None:
    table, alerts, row_group = case
    path = tmp_path / "c.parquet"
    pq.write_table(table, path, row_group_size=row_group)
    fast, slow = load(path, alerts), load(path, alerts, query=SQL)
    assert same(fast, slow)
    in_memory = load(table, alerts)  # the same rows as an Arrow table
    assert same(in_memory, load(table, alerts, query=SQL))
    assert fingerprint_candles(in_memory) == fingerprint_candles(slow)


def test_the_fast_path_is_taken_for_a_plain_file_and_not_where_it_could_differ(tmp_path):
    rng = np.random.default_rng(1)
    table = candle_table(rng, 2, 30)
    plain = tmp_path / "plain.parquet"
    pq.write_table(table, plain)
    args = (["M0", "M1"], np.array([0, 1]), np.array([T0, T0]), np.array([T0 + 9 * MIN] * 2))
    got = read_direct(plain, None, ROLES, None, *args, None, "UTC")
    assert got is not None and got.ts_unit == "ms"
    assert got.rows["ts_ms"].size == int(((table.column("ts").to_numpy() <= T0 + 9 * MIN)
                                          & (table.column("ts").to_numpy() >= T0)).sum())
    empty_price = tmp_path / "empty_price.parquet"  # read as NaN by both paths
    pq.write_table(table.set_column(5, "close", pa.array([None] + table.column("close")
                                                         .to_pylist()[1:], pa.float64())), empty_price)
    empty_time = tmp_path / "empty_time.parquet"  # skipped and noted by the SQL path
    pq.write_table(table.set_column(1, "ts", pa.array([None] + table.column("ts")
                                                      .to_pylist()[1:], pa.int64())), empty_time)
    floats = tmp_path / "float_ts.parquet"
    pq.write_table(table.set_column(1, "ts", table.column("ts").cast(pa.float64())), floats)
    naive = tmp_path / "naive.parquet"
    pq.write_table(table.set_column(1, "ts", table.column("ts").cast(pa.timestamp("ms"))), naive)
    assert read_direct(empty_price, None, ROLES, None, *args, None, "UTC") is not None
    assert read_direct(empty_time, None, ROLES, None, *args, None, "UTC") is None
    assert read_direct(floats, None, ROLES, None, *args, None, "UTC") is None
    assert read_direct(naive, None, ROLES, None, *args, None, "Europe/Paris") is None
    assert read_direct(naive, None, ROLES, None, *args, None, "UTC") is not None


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_sources_the_fast_path_declines_still_load_like_sql(tmp_path, tz):
    rng = np.random.default_rng(2)
    table = candle_table(rng, 2, 40)
    closes = table.column("close").to_pylist()
    closes[3] = None  # a null price: the row is dropped by both paths
    table = table.set_column(5, "close", pa.array(closes, pa.float64()))
    table = table.set_column(1, "ts", table.column("ts").cast(pa.timestamp("ms")))  # naive
    path = tmp_path / "c.parquet"
    pq.write_table(table, path)
    alerts = alerts_for(rng, 2, 8)
    assert same(load(path, alerts, tz=tz), load(path, alerts, tz=tz, query=SQL))


@pytest.mark.parametrize(("values", "unit"), [([-5, 1, 2], None), ([10**17, 1, 2], "s")])
def test_timestamps_sql_refuses_are_refused_with_its_message(tmp_path, values, unit):
    table = pa.table({"mint": ["A"] * 3, "ts": pa.array(values, pa.int64()),
                      "open": [1.0] * 3, "high": [1.0] * 3, "low": [1.0] * 3, "close": [1.0] * 3})
    path = tmp_path / "c.parquet"
    pq.write_table(table, path)
    alerts = pa.table({"mint": ["A"], "alert_ts_ms": pa.array([T0], pa.int64())})
    with pytest.raises(DataError) as fast:
        load(path, alerts, ts_unit=unit)
    with pytest.raises(DataError) as slow:
        load(path, alerts, ts_unit=unit, query=SQL)
    assert str(fast.value) == str(slow.value)
    assert "column 'ts' row 1: value" in str(fast.value)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_an_empty_price_excludes_its_window_and_an_empty_time_is_noted(tmp_path, kind):
    rows = [f"A,{T0 + i * MIN},1,2,0.5,1.5,10" for i in range(30)]
    rows[12] = f"A,{T0 + 12 * MIN},1,,0.5,1.5,10"  # a blank high
    rows.append("A,,1,2,0.5,1.5,10")  # a row with no time
    csv = tmp_path / "c.csv"
    csv.write_text("\n".join(["mint,ts,open,high,low,close,volume", *rows]) + "\n")
    source = csv
    if kind == "parquet":
        source = tmp_path / "c.parquet"
        pq.write_table(pacsv.read_csv(csv), source)
    alerts = pa.table({"mint": ["A"], "alert_ts_ms": pa.array([T0 + 5 * MIN], pa.int64())})
    candles = load(source, alerts)
    assert np.isnan(candles.high[12]) and candles.n_rows == 27  # the window: 5 before, 21 after
    (note,) = candles.warnings
    assert note.details == {"kind": "empty_key", "rows": 1, "row": 31}
    assert "1 row(s) with an empty asset or time skipped; first: row 31" in note.message


def test_a_query_naming_a_missing_table_over_a_file_says_which_view_it_sees(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("mint,ts,open,high,low,close\nA,1767614400000,1,1,1,1\n")
    alerts = pa.table({"mint": ["A"], "alert_ts_ms": pa.array([T0], pa.int64())})
    with pytest.raises(DataError) as err:
        load(path, alerts, query="SELECT * FROM calls")
    assert "\n" not in str(err.value)
    assert str(err.value).endswith("(a query sees this source as the view 'candles')")
