"""Registering runs: scan without the lock, then write everything in short transactions.

The expensive part (listing, reading and hashing artifacts) happens before the catalog's
write lock is taken; the lock is held only for the inserts, so queries from other
processes wait at most a moment.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from quantbot._compat import legacy_arguments
from quantbot.artifacts.catalog.connection import (
    DEFAULT_CATALOG,
    CatalogRef,
    catalog_exists,
    open_catalog,
)
from quantbot.artifacts.catalog.consolidate import column_problem, insert_tables
from quantbot.artifacts.catalog.labels import sync_annotations
from quantbot.artifacts.catalog.run_index import insert_index_rows
from quantbot.artifacts.catalog.scan import scan_runs
from quantbot.artifacts.catalog.schema import (
    ARTIFACTS_TABLE,
    RUNS_COLUMNS,
    RUNS_TABLE,
    TIMING_FIELDS,
    data_table,
    ensure_schema,
    table_columns,
)
from quantbot.artifacts.catalog.transaction import is_storage_failure, storage_errors, transaction
from quantbot.artifacts.schema.arrow_schemas import ArtifactType
from quantbot.artifacts.schema.layout import RUN_DIR_PREFIX, parse_iso, run_id_from_dir_name
from quantbot.artifacts.store.backends import Storage, open_storage
from quantbot.artifacts.store.runs import RunLocation, copy_paths, list_run_folders
from quantbot.artifacts.store.validate import InvalidRunError, ScannedRun, load_run

_BATCH_RUNS = 500


@dataclass
class SyncReport:
    """What a sync did, with separate counts (never one lumped number)."""

    registered: int = 0
    already_present: int = 0
    incomplete: int = 0
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def to_dict(self) -> dict[str, object]:
        return {"registered": self.registered, "already_present": self.already_present,
                "incomplete": self.incomplete,
                "invalid": [{"path": p, "reason": r} for p, r in self.invalid]}


def _ts(text: str | None) -> datetime | None:
    """A naive-UTC timestamp for DuckDB's TIMESTAMP columns; None if absent or unparsable."""
    if not text:
        return None
    try:
        value = parse_iso(text)
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _catalog_row(run: ScannedRun, now: datetime) -> dict[str, object]:
    m = run.manifest
    timing = m.timing.model_dump() if m.timing else {}
    row: dict[str, object] = {
        "run_id": m.run_id, "run_type": m.run_type, "status": m.status,
        "created_at": _ts(m.created_at), "started_at": _ts(m.started_at),
        "completed_at": _ts(m.completed_at), "git_commit": m.git_commit,
        "git_branch": m.git_branch, "git_dirty": m.git_dirty,
        "dataset_from": _ts(m.dataset.from_), "dataset_to": _ts(m.dataset.to),
        "dataset_interval": m.dataset.interval, "dataset_calls_count": m.dataset.calls_count,
        "parameters_json": json.dumps(m.parameters.model_dump(exclude_none=True), sort_keys=True),
        "artifacts_json": json.dumps({k: v.model_dump() for k, v in m.artifacts.items()}),
        "error_type": m.error.type if m.error else None,
        "error_message": m.error.message if m.error else None,
        "error_phase": m.error.phase if m.error else None,
        "run_dir": run.uri, "manifest_path": run.manifest_uri,
        "cataloged_at": now, "manifest_json": m.to_json(),
    }
    for t in TIMING_FIELDS:
        row[f"timing_{t}_ms"] = timing.get(f"{t}_ms")
    return row


_RUNS_ARROW = pa.schema([
    (c, pa.timestamp("us") if c in {"created_at", "started_at", "completed_at", "dataset_from",
                                     "dataset_to", "cataloged_at"}
     else pa.bool_() if c == "git_dirty" else pa.int32() if c == "dataset_calls_count"
     else pa.float64() if c.startswith("timing_") else pa.string())
    for c in RUNS_COLUMNS
])


def _insert_runs(con: duckdb.DuckDBPyConnection, runs: list[ScannedRun]) -> None:
    """Insert runs, their artifact index rows and their data: the caller holds a transaction."""
    now = datetime.now(UTC).replace(tzinfo=None)
    runs_tbl = pa.Table.from_pylist([_catalog_row(r, now) for r in runs], schema=_RUNS_ARROW)
    con.register("_qb_runs", runs_tbl)
    con.execute(f"INSERT INTO {RUNS_TABLE} BY NAME SELECT * FROM _qb_runs")
    con.unregister("_qb_runs")
    art_rows = [
        {"run_id": r.manifest.run_id, "artifact_type": name, "artifact_path": entry.path,
         "rows": entry.rows, "bytes": entry.bytes, "sha256": entry.sha256,
         "created_at": _ts(r.manifest.created_at), "cataloged_at": now}
        for r in runs for name, entry in r.manifest.artifacts.items()
    ]
    if art_rows:
        con.register("_qb_arts", pa.Table.from_pylist(art_rows))
        con.execute(f"INSERT INTO {ARTIFACTS_TABLE} BY NAME SELECT * FROM _qb_arts")
        con.unregister("_qb_arts")
    for kind in ArtifactType:
        if kind is not ArtifactType.SUMMARY:
            _insert_data(con, kind, runs)
    # The batch's summaries go through a temporary table, which run_metrics picks from:
    # the batch's rows only, whatever the number of registered runs. (On a failure the
    # transaction's rollback removes the temporary table too.)
    summary = data_table(ArtifactType.SUMMARY)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_STAGED_SUMMARY} AS FROM {summary} LIMIT 0")
    _insert_data(con, ArtifactType.SUMMARY, runs, into=_STAGED_SUMMARY)
    con.execute(f"INSERT INTO {summary} BY NAME SELECT * FROM {_STAGED_SUMMARY}")
    insert_index_rows(con, [r.manifest for r in runs], _STAGED_SUMMARY)
    con.execute(f"DROP TABLE {_STAGED_SUMMARY}")


