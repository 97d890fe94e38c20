"""Validating one run folder against what is on disk.

Nothing is trusted from disk: the manifest is validated, every artifact's bytes are
checked against the manifest's size and sha256, and its footer (artifact type, rows,
schema) is checked. A file whose footer proves it is exactly what the writer writes can be
bulk-loaded by DuckDB from its path; anything else is parsed and checked column by column,
which names the offending value. The catalog's scan and ``verify`` both use this module.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from quantbot.artifacts.schema.arrow_schemas import ArtifactType
from quantbot.artifacts.schema.convert import with_plain_run_id
from quantbot.artifacts.schema.layout import MANIFEST_NAME, SUCCESS_MARKER
from quantbot.artifacts.schema.manifest import RunManifest, parse_manifest
from quantbot.artifacts.schema.migrations import check_supported, needs_upgrade
from quantbot.artifacts.store.backends import Storage
from quantbot.artifacts.store.reader import decode_artifact, footer_version
from quantbot.artifacts.store.runs import RunLocation
from quantbot.errors import QuantbotError, StorageError


class InvalidRunError(QuantbotError):
    """A run directory whose manifest or artifacts do not check out."""


@dataclass
class ScannedRun:
    """A run that passed validation.

    Each artifact is either in ``files`` (verified from its bytes and footer; DuckDB loads
    it from that local path) or in ``tables`` (parsed here: non-local storage, or a file
    that needed the full column-by-column check).
    """

    location: RunLocation
    manifest: RunManifest
    manifest_path: str
    uri: str  # the run folder as the catalog records it (absolute path or URI)
    tables: dict[ArtifactType, pa.Table] = field(default_factory=dict)
    files: dict[ArtifactType, str] = field(default_factory=dict)

    @property
    def manifest_uri(self) -> str:
        return f"{self.uri}/{MANIFEST_NAME}"


def _footer_is_exact(meta: pq.FileMetaData, kind: ArtifactType, run_id: str) -> bool:
    """True when the footer proves the file is exactly what the writer writes.

    Schema equality includes nullability (Parquet REQUIRED columns cannot hold nulls);
    run_id statistics with min == max == the run's id prove every row carries it.
    """
    spec = kind.spec
    if not meta.schema.to_arrow_schema().remove_metadata().equals(spec.schema):
        return False
    if not spec.has_run_id or meta.num_rows == 0:
        return True
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(0).statistics
        if stats is None or not stats.has_min_max or stats.min != run_id or stats.max != run_id:
            return False
    return True


def check_artifact(storage: Storage, run: ScannedRun, name: str, parse: bool) -> None:
    manifest = run.manifest
    entry = manifest.artifacts[name]
    kind = ArtifactType.parse(name)
    path = storage.join(run.location.path, *entry.path.split("/"))
    try:
        data = storage.read_bytes(path)
    except FileNotFoundError:
        raise InvalidRunError(f"artifact {name}: file {entry.path} is missing") from None
    except StorageError as err:  # e.g. a read the object store did not answer in time
        raise InvalidRunError(f"artifact {name}: {err}") from None
    if len(data) != entry.bytes:
        raise InvalidRunError(
            f"artifact {name}: {len(data)} bytes on disk, manifest says {entry.bytes}")
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise InvalidRunError(f"artifact {name}: sha256 does not match the manifest")
    try:
        meta = pq.read_metadata(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as err:
        raise InvalidRunError(f"artifact {name}: unreadable Parquet ({err})") from None
    kv = meta.metadata or {}
    if kv.get(b"artifact_type", name.encode()) != name.encode():
        raise InvalidRunError(f"artifact {name}: file says it is {kv[b'artifact_type'].decode()}")
    if meta.num_rows != entry.rows:
        raise InvalidRunError(f"artifact {name}: {meta.num_rows} rows, manifest says {entry.rows}")
    version = footer_version(meta)
    try:
        check_supported(version, f"artifact {name}")
    except QuantbotError as err:
        raise InvalidRunError(str(err)) from None
    local = storage.local_path(path)
    if (not parse and local is not None and not needs_upgrade(version)
            and _footer_is_exact(meta, kind, manifest.run_id)):
        run.files[kind] = local
        return
    try:  # upgrades older files; names the offending column, row and value
        table = decode_artifact(data, kind, manifest.run_id)
    except (pa.ArrowInvalid, OSError) as err:
        raise InvalidRunError(f"artifact {name}: unreadable Parquet ({err})") from None
    except QuantbotError as err:
        raise InvalidRunError(f"artifact {name}: {err}") from None
    if kind.spec.has_run_id:  # plain strings: DuckDB scans them faster than dictionaries
        table = with_plain_run_id(table)
    else:
        table = table.add_column(0, "run_id", pa.repeat(pa.scalar(manifest.run_id), table.num_rows))
    run.tables[kind] = table


def load_run(storage: Storage, loc: RunLocation, with_data: bool = True,
             parse: bool = True) -> ScannedRun:
    """Validate one run directory (InvalidRunError with the reason if it does not check out).

    ``with_data`` checks every artifact (size, sha256, footer); ``parse`` also loads each
    into ``tables`` (otherwise files the footer proves exact are only listed in ``files``).
    """
    manifest_path = storage.join(loc.path, MANIFEST_NAME)
    try:
        manifest = parse_manifest(storage.read_bytes(manifest_path), MANIFEST_NAME)
    except FileNotFoundError:
        raise InvalidRunError(f"{MANIFEST_NAME} is missing") from None
    except QuantbotError as err:
        raise InvalidRunError(str(err)) from None
    if manifest.run_id != loc.run_id:
        raise InvalidRunError(f"manifest run_id {manifest.run_id} does not match the folder name")
    run = ScannedRun(loc, manifest, manifest_path,
                     storage.local_path(loc.path) or storage.uri(loc.path))
    if with_data:
        for name in manifest.artifacts:
            check_artifact(storage, run, name, parse)
    return run


def classify(storage: Storage, loc: RunLocation) -> str:
    """'completed' (marker present), 'failed' (manifest says so), 'incomplete' or 'invalid'.

    A store that does not answer is InvalidRunError with its reason (that run only).
    """
    try:
        if storage.exists(storage.join(loc.path, SUCCESS_MARKER)):
            return "completed"
        raw = storage.read_bytes(storage.join(loc.path, MANIFEST_NAME))
    except FileNotFoundError:
        return "incomplete"  # a writer may be creating it right now
    except StorageError as err:
        raise InvalidRunError(str(err)) from None
    try:
        status = parse_manifest(raw).status
    except QuantbotError:
        return "invalid"
    return "failed" if status == "failed" else "incomplete"
