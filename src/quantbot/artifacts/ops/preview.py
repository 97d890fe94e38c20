"""One artifact of one run for people and programs: a page of rows, the file as stored, CSV.

What the web app's artifact routes serve, as functions a notebook can call too. The file
served is always the one the catalog lists for the run (its path comes from the catalog,
checked to stay inside the run folder), never a path taken from a request.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import duckdb

from quantbot.artifacts.catalog.connection import CatalogRef, open_catalog
from quantbot.artifacts.catalog.schema import ARTIFACTS_TABLE
from quantbot.artifacts.ops.lookup import run_id_of
from quantbot.artifacts.schema.artifact_types import ArtifactType
from quantbot.artifacts.store.backends import Storage
from quantbot.artifacts.store.reader import read_artifact
from quantbot.errors import CatalogError, InvalidArgumentError, RunNotFoundError, UnsafeFileError

if TYPE_CHECKING:
    import pyarrow as pa

#: The most rows one page returns (a page is for reading, CSV/Parquet are for everything).
MAX_PAGE_ROWS = 1_000
CSV_BATCH_ROWS = 10_000


@dataclass(frozen=True)
class CatalogedArtifact:
    """One artifact file as the catalog lists it (path inside the run folder's storage)."""

    run_id: str
    artifact_type: str
    path: str          # storage path of the file (inside the run folder)
    rows: int
    bytes: int
    sha256: str


def cataloged_artifact(catalog: CatalogRef, run: Storage, artifact_type: str | ArtifactType,
                       *, lock_timeout: float | None = None) -> CatalogedArtifact:
    """The catalog's entry for one artifact of the run folder ``run``.

    RunNotFoundError when the catalog does not list it; UnsafeFileError when the listed
    path would leave the run folder (a tampered catalog or manifest).
    """
    kind = ArtifactType.parse(artifact_type)
    run_id = run_id_of(run)
    try:
        with open_catalog(catalog, read_only=True, lock_timeout=lock_timeout) as con:
            rows = con.execute(f"SELECT artifact_path, rows, bytes, sha256 FROM {ARTIFACTS_TABLE} "
                               "WHERE run_id = ? AND artifact_type = ?",
                               [run_id, kind.value]).fetchall()
    except duckdb.CatalogException:
        raise CatalogError("catalog has no tables yet (run `quantbot backtest catalog-sync`)") from None
    if not rows:
        raise RunNotFoundError(f"run {run_id} has no cataloged {kind.value} artifact")
    rel, n_rows, n_bytes, sha = rows[0]
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or any(p in ("..", ".", "") for p in parts) \
            or any("\\" in p for p in parts):
        raise UnsafeFileError(f"run {run_id}: cataloged {kind.value} path {rel!r} leaves the run folder")
    return CatalogedArtifact(run_id, kind.value, run.join(run.root, *parts), int(n_rows),
                             int(n_bytes), sha)


def artifact_bytes(catalog: CatalogRef, run: Storage, artifact_type: str | ArtifactType,
                   *, lock_timeout: float | None = None) -> bytes:
    """The Parquet file exactly as stored (a regular file only; no link is followed)."""
    entry = cataloged_artifact(catalog, run, artifact_type, lock_timeout=lock_timeout)
    return run.read_bytes(entry.path)


def _check_page(limit: int, offset: int) -> None:
    if not 0 <= limit <= MAX_PAGE_ROWS:
        raise InvalidArgumentError(f"invalid limit {limit}: must be 0..{MAX_PAGE_ROWS}")
    if offset < 0:
        raise InvalidArgumentError(f"invalid offset {offset}: must be >= 0")


def artifact_page(run: Storage, artifact_type: str | ArtifactType, *, limit: int = 50,
                  offset: int = 0) -> dict[str, Any]:
    """Rows ``offset .. offset+limit`` of one artifact at the current schema (sha256-checked):
    ``{"columns": [...], "rows": [[...], ...], "total": N, "offset", "limit"}``; values are
    Python objects (datetimes, lists), one list per row in column order."""
    _check_page(limit, offset)
    table = read_artifact(run, artifact_type)
    page = table.slice(offset, limit)
    columns = page.column_names
    data = [page.column(c).to_pylist() for c in columns]
    return {"columns": columns, "rows": [list(r) for r in zip(*data)] if data else [],
            "total": table.num_rows, "offset": offset, "limit": limit}


def _plain_columns(table: pa.Table) -> pa.Table:
    """Nested columns (lists, structs) as their JSON text: CSV cells hold scalars only."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if pa.types.is_nested(field.type):
            text = [None if v is None else json.dumps(v, default=str)
                    for v in table.column(i).to_pylist()]
            table = table.set_column(i, field.name, pa.array(text, pa.string()))
    return table


def artifact_csv(catalog: CatalogRef, run: Storage, artifact_type: str | ArtifactType, *,
                 lock_timeout: float | None = None) -> Iterator[bytes]:
    """A cataloged artifact as CSV at the current schema (header first), in chunks of
    CSV_BATCH_ROWS rows, for streaming; the checks happen before the first chunk."""
    cataloged_artifact(catalog, run, artifact_type, lock_timeout=lock_timeout)
    return table_csv(read_artifact(run, artifact_type))


def table_csv(table: pa.Table) -> Iterator[bytes]:
    """Any table as CSV (header first; nested values as JSON text), CSV_BATCH_ROWS rows a
    chunk: artifacts, and SQL results too."""
    import pyarrow.csv as pacsv

    for start in range(0, max(table.num_rows, 1), CSV_BATCH_ROWS):
        buf = io.BytesIO()
        chunk = _plain_columns(table.slice(start, CSV_BATCH_ROWS))
        pacsv.write_csv(chunk, buf, pacsv.WriteOptions(include_header=start == 0))
        yield buf.getvalue()


__all__ = ["MAX_PAGE_ROWS", "CatalogedArtifact", "artifact_bytes", "artifact_csv",
           "artifact_page", "cataloged_artifact", "table_csv"]