_STAGED_SUMMARY = "_qb_batch_summary"


def _insert_data(con: duckdb.DuckDBPyConnection, kind: ArtifactType, runs: list[ScannedRun],
                 into: str | None = None) -> None:
    """Copy one artifact type of a batch of runs into its consolidated table, or ``into``
    a table with that table's columns (for summaries, whose columns are fixed)."""
    table = into or data_table(kind)
    tables = [r.tables[kind] for r in runs if kind in r.tables and r.tables[kind].num_rows]
    if tables and into is None:
        insert_tables(con, kind, tables)
    elif tables:
        con.register("_qb_data", pa.concat_tables(tables, promote_options="default"))
        con.execute(f"INSERT INTO {into} BY NAME SELECT * FROM _qb_data")
        con.unregister("_qb_data")
    files = [(r.files[kind], r.manifest.run_id) for r in runs
             if kind in r.files and r.manifest.artifacts[kind.value].rows]
    if not files:
        return
    paths = [f for f, _ in files]
    if kind.spec.has_run_id:  # run_id from the file's own column (checked via its footer)
        # hive_partitioning off: the run_id=<uuid> folder would add a second run_id column
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM "
                    "read_parquet(?, hive_partitioning = false)", [paths])
        return
    con.register("_qb_files", pa.table({"_qb_file": paths, "run_id": [r for _, r in files]}))
    con.execute(f"INSERT INTO {table} BY NAME SELECT f.run_id, p.* EXCLUDE (_qb_file) "
                "FROM read_parquet(?, filename = '_qb_file', hive_partitioning = false) p "
                "JOIN _qb_files f USING (_qb_file)",
                [paths])
    con.unregister("_qb_files")


def write_batch(con: duckdb.DuckDBPyConnection, runs: list[ScannedRun], report: SyncReport) -> None:
    """Register a batch: one transaction for all; if that fails, one per run, so a bad run
    only fails itself (it is reported invalid with the reason; nothing is raised)."""
    present = registered_ids_among(con, [r.manifest.run_id for r in runs])
    fresh = [r for r in runs if r.manifest.run_id not in present]
    report.already_present += len(runs) - len(fresh)
    fresh = [r for r in fresh if not _column_problem(r, report)]
    if not fresh:
        return
    if len(fresh) > 1 and _insert_in_transaction(con, fresh) is None:
        report.registered += len(fresh)
        return
    for run in fresh:
        error = _insert_in_transaction(con, [run])
        if error is None:
            report.registered += 1
        else:
            report.invalid.append((run.location.path, f"catalog insert failed: {error}"))


def _column_problem(run: ScannedRun, report: SyncReport) -> bool:
    """True (and the run reported invalid) when its columns clash ignoring case: decided by
    the run's own content, so a rebuild rejects exactly the runs an incremental sync did."""
    for kind, table in run.tables.items():
        problem = column_problem(kind, table)
        if problem is not None:
            report.invalid.append((run.location.path, problem))
            return True
    return False


def _insert_in_transaction(con: duckdb.DuckDBPyConnection, runs: list[ScannedRun]) -> str | None:
    """Insert the runs atomically; the first line of the error if that failed (rolled back).

    A failure to write the catalog file is raised: it is not the runs' fault.
    """
    try:
        with transaction(con):
            _insert_runs(con, runs)
        return None
    except (duckdb.Error, pa.ArrowException) as err:
        if is_storage_failure(err):
            raise
        return str(err).splitlines()[0]


