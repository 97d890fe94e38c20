"""Sweeps: many independent runs from one spec, on any executor, recorded as a run.

:func:`run_sweep` validates the spec (:mod:`~quantbot.backtest.flows.sweep_spec`; a bad
spec leaves nothing on disk), opens the executor, then creates the sweep's own run (run
type ``sweep``, status running: the spec and its task keys in ``parameters``) and hands
every task to the executor. Each task runs on a worker through the normal flow functions
and writes a normal run to the shared base dir, with ``parameters.sweep = {"sweep_id",
"task"}``, so the catalog lists a sweep's runs like any others.

Outcomes (docs/scale-out.md, "Faults"): when every task has an outcome the sweep run
records each task's key, run id, status, attempts and error in ``parameters.outcomes``,
one ``errors`` row per failed task, and *completes*, failed tasks included: the sweep did
its job, reporting them (the CLI exits 1 when any task failed). Ctrl-C cancels the
outstanding tasks and marks the sweep run failed (the CLI exits 130).

Re-runs are idempotent: attempt ``k`` of a task writes run id ``uuid5(sweep_id,
"<task key>#k")``. A worker starting a task probes attempts 0, 1, 2...: a completed one is
the task's result (an earlier attempt finished but its result was lost with its worker);
an unfinished one was abandoned by a lost worker, so it is marked failed (``WorkerLost``:
never cataloged as completed, and a zombie writer stops at its next step) and the next
attempt is tried; a failed one is the task's failure, reported again rather than rerun (a
deterministic failure fails once). So a task ends with at most one completed run.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from quantbot.backtest.flows.skeleton import RunHook
from quantbot.backtest.flows.sweep_spec import Sweep, SweepTask, load_spec
from quantbot.errors import QuantbotError, SweepTaskError

WORKER_LOST = "WorkerLost"
"""Error type of an attempt abandoned by a worker that died (marked by the next attempt)."""
INTERRUPTED = "Interrupted"
"""Error type of an attempt the sweep's Ctrl-C caught before its run guarded itself."""
_ABANDONED = (WORKER_LOST, INTERRUPTED, "StaleRun", "UnsealedRun")  # gc's: the same case
_MAX_ATTEMPTS = 100  # probing bound; the scheduler gives up long before

StorageTarget = tuple[str, "str | None"]
"""(base dir as a path or URI, S3 endpoint): how a worker opens the shared base dir; the
endpoint travels in the task's arguments, never through a worker's environment."""


@dataclass(frozen=True)
class TaskResult:
    """One task's outcome as the sweep records it."""

    key: str
    run_type: str
    status: str  # completed | failed
    run_id: str | None  # the completed run, or the failed attempt's run (None: no run made)
    attempts: int  # executions of the task (re-runs after lost workers included)
    error_type: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SweepProgress:
    """What the progress callback gets: once at the start, then after each task."""

    sweep_id: str
    total: int
    done: int  # tasks with an outcome (failed included)
    failed: int
    running: int  # an upper bound: min(workers, tasks left)
    executor: str  # the executor's address
    dashboard_link: str | None
    last: TaskResult | None = None


OnProgress = Callable[[SweepProgress], None]


@dataclass(frozen=True)
class SweepResult:
    sweep_id: str
    run_dir: str
    status: str  # the sweep run's status: completed
    executor: str
    dashboard_link: str | None
    elapsed_s: float
    tasks: list[TaskResult] = field(default_factory=list)

    @property
    def failed(self) -> list[TaskResult]:
        return [t for t in self.tasks if t.status != "completed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {"sweep_id": self.sweep_id, "run_dir": self.run_dir, "status": self.status,
                "executor": self.executor, "dashboard_link": self.dashboard_link,
                "elapsed_s": self.elapsed_s, "total": len(self.tasks),
                "completed": len(self.tasks) - len(self.failed), "failed": len(self.failed),
                "tasks": [t.to_dict() for t in self.tasks]}


def attempt_run_id(sweep_id: str, key: str, attempt: int) -> str:
    """The run id of attempt ``attempt`` (0-based) of task ``key``: deterministic."""
    return str(uuid.uuid5(uuid.UUID(sweep_id), f"{key}#{attempt}"))


