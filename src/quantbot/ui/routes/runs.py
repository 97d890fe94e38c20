"""The runs page ``/``: every cataloged run, filtered, sorted, paged, with chosen columns.

The whole view lives in the URL (``filter``, ``order``, ``cols``, ``limit``, ``offset``,
``deleted``), so a view is shared by its link; htmx swaps the table and pushes the URL.
Annotation forms (tag, name, note, delete, undelete) POST to ``/runs/annotate``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from quantbot.artifacts.catalog.connection import open_catalog
from quantbot.errors import InvalidArgumentError, QuantbotError
from quantbot.ui.security import require_csrf
from quantbot.ui.templating import render

router = APIRouter()

PAGE_SIZES = (25, 50, 100, 200)
#: Columns every row shows: (field the header sorts on, header).
FIXED_COLUMNS = (("name", "Run"), ("run_type", "Type"), ("status", "Status"),
                 ("git_branch", "Branch"), ("created_at", "Created (UTC)"))
#: Pooled metrics shown by default, when the runs on the page have them.
DEFAULT_METRICS = ("metrics.trades_count", "metrics.median_return_bps", "metrics.win_rate",
                   "metrics.total_return", "metrics.sharpe")
MAX_DEFAULT_PARAMS = 3
#: Parameters that differ between runs without saying what a run did (hashes, input files).
_NOISY_PARAMS = ("hash", "fingerprint", "inputs.", "path", "query")
_LONG_VALUE = 24  # characters: a longer parameter value makes a poor default column
#: Run attributes offered by the column chooser besides params/dataset/metrics/tags.
EXTRA_ATTRIBUTES = ("run_id", "git_commit", "completed_at", "error_phase", "notes_count",
                    "deleted_at")
_CHOOSABLE_PREFIXES = ("params.", "dataset.", "metrics.")


def _int(text: str | None, default: int, name: str) -> int:
    if text in (None, ""):
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidArgumentError(f"invalid {name} {text!r}: expected a whole number") from None


@dataclass(frozen=True)
class RunsView:
    """The runs page's state, read from and written to the URL."""

    filter: str = ""
    order: str = ""
    cols: tuple[str, ...] = ()  # () = the default columns
    limit: int = 50
    offset: int = 0
    deleted: bool = False

    @classmethod
    def from_request(cls, request: Request) -> RunsView:
        q = request.query_params
        cols = [c.strip() for v in q.getlist("cols") for c in v.split(",") if c.strip()]
        limit = _int(q.get("limit"), 50, "limit")
        return cls(filter=q.get("filter", "").strip(), order=q.get("order", "").strip(),
                   cols=tuple(dict.fromkeys(cols)),
                   limit=limit if limit in PAGE_SIZES else 50,
                   offset=max(_int(q.get("offset"), 0, "offset"), 0),
                   deleted=q.get("deleted", "") not in ("", "0", "false"))

    def url(self, **change: Any) -> str:
        """``/`` with this view's state (defaults left out), after ``change``."""
        view = replace(self, **change)
        query = [(k, v) for k, v in (("filter", view.filter), ("order", view.order),
                                     ("cols", ",".join(view.cols))) if v]
        if view.limit != 50:
            query.append(("limit", str(view.limit)))
        if view.offset:
            query.append(("offset", str(view.offset)))
        if view.deleted:
            query.append(("deleted", "1"))
        return "/" + (f"?{urlencode(query)}" if query else "")

    def sort_url(self, field: str) -> str:
        """Click on a header: newest/largest first, a second click flips it."""
        order = f"{field} ASC" if self.order == f"{field} DESC" else f"{field} DESC"
        return self.url(order=order, offset=0)

    def sorted_as(self, field: str) -> str:
        """"desc", "asc" or "" for the header of ``field``."""
        if self.order == f"{field} DESC" or (not self.order and field == "created_at"):
            return "desc"
        return "asc" if self.order in (f"{field} ASC", field) else ""


