"""Catalog tables and the cross-run views.

Besides the two index tables of SCHEMAS.md, the catalog keeps a consolidated copy of every
registered run's artifact rows (``artifact_<type>`` tables, derived data: rebuildable from
the run directories). The ``all_<type>`` views read those tables, so one SQL statement
spans every registered run without opening thousands of small Parquet files, and each
row's ``run_id`` comes from the file's own column, never from a path.

The views hide soft-deleted runs (a ``run_labels`` row with ``deleted_at`` set); the
``artifact_<type>`` tables keep every registered run, deleted or not, for queries that
want them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

from quantbot.artifacts.catalog.labels import LABELS_TABLE, ensure_label_tables
from quantbot.artifacts.catalog.run_index import backfill_index, ensure_index_tables
from quantbot.artifacts.schema.artifact_types import ArtifactType

if TYPE_CHECKING:
    import pyarrow as pa

CATALOG_SCHEMA_VERSION = "2"  # 2: run_fields, run_metrics, labels, error columns
RUNS_TABLE = "backtest_runs_catalog"
ARTIFACTS_TABLE = "backtest_artifacts_catalog"
TIMING_FIELDS = ("plan", "coverage", "slice", "execution", "optimization", "store", "total")

_RUNS_DDL = f"""
CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (
    run_id TEXT PRIMARY KEY,
    run_type TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    git_commit TEXT,
    git_branch TEXT,
    git_dirty BOOLEAN,
    dataset_from TIMESTAMP,
    dataset_to TIMESTAMP,
    dataset_interval TEXT,
    dataset_calls_count INTEGER,
    parameters_json TEXT,
    {", ".join(f"timing_{t}_ms DOUBLE" for t in TIMING_FIELDS)},
    artifacts_json TEXT,
    error_type TEXT,
    error_message TEXT,
    error_phase TEXT,
    run_dir TEXT NOT NULL,
    manifest_path TEXT NOT NULL,
    cataloged_at TIMESTAMP NOT NULL,
    manifest_json TEXT NOT NULL
)"""

_ARTIFACTS_DDL = f"""
CREATE TABLE IF NOT EXISTS {ARTIFACTS_TABLE} (
    run_id TEXT NOT NULL,
    artifact_type TEXT NOT NULL,
    artifact_path TEXT NOT NULL,
    rows BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TIMESTAMP,
    cataloged_at TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, artifact_type)
)"""

RUNS_COLUMNS: tuple[str, ...] = (
    "run_id", "run_type", "status", "created_at", "started_at", "completed_at", "git_commit",
    "git_branch", "git_dirty", "dataset_from", "dataset_to", "dataset_interval",
    "dataset_calls_count", "parameters_json", *(f"timing_{t}_ms" for t in TIMING_FIELDS),
    "artifacts_json", "error_type", "error_message", "error_phase", "run_dir", "manifest_path", "cataloged_at", "manifest_json",
)


def data_table(artifact_type: ArtifactType) -> str:
    return f"artifact_{artifact_type.value}"


def view_name(artifact_type: ArtifactType) -> str:
    return f"all_{artifact_type.value}"


def data_schema(artifact_type: ArtifactType) -> pa.Schema:
    """The consolidated table's starting schema: run_id first, then the artifact's columns."""
    import pyarrow as pa

    from quantbot.artifacts.schema.arrow_schemas import BUILTIN_FEATURES

    schema = artifact_type.spec.schema
    if not artifact_type.spec.has_run_id:
        schema = pa.schema([pa.field("run_id", pa.string(), nullable=False), *schema])
    if artifact_type is ArtifactType.FEATURES:
        schema = pa.schema([*schema, *BUILTIN_FEATURES])
    return schema


def quote_ident(name: str) -> str:
    """A DuckDB identifier; column names come from user data, so they are always quoted."""
    return '"' + name.replace('"', '""') + '"'


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create what is missing; idempotent, safe to run on every write."""
    con.execute(_RUNS_DDL)
    con.execute(_ARTIFACTS_DDL)
    con.execute("CREATE TABLE IF NOT EXISTS quantbot_catalog_meta (key TEXT PRIMARY KEY, value TEXT)")
    con.execute("INSERT OR IGNORE INTO quantbot_catalog_meta VALUES ('schema_version', ?)",
                [CATALOG_SCHEMA_VERSION])
    for column in ("error_type", "error_message", "error_phase"):  # catalogs of version 1
        con.execute(f"ALTER TABLE {RUNS_TABLE} ADD COLUMN IF NOT EXISTS {column} TEXT")
    ensure_label_tables(con)  # before the views, which read run_labels
    columns = _all_columns(con)  # one query: a sync runs this on every write
    for t in ArtifactType:
        table = data_table(t)
        if table not in columns:
            empty = data_schema(t).empty_table()  # noqa: F841 - read by DuckDB's replacement scan
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM empty")
            have = list(data_schema(t).names)
        else:  # a newer schema version added columns: the table grows, old rows read null
            have = add_missing_columns(con, table, data_schema(t), columns[table])
        if list(columns.get(view_name(t), ())) != _view_columns(t, have):
            refresh_view(con, t)
    ensure_index_tables(con)
    ((version,),) = con.execute(
        "SELECT value FROM quantbot_catalog_meta WHERE key = 'schema_version'").fetchall()
    if version != CATALOG_SCHEMA_VERSION:  # runs registered before the index tables existed
        backfill_index(con, RUNS_TABLE)
        for t in ArtifactType:  # version 1 views did not hide deleted runs
            refresh_view(con, t)
        con.execute("UPDATE quantbot_catalog_meta SET value = ? WHERE key = 'schema_version'",
                    [CATALOG_SCHEMA_VERSION])


