"""Sweeps end to end: a real Dask cluster on loopback (a scheduler and 2 worker processes),
runs written through the store and cataloged, a worker SIGKILLed mid-task, deterministic
failures reported once, idempotent attempts, and Ctrl-C on the command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import pytest
from qbtest import QUANTBOT
from sweep_hooks import fail_counted, hold_first_attempt, make_project

from quantbot.artifacts import (
    catalog_all_runs,
    create_run_directory,
    is_complete,
    list_run_directories,
    read_artifact,
    read_manifest,
)
from quantbot.backtest.flows.sweep import attempt_run_id, execute_task, run_sweep
from quantbot.backtest.flows.sweep_spec import load_spec
from quantbot.errors import SweepTaskError

POLICIES = [{"kind": "fixed_stop", "stop_pct": 0.2}, {"kind": "fixed_stop", "stop_pct": 0.1}]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    make_project(root)
    return root


@pytest.fixture
def client(dask_executor: Any) -> Any:
    """The session's LocalCluster (a scheduler and 2 worker processes), as a Client."""
    return dask_executor.client


def _small_spec(project: Path, **over: Any) -> dict[str, Any]:
    """Two callers x two policies."""
    sample = project / "data" / "sample"
    return {"inputs": [{"alerts": str(sample / "alerts.parquet"),
                        "candles": str(sample / "candles.parquet"), "horizon": "6h",
                        "alerts_query": "SELECT * FROM alerts WHERE caller_name IN "
                                        "(SELECT DISTINCT caller_name FROM alerts "
                                        "ORDER BY 1 LIMIT 2)"}],
            "subsets": [{"by": "caller"}], "run_types": ["policy"], "policies": POLICIES, **over}


def _runs(base: Path | str) -> list[Any]:
    return [read_manifest(p) for p in list_run_directories(base)]


def _task_runs(base: Path | str, sweep_id: str) -> list[Any]:
    return [m for m in _runs(base)
            if (m.parameters.model_dump().get("sweep") or {}).get("sweep_id") == sweep_id]


