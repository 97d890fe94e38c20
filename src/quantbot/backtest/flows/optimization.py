"""The optimization and full flows: a policy grid evaluated pooled and per caller.

Optimization artifacts: ``alerts``, ``frontier`` (one row per (caller, policy) evaluated, ``*`` for all
callers pooled), ``trades``, ``summary``, ``errors`` (see
:mod:`~quantbot.backtest.flows.optimization_rows`). The full flow writes ``paths`` and
``features`` too (as the path-only flow), from the same load and coverage. The manifest's ``parameters`` record the
grid (``source``: ``default``, a file path or ``api``; its policy count, families and sha256;
for an ``api`` grid its ``spec`` too), the optimizer config, ``per_caller`` and the fees, so
that ``rerun`` rebuilds the same grid: the default grid, the file again (a changed file shows
as a different ``grid`` fingerprint), or the recorded spec.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Unpack

from quantbot.backtest.data.inputs import Input
from quantbot.backtest.flows.params import FlowParams
from quantbot.backtest.flows.path_only import truth_layer
from quantbot.backtest.flows.skeleton import (
    Flow,
    FlowOptions,
    FlowResult,
    Outcome,
    PhaseClock,
    PreparedInputs,
    run_flow,
)
from quantbot.backtest.optimize.grid import PolicyGrid, default_grid, load_grid, parse_grid
from quantbot.backtest.optimize.objective import OptimizerConfig, make_config
from quantbot.errors import FlowParameterError

PolicyProgress = Callable[[int, int], None]
"""Called with (policies done, policies total) after each simulated batch."""

GridInput = PolicyGrid | str | os.PathLike[str] | dict[str, Any] | None
ConfigInput = OptimizerConfig | dict[str, Any] | None
ExecutorInput = Any
"""Where the grid is evaluated: None or ``"local"``, ``"dask://HOST:PORT"``,
``"dask-local[:N]"``, a ``distributed.Client`` or an Executor
(:func:`quantbot.backtest.executors.open_executor`); the result does not depend on it."""

#: How the grid was evaluated, into the manifest's ``timing`` (numbers only).
_EXECUTION_TIMING = {"policy_ms": "optimizer_policy_ms",
                     "chunk_policies": "optimizer_chunk_policies",
                     "chunks": "optimizer_chunks", "workers": "optimizer_workers"}


def resolve_grid(grid: GridInput, interval_ms: int) -> tuple[PolicyGrid, dict[str, Any]]:
    """(expanded grid, its manifest record): None = the built-in default grid, a path = a
    grid file, a dict = a grid object, a PolicyGrid as is. ``interval_ms`` turns time
    stops written in bars into durations."""
    if grid is None:
        return _record(default_grid(interval_ms), "default")
    if isinstance(grid, PolicyGrid):
        return _record(grid, "api", {"families": _families(grid)})
    if isinstance(grid, dict):
        return _record(parse_grid(grid, interval_ms), "api", grid)
    return _record(load_grid(grid, interval_ms), str(Path(grid).expanduser().resolve()))


def grid_from_record(record: dict[str, Any], interval_ms: int) -> PolicyGrid:
    """The grid a manifest's ``parameters.grid`` describes (rerun)."""
    source = record.get("source")
    if source == "default":
        return default_grid(interval_ms)
    if source == "api":
        if "spec" not in record:
            raise FlowParameterError("cannot rerun: the run's grid was passed through the API "
                                     "and its manifest does not record the grid's spec")
        return parse_grid(record["spec"], interval_ms)
    if not source:
        raise FlowParameterError("run manifest has no parameters.grid.source to rerun from")
    return load_grid(source, interval_ms)


def _families(grid: PolicyGrid) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for entry in grid.entries:
        out.setdefault(entry.family, []).append(json.loads(entry.params))
    return out


def _record(grid: PolicyGrid, source: str, spec: dict[str, Any] | None = None
            ) -> tuple[PolicyGrid, dict[str, Any]]:
    ids = "\n".join(e.params for e in grid.entries).encode()
    record = {"source": source, "policies": len(grid), "families": grid.family_sizes(),
              "sha256": hashlib.sha256(ids).hexdigest()}
    return grid, record if spec is None else {**record, "spec": spec}