def _view_columns(artifact_type: ArtifactType, table_columns: list[str]) -> list[str]:
    """The view's columns: the artifact's own, then the table's extra columns by name."""
    base = data_schema(artifact_type).names
    extras = sorted((c for c in table_columns if c not in base), key=lambda c: (c.lower(), c))
    return [*base, *extras]


def refresh_view(con: duckdb.DuckDBPyConnection, artifact_type: ArtifactType) -> None:
    """(Re)create ``all_<type>`` with its columns in an order that depends only on the set
    of columns: the artifact's own, then extra columns by name. The table's own order is
    the order in which runs brought them, which a rebuild need not repeat. Soft-deleted
    runs are left out (the table keeps them)."""
    table = data_table(artifact_type)
    cols = ", ".join(quote_ident(c) for c in _view_columns(artifact_type,
                                                           list(table_columns(con, table))))
    con.execute(f"CREATE OR REPLACE VIEW {view_name(artifact_type)} AS SELECT {cols} FROM {table} "
                f"WHERE run_id NOT IN (SELECT run_id FROM {LABELS_TABLE} "
                "WHERE deleted_at IS NOT NULL)")


def _all_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Table or view name -> its columns in order, for every table and view of ``main``."""
    out: dict[str, list[str]] = {}
    for table, column in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position").fetchall():
        out.setdefault(table, []).append(column)
    return out


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", [table]
    ).fetchall()
    return {name: typ for name, typ in rows}


def add_missing_columns(con: duckdb.DuckDBPyConnection, table: str, schema: pa.Schema,
                        have: list[str] | None = None) -> list[str]:
    """Grow a consolidated table by the columns of ``schema`` it lacks; its columns after.

    ``have``: the table's columns, when the caller has just read them."""
    if have is None:
        have = list(table_columns(con, table))
    missing = [f for f in schema if f.name not in have]
    if not missing:
        return have
    import pyarrow as pa

    empty = pa.schema(missing).empty_table()
    con.register("_qb_new_cols", empty)
    try:
        types = dict(con.execute(
            "SELECT column_name, column_type FROM (DESCRIBE _qb_new_cols)").fetchall())
    finally:
        con.unregister("_qb_new_cols")
    for f in missing:
        con.execute(f"ALTER TABLE {table} ADD COLUMN {quote_ident(f.name)} {types[f.name]}")
    return [*have, *(f.name for f in missing)]
