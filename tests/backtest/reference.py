"""Plain-Python, loop-per-candle reference of the numeric core, written from SCHEMAS.md.

Deliberately naive (lists, one candle at a time, ladder levels in the order given) so that
the fast numba engine can be cross-checked against an independent reading of the spec.
"""

from __future__ import annotations

import math
from typing import Any

from quantbot.backtest.data.candle_set import CandleSet
from quantbot.backtest.engine.policies import (
    Combo,
    FixedStop,
    Ladder,
    TimeStop,
    TrailingStop,
    parse_policy,
)


def ref_window(candles: CandleSet, mint: int, alert_ts: int, horizon: int) -> dict[str, Any]:
    """Status reason (None = ok), anchor row, first/end scanned rows, anchor_ts, p0."""
    out: dict[str, Any] = {"reason": None, "anchor": -1, "start": -1, "end": -1,
                           "anchor_ts": -1, "p0": math.nan}
    if mint < 0:
        out["reason"] = "no_candles"
        return out
    lo, hi = int(candles.offsets[mint]), int(candles.offsets[mint + 1])
    rows = [i for i in range(lo, hi) if candles.ts_ms[i] >= alert_ts]
    if not rows:
        out["reason"] = "no_candles"
        return out
    a = rows[0]
    anchor_ts = int(candles.ts_ms[a])
    window = [i for i in range(lo, hi) if anchor_ts < candles.ts_ms[i] <= anchor_ts + horizon]
    out.update(anchor=a, anchor_ts=anchor_ts, p0=float(candles.close[a]), start=a + 1,
               end=(window[-1] + 1) if window else a + 1)
    p0 = float(candles.close[a])
    if alert_ts < candles.first_ts_ms[mint]:
        out["reason"] = "too_new"
    elif not (math.isfinite(p0) and p0 > 0):
        out["reason"] = "invalid_price"
    elif candles.ts_ms[hi - 1] < anchor_ts + horizon or not window:
        out["reason"] = "missing_range"
    return out


def ref_paths(candles: CandleSet, w: dict[str, Any], alert_ts: int, m: float = 0.10) -> dict[str, Any]:
    """Paths columns of one eligible alert; None for null."""
    p0 = w["p0"]
    rows = range(w["start"], w["end"])
    out: dict[str, Any] = {"p0": p0}
    for n in (2, 3, 4):
        hits = [i for i in rows if candles.high[i] >= n * p0]
        out[f"hit_{n}x"] = bool(hits)
        out[f"t_{n}x_ms"] = int(candles.ts_ms[hits[0]]) if hits else None
    lows = [float(candles.low[i]) for i in rows]
    out["dd_bps"] = min(0.0, (min(lows) / p0 - 1.0) * 1e4)
    if out["hit_2x"]:
        upto = [float(candles.low[i]) for i in rows if i <= [j for j in rows if candles.high[j] >= 2 * p0][0]]
        out["dd_to_2x_bps"] = min(0.0, (min(upto) / p0 - 1.0) * 1e4)
    else:
        out["dd_to_2x_bps"] = None
    active = [i for i in rows if candles.high[i] >= p0 * (1 + m) or candles.low[i] <= p0 * (1 - m)]
    out["alert_to_activity_ms"] = int(candles.ts_ms[active[0]]) - alert_ts if active else None
    out["peak_multiple"] = max(float(candles.high[i]) for i in rows) / p0
    return out


def _ref_leg(p: Any, candles: CandleSet, w: dict[str, Any]) -> tuple[int, float, float, str]:
    """(exit row, exit px, gross bps, reason) of one non-combo policy."""
    E, E_ts = w["p0"], w["anchor_ts"]
    fills: list[tuple[float, float]] = []  # (fraction, price)
    remaining = 1.0
    filled = [False] * (len(p.levels) if isinstance(p, Ladder) else 0)
    active = isinstance(p, TrailingStop) and p.activation_pct == 0
    peak = E

    def close_all(i: int, px: float, reason: str) -> tuple[int, float, float, str]:
        all_fills = fills + ([(remaining, px)] if remaining > 1e-9 or not fills else [])
        return (i, sum(f * x for f, x in all_fills),
                sum(f * ((x / E - 1) * 1e4) for f, x in all_fills), reason)

    for i in range(w["start"], w["end"]):
        o, h, lo, c, t = (float(candles.open[i]), float(candles.high[i]), float(candles.low[i]),
                          float(candles.close[i]), int(candles.ts_ms[i]))
        if isinstance(p, (FixedStop, Ladder)) and p.stop_pct > 0 and lo <= E * (1 - p.stop_pct):
            return close_all(i, min(o, E * (1 - p.stop_pct)), "stop_loss")
        if isinstance(p, TrailingStop):
            if p.hard_stop_pct > 0 and lo <= E * (1 - p.hard_stop_pct):
                return close_all(i, min(o, E * (1 - p.hard_stop_pct)), "hard_stop")
            if active and lo <= peak * (1 - p.trail_pct):
                return close_all(i, min(o, peak * (1 - p.trail_pct)), "trailing_stop")
        if isinstance(p, TimeStop) and t - E_ts >= p.max_hold_ms:
            return close_all(i, c, "time_stop")
        if isinstance(p, (FixedStop, TimeStop)) and p.take_profit_pct > 0 and h >= E * (1 + p.take_profit_pct):
            return close_all(i, E * (1 + p.take_profit_pct), "take_profit")
        if isinstance(p, Ladder):
            for k, level in enumerate(p.levels):
                if not filled[k] and h >= E * level.multiple:
                    filled[k] = True
                    fills.append((level.fraction, E * level.multiple))
                    remaining -= level.fraction
            if filled and all(filled) and remaining <= 1e-9:
                return close_all(i, math.nan, "ladder_complete")
        if isinstance(p, TrailingStop):
            if not active and h >= E * (1 + p.activation_pct):
                active = True
            if active:
                peak = max(peak, h)
    return close_all(w["end"] - 1, float(candles.close[w["end"] - 1]), "end_of_data")


