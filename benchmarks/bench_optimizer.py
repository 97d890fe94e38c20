"""Optimizer speed: the default ~600-policy grid over 10,000 alerts × 1,440 candles.

Same synthetic data as bench_engine (a seeded random walk, one mint per alert). The target
row is the pooled evaluation (``*``) as ``optimize`` runs it: simulation of every policy,
equivalent policies merged, frontier statistics, score, constraints and ranking, and the
portfolio (Sharpe, total return, drawdown) of every policy, with a ScanIndex built once per
CandleSet (like the windows); a row without the portfolio shows its cost. The per-caller row adds 20 callers; it reuses the same simulated trades (column
subsets of one matrix), so it should cost little more than the pooled row. Per-family rows
evaluate each family of the grid alone (informational: where the time goes).
"""

from __future__ import annotations

import numpy as np

from benchmarks._report import BenchResult, best_of
from benchmarks.bench_engine import HORIZON_MS, synthetic_candles
from quantbot.backtest.engine.portfolio import parse_portfolio
from quantbot.backtest.engine.simulate import build_scan_index
from quantbot.backtest.engine.windows import prepare_windows
from quantbot.backtest.flows.portfolio_step import DAY_MS, portfolio_hook
from quantbot.backtest.optimize.grid import default_grid
from quantbot.backtest.optimize.objective import OptimizerConfig
from quantbot.backtest.optimize.search import optimize_grid

TARGET_S = 10.0
N_CALLERS = 20


def collect(quick: bool = False) -> list[BenchResult]:
    """Benchmark rows; ``quick`` uses 1,000 alerts (a smoke run, targets not meaningful)."""
    n_alerts = 1_000 if quick else 10_000
    candles, mint_idx, alert_ts = synthetic_candles(n_alerts)
    windows = prepare_windows(candles, mint_idx, alert_ts, HORIZON_MS)
    index = build_scan_index(candles)
    callers = np.array([f"caller{i % N_CALLERS}" for i in range(n_alerts)], dtype=object)
    grid = default_grid()
    size = f"{len(grid)} policies, {n_alerts} alerts x 1440 candles"
    optimize_grid(grid.subset(["fixed_stop"]), candles, windows, callers, scan_index=index)
    repeat = 2  # best of two: the machine is shared

    hook = portfolio_hook(parse_portfolio(None), DAY_MS)

    def pooled() -> None:
        optimize_grid(grid, candles, windows, callers, scan_index=index, per_caller=False,
                      interval_ms=60_000)

    def with_portfolio() -> None:
        optimize_grid(grid, candles, windows, callers, scan_index=index, per_caller=False,
                      interval_ms=60_000, portfolio_metric=hook)

    t_pooled = best_of(pooled, repeat)
    t_full = best_of(with_portfolio, repeat)
    results = [BenchResult("optimizer: default grid, pooled, portfolio of every policy", t_full,
                           f"<= {TARGET_S:.0f} s", t_full <= TARGET_S, note=size),
               BenchResult("optimizer: default grid, pooled, no portfolio", t_pooled,
                           "informational", True, note=size)]
    t_callers = best_of(lambda: optimize_grid(grid, candles, windows, callers,
                                              scan_index=index), repeat)
    results.append(BenchResult(f"optimizer: pooled + {N_CALLERS} callers", t_callers,
                               "informational", True, "pooled only", t_pooled, note=size))
    cfg = OptimizerConfig(validation="time:0.8")
    t_val = best_of(lambda: optimize_grid(grid, candles, windows, callers, cfg,
                                          scan_index=index), 1)
    results.append(BenchResult("optimizer: + per caller + time:0.8 validation", t_val,
                               "informational", True, "pooled only", t_pooled, note=size))
    for family, count in grid.family_sizes().items():
        sub = grid.subset([family])
        t = best_of(lambda: optimize_grid(sub, candles, windows, callers, scan_index=index,
                                          per_caller=False), 1)
        results.append(BenchResult(f"  family {family} ({count} policies)", t, "informational",
                                   True, note=f"{t / count * 1e3:.1f} ms per policy"))
    return results


if __name__ == "__main__":
    for row in collect():
        print(row)
