"""quantbot.backtest: the flows that produce runs, over the storage in quantbot.artifacts.

Layers, each importing only those below it: ``flows`` (run a whole backtest into a run
folder) → ``optimize`` (policy grids, objective, splits) → ``engine`` (windows, paths,
policies, simulation) → ``data`` (alert and candle inputs). This facade is the public API.
"""

from quantbot._lazy import lazy_exports

_F = "quantbot.backtest.flows."
# Each name from its defining module: ``quantbot.backtest.flows.rerun`` is also a submodule,
# so going through the ``flows`` package would hand out the module once it is imported.
_EXPORTS = {
    "FlowParams": _F + "params",
    "FlowParameterError": "quantbot.errors",
    **{name: _F + "skeleton" for name in ("FlowOptions", "FlowResult")},
    "run_path_only": _F + "path_only",
    "run_policy_backtest": _F + "policy",
    **{name: _F + "optimization" for name in ("run_full", "run_optimization")},
    **{name: _F + "rerun" for name in ("RerunReport", "rerun", "run_from_manifest")},
    "write_sample_data": "quantbot.backtest.data.sample",
    "load_alerts": "quantbot.backtest.data.alerts",
    "load_candles": "quantbot.backtest.data.candles",
    "parse_policy": "quantbot.backtest.engine.policies",
    **{name: "quantbot.backtest.optimize.grid" for name in (
        "PolicyGrid", "default_grid", "load_grid", "parse_grid")},
    **{name: "quantbot.backtest.optimize.objective" for name in ("OptimizerConfig", "make_config")},
    **{name: "quantbot.backtest.optimize.search" for name in ("frontier_columns", "optimize_grid")},
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
