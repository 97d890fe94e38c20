"""The web app at scale: 100,000 cataloged runs — the runs page, the runs API with a filter,
one run's 10,000 trades — timed in-process (server time: the app's own work, no network),
against a plain ``SELECT count(*)`` on a fresh connection to the same catalog, measured in
the same run.

The catalog comes from ``benchmarks.catalog_fixture.synthetic_catalog`` (helper perf) when
it is there; otherwise from manifest-only clones of one real run (``bench_catalog``'s
``clone_runs``) synced by ``catalog_all_runs``: no parameters or metrics to filter on then,
so the filter is on run attributes only.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from benchmarks._report import BenchResult, median_of
from benchmarks.bench_store import trades_table
from quantbot.artifacts import catalog_all_runs, create_run_directory

FILTER = "status = 'completed' AND run_type = 'policy'"
RICH_FILTER = "status = 'completed' AND metrics.win_rate > 0.5"


def _catalog(tmp: Path, n: int) -> tuple[Path, Path, str]:
    """(catalog, base dir, filter to time) with ``n`` runs."""
    try:
        from benchmarks.catalog_fixture import synthetic_catalog
    except ModuleNotFoundError:
        from benchmarks.bench_catalog import clone_runs

        base, db = tmp / "runs", tmp / "catalog.duckdb"
        clone_runs(str(base), n)
        catalog_all_runs(catalog=db, base_dir=base)
        return db, base, FILTER
    db, base = synthetic_catalog(tmp, n)
    return db, base, RICH_FILTER


def _trades_run(base: Path, db: Path, n_trades: int) -> str:
    with create_run_directory("policy", base_dir=base, durable=False, git=False,
                              parameters={"policy_id": "bench"}) as run:
        run.write_artifact("trades", trades_table(n_trades))
    catalog_all_runs(catalog=db, base_dir=base)
    return run.run_id


def collect(quick: bool = False) -> list[BenchResult]:
    from fastapi.testclient import TestClient

    from quantbot.ui.app import create_app

    n, n_trades = (10_000, 10_000) if quick else (100_000, 10_000)
    tmp = Path(tempfile.mkdtemp(prefix="qb-bench-ui-", dir=os.environ.get("QUANTBOT_BENCH_DIR")))
    try:
        t0 = time.perf_counter()
        db, base, filter_text = _catalog(tmp, n)
        run_id = _trades_run(base, db, n_trades)
        print(f"# ui bench catalog of {n:,} runs in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        client = TestClient(create_app(base, db), base_url="http://127.0.0.1")
        paths = {r.path for r in client.app.routes}
        run_page = "/runs/{run_id}" in paths

        def get(url: str, **params: str) -> None:
            r = client.get(url, params=params)
            assert r.status_code == 200, (url, r.status_code, r.text[:300])

        def count() -> None:
            with duckdb.connect(str(db), read_only=True) as con:
                con.execute("SELECT count(*) FROM backtest_runs_catalog").fetchall()

        baseline = median_of(count)
        base_name = f"SELECT count(*) on a fresh connection ({n:,} runs)"
        api = median_of(lambda: get("/api/runs", filter=filter_text, limit="50"))
        page = median_of(lambda: get("/"))
        if run_page:
            one, what = median_of(lambda: get(f"/runs/{run_id}")), "run page /runs/{id}"
        else:
            one = median_of(lambda: get(f"/api/runs/{run_id}/artifacts/trades", limit="1000"))
            what = "/api/runs/{id}/artifacts/trades (run page absent)"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        BenchResult(f"ui GET /api/runs?filter=... at {n:,} runs", api, "<= 150 ms", api <= 0.150,
                    base_name, baseline, note=f"filter {filter_text!r}, limit 50"),
        BenchResult(f"ui GET / (runs page, 50 rows) at {n:,} runs", page, "<= 150 ms",
                    page <= 0.150, base_name, baseline),
        BenchResult(f"ui {what}, {n_trades:,} trades", one, "<= 300 ms", one <= 0.300,
                    base_name, baseline),
    ]
