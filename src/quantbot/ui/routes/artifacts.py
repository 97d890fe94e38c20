"""One artifact of one run: JSON pages, the Parquet file as stored, CSV, and the HTML
preview fragment the run page embeds (prev/next paging by htmx).

The artifact type must be one of the known types and the file served is the one the
catalog lists for the run (``quantbot.artifacts.ops.preview``): nothing in the URL is
ever used as a path.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from quantbot.ui.jsonable import jsonable
from quantbot.ui.routes.api import located
from quantbot.ui.templating import render

router = APIRouter()

PREVIEW_ROWS = 25


def _download(request: Request, run_ref: str, artifact_type: str, ext: str,
              ) -> tuple[Any, Any, str, dict[str, str]]:
    """(settings, the run's storage, the artifact type, the attachment header) of a download."""
    from quantbot.artifacts.ops.lookup import run_id_of
    from quantbot.artifacts.schema.artifact_types import ArtifactType

    run = located(request, run_ref)
    kind = ArtifactType.parse(artifact_type).value
    name = f"{run_id_of(run)[:8]}-{kind}.{ext}"
    return request.app.state.settings, run, kind, {
        "Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/api/runs/{run_id}/artifacts/{artifact_type}.parquet", tags=["artifacts"])
def artifact_parquet(request: Request, run_id: str, artifact_type: str) -> Response:
    """The artifact's Parquet file exactly as stored (its sha256 is in the manifest)."""
    from quantbot.artifacts.ops.preview import artifact_bytes

    settings, run, kind, headers = _download(request, run_id, artifact_type, "parquet")
    data = artifact_bytes(settings.catalog, run, kind, lock_timeout=settings.lock_timeout)
    return Response(data, media_type="application/vnd.apache.parquet", headers=headers)


@router.get("/api/runs/{run_id}/artifacts/{artifact_type}.csv", tags=["artifacts"])
def artifact_csv(request: Request, run_id: str, artifact_type: str) -> Response:
    """The artifact as CSV at the current schema (nested values as JSON text), streamed."""
    from quantbot.artifacts.ops.preview import artifact_csv as csv_chunks

    settings, run, kind, headers = _download(request, run_id, artifact_type, "csv")
    chunks = csv_chunks(settings.catalog, run, kind, lock_timeout=settings.lock_timeout)
    first = next(chunks)  # errors (not cataloged, bad file) surface before the 200 is sent
    return StreamingResponse(iter([first, *chunks]), media_type="text/csv", headers=headers)


@router.get("/api/runs/{run_id}/artifacts/{artifact_type}", tags=["artifacts"])
def artifact_json(request: Request, run_id: str, artifact_type: str,
                  limit: int = Query(100, ge=0, le=1000), offset: int = Query(0, ge=0)) -> JSONResponse:
    """Rows ``offset .. offset+limit`` of one artifact: ``{"columns", "rows", "total"}``."""
    from quantbot.artifacts.ops.preview import artifact_page

    page = artifact_page(located(request, run_id), artifact_type, limit=limit, offset=offset)
    return JSONResponse(jsonable(page))


@router.get("/runs/{run_id}/artifacts/{artifact_type}/preview", include_in_schema=False)
def artifact_preview(request: Request, run_id: str, artifact_type: str,
                     limit: int = Query(PREVIEW_ROWS, ge=1, le=200),
                     offset: int = Query(0, ge=0)) -> Response:
    """An HTML table of one page of the artifact, with prev/next buttons that swap it."""
    from quantbot.artifacts.ops.lookup import run_id_of
    from quantbot.artifacts.ops.preview import artifact_page

    run = located(request, run_id)
    page = artifact_page(run, artifact_type, limit=limit, offset=offset)
    return render(request, "_artifact_preview.html", page=page, run_id=run_id_of(run),
                  kind=artifact_type, limit=limit, offset=offset)
