"""The guard around user SQL: one read-only statement, no files, a statement timeout.

Everything that runs SQL typed by a user (``quantbot backtest sql``, the demo, ``run_sql``)
goes through :func:`run_guarded`. The protection is DuckDB's own, set on a fresh connection
before the statement runs and then frozen:

- the catalog is opened ``read_only``; only one statement per call, and only SELECT-type
  statements (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE) are accepted, so COPY,
  EXPORT, ATTACH, INSTALL/LOAD, SET, PRAGMA, CALL and DDL never reach the engine;
- ``enable_external_access = false``: no file outside the catalog can be read or written
  (read_text, read_blob, glob, read_csv, ...), except the files and directories the caller
  lists in ``allow_read`` (DuckDB's ``allowed_paths`` / ``allowed_directories``); those are
  readable only, since a SELECT cannot write;
- extension auto-install, auto-load and community extensions are off; Python replacement
  scans (a local DataFrame read by name) are off;
- ``lock_configuration = true``: none of the above can be changed by the statement;
- a timer thread interrupts the statement after ``timeout`` seconds (SqlTimeoutError).

Concurrency (a reader must not stall ``catalog-sync``): a DuckDB reader holds the catalog
file, which keeps every writer out. A statement whose timeout is at most IN_PLACE_MAX_S
runs on the catalog itself, so it holds the file at most that long, below the writers'
default lock wait (10 s). A statement allowed to run longer runs on a snapshot: a copy of
the catalog file taken while the file is held (about 1.6 ms per MB, 0.25 s for 150 MB on
the development machine); writers proceed while the query runs on the copy.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from quantbot.artifacts.catalog.connection import open_catalog
from quantbot.errors import CatalogError, SqlError, SqlTimeoutError

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_SQL_TIMEOUT_S = 5.0
IN_PLACE_MAX_S = 5.0  # a longer timeout runs on a snapshot, so writers are never held longer
ALLOWED_STATEMENTS = frozenset({duckdb.StatementType.SELECT})

# Settings DuckDB accepts only when the database starts.
_STARTUP_CONFIG = {
    "autoinstall_known_extensions": "false",
    "autoload_known_extensions": "false",
    "allow_community_extensions": "false",
}


def check_statement(sql: str) -> None:
    """Refuse anything but exactly one SELECT-type statement, before it reaches the engine."""
    if not sql.strip():
        raise SqlError("empty SQL statement")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as err:
        raise SqlError(f"SQL error: {str(err).splitlines()[0]}") from None
    if len(statements) != 1:
        raise SqlError(f"SQL error: one statement per call, got {len(statements)}")
    kind = statements[0].type
    if kind not in ALLOWED_STATEMENTS:
        raise SqlError(f"SQL error: only read-only SELECT statements are allowed, got "
                       f"{kind.name} (the catalog and every file are read-only)")


def readable_paths(allow_read: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[str]]:
    """(files, directories) as absolute paths; a path that does not exist is an error."""
    files, dirs = [], []
    for entry in allow_read:
        path = os.path.abspath(os.fspath(entry))
        if os.path.isdir(path):
            dirs.append(path)
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise SqlError(f"--allow-read {os.fspath(entry)}: no such file or directory")
    return files, dirs


def _lock_down(con: duckdb.DuckDBPyConnection, files: list[str], dirs: list[str]) -> None:
    """Freeze the connection: no file access beyond ``files``/``dirs``, no setting changes."""
    if files:
        con.execute("SET allowed_paths = ?", [files])
    if dirs:
        con.execute("SET allowed_directories = ?", [dirs])
    con.execute("SET python_enable_replacements = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None,
             timeout: float) -> pa.Table:
    """Run and fetch the statement; a timer thread interrupts it after ``timeout`` seconds."""
    import pyarrow as pa

    fired = threading.Event()

    def interrupt() -> None:
        fired.set()
        con.interrupt()

    timer = threading.Timer(timeout, interrupt)
    timer.daemon = True
    timer.start()
    try:
        rel = con.sql(sql, params=params or None)
        return pa.table({}) if rel is None else rel.to_arrow_table()
    except duckdb.InterruptException:
        if fired.is_set():
            raise SqlTimeoutError(
                f"SQL statement interrupted after its timeout of {timeout:g} s "
                "(raise --timeout for a longer query)") from None
        raise SqlError("SQL statement interrupted") from None
    except duckdb.Error as err:
        raise SqlError(f"SQL error: {str(err).splitlines()[0]}") from None
    finally:
        timer.cancel()


@contextmanager
def catalog_snapshot(path: str, lock_timeout: float | None) -> Iterator[str]:
    """A private copy of the catalog (and its WAL) taken under the shared lock, then deleted.

    While the read-only connection is open no writer can have the file open, so the copy
    is a consistent database; the lock is held only for the copy.
    """
    with tempfile.TemporaryDirectory(prefix="quantbot-sql-") as tmp:
        copy = os.path.join(tmp, Path(path).name)
        with open_catalog(path, read_only=True, lock_timeout=lock_timeout):
            try:
                shutil.copyfile(path, copy)
                if os.path.exists(path + ".wal"):
                    shutil.copyfile(path + ".wal", copy + ".wal")
            except OSError as err:
                raise CatalogError(f"cannot snapshot catalog {path} into {tmp}: "
                                   f"{err.strerror or err}") from None
        yield copy


def run_guarded(db: str | os.PathLike[str], sql: str, params: list[Any] | None = None, *,
                timeout: float = DEFAULT_SQL_TIMEOUT_S,
                allow_read: Sequence[str | os.PathLike[str]] = (),
                lock_timeout: float | None = None) -> pa.Table:
    """Run one read-only SELECT against the catalog file ``db``; see the module docstring."""
    check_statement(sql)
    with guarded_session(db, timeout=timeout, allow_read=allow_read,
                         lock_timeout=lock_timeout) as run:
        return run(sql, params)


@contextmanager
def guarded_session(db: str | os.PathLike[str], *, timeout: float = DEFAULT_SQL_TIMEOUT_S,
                    allow_read: Sequence[str | os.PathLike[str]] = (),
                    lock_timeout: float | None = None,
                    ) -> Iterator[Callable[[str, list[Any] | None], pa.Table]]:
    """A guarded connection for a few SELECTs in a row (a listing's page, then its details):
    ``run(sql, params)`` checks and runs each one as :func:`run_guarded` does, on one
    connection, so the catalog file is opened once. ``timeout`` applies to each statement."""
    if isinstance(db, duckdb.DuckDBPyConnection):
        raise SqlError("user SQL runs only on a catalog path, never on an open connection")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise SqlError(f"invalid SQL timeout {timeout!r}: must be a number of seconds > 0")
    files, dirs = readable_paths(allow_read)
    path = os.fspath(db)
    with ExitStack() as stack:
        if timeout > IN_PLACE_MAX_S:
            path = stack.enter_context(catalog_snapshot(path, lock_timeout))
            lock_timeout = 0
        con = stack.enter_context(open_catalog(path, read_only=True, lock_timeout=lock_timeout,
                                               config=_STARTUP_CONFIG))
        _lock_down(con, files, dirs)

        def run(sql: str, params: list[Any] | None = None) -> pa.Table:
            check_statement(sql)
            return _execute(con, sql, params, timeout)

        yield run


__all__ = ["DEFAULT_SQL_TIMEOUT_S", "IN_PLACE_MAX_S", "check_statement", "guarded_session",
           "run_guarded"]