def _default_columns(runs: list[dict[str, Any]], order: str) -> list[str]:
    """The column sorted on, parameters that differ between the runs shown, then the
    common pooled metrics."""
    from quantbot.artifacts.catalog.listing import listing_columns

    params = [c for c in listing_columns(runs, only_changed=True)
              if c.startswith("params.") and not any(n in c for n in _NOISY_PARAMS)
              and all(len(str(v)) <= _LONG_VALUE for v in _column_values(runs, c))]
    metrics = [c for c in DEFAULT_METRICS
               if any(r.get("metrics", {}).get(c.split(".", 1)[1]) is not None for r in runs)]
    sorted_on = [f for f in (p.strip().split(" ")[0] for p in order.split(",") if p.strip())
                 if f not in dict(FIXED_COLUMNS)]
    return list(dict.fromkeys([*sorted_on, *params[:MAX_DEFAULT_PARAMS], *metrics]))


def _column_values(runs: list[dict[str, Any]], column: str) -> list[Any]:
    from quantbot.artifacts.catalog.listing import flat_row

    return [flat_row(r, [column])[column] for r in runs]


def _choosable(fields: list[str]) -> list[str]:
    return [*EXTRA_ATTRIBUTES, *(f for f in fields if f.startswith(_CHOOSABLE_PREFIXES))]


def runs_context(request: Request, view: RunsView) -> dict[str, Any]:
    """Everything the runs table shows, from one short read-only catalog connection."""
    from quantbot.artifacts.catalog.listing import filter_fields, flat_row, list_runs
    from quantbot.artifacts.catalog.overview import catalog_stamp

    settings = request.app.state.settings
    ctx: dict[str, Any] = {"view": view, "runs": [], "total": 0, "rows": [], "columns": [],
                           "fields": [], "stamp": "", "error": None,
                           "fixed_columns": FIXED_COLUMNS, "page_sizes": PAGE_SIZES}
    try:
        with open_catalog(settings.catalog, read_only=True,
                          lock_timeout=settings.lock_timeout) as con:
            ctx["stamp"] = stamp = catalog_stamp(con)
            cached = getattr(request.app.state, "fields_cache", None)
            if cached is None or cached[0] != stamp:  # the field names change with the runs
                cached = request.app.state.fields_cache = (stamp, _choosable(filter_fields(con)))
            ctx["fields"] = cached[1]
            listing = list_runs(con, view.filter or None, order_by=view.order or None,
                                limit=view.limit, offset=view.offset,
                                include_deleted=view.deleted)
    except QuantbotError as err:  # a bad filter, a busy catalog: one line above the table
        ctx["error"] = str(err)
        return ctx
    columns = list(view.cols) or _default_columns(listing.runs, view.order)
    ctx.update(runs=listing.runs, total=listing.total, columns=columns,
               rows=[flat_row(r, columns) for r in listing.runs])
    return ctx


@router.get("/", include_in_schema=False)
def runs_page(request: Request) -> Response:
    try:
        view = RunsView.from_request(request)
    except InvalidArgumentError as err:
        view, bad = RunsView(), str(err)
    else:
        bad = None
    ctx = runs_context(request, view)
    ctx["error"] = bad or ctx["error"]
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "runs-region":
        return render(request, "_runs_table.html", oob=True, **ctx)
    return render(request, "runs.html", **ctx)


@router.get("/runs/live", include_in_schema=False)
def runs_live(request: Request, stamp: str = "") -> Response:
    """204 while the catalog is unchanged since ``stamp``; else a trigger that makes the
    runs table reload itself. A busy catalog answers 204: the next poll asks again."""
    from quantbot.artifacts.catalog.overview import catalog_stamp

    settings = request.app.state.settings
    try:
        now = catalog_stamp(settings.catalog, lock_timeout=settings.lock_timeout)
    except QuantbotError:
        return Response(status_code=204)
    if now == stamp:
        return Response(status_code=204)
    return Response(status_code=200, headers={"HX-Trigger": "runs-changed"})


ANNOTATE_ACTIONS = ("tag", "untag", "name", "note", "delete", "undelete")


