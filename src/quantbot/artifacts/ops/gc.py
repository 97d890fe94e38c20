"""gc: find the runs a crashed process left unfinished and, on request, mark them failed so
that the catalog registers them as such.

Unfinished means no ``_SUCCESS`` and a manifest that says ``pending``/``running``, or
``completed`` (the writer died between its final manifest and the marker: the marker is
what commits a run), or no manifest at all. ``--apply`` also removes the run's leftover
``.tmp-*`` files. Every state a crashed writer can leave is thereby resolved.

``collect_deleted_runs`` (``gc --deleted``) removes for good the runs soft-deleted longer
ago than a threshold: the run folder and its catalog rows in the same step (catalog rows
first: the catalog is a cache, and a run it lost meanwhile comes back with the next sync
should the folder removal fail). The annotation records stay: they are the history.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from quantbot.artifacts.catalog.connection import DEFAULT_CATALOG, CatalogRef
from quantbot.artifacts.catalog.remove import unregister_runs
from quantbot.artifacts.schema.artifact_types import ARTIFACT_PATHS
from quantbot.artifacts.schema.layout import (
    MANIFEST_NAME,
    SUCCESS_MARKER,
    iso_utc,
    month_partition,
    parse_iso,
    utc_now,
)
from quantbot.artifacts.schema.manifest import (
    RunManifest,
    deep_merge,
    parse_manifest,
    validate_manifest,
)
from quantbot.artifacts.store.annotations import fold_records, read_records
from quantbot.artifacts.store.backends import TMP_PREFIX, Storage, open_storage
from quantbot.artifacts.store.runs import RunLocation, iter_run_locations
from quantbot.durations import parse_age
from quantbot.errors import QuantbotError

STALE_ERROR_TYPE = "StaleRun"  # still pending/running after the threshold
UNSEALED_ERROR_TYPE = "UnsealedRun"  # status completed, but the marker was never written
_UNFINISHED = ("pending", "running", "completed")


@dataclass(frozen=True)
class StaleRun:
    """A run without ``_SUCCESS`` that has not finished within the threshold."""

    run_id: str
    path: str
    status: str  # pending | running | completed (no marker) | no run.json
    since: str  # ISO: completed_at (completed), started_at, else created_at, else the mtime
    age_hours: float
    marked_failed: bool = False
    tmp_files_removed: int = 0


def _mtime(path: str) -> datetime:
    # The storage abstraction has no mtime; a folder without run.json only exists on the
    # disk a crashed writer used, so the local stat is what we have.
    return datetime.fromtimestamp(os.stat(path).st_mtime, UTC)


def _stale_candidate(storage: Storage, loc: RunLocation, now: datetime,
                     threshold: timedelta) -> tuple[StaleRun, RunManifest | None] | None:
    if storage.exists(storage.join(loc.path, SUCCESS_MARKER)):
        return None
    manifest_path = storage.join(loc.path, MANIFEST_NAME)
    try:
        manifest: RunManifest | None = parse_manifest(storage.read_bytes(manifest_path), manifest_path)
    except FileNotFoundError:
        manifest = None
    except QuantbotError:
        return None  # unreadable manifests are for `verify` to report, not for gc to rewrite
    if manifest is not None:
        if manifest.status not in _UNFINISHED:
            return None
        since = parse_iso(manifest.completed_at if manifest.status == "completed"
                          and manifest.completed_at else manifest.started_at or manifest.created_at)
        status = manifest.status
    elif storage.local_path(loc.path) is None:
        return None  # an object-store "folder" has no age of its own
    else:
        since, status = _mtime(loc.path), "no run.json"
    age = now - since
    if age <= threshold:
        return None
    return StaleRun(loc.run_id, loc.path, status, iso_utc(since),
                    round(age.total_seconds() / 3600, 2)), manifest


def _infer_run_type(storage: Storage, loc: RunLocation) -> str:
    """Best guess for a folder that crashed before writing run.json (run_type is required)."""
    have = {k.value for k, rel in ARTIFACT_PATHS.items()
            if storage.exists(storage.join(loc.path, *rel.split("/")))}
    if "frontier" in have:
        return "full" if "paths" in have else "optimization"
    if "trades" in have:
        return "full" if "paths" in have else "policy"
    return "path-only" if "paths" in have else "policy"


def _mark_failed(storage: Storage, loc: RunLocation, stale: StaleRun,
                 manifest: RunManifest | None, threshold: timedelta, now: datetime) -> bool:
    if stale.status == "completed":
        message = (f"status completed since {stale.since} but no _SUCCESS after "
                   f"{stale.age_hours:g} h (threshold {threshold}): the writer stopped between "
                   "its final manifest and the marker, so the run was never committed. "
                   "Marked failed by `quantbot backtest gc`.")
        kind = UNSEALED_ERROR_TYPE
    else:
        message = (f"no _SUCCESS and still {stale.status} {stale.age_hours:g} h after "
                   f"{stale.since} (threshold {threshold}); the process that ran it presumably "
                   "crashed. Marked failed by `quantbot backtest gc`.")
        kind = STALE_ERROR_TYPE
    error = {"type": kind, "message": message, "traceback": None}
    if manifest is not None:
        return fail_unfinished_run(storage, loc.path, stale.status, error, now)
    else:
        created = parse_iso(stale.since)
        if month_partition(created) != loc.month:  # keep the partition consistent
            created = datetime.fromisoformat(f"{loc.month}-01T00:00:00+00:00")
        data = {"run_id": loc.run_id, "run_type": _infer_run_type(storage, loc),
                "status": "failed", "created_at": iso_utc(created), "completed_at": iso_utc(now),
                "error": {**error, "message": message + " run.json was missing; run_type is "
                          "inferred from the files present."}}
    return _replace_manifest(storage, loc.path, data)


def fail_unfinished_run(storage: Storage, path: str, status: str, error: dict[str, object],
                        now: datetime | None = None) -> bool:
    """Mark the run folder ``path`` failed with ``error`` ({type, message, traceback}) if it
    is still unfinished: no ``_SUCCESS`` and run.json still says ``status``. Its writer, if
    alive after all, stops at its next step (RunMarkedFailedError). True if marked."""
    manifest_path = storage.join(path, MANIFEST_NAME)
    # Re-read right before writing: the run may have moved on since it was looked at.
    if storage.exists(storage.join(path, SUCCESS_MARKER)):
        return False
    current = parse_manifest(storage.read_bytes(manifest_path), manifest_path)
    if current.status != status:
        return False
    return _replace_manifest(storage, path, deep_merge(current.to_dict(), {
        "status": "failed", "completed_at": iso_utc(now or utc_now()), "error": error}))


def _replace_manifest(storage: Storage, path: str, data: dict[str, object]) -> bool:
    manifest_path = storage.join(path, MANIFEST_NAME)
    new = validate_manifest(data, manifest_path)
    written = new.to_json().encode()
    storage.write_bytes(manifest_path, written, durable=True)
    storage.sync_dir(path)
    # A live writer that passed its own check just before our write replaces run.json
    # once more; then it completes and this run is not ours to report as failed.
    return storage.read_bytes(manifest_path) == written


def _remove_tmp_files(storage: Storage, loc: RunLocation) -> int:
    """Delete the ``.tmp-*`` files of a run gc just marked failed; how many there were.

    gc judged the writer dead, so they are half-written files nothing will rename (object
    stores have none). Should the writer be alive after all, its next step fails anyway:
    the run is failed.
    """
    root = storage.local_path(loc.path)
    if root is None:
        return 0
    removed = 0
    for folder, _, names in os.walk(root):
        for name in names:
            if name.startswith(TMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):  # e.g. its writer discarded it
                    os.unlink(os.path.join(folder, name))
                    removed += 1
    return removed


def collect_stale_runs(base_dir: str | os.PathLike[str] = "runs",
                       older_than: str | timedelta = "24h", *, apply: bool = False,
                       now: datetime | None = None) -> list[StaleRun]:
    """Runs without ``_SUCCESS`` left unfinished for longer than ``older_than``.

    Dry run by default; with ``apply=True`` each is marked failed (error type ``StaleRun``,
    or ``UnsealedRun`` for a completed manifest without marker), run.json replaced
    atomically, so ``catalog-sync`` registers it as a failed run; its ``.tmp-*`` files are
    removed.
    """
    threshold = parse_age(older_than)
    now = now or utc_now()
    storage = open_storage(base_dir)
    out: list[StaleRun] = []
    for loc in iter_run_locations(storage):
        found = _stale_candidate(storage, loc, now, threshold)
        if found is None:
            continue
        stale, manifest = found
        if apply:
            marked = _mark_failed(storage, loc, stale, manifest, threshold, now)
            removed = _remove_tmp_files(storage, loc) if marked else 0
            stale = StaleRun(**{**asdict(stale), "marked_failed": marked,
                                "tmp_files_removed": removed})
        out.append(stale)
    return out


@dataclass(frozen=True)
class DeletedRun:
    """A run soft-deleted longer ago than the threshold (``gc --deleted``)."""

    run_id: str
    path: str  # the run folder (a path or a URI)
    deleted_at: str  # ISO: the delete in force
    deleted_by: str  # its author
    removed: bool = False  # folder removed and catalog rows gone (apply)

    def line(self) -> str:
        verb = "removed" if self.removed else "would remove"
        return f"{verb} {self.run_id} {self.path} (deleted {self.deleted_at} by {self.deleted_by})"


def collect_deleted_runs(base_dir: str | os.PathLike[str] | Storage = "runs",
                         older_than: str | timedelta = "30d", *,
                         catalog: CatalogRef | None = DEFAULT_CATALOG, apply: bool = False,
                         now: datetime | None = None, lock_timeout: float | None = None
                         ) -> list[DeletedRun]:
    """Runs whose delete in force (their last delete, not undone since) is older than
    ``older_than``, oldest month first. Dry run by default; ``apply=True`` unregisters them
    from ``catalog`` (one transaction) and then removes each run folder (local or object
    store). Decided from the records in the base dir, so a stale catalog changes nothing."""
    threshold = parse_age(older_than)
    cutoff = (now or utc_now()) - threshold
    storage = open_storage(base_dir)
    records, _ = read_records(storage)
    deleted = {run_id: s.deleted for run_id, s in fold_records(records).items()
               if s.deleted is not None and parse_iso(s.deleted.created_at) < cutoff}
    found = {loc.path: DeletedRun(loc.run_id, storage.uri(loc.path), rec.created_at, rec.author)
             for loc in iter_run_locations(storage) if (rec := deleted.get(loc.run_id))}
    if not apply or not found:
        return list(found.values())
    if catalog is not None:
        unregister_runs(catalog, [d.run_id for d in found.values()], lock_timeout)
    out = []
    for path, d in found.items():
        storage.remove_tree(path)
        out.append(DeletedRun(**{**asdict(d), "removed": True}))
    return out


__all__ = ["DeletedRun", "StaleRun", "collect_deleted_runs", "collect_stale_runs",
           "fail_unfinished_run"]
