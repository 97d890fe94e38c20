"""The optimizer's flows: ``run_optimization`` (an ``optimization`` run) and ``run_full``.

Both load and cover the inputs exactly like ``run_policy_backtest`` (the helpers of
:mod:`quantbot.backtest.flows.base`), then, in the ``optimization`` phase, evaluate a policy grid
pooled and per caller (:func:`~quantbot.backtest.optimize.search.optimize_grid`) and write

- ``frontier``: one row per (caller, policy) evaluated, ``*`` for all callers pooled;
- ``summary``: one row per evaluated caller (and ``*``) for its rank-1 policy, on the calls
  that policy is reported on (the validation calls with a split, else every eligible call
  of that caller);
- ``trades``: the trades behind those summary rows, each (policy_id, call_id) once;
- ``errors``: coverage exclusions, a ``warning`` (phase ``optimization``) per caller
  skipped for too few calls, and ``info`` rows: the split, and each group's best policy
  with its train and validation numbers in ``details`` (the frontier schema has no
  validation columns yet);
- ``alerts``; ``run_full`` also writes ``paths`` and ``features`` like ``run_path_only``.

The grid, the optimizer config and the fees are recorded in the manifest's ``parameters``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from quantbot.backtest.engine.simulate import Trades
from quantbot.backtest.flows.base import (
    FlowParams,
    FlowResult,
    PhaseClock,
    PreparedInputs,
    Progress,
    coverage_phase,
    create_flow_run,
    flow_result,
    input_spec,
    load_inputs,
    record_inputs,
    take_columns,
)
from quantbot.backtest.optimize.grid import PolicyGrid, default_grid, load_grid, parse_grid
from quantbot.backtest.optimize.objective import OptimizerConfig, make_config
from quantbot.backtest.optimize.search import (
    POOLED,
    GroupResult,
    OptimizationResult,
    frontier_columns,
    optimize_grid,
)

PolicyProgress = Callable[[int, int], None]
"""Called with (policies done, policies total) after each simulated batch."""

GridInput = PolicyGrid | str | os.PathLike[str] | dict[str, Any] | None


def resolve_grid(grid: GridInput) -> tuple[PolicyGrid, str]:
    """(expanded grid, its source for the manifest): None = the built-in default grid,
    a path = a grid file, a dict = a grid object, a PolicyGrid as is."""
    if grid is None:
        return default_grid(), "default"
    if isinstance(grid, PolicyGrid):
        return grid, "api"
    if isinstance(grid, dict):
        return parse_grid(grid), "api"
    return load_grid(grid), str(Path(grid).expanduser().resolve())


def _grid_record(grid: PolicyGrid, source: str) -> dict[str, Any]:
    ids = "\n".join(e.params for e in grid.entries).encode()
    return {"source": source, "policies": len(grid), "families": grid.family_sizes(),
            "sha256": hashlib.sha256(ids).hexdigest()}


def run_optimization(alerts: str | os.PathLike[str], candles: str | os.PathLike[str], *,
                     grid: GridInput = None, config: OptimizerConfig | dict[str, Any] | None = None,
                     **kwargs: Any) -> FlowResult:
    """Optimize a policy grid: artifacts alerts, frontier, trades, summary, errors.

    ``grid``: None (the built-in default), a grid file path, a grid dict or a PolicyGrid.
    ``config``: constraints, weights, ``min_calls`` and ``validation`` (an OptimizerConfig
    or its dict). Other keyword arguments as :func:`~quantbot.backtest.flows.base.run_policy_backtest`
    (input options, interval, horizon, fees, base_dir, durable, run_id, progress) plus
    ``per_caller`` (default True) and ``policy_progress``.
    """
    return _run("optimization", alerts, candles, grid, config, **kwargs)


def run_full(alerts: str | os.PathLike[str], candles: str | os.PathLike[str], *,
             grid: GridInput = None, config: OptimizerConfig | dict[str, Any] | None = None,
             **kwargs: Any) -> FlowResult:
    """Truth layer and optimization in one run: alerts, paths, features, frontier, trades,
    summary, errors. Arguments as :func:`run_optimization`."""
    return _run("full", alerts, candles, grid, config, **kwargs)


def _run(run_type: str, alerts: str | os.PathLike[str], candles: str | os.PathLike[str],
         grid: GridInput, config: OptimizerConfig | dict[str, Any] | None, *,
         alerts_query: str | None = None, alerts_table: str | None = None,
         candles_table: str | None = None, ts_unit: str | None = None,
         date_from: str | None = None, date_to: str | None = None, interval: str = "1m",
         horizon: str = "24h", activity_move_pct: float = 0.10, pre_window: str = "1h",
         taker_fee_bps: float = 30.0, slippage_bps: float = 10.0, per_caller: bool = True,
         base_dir: str | os.PathLike[str] = "runs", durable: bool = True,
         run_id: str | None = None, progress: Progress | None = None,
         policy_progress: PolicyProgress | None = None) -> FlowResult:
    clock = PhaseClock(progress)
    with clock.phase("plan", "checking parameters"):
        params = FlowParams(interval, horizon, activity_move_pct, pre_window, taker_fee_bps,
                            slippage_bps)
        cfg = make_config(config)
        policy_grid, grid_source = resolve_grid(grid)
        spec = input_spec(alerts, candles, alerts_query=alerts_query, alerts_table=alerts_table,
                     candles_table=candles_table, ts_unit=ts_unit, date_from=date_from,
                     date_to=date_to)
        run_params = {"grid": _grid_record(policy_grid, grid_source),
                      "optimizer": cfg.model_dump(mode="json"), "per_caller": per_caller,
                      "taker_fee_bps": params.taker_fee_bps, "slippage_bps": params.slippage_bps}
        if cfg.validation is not None:
            run_params["optimizer"]["validation"] = cfg.validation.spec()
        run = create_flow_run(run_type, spec, params, run_params, base_dir, durable, run_id)
    with run:
        prep = load_inputs(spec, params, clock)
        record_inputs(run, prep, run_params)
        coverage_phase(prep, clock)
        if run_type == "full":
            with clock.phase("execution", "computing paths and features"):
                path_cols, feature_cols = _truth_layer(prep)
        with clock.phase("optimization", f"optimizing {len(policy_grid)} policies"):
            callers = np.asarray(prep.alerts.column("caller_name").to_pylist(), dtype=object)
            result = optimize_grid(policy_grid, prep.candles, prep.windows, callers, cfg,
                                   taker_fee_bps=params.taker_fee_bps,
                                   slippage_bps=params.slippage_bps, per_caller=per_caller,
                                   on_progress=policy_progress)
            frontier = frontier_columns(result, allowed=_frontier_names())
            trades, summary = _best_artifacts(result, prep, callers)
            errors = _error_rows(prep.error_rows, result, callers)
        with clock.phase("store", "writing artifacts"):
            run.write_artifact("alerts", prep.alerts)
            if run_type == "full":
                run.write_artifact("paths", path_cols)
                run.write_artifact("features", feature_cols)
            run.write_artifact("frontier", frontier)
            run.write_artifact("trades", trades)
            run.write_artifact("summary", summary)
            run.write_artifact("errors", errors)
        run.update_manifest(timing=clock.ms)
    from quantbot.backtest.engine.error_rows import exclusion_counts

    n_trades = len(trades["policy_id"]) if trades is not None else 0
    return flow_result(run, prep, exclusion_counts(prep.windows), n_trades,
                   _metrics(result), clock)


def _frontier_names() -> list[str]:
    from quantbot.artifacts.schema.arrow_schemas import ARTIFACT_SPECS, ArtifactType

    return ARTIFACT_SPECS[ArtifactType.FRONTIER].schema.names


def _truth_layer(prep: PreparedInputs) -> tuple[dict[str, Any], dict[str, Any]]:
    """paths and features columns, as ``run_path_only`` writes them."""
    from quantbot.backtest.engine.features import compute_features
    from quantbot.backtest.engine.price_paths import compute_paths

    paths = compute_paths(prep.candles, prep.windows, prep.params.activity_move_pct)
    caller = np.asarray(prep.alerts.column("caller_name").to_pylist(), dtype=object)
    features = compute_features(prep.candles, prep.windows, caller, paths,
                                prep.params.pre_window_ms)
    idx = paths.alert_idx
    path_cols = {**take_columns(prep.alerts, ("call_id", "caller_name", "mint", "chain"), idx),
                 "interval": [prep.params.interval] * len(idx),
                 "alert_ts_ms": prep.alerts.column("alert_ts_ms").take(pa.array(idx)),
                 **paths.columns()}
    return path_cols, {"call_id": prep.alerts.column("call_id"), **features}


def _best_artifacts(result: OptimizationResult, prep: PreparedInputs,
                    callers: np.ndarray) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(trades columns, summary rows) of every group's rank-1 policy on its reported calls."""
    from quantbot.backtest.engine.summary import summarize

    ids = result.grid.policy_ids
    excluded = ~prep.windows.eligible
    summary = []
    pieces: dict[int, list[tuple[np.ndarray, Trades]]] = {}
    for g in result.groups:
        trades = g.best_trades
        assert trades is not None  # every evaluated group has a best policy
        n_excl = int(excluded.sum() if g.caller_name == POOLED
                     else (excluded & (callers == g.caller_name)).sum())
        summary.append({"policy_id": ids[g.best], "caller_name": g.caller_name,
                        **summarize(trades, len(trades), n_excl)})
        pieces.setdefault(g.best, []).append((g.report_rows, trades))
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
        return None, summary  # an empty artifact with the full schema
    all_trades = _concat(parts)
    cols: dict[str, Any] = {"policy_id": policy_col,
                            **take_columns(prep.alerts, ("call_id",), all_trades.alert_idx),
                            **all_trades.columns()}
    return cols, summary


