"""Run listings: a filter and an order over the catalog, one page of runs with their
parameters, metrics, tags and name, and the columns a table of them shows.

One guarded SELECT (sql_guard, as the ``sql`` command) answers a page: the matching run ids
and the sort keys are picked on narrow columns first (``hit``), the page is cut from them
(``page``), and only then are the page's parameters, dataset, metrics and tags read; the
total comes from the same statement. At 100,000 runs that is a few milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import duckdb

from quantbot.artifacts.catalog.connection import CatalogRef
from quantbot.artifacts.catalog.filters import (
    compile_filter,
    order_terms,
    parse_filter,
    parse_order_by,
    resolve_field,
    static_fields,
)
from quantbot.artifacts.catalog.labels import LABELS_TABLE, TAGS_TABLE
from quantbot.artifacts.catalog.run_index import FIELDS_TABLE, METRICS_TABLE
from quantbot.artifacts.catalog.schema import RUNS_TABLE
from quantbot.artifacts.catalog.sql_guard import guarded_session
from quantbot.artifacts.schema.layout import iso_utc
from quantbot.errors import CatalogError, InvalidArgumentError, SqlError

#: What a run table shows when no --columns are given; ``policy``, ``calls``, ``tags`` and
#: ``error`` are display columns (params.policy_id or params.strategy_id, dataset.calls_count,
#: ``k=v,...``, the one-line error).
DEFAULT_COLUMNS = ("run_id", "name", "run_type", "status", "created_at", "git_branch", "policy",
                   "calls", "metrics.median_return_bps", "tags", "error")
DISPLAY_COLUMNS = ("policy", "calls", "tags")
_NO_TABLES = "catalog has no tables yet (run `quantbot backtest catalog-sync`)"


@dataclass(frozen=True)
class RunListing:
    runs: list[dict[str, Any]]   # one dict per run (keys: see list_runs), in order
    total: int                   # runs matching (before limit/offset)


@dataclass(frozen=True)
class Selection:
    """The compiled WHERE and ORDER BY of a listing over ``r`` (runs) and, only when the
    filter or the order reads them, ``l`` (labels) and ``m`` (run_metrics): each join costs
    a pass over 100,000 rows."""

    where: str
    where_params: list[Any]
    order: list[tuple[str, list[Any], bool]]  # (expression, bound values, descending)
    joins: frozenset[str]

    @property
    def source(self) -> str:
        src = f"{RUNS_TABLE} r"
        if "l" in self.joins:
            src += f" LEFT JOIN {LABELS_TABLE} l ON l.run_id = r.run_id"
        if "m" in self.joins:
            src += f" LEFT JOIN {METRICS_TABLE} m ON m.run_id = r.run_id"
        return src


def selection(filter: str | None = None, order_by: str | None = None, *,
              include_deleted: bool = False, only_deleted: bool = False,
              extra: Sequence[tuple[str, list[Any]]] = ()) -> Selection:
    """Compile a filter, an order and the deleted-runs rule (plus ``extra`` SQL conditions
    with their values, AND-ed) into a :class:`Selection`."""
    conds: list[tuple[str, list[Any]]] = list(extra)
    joins: set[str] = set()
    if filter is not None and filter.strip():
        sql, params, joins = compile_filter(filter)
        conds.append((sql, params))
    deleted = f"r.run_id IN (SELECT run_id FROM {LABELS_TABLE} WHERE deleted_at IS NOT NULL)"
    if only_deleted:
        conds.append((deleted, []))
    elif not include_deleted:
        conds.append((f"NOT {deleted}", []))
    if order_by is not None and order_by.strip():
        keys = parse_order_by(order_by)
        joins |= {f.join for f, _ in keys} - {""}
        order = [*order_terms(keys), ("r.run_id", [], True)]
    else:
        order = [("r.created_at", [], True), ("r.run_id", [], True)]
    where = " AND ".join(c for c, _ in conds) or "true"
    return Selection(where, [p for _, ps in conds for p in ps], order, frozenset(joins))


@contextmanager
def catalog_reader(db: CatalogRef, lock_timeout: float | None = None,
                   ) -> Iterator[Callable[[str, list[Any]], list[dict[str, Any]]]]:
    """``read(sql, params) -> rows`` for a few compiled SELECTs on one connection: under the
    read-only guard for a catalog path (as the ``sql`` command), as is on a connection the
    caller opened (the statements are ours, every value bound)."""
    try:
        if isinstance(db, duckdb.DuckDBPyConnection):
            yield lambda sql, params: db.sql(sql, params=params or None).to_arrow_table(
            ).to_pylist()
            return
        with guarded_session(db, lock_timeout=lock_timeout) as run:
            yield lambda sql, params: run(sql, params).to_pylist()
    except duckdb.CatalogException:
        raise CatalogError(_NO_TABLES) from None
    except SqlError as err:
        if "Catalog Error" in str(err):
            raise CatalogError(_NO_TABLES) from None
        raise


def page_sql(sel: Selection, limit: int | None, offset: int) -> tuple[str, list[Any]]:
    """The page's run ids in order, each row with the total of matching runs (one row with
    a null run_id when the page is empty), sorted on narrow columns only."""
    if limit is not None and limit < 0:
        raise InvalidArgumentError(f"invalid limit {limit}: must be >= 0")
    if offset < 0:
        raise InvalidArgumentError(f"invalid offset {offset}: must be >= 0")
    keys = ", ".join(f"{expr} AS o{i}" for i, (expr, _, _) in enumerate(sel.order))
    order = [f"o{i} {'DESC' if desc else 'ASC'} NULLS LAST" for i, (_, _, desc) in
             enumerate(sel.order)]
    params = [p for _, ps, _ in sel.order for p in ps] + sel.where_params
    cut = " LIMIT ? OFFSET ?" if limit is not None else " OFFSET ?"
    params += [int(limit), int(offset)] if limit is not None else [int(offset)]
    sql = (f"WITH hit AS (SELECT r.run_id, {keys} FROM {sel.source} WHERE {sel.where}), "
           f"page AS (SELECT * FROM hit ORDER BY {', '.join(order)}{cut}) "
           "SELECT t.total, p.run_id FROM (SELECT count(*) AS total FROM hit) t "
           f"LEFT JOIN page p ON true ORDER BY {', '.join(f'p.{k}' for k in order)}")
    return sql, params


def page_ids(read: Callable[[str, list[Any]], list[dict[str, Any]]], sel: Selection,
             limit: int | None, offset: int) -> tuple[list[str], int]:
    """(run ids of the page in order, total matching)."""
    rows = read(*page_sql(sel, limit, offset))
    return [r["run_id"] for r in rows if r["run_id"] is not None], rows[0]["total"]


def _metric_columns() -> list[str]:
    from quantbot.artifacts.catalog.filters import metric_types

    return list(metric_types())


def _iso(ts: Any) -> str | None:
    """A catalog timestamp (naive UTC) as every manifest writes one (milliseconds, ``Z``)."""
    return None if ts is None else iso_utc(ts.replace(tzinfo=UTC))


#: Up to this many ids are bound one parameter each (``IN (?, ?, ...)``: DuckDB answers it
#: from the tables' run_id indexes); more are bound as one list and semi-joined.
_IN_LIST_MAX = 1000


def _details_sql(metric_cols: list[str], n_ids: int) -> str:
    """Everything a run dict needs, for the runs whose ids are bound: each table is cut to
    those ids before anything else of it is read, and manifest_json (large) is never read."""
    among = ("run_id IN (" + ", ".join("?" * n_ids) + ")" if n_ids <= _IN_LIST_MAX
             else "run_id IN (SELECT unnest(?))")
    metrics = "".join(f", m.{_quote(c)} AS {_quote('m.' + c)}" for c in metric_cols)
    return (
        f"WITH r AS (SELECT * EXCLUDE (manifest_json) FROM {RUNS_TABLE} WHERE {among}), "
        f"l AS (SELECT * FROM {LABELS_TABLE} WHERE {among}), "
        f"m AS (SELECT * FROM {METRICS_TABLE} WHERE {among}), "
        "t AS (SELECT run_id, list(struct_pack(k := key, v := value) ORDER BY key) AS tags "
        f"FROM {TAGS_TABLE} WHERE {among} GROUP BY run_id) "
        "SELECT r.run_id, r.run_type, r.status, r.created_at, r.completed_at, r.git_branch, "
        "r.git_commit, r.error_type, r.error_message, r.error_phase, r.parameters_json, "
        "r.dataset_from, r.dataset_to, r.dataset_interval, r.dataset_calls_count, l.name, "
        "l.deleted_at, coalesce(l.notes_count, 0) AS notes_count, "
        "m.run_id IS NOT NULL AS has_metrics, "
        f"t.tags{metrics} FROM r LEFT JOIN l ON l.run_id = r.run_id "
        "LEFT JOIN m ON m.run_id = r.run_id LEFT JOIN t ON t.run_id = r.run_id")


def _details_params(ids: list[str]) -> list[Any]:
    """The bound values of :func:`_details_sql` (four tables read the same ids)."""
    return list(ids) * 4 if len(ids) <= _IN_LIST_MAX else [ids] * 4


def _dataset(row: dict[str, Any]) -> dict[str, Any]:
    """The manifest's dataset object, from the runs table's columns (same keys as run.json)."""
    out = {"from": _iso(row["dataset_from"]), "to": _iso(row["dataset_to"]),
           "interval": row["dataset_interval"], "calls_count": row["dataset_calls_count"]}
    return {k: v for k, v in out.items() if v is not None}


def _run_dict(row: dict[str, Any], metric_cols: list[str]) -> dict[str, Any]:
    error = None if row["error_type"] is None else f"{row['error_type']}: {row['error_message']}"
    return {
        "run_id": row["run_id"], "name": row["name"], "run_type": row["run_type"],
        "status": row["status"], "created_at": _iso(row["created_at"]),
        "completed_at": _iso(row["completed_at"]), "git_branch": row["git_branch"],
        "git_commit": row["git_commit"], "error": error, "error_phase": row["error_phase"],
        "deleted_at": _iso(row["deleted_at"]),
        "params": json.loads(row["parameters_json"] or "{}"),
        "dataset": _dataset(row),
        "metrics": {c: row[f"m.{c}"] for c in metric_cols} if row["has_metrics"] else {},
        "tags": {t["k"]: t["v"] for t in row["tags"] or ()},
        "notes_count": row["notes_count"],
    }


def list_runs(db: CatalogRef, filter: str | None = None, *, order_by: str | None = None,
              limit: int | None = 50, offset: int = 0, include_deleted: bool = False,
              only_deleted: bool = False, lock_timeout: float | None = None) -> RunListing:
    """Cataloged runs matching ``filter`` (docs/schemas.md, "Run filters"), ordered by
    ``order_by`` (default newest first), ``limit`` of them from ``offset``.

    Each run is a dict: run_id, name, run_type, status, created_at, completed_at (ISO UTC),
    git_branch, git_commit, error ("Type: message"), error_phase, deleted_at, params (the
    manifest's parameters), dataset, metrics (the run_metrics row, {} if none), tags,
    notes_count. Deleted runs are left out unless ``include_deleted`` or ``only_deleted``.
    """
    sel = selection(filter, order_by, include_deleted=include_deleted, only_deleted=only_deleted)
    return list_selection(db, sel, limit=limit, offset=offset, lock_timeout=lock_timeout)


def list_selection(db: CatalogRef, sel: Selection, *, limit: int | None = 50, offset: int = 0,
                   lock_timeout: float | None = None) -> RunListing:
    """:func:`list_runs` of a compiled :class:`Selection` (a filter AND-ed with flags)."""
    metric_cols = _metric_columns()
    with catalog_reader(db, lock_timeout) as read:
        ids, total = page_ids(read, sel, limit, offset)
        found = ({r["run_id"]: r for r in read(_details_sql(metric_cols, len(ids)),
                                                _details_params(ids))} if ids else {})
    return RunListing([_run_dict(found[i], metric_cols) for i in ids if i in found], total)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def validate_filter(text: str) -> None:
    """Raise FilterError (one line, with the column) unless ``text`` is a valid filter."""
    parse_filter(text)


def filter_fields(db: CatalogRef) -> list[str]:
    """Every field name a filter accepts now: the attributes, every metric, and the
    ``params.*``/``dataset.*`` and ``tags.*`` names some cataloged run has."""
    with catalog_reader(db) as read:
        rows = read(f"SELECT DISTINCT field AS name FROM {FIELDS_TABLE} UNION "
                    f"SELECT DISTINCT 'tags.' || key FROM {TAGS_TABLE} ORDER BY 1", [])
    return [*static_fields(), *(r["name"] for r in rows)]


def last_note(db: CatalogRef, run_id: str) -> str | None:
    """The text of a run's latest note, as the label tables hold it."""
    with catalog_reader(db) as read:
        rows = read(f"SELECT last_note FROM {LABELS_TABLE} WHERE run_id = ?", [run_id])
    return rows[0]["last_note"] if rows else None


def _leaf(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def column_value(run: dict[str, Any], column: str) -> Any:
    """One cell: a field (``status``, ``params.policy.sl``, ``metrics.sharpe``, ``tags.k``)
    or a display column (``policy``, ``calls``, ``tags``)."""
    if column == "policy":
        return run["params"].get("policy_id") or run["params"].get("strategy_id")
    if column == "calls":
        return run["dataset"].get("calls_count")
    if column == "tags":
        return ",".join(f"{k}={v}" for k, v in sorted(run["tags"].items())) or None
    prefix, _, key = column.partition(".")
    if prefix in ("params", "dataset", "metrics", "tags") and key:
        return (_leaf(run[prefix], key) if prefix in ("params", "dataset")
                else run[prefix].get(key))
    return run.get(column)


def check_columns(columns: Sequence[str]) -> list[str]:
    """``columns`` if each is a display column or a field a filter accepts, else FilterError."""
    for c in columns:
        if c not in DISPLAY_COLUMNS:
            resolve_field(c, what="columns")
    return list(columns)


def _leaf_names(prefix: str, tree: Any) -> list[str]:
    if isinstance(tree, dict) and tree:
        return [n for k, v in tree.items() for n in _leaf_names(f"{prefix}.{k}", v)]
    return [prefix]


def listing_columns(runs: list[dict[str, Any]], columns: Sequence[str] | None = None,
                    only_changed: bool = False) -> list[str]:
    """The columns a table of ``runs`` shows: ``columns`` (checked), else DEFAULT_COLUMNS.

    ``only_changed`` keeps the columns whose values differ between the runs (run_id always
    stays); without ``columns`` it also looks at every parameter, dataset key, metric and
    tag the runs have, so a sweep's table shows exactly what varied.
    """
    chosen = check_columns(columns) if columns else list(DEFAULT_COLUMNS)
    if not only_changed:
        return chosen
    if not columns:
        extra = sorted({n for run in runs for p in ("params", "dataset", "metrics", "tags")
                        for n in (_leaf_names(p, run[p]) if p in ("params", "dataset")
                                  else [f"{p}.{k}" for k in run[p]]) if n != p})
        chosen += [c for c in extra if c not in chosen and c != "params.config_hash"]
    return [c for c in chosen if c == "run_id" or len({
        json.dumps(column_value(r, c), sort_keys=True, default=str) for r in runs}) > 1]


def flat_row(run: dict[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """``{column: value}`` of one run for a table, CSV or a UI grid."""
    return {c: column_value(run, c) for c in columns}


__all__ = ["DEFAULT_COLUMNS", "RunListing", "Selection", "catalog_reader", "check_columns",
           "column_value", "filter_fields", "flat_row", "last_note", "list_runs",
           "list_selection", "listing_columns", "page_ids", "page_sql", "selection",
           "validate_filter"]
