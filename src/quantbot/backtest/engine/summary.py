"""Aggregates of a policy's trades: the summary row and the optimizer's frontier statistics.

Medians are true medians (mean of the middle two) and percentiles use numpy's linear
interpolation (SCHEMAS.md). An empty trade set gives counts 0 and None for every average,
median, percentile and rate; tail_capture statistics skip null trades and are None when
every trade's tail_capture is null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

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
    }


def p95_drawdown_bps(mae_bps: np.ndarray) -> float | None:
    """The severe tail of drawdowns: the 5th percentile of max_adverse_excursion_bps."""
    return _stat(_as_numpy(mae_bps), lambda v: np.percentile(v, 5))


def median_mae_bps(mae_bps: np.ndarray) -> float | None:
    """Median max_adverse_excursion_bps (<= 0), the objective's drawdown term."""
    return _stat(_as_numpy(mae_bps), np.median)


def frontier_stats(trades: Trades | Mapping[str, Any]) -> dict[str, int | float | None]:
    """The numbers a frontier row and the objective need, for one (caller, policy)."""
    cols = _columns(trades)
    tail = cols["tail_capture"]
    tail = tail[~np.isnan(tail)]
    return {
        "trades_count": len(cols["realized_return_bps"]),
        "avg_return_bps": _stat(cols["realized_return_bps"], np.mean),
        "median_return_bps": _stat(cols["realized_return_bps"], np.median),
        "stop_out_rate": _stat(cols["stop_out"], np.mean),
        "p95_drawdown_bps": p95_drawdown_bps(cols["max_adverse_excursion_bps"]),
        "median_mae_bps": median_mae_bps(cols["max_adverse_excursion_bps"]),
        "avg_time_exposed_ms": _stat(cols["time_exposed_ms"], np.mean),
        "avg_tail_capture": _stat(tail, np.mean),
    }
