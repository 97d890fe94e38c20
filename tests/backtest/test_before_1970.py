"""Data before 1970 (daily stocks go back to the 1960s): epoch ms are negative there, and
every number is the one the same data gives after 1970. GOOG's bars and alerts, moved back
a whole number of weeks (weekdays stay weekdays), must give the same runs, times moved."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from quantbot.backtest import run_path_only, run_policy_backtest

GOOG_CSV = Path(__import__("backtesting.test", fromlist=["_"]).__file__).parent / "GOOG.csv"
SHIFT = timedelta(weeks=52 * 45 + 2)  # GOOG's 2004 start lands in 1959
SHIFT_MS = int(SHIFT.total_seconds() * 1000)
TIME_COLUMNS = ("alert_ts_ms", "t_2x_ms", "t_3x_ms", "t_4x_ms", "t_1_05x_ms", "t_1_1x_ms",
                "entry_ts_ms", "exit_ts_ms")


def _write(folder: Path, shift: timedelta) -> tuple[Path, Path]:
    with open(GOOG_CSV, newline="") as f:
        rows = list(csv.reader(f))
    candles, alerts = folder / "GOOG.csv", folder / "alerts.csv"
    with open(candles, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Date", *rows[0][1:]])
        w.writerows([(datetime.fromisoformat(r[0]) - shift).isoformat(sep=" "), *r[1:]]
                    for r in rows[1:])
    bars = [datetime.fromisoformat(r[0]) for r in rows[1:]]
    # every 40th bar, late in its day; Fridays' alerts wait out the weekend (their horizon
    # reaches past the loader's own window, so it loads more: a path that must see the ts)
    picks = [bars[i] + timedelta(hours=20) for i in range(30, len(bars) - 30, 40)]
    with open(alerts, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "alert_time", "caller"])
        w.writerows([f"a{k}", (t - shift).isoformat(sep=" "), ("ana", "bo")[k % 2]]
                    for k, t in enumerate(picks))
    return alerts, candles


def _table(run_dir: str, kind: str) -> list[dict]:
    return sorted(pq.read_table(next(Path(run_dir).glob(f"*/{kind}.parquet"))).to_pylist(),
                  key=lambda r: r["call_id"])


def _moved(rows: list[dict], shift_ms: int) -> list[dict]:
    """The rows with every time moved back by ``shift_ms`` and the run id dropped."""
    out = []
    for r in rows:
        r = {k: v for k, v in r.items() if k != "run_id"}
        for k in TIME_COLUMNS:
            if r.get(k) is not None:
                r[k] -= shift_ms
        out.append(r)
    return out


@pytest.mark.parametrize("entry", ["close", "next-open"])
def test_paths_and_trades_before_1970_are_those_after_it(tmp_path: Path, entry: str) -> None:
    now, then = (tmp_path / "now", tmp_path / "then")
    results = {}
    for folder, shift in ((now, timedelta(0)), (then, SHIFT)):
        folder.mkdir()
        alerts, candles = _write(folder, shift)
        opts = {"symbol": "GOOG", "interval": "1d", "levels": "1.05,1.1,2", "entry": entry,
                "durable": False, "base_dir": folder / "runs"}
        paths = run_path_only(alerts, candles, **opts)
        trades = run_policy_backtest(alerts, candles, {"kind": "fixed_stop", "stop_pct": 0.05,
                                                       "take_profit_pct": 0.08}, **opts)
        results[folder.name] = (paths, trades)
    (p_now, t_now), (p_then, t_then) = results["now"], results["then"]
    assert p_then.settings["max_entry_delay"] == p_now.settings["max_entry_delay"]
    assert (p_then.eligible, p_then.excluded) == (p_now.eligible, p_now.excluded)
    paths_now = _table(p_now.run_dir, "paths")
    assert any(r["hit_1_05x"] for r in paths_now)  # levels are reached: the case in question
    assert _table(p_then.run_dir, "paths")[0]["alert_ts_ms"] < 0
    assert _moved(_table(p_then.run_dir, "paths"), -SHIFT_MS) == _moved(paths_now, 0)
    assert _moved(_table(p_then.run_dir, "features"), 0) == _moved(
        _table(p_now.run_dir, "features"), 0)
    assert _moved(_table(t_then.run_dir, "trades"), -SHIFT_MS) == _moved(
        _table(t_now.run_dir, "trades"), 0)
