"""The web app at scale: 100,000 cataloged runs — the runs page, the runs API with a filter,
one run's 10,000 trades — as server time (the ``Server-Timing`` the app reports for each
request of a real ``quantbot backtest ui`` server), against a plain ``SELECT count(*)`` on a
fresh connection to the same catalog, measured in the same run.

The catalog comes from ``benchmarks.catalog_fixture.synthetic_catalog`` (helper perf) when
it is there; otherwise from manifest-only clones of one real run (``bench_catalog``'s
``clone_runs``) synced by ``catalog_all_runs``: no parameters or metrics to filter on then,
so the filter is on run attributes only.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
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
REPEAT = 21


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


def _serve(db: Path, base: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", "from quantbot.cli import main; main()",
                             "backtest", "ui", "--base-dir", str(base), "--duckdb", str(db),
                             "--port", str(port)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("ui server did not start")


def _server_time(client: object, url: str, params: dict[str, str] | None = None) -> float:
    """Median over REPEAT requests of the app's own time (seconds), after one warm-up."""
    times = []
    for _ in range(REPEAT + 1):
        r = client.get(url, params=params)  # type: ignore[attr-defined]
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        times.append(float(r.headers["server-timing"].split("dur=")[1]) / 1e3)
    return statistics.median(times[1:])


def collect(quick: bool = False) -> list[BenchResult]:
    import httpx

    n, n_trades = (10_000, 10_000) if quick else (100_000, 10_000)
    tmp = Path(tempfile.mkdtemp(prefix="qb-bench-ui-", dir=os.environ.get("QUANTBOT_BENCH_DIR")))
    proc = None
    try:
        t0 = time.perf_counter()
        db, base, filter_text = _catalog(tmp, n)
        run_id = _trades_run(base, db, n_trades)
        print(f"# ui bench catalog of {n:,} runs in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)

        def count() -> None:
            with duckdb.connect(str(db), read_only=True) as con:
                con.execute("SELECT count(*) FROM backtest_runs_catalog").fetchall()

        baseline = median_of(count, REPEAT)
        proc, url = _serve(db, base)
        with httpx.Client(base_url=url, timeout=60) as client:
            api = _server_time(client, "/api/runs", {"filter": filter_text, "limit": "50"})
            page = _server_time(client, "/")
            if client.get(f"/runs/{run_id}").status_code == 200:
                one, what = _server_time(client, f"/runs/{run_id}"), "run page /runs/{id}"
            else:
                one = _server_time(client, f"/api/runs/{run_id}/artifacts/trades", {"limit": "1000"})
                what = "/api/runs/{id}/artifacts/trades?limit=1000 (run page absent)"
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    base_name = f"SELECT count(*) on a fresh connection ({n:,} runs)"
    return [
        BenchResult(f"ui GET /api/runs?filter=... at {n:,} runs", api, "<= 150 ms", api <= 0.150,
                    base_name, baseline, note=f"server time; filter {filter_text!r}, limit 50"),
        BenchResult(f"ui GET / (runs page, 50 rows) at {n:,} runs", page, "<= 150 ms",
                    page <= 0.150, base_name, baseline, note="server time"),
        BenchResult(f"ui {what}, {n_trades:,} trades", one, "<= 300 ms", one <= 0.300,
                    base_name, baseline, note="server time"),
    ]
