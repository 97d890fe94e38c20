"""The catalog's copy of the annotation records (names, tags, notes, deletions).

The records themselves live in the base dir (append-only, one object each); these tables
are derived from them and rebuilt by a sync:

- ``run_annotations``: every record applied, keyed by its record id;
- ``run_labels``: each annotated run's current name, deletion time and notes;
- ``run_tags``: each run's current tags (one row per key).

``apply_records`` adds records (idempotent, by record id) and recomputes the derived rows
of the runs they touch from *all* of those runs' records, so the order in which records
reach the catalog never matters. Removing a run from the catalog (``remove.py``) leaves
these tables alone: the records still exist in the base dir.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from quantbot.artifacts.catalog.connection import CatalogRef, catalog_exists, open_catalog
from quantbot.artifacts.catalog.transaction import storage_errors, transaction
from quantbot.artifacts.schema.layout import iso_utc, parse_iso
from quantbot.artifacts.store.annotations import (
    AnnotationRecord,
    fold_records,
    list_record_files,
    read_records,
)
from quantbot.artifacts.store.backends import Storage, open_storage

ANNOTATIONS_TABLE = "run_annotations"
LABELS_TABLE = "run_labels"
TAGS_TABLE = "run_tags"

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {ANNOTATIONS_TABLE} (
        record_id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        action TEXT NOT NULL,
        key TEXT,
        value TEXT,
        author TEXT,
        created_at TIMESTAMP NOT NULL
    )""",
    f"""CREATE TABLE IF NOT EXISTS {LABELS_TABLE} (
        run_id TEXT PRIMARY KEY,
        name TEXT,
        deleted_at TIMESTAMP,
        notes_count INTEGER NOT NULL DEFAULT 0,
        last_note TEXT
    )""",
    f"""CREATE TABLE IF NOT EXISTS {TAGS_TABLE} (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT,
        PRIMARY KEY (run_id, key)
    )""",
)


