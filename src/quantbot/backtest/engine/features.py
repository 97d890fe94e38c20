"""Alert features for the features artifact: what was known at alert time, nothing later.

Definitions (SCHEMAS.md "features", made precise here):

- pre-alert window: the candles of the alert's mint with open time in
  ``[alert_ts_ms - pre_window_ms, alert_ts_ms)`` (default 1 h), i.e. candles opening
  before the alert; the anchor candle is never part of it.
- ``vol_pre_alert``: population standard deviation (ddof=0) of the log returns
  ``ln(close[i] / close[i-1])`` between consecutive candles of that window (holes are not
  filled); null when there are fewer than 2 returns or a close is not a positive number.
- ``volume_spike``: volume of the anchor candle / mean volume of the pre-alert window;
  null without an anchor, without pre-alert candles, or when that mean is 0.
- ``caller_prior_calls``: number of the same caller's alerts with alert_ts strictly before
  this one (ties are not "prior"; every input alert counts, eligible or not).
- ``caller_prior_hit_2x_rate``: the share of 2x hits among the caller's earlier eligible
  alerts whose outcome was already known at this alert's time: a hit counts once its 2x
  candle opened before this alert, a miss once its horizon ended before it; calls still
  open then count as neither (no look-ahead). Null when no outcome was known yet.
- ``caller_prior_hit_<m>x_rate``: the same for each of the run's levels beyond 2/3/4
  (``--levels 1.05,1.1``: ``caller_prior_hit_1_05x_rate``, ``caller_prior_hit_1_1x_rate``;
  the paths' ``hit_<m>x`` naming), so a stock or FX run gets a rate that is not always 0.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

from quantbot.artifacts.schema.arrow_schemas import level_column_suffix
from quantbot.backtest.data.candle_set import NO_TS, CandleSet
from quantbot.backtest.engine.price_paths import PathMetrics
from quantbot.backtest.engine.windows import Windows

DEFAULT_PRE_WINDOW_MS = 3_600_000


def compute_features(
    candles: CandleSet, windows: Windows, caller: np.ndarray, paths: PathMetrics,
    pre_window_ms: int = DEFAULT_PRE_WINDOW_MS,
) -> dict[str, np.ndarray | pa.Array]:
    """Feature columns, one row per input alert (windows order); the caller adds run_id, call_id."""
    vol, spike = pre_alert_features(candles, windows, pre_window_ms)
    prior_calls, prior_rate = _prior_rate(windows, caller, paths, paths.t_2x_ms)
    out: dict[str, np.ndarray | pa.Array] = {
        "vol_pre_alert": pa.array(vol, pa.float64(), mask=np.isnan(vol)),
        "volume_spike": pa.array(spike, pa.float64(), mask=np.isnan(spike)),
        "caller_prior_calls": prior_calls,
        "caller_prior_hit_2x_rate": _nullable(prior_rate),
    }
    extra = paths.t_extra_ms if paths.t_extra_ms is not None else ()
    for m, t_hit_ms in zip(paths.extra_levels, extra, strict=True):
        rate = _prior_rate(windows, caller, paths, t_hit_ms)[1]
        out[f"caller_prior_hit_{level_column_suffix(m)}x_rate"] = _nullable(rate)
    return out


def _nullable(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.float64(), mask=np.isnan(values))


def _prior_rate(windows: Windows, caller: np.ndarray, paths: PathMetrics,
                t_hit_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`caller_priors` for one level, given each eligible path's hit time (NO_TS = none).

    No look-ahead: an earlier call's outcome is known from its hit candle on, or else from
    the end of its horizon; before that it does not count (neither hit nor miss)."""
    was_hit = t_hit_ms != NO_TS
    hit = np.zeros(len(windows.status), dtype=bool)
    hit[paths.alert_idx] = was_hit
    resolved = windows.anchor_ts_ms + windows.horizon_ms
    resolved[paths.alert_idx] = np.where(was_hit, t_hit_ms, resolved[paths.alert_idx])
    return caller_priors(caller, windows.alert_ts_ms, hit, windows.eligible, resolved)


