"""The same store, catalog and CLI on an S3-compatible object store (real server on loopback)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
from qbtest import HELPERS_DIR, QUANTBOT, alert_row, trade_row

from quantbot.artifacts import (
    catalog_all_runs,
    create_run_directory,
    get_artifact_path,
    is_complete,
    list_run_directories,
    query_runs,
    read_manifest,
    run_sql,
)
from quantbot.artifacts.schema.manifest import parse_manifest
from quantbot.artifacts.store.backends import ObjectStorage, open_storage


def _write(base: str, n_trades: int = 3, fail: bool = False) -> str:
    run = create_run_directory("policy", base_dir=base, git=False,
                               parameters={"policy_id": "p1"})
    try:
        with run:
            run.write_artifact("alerts", [alert_row(i) for i in range(n_trades)])
            run.write_artifact("trades", [trade_row(i) for i in range(n_trades)])
            if fail:
                raise RuntimeError("boom")
    except RuntimeError:
        pass
    return run.run_id


def test_runs_round_trip_through_s3(s3_base: str, tmp_path):
    run_id = _write(s3_base)
    failed_id = _write(s3_base, fail=True)
    dirs = list_run_directories(s3_base)
    assert len(dirs) == 2 and all(d.startswith(s3_base + "/") for d in dirs)
    by_id = {d.rsplit("=", 1)[1]: d for d in dirs}
    assert is_complete(by_id[run_id]) and not is_complete(by_id[failed_id])
    assert read_manifest(by_id[failed_id]).error.message == "boom"
    storage = open_storage(by_id[run_id])
    assert isinstance(storage, ObjectStorage)
    data = storage.read_bytes(storage.join(storage.root, "policy", "trades.parquet"))
    table = pq.read_table(pa.BufferReader(data))
    assert table.num_rows == 3 and table.schema.metadata[b"run_id"].decode() == run_id

    db = tmp_path / "catalog.duckdb"
    report = catalog_all_runs(catalog=db, base_dir=s3_base)
    assert (report.registered, report.incomplete, report.invalid) == (2, 0, [])
    runs = query_runs(db, status="completed")
    assert [r.run_id for r in runs] == [run_id]
    assert get_artifact_path(db, run_id, "trades") == f"{by_id[run_id]}/policy/trades.parquet"
    assert run_sql(db, "SELECT count(*) AS n FROM all_trades WHERE run_id = ?",
                   [run_id]).to_pylist() == [{"n": 3}]
    assert catalog_all_runs(catalog=db, base_dir=s3_base).already_present == 2


def test_cli_on_s3(s3_base: str, s3_endpoint: str, tmp_path):
    run_id = _write(s3_base)
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    cmd = [QUANTBOT, "--s3-endpoint", s3_endpoint, "backtest"]  # the explicit option
    out = subprocess.run([*cmd, "catalog-sync", "--base-dir", s3_base, "--format", "json"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["registered"] == 1
    out = subprocess.run([*cmd, "show", run_id], cwd=tmp_path, env=env, capture_output=True,
                         text=True, check=True)
    assert "s3://" in out.stdout and "trades" in out.stdout
    out = subprocess.run([*cmd, "sql", "SELECT count(*) AS n FROM all_trades", "--format", "json"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [{"n": 3}]
    bad = subprocess.run([QUANTBOT, "backtest", "catalog-sync", "--base-dir", s3_base,
                          "--duckdb", str(tmp_path / "other.duckdb")],
                         cwd=tmp_path, env={**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_sigkilled_writer_on_s3_leaves_no_partial_object(s3_base: str, tmp_path):
    """Each object is one PUT: killing the writer never leaves a torn object, and the
    catalog never shows a run without _SUCCESS as completed."""
    db = tmp_path / "catalog.duckdb"
    env = {**os.environ, "PYTHONPATH": str(HELPERS_DIR)}
    rng = random.Random(5)
    zygote = subprocess.Popen([sys.executable, str(HELPERS_DIR / "s3_crash_child.py"), s3_base],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    try:
        for _ in range(50):
            zygote.stdin.write("go\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline().split()[1])
            time.sleep(rng.uniform(0, 0.3))
            os.kill(pid, signal.SIGKILL)
            zygote.stdin.write(f"reap {pid}\n")
            zygote.stdin.flush()
            assert zygote.stdout.readline().startswith("reaped")
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)
    storage = open_storage(s3_base)
    complete = 0
    for run_dir in list_run_directories(s3_base):
        run_storage = open_storage(run_dir)
        root = run_storage.root
        names = {info for info in _walk(run_storage, root)}
        if "run.json" in names:
            manifest = parse_manifest(run_storage.read_bytes(f"{root}/run.json"))
            for entry in manifest.artifacts.values():  # listed objects are complete
                data = run_storage.read_bytes(f"{root}/{entry.path}")
                assert pq.read_table(pa.BufferReader(data)).num_rows == entry.rows
        for name in names:
            if name.endswith(".parquet"):
                pq.read_table(pa.BufferReader(run_storage.read_bytes(f"{root}/{name}")))
        if "_SUCCESS" in names:
            complete += 1
            assert manifest.status == "completed"
    report = catalog_all_runs(catalog=db, base_dir=s3_base)
    assert report.invalid == []
    completed = {r.run_id for r in query_runs(db, status="completed", limit=None)}
    assert len(completed) == complete
    for run_id in completed:
        assert is_complete(f"{s3_base}/{_month(storage, s3_base, run_id)}/run_id={run_id}")


def _walk(storage: ObjectStorage, root: str) -> list[str]:
    from pyarrow import fs

    infos = storage.fs.get_file_info(fs.FileSelector(root, recursive=True, allow_not_found=True))
    return [i.path[len(root) + 1:] for i in infos if i.type == fs.FileType.File]


def _month(storage: ObjectStorage, base: str, run_id: str) -> str:
    return next(d for d in list_run_directories(base) if d.endswith(run_id)).rsplit("/", 2)[1]


def test_concurrent_writers_and_syncs_on_s3(s3_base: str, tmp_path):
    db = tmp_path / "catalog.duckdb"
    env = {**os.environ, "PYTHONPATH": str(HELPERS_DIR)}
    child = str(HELPERS_DIR / "concurrent_child.py")
    writers = [subprocess.Popen([sys.executable, child, "write", s3_base, "25"], env=env)
               for _ in range(4)]
    syncer = subprocess.Popen([sys.executable, child, "sync", s3_base, str(db), "8"], env=env,
                              stdout=subprocess.DEVNULL)
    assert all(w.wait(timeout=300) == 0 for w in writers)
    assert syncer.wait(timeout=300) == 0
    catalog_all_runs(catalog=db, base_dir=s3_base)
    rows = run_sql(db, "SELECT count(*) AS n, count(DISTINCT run_id) AS d, "
                       "count(*) FILTER (status = 'completed') AS ok FROM backtest_runs_catalog")
    n = rows.to_pylist()[0]
    assert n["n"] == n["d"] == 100
    assert n["ok"] == len([d for d in list_run_directories(s3_base) if is_complete(d)])


def test_flow_verify_and_gc_on_s3(s3_base: str, tmp_path):
    from quantbot.backtest import run_policy_backtest
    from quantbot.backtest.data.sample import write_sample_data

    alerts, candles = write_sample_data(tmp_path / "sample")
    result = run_policy_backtest(alerts, candles, {"kind": "fixed_stop", "stop_pct": 0.2,
                                                   "take_profit_pct": 1.0}, base_dir=s3_base)
    assert result.status == "completed" and result.run_dir.startswith("s3://")
    assert is_complete(result.run_dir)
    assert read_manifest(result.run_dir).artifacts["trades"].rows == result.trades
    db = tmp_path / "catalog.duckdb"
    assert catalog_all_runs(catalog=db, base_dir=s3_base).registered == 1
    assert run_sql(db, "SELECT count(*) AS n FROM all_trades").to_pylist() == [{"n": result.trades}]
    for args in (["verify", "--all"], ["gc", "--stale", "1h"]):
        out = subprocess.run([QUANTBOT, "backtest", *args, "--base-dir", s3_base], cwd=tmp_path,
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
