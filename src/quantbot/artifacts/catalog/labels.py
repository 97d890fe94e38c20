"""The catalog's copy of the annotation records (names, tags, notes, deletions).

The records themselves live in the base dir (append-only, one object each); these tables
are derived from them and rebuilt by a sync:

- ``run_annotations``: every record applied, keyed by its record id;
- ``run_labels``: each annotated run's current name, deletion time and notes;
- ``run_tags``: each run's current tags (one row per key).
"""

from __future__ import annotations

import duckdb

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


__all__ = ["ANNOTATIONS_TABLE", "LABELS_TABLE", "TAGS_TABLE", "ensure_label_tables"]
