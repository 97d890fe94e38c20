"""Copying parsed artifact tables into the consolidated ``artifact_<type>`` tables.

Alerts and features may carry extra columns of their own, and runs disagree about them.
The catalog is derived data (deleting it and syncing again must give the same tables), so
the rule for extra columns depends only on the set of registered runs, never on the order
in which they were synced:

* **Names** compare as DuckDB compares identifiers: ASCII letters ignore case. Runs spelling
  a column ``Score`` and ``score`` share one column, spelled the smallest spelling (by code
  point: ``Score``). A run whose own columns differ only in case (or an extra column that
  differs from a built-in column only in case) is invalid: its rows cannot be told apart.
* **Types**: a run whose column is all null says nothing about the type. The others agree
  on a type, or integers of up to 64 bits widen to BIGINT; any other disagreement (e.g.
  DOUBLE in one run, VARCHAR in another) makes the column VARCHAR, and every value is cast
  from its own run's type to text. Both widenings commute with each other (an integer's
  text does not depend on its width), so the result does not depend on the order. A column
  only ever null is VARCHAR, except where the artifact's spec fixes the type of every extra
  column (the paths' level columns ``hit_<m>x`` BOOLEAN, ``t_<m>x_ms`` BIGINT): those keep
  it even when a run never hit the level, so a query over ``all_paths`` gets the same
  types whichever runs are registered.

Schema changes are cheap DuckDB ``ALTER`` statements when few; many at once (a features
artifact with 5,000 new columns) rewrite the table in one statement instead, since each
ALTER copies the table's whole column list (5,000 ALTERs: quadratic time and memory).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from quantbot.artifacts.catalog.schema import (
    data_schema,
    data_table,
    quote_ident,
    refresh_view,
    table_columns,
)
from quantbot.artifacts.schema.artifact_types import ArtifactType

FALLBACK_TYPE = "VARCHAR"
_INTEGERS = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT",
                       "UTINYINT", "USMALLINT", "UINTEGER"})
_ALTER_LIMIT = 16  # schema changes done one ALTER each; more: one rewrite of the table
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(name: str) -> str:
    """A column name as DuckDB matches it (ASCII case-insensitive; ``É`` and ``é`` differ)."""
    return name.translate(_ASCII_LOWER)


def join_types(a: str | None, b: str | None) -> str | None:
    """The type two runs' columns share; None stands for "all null" (no type information)."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    if a in _INTEGERS and b in _INTEGERS:
        return "BIGINT"
    return FALLBACK_TYPE


def column_problem(kind: ArtifactType, table: pa.Table) -> str | None:
    """Why ``table``'s columns cannot go into the catalog (names equal ignoring case), or None."""
    seen = {fold(n): n for n in data_schema(kind).names}
    for name in table.column_names:
        other = seen.setdefault(fold(name), name)
        if other != name:
            first, second = sorted((other, name))
            return (f"artifact {kind.value}: columns {first} and {second} differ only in case; "
                    "catalog column names ignore case")
    return None


@dataclass
class _Plan:
    """The changes one batch makes to a consolidated table's schema."""

    renames: list[tuple[str, str]] = field(default_factory=list)  # (old, new)
    retypes: list[tuple[str, str]] = field(default_factory=list)  # (column, new type)
    adds: list[tuple[str, str]] = field(default_factory=list)  # (column, type)

    def __len__(self) -> int:
        return len(self.renames) + len(self.retypes) + len(self.adds)


def _duckdb_types(con: duckdb.DuckDBPyConnection, schema: pa.Schema) -> dict[str, str]:
    """The DuckDB type of each Arrow column (DuckDB's own mapping, via DESCRIBE)."""
    empty = schema.empty_table()
    con.register("_qb_types", empty)
    try:
        rows = con.execute("SELECT column_name, column_type FROM (DESCRIBE _qb_types)").fetchall()
    finally:
        con.unregister("_qb_types")
    return dict(zip(schema.names, (t for _, t in rows), strict=True))


