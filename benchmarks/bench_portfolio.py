"""Portfolio simulation speed: 100,000 trades through the event loop, and its metrics.

Synthetic trades: entries spread uniformly over one year (unsorted, as a run's trades come
in alert order per caller), holds of 1 minute to 24 hours, returns ~ N(0, 300 bps), 20
callers. The target row is ``simulate_portfolio`` with ``{"size": {"amount": 1000},
"max_concurrent": 20}``; its baseline is ``np.sort`` of the same 200,000 event times (entries
and exits), measured in this run: the simulation costs a few sorts. Timings exclude JIT
compilation (warmed up first). The 10,000-trade row is one policy of an optimizer grid
(simulation + metrics), the cost to multiply by the grid's ~600 policies.
"""

from __future__ import annotations

import numpy as np

from benchmarks._report import BenchResult, best_of
from quantbot.backtest.engine.portfolio import (
    parse_portfolio,
    portfolio_by_caller,
    portfolio_metrics,
    simulate_portfolio,
)

YEAR_MS = 365 * 86_400_000
TARGET_S = 0.050
N_CALLERS = 20


def synthetic_trades(n: int, seed: int = 11) -> dict[str, np.ndarray]:
    """Seeded random trades (see the module docstring)."""
    rng = np.random.default_rng(seed)
    entry = 1_700_000_000_000 + rng.integers(0, YEAR_MS, n)
    hold = rng.integers(60_000, 86_400_000, n)
    return {"entry_ts_ms": entry, "exit_ts_ms": entry + hold,
            "realized_return_bps": rng.normal(0.0, 300.0, n),
            "callers": np.array([f"caller{i % N_CALLERS}" for i in range(n)])}


def collect(quick: bool = False) -> list[BenchResult]:
    """Benchmark rows; ``quick`` uses 10,000 trades (a smoke run, targets not meaningful)."""
    n = 10_000 if quick else 100_000
    t = synthetic_trades(n)
    ets, xts, ret = t["entry_ts_ms"], t["exit_ts_ms"], t["realized_return_bps"]
    amount = parse_portfolio({"size": {"amount": 1000}, "max_concurrent": 20})
    fraction = parse_portfolio({"size": {"fraction": 0.01}, "compound": True})
    res = simulate_portfolio(ets, xts, ret, amount)  # JIT warm-up
    portfolio_metrics(res, ret)
    events = np.concatenate([ets, xts])
    t_sort = best_of(lambda: np.sort(events), 7)
    size = f"{n:,} trades, {res.taken.sum():,} taken"
    t_amount = best_of(lambda: simulate_portfolio(ets, xts, ret, amount), 7)
    results = [BenchResult(f"portfolio {n:,} trades (amount, max 20)", t_amount,
                           f"<= {TARGET_S:.3f} s", t_amount <= TARGET_S,
                           f"np.sort of the {2 * n:,} event times", t_sort, note=size)]
    t_frac = best_of(lambda: simulate_portfolio(ets, xts, ret, fraction), 7)
    results.append(BenchResult(f"portfolio {n:,} trades (fraction, compound, unlimited)",
                               t_frac, f"<= {TARGET_S:.3f} s", t_frac <= TARGET_S,
                               f"np.sort of the {2 * n:,} event times", t_sort))
    t_metrics = best_of(lambda: portfolio_metrics(res, ret), 7)
    results.append(BenchResult(f"portfolio metrics ({len(res.ts_ms):,} curve points)", t_metrics,
                               "informational", True, note=size))
    t_callers = best_of(lambda: portfolio_by_caller(t["callers"], ets, xts, ret, amount), 3)
    results.append(BenchResult(f"portfolio by caller ({N_CALLERS} callers + pooled, metrics)",
                               t_callers, "informational", True, note=size))
    sub = slice(0, n // 10)
    t_policy = best_of(lambda: portfolio_metrics(
        simulate_portfolio(ets[sub], xts[sub], ret[sub], amount), ret[sub]), 7)
    results.append(BenchResult(f"portfolio + metrics, {n // 10:,} trades (one grid policy)",
                               t_policy, "informational", True))
    return results


if __name__ == "__main__":
    for row in collect():
        print(row)
