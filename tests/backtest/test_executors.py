"""Executors: local and Dask (a real LocalCluster of 2 processes, and a `dask scheduler` +
2 `dask worker` subprocesses on loopback): outcomes, deterministic failures reported once,
a SIGKILLed worker's task re-run, KeyboardInterrupt cancelling, spec parsing, and no dask
import on commands that do not use it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dask_tasks import always_die, die_once, fail_counted, sleep_then_mark, square, total
from qbtest import run_main

from quantbot.backtest.executors import (
    DaskExecutor,
    LocalExecutor,
    TaskOutcome,
    open_executor,
    parse_executor,
)
from quantbot.errors import ExecutorError, InvalidArgumentError

SRC = Path(__file__).resolve().parents[2] / "src"
HELPERS = Path(__file__).resolve().parents[1] / "helpers"


@pytest.mark.parametrize("text, expected", [
    ("local", "local"), (" dask-local ", "dask-local"), ("dask-local:3", "dask-local:3"),
    ("dask://127.0.0.1:8786", "dask://127.0.0.1:8786"), ("dask://sched.lan:1", "dask://sched.lan:1"),
])
def test_parse_executor_accepts(text: str, expected: str) -> None:
    assert parse_executor(text) == expected


@pytest.mark.parametrize("text", ["", "dask", "dask-local:0", "dask-local:x", "dask://host",
                                  "tcp://127.0.0.1:8786", "dask://h:70000", "remote"])
def test_parse_executor_rejects_naming_the_value(text: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        parse_executor(text)
    assert isinstance(info.value, ExecutorError)
    assert repr(text) in str(info.value) and "\n" not in str(info.value)


def test_open_executor_kinds() -> None:
    assert isinstance(open_executor(None), LocalExecutor)
    assert isinstance(open_executor("local"), LocalExecutor)
    ex = LocalExecutor()
    assert open_executor(ex) is ex
    with pytest.raises(ExecutorError, match="got int"):
        open_executor(3)  # type: ignore[arg-type]


def test_local_executor_runs_in_order_and_records_failures(tmp_path: Path) -> None:
    counter = tmp_path / "calls"
    with LocalExecutor() as ex:
        shared = ex.share([1, 2])
        out = list(ex.run(total, [("a", (shared, 1)), ("b", (shared, 2))]))
        failed = list(ex.run(fail_counted, [("f", (str(counter), 7))]))
    assert out == [TaskOutcome("a", True, 4), TaskOutcome("b", True, 5)]
    assert failed == [TaskOutcome("f", False, error_type="ValueError", error="bad input 7")]
    assert counter.read_text().count("\n") == 1
    assert (ex.kind, ex.address, ex.n_workers, ex.dashboard_link) == ("local", "local", 1, None)


def test_dask_executor_runs_tasks_on_workers(dask_executor: DaskExecutor) -> None:
    ex = dask_executor
    assert ex.kind == "dask" and ex.n_workers == 2 and ex.address.startswith("tcp://127.0.0.1:")
    shared = ex.share(list(range(10)))
    out = {o.key: o for o in ex.run(total, [(f"t{i}", (shared, i)) for i in range(20)])}
    assert out == {f"t{i}": TaskOutcome(f"t{i}", True, 45 + i) for i in range(20)}
    # the same task keys again: dask keys are unique per run call
    assert sorted(o.value for o in ex.run(square, [("t0", (3,)), ("t1", (4,))])) == [9, 16]


def test_dask_deterministic_failure_is_reported_once(dask_executor: DaskExecutor,
                                                     tmp_path: Path) -> None:
    counter = tmp_path / "calls"
    out = list(dask_executor.run(fail_counted, [("bad", (str(counter), 7))]))
    assert out == [TaskOutcome("bad", False, error_type="ValueError", error="bad input 7")]
    time.sleep(0.5)  # a re-run, if any, would have appended by now
    assert counter.read_text().count("\n") == 1


def test_dask_task_of_a_killed_worker_is_rerun(dask_executor: DaskExecutor,
                                               tmp_path: Path) -> None:
    marker = tmp_path / "killed"
    out = list(dask_executor.run(die_once, [("victim", (str(marker), 42))]))
    assert out == [TaskOutcome("victim", True, 42, attempts=2)]
    assert marker.exists()


def test_dask_keyboard_interrupt_cancels_outstanding_tasks(dask_executor: DaskExecutor,
                                                           tmp_path: Path) -> None:
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")  # pytest runs tests in it
    tasks = [(f"s{i}", (str(tmp_path), f"s{i}", 1.5)) for i in range(8)]

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            list(dask_executor.run(sleep_then_mark, tasks))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    time.sleep(3.5)  # two running tasks finish; the 6 queued ones were cancelled
    assert len(list(tmp_path.iterdir())) <= 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_workers(address: str, n: int, timeout_s: float = 60.0) -> None:
    import distributed

    with distributed.Client(address, timeout=timeout_s) as client:
        client.wait_for_workers(n, timeout=timeout_s)


def test_dask_address_scheduler_and_worker_subprocesses(tmp_path: Path) -> None:
    """`dask scheduler` + 2 `dask worker` processes on loopback (allowed-failures 1): tasks
    run, a task whose worker always dies ends as KilledWorker after 2 attempts."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HELPERS)]),
           "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}
    dask = str(Path(sys.executable).parent / "dask")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen(
                [dask, "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1", "--nworkers", "1",
                 "--no-dashboard", "--host", "127.0.0.1"],
                env=env, stderr=subprocess.DEVNULL, start_new_session=True))
        _wait_for_workers(f"tcp://127.0.0.1:{port}", 2, timeout_s=30)
        counter = tmp_path / "deaths"
        with open_executor(f"dask://127.0.0.1:{port}") as ex:
            assert ex.kind == "dask" and ex.n_workers == 2
            assert ex.address == f"tcp://127.0.0.1:{port}"
            out = {o.key: o for o in ex.run(square, [(f"q{i}", (i,)) for i in range(6)])}
            assert {k: o.value for k, o in out.items()} == {f"q{i}": i * i for i in range(6)}
            killed = list(ex.run(always_die, [("doomed", (str(counter),))]))
        assert len(killed) == 1 and not killed[0].ok
        assert killed[0].error_type == "KilledWorker" and killed[0].attempts == 2
        assert counter.read_text().count("\n") == 2
    finally:  # each process leads its own session: its nanny's worker goes with it
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