def _has_values(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    col = quote_ident(column)
    # fetchall, not fetchone: DuckDB 2 keeps a result that was not read to the end open,
    # and the next statement on this connection then fails ("unfinished result").
    return bool(con.execute(f"SELECT 1 FROM {table} WHERE {col} IS NOT NULL LIMIT 1").fetchall())


def _plan(con: duckdb.DuckDBPyConnection, table: str, base: set[str],
          groups: dict[pa.Schema, list[pa.Table]], types: dict[pa.Schema, dict[str, str]],
          typed_extras: bool) -> tuple[_Plan, dict[str, str]]:
    """The schema changes for a batch, and {folded name: the spelling the table will use}.

    ``typed_extras``: the spec fixes every extra column's type, so an all-null one has it."""
    have = {fold(n): (n, t) for n, t in table_columns(con, table).items()}
    spelling = {k: n for k, (n, _) in have.items()}
    batch_type: dict[str, str | None] = {}
    for schema, tables in groups.items():
        names, duck = schema.names, types[schema]  # hashing a schema costs O(columns)
        for t in tables:  # by position: a lookup by name scans the schema (quadratic)
            for name, col in zip(names, t.columns, strict=True):
                key = fold(name)
                if key in base:
                    continue
                spelling[key] = min(spelling.get(key, name), name)
                typ = duck[name] if typed_extras or col.null_count < t.num_rows else None
                batch_type[key] = join_types(batch_type.get(key), typ)
    plan = _Plan()
    for key, typ in batch_type.items():
        if key not in have:
            plan.adds.append((spelling[key], typ or FALLBACK_TYPE))
            continue
        name, current = have[key]
        if typ is not None and typ != current:
            known = current if _has_values(con, table, name) else None
            if (target := join_types(known, typ)) != current:
                plan.retypes.append((name, target or FALLBACK_TYPE))
        if spelling[key] != name:
            plan.renames.append((name, spelling[key]))
    return plan, spelling


def _apply(con: duckdb.DuckDBPyConnection, table: str, plan: _Plan) -> None:
    """Change the table's schema; columns keep their place, new ones go last."""
    if len(plan) <= _ALTER_LIMIT:
        for name, typ in plan.retypes:
            con.execute(f"ALTER TABLE {table} ALTER COLUMN {quote_ident(name)} TYPE {typ}")
        for old, new in plan.renames:
            con.execute(f"ALTER TABLE {table} RENAME COLUMN {quote_ident(old)} TO {quote_ident(new)}")
        for name, typ in plan.adds:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {quote_ident(name)} {typ}")
        return
    retype, rename = dict(plan.retypes), dict(plan.renames)
    select = []
    for name in table_columns(con, table):
        expr = quote_ident(name)
        if name in retype:
            expr = f"CAST({expr} AS {retype[name]})"
        select.append(f"{expr} AS {quote_ident(rename.get(name, name))}")
    select += [f"CAST(NULL AS {typ}) AS {quote_ident(name)}" for name, typ in plan.adds]
    con.execute(f"CREATE TABLE _qb_rewrite AS SELECT {', '.join(select)} FROM {table}")
    con.execute(f"DROP TABLE {table}")
    con.execute(f"ALTER TABLE _qb_rewrite RENAME TO {table}")


def insert_tables(con: duckdb.DuckDBPyConnection, kind: ArtifactType, tables: list[pa.Table]) -> None:
    """Append parsed tables (run_id included) to ``artifact_<kind>``: the caller holds a
    transaction. Runs with the same schema go in as one contiguous chunk (DuckDB scans one
    chunk several times faster than many small ones)."""
    table = data_table(kind)
    groups: dict[pa.Schema, list[pa.Table]] = defaultdict(list)
    for t in tables:
        groups[t.schema].append(t)
    types = {schema: _duckdb_types(con, schema) for schema in groups}
    base = {fold(n) for n in data_schema(kind).names}
    plan, spelling = _plan(con, table, base, groups, types, bool(kind.spec.extra_rules))
    if plan:
        _apply(con, table, plan)
        refresh_view(con, kind)
    for schema, group in groups.items():
        data = pa.concat_tables(group).combine_chunks()
        data = data.rename_columns([spelling.get(fold(n), n) for n in schema.names])
        con.register("_qb_data", data)
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _qb_data")
        finally:
            con.unregister("_qb_data")


__all__ = ["FALLBACK_TYPE", "column_problem", "fold", "insert_tables", "join_types"]
