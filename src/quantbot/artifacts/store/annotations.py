"""Annotation records: names, tags, notes and (soft) deletions of runs, append-only.

Completed run folders are immutable, so what people say about a run lives beside them,
in the base dir, one small JSON object per record that is written once and never
rewritten::

    <base>/_annotations/<YYYY-MM>/<created_ms:013d>-<uuid4 hex>.json

Writers never read-modify-write anything: concurrent annotators (processes, machines
sharing an ``s3://`` base dir) each add their own objects and lose nothing. A record is
fully written or absent: a hidden temporary file renamed into place on local disk, one
PUT on object stores (``Storage.write_bytes``). The current state of a run is the fold of
its records in ``(created_at, record_id)`` order (:func:`fold_records`); the catalog keeps
a derived copy (``catalog/labels.py``) that a sync rebuilds from these files.
"""

from __future__ import annotations

import getpass
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from quantbot.artifacts.schema.layout import (
    is_month_partition,
    iso_utc,
    parse_iso,
    validate_run_id,
)
from quantbot.artifacts.store.backends import TMP_PREFIX, Storage
from quantbot.errors import QuantbotError

ANNOTATIONS_DIR = "_annotations"
ACTIONS = ("name", "tag", "untag", "note", "delete", "undelete")
RECORD_FORMAT = 1
MAX_RECORD_BYTES = 64 * 1024  # a note is at most 10,000 characters: 4 bytes each + fields
_FIELDS = ("record_id", "run_id", "action", "key", "value", "author", "created_at", "format")

_clock_lock = threading.Lock()
_last_ms = 0


@dataclass(frozen=True)
class AnnotationRecord:
    """One thing said about one run. ``created_at`` is ISO-8601 UTC with milliseconds;
    ``record_id`` (``<created_ms:013d>-<uuid4 hex>``) is also the object's file name."""

    record_id: str
    run_id: str
    action: str  # name | tag | untag | note | delete | undelete
    key: str | None  # the tag key (tag, untag); None otherwise
    value: str | None  # name text, tag value, note text; None for untag/delete/undelete
    author: str
    created_at: str

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "format": RECORD_FORMAT}

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True).encode()


@dataclass
class RunLabelState:
    """A run's current annotations: the fold of its records (see :func:`fold_records`)."""

    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    notes: list[AnnotationRecord] = field(default_factory=list)
    deleted: AnnotationRecord | None = None  # the delete in force, None when not deleted


