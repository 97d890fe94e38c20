"""Opening the catalog: a path or an open connection, with a bounded wait on the file lock.

DuckDB lets one process write a database file at a time (readers in other processes are
locked out while it writes). Writers and readers therefore hold the file only briefly and
a loser retries until ``lock_timeout`` seconds have passed, then fails with a clear message.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from quantbot.errors import CatalogError

DEFAULT_CATALOG = "data/backtest_catalog.duckdb"
DEFAULT_LOCK_TIMEOUT_S = 10.0

CatalogRef = str | os.PathLike[str] | duckdb.DuckDBPyConnection


def lock_timeout_default() -> float:
    return float(os.environ.get("QUANTBOT_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT_S))


#: DuckDB writes a 4 KiB file header (magic ``DUCK`` at byte 8) and two 4 KiB database
#: headers before anything else.
_HEADER_BYTES = 3 * 4096


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def _being_created(path: str) -> bool:
    """A file shorter than DuckDB's headers that is empty, zeros, or starts like a DuckDB
    file: another process is creating the catalog right now. Anything else is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEADER_BYTES)
    except OSError:
        return False
    return len(head) < _HEADER_BYTES and (head[8:12] == b"DUCK" or not head.strip(b"\0"))


def _connect(path: str, read_only: bool, lock_timeout: float,
             config: dict[str, str] | None = None) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + lock_timeout
    delay = 0.005
    last_bad_size: int | None = None  # a complete-sized file that failed once
    while True:
        try:
            return duckdb.connect(path, read_only=read_only, config=config or {})
        except duckdb.IOException as err:
            text = str(err)
            if "not a valid DuckDB database" in text or "Could not read enough bytes" in text:
                # A file shorter than DuckDB's header blocks that looks half-written is
                # one the first sync is creating: wait for it like for a lock. A full-size
                # file gets one more try (it may have been completed during the attempt).
                size = _size(path)
                full_size_first_failure = size >= _HEADER_BYTES and size != last_bad_size
                if not (_being_created(path) or full_size_first_failure) \
                        or time.monotonic() >= deadline:
                    raise CatalogError(f"catalog {path} is not a DuckDB database") from None
                last_bad_size = size if size >= _HEADER_BYTES else None
                time.sleep(delay)
                continue
            if "database does not exist" in text:
                raise CatalogError(
                    f"catalog {path} does not exist yet (run `quantbot backtest catalog-sync`)"
                ) from None
            if "lock" not in text.lower():
                raise CatalogError(f"cannot open catalog {path}: {text.splitlines()[0]}") from None
            if time.monotonic() >= deadline:
                found = re.search(r"lock is held in (.*?) \(PID (\d+)\)", text)
                holder = f"{found.group(1)}, PID {found.group(2)}" if found else "another process"
                raise CatalogError(
                    f"catalog {path} is busy (locked by {holder}) for more than {lock_timeout:g} s; "
                    "retry, or raise --lock-timeout"
                ) from None
        except duckdb.Error as err:
            raise CatalogError(f"cannot open catalog {path}: {str(err).splitlines()[0]}") from None
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.2)


@contextmanager
def open_catalog(db: CatalogRef, *, read_only: bool, lock_timeout: float | None = None,
                 config: dict[str, str] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for one short unit of work; an open connection passed in is used as is.

    ``config`` holds DuckDB settings that must be fixed when the database starts (the SQL
    guard's extension switches); it is ignored for a connection passed in.
    """
    if isinstance(db, duckdb.DuckDBPyConnection):
        yield db
        return
    path = os.fspath(db)
    if not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = _connect(path, read_only, lock_timeout_default() if lock_timeout is None else lock_timeout,
                   config)
    try:
        yield con
    finally:
        con.close()


def catalog_exists(db: CatalogRef) -> bool:
    return isinstance(db, duckdb.DuckDBPyConnection) or os.path.exists(os.fspath(db))
