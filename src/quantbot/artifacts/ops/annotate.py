"""Names, tags, notes and soft deletion of runs: the Python API behind ``quantbot backtest
tag/untag/name/note/delete/undelete/history``.

Each call checks every input and resolves every run first (nothing is written for a bad
one), writes one append-only record per change into the base dir
(``store/annotations.py``), then applies them to the catalog's label tables if the catalog
exists. A catalog that is busy or unwritable does not fail the call: the records are safe
in the base dir and the next ``catalog-sync`` applies them (a ``CatalogPendingWarning``
says so).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from quantbot.artifacts.catalog.connection import (
    DEFAULT_CATALOG,
    CatalogRef,
    catalog_exists,
    open_catalog,
)
from quantbot.artifacts.catalog.labels import apply_records, label_state
from quantbot.artifacts.catalog.schema import ensure_schema
from quantbot.artifacts.catalog.transaction import storage_errors, transaction
from quantbot.artifacts.ops.lookup import resolve_run_ids
from quantbot.artifacts.schema.layout import validate_run_id
from quantbot.artifacts.store.annotations import (
    AnnotationRecord,
    new_record,
    read_records,
    write_records,
)
from quantbot.artifacts.store.backends import Storage, open_storage
from quantbot.errors import AnnotationError, CatalogError

BaseDir = str | os.PathLike[str] | Storage
TAG_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_TAG_KEY = 200  # characters
MAX_VALUE = 1000  # characters: tag values and names
MAX_NOTE = 10_000  # characters


class CatalogPendingWarning(UserWarning):
    """Records were written but the catalog could not take them now (busy, unwritable)."""


def _refs(run_refs: str | Sequence[str]) -> list[str]:
    """A single ref is accepted as is (a str is a Sequence of characters, not of refs)."""
    refs = [run_refs] if isinstance(run_refs, str) else list(run_refs)
    if not refs:
        raise AnnotationError("no run given")
    return refs


def _check_text(what: str, text: object, limit: int) -> str:
    if not isinstance(text, str):
        raise AnnotationError(f"{what} must be text, got {type(text).__name__}")
    if len(text) > limit:
        raise AnnotationError(f"{what} is {len(text)} characters long: at most {limit} allowed")
    return text


def check_tag_key(key: object) -> str:
    if not isinstance(key, str) or not TAG_KEY_RE.match(key) or len(key) > MAX_TAG_KEY:
        raise AnnotationError(f"tag key {key!r}: use 1-{MAX_TAG_KEY} of the characters "
                              "A-Z a-z 0-9 _ . - (pattern [A-Za-z0-9_.-]+)")
    return key


def check_name(name: object) -> str:
    return _check_text("name", name, MAX_VALUE)


def _resolve(run_refs: Sequence[str], storage: Storage, catalog: CatalogRef | None,
             lock_timeout: float | None = None) -> list[str]:
    """Run ids in the order given, each once (unknown run, ambiguous prefix: one-line error)."""
    return list(dict.fromkeys(resolve_run_ids(list(run_refs), catalog=catalog,
                                              base_dir=storage, lock_timeout=lock_timeout)))


def _record(storage: Storage, catalog: CatalogRef | None, records: list[AnnotationRecord],
            lock_timeout: float | None = None) -> list[AnnotationRecord]:
    """Write the records, then apply them to the catalog if it exists (see module doc)."""
    write_records(storage, records)
    if catalog is None or not catalog_exists(catalog) or not records:
        return records
    try:
        with storage_errors(catalog), \
                open_catalog(catalog, read_only=False, lock_timeout=lock_timeout) as con:
            with transaction(con):
                ensure_schema(con)  # a catalog older than the label tables gets them
                apply_records(con, records)
    except CatalogError as err:
        warnings.warn(f"{len(records)} record(s) saved in {storage.uri(storage.root)}, but the "
                      f"catalog was not updated ({err}); the next catalog-sync applies them",
                      CatalogPendingWarning, stacklevel=3)
    return records


def tag_runs(run_refs: str | Sequence[str], tags: Mapping[str, str], *,
             base_dir: BaseDir = "runs", catalog: CatalogRef | None = DEFAULT_CATALOG,
             author: str | None = None, lock_timeout: float | None = None
             ) -> list[AnnotationRecord]:
    """Set tags ``key -> value`` on runs (one record per run and key; a key set again
    takes the new value)."""
    if not tags:
        raise AnnotationError("no tag given (expected key=value)")
    checked = {check_tag_key(k): _check_text(f"value of tag {k!r}", v, MAX_VALUE)
               for k, v in tags.items()}
    storage = open_storage(base_dir)
    ids = _resolve(_refs(run_refs), storage, catalog, lock_timeout)
    return _record(storage, catalog, [new_record(r, "tag", k, v, author=author)
                                      for r in ids for k, v in checked.items()], lock_timeout)


def untag_runs(run_refs: str | Sequence[str], keys: Sequence[str], *,
               base_dir: BaseDir = "runs", catalog: CatalogRef | None = DEFAULT_CATALOG,
               author: str | None = None, lock_timeout: float | None = None
               ) -> list[AnnotationRecord]:
    """Remove tags by key (a key the run does not have is recorded and changes nothing)."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    if not keys:
        raise AnnotationError("no tag key given")
    checked = [check_tag_key(k) for k in keys]
    storage = open_storage(base_dir)
    ids = _resolve(_refs(run_refs), storage, catalog, lock_timeout)
    return _record(storage, catalog, [new_record(r, "untag", k, author=author)
                                      for r in ids for k in checked], lock_timeout)


