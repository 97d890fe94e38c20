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

from quantbot.backtest.data.columns import literal, quote
from quantbot.errors import DataError

IN_MEMORY = "memory"
"""The ``kind`` of a source passed as a DataFrame or Arrow table (it has no path)."""
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
    """A source opened on a DuckDB connection: ``from_sql`` is usable after ``FROM``.

    A file or in-memory source is the view named ``what`` ('alerts' | 'candles'), which a
    user query selects from; a DuckDB database is its own tables.
    """

    con: duckdb.DuckDBPyConnection
    path: Path | str  # a label for in-memory inputs
    kind: str
    from_sql: str
    columns: dict[str, str]  # column name -> DuckDB type name
    view: str | None = None  # the view over a file or frame

    def with_varchar(self, names: Sequence[str]) -> Source:
        """The same source with ``names`` read as text (CSV only: keeps ids like ``007``
        and times that a format must parse, which the CSV sniffer would guess)."""
        if self.kind != "csv" or not names or self.view is None:
            return self
        assert isinstance(self.path, Path)
        in_file = _describe(self.con, quote(self.view), self.view, self.path)
        types = ", ".join(f"{literal(n)}: 'VARCHAR'" for n in dict.fromkeys(names) if n in in_file)
        if not types:
            return self
        self.con.execute(f"CREATE OR REPLACE VIEW {quote(self.view)} AS SELECT * FROM "
                         f"{_csv_sql(self.path, types)}")
        columns = _describe(self.con, self.from_sql, self.view, self.path)
        return Source(self.con, self.path, self.kind, self.from_sql, columns, self.view)


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
        return _pandas_table(source)
    raise DataError(f"{what}: expected a path, a pandas/polars DataFrame or a pyarrow Table, "
                    f"got {type(source).__module__}.{type(source).__name__}")


def _pandas_table(frame: Any) -> pa.Table:
    """A pandas frame as Arrow, its index included when it is data: a named index, or a
    time index (backtesting.py's and yfinance's frames keep the bar times there; unnamed, it
    becomes the column ``ts``). A row-number index, or one whose name a column already
    has, is left out."""
    index = frame.index
    name = index.name
    if name is None and getattr(index, "nlevels", 1) == 1 and getattr(index.dtype, "kind", "") == "M":
        name = "ts"
    if name is None or getattr(index, "nlevels", 1) > 1 or str(name) in map(str, frame.columns):
        return pa.Table.from_pandas(frame, preserve_index=False)
    return pa.Table.from_pandas(frame.rename_axis(str(name)).reset_index(), preserve_index=False)


@contextmanager
def open_source(source: str | Path | Any, what: str, *, table: str | None = None,
                query: str | None = None, tz: str = "UTC") -> Iterator[Source]:
    """Open ``source`` (``what`` names it in errors and is the view a query selects from,
    e.g. 'candles'); naive timestamps are read in ``tz``. Closes the connection."""
    frame = in_memory_table(source, what)
    path = Path(f"<in-memory {what}>" if frame is not None else source).expanduser()
    kind = IN_MEMORY if frame is not None else detect_kind(path)
    if kind != "duckdb" and table:
        raise DataError(f"{what} source {path}: table applies to DuckDB databases only (a query "
                        f"sees this source as the view {what!r})")
    if table and query:
        raise DataError(f"{what} source {path}: pass either table or query, not both")
    con = _connect(path, kind, what, tz)
    try:
        view = None
        if kind == "duckdb":
            from_sql = _database_sql(con, path, what, table, query)
        else:
            view = what
            _create_view(con, view, path, kind, frame)
            from_sql = f"({query.strip().rstrip(';')}) AS q" if query else quote(view)
        hint = f" (a query sees this source as the view {what!r})" if query and view else ""
        yield Source(con, path if frame is None else str(path), kind, from_sql,
                     _describe(con, from_sql, what, path, hint), view)
    finally:
        con.close()


def check_tz(tz: str) -> None:
    """Refuse a time zone DuckDB does not know (one line), before anything is read."""
    con = duckdb.connect()
    try:
        _set_tz(con, tz)
    finally:
        con.close()


def check_ts_format(ts_format: str | None, flag: str) -> None:
    """Refuse a strptime format DuckDB cannot use (e.g. ``%Q``), naming ``flag``."""
    if ts_format is None:
        return
    con = duckdb.connect()
    try:
        con.execute(f"SELECT try_strptime('', {literal(ts_format)})")
    except duckdb.Error as exc:
        raise DataError(f"{flag} {ts_format!r}: {_first_line(exc)}") from None
    finally:
        con.close()


def _set_tz(con: duckdb.DuckDBPyConnection, tz: object) -> None:
    if not isinstance(tz, str) or not tz.strip():
        raise DataError(f"tz: expected a time zone name such as 'UTC' or 'America/New_York', "
                        f"got {tz!r}")
    try:
        con.execute(f"SET TimeZone = {literal(tz)}")
    except duckdb.Error:
        raise DataError(f"tz: unknown time zone {tz!r}: expected an IANA name such as 'UTC', "
                        "'America/New_York' or 'Europe/London'") from None


def _describe(con: duckdb.DuckDBPyConnection, from_sql: str, what: str, path: Path,
              hint: str = "") -> dict[str, str]:
    try:
        described = con.sql(f"DESCRIBE SELECT * FROM {from_sql}").fetchall()
    except duckdb.Error as exc:
        raise DataError(f"{what} source {path}: cannot read it: {_first_line(exc)}{hint}") from None
    return {row[0]: row[1] for row in described}


def _create_view(con: duckdb.DuckDBPyConnection, view: str, path: Path, kind: str,
                 frame: pa.Table | None) -> None:
    """The view ``view`` over a file, folder or in-memory frame."""
    if frame is not None:
        con.register(view, frame)
        return
    if kind == "csv":
        reader = _csv_sql(path, "")
    elif kind == "parquet":
        reader = f"read_parquet({literal(str(path))})"
    else:
        if not any(path.rglob("*.parquet")):
            raise DataError(f"{view} source {path}: folder holds no .parquet files")
        pattern = literal(str(path / "**" / "*.parquet"))
        reader = (f"read_parquet({pattern}, hive_partitioning = true, "
                  "hive_types_autocast = false, union_by_name = true)")
    try:  # DuckDB binds the view now: a corrupt or unreadable file fails here
        con.execute(f"CREATE VIEW {quote(view)} AS SELECT * FROM {reader}")
    except duckdb.Error as exc:
        raise DataError(f"{view} source {path}: cannot read it: {_first_line(exc)}") from None


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


def _connect(path: Path, kind: str, what: str, tz: str) -> duckdb.DuckDBPyConnection:
    try:
        con = duckdb.connect(str(path), read_only=True) if kind == "duckdb" else duckdb.connect()
    except duckdb.Error as exc:
        raise DataError(f"{what} source {path}: cannot open as DuckDB: {_first_line(exc)}") from None
    try:
        _set_tz(con, tz)  # naive datetimes in inputs are in tz
    except DataError:
        con.close()
        raise
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:
        pass  # in a Jupyter kernel without ipywidgets DuckDB refuses to touch the setting
    return con


def _database_sql(con: duckdb.DuckDBPyConnection, path: Path, what: str,
                  table: str | None, query: str | None) -> str:
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
    return f"read_csv({literal(str(path))}, header = true{extra})"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
