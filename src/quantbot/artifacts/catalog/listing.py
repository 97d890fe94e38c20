"""PLACEHOLDER until h/filter merges (helper "filter" owns this module): the listing API of
COMMON.md, in memory and with a toy filter (``field = 'text'`` or ``field > number`` joined
by AND), so that the web app can be built against the contract. Replaced wholesale at merge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from quantbot.artifacts.catalog.connection import CatalogRef, open_catalog
from quantbot.errors import InvalidArgumentError

_ATTRS = ("run_id", "run_type", "status", "created_at", "started_at", "completed_at",
          "git_branch", "git_commit", "git_dirty", "name", "error", "error_phase", "deleted_at",
          "notes_count")


@dataclass(frozen=True)
class RunListing:
    runs: list[dict[str, Any]]
    total: int


def _iso(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def _all(db: CatalogRef, lock_timeout: float | None) -> list[dict[str, Any]]:
    with open_catalog(db, read_only=True, lock_timeout=lock_timeout) as con:
        runs = con.execute(
            "SELECT r.run_id, l.name, run_type, status, created_at, completed_at, git_branch, "
            "git_commit, error_type, error_message, error_phase, l.deleted_at, "
            "coalesce(l.notes_count, 0), parameters_json, manifest_json, started_at, git_dirty "
            "FROM backtest_runs_catalog r LEFT JOIN run_labels l USING (run_id)").fetchall()
        cols = [d[0] for d in con.execute("SELECT * FROM run_metrics LIMIT 0").description]
        metrics = {r[0]: dict(zip(cols[1:], r[1:])) for r in
                   con.execute("SELECT * FROM run_metrics").fetchall()}
        tags: dict[str, dict[str, str]] = {}
        for rid, k, v in con.execute("SELECT run_id, key, value FROM run_tags").fetchall():
            tags.setdefault(rid, {})[k] = v
    out = []
    for (rid, name, rtype, status, created, completed, branch, commit, etype, emsg, ephase,
         deleted, notes, params, manifest, started, dirty) in runs:
        out.append({
            "run_id": rid, "name": name, "run_type": rtype, "status": status,
            "created_at": _iso(created), "completed_at": _iso(completed),
            "started_at": _iso(started), "git_dirty": dirty,
            "git_branch": branch, "git_commit": commit,
            "error": f"{etype}: {emsg}" if etype else None, "error_phase": ephase,
            "deleted_at": _iso(deleted), "params": json.loads(params or "{}"),
            "dataset": json.loads(manifest).get("dataset", {}),
            "metrics": metrics.get(rid, {}), "tags": tags.get(rid, {}), "notes_count": notes})
    return out


def _get(run: dict[str, Any], field: str) -> Any:
    if field in _ATTRS:
        return run.get(field)
    head, _, rest = field.partition(".")
    value: Any = run.get({"params": "params", "dataset": "dataset", "metrics": "metrics",
                          "tags": "tags"}.get(head, "?"), None)
    for part in rest.split(".") if rest else ["?"]:
        value = value.get(part) if isinstance(value, dict) else None
    return value


_COND = re.compile(r"\s*([\w.]+)\s*(=|!=|>=|<=|>|<)\s*('(?:[^']*)'|-?[\d.]+)\s*$")


def _matches(run: dict[str, Any], text: str) -> bool:
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.I):
        m = _COND.match(part)
        if not m:
            raise InvalidArgumentError(f"filter: cannot parse {part!r} at column 1")
        field, op, lit = m.groups()
        want: Any = lit[1:-1] if lit.startswith("'") else float(lit)
        have = _get(run, field)
        if have is None:
            return False
        if isinstance(want, float):
            try:
                have = float(have)
            except (TypeError, ValueError):
                return False
        else:
            have = str(have)
        ok = {"=": have == want, "!=": have != want, ">": have > want, "<": have < want,
              ">=": have >= want, "<=": have <= want}[op]
        if not ok:
            return False
    return True


def validate_filter(text: str) -> None:
    _matches({}, text)


def list_runs(db: CatalogRef, filter: str | None = None, *, order_by: str | None = None,
              limit: int | None = 50, offset: int = 0, include_deleted: bool = False,
              only_deleted: bool = False, lock_timeout: float | None = None) -> RunListing:
    runs = _all(db, lock_timeout)
    if only_deleted:
        runs = [r for r in runs if r["deleted_at"]]
    elif not include_deleted:
        runs = [r for r in runs if not r["deleted_at"]]
    if filter and filter.strip():
        runs = [r for r in runs if _matches(r, filter)]
    runs.sort(key=lambda r: (r["created_at"], r["run_id"]), reverse=True)
    for part in reversed([p.strip() for p in (order_by or "").split(",") if p.strip()]):
        field, _, direction = part.partition(" ")
        if direction.strip().upper() not in ("", "ASC", "DESC"):
            raise InvalidArgumentError(f"order_by: bad direction in {part!r}")
        present = [r for r in runs if _get(r, field) is not None]
        missing = [r for r in runs if _get(r, field) is None]
        present.sort(key=lambda r: _get(r, field), reverse=direction.strip().upper() == "DESC")
        runs = present + missing
    page = runs[offset:] if limit is None else runs[offset:offset + limit]
    return RunListing(page, len(runs))


def filter_fields(db: CatalogRef) -> list[str]:
    runs = _all(db, None)
    fields = set(_ATTRS)
    for r in runs:
        fields |= {c for c in listing_columns([r])}
    return sorted(fields)


def _flat(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(f"{prefix}.{k}", v))
        return out
    return {prefix: value}


def listing_columns(runs: list[dict[str, Any]], columns: Sequence[str] | None = None,
                    only_changed: bool = False) -> list[str]:
    if columns is not None:
        return list(columns)
    seen: dict[str, set[str]] = {}
    for r in runs:
        for head in ("params", "metrics", "tags"):
            for k, v in _flat(head, r.get(head) or {}).items():
                seen.setdefault(k, set()).add(json.dumps(v, default=str))
    return [k for k, vals in seen.items() if not only_changed or len(vals) > 1]


def flat_row(run: dict[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    return {c: _get(run, c) for c in columns}
