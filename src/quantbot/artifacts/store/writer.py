"""RunDirectory: the only way a run's files come into being.

The completion protocol (docs/architecture.md): every file is written under a temporary
name and renamed into place; run.json is replaced atomically on every update; ``_SUCCESS``
is written last, after the data, the final manifest and every new folder's entry are
fsynced (when durable), so a marker never outlives its data. A run is committed only by
its marker: a crash at any instant leaves a complete run or one the catalog never shows
as completed, and ``gc --apply`` resolves every such run to a failed one.

Before each run.json update and before the marker, the writer checks that run.json is
still what it last wrote: a run that gc marked failed meanwhile stops with
RunMarkedFailedError instead of completing over gc's record.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from quantbot.artifacts.schema.arrow_schemas import ArtifactSpec, ArtifactType
from quantbot.artifacts.schema.layout import (
    LOGS_DIR,
    MANIFEST_NAME,
    SUCCESS_MARKER,
    iso_utc,
    month_partition,
    new_run_id,
    run_dir_name,
    utc_now,
    validate_run_id,
)
from quantbot.artifacts.schema.manifest import (
    RUN_TYPES,
    ArtifactEntry,
    RunManifest,
    config_hash,
    deep_merge,
    parse_manifest,
    validate_manifest,
)
from quantbot.artifacts.store.artifact_writer import ArtifactWriter
from quantbot.artifacts.store.backends import Storage, WrittenFile, open_storage
from quantbot.artifacts.store.logcapture import capture_fds
from quantbot.artifacts.store.provenance import get_git_provenance, host_info
from quantbot.errors import (
    InvalidArgumentError,
    QuantbotError,
    RunExistsError,
    RunMarkedFailedError,
    RunStateError,
    StorageError,
)

# Fields the RunDirectory owns; update_manifest may not touch them.
_MANAGED = frozenset({"run_id", "run_type", "status", "created_at", "artifacts", "schema_version"})


class RunDirectory:
    """One run's folder ``<base>/YYYY-MM/run_id=<uuid>/`` and its manifest.

    Use it as a context manager: an exception inside marks the run failed (error recorded)
    and re-raises; a clean exit marks it completed unless already marked.
    """

    def __init__(self, storage: Storage, path: str, manifest: RunManifest, durable: bool,
                 started: float | None = None) -> None:
        self.storage = storage
        self._dir = path  # the storage's own path form
        self.path = storage.uri(path)  # what people see and re-open (a URI on object stores)
        self.durable = durable
        self._manifest = manifest
        self._on_disk: bytes | None = None  # run.json as this writer last wrote it
        self._started = time.perf_counter() if started is None else started
        self._open_writers: dict[ArtifactType, ArtifactWriter] = {}

    # -- state ---------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self._manifest.run_id

    @property
    def manifest(self) -> RunManifest:
        """A copy of the current manifest (the on-disk run.json says the same)."""
        return self._manifest.model_copy(deep=True)

    @property
    def status(self) -> str:
        return self._manifest.status

    def _check_open(self) -> None:
        if self._manifest.status in ("completed", "failed"):
            raise RunStateError(
                f"run {self.run_id} is {self._manifest.status}; its directory is immutable")

    # -- manifest ------------------------------------------------------------------------
    def _write_manifest(self, manifest: RunManifest, durable: bool = False) -> None:
        manifest.parameters.config_hash = config_hash(manifest.parameters.model_dump())
        data = manifest.to_json().encode()
        self._ensure_still_ours()
        self.storage.write_bytes(self.storage.join(self._dir, MANIFEST_NAME), data, durable)
        self._manifest = manifest
        self._on_disk = data

    def _ensure_still_ours(self) -> None:
        """Stop (RunMarkedFailedError) if another process replaced run.json since this
        writer last wrote it: ``gc --apply`` marks a run failed by doing exactly that.

        One read of a small file (~2 kB). There is no compare-and-swap on a filesystem:
        gc can still land between this check and the write that follows; the docs
        (architecture.md, "The completion protocol") say what that leaves and who reports it.
        """
        if self._on_disk is None:
            return  # create_run_directory's first write: the folder was just made
        path = self.storage.join(self._dir, MANIFEST_NAME)
        try:
            current = self.storage.read_own(path)
        except FileNotFoundError:
            current = b""
        if current == self._on_disk:
            return
        try:
            theirs: RunManifest | None = parse_manifest(current, path)
        except QuantbotError:
            theirs = None
        for writer in list(self._open_writers.values()):
            writer.abort()
        if theirs is not None and theirs.status == "failed":
            self._manifest = theirs  # closed for writing; __exit__ keeps gc's record
            why = f" ({theirs.error.type}: {theirs.error.message})" if theirs.error else ""
            raise RunMarkedFailedError(
                f"run {self.run_id} was marked failed by another process while it was "
                f"running{why}; this writer stops and writes no _SUCCESS")
        self._manifest = self._manifest.model_copy(update={"status": "failed"})  # memory only
        state = f"status {theirs.status}" if theirs is not None else "missing or unreadable"
        raise RunMarkedFailedError(
            f"{path} was changed by another process while run {self.run_id} was running "
            f"(now {state}); this writer stops and writes no _SUCCESS")

    def update_manifest(self, updates: dict[str, Any] | None = None, **fields: Any) -> RunManifest:
        """Merge ``updates`` (nested dicts merge) into run.json, validate, write atomically."""
        self._check_open()
        changes = deep_merge(updates or {}, fields)
        managed = _MANAGED.intersection(changes)
        if managed:
            raise RunStateError(f"manifest field {sorted(managed)[0]} is managed by RunDirectory")
        merged = deep_merge(self._manifest.to_dict(), changes)
        self._write_manifest(validate_manifest(merged, f"{self.path}/{MANIFEST_NAME}"))
        return self.manifest

    # -- artifacts -----------------------------------------------------------------------
    def _artifact_abspath(self, spec: ArtifactSpec) -> str:
        folder, name = spec.path.split("/")
        abs_folder = self.storage.join(self._dir, folder)
        self.storage.make_dirs(abs_folder, self.durable)
        return self.storage.join(abs_folder, name)

    def _reserve(self, artifact_type: str | ArtifactType) -> ArtifactSpec:
        self._check_open()
        spec = ArtifactType.parse(artifact_type).spec
        if spec.type.value in self._manifest.artifacts or spec.type in self._open_writers:
            raise RunStateError(
                f"artifact {spec.type.value} was already written to run {self.run_id}; "
                "artifacts are immutable")
        return spec

    def _record_artifact(self, spec: ArtifactSpec, rows: int, written: WrittenFile) -> ArtifactEntry:
        entry = ArtifactEntry(rows=rows, path=spec.path, bytes=written.bytes, sha256=written.sha256)
        artifacts = {**self._manifest.artifacts, spec.type.value: entry}
        try:
            self._write_manifest(self._manifest.model_copy(update={"artifacts": artifacts}))
        finally:
            self._open_writers.pop(spec.type, None)
        return entry

    def write_artifact(self, artifact_type: str | ArtifactType, data: Any = None,
                       compression: str = "zstd") -> ArtifactEntry:
        """Validate ``data`` against the artifact schema and write it as one Parquet file.

        ``data``: Arrow table/batch, pandas/polars frame, dict of columns, list of dicts,
        or None for an empty artifact with the full schema.
        """
        with self.artifact_writer(artifact_type, compression) as writer:
            writer.write(data)
        return writer.entry

    def artifact_writer(self, artifact_type: str | ArtifactType,
                        compression: str = "zstd") -> ArtifactWriter:
        """An incremental writer: ``with run.artifact_writer("trades") as w: w.write(batch)``."""
        spec = self._reserve(artifact_type)
        writer = ArtifactWriter(self, spec, compression)
        self._open_writers[spec.type] = writer
        return writer

    # -- logs ----------------------------------------------------------------------------
    def write_log(self, name: str, text: str) -> str:
        """Write ``logs/<name>`` atomically; returns its path relative to the run."""
        self._check_open()
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise RunStateError(f"invalid log name {name!r}: a plain file name is required")
        folder = self.storage.join(self._dir, LOGS_DIR)
        self.storage.make_dirs(folder, self.durable)
        self.storage.write_bytes(self.storage.join(folder, name), text.encode(), self.durable)
        return f"{LOGS_DIR}/{name}"

    @contextmanager
    def capture_output(self, echo: bool = True) -> Iterator[None]:
        """Tee the process's stdout/stderr (fd level, so subprocesses too) into logs/."""
        self._check_open()
        folder = self.storage.join(self._dir, LOGS_DIR)
        self.storage.make_dirs(folder, self.durable)
        with capture_fds(self.storage.join(folder, "stdout.txt"),
                         self.storage.join(folder, "stderr.txt"), echo=echo):
            try:
                yield
            finally:  # a failing run's logs matter most: list them in run.json either way
                if self._manifest.status not in ("completed", "failed"):
                    self.update_manifest(logs={"stdout": f"{LOGS_DIR}/stdout.txt",
                                               "stderr": f"{LOGS_DIR}/stderr.txt"})

    # -- completion ----------------------------------------------------------------------
    def _finish(self, status: str, extra: dict[str, Any]) -> None:
        now = iso_utc(utc_now())
        data = deep_merge(self._manifest.to_dict(), {
            "status": status, "completed_at": now,
            "timing": {"total_ms": round((time.perf_counter() - self._started) * 1e3, 3)},
            **extra,
        })
        self._write_manifest(validate_manifest(data), durable=self.durable)

    def mark_success(self) -> None:
        """Seal the run: final manifest, fsync data and folders, then ``_SUCCESS`` last.

        If sealing fails, the failure is recorded instead (where there is room); a run that
        gc marked failed meanwhile raises RunMarkedFailedError and gets no marker.
        """
        self._check_open()
        if self._open_writers:
            raise RunStateError(
                f"artifact writer for {sorted(t.value for t in self._open_writers)[0]} still open")
        try:
            self._finish("completed", {})
            if self.durable:
                for entry in self._manifest.artifacts.values():
                    self.storage.sync_dir(self.storage.join(self._dir, entry.path.split("/")[0]))
                self.storage.sync_dir(self._dir)
            self._ensure_still_ours()  # the last chance to notice gc: the marker commits
            self.storage.write_bytes(self.storage.join(self._dir, SUCCESS_MARKER),
                                     (self._manifest.completed_at or "").encode(), self.durable)
        except RunMarkedFailedError:
            raise
        except BaseException as exc:
            self._record_failure(exc)
            raise
        if self.durable:
            self.storage.sync_dir(self._dir)

    def mark_failure(self, exc: BaseException) -> None:
        """Record the error in run.json with status failed; no marker is ever written."""
        self._check_open()
        self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        self._finish("failed", _error_fields(exc))

    def _record_failure(self, exc: BaseException) -> None:
        """Record ``exc`` as the run's failure; if even that is impossible (a full disk), say
        on ``exc`` what is left and which command resolves it. ``exc`` is re-raised by the
        caller either way."""
        try:
            self._fail(exc)
        except RunMarkedFailedError as err:
            exc.add_note(str(err))
        except (OSError, StorageError) as err:
            exc.add_note(f"{self.path}: could not record this failure in {MANIFEST_NAME} ({err}); "
                         "the run stays unfinished (no _SUCCESS) until "
                         "`quantbot backtest gc --apply` marks it failed")

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._manifest.status in ("completed", "failed"):
            return
        unclosed = sorted(t.value for t in self._open_writers)
        for writer in list(self._open_writers.values()):
            writer.abort()  # an unfinished file never appears under its final name
        if exc is not None:
            self._record_failure(exc)
        elif unclosed:
            error = RunStateError(f"artifact writer for {unclosed[0]} was never closed")
            self._record_failure(error)
            raise error
        else:
            self.mark_success()


