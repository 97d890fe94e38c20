"""Reading the catalog: runs by filter (newest first), artifact paths, stats and raw SQL.

Every user-supplied value reaches SQL as a bound parameter; SQL statements given by the
user run under the read-only guard of sql_guard (one SELECT, no files, a timeout).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb

from quantbot.artifacts.catalog.connection import CatalogRef, open_catalog
from quantbot.artifacts.catalog.schema import ARTIFACTS_TABLE, RUNS_TABLE
from quantbot.artifacts.catalog.sql_guard import DEFAULT_SQL_TIMEOUT_S, run_guarded
from quantbot.artifacts.schema.artifact_types import ArtifactType
from quantbot.artifacts.schema.layout import validate_run_id
from quantbot.artifacts.schema.manifest import RUN_STATUSES, RUN_TYPES, RunManifest
from quantbot.errors import CatalogError, InvalidArgumentError, RunNotFoundError

if TYPE_CHECKING:
    import pyarrow as pa


def _bound(value: str | date | datetime, name: str, end: bool) -> datetime:
    """A filter bound; a bare date as an upper bound means the whole of that day."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        day = datetime(value.year, value.month, value.day)
        return day + timedelta(days=1) - timedelta(microseconds=1) if end else day
    text = str(value).strip()
    try:
        if len(text) == 10:
            return _bound(date.fromisoformat(text), name, end)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgumentError(
            f"invalid {name} {value!r}: expected YYYY-MM-DD or an ISO datetime") from None
    if parsed.tzinfo is not None:  # the catalog stores naive UTC
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _check_choice(value: str | None, choices: tuple[str, ...], name: str) -> None:
    if value is not None and value not in choices:
        raise InvalidArgumentError(
            f"invalid {name} {value!r} (expected one of: {', '.join(choices)})")


