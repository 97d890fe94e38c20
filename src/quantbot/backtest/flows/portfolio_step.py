"""The portfolio step of the policy, optimization and full flows: the trades as one account.

The trades a flow simulated are signals for a portfolio (:mod:`quantbot.backtest.engine.portfolio`,
configured by ``--portfolio JSON``; the defaults apply without it). This module turns them
into the ``equity`` artifact's rows and the summary's portfolio columns, and gives the
optimizer its per-policy figures. Annualisation uses a period of one day, or the run's
interval when that is longer (a weekly run has no daily returns).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from quantbot.artifacts.schema.arrow_schemas import PORTFOLIO_FIELDS
from quantbot.backtest.engine.portfolio import (
    PortfolioConfig,
    parse_portfolio,
    portfolio_by_caller,
    portfolio_metrics,
    simulate_portfolio,
)
from quantbot.backtest.engine.simulate import Trades
from quantbot.backtest.flows.skeleton import PreparedInputs

DAY_MS = 86_400_000
SUMMARY_PORTFOLIO_KEYS = tuple(f.name for f in PORTFOLIO_FIELDS)
_CURVE = ("ts_ms", "equity", "cash", "exposure", "open_positions", "drawdown")


def resolve_portfolio(raw: Any) -> tuple[PortfolioConfig, dict[str, Any]]:
    """(config, what the manifest records): the canonical dict, so a rerun reads it back."""
    config = parse_portfolio(raw)
    return config, json.loads(config.model_dump_json())


def period_ms(prep: PreparedInputs) -> int:
    return max(DAY_MS, prep.params.interval_ms)


def _volatility(prep: PreparedInputs, config: PortfolioConfig) -> np.ndarray | None:
    """Every alert's pre-alert volatility, only when the sizing needs it."""
    return None if config.size.volatility is None else prep.pre_alert_vol


def portfolio_figures(prep: PreparedInputs, config: PortfolioConfig
                      ) -> Callable[[Trades], tuple[float, float, float]]:
    """The optimizer's hook for this run: one policy's trades -> (sharpe, total_return,
    max_drawdown)."""
    return portfolio_hook(config, period_ms(prep), _volatility(prep, config), prep.callers)


def portfolio_hook(config: PortfolioConfig, period: int, vol_all: np.ndarray | None = None,
                   callers_all: np.ndarray | None = None
                   ) -> Callable[[Trades], tuple[float, float, float]]:
    """One policy's trades -> its portfolio's (sharpe, total_return, max_drawdown);
    ``vol_all``: every alert's volatility (volatility sizing), ``callers_all`` every alert's
    caller (the tie order of entries at one instant, as in the summary's portfolio),
    ``period`` in ms."""

    def figures(trades: Trades) -> tuple[float, float, float]:
        vol = None if vol_all is None else vol_all[trades.alert_idx]
        callers = None if callers_all is None else callers_all[trades.alert_idx]
        res = simulate_portfolio(trades.entry_ts_ms, trades.exit_ts_ms,
                                 trades.realized_return_bps, config, vol=vol, callers=callers)
        m = portfolio_metrics(res, trades.realized_return_bps, period_ms=period)
        sharpe, total, drawdown = (np.nan if m[k] is None else float(m[k])
                                   for k in ("sharpe", "total_return", "max_drawdown"))
        return sharpe, total, drawdown

    return figures


def portfolio_outputs(prep: PreparedInputs, trades: Trades, config: PortfolioConfig,
                      policy_id: str, split: str, per_caller: bool
                      ) -> tuple[dict[str, list[Any]], dict[str | None, dict[str, Any]]]:
    """(equity rows, summary portfolio columns by caller; None = pooled) of one policy's
    trades: the pooled portfolio, and one per caller when ``per_caller``."""
    callers = prep.callers[trades.alert_idx]
    vol_all = _volatility(prep, config)
    vol = None if vol_all is None else vol_all[trades.alert_idx]
    args = (trades.entry_ts_ms, trades.exit_ts_ms, trades.realized_return_bps, config)
    if per_caller:
        results = portfolio_by_caller(callers, *args, vol=vol, period_ms=period_ms(prep))
    else:
        pooled = simulate_portfolio(*args, vol=vol, callers=callers)
        results = [(None, pooled, portfolio_metrics(pooled, trades.realized_return_bps,
                                                    period_ms=period_ms(prep)))]
    curves: list[dict[str, Any]] = []
    metrics: dict[str | None, dict[str, Any]] = {}
    for caller, res, m in results:
        curve = res.curve()
        n = len(curve["ts_ms"])
        labels = {"policy_id": [policy_id] * n, "caller_name": [caller] * n, "split": [split] * n}
        curves.append({**labels, **{key: np.asarray(curve[key]) for key in _CURVE}})
        metrics[caller] = {k: m[k] for k in SUMMARY_PORTFOLIO_KEYS}
    return merge_equity(curves), metrics