@contextlib.contextmanager
def unordered_inserts(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Let DuckDB store inserted rows in any order while a sync writes (a caller's own
    connection gets its setting back).

    Keeping insertion order makes DuckDB buffer a large insert and compress it again at
    the checkpoint; without it, rows are compressed once, in parallel, as they arrive
    (a rebuild of 10,000 runs spends ~15% less CPU). Row order in a table means nothing
    to the catalog: every reader orders explicitly or aggregates.
    """
    ((before,),) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
    con.execute("SET preserve_insertion_order = false")
    try:
        yield
    finally:
        con.execute(f"SET preserve_insertion_order = {'true' if before else 'false'}")


def registered_ids_among(con: duckdb.DuckDBPyConnection, ids: list[str]) -> set[str]:
    rows = con.execute(f"SELECT run_id FROM {RUNS_TABLE} WHERE run_id IN (SELECT unnest(?))",
                       [ids]).fetchall()
    return {r[0] for r in rows}


def initialize_catalog(db: CatalogRef, lock_timeout: float | None = None) -> None:
    """Create the catalog's tables and views if missing (idempotent)."""
    with storage_errors(db), open_catalog(db, read_only=False, lock_timeout=lock_timeout) as con:
        ensure_schema(con)


def _unregistered(db: CatalogRef, ids: list[str], lock_timeout: float | None
                  ) -> tuple[list[str], bool]:
    """The ids not in the catalog (an anti-join inside DuckDB), and whether its tables exist."""
    if not catalog_exists(db):
        return ids, False
    with open_catalog(db, read_only=True, lock_timeout=lock_timeout) as con:
        if not table_columns(con, RUNS_TABLE):
            return ids, False
        listed = pa.table({"run_id": pa.array(ids, pa.string())})  # noqa: F841 - scanned by DuckDB
        rows = con.execute(f"SELECT run_id FROM listed ANTI JOIN {RUNS_TABLE} USING (run_id)").fetchall()
    return [r[0] for r in rows], True


@legacy_arguments("catalog", "base_dir", "lock_timeout")
def catalog_all_runs(*, catalog: CatalogRef = DEFAULT_CATALOG,
                     base_dir: str | os.PathLike[str] | Storage = "runs",
                     lock_timeout: float | None = None) -> SyncReport:
    """Register every completed or failed run under ``base_dir`` that is not yet cataloged.

    Idempotent and safe to run concurrently with writers and other syncs. Registered runs
    cost one listing entry each; only new (or still incomplete) runs are read. Annotation
    records the catalog has not seen are applied too.
    """
    storage = open_storage(base_dir)
    listing, copies = list_run_folders(storage)
    new_ids, initialized = _unregistered(catalog, list(listing), lock_timeout)
    report = SyncReport(already_present=len(listing) - len(new_ids))
    todo: list[RunLocation] = []
    for name in sorted(new_ids, key=lambda n: (listing[n], n)):
        path = storage.join(storage.root, listing[name], RUN_DIR_PREFIX + name)
        run_id = run_id_from_dir_name(RUN_DIR_PREFIX + name)
        if run_id is None:
            report.invalid.append((storage.uri(path), "folder name is not run_id=<uuid>"))
        else:
            todo.append(RunLocation(run_id, listing[name], path))
    scanned = scan_runs(storage, todo, copy_paths(storage, copies))
    report.incomplete = len(scanned.incomplete)
    report.invalid.extend(scanned.invalid)
    if scanned.runs or not initialized:  # nothing new: the write lock is not even taken
        with storage_errors(catalog), open_catalog(catalog, read_only=False, lock_timeout=lock_timeout) as con:
            ensure_schema(con)
            with unordered_inserts(con):
                for i in range(0, len(scanned.runs), _BATCH_RUNS):
                    write_batch(con, scanned.runs[i:i + _BATCH_RUNS], report)
    report.invalid.extend(sync_annotations(storage, catalog, lock_timeout).invalid)
    return report


def register_run(db: CatalogRef, run_dir: str | os.PathLike[str] | Storage,
                 lock_timeout: float | None = None) -> bool:
    """Register one completed or failed run in one transaction; False if already present.

    ``run_dir`` is a path, a URI, or a Storage rooted at the run's folder (which keeps its
    options, e.g. an S3 endpoint). Raises InvalidRunError for a run that is incomplete or
    does not validate.
    """
    own = run_dir if isinstance(run_dir, Storage) else None
    path = (own.root if own is not None else os.fspath(run_dir)).rstrip("/")
    parent, name = path.rsplit("/", 1) if "/" in path else (".", path)
    run_id = run_id_from_dir_name(name)
    if run_id is None:
        raise InvalidRunError(f"{path}: not a run directory (expected run_id=<uuid>)")
    storage = own.at(parent) if own is not None else open_storage(parent)
    loc = RunLocation(run_id, parent.rsplit("/", 1)[-1], storage.join(storage.root, name))
    scanned = scan_runs(storage, [loc])
    if scanned.incomplete:
        raise InvalidRunError(f"{path}: run is incomplete (no _SUCCESS, status not failed)")
    if scanned.invalid:
        raise InvalidRunError(f"{path}: {scanned.invalid[0][1]}")
    report = SyncReport()
    with storage_errors(db), open_catalog(db, read_only=False, lock_timeout=lock_timeout) as con:
        ensure_schema(con)
        write_batch(con, scanned.runs, report)
    if report.invalid:
        raise InvalidRunError(f"{path}: {report.invalid[0][1]}")
    return report.registered == 1


__all__ = ["SyncReport", "catalog_all_runs", "initialize_catalog", "load_run", "register_run"]
