"""Aggregates of a policy's trades: the summary row and the optimizer's frontier statistics.

Medians are true medians (mean of the middle two) and percentiles use numpy's linear
interpolation (SCHEMAS.md). An empty trade set gives counts 0 and None for every average,
median, percentile and rate; tail_capture statistics skip null trades and are None when
every trade's tail_capture is null.

Win/loss statistics (:func:`win_loss`): win_rate = share of trades with
realized_return_bps > 0; profit_factor = Σ positive returns / |Σ negative returns|, null
when there is no losing trade (it would be infinite, which a column cannot hold; a
zero-return trade is neither a win nor a loss); avg_win_bps / avg_loss_bps = the mean of
the winning / losing trades' returns (null when there is none; avg_loss_bps < 0).
:func:`trimmed_mean` is the robust objective's return statistic. Both work along the last
axis, so the optimizer's (policies × calls) matrices use the very same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from quantbot.backtest.engine.constants import TRIM_FRACTION
from quantbot.backtest.engine.simulate import Trades

_NUMERIC = ("realized_return_bps", "stop_out", "max_adverse_excursion_bps", "time_exposed_ms",
            "tail_capture")


def _as_numpy(values: Any) -> np.ndarray:
    """numpy float64 view of a column; Arrow nulls become NaN."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = values.to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


def _columns(trades: Trades | Mapping[str, Any]) -> dict[str, np.ndarray]:
    if isinstance(trades, Trades):
        return {name: _as_numpy(getattr(trades, name)) for name in _NUMERIC}
    return {name: _as_numpy(trades[name]) for name in _NUMERIC}


def _stat(values: np.ndarray, fn: Any) -> float | None:
    return float(fn(values)) if len(values) else None


def _scalar(v: np.ndarray) -> float | None:
    v = float(v)
    return None if np.isnan(v) else v


def trim_count(n: int, fraction: float) -> int:
    """Trades trimmed from EACH end of n: max(1, floor(fraction·n)) when fraction > 0,
    capped at floor((n - 1) / 2) so that at least one trade stays (n = 3: the median).

    At least one per end (fraction > 0) is what bounds one trade's influence for every
    n >= 3; a plain floor would give the raw mean (unbounded) below n = 1/fraction."""
    if n <= 0:
        return 0
    k = max(1, int(np.floor(fraction * n + 1e-9))) if fraction > 0 else 0
    return min(k, (n - 1) // 2)


def trimmed_mean(ret: np.ndarray, fraction: float) -> np.ndarray:
    """Mean of the returns after dropping :func:`trim_count` trades from each end, along the
    last axis (NaN for an empty axis)."""
    ret = np.asarray(ret, dtype=np.float64)
    n = ret.shape[-1]
    if n == 0:
        return np.full(ret.shape[:-1], np.nan)
    k = trim_count(n, fraction)
    return np.sort(ret, axis=-1)[..., k:n - k].mean(axis=-1)


def win_loss(ret: np.ndarray) -> dict[str, np.ndarray]:
    """win_rate, profit_factor, avg_win_bps, avg_loss_bps along the last axis (NaN = null;
    definitions in the module docstring)."""
    ret = np.asarray(ret, dtype=np.float64)
    wins, losses = ret > 0, ret < 0
    n_win, n_loss = wins.sum(axis=-1), losses.sum(axis=-1)
    gain = np.where(wins, ret, 0.0).sum(axis=-1)
    loss = np.where(losses, ret, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        factor = gain / -loss
        return {
            "win_rate": n_win / ret.shape[-1] if ret.shape[-1] else np.full(n_win.shape, np.nan),
            # null without a loss, and when the ratio overflows (losses of ~1e-300 bps)
            "profit_factor": np.where((n_loss > 0) & np.isfinite(factor), factor, np.nan),
            "avg_win_bps": np.where(n_win > 0, gain / n_win, np.nan),
            "avg_loss_bps": np.where(n_loss > 0, loss / n_loss, np.nan),
        }


def summarize(trades: Trades | Mapping[str, Any], calls_processed: int,
              calls_excluded: int) -> dict[str, int | float | None]:
    """Summary columns (without run_id, policy_id, caller_name) for one policy's trades.

    ``trades`` is a :class:`Trades` or a mapping of trades columns (numpy or Arrow).
    """
    cols = _columns(trades)
    ret = cols["realized_return_bps"]
    exposed = cols["time_exposed_ms"]
    tail = cols["tail_capture"]
    tail = tail[~np.isnan(tail)]
    return {
        "calls_processed": int(calls_processed),
        "calls_excluded": int(calls_excluded),
        "trades_count": len(ret),
        "avg_return_bps": _stat(ret, np.mean),
        "median_return_bps": _stat(ret, np.median),
        "p25_return_bps": _stat(ret, lambda v: np.percentile(v, 25)),
        "p75_return_bps": _stat(ret, lambda v: np.percentile(v, 75)),
        "p90_return_bps": _stat(ret, lambda v: np.percentile(v, 90)),
        "stop_out_rate": _stat(cols["stop_out"], np.mean),
        "avg_max_adverse_excursion_bps": _stat(cols["max_adverse_excursion_bps"], np.mean),
        "avg_time_exposed_ms": _stat(exposed, np.mean),
        "median_time_exposed_ms": _stat(exposed, np.median),
        "avg_tail_capture": _stat(tail, np.mean),
        "median_tail_capture": _stat(tail, np.median),
        **{k: _scalar(v) for k, v in win_loss(ret).items()},
    }


def p95_drawdown_bps(mae_bps: np.ndarray) -> float | None:
    """The severe tail of drawdowns: the 5th percentile of max_adverse_excursion_bps."""
    return _stat(_as_numpy(mae_bps), lambda v: np.percentile(v, 5))


def median_mae_bps(mae_bps: np.ndarray) -> float | None:
    """Median max_adverse_excursion_bps (<= 0), the objective's drawdown term."""
    return _stat(_as_numpy(mae_bps), np.median)


def frontier_stats(trades: Trades | Mapping[str, Any],
                   trim_fraction: float = TRIM_FRACTION) -> dict[str, int | float | None]:
    """The numbers a frontier row and the objective need, for one (caller, policy)."""
    cols = _columns(trades)
    tail = cols["tail_capture"]
    tail = tail[~np.isnan(tail)]
    ret = cols["realized_return_bps"]
    return {
        "trades_count": len(ret),
        "avg_return_bps": _stat(ret, np.mean),
        "median_return_bps": _stat(ret, np.median),
        "trimmed_return_bps": _scalar(trimmed_mean(ret, trim_fraction)),
        "stop_out_rate": _stat(cols["stop_out"], np.mean),
        "p95_drawdown_bps": p95_drawdown_bps(cols["max_adverse_excursion_bps"]),
        "median_mae_bps": median_mae_bps(cols["max_adverse_excursion_bps"]),
        "avg_time_exposed_ms": _stat(cols["time_exposed_ms"], np.mean),
        "avg_tail_capture": _stat(tail, np.mean),
        **{k: _scalar(v) for k, v in win_loss(ret).items()},
    }