def ref_trade(policy: Any, candles: CandleSet, w: dict[str, Any],
              fee_bps: float = 30.0, slip_bps: float = 10.0) -> dict[str, Any]:
    """Trades columns of one eligible alert; None for null."""
    p = parse_policy(policy)
    subs = _flatten(p)
    results = [_ref_leg(sub, candles, w) for sub in subs]
    row, px, gross, reason = min(results, key=lambda r: r[0])  # min() keeps the first of ties
    E = w["p0"]
    lows = [float(candles.low[i]) for i in range(w["start"], row + 1)]
    peak_bps = (max(float(candles.high[i]) for i in range(w["start"], w["end"])) / E - 1) * 1e4
    return {
        "entry_ts_ms": w["anchor_ts"], "entry_px": E, "exit_ts_ms": int(candles.ts_ms[row]),
        "exit_px": px, "exit_reason": reason,
        "realized_return_bps": gross - 2 * (fee_bps + slip_bps), "gross_return_bps": gross,
        "stop_out": reason in ("stop_loss", "hard_stop", "trailing_stop"),
        "max_adverse_excursion_bps": min(0.0, min((x / E - 1) * 1e4 for x in lows)),
        "time_exposed_ms": int(candles.ts_ms[row]) - w["anchor_ts"],
        "tail_capture": min(1.0, gross / peak_bps) if peak_bps > 0 else None,
    }


def _flatten(p: Any) -> list[Any]:
    return [leaf for sub in p.policies for leaf in _flatten(sub)] if isinstance(p, Combo) else [p]


MIN = 60_000  # one minute in ms: the hand-made series below use minute timestamps


def make_candles(blocks: dict[str, list[tuple]], first_ts_ms: dict[str, int] | None = None) -> CandleSet:
    """CandleSet from ``{mint: [(minute, open, high, low, close[, volume]), ...]}``."""
    import numpy as np

    mints = tuple(blocks)
    rows = [row for m in mints for row in blocks[m]]
    offsets = np.cumsum([0] + [len(blocks[m]) for m in mints]).astype(np.int64)
    col = lambda j, default=1.0: np.array([r[j] if len(r) > j else default for r in rows],  # noqa: E731
                                          dtype=np.float64)
    ts = np.array([int(r[0] * MIN) for r in rows], dtype=np.int64)
    first = np.array([(first_ts_ms or {}).get(m, int(blocks[m][0][0] * MIN) if blocks[m] else 0)
                      for m in mints], dtype=np.int64)
    return CandleSet(mints, offsets, ts, col(1), col(2), col(3), col(4), col(5), first)


def random_candle_set(rng: Any, n_mints: int = 3, max_candles: int = 40, step: int = 15) -> CandleSet:
    """Integer-grid random walks (so levels are hit exactly), with holes, gaps, zero volumes."""
    blocks: dict[str, list[tuple]] = {}
    for j in range(n_mints):
        t, px, rows = int(rng.integers(0, 5)), 100.0, []
        for _ in range(int(rng.integers(0, max_candles))):
            o = px if rng.random() < 0.8 else max(1.0, px + float(rng.integers(-30, 31)))
            c = max(1.0, o + float(rng.integers(-step, step + 1)))
            h = max(o, c) + float(rng.integers(0, 3)) * float(rng.integers(0, 40))
            lo = max(0.5, min(o, c) - float(rng.integers(0, 3)) * float(rng.integers(0, 15)))
            v = float(rng.integers(0, 3)) * 10.0
            rows.append((t, o, h, lo, c, v))
            px = c
            t += 1 if rng.random() < 0.8 else int(rng.integers(2, 5))
        blocks[f"m{j}"] = rows
    return make_candles(blocks)
