"""Everything the web app's run page shows about one run, as one JSON-able dict.

:func:`run_detail` is the page's only data source (the route renders what it returns), and
a notebook gets the same dict. It reuses the run tools rather than repeating them:
``describe_run`` finds the run and its manifest (the catalog's copy when the folder is
gone), ``verify_run`` checks every artifact against the manifest (bytes, sha256, Parquet,
rows, schema), the report's helpers pick the headline row, the frontier's group and count
the errors, and :mod:`quantbot.analysis.chart_data` computes the chart series.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from typing import Any

import pyarrow as pa

from quantbot.analysis.chart_data import (
    clean,
    equity_series,
    frontier_chart,
    policy_trades,
    trade_charts,
)
from quantbot.analysis.compare import flatten_parameters, path_metrics, path_metrics_by_caller
from quantbot.analysis.report import SUMMARY_COLUMNS, error_counts, frontier_group, headline_row
from quantbot.artifacts.catalog.connection import DEFAULT_CATALOG, CatalogRef
from quantbot.artifacts.schema.arrow_schemas import STANDARD_LEVELS
from quantbot.artifacts.store.backends import Storage

#: Exclusion rows listed one by one (the counts by reason cover all of them).
MAX_EXCLUSIONS_LISTED = 200
#: Artifacts whose rows the charts and tables read (the others are only inventoried).
_READ = ("alerts", "paths", "trades", "summary", "frontier", "errors", "equity")


def _located(ref: str, base_dir: str | os.PathLike[str] | Storage,
             catalog: CatalogRef | None) -> tuple[dict[str, Any], Storage]:
    from quantbot.artifacts.ops.describe import describe_run
    from quantbot.artifacts.ops.lookup import locate_run

    described = describe_run(ref, catalog=catalog, base_dir=base_dir)
    run = locate_run(described["manifest"]["run_id"], catalog=catalog, base_dir=base_dir)
    return described, run


def artifact_inventory(run: Storage, manifest: dict[str, Any]) -> tuple[list[dict[str, Any]],
                                                                        list[str]]:
    """(one row per artifact: type, rows, bytes, path, sha256 and its ``state`` —
    ``verified``, ``mismatch`` (sha256 or size differ), ``missing`` or ``invalid`` — with the
    ``problem`` text; the run-level problems verify found: marker, config hash, partition).
    A folder that is gone (catalog copy only) has every artifact ``missing``."""
    from quantbot.artifacts.ops.verify import verify_run
    from quantbot.artifacts.store.runs import RunLocation

    folder = run.exists(run.root)
    problems = []
    if folder:
        month = posixpath.basename(posixpath.dirname(run.root.rstrip("/")))
        problems = verify_run(run, RunLocation(manifest["run_id"], month, run.root))
    by_path = {p.path: p.problem for p in problems}
    rows, used = [], set()
    for name, entry in manifest["artifacts"].items():
        path = run.join(run.root, *entry["path"].split("/"))
        problem = by_path.get(path) if folder else "the run folder is gone"
        used.add(path)
        if problem is None:
            state = "verified"
        elif not folder or "missing" in problem:
            state = "missing"
        elif "sha256" in problem or "bytes" in problem:
            state = "mismatch"
        else:
            state = "invalid"
        rows.append({"type": name, "rows": entry["rows"], "bytes": entry["bytes"],
                     "path": entry["path"], "sha256": entry["sha256"], "state": state,
                     "problem": problem})
    return rows, [p.problem for p in problems if p.path not in used]


def rerun_command(run_id: str, base_dir: str | os.PathLike[str] | Storage,
                  catalog: CatalogRef | None) -> str:
    """The CLI command that runs ``run_id`` again and checks every artifact is identical
    (``quantbot backtest rerun``, see cli/run_cmds.py), with the folders this view used."""
    parts = ["quantbot", "backtest", "rerun", run_id]
    if isinstance(base_dir, Storage):  # an app's opened base dir: its path or URI
        parts += ["--base-dir", base_dir.local_path(base_dir.root) or base_dir.uri(base_dir.root)]
    else:
        parts += ["--base-dir", os.fspath(base_dir)]
    if isinstance(catalog, str | os.PathLike):
        parts += ["--duckdb", os.fspath(catalog)]
    return shlex.join(parts)


def _inputs(parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """The inputs a flow recorded (``parameters.inputs``: path or table/query, rows and the
    content fingerprint that a rerun checks)."""
    recorded = parameters.get("inputs")
    if not isinstance(recorded, dict):
        return []
    return [{"name": name, **(entry if isinstance(entry, dict) else {"value": entry})}
            for name, entry in recorded.items()]


def _exclusions(errors: pa.Table | None, callers: dict[str, str]) -> dict[str, Any]:
    """Calls excluded by coverage (the errors artifact's phase ``coverage``: the message is
    the reason) with counts by reason, and every error row counted by level/phase/reason."""
    if errors is None:
        return {"total": 0, "by_reason": [], "rows": [], "counts": [], "others": []}
    rows = errors.to_pylist()
    excluded = [r for r in rows if r["phase"] == "coverage"]
    reasons: dict[str, int] = {}
    for r in excluded:
        reasons[r["message"]] = reasons.get(r["message"], 0) + 1
    listed = [{"call_id": r["call_id"], "caller_name": callers.get(r["call_id"] or ""),
               "reason": r["message"], "level": r["level"], "details": r["details"]}
              for r in excluded[:MAX_EXCLUSIONS_LISTED]]
    others = [{"level": r["level"], "phase": r["phase"], "call_id": r["call_id"],
               "message": r["message"]} for r in rows if r["phase"] != "coverage"]
    return {"total": len(excluded),
            "by_reason": [{"reason": k, "calls": v} for k, v in sorted(reasons.items())],
            "rows": listed, "counts": error_counts(errors),
            "others": others[:MAX_EXCLUSIONS_LISTED]}


def _per_caller(arts: dict[str, pa.Table], levels: Any) -> dict[str, Any]:
    """The summary rows (every caller and split) or, for a truth-layer run, its path metrics
    per caller; columns in the report's order."""
    if "summary" in arts:
        table = arts["summary"]
        columns = [c for c in SUMMARY_COLUMNS if c in table.column_names]
        rows = [{c: clean(r.get(c)) for c in columns} for r in table.to_pylist()]
        rows.sort(key=lambda r: (r["caller_name"] not in (None, "*"), r["caller_name"] or "",
                                 r.get("split") or ""))
        return {"columns": columns, "rows": rows}
    if "paths" in arts:
        rows = [{k: clean(v) for k, v in r.items()}
                for r in path_metrics_by_caller(arts["paths"], levels)]
        return {"columns": list(rows[0]), "rows": rows}
    return {"columns": [], "rows": []}