def run_sweep(spec: str | os.PathLike[str] | Mapping[str, Any] | Sweep, *,
              base_dir: Any = "runs", executor: Any = "local", s3_endpoint: str | None = None,
              durable: bool = True, progress: OnProgress | None = None,
              around_run: RunHook | None = None) -> SweepResult:
    """Run every task of ``spec`` (a JSON file, a dict or a loaded :class:`Sweep`).

    ``base_dir``: a folder, an ``s3://`` URI (opened with ``s3_endpoint``) or a Storage,
    reachable by every worker. ``executor``: ``"local"``, ``"dask://HOST:PORT"``,
    ``"dask-local[:N]"``, a ``distributed.Client`` or an open Executor (left open).
    ``around_run``: entered on the worker around each task's flow once its run directory
    exists (a module-level callable: it is pickled by reference). Returns when every task
    has an outcome; KeyboardInterrupt marks the sweep failed and propagates.
    """
    sweep = spec if isinstance(spec, Sweep) else load_spec(spec)  # before anything else

    from quantbot.artifacts import create_run_directory
    from quantbot.artifacts.store.backends import open_storage
    from quantbot.backtest.executors import Executor, open_executor

    storage = open_storage(base_dir, endpoint_url=s3_endpoint)
    target = _target(storage)
    started = time.perf_counter()
    ex = open_executor(executor)
    try:
        run = create_run_directory(
            "sweep", base_dir=storage, durable=durable, started=started,
            parameters={"spec": sweep.spec, "spec_source": sweep.source,
                        "executor": ex.kind, "tasks": [
                            {"key": t.key, "run_type": t.run_type} for t in sweep.tasks]})
        with run:
            results = _run_tasks(ex, sweep.tasks, run.run_id, target, durable, around_run,
                                 progress, run)
            run.write_artifact("errors", _error_rows(results))
            run.update_manifest(parameters=_outcomes(results, sweep.tasks))
    finally:
        if not isinstance(executor, Executor):
            ex.close()
    return SweepResult(run.run_id, str(run.path), run.status, ex.address, ex.dashboard_link,
                       round(time.perf_counter() - started, 3), results)


def _run_tasks(ex: Any, tasks: list[SweepTask], sweep_id: str, target: StorageTarget,
               durable: bool, around_run: RunHook | None, progress: OnProgress | None,
               run: Any) -> list[TaskResult]:
    by_key = {t.key: t for t in tasks}
    done: dict[str, TaskResult] = {}

    def report(last: TaskResult | None) -> None:
        if progress is not None:
            failed = sum(r.status != "completed" for r in done.values())
            progress(SweepProgress(sweep_id, len(tasks), len(done), failed,
                                   min(max(ex.n_workers, 1), len(tasks) - len(done)),
                                   ex.address, ex.dashboard_link, last))

    report(None)
    calls = [(t.key, (t, target, sweep_id, durable, around_run)) for t in tasks]
    try:
        for outcome in ex.run(execute_task, calls):
            task = by_key[outcome.key]
            done[task.key] = _result(task, outcome, sweep_id, target)
            report(done[task.key])
    except KeyboardInterrupt:
        if ex.kind == "local":  # the task this process was running when interrupted
            current = next((t for t in tasks if t.key not in done), None)
            if current is not None:
                _fail_unfinished(current.key, sweep_id, target)
        run.update_manifest(parameters=_outcomes([done[t.key] for t in tasks if t.key in done],
                                                 tasks, interrupted=True))
        raise
    return [done[t.key] for t in tasks]


def _result(task: SweepTask, outcome: Any, sweep_id: str, target: StorageTarget) -> TaskResult:
    if outcome.ok:
        value = outcome.value
        return TaskResult(task.key, task.run_type, value["status"], value["run_id"],
                          max(outcome.attempts, value["attempt"] + 1))
    attempt, run_id = _last_attempt(task.key, sweep_id, target)
    return TaskResult(task.key, task.run_type, "failed", run_id,
                      max(outcome.attempts, attempt + 1), outcome.error_type, outcome.error)


def _last_attempt(key: str, sweep_id: str, target: StorageTarget) -> tuple[int, str | None]:
    """(index, run id) of the task's last attempt that made a run; (0, None) if none did."""
    storage = _open(target)
    last: tuple[int, str | None] = (0, None)
    for k in range(_MAX_ATTEMPTS):
        run_id = attempt_run_id(sweep_id, key, k)
        if _find(storage, run_id) is None:
            return last
        last = (k, run_id)
    return last


def _fail_unfinished(key: str, sweep_id: str, target: StorageTarget) -> None:
    """Mark the task's unfinished attempts failed (``Interrupted``): an interrupt can land
    before the flow's run directory guards itself (while it is being created)."""
    from quantbot.artifacts import is_complete, read_manifest
    from quantbot.artifacts.ops.gc import fail_unfinished_run

    storage = _open(target)
    for k in range(_MAX_ATTEMPTS):
        run = _find(storage, attempt_run_id(sweep_id, key, k))
        if run is None:
            return
        try:
            manifest = read_manifest(run)
        except QuantbotError:
            continue
        if manifest.status != "failed" and not is_complete(run):
            fail_unfinished_run(run, run.root, manifest.status, {
                "type": INTERRUPTED, "traceback": None,
                "message": "the sweep was interrupted (Ctrl-C) while this task was starting"})


def _outcomes(results: list[TaskResult], tasks: list[SweepTask],
              interrupted: bool = False) -> dict[str, Any]:
    failed = sum(r.status != "completed" for r in results)
    counts = {"total": len(tasks), "completed": len(results) - failed, "failed": failed,
              "not_run": len(tasks) - len(results)}
    out: dict[str, Any] = {"counts": counts, "outcomes": [r.to_dict() for r in results]}
    return {**out, "interrupted": True} if interrupted else out