def ensure_label_tables(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in _DDL:
        con.execute(ddl)
    # A listing reads one page's tags by run_id (the key's index is on (run_id, key)).
    con.execute(f"CREATE INDEX IF NOT EXISTS {TAGS_TABLE}_run_id ON {TAGS_TABLE} (run_id)")


def _ts(text: str) -> datetime:
    """A record's ISO time as DuckDB's naive-UTC TIMESTAMP."""
    return parse_iso(text).astimezone(UTC).replace(tzinfo=None)


def iso_of(value: datetime | None) -> str | None:
    """A naive-UTC TIMESTAMP read back as the records' ISO text."""
    return None if value is None else iso_utc(value.replace(tzinfo=UTC))


_RECORDS_ARROW = pa.schema([("record_id", pa.string()), ("run_id", pa.string()),
                            ("action", pa.string()), ("key", pa.string()),
                            ("value", pa.string()), ("author", pa.string()),
                            ("created_at", pa.timestamp("ms"))])


def _stored_records(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[AnnotationRecord]:
    rows = con.execute(
        f"SELECT record_id, run_id, action, key, value, author, created_at FROM {ANNOTATIONS_TABLE}"
        " WHERE run_id IN (SELECT unnest(?))", [run_ids]).fetchall()
    return [AnnotationRecord(r[0], r[1], r[2], r[3], r[4], r[5], iso_of(r[6]) or "") for r in rows]


def apply_records(con: duckdb.DuckDBPyConnection, records: list[AnnotationRecord]) -> int:
    """Insert the records not yet in ``run_annotations`` (by record id: applying twice is a
    no-op) and recompute ``run_labels``/``run_tags`` of every run they touch from all its
    records in order. The caller holds a transaction; returns how many were new."""
    if not records:
        return 0
    ensure_label_tables(con)
    batch = pa.Table.from_pylist(  # noqa: F841 - scanned by DuckDB
        [{**{k: getattr(r, k) for k in _RECORDS_ARROW.names}, "created_at": _ts(r.created_at)}
         for r in records], schema=_RECORDS_ARROW)
    ((before,),) = con.execute(f"SELECT count(*) FROM {ANNOTATIONS_TABLE}").fetchall()
    con.execute(f"INSERT OR IGNORE INTO {ANNOTATIONS_TABLE} BY NAME SELECT * FROM batch")
    ((after,),) = con.execute(f"SELECT count(*) FROM {ANNOTATIONS_TABLE}").fetchall()
    run_ids = sorted({r.run_id for r in records})
    states = fold_records(_stored_records(con, run_ids))
    for table in (LABELS_TABLE, TAGS_TABLE):
        con.execute(f"DELETE FROM {table} WHERE run_id IN (SELECT unnest(?))", [run_ids])
    labels = [{"run_id": run_id, "name": s.name,
               "deleted_at": _ts(s.deleted.created_at) if s.deleted else None,
               "notes_count": len(s.notes), "last_note": s.notes[-1].value if s.notes else None}
              for run_id, s in sorted(states.items())]
    tags = [{"run_id": run_id, "key": k, "value": v}
            for run_id, s in sorted(states.items()) for k, v in sorted(s.tags.items())]
    label_rows = pa.Table.from_pylist(labels, schema=pa.schema([  # noqa: F841
        ("run_id", pa.string()), ("name", pa.string()), ("deleted_at", pa.timestamp("ms")),
        ("notes_count", pa.int32()), ("last_note", pa.string())]))
    con.execute(f"INSERT INTO {LABELS_TABLE} BY NAME SELECT * FROM label_rows")
    if tags:
        tag_rows = pa.Table.from_pylist(tags)  # noqa: F841
        con.execute(f"INSERT INTO {TAGS_TABLE} BY NAME SELECT * FROM tag_rows")
    return int(after - before)


@dataclass
class AnnotationSync:
    """What ``sync_annotations`` did: records applied, and files that are no records."""

    applied: int = 0
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (uri, reason)


def _has_labels(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the label tables exist (a catalog of schema version 1 lacks them)."""
    ((present,),) = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_name = ?", [ANNOTATIONS_TABLE]).fetchall()
    return bool(present)


def _unseen(db: CatalogRef, ids: list[str], lock_timeout: float | None) -> list[str]:
    """The record ids not in ``run_annotations`` (an anti-join inside DuckDB)."""
    if not catalog_exists(db):
        return ids
    with open_catalog(db, read_only=True, lock_timeout=lock_timeout) as con:
        if not _has_labels(con):
            return ids
        listed = pa.table({"record_id": pa.array(ids, pa.string())})  # noqa: F841
        rows = con.execute(f"SELECT record_id FROM listed ANTI JOIN {ANNOTATIONS_TABLE} "
                           "USING (record_id)").fetchall()
    return [r[0] for r in rows]


def sync_annotations(storage: str | os.PathLike[str] | Storage, catalog: CatalogRef,
                     lock_timeout: float | None = None) -> AnnotationSync:
    """Apply every record under the base dir that the catalog has not seen yet. Costs
    one listing per month of records when there is nothing new (no write lock taken)."""
    storage = open_storage(storage)
    files = list_record_files(storage)
    todo = _unseen(catalog, list(files), lock_timeout) if files else []
    records, invalid = read_records(storage, {i: files[i] for i in todo})
    report = AnnotationSync(invalid=invalid)
    if records:
        with storage_errors(catalog), \
                open_catalog(catalog, read_only=False, lock_timeout=lock_timeout) as con, \
                transaction(con):
            report.applied = apply_records(con, records)
    return report


def label_state(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """A run's name, tags, notes (oldest first) and deletion time as the catalog has them."""
    if not _has_labels(con):
        return {"name": None, "tags": {}, "notes": [], "deleted_at": None}
    label = con.execute(f"SELECT name, deleted_at FROM {LABELS_TABLE} WHERE run_id = ?",
                        [run_id]).fetchall()
    tags = con.execute(f"SELECT key, value FROM {TAGS_TABLE} WHERE run_id = ? ORDER BY key",
                       [run_id]).fetchall()
    notes = con.execute(f"SELECT value, author, created_at FROM {ANNOTATIONS_TABLE} "
                        "WHERE run_id = ? AND action = 'note' ORDER BY created_at, record_id",
                        [run_id]).fetchall()
    name, deleted_at = label[0] if label else (None, None)
    return {"name": name, "tags": dict(tags),
            "notes": [{"text": t, "author": a, "created_at": iso_of(c)} for t, a, c in notes],
            "deleted_at": iso_of(deleted_at)}


__all__ = ["ANNOTATIONS_TABLE", "LABELS_TABLE", "TAGS_TABLE", "AnnotationSync", "apply_records",
           "ensure_label_tables", "label_state", "sync_annotations"]
