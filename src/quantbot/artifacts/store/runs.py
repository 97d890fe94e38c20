"""Reading run directories back: manifests, completion, discovery under a base dir."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from quantbot.artifacts.schema.layout import (
    MANIFEST_NAME,
    RUN_DIR_PREFIX,
    SUCCESS_MARKER,
    is_month_partition,
    run_id_from_dir_name,
    validate_run_id,
)
from quantbot.artifacts.schema.manifest import MAX_MANIFEST_BYTES, RunManifest, parse_manifest
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
        raw = storage.read_bytes(path, MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise ManifestError(f"{path}: missing (run directory incomplete or not a run)") from None
    return parse_manifest(raw, path)


def is_complete(run_dir: str | os.PathLike[str] | Storage) -> bool:
    """A run is complete iff its ``_SUCCESS`` marker exists."""
    storage = open_storage(run_dir)
    return storage.exists(storage.join(storage.root, SUCCESS_MARKER))


def is_real_folder(storage: Storage, path: str) -> bool:
    """True for a folder that is not a symbolic link (object-store prefixes always are)."""
    local = storage.local_path(path)
    if local is None:
        return True
    try:
        return stat.S_ISDIR(os.lstat(local).st_mode)
    except FileNotFoundError:
        return False


def iter_run_locations(storage: Storage, include_unsafe: bool = False) -> list[RunLocation]:
    """Every ``YYYY-MM/run_id=<uuid>`` folder under the storage root, oldest month first.

    A month or run "folder" that is a symbolic link or a file is left out (gc and archive
    never follow or touch one) unless ``include_unsafe``: verify lists them to report them.
    """
    out: list[RunLocation] = []
    for month in sorted(storage.list_dir(storage.root)):
        if not is_month_partition(month):
            continue
        month_dir = storage.join(storage.root, month)
        month_ok = include_unsafe or is_real_folder(storage, month_dir)
        for name in sorted(storage.list_dir(month_dir) if month_ok else []):
            run_id = run_id_from_dir_name(name)
            path = storage.join(month_dir, name)
            if run_id is not None and (include_unsafe or is_real_folder(storage, path)):
                out.append(RunLocation(run_id, month, path))
    return out


def list_run_folders(storage: Storage) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Every ``run_id=<name>`` folder, one listing per month: (name suffix -> its month,
    name suffix -> every month holding it, for names found in more than one month).

    Kept to plain string work done by builtins: at 100,000 runs, a path join or an object
    per entry costs more than the listing itself.
    """
    found: dict[str, str] = {}
    copies: dict[str, list[str]] = {}
    prefix = len(RUN_DIR_PREFIX)
    for month in sorted(storage.list_dir(storage.root)):
        if not is_month_partition(month):
            continue
        names = [n[prefix:] for n in storage.list_dir(storage.join(storage.root, month))
                 if n.startswith(RUN_DIR_PREFIX)]
        for name in found.keys() & names:  # seen in an earlier month
            copies.setdefault(name, [found[name]]).append(month)
        found.update(dict.fromkeys(names, month))
    return found, copies


def copy_paths(storage: Storage, copies: dict[str, list[str]]) -> dict[str, list[str]]:
    """Run id -> its folders, from the months ``list_run_folders`` found it in."""
    return {name: [storage.join(storage.root, m, RUN_DIR_PREFIX + name) for m in months]
            for name, months in copies.items()}


def run_id_copies(storage: Storage) -> dict[str, list[str]]:
    """Run id -> its folders, for every id found in more than one month partition (one
    listing per month: cheap next to validating even one run)."""
    return copy_paths(storage, list_run_folders(storage)[1])


def duplicate_reason(run_id: str, paths: list[str]) -> str:
    """Why a run id found in several months is refused (every copy named)."""
    return f"run id {run_id} is in more than one month: {', '.join(paths)}"


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
