"""Column mapping, aliases, single-asset sources, queries on any source and the alerts'
side (issue 10), over real CSV/Parquet files in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantbot.backtest.data.columns import ROLE_KEYS, parse_column_map
from quantbot.backtest.data.inputs import InputSpec, load_alert_inputs, load_candle_inputs
from quantbot.backtest.data.load import ALERT_COLUMNS, load_alerts, load_candles
from quantbot.errors import DataError

MIN, DAY = 60_000, 86_400_000
T0 = 1_767_614_400_000  # 2026-01-05T12:00:00Z
D0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z, a Monday


def write_text(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def alerts_csv(tmp_path: Path, header: str = "call_id,mint,caller,alert_ts_ms",
               rows: tuple[str, ...] = ("1,A,bob,{t}", "2,B,al,{t}")) -> Path:
    return write_text(tmp_path / "a.csv", [header, *(r.format(t=T0) for r in rows)])


# --- the mapping parser ------------------------------------------------------------------

def test_text_and_dict_forms_give_the_same_roles():
    text = "call_id=id, alert_ts=alert_time,symbol=ticker,caller_name=caller"
    want = {"call_id": "id", "alert_ts_ms": "alert_time", "mint": "ticker", "caller_name": "caller"}
    assert parse_column_map(text, "alerts") == want
    assert parse_column_map({"call_id": "id", "ALERT_TS": "alert_time", "asset": "ticker",
                             "caller_name": "caller"}, "alerts") == want
    assert parse_column_map("timestamp=Date,mint=pair", "candles") == {"ts": "Date", "mint": "pair"}
    assert parse_column_map(None, "candles") == {} and parse_column_map("", "alerts") == {}


@pytest.mark.parametrize("value, what, match", [
    ("mint", "alerts", r"--alerts-columns: 'mint' is not role=column \(roles: call_id, mint,"),
    ("mint=", "alerts", r"'mint=' is not role=column"),
    ("=sym", "candles", r"--candles-columns: '=sym' is not role=column"),
    ("price=close", "candles", (r"unknown role 'price' \(roles: mint, ts, open, high, low, "
                                r"close, volume, timestamp, symbol, asset\)")),
    ("alert_ts=a,alert_ts_ms=b", "alerts", r"role 'alert_ts_ms' is mapped twice"),
    ({"mint": 3}, "alerts", r"role 'mint' needs a column name"),
    (["mint=a"], "alerts", r"expected 'role=column,...' or a dict"),
])
def test_bad_mappings_are_one_line_naming_the_valid_roles(value, what, match):
    with pytest.raises(DataError, match=match) as err:
        parse_column_map(value, what)
    assert "\n" not in str(err.value)


names = st.text(st.characters(blacklist_characters=",=", blacklist_categories=("Cs", "Cc", "Z")),
                min_size=1, max_size=8)


@given(st.sampled_from(["alerts", "candles"]).flatmap(
    lambda what: st.tuples(st.just(what), st.dictionaries(
        st.sampled_from(sorted(set(ROLE_KEYS[what].values()))), names, max_size=7))))
def test_mapping_round_trips_through_its_text_form(case):
    what, mapping = case
    text = ",".join(f"{role}={column}" for role, column in mapping.items())
    assert parse_column_map(text, what) == mapping
    assert parse_column_map(mapping, what) == mapping


# --- aliases and mapped columns ------------------------------------------------------------

@pytest.mark.parametrize("alias", ["symbol", "ticker", "asset", "instrument", "pair", "Symbol",
                                   "TICKER", "token_address"])
def test_alert_mint_aliases(tmp_path, alias):
    alerts = load_alerts(alerts_csv(tmp_path, f"call_id,{alias},caller,alert_ts_ms"))
    assert alerts.column("mint").to_pylist() == ["A", "B"]


@pytest.mark.parametrize("alias", ["Date", "Datetime", "time", "timestamp", "TIMESTAMP", "alert_time"])
def test_alert_time_aliases(tmp_path, alias):
    alerts = load_alerts(alerts_csv(tmp_path, f"call_id,mint,caller,{alias}",
                                    ("1,A,bob,2026-01-05 12:00:00",)))
    assert alerts.column("alert_ts_ms").to_pylist() == [T0]


def daily_rows(days: int) -> list[tuple[int, float]]:
    return [(D0 + i * DAY, 100.0 + i) for i in range(days)]


@pytest.mark.parametrize("mint, ts", [("symbol", "Date"), ("ticker", "Datetime"), ("asset", "time"),
                                      ("instrument", "timestamp"), ("pair", "date"), ("Symbol", "DATE")])
def test_candle_aliases_with_capitalised_ohlcv(tmp_path, mint, ts):
    lines = [f"{mint},{ts},Open,High,Low,Close,Volume"]
    lines += [f"AAPL,{t},{p},{p + 1},{p - 1},{p + 0.5},1000" for t, p in daily_rows(10)]
    path = write_text(tmp_path / "c.csv", lines)
    alerts = pa.table({"mint": ["AAPL"], "alert_ts_ms": pa.array([D0 + 2 * DAY], pa.int64())})
    got = load_candles(path, alerts, interval_ms=DAY, horizon_ms=3 * DAY, pre_window_ms=DAY)
    assert got.mints == ("AAPL",)
    assert got.ts_ms.tolist() == [D0 + i * DAY for i in range(1, 7)]
    assert got.close.tolist() == [100.5 + i for i in range(1, 7)]


def test_mapping_fixes_what_the_aliases_cannot(tmp_path):
    path = write_text(tmp_path / "alerts_daily.csv",
                      ["id,alert_time,code,caller,score", f"1,{T0},A,bob,3", f"2,{T0 + MIN},B,al,4"])
    with pytest.raises(DataError) as err:
        load_alerts(path)
    assert str(err.value).endswith(
        "missing column 'mint' (also accepted: token_address, mint_address, token_mint, address, "
        "contract_address, ca, symbol, ticker, asset, instrument, pair); columns present: id, "
        "alert_time, code, caller, score; map one with --alerts-columns mint=<column> "
        "(alerts_columns= in Python)")
    alerts = load_alerts(path, columns="mint=code")
    assert alerts.column_names == [*ALERT_COLUMNS, "score"]
    assert alerts.column("mint").to_pylist() == ["A", "B"]
    assert alerts.column("call_id").to_pylist() == ["1", "2"]


def test_a_mapped_column_that_is_absent_lists_the_columns(tmp_path):
    with pytest.raises(DataError, match=r"a\.csv: --alerts-columns maps mint to column 'sym', which "
                                        r"is not there; columns present: call_id, mint, caller, alert_ts_ms"):
        load_alerts(alerts_csv(tmp_path), columns={"mint": "sym"})


def test_a_mapped_column_is_no_candidate_for_another_role(tmp_path):
    # 'time' would be an alert-time alias; mapped to caller_name it is the caller.
    path = write_text(tmp_path / "a.csv", ["call_id,mint,time,when", f"1,A,bob,{T0}"])
    alerts = load_alerts(path, columns="caller_name=time,alert_ts=when")
    assert alerts.column("caller_name").to_pylist() == ["bob"]
    assert alerts.column("alert_ts_ms").to_pylist() == [T0]


def test_ambiguous_aliases_name_the_mapping_flag(tmp_path):
    with pytest.raises(DataError, match=r"column 'mint' is ambiguous: candidates symbol, pair; .*"
                                        r"--alerts-columns mint=<column>"):
        load_alerts(alerts_csv(tmp_path, "call_id,symbol,pair,caller,alert_ts_ms",
                               ("1,A,A,bob,{t}",)))


# --- single-asset sources -----------------------------------------------------------------

def single_stock_csv(tmp_path: Path) -> Path:
    lines = ["Date,Open,High,Low,Close,Volume"]
    days = [D0 + i * DAY for i in range(28) if (i % 7) < 5]  # weekdays
    lines += [f"{np.datetime_as_string(np.datetime64(t, 'ms'), unit='D')},{10 + i},{11 + i},"
              f"{9 + i},{10.5 + i},{1000 + i}" for i, t in enumerate(days)]
    return write_text(tmp_path / "GOOG.csv", lines)


def test_single_asset_candles_with_symbol(tmp_path):
    path = single_stock_csv(tmp_path)
    alerts = pa.table({"mint": ["GOOG", "MSFT"], "alert_ts_ms": pa.array([D0 + 7 * DAY] * 2, pa.int64())})
    got = load_candles(path, alerts, interval_ms=DAY, horizon_ms=5 * DAY, pre_window_ms=DAY,
                       symbol="GOOG")
    assert got.mints == ("GOOG",)
    assert got.ts_ms.tolist() == [D0 + d * DAY for d in (7, 8, 9, 10, 11, 14)]
    assert got.close.tolist() == [15.5, 16.5, 17.5, 18.5, 19.5, 20.5]


def test_single_asset_candles_take_the_one_mint_of_the_alerts(tmp_path):
    path = single_stock_csv(tmp_path)
    alerts = pa.table({"mint": ["GOOG", "GOOG"],
                       "alert_ts_ms": pa.array([D0 + 7 * DAY, D0 + 14 * DAY], pa.int64())})
    got = load_candles(path, alerts, interval_ms=DAY, horizon_ms=2 * DAY, pre_window_ms=DAY)
    assert got.mints == ("GOOG",) and got.first_ts_ms.tolist() == [D0]
    two = pa.table({"mint": ["GOOG", "MSFT"], "alert_ts_ms": pa.array([D0] * 2, pa.int64())})
    with pytest.raises(DataError, match=r"GOOG\.csv: no asset column \(columns present: Date, Open, "
                                        r"High, Low, Close, Volume\) and the alerts name several "
                                        r"mints; give its asset with --symbol NAME or map one with "
                                        r"--candles-columns mint=COLUMN"):
        load_candles(path, two, interval_ms=DAY, horizon_ms=2 * DAY, pre_window_ms=DAY)


def test_alerts_without_an_asset_column_take_symbol(tmp_path):
    path = write_text(tmp_path / "a.csv", ["id,Date,caller", "1,2024-01-08,me", "2,2024-01-15,me"])
    alerts = load_alerts(path, symbol="GOOG")
    assert alerts.column("mint").to_pylist() == ["GOOG", "GOOG"]
    assert alerts.column("alert_ts_ms").to_pylist() == [D0 + 7 * DAY, D0 + 14 * DAY]
    spec = InputSpec(alerts=path, candles=single_stock_csv(tmp_path), symbol="GOOG")
    loaded, _ = load_alert_inputs(spec)
    candles, record = load_candle_inputs(spec, loaded, interval_ms=DAY, horizon_ms=2 * DAY,
                                         pre_window_ms=DAY)
    assert candles.mints == ("GOOG",) and record.rows == candles.n_rows > 0


# --- queries on any source ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["csv", "parquet", "folder", "memory"])
def test_queries_see_the_views_alerts_and_candles(tmp_path, kind):
    alerts = pa.table({"call_id": ["1", "2", "3"], "mint": ["A", "B", "A"],
                       "caller_name": ["bob", "al", "al"],
                       "alert_ts_ms": pa.array([T0, T0, T0 + 30 * MIN], pa.int64())})
    ts = T0 - 10 * MIN + np.arange(100, dtype=np.int64) * MIN
    candles = pa.table({"mint": ["A"] * 100 + ["B"] * 100, "ts": np.concatenate([ts, ts]),
                        "open": np.ones(200), "high": np.full(200, 2.0), "low": np.full(200, 0.5),
                        "close": np.r_[np.ones(100), np.full(100, 3.0)], "volume": np.ones(200)})
    sources = {"memory": (alerts, candles)}
    if kind == "csv":
        pacsv.write_csv(alerts, tmp_path / "a.csv")
        pacsv.write_csv(candles, tmp_path / "c.csv")
        sources[kind] = (tmp_path / "a.csv", tmp_path / "c.csv")
    elif kind in ("parquet", "folder"):
        (tmp_path / "f").mkdir()
        pq.write_table(alerts, tmp_path / "a.parquet")
        pq.write_table(candles, tmp_path / ("f/part.parquet" if kind == "folder" else "c.parquet"))
        sources[kind] = (tmp_path / "a.parquet", tmp_path / ("f" if kind == "folder" else "c.parquet"))
    a_src, c_src = sources[kind]
    picked = load_alerts(a_src, query="SELECT * FROM alerts WHERE caller_name = 'al';")
    assert picked.column("call_id").to_pylist() == ["2", "3"]
    got = load_candles(c_src, picked, interval_ms=MIN, horizon_ms=10 * MIN, pre_window_ms=0,
                       query="SELECT * FROM candles WHERE close > 2")  # B only
    assert got.mints == ("B",) and set(got.close.tolist()) == {3.0}
    with pytest.raises(DataError, match=r"table applies to DuckDB databases only \(a query sees "
                                        r"this source as the view 'alerts'\)"):
        load_alerts(a_src, table="alerts")


# --- side --------------------------------------------------------------------------------

@pytest.mark.parametrize("header", ["side", "direction", "Side"])
def test_side_column_is_read_case_insensitively(tmp_path, header):
    path = alerts_csv(tmp_path, f"call_id,mint,caller,alert_ts_ms,{header}",
                      ("1,A,bob,{t},LONG", "2,B,al,{t}, Short"))
    alerts = load_alerts(path)
    assert alerts.column_names == list(ALERT_COLUMNS)
    assert alerts.column("side").to_pylist() == ["long", "short"]


def test_side_option_and_its_conflicts(tmp_path):
    assert load_alerts(alerts_csv(tmp_path)).column("side").to_pylist() == ["long", "long"]
    assert load_alerts(alerts_csv(tmp_path), side="short").column("side").to_pylist() == ["short"] * 2
    with_side = alerts_csv(tmp_path, "call_id,mint,caller,alert_ts_ms,side", ("1,A,bob,{t},long",))
    with pytest.raises(DataError, match=r"--side short given, but column 'side' holds each alert's side"):
        load_alerts(with_side, side="short")
    bad = alerts_csv(tmp_path, "call_id,mint,caller,alert_ts_ms,direction",
                     ("1,A,bob,{t},long", "2,B,al,{t},buy"))
    with pytest.raises(DataError, match=r"a\.csv: column 'direction' row 2: value 'buy' is not a side"):
        load_alerts(bad)
    with pytest.raises(DataError, match=r"side: expected 'long' or 'short', got 'up'"):
        load_alerts(alerts_csv(tmp_path), side="up")


# --- InputSpec ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"alerts_columns": "mint"}, "--alerts-columns: 'mint' is not role=column"),
    ({"candles_columns": {"price": "close"}}, "--candles-columns: unknown role 'price'"),
    ({"tz": "Mars/Olympus"}, "tz: unknown time zone 'Mars/Olympus'"),
    ({"side": "sideways"}, "side: expected 'long' or 'short'"),
    ({"duplicates": "newest"}, "duplicates: expected 'error', 'first' or 'last'"),
    ({"symbol": ""}, "symbol: expected a non-empty string"),
    ({"candles_ts_format": "%Y %Q"}, "--candles-ts-format '%Y %Q': .*Unrecognized format .*%Q"),
    ({"candles_query": "SELECT 1", "candles_table": "t"}, "candles: pass either a query or a table"),
])
def test_input_spec_refuses_bad_options_before_anything_runs(tmp_path, kwargs, match):
    with pytest.raises(DataError, match=match):
        InputSpec(alerts=tmp_path / "a.csv", candles=tmp_path / "c.csv", **kwargs)


def test_input_spec_round_trips_the_new_options(tmp_path):
    spec = InputSpec(alerts=alerts_csv(tmp_path), candles=single_stock_csv(tmp_path),
                     candles_query="SELECT * FROM candles", alerts_columns="caller_name=caller",
                     candles_columns={"timestamp": "Date"}, symbol="GOOG",
                     alerts_ts_format="%Y-%m-%d", candles_ts_format="%Y-%m-%d",
                     tz="America/New_York", side="SHORT", duplicates="last")
    assert spec.alerts_columns == {"caller_name": "caller"} and spec.candles_columns == {"ts": "Date"}
    assert spec.side == "short"
    keys = ("ts_unit", "date_from", "date_to", "alerts_columns", "candles_columns", "symbol",
            "alerts_ts_format", "candles_ts_format", "tz", "side", "duplicates")
    records = {"alerts": {"path": spec.alerts, "table": None, "query": None},
               "candles": {"path": spec.candles, "table": None, "query": spec.candles_query}}
    parameters = {**{k: getattr(spec, k) for k in keys}, "inputs": records}
    assert parameters["inputs"]["candles"]["query"] == "SELECT * FROM candles"
    assert InputSpec.from_manifest(parameters) == spec
    old_run = {"inputs": records}  # a run recorded before these options
    assert InputSpec.from_manifest(old_run).tz == "UTC"
