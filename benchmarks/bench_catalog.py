"""The catalog at scale: 10,000 runs x 500 trades — sync, incremental sync, queries, SQL."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from benchmarks._report import BenchResult, best_of
from benchmarks.bench_store import trades_table
from quantbot.artifacts import catalog_all_runs, create_run_directory, query_runs

QUANTBOT = str(Path(sys.executable).parent / "quantbot")


def _write_runs(args: tuple[str, int, int, int]) -> None:
    base, start, count, trades = args
    table = trades_table(trades * 64, seed=start)
    for i in range(start, start + count):
        off = (i % 64) * trades
        with create_run_directory("policy" if i % 3 else "path-only", base_dir=base, durable=False,
                                  git=False, parameters={"policy_id": f"p{i % 20}"},
                                  dataset={"interval": "1m", "calls_count": trades}) as run:
            run.write_artifact("trades", table.slice(off, trades))


def make_runs(base: str, n: int, trades: int, procs: int = 2) -> None:
    chunk = (n + procs - 1) // procs
    jobs = [(base, s, min(chunk, n - s), trades) for s in range(0, n, chunk)]
    with mp.get_context("fork").Pool(procs) as pool:
        pool.map(_write_runs, jobs)


def _cli(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([QUANTBOT, "backtest", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def collect(quick: bool = False) -> list[BenchResult]:
    n, trades = (1_000, 500) if quick else (10_000, 500)
    tmp = tempfile.mkdtemp(prefix="qb-bench-catalog-", dir=os.environ.get("QUANTBOT_BENCH_DIR"))
    base, db = os.path.join(tmp, "runs"), os.path.join(tmp, "catalog.duckdb")
    out: list[BenchResult] = []
    try:
        t0 = time.perf_counter()
        make_runs(base, n, trades)
        print(f"# wrote {n:,} runs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

        t0 = time.perf_counter()
        report = catalog_all_runs(db, base)
        full = time.perf_counter() - t0
        assert report.registered == n, report
        out.append(BenchResult(f"catalog-sync {n:,} runs from scratch (incl. {n * trades:,} trades)",
                               full, "<= 3 s", full <= 3.0,
                               note="validates manifests, sha256 of every artifact, consolidates rows"))

        _write_runs((base, n, 10, trades))
        t0 = time.perf_counter()
        report = catalog_all_runs(db, base)
        incr = time.perf_counter() - t0
        assert report.registered == 10, report
        out.append(BenchResult(f"catalog-sync 10 new runs among {n:,} registered", incr, "<= 0.5 s",
                               incr <= 0.5))

        times = []
        for _ in range(21):
            t0 = time.perf_counter()
            runs = query_runs(db, run_type="policy", status="completed", limit=100)
            times.append(time.perf_counter() - t0)
        assert len(runs) == 100
        q = statistics.median(times)
        out.append(BenchResult(f"query_runs(run_type, status, limit=100) at {n:,} runs, in-process",
                               q, "<= 10 ms", q <= 0.010, note="median of 21, returns manifests"))

        startup = best_of(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 3)
        cli_q = best_of(lambda: _cli("catalog-query", "--duckdb", db, "--run-type", "policy",
                                     "--limit", "100"), 3)
        out.append(BenchResult("CLI catalog-query end to end (fresh process)", cli_q, "<= 0.5 s",
                               cli_q <= 0.5, "bare `python -c pass`", startup))

        agg = ("SELECT policy_id, count(*) AS n, avg(realized_return_bps) AS avg_bps, "
               "median(realized_return_bps) AS med_bps FROM all_trades GROUP BY ALL ORDER BY 1")
        cli_sql = best_of(lambda: _cli("sql", agg, "--duckdb", db), 3)
        glob = os.path.join(base, "*", "*", "policy", "trades.parquet")

        def naive() -> None:
            con = duckdb.connect()
            con.execute(agg.replace("all_trades", f"read_parquet('{glob}')")).fetchall()
            con.close()

        naive_s = best_of(naive, 1)
        out.append(BenchResult(f"CLI sql aggregate over all_trades ({n * trades:,} rows) end to end",
                               cli_sql, "<= 1 s", cli_sql <= 1.0,
                               "in-process DuckDB read_parquet glob over the run files", naive_s))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
