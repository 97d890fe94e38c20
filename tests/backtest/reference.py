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


def _impossible(candles: CandleSet, i: int) -> bool:
    o, h, lo, c = (float(candles.open[i]), float(candles.high[i]), float(candles.low[i]),
                   float(candles.close[i]))
    if not all(math.isfinite(x) and x > 0 for x in (o, h, lo, c)):
        return True
    return h < lo or not (lo <= o <= h) or not (lo <= c <= h)


def ref_window(candles: CandleSet, mint: int, alert_ts: int, horizon: int, entry: str = "close",
               side: int = 1, max_delay: int | None = None) -> dict[str, Any]:
    """Status reason (None = ok), anchor row, first/end scanned rows, anchor_ts, p0, side."""
    out: dict[str, Any] = {"reason": None, "anchor": -1, "start": -1, "end": -1,
                           "anchor_ts": -1, "p0": math.nan, "side": side}
    if mint < 0:
        out["reason"] = "no_candles"
        return out
    lo, hi = int(candles.offsets[mint]), int(candles.offsets[mint + 1])
    if entry == "close":
        rows = [i for i in range(lo, hi) if candles.ts_ms[i] >= alert_ts]
    else:
        rows = [i for i in range(lo, hi) if candles.ts_ms[i] > alert_ts]
    if not rows:
        out["reason"] = "no_candles"
        return out
    a = rows[0]
    anchor_ts = int(candles.ts_ms[a])
    in_horizon = [i for i in range(lo, hi) if anchor_ts <= candles.ts_ms[i] <= anchor_ts + horizon]
    end = in_horizon[-1] + 1
    p0 = float(candles.close[a]) if entry == "close" else float(candles.open[a])
    start = a + 1 if entry == "close" else a
    out.update(anchor=a, anchor_ts=anchor_ts, p0=p0, start=start, end=end)
    if alert_ts < candles.first_ts_ms[mint]:
        out["reason"] = "too_new"
    elif max_delay is not None and max_delay > 0 and anchor_ts - alert_ts > max_delay:
        out["reason"] = "late_entry"
    elif not (math.isfinite(p0) and p0 > 0):
        out["reason"] = "invalid_price"
    elif any(_impossible(candles, i) for i in range(a, end)):
        out["reason"] = "invalid_candles"
    elif candles.ts_ms[hi - 1] < anchor_ts + horizon or end <= start:
        out["reason"] = "missing_range"
    return out


def ref_paths(candles: CandleSet, w: dict[str, Any], alert_ts: int, m: float = 0.10,
              levels: tuple[float, ...] = (2.0, 3.0, 4.0)) -> dict[str, Any]:
    """Paths columns of one eligible alert (extra levels' columns too); None for null."""
    p0, short = w["p0"], w["side"] < 0
    rows = range(w["start"], w["end"])

    def hits(n: float) -> list[int]:
        if short:
            return [i for i in rows if candles.low[i] <= p0 / n]
        return [i for i in rows if candles.high[i] >= n * p0]

    out: dict[str, Any] = {"p0": p0}
    for n in (2, 3, 4):
        first = hits(n)
        out[f"hit_{n}x"] = bool(first)
        out[f"t_{n}x_ms"] = int(candles.ts_ms[first[0]]) if first else None
    highs = [float(candles.high[i]) for i in rows]
    lows = [float(candles.low[i]) for i in rows]
    if short:
        out["dd_bps"] = min(0.0, (1.0 - max(highs) / p0) * 1e4)
    else:
        out["dd_bps"] = min(0.0, (min(lows) / p0 - 1.0) * 1e4)
    if out["hit_2x"]:
        upto = [i for i in rows if i <= hits(2)[0]]
        if short:
            out["dd_to_2x_bps"] = min(0.0, (1.0 - max(float(candles.high[i]) for i in upto) / p0) * 1e4)
        else:
            out["dd_to_2x_bps"] = min(0.0, (min(float(candles.low[i]) for i in upto) / p0 - 1.0) * 1e4)
    else:
        out["dd_to_2x_bps"] = None
    active = [i for i in rows if candles.high[i] >= p0 * (1 + m) or candles.low[i] <= p0 * (1 - m)]
    out["alert_to_activity_ms"] = int(candles.ts_ms[active[0]]) - alert_ts if active else None
    out["peak_multiple"] = p0 / min(lows) if short else max(highs) / p0
    for n in levels:
        if n in (2.0, 3.0, 4.0):
            continue
        tag = repr(float(n)).removesuffix(".0").replace(".", "_")
        first = hits(n)
        out[f"hit_{tag}x"] = bool(first)
        out[f"t_{tag}x_ms"] = int(candles.ts_ms[first[0]]) if first else None
    return out


