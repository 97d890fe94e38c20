"""``GET /runs/{run_id}``: one run — provenance, parameters, timing, artifacts (verified,
with previews and downloads), exclusions, charts, per-caller table, frontier, the rerun
command and the annotation forms (name, tag, untag, note, delete/undelete, each posting to
the app's ``POST /runs/annotate`` with ``action``, ``runs``, ``text``, ``next`` and the CSRF
token ``csrf_token``). The data is ``quantbot.analysis.run_detail``'s."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from quantbot.ui.pages import render, settings

router = APIRouter()

@router.get("/runs/{run_id}", include_in_schema=False)
def run_page(request: Request, run_id: str) -> Response:
    """A run id may be a unique prefix of 8+ hex characters; an unknown run is a 404 page
    (RunNotFoundError through the app's error handler)."""
    from quantbot.analysis.run_views import run_detail
    from quantbot.ui.charts import run_figures

    base_dir, catalog = settings(request)
    detail = run_detail(run_id, base_dir=base_dir, catalog=catalog)
    return render(request, "run.html", run=detail, figures=run_figures(detail))