def _tags(text: str) -> dict[str, str]:
    """``key=value`` pairs separated by commas; a bare ``key`` is a tag with an empty value."""
    out = {}
    for part in text.split(","):
        key, _, value = part.strip().partition("=")
        if part.strip():
            if not key.strip():
                raise InvalidArgumentError(f"invalid tag {part.strip()!r}: expected key=value")
            out[key.strip()] = value.strip()
    if not out:
        raise InvalidArgumentError("no tag given: expected key=value")
    return out


def apply_annotation(settings: Any, action: str, run_refs: list[str], text: str) -> str:
    """Call the annotation API for one form; returns the line shown to the user (with the
    API's warning when the records were saved but the catalog was too busy to take them)."""
    import warnings

    from quantbot.artifacts.ops.annotate import CatalogPendingWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CatalogPendingWarning)
        done = _annotate(settings, action, run_refs, text)
    pending = [str(w.message) for w in caught if issubclass(w.category, CatalogPendingWarning)]
    return f"{done}; {pending[0]}" if pending else done


def _annotate(settings: Any, action: str, run_refs: list[str], text: str) -> str:
    from quantbot.artifacts.ops import annotate

    if action not in ANNOTATE_ACTIONS:
        raise InvalidArgumentError(f"invalid action {action!r} (expected one of: "
                                   f"{', '.join(ANNOTATE_ACTIONS)})")
    if not run_refs:
        raise InvalidArgumentError("no run selected")
    where = {"base_dir": settings.base_dir, "catalog": settings.catalog,
             "lock_timeout": settings.lock_timeout}
    if action == "tag":
        tags = _tags(text)
        annotate.tag_runs(run_refs, tags, **where)
        return f"tagged {len(run_refs)} run(s) with {', '.join(f'{k}={v}' for k, v in tags.items())}"
    if action == "untag":
        keys = [k.strip() for k in text.split(",") if k.strip()]
        if not keys:
            raise InvalidArgumentError("no tag key given")
        annotate.untag_runs(run_refs, keys, **where)
        return f"removed tag(s) {', '.join(keys)} from {len(run_refs)} run(s)"
    if action in ("delete", "undelete"):
        getattr(annotate, f"{action}_runs")(run_refs, **where)
        return f"{action}d {len(run_refs)} run(s)"
    if len(run_refs) != 1:
        raise InvalidArgumentError(f"{action}: select exactly one run")
    if not text.strip():
        raise InvalidArgumentError(f"{action}: the text is empty")
    (annotate.name_run if action == "name" else annotate.note_run)(run_refs[0], text.strip(), **where)
    return "named the run" if action == "name" else "added the note"


def _local_next(target: str) -> str:
    """Where a plain form POST returns to: a path of this app only (no open redirect)."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


@router.post("/runs/annotate", include_in_schema=False, dependencies=[Depends(require_csrf)])
async def annotate_runs(request: Request) -> Response:
    """One annotation form: ``action`` (tag, untag, name, note, delete, undelete), ``runs``
    (ids or prefixes, comma-separated), ``text`` (``key=value`` tags, tag keys, the name or
    the note). An htmx request gets the result line and triggers a table refresh."""
    from starlette.concurrency import run_in_threadpool

    form = await request.form()
    refs = [r.strip() for v in form.getlist("runs") for r in str(v).split(",") if r.strip()]
    try:
        message = await run_in_threadpool(apply_annotation, request.app.state.settings,
                                          str(form.get("action", "")), refs, str(form.get("text", "")))
        kind = "ok"
    except QuantbotError as err:
        message, kind = str(err), "error"
    if request.headers.get("HX-Request"):
        response = render(request, "_message.html", message=message, kind=kind)
        if kind == "ok":
            response.headers["HX-Trigger"] = "runs-changed"
        return response
    if kind == "error":
        return render(request, "error.html", message=message, status_code=400)
    return RedirectResponse(_local_next(str(form.get("next", "/"))), status_code=303)
