"""The catalog watcher: register runs as soon as their ``_SUCCESS`` (or failed manifest) appears.

File events (watchfiles: inotify, FSEvents, or polling) are batched over a debounce window.
Each batch is validated without the catalog lock (hashing and Parquet reads), then written in
one short transaction, and the catalog is closed again: ``catalog-query`` and ``sql`` in other
processes keep working while the watcher runs. Events can be missed (inotify queue overflow,
network filesystems, a restart of the watcher), so a full sync (``catalog_all_runs``) runs at
start and every ``rescan_interval`` seconds as a safety net. Registration is idempotent, so
the watcher, ``catalog-sync`` and ``restore`` may all run at once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import duckdb

from quantbot._compat import legacy_arguments
from quantbot.artifacts.catalog.connection import (
    DEFAULT_CATALOG,
    CatalogRef,
    catalog_exists,
    open_catalog,
)
from quantbot.artifacts.catalog.scan import scan_runs
from quantbot.artifacts.catalog.schema import RUNS_TABLE, ensure_schema, table_columns
from quantbot.artifacts.catalog.sync import (
    SyncReport,
    catalog_all_runs,
    registered_ids_among,
    write_batch,
)
from quantbot.artifacts.schema.layout import (
    MANIFEST_NAME,
    SUCCESS_MARKER,
    is_month_partition,
    iso_utc,
    run_id_from_dir_name,
    utc_now,
)
from quantbot.artifacts.store.backends import TMP_PREFIX, Storage, open_storage
from quantbot.artifacts.store.runs import RunLocation
from quantbot.artifacts.store.validate import ScannedRun
from quantbot.errors import InvalidArgumentError, QuantbotError, StorageError

EventKind = Literal["started", "registered", "invalid", "error", "stopped"]
_TICK_MS = 500  # how often the loop wakes without events (retries, rescans)
_RETRY_AFTER_S = 5.0  # after a failed rescan (catalog busy), try again this soon


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class WatchEvent:
    """One thing the watcher did, for a log line or a test."""

    kind: EventKind
    at: datetime
    run_id: str | None = None
    run_type: str | None = None
    status: str | None = None
    path: str | None = None
    message: str | None = None

    def line(self) -> str:
        """``<ISO timestamp> registered <run_id> (<run_type>, <status>)`` and friends."""
        stamp = iso_utc(self.at)
        if self.kind == "registered":
            return f"{stamp} registered {self.run_id} ({self.run_type}, {self.status})"
        if self.kind == "invalid":
            return f"{stamp} invalid {self.path}: {self.message}"
        return f"{stamp} {self.kind}: {self.message}"


@dataclass
class WatchStats:
    """Totals over one ``watch_catalog`` call."""

    registered: int = 0
    invalid: int = 0
    batches: int = 0
    rescans: int = 0
    errors: int = 0


@dataclass
class _Watcher:
    db: CatalogRef
    storage: Storage
    lock_timeout: float | None
    on_event: Callable[[WatchEvent], None]
    stats: WatchStats = field(default_factory=WatchStats)
    known: set[str] = field(default_factory=set)  # run ids the catalog holds (a cache)
    pending: dict[str, RunLocation] = field(default_factory=dict)  # path -> location
    reported_invalid: dict[str, str] = field(default_factory=dict)  # folder -> last reason
    roots: tuple[str, ...] = ()

    def emit(self, kind: EventKind, **fields: Any) -> None:
        self.on_event(WatchEvent(kind, utc_now(), **fields))

    # -- events -> candidate run folders -------------------------------------------------
    def _parts(self, path: str) -> list[str] | None:
        for root in self.roots:
            rel = os.path.relpath(path, root)
            if not rel.startswith(".."):
                return [p for p in rel.split(os.sep) if p not in ("", ".")]
        return None

    def _location(self, month: str, name: str) -> RunLocation | None:
        run_id = run_id_from_dir_name(name)
        if run_id is None:
            return None
        path = self.storage.join(self.storage.root, month, name)  # same form as catalog-sync
        return RunLocation(run_id, month, path)

    def add_changes(self, paths: Iterable[str]) -> None:
        """Map changed paths to run folders worth a look: a marker, a manifest, a folder moved in."""
        for path in paths:
            parts = self._parts(path)
            if not parts or not is_month_partition(parts[0]):
                continue
            if len(parts) == 1:  # a whole month folder appeared (restore, mv)
                for name in self.storage.list_dir(self.storage.join(self.storage.root, parts[0])):
                    self._add(self._location(parts[0], name))
            elif len(parts) == 2 or parts[2] in (SUCCESS_MARKER, MANIFEST_NAME):
                self._add(self._location(parts[0], parts[1]))

    def _add(self, loc: RunLocation | None) -> None:
        if loc is not None and loc.run_id not in self.known:
            self.pending[loc.path] = loc

    # -- registering ---------------------------------------------------------------------
    def flush(self) -> None:
        """Validate the pending runs (no lock), then register them in one short write."""
        if not self.pending:
            return
        locations = [loc for loc in self.pending.values() if self.storage.exists(loc.path)]
        try:
            scanned = scan_runs(self.storage, locations)
        except OSError as err:  # e.g. permissions: say so, let the next rescan try again
            self.stats.errors += 1
            self.emit("error", message=f"cannot read runs: {err}")
            self.pending.clear()
            return
        for path, reason in scanned.invalid:
            self._report_invalid(path, reason)
        if scanned.runs:
            report = SyncReport()
            try:
                with open_catalog(self.db, read_only=False, lock_timeout=self.lock_timeout) as con:
                    ensure_schema(con)
                    present = registered_ids_among(con, [r.manifest.run_id for r in scanned.runs])
                    write_batch(con, scanned.runs, report)
            except (QuantbotError, duckdb.Error) as err:
                self.stats.errors += 1
                self.emit("error", message=f"{err}; {len(scanned.runs)} run(s) will be retried")
                return  # keep pending: the next tick retries
            failed = {p for p, _ in report.invalid}
            for path, reason in report.invalid:
                self._report_invalid(path, reason)
            self._registered([r for r in scanned.runs
                              if r.manifest.run_id not in present and r.location.path not in failed])
            self.known.update(r.manifest.run_id for r in scanned.runs
                              if r.location.path not in failed)
        self.stats.batches += 1
        self.pending.clear()  # incomplete runs come back with their _SUCCESS event

    def _registered(self, runs: list[ScannedRun]) -> None:
        for run in runs:
            m = run.manifest
            self.stats.registered += 1
            self.reported_invalid.pop(os.path.basename(run.location.path), None)
            self.emit("registered", run_id=m.run_id, run_type=m.run_type, status=m.status,
                      path=run.location.path)

    def _report_invalid(self, path: str, reason: str) -> None:
        key = os.path.basename(path.rstrip("/"))  # run_id=<uuid>, whatever form the path takes
        if self.reported_invalid.get(key) == reason:
            return  # said already; say it again only if the reason changes
        self.reported_invalid[key] = reason
        self.stats.invalid += 1
        self.emit("invalid", path=path, message=reason)

    def rescan(self) -> bool:
        """Full sync as a safety net for missed events; False if the catalog was unavailable."""
        try:
            before = {r[0] for r in self._catalog_runs()}  # runs others registered are not ours
            report = catalog_all_runs(catalog=self.db, base_dir=self.storage,
                                          lock_timeout=self.lock_timeout)
            rows = self._catalog_runs()
        except (QuantbotError, duckdb.Error) as err:
            self.stats.errors += 1
            self.emit("error", message=f"rescan failed: {err}")
            return False
        self.stats.rescans += 1
        for run_id, run_type, status, run_dir in rows:
            if run_id not in before:
                self.stats.registered += 1
                self.reported_invalid.pop(os.path.basename(run_dir.rstrip("/")), None)
                self.emit("registered", run_id=run_id, run_type=run_type, status=status,
                          path=run_dir)
        self.known = {r[0] for r in rows}
        for path, reason in report.invalid:
            self._report_invalid(path, reason)
        self.pending = {p: loc for p, loc in self.pending.items() if loc.run_id not in self.known}
        return True

    def _catalog_runs(self) -> list[tuple[str, str, str, str]]:
        if not catalog_exists(self.db):
            return []
        with open_catalog(self.db, read_only=True, lock_timeout=self.lock_timeout) as con:
            if not table_columns(con, RUNS_TABLE):
                return []
            return con.execute(f"SELECT run_id, run_type, status, run_dir FROM {RUNS_TABLE} "
                               "ORDER BY created_at, run_id").fetchall()


def _relevant(change: Any, path: str) -> bool:
    """Temporary files of atomic writes are noise; their rename shows up under the final name."""
    return not os.path.basename(path).startswith(TMP_PREFIX)


@legacy_arguments("catalog", "base_dir")
def watch_catalog(*, catalog: CatalogRef = DEFAULT_CATALOG,
                  base_dir: str | os.PathLike[str] | Storage = "runs",
                  stop_event: StopFlag | None = None, rescan_interval: float = 60.0,
                  debounce_ms: int = 500, lock_timeout: float | None = None,
                  on_event: Callable[[WatchEvent], None] | None = None,
                  force_polling: bool | None = None) -> WatchStats:
    """Keep the catalog ``catalog`` in step with ``base_dir`` until ``stop_event`` is set.

    ``on_event`` receives a ``WatchEvent`` per registered run, invalid run and error (the
    CLI prints ``event.line()``). ``rescan_interval`` (s) is the period of the full sync
    that catches missed events; ``debounce_ms`` is how long file events are gathered into
    one batch (one catalog write). Without ``stop_event`` it runs until interrupted.
    """
    import watchfiles

    if rescan_interval <= 0:
        raise InvalidArgumentError(f"invalid rescan interval {rescan_interval:g}: must be > 0 seconds")
    if debounce_ms < 1:
        raise InvalidArgumentError(f"invalid debounce {debounce_ms} ms: must be >= 1")
    storage = open_storage(base_dir)
    if storage.local_path(storage.root) is None:
        raise StorageError(f"{storage.root}: catalog-watch needs a local folder (file events); "
                            "for object stores schedule catalog-sync instead")
    storage.make_dirs(storage.root)
    absolute = os.path.abspath(storage.root)
    stop = stop_event if stop_event is not None else threading.Event()
    watcher = _Watcher(catalog, storage, lock_timeout, on_event or (lambda e: None),
                       roots=tuple(dict.fromkeys((absolute, os.path.realpath(absolute)))))
    watcher.emit("started", message=f"watching {storage.root} for runs to register in "
                 f"{os.fspath(catalog) if not isinstance(catalog, duckdb.DuckDBPyConnection) else 'catalog'} "
                 f"(rescan every {rescan_interval:g} s)")
    next_rescan = 0.0  # the first wake-up (watcher already listening) does a full sync
    for changes in watchfiles.watch(
            absolute, watch_filter=_relevant, debounce=debounce_ms, step=min(50, debounce_ms),
            stop_event=stop, rust_timeout=_TICK_MS, yield_on_timeout=True,
            raise_interrupt=False, force_polling=force_polling):
        if stop.is_set():
            break
        watcher.add_changes(path for _, path in changes)
        if time.monotonic() >= next_rescan:
            ok = watcher.rescan()
            next_rescan = time.monotonic() + (rescan_interval if ok else min(_RETRY_AFTER_S,
                                                                              rescan_interval))
        watcher.flush()
    s = watcher.stats
    watcher.emit("stopped", message=f"registered {s.registered} run(s), {s.invalid} invalid, "
                 f"{s.rescans} rescan(s), {s.errors} error(s)")
    return s


__all__ = ["WatchEvent", "WatchStats", "watch_catalog"]
