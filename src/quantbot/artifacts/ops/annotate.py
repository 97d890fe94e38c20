"""PLACEHOLDER until h/annot merges (helper "annot" owns this module): the annotation API of
COMMON.md writing straight into the catalog's label tables (no records in the base dir), so
that the web app can be built against the contract. Replaced wholesale at merge.
"""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from quantbot.artifacts.catalog.connection import DEFAULT_CATALOG, CatalogRef, open_catalog
from quantbot.artifacts.ops.lookup import locate_run, run_id_of


@dataclass(frozen=True)
class AnnotationRecord:
    record_id: str
    run_id: str
    action: str
    key: str | None
    value: str | None
    author: str
    created_at: str


def _apply(run_refs: Sequence[str], action: str, pairs: list[tuple[str | None, str | None]],
           base_dir: Any, catalog: CatalogRef, author: str | None) -> list[AnnotationRecord]:
    ids = [run_id_of(locate_run(r, catalog=catalog, base_dir=base_dir)) for r in run_refs]
    now = datetime.now(UTC).replace(tzinfo=None)
    out = []
    with open_catalog(catalog, read_only=False) as con:
        for rid in ids:
            con.execute("INSERT OR IGNORE INTO run_labels (run_id) VALUES (?)", [rid])
            for key, value in pairs:
                rec = AnnotationRecord(uuid.uuid4().hex, rid, action, key, value,
                                       author or getpass.getuser(), now.isoformat())
                con.execute("INSERT INTO run_annotations VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [rec.record_id, rid, action, key, value, rec.author, now])
                if action == "tag":
                    con.execute("INSERT OR REPLACE INTO run_tags VALUES (?, ?, ?)", [rid, key, value])
                elif action == "untag":
                    con.execute("DELETE FROM run_tags WHERE run_id = ? AND key = ?", [rid, key])
                elif action == "name":
                    con.execute("UPDATE run_labels SET name = ? WHERE run_id = ?", [value, rid])
                elif action == "note":
                    con.execute("UPDATE run_labels SET notes_count = notes_count + 1, last_note = ? "
                                "WHERE run_id = ?", [value, rid])
                elif action == "delete":
                    con.execute("UPDATE run_labels SET deleted_at = ? WHERE run_id = ?", [now, rid])
                elif action == "undelete":
                    con.execute("UPDATE run_labels SET deleted_at = NULL WHERE run_id = ?", [rid])
                out.append(rec)
    return out


def tag_runs(run_refs: Sequence[str], tags: Mapping[str, str], *, base_dir: Any = "runs",
             catalog: CatalogRef = DEFAULT_CATALOG, author: str | None = None) -> list[AnnotationRecord]:
    return _apply(run_refs, "tag", list(tags.items()), base_dir, catalog, author)


def untag_runs(run_refs: Sequence[str], keys: Sequence[str], *, base_dir: Any = "runs",
               catalog: CatalogRef = DEFAULT_CATALOG, author: str | None = None) -> list[AnnotationRecord]:
    return _apply(run_refs, "untag", [(k, None) for k in keys], base_dir, catalog, author)


def name_run(run_ref: str, name: str, *, base_dir: Any = "runs",
             catalog: CatalogRef = DEFAULT_CATALOG, author: str | None = None) -> AnnotationRecord:
    return _apply([run_ref], "name", [(None, name)], base_dir, catalog, author)[0]


def note_run(run_ref: str, text: str, *, base_dir: Any = "runs",
             catalog: CatalogRef = DEFAULT_CATALOG, author: str | None = None) -> AnnotationRecord:
    return _apply([run_ref], "note", [(None, text)], base_dir, catalog, author)[0]


def delete_runs(run_refs: Sequence[str], *, base_dir: Any = "runs",
                catalog: CatalogRef = DEFAULT_CATALOG, author: str | None = None) -> list[AnnotationRecord]:
    return _apply(run_refs, "delete", [(None, None)], base_dir, catalog, author)


def undelete_runs(run_refs: Sequence[str], *, base_dir: Any = "runs",
                  catalog: CatalogRef = DEFAULT_CATALOG, author: str | None = None) -> list[AnnotationRecord]:
    return _apply(run_refs, "undelete", [(None, None)], base_dir, catalog, author)


def run_annotations_state(db: CatalogRef, run_id: str) -> dict[str, Any]:
    with open_catalog(db, read_only=True) as con:
        label = con.execute("SELECT name, deleted_at FROM run_labels WHERE run_id = ?",
                            [run_id]).fetchall()
        tags = dict(con.execute("SELECT key, value FROM run_tags WHERE run_id = ?", [run_id]).fetchall())
        notes = con.execute("SELECT value, author, created_at FROM run_annotations WHERE run_id = ? "
                            "AND action = 'note' ORDER BY created_at", [run_id]).fetchall()
    name, deleted = label[0] if label else (None, None)
    return {"name": name, "tags": tags, "deleted_at": deleted.isoformat() if deleted else None,
            "notes": [{"text": t, "author": a, "created_at": c.isoformat()} for t, a, c in notes]}
