"""Per-alert candle windows: where each alert enters, what it scans, and why it is excluded.

Every number in the numeric core (truth layer, features, policy simulation) is computed
over the rows that :func:`prepare_windows` selects, so the entry/anchor rule and the
exclusion order live here only (SCHEMAS.md, "Semantics of the numbers"):

- ``entry='close'``: anchor = the first candle of the alert's mint whose open time >= alert
  time; p0 = entry price = the anchor's close; scanned rows start at ``anchor + 1``;
- ``entry='next-open'``: anchor = the first candle whose open time > alert time (strictly);
  p0 = the anchor's open; the anchor itself is scanned (its high/low happen after the fill);
- both: ``end`` is one past the last candle with open time <= anchor_ts + horizon (a window
  by time, holes allowed);
- exclusions, first match wins: no_candles -> too_new -> late_entry -> invalid_price ->
  invalid_candles -> missing_range. ``invalid_candles``: a candle in ``[anchor, end)`` is
  impossible (see :func:`candle_ok`).
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
LATE_ENTRY = 5
INVALID_CANDLES = 6

#: status code -> the exclusion reason written to the errors artifact, in check order.
EXCLUSION_REASONS: dict[int, str] = {
    NO_CANDLES: "no_candles",
    TOO_NEW: "too_new",
    LATE_ENTRY: "late_entry",
    INVALID_PRICE: "invalid_price",
    INVALID_CANDLES: "invalid_candles",
    MISSING_RANGE: "missing_range",
}

ENTRIES = ("close", "next-open")
LONG = 1
SHORT = -1
_CHUNK_SHIFT = 5
_CHUNK = 1 << _CHUNK_SHIFT  # rows per impossible-candle index chunk


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
    start: np.ndarray  # int64 first scanned row (anchor + 1 for close, anchor for next-open)
    end: np.ndarray  # int64 one past the last scanned row
    anchor_ts_ms: np.ndarray  # int64 entry time (the anchor's open time)
    p0: np.ndarray  # float64 entry price (the anchor's close or open)
    horizon_ms: int
    side: np.ndarray  # int8 per alert: LONG (+1) or SHORT (-1)
    entry: str = "close"  # one of ENTRIES
    max_entry_delay_ms: int | None = None  # late_entry limit (ms after the alert), None = none

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
    candles: CandleSet, mint_idx: np.ndarray, alert_ts_ms: np.ndarray, horizon_ms: int, *,
    entry: str = "close", side: np.ndarray | None = None, max_entry_delay_ms: int | None = None,
) -> Windows:
    """Locate anchor and window rows of each alert (mint_idx from ``CandleSet.mint_index``).

    ``horizon_ms`` must be > 0; checking that it is a whole number of intervals is the
    caller's job (it knows the interval). ``side``: int8 +1/-1 per alert (None = all long).
    ``max_entry_delay_ms``: an anchor opening more than this after the alert is
    ``late_entry`` (None or <= 0 = no limit).
    """
    mint_idx = np.ascontiguousarray(mint_idx, dtype=np.int64)
    alert_ts_ms = np.ascontiguousarray(alert_ts_ms, dtype=np.int64)
    n = len(mint_idx)
    if mint_idx.shape != alert_ts_ms.shape or mint_idx.ndim != 1:
        raise ValueError("prepare_windows: mint_idx and alert_ts_ms must be 1-d and equally long")
    if horizon_ms <= 0:
        raise ValueError(f"prepare_windows: horizon_ms must be > 0 (got {horizon_ms})")
    if entry not in ENTRIES:
        raise ValueError(f"prepare_windows: entry must be one of {ENTRIES} (got {entry!r})")
    if n and (mint_idx.max() >= len(candles.mints) or mint_idx.min() < -1):
        raise ValueError("prepare_windows: mint_idx out of range of the CandleSet")
    sides = _sides(side, n)
    limit = int(max_entry_delay_ms) if max_entry_delay_ms and max_entry_delay_ms > 0 else None
    status = np.empty(n, dtype=np.int8)
    anchor = np.empty(n, dtype=np.int64)
    end = np.empty(n, dtype=np.int64)
    anchor_ts = np.empty(n, dtype=np.int64)
    p0 = np.empty(n, dtype=np.float64)
    next_open = entry == "next-open"
    _locate(
        np.ascontiguousarray(candles.offsets, dtype=np.int64), candles.ts_ms, candles.open,
        candles.high, candles.low, candles.close,
        np.ascontiguousarray(candles.first_ts_ms, dtype=np.int64), _impossible_index(candles),
        mint_idx, alert_ts_ms, np.int64(horizon_ms), next_open, np.int64(limit or -1),
        status, anchor, end, anchor_ts, p0,
    )
    start = np.where(anchor >= 0, anchor + (0 if next_open else 1), -1)
    return Windows(status, mint_idx, alert_ts_ms, anchor, start, end, anchor_ts, p0,
                   int(horizon_ms), sides, entry, limit)


#: The share of the windows' time that the usual gap covers (see :func:`usual_gap_ms`).
USUAL_TIME_SHARE = 0.99
#: How often a gap length must occur (distinct pairs of candles) to be usual, not a hole.
USUAL_MIN_COUNT = 2


def usual_gap_ms(candles: CandleSet, windows: Windows, interval_ms: int) -> int:
    """The data's usual gap between consecutive candles (ms, a whole number of intervals,
    at least one), read in the alerts' windows: the shortest gap such that spacings no
    longer than it fill 99 % of the time spent in recurring spacings. An instant picked at
    random there falls in a gap no longer than this 99 % of the time.

    Daily stock bars give 4 days (weekends and one-day holidays), hourly FX about 49 h
    (the weekend), gap-free 1-minute candles 1 minute. The rows read are each window
    (``anchor`` to ``end``) and the spacing that holds its alert (the candle before the
    anchor to the anchor), each pair of candles once: alerts in one hole count it once.
    A spacing length seen only once is a hole, not a habit of the market, and is left out
    (the loader reads slices around the alerts, so a spacing across two slices is one of
    those too).
    """
    found = windows.anchor >= 0
    block_start = np.asarray(candles.offsets, dtype=np.int64)[windows.mint_idx[found]]
    first = np.maximum(windows.anchor[found] - 1, block_start)  # spacings i -> i + 1
    dense = np.zeros(_DENSE_BARS + 1, dtype=np.int64)
    far = np.empty(candles.n_rows, dtype=np.int64)
    n_far = _count_spacings(candles.ts_ms, first, windows.end[found] - 1, np.int64(interval_ms),
                            np.zeros(candles.n_rows, dtype=np.bool_), dense, far)
    long_bars, long_count = np.unique(far[:n_far], return_counts=True)
    size = np.concatenate([np.flatnonzero(dense), long_bars])
    count = np.concatenate([dense[dense > 0], long_count])
    time_in = np.where(count >= USUAL_MIN_COUNT, size * count, 0).astype(np.float64)
    if not time_in.sum() > 0:
        return int(interval_ms)
    share = np.cumsum(time_in) / time_in.sum()
    usual = int(size[np.searchsorted(share, USUAL_TIME_SHARE - 1e-12)])
    return max(1, usual) * int(interval_ms)


_DENSE_BARS = 1 << 16  # spacing lengths (bars) counted in an array; longer ones are sorted


@njit(cache=True, nogil=True)
def _count_spacings(ts, first, last, interval, seen, dense, far):  # pragma: no cover - numba
    """Count each spacing i -> i + 1 (i in first[k]:last[k], each i once) by its length in
    whole bars, rounded up: short ones in ``dense``, long ones listed in ``far`` (a dense
    count of a 10-year hole in 1-second bars would need gigabytes). Returns len(far)."""
    n_far = 0
    for k in range(len(first)):
        for i in range(first[k], last[k]):
            if seen[i]:
                continue
            seen[i] = True
            bars = (ts[i + 1] - ts[i] + interval - 1) // interval
            if bars <= dense.shape[0] - 1:
                dense[bars] += 1
            else:
                far[n_far] = bars
                n_far += 1
    return n_far


def _sides(side: np.ndarray | None, n: int) -> np.ndarray:
    if side is None:
        return np.full(n, LONG, dtype=np.int8)
    sides = np.ascontiguousarray(side, dtype=np.int8)
    if sides.shape != (n,):
        raise ValueError(f"prepare_windows: side must hold one value per alert ({n})")
    if not np.isin(sides, (LONG, SHORT)).all():
        raise ValueError("prepare_windows: side values must be +1 (long) or -1 (short)")
    return sides


def impossible_in(candles: CandleSet, lo: int, hi: int) -> tuple[int, int]:
    """(count, first row or -1) of impossible candles in rows lo:hi, for the errors row."""
    count, first = _scan_impossible(candles.open, candles.high, candles.low, candles.close,
                                    np.int64(lo), np.int64(hi))
    return int(count), int(first)


def _impossible_index(candles: CandleSet) -> np.ndarray:
    """Impossible candles before each 32-row chunk (int64, chunks + 1): one read of o/h/l/c.

    A window's count is then O(1) plus its two partial chunks, however much windows
    overlap, and nothing per row is written (a per-row cumsum doubled the cost).
    """
    n_chunks = (candles.n_rows + _CHUNK - 1) // _CHUNK
    before = np.empty(n_chunks + 1, dtype=np.int64)
    _chunk_impossible(candles.open, candles.high, candles.low, candles.close, before)
    return before


@njit(cache=True, nogil=True, inline="always")
def candle_ok(o, h, lo, c):  # pragma: no cover - numba
    """False for a candle no market prints: a price non-finite or <= 0, high < low, open or
    close outside [low, high]. Branch-free (``&``) so loops vectorize; NaN compares False."""
    return (lo > 0.0) & (h < np.inf) & (lo <= h) & (lo <= o) & (o <= h) & (lo <= c) & (c <= h)


@njit(cache=True, nogil=True, inline="always")
def _good(o, h, lo, c, a, b):  # pragma: no cover - numba
    good = 0
    for i in range(a, b):
        good += np.int64(candle_ok(o[i], h[i], lo[i], c[i]))
    return good


@njit(cache=True, nogil=True)
def _chunk_impossible(o, h, lo, c, before):  # pragma: no cover - numba
    total = 0
    before[0] = 0
    full = len(o) >> _CHUNK_SHIFT
    for ch in range(full):
        a = ch << _CHUNK_SHIFT
        good = 0
        for i in range(a, a + _CHUNK):  # a constant trip count: unrolled and vectorized
            good += np.int64(candle_ok(o[i], h[i], lo[i], c[i]))
        total += _CHUNK - good
        before[ch + 1] = total
    if full < len(before) - 1:  # the last, partial chunk
        a = full << _CHUNK_SHIFT
        before[full + 1] = total + (len(o) - a) - _good(o, h, lo, c, a, len(o))


@njit(cache=True, nogil=True)
def _count_impossible(o, h, lo, c, before, a, b):  # pragma: no cover - numba
    """Impossible candles in rows a:b: whole chunks from the index, the edges row by row."""
    ca = (a >> _CHUNK_SHIFT) << _CHUNK_SHIFT
    cb = (b >> _CHUNK_SHIFT) << _CHUNK_SHIFT
    n = before[b >> _CHUNK_SHIFT] - before[a >> _CHUNK_SHIFT]
    bad_before_a = (a - ca) - _good(o, h, lo, c, ca, a)
    bad_before_b = (b - cb) - _good(o, h, lo, c, cb, b)
    return n - bad_before_a + bad_before_b


@njit(cache=True, nogil=True)
def _scan_impossible(o, h, lo, c, a, b):  # pragma: no cover - numba
    count = 0
    first = -1
    for i in range(a, b):
        if not candle_ok(o[i], h[i], lo[i], c[i]):
            count += 1
            if first < 0:
                first = i
    return count, first


@njit(cache=True, nogil=True)
def _locate(offsets, ts, o, h, lo_px, c, first_ts, bad_before, mint_idx, alert_ts, horizon,
            next_open, max_delay, status, anchor, end, anchor_ts, p0):  # pragma: no cover - numba
    price = o if next_open else c
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
        # ms are integers: "open time > alert" is "open time >= alert + 1"
        a = lo + np.searchsorted(block, alert_ts[k] + np.int64(next_open), side="left")
        if a == hi:
            status[k] = NO_CANDLES
            continue
        anchor[k] = a
        anchor_ts[k] = ts[a]
        p0[k] = price[a]
        horizon_end = ts[a] + horizon
        end[k] = lo + np.searchsorted(block, horizon_end, side="right")
        first_scanned = a if next_open else a + 1
        if alert_ts[k] < first_ts[j]:
            status[k] = TOO_NEW
        elif max_delay >= 0 and ts[a] - alert_ts[k] > max_delay:
            status[k] = LATE_ENTRY
        elif not (np.isfinite(price[a]) and price[a] > 0.0):
            status[k] = INVALID_PRICE
        elif _count_impossible(o, h, lo_px, c, bad_before, a, end[k]) > 0:
            status[k] = INVALID_CANDLES
        elif ts[hi - 1] < horizon_end or end[k] <= first_scanned:
            status[k] = MISSING_RANGE
        else:
            status[k] = STATUS_OK