def test_unreachable_scheduler_is_one_line_error() -> None:
    with pytest.raises(ExecutorError, match=r"cannot connect to the Dask scheduler at tcp://127\.0\.0\.1:\d+") as info:
        from quantbot.backtest.executors import DaskExecutor as D

        D(address=f"tcp://127.0.0.1:{_free_port()}", connect_timeout_s=1.0)
    assert "\n" not in str(info.value)


def test_no_dask_import_for_cli_and_catalog_query(tmp_path: Path) -> None:
    assert run_main("backtest", "catalog-sync", "--base-dir", str(tmp_path / "runs"), "--catalog",
                    str(tmp_path / "catalog.duckdb"), cwd=tmp_path).returncode == 0
    code = ("import json, sys\nfrom quantbot.cli import main\n"
            "try:\n    main(['backtest', 'catalog-query', '--catalog', sys.argv[1]])\n"
            "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
            "import quantbot.backtest.executors\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed'))))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "catalog.duckdb")],
                          env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True,
                          text=True, timeout=60, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_a_local_cluster_leaves_the_environment_as_it_found_it():
    """A Dask nanny writes OMP_NUM_THREADS, PYTHONHASHSEED, ... into the parent before it
    spawns a worker; closing the executor takes them out again (fresh process, so no other
    cluster of the session has set them first)."""
    code = ("import os; from quantbot.backtest.executors import open_executor\n"
            "before = dict(os.environ)\n"
            "with open_executor('dask-local:1') as ex:\n"
            "    inside = dict(os.environ)\n"
            "print(sorted(set(inside) - set(before)), dict(os.environ) == before)")
    nanny_keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                  "MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED", "__DASK_PARENT_PID")
    clean = {k: v for k, v in os.environ.items() if k not in nanny_keys}  # a session cluster
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120, env=clean).stdout.strip().splitlines()[-1]
    assert out.endswith(" True"), out
    assert "OMP_NUM_THREADS" in out  # the nanny did set it while the cluster ran