def _error_fields(exc: BaseException) -> dict[str, Any]:
    """The ``error`` of a failed run.json: type, message and traceback of ``exc``, and the
    phase it escaped from when the code that ran it said so (``exc.quantbot_phase``, set by
    the backtest flows' phase clock)."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    phase = getattr(exc, "quantbot_phase", None)
    return {"error": {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__,
                      "traceback": tb, "phase": phase if isinstance(phase, str) else None}}


def create_run_directory(
    run_type: str,
    run_id: str | None = None,
    base_dir: str | os.PathLike[str] = "runs",
    *,
    parameters: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
    durable: bool = True,
    git: bool = True,
    started: float | None = None,
) -> RunDirectory:
    """Create ``<base_dir>/YYYY-MM/run_id=<uuid>/`` with a ``running`` manifest.

    ``durable=False`` skips fsync (scratch runs: a power cut may lose them, a crash still
    cannot tear them). An existing run directory is an error, never overwritten.
    ``started`` (a ``time.perf_counter()`` value): when the run's work began, if before the
    directory (a flow loads and checks its inputs first); ``timing.total_ms`` counts from it.
    """
    if run_type not in RUN_TYPES:
        raise InvalidArgumentError(
            f"invalid run type {run_type!r} (expected one of {', '.join(RUN_TYPES)})")
    run_id = validate_run_id(run_id) if run_id is not None else new_run_id()
    storage = open_storage(base_dir)
    created = utc_now()
    for month in storage.list_dir(storage.root):
        if storage.exists(storage.join(storage.root, month, run_dir_name(run_id))):
            raise RunExistsError(f"run {run_id} already exists under {storage.root}/{month}")
    path = storage.join(storage.root, month_partition(created), run_dir_name(run_id))
    try:
        storage.create_dir_exclusive(path, durable)
    except FileExistsError:
        raise RunExistsError(f"run directory {path} already exists; runs are never overwritten") from None
    prov = get_git_provenance() if git else None
    stamp = iso_utc(created)
    manifest = validate_manifest({
        "run_id": run_id, "run_type": run_type, "status": "running",
        "created_at": stamp, "started_at": stamp,
        "git_commit": prov.commit if prov else None,
        "git_branch": prov.branch if prov else None,
        "git_dirty": prov.dirty if prov else None,
        "dataset": dataset or {}, "parameters": parameters or {},
        "host": host_info(),
    })
    run = RunDirectory(storage, path, manifest, durable, started)
    run._write_manifest(manifest)
    return run
