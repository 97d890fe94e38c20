"""Reading artifacts back at the current schema, whatever quantbot version wrote them."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from quantbot.artifacts.schema.artifact_types import ArtifactType
from quantbot.artifacts.schema.convert import conform, with_plain_run_id
from quantbot.artifacts.schema.migrations import upgrade
from quantbot.artifacts.schema.versions import ARTIFACT_SCHEMA_VERSION
from quantbot.artifacts.store.backends import Storage, open_storage
from quantbot.artifacts.store.runs import read_manifest
from quantbot.errors import LimitExceededError, ManifestError

# Limits checked from the Parquet footer before an artifact is decoded. The largest real
# artifacts (paths of 100k alerts: ~25 columns, ~60 MB decoded; an optimizer frontier of
# ~600 policies; features with a few dozen extra columns) stay far below them. Wide
# feature sets (embeddings: thousands of columns) fit: consolidation is linear in columns.
MAX_ARTIFACT_COLUMNS = 8_192
MAX_DECODED_BYTES = 1024 ** 3  # 1 GiB: what one artifact may take in memory once decoded
_FIXED_WIDTH_BOUND = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8}
_OFFSET_BYTES = 8  # per string value: Arrow's offsets (large_string at worst)


def _decoded_bound(meta: pq.FileMetaData) -> tuple[int, list[int]]:
    """An upper bound of the decoded size (bytes) read from the footer alone, and the
    dictionary-encoded string columns whose share of it is only a loose bound.

    A dictionary-encoded string column can expand far beyond its file size (2M copies of
    one 1 KB string fit in 250 KB), so its bound is rows x dictionary size."""
    total = 0
    loose: set[int] = set()
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        for j in range(rg.num_columns):
            col = rg.column(j)
            width = _FIXED_WIDTH_BOUND.get(col.physical_type)
            if width is not None:
                total += col.num_values * width
            elif col.has_dictionary_page:
                total += col.num_values * (col.total_uncompressed_size + _OFFSET_BYTES)
                loose.add(j)
            else:  # plain values carry their lengths: uncompressed size bounds the data
                total += col.total_uncompressed_size + col.num_values * _OFFSET_BYTES
    return total, sorted(loose)


def _decoded_exact(data: bytes, meta: pq.FileMetaData, loose: list[int], bound: int) -> int:
    """``bound`` with the loose columns' share replaced by their size once decoded, measured
    on the dictionary-encoded values (indices and dictionary: linear in the file)."""
    names = [meta.schema.column(j).path for j in loose]
    pf = pq.ParquetFile(pa.BufferReader(data), read_dictionary=names)
    total = bound
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        for j in loose:
            col = rg.column(j)
            total -= col.num_values * (col.total_uncompressed_size + _OFFSET_BYTES)
        table = pf.read_row_group(i, columns=names)
        for column in table.columns:
            for chunk in column.chunks:
                if not isinstance(chunk, pa.DictionaryArray):
                    total += chunk.nbytes
                    continue
                lengths = pc.binary_length(chunk.dictionary).fill_null(0).to_numpy()
                counts = np.bincount(chunk.indices.fill_null(0).to_numpy(), minlength=len(lengths))
                total += int(counts @ lengths) + len(chunk) * _OFFSET_BYTES
    return total


def check_artifact_limits(data: bytes, meta: pq.FileMetaData, where: str) -> None:
    """LimitExceededError when an artifact has too many columns or would decode to more
    than MAX_DECODED_BYTES; decided from the footer (and dictionaries) before decoding."""
    if meta.num_columns > MAX_ARTIFACT_COLUMNS:
        raise LimitExceededError(f"{where}: columns {meta.num_columns} > {MAX_ARTIFACT_COLUMNS}")
    bound, loose = _decoded_bound(meta)
    if bound > MAX_DECODED_BYTES and loose:
        bound = _decoded_exact(data, meta, loose, bound)
    if bound > MAX_DECODED_BYTES:
        raise LimitExceededError(f"{where}: decoded bytes {bound} > {MAX_DECODED_BYTES}")


def footer_version(meta: pq.FileMetaData) -> str:
    """The schema version a file was written at (files without one predate versioning: 1.0.0)."""
    return (meta.metadata or {}).get(b"schema_version", b"1.0.0").decode()


def decode_artifact(data: bytes, kind: ArtifactType, run_id: str) -> pa.Table:
    """Parse one artifact file, upgrade it to the current schema, validate it.

    Raises SchemaVersionError for a file from a newer quantbot and SchemaMismatchError
    (naming column, row and value) for data that does not fit the schema.
    """
    pf = pq.ParquetFile(pa.BufferReader(data))
    check_artifact_limits(data, pf.metadata, kind.value)
    version = footer_version(pf.metadata)
    table = upgrade(pf.read().replace_schema_metadata(None), kind, version)
    return conform(table, kind.spec, run_id)


def read_artifact(run_dir: str | os.PathLike[str] | Storage, artifact_type: str | ArtifactType) -> pa.Table:
    """One artifact of a run as a pyarrow Table at the current schema version.

    The bytes are checked against the manifest's sha256 first: a changed or truncated file
    is an error, never silently read.
    """
    import hashlib

    kind = ArtifactType.parse(artifact_type)
    manifest = read_manifest(run_dir)
    entry = manifest.artifacts.get(kind.value)
    if entry is None:
        have = ", ".join(sorted(manifest.artifacts)) or "none"
        raise ManifestError(f"run {manifest.run_id} has no {kind.value} artifact (it has: {have})")
    storage = open_storage(run_dir)
    data = storage.read_bytes(storage.join(storage.root, *entry.path.split("/")))
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise ManifestError(f"run {manifest.run_id}: {entry.path} does not match its sha256")
    table = with_plain_run_id(decode_artifact(data, kind, manifest.run_id))
    return table.replace_schema_metadata({"schema_version": ARTIFACT_SCHEMA_VERSION})
