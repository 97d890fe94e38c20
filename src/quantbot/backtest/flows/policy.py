"""The policy flow: one exit policy simulated over every eligible call.

Artifacts ``alerts``, ``trades``, ``summary`` (one row, ``caller_name`` null), ``errors``.
"""

from __future__ import annotations

import json
from typing import Any, Unpack

from quantbot.backtest.data.inputs import Input
from quantbot.backtest.flows.params import FlowParams
from quantbot.backtest.flows.skeleton import (
    Flow,
    FlowOptions,
    FlowResult,
    Outcome,
    PhaseClock,
    PreparedInputs,
    run_flow,
)
from quantbot.errors import FlowParameterError


class PolicyFlow(Flow):
    run_type = "policy"

    def __init__(self, policy: str | dict[str, Any] | Any, policy_id: str | None = None) -> None:
        self._raw, self._requested_id = policy, policy_id

    def plan(self, params: FlowParams) -> dict[str, Any]:
        from quantbot.backtest.engine.policies import canonical_json, parse_policy, policy_id

        self.policy = parse_policy(self._raw)
        self.policy_id = self._requested_id or policy_id(self.policy)
        return {"policy": json.loads(canonical_json(self.policy)), "policy_id": self.policy_id}

    def execute(self, prep: PreparedInputs, clock: PhaseClock) -> Outcome:
        from quantbot.backtest.engine.simulate import build_scan_index, simulate
        from quantbot.backtest.engine.summary import summarize

        params, pid = prep.params, self.policy_id
        with clock.phase("execution", "simulating trades"):
            trades = simulate(self.policy, prep.candles, prep.windows, params.taker_fee_bps,
                              params.slippage_bps, scan_index=build_scan_index(prep.candles))
            summary = summarize(trades, len(trades), int((~prep.windows.eligible).sum()))
            trade_cols = {"policy_id": [pid] * len(trades),
                          **prep.columns(("call_id",), trades.alert_idx), **trades.columns()}
        metrics = {"policy_id": pid, **{k: summary[k] for k in (
            "avg_return_bps", "median_return_bps", "stop_out_rate")}}
        return Outcome({"trades": trade_cols,
                        "summary": [{"policy_id": pid, "caller_name": None, **summary}],
                        "errors": prep.error_rows}, metrics, len(trades))

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> PolicyFlow:
        if "policy" not in parameters:
            raise FlowParameterError("run manifest has no parameters.policy to rerun from")
        return cls(parameters["policy"], parameters.get("policy_id"))


def run_policy_backtest(alerts: Input, candles: Input, policy: str | dict[str, Any] | Any, *,
                        policy_id: str | None = None,
                        **options: Unpack[FlowOptions]) -> FlowResult:
    """One policy over every eligible call: artifacts alerts, trades, summary, errors.

    ``policy``: JSON text, a dict (snake_case or the original camelCase keys) or a parsed
    policy; ``policy_id`` defaults to the readable id derived from it. ``alerts``,
    ``candles``: a path, a pandas/polars DataFrame or a pyarrow Table. ``options``: see
    :class:`~quantbot.backtest.flows.skeleton.FlowOptions`.
    """
    return run_flow(PolicyFlow(policy, policy_id), alerts, candles, options)


__all__ = ["PolicyFlow", "run_policy_backtest"]
