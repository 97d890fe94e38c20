"""Describing one run for people: manifest plus an artifact inventory with on-disk checks."""

from __future__ import annotations

import os
from typing import Any

from quantbot._compat import legacy_arguments
from quantbot.artifacts.catalog.connection import CatalogRef, catalog_exists
from quantbot.artifacts.catalog.query import get_run
from quantbot.artifacts.ops.lookup import locate_run, run_id_of, run_uri
from quantbot.artifacts.schema.layout import SUCCESS_MARKER
from quantbot.artifacts.store.backends import Storage
from quantbot.artifacts.store.runs import read_manifest
from quantbot.errors import CatalogError


@legacy_arguments("run_id", "catalog", "base_dir")
def describe_run(run_id: str, *, catalog: CatalogRef | None = None,
                 base_dir: str | os.PathLike[str] | Storage = "runs") -> dict[str, Any]:
    """Find the run (a UUID or an unambiguous prefix) through the catalog, else by scanning
    the base dir; read its manifest (the catalog's copy when the folder is gone)."""
    run = locate_run(run_id, catalog=catalog, base_dir=base_dir)
    manifest = read_manifest(run) if run.exists(run.root) else None
    found = None
    if catalog is not None and catalog_exists(catalog):
        try:
            found = get_run(catalog, manifest.run_id if manifest else run_id_of(run))
        except CatalogError:
            found = None  # an empty or busy catalog: the folder is what we have
    if manifest is None:
        assert found is not None  # locate_run found it in the catalog, the folder is gone
        manifest = found[0]
    artifacts = []
    for name, entry in manifest.artifacts.items():
        path = run.join(run.root, *entry.path.split("/"))
        on_disk = len(run.read_bytes(path)) if run.exists(path) else None
        artifacts.append({"artifact": name, "rows": entry.rows, "bytes": entry.bytes,
                          "path": entry.path,
                          "on_disk": "ok" if on_disk == entry.bytes else
                          ("missing" if on_disk is None else f"size {on_disk}")})
    return {
        "manifest": manifest.to_dict(),
        "run_dir": run_uri(run) if found is None else found[1],
        "cataloged": found is not None,
        "complete": run.exists(run.join(run.root, SUCCESS_MARKER)),
        "artifacts": artifacts,
    }
