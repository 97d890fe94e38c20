"""Truth layer: what the price did after each eligible alert, independent of any policy.

One pass over each alert's window (rows ``start:end`` of :class:`Windows`, i.e. the candles
after the entry up to the horizon) gives every paths column of SCHEMAS.md. Levels are
computed exactly as written there (``2.0 * p0``, ``p0 / 2.0`` for a short,
``p0 * (1 + m)``, ...) and compared inclusively, so a plain-Python reference reproduces the
numbers bit for bit.

Sides: a level m is a price ratio in the trade's favour: long ``high >= m·p0``, short
``low <= p0/m``; for a short, ``peak_multiple = p0 / min(low)`` and
``dd_bps = min(0, (1 - max(high)/p0)·1e4)``. ``alert_to_activity_ms`` is side-free.

Null convention of :class:`PathMetrics` (numpy has no nulls): ``t_Nx_ms == -1`` iff not
``hit_Nx``; ``dd_to_2x_bps`` is NaN iff not ``hit_2x``; ``alert_to_activity_ms == -1`` iff
no activity. :meth:`PathMetrics.columns` turns these into real Arrow nulls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numba import njit

from quantbot.artifacts.schema.arrow_schemas import STANDARD_LEVELS, level_column_suffix
from quantbot.backtest.data.candle_set import NO_TS, CandleSet
from quantbot.backtest.engine.windows import Windows

DEFAULT_ACTIVITY_MOVE = 0.10


@dataclass(frozen=True)
class PathMetrics:
    """Path metrics of the eligible alerts, in ascending alert order (``alert_idx``)."""

    alert_idx: np.ndarray  # int64 index into the input alerts
    p0: np.ndarray  # float64
    hit_2x: np.ndarray  # bool
    t_2x_ms: np.ndarray  # int64 epoch ms, NO_TS = null
    hit_3x: np.ndarray
    t_3x_ms: np.ndarray
    hit_4x: np.ndarray
    t_4x_ms: np.ndarray
    dd_bps: np.ndarray  # float64 <= 0
    dd_to_2x_bps: np.ndarray  # float64 <= 0, NaN = null
    alert_to_activity_ms: np.ndarray  # int64 ms, -1 = null
    peak_multiple: np.ndarray  # float64
    extra_levels: tuple[float, ...] = ()  # requested levels other than 2, 3, 4, in order
    t_extra_ms: np.ndarray | None = None  # int64 (len(extra_levels), rows), NO_TS = no hit

    def columns(self) -> dict[str, np.ndarray | pa.Array]:
        """The numeric paths columns keyed by their SCHEMAS names, nullable ones as Arrow;
        extra levels' ``hit_<m>x``/``t_<m>x_ms`` follow the standard columns.

        The caller adds run_id, call_id, caller_name, mint, chain, interval, alert_ts_ms, side.
        """
        cols: dict[str, np.ndarray | pa.Array] = {
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
        for j, m in enumerate(self.extra_levels):
            tag = level_column_suffix(m)
            t = self.t_extra_ms[j]
            cols[f"hit_{tag}x"] = t != NO_TS
            cols[f"t_{tag}x_ms"] = pa.array(t, pa.int64(), mask=t == NO_TS)
        return cols


def compute_paths(
    candles: CandleSet, windows: Windows, activity_move: float = DEFAULT_ACTIVITY_MOVE,
    levels: tuple[float, ...] = STANDARD_LEVELS,
) -> PathMetrics:
    """Path metrics for every eligible alert of ``windows`` (m = ``activity_move``, a fraction).

    ``levels``: multiples > 1; the standard 2, 3, 4 are always computed, the others add
    columns (see :meth:`PathMetrics.columns`).
    """
    if not (0.0 < activity_move < 1.0):
        raise ValueError(f"activity_move must be > 0 and < 1 (got {activity_move})")
    extra = _extra_levels(levels)
    all_levels = np.array(STANDARD_LEVELS + extra, dtype=np.float64)
    order = np.argsort(all_levels, kind="stable")  # hits of a higher level come no earlier
    idx = windows.eligible_idx
    n = len(idx)
    t_nx = np.empty((len(all_levels), n), dtype=np.int64)
    floats = np.empty((4, n), dtype=np.float64)  # dd_bps, dd_to_2x_bps, peak_multiple, p0
    activity = np.empty(n, dtype=np.int64)
    side = windows.side[idx]
    for sg, kernel in ((1, _scan_long), (-1, _scan_short)):  # one compiled scan per side
        kernel(np.flatnonzero(side == sg), idx, windows.start, windows.end, windows.p0,
               windows.alert_ts_ms, candles.ts_ms, candles.high, candles.low,
               float(activity_move), all_levels[order],
               np.int64(np.flatnonzero(all_levels[order] == 2.0)[0]), t_nx, floats, activity)
    t_nx[order] = t_nx.copy()  # back to the requested order
    return PathMetrics(
        alert_idx=idx, p0=floats[3].copy(),
        hit_2x=t_nx[0] != NO_TS, t_2x_ms=t_nx[0].copy(),
        hit_3x=t_nx[1] != NO_TS, t_3x_ms=t_nx[1].copy(),
        hit_4x=t_nx[2] != NO_TS, t_4x_ms=t_nx[2].copy(),
        dd_bps=floats[0].copy(), dd_to_2x_bps=floats[1].copy(),
        alert_to_activity_ms=activity, peak_multiple=floats[2].copy(),
        extra_levels=extra, t_extra_ms=t_nx[3:].copy(),
    )


def _extra_levels(levels: tuple[float, ...]) -> tuple[float, ...]:
    """The requested levels other than 2, 3, 4, first occurrence order; each finite and > 1."""
    extra: list[float] = []
    for m in levels:
        m = float(m)
        if not (math.isfinite(m) and m > 1.0):
            raise ValueError(f"levels must be finite multiples > 1 (got {m!r})")
        if m not in STANDARD_LEVELS and m not in extra:
            extra.append(m)
    return tuple(extra)


@njit(cache=True, nogil=True)
def _scan_long(rows, idx, start, end, p0s, alert_ts, ts, high, low, m, levels, pos_2x,
               t_nx, floats, activity):  # pragma: no cover - numba
    for r in rows:
        _scan_one(r, idx[r], 1.0, high, low, start, end, p0s, alert_ts, ts, m, levels, pos_2x,
                  t_nx, floats, activity)


@njit(cache=True, nogil=True)
def _scan_short(rows, idx, start, end, p0s, alert_ts, ts, high, low, m, levels, pos_2x,
                t_nx, floats, activity):  # pragma: no cover - numba
    for r in rows:
        _scan_one(r, idx[r], -1.0, high, low, start, end, p0s, alert_ts, ts, m, levels, pos_2x,
                  t_nx, floats, activity)


@njit(cache=True, nogil=True, inline="always")
def _scan_one(r, k, sg, high, low, start, end, p0s, alert_ts, ts, m, levels, pos_2x,
              t_nx, floats, activity):  # pragma: no cover - numba
    """One window; ``sg`` is +1.0 (long) or -1.0 (short). The favourable extreme of a candle
    is its high (long) or low (short); prices are compared as ``sg * price``, which is exact
    and turns every short rule into the long one. Each call passes a literal ``sg``, which
    folds away once inlined (the long scan costs what it did before shorts)."""
    p0 = p0s[k]
    up = p0 * (1.0 + m)
    down = p0 * (1.0 - m)
    n_lv = len(levels)
    nxt = 0  # levels are ascending: the first one not hit yet
    next_s = sg * _level(sg, p0, levels[0])  # its signed price; inf once all are hit
    ia = -1
    best = -np.inf  # max of sg * fav
    worst = np.inf  # min of sg * adv
    worst_2x = np.inf
    for j in range(n_lv):
        t_nx[j, r] = NO_TS
    for i in range(start[k], end[k]):
        h = high[i]
        lo = low[i]
        f = sg * (h if sg > 0 else lo)  # favourable extreme, signed
        a = sg * (lo if sg > 0 else h)  # adverse extreme, signed
        if f > best:
            best = f
        if a < worst:
            worst = a
        if ia < 0 and (h >= up or lo <= down):
            ia = i
        if f >= next_s:
            while nxt < n_lv and f >= sg * _level(sg, p0, levels[nxt]):
                t_nx[nxt, r] = ts[i]
                if nxt == pos_2x:
                    worst_2x = worst
                nxt += 1
            next_s = sg * _level(sg, p0, levels[nxt]) if nxt < n_lv else np.inf
    activity[r] = ts[ia] - alert_ts[k] if ia >= 0 else -1
    floats[0, r] = min(0.0, sg * ((sg * worst / p0 - 1.0) * 1e4))
    floats[1, r] = min(0.0, sg * ((sg * worst_2x / p0 - 1.0) * 1e4)) if nxt > pos_2x else np.nan
    floats[2, r] = sg * best / p0 if sg > 0 else p0 / (sg * best)
    floats[3, r] = p0


@njit(cache=True, nogil=True, inline="always")
def _level(sg, p0, m):  # pragma: no cover - numba
    """The price of multiple m: m·p0 for a long, p0/m for a short."""
    return p0 * m if sg > 0 else p0 / m
