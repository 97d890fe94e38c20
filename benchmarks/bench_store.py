"""Writing runs: 1M-row trades throughput vs bare pyarrow, the seed's method, small runs."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks._report import BenchResult
from quantbot.artifacts import create_run_directory


def trades_table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    reasons = np.array(["take_profit", "stop_loss", "trailing_stop", "end_of_data"])
    return pa.table({
        "policy_id": pa.array(["fixed_stop:sl0.2:tp1"] * n),
        "call_id": pa.array([f"call-{i}" for i in range(n)]),
        "entry_ts_ms": rng.integers(1_700_000_000_000, 1_800_000_000_000, n),
        "entry_px": rng.random(n),
        "exit_ts_ms": rng.integers(1_700_000_000_000, 1_800_000_000_000, n),
        "exit_px": rng.random(n),
        "exit_reason": pa.array(reasons[rng.integers(0, 4, n)]),
        "realized_return_bps": rng.normal(0, 500, n),
        "stop_out": rng.random(n) > 0.5,
        "max_adverse_excursion_bps": -rng.random(n) * 1000,
        "time_exposed_ms": rng.integers(0, 86_400_000, n),
        "tail_capture": rng.random(n), "side": pa.array(["long"] * n),
    })


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    dfd = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _bare(table_or_rows: pa.Table | list[dict], path: str, durable: bool) -> float:
    t0 = time.perf_counter()
    table = table_or_rows if isinstance(table_or_rows, pa.Table) else pa.Table.from_pylist(table_or_rows)
    pq.write_table(table, path, compression="zstd")
    if durable:
        _fsync(path)
    return time.perf_counter() - t0


def _ours(data: pa.Table | list[dict], base: str, durable: bool) -> float:
    run = create_run_directory("policy", base_dir=base, durable=durable, git=False)
    t0 = time.perf_counter()
    run.write_artifact("trades", data)
    return time.perf_counter() - t0


def _paired(data: pa.Table | list[dict], base: str, durable: bool, repeat: int) -> tuple[float, float]:
    """Interleave baseline and ours so both see the same machine noise; best of each."""
    bare, ours = [], []
    for i in range(repeat):
        bare.append(_bare(data, os.path.join(base, f"bare-{i}.parquet"), durable))
        ours.append(_ours(data, base, durable))
    return min(bare), min(ours)


def _seed_method(rows: list[dict], path: str) -> float:
    """The original system: INSERT rows one by one into DuckDB, then COPY to Parquet."""
    con = duckdb.connect()
    cols = list(rows[0])
    con.execute(f"CREATE TABLE t ({', '.join(f'{c} VARCHAR' for c in cols)})")
    t0 = time.perf_counter()
    for r in rows:
        con.execute(f"INSERT INTO t VALUES ({', '.join('?' for _ in cols)})", [str(r[c]) for c in cols])
    con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed


def _small_run(base: str, durable: bool) -> float:
    rows = trades_table(100).to_pylist()
    alerts = [{"call_id": f"c{i}", "mint": "m", "caller_name": "x", "chain": "solana",
               "alert_ts_ms": 1_700_000_000_000 + i, "created_at": "2023-11-14T22:13:20.000Z",
               "side": "long"}
              for i in range(100)]
    errors = [{"timestamp": "2023-11-14T22:13:20.000Z", "level": "warning", "phase": "coverage",
               "call_id": f"c{i}", "message": "missing_range", "details": None} for i in range(100)]
    times = []
    for _ in range(41):
        t0 = time.perf_counter()
        with create_run_directory("policy", base_dir=base, durable=durable) as run:
            run.write_artifact("alerts", alerts)
            run.write_artifact("trades", rows)
            run.write_artifact("errors", errors)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def collect(quick: bool = False) -> list[BenchResult]:
    n = 100_000 if quick else 1_000_000
    base = tempfile.mkdtemp(prefix="qb-bench-store-", dir=os.environ.get("QUANTBOT_BENCH_DIR"))
    out: list[BenchResult] = []
    try:
        table = trades_table(n)
        for durable in (True, False):
            bare, ours = _paired(table, base, durable, repeat=2 if quick else 3)
            ratio = bare / ours
            label = "durable" if durable else "durability off"
            out.append(BenchResult(
                f"write_artifact {n:,} trades, Arrow input ({label})", ours, ">= 0.9x bare throughput",
                ratio >= 0.9, f"pq.write_table{' + fsync' if durable else ''}", bare,
                note=f"throughput ratio {ratio:.2f}x, {n / ours:,.0f} rows/s"))
        rows = table.to_pylist()
        bare, ours = _paired(rows, base, True, repeat=1 if quick else 4)
        ratio = bare / ours
        out.append(BenchResult(
            f"write_artifact {n:,} trades, list-of-dicts input (durable)", ours,
            ">= 0.9x bare throughput", ratio >= 0.9, "Table.from_pylist + pq.write_table + fsync",
            bare, note=f"throughput ratio {ratio:.2f}x"))
        seed_rows = rows[:5_000 if quick else 20_000]
        seed = _seed_method(seed_rows, os.path.join(base, "seed.parquet"))
        seed_rate = len(seed_rows) / seed
        ours_rate = n / out[0].measured
        out.append(BenchResult(
            "seed method: DuckDB row-by-row INSERT + COPY (rows/s)", seed_rate, "informational",
            True, unit="rows/s",
            note=f"measured on {len(seed_rows):,} rows; write_artifact is {ours_rate / seed_rate:,.0f}x faster"))
        for durable in (True, False):
            label = "durable" if durable else "durability off"
            med = _small_run(os.path.join(base, f"small-{durable}"), durable)
            out.append(BenchResult(f"complete small run: 3 artifacts x 100 rows ({label})", med,
                                   "<= 10 ms median", med <= 0.010))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return out