def headline(arts: dict[str, pa.Table], levels: Any) -> dict[str, Any] | None:
    """The run's pooled numbers: the summary's headline row (validation when split) or the
    truth layer's path metrics; None for a run with neither."""
    if "summary" in arts and arts["summary"].num_rows:
        row = headline_row(arts["summary"].to_pylist())
        return {k: clean(v) for k, v in row.items() if k != "run_id"}
    if "paths" in arts:
        return {k: clean(v) for k, v in path_metrics(arts["paths"], levels).items()}
    return None


def run_charts(arts: dict[str, pa.Table], policy_id: str | None) -> dict[str, Any]:
    """Chart series of a run (see chart_data): trades of ``policy_id`` (the headline
    policy), its pooled equity, and the frontier's pooled group."""
    out: dict[str, Any] = {"policy_id": policy_id}
    if "trades" in arts and arts["trades"].num_rows:
        out.update(trade_charts(policy_trades(arts["trades"], policy_id)))
    if "equity" in arts and arts["equity"].num_rows:
        out["equity"] = equity_series(arts["equity"], policy_id)
    if "frontier" in arts and arts["frontier"].num_rows:
        out["frontier"] = frontier_chart(frontier_group(arts["frontier"]))
    return out


def _annotations(catalog: CatalogRef | None, run_id: str) -> dict[str, Any]:
    """Name, tags, notes and deletion of the run, as the catalog has them."""
    empty: dict[str, Any] = {"name": None, "tags": {}, "notes": [], "deleted_at": None}
    from quantbot.artifacts.catalog.connection import catalog_exists
    from quantbot.artifacts.ops.annotate import run_annotations_state

    if catalog is None or not catalog_exists(catalog):
        return empty
    return {**empty, **run_annotations_state(catalog, run_id)}


