"""The FastAPI app: settings, the safety middleware, error pages, routers and static files.

Every request opens the catalog read-only for a short moment (a page or an API call), so
``catalog-sync`` and ``catalog-watch`` can write between requests; a catalog busy for longer
than ``Settings.lock_timeout`` seconds is answered with a message (HTTP 503), never a 500.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from quantbot import __version__
from quantbot.artifacts.catalog.connection import DEFAULT_CATALOG
from quantbot.artifacts.store.backends import Storage, open_storage
from quantbot.errors import (
    AmbiguousRunIdError,
    CatalogError,
    QuantbotError,
    RunNotFoundError,
    UnsafeFileError,
)
from quantbot.ui.security import install_security

STATIC_DIR = Path(__file__).parent / "static"
#: Seconds a request waits for a catalog locked by a writer before it answers "busy".
PAGE_LOCK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Settings:
    """What every route reads from ``request.app.state.settings``."""

    base_dir: Storage
    catalog: str
    token: str | None = None
    lock_timeout: float = PAGE_LOCK_TIMEOUT_S


def _status(exc: QuantbotError) -> int:
    if isinstance(exc, RunNotFoundError):
        return 404
    if isinstance(exc, AmbiguousRunIdError):
        return 409
    if isinstance(exc, UnsafeFileError):
        return 403
    if isinstance(exc, CatalogError):
        return 503  # busy, missing or not yet synced: try again later
    return 400  # bad input: a filter, a run id, an artifact type, SQL


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/healthz"


async def _quantbot_error(request: Request, exc: Exception) -> Response:
    """A QuantbotError anywhere is one line for the user, with a status that says why."""
    assert isinstance(exc, QuantbotError)
    status = _status(exc)
    if _wants_json(request):
        return JSONResponse({"error": str(exc)}, status_code=status)
    from quantbot.ui.templating import render

    if request.headers.get("HX-Request"):  # a partial: the message replaces the fragment
        return render(request, "_message.html", message=str(exc), kind="error")
    return render(request, "error.html", message=str(exc), status_code=status)


async def _duckdb_error(request: Request, exc: Exception) -> Response:
    """A DuckDB error a query of ours let through: one line, never a 500 page."""
    line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    wrapped = CatalogError(f"catalog: {line}") if isinstance(exc, duckdb.IOException) \
        else QuantbotError(f"catalog query failed: {line}")
    return await _quantbot_error(request, wrapped)


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def create_app(base_dir: str | os.PathLike[str] | Storage = "runs",
               catalog: str | os.PathLike[str] = DEFAULT_CATALOG, *,
               token: str | None = None, lock_timeout: float | None = None) -> FastAPI:
    """The web app over ``catalog`` and the run folders under ``base_dir``.

    ``token``: when given, every request must carry it (``?token=`` once, then a cookie,
    or ``Authorization: Bearer``); without it only loopback Host names are served.
    ``lock_timeout``: seconds a request waits for a catalog a writer holds (default
    PAGE_LOCK_TIMEOUT_S) before it answers that the catalog is busy.
    """
    app = FastAPI(title="quantbot", version=__version__, docs_url=None, redoc_url=None,
                  description="Backtest runs, their artifacts and the catalog's SQL.")
    app.state.settings = Settings(base_dir=open_storage(base_dir), catalog=os.fspath(catalog),
                                  token=token or None,
                                  lock_timeout=PAGE_LOCK_TIMEOUT_S if lock_timeout is None
                                  else lock_timeout)
    install_security(app)

    @app.middleware("http")
    async def server_timing(request: Request, call_next: Any) -> Response:
        """``Server-Timing: app;dur=<ms>``: the app's own time per request (browsers'
        developer tools show it; the benchmark reads it)."""
        t0 = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1e3:.2f}"
        return response
    app.add_exception_handler(QuantbotError, _quantbot_error)
    app.add_exception_handler(duckdb.Error, _duckdb_error)
    plotly_js = _plotly_js()

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_min_js() -> FileResponse:
        """Plotly's bundle as its Python package ships it: charts work offline."""
        return FileResponse(plotly_js, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    from quantbot.ui.routes import api, artifacts, callers, compare, run, runs, sql

    for module in (runs, run, compare, callers, sql, api, artifacts):
        app.include_router(module.router)
    return app


__all__ = ["PAGE_LOCK_TIMEOUT_S", "Settings", "create_app"]