def name_run(run_ref: str, name: str, *, base_dir: BaseDir = "runs",
             catalog: CatalogRef | None = DEFAULT_CATALOG, author: str | None = None,
             lock_timeout: float | None = None) -> AnnotationRecord:
    """Give a run a name (the last one given wins; "" removes it)."""
    text = check_name(name)
    storage = open_storage(base_dir)
    (run_id,) = _resolve([run_ref], storage, catalog, lock_timeout)
    return _record(storage, catalog, [new_record(run_id, "name", None, text, author=author)],
                   lock_timeout)[0]


def name_new_run(storage: Storage, run_id: str, name: str, *, author: str | None = None,
                 durable: bool = True) -> None:
    """The name of a run being created (``--name``): its folder was just made, so there is
    nothing to look up; the catalog takes the record when the run is synced. ``durable``
    as the run's own files."""
    write_records(storage, [new_record(run_id, "name", None, check_name(name), author=author)],
                  durable)


def note_run(run_ref: str, text: str, *, base_dir: BaseDir = "runs",
             catalog: CatalogRef | None = DEFAULT_CATALOG, author: str | None = None,
             lock_timeout: float | None = None) -> AnnotationRecord:
    """Add a note to a run (notes accumulate; none is ever replaced)."""
    body = _check_text("note", text, MAX_NOTE)
    if not body.strip():
        raise AnnotationError("note is empty")
    storage = open_storage(base_dir)
    (run_id,) = _resolve([run_ref], storage, catalog, lock_timeout)
    return _record(storage, catalog, [new_record(run_id, "note", None, body, author=author)],
                   lock_timeout)[0]


def delete_runs(run_refs: str | Sequence[str], *, base_dir: BaseDir = "runs",
                catalog: CatalogRef | None = DEFAULT_CATALOG, author: str | None = None,
                lock_timeout: float | None = None) -> list[AnnotationRecord]:
    """Soft-delete runs: hidden from listings and views, kept on disk until
    ``gc --deleted`` removes them; ``undelete_runs`` brings them back."""
    storage = open_storage(base_dir)
    ids = _resolve(_refs(run_refs), storage, catalog, lock_timeout)
    return _record(storage, catalog, [new_record(r, "delete", author=author) for r in ids],
                   lock_timeout)


def undelete_runs(run_refs: str | Sequence[str], *, base_dir: BaseDir = "runs",
                  catalog: CatalogRef | None = DEFAULT_CATALOG, author: str | None = None,
                  lock_timeout: float | None = None) -> list[AnnotationRecord]:
    """Undo soft deletion (recorded for a run that is not deleted too: harmless)."""
    storage = open_storage(base_dir)
    ids = _resolve(_refs(run_refs), storage, catalog, lock_timeout)
    return _record(storage, catalog, [new_record(r, "undelete", author=author) for r in ids],
                   lock_timeout)


def annotation_history(run_ref: str, *, base_dir: BaseDir = "runs",
                       catalog: CatalogRef | None = DEFAULT_CATALOG) -> list[AnnotationRecord]:
    """Every record of one run, oldest first, read from the base dir (the source of truth,
    so records the catalog has not applied yet are included)."""
    storage = open_storage(base_dir)
    (run_id,) = _resolve([run_ref], storage, catalog)
    records, _ = read_records(storage)
    return [r for r in records if r.run_id == run_id]


def run_annotations_state(db: CatalogRef, run_id: str) -> dict[str, Any]:
    """``{"name", "tags": {key: value}, "notes": [{"text", "author", "created_at"}],
    "deleted_at"}`` of one run as the catalog has it (empty values for a run never
    annotated)."""
    run_id = validate_run_id(run_id)
    with open_catalog(db, read_only=True) as con:
        return label_state(con, run_id)


__all__ = ["AnnotationRecord", "CatalogPendingWarning", "annotation_history", "check_name",
           "check_tag_key", "delete_runs", "name_new_run", "name_run", "note_run",
           "run_annotations_state", "tag_runs", "undelete_runs", "untag_runs"]
