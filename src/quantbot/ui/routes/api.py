"""The JSON API under ``/api`` (documented at ``/docs``): runs, one run, SQL, health.

Each route calls one API function of quantbot.artifacts and returns what it gives, made
JSON-safe (times as ISO text, NaN as null). Errors are ``{"error": "<one line>"}`` with a
status saying why (400 bad input, 404 unknown run, 409 ambiguous prefix, 503 busy catalog).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from quantbot import __version__
from quantbot.ui.jsonable import jsonable

router = APIRouter()

#: The most runs one call returns.
MAX_RUNS_PER_CALL = 1_000


def located(request: Request, run_ref: str) -> Any:
    """The storage of the run a UUID or unique prefix (≥ 8 hex) names."""
    from quantbot.artifacts.ops.lookup import locate_run

    settings = request.app.state.settings
    return locate_run(run_ref, catalog=settings.catalog, base_dir=settings.base_dir)


@router.get("/api/runs", tags=["runs"])
def api_runs(request: Request, filter: str | None = None, order_by: str | None = None,
             limit: int = Query(50, ge=0, le=MAX_RUNS_PER_CALL), offset: int = Query(0, ge=0),
             include_deleted: bool = False) -> JSONResponse:
    """Cataloged runs matching ``filter`` (the filter language of ``catalog-query``),
    newest first or by ``order_by`` (``"metrics.sharpe DESC, created_at"``), paged:
    ``{"runs": [...], "total": N}``."""
    from quantbot.artifacts.catalog.connection import open_catalog
    from quantbot.artifacts.catalog.listing import list_runs

    settings = request.app.state.settings
    # One plain read-only connection, as the runs page uses: given a path, list_runs opens
    # a freshly configured guarded database each call (~0.3 s more at 100k runs); the
    # filter compiles to bound values and fixed identifiers either way.
    with open_catalog(settings.catalog, read_only=True, lock_timeout=settings.lock_timeout) as con:
        listing = list_runs(con, filter or None, order_by=order_by or None, limit=limit,
                            offset=offset, include_deleted=include_deleted)
    return JSONResponse({"runs": jsonable(listing.runs), "total": listing.total})


@router.get("/api/runs/{run_id}", tags=["runs"])
def api_run(request: Request, run_id: str) -> JSONResponse:
    """One run (a UUID or a unique prefix of 8+ hex characters): its manifest and its
    annotations (name, tags, notes, deletion)."""
    from quantbot.artifacts.ops.annotate import run_annotations_state
    from quantbot.artifacts.ops.lookup import run_id_of, run_uri
    from quantbot.artifacts.store.runs import read_manifest

    run = located(request, run_id)
    manifest = read_manifest(run)
    full_id = run_id_of(run)
    annotations = run_annotations_state(request.app.state.settings.catalog, full_id)
    return JSONResponse(jsonable({
        "run_id": full_id, "run_dir": run_uri(run),
        "manifest": manifest.model_dump(mode="json", by_alias=True, exclude_none=True),
        "annotations": annotations}))


class SqlRequest(BaseModel):
    sql: str


@router.post("/api/sql", tags=["sql"])
def api_sql(request: Request, body: SqlRequest) -> JSONResponse:
    """One read-only SELECT over the catalog and its ``all_*`` views (the guard of the
    ``sql`` command): ``{"columns": [...], "rows": [[...], ...]}``."""
    from quantbot.artifacts.catalog.query import run_sql
    from quantbot.ui.routes.sql import table_rows

    settings = request.app.state.settings
    columns, rows = table_rows(run_sql(settings.catalog, body.sql,
                                       lock_timeout=settings.lock_timeout))
    return JSONResponse({"columns": columns, "rows": jsonable(rows)})


@router.get("/healthz", tags=["health"])
def healthz() -> dict[str, str]:
    """The app answers (it does not touch the catalog)."""
    return {"status": "ok", "version": __version__}


@router.get("/docs", include_in_schema=False)
def api_docs(request: Request) -> Any:
    """The API's reference, rendered here from its OpenAPI document (``/openapi.json``):
    no script from a CDN, so it works offline."""
    from quantbot.ui.templating import render

    spec = request.app.openapi()
    endpoints = [{"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                  "description": op.get("description", ""),
                  "parameters": [(p["name"], p["in"], p.get("schema", {}).get("type", ""),
                                  p.get("required", False)) for p in op.get("parameters", [])],
                  "body": "requestBody" in op}
                 for path, ops in spec["paths"].items() for method, op in ops.items()]
    return render(request, "docs.html", endpoints=endpoints, version=spec["info"]["version"])
