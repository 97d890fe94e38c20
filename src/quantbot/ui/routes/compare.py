"""``GET /compare?runs=A,B,...``: 2-10 runs side by side (``quantbot.analysis.compare_many``).
``only=diff`` shows only the parameters that differ; the URL holds the whole state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from quantbot.ui.pages import render, settings

router = APIRouter()


def parse_runs(values: list[str]) -> list[str]:
    """Run refs from ``?runs=A,B`` and/or repeated ``?runs=A&runs=B`` (order kept)."""
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


@router.get("/compare", include_in_schema=False)
def compare_page(request: Request, runs: Annotated[list[str] | None, Query()] = None,
                 only: str = "") -> Response:
    from quantbot.analysis.run_compare import compare_many
    from quantbot.ui.charts import compare_figures

    refs = parse_runs(runs or [])
    if not refs:  # no runs chosen yet: the page explains how to choose them
        return render(request, "compare.html", comparison=None, refs=[], only_diff=False)
    base_dir, catalog = settings(request)
    comparison = compare_many(refs, base_dir=base_dir, catalog=catalog)
    labels = [f"{chr(65 + i)} {r['run_id'][:8]}" for i, r in enumerate(comparison["runs"])]
    only_diff = only == "diff"
    params = [p for p in comparison["parameters"] if p["differs"] or not only_diff]
    from quantbot.analysis.stats import LOWER_IS_BETTER

    return render(request, "compare.html", comparison=comparison, refs=refs, labels=labels,
                  lower_is_better=LOWER_IS_BETTER,
                  only_diff=only_diff, parameters=params,
                  runs_param=",".join(r["run_id"] for r in comparison["runs"]),
                  figures=compare_figures(comparison, labels))