def merge_equity(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One equity artifact's columns from several portfolios' (None: an empty artifact)."""
    parts = [part for part in parts if part is not None]
    if not parts:
        return None
    return {k: (np.concatenate([part[k] for part in parts]) if k in _CURVE
                else [v for part in parts for v in part[k]]) for k in parts[0]}




def run_portfolio(ref: str, portfolio: Any = None, *, catalog: Any = None,
                  base_dir: Any = "runs") -> list[dict[str, Any]]:
    """The portfolio of any completed run's trades, with another account if wanted: one
    dict per portfolio (each caller by name, then all callers pooled as ``caller_name``
    None; per policy for runs that hold several), the ``calls`` its trades cover
    (:func:`trades_calls`), its metrics and its ``curve``."""
    from quantbot.artifacts.ops.lookup import locate_run
    from quantbot.artifacts.store.reader import read_artifact
    from quantbot.artifacts.store.runs import read_manifest
    from quantbot.durations import parse_interval
    from quantbot.errors import InvalidArgumentError

    storage = locate_run(ref, catalog=catalog, base_dir=base_dir)
    manifest = read_manifest(storage)
    if manifest.status != "completed" or "trades" not in manifest.artifacts:
        raise InvalidArgumentError(f"run {manifest.run_id} ({manifest.run_type}, "
                                   f"{manifest.status}) has no completed trades to follow as "
                                   "a portfolio")
    config = parse_portfolio(portfolio)
    trades = read_artifact(storage, "trades")
    alerts = read_artifact(storage, "alerts")
    caller_of = dict(zip(alerts.column("call_id").to_pylist(),
                         alerts.column("caller_name").to_pylist()))
    vol_of: dict[str, float] = {}
    if config.size.volatility is not None and "features" in manifest.artifacts:
        features = read_artifact(storage, "features")
        vol_of = dict(zip(features.column("call_id").to_pylist(),
                          features.column("vol_pre_alert").to_pylist()))
    parameters = manifest.to_dict()["parameters"]
    period = max(DAY_MS, parse_interval(parameters.get("interval", "1m")))
    calls = trades_calls(manifest.run_type, parameters)
    out: list[dict[str, Any]] = []
    policies = np.asarray(trades.column("policy_id").to_pylist(), dtype=object)
    for policy in sorted(set(policies.tolist())):
        rows = trades.filter(policies == policy)
        callers = np.asarray([caller_of[c] for c in rows.column("call_id").to_pylist()],
                             dtype=object)
        cols = [rows.column(n).to_numpy() for n in ("entry_ts_ms", "exit_ts_ms",
                                                    "realized_return_bps")]
        vol = (np.asarray([vol_of.get(c) for c in rows.column("call_id").to_pylist()],
                          dtype=np.float64) if vol_of else None)
        for caller, res, metrics in portfolio_by_caller(callers, *cols, config, vol=vol,
                                                        period_ms=period):
            out.append({"policy_id": policy, "caller_name": caller, "calls": calls,
                        **metrics, "curve": res.curve()})
    return out


def trades_calls(run_type: str, parameters: dict[str, Any]) -> str:
    """Which calls a run's trades artifact covers (what ``backtest portfolio`` follows): all
    of them for a policy run or an optimization without a split; with a split, each group's
    best policy on the calls it is reported on."""
    spec = (parameters.get("optimizer") or {}).get("validation")
    if run_type == "policy" or not spec:
        return "all"
    if spec.startswith("caller"):
        return f"validation ({spec}: held-out callers; a kept caller's own best on its calls)"
    return f"validation ({spec})"


__all__ = ["SUMMARY_PORTFOLIO_KEYS", "merge_equity", "period_ms", "portfolio_figures",
           "portfolio_hook", "portfolio_outputs", "resolve_portfolio", "run_portfolio",
           "trades_calls"]
