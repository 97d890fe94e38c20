"""Real market data, read from the files as a user has them, checked trade by trade.

Daily GOOG (one stock, no asset column) and hourly EURUSD (naive timestamps) from
``backtesting.test``, daily AAPL/GOOG/IBM/MSFT/FB from ``bokeh_sampledata`` (one file for all
tickers). The files are copied unchanged (or converted as a user would, e.g. to Parquet),
alerts are CSVs with the user's own column names, and every trade and path metric is
compared with ``market_reference`` (plain Python, written from the contract) to 1e-9
relative. The "renamed" layout is the same data with quantbot's own column names and epoch
ms, the only way before bring-your-own-data.
"""

from __future__ import annotations

import calendar
import csv
import gzip
import itertools
import json
import math
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from market_reference import Candle, Window, path_metrics, realized_bps, simulate, tail_capture
from market_reference import usual_gap_ms as ref_usual_gap
from market_reference import window as ref_window
from qbtest import assert_clean_error, run_main

from quantbot.artifacts.schema.arrow_schemas import ARTIFACT_SPECS, ArtifactType
from quantbot.backtest import run_path_only, run_policy_backtest
from quantbot.durations import format_duration, parse_duration

DAY_MS, HOUR_MS = 86_400_000, 3_600_000
ALERT_MAP = {"call_id": "id", "alert_ts": "alert_time", "mint": "symbol", "caller_name": "caller"}
ALERT_MAP_FLAG = "call_id=id,alert_ts=alert_time,mint=symbol,caller_name=caller"
CALLERS = ("ana", "bo", "cy")
N_PICKS = 30
USER_COMBOS = [("long", "close"), ("long", "next-open"), ("short", "close"),
               ("short", "next-open")]


def _package_file(module: str, *parts: str) -> Path:
    """A data file shipped inside an installed package (as a user finds it)."""
    mod = __import__(module, fromlist=["_"])
    return Path(mod.__file__).parent.joinpath(*parts)


GOOG_CSV = _package_file("backtesting.test", "GOOG.csv")
EURUSD_CSV = _package_file("backtesting.test", "EURUSD.csv")
BTCUSD_CSV = _package_file("backtesting.test", "BTCUSD.csv")
STOCKS_CSV_GZ = _package_file("bokeh_sampledata", "_data", "stocks.csv.gz")


def _epoch_ms(text: str, tz: str = "UTC") -> int:
    """A naive 'YYYY-MM-DD[ HH:MM:SS]' wall time in ``tz`` as epoch ms (UTC)."""
    naive = datetime.fromisoformat(text)
    if tz == "UTC":
        return calendar.timegm(naive.timetuple()) * 1000
    return int(naive.replace(tzinfo=ZoneInfo(tz)).timestamp()) * 1000


def _wall_time(ts_ms: int, tz: str) -> datetime:
    """Epoch ms as the naive wall time a user in ``tz`` writes down."""
    return datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(tz)).replace(tzinfo=None)


@dataclass(frozen=True)
class Bar(Candle):
    """A candle as the file has it: the reference reads the prices, the renamed file all."""

    volume: float


def _read_candles(rows: list[dict[str, str]], ts_col: str, tz: str,
                  asset: str | None) -> dict[str, list[Bar]]:
    """Asset -> candles sorted by open time, from CSV rows (``asset`` None: a Ticker column)."""
    out: dict[str, list[Bar]] = {}
    for r in rows:
        c = Bar(_epoch_ms(r[ts_col], tz), float(r["Open"]), float(r["High"]), float(r["Low"]),
                float(r["Close"]), float(r["Volume"]))
        out.setdefault(asset or r["Ticker"], []).append(c)
    return {k: sorted(v, key=lambda c: c.ts_ms) for k, v in out.items()}


