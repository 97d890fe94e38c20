"""One handle per store: a base dir, its storage options and a catalog, configured once.

``open_store("s3://bucket/runs", catalog="cat.duckdb", s3_endpoint=...)`` returns a
:class:`Store`; everything it does (create, sync, query, find, read, verify, gc) goes
through the same configured :class:`~quantbot.artifacts.store.backends.Storage` object, so
an endpoint given once is never lost on the way and never read from the process
environment. ``store.run(ref)`` returns a :class:`RunHandle` for one run. The free
functions of :mod:`quantbot.artifacts` remain; these methods are thin calls to them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from quantbot.artifacts.catalog.connection import DEFAULT_CATALOG, CatalogRef
from quantbot.artifacts.schema.artifact_types import ArtifactType
from quantbot.artifacts.schema.layout import SUCCESS_MARKER
from quantbot.artifacts.store.backends import Storage, open_storage
from quantbot.errors import ManifestError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pyarrow as pa

    from quantbot.artifacts.catalog.listing import RunListing
    from quantbot.artifacts.catalog.sync import SyncReport
    from quantbot.artifacts.ops.gc import DeletedRun, StaleRun
    from quantbot.artifacts.ops.verify import VerifyReport
    from quantbot.artifacts.schema.manifest import RunManifest
    from quantbot.artifacts.store.annotations import AnnotationRecord
    from quantbot.artifacts.store.writer import RunDirectory


@dataclass(frozen=True)
class RunHandle:
    """One run folder, found once, read through its store's configured storage."""

    storage: Storage  # rooted at the run's folder

    @property
    def run_id(self) -> str:
        from quantbot.artifacts.ops.lookup import run_id_of

        return run_id_of(self.storage)

    @property
    def uri(self) -> str:
        """The run folder as a path or URI (what the catalog records)."""
        return self.storage.local_path(self.storage.root) or self.storage.uri(self.storage.root)

    @property
    def manifest(self) -> RunManifest:
        """The run's validated ``run.json``, read now (a running run's changes are seen)."""
        from quantbot.artifacts.store.runs import read_manifest

        return read_manifest(self.storage)

    @property
    def is_complete(self) -> bool:
        return self.storage.exists(self.storage.join(self.storage.root, SUCCESS_MARKER))

    def read(self, artifact_type: str | ArtifactType) -> pa.Table:
        """One artifact as a pyarrow Table at the current schema (sha256-checked, migrated)."""
        from quantbot.artifacts.store.reader import read_artifact

        return read_artifact(self.storage, artifact_type)

    def artifact_path(self, artifact_type: str | ArtifactType) -> str:
        """Where one artifact's file is (a local path or a URI)."""
        kind = ArtifactType.parse(artifact_type)
        manifest = self.manifest
        entry = manifest.artifacts.get(kind.value)
        if entry is None:
            have = ", ".join(sorted(manifest.artifacts)) or "none"
            raise ManifestError(f"run {manifest.run_id} has no {kind.value} artifact (it has: {have})")
        path = self.storage.join(self.storage.root, *entry.path.split("/"))
        return self.storage.local_path(path) or self.storage.uri(path)


