"""Bringing one's own data through the CLI: refusals leave nothing behind, the report says
which bars, entry, fees and levels the numbers depend on, and a rerun reads the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from qbtest import assert_clean_error, run_cli, run_main

from quantbot.artifacts import read_manifest

DAY = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z, a Monday


def _daily_csv(path: Path, days: int = 80) -> None:
    """One stock's daily bars as a user has them: Date,Open,High,Low,Close,Volume, weekdays."""
    dates, o, h, lo, c = [], [], [], [], []
    px = 100.0
    for d in range(days):
        ts = T0 + d * DAY
        if (d % 7) in (5, 6):  # weekend
            continue
        step = 1.0 + 0.02 * ((d * 37) % 11 - 5) / 5
        open_, close = px, px * step
        dates.append(f"{pa.scalar(ts, pa.timestamp('ms')).as_py():%Y-%m-%d}")
        o.append(open_)
        c.append(close)
        h.append(max(open_, close) * 1.01)
        lo.append(min(open_, close) * 0.99)
        px = close
    pacsv.write_csv(pa.table({"Date": dates, "Open": o, "High": h, "Low": lo, "Close": c,
                              "Volume": [1000.0] * len(c)}), path)


def _alerts_csv(path: Path) -> None:
    pacsv.write_csv(pa.table({"id": ["a1", "a2", "a3"],
                              "alert_time": ["2024-01-03 10:00", "2024-01-10 15:30",
                                             "2024-01-17 09:00"],
                              "ticker": ["ACME"] * 3, "who": ["me", "me", "you"]}), path)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    _daily_csv(tmp_path / "acme.csv")
    _alerts_csv(tmp_path / "alerts.csv")
    return tmp_path


BASE = ("--alerts", "alerts.csv", "--candles", "acme.csv", "--interval", "1d",
        "--alerts-columns", "caller_name=who", "--symbol", "ACME", "--no-durable")


def _runs(work: Path) -> list[Path]:
    return list((work / "runs").glob("*/run_id=*")) if (work / "runs").exists() else []


@pytest.mark.parametrize("args, words", [
    (("--interval", "1h"), "interval"),
    (("--alerts-columns", "caller_name=caller"), "caller"),
    (("--ts-format", "%d.%m.%Y"), "format"),
    (("--tz", "Mars/Olympus"), "Mars/Olympus"),
])
def test_unusable_input_is_refused_before_any_run_exists(work: Path, args, words):
    proc = run_main("backtest", "run", "path-only", *BASE, *args, cwd=work)
    assert_clean_error(proc, contains=words)
    assert _runs(work) == []


def test_report_line_names_bars_entry_fees_and_the_runs_levels(work: Path):
    proc = run_cli("backtest", "run", "path-only", *BASE, "--levels", "1.05,1.1", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "setup      1d bars, horizon 20d, entry close" in proc.stdout
    assert "hit rates  1_05x" not in proc.stdout
    hits = next(line for line in proc.stdout.splitlines() if "hit rates" in line)
    assert "1.05x" in hits and "1.1x" in hits and "2x" not in hits
    proc = run_main("backtest", "run", "policy", *BASE, "--policy",
                    '{"kind": "fixed_stop", "stop_pct": 0.05}', "--entry", "next-open",
                    "--taker-fee-bps", "1", "--slippage-bps", "2", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert ("setup      1d bars, horizon 20d, entry next-open, fees 1 + slippage 2 bps per "
            "side") in proc.stdout


def test_manifest_records_the_options_and_rerun_reproduces(work: Path):
    proc = run_main("backtest", "run", "policy", *BASE, "--side", "short", "--entry",
                    "next-open", "--levels", "1.1,2", "--policy",
                    '{"kind": "fixed_stop", "stop_pct": 0.05, "take_profit_pct": 0.05}',
                    "--format", "json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    params = read_manifest(work / out["run_dir"]).to_dict()["parameters"]
    assert params["entry"] == "next-open" and params["levels"] == [1.1, 2.0]
    assert params["side"] == "short" and params["symbol"] == "ACME"
    assert params["alerts_columns"] == {"caller_name": "who"}
    again = run_main("backtest", "rerun", out["run_id"], "--no-durable", "--format", "json",
                     cwd=work)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["identical"] is True