def _csv_rows(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        return list(csv.DictReader(f))


@dataclass(frozen=True)
class Alert:
    call_id: str
    symbol: str
    caller: str
    ts_ms: int


@dataclass(frozen=True)
class Market:
    """One data set: its candles (the reference's view), a run's settings, the user's file."""

    name: str
    candles: dict[str, list[Bar]]
    tz: str
    interval: str
    horizon: str
    horizon_ms: int
    offset_ms: int  # alerts come this long before the candle they enter on
    fees: dict[str, float]
    levels: tuple[float, ...] | str
    level_values: tuple[float, ...]
    activity_move_pct: float
    policies: dict[str, dict[str, Any]]
    user_candles: Path
    user_options: dict[str, Any] = field(default_factory=dict)


def _daily_policies() -> dict[str, dict[str, Any]]:
    return {"fixed_stop": {"kind": "fixed_stop", "stop_pct": 0.03, "take_profit_pct": 0.05},
            "time_stop": {"kind": "time_stop", "max_hold_ms": 5 * DAY_MS,
                          "take_profit_pct": 0.04},
            "trailing_stop": {"kind": "trailing_stop", "activation_pct": 0.02,
                              "trail_pct": 0.02, "hard_stop_pct": 0.05}}


def _fx_policies() -> dict[str, dict[str, Any]]:
    return {"fixed_stop": {"kind": "fixed_stop", "stop_pct": 0.002, "take_profit_pct": 0.003},
            "time_stop": {"kind": "time_stop", "max_hold_ms": 6 * HOUR_MS,
                          "take_profit_pct": 0.004},
            "trailing_stop": {"kind": "trailing_stop", "activation_pct": 0.001,
                              "trail_pct": 0.001, "hard_stop_pct": 0.003}}


EQUITY_FEES = {"taker_fee_bps": 1.0, "slippage_bps": 2.0}
FX_FEES = {"taker_fee_bps": 0.0, "slippage_bps": 1.0}
DAILY_LEVELS = (1.05, 1.1, 1.2)


def _goog(folder: Path) -> Market:
    """GOOG.csv copied unchanged: an unnamed date column (DuckDB calls it column0)."""
    shutil.copy(GOOG_CSV, folder / "GOOG.csv")
    return Market("goog", _read_candles(_csv_rows(GOOG_CSV), "", "UTC", "GOOG"), "UTC", "1d",
                  "10d", 10 * DAY_MS, 3 * HOUR_MS, EQUITY_FEES, DAILY_LEVELS, DAILY_LEVELS, 0.1,
                  _daily_policies(), folder / "GOOG.csv",
                  {"symbol": "GOOG", "candles_columns": {"ts": "column0"}})


def _eurusd(folder: Path) -> Market:
    """EURUSD.csv copied unchanged: naive hourly times, here taken as New York wall time."""
    shutil.copy(EURUSD_CSV, folder / "EURUSD.csv")
    tz = "America/New_York"
    return Market("eurusd", _read_candles(_csv_rows(EURUSD_CSV), "", tz, "EURUSD"), tz, "1h",
                  "24h", 24 * HOUR_MS, 10 * 60_000, FX_FEES, "1.002,1.005", (1.002, 1.005),
                  0.002, _fx_policies(), folder / "EURUSD.csv",
                  {"symbol": "EURUSD", "candles_columns": {"ts": "column0"}, "tz": tz})


def _stocks(folder: Path) -> Market:
    """bokeh's stocks.csv.gz copied unchanged: Ticker, Date, capitalised OHLCV, Adj Close."""
    shutil.copy(STOCKS_CSV_GZ, folder / "stocks.csv.gz")
    return Market("stocks", _read_candles(_csv_rows(STOCKS_CSV_GZ), "Date", "UTC", None), "UTC",
                  "1d", "10d", 10 * DAY_MS, 3 * HOUR_MS, EQUITY_FEES, DAILY_LEVELS, DAILY_LEVELS,
                  0.1, _daily_policies(), folder / "stocks.csv.gz",
                  {"candles_columns": {"mint": "Ticker", "ts": "Date"}})


def _picks(m: Market) -> list[Alert]:
    """30 alerts spread over the data, round robin over the assets, plus three that a user
    gets excluded: an unknown asset, the last candle (no full horizon), one before the
    asset's first candle."""
    assets = sorted(m.candles)
    alerts = []
    for k in range(N_PICKS):
        asset = assets[k % len(assets)]
        bars = m.candles[asset]
        i = 1 + (k // len(assets) + 1) * (len(bars) - 40) // (N_PICKS // len(assets) + 2)
        alerts.append(Alert(f"{m.name}-{k:02d}", asset, CALLERS[k % 3], bars[i].ts_ms - m.offset_ms))
    first = min(assets, key=lambda a: m.candles[a][0].ts_ms)
    late = max(assets, key=lambda a: m.candles[a][0].ts_ms)
    alerts.append(Alert(f"{m.name}-nope", "NOPE", "cy", m.candles[first][100].ts_ms))
    alerts.append(Alert(f"{m.name}-end", first, "ana", m.candles[first][-1].ts_ms - m.offset_ms))
    alerts.append(Alert(f"{m.name}-early", late, "bo", m.candles[late][0].ts_ms - 30 * DAY_MS))
    return alerts


def _write_user_alerts(path: Path, alerts: list[Alert], tz: str) -> Path:
    """The user's alerts: id, alert_time (naive wall time in tz), symbol, caller."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "alert_time", "symbol", "caller"])
        for a in alerts:
            w.writerow([a.call_id, _wall_time(a.ts_ms, tz).isoformat(sep=" "), a.symbol, a.caller])
    return path


def _write_renamed(folder: Path, m: Market, alerts: list[Alert]) -> tuple[Path, Path]:
    """The same data under quantbot's own column names, times as epoch ms."""
    with open(folder / f"{m.name}_alerts_renamed.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["call_id", "mint", "caller_name", "alert_ts_ms"])
        w.writerows([a.call_id, a.symbol, a.caller, a.ts_ms] for a in alerts)
    with open(folder / f"{m.name}_candles_renamed.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["mint", "ts", "open", "high", "low", "close", "volume"])
        w.writerows([asset, c.ts_ms, repr(c.open), repr(c.high), repr(c.low), repr(c.close),
                     repr(c.volume)]
                    for asset, bars in sorted(m.candles.items()) for c in bars)
    return folder / f"{m.name}_alerts_renamed.csv", folder / f"{m.name}_candles_renamed.csv"


@dataclass(frozen=True)
class Prepared:
    market: Market
    alerts: list[Alert]
    user: tuple[Path, Path]
    renamed: tuple[Path, Path]


class Markets(dict[str, Prepared]):
    """The prepared data sets by name, with a short repr (hypothesis prints its arguments)."""

    def __repr__(self) -> str:
        return f"Markets({', '.join(self)})"


@pytest.fixture(scope="module")
def markets(tmp_path_factory: pytest.TempPathFactory) -> Markets:
    folder = tmp_path_factory.mktemp("market")
    out = Markets()
    for make in (_goog, _eurusd, _stocks):
        m = make(folder)
        alerts = _picks(m)
        user_alerts = _write_user_alerts(folder / f"{m.name}_alerts.csv", alerts, m.tz)
        out[m.name] = Prepared(m, alerts, (user_alerts, m.user_candles),
                               _write_renamed(folder, m, alerts))
    return out


def _windows(p: Prepared, entry: str = "close", max_entry_delay_ms: int | None = None,
             alerts: list[Alert] | None = None) -> dict[str, tuple[Alert, Window]]:
    m = p.market
    return {a.call_id: (a, ref_window(m.candles.get(a.symbol, []), a.ts_ms,
                                      horizon_ms=m.horizon_ms, entry=entry,
                                      max_entry_delay_ms=max_entry_delay_ms))
            for a in (p.alerts if alerts is None else alerts)}


def _options(p: Prepared, layout: str, side: str, entry: str, base: Path,
             levels: bool) -> dict[str, Any]:
    """Keyword arguments of a run; the defaults (long, close, levels 2,3,4) are left out so
    that the renamed layout runs on the options that exist without bring-your-own-data."""
    m = p.market
    opts: dict[str, Any] = {"interval": m.interval, "horizon": m.horizon, "base_dir": base,
                            "durable": False, "activity_move_pct": m.activity_move_pct}
    if layout == "user":
        opts.update(m.user_options, alerts_columns=ALERT_MAP)
    if side != "long":
        opts["side"] = side
    if entry != "close":
        opts["entry"] = entry
    if levels:
        opts["levels"] = m.levels
    return opts


def _same(actual: Any, expected: Any, where: str) -> None:
    """Equal, floats to 1e-9 relative (and 1e-9 bps absolute around zero)."""
    if isinstance(expected, float) and actual is not None:
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9), (where, actual, expected)
    else:
        assert actual == expected, (where, actual, expected)


def _table(run_dir: str, kind: str) -> list[dict[str, Any]]:
    return pq.read_table(Path(run_dir) / ARTIFACT_SPECS[ArtifactType(kind)].path).to_pylist()


def _rows(run_dir: str, kind: str) -> dict[str, dict[str, Any]]:
    return {r["call_id"]: r for r in _table(run_dir, kind)}


def _check_coverage(result: Any, windows: dict[str, tuple[Alert, Window]],
                    min_eligible: int = N_PICKS - 1) -> list[str]:
    """Exclusions as the reference predicts them; returns the eligible call ids."""
    reasons = Counter(w.reason for _, w in windows.values() if w.reason)
    assert result.status == "completed"
    assert result.excluded == dict(reasons)
    eligible = [cid for cid, (_, w) in windows.items() if w.reason is None]
    assert result.eligible == len(eligible) >= min_eligible
    return eligible


def _check_paths(result: Any, p: Prepared, side: str, windows: dict[str, tuple[Alert, Window]],
                 levels: tuple[float, ...], min_eligible: int = N_PICKS - 1) -> None:
    eligible = _check_coverage(result, windows, min_eligible)
    rows = _rows(result.run_dir, "paths")
    assert sorted(rows) == sorted(eligible)
    for cid in eligible:
        alert, w = windows[cid]
        expected = path_metrics(w, side, alert.ts_ms, levels, p.market.activity_move_pct)
        for col, value in expected.items():
            _same(rows[cid][col], value, f"{cid}.{col}")


def _check_trades(result: Any, p: Prepared, side: str, policy: dict[str, Any],
                  windows: dict[str, tuple[Alert, Window]]) -> Counter[str]:
    """Every trade as the reference has it; returns the count of each exit reason."""
    eligible = _check_coverage(result, windows)
    rows = _rows(result.run_dir, "trades")
    assert sorted(rows) == sorted(eligible)
    reasons: Counter[str] = Counter()
    for cid in eligible:
        _, w = windows[cid]
        ex = simulate(w, side, policy)
        expected = {"entry_ts_ms": w.entry_ts_ms, "entry_px": w.entry_px, "exit_ts_ms": ex.ts_ms,
                    "exit_px": ex.px, "exit_reason": ex.reason,
                    "realized_return_bps": realized_bps(ex.gross_bps, **p.market.fees),
                    "max_adverse_excursion_bps": ex.mae_bps,
                    "time_exposed_ms": ex.ts_ms - w.entry_ts_ms,
                    "tail_capture": tail_capture(w, side, ex.gross_bps)}
        for col, value in expected.items():
            _same(rows[cid][col], value, f"{cid}.{col}")
        reasons[ex.reason] += 1
    return reasons


RUNS = [("renamed", "long", "close")] + [("user", s, e) for s, e in USER_COMBOS]
MARKETS = ("goog", "eurusd", "stocks")


@pytest.mark.parametrize("layout, side, entry", RUNS)
@pytest.mark.parametrize("name", MARKETS)
def test_path_only_matches_the_reference(markets, tmp_path, name, layout, side, entry):
    p = markets[name]
    custom = layout == "user"  # renamed: the default levels 2, 3, 4
    alerts, candles = p.user if layout == "user" else p.renamed
    result = run_path_only(alerts, candles, **_options(p, layout, side, entry, tmp_path, custom))
    levels = p.market.level_values if custom else ()
    _check_paths(result, p, side, _windows(p, entry), levels)


@pytest.mark.parametrize("policy", ("fixed_stop", "time_stop", "trailing_stop"))
@pytest.mark.parametrize("layout, side, entry", RUNS)
@pytest.mark.parametrize("name", MARKETS)
def test_policy_trades_match_the_reference(markets, tmp_path, name, layout, side, entry, policy):
    p = markets[name]
    alerts, candles = p.user if layout == "user" else p.renamed
    spec = p.market.policies[policy]
    result = run_policy_backtest(alerts, candles, spec, **p.market.fees,
                                 **_options(p, layout, side, entry, tmp_path, False))
    reasons = _check_trades(result, p, side, spec, _windows(p, entry))
    assert len(reasons) >= 2, reasons  # the picks exercise more than one exit rule


def test_the_picks_exercise_stops_targets_and_trails(markets):
    """Sanity of the data: over the picks, every exit rule fires on both sides."""
    for p in markets.values():
        seen = {(side, simulate(w, side, spec).reason)
                for side in ("long", "short") for spec in p.market.policies.values()
                for _, w in _windows(p, "close").values() if w.reason is None}
        for side in ("long", "short"):
            assert {"stop_loss", "take_profit", "time_stop", "trailing_stop"} <= {
                r for s, r in seen if s == side}, (p.market.name, side, seen)


def _yahoo_goog(folder: Path) -> Path:
    """GOOG as a download from a quote site: Date, capitalised OHLCV."""
    with open(folder / "GOOG.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Date", "Open", "High", "Low", "Close", "Volume"])
        w.writerows(r.values() for r in _csv_rows(GOOG_CSV))
    return folder / "GOOG.csv"


def _no_run_left(base: Path) -> None:
    assert not list(base.rglob("run_id=*")), list(base.rglob("run_id=*"))


def test_cli_short_next_open_on_a_single_stock_csv(markets, tmp_path):
    """`--symbol GOOG` for a file without an asset column; alerts without one either."""
    p = markets["goog"]
    candles = _yahoo_goog(tmp_path)
    alerts = tmp_path / "alerts.csv"
    with open(alerts, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "alert_time", "caller"])
        w.writerows([a.call_id, _wall_time(a.ts_ms, "UTC").isoformat(sep=" "), a.caller]
                    for a in p.alerts if a.symbol == "GOOG")
    spec = p.market.policies["fixed_stop"]
    proc = run_main("backtest", "run", "policy", "--alerts", str(alerts), "--candles",
                    str(candles), "--symbol", "GOOG", "--interval", "1d", "--horizon", "10d",
                    "--side", "short", "--entry", "next-open", "--policy", json.dumps(spec),
                    "--taker-fee-bps", "1", "--slippage-bps", "2", "--base-dir",
                    str(tmp_path / "runs"), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    windows = {cid: aw for cid, aw in _windows(p, "next-open").items() if aw[0].symbol == "GOOG"}
    _check_trades(_Result(out), p, "short", spec, windows)


@dataclass(frozen=True)
class _Result:
    """The CLI's JSON report seen as the FlowResult fields the checks read."""

    out: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        return self.out[name]


def test_cli_path_only_on_multi_asset_parquet_with_levels(markets, tmp_path):
    """The stocks file converted to Parquet (naive datetimes), columns found by their names."""
    import pandas as pd

    p = markets["stocks"]
    parquet = tmp_path / "stocks.parquet"
    pd.read_csv(STOCKS_CSV_GZ, parse_dates=["Date"]).to_parquet(parquet)
    proc = run_main("backtest", "run", "path-only", "--alerts", str(p.user[0]), "--candles",
                    str(parquet), "--alerts-columns", ALERT_MAP_FLAG, "--interval", "1d",
                    "--horizon", "10d", "--levels", "1.05,1.1,1.2", "--entry", "next-open",
                    "--base-dir", str(tmp_path / "runs"), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _check_paths(_Result(json.loads(proc.stdout)), p, "long", _windows(p, "next-open"),
                 DAILY_LEVELS)


def test_cli_renamed_files_long_close(markets, tmp_path):
    """What works without the new options: the renamed hourly file, through the CLI."""
    p = markets["eurusd"]
    spec = p.market.policies["trailing_stop"]
    proc = run_main("backtest", "run", "policy", "--alerts", str(p.renamed[0]), "--candles",
                    str(p.renamed[1]), "--interval", "1h", "--horizon", "24h", "--policy",
                    json.dumps(spec), "--taker-fee-bps", "0", "--slippage-bps", "1",
                    "--base-dir", str(tmp_path / "runs"), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _check_trades(_Result(json.loads(proc.stdout)), p, "long", spec, _windows(p, "close"))


def test_the_report_names_the_fees_used(markets, tmp_path):
    """No fee default suits every market: the report line says which fees a run used."""
    p = markets["eurusd"]
    proc = run_main("backtest", "run", "policy", "--alerts", str(p.renamed[0]), "--candles",
                    str(p.renamed[1]), "--interval", "1h", "--horizon", "24h", "--policy",
                    json.dumps(p.market.policies["fixed_stop"]), "--taker-fee-bps", "0",
                    "--slippage-bps", "1", "--base-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "fees 0 + slippage 1 bps per side" in proc.stdout, proc.stdout


def test_alert_times_in_the_users_format(markets, tmp_path):
    """'02/03/2005 09:05 PM' style alert times with --alerts-ts-format."""
    p = markets["goog"]
    alerts = tmp_path / "alerts.csv"
    with open(alerts, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "alert_time", "symbol", "caller"])
        w.writerows([a.call_id, _wall_time(a.ts_ms, "UTC").strftime("%m/%d/%Y %I:%M %p"),
                     a.symbol, a.caller] for a in p.alerts)
    spec = p.market.policies["time_stop"]
    result = run_policy_backtest(alerts, p.user[1], spec, alerts_ts_format="%m/%d/%Y %I:%M %p",
                                 **p.market.fees, **_options(p, "user", "long", "close",
                                                             tmp_path / "runs", False))
    _check_trades(result, p, "long", spec, _windows(p, "close"))


def test_side_column_mixes_longs_and_shorts(markets, tmp_path):
    """A `direction` column (any case) sets each alert's side; trades record it."""
    p = markets["stocks"]
    sides = {a.call_id: ("short" if k % 2 else "long") for k, a in enumerate(p.alerts)}
    alerts = tmp_path / "alerts.csv"
    with open(alerts, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "alert_time", "symbol", "caller", "direction"])
        w.writerows([a.call_id, _wall_time(a.ts_ms, "UTC").isoformat(sep=" "), a.symbol,
                     a.caller, sides[a.call_id].upper()] for a in p.alerts)
    spec = p.market.policies["fixed_stop"]
    result = run_policy_backtest(alerts, p.user[1], spec, **p.market.fees,
                                 **_options(p, "user", "long", "close", tmp_path / "runs", False))
    rows = _rows(result.run_dir, "trades")
    for side in ("long", "short"):
        windows = {cid: aw for cid, aw in _windows(p, "close").items() if sides[cid] == side}
        eligible = [cid for cid, (_, w) in windows.items() if w.reason is None]
        assert eligible and all(rows[cid]["side"] == side for cid in eligible)
        for cid in eligible:
            ex = simulate(windows[cid][1], side, spec)
            _same(rows[cid]["exit_px"], ex.px, cid)
            _same(rows[cid]["realized_return_bps"], realized_bps(ex.gross_bps, **p.market.fees),
                  cid)


def test_entry_at_a_candles_open_time(markets, tmp_path):
    """An alert exactly at a bar's open: close enters that bar, next-open the one after."""
    p = markets["goog"]
    bars = p.market.candles["GOOG"]
    alerts = tmp_path / "alerts.csv"
    # at-1910 (Tue 2012-03-20): next-open enters on Wednesday, whose horizon ends on a
    # Saturday; the loader must load from that entry on, up to the first candle after the
    # horizon (it once loaded for the close entry only, and the call was missing_range)
    picks = range(200, 2000, 90)
    _write_user_alerts(alerts, [Alert(f"at-{i}", "GOOG", "ana", bars[i].ts_ms)
                                for i in picks], "UTC")
    for entry in ("close", "next-open"):
        result = run_path_only(alerts, p.user[1], max_entry_delay="4d",
                               **_options(p, "user", "long", entry, tmp_path / entry, False))
        rows = _rows(result.run_dir, "paths")
        assert len(rows) == len(picks)
        for cid, row in rows.items():
            i = int(cid.split("-")[1]) + (entry == "next-open")
            _same(row["p0"], bars[i].close if entry == "close" else bars[i].open, cid)


DELAYS = [("none", None), ("36h", 36 * HOUR_MS), ("3d", 3 * DAY_MS)]


@settings(max_examples=8, suppress_health_check=[HealthCheck.too_slow])
@given(seconds=st.lists(st.integers(-40 * 86_400, 3200 * 86_400), min_size=1, max_size=12),
       entry=st.sampled_from(["close", "next-open"]), side=st.sampled_from(["long", "short"]),
       delay=st.sampled_from(DELAYS))
def test_any_alert_time_enters_by_the_rule(markets, seconds, entry, side, delay):
    """Alerts at any second (before the data, at opens, on weekends, after the end): the
    anchor, entry price, exclusion and path metrics follow the entry rule and the delay."""
    p = markets["goog"]
    start = p.market.candles["GOOG"][0].ts_ms
    alerts = [Alert(f"any-{k}", "GOOG", "ana", start + s * 1000) for k, s in enumerate(seconds)]
    with tempfile.TemporaryDirectory() as folder:
        path = _write_user_alerts(Path(folder) / "alerts.csv", alerts, "UTC")
        result = run_path_only(path, p.user[1], max_entry_delay=delay[0],
                               **_options(p, "user", side, entry, Path(folder) / "runs", True))
        _check_paths(result, p, side, _windows(p, entry, delay[1], alerts), DAILY_LEVELS, 0)


def test_late_entries_are_excluded_not_entered(markets, tmp_path):
    """Saturday alerts on daily stock bars: the next bar opens on Monday, 36 h later."""
    p = markets["goog"]
    bars = p.market.candles["GOOG"]
    saturdays = [friday.ts_ms + DAY_MS + 12 * HOUR_MS
                 for friday, nxt in itertools.pairwise(bars[100:2001])
                 if nxt.ts_ms - friday.ts_ms == 3 * DAY_MS][:12]
    alerts = tmp_path / "alerts.csv"
    _write_user_alerts(alerts, [Alert(f"sat-{k}", "GOOG", "bo", ts)
                                for k, ts in enumerate(saturdays)], "UTC")
    strict = run_path_only(alerts, p.user[1], max_entry_delay="1d",
                           **_options(p, "user", "long", "close", tmp_path / "a", False))
    assert strict.excluded == {"late_entry": 12} and strict.eligible == 0
    assert {e["message"] for e in _table(strict.run_dir, "errors")} == {"late_entry"}
    lenient = run_path_only(alerts, p.user[1], max_entry_delay="2d",
                            **_options(p, "user", "long", "close", tmp_path / "b", False))
    assert lenient.excluded == {} and lenient.eligible == 12


@pytest.mark.parametrize("name", ["goog", "eurusd", "stocks"])
def test_the_default_entry_delay_is_one_bar_plus_the_usual_gap(markets, tmp_path, name):
    """Alerts after the week's last bar (the market's own time zone): by default each waits
    out the weekend, the limit recorded is one bar plus the usual gap of a reference
    computation, and only the alerts that reference calls late are excluded as late."""
    p = markets[name]
    m = p.market
    interval_ms = parse_duration(m.interval)
    alerts = []
    for asset, bars in sorted(m.candles.items()):
        last_of_week = [i for i in range(60, len(bars) - 40)
                        if bars[i + 1].ts_ms - bars[i].ts_ms > 2 * interval_ms]
        alerts += [Alert(f"wk-{asset}-{i}", asset, "ana", bars[i].ts_ms + interval_ms // 2)
                   for i in last_of_week[::max(1, len(last_of_week) // 12)]]
    assert len(alerts) >= 10
    path = _write_user_alerts(tmp_path / "alerts.csv", alerts, m.tz)
    result = run_path_only(path, p.user[1], **_options(p, "user", "long", "close",
                                                        tmp_path / "runs", False))
    gap = ref_usual_gap({a: [c.ts_ms for c in bars] for a, bars in m.candles.items()},
                        [(a.symbol, a.ts_ms) for a in alerts], horizon_ms=m.horizon_ms,
                        interval_ms=interval_ms)
    assert gap >= {"1d": 3 * DAY_MS, "1h": 48 * HOUR_MS}[m.interval]  # the weekend is usual
    limit = interval_ms + gap
    assert result.settings["max_entry_delay"] == format_duration(limit)
    late = {cid for cid, (_, w) in _windows(p, "close", limit, alerts).items()
            if w.reason == "late_entry"}
    excluded = {e["call_id"] for e in _table(result.run_dir, "errors")
                if e["message"] == "late_entry"}
    assert excluded == late and len(late) < len(alerts) // 4


def _refused(tmp_path: Path, *args: str, contains: str) -> None:
    base = tmp_path / "runs"
    proc = run_main("backtest", "run", "path-only", *args, "--base-dir", str(base), cwd=tmp_path)
    assert_clean_error(proc, contains=contains)
    _no_run_left(base)


def test_daily_bars_declared_as_minutes_are_refused_before_a_run(markets, tmp_path):
    p = markets["stocks"]
    _refused(tmp_path, "--alerts", str(p.user[0]), "--candles", str(p.user[1]),
             "--alerts-columns", ALERT_MAP_FLAG, "--candles-columns", "mint=Ticker,ts=Date",
             "--interval", "1m", "--horizon", "1d", contains="interval")


@pytest.mark.parametrize("interval, contains", [("1mo", "calendar months"), ("1d", "interval")])
def test_monthly_bars_are_refused_before_a_run(tmp_path, interval, contains):
    """BTCUSD.csv holds month-end bars (28 to 31 days apart): no fixed interval fits."""
    shutil.copy(BTCUSD_CSV, tmp_path / "BTCUSD.csv")
    alerts = _write_user_alerts(tmp_path / "alerts.csv",
                                [Alert("b1", "BTCUSD", "ana", _epoch_ms("2015-01-15"))], "UTC")
    _refused(tmp_path, "--alerts", str(alerts), "--candles", str(tmp_path / "BTCUSD.csv"),
             "--alerts-columns", ALERT_MAP_FLAG, "--candles-columns", "ts=column0",
             "--symbol", "BTCUSD", "--interval", interval, "--horizon", "90d", contains=contains)


def test_a_wrong_column_name_is_refused_before_a_run(markets, tmp_path):
    p = markets["goog"]
    _refused(tmp_path, "--alerts", str(p.user[0]), "--candles", str(p.user[1]),
             "--alerts-columns", ALERT_MAP_FLAG, "--candles-columns", "ts=Datum",
             "--symbol", "GOOG", "--interval", "1d", "--horizon", "10d", contains="Datum")


def test_a_wrong_timestamp_format_is_refused_before_a_run(markets, tmp_path):
    p = markets["goog"]
    _refused(tmp_path, "--alerts", str(p.user[0]), "--candles", str(p.user[1]),
             "--alerts-columns", ALERT_MAP_FLAG, "--candles-columns", "ts=column0",
             "--alerts-ts-format", "%d.%m.%Y %H:%M", "--symbol", "GOOG", "--interval", "1d",
             "--horizon", "10d", contains="alert_time")
