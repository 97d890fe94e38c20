"""Reading run directories back: manifests, completion, discovery under a base dir."""

from __future__ import annotations

import os
from dataclasses import dataclass

from quantbot.artifacts.schema.layout import (
    MANIFEST_NAME,
    SUCCESS_MARKER,
    is_month_partition,
    run_id_from_dir_name,
    validate_run_id,
)
from quantbot.artifacts.schema.manifest import RunManifest, parse_manifest
from quantbot.artifacts.store.backends import Storage, open_storage
from quantbot.errors import ManifestError, RunNotFoundError


@dataclass(frozen=True)
class RunLocation:
    """Where a run lives: its id, month partition and folder path."""

    run_id: str
    month: str
    path: str


def read_manifest(run_dir: str | os.PathLike[str] | Storage) -> RunManifest:
    """The validated manifest of a run directory (ManifestError if missing or invalid)."""
    storage = open_storage(run_dir)
    path = storage.join(storage.root, MANIFEST_NAME)
    try:
        raw = storage.read_bytes(path)
    except FileNotFoundError:
        raise ManifestError(f"{path}: missing (run directory incomplete or not a run)") from None
    return parse_manifest(raw, path)


def is_complete(run_dir: str | os.PathLike[str] | Storage) -> bool:
    """A run is complete iff its ``_SUCCESS`` marker exists."""
    storage = open_storage(run_dir)
    return storage.exists(storage.join(storage.root, SUCCESS_MARKER))


def iter_run_locations(storage: Storage) -> list[RunLocation]:
    """Every ``YYYY-MM/run_id=<uuid>`` folder under the storage root, oldest month first."""
    out: list[RunLocation] = []
    for month in sorted(storage.list_dir(storage.root)):
        if not is_month_partition(month):
            continue
        month_dir = storage.join(storage.root, month)
        for name in sorted(storage.list_dir(month_dir)):
            run_id = run_id_from_dir_name(name)
            if run_id is not None:
                out.append(RunLocation(run_id, month, storage.join(month_dir, name)))
    return out


def list_run_directories(base_dir: str | os.PathLike[str] = "runs") -> list[str]:
    """Paths of all run directories under ``base_dir`` (complete or not)."""
    storage = open_storage(base_dir)
    return [storage.uri(loc.path) for loc in iter_run_locations(storage)]


def find_run_directory(base_dir: str | os.PathLike[str], run_id: str) -> str:
    """The folder of ``run_id`` under ``base_dir``, found by scanning the month partitions."""
    run_id = validate_run_id(run_id)
    storage = open_storage(base_dir)
    for month in sorted(storage.list_dir(storage.root), reverse=True):
        if is_month_partition(month):
            path = storage.join(storage.root, month, f"run_id={run_id}")
            if storage.exists(path):
                return storage.uri(path)
    raise RunNotFoundError(f"run {run_id} not found under {storage.root}")
