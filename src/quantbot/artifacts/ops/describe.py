"""Describing one run for people: manifest plus an artifact inventory with on-disk checks."""

from __future__ import annotations

import os
from typing import Any

from quantbot.artifacts.catalog.connection import CatalogRef, catalog_exists
from quantbot.artifacts.catalog.query import get_run
from quantbot.artifacts.schema.layout import SUCCESS_MARKER, validate_run_id
from quantbot.artifacts.store.backends import open_storage
from quantbot.artifacts.store.runs import find_run_directory, read_manifest
from quantbot.errors import CatalogError


def describe_run(run_id: str, db: CatalogRef, base_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Find the run through the catalog, else by scanning the base dir; read its manifest."""
    run_id = validate_run_id(run_id)
    found = None
    if catalog_exists(db):
        try:
            found = get_run(db, run_id)
        except CatalogError:
            found = None  # an empty or busy catalog: fall back to the folders
    run_dir = found[1] if found else find_run_directory(base_dir, run_id)
    storage = open_storage(run_dir)
    manifest = read_manifest(run_dir) if storage.exists(storage.root) else found[0]  # type: ignore[index]
    artifacts = []
    for name, entry in manifest.artifacts.items():
        path = storage.join(storage.root, *entry.path.split("/"))
        on_disk = len(storage.read_bytes(path)) if storage.exists(path) else None
        artifacts.append({"artifact": name, "rows": entry.rows, "bytes": entry.bytes,
                          "path": entry.path,
                          "on_disk": "ok" if on_disk == entry.bytes else
                          ("missing" if on_disk is None else f"size {on_disk}")})
    return {
        "manifest": manifest.to_dict(),
        "run_dir": run_dir,
        "cataloged": found is not None,
        "complete": storage.exists(storage.join(storage.root, SUCCESS_MARKER)),
        "artifacts": artifacts,
    }
