"""The new user's wrong guesses (issue 10's preamble), each with ``--sync`` against a catalog
that already holds a good run: a one-line refusal naming the culprit and the option that
fixes it, no new run folder and nothing new in the catalog (not even a failed run)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from qbtest import assert_clean_error, catalog_dump, run_main

from quantbot.backtest import run_path_only
from quantbot.errors import DataError

GOOG_CSV = Path(__import__("backtesting.test", fromlist=["_"]).__file__).parent / "GOOG.csv"
BTCUSD_CSV = GOOG_CSV.with_name("BTCUSD.csv")
POLICY = '{"kind": "fixed_stop", "stop_pct": 0.05}'


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The user's files (GOOG.csv as shipped, its date column unnamed) and one good run."""
    for source in (GOOG_CSV, BTCUSD_CSV):
        (tmp_path / source.name).write_text("Date" + source.read_text(encoding="utf-8"),
                                            encoding="utf-8")
    (tmp_path / "alerts.csv").write_text(
        "id,alert_time,symbol,caller\ng1,2006-05-09 21:05:00,GOOG,ana\n"
        "g2,2008-10-14 21:05:00,GOOG,bo\n", encoding="utf-8")
    (tmp_path / "alerts_us.csv").write_text(
        "id,alert_time,symbol,caller\ng1,02/03/2005 09:05 PM,GOOG,ana\n", encoding="utf-8")
    (tmp_path / "alerts_renamed.csv").write_text(
        "id,alert_when,sym,caller\ng1,2006-05-09 21:05:00,GOOG,ana\n", encoding="utf-8")
    (tmp_path / "btc_alerts.csv").write_text(
        "id,alert_time,caller\nb1,2017-01-15 12:00:00,ana\n", encoding="utf-8")
    good = run_main("backtest", "run", "path-only", "--alerts", "alerts.csv", "--candles",
                    "GOOG.csv", "--interval", "1d", "--sync", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    return tmp_path


GUESSES = {
    "column": (["--alerts", "alerts_renamed.csv", "--candles", "GOOG.csv", "--interval", "1d"],
               ["missing column 'mint'", "columns present: id, alert_when, sym, caller",
                "--alerts-columns mint=<column>"]),
    "interval": (["--alerts", "alerts.csv", "--candles", "GOOG.csv", "--interval", "1h"],
                 ["GOOG.csv", "1d apart", "--interval is 1h"]),
    "monthly_as_daily": (["--alerts", "btc_alerts.csv", "--candles", "BTCUSD.csv",
                          "--symbol", "BTCUSD", "--interval", "1d"],
                         ["BTCUSD.csv", "28d apart", "--interval is 1d"]),
    "months": (["--alerts", "alerts.csv", "--candles", "GOOG.csv", "--interval", "1mo"],
               ["'1mo'", "calendar months"]),
    "timestamp": (["--alerts", "alerts_us.csv", "--candles", "GOOG.csv", "--interval", "1d"],
                  ["alerts_us.csv", "'alert_time' row 1", "'02/03/2005 09:05 PM'",
                   "--alerts-ts-format"]),
    "format": (["--alerts", "alerts_us.csv", "--candles", "GOOG.csv", "--interval", "1d",
                "--alerts-ts-format", "%d-%m-%Y"],
               ["'alert_time' row 1", "does not match --alerts-ts-format '%d-%m-%Y'"]),
    "tz": (["--alerts", "alerts.csv", "--candles", "GOOG.csv", "--interval", "1d",
            "--tz", "Europe/Pariss"], ["'Europe/Pariss'", "IANA"]),
    "symbol": (["--alerts", "alerts.csv", "--candles", "GOOG.csv", "--interval", "1d",
                "--symbol", "GOOGL"], ["GOOG.csv", "--symbol 'GOOGL'", "which no alert names",
                                       "the alerts name 'GOOG'"]),
}


@pytest.mark.parametrize("command", [["path-only"], ["policy", "--policy", POLICY]])
@pytest.mark.parametrize("guess", sorted(GUESSES))
def test_a_wrong_guess_is_one_line_and_leaves_nothing(folder, guess, command):
    args, needles = GUESSES[guess]
    before_runs = sorted((folder / "runs").rglob("run_id=*"))
    before = catalog_dump(folder / "data" / "backtest_catalog.duckdb")
    proc = run_main("backtest", "run", *command, *args, "--sync", cwd=folder)
    line = assert_clean_error(proc)
    for needle in needles:
        assert needle in line, (needle, line)
    assert len(before_runs) == 1
    assert sorted((folder / "runs").rglob("run_id=*")) == before_runs
    assert catalog_dump(folder / "data" / "backtest_catalog.duckdb") == before


def test_the_fixed_guess_runs(folder):
    """The flag the refusal names is the one that makes it work."""
    proc = run_main("backtest", "run", "path-only", "--alerts", "alerts_us.csv", "--candles",
                    "GOOG.csv", "--interval", "1d", "--alerts-ts-format", "%m/%d/%Y %I:%M %p",
                    "--format", "json", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert '"eligible": 1' in proc.stdout


def test_candle_times_that_are_not_iso_name_the_candles_format_flag(folder):
    rows = (folder / "GOOG.csv").read_text(encoding="utf-8").splitlines()
    odd = [rows[0]] + [r.replace(",", " 00h,", 1) for r in rows[1:]]  # 2004-08-19 00h
    (folder / "GOOG_odd.csv").write_text("\n".join(odd) + "\n", encoding="utf-8")
    proc = run_main("backtest", "run", "path-only", "--alerts", "alerts.csv", "--candles",
                    "GOOG_odd.csv", "--interval", "1d", cwd=folder)
    line = assert_clean_error(proc, contains="--candles-ts-format")
    assert "'Date' row 1: value '2004-08-19 00h' is not an ISO-8601 timestamp" in line


def test_the_python_api_refuses_the_same_way_before_a_run(folder):
    with pytest.raises(DataError, match="is not an ISO-8601 timestamp"):
        run_path_only(folder / "alerts_us.csv", folder / "GOOG.csv", interval="1d",
                      base_dir=folder / "api_runs")
    assert not (folder / "api_runs").exists()


def test_a_friday_evening_alert_on_daily_bars_waits_out_the_weekend(folder):
    """docs/flows.md "Entries": Friday 21:05 waits 51 h for Monday's bar. The default limit
    (one bar plus the usual gap: the weekend, seen in the window) enters it; a limit of 2d
    excludes it, and the errors row gives the delay and names the option."""
    (folder / "friday.csv").write_text("id,alert_time,caller\nf1,2010-03-05 21:05:00,ana\n",
                                       encoding="utf-8")
    auto = run_path_only(folder / "friday.csv", folder / "GOOG.csv", symbol="GOOG",
                         interval="1d", base_dir=folder / "api_runs", durable=False)
    assert auto.eligible == 1 and auto.excluded == {}
    assert auto.settings["max_entry_delay"] == "4d"  # 1 bar + 3 days, the weekend
    strict = run_path_only(folder / "friday.csv", folder / "GOOG.csv", symbol="GOOG",
                           interval="1d", max_entry_delay="2d", base_dir=folder / "api_runs",
                           durable=False)
    assert strict.excluded == {"late_entry": 1}
    (row,) = pq.read_table(Path(strict.run_dir) / "errors" / "errors.parquet").to_pylist()
    details = json.loads(row["details"])
    assert details["entry_delay_ms"] == (2 * 24 + 2) * 3_600_000 + 55 * 60_000
    assert details["note"].endswith("the limit is 2d (--max-entry-delay)")
