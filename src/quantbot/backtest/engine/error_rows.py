"""Rows of the ``errors`` artifact: one ``coverage`` warning per excluded call, and one
``slice`` warning per data note of the candle loader (:func:`data_note_rows`).

``message`` is the exclusion reason (``no_candles``, ``too_new``, ``late_entry``,
``invalid_price``, ``invalid_candles``, ``missing_range``); ``details`` is JSON with what
explains it: the alert time and mint and, where an anchor candle exists, its open time and
p0, and the horizon end; for ``too_new``, the mint's first candle in the source; for
``late_entry``, the delay and the limit (ms and as durations) and a ``note`` sentence; for
``invalid_candles``, how many impossible candles the window holds and the first one (time
and o/h/l/c) and a ``note`` sentence.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from quantbot.artifacts.schema.layout import iso_utc
from quantbot.backtest.data.candle_set import CandleSet, DataNote
from quantbot.backtest.engine.windows import (
    EXCLUSION_REASONS,
    INVALID_CANDLES,
    LATE_ENTRY,
    STATUS_OK,
    TOO_NEW,
    Windows,
    impossible_in,
)
from quantbot.durations import format_duration


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
            info["p0"] = _json_float(windows.p0[k])
            info["horizon_end_ts_ms"] = int(windows.anchor_ts_ms[k]) + windows.horizon_ms
        if windows.status[k] == TOO_NEW:
            info["first_candle_ts_ms"] = int(candles.first_ts_ms[windows.mint_idx[k]])
        elif windows.status[k] == LATE_ENTRY:
            info.update(_late_entry(windows, k))
        elif windows.status[k] == INVALID_CANDLES:
            info.update(_invalid_candles(windows, candles, k))
        details.append(json.dumps(info, sort_keys=True, separators=(",", ":")))
    return _warning_rows(stamp, "coverage", call_ids, messages, details)


def data_note_rows(notes: tuple[DataNote, ...]) -> dict[str, list]:
    """Columns (without run_id) of one warning row (phase ``slice``, no call) per data note
    of the candle loader (e.g. identical duplicate candles dropped): nothing is repaired
    silently."""
    details = [None if note.details is None else
               json.dumps(note.details, sort_keys=True, separators=(",", ":"), default=str)
               for note in notes]
    return _warning_rows(iso_utc(datetime.now(UTC)), "slice", [None] * len(notes),
                         [note.message for note in notes], details)


def _warning_rows(stamp: str, phase: str, call_ids: list, messages: list[str],
                  details: list) -> dict[str, list]:
    n = len(messages)
    return {"timestamp": [stamp] * n, "level": ["warning"] * n, "phase": [phase] * n,
            "call_id": call_ids, "message": messages, "details": details}


def _json_float(x: float) -> float | str:
    """JSON has no NaN/inf: those are written as strings."""
    x = float(x)
    return x if np.isfinite(x) else str(x)


def _late_entry(windows: Windows, k: int) -> dict[str, object]:
    delay = int(windows.anchor_ts_ms[k] - windows.alert_ts_ms[k])
    limit = int(windows.max_entry_delay_ms or 0)
    return {"entry_delay_ms": delay, "max_entry_delay_ms": limit,
            "note": f"the first candle after the alert opens {format_duration(delay)} after it;"
                    f" the limit is {format_duration(limit)} (--max-entry-delay)"}


def _invalid_candles(windows: Windows, candles: CandleSet, k: int) -> dict[str, object]:
    count, row = impossible_in(candles, int(windows.anchor[k]), int(windows.end[k]))
    ohlc = {name: _json_float(getattr(candles, name)[row])
            for name in ("open", "high", "low", "close")}
    ts = int(candles.ts_ms[row])
    shown = ", ".join(f"{name[0]}={value}" for name, value in ohlc.items())
    return {"invalid_candles": count, "first_invalid": {"ts_ms": ts, **ohlc},
            "note": f"{count} impossible candle(s) in the window; the first at "
                    f"{iso_utc(datetime.fromtimestamp(ts / 1000, UTC))}: {shown}"}


def exclusion_counts(windows: Windows) -> dict[str, int]:
    """Excluded calls per reason (only reasons that occur), in EXCLUSION_REASONS order."""
    counts = np.bincount(windows.status.astype(np.int64), minlength=max(EXCLUSION_REASONS) + 1)
    return {reason: int(counts[code]) for code, reason in EXCLUSION_REASONS.items() if counts[code]}
