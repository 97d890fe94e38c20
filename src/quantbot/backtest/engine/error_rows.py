"""Rows of the ``errors`` artifact: one ``coverage`` warning per excluded call.

``message`` is the exclusion reason (``no_candles``, ``too_new``, ``invalid_price``,
``missing_range``); ``details`` is JSON with what explains it: the alert time and mint and,
where an anchor candle exists, its open time and close (p0), and the horizon end; for
``too_new``, the mint's first candle in the source.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from quantbot.artifacts.schema.layout import iso_utc
from quantbot.backtest.data.candle_set import CandleSet
from quantbot.backtest.engine.windows import EXCLUSION_REASONS, STATUS_OK, TOO_NEW, Windows


def coverage_error_rows(alerts: pa.Table, windows: Windows, candles: CandleSet) -> dict[str, list]:
    """Columns (without run_id) of one warning row per excluded alert, in alert order."""
    excluded = np.flatnonzero(windows.status != STATUS_OK)
    stamp = iso_utc(datetime.now(UTC))
    call_ids = alerts.column("call_id").take(pa.array(excluded, pa.int64())).to_pylist()
    mints = alerts.column("mint").take(pa.array(excluded, pa.int64())).to_pylist()
    messages, details = [], []
    for k, mint in zip(excluded.tolist(), mints):
        messages.append(EXCLUSION_REASONS[int(windows.status[k])])
        info: dict[str, object] = {"alert_ts_ms": int(windows.alert_ts_ms[k]), "mint": mint}
        if windows.anchor[k] >= 0:
            info["anchor_ts_ms"] = int(windows.anchor_ts_ms[k])
            p0 = float(windows.p0[k])
            info["p0"] = p0 if np.isfinite(p0) else str(p0)  # JSON has no NaN/inf
            info["horizon_end_ts_ms"] = int(windows.anchor_ts_ms[k]) + windows.horizon_ms
        if windows.status[k] == TOO_NEW:
            info["first_candle_ts_ms"] = int(candles.first_ts_ms[windows.mint_idx[k]])
        details.append(json.dumps(info, sort_keys=True, separators=(",", ":")))
    n = len(excluded)
    return {"timestamp": [stamp] * n, "level": ["warning"] * n, "phase": ["coverage"] * n,
            "call_id": call_ids, "message": messages, "details": details}


def exclusion_counts(windows: Windows) -> dict[str, int]:
    """Excluded calls per reason (only reasons that occur), in EXCLUSION_REASONS order."""
    counts = np.bincount(windows.status.astype(np.int64), minlength=max(EXCLUSION_REASONS) + 1)
    return {reason: int(counts[code]) for code, reason in EXCLUSION_REASONS.items() if counts[code]}
