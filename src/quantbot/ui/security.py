"""The app's safety rules, applied to every request before a route sees it.

- Host: without a token only loopback names are served (127.0.0.1, localhost, ::1), so a
  web page cannot reach the app through DNS rebinding.
- Token: when the app has one, a request carries it as ``Authorization: Bearer <token>``,
  as a cookie set after the first visit, or once as ``?token=`` (answered by a redirect to
  the same URL without it, with the cookie set), as Jupyter does.
- Cross-site requests: a POST whose Origin (or Referer) is not this app is refused (403);
  write routes also require the per-session CSRF token (a SameSite cookie and the same
  value in the form field ``csrf_token`` or the ``X-CSRF-Token`` header that htmx sends).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from fastapi import FastAPI

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def new_token() -> str:
    """A token to print at start when none was given (192 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


def _cookie(request: Request, what: str) -> str:
    """Cookie names carry the port: browsers share cookies between ports of one host."""
    return f"quantbot_{what}_{request.url.port or 80}"


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _cross_site(request: Request) -> bool:
    """True when the browser says the request comes from another site."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source == "null"
    return urlsplit(source).netloc.lower() != request.headers.get("host", "").lower()


def _without_token(request: Request) -> str:
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    return request.url.path + (f"?{urlencode(query)}" if query else "")


def install_security(app: FastAPI) -> None:
    """Add the middleware enforcing the rules of the module doc on ``app``."""

    @app.middleware("http")
    async def guard(request: Request,
                    call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        token = request.app.state.settings.token
        if token is None and _host_name(request.headers.get("host", "")) not in LOOPBACK_HOSTS:
            return PlainTextResponse("forbidden: this app serves loopback names only "
                                     "(start it with a --token to serve other hosts)", 403)
        if token is not None:
            given = request.query_params.get("token")
            if given is not None and _same(given, token) and request.method in SAFE_METHODS:
                response: Response = RedirectResponse(_without_token(request), status_code=303)
                _set_cookie(request, response, "token", token)
                return response
            cookie = request.cookies.get(_cookie(request, "token"))
            bearer = _bearer(request)
            if not any(v is not None and _same(v, token) for v in (bearer, cookie)):
                return PlainTextResponse(
                    "unauthorized: open the URL with ?token= that `quantbot backtest ui` "
                    "printed, or send Authorization: Bearer <token>", 401)
        if request.method not in SAFE_METHODS and _cross_site(request):
            return PlainTextResponse("forbidden: cross-site request", 403)
        csrf = request.cookies.get(_cookie(request, "csrf"))
        fresh = not csrf
        request.state.csrf = csrf or secrets.token_urlsafe(18)
        response = await call_next(request)
        if fresh:
            _set_cookie(request, response, "csrf", request.state.csrf)
        return response


def _set_cookie(request: Request, response: Response, what: str, value: str) -> None:
    response.set_cookie(_cookie(request, what), value, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


async def require_csrf(request: Request) -> None:
    """Dependency of every write route: the session's CSRF token must come with the request
    (an ``Authorization: Bearer`` request is exempt: a browser never adds that header)."""
    token = request.app.state.settings.token
    bearer = _bearer(request)
    if token is not None and bearer is not None and _same(bearer, token):
        return
    cookie = request.cookies.get(_cookie(request, "csrf"))
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and "form" in request.headers.get("content-type", ""):
        sent = (await request.form()).get(CSRF_FIELD)
    if not cookie or not isinstance(sent, str) or not _same(sent, cookie):
        raise HTTPException(403, "forbidden: missing or wrong CSRF token (reload the page)")


__all__ = ["CSRF_FIELD", "CSRF_HEADER", "LOOPBACK_HOSTS", "install_security", "new_token",
           "require_csrf"]