class Store:
    """A base dir (local or ``s3://``), its storage options and a catalog, held together."""

    def __init__(self, base_dir: str | os.PathLike[str] | Storage = "runs", *,
                 catalog: CatalogRef = DEFAULT_CATALOG, s3_endpoint: str | None = None,
                 lock_timeout: float | None = None) -> None:
        self.storage = open_storage(base_dir, endpoint_url=s3_endpoint)
        self.catalog = catalog
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"Store({self.storage.uri(self.storage.root)!r}, catalog={self.catalog!r})"

    def create_run(self, run_type: str, run_id: str | None = None, *,
                   parameters: dict[str, Any] | None = None, dataset: dict[str, Any] | None = None,
                   durable: bool = True, git: bool = True) -> RunDirectory:
        """A new run folder in this store (see ``create_run_directory``)."""
        from quantbot.artifacts.store.writer import create_run_directory

        return create_run_directory(run_type, run_id, self.storage, parameters=parameters,
                                    dataset=dataset, durable=durable, git=git)

    def sync(self) -> SyncReport:
        """Register every new completed or failed run in the catalog."""
        from quantbot.artifacts.catalog.sync import catalog_all_runs

        return catalog_all_runs(catalog=self.catalog, base_dir=self.storage,
                                lock_timeout=self.lock_timeout)

    def query(self, filter: str | None = None, **filters: Any) -> list[RunManifest]:
        """Cataloged runs, newest first, as manifests (``filter`` and the other options as
        ``query_runs``)."""
        from quantbot.artifacts.catalog.query import query_runs

        return query_runs(self.catalog, filter=filter, **filters)

    def list_runs(self, filter: str | None = None, **options: Any) -> RunListing:
        """One page of cataloged runs as dicts with params, metrics and tags (options as
        ``list_runs``: order_by, limit, offset, include_deleted, only_deleted)."""
        from quantbot.artifacts.catalog.listing import list_runs

        return list_runs(self.catalog, filter, lock_timeout=self.lock_timeout, **options)

    def sql(self, statement: str, params: list[Any] | None = None) -> pa.Table:
        """One read-only SQL statement over the catalog and its ``all_*`` views."""
        from quantbot.artifacts.catalog.query import run_sql

        return run_sql(self.catalog, statement, params)

    def run(self, ref: str) -> RunHandle:
        """The run a UUID or an unambiguous prefix (≥ 8 hex characters) names."""
        from quantbot.artifacts.ops.lookup import locate_run

        return RunHandle(locate_run(ref, catalog=self.catalog, base_dir=self.storage))

    def runs(self) -> list[RunHandle]:
        """Every run folder in the store, complete or not, oldest month first."""
        from quantbot.artifacts.store.runs import iter_run_locations

        return [RunHandle(self.storage.at(loc.path)) for loc in iter_run_locations(self.storage)]

    def verify(self, ref: str | None = None) -> VerifyReport:
        """Re-check one run (``ref``) or all: manifest, sha256, rows, schema, marker."""
        from quantbot.artifacts.ops.verify import verify_runs

        run_id = self.run(ref).run_id if ref is not None else None
        return verify_runs(self.storage, run_id)

    def gc(self, older_than: str | timedelta = "24h", *, apply: bool = False) -> list[StaleRun]:
        """Runs left running by a crashed process; ``apply=True`` marks them failed."""
        from quantbot.artifacts.ops.gc import collect_stale_runs

        return collect_stale_runs(self.storage, older_than, apply=apply)

    def gc_deleted(self, older_than: str | timedelta = "30d", *,
                   apply: bool = False) -> list[DeletedRun]:
        """Runs soft-deleted longer ago than ``older_than``; ``apply=True`` removes them
        (folder and catalog rows)."""
        from quantbot.artifacts.ops.gc import collect_deleted_runs

        return collect_deleted_runs(self.storage, older_than, catalog=self.catalog, apply=apply,
                                    lock_timeout=self.lock_timeout)

    def _annotate(self) -> dict[str, Any]:
        return {"base_dir": self.storage, "catalog": self.catalog,
                "lock_timeout": self.lock_timeout}

    def tag(self, refs: str | Sequence[str], tags: Mapping[str, str],
            author: str | None = None) -> list[AnnotationRecord]:
        """Set tags on runs (see ``tag_runs``)."""
        from quantbot.artifacts.ops.annotate import tag_runs

        return tag_runs(refs, tags, author=author, **self._annotate())

    def untag(self, refs: str | Sequence[str], keys: Sequence[str],
              author: str | None = None) -> list[AnnotationRecord]:
        """Remove tags from runs by key."""
        from quantbot.artifacts.ops.annotate import untag_runs

        return untag_runs(refs, keys, author=author, **self._annotate())

    def name(self, ref: str, name: str, author: str | None = None) -> AnnotationRecord:
        """Name a run (the last name given wins)."""
        from quantbot.artifacts.ops.annotate import name_run

        return name_run(ref, name, author=author, **self._annotate())

    def note(self, ref: str, text: str, author: str | None = None) -> AnnotationRecord:
        """Add a note to a run."""
        from quantbot.artifacts.ops.annotate import note_run

        return note_run(ref, text, author=author, **self._annotate())

    def delete(self, refs: str | Sequence[str], author: str | None = None) -> list[AnnotationRecord]:
        """Soft-delete runs (hidden from listings and views until undeleted)."""
        from quantbot.artifacts.ops.annotate import delete_runs

        return delete_runs(refs, author=author, **self._annotate())

    def undelete(self, refs: str | Sequence[str],
                 author: str | None = None) -> list[AnnotationRecord]:
        """Bring soft-deleted runs back."""
        from quantbot.artifacts.ops.annotate import undelete_runs

        return undelete_runs(refs, author=author, **self._annotate())

    def history(self, ref: str) -> list[AnnotationRecord]:
        """Every annotation record of one run, oldest first."""
        from quantbot.artifacts.ops.annotate import annotation_history

        return annotation_history(ref, base_dir=self.storage, catalog=self.catalog)


def open_store(base_dir: str | os.PathLike[str] | Storage = "runs", *,
               catalog: CatalogRef = DEFAULT_CATALOG, s3_endpoint: str | None = None,
               lock_timeout: float | None = None) -> Store:
    """The handle of one store: ``open_store("runs")`` or ``open_store("s3://b/runs",
    catalog="cat.duckdb", s3_endpoint="http://127.0.0.1:9000")``."""
    return Store(base_dir, catalog=catalog, s3_endpoint=s3_endpoint, lock_timeout=lock_timeout)


__all__ = ["RunHandle", "Store", "open_store"]
