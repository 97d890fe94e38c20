"""The import path the flows had before the skeleton split (``quantbot.backtest.flows.base``).

Kept so that scripts and notebooks written against it keep working; new code imports from
the facade :mod:`quantbot.backtest`. Nothing is defined here.
"""

from quantbot.backtest.data.inputs import InputSpec
from quantbot.backtest.flows.params import FlowParams
from quantbot.backtest.flows.path_only import run_path_only
from quantbot.backtest.flows.policy import run_policy_backtest
from quantbot.backtest.flows.rerun import run_from_manifest
from quantbot.backtest.flows.skeleton import FlowResult, PhaseClock, Progress
from quantbot.errors import FlowParameterError

__all__ = ["FlowParameterError", "FlowParams", "FlowResult", "InputSpec", "PhaseClock",
           "Progress", "run_from_manifest", "run_path_only", "run_policy_backtest"]