def read_run_artifacts(run: Storage, manifest: dict[str, Any],
                       inventory: list[dict[str, Any]]) -> dict[str, pa.Table]:
    """The verified artifacts the views read, by type (a damaged file is left out)."""
    from quantbot.artifacts.store.reader import read_artifact

    ok = {a["type"] for a in inventory if a["state"] == "verified"}
    return {name: read_artifact(run, name) for name in manifest["artifacts"]
            if name in _READ and name in ok}


def run_detail(ref: str, *, base_dir: str | os.PathLike[str] | Storage = "runs",
               catalog: CatalogRef | None = DEFAULT_CATALOG) -> dict[str, Any]:
    """One run for the run page (``ref``: a UUID or a unique prefix of 8+ hex characters).

    Keys: run_id, run_type, status, created_at/started_at/completed_at, run_dir, cataloged,
    complete, error ({type, message, phase} or None), provenance (git, host, config hash,
    schema versions, inputs with fingerprints, problems verify found), dataset, parameters
    ([(dotted key, value)] without inputs and config_hash), timing ([(phase, ms)], total_ms),
    artifacts (inventory with sha256 state), exclusions, headline, per_caller, charts,
    rerun_command, annotations. Raises RunNotFoundError / InvalidRunIdError /
    AmbiguousRunIdError (one line) for a ref that names no single run.
    """
    described, run = _located(ref, base_dir, catalog)
    m = described["manifest"]
    inventory, problems = artifact_inventory(run, m)
    arts = read_run_artifacts(run, m, inventory)
    params = m.get("parameters") or {}
    levels = params.get("levels") or STANDARD_LEVELS
    callers: dict[str, str] = {}
    if "alerts" in arts:
        callers = dict(zip(arts["alerts"].column("call_id").to_pylist(),
                           arts["alerts"].column("caller_name").to_pylist()))
    top = headline(arts, levels)
    timing = m.get("timing") or {}
    error = m.get("error")
    return {
        "run_id": m["run_id"], "run_type": m["run_type"], "status": m["status"],
        "created_at": m.get("created_at"), "started_at": m.get("started_at"),
        "completed_at": m.get("completed_at"), "run_dir": described["run_dir"],
        "cataloged": described["cataloged"], "complete": described["complete"],
        "error": ({"type": error.get("type"), "message": error.get("message"),
                   "phase": error.get("phase"), "traceback": error.get("traceback")}
                  if error else None),
        "provenance": {"git_commit": m.get("git_commit"), "git_branch": m.get("git_branch"),
                       "git_dirty": m.get("git_dirty"), "host": m.get("host") or {},
                       "config_hash": params.get("config_hash"),
                       "schema_version": m.get("schema_version") or {},
                       "inputs": _inputs(params), "problems": problems},
        "dataset": m.get("dataset") or {},
        "parameters": [(k, v) for k, v in flatten_parameters(params).items()
                       if k != "config_hash" and not k.startswith("inputs.")],
        "timing": {"phases": [(k.removesuffix("_ms"), v) for k, v in timing.items()
                              if k != "total_ms" and v is not None],
                   "total_ms": timing.get("total_ms")},
        "artifacts": inventory,
        "exclusions": _exclusions(arts.get("errors"), callers),
        "headline": top,
        "per_caller": _per_caller(arts, levels),
        "charts": run_charts(arts, (top or {}).get("policy_id")),
        "rerun_command": rerun_command(m["run_id"], base_dir, catalog),
        "annotations": _annotations(catalog, m["run_id"]),
    }


__all__ = ["MAX_EXCLUSIONS_LISTED", "artifact_inventory", "headline", "read_run_artifacts",
           "rerun_command", "run_charts", "run_detail"]
