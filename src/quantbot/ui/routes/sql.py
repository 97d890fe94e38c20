"""The SQL page ``/sql``: one read-only statement over the catalog and its views.

Statements run through ``run_sql`` (the guard of ``quantbot backtest sql``: one SELECT,
no file access outside the catalog, no ATTACH, extensions or settings, a timeout). The
statement is in the URL (``?q=``), so a query is shared by its link; ``/sql.csv?q=`` gives
the whole result as CSV.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from quantbot.errors import QuantbotError
from quantbot.ui.templating import render

router = APIRouter()

#: Rows the page shows (the CSV has them all).
SHOWN_ROWS = 500
EXAMPLE_SQL = ("SELECT run_type, status, count(*) AS runs, max(created_at) AS newest\n"
               "FROM backtest_runs_catalog\nGROUP BY ALL\nORDER BY runs DESC")


def table_rows(table: Any, limit: int | None = None) -> tuple[list[str], list[list[Any]]]:
    """(column names, rows as lists) of a pyarrow Table, at most ``limit`` rows."""
    part = table if limit is None else table.slice(0, limit)
    columns = part.column_names
    data = [part.column(i).to_pylist() for i in range(part.num_columns)]
    return columns, [list(r) for r in zip(*data)] if data else []


@router.get("/sql", include_in_schema=False)
def sql_page(request: Request, q: str = "") -> Response:
    from quantbot.artifacts.catalog.overview import catalog_relations
    from quantbot.artifacts.catalog.query import run_sql

    settings = request.app.state.settings
    ctx: dict[str, Any] = {"q": q, "columns": [], "rows": [], "total": 0, "error": None,
                           "ran": bool(q.strip()), "relations": [], "example": EXAMPLE_SQL,
                           "shown_rows": SHOWN_ROWS}
    if q.strip():
        try:
            table = run_sql(settings.catalog, q, lock_timeout=settings.lock_timeout)
            ctx["columns"], ctx["rows"] = table_rows(table, SHOWN_ROWS)
            ctx["total"] = table.num_rows
        except QuantbotError as err:
            ctx["error"] = str(err)
    if request.headers.get("HX-Target") == "sql-result":
        return render(request, "_sql_result.html", **ctx)
    try:
        ctx["relations"] = catalog_relations(settings.catalog, lock_timeout=settings.lock_timeout)
    except QuantbotError as err:
        ctx["error"] = ctx["error"] or str(err)
    return render(request, "sql.html", **ctx)


@router.get("/sql.csv", include_in_schema=False)
def sql_csv(request: Request, q: str) -> Response:
    """The whole result of ``q`` as a CSV file."""
    from quantbot.artifacts.catalog.query import run_sql
    from quantbot.artifacts.ops.preview import table_csv

    settings = request.app.state.settings
    table = run_sql(settings.catalog, q, lock_timeout=settings.lock_timeout)
    return Response(b"".join(table_csv(table)), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="query.csv"'})