STOP_EXITS = ("stop_loss", "hard_stop", "trailing_stop")


def _ref_leg(p: Any, candles: CandleSet, w: dict[str, Any]) -> tuple[int, float, float, str, float]:
    """(exit row, exit px, gross bps, reason, closing fill) of one non-combo policy."""
    E, E_ts, short = w["p0"], w["anchor_ts"], w["side"] < 0
    fills: list[tuple[float, float]] = []  # (fraction, price)
    remaining = 1.0
    filled = [False] * (len(p.levels) if isinstance(p, Ladder) else 0)
    active = isinstance(p, TrailingStop) and p.activation_pct == 0
    extreme = E  # long: running peak max(E, highs); short: running trough min(E, lows)

    def ret(x: float) -> float:
        return (1 - x / E) * 1e4 if short else (x / E - 1) * 1e4

    def close_all(i: int, px: float, reason: str) -> tuple[int, float, float, str, float]:
        all_fills = fills + ([(remaining, px)] if remaining > 1e-9 or not fills else [])
        return (i, sum(f * x for f, x in all_fills), sum(f * ret(x) for f, x in all_fills),
                reason, px)

    def stop_hit(level: float, o: float, h: float, lo: float) -> float | None:
        """The fill of an adverse stop at ``level`` in this candle, or None."""
        if short:
            return max(o, level) if h >= level else None
        return min(o, level) if lo <= level else None

    def favourable(level: float, h: float, lo: float) -> bool:
        return lo <= level if short else h >= level

    for i in range(w["start"], w["end"]):
        o, h, lo, c, t = (float(candles.open[i]), float(candles.high[i]), float(candles.low[i]),
                          float(candles.close[i]), int(candles.ts_ms[i]))
        if isinstance(p, (FixedStop, Ladder)) and p.stop_pct > 0:
            fill = stop_hit(E * (1 + p.stop_pct) if short else E * (1 - p.stop_pct), o, h, lo)
            if fill is not None:
                return close_all(i, fill, "stop_loss")
        if isinstance(p, TrailingStop):
            if p.hard_stop_pct > 0:
                fill = stop_hit(E * (1 + p.hard_stop_pct) if short else E * (1 - p.hard_stop_pct),
                                o, h, lo)
                if fill is not None:
                    return close_all(i, fill, "hard_stop")
            if active:
                level = extreme * (1 + p.trail_pct) if short else extreme * (1 - p.trail_pct)
                fill = stop_hit(level, o, h, lo)
                if fill is not None:
                    return close_all(i, fill, "trailing_stop")
        if isinstance(p, TimeStop) and t - E_ts >= p.max_hold_ms:
            return close_all(i, c, "time_stop")
        if isinstance(p, (FixedStop, TimeStop)) and p.take_profit_pct > 0:
            if not short:
                if h >= E * (1 + p.take_profit_pct):
                    return close_all(i, E * (1 + p.take_profit_pct), "take_profit")
            elif p.take_profit_pct < 1 and lo <= E * (1 - p.take_profit_pct):
                return close_all(i, E * (1 - p.take_profit_pct), "take_profit")
        if isinstance(p, Ladder):
            for k, level in enumerate(p.levels):
                price = E / level.multiple if short else E * level.multiple
                if not filled[k] and favourable(price, h, lo):
                    filled[k] = True
                    fills.append((level.fraction, price))
                    remaining -= level.fraction
            if filled and all(filled) and remaining <= 1e-9:
                return close_all(i, math.nan, "ladder_complete")
        if isinstance(p, TrailingStop):
            if not active and favourable(E * (1 - p.activation_pct) if short
                                         else E * (1 + p.activation_pct), h, lo):
                active = True
            if active:
                extreme = min(extreme, lo) if short else max(extreme, h)
    return close_all(w["end"] - 1, float(candles.close[w["end"] - 1]), "end_of_data")


