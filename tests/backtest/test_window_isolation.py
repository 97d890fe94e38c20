"""An alert's window must not depend on the other alerts of the run (same mint, later).

Regression: rows loaded for a later alert used to stand in for the candles after a data
hole, silently cutting the earlier alert's window short or picking a wrong anchor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from quantbot.artifacts.store.reader import read_artifact
from quantbot.backtest import run_path_only, run_policy_backtest

T0 = 1_767_225_600_000
MIN = 60_000
HOUR = 3_600_000


def _candles(path: Path, skip: range, spike_at: int | None) -> Path:
    ts = np.array([T0 + k * MIN for k in range(-120, 60 * 60) if k not in skip])
    high = np.ones(len(ts))
    if spike_at is not None:
        high[(ts >= T0 + spike_at) & (ts < T0 + spike_at + 10 * MIN)] = 5.0
    pq.write_table(pa.table({"mint": ["M"] * len(ts), "ts": ts, "open": np.ones(len(ts)),
                             "high": high, "low": np.full(len(ts), 0.99),
                             "close": np.ones(len(ts)), "volume": np.ones(len(ts))}), path)
    return path


def _alerts(path: Path, with_later: bool) -> Path:
    ids, ts = ["A", "B"], [T0, T0 + 30 * HOUR]
    n = 2 if with_later else 1
    pq.write_table(pa.table({"call_id": ids[:n], "mint": ["M"] * n, "caller_name": ["c"] * n,
                             "alert_ts_ms": ts[:n]}), path)
    return path


def test_hole_after_the_alert_reads_the_same_window_with_or_without_a_later_alert(tmp_path: Path):
    candles = _candles(tmp_path / "c.parquet", range(0, 120), spike_at=25 * HOUR)
    rows = []
    for with_later in (False, True):
        alerts = _alerts(tmp_path / f"a{with_later}.parquet", with_later)
        result = run_path_only(alerts, candles, base_dir=tmp_path / "runs", durable=False,
                               max_entry_delay="none")
        paths = read_artifact(result.run_dir, "paths").to_pylist()
        rows.append(next(r for r in paths if r["call_id"] == "A"))
    for row in rows:  # anchor at T0+2h (after the hole), horizon to T0+26h: the spike counts
        assert row["hit_2x"] and row["t_2x_ms"] == T0 + 25 * HOUR and row["peak_multiple"] == 5.0


def test_far_anchor_is_the_first_candle_after_the_alert(tmp_path: Path):
    candles = _candles(tmp_path / "c.parquet", range(0, 25 * 60), spike_at=None)
    policy = {"kind": "fixed_stop", "stop_pct": 0.5}
    for with_later in (False, True):
        alerts = _alerts(tmp_path / f"a{with_later}.parquet", with_later)
        result = run_policy_backtest(alerts, candles, policy, max_entry_delay="none",
                                     base_dir=tmp_path / "runs",
                                     durable=False)
        trades = read_artifact(result.run_dir, "trades").to_pylist()
        entry = next(t["entry_ts_ms"] for t in trades if t["call_id"] == "A")
        assert entry == T0 + 25 * HOUR  # not no_candles, not the later alert's pre-window
