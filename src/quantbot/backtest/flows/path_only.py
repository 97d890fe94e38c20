"""The path-only flow (truth layer): what the price did after each call.

Artifacts ``alerts``, ``paths``, ``features``, ``errors``; no policy, no fees.
:func:`truth_layer` is shared with the full flow, which writes the same two artifacts.
"""

from __future__ import annotations

from typing import Any, Unpack

import numpy as np

from quantbot.backtest.data.inputs import Input
from quantbot.backtest.flows.skeleton import (
    Flow,
    FlowOptions,
    FlowResult,
    Outcome,
    PhaseClock,
    PreparedInputs,
    run_flow,
)

PATH_COLUMNS = ("call_id", "caller_name", "mint", "chain")


def truth_layer(prep: PreparedInputs) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(paths columns, features columns, headline metrics) of every eligible call."""
    from quantbot.backtest.engine.features import compute_features
    from quantbot.backtest.engine.price_paths import compute_paths, level_column_suffix

    params = prep.params
    paths = compute_paths(prep.candles, prep.windows, params.activity_move_pct, params.levels)
    features = compute_features(prep.candles, prep.windows, prep.callers, paths,
                                params.pre_window_ms)
    idx = paths.alert_idx
    path_cols = {**prep.columns(PATH_COLUMNS, idx), "interval": [params.interval] * len(idx),
                 **prep.columns(("alert_ts_ms",), idx), **paths.columns(),
                 **prep.columns(("side",), idx)}
    n = len(idx)
    metrics: dict[str, Any] = {}
    for level in params.levels:  # the run's own levels, in the order given
        name = f"hit_{level_column_suffix(level)}x"
        metrics[f"{name}_rate"] = float(np.mean(path_cols[name])) if n else None
    metrics["median_peak_multiple"] = float(np.median(paths.peak_multiple)) if n else None
    return path_cols, {"call_id": prep.alerts.column("call_id"), **features}, metrics


class PathOnlyFlow(Flow):
    run_type = "path-only"
    uses_fees = False

    def execute(self, prep: PreparedInputs, clock: PhaseClock) -> Outcome:
        with clock.phase("execution", "computing paths and features"):
            paths, features, metrics = truth_layer(prep)
        return Outcome({"paths": paths, "features": features, "errors": prep.error_rows},
                       metrics, None)

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> PathOnlyFlow:
        return cls()


def run_path_only(alerts: Input, candles: Input, **options: Unpack[FlowOptions]) -> FlowResult:
    """Truth layer run: artifacts alerts, paths, features, errors. Returns a FlowResult.

    ``alerts``, ``candles``: a path (CSV, Parquet file or folder, DuckDB database), a
    pandas/polars DataFrame or a pyarrow Table. ``options``: see
    :class:`~quantbot.backtest.flows.skeleton.FlowOptions` (no fees).
    """
    return run_flow(PathOnlyFlow(), alerts, candles, options)


__all__ = ["PathOnlyFlow", "run_path_only", "truth_layer"]