class OptimizationFlow(Flow):
    run_type = "optimization"

    def __init__(self, grid: GridInput, config: ConfigInput, per_caller: bool = True,
                 policy_progress: PolicyProgress | None = None,
                 recorded_grid: dict[str, Any] | None = None, portfolio: Any = None,
                 executor: ExecutorInput = None) -> None:
        """``recorded_grid``: a manifest's ``parameters.grid`` (rerun), instead of ``grid``."""
        self._grid, self._config, self._recorded = grid, config, recorded_grid
        self.per_caller, self.policy_progress = per_caller, policy_progress
        self._portfolio, self._executor = portfolio, executor

    def plan(self, params: FlowParams) -> dict[str, Any]:
        from quantbot.backtest.executors import parse_executor
        from quantbot.backtest.flows.portfolio_step import resolve_portfolio

        if isinstance(self._executor, str):  # a bad spec is refused before the run exists
            parse_executor(self._executor)
        self.config = make_config(self._config)
        self.portfolio, portfolio = resolve_portfolio(self._portfolio)
        if self._recorded is not None:
            self.grid = grid_from_record(self._recorded, params.interval_ms)
            _, record = _record(self.grid, self._recorded["source"], self._recorded.get("spec"))
        else:
            self.grid, record = resolve_grid(self._grid, params.interval_ms)
        optimizer = self.config.model_dump(mode="json")
        if self.config.validation is not None:
            optimizer["validation"] = self.config.validation.spec()
        return {"grid": record, "optimizer": optimizer, "per_caller": self.per_caller,
                "portfolio": portfolio}

    def execute(self, prep: PreparedInputs, clock: PhaseClock) -> Outcome:
        return self.optimize(prep, clock)

    def optimize(self, prep: PreparedInputs, clock: PhaseClock) -> Outcome:
        """The ``optimization`` phase: frontier, trades, summary and errors artifacts."""
        from quantbot.artifacts.schema.arrow_schemas import ARTIFACT_SPECS, ArtifactType
        from quantbot.backtest.executors import Executor, open_executor
        from quantbot.backtest.flows.optimization_rows import (
            best_artifacts,
            error_rows,
            headline_metrics,
        )
        from quantbot.backtest.flows.portfolio_step import portfolio_figures
        from quantbot.backtest.optimize.search import frontier_columns, optimize_grid

        params = prep.params
        with clock.phase("optimization", f"optimizing {len(self.grid)} policies"):
            callers = prep.callers
            executor = open_executor(self._executor)
            try:
                result = optimize_grid(self.grid, prep.candles, prep.windows, callers,
                                       self.config, taker_fee_bps=params.taker_fee_bps,
                                       slippage_bps=params.slippage_bps,
                                       per_caller=self.per_caller,
                                       on_progress=self.policy_progress,
                                       interval_ms=params.interval_ms,
                                       portfolio_metric=portfolio_figures(prep, self.portfolio),
                                       executor=executor)
            finally:
                if not isinstance(self._executor, Executor):  # opened here: ours to close
                    executor.close()
            clock.ms.update({key: float(result.execution[name])
                             for name, key in _EXECUTION_TIMING.items()
                             if name in result.execution})
            names = ARTIFACT_SPECS[ArtifactType.FRONTIER].schema.names
            frontier = frontier_columns(result, allowed=names)
            trades, summary, equity = best_artifacts(result, prep, callers, self.portfolio)
            errors = error_rows(prep.error_rows, result, callers)
        n_trades = len(trades["policy_id"]) if trades is not None else 0
        return Outcome({"frontier": frontier, "trades": trades, "summary": summary,
                        "equity": equity, "errors": errors},
                       headline_metrics(result, summary), n_trades)

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> OptimizationFlow:
        if not isinstance(parameters.get("grid"), dict):
            raise FlowParameterError("run manifest has no parameters.grid to rerun from")
        optimizer = dict(parameters.get("optimizer") or {})
        optimizer.setdefault("objective", "original")  # runs before 1.2.0 ranked by it
        return cls(None, optimizer, bool(parameters.get("per_caller", True)),
                   recorded_grid=parameters["grid"], portfolio=parameters.get("portfolio"))


def run_optimization(alerts: Input, candles: Input, *, grid: GridInput = None,
                     config: ConfigInput = None, per_caller: bool = True,
                     policy_progress: PolicyProgress | None = None, portfolio: Any = None,
                     executor: ExecutorInput = None,
                     **options: Unpack[FlowOptions]) -> FlowResult:
    """Optimize a policy grid: artifacts alerts, frontier, trades, summary, equity, errors.

    ``grid``: None (the built-in default), a grid file path, a grid dict or a PolicyGrid.
    ``config``: constraints, weights, ``min_calls`` and ``validation`` (an OptimizerConfig
    or its dict; ``objective``: robust, original, median or sharpe). ``per_caller``: also
    optimize each caller (else only ``*``). ``portfolio``: the account every policy's
    trades are followed with (its Sharpe, total return and drawdown join the frontier).
    ``executor``: where the grid is evaluated (:data:`ExecutorInput`, e.g.
    ``"dask-local:2"`` or a ``distributed.Client``; the artifacts are the same, bit for bit);
    a spec string is opened and closed here, a Client or Executor is left open.
    ``alerts``, ``candles`` and ``options`` as :func:`~quantbot.backtest.run_policy_backtest`.
    """
    flow = OptimizationFlow(grid, config, per_caller, policy_progress, portfolio=portfolio,
                            executor=executor)
    return run_flow(flow, alerts, candles, options)


class FullFlow(OptimizationFlow):
    run_type = "full"

    def execute(self, prep: PreparedInputs, clock: PhaseClock) -> Outcome:
        with clock.phase("execution", "computing paths and features"):
            paths, features, _ = truth_layer(prep)
        optimized = self.optimize(prep, clock)
        artifacts: dict[str, Any] = {"paths": paths, "features": features,
                                     **optimized.artifacts}
        return Outcome(artifacts, optimized.metrics, optimized.trades)


def run_full(alerts: Input, candles: Input, *, grid: GridInput = None,
             config: ConfigInput = None, per_caller: bool = True,
             policy_progress: PolicyProgress | None = None, portfolio: Any = None,
             executor: ExecutorInput = None,
             **options: Unpack[FlowOptions]) -> FlowResult:
    """Truth layer and optimization in one run: alerts, paths, features, frontier, trades,
    summary, equity, errors. Arguments as :func:`~quantbot.backtest.run_optimization`."""
    flow = FullFlow(grid, config, per_caller, policy_progress, portfolio=portfolio,
                    executor=executor)
    return run_flow(flow, alerts, candles, options)


__all__ = ["FullFlow", "OptimizationFlow", "grid_from_record", "resolve_grid", "run_full",
           "run_optimization"]
