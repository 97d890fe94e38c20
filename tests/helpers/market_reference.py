"""What a user expects of one trade on one asset, in plain Python, from COMMON.md's contract.

Independent of quantbot (no engine import, no numpy): a list of candles, an alert time and
a side in; the entry, the exit of a fixed / time / trailing stop, the returns (bps), the
maximum adverse excursion and the path metrics out. Written naively, one candle at a time,
so that the fast engine can be checked against a second reading of the rules:

- entry ``close``: anchor = first candle opening at or after the alert, entry = its close,
  scanned = the candles after it; ``next-open``: anchor = first candle opening strictly after
  the alert, entry = its open, scanned = the anchor and after. Both up to anchor + horizon.
- a short mirrors every rule: stops above the entry, targets and levels below it, returns
  ``(1 - X/E)·1e4`` bps; in-candle order (pessimistic): stop, trail, time stop, take profit.
- MAE: every scanned candle before the exit contributes its adverse extreme; the exit candle
  its fill on a stop exit, its adverse extreme otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

STANDARD_LEVELS = (2.0, 3.0, 4.0)
STOP_EXITS = ("stop_loss", "hard_stop", "trailing_stop")


@dataclass(frozen=True)
class Candle:
    """One bar: open time (epoch ms, UTC) and prices."""

    ts_ms: int
    open: float
    high: float
    low: float
    close: float

    def possible(self) -> bool:
        """A bar that can happen: positive finite prices, open and close within [low, high]."""
        prices = (self.open, self.high, self.low, self.close)
        if not all(math.isfinite(p) and p > 0 for p in prices):
            return False
        return self.low <= self.high and all(self.low <= p <= self.high
                                             for p in (self.open, self.close))


@dataclass(frozen=True)
class Window:
    """Where an alert enters and what it scans; ``reason`` is the exclusion (None = eligible)."""

    reason: str | None
    entry_ts_ms: int | None = None
    entry_px: float | None = None
    scanned: tuple[Candle, ...] = ()


@dataclass(frozen=True)
class Exit:
    """How a trade ended: time (ms), fill, reason, gross return and MAE (bps)."""

    ts_ms: int
    px: float
    reason: str
    gross_bps: float
    mae_bps: float


def window(candles: Sequence[Candle], alert_ts_ms: int, *, horizon_ms: int, entry: str = "close",
           max_entry_delay_ms: int | None = None) -> Window:
    """The entry and scanned candles of one alert (candles sorted by open time)."""
    after = [i for i, c in enumerate(candles)
             if (c.ts_ms >= alert_ts_ms if entry == "close" else c.ts_ms > alert_ts_ms)]
    if not after:
        return Window("no_candles")
    a = after[0]
    anchor = candles[a]
    px = anchor.close if entry == "close" else anchor.open
    first_scanned = a + 1 if entry == "close" else a
    scanned = tuple(c for c in candles[first_scanned:] if c.ts_ms <= anchor.ts_ms + horizon_ms)
    in_window = [c for c in candles[a:] if c.ts_ms <= anchor.ts_ms + horizon_ms]
    if alert_ts_ms < candles[0].ts_ms:
        reason: str | None = "too_new"
    elif max_entry_delay_ms and max_entry_delay_ms > 0 and \
            anchor.ts_ms - alert_ts_ms > max_entry_delay_ms:
        reason = "late_entry"
    elif not (math.isfinite(px) and px > 0):
        reason = "invalid_price"
    elif not all(c.possible() for c in in_window):
        reason = "invalid_candles"
    elif candles[-1].ts_ms < anchor.ts_ms + horizon_ms or not scanned:
        reason = "missing_range"
    else:
        reason = None
    return Window(reason, anchor.ts_ms, px, scanned)


def usual_gap_ms(open_times: dict[str, Sequence[int]], alerts: Iterable[tuple[str, int]], *,
                 horizon_ms: int, interval_ms: int, entry: str = "close") -> int:
    """The data's usual gap, from the contract (flows.md, "Entries"): the pairs of
    consecutive candles of each alert's window plus the pair holding the alert (each pair
    once); lengths in whole bars (rounded up); lengths seen once left out; the shortest
    length whose spacings, with the shorter ones, fill 99 % of the rest's time."""
    pairs: set[tuple[str, int]] = set()
    for asset, ts in alerts:
        times = open_times.get(asset, ())
        after = [i for i, t in enumerate(times) if (t >= ts if entry == "close" else t > ts)]
        if not after:
            continue
        a = after[0]
        last = max(i for i in range(a, len(times)) if times[i] <= times[a] + horizon_ms)
        pairs.update((asset, i) for i in range(max(a - 1, 0), last))
    lengths = [-(-(open_times[m][i + 1] - open_times[m][i]) // interval_ms) for m, i in pairs]
    seen = {n: lengths.count(n) for n in set(lengths)}
    time_in = {n: n * k for n, k in seen.items() if k >= 2}
    total, acc = sum(time_in.values()), 0
    for n in sorted(time_in):
        acc += time_in[n]
        if acc >= 0.99 * total:
            return n * interval_ms
    return interval_ms


def return_bps(side: str, entry_px: float, px: float) -> float:
    """Gross return of a fill at ``px`` (bps): long ``(X/E - 1)·1e4``, short ``(1 - X/E)·1e4``."""
    return (px / entry_px - 1.0) * 1e4 if side == "long" else (1.0 - px / entry_px) * 1e4


def realized_bps(gross_bps: float, taker_fee_bps: float = 30.0, slippage_bps: float = 10.0) -> float:
    """Net of one entry and one exit, each paying fee and slippage (bps)."""
    return gross_bps - 2.0 * (taker_fee_bps + slippage_bps)


def _adverse(side: str, c: Candle) -> float:
    return c.low if side == "long" else c.high


def _favourable(side: str, c: Candle) -> float:
    return c.high if side == "long" else c.low


def _against(side: str, c: Candle, level: float) -> bool:
    """The candle reached a level on the losing side (a stop)."""
    return c.low <= level if side == "long" else c.high >= level


def _towards(side: str, c: Candle, level: float) -> bool:
    """The candle reached a level on the winning side (a target, a level, an activation)."""
    return c.high >= level if side == "long" else c.low <= level


def _stop_fill(side: str, c: Candle, level: float) -> float:
    """A stop fills at the level, or at the open when the candle gapped through it."""
    return min(c.open, level) if side == "long" else max(c.open, level)


def _close_out(w: Window, side: str, c: Candle, px: float, reason: str,
               adverse: list[float]) -> Exit:
    extremes = adverse + [px if reason in STOP_EXITS else _adverse(side, c)]
    mae = min(0.0, min(return_bps(side, w.entry_px, x) for x in extremes))
    return Exit(c.ts_ms, px, reason, return_bps(side, w.entry_px, px), mae)


def _simulate(w: Window, side: str, *, stop_pct: float = 0.0, stop_reason: str = "stop_loss",
              take_profit_pct: float = 0.0, max_hold_ms: int = 0, activation_pct: float = 0.0,
              trail_pct: float = 0.0) -> Exit:
    """One position through the scanned candles, rules in the pessimistic in-candle order."""
    e, sign = w.entry_px, 1.0 if side == "long" else -1.0
    stop_lv = e * (1.0 - sign * stop_pct)
    tp_lv = e * (1.0 + sign * take_profit_pct)
    tp_on = take_profit_pct > 0 and (side == "long" or take_profit_pct < 1)
    act_lv = e * (1.0 + sign * activation_pct)
    active = trail_pct > 0 and activation_pct == 0  # activation 0: trailing from the entry
    best = e  # running peak (long) or trough (short) since the trail started
    adverse: list[float] = []
    for c in w.scanned:
        if stop_pct > 0 and _against(side, c, stop_lv):
            return _close_out(w, side, c, _stop_fill(side, c, stop_lv), stop_reason, adverse)
        trail_lv = best * (1.0 - sign * trail_pct)
        if active and _against(side, c, trail_lv):
            return _close_out(w, side, c, _stop_fill(side, c, trail_lv), "trailing_stop", adverse)
        if max_hold_ms > 0 and c.ts_ms - w.entry_ts_ms >= max_hold_ms:
            return _close_out(w, side, c, c.close, "time_stop", adverse)
        if tp_on and _towards(side, c, tp_lv):
            return _close_out(w, side, c, tp_lv, "take_profit", adverse)
        adverse.append(_adverse(side, c))
        if trail_pct > 0 and (active or _towards(side, c, act_lv)):
            active = True
            fav = _favourable(side, c)
            best = max(best, fav) if side == "long" else min(best, fav)
    last = w.scanned[-1]
    return _close_out(w, side, last, last.close, "end_of_data", adverse[:-1])


def fixed_stop(w: Window, side: str, stop_pct: float = 0.0, take_profit_pct: float = 0.0) -> Exit:
    """Stop at E(1∓s), target at E(1±tp) (fractions; 0 = off)."""
    return _simulate(w, side, stop_pct=stop_pct, take_profit_pct=take_profit_pct)


def time_stop(w: Window, side: str, max_hold_ms: int, take_profit_pct: float = 0.0) -> Exit:
    """Out at the close of the first candle opening ``max_hold_ms`` or more after the entry."""
    return _simulate(w, side, max_hold_ms=max_hold_ms, take_profit_pct=take_profit_pct)


def trailing_stop(w: Window, side: str, trail_pct: float, activation_pct: float = 0.0,
                  hard_stop_pct: float = 0.0) -> Exit:
    """Trail the running peak/trough by ``trail_pct`` once price moved ``activation_pct``."""
    return _simulate(w, side, stop_pct=hard_stop_pct, stop_reason="hard_stop",
                     activation_pct=activation_pct, trail_pct=trail_pct)


def simulate(w: Window, side: str, policy: dict[str, Any]) -> Exit:
    """Dispatch on a policy dict as the CLI takes it (snake_case keys)."""
    params = {k: v for k, v in policy.items() if k != "kind"}
    return {"fixed_stop": fixed_stop, "time_stop": time_stop,
            "trailing_stop": trailing_stop}[policy["kind"]](w, side, **params)


def tail_capture(w: Window, side: str, gross_bps: float) -> float | None:
    """Share of the window's best move that the trade kept, in [-1, 1] (None when the best
    move is below 100 bps: nothing meaningful to capture)."""
    peak_bps = max(return_bps(side, w.entry_px, _favourable(side, c)) for c in w.scanned)
    return max(-1.0, min(1.0, gross_bps / peak_bps)) if peak_bps >= 100 else None


def level_suffix(m: float) -> str:
    """Column suffix of a level: 1.05 -> '1_05', 10.0 -> '10', 2.5 -> '2_5'."""
    text = repr(float(m))
    return text.removesuffix(".0").replace(".", "_")


def _level_hit(w: Window, side: str, m: float) -> Candle | None:
    level = m * w.entry_px if side == "long" else w.entry_px / m
    return next((c for c in w.scanned if _towards(side, c, level)), None)


def _drawdown_bps(w: Window, side: str, candles: Iterable[Candle]) -> float:
    return min(0.0, min(return_bps(side, w.entry_px, _adverse(side, c)) for c in candles))


def path_metrics(w: Window, side: str, alert_ts_ms: int, levels: Sequence[float] = STANDARD_LEVELS,
                 activity_move: float = 0.10) -> dict[str, Any]:
    """Paths columns of one eligible alert (None = null), standard levels always included."""
    out: dict[str, Any] = {"p0": w.entry_px}
    for m in sorted(set(STANDARD_LEVELS) | {float(x) for x in levels}):
        hit = _level_hit(w, side, m)
        out[f"hit_{level_suffix(m)}x"] = hit is not None
        out[f"t_{level_suffix(m)}x_ms"] = hit.ts_ms if hit else None
    out["dd_bps"] = _drawdown_bps(w, side, w.scanned)
    hit2 = _level_hit(w, side, 2.0)
    out["dd_to_2x_bps"] = None if hit2 is None else _drawdown_bps(
        w, side, [c for c in w.scanned if c.ts_ms <= hit2.ts_ms])
    up, down = w.entry_px * (1 + activity_move), w.entry_px * (1 - activity_move)
    moved = next((c for c in w.scanned if c.high >= up or c.low <= down), None)
    out["alert_to_activity_ms"] = None if moved is None else moved.ts_ms - alert_ts_ms
    out["peak_multiple"] = (max(c.high for c in w.scanned) / w.entry_px if side == "long"
                            else w.entry_px / min(c.low for c in w.scanned))
    return out
