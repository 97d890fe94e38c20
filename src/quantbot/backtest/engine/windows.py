"""Per-alert candle windows: where each alert enters, what it scans, and why it is excluded.

Every number in the numeric core (truth layer, features, policy simulation) is computed
over the rows that :func:`prepare_windows` selects, so the entry/anchor rule and the
exclusion order live here only (SCHEMAS.md, "Semantics of the numbers"):

- anchor = the first candle of the alert's mint whose open time >= alert time;
  p0 = entry price = the anchor's close;
- scanned rows = ``start:end`` with ``start = anchor + 1`` and ``end`` one past the last
  candle with open time <= anchor_ts + horizon (a window by time, holes allowed);
- exclusions, first match wins: no_candles -> too_new -> invalid_price -> missing_range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from quantbot.backtest.data.candle_set import CandleSet

STATUS_OK = 0
NO_CANDLES = 1
TOO_NEW = 2
INVALID_PRICE = 3
MISSING_RANGE = 4

#: status code -> the exclusion reason written to the errors artifact.
EXCLUSION_REASONS: dict[int, str] = {
    NO_CANDLES: "no_candles",
    TOO_NEW: "too_new",
    INVALID_PRICE: "invalid_price",
    MISSING_RANGE: "missing_range",
}


@dataclass(frozen=True)
class Windows:
    """Row ranges into a :class:`CandleSet`, one entry per input alert (same order).

    Rows are global CandleSet row indices. ``anchor``/``anchor_ts_ms`` are -1 and ``p0``
    is NaN when the alert has no anchor candle; ``start``/``end`` are only meaningful
    where ``status == STATUS_OK`` (then ``start < end``).
    """

    status: np.ndarray  # int8, STATUS_OK or an EXCLUSION_REASONS key
    mint_idx: np.ndarray  # int64 CandleSet block, -1 = mint without candles
    alert_ts_ms: np.ndarray  # int64
    anchor: np.ndarray  # int64 row of the anchor (entry) candle
    start: np.ndarray  # int64 first scanned row (anchor + 1)
    end: np.ndarray  # int64 one past the last scanned row
    anchor_ts_ms: np.ndarray  # int64 entry time (the anchor's open time)
    p0: np.ndarray  # float64 entry price (the anchor's close)
    horizon_ms: int

    @property
    def eligible(self) -> np.ndarray:
        """Bool mask of alerts that enter a trade and get path metrics."""
        return self.status == STATUS_OK

    @property
    def eligible_idx(self) -> np.ndarray:
        """Indices (int64) of eligible alerts, ascending: the row order of paths/trades."""
        return np.flatnonzero(self.status == STATUS_OK).astype(np.int64)

    def reasons(self) -> list[str | None]:
        """Exclusion reason per alert (None when eligible), for the errors artifact."""
        return [EXCLUSION_REASONS.get(int(s)) for s in self.status]


def prepare_windows(
    candles: CandleSet, mint_idx: np.ndarray, alert_ts_ms: np.ndarray, horizon_ms: int
) -> Windows:
    """Locate anchor and window rows of each alert (mint_idx from ``CandleSet.mint_index``).

    ``horizon_ms`` must be > 0; checking that it is a whole number of intervals is the
    caller's job (it knows the interval).
    """
    mint_idx = np.ascontiguousarray(mint_idx, dtype=np.int64)
    alert_ts_ms = np.ascontiguousarray(alert_ts_ms, dtype=np.int64)
    if mint_idx.shape != alert_ts_ms.shape or mint_idx.ndim != 1:
        raise ValueError("prepare_windows: mint_idx and alert_ts_ms must be 1-d and equally long")
    if horizon_ms <= 0:
        raise ValueError(f"prepare_windows: horizon_ms must be > 0 (got {horizon_ms})")
    if len(mint_idx) and (mint_idx.max() >= len(candles.mints) or mint_idx.min() < -1):
        raise ValueError("prepare_windows: mint_idx out of range of the CandleSet")
    n = len(mint_idx)
    status = np.empty(n, dtype=np.int8)
    anchor = np.empty(n, dtype=np.int64)
    end = np.empty(n, dtype=np.int64)
    anchor_ts = np.empty(n, dtype=np.int64)
    p0 = np.empty(n, dtype=np.float64)
    _locate(
        np.ascontiguousarray(candles.offsets, dtype=np.int64), candles.ts_ms, candles.close,
        np.ascontiguousarray(candles.first_ts_ms, dtype=np.int64),
        mint_idx, alert_ts_ms, np.int64(horizon_ms), status, anchor, end, anchor_ts, p0,
    )
    start = np.where(anchor >= 0, anchor + 1, -1)
    return Windows(status, mint_idx, alert_ts_ms, anchor, start, end, anchor_ts, p0,
                   int(horizon_ms))


@njit(cache=True, nogil=True)
def _locate(offsets, ts, close, first_ts, mint_idx, alert_ts, horizon,
            status, anchor, end, anchor_ts, p0):  # pragma: no cover - numba
    for k in range(len(mint_idx)):
        anchor[k] = -1
        end[k] = -1
        anchor_ts[k] = -1
        p0[k] = np.nan
        j = mint_idx[k]
        if j < 0 or offsets[j] == offsets[j + 1]:
            status[k] = NO_CANDLES
            continue
        lo = offsets[j]
        hi = offsets[j + 1]
        block = ts[lo:hi]
        a = lo + np.searchsorted(block, alert_ts[k], side="left")
        if a == hi:
            status[k] = NO_CANDLES
            continue
        anchor[k] = a
        anchor_ts[k] = ts[a]
        p0[k] = close[a]
        horizon_end = ts[a] + horizon
        end[k] = lo + np.searchsorted(block, horizon_end, side="right")
        if alert_ts[k] < first_ts[j]:
            status[k] = TOO_NEW
        elif not (np.isfinite(close[a]) and close[a] > 0.0):
            status[k] = INVALID_PRICE
        elif ts[hi - 1] < horizon_end or end[k] <= a + 1:
            status[k] = MISSING_RANGE
        else:
            status[k] = STATUS_OK