def _concat(parts: list[Trades]) -> Trades:
    return Trades(**{f: np.concatenate([getattr(t, f) for t in parts])
                     for f in Trades.__dataclass_fields__})


def _error_rows(coverage: dict[str, list] | None, result: OptimizationResult,
                callers: np.ndarray) -> dict[str, list]:
    rows = {k: list(v) for k, v in (coverage or {}).items()} or {
        k: [] for k in ("timestamp", "level", "phase", "call_id", "message", "details")}
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

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


def _metrics(result: OptimizationResult) -> dict[str, Any]:
    metrics: dict[str, Any] = {"policies": len(result.grid), "groups": len(result.groups),
                               "skipped_callers": len(result.skipped)}
    try:
        g = result.group(POOLED)
    except KeyError:
        return metrics
    b = g.best
    stats = g.stats.row(b)
    metrics.update(policy_id=result.grid.policy_ids[b], objective_score=_num(g.score[b]),
                   meets_constraints=bool(g.meets_constraints[b]),
                   avg_return_bps=stats["avg_return_bps"],
                   median_return_bps=stats["median_return_bps"],
                   stop_out_rate=stats["stop_out_rate"])
    if g.validation_score is not None and g.overfit is not None:
        metrics.update(validation_objective_score=_num(g.validation_score[b]),
                       overfit=bool(g.overfit[b]))
    return metrics


__all__ = ["resolve_grid", "run_full", "run_optimization"]
