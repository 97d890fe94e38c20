"""Comparing two catalogs as a user sees them, for "delete it and sync again" checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb


def catalog_tables(db: Path) -> dict[str, Any]:
    """Columns (name, type) and sorted rows of every table, plus each view's exact DESCRIBE.

    Registration timestamps (``cataloged_at``) are left out; rows are read with columns in
    name order, since a table's physical column order is the order in which runs brought
    them (the views fix the order users see)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out: dict[str, Any] = {}
        for (name, kind) in con.execute(
                "SELECT table_name, table_type FROM information_schema.tables "
                "WHERE table_schema = 'main' ORDER BY 1").fetchall():
            described = con.execute(f'DESCRIBE "{name}"').fetchall()
            if kind == "VIEW":
                out[name] = described
                continue
            cols = sorted(c[0] for c in described if c[0] != "cataloged_at")
            out[name] = sorted(described)
            sel = ", ".join(f'"{c}"' for c in cols)
            found = con.execute(f'SELECT {sel} FROM "{name}"').fetchall()
            out[name + " rows"] = sorted(map(repr, found))
        return out
    finally:
        con.close()


def fresh_table_columns(db: Path, table: str) -> dict[str, str]:
    """Column name -> type of ``table`` in a catalog created at ``db`` by ``ensure_schema``
    (what a user's first sync makes), for docs-versus-code checks."""
    from quantbot.artifacts.catalog.schema import ensure_schema, table_columns

    con = duckdb.connect(str(db))
    try:
        ensure_schema(con)
        return table_columns(con, table)
    finally:
        con.close()
