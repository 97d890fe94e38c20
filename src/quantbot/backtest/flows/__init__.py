"""The flows that produce runs: path-only, policy, optimization and full, and rerun."""

from quantbot._lazy import lazy_exports

_EXPORTS = {
    **{name: "quantbot.backtest.flows.base" for name in (
        "FlowParams", "FlowResult", "run_path_only", "run_policy_backtest")},
    **{name: "quantbot.backtest.flows.optimization" for name in ("run_full", "run_optimization")},
    **{name: "quantbot.backtest.flows.rerun" for name in ("RerunReport", "rerun")},
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
