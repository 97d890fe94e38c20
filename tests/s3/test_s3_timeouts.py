"""A store that stops answering: the outcome a writer reports is the outcome on storage,
small objects are single PUTs, and one object that cannot be read invalidates only its run.

Real servers throughout: a private moto server paused with SIGSTOP, or a TCP proxy in front
of it that holds back the requests of one key (see conftest)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time

import pytest
from qbtest import QUANTBOT, alert_row, trade_row

from quantbot.artifacts import catalog_all_runs, create_run_directory, query_runs
from quantbot.artifacts.store.backends import open_storage
from quantbot.errors import StorageError, StorageTimeoutError


def start_run(storage):
    run = create_run_directory("policy", base_dir=storage, git=False)
    run.write_artifact("alerts", [alert_row(i) for i in range(3)])
    run.write_artifact("trades", [trade_row(i) for i in range(3)])
    return run


def key(run, name: str) -> str:
    """The storage path of a file of ``run`` (``run.path`` is the s3:// URI)."""
    return f"{run.path.removeprefix('s3://')}/{name}"


def trades_reads(run) -> bytes:
    """A proxy pattern: the GET/HEAD requests of ``run``'s trades.parquet."""
    return (rb"(GET|HEAD) /[^ ]*run_id(=|%3D)" + run.run_id.encode()
            + rb"/policy/trades\.parquet ")


def three_runs_one_unanswered(moto_server, stall_proxy, slow_index: int):
    """Three completed runs; reads of run ``slow_index``'s trades.parquet through the
    returned proxy go unanswered for 60 s. -> (bucket, direct storage, runs, slow, proxy)"""
    bucket = moto_server.bucket()
    direct = open_storage(f"s3://{bucket}/runs", endpoint_url=moto_server.endpoint)
    runs = [start_run(direct) for _ in range(3)]
    for run in runs:
        run.mark_success()
    slow = runs[slow_index]
    return bucket, direct, runs, slow, stall_proxy(moto_server.port, trades_reads(slow), 60.0)


def test_small_objects_are_single_puts_large_ones_multipart(moto_server, tmp_path):
    bucket = moto_server.bucket()
    storage = open_storage(f"s3://{bucket}/runs", endpoint_url=moto_server.endpoint)
    run = start_run(storage)
    run.write_log("big.txt", "x" * (11 << 20))  # above pyarrow's 10 MiB part size
    run.write_log("small.txt", "x" * (9 << 20))
    run.mark_success()
    lines = moto_server.requests()
    for key in ("run.json", "_SUCCESS", "policy/trades.parquet", "logs/small.txt"):
        assert any(l.startswith("PUT ") and l.endswith(f"/{key}") for l in lines), (key, lines)
        assert not any(f"/{key}?uploads" in l for l in lines), (key, lines)
    assert any(l.startswith("POST ") and "/logs/big.txt?uploads" in l for l in lines), lines


def test_server_paused_during_completion_reports_what_storage_holds(
        moto_server, short_timeouts, tmp_path):
    """SIGSTOP for 9 s while run.json and _SUCCESS are written: longer than a PUT's
    timeout (about 7 s here), so the writer must resolve unanswered writes itself."""
    bucket = moto_server.bucket()
    base = f"s3://{bucket}/runs"
    storage = open_storage(base, endpoint_url=moto_server.endpoint)
    run = start_run(storage)
    moto_server.pause()
    threading.Timer(9.0, moto_server.resume).start()
    try:
        run.mark_success()
        reported = "completed"
    except (OSError, StorageError):
        reported = "failed"
    time.sleep(3.5)  # whatever the server had buffered is applied by now
    moto_server.resume()
    on_storage = "completed" if storage.exists(key(run, "_SUCCESS")) else "failed"
    assert reported == on_storage == "completed"
    report = catalog_all_runs(catalog=tmp_path / "c.duckdb", base_dir=storage)
    assert (report.registered, report.invalid) == (1, [])
    assert [r.run_id for r in query_runs(tmp_path / "c.duckdb", status="completed")] == [run.run_id]


def test_marker_put_held_then_landing_is_confirmed_by_reading_back(
        moto_server, stall_proxy, short_timeouts, tmp_path):
    """The issue's case: the _SUCCESS PUT reaches the server only after the client gave up
    (held 9 s by the proxy, longer than a PUT's timeout, then forwarded: it lands). The
    writer must not report failure."""
    bucket = moto_server.bucket()
    proxy = stall_proxy(moto_server.port, rb"PUT /[^ ]*/_SUCCESS[ ?]", 9.0)
    storage = open_storage(f"s3://{bucket}/runs", endpoint_url=proxy.endpoint)
    run = start_run(storage)
    try:
        run.mark_success()
        reported = "completed"
    except (OSError, StorageError):
        reported = "failed"
    time.sleep(max(0.0, proxy.until - time.monotonic()) + 1)  # held PUTs forwarded, applied
    direct = open_storage(f"s3://{bucket}/runs", endpoint_url=moto_server.endpoint)
    on_storage = "completed" if direct.exists(key(run, "_SUCCESS")) else "failed"
    assert proxy.matched >= 2  # timed out, read back (absent), PUT again: resolved by reading
    assert reported == on_storage == "completed"


def test_marker_unconfirmed_by_the_deadline_cannot_become_a_success(
        moto_server, stall_proxy, short_timeouts, monkeypatch, tmp_path):
    """The _SUCCESS PUT is held 12 s, past a 1 s write deadline: mark_success fails naming
    the key; run.json is rewritten as failed first, so the held PUT that lands afterwards
    makes the run invalid, never a completed run."""
    monkeypatch.setenv("QUANTBOT_S3_WRITE_DEADLINE", "1")
    bucket = moto_server.bucket()
    proxy = stall_proxy(moto_server.port, rb"PUT /[^ ]*/_SUCCESS[ ?]", 12.0)
    storage = open_storage(f"s3://{bucket}/runs", endpoint_url=proxy.endpoint)
    run = start_run(storage)
    with pytest.raises(StorageTimeoutError,
                       match=r"_SUCCESS: write not confirmed within 1 s; the object is absent"):
        run.mark_success()
    time.sleep(max(0.0, proxy.until - time.monotonic()) + 1)
    direct = open_storage(f"s3://{bucket}/runs", endpoint_url=moto_server.endpoint)
    assert direct.exists(key(run, "_SUCCESS"))  # the held PUT did land, after the failure
    report = catalog_all_runs(catalog=tmp_path / "c.duckdb", base_dir=direct)
    assert query_runs(tmp_path / "c.duckdb", status="completed") == []
    assert report.registered == 0 and len(report.invalid) == 1
    assert "_SUCCESS present but manifest status is failed" in report.invalid[0][1]


def test_sync_with_one_unanswered_object_marks_that_run_invalid(
        moto_server, stall_proxy, short_timeouts, tmp_path):
    """Reads of one run's trades.parquet go unanswered (held 60 s); the two others register."""
    bucket, direct, runs, slow, proxy = three_runs_one_unanswered(moto_server, stall_proxy, 1)
    storage = open_storage(f"s3://{bucket}/runs", endpoint_url=proxy.endpoint)
    report = catalog_all_runs(catalog=tmp_path / "c.duckdb", base_dir=storage)
    assert report.registered == 2
    assert len(report.invalid) == 1
    path, reason = report.invalid[0]
    assert slow.run_id in path
    assert "trades.parquet" in reason and "no answer from the store" in reason, reason
    assert sorted(r.run_id for r in query_runs(tmp_path / "c.duckdb", status="completed")) == \
        sorted(r.run_id for r in runs if r is not slow)
    with pytest.raises(StorageTimeoutError, match=r"trades\.parquet: no answer from the store"):
        storage.read_bytes(key(slow, "policy/trades.parquet"))
    again = catalog_all_runs(catalog=tmp_path / "c.duckdb", base_dir=direct)  # not registered: read again
    assert (again.registered, again.already_present, again.invalid) == (1, 2, [])


def test_cli_sync_reports_the_unanswered_run_invalid_and_registers_the_others(
        moto_server, stall_proxy, tmp_path):
    bucket, direct, runs, slow, proxy = three_runs_one_unanswered(moto_server, stall_proxy, 0)
    env = {**os.environ, "QUANTBOT_S3_ATTEMPTS": "1", "QUANTBOT_S3_REQUEST_TIMEOUT": "1"}
    out = subprocess.run([QUANTBOT, "--s3-endpoint", proxy.endpoint, "backtest", "catalog-sync",
                          "--base-dir", f"s3://{bucket}/runs", "--duckdb", "c.duckdb",
                          "--format", "json"], check=False, cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["registered"] == 2
    [bad] = report["invalid"]
    assert slow.run_id in bad["path"] and "no answer from the store" in bad["reason"]


def test_unreachable_store_fails_at_once_naming_the_key(s3_endpoint, short_timeouts, tmp_path):
    """No connection at all: the request was never sent, so nothing is retried or waited for."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    storage = open_storage("s3://qb-nowhere/runs", endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(StorageError, match=r"s3://qb-nowhere/runs: cannot reach the store while listing it"):
        create_run_directory("policy", base_dir=storage, git=False)
    with pytest.raises(StorageError, match=r"s3://qb-nowhere/runs/x: cannot reach the store while writing it"):
        storage.write_bytes("qb-nowhere/runs/x", b"x", durable=False)
