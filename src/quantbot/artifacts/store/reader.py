"""Reading artifacts back at the current schema, whatever quantbot version wrote them."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq

from quantbot.artifacts.schema.artifact_types import ArtifactType
from quantbot.artifacts.schema.convert import conform, with_plain_run_id
from quantbot.artifacts.schema.migrations import upgrade
from quantbot.artifacts.schema.versions import ARTIFACT_SCHEMA_VERSION
from quantbot.artifacts.store.backends import Storage, open_storage
from quantbot.artifacts.store.runs import read_manifest
from quantbot.errors import ManifestError


def footer_version(meta: pq.FileMetaData) -> str:
    """The schema version a file was written at (files without one predate versioning: 1.0.0)."""
    return (meta.metadata or {}).get(b"schema_version", b"1.0.0").decode()


def decode_artifact(data: bytes, kind: ArtifactType, run_id: str) -> pa.Table:
    """Parse one artifact file, upgrade it to the current schema, validate it.

    Raises SchemaVersionError for a file from a newer quantbot and SchemaMismatchError
    (naming column, row and value) for data that does not fit the schema.
    """
    pf = pq.ParquetFile(pa.BufferReader(data))
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
