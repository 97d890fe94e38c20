"""Callers across every cataloged run, for the web app's callers page (and notebooks).

Two questions, each one read-only SQL statement over the catalog's cross-run views (through
``run_sql``'s guard; deleted runs are hidden by the views):

- **truth layer** (``all_paths``, path-only and full runs): per caller the calls, the share
  that reached 2x/3x/4x within the horizon, the median peak multiple and the median
  drawdown (bps). A call that several runs measured counts once: the newest run's row of
  each (call_id, mint, alert_ts_ms) is used, so rerunning a dataset does not double it.
- **returns over time** (``all_trades`` ⋈ ``all_alerts``): the median realized_return_bps
  (after fees and slippage) per caller and alert period (UTC day, ISO week starting Monday,
  or month of the call's alert time: when the caller called, not when the backtest ran),
  over every trade of every policy (or of one ``policy_id``); a (policy, call) that several
  runs traded counts once (the newest run's trade).
"""

from __future__ import annotations

from typing import Any

from quantbot.analysis.chart_data import clean
from quantbot.artifacts.catalog.connection import DEFAULT_CATALOG, CatalogRef, catalog_exists
from quantbot.errors import InvalidArgumentError

PERIODS = ("day", "week", "month")

_TRUTH_SQL = """
WITH p AS (
  SELECT p.*, row_number() OVER (PARTITION BY p.call_id, p.mint, p.alert_ts_ms
                                 ORDER BY r.created_at DESC, p.run_id DESC) AS newest
  FROM all_paths p JOIN backtest_runs_catalog r USING (run_id)
), runs AS (
  SELECT caller_name, count(DISTINCT run_id) AS runs FROM all_paths GROUP BY caller_name
)
SELECT p.caller_name, any_value(runs.runs) AS runs, count(*) AS calls,
       avg(p.hit_2x::INTEGER) AS hit_2x_rate, avg(p.hit_3x::INTEGER) AS hit_3x_rate,
       avg(p.hit_4x::INTEGER) AS hit_4x_rate,
       median(p.peak_multiple) AS median_peak_multiple, median(p.dd_bps) AS median_dd_bps
FROM p JOIN runs USING (caller_name)
WHERE p.newest = 1
GROUP BY p.caller_name
ORDER BY calls DESC, p.caller_name
"""

#: Each (policy, call) traded once: the newest run's trade when several runs traded it.
_NEWEST_TRADES = """
WITH t AS (
  SELECT t.run_id, t.policy_id, t.call_id, t.realized_return_bps, a.caller_name, a.mint,
         a.alert_ts_ms,
         row_number() OVER (PARTITION BY t.policy_id, t.call_id, a.mint, a.alert_ts_ms
                            ORDER BY r.created_at DESC, t.run_id DESC) AS newest
  FROM all_trades t
  JOIN all_alerts a ON a.run_id = t.run_id AND a.call_id = t.call_id
  JOIN backtest_runs_catalog r ON r.run_id = t.run_id
  WHERE ? IS NULL OR t.policy_id = ?
)
"""

_RETURNS_SQL = _NEWEST_TRADES + """
SELECT caller_name, strftime(date_trunc(?, epoch_ms(alert_ts_ms)), '%Y-%m-%d') AS period,
       count(*) AS trades, median(realized_return_bps) AS median_return_bps
FROM t WHERE newest = 1
GROUP BY ALL ORDER BY caller_name, period
"""

_TOTALS_SQL = _NEWEST_TRADES + """
SELECT caller_name, count(*) AS trades, count(DISTINCT policy_id) AS policies,
       median(realized_return_bps) AS median_return_bps
FROM t WHERE newest = 1 GROUP BY caller_name
"""

_POLICIES_SQL = "SELECT DISTINCT policy_id FROM all_trades ORDER BY policy_id"


def _rows(catalog: CatalogRef, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    from quantbot.artifacts.catalog.query import run_sql

    return [{k: clean(v) for k, v in r.items()} for r in run_sql(catalog, sql, params).to_pylist()]


def caller_overview(catalog: CatalogRef = DEFAULT_CATALOG, *, period: str = "week",
                    policy_id: str | None = None) -> dict[str, Any]:
    """Per caller across the catalog's runs (see the module docstring for the rules).

    Returns ``callers`` (one row per caller seen in the truth layer or in trades: runs,
    calls, hit_2x/3x/4x_rate (fractions), median_peak_multiple, median_dd_bps, trades,
    policies, median_return_bps; None where a side has no data), ``series`` ({caller:
    {"period": [ISO date of the period's start], "median_return_bps": [...], "trades":
    [...]}}), ``period``, ``policy_id`` and ``policies`` (every policy with trades, for a
    chooser). An absent catalog gives empty lists. Raises InvalidArgumentError for a period
    other than day/week/month.
    """
    if period not in PERIODS:
        raise InvalidArgumentError(f"period must be one of {', '.join(PERIODS)} (got {period!r})")
    out: dict[str, Any] = {"period": period, "policy_id": policy_id, "callers": [],
                           "series": {}, "policies": []}
    if not catalog_exists(catalog):
        return out
    truth = {r["caller_name"]: r for r in _rows(catalog, _TRUTH_SQL)}
    totals = {r["caller_name"]: r for r in _rows(catalog, _TOTALS_SQL, [policy_id, policy_id])}
    for r in _rows(catalog, _RETURNS_SQL, [policy_id, policy_id, period]):
        s = out["series"].setdefault(r["caller_name"], {"period": [], "median_return_bps": [],
                                                        "trades": []})
        s["period"].append(r["period"])
        s["median_return_bps"].append(r["median_return_bps"])
        s["trades"].append(r["trades"])
    empty_truth = dict.fromkeys(("runs", "calls", "hit_2x_rate", "hit_3x_rate", "hit_4x_rate",
                                 "median_peak_multiple", "median_dd_bps"))
    empty_trades = dict.fromkeys(("trades", "policies", "median_return_bps"))
    names = list(truth) + sorted(set(totals) - set(truth), key=lambda c: (c is None, c or ""))
    out["callers"] = [{**empty_truth, **truth.get(c, {}), **empty_trades, **totals.get(c, {}),
                       "caller_name": c} for c in names]
    out["policies"] = [r["policy_id"] for r in _rows(catalog, _POLICIES_SQL)]
    return out


__all__ = ["PERIODS", "caller_overview"]
