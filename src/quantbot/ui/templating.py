"""Jinja2 templates for every page (autoescaped: a value from a run is always text, never
markup) and ``render``, which adds what ``base.html`` needs to each page's context."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.responses import Response

TEMPLATES_DIR = Path(__file__).parent / "templates"


def fmt_value(value: Any) -> str:
    """A cell as people read it: 4 significant digits, ISO times to the second, "" for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple | dict):
        import json

        return json.dumps(value, default=str)
    return str(value)


def fmt_cell(value: Any, column: str) -> str:
    """A table cell: ``fmt_value``, except epoch milliseconds (``*_ts_ms`` columns, as the
    artifacts store times) shown as the UTC time they stand for."""
    if column.endswith("_ts_ms") and isinstance(value, int) and not isinstance(value, bool):
        from datetime import UTC

        try:
            return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        except (OverflowError, OSError, ValueError):
            return fmt_value(value)
    return fmt_value(value)


def literals(text: str) -> Markup:
    """Docstring text for a page: escaped, then ````name```` shown as code."""
    import re

    return Markup(re.sub(r"``(.+?)``", r"<code>\1</code>", str(escape(text))))


def fmt_time(text: str | None) -> str:
    """An ISO-8601 time as ``YYYY-MM-DD HH:MM`` (UTC, as stored)."""
    return (text or "").replace("T", " ")[:16]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["value"] = fmt_value
    env.filters["time"] = fmt_time
    env.filters["short_id"] = lambda run_id: (run_id or "")[:8]
    env.filters["zip"] = zip
    env.filters["cell"] = fmt_cell
    env.filters["literals"] = literals
    return env


templates = Jinja2Templates(env=_environment())


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """The template ``name`` with ``context`` plus ``csrf_token`` and ``active`` (the nav
    entry of the page: the first path segment)."""
    base = {"csrf_token": getattr(request.state, "csrf", ""),
            "active": request.url.path.strip("/").split("/", 1)[0] or "runs"}
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


__all__ = ["fmt_cell", "fmt_time", "fmt_value", "render", "templates"]
