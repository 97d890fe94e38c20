"""tail_capture: the share of the window's best move a trade kept, bounded and meaningful.

``tail_capture = clip(gross_return_bps / peak_bps, -1, 1)``, null (NaN) when the peak is
below ``min_peak_bps`` (default :data:`TAIL_MIN_PEAK_BPS`, 100 bps = 1 %).

Why: the old ``min(1, gross / peak)`` had no floor, so a trade whose best high was a few bps
above entry and which then gapped through its stop scored far below -1 (AAPL d00354:
gross -544 bps over a 3.44 bps peak gave -158). Below a minimum peak there was no tail to
capture, so the ratio means nothing and is null; above it, -1 ("lost as much as the best
move offered") and 1 ("kept all of it") bound every trade's contribution.

``peak_bps`` is the best favourable move in the horizon in bps of entry (long:
``(max(high)/E - 1)·1e4``; short: ``(1 - min(low)/E)·1e4``).
"""

from __future__ import annotations

import numpy as np

from quantbot.errors import OptimizerConfigError

TAIL_MIN_PEAK_BPS = 100.0
"""Below this best move (bps of entry) a trade's tail_capture is null: no meaningful peak."""


def tail_capture(gross_bps: np.ndarray, peak_bps: np.ndarray,
                 min_peak_bps: float = TAIL_MIN_PEAK_BPS) -> np.ndarray:
    """Per trade: clip(gross / peak, -1, 1), NaN where peak_bps < min_peak_bps (or NaN).

    ``min_peak_bps`` must be > 0 (the ratio needs a positive peak)."""
    if not min_peak_bps > 0:
        raise OptimizerConfigError(f"min_peak_bps: must be > 0 (got {min_peak_bps!r})")
    gross = np.asarray(gross_bps, dtype=np.float64)
    peak = np.asarray(peak_bps, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.clip(gross / peak, -1.0, 1.0)
    return np.where(peak >= min_peak_bps, ratio, np.nan)


__all__ = ["TAIL_MIN_PEAK_BPS", "tail_capture"]