def default_author() -> str:
    """``user@host`` of this process: who said it, as far as the machine knows."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _next_ms() -> int:
    """Epoch milliseconds, strictly increasing within this process, so two records one
    process writes in a row keep their order even within one clock tick."""
    global _last_ms
    with _clock_lock:
        _last_ms = max(int(time.time() * 1000), _last_ms + 1)
        return _last_ms


def new_record(run_id: str, action: str, key: str | None = None, value: str | None = None,
               *, author: str | None = None) -> AnnotationRecord:
    """A fresh record (not written yet) stamped now."""
    if action not in ACTIONS:
        raise ValueError(f"unknown annotation action {action!r}")
    ms = _next_ms()
    created = iso_utc(datetime.fromtimestamp(ms / 1000, UTC))
    return AnnotationRecord(f"{ms:013d}-{uuid.uuid4().hex}", validate_run_id(run_id), action,
                            key, value, author or default_author(), created)


def record_path(storage: Storage, record: AnnotationRecord) -> str:
    return storage.join(_month_folder(storage, record), f"{record.record_id}.json")


def _month_folder(storage: Storage, record: AnnotationRecord) -> str:
    return storage.join(storage.root, ANNOTATIONS_DIR, record.created_at[:7])


def write_records(storage: Storage, records: Iterable[AnnotationRecord],
                  durable: bool = True) -> None:
    """Write each record as its own object (atomic: complete or absent). ``durable``: each
    file is fsynced, and each month folder once after its renames, so a record that was
    reported written survives a power cut."""
    folders: set[str] = set()
    for record in records:
        folder = _month_folder(storage, record)
        if folder not in folders:
            storage.make_dirs(folder, durable)
            folders.add(folder)
        storage.write_bytes(record_path(storage, record), record.to_json(), durable)
    if durable:
        for folder in sorted(folders):
            storage.sync_dir(folder)


def list_record_files(storage: Storage) -> dict[str, str]:
    """record_id -> object path of every record file (temporary files left out); cheap:
    one listing per month, nothing read."""
    root = storage.join(storage.root, ANNOTATIONS_DIR)
    out: dict[str, str] = {}
    for month in storage.list_dir(root):
        if not is_month_partition(month):
            continue
        folder = storage.join(root, month)
        for name in storage.list_dir(folder):
            if name.endswith(".json") and not name.startswith(TMP_PREFIX):
                out[name[:-len(".json")]] = storage.join(folder, name)
    return out


def parse_record(raw: bytes, record_id: str) -> AnnotationRecord:
    """A record from its bytes; ValueError with the reason when it is not a valid one."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if data.get("format") != RECORD_FORMAT:
        raise ValueError(f"unsupported format {data.get('format')!r} (expected {RECORD_FORMAT})")
    missing = [f for f in _FIELDS if f not in data]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    if data["record_id"] != record_id:
        raise ValueError(f"record_id {data['record_id']!r} does not match its file name")
    if data["action"] not in ACTIONS:
        raise ValueError(f"unknown action {data['action']!r}")
    for name in ("key", "value"):
        if data[name] is not None and not isinstance(data[name], str):
            raise ValueError(f"{name} must be text or null")
    if not isinstance(data["author"], str) or not isinstance(data["created_at"], str):
        raise ValueError("author and created_at must be text")
    created = parse_iso(data["created_at"])  # ValueError when it is no timestamp
    if created.tzinfo is None:  # written by hand without an offset: UTC, like every field
        created = created.replace(tzinfo=UTC)
    return AnnotationRecord(data["record_id"], validate_run_id(data["run_id"]), data["action"],
                            data["key"], data["value"], data["author"], iso_utc(created))


def read_records(storage: Storage, paths: dict[str, str] | None = None
                 ) -> tuple[list[AnnotationRecord], list[tuple[str, str]]]:
    """The records (all, or those of ``paths``: record_id -> path) sorted by
    ``(created_at, record_id)``, and ``(uri, reason)`` of every file that is not a valid
    record: reported, never fatal (a stray file must not hide the others)."""
    paths = list_record_files(storage) if paths is None else paths
    records: list[AnnotationRecord] = []
    invalid: list[tuple[str, str]] = []
    for record_id, path in sorted(paths.items()):
        try:
            records.append(parse_record(storage.read_bytes(path, MAX_RECORD_BYTES), record_id))
        except FileNotFoundError:
            continue  # listed, then gone: nothing to apply
        except (ValueError, QuantbotError, OSError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            invalid.append((storage.uri(path), f"invalid annotation record: {reason}"))
    return sort_records(records), invalid


def sort_records(records: Iterable[AnnotationRecord]) -> list[AnnotationRecord]:
    """Oldest first; ``created_at`` is always ``iso_utc`` text, so text order is time order."""
    return sorted(records, key=lambda r: (r.created_at, r.record_id))


def fold_records(records: Iterable[AnnotationRecord]) -> dict[str, RunLabelState]:
    """run_id -> current state, applying the records in ``(created_at, record_id)`` order:
    the last name wins (an empty name clears it), a tag sets its key and an untag removes
    it, notes accumulate, and a run is deleted iff its last delete/undelete is a delete."""
    states: dict[str, RunLabelState] = {}
    for r in sort_records(records):
        s = states.setdefault(r.run_id, RunLabelState())
        if r.action == "name":
            s.name = r.value or None
        elif r.action == "tag" and r.key is not None:
            s.tags[r.key] = r.value or ""
        elif r.action == "untag" and r.key is not None:
            s.tags.pop(r.key, None)
        elif r.action == "note":
            s.notes.append(r)
        elif r.action == "delete":
            s.deleted = r
        elif r.action == "undelete":
            s.deleted = None
    return states


__all__ = ["ACTIONS", "ANNOTATIONS_DIR", "AnnotationRecord", "RunLabelState", "default_author",
           "fold_records", "list_record_files", "new_record", "parse_record", "read_records",
           "record_path", "sort_records", "write_records"]
