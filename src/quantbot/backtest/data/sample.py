"""A deterministic synthetic dataset (alerts + 1-minute candles) for demos, docs and tests.

About 20 callers of different skill call memecoins over January 2026. Each mint follows one
kind of path — pump (2–20x, then a partial fade), rug, slow bleed, dead (flat, zero-volume
candles) or chop — with random missing minutes and some longer gaps. Candles cover 2 h
before a mint's first alert to 24 h 30 min after its last one. A few alerts are built to be
excluded, two per reason: a mint without candles (``no_candles``), candles that start after
the alert (``too_new``), a zero-price entry candle (``invalid_price``) and data that ends
10 h after the alert (``missing_range``).

Same seed and arguments → byte-identical files (fixed Parquet writer options; generation
uses only the seeded numpy generator).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MINUTE_MS = 60_000
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SPAN_MS = 30 * 86_400_000
PRE_MIN = 120  # candles before a mint's first alert
POST_MIN = 24 * 60 + 30  # candles after a mint's last alert: 24 h horizon + margin
N_SPECIAL_PER_REASON = 2

CALLERS = ("alpha_whale", "degen_dan", "moonshot_mia", "rugradar", "sol_sniper", "pump_pilot",
           "chart_wizard", "lowcap_larry", "gem_hunter", "ape_first", "quiet_quant", "fomo_fred",
           "dip_buyer", "early_ed", "trend_tina", "bag_holder", "volume_vic", "meme_maxi",
           "late_larry", "coin_carla")
_KINDS = ("pump", "rug", "bleed", "dead", "chop")
_BASE58 = np.frombuffer(b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", dtype=np.uint8)
_PARQUET_OPTIONS = dict(compression="zstd", compression_level=3, use_dictionary=True,
                        write_statistics=True, row_group_size=131_072, version="2.6")


def write_sample_data(out_dir: str | Path, seed: int = 7, *, n_alerts: int = 500) -> tuple[Path, Path]:
    """Write ``alerts.parquet`` and ``candles.parquet`` into ``out_dir``; return their paths.

    alerts: call_id, mint, caller_name, chain, created_at (ISO UTC), alert_ts_ms (int64).
    candles: mint, ts (int64 epoch ms, open time), open, high, low, close, volume.
    """
    if n_alerts < 4 * N_SPECIAL_PER_REASON + 10:
        raise ValueError(f"n_alerts must be >= {4 * N_SPECIAL_PER_REASON + 10}, got {n_alerts}")
    rng = np.random.default_rng(seed)
    alerts, mints = _alerts(rng, n_alerts)
    candles = _candles(rng, mints)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    alerts_path, candles_path = out / "alerts.parquet", out / "candles.parquet"
    pq.write_table(alerts, alerts_path, **_PARQUET_OPTIONS)
    pq.write_table(candles, candles_path, **_PARQUET_OPTIONS)
    return alerts_path, candles_path


def _alerts(rng: np.random.Generator, n_alerts: int) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """Alerts and per-mint facts (sorted mint names, first/last alert, path kind, special)."""
    n_special = 4 * N_SPECIAL_PER_REASON
    n_mints = int(n_alerts * 0.8)
    n_co = n_alerts - n_mints  # later calls of an already-called (regular) mint
    names = np.sort(_mint_names(rng, n_mints))
    # Skill = chance that a caller's first call on a mint is a pump; activity is Zipf-like.
    skill = rng.permutation(np.linspace(0.08, 0.7, len(CALLERS)))
    activity = 1.0 / np.arange(1, len(CALLERS) + 1) ** 0.8
    activity = rng.permutation(activity / activity.sum())

    first_ts = START_MS + rng.integers(0, SPAN_MS - 2 * 86_400_000, n_mints)
    # Most alerts land inside a minute, so the entry candle opens just after; some on the dot.
    first_ts = np.where(rng.random(n_mints) < 0.1, first_ts // MINUTE_MS * MINUTE_MS, first_ts)
    first_caller = rng.choice(len(CALLERS), n_mints, p=activity)
    special = np.full(n_mints, "", dtype=object)
    special_idx = rng.choice(n_mints, n_special, replace=False)
    special[special_idx] = np.repeat(["no_candles", "too_new", "invalid_price", "missing_range"],
                                     N_SPECIAL_PER_REASON)
    regular = np.flatnonzero(special == "")
    co_mint = rng.choice(regular, n_co)
    co_ts = first_ts[co_mint] + rng.integers(5 * MINUTE_MS, 6 * 3_600_000, n_co)
    co_caller = rng.choice(len(CALLERS), n_co, p=activity)

    p = skill[first_caller]
    u = rng.random(n_mints)
    rest = 1 - p
    cuts = np.stack([p, p + rest * 0.4, p + rest * 0.7, p + rest * 0.85], axis=1)
    kind = (u[:, None] >= cuts).sum(axis=1)  # index into _KINDS

    mint_idx = np.concatenate([np.arange(n_mints), co_mint])
    ts = np.concatenate([first_ts, co_ts]).astype(np.int64)
    caller = np.concatenate([first_caller, co_caller])
    order = np.lexsort((mint_idx, ts))
    ts, mint_idx, caller = ts[order], mint_idx[order], caller[order]
    last_ts = first_ts.copy()
    np.maximum.at(last_ts, mint_idx, ts)
    created = np.char.add(np.datetime_as_string(ts.astype("datetime64[ms]"), unit="ms"), "Z")
    alerts = pa.table({
        "call_id": pa.array([f"call_{i:05d}" for i in range(n_alerts)], pa.string()),
        "mint": pa.array(names[mint_idx], pa.string()),
        "caller_name": pa.array(np.array(CALLERS)[caller], pa.string()),
        "chain": pa.array(["solana"] * n_alerts, pa.string()),
        "created_at": pa.array(created.astype(object), pa.string()),
        "alert_ts_ms": pa.array(ts, pa.int64()),
    })
    return alerts, {"names": names, "first_ts": first_ts, "last_ts": last_ts, "kind": kind,
                    "special": special}


def _mint_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """Base58 strings of 44 characters, like Solana mint addresses."""
    chars = _BASE58[rng.integers(0, len(_BASE58), (n, 44))]
    return np.array([row.tobytes().decode() for row in chars], dtype=object)


def _candles(rng: np.random.Generator, mints: dict[str, np.ndarray]) -> pa.Table:
    names, kind, special = mints["names"], mints["kind"], mints["special"]
    n = len(names)
    anchor0 = -(-mints["first_ts"] // MINUTE_MS) * MINUTE_MS  # entry candle of the first alert
    start = anchor0 - PRE_MIN * MINUTE_MS
    length = (mints["last_ts"] - start) // MINUTE_MS + POST_MIN + 1
    m = np.repeat(np.arange(n), length)  # mint index of each row
    row0 = np.concatenate([[0], np.cumsum(length)[:-1]])
    k = np.arange(len(m)) - row0[m]
    ts = start[m] + k * MINUTE_MS
    t = (k - PRE_MIN).astype(np.float64)  # minutes since the first alert's entry candle
    kind_r = kind[m]

    peak = np.log(rng.uniform(2.0, 20.0, n))
    t_peak = rng.uniform(15, 600, n)
    fade = rng.uniform(0.3, 0.95, n) * peak / (POST_MIN - t_peak)
    pump = np.where(t < t_peak[m], peak[m] * np.clip(t, 0, None) / t_peak[m],
                    peak[m] - fade[m] * (t - t_peak[m]))
    t_rug = rng.uniform(5, 240, n)
    rug_top, rug_floor = np.log(rng.uniform(1.1, 1.8, n)), np.log(rng.uniform(0.01, 0.1, n))
    rug = np.where(t < t_rug[m], rug_top[m] * np.clip(t, 0, None) / t_rug[m], rug_floor[m])
    bleed = -rng.uniform(0.5, 2.5, n)[m] * np.clip(t, 0, None) / POST_MIN
    trend = np.choose(kind_r, [pump, rug, bleed, np.zeros_like(t), np.zeros_like(t)])

    sigma = np.array([0.012, 0.01, 0.006, 0.004, 0.01])[kind_r]  # per-minute log vol
    walk = np.cumsum(rng.normal(0.0, 1.0, len(m)) * sigma)
    walk -= walk[row0[m] + PRE_MIN]  # zero at the first entry candle: the trend sets the move
    t_dead = rng.uniform(0, 90, n)
    dead = (kind_r == 3) & (t >= t_dead[m])
    dead_row = row0 + PRE_MIN + np.ceil(t_dead).astype(np.int64)
    log_px = np.log(10.0 ** rng.uniform(-6, -2, n))[m] + trend + walk
    log_px = np.where(dead, log_px[dead_row[m]], log_px)
    close = np.exp(log_px)
    open_ = np.empty_like(close)
    open_[1:] = close[:-1]
    open_[row0] = close[row0] * np.exp(rng.normal(0, 0.01, n))
    open_ = np.where(dead, close, open_)
    wick = np.abs(rng.normal(0, 1, (2, len(m)))) * sigma * 1.5 * ~dead
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    excitement = 1 + 6 * np.exp(-np.abs(t) / 90)
    volume = np.where(dead, 0.0, np.exp(rng.normal(8, 1.2, len(m))) * excitement)

    keep = _keep_rows(rng, m, t, row0, special)
    inval = (special[m] == "invalid_price") & (t == 0)  # the entry candle of the alert
    for col in (open_, high, low, close):
        col[inval] = 0.0
    keep &= ~((special[m] == "too_new") & (t < rng.integers(3, 30, n)[m]))
    keep &= ~((special[m] == "missing_range") & (t > 600))
    keep &= special[m] != "no_candles"
    return pa.table({
        "mint": pa.array(names[m[keep]], pa.string()),
        "ts": pa.array(ts[keep], pa.int64()),
        "open": open_[keep], "high": high[keep], "low": low[keep], "close": close[keep],
        "volume": volume[keep],
    })


def _keep_rows(rng: np.random.Generator, m: np.ndarray, t: np.ndarray, row0: np.ndarray,
               special: np.ndarray) -> np.ndarray:
    """Gaps: ~1.5% of minutes missing at random, and a 5–60 min hole in a tenth of the mints
    (inside the window, never at its end, so regular alerts stay eligible)."""
    n = len(row0)
    keep = rng.random(len(m)) >= 0.015
    has_hole = rng.random(n) < 0.1
    hole_at = rng.uniform(5, 1300, n)
    hole_len = rng.uniform(5, 60, n)
    in_hole = has_hole[m] & (t >= hole_at[m]) & (t < hole_at[m] + hole_len[m])
    keep &= ~in_hole
    keep |= special[m] != ""  # special mints get exactly the defect they are built for
    return keep