def _run_query(db: CatalogRef, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with open_catalog(db, read_only=True) as con:
        try:
            return con.execute(sql, params).fetchall()
        except duckdb.CatalogException:
            raise CatalogError("catalog has no tables yet (run `quantbot backtest catalog-sync`)") from None


def flag_conditions(run_type: str | None = None, status: str | None = None,
                    git_branch: str | None = None,
                    from_date: str | date | datetime | None = None,
                    to_date: str | date | datetime | None = None,
                    run_id: str | None = None) -> list[tuple[str, list[Any]]]:
    """The fixed-flag filters (``--status`` ...) as SQL conditions over the runs table ``r``
    with their bound values, AND-ed with a filter by ``listing.selection``."""
    _check_choice(run_type, RUN_TYPES, "run type")
    _check_choice(status, RUN_STATUSES, "status")
    extra: list[tuple[str, list[Any]]] = [
        (f"r.{column} = ?", [value]) for column, value in
        (("run_type", run_type), ("status", status), ("git_branch", git_branch))
        if value is not None]
    if run_id is not None:
        extra.append(("r.run_id = ?", [validate_run_id(run_id)]))
    if from_date is not None:
        extra.append(("r.created_at >= ?", [_bound(from_date, "from date", end=False)]))
    if to_date is not None:
        extra.append(("r.created_at <= ?", [_bound(to_date, "to date", end=True)]))
    return extra


def query_runs(db: CatalogRef, run_type: str | None = None, status: str | None = None,
               git_branch: str | None = None, from_date: str | date | datetime | None = None,
               to_date: str | date | datetime | None = None, limit: int | None = 10, *,
               filter: str | None = None, order_by: str | None = None,
               include_deleted: bool = False, only_deleted: bool = False, offset: int = 0,
               ) -> list[RunManifest]:
    """Cataloged runs matching every given flag and the ``filter`` (docs/schemas.md, "Run
    filters"), newest first unless ``order_by``, as manifest objects; deleted runs only
    with ``include_deleted``/``only_deleted``."""
    from quantbot.artifacts.catalog.listing import catalog_reader, page_ids, selection

    extra = flag_conditions(run_type, status, git_branch, from_date, to_date)
    sel = selection(filter, order_by, include_deleted=include_deleted,
                    only_deleted=only_deleted, extra=extra)
    # Pick the page's ids on narrow columns first, then fetch only their (large) manifests.
    with catalog_reader(db) as read:
        ids, _ = page_ids(read, sel, limit, offset)
        found = {r["run_id"]: r["manifest_json"] for r in read(
            f"SELECT run_id, manifest_json FROM {RUNS_TABLE} WHERE run_id IN "
            "(SELECT unnest(?))", [ids])} if ids else {}
    return [RunManifest.model_validate_json(found[i]) for i in ids if i in found]


def get_run(db: CatalogRef, run_id: str) -> tuple[RunManifest, str] | None:
    """The cataloged manifest and run folder of ``run_id``, None if not cataloged."""
    rows = _run_query(db, f"SELECT manifest_json, run_dir FROM {RUNS_TABLE} WHERE run_id = ?",
                      [validate_run_id(run_id)])
    return (RunManifest.model_validate_json(rows[0][0]), rows[0][1]) if rows else None


def get_artifact_path(db: CatalogRef, run_id: str, artifact_type: str | ArtifactType) -> str:
    """The file path of one artifact of a cataloged run."""
    kind = ArtifactType.parse(artifact_type)
    run_id = validate_run_id(run_id)
    rows = _run_query(
        db,
        f"SELECT r.run_dir, a.artifact_path FROM {RUNS_TABLE} r LEFT JOIN {ARTIFACTS_TABLE} a "
        "ON a.run_id = r.run_id AND a.artifact_type = ? WHERE r.run_id = ?",
        [kind.value, run_id])
    if not rows:
        raise RunNotFoundError(f"run {run_id} is not in the catalog (run catalog-sync?)")
    run_dir, rel = rows[0]
    if rel is None:
        raise RunNotFoundError(f"run {run_id} has no {kind.value} artifact")
    return os.path.join(run_dir, *rel.split("/"))


def get_catalog_stats(db: CatalogRef) -> dict[str, Any]:
    """Counts by status and type, artifact totals, and the time span of the runs."""
    with open_catalog(db, read_only=True) as con:
        try:
            ((total, first, last),) = con.execute(
                f"SELECT count(*), min(created_at), max(created_at) FROM {RUNS_TABLE}").fetchall()
            by_status = dict(con.execute(
                f"SELECT status, count(*) FROM {RUNS_TABLE} GROUP BY ALL ORDER BY ALL").fetchall())
            by_type = dict(con.execute(
                f"SELECT run_type, count(*) FROM {RUNS_TABLE} GROUP BY ALL ORDER BY ALL").fetchall())
            artifacts = {t: {"files": n, "rows": int(r), "bytes": int(b)} for t, n, r, b in con.execute(
                f"SELECT artifact_type, count(*), sum(rows), sum(bytes) FROM {ARTIFACTS_TABLE} "
                "GROUP BY ALL ORDER BY ALL").fetchall()}
        except duckdb.CatalogException:
            raise CatalogError("catalog has no tables yet (run `quantbot backtest catalog-sync`)") from None
    return {
        "total_runs": total, "by_status": by_status, "by_run_type": by_type,
        "artifacts": artifacts,
        "oldest_run": first.isoformat() if first else None,
        "newest_run": last.isoformat() if last else None,
    }


def run_sql(db: str | os.PathLike[str], sql: str, params: list[Any] | None = None, *,
            timeout: float = DEFAULT_SQL_TIMEOUT_S,
            allow_read: Sequence[str | os.PathLike[str]] = (),
            lock_timeout: float | None = None) -> pa.Table:
    """Run one read-only SELECT against the catalog and its cross-run views.

    The statement is guarded (sql_guard): no writes, no files outside ``allow_read``, no
    settings, interrupted after ``timeout`` seconds with SqlTimeoutError.
    """
    return run_guarded(db, sql, params, timeout=timeout, allow_read=allow_read,
                       lock_timeout=lock_timeout)


def manifest_summary(manifest: RunManifest) -> dict[str, Any]:
    """The flat fields shown in run listings (table/CSV output)."""
    return {
        "run_id": manifest.run_id, "run_type": manifest.run_type, "status": manifest.status,
        "created_at": manifest.created_at, "git_branch": manifest.git_branch,
        "calls": manifest.dataset.calls_count,
        "artifacts": ",".join(sorted(manifest.artifacts)),
        "total_ms": manifest.timing.total_ms if manifest.timing else None,
    }


__all__ = ["flag_conditions", "get_artifact_path", "get_catalog_stats", "get_run",
           "manifest_summary", "query_runs", "run_sql"]
