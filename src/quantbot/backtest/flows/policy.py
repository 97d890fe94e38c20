"""The policy flow: one exit policy simulated over every eligible call, then traded as a
portfolio.

Artifacts ``alerts``, ``trades``, ``summary`` (the pooled row, ``caller_name`` null, then one
row per caller, each with its portfolio's metrics), ``equity`` (the pooled portfolio and one
per caller), ``errors``.
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

    def __init__(self, policy: str | dict[str, Any] | Any, policy_id: str | None = None,
                 portfolio: Any = None) -> None:
        self._raw, self._requested_id, self._portfolio = policy, policy_id, portfolio

    def plan(self, params: FlowParams) -> dict[str, Any]:
        from quantbot.backtest.engine.policies import canonical_json, parse_policy, policy_id
        from quantbot.backtest.flows.portfolio_step import resolve_portfolio

        self.policy = parse_policy(self._raw)
        self.policy_id = self._requested_id or policy_id(self.policy)
        self.portfolio, record = resolve_portfolio(self._portfolio)
        return {"policy": json.loads(canonical_json(self.policy)), "policy_id": self.policy_id,
                "portfolio": record}

    def execute(self, prep: PreparedInputs, clock: PhaseClock) -> Outcome:
        from quantbot.backtest.engine.simulate import build_scan_index, simulate
        from quantbot.backtest.flows.portfolio_step import portfolio_outputs

        params, pid = prep.params, self.policy_id
        with clock.phase("execution", "simulating trades"):
            trades = simulate(self.policy, prep.candles, prep.windows, params.taker_fee_bps,
                              params.slippage_bps, scan_index=build_scan_index(prep.candles))
            trade_cols = {"policy_id": [pid] * len(trades),
                          **prep.columns(("call_id",), trades.alert_idx), **trades.columns()}
        with clock.phase("execution", "simulating the portfolio"):
            equity, books = portfolio_outputs(prep, trades, self.portfolio, pid, "all",
                                              per_caller=True)
            summary = summary_rows(prep, trades, pid, books)
        pooled = summary[0]
        metrics = {"policy_id": pid, **{k: pooled[k] for k in (
            "avg_return_bps", "median_return_bps", "stop_out_rate", "win_rate",
            "profit_factor", "total_return", "max_drawdown", "sharpe", "trades_taken",
            "skipped_signals")}}
        return Outcome({"trades": trade_cols, "summary": summary, "equity": equity,
                        "errors": prep.error_rows}, metrics, len(trades))

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> PolicyFlow:
        if "policy" not in parameters:
            raise FlowParameterError("run manifest has no parameters.policy to rerun from")
        return cls(parameters["policy"], parameters.get("policy_id"),
                   parameters.get("portfolio"))


def summary_row(trades: Any, policy_id: str, caller: str | None, split: str,
                calls_excluded: int, book: dict[str, Any]) -> dict[str, Any]:
    """One summary row: the trades' statistics and their portfolio's columns (``book``)."""
    from quantbot.backtest.engine.summary import summarize

    return {"policy_id": policy_id, "caller_name": caller, "split": split,
            **summarize(trades, len(trades), calls_excluded), **book}


def summary_rows(prep: PreparedInputs, trades: Any, policy_id: str,
                 books: dict[str | None, dict[str, Any]]) -> list[dict[str, Any]]:
    """The pooled summary row (caller_name null), then one per caller with trades."""
    callers, excluded = prep.callers, ~prep.windows.eligible
    traded = callers[trades.alert_idx]
    rows = [summary_row(trades, policy_id, None, "all", int(excluded.sum()), books[None])]
    for caller in sorted(set(traded.tolist())):
        rows.append(summary_row(trades.take(traded == caller), policy_id, caller, "all",
                                int((excluded & (callers == caller)).sum()), books[caller]))
    return rows


def run_policy_backtest(alerts: Input, candles: Input, policy: str | dict[str, Any] | Any, *,
                        policy_id: str | None = None, portfolio: Any = None,
                        **options: Unpack[FlowOptions]) -> FlowResult:
    """One policy over every eligible call: artifacts alerts, trades, summary, equity, errors.

    ``policy``: JSON text, a dict (snake_case or the original camelCase keys) or a parsed
    policy; ``policy_id`` defaults to the readable id derived from it. ``portfolio``: the
    account the trades are followed with (a dict or JSON: capital, size, max_concurrent,
    compound; None = the defaults of :class:`~quantbot.backtest.engine.portfolio.PortfolioConfig`). ``alerts``,
    ``candles``: a path, a pandas/polars DataFrame or a pyarrow Table. ``options``: see
    :class:`~quantbot.backtest.flows.skeleton.FlowOptions`.
    """
    return run_flow(PolicyFlow(policy, policy_id, portfolio), alerts, candles, options)


__all__ = ["PolicyFlow", "run_policy_backtest", "summary_row", "summary_rows"]
