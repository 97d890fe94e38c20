"""End-to-end ``run policy`` on the sample data, in-process, with the manifest's phase timing.

The claim to check: a flow's time goes to I/O (reading alerts and candles through DuckDB,
writing Parquet and the manifest), not to Python loops; the numeric core (coverage +
execution, numba) is a small share. Each phase is a row with its share of the run's
``total_ms``; the slice phase is compared with a plain pyarrow read of the whole candles
file (the raw I/O floor). Targets are informational. Timings exclude JIT compilation and
first imports (one warm-up run), take the fastest of a few runs, and write durably (the
CLI default).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks._report import BenchResult, best_of
from quantbot.artifacts import read_manifest
from quantbot.backtest import run_policy_backtest
from quantbot.backtest.data.sample import write_sample_data

POLICY = {"kind": "combo", "policies": [
    {"kind": "fixed_stop", "stop_pct": 0.25},
    {"kind": "time_stop", "max_hold_ms": "6h", "take_profit_pct": 0.8},
    {"kind": "trailing_stop", "activation_pct": 0.3, "trail_pct": 0.2}]}
PHASES = ("plan", "slice", "coverage", "execution", "store")
IO_PHASES = ("plan", "slice", "store")


def collect(quick: bool = False) -> list[BenchResult]:
    n_alerts = 200 if quick else 2_000
    with tempfile.TemporaryDirectory(prefix="qb-bench-flows-") as tmp:
        alerts, candles = write_sample_data(Path(tmp) / "data", n_alerts=n_alerts)
        n_candles = pq.read_metadata(candles).num_rows
        base = Path(tmp) / "runs"
        run_policy_backtest(alerts, candles, POLICY, base_dir=base)  # warm-up: JIT, imports
        runs = []
        for _ in range(2 if quick else 3):
            t0 = time.perf_counter()
            result = run_policy_backtest(alerts, candles, POLICY, base_dir=base)
            runs.append((time.perf_counter() - t0, result))
        wall, result = min(runs, key=lambda r: r[0])
        timing = read_manifest(result.run_dir).timing.model_dump()
        t_read = best_of(lambda: pq.read_table(candles), 3)
    size = f"{n_alerts} alerts, {n_candles:,} candles in file, {result.eligible} trades"
    total_ms = timing["total_ms"]
    results = [BenchResult("flow run policy end to end (in-process)", wall, "informational",
                           True, note=size)]
    for phase in PHASES:
        ms = timing[f"{phase}_ms"] or 0.0
        share = 100.0 * ms / total_ms
        baseline = ("pyarrow read_table of the whole candles file", t_read) if phase == "slice" \
            else (None, None)
        results.append(BenchResult(
            f"  phase {phase} ({'I/O' if phase in IO_PHASES else 'numeric core'})", ms / 1e3,
            "informational", True, baseline[0], baseline[1], note=f"{share:.0f}% of total_ms"))
    io_share = 100.0 * sum(timing[f"{p}_ms"] or 0.0 for p in IO_PHASES) / total_ms
    core_share = 100.0 * sum(timing[f"{p}_ms"] or 0.0 for p in ("coverage", "execution")) / total_ms
    results.append(BenchResult("  I/O share of the run (plan + slice + store)", io_share,
                               ">= 50 % (informational)", True, unit="%",
                               note=f"numeric core {core_share:.0f}%; "
                                    f"{'I/O-dominated' if io_share >= 50 else 'NOT I/O-dominated'}"))
    return results


if __name__ == "__main__":
    for row in collect(quick=True):
        print(row)
