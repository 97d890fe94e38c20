"""Input sources (CSV, Parquet file, Parquet folder / Hive dataset, DuckDB database, or an
in-memory pandas/polars DataFrame or pyarrow Table) as DuckDB relations, so every format is
filtered and typed by the same SQL without loading it whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from quantbot.backtest.data.columns import quote
from quantbot.errors import DataError

IN_MEMORY = "memory"
"""The ``kind`` of a source passed as a DataFrame or Arrow table (it has no path)."""
_MEMORY_VIEW = "quantbot_input"
_SUFFIX_KINDS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet",
                 ".pq": "parquet", ".duckdb": "duckdb", ".db": "duckdb", ".ddb": "duckdb"}


def detect_kind(path: Path) -> str:
    """csv, parquet, parquet_dataset or duckdb: by suffix (also ``.csv.gz``), else by the file's magic bytes."""
    if not path.exists():
        raise DataError(f"input not found: {path}")
    if path.is_dir():
        return "parquet_dataset"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-2:-1] == [".csv"] and suffixes[-1] in (".gz", ".zst"):
        return "csv"
    if path.suffix.lower() in _SUFFIX_KINDS:
        return _SUFFIX_KINDS[path.suffix.lower()]
    with path.open("rb") as fh:
        head = fh.read(12)
    if head[:4] == b"PAR1":
        return "parquet"
    if head[8:12] == b"DUCK":
        return "duckdb"
    raise DataError(f"{path}: unrecognised input format (expected .csv, .parquet, a folder of "
                    "Parquet files, or a DuckDB database)")


@dataclass(frozen=True)
class Source:
    """A source opened on a DuckDB connection: ``from_sql`` is usable after ``FROM``."""

    con: duckdb.DuckDBPyConnection
    path: Path | str  # a label for in-memory inputs
    kind: str
    from_sql: str
    columns: dict[str, str]  # column name -> DuckDB type name

    def with_varchar(self, names: Sequence[str]) -> Source:
        """The same source with ``names`` read as text (CSV only: keeps ids like ``007``)."""
        if self.kind != "csv" or not names:
            return self
        assert isinstance(self.path, Path)
        types = ", ".join(f"{_literal(n)}: 'VARCHAR'" for n in names)
        return Source(self.con, self.path, self.kind, _csv_sql(self.path, types), self.columns)


def in_memory_table(source: object, what: str) -> pa.Table | None:
    """``source`` as an Arrow table when it is an in-memory frame (pyarrow Table or
    RecordBatch, polars or pandas DataFrame), None when it is a path; anything else is an
    error naming ``what`` and the type."""
    if isinstance(source, (str, Path)) or hasattr(source, "__fspath__"):
        return None
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source])
    module = type(source).__module__.split(".")[0]
    if module == "polars" and hasattr(source, "to_arrow"):
        return source.to_arrow()
    if module == "pandas" and hasattr(source, "columns"):
        return pa.Table.from_pandas(source, preserve_index=False)
    raise DataError(f"{what}: expected a path, a pandas/polars DataFrame or a pyarrow Table, "
                    f"got {type(source).__module__}.{type(source).__name__}")


@contextmanager
def open_source(source: str | Path | Any, what: str, *, table: str | None = None,
                query: str | None = None) -> Iterator[Source]:
    """Open ``source`` (``what`` names it in errors, e.g. 'candles'); closes the connection."""
    frame = in_memory_table(source, what)
    if frame is not None:
        yield from _open_memory(frame, what, table, query)
        return
    path = Path(source).expanduser()
    kind = detect_kind(path)
    if kind != "duckdb" and (table or query):
        raise DataError(f"{what} source {path}: table/query apply to DuckDB databases only")
    if table and query:
        raise DataError(f"{what} source {path}: pass either table or query, not both")
    con = _connect(path, kind, what)
    try:
        from_sql = _from_sql(con, path, kind, what, table, query)
        try:
            described = con.sql(f"DESCRIBE SELECT * FROM {from_sql}").fetchall()
        except duckdb.Error as exc:
            raise DataError(f"{what} source {path}: cannot read it: {_first_line(exc)}") from None
        yield Source(con, path, kind, from_sql, {row[0]: row[1] for row in described})
    finally:
        con.close()