def ref_trade(policy: Any, candles: CandleSet, w: dict[str, Any],
              fee_bps: float = 30.0, slip_bps: float = 10.0) -> dict[str, Any]:
    """Trades columns of one eligible alert; None for null."""
    p = parse_policy(policy)
    subs = _flatten(p)
    results = [_ref_leg(sub, candles, w) for sub in subs]
    row, px, gross, reason, fill = min(results, key=lambda r: r[0])  # the first of ties
    E, short = w["p0"], w["side"] < 0
    window = range(w["start"], w["end"])
    # MAE: each candle before the exit candle gives its adverse extreme; the exit candle
    # gives the stop's fill on a stop exit, else its adverse extreme too.
    adverse = [float(candles.high[i]) if short else float(candles.low[i])
               for i in range(w["start"], row)]
    if reason in STOP_EXITS:
        adverse.append(fill)  # the stop's fill (a ladder's earlier fills are favourable)
    else:
        adverse.append(float(candles.high[row]) if short else float(candles.low[row]))
    if short:
        mae = min(0.0, min((1 - x / E) * 1e4 for x in adverse))
        peak_bps = (1 - min(float(candles.low[i]) for i in window) / E) * 1e4
    else:
        mae = min(0.0, min((x / E - 1) * 1e4 for x in adverse))
        peak_bps = (max(float(candles.high[i]) for i in window) / E - 1) * 1e4
    return {
        "side": "short" if short else "long",
        "entry_ts_ms": w["anchor_ts"], "entry_px": E, "exit_ts_ms": int(candles.ts_ms[row]),
        "exit_px": px, "exit_reason": reason,
        "realized_return_bps": gross - 2 * (fee_bps + slip_bps), "gross_return_bps": gross,
        "stop_out": reason in STOP_EXITS,
        "max_adverse_excursion_bps": mae,
        "time_exposed_ms": int(candles.ts_ms[row]) - w["anchor_ts"],
        # bounded: null below a 100 bps best move, else the ratio clipped to [-1, 1]
        "tail_capture": max(-1.0, min(1.0, gross / peak_bps)) if peak_bps >= 100 else None,
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


def corrupt(rng: Any, candles: CandleSet, n_bad: int) -> CandleSet:
    """A copy of ``candles`` with ``n_bad`` random rows made impossible in random ways."""
    import dataclasses

    cols = {name: getattr(candles, name).copy() for name in ("open", "high", "low", "close")}
    for i in rng.integers(0, max(1, candles.n_rows), size=n_bad if candles.n_rows else 0):
        kind = int(rng.integers(0, 6))
        if kind == 0:
            cols["close"][i] = 0.0
        elif kind == 1:
            cols["low"][i] = -1.0
        elif kind == 2:
            cols["high"][i] = math.inf
        elif kind == 3:
            cols["high"][i], cols["low"][i] = cols["low"][i] - 1.0, cols["high"][i]
        elif kind == 4:
            cols["open"][i] = cols["high"][i] + 1.0
        else:
            cols["low"][i] = math.nan
    return dataclasses.replace(candles, **cols)


def assert_trades_match(policy: Any, candles: CandleSet, mint_idx: Any, alert_ts: Any, horizon: int,
                        entry: str = "close", sides: Any = None) -> int:
    """Engine trades of ``policy`` == :func:`ref_trade` for every alert; returns the trade count."""
    import numpy as np
    import pyarrow as pa
    import pytest

    from quantbot.backtest.engine.simulate import simulate
    from quantbot.backtest.engine.windows import prepare_windows

    sides = np.ones(len(alert_ts), dtype=np.int8) if sides is None else sides
    w = prepare_windows(candles, mint_idx, alert_ts, horizon, entry=entry, side=sides)
    trades = simulate(policy, candles, w)
    cols = {k: (v.to_pylist() if isinstance(v, pa.Array) else v.tolist())
            for k, v in trades.columns().items()}
    eligible = []
    for k in range(len(alert_ts)):
        ref_w = ref_window(candles, int(mint_idx[k]), int(alert_ts[k]), horizon, entry, int(sides[k]))
        assert w.reasons()[k] == ref_w["reason"]
        if ref_w["reason"] is None:
            eligible.append((k, ref_w))
    assert trades.alert_idx.tolist() == [k for k, _ in eligible]
    for row, (k, ref_w) in enumerate(eligible):
        ref = ref_trade(policy, candles, ref_w)
        for name, values in cols.items():
            if isinstance(values[row], float):
                assert values[row] == pytest.approx(ref[name], rel=1e-12, abs=1e-9), name
            else:
                assert values[row] == ref[name], name
        assert trades.gross_return_bps[row] == pytest.approx(ref["gross_return_bps"], rel=1e-12, abs=1e-9)
        assert cols["max_adverse_excursion_bps"][row] <= 0.0
    return len(eligible)
