"""Removing runs from the catalog (after archiving them): the inverse of registration.

The catalog is a cache, so this never touches run directories. All rows of the given runs
go in one transaction: the index tables and every consolidated ``artifact_<type>`` table,
so no query ever sees a run half removed. The annotation tables (names, tags, notes,
deletions) are left alone: their records stay in the base dir and describe the run still.
"""

from __future__ import annotations

from collections.abc import Iterable

from quantbot.artifacts.catalog.connection import CatalogRef, catalog_exists, open_catalog
from quantbot.artifacts.catalog.run_index import FIELDS_TABLE, METRICS_TABLE
from quantbot.artifacts.catalog.schema import (
    ARTIFACTS_TABLE,
    RUNS_TABLE,
    data_table,
    ensure_schema,
)
from quantbot.artifacts.catalog.transaction import storage_errors, transaction
from quantbot.artifacts.schema.artifact_types import ArtifactType
from quantbot.artifacts.schema.layout import validate_run_id


def unregister_runs(db: CatalogRef, run_ids: Iterable[str],
                    lock_timeout: float | None = None) -> int:
    """Delete ``run_ids`` from the catalog in one transaction; returns how many were cataloged.

    Unknown ids are ignored (removing twice is a no-op); a missing catalog file removes nothing.
    """
    ids = sorted({validate_run_id(r) for r in run_ids})
    if not ids or not catalog_exists(db):
        return 0
    with storage_errors(db), open_catalog(db, read_only=False, lock_timeout=lock_timeout) as con:
        ensure_schema(con)
        with transaction(con):
            ((removed,),) = con.execute(  # read to the end: DuckDB 2 keeps open results
                f"SELECT count(*) FROM {RUNS_TABLE} WHERE run_id IN (SELECT unnest(?))",
                [ids]).fetchall()
            for table in (RUNS_TABLE, ARTIFACTS_TABLE, FIELDS_TABLE, METRICS_TABLE,
                          *(data_table(t) for t in ArtifactType)):
                con.execute(f"DELETE FROM {table} WHERE run_id IN (SELECT unnest(?))", [ids])
    return int(removed)


__all__ = ["unregister_runs"]