def _open_memory(frame: pa.Table, what: str, table: str | None,
                 query: str | None) -> Iterator[Source]:
    label = f"<in-memory {what}>"
    if table or query:
        raise DataError(f"{what} source {label}: table/query apply to DuckDB databases only")
    con = _connect(Path(label), IN_MEMORY, what)
    try:
        con.register(_MEMORY_VIEW, frame)
        described = con.sql(f"DESCRIBE SELECT * FROM {_MEMORY_VIEW}").fetchall()
        yield Source(con, label, IN_MEMORY, _MEMORY_VIEW, {row[0]: row[1] for row in described})
    finally:
        con.close()


def fetch_arrow(src: Source, sql: str, what: str, casts: dict[str, str] | None = None) -> pa.Table:
    """Run ``sql`` to an Arrow table; DuckDB's errors become one-line DataErrors.

    ``casts`` (input column -> SQL type it is cast to) lets a failed conversion name the
    column and its first bad value, which DuckDB's own message omits.
    """
    try:
        return src.con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        for column, sql_type in (casts or {}).items():
            bad = _first_unconvertible(src, column, sql_type)
            if bad is not None:
                raise DataError(f"{what} source {src.path}: column {column!r}: value {bad!r} "
                                f"is not a valid {sql_type.lower()}") from None
        raise DataError(f"{what} source {src.path}: {_first_line(exc)}") from None


def _first_unconvertible(src: Source, column: str, sql_type: str) -> object | None:
    if not src.columns[column].upper().startswith("VARCHAR"):
        return None
    col = quote(column)
    rows = src.con.sql(f"SELECT {col} FROM {src.from_sql} WHERE {col} IS NOT NULL AND "
                       f"TRY_CAST({col} AS {sql_type}) IS NULL LIMIT 1").fetchall()
    return rows[0][0] if rows else None


def _connect(path: Path, kind: str, what: str) -> duckdb.DuckDBPyConnection:
    try:
        con = duckdb.connect(str(path), read_only=True) if kind == "duckdb" else duckdb.connect()
    except duckdb.Error as exc:
        raise DataError(f"{what} source {path}: cannot open as DuckDB: {_first_line(exc)}") from None
    con.execute("SET TimeZone = 'UTC'")  # naive datetimes in inputs are UTC
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:
        pass  # in a Jupyter kernel without ipywidgets DuckDB refuses to touch the setting
    return con


def _from_sql(con: duckdb.DuckDBPyConnection, path: Path, kind: str, what: str,
              table: str | None, query: str | None) -> str:
    if kind == "csv":
        return _csv_sql(path, "")
    if kind == "parquet":
        return f"read_parquet({_literal(str(path))})"
    if kind == "parquet_dataset":
        if not any(path.rglob("*.parquet")):
            raise DataError(f"{what} source {path}: folder holds no .parquet files")
        pattern = _literal(str(path / "**" / "*.parquet"))
        return (f"read_parquet({pattern}, hive_partitioning = true, "
                "hive_types_autocast = false, union_by_name = true)")
    if query:
        return f"({query.strip().rstrip(';')}) AS q"
    tables = [r[0] for r in con.sql(
        "SELECT CASE WHEN schema_name = 'main' THEN table_name ELSE schema_name || '.' || table_name END "
        "FROM (SELECT schema_name, table_name FROM duckdb_tables() UNION ALL "
        "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal) ORDER BY 1").fetchall()]
    if table is None:
        if len(tables) != 1:
            raise DataError(f"{what} source {path}: pass table= or query= "
                            f"(tables: {', '.join(tables) or 'none'})")
        table = tables[0]
    if table not in tables:
        raise DataError(f"{what} source {path}: no table {table!r} (tables: {', '.join(tables) or 'none'})")
    return ".".join(quote(part) for part in table.split("."))


def _csv_sql(path: Path, types: str) -> str:
    extra = f", types = {{{types}}}" if types else ""
    return f"read_csv({_literal(str(path))}, header = true{extra})"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
