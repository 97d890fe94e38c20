"""Where many independent tasks run: in this process (``local``) or on a Dask cluster.

An :class:`Executor` takes module-level functions and their arguments and yields one
:class:`TaskOutcome` per task as tasks finish. The interface is deliberately narrow
(``share`` an object once, ``run`` tasks, ``close``) so that another engine could be added
without touching its callers.

Failure semantics (the same for every executor):

- an exception raised by the task's function is caught *inside* the task and becomes
  ``ok=False`` with ``error_type``/``error`` set: a deterministic failure (bad input) is
  reported once and never re-run;
- a task lost with its worker process (SIGKILL, out of memory) is re-run by the Dask
  scheduler on another worker; after ``distributed.scheduler.allowed-failures`` (default 3)
  such losses it is ``ok=False``, ``error_type="KilledWorker"``;
- ``KeyboardInterrupt`` while :meth:`Executor.run` waits cancels the outstanding tasks and
  is re-raised.

``dask``/``distributed`` are imported only when a :class:`DaskExecutor` is opened: a local
run (and every command that runs no tasks, e.g. ``catalog-query``) never pays their
import time (about 1 s).

Executor specs (``--executor``): ``local`` (default), ``dask://HOST:PORT`` (an existing
scheduler at ``tcp://HOST:PORT``), ``dask-local[:N]`` (a cluster of N single-threaded
worker processes on this machine, started and stopped with the executor; N defaults to the
number of CPUs).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from quantbot.errors import ExecutorError

if TYPE_CHECKING:  # pragma: no cover - typing only; never imported at run time here
    import distributed

Task = tuple[str, tuple[Any, ...]]
"""One task: its key (unique within one ``run`` call) and the function's arguments."""

_DASK_ADDRESS = re.compile(r"dask://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})")
_DASK_LOCAL = re.compile(r"dask-local(?::(?P<n>\d+))?")


@dataclass(frozen=True)
class TaskOutcome:
    """What became of one task."""

    key: str
    ok: bool
    value: Any = None  # the function's return value when ok
    error_type: str | None = None  # exception class name, or "KilledWorker"
    error: str | None = None  # one line
    attempts: int = 1  # 1 + the times the task's worker died while the task was assigned to it


