"""Catalog transactions whose failures name their real cause.

When DuckDB cannot write the catalog file (no space left, a read-only file system), its
COMMIT fails and rolls the transaction back itself; a ROLLBACK after that fails again with
"no transaction is active", which used to hide the real cause. A storage failure is also
never a bad run: it stops the whole write with one line naming the catalog and the cause,
instead of marking every run of the batch invalid.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import duckdb

from quantbot.artifacts.catalog.connection import CatalogRef
from quantbot.errors import CatalogWriteError

_STORAGE_SIGNS = ("No space left", "Could not write", "Read-only file system", "Disk quota")


def is_storage_failure(err: BaseException) -> bool:
    """True when DuckDB could not write the catalog file (not a problem of the data)."""
    if not isinstance(err, duckdb.Error):
        return False
    return isinstance(err, duckdb.IOException) or any(s in str(err) for s in _STORAGE_SIGNS)


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN ... COMMIT; on any error the transaction is rolled back and the error re-raised."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # a failed COMMIT has rolled back already
            con.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def storage_errors(db: CatalogRef) -> Iterator[None]:
    """Turn a storage failure while writing ``db`` into CatalogWriteError (one line)."""
    try:
        yield
    except duckdb.Error as err:
        if not is_storage_failure(err):
            raise
        cause = str(err).splitlines()[0].split("Failed to commit: ")[-1]
        where = "" if isinstance(db, duckdb.DuckDBPyConnection) else f" {os.fspath(db)}"
        raise CatalogWriteError(
            f"cannot write catalog{where}: {cause}; the last transaction was rolled back "
            "(free space or fix permissions, then sync again)") from None


__all__ = ["is_storage_failure", "storage_errors", "transaction"]
