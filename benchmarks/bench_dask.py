"""Scale-out: a 100,000-policy grid over 10,000 alerts × 1,440 candles, local vs dask-local:2.

Same synthetic data as bench_engine. On a 2-core machine a cluster of 2 worker processes
cannot be faster than the local engine (which already uses both cores); what this measures
is what the cluster *costs*: shipping the inputs, pickling chunks of policies, the
scheduler, merging — the target is at most 15 % over local, measured in the same run. The
cluster's start (about 5 s, once per command) is its own row, not in the ratio. Also: the
per-task overhead (no-op tasks through the executor), the chunk size the optimizer chose
from its measured probe, and the time to expand the 100,000-policy grid file.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import numpy as np

from benchmarks._report import BenchResult
from benchmarks.bench_engine import HORIZON_MS, synthetic_candles
from quantbot.backtest.engine.simulate import build_scan_index
from quantbot.backtest.engine.windows import prepare_windows
from quantbot.backtest.executors import open_executor
from quantbot.backtest.optimize.grid import parse_grid
from quantbot.backtest.optimize.search import optimize_grid

TARGET_RATIO = 1.15
NOOP_TASKS = 500


def big_grid(n_trail: int, n_time: int) -> dict[str, Any]:
    """n_trail³ trailing stops, and each combined with n_time² time stops (a combo family):
    n_trail³ · (1 + n_time²) policies (10, 10 -> 101,000)."""
    def lin(a: float, b: float, n: int) -> list[float]:
        return [round(a + (b - a) * i / (n - 1), 4) for i in range(n)]

    holds = [f"{5 * 2 ** i}bars" for i in range(n_time)]
    return {"families": {
        "trail": {"kind": "trailing_stop", "product": {
            "activation_pct": lin(0.05, 0.9, n_trail), "trail_pct": lin(0.01, 0.3, n_trail),
            "hard_stop_pct": lin(0.05, 0.5, n_trail)}},
        "trail_time": {"combo": ["trail", {"kind": "time_stop", "product": {
            "max_hold_ms": holds, "take_profit_pct": lin(0.2, 5.0, n_time)}}]},
    }}


def collect(quick: bool = False) -> list[BenchResult]:
    """Rows; ``quick``: 1,000 alerts and a 10,500-policy grid (smoke run: not the target)."""
    n_alerts, (n_trail, n_time) = (1_000, (5, 9)) if quick else (10_000, (10, 10))
    candles, mint_idx, alert_ts = synthetic_candles(n_alerts)
    windows = prepare_windows(candles, mint_idx, alert_ts, HORIZON_MS)
    index = build_scan_index(candles)
    callers = np.array([f"caller{i % 20}" for i in range(n_alerts)], dtype=object)
    spec = big_grid(n_trail, n_time)
    tracemalloc.start()
    t0 = time.perf_counter()
    grid = parse_grid(spec, 60_000)
    t_grid = time.perf_counter() - t0
    grid_mb = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    size = f"{len(grid):,} policies, {n_alerts:,} alerts x 1440 candles, pooled"

    def run(executor: Any) -> tuple[float, Any]:
        t = time.perf_counter()
        result = optimize_grid(grid, candles, windows, callers, scan_index=index,
                               per_caller=False, interval_ms=60_000, executor=executor)
        return time.perf_counter() - t, result

    warm = parse_grid(big_grid(3, 2), 60_000)  # compiled kernels loaded, here and on workers
    optimize_grid(warm, candles, windows, callers, scan_index=index, per_caller=False)
    t_local, local = run(None)
    t0 = time.perf_counter()
    with open_executor("dask-local:2") as ex:
        t_start = time.perf_counter() - t0
        optimize_grid(warm, candles, windows, callers, scan_index=index, per_caller=False,
                      executor=ex)
        t_dask, dist = run(ex)
        t0 = time.perf_counter()
        outcomes = list(ex.run(abs, [(f"noop-{i}", (-i,)) for i in range(NOOP_TASKS)]))
        t_noop = (time.perf_counter() - t0) / NOOP_TASKS
    assert all(o.ok for o in outcomes)
    same = all(np.array_equal(a.score.view(np.int64), b.score.view(np.int64))
               and np.array_equal(a.rank, b.rank) for a, b in zip(local.groups, dist.groups))
    ratio = t_dask / t_local
    e = dist.execution
    return [
        BenchResult(f"dask: {len(grid):,}-policy grid on dask-local:2", t_dask,
                    f"<= {TARGET_RATIO:.2f}x local", (quick or ratio <= TARGET_RATIO) and same,
                    "the same grid with --executor local", t_local,
                    note=f"{size}; results identical: {same}"),
        BenchResult("dask: chunk size chosen", e["chunk_policies"], "informational", True,
                    unit="policies",
                    note=f"{e['chunks']} chunks on {e['workers']} workers; probe "
                         f"{e['probe_policies']} policies at {e['policy_ms']:.2f} ms/policy"),
        BenchResult("dask: per-task overhead (no-op tasks)", t_noop, "informational", True,
                    note=f"{NOOP_TASKS} tasks through DaskExecutor.run"),
        BenchResult("dask: start and stop of dask-local:2", t_start, "informational", True,
                    note="once per command, not in the ratio"),
        BenchResult(f"dask: expand the {len(grid):,}-policy grid", t_grid, "informational", True,
                    note=f"peak {grid_mb:.0f} MB of Python objects"),
    ]
