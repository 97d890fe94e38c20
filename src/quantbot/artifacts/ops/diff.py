"""Exact comparison of one artifact in two runs: does a rerun reproduce the original?

Both sides are read through :func:`~quantbot.artifacts.store.reader.read_artifact`, so the
bytes are sha256-checked, an older schema version is migrated first, and any storage
(local or ``s3://``) works. Rows are compared as sorted multisets: ``run_id`` and
wall-clock columns (``errors.timestamp``) are left out, NaN equals NaN. (The tolerant,
per-call outcome comparison of two different runs is :mod:`quantbot.analysis.compare`.)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from quantbot.artifacts.schema.manifest import RunManifest
from quantbot.artifacts.store.backends import Storage
from quantbot.artifacts.store.reader import read_artifact

#: Columns left out per artifact type (besides run_id): wall-clock times.
VOLATILE_COLUMNS: dict[str, tuple[str, ...]] = {"errors": ("timestamp",)}

RunRef = str | os.PathLike[str] | Storage


@dataclass(frozen=True)
class ArtifactComparison:
    """One artifact type of two runs: identical rows, or which columns differ."""

    artifact: str
    identical: bool
    rows_original: int | None  # None: the run has no such artifact
    rows_rerun: int | None
    differing_columns: list[str] = field(default_factory=list)


def compare_artifacts(run_a: RunRef, manifest_a: RunManifest, run_b: RunRef,
                      manifest_b: RunManifest) -> list[ArtifactComparison]:
    """Every artifact type either run has, compared row for row (see the module doc)."""
    names = sorted(set(manifest_a.artifacts) | set(manifest_b.artifacts))
    return [compare_artifact(name, run_a, manifest_a, run_b, manifest_b) for name in names]


def compare_artifact(name: str, run_a: RunRef, manifest_a: RunManifest, run_b: RunRef,
                     manifest_b: RunManifest) -> ArtifactComparison:
    entry_a, entry_b = manifest_a.artifacts.get(name), manifest_b.artifacts.get(name)
    if entry_a is None or entry_b is None:
        return ArtifactComparison(name, False, entry_a.rows if entry_a else None,
                                  entry_b.rows if entry_b else None)
    a, b = _comparable(name, run_a), _comparable(name, run_b)
    if a.schema != b.schema:
        cols = sorted(set(a.column_names) ^ set(b.column_names)) or ["(column types)"]
        return ArtifactComparison(name, False, a.num_rows, b.num_rows, cols)
    if a.num_rows != b.num_rows:
        return ArtifactComparison(name, False, a.num_rows, b.num_rows)
    differing = [] if a.equals(b) else [c for c in a.column_names
                                        if _values(a.column(c)) != _values(b.column(c))]
    return ArtifactComparison(name, not differing, a.num_rows, b.num_rows, differing)


def _comparable(name: str, run: RunRef) -> pa.Table:
    import pyarrow.compute as pc

    table = read_artifact(run, name)
    drop = [c for c in ("run_id", *VOLATILE_COLUMNS.get(name, ())) if c in table.column_names]
    table = table.drop_columns(drop).replace_schema_metadata(None)
    if table.num_rows and table.num_columns:
        sortable = [c for c in table.column_names
                    if not pa.types.is_nested(table.schema.field(c).type)]
        order = pc.sort_indices(table, sort_keys=[(c, "ascending") for c in sortable])
        table = table.take(order)
    return table.combine_chunks()


def _values(column: pa.ChunkedArray) -> list[Any]:
    """Python values with NaN made comparable (NaN != NaN otherwise)."""
    return ["NaN" if isinstance(v, float) and math.isnan(v) else v for v in column.to_pylist()]


__all__ = ["VOLATILE_COLUMNS", "ArtifactComparison", "compare_artifact", "compare_artifacts"]
