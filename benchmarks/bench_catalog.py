"""The catalog at scale: 10,000 runs x 500 trades — sync, incremental sync, queries, SQL."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import duckdb

from benchmarks._report import BenchResult, best_of, median_of
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


def clone_runs(base: str, n: int) -> None:
    """n completed runs (manifest + marker, no artifacts) cloned from one real run: a cheap
    way to reach 100,000 registered runs; each clone is a valid run with its own id."""
    with create_run_directory("policy", base_dir=base, git=False, durable=False) as run:
        pass
    template = Path(run.path, "run.json").read_text()
    month = Path(run.path).parent
    for _ in range(n - 1):
        run_id = str(uuid.uuid4())
        folder = month / f"run_id={run_id}"
        folder.mkdir()
        (folder / "run.json").write_text(template.replace(run.run_id, run_id))
        (folder / "_SUCCESS").write_text(run.manifest.completed_at or "")


def collect_100k(quick: bool) -> list[BenchResult]:
    """Incremental sync cost must follow the new runs, not the registered ones."""
    n = 20_000 if quick else 100_000
    tmp = tempfile.mkdtemp(prefix="qb-bench-100k-", dir=os.environ.get("QUANTBOT_BENCH_DIR"))
    base, db = os.path.join(tmp, "runs"), os.path.join(tmp, "catalog.duckdb")
    try:
        clone_runs(base, n)
        t0 = time.perf_counter()
        catalog_all_runs(catalog=db, base_dir=base)
        full = time.perf_counter() - t0
        _write_runs((base, 0, 10, 500))
        t0 = time.perf_counter()
        report = catalog_all_runs(catalog=db, base_dir=base)
        incr = time.perf_counter() - t0
        assert report.registered == 10, report
        t0 = time.perf_counter()
        catalog_all_runs(catalog=db, base_dir=base)
        noop = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        BenchResult(f"catalog-sync 10 new runs among {n:,} registered", incr, "<= 1 s", incr <= 1.0,
                    f"full sync of the {n:,} (manifest-only runs)", full),
        BenchResult(f"catalog-sync with nothing new among {n + 10:,}", noop, "informational", True,
                    note="lists folder names, anti-joins in DuckDB, takes no write lock"),
    ]


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
        report = catalog_all_runs(catalog=db, base_dir=base)
        full = time.perf_counter() - t0
        assert report.registered == n, report
        out.append(BenchResult(f"catalog-sync {n:,} runs from scratch (incl. {n * trades:,} trades)",
                               full, "<= 3 s", full <= 3.0,
                               note="validates manifests, sha256 of every artifact, consolidates rows"))

        _write_runs((base, n, 10, trades))
        t0 = time.perf_counter()
        report = catalog_all_runs(catalog=db, base_dir=base)
        incr = time.perf_counter() - t0
        assert report.registered == 10, report
        out.append(BenchResult(f"catalog-sync 10 new runs among {n:,} registered", incr, "<= 0.5 s",
                               incr <= 0.5))

        con = duckdb.connect(db, read_only=True)  # a notebook's long-lived connection
        q = median_of(lambda: query_runs(con, run_type="policy", status="completed", limit=100))
        assert len(query_runs(con, run_type="policy", limit=100)) == 100
        con.close()
        out.append(BenchResult(f"query_runs(run_type, status, limit=100) at {n:,} runs, in-process",
                               q, "<= 10 ms", q <= 0.010,
                               note="median of 21 on an open connection; returns 100 validated manifests"))
        qp = median_of(lambda: query_runs(db, run_type="policy", status="completed", limit=100))
        bare = median_of(lambda: duckdb.connect(db, read_only=True).close())
        out.append(BenchResult("query_runs given the catalog path (opens the file each call)", qp,
                               "informational", True, "bare duckdb.connect + close of the file", bare))

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
    return out + collect_100k(quick)
