"""The numbers behind the web app's charts, as plain JSON-able dicts (lists of floats, ISO
timestamps), computed from one run's artifacts.

Kept apart from any plotting library so that a notebook gets the same series the pages
draw (``quantbot.ui.charts`` turns these dicts into Plotly figures). Units are in the key
names: ``_bps`` basis points, ``_h`` hours, equity in the portfolio's currency, drawdown
and rates as fractions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from quantbot.analysis.stats import pareto_mask

#: Histograms of returns show the minimum .. 97.5th percentile; trades beyond fall in the
#: last bin, so that a few 50x trades do not squash the picture. The loss side is not clipped:
#: a long trade loses at most 10 000 bps, and the stop-loss cluster is what people look for.
CLIP_PERCENTILES = (0.0, 97.5)
BINS = 40
MS_PER_HOUR = 3_600_000
#: Frontier axes: the optimizer's score (higher is better) against the stop-out rate (the
#: share of trades closed by a stop; lower is better).
FRONTIER_SCORE = "objective_score"
FRONTIER_RISK = "stop_out_rate"


def floats(table: pa.Table, column: str) -> np.ndarray:
    """A column as float64 (nulls → NaN)."""
    return np.asarray(table.column(column).to_numpy(zero_copy_only=False), dtype=np.float64)


def clean(value: Any) -> Any:
    """A JSON-safe scalar: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def clean_list(values: np.ndarray | Sequence[Any]) -> list[Any]:
    return [clean(v) for v in (values.tolist() if isinstance(values, np.ndarray) else values)]


def clip_range(values: np.ndarray, percentiles: tuple[float, float] = CLIP_PERCENTILES
               ) -> tuple[float, float]:
    """The x range of a histogram: the given percentiles of the finite values (widened by 1
    on each side when they coincide)."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return (0.0, 1.0)
    lo, hi = (float(v) for v in np.percentile(finite, percentiles))
    return (lo - 1.0, hi + 1.0) if hi <= lo else (lo, hi)


def histogram(values: np.ndarray, lo: float, hi: float, bins: int = BINS) -> dict[str, Any]:
    """Counts of the finite ``values`` in ``bins`` equal bins over [lo, hi]; values outside
    are counted in the first/last bin (``clipped_low``/``clipped_high`` say how many).
    ``median`` is over every finite value, clipped or not."""
    finite = values[np.isfinite(values)]
    edges = np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(np.clip(finite, lo, hi), bins=edges)
    return {"edges": clean_list(edges), "counts": counts.tolist(), "n": int(finite.size),
            "clipped_low": int((finite < lo).sum()), "clipped_high": int((finite > hi).sum()),
            "median": clean(float(np.median(finite))) if finite.size else None}


def iso_times(ts_ms: np.ndarray) -> list[str]:
    """Epoch milliseconds as ISO-8601 UTC text (what a Plotly date axis reads)."""
    return [str(t) + "Z" for t in ts_ms.astype("datetime64[ms]")]


def policy_trades(trades: pa.Table, policy_id: str | None) -> pa.Table:
    """The trades of one policy when the run holds several (an optimization run keeps the
    best policy of each caller): the pooled best's trades cover every call once."""
    if policy_id is None or trades.num_rows == 0:
        return trades
    policies = trades.column("policy_id").to_pylist()
    if len(set(policies)) <= 1:
        return trades
    return trades.filter(pa.array([p == policy_id for p in policies]))


def trade_charts(trades: pa.Table) -> dict[str, Any]:
    """Net return distribution (realized_return_bps: after fees and slippage), MAE against
    return (both bps), and the hold-time distribution (time_exposed_ms in hours)."""
    returns = floats(trades, "realized_return_bps")
    hold_h = floats(trades, "time_exposed_ms") / MS_PER_HOUR
    finite_hold = hold_h[np.isfinite(hold_h)]
    hold_hi = float(finite_hold.max()) if finite_hold.size else 1.0
    return {
        "returns": histogram(returns, *clip_range(returns)),
        "mae": {"mae_bps": clean_list(floats(trades, "max_adverse_excursion_bps")),
                "return_bps": clean_list(returns),
                "call_id": trades.column("call_id").to_pylist()},
        "hold": histogram(hold_h, 0.0, hold_hi if hold_hi > 0 else 1.0),
    }


def equity_series(equity: pa.Table, policy_id: str | None = None) -> list[dict[str, Any]]:
    """The pooled portfolio (caller_name null) of ``policy_id`` (None: the first policy in
    the artifact), one series per split: ISO times, equity (currency) and drawdown
    (fraction of the running peak, ≤ 0)."""
    if equity.num_rows == 0:
        return []
    callers = equity.column("caller_name").to_pylist()
    policies = equity.column("policy_id").to_pylist()
    wanted = policy_id if policy_id in policies else policies[0]
    rows = equity.filter(pa.array([c is None and p == wanted
                                   for c, p in zip(callers, policies)]))
    splits = rows.column("split").to_pylist()
    out = []
    for split in dict.fromkeys(splits):
        part = rows.filter(pa.array([s == split for s in splits]))
        ts = np.asarray(part.column("ts_ms").to_numpy(zero_copy_only=False), dtype=np.int64)
        order = np.argsort(ts, kind="stable")
        out.append({"split": split, "policy_id": wanted, "ts": iso_times(ts[order]),
                    "equity": clean_list(floats(part, "equity")[order]),
                    "drawdown": clean_list(floats(part, "drawdown")[order])})
    return out


def _numeric_leaves(params: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a policy's parameters (dotted keys); ``kind`` and lists are
    left out (kind becomes its own categorical axis)."""
    out: dict[str, float] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_numeric_leaves(value, name))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def frontier_chart(group: pa.Table) -> dict[str, Any]:
    """One caller group of a frontier (pass ``report.frontier_group``'s rows): per policy its
    score (objective_score) and risk (stop_out_rate), whether it is on the Pareto set of
    (low risk, high score), its numeric policy parameters (parallel coordinates) and its
    validation score where the run has a split (else None)."""
    score, risk = floats(group, FRONTIER_SCORE), floats(group, FRONTIER_RISK)
    front = pareto_mask(risk, score)
    has_val = "validation_objective_score" in group.column_names
    val = floats(group, "validation_objective_score") if has_val else np.full(len(score), np.nan)
    points = []
    for i, row in enumerate(group.select(["policy_id", "policy_params", "meets_constraints",
                                          "rank"]).to_pylist()):
        params = json.loads(row["policy_params"]) if row["policy_params"] else {}
        points.append({"policy_id": row["policy_id"], "kind": params.get("kind"),
                       "params": _numeric_leaves(params), "rank": row["rank"],
                       "meets_constraints": bool(row["meets_constraints"]),
                       "score": clean(score[i]), "risk": clean(risk[i]),
                       "validation_score": clean(val[i]), "on_front": bool(front[i])})
    names = sorted({k for p in points for k in p["params"]})
    caller = group.column("caller_name")[0].as_py() if group.num_rows else None
    return {"caller_name": caller, "score": FRONTIER_SCORE, "risk": FRONTIER_RISK,
            "param_names": names, "points": points,
            "has_validation": bool(np.isfinite(val).any())}


__all__ = ["BINS", "CLIP_PERCENTILES", "FRONTIER_RISK", "FRONTIER_SCORE", "clean", "clip_range",
           "equity_series", "frontier_chart", "histogram", "iso_times", "policy_trades",
           "trade_charts"]