def _cataloged(db: Path, sweep_id: str) -> list[tuple[str, str, str]]:
    """(task key, status, run_id) of the cataloged runs whose params.sweep.sweep_id is it."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return sorted(con.execute(
            "SELECT t.value_text, r.status, r.run_id FROM run_fields s "
            "JOIN run_fields t ON t.run_id = s.run_id AND t.field = 'params.sweep.task' "
            "JOIN backtest_runs_catalog r ON r.run_id = s.run_id "
            "WHERE s.field = 'params.sweep.sweep_id' AND s.value_text = ?",
            [sweep_id]).fetchall())
    finally:
        con.close()


def test_example_sweep_on_a_cluster_writes_and_catalogs_every_run(
        tmp_path: Path, project: Path, client: Any) -> None:
    base, db = tmp_path / "runs", tmp_path / "catalog.duckdb"
    seen: list[Any] = []
    result = run_sweep(project / "examples" / "sweep.json", base_dir=base, executor=client,
                       durable=False, progress=seen.append)
    keys = [t.key for t in load_spec(project / "examples" / "sweep.json").tasks]
    assert len(keys) >= 20 and result.ok and result.status == "completed"
    assert [t.key for t in result.tasks] == keys
    assert seen[0].done == 0 and seen[-1].done == len(keys) and seen[-1].failed == 0
    runs = _task_runs(base, result.sweep_id)
    assert sorted(m.parameters.model_dump()["sweep"]["task"] for m in runs) == sorted(keys)
    assert all(m.status == "completed" for m in runs)
    assert {m.run_id for m in runs} == {t.run_id for t in result.tasks}
    hosts = {m.host.hostname for m in runs}
    assert hosts  # written by the workers, recorded like any run
    sweep_run = read_manifest(result.run_dir)
    assert sweep_run.run_type == "sweep" and sweep_run.status == "completed"
    params = sweep_run.parameters.model_dump()
    assert [o["key"] for o in params["outcomes"]] == keys
    assert params["counts"] == {"total": len(keys), "completed": len(keys), "failed": 0,
                                "not_run": 0}
    report = catalog_all_runs(catalog=db, base_dir=base)
    assert report.registered == len(keys) + 1
    cataloged = _cataloged(db, result.sweep_id)
    assert [row[0] for row in cataloged] == sorted(keys)
    assert {row[1] for row in cataloged} == {"completed"}


def test_killed_worker_leaves_exactly_one_completed_run_per_task(
        tmp_path: Path, project: Path, client: Any) -> None:
    base, db, marker = tmp_path / "runs", tmp_path / "catalog.duckdb", tmp_path / "pid"
    sweep = load_spec(_small_spec(project))
    held = sweep.tasks[1].key
    done: dict[str, Any] = {}

    def drive() -> None:
        done["result"] = run_sweep(sweep, base_dir=base, executor=client, durable=False,
                                   around_run=partial(hold_first_attempt, key=held,
                                                      marker=str(marker)))

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    deadline = time.monotonic() + 90
    while not marker.exists():  # the held task has started: its run directory exists
        assert time.monotonic() < deadline and thread.is_alive(), "held task never started"
        time.sleep(0.05)
    os.kill(int(marker.read_text()), signal.SIGKILL)
    thread.join(120)
    result = done["result"]
    assert result.ok, result.failed
    by_key = {t.key: t for t in result.tasks}
    assert by_key[held].attempts == 2
    assert by_key[held].run_id == attempt_run_id(result.sweep_id, held, 1)
    runs = _task_runs(base, result.sweep_id)
    completed = [m for m in runs if m.status == "completed"]
    assert sorted(m.parameters.model_dump()["sweep"]["task"] for m in completed) == sorted(by_key)
    assert all(is_complete(p) for p in list_run_directories(base)
               if read_manifest(p).status == "completed")
    killed = [m for m in runs if m.status != "completed"]
    assert [m.run_id for m in killed] == [attempt_run_id(result.sweep_id, held, 0)]
    assert killed[0].status == "failed" and killed[0].error.type == "WorkerLost"
    catalog_all_runs(catalog=db, base_dir=base)
    cataloged = _cataloged(db, result.sweep_id)
    assert sorted(k for k, s, _ in cataloged if s == "completed") == sorted(by_key)
    assert [(k, s) for k, s, _ in cataloged if s != "completed"] == [(held, "failed")]


def test_deterministic_failures_are_reported_once(tmp_path: Path, project: Path,
                                                  client: Any) -> None:
    base, counter = tmp_path / "runs", tmp_path / "calls"
    spec = _small_spec(project)
    # 5m bars over 1m candles: refused by the flow's own check, before its run directory
    spec["tasks"] = [{"run_type": "path-only", "options": {"interval": "5m"}}]
    sweep = load_spec(spec)
    bad = sweep.tasks[0].key
    result = run_sweep(sweep, base_dir=base, executor=client, durable=False,
                       around_run=partial(fail_counted, key=bad, counter=str(counter)))
    assert result.status == "completed"
    failed = {t.key: t for t in result.failed}
    assert sorted(failed) == sorted([bad, "path-only/all"])
    assert counter.read_text().count("\n") == 1  # ran once, never retried
    assert failed[bad].error_type == "ValueError" and failed[bad].attempts == 1
    assert failed[bad].run_id == attempt_run_id(result.sweep_id, bad, 0)
    interval = failed["path-only/all"]
    assert interval.run_id is None and "interval" in interval.error
    errors = read_artifact(result.run_dir, "errors").to_pylist()
    assert sorted(json.loads(r["details"])["task"] for r in errors) == sorted(failed)
    assert all(r["level"] == "error" for r in errors)
    statuses = {m.parameters.model_dump()["sweep"]["task"]: m.status
                for m in _task_runs(base, result.sweep_id)}
    assert statuses.pop(bad) == "failed" and set(statuses.values()) == {"completed"}


def test_attempts_are_idempotent(tmp_path: Path, project: Path) -> None:
    """A lost result is found again; an abandoned attempt is marked failed and skipped; a
    failed attempt is reported again, not rerun (execute_task run directly, in process)."""
    base = tmp_path / "runs"
    task = load_spec(_small_spec(project)).tasks[0]
    sweep_id = "6f1e4d5c-0000-4000-8000-000000000001"
    target = (str(base), None)
    first = execute_task(task, target, sweep_id, False, None)
    again = execute_task(task, target, sweep_id, False, None)
    assert first == again == {"run_id": attempt_run_id(sweep_id, task.key, 0), "attempt": 0,
                              "status": "completed"}
    assert len(list_run_directories(base)) == 1
    other = load_spec(_small_spec(project)).tasks[1]
    stale = create_run_directory("policy", attempt_run_id(sweep_id, other.key, 0), base,
                                 durable=False)  # a writer that died: left running
    out = execute_task(other, target, sweep_id, False, None)
    assert out["attempt"] == 1
    assert read_manifest(stale.path).error.type == "WorkerLost"
    with pytest.raises(Exception, match="marked failed"):
        stale.mark_success()  # a zombie writer cannot complete over it
    failed = create_run_directory("policy", attempt_run_id(sweep_id, "x", 0), base,
                                  durable=False)
    failed.mark_failure(ValueError("bad input"))
    with pytest.raises(SweepTaskError, match="ValueError: bad input"):
        execute_task(replace(task, key="x"), target, sweep_id, False, None)


def test_ctrl_c_marks_the_sweep_failed_and_starts_nothing_more(tmp_path: Path,
                                                               project: Path) -> None:
    base = tmp_path / "runs"
    proc = subprocess.Popen([QUANTBOT, "backtest", "sweep", str(project / "examples" / "sweep.json"),
                             "--base-dir", str(base), "--no-catalog-sync", "--no-durable"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={k: v for k, v in os.environ.items()
                                            if k != "QUANTBOT_DEBUG"})
    deadline = time.monotonic() + 90
    def manifests() -> int:  # a folder counts once its run.json is there, as below
        return sum(Path(p, "run.json").exists() for p in list_run_directories(base))

    while manifests() < 3:  # the sweep run and two task runs
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "error: interrupted" in err and "Traceback" not in err
    # A folder the interrupt caught before its first run.json is no run (gc's business).
    runs = [read_manifest(p) for p in list_run_directories(base)
            if Path(p, "run.json").exists()]
    sweeps = [m for m in runs if m.run_type == "sweep"]
    assert len(sweeps) == 1 and sweeps[0].status == "failed"
    assert sweeps[0].error.type == "KeyboardInterrupt"
    tasks = [m for m in runs if m.run_type != "sweep"]
    total = sweeps[0].parameters.model_dump()["counts"]["total"]
    assert 2 <= len(tasks) < total
    assert all(m.status in ("completed", "failed") for m in tasks)  # none left running
    assert all(m.created_at <= sweeps[0].completed_at for m in tasks)
    params = sweeps[0].parameters.model_dump()
    assert params["interrupted"] is True and params["counts"]["not_run"] > 0