def _error_rows(results: list[TaskResult]) -> list[dict[str, Any]]:
    """One ``errors`` row per failed task (level error, phase execution)."""
    import json

    from quantbot.artifacts.schema.layout import iso_utc, utc_now

    stamp = iso_utc(utc_now())
    return [{"timestamp": stamp, "level": "error", "phase": "execution", "call_id": None,
             "message": f"task {r.key}: {r.error_type}: {r.error}",
             "details": json.dumps({"task": r.key, "run_id": r.run_id, "attempts": r.attempts,
                                    "error_type": r.error_type, "error": r.error})}
            for r in results if r.status != "completed"]


# -- on the worker -----------------------------------------------------------------------
def execute_task(task: SweepTask, target: StorageTarget, sweep_id: str, durable: bool,
                 around_run: RunHook | None) -> dict[str, Any]:
    """Run one task (on a worker): find or make its one completed run (module docstring).

    Returns ``{"run_id", "attempt", "status"}``; a flow's exception propagates (the
    executor reports it, never retries it)."""
    storage = _open(target)
    for attempt in range(_MAX_ATTEMPTS):
        run_id = attempt_run_id(sweep_id, task.key, attempt)
        found = _find(storage, run_id)
        if found is None:
            result = _run_flow(task, base_dir=storage, run_id=run_id, durable=durable,
                               sweep={"sweep_id": sweep_id, "task": task.key},
                               around_run=around_run)
            return {"run_id": result.run_id, "attempt": attempt, "status": result.status}
        if _settle(found, attempt):
            return {"run_id": run_id, "attempt": attempt, "status": "completed"}
    raise SweepTaskError(f"task {task.key}: {_MAX_ATTEMPTS} attempts were abandoned")


def _settle(run: Any, attempt: int) -> bool:
    """An earlier attempt's run: True if completed (the task's result); False if it was
    abandoned (now marked failed: try the next); its own failure is raised again."""
    from quantbot.artifacts import is_complete, read_manifest
    from quantbot.artifacts.ops.gc import fail_unfinished_run

    if is_complete(run):
        return True
    try:
        manifest = read_manifest(run)
    except QuantbotError:  # killed before its first run.json: nothing to mark
        return False
    if manifest.status == "failed":
        error = manifest.error
        if error is not None and error.type not in _ABANDONED:
            raise SweepTaskError(f"{error.type}: {error.message}")
        return False
    fail_unfinished_run(run, run.root, manifest.status, {
        "type": WORKER_LOST, "traceback": None,
        "message": f"attempt {attempt} of this sweep task was abandoned by its worker (lost "
                   f"before it finished); attempt {attempt + 1} re-runs the task"})
    return False


def _run_flow(task: SweepTask, **common: Any) -> Any:
    from quantbot.backtest.flows import (
        run_full,
        run_optimization,
        run_path_only,
        run_policy_backtest,
    )

    options = {**task.options, **common}
    if task.run_type == "path-only":
        return run_path_only(task.alerts, task.candles, **options)
    if task.run_type == "policy":
        return run_policy_backtest(task.alerts, task.candles, task.policy, **task.extras,
                                   **options)
    flow = run_full if task.run_type == "full" else run_optimization
    return flow(task.alerts, task.candles, grid=task.grid, **task.extras, **options)


def _target(storage: Any) -> StorageTarget:
    """How workers open ``storage``: an absolute path, or the URI with the endpoint the
    driver uses (its own ``--s3-endpoint`` or, failing that, its environment's)."""
    from quantbot.artifacts.store.backends import LocalStorage

    if isinstance(storage, LocalStorage):
        return os.path.abspath(storage.root), None
    uri = storage.uri(storage.root)
    endpoint = storage.s3_endpoint
    if endpoint is None and uri.startswith("s3://"):
        from quantbot.artifacts.store.objects import endpoint_from_env

        endpoint = endpoint_from_env()
    return uri, endpoint


def _open(target: StorageTarget) -> Any:
    from quantbot.artifacts.store.backends import open_storage

    return open_storage(target[0], endpoint_url=target[1])


def _find(storage: Any, run_id: str) -> Any:
    """The storage rooted at run ``run_id``'s folder, None if there is none: one listing
    of the month partitions and one existence check per month (not a listing of runs)."""
    from quantbot.artifacts.schema.layout import is_month_partition, run_dir_name

    for month in storage.list_dir(storage.root):
        path = storage.join(storage.root, month, run_dir_name(run_id))
        if is_month_partition(month) and storage.exists(path):
            return storage.at(path)
    return None


__all__ = ["WORKER_LOST", "OnProgress", "SweepProgress", "SweepResult", "TaskResult",
           "attempt_run_id", "execute_task", "run_sweep"]
