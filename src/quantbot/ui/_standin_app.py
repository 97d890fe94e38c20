"""STAND-IN (dropped at merge): a tiny app and templating so that uipages' pages run,
render and are tested before uicore's app.py / templating.py / base.html are on main.

Mirrors uicore's contract: ``app.state.settings`` with ``base_dir`` (a Storage) and
``catalog``; ``render(request, name, status_code, **context)`` adding ``csrf_token``;
static files at /static/ and plotly.min.js from the plotly package; a QuantbotError is a
one-line error page (404 for a run that is not found).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from quantbot.artifacts.catalog.connection import DEFAULT_CATALOG
from quantbot.artifacts.store.backends import Storage, open_storage
from quantbot.errors import QuantbotError, RunNotFoundError

UI = Path(__file__).parent
templates = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.FileSystemLoader(UI / "templates"), autoescape=True, trim_blocks=True,
    lstrip_blocks=True))
templates.env.filters["short_id"] = lambda run_id: (run_id or "")[:8]
templates.env.filters["time"] = lambda text: (text or "").replace("T", " ")[:16]


@dataclass(frozen=True)
class Settings:
    base_dir: Storage
    catalog: str


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    base = {"csrf_token": "standin", "base_template": "_standin_base.html",
            "active": request.url.path.strip("/").split("/", 1)[0] or "runs"}
    return templates.TemplateResponse(request, name, {**base, **context},
                                      status_code=status_code)


def create_app(base_dir: str | os.PathLike[str] | Storage = "runs",
               catalog: str | os.PathLike[str] = DEFAULT_CATALOG) -> FastAPI:
    import plotly

    from quantbot.ui.routes import callers, compare, run

    app = FastAPI()
    app.state.settings = Settings(open_storage(base_dir), os.fspath(catalog))

    @app.exception_handler(QuantbotError)
    async def _error(request: Request, exc: QuantbotError) -> Response:
        from html import escape

        return HTMLResponse(f"<!doctype html><title>error</title><p class=error>{escape(str(exc))}",
                            status_code=404 if isinstance(exc, RunNotFoundError) else 400)

    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    app.add_api_route("/static/plotly.min.js", lambda: FileResponse(plotly_js), methods=["GET"])
    app.mount("/static", StaticFiles(directory=UI / "static"), name="static")
    for module in (run, compare, callers):
        app.include_router(module.router)
    return app
