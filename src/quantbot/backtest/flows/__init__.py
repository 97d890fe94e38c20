"""The flows that produce runs: path-only, policy, optimization and full, and rerun.

Each is a :class:`~quantbot.backtest.flows.skeleton.Flow` run by the one skeleton
(:func:`~quantbot.backtest.flows.skeleton.run_flow`); modules: ``params``, ``skeleton``,
``path_only``, ``policy``, ``optimization`` (and full; + ``optimization_rows``), ``rerun``,
and ``sweep`` (many runs from one spec, on an executor; + ``sweep_spec``).
"""

from quantbot._lazy import lazy_exports

_F = "quantbot.backtest.flows."
#: Name -> defining module; the ``quantbot.backtest`` facade re-exports these too.
EXPORTS = {
    "FlowParams": _F + "params",
    "FlowParameterError": "quantbot.errors",
    **{name: _F + "skeleton" for name in ("Flow", "FlowOptions", "FlowResult", "run_flow")},
    "run_path_only": _F + "path_only",
    "run_policy_backtest": _F + "policy",
    **{name: _F + "optimization" for name in ("run_full", "run_optimization")},
    **{name: _F + "rerun" for name in ("RerunReport", "rerun", "run_from_manifest")},
    **{name: _F + "sweep" for name in ("SweepResult", "run_sweep")},
}
__all__ = sorted(EXPORTS)
__getattr__ = lazy_exports(__name__, EXPORTS)
