"""quantbot.backtest: the flows that produce runs, over the storage in quantbot.artifacts.

Layers, each importing only those below it: ``flows`` (run a whole backtest into a run
folder) → ``optimize`` (policy grids, objective, splits) → ``engine`` (windows, paths,
policies, simulation) → ``data`` (alert and candle inputs). This facade is the public API.
"""

from quantbot._lazy import lazy_exports
from quantbot.backtest.flows import EXPORTS as FLOW_EXPORTS  # noqa: E402 - light: names only

# Each name from its defining module: ``quantbot.backtest.flows.rerun`` is also a submodule,
# so going through the ``flows`` package would hand out the module once it is imported.
_EXPORTS = {
    **FLOW_EXPORTS,
    "write_sample_data": "quantbot.backtest.data.sample",
    "load_alerts": "quantbot.backtest.data.alerts",
    "load_candles": "quantbot.backtest.data.candles",
    "parse_policy": "quantbot.backtest.engine.policies",
    **{name: "quantbot.backtest.optimize.grid" for name in (
        "PolicyGrid", "default_grid", "load_grid", "parse_grid")},
    **{name: "quantbot.backtest.optimize.objective" for name in ("OptimizerConfig", "make_config")},
    **{name: "quantbot.backtest.optimize.search" for name in ("frontier_columns", "optimize_grid")},
    **{name: "quantbot.backtest.executors" for name in (
        "Executor", "TaskOutcome", "open_executor", "parse_executor")},
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
