"""Truth layer: what the price did after each eligible alert, independent of any policy.

One pass over each alert's window (rows ``start:end`` of :class:`Windows`, i.e. the candles
after the anchor up to the horizon) gives every paths column of SCHEMAS.md. Levels are
computed exactly as written there (``2.0 * p0``, ``p0 * (1 + m)``, ...) and compared
inclusively, so a plain-Python reference reproduces the numbers bit for bit.

Null convention of :class:`PathMetrics` (numpy has no nulls): ``t_Nx_ms == -1`` iff not
``hit_Nx``; ``dd_to_2x_bps`` is NaN iff not ``hit_2x``; ``alert_to_activity_ms == -1`` iff
no activity. :meth:`PathMetrics.columns` turns these into real Arrow nulls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numba import njit

from quantbot.backtest.data.candle_set import CandleSet
from quantbot.backtest.engine.windows import Windows

DEFAULT_ACTIVITY_MOVE = 0.10


@dataclass(frozen=True)
class PathMetrics:
    """Path metrics of the eligible alerts, in ascending alert order (``alert_idx``)."""

    alert_idx: np.ndarray  # int64 index into the input alerts
    p0: np.ndarray  # float64
    hit_2x: np.ndarray  # bool
    t_2x_ms: np.ndarray  # int64 epoch ms, -1 = null
    hit_3x: np.ndarray
    t_3x_ms: np.ndarray
    hit_4x: np.ndarray
    t_4x_ms: np.ndarray
    dd_bps: np.ndarray  # float64 <= 0
    dd_to_2x_bps: np.ndarray  # float64 <= 0, NaN = null
    alert_to_activity_ms: np.ndarray  # int64 ms, -1 = null
    peak_multiple: np.ndarray  # float64

    def columns(self) -> dict[str, np.ndarray | pa.Array]:
        """The numeric paths columns keyed by their SCHEMAS names, nullable ones as Arrow.

        The caller adds run_id, call_id, caller_name, mint, chain, interval, alert_ts_ms.
        """
        return {
            "p0": self.p0,
            "hit_2x": self.hit_2x,
            "t_2x_ms": pa.array(self.t_2x_ms, pa.int64(), mask=~self.hit_2x),
            "hit_3x": self.hit_3x,
            "t_3x_ms": pa.array(self.t_3x_ms, pa.int64(), mask=~self.hit_3x),
            "hit_4x": self.hit_4x,
            "t_4x_ms": pa.array(self.t_4x_ms, pa.int64(), mask=~self.hit_4x),
            "dd_bps": self.dd_bps,
            "dd_to_2x_bps": pa.array(self.dd_to_2x_bps, pa.float64(), mask=~self.hit_2x),
            "alert_to_activity_ms": pa.array(
                self.alert_to_activity_ms, pa.int64(), mask=self.alert_to_activity_ms < 0
            ),
            "peak_multiple": self.peak_multiple,
        }


def compute_paths(
    candles: CandleSet, windows: Windows, activity_move: float = DEFAULT_ACTIVITY_MOVE
) -> PathMetrics:
    """Path metrics for every eligible alert of ``windows`` (m = ``activity_move``, a fraction)."""
    if not (0.0 < activity_move < 1.0):
        raise ValueError(f"activity_move must be > 0 and < 1 (got {activity_move})")
    idx = windows.eligible_idx
    n = len(idx)
    t_nx = np.empty((3, n), dtype=np.int64)
    floats = np.empty((4, n), dtype=np.float64)  # dd_bps, dd_to_2x_bps, peak_multiple, p0
    activity = np.empty(n, dtype=np.int64)
    _scan_paths(
        idx, windows.start, windows.end, windows.p0, windows.alert_ts_ms,
        candles.ts_ms, candles.high, candles.low, float(activity_move), t_nx, floats, activity,
    )
    return PathMetrics(
        alert_idx=idx, p0=floats[3].copy(),
        hit_2x=t_nx[0] >= 0, t_2x_ms=t_nx[0].copy(),
        hit_3x=t_nx[1] >= 0, t_3x_ms=t_nx[1].copy(),
        hit_4x=t_nx[2] >= 0, t_4x_ms=t_nx[2].copy(),
        dd_bps=floats[0].copy(), dd_to_2x_bps=floats[1].copy(),
        alert_to_activity_ms=activity, peak_multiple=floats[2].copy(),
    )


@njit(cache=True, nogil=True)
def _scan_paths(idx, start, end, p0s, alert_ts, ts, high, low, m,
                t_nx, floats, activity):  # pragma: no cover - numba
    for r in range(len(idx)):
        k = idx[r]
        p0 = p0s[k]
        lv2 = 2.0 * p0
        lv3 = 3.0 * p0
        lv4 = 4.0 * p0
        up = p0 * (1.0 + m)
        down = p0 * (1.0 - m)
        i2 = -1
        i3 = -1
        i4 = -1
        ia = -1
        max_high = -np.inf
        min_low = np.inf
        min_low_2x = np.nan
        for i in range(start[k], end[k]):
            h = high[i]
            lo = low[i]
            if h > max_high:
                max_high = h
            if lo < min_low:
                min_low = lo
            if ia < 0 and (h >= up or lo <= down):
                ia = i
            if i4 < 0 and h >= lv2:
                if i2 < 0:
                    i2 = i
                    min_low_2x = min_low
                if i3 < 0 and h >= lv3:
                    i3 = i
                if h >= lv4:
                    i4 = i
        t_nx[0, r] = ts[i2] if i2 >= 0 else -1
        t_nx[1, r] = ts[i3] if i3 >= 0 else -1
        t_nx[2, r] = ts[i4] if i4 >= 0 else -1
        activity[r] = ts[ia] - alert_ts[k] if ia >= 0 else -1
        floats[0, r] = min(0.0, (min_low / p0 - 1.0) * 1e4)
        floats[1, r] = min(0.0, (min_low_2x / p0 - 1.0) * 1e4) if i2 >= 0 else np.nan
        floats[2, r] = max_high / p0
        floats[3, r] = p0
