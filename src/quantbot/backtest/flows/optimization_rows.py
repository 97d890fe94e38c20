"""The rows an optimization writes besides the frontier: best trades, summary, errors, metrics.

- :func:`best_artifacts`: ``summary``, per evaluated caller (and ``*``) its rank-1 policy
  on each split (``train`` and ``validation`` rows with a split, else one ``all`` row),
  with the portfolio's columns; ``trades``, the trades on the calls that policy is
  reported on (the validation calls with a split), each (policy_id, call_id) once;
  ``equity``, the pooled best policy's portfolio per split;
- :func:`error_rows`: coverage exclusions, a ``warning`` (phase ``optimization``) per caller
  skipped for too few calls, and ``info`` rows: the split, and each group's best policy
  with its train and validation numbers in ``details`` (the frontier schema has no
  validation columns yet);
- :func:`headline_metrics`: the pooled best policy's numbers for the FlowResult.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from quantbot.artifacts.schema.layout import iso_utc, utc_now
from quantbot.backtest.engine.portfolio import PortfolioConfig
from quantbot.backtest.engine.simulate import Trades
from quantbot.backtest.flows.skeleton import PreparedInputs
from quantbot.backtest.optimize.search import POOLED, GroupResult, OptimizationResult


def best_artifacts(result: OptimizationResult, prep: PreparedInputs, callers: np.ndarray,
                   portfolio: PortfolioConfig
                   ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any] | None]:
    """(trades columns, summary rows, equity columns) of every group's rank-1 policy.

    Summary: per group one row per split it was evaluated on (``train`` and ``validation``
    with a split, else ``all``), each with its portfolio's columns. Trades: the calls each
    best policy is reported on (validation with a split), each (policy_id, call_id) once.
    Equity: the pooled group's best policy, one portfolio per split.
    """
    from quantbot.backtest.flows.policy import summary_row
    from quantbot.backtest.flows.portfolio_step import merge_equity, portfolio_outputs

    ids = result.grid.policy_ids
    excluded = ~prep.windows.eligible
    summary: list[dict[str, Any]] = []
    equity: list[dict[str, Any]] = []
    pieces: dict[int, list[tuple[np.ndarray, Trades]]] = {}
    for g in result.groups:
        assert g.best_all is not None  # every evaluated group has a best policy
        splits = ([("train", g.train_rows), ("validation", g.validation_rows)] if g.validated
                  else [("all", g.train_rows)])
        own = excluded if g.caller_name == POOLED else excluded & (callers == g.caller_name)
        for split, rows in splits:
            trades = g.best_all.take(rows)
            curve, books = portfolio_outputs(prep, trades, portfolio, ids[g.best], split,
                                             per_caller=False)
            summary.append(summary_row(trades, ids[g.best], g.caller_name, split,
                                       int(own.sum()), books[None]))
            if g.caller_name == POOLED:
                equity.append(curve)
        pieces.setdefault(g.best, []).append((g.report_rows, g.best_all.take(g.report_rows)))
    policy_col: list[str] = []
    parts: list[Trades] = []
    for best in sorted(pieces):  # grid order, then alert order: deterministic
        rows = np.concatenate([r for r, _ in pieces[best]])
        merged = _concat([t for _, t in pieces[best]])
        _, first = np.unique(rows, return_index=True)
        chosen = merged.take(first)
        parts.append(chosen)
        policy_col += [ids[best]] * len(chosen)
    if not parts:
        return None, summary, merge_equity(equity)  # an empty artifact with the full schema
    all_trades = _concat(parts)
    cols: dict[str, Any] = {"policy_id": policy_col,
                            **prep.columns(("call_id",), all_trades.alert_idx),
                            **all_trades.columns()}
    return cols, summary, merge_equity(equity)


def _concat(parts: list[Trades]) -> Trades:
    return Trades(**{f: np.concatenate([getattr(t, f) for t in parts])
                     for f in Trades.__dataclass_fields__})


def error_rows(coverage: dict[str, list] | None, result: OptimizationResult,
                callers: np.ndarray) -> dict[str, list]:
    rows = {k: list(v) for k, v in (coverage or {}).items()} or {
        k: [] for k in ("timestamp", "level", "phase", "call_id", "message", "details")}
    stamp = iso_utc(utc_now())

    def add(level: str, message: str, details: dict[str, Any]) -> None:
        for key, value in (("timestamp", stamp), ("level", level), ("phase", "optimization"),
                           ("call_id", None), ("message", message),
                           ("details", json.dumps(details, sort_keys=True, allow_nan=False))):
            rows[key].append(value)

    cfg = result.config
    if cfg.validation is not None:
        train = int(result.split.train.sum())
        add("info", f"validation split {cfg.validation.spec()}: {train} training calls, "
                    f"{len(result.split.train) - train} validation calls",
            {"validation": cfg.validation.spec(), "train_calls": train,
             "validation_calls": len(result.split.train) - train,
             "held_out_callers": list(result.split.held_out_callers)})
    for s in result.skipped:
        if s.reason == "min_calls":
            add("warning", f"caller {s.caller_name}: {s.train_calls} eligible calls to train on, "
                           f"fewer than min_calls {cfg.min_calls}; not optimized",
                {"caller_name": s.caller_name, "train_calls": s.train_calls,
                 "min_calls": cfg.min_calls})
        elif s.reason == "held_out":
            add("info", f"caller {s.caller_name}: held out for validation; no per-caller "
                        "frontier", {"caller_name": s.caller_name})
        else:
            add("warning", "no eligible calls to optimize over", {"caller_name": s.caller_name})
    for g in result.groups:
        add("info", _best_message(result, g), _best_details(result, g))
    return rows


def _best_message(result: OptimizationResult, g: GroupResult) -> str:
    b = g.best
    text = (f"best policy for {g.caller_name}: {result.grid.policy_ids[b]} "
            f"(score {g.score[b]:.1f}, {'feasible' if g.meets_constraints[b] else 'infeasible'}")
    if g.validation_score is not None and g.overfit is not None:
        text += f"; validation score {g.validation_score[b]:.1f}"
        text += ", overfit" if g.overfit[b] else ""
    return text + ")"


def _num(v: float) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def _best_details(result: OptimizationResult, g: GroupResult) -> dict[str, Any]:
    b = g.best
    out: dict[str, Any] = {
        "caller_name": g.caller_name, "policy_id": result.grid.policy_ids[b],
        "family": result.grid.entries[b].family, "rank": 1,
        "objective_score": _num(g.score[b]), "meets_constraints": bool(g.meets_constraints[b]),
        "train": {k: (_num(v) if isinstance(v, float) else v)
                  for k, v in g.stats.row(b).items()},
        "feasible_policies": int(g.meets_constraints.sum()),
    }
    if g.validation_stats is not None:
        assert g.validation_score is not None and g.overfit is not None
        assert g.validation_meets_constraints is not None
        out["validation"] = {k: (_num(v) if isinstance(v, float) else v)
                             for k, v in g.validation_stats.row(b).items()}
        out["validation_objective_score"] = _num(g.validation_score[b])
        out["validation_meets_constraints"] = bool(g.validation_meets_constraints[b])
        out["overfit"] = bool(g.overfit[b])
    return out


_HEADLINE_KEYS = ("trades_count", "avg_return_bps", "median_return_bps", "stop_out_rate",
                  "win_rate", "profit_factor", "total_return", "max_drawdown", "sharpe")


def headline_metrics(result: OptimizationResult, summary: list[dict[str, Any]]
                     ) -> dict[str, Any]:
    """The pooled best policy, its figures nested per split (``train`` and ``validation``,
    or ``all``): every number says which calls it is about."""
    metrics: dict[str, Any] = {"policies": len(result.grid),
                               "distinct_policies": len(result.representatives),
                               "groups": len(result.groups),
                               "skipped_callers": len(result.skipped),
                               "objective": result.config.objective}
    try:
        g = result.group(POOLED)
    except KeyError:
        return metrics
    b = g.best
    scores = {"train" if g.validated else "all": _num(g.score[b])}
    if g.validated:
        assert g.validation_score is not None and g.overfit is not None
        scores["validation"] = _num(g.validation_score[b])
        metrics["overfit"] = bool(g.overfit[b])
    metrics.update(policy_id=result.grid.policy_ids[b],
                   aliases=result.aliases().get(b, []),
                   meets_constraints=bool(g.meets_constraints[b]))
    metrics["splits"] = {
        row["split"]: {"objective_score": scores.get(row["split"]),
                       **{k: row.get(k) for k in _HEADLINE_KEYS}}
        for row in summary if row["caller_name"] == POOLED}
    return metrics


__all__ = ["best_artifacts", "error_rows", "headline_metrics"]
