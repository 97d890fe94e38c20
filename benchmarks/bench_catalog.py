"""The catalog at scale: 10,000 runs x 500 trades (rebuild, incremental sync, queries, SQL)
and 100,000 runs (incremental sync, filtered listing) on the synthetic catalog."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from benchmarks._report import BenchResult, best_of, median_of
from benchmarks.bench_store import trades_table
from benchmarks.catalog_fixture import synthetic_catalog
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


def _empty_folders(db: Path) -> int:
    """An empty ``run_id=<uuid>`` folder for every cataloged run that has none (the
    replicas of ``synthetic_catalog``): the listing a sync makes then holds every run."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        dirs = [r[0] for r in con.execute("SELECT run_dir FROM backtest_runs_catalog").fetchall()]
    finally:
        con.close()
    made = 0
    for d in dirs:
        if not os.path.isdir(d):
            os.makedirs(d)
            made += 1
    return made


def _list_folders(base: Path) -> int:
    """The bare floor of any sync: list every month partition's folder names."""
    return sum(len(os.listdir(base / m)) for m in os.listdir(base))


def collect_100k(quick: bool) -> list[BenchResult]:
    """Incremental sync cost must follow the new runs, not the registered ones.

    Synthetic (see benchmarks/catalog_fixture.py): a catalog of n runs of which 200 are
    real and the rest rows replicated by SQL, plus an empty ``run_id=<uuid>`` folder per
    replica so that the base dir lists n runs; then 10 real new runs (500 trades each).
    """
    n = 20_000 if quick else 100_000
    tmp = Path(tempfile.mkdtemp(prefix="qb-bench-100k-", dir=os.environ.get("QUANTBOT_BENCH_DIR")))
    try:
        t0 = time.perf_counter()
        db, base = synthetic_catalog(tmp, n)
        _empty_folders(db)
        print(f"# built the {n:,}-run catalog and folders in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        _write_runs((str(base), 0, 10, 500))
        listing = best_of(lambda: _list_folders(base), 3)
        t0 = time.perf_counter()
        report = catalog_all_runs(catalog=db, base_dir=base)
        incr = time.perf_counter() - t0
        assert report.registered == 10 and report.already_present == n, report
        t0 = time.perf_counter()
        catalog_all_runs(catalog=db, base_dir=base)
        noop = time.perf_counter() - t0
        out = [
            BenchResult(f"catalog-sync 10 new runs among {n:,} registered", incr, "<= 0.5 s",
                        incr <= 0.5, f"listing the {n:,} folder names (os.listdir)", listing,
                        note="synthetic catalog + empty folders (benchmarks/catalog_fixture.py)"),
            BenchResult(f"catalog-sync with nothing new among {n + 10:,}", noop, "informational",
                        True, note="lists folder names, anti-joins in DuckDB, takes no write lock"),
        ]
        out += collect_listing(db, n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


#: A filtered listing with metrics and tags (the issue's example, on the fixture's fields).
LISTING_FILTER = ("run_type = 'policy' AND git_branch IN ('main', 'exp/fees') "
                  "AND metrics.median_return_bps > 0 AND params.policy.sl < 0.2 "
                  "AND tags.stage = 'keep'")
LISTING_ORDER = "metrics.median_return_bps DESC"


def collect_listing(db: Path, n: int) -> list[BenchResult]:
    """``list_runs`` with a filter over metrics, params and tags, in-process and from a
    fresh CLI process; skipped (one line) while the listing module is absent."""
    try:
        from quantbot.artifacts.catalog.listing import list_runs
    except ImportError:
        print("listing: not available", file=sys.stderr)
        return []
    con = duckdb.connect(str(db), read_only=True)
    try:
        def listing():
            return list_runs(con, LISTING_FILTER, order_by=LISTING_ORDER, limit=50)

        found = listing()
        assert found.total > 0 and found.runs, found
        q = median_of(listing)
        plain = median_of(lambda: con.execute(
            "SELECT * FROM backtest_runs_catalog ORDER BY created_at DESC LIMIT 50").fetchall())
    finally:
        con.close()
    startup = best_of(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 3)
    cli = best_of(lambda: _cli("catalog-query", "--duckdb", str(db), "--filter", LISTING_FILTER,
                               "--order-by", LISTING_ORDER, "--limit", "50"), 3)
    return [
        BenchResult(f"list_runs(filter on metrics/params/tags) at {n:,} runs, in-process", q,
                    "<= 20 ms", q <= 0.020, "SELECT * ... ORDER BY created_at LIMIT 50 (no filter)",
                    plain, note=f"median of 21 on an open connection; {found.total:,} match"),
        BenchResult(f"CLI catalog-query --filter at {n:,} runs (fresh process)", cli, "<= 0.5 s",
                    cli <= 0.5, "bare `python -c pass`", startup),
    ]


def _cli(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([QUANTBOT, "backtest", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _decode_floor(base: str) -> None:
    """Decoding every trades file once into an in-memory table: what consolidation alone
    costs, without validation, index rows or compression into the catalog file."""
    con = duckdb.connect()
    try:
        glob = os.path.join(base, "*", "*", "policy", "trades.parquet")
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{glob}', hive_partitioning = false)")
    finally:
        con.close()


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
        decode = best_of(lambda: _decode_floor(base), 1)
        out.append(BenchResult(f"catalog-sync {n:,} runs from scratch (incl. {n * trades:,} trades)",
                               full, "<= 3 s", full <= 3.0,
                               "DuckDB read_parquet of the same trades files into memory", decode,
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
