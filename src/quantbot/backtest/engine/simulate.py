"""Policy simulation: one trade per eligible alert, per policy (SCHEMAS.md semantics).

API (every function takes an optional ``scan_index``; pass one built once per CandleSet)
- ``simulate(policy, candles, windows, taker_fee_bps=30, slippage_bps=10) -> Trades``
- ``simulate_many(policies, candles, windows, ...) -> list[Trades]``: many policies over the
  same windows in one kernel call; each alert's window is read from RAM once and then
  stays in cache while every policy walks it (the optimizer's entry point).
- ``iter_simulate(policies, ..., batch_size=64)`` yields ``(policy, Trades)`` batch by batch
  so a ~600-policy grid never holds all trades in memory at once.
- ``build_scan_index(candles) -> ScanIndex``: per-32-candle max high / min low, letting a
  scan skip quiet stretches exactly (~20 ms for 14.4M candles; built on demand if absent).
- ``encode_policies(policies) -> PolicyProgram``: the numeric form the kernel runs.

Kernel layout: every policy is flattened into *components* (a combo into its
sub-policies, nested combos flattened in order, which keeps "earliest exit wins, ties to the
first listed"). A component is one float64 row: stop fraction + its reason code, take
profit, max hold (ms), trail activation and trail fraction, then ladder levels sorted by
multiple. Each component scans its window candle by candle with the pessimistic in-candle
order (stop, trail, time stop, take profit / ladder), stopping at its exit.

Sides (``Windows.side``): a short mirrors every rule (stop E(1+s) filled at max(open, level),
target E(1-tp), trail from the running trough, ladder at E/m, gross (1 - X/E)·1e4); the
kernel runs one leg function in signed prices (see :func:`_leg`), so both sides share every
step. MAE: candles before the exit candle give their adverse extreme (long: low, short:
high); the exit candle gives the fill on a stop exit (stop_loss, hard_stop, trailing_stop)
and its adverse extreme on every other exit.

:class:`Trades` uses numpy only: ``exit_reason`` is an int8 code into ``EXIT_REASONS`` and
``tail_capture`` is NaN where null; :meth:`Trades.columns` gives Arrow-ready columns
(exit_reason as strings, tail_capture with nulls).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numba import njit

from quantbot.backtest.data.candle_set import CandleSet
from quantbot.backtest.engine.policies import (
    Combo,
    FixedStop,
    Ladder,
    TimeStop,
    TrailingStop,
    parse_policy,
)
from quantbot.backtest.engine.tail import tail_capture
from quantbot.backtest.engine.windows import Windows

EXIT_REASONS = ("stop_loss", "take_profit", "time_stop", "hard_stop", "trailing_stop",
                "ladder_complete", "end_of_data")
STOP_LOSS, TAKE_PROFIT, TIME_STOP, HARD_STOP, TRAILING_STOP, LADDER_COMPLETE, END_OF_DATA = range(7)
STOP_REASONS = (STOP_LOSS, HARD_STOP, TRAILING_STOP)

# Component row layout.
_STOP, _STOP_REASON, _TP, _HOLD, _ACT, _TRAIL, _NLEV, _LEVELS = range(8)
_COMPLETE_TOLERANCE = 1e-9  # ladder fractions summing to 1 up to float rounding close it all
_CHUNK_SHIFT = 5
_CHUNK = 1 << _CHUNK_SHIFT  # rows per ScanIndex chunk
_CHUNK_MASK = _CHUNK - 1


@dataclass(frozen=True)
class Trades:
    """Trades of one policy, one row per eligible alert in ascending alert order."""

    alert_idx: np.ndarray  # int64 index into the input alerts
    side: np.ndarray  # int8: +1 long, -1 short
    entry_ts_ms: np.ndarray  # int64
    entry_px: np.ndarray  # float64
    exit_ts_ms: np.ndarray  # int64
    exit_px: np.ndarray  # float64 (ladder: fraction-weighted mean fill)
    exit_reason: np.ndarray  # int8 code into EXIT_REASONS
    gross_return_bps: np.ndarray  # float64, before fees
    realized_return_bps: np.ndarray  # float64, gross - 2 (fee + slippage)
    stop_out: np.ndarray  # bool
    max_adverse_excursion_bps: np.ndarray  # float64 <= 0
    time_exposed_ms: np.ndarray  # int64 >= 0
    tail_capture: np.ndarray  # float64 in [-1, 1], NaN = null (peak below 100 bps)

    def __len__(self) -> int:
        return len(self.alert_idx)

    def take(self, rows: np.ndarray) -> "Trades":
        """A subset (e.g. one caller's trades) by row index or bool mask."""
        return Trades(**{name: getattr(self, name)[rows] for name in self.__dataclass_fields__})

    def columns(self) -> dict[str, np.ndarray | pa.Array]:
        """Trades columns keyed by SCHEMAS names; the caller adds run_id, policy_id, call_id."""
        reasons = pa.DictionaryArray.from_arrays(
            pa.array(self.exit_reason, pa.int8()), pa.array(EXIT_REASONS)
        ).cast(pa.string())
        return {
            "side": pa.array(np.where(self.side > 0, "long", "short"), pa.string()),
            "entry_ts_ms": self.entry_ts_ms,
            "entry_px": self.entry_px,
            "exit_ts_ms": self.exit_ts_ms,
            "exit_px": self.exit_px,
            "exit_reason": reasons,
            "realized_return_bps": self.realized_return_bps,
            "stop_out": self.stop_out,
            "max_adverse_excursion_bps": self.max_adverse_excursion_bps,
            "time_exposed_ms": self.time_exposed_ms,
            "tail_capture": pa.array(self.tail_capture, pa.float64(),
                                     mask=np.isnan(self.tail_capture)),
        }


@dataclass(frozen=True)
class PolicyProgram:
    """Policies as kernel input: component rows and, per policy, its component range."""

    params: np.ndarray  # float64 (components, width)
    offsets: np.ndarray  # int64 (policies + 1,): policy p owns rows offsets[p]:offsets[p+1]


def _components(policy: Any) -> list[list[float]]:
    p = parse_policy(policy)
    if isinstance(p, Combo):
        return [row for sub in p.policies for row in _components(sub)]
    row = [0.0, float(STOP_LOSS), 0.0, 0.0, 0.0, 0.0, 0.0]
    if isinstance(p, FixedStop):
        row[_STOP], row[_TP] = p.stop_pct, p.take_profit_pct
    elif isinstance(p, TimeStop):
        row[_HOLD], row[_TP] = float(p.max_hold_ms), p.take_profit_pct
    elif isinstance(p, TrailingStop):
        row[_STOP], row[_STOP_REASON] = p.hard_stop_pct, float(HARD_STOP)
        row[_ACT], row[_TRAIL] = p.activation_pct, p.trail_pct
    elif isinstance(p, Ladder):
        row[_STOP], row[_NLEV] = p.stop_pct, float(len(p.levels))
        # Ascending multiples: the filled levels are then always a prefix.
        for level in sorted(p.levels, key=lambda lv: lv.multiple):
            row += [level.multiple, level.fraction]
    return [row]


def encode_policies(policies: Sequence[Any]) -> PolicyProgram:
    """Flatten policies (models, dicts or JSON) into the kernel's parameter matrix."""
    rows: list[list[float]] = []
    offsets = [0]
    for policy in policies:
        rows += _components(policy)
        offsets.append(len(rows))
    width = max((len(r) for r in rows), default=_LEVELS)
    params = np.zeros((len(rows), width), dtype=np.float64)
    for i, r in enumerate(rows):
        params[i, : len(r)] = r
    return PolicyProgram(params, np.asarray(offsets, dtype=np.int64))


@dataclass(frozen=True)
class ScanIndex:
    """Max high / min low of every aligned 32-row chunk of a CandleSet.

    A scan asks one chunk "could anything trigger in here?" and, when not, skips its 32
    candles at once; the answer is exact (no rule can fire on a candle whose low is above
    every stop level and whose high is below every upward level), so results are unchanged.
    Build it once per CandleSet and pass it to every simulate call over that set.
    """

    chunk_max_high: np.ndarray  # float64, (ceil(rows / 32),)
    chunk_min_low: np.ndarray


def build_scan_index(candles: CandleSet) -> ScanIndex:
    """One pass over high/low of the whole CandleSet (two threads)."""
    n_chunks = (candles.n_rows + _CHUNK - 1) // _CHUNK
    cmax = np.empty(n_chunks, dtype=np.float64)
    cmin = np.empty(n_chunks, dtype=np.float64)
    args = (candles.high, candles.low, cmax, cmin)
    _in_threads(_chunk_extremes, args, n_chunks, min_per_worker=4096)
    return ScanIndex(cmax, cmin)


def simulate(policy: Any, candles: CandleSet, windows: Windows, taker_fee_bps: float = 30.0,
             slippage_bps: float = 10.0, scan_index: ScanIndex | None = None) -> Trades:
    """Trades of one policy over every eligible alert of ``windows`` (fees in bps per side)."""
    return simulate_many([policy], candles, windows, taker_fee_bps, slippage_bps, scan_index)[0]


def simulate_many(policies: Sequence[Any], candles: CandleSet, windows: Windows,
                  taker_fee_bps: float = 30.0, slippage_bps: float = 10.0,
                  scan_index: ScanIndex | None = None) -> list[Trades]:
    """Trades of each policy (same order); every window is walked by all policies in turn."""
    index = scan_index if scan_index is not None else build_scan_index(candles)
    program = encode_policies(policies)
    idx = windows.eligible_idx
    n_pol, n = len(policies), len(idx)
    exit_row = np.empty((n_pol, n), dtype=np.int64)
    floats = np.empty((3, n_pol, n), dtype=np.float64)  # exit_px, gross_bps, mae_bps
    reason = np.empty((n_pol, n), dtype=np.int8)
    best_px = np.empty(n, dtype=np.float64)  # long: max high; short: min low (whole window)
    args = (program.params, program.offsets, idx, windows.start, windows.end, windows.p0,
            windows.anchor_ts_ms, candles.ts_ms, candles.open, candles.high, candles.low,
            candles.close, index.chunk_max_high, index.chunk_min_low, exit_row, floats, reason,
            best_px)
    side = windows.side[idx]
    # One compiled kernel per side (sg a constant in each): a kernel holding both legs ran
    # all-long inputs ~10 % slower.
    for sg, kernel in ((1, _simulate_long), (-1, _simulate_short)):
        rows = np.flatnonzero(side == sg)
        if len(rows):
            _in_threads(kernel, (rows, *args), len(rows), min_per_worker=256)
    entry_px = windows.p0[idx]
    entry_ts = windows.anchor_ts_ms[idx]
    peak_bps = side * ((best_px / entry_px - 1.0) * 1e4)
    fees = 2.0 * (taker_fee_bps + slippage_bps)
    out = []
    for p in range(n_pol):
        exit_ts = candles.ts_ms[exit_row[p]]
        gross = floats[1, p]
        out.append(Trades(
            alert_idx=idx, side=side, entry_ts_ms=entry_ts, entry_px=entry_px, exit_ts_ms=exit_ts,
            exit_px=floats[0, p], exit_reason=reason[p], gross_return_bps=gross,
            realized_return_bps=gross - fees, stop_out=np.isin(reason[p], STOP_REASONS),
            max_adverse_excursion_bps=floats[2, p], time_exposed_ms=exit_ts - entry_ts,
            tail_capture=tail_capture(gross, peak_bps),
        ))
    return out


def iter_simulate(policies: Sequence[Any], candles: CandleSet, windows: Windows,
                  taker_fee_bps: float = 30.0, slippage_bps: float = 10.0,
                  batch_size: int = 64, scan_index: ScanIndex | None = None,
                  ) -> Iterator[tuple[Any, Trades]]:
    """``(policy, Trades)`` for each policy, computed ``batch_size`` policies at a time."""
    index = scan_index if scan_index is not None else build_scan_index(candles)
    for b in range(0, len(policies), batch_size):
        batch = list(policies[b:b + batch_size])
        trades = simulate_many(batch, candles, windows, taker_fee_bps, slippage_bps, index)
        yield from zip(batch, trades)


def _in_threads(kernel: Any, args: tuple, n: int, min_per_worker: int) -> None:
    """Run ``kernel(*args, lo, hi)`` over ``0:n`` split across the cores (kernels are nogil)."""
    workers = min(os.cpu_count() or 1, max(1, n // min_per_worker))
    if workers <= 1:
        kernel(*args, 0, n)
        return
    bounds = np.linspace(0, n, 4 * workers + 1).astype(np.int64)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda i: kernel(*args, bounds[i], bounds[i + 1]), range(len(bounds) - 1)))


@njit(cache=True, nogil=True, fastmath=True)  # fastmath lets the min/max reductions vectorize
def _chunk_extremes(h, lo, cmax, cmin, c0, c1):  # pragma: no cover - numba
    for ch in range(c0, c1):
        top = -np.inf
        bottom = np.inf
        for i in range(ch * _CHUNK, min((ch + 1) * _CHUNK, len(h))):
            top = max(top, h[i])
            bottom = min(bottom, lo[i])
        cmax[ch] = top
        cmin[ch] = bottom


@njit(cache=True, nogil=True)
def _simulate_long(rows, params, offsets, idx, start, end, p0s, anchor_ts, ts, o, h, lo, c,
                   cmax, cmin, exit_row, floats, reason, best_px, j0, j1):  # pragma: no cover
    for j in range(j0, j1):
        _alert(rows[j], 1.0, params, offsets, idx, start, end, p0s, anchor_ts, ts, o, h, lo, c,
               cmax, cmin, exit_row, floats, reason, best_px)


@njit(cache=True, nogil=True)
def _simulate_short(rows, params, offsets, idx, start, end, p0s, anchor_ts, ts, o, h, lo, c,
                    cmax, cmin, exit_row, floats, reason, best_px, j0, j1):  # pragma: no cover
    for j in range(j0, j1):
        _alert(rows[j], -1.0, params, offsets, idx, start, end, p0s, anchor_ts, ts, o, h, lo, c,
               cmax, cmin, exit_row, floats, reason, best_px)


@njit(cache=True, nogil=True, inline="always")
def _alert(r, sg, params, offsets, idx, start, end, p0s, anchor_ts, ts, o, h, lo, c,
           cmax, cmin, exit_row, floats, reason, best_px):  # pragma: no cover - numba
    """Every policy over one alert's window; ``sg`` is a literal +1.0 (long) / -1.0 (short)."""
    k = idx[r]
    s = start[k]
    e = end[k]
    entry = p0s[k]
    best = -np.inf  # signed favourable extreme over the whole window (for tail_capture)
    i = s
    while i < e:
        if i & _CHUNK_MASK == 0 and i + _CHUNK <= e:
            best = max(best, sg * (cmax[i >> _CHUNK_SHIFT] if sg > 0 else cmin[i >> _CHUNK_SHIFT]))
            i += _CHUNK
        else:
            best = max(best, sg * (h[i] if sg > 0 else lo[i]))
            i += 1
    best_px[r] = sg * best
    for p in range(len(offsets) - 1):
        best_row = np.int64(-1)
        for q in range(offsets[p], offsets[p + 1]):
            row, px, gross, why, worst = _leg(params[q], sg, s, e, anchor_ts[k], entry,
                                              ts, o, h, lo, c, cmax, cmin)
            if best_row < 0 or row < best_row:
                best_row = row
                exit_row[p, r] = row
                floats[0, p, r] = px
                floats[1, p, r] = gross
                floats[2, p, r] = min(0.0, _ret(sg, sg * worst, entry))
                reason[p, r] = why


@njit(cache=True, nogil=True, inline="always")
def _ret(sg, px, entry):  # pragma: no cover - numba
    """Gross return of a fill in bps: long (px/E - 1)·1e4, short (1 - px/E)·1e4 (exactly
    the negation, so one formula)."""
    return sg * ((px / entry - 1.0) * 1e4)


@njit(cache=True, nogil=True, inline="always")
def _multiple(sg, entry, m):  # pragma: no cover - numba
    """A ladder multiple's price: m·E for a long, E/m for a short."""
    return entry * m if sg > 0 else entry / m


@njit(cache=True, nogil=True, inline="always")
def _ceiling(prm, sg, entry, tp_on, tp_lv, awaiting_activation, act_lv, filled,
             nlev):  # pragma: no cover - numba
    """Lowest signed price (sg·price) whose touch by a candle's favourable extreme would fire
    a favourable rule (take profit, next ladder level, trail activation)."""
    ceiling = sg * tp_lv if tp_on else np.inf
    if awaiting_activation:
        ceiling = min(ceiling, sg * act_lv)
    if filled < nlev:
        ceiling = min(ceiling, sg * _multiple(sg, entry, prm[_LEVELS + 2 * filled]))
    return ceiling


@njit(cache=True, nogil=True, inline="always")
def _leg(prm, sg, s, e, entry_ts, entry, ts, o, h, lo, c, cmax, cmin):  # pragma: no cover
    """One component over rows s:e -> (exit row, exit px, gross bps, reason, signed worst).

    ``sg`` = +1.0 long / -1.0 short. In signed prices (sg·price) a short's rules are the
    long ones: its adverse extreme (high) is ``sg·high``, the minimum of the candle's signed
    prices, its stop E(1+s) fires when ``sg·high <= sg·level``, and ``min`` of signed
    prices is ``max`` of real ones (fill max(open, level)). Negation is exact, so long and
    short follow the same float steps. ``worst`` is the min of signed adverse extremes per
    the MAE rule: candles before the exit candle, then the exit candle's fill on a stop exit
    and its adverse extreme otherwise.
    """
    stop_on = prm[_STOP] > 0.0
    stop_lv = entry * (1.0 - sg * prm[_STOP])
    stop_reason = np.int8(prm[_STOP_REASON])
    tp_on = prm[_TP] > 0.0 and (sg > 0 or prm[_TP] < 1.0)  # a short's target E(1-tp) > 0
    tp_lv = entry * (1.0 + sg * prm[_TP])
    hold_on = prm[_HOLD] > 0.0
    hold = np.int64(prm[_HOLD])
    trail = prm[_TRAIL]
    trail_on = trail > 0.0
    act_lv = entry * (1.0 + sg * prm[_ACT])
    active = trail_on and prm[_ACT] == 0.0
    peak = entry  # long: running max(E, highs); short: running min(E, lows)
    nlev = np.int64(prm[_NLEV])
    filled = 0
    remaining = 1.0
    px_sum = 0.0
    gross = 0.0
    worst = np.inf
    # Chunk-skip bounds (signed): nothing fires on a candle whose signed adverse extreme is
    # above floor and whose signed favourable extreme is below ceiling.
    floor = sg * stop_lv if stop_on else -np.inf
    ceiling = _ceiling(prm, sg, entry, tp_on, tp_lv, trail_on and not active, act_lv, filled,
                       nlev)
    i = s - 1
    while i + 1 < e:
        i += 1
        if i & _CHUNK_MASK == 0 and i + _CHUNK <= e:
            ch = i >> _CHUNK_SHIFT
            c_adv = sg * (cmin[ch] if sg > 0 else cmax[ch])
            c_fav = sg * (cmax[ch] if sg > 0 else cmin[ch])
            quiet = c_adv > floor and c_fav < ceiling
            if quiet and active:
                quiet = c_adv > max(sg * peak, c_fav) * (1.0 - sg * trail)
            if quiet and hold_on:
                quiet = ts[i + _CHUNK - 1] - entry_ts < hold
            if quiet:
                worst = min(worst, c_adv)
                if active:
                    peak = sg * max(sg * peak, c_fav)
                i += _CHUNK - 1
                continue
        adv = sg * (lo[i] if sg > 0 else h[i])
        fav = sg * (h[i] if sg > 0 else lo[i])
        if stop_on and adv <= floor:
            fill = sg * min(sg * o[i], floor)
            return (i, px_sum + remaining * fill, gross + remaining * _ret(sg, fill, entry),
                    stop_reason, min(worst, sg * fill))
        if active:
            trail_lv = sg * (peak * (1.0 - sg * trail))
            if adv <= trail_lv:
                fill = sg * min(sg * o[i], trail_lv)
                return (i, px_sum + remaining * fill, gross + remaining * _ret(sg, fill, entry),
                        np.int8(TRAILING_STOP), min(worst, sg * fill))
        worst = min(worst, adv)
        if hold_on and ts[i] - entry_ts >= hold:
            fill = c[i]
            return (i, px_sum + remaining * fill, gross + remaining * _ret(sg, fill, entry),
                    np.int8(TIME_STOP), worst)
        if tp_on and fav >= sg * tp_lv:
            return i, tp_lv, _ret(sg, tp_lv, entry), np.int8(TAKE_PROFIT), worst
        if filled < nlev and fav >= ceiling:
            while filled < nlev:
                level = _multiple(sg, entry, prm[_LEVELS + 2 * filled])
                if fav < sg * level:
                    break
                frac = prm[_LEVELS + 2 * filled + 1]
                px_sum += frac * level
                gross += frac * _ret(sg, level, entry)
                remaining -= frac
                filled += 1
                if remaining <= _COMPLETE_TOLERANCE:
                    return i, px_sum, gross, np.int8(LADDER_COMPLETE), worst
            ceiling = _ceiling(prm, sg, entry, tp_on, tp_lv, trail_on and not active, act_lv,
                               filled, nlev)
        if trail_on:
            if active:
                peak = sg * max(sg * peak, fav)
            elif fav >= sg * act_lv:
                active = True
                peak = sg * max(sg * peak, fav)
                ceiling = _ceiling(prm, sg, entry, tp_on, tp_lv, False, act_lv, filled, nlev)
    last = e - 1
    fill = c[last]
    return (last, px_sum + remaining * fill, gross + remaining * _ret(sg, fill, entry),
            np.int8(END_OF_DATA), worst)