class Executor:
    """Runs tasks; the base class is also the in-process behaviour's interface."""

    kind: str = "local"
    address: str = "local"
    dashboard_link: str | None = None
    n_workers: int = 1

    def share(self, obj: Any) -> Any:
        """Ship ``obj`` once to every worker; pass the returned handle as a task argument
        (the task receives ``obj`` itself)."""
        raise NotImplementedError

    def run(self, fn: Callable[..., Any], tasks: Sequence[Task]) -> Iterator[TaskOutcome]:
        """Run ``fn(*args)`` for every ``(key, args)`` task; yield outcomes as tasks finish
        (in any order). ``fn`` must be a module-level function (pickled by reference)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the executor started (a local cluster); idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalExecutor(Executor):
    """Tasks in this process, one after the other, in the order given (no pickling)."""

    def share(self, obj: Any) -> Any:
        return obj

    def run(self, fn: Callable[..., Any], tasks: Sequence[Task]) -> Iterator[TaskOutcome]:
        for key, args in tasks:
            yield _outcome(key, _call(fn, *args))


class DaskExecutor(Executor):
    """Tasks on a Dask cluster through a ``distributed.Client``.

    ``client`` given: used as is and not closed. ``address`` (``tcp://HOST:PORT``): a
    client connected to that scheduler, closed with the executor. ``n_local`` workers: a
    ``LocalCluster`` of that many single-threaded worker processes, stopped with the executor.
    """

    kind = "dask"

    def __init__(self, *, client: distributed.Client | None = None, address: str | None = None,
                 n_local: int | None = None, connect_timeout_s: float = 10.0) -> None:
        import distributed

        self._distributed = distributed
        self._cluster = None
        self._environ: dict[str, str] = {}
        self._own_client = client is None
        self._shared: list[Any] = []
        if client is None and address is not None:
            try:
                client = distributed.Client(address, timeout=connect_timeout_s)
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(f"executor: cannot connect to the Dask scheduler at {address} "
                                    f"({type(exc).__name__}: {_one_line(exc)})") from None
        elif client is None:
            dashboard = ":0" if importlib.util.find_spec("bokeh") is not None else None
            self._environ = dict(os.environ)  # restored at close: see _restore_environ
            self._cluster = distributed.LocalCluster(
                n_workers=n_local, threads_per_worker=1, processes=True,
                dashboard_address=dashboard, silence_logs=logging.WARNING)
            client = distributed.Client(self._cluster)
        self.client: distributed.Client = client
        self.address = client.scheduler.address
        self.dashboard_link = client.dashboard_link if _has_dashboard(client) else None
        self.n_workers = len(client.scheduler_info().get("workers", {}))

    def share(self, obj: Any) -> Any:
        # in a list: a list or dict given to scatter itself would become one future per item
        [future] = self.client.scatter([obj], broadcast=True, hash=False)
        self._shared.append(future)
        return future

    def run(self, fn: Callable[..., Any], tasks: Sequence[Task]) -> Iterator[TaskOutcome]:
        tag = uuid.uuid4().hex[:12]  # task keys unique on a scheduler other clients share
        futures = {self.client.submit(_call, fn, *args, key=f"{key}-{tag}", pure=False): key
                   for key, args in tasks}
        pending = set(futures)
        done = self._distributed.as_completed(list(futures), with_results=False)
        try:
            for batch in done.batches():
                losses = self._losses([f.key for f in batch])
                for f in batch:
                    pending.discard(f)
                    yield self._outcome(f, futures.pop(f), losses.get(f.key, 0))
        except KeyboardInterrupt:
            self.client.cancel(list(pending))
            raise
        finally:  # stopped early (generator closed, an error): nothing left running
            if pending:
                self.client.cancel(list(pending))

    def _outcome(self, future: Any, key: str, losses: int) -> TaskOutcome:
        if future.status == "finished":  # ran once more after its ``losses`` lost attempts
            return _outcome(key, future.result(), 1 + losses)
        exc = future.exception()
        if isinstance(exc, self._distributed.KilledWorker):  # every attempt was lost
            return TaskOutcome(key, False, error_type="KilledWorker", error=_one_line(exc),
                               attempts=max(losses, 1))
        return TaskOutcome(key, False, error_type=type(exc).__name__, error=_one_line(exc),
                           attempts=1 + losses)

    def _losses(self, keys: list[str]) -> dict[str, int]:
        """Per dask key, the times a worker died while the task was assigned to it (the
        scheduler's ``TaskState.suspicious``); one scheduler call per batch of outcomes."""
        try:
            return self.client.run_on_scheduler(_scheduler_losses, keys)
        except Exception:  # noqa: BLE001 - a scheduler without quantbot cannot be asked: 0
            return {}

    def close(self) -> None:
        if self._shared and self.client.status == "running":
            self.client.cancel(self._shared)
        self._shared = []
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
            _restore_environ(self._environ)


def _restore_environ(saved: dict[str, str]) -> None:
    """Undo what a Dask nanny writes into this process's environment before it spawns (or
    respawns) a worker (``OMP_NUM_THREADS=1``, ``PYTHONHASHSEED``, ...): meant for the
    workers, it would otherwise stay in the user's session after the executor is gone."""
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def parse_executor(text: str) -> str:
    """Check an executor spec (``local``, ``dask://HOST:PORT``, ``dask-local[:N]``) and return
    it normalised (surrounding blanks removed; ``dask-local:N`` with N ≥ 1)."""
    spec = str(text).strip()
    if spec == "local" or _DASK_ADDRESS.fullmatch(spec):
        if spec != "local" and not 0 < int(_DASK_ADDRESS.fullmatch(spec)["port"]) < 65536:
            raise ExecutorError(f"--executor {text!r}: port must be 1..65535")
        return spec
    m = _DASK_LOCAL.fullmatch(spec)
    if m:
        if m["n"] is not None and int(m["n"]) < 1:
            raise ExecutorError(f"--executor {text!r}: dask-local needs at least 1 worker")
        return spec
    raise ExecutorError(f"--executor {text!r}: expected local, dask://HOST:PORT or "
                        "dask-local[:N]")


def open_executor(spec: str | distributed.Client | Executor | None = "local") -> Executor:
    """An executor for ``spec``: a spec string (see :func:`parse_executor`), a
    ``distributed.Client`` (used, not closed), an Executor (returned as is) or None (local)."""
    if spec is None:
        return LocalExecutor()
    if isinstance(spec, Executor):
        return spec
    if not isinstance(spec, str):
        if type(spec).__name__ == "Client" and type(spec).__module__.startswith("distributed"):
            return DaskExecutor(client=spec)
        raise ExecutorError(f"executor: expected a spec string, a distributed.Client or an "
                            f"Executor (got {type(spec).__name__})")
    spec = parse_executor(spec)
    if spec == "local":
        return LocalExecutor()
    if spec.startswith("dask://"):
        return DaskExecutor(address="tcp://" + spec.removeprefix("dask://"))
    n = _DASK_LOCAL.fullmatch(spec)["n"]
    return DaskExecutor(n_local=int(n) if n else (os.cpu_count() or 1))


def _call(fn: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    """Run one task, catching its exception: the task then *succeeds* with a failure record,
    so the scheduler never re-runs a deterministic failure. -> ("ok", value) or
    ("error", type name, one-line message)."""
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - any failure of fn is the task's outcome
        return ("error", type(exc).__name__, _one_line(exc))


def _outcome(key: str, record: tuple[Any, ...], attempts: int = 1) -> TaskOutcome:
    if record[0] == "ok":
        return TaskOutcome(key, True, record[1], attempts=attempts)
    return TaskOutcome(key, False, error_type=record[1], error=record[2], attempts=attempts)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _scheduler_losses(keys: list[str], dask_scheduler: Any = None) -> dict[str, int]:
    """Runs on the scheduler: ``TaskState.suspicious`` (workers lost while the task was
    assigned to them) of each key it still knows."""
    tasks = dask_scheduler.tasks
    return {k: tasks[k].suspicious for k in keys if k in tasks}


def _has_dashboard(client: Any) -> bool:
    """Whether the scheduler serves a dashboard (``dashboard_link`` is a guess otherwise)."""
    return "dashboard" in client.scheduler_info().get("services", {})