def pre_alert_features(candles: CandleSet, windows: Windows,
                       pre_window_ms: int = DEFAULT_PRE_WINDOW_MS) -> tuple[np.ndarray, np.ndarray]:
    """(vol_pre_alert, volume_spike) per alert as float64, NaN where null."""
    if pre_window_ms <= 0:
        raise ValueError(f"pre_window_ms must be > 0 (got {pre_window_ms})")
    n = len(windows.status)
    vol = np.empty(n, dtype=np.float64)
    spike = np.empty(n, dtype=np.float64)
    _pre_alert(candles.offsets, candles.ts_ms, candles.close, candles.volume, windows.mint_idx,
               windows.alert_ts_ms, windows.anchor, np.int64(pre_window_ms), vol, spike)
    return vol, spike


def caller_priors(caller: np.ndarray, alert_ts_ms: np.ndarray, hit_2x: np.ndarray,
                  known: np.ndarray | None = None, resolved_at_ms: np.ndarray | None = None,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(caller_prior_calls int64, caller_prior_hit_2x_rate float64 NaN=null) per alert.

    ``caller`` holds any hashable labels (names or codes); ``known`` marks alerts whose
    hit_2x counts towards the rate at all (default: all). ``resolved_at_ms`` is when each
    alert's outcome became known (the 2x candle, or the end of its horizon); a prior alert
    counts towards the rate only once resolved strictly before this alert. Default: at
    its own alert time (every strictly earlier alert counts).
    """
    n = len(caller)
    known = np.ones(n, dtype=bool) if known is None else np.asarray(known, dtype=bool)
    hit = np.asarray(hit_2x, dtype=bool)
    codes = np.unique(np.asarray(caller), return_inverse=True)[1].ravel()
    ts = np.asarray(alert_ts_ms, dtype=np.int64)
    resolved = ts if resolved_at_ms is None else np.asarray(resolved_at_ms, dtype=np.int64)
    prior_calls = np.zeros(n, dtype=np.int64)
    prior_rate = np.full(n, np.nan, dtype=np.float64)
    for code in np.unique(codes):
        idx = np.flatnonzero(codes == code)
        own_ts = np.sort(ts[idx])
        prior_calls[idx] = np.searchsorted(own_ts, ts[idx], side="left")  # ties are not prior
        sure = idx[known[idx]]
        order = np.argsort(resolved[sure], kind="stable")
        done = resolved[sure][order]
        hits = np.r_[0, np.cumsum(hit[sure][order])]
        count = np.searchsorted(done, ts[idx], side="left")  # resolved strictly before
        with np.errstate(invalid="ignore", divide="ignore"):
            prior_rate[idx] = np.where(count > 0, hits[count] / count, np.nan)
    return prior_calls, prior_rate


@njit(cache=True, nogil=True)
def _pre_alert(offsets, ts, close, volume, mint_idx, alert_ts, anchor, pre_window,
               vol, spike):  # pragma: no cover - numba
    for k in range(len(mint_idx)):
        vol[k] = np.nan
        spike[k] = np.nan
        j = mint_idx[k]
        if j < 0:
            continue
        lo = offsets[j]
        block = ts[lo:offsets[j + 1]]
        a = lo + np.searchsorted(block, alert_ts[k] - pre_window, side="left")
        b = lo + np.searchsorted(block, alert_ts[k], side="left")
        if b - a >= 3:
            ok = True
            for i in range(a, b):
                if not (np.isfinite(close[i]) and close[i] > 0.0):
                    ok = False
            if ok:
                rets = np.log(close[a + 1:b] / close[a:b - 1])
                vol[k] = np.std(rets)
        if b > a and anchor[k] >= 0:
            mean_volume = np.mean(volume[a:b])
            if mean_volume > 0.0:
                spike[k] = volume[anchor[k]] / mean_volume
