"""Numeric-core speed: windows + truth layer and policy simulation on 10,000 × 1,440 candles.

The data set is a seeded random walk: one mint per alert, the alert at the mint's first
candle, 1,441 one-minute candles each (the anchor plus a 24 h window), 14.4M candles.
Timings exclude JIT compilation (everything is warmed up first). Policy rows use a
prebuilt ScanIndex (built once per CandleSet, like the windows); its build time is its own
row, and "fixed_stop incl. index" is the cost of a one-off single-policy run.
"""

from __future__ import annotations

import numpy as np

from benchmarks._report import BenchResult, best_of
from quantbot.backtest.data.candle_set import CandleSet
from quantbot.backtest.engine.price_paths import compute_paths
from quantbot.backtest.engine.simulate import build_scan_index, simulate, simulate_many
from quantbot.backtest.engine.windows import Windows, prepare_windows

MINUTE_MS = 60_000
HORIZON_MS = 1_440 * MINUTE_MS
T0_MS = 1_700_000_000_000

POLICIES = {
    "fixed_stop": {"kind": "fixed_stop", "stop_pct": 0.2, "take_profit_pct": 1.0},
    "trailing_stop": {"kind": "trailing_stop", "activation_pct": 0.2, "trail_pct": 0.15,
                      "hard_stop_pct": 0.3},
    "ladder": {"kind": "ladder", "levels": [{"multiple": 1.5, "fraction": 0.3},
                                            {"multiple": 2.0, "fraction": 0.3},
                                            {"multiple": 3.0, "fraction": 0.4}], "stop_pct": 0.3},
    "combo": {"kind": "combo", "policies": [
        {"kind": "fixed_stop", "stop_pct": 0.25},
        {"kind": "time_stop", "max_hold_ms": 6 * 3_600_000, "take_profit_pct": 0.8},
        {"kind": "trailing_stop", "activation_pct": 0.3, "trail_pct": 0.2}]},
}


def synthetic_candles(n_alerts: int, n_window: int = 1_440,
                      seed: int = 7) -> tuple[CandleSet, np.ndarray, np.ndarray]:
    """A random-walk CandleSet with one mint per alert; returns (candles, mint_idx, alert_ts_ms)."""
    rng = np.random.default_rng(seed)
    per = n_window + 1
    rets = rng.normal(0.0, 0.012, size=(n_alerts, per))
    rets[:, 0] = 0.0
    close = np.exp(np.cumsum(rets, axis=1)) * rng.uniform(0.5, 2.0, size=(n_alerts, 1))
    open_ = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    wick = np.abs(rng.normal(0.0, 0.006, size=(2, n_alerts, per)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = rng.exponential(1_000.0, size=(n_alerts, per))
    starts = T0_MS + np.arange(n_alerts, dtype=np.int64) * 37 * MINUTE_MS
    ts = starts[:, None] + np.arange(per, dtype=np.int64)[None, :] * MINUTE_MS
    candles = CandleSet(
        mints=tuple(f"mint{i}" for i in range(n_alerts)),
        offsets=np.arange(n_alerts + 1, dtype=np.int64) * per,
        ts_ms=ts.ravel(), open=open_.ravel(), high=high.ravel(), low=low.ravel(),
        close=close.ravel(), volume=volume.ravel(), first_ts_ms=starts.copy(),
    )
    return candles, np.arange(n_alerts, dtype=np.int64), starts


def numpy_truth_layer(candles: CandleSet, windows: Windows,
                      m: float = 0.10) -> dict[str, np.ndarray]:
    """The same truth-layer metrics with vectorized numpy (gather + reduceat): the baseline."""
    idx = windows.eligible_idx
    s, e = windows.start[idx], windows.end[idx]
    lengths = e - s
    seg = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rows = np.repeat(s - seg, lengths) + np.arange(lengths.sum())
    owner = np.repeat(np.arange(len(idx)), lengths)
    p0 = windows.p0[idx]
    high, low, ts = candles.high[rows], candles.low[rows], candles.ts_ms[rows]
    out = {"peak_multiple": np.maximum.reduceat(high, seg) / p0,
           "dd_bps": np.minimum(0.0, (np.minimum.reduceat(low, seg) / p0 - 1.0) * 1e4)}
    big = np.iinfo(np.int64).max
    for n in (2, 3, 4):
        first = np.minimum.reduceat(np.where(high >= n * p0[owner], ts, big), seg)
        out[f"t_{n}x_ms"] = np.where(first == big, -1, first)
    moved = (high >= (p0 * (1.0 + m))[owner]) | (low <= (p0 * (1.0 - m))[owner])
    first = np.minimum.reduceat(np.where(moved, ts, big), seg)
    out["alert_to_activity_ms"] = np.where(first == big, -1, first - windows.alert_ts_ms[idx])
    return out


def collect(quick: bool = False) -> list[BenchResult]:
    """Benchmark rows; ``quick`` uses 1,000 alerts (a smoke run, targets not meaningful)."""
    n_alerts = 1_000 if quick else 10_000
    candles, mint_idx, alert_ts = synthetic_candles(n_alerts)
    windows = prepare_windows(candles, mint_idx, alert_ts, HORIZON_MS)
    compute_paths(candles, windows)  # JIT warm-up
    for policy in POLICIES.values():
        simulate(policy, candles, windows)
    size = f"{n_alerts} alerts x 1440 candles"

    def truth() -> None:
        compute_paths(candles, prepare_windows(candles, mint_idx, alert_ts, HORIZON_MS))

    t_truth = best_of(truth, 5)
    t_numpy = best_of(lambda: numpy_truth_layer(candles, windows), 1 if not quick else 3)
    results = [BenchResult("windows + truth layer", t_truth, "<= 0.100 s", t_truth <= 0.100,
                           "vectorized numpy truth layer", t_numpy, note=size)]
    t_index = best_of(lambda: build_scan_index(candles), 5)
    results.append(BenchResult("scan index build (once per CandleSet)", t_index, "informational",
                               True, note=size))
    index = build_scan_index(candles)
    for name, policy in POLICIES.items():
        t = best_of(lambda: simulate(policy, candles, windows, scan_index=index), 5)
        if name == "fixed_stop":
            results.append(BenchResult("policy fixed_stop sl0.2 tp1", t, "<= 0.030 s", t <= 0.030,
                                       note=size))
            t_all = best_of(lambda: simulate(policy, candles, windows), 5)
            results.append(BenchResult("policy fixed_stop incl. index build", t_all, "<= 0.030 s",
                                       t_all <= 0.030, note=size))
        else:
            results.append(BenchResult(f"policy {name}", t, "informational", True, note=size))
    grid = [{"kind": "fixed_stop", "stop_pct": sl, "take_profit_pct": tp}
            for sl in (0.1, 0.15, 0.2, 0.3, 0.4) for tp in (0.25, 0.5, 1.0, 2.0, 4.0)]
    grid += [dict(p) for p in POLICIES.values()] * 5
    t = best_of(lambda: simulate_many(grid, candles, windows, scan_index=index), 2)
    per = t / len(grid)
    results.append(BenchResult(f"simulate_many, per policy ({len(grid)} policies)", per,
                               "<= 0.016 s", per <= 0.016, note=size))
    return results


if __name__ == "__main__":
    for row in collect():
        print(row)
