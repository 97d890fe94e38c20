"""What the run, compare and callers pages share: the Jinja filters that format numbers by
their unit, the settings of the app, and ``render``.

The filters reuse the report's formatting (``report.format_cell``: rates as %, ``_ms`` in
hours), so a number reads the same in the report and in the app. They are added to the
app's Jinja environment when a page module is imported.
"""

from __future__ import annotations

import math
import os
from typing import Any

from fastapi import Request
from starlette.responses import Response

from quantbot.analysis.report import format_cell


def fmt_metric(value: Any, name: str = "") -> str:
    """A metric by its name's unit (see report.format_cell); "–" for none."""
    return format_cell(value, name)


def fmt_delta(value: Any, name: str = "") -> str:
    """A difference with its sign (+12.5, −0.3 %); empty for none or zero."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == 0:
        return ""
    text = format_cell(abs(value), name)
    return ("+" if value > 0 else "−") + text


def fmt_bytes(value: int | None) -> str:
    """A size in B / KiB / MiB / GiB."""
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{value} B"  # pragma: no cover - the loop always returns


def fmt_param(value: Any) -> str:
    """A parameter value: JSON for lists and dicts, "–" for absent."""
    if value is None:
        return "–"
    if isinstance(value, list | dict):
        import json

        return json.dumps(value, separators=(",", ":"))
    return format_cell(value)


FILTERS = {"metric": fmt_metric, "delta": fmt_delta, "bytes": fmt_bytes, "param": fmt_param}


def settings(request: Request) -> tuple[Any, str]:
    """(base_dir storage, catalog path) of the running app (``app.state.settings``)."""
    s = request.app.state.settings
    return s.base_dir, os.fspath(s.catalog)


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """The page template ``name`` through the app's templating (which adds csrf_token and
    the active nav entry), with this module's filters installed."""
    from quantbot.ui.templating import render as core_render
    from quantbot.ui.templating import templates

    for key, fn in FILTERS.items():
        templates.env.filters.setdefault(key, fn)
    return core_render(request, name, status_code=status_code, **context)


__all__ = ["FILTERS", "fmt_bytes", "fmt_delta", "fmt_metric", "fmt_param", "render",
           "settings"]
