"""Two to ten runs side by side, for the web app's compare page (and notebooks).

Where ``compare.compare_runs`` answers "which calls changed between A and B", this answers
"how do these runs differ": every parameter with a ``differs`` flag, the pooled metrics
with deltas against the first run, each run's return distribution on common bins, its
equity curve, and the per-caller metrics with deltas. The first run is the baseline.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from quantbot.analysis.chart_data import (
    clean,
    clip_range,
    equity_series,
    floats,
    histogram,
    policy_trades,
)
from quantbot.analysis.compare import (
    flatten_parameters,
    path_metrics,
    path_metrics_by_caller,
    summary_by_group,
)
from quantbot.analysis.report import headline_row
from quantbot.artifacts.catalog.connection import DEFAULT_CATALOG, CatalogRef
from quantbot.artifacts.schema.arrow_schemas import STANDARD_LEVELS
from quantbot.artifacts.store.backends import Storage
from quantbot.errors import InvalidArgumentError

MIN_RUNS, MAX_RUNS = 2, 10
#: Pooled metrics compared, in display order (those no run has are left out).
METRICS = ("trades_count", "calls_processed", "calls_excluded", "avg_return_bps",
           "median_return_bps", "p25_return_bps", "p75_return_bps", "p90_return_bps",
           "win_rate", "profit_factor", "stop_out_rate", "avg_max_adverse_excursion_bps",
           "avg_time_exposed_ms", "avg_tail_capture", "total_return", "max_drawdown", "sharpe",
           "calls", "hit_2x_rate", "hit_3x_rate", "hit_4x_rate", "median_peak_multiple",
           "median_dd_bps")
#: Per-caller metrics compared (summary runs; truth-layer runs give calls and hit rates).
CALLER_METRICS = ("trades_count", "median_return_bps", "avg_return_bps", "stop_out_rate",
                  "calls", "hit_2x_rate")


def _delta(value: Any, base: Any) -> float | None:
    if isinstance(value, bool) or isinstance(base, bool):
        return None
    if isinstance(value, int | float) and isinstance(base, int | float):
        return clean(float(value) - float(base))
    return None


def _side(ref: str, base_dir: str | os.PathLike[str] | Storage,
          catalog: CatalogRef | None) -> dict[str, Any]:
    """What the comparison needs of one run: manifest, pooled metrics, per-caller metrics,
    its trades' returns (of the headline policy) and its pooled equity."""
    from quantbot.artifacts.ops.lookup import locate_run
    from quantbot.artifacts.store.reader import read_artifact
    from quantbot.artifacts.store.runs import read_manifest

    run = locate_run(ref, catalog=catalog, base_dir=base_dir)
    manifest = read_manifest(run)
    m = manifest.to_dict()
    names = set(manifest.artifacts)
    levels = (m.get("parameters") or {}).get("levels") or STANDARD_LEVELS
    pooled: dict[str, Any] = {}
    if "summary" in names:
        pooled = headline_row(read_artifact(run, "summary").to_pylist())
    elif "paths" in names:
        pooled = path_metrics(read_artifact(run, "paths"), levels)
    policy = pooled.get("policy_id")
    returns = np.array([], dtype=np.float64)
    if "trades" in names:
        returns = floats(policy_trades(read_artifact(run, "trades"), policy),
                         "realized_return_bps")
    equity = equity_series(read_artifact(run, "equity"), policy) if "equity" in names else []
    by_caller = {c: metrics for c, (_, metrics) in summary_by_group(run, manifest).items()
                 if c not in (None, "*")}
    if "summary" not in names and "paths" in names:
        by_caller = {r["caller_name"]: r for r in path_metrics_by_caller(
            read_artifact(run, "paths"), levels) if r["caller_name"] is not None}
    # one equity line per run: the whole period when the run has one, else out-of-sample
    chosen = next((s for want in ("all", "validation", "train") for s in equity
                   if s["split"] == want), None)
    return {"manifest": m, "pooled": pooled, "policy_id": policy, "returns": returns,
            "equity": chosen, "by_caller": by_caller}


def compare_many(refs: Sequence[str], *, base_dir: str | os.PathLike[str] | Storage = "runs",
                 catalog: CatalogRef | None = DEFAULT_CATALOG) -> dict[str, Any]:
    """Compare 2-10 runs (UUIDs or unique prefixes; the first is the baseline).

    Returns ``runs`` (id, type, status, created_at, policy_id per run), ``parameters`` (one
    row per dotted key of any run's parameters, config_hash left out: ``values`` per run,
    None = absent, ``differs``), ``metrics`` (pooled: ``values`` and ``deltas`` = value −
    first run's, None when either is missing), ``returns`` (realized_return_bps histograms
    on common bins: the smallest to the 97.5th percentile of all runs' trades, larger ones
    in the last bin),
    ``equity`` (per run: its pooled equity series or None) and ``per_caller`` ({metric:
    rows of caller_name, values, deltas}). Raises InvalidArgumentError for fewer than 2 or
    more than 10 distinct runs.
    """
    wanted = list(dict.fromkeys(str(r).strip() for r in refs if str(r).strip()))
    if not MIN_RUNS <= len(wanted) <= MAX_RUNS:
        raise InvalidArgumentError(f"compare takes {MIN_RUNS} to {MAX_RUNS} runs "
                                   f"(got {len(wanted)})")
    sides = [_side(ref, base_dir, catalog) for ref in wanted]
    ids = [s["manifest"]["run_id"] for s in sides]
    if len(set(ids)) != len(ids):
        raise InvalidArgumentError("compare: the same run is given twice ("
                                   + ", ".join(r for r, i in zip(wanted, ids)
                                               if ids.count(i) > 1) + ")")
    flat = [flatten_parameters(s["manifest"].get("parameters") or {}) for s in sides]
    keys = sorted({k for f in flat for k in f} - {"config_hash"})
    parameters = [{"key": k, "values": [f.get(k) for f in flat],
                   "differs": any(f.get(k) != flat[0].get(k) for f in flat)} for k in keys]
    metrics = []
    for name in METRICS:
        values = [clean(s["pooled"].get(name)) for s in sides]
        if all(v is None for v in values):
            continue
        metrics.append({"metric": name, "values": values,
                        "deltas": [_delta(v, values[0]) for v in values]})
    pooled_returns = np.concatenate([s["returns"] for s in sides])
    lo, hi = clip_range(pooled_returns)
    returns = [histogram(s["returns"], lo, hi) if s["returns"].size else None for s in sides]
    callers = sorted({c for s in sides for c in s["by_caller"]})
    per_caller: dict[str, list[dict[str, Any]]] = {}
    for name in CALLER_METRICS:
        rows = []
        for caller in callers:
            values = [clean((s["by_caller"].get(caller) or {}).get(name)) for s in sides]
            if any(v is not None for v in values):
                rows.append({"caller_name": caller, "values": values,
                             "deltas": [_delta(v, values[0]) for v in values]})
        if rows:
            per_caller[name] = rows
    return {
        "runs": [{"run_id": s["manifest"]["run_id"], "run_type": s["manifest"]["run_type"],
                  "status": s["manifest"]["status"], "created_at": s["manifest"]["created_at"],
                  "git_branch": s["manifest"].get("git_branch"), "policy_id": s["policy_id"]}
                 for s in sides],
        "parameters": parameters, "metrics": metrics, "returns": returns,
        "equity": [s["equity"] for s in sides], "per_caller": per_caller,
    }


__all__ = ["CALLER_METRICS", "MAX_RUNS", "METRICS", "MIN_RUNS", "compare_many"]
