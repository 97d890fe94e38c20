"""``GET /callers``: every caller across the cataloged runs — calls and hit rates from the
truth layer, median net return over time (``quantbot.analysis.caller_overview``).
``?period=day|week|month`` and ``?policy=<policy_id>`` are in the URL."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from quantbot.ui.pages import render, settings

router = APIRouter()


@router.get("/callers", include_in_schema=False)
def callers_page(request: Request, period: str = "week", policy: str = "") -> Response:
    from quantbot.analysis.callers import PERIODS, caller_overview
    from quantbot.ui.charts import caller_figures

    _, catalog = settings(request)
    overview = caller_overview(catalog, period=period, policy_id=policy or None)
    return render(request, "callers.html", overview=overview, periods=PERIODS,
                  figures=caller_figures(overview))
