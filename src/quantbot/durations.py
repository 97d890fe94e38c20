"""Durations and candle intervals written the way users type them (``90s``, ``15m``, ``6h``).

Everything inside quantbot is integer epoch milliseconds; these helpers are the only place
where the text form is parsed or produced, so configs, manifests and CLI flags agree.
"""

from __future__ import annotations

import numbers
import re

from quantbot.errors import DataError

_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")

SUPPORTED_INTERVALS: tuple[str, ...] = ("1s", "15s", "1m", "5m", "15m", "1h", "4h", "1d")
"""Candle intervals the engine accepts; anything else is almost always a typo."""


def parse_duration(text: str) -> int:
    """``'90s'`` → 90000: a whole number and one unit (ms, s, m, h, d), in ms.

    Compound forms (``1h30m``) and fractions (``1.5h``) are rejected on purpose: write
    ``90m``. Zero is allowed (e.g. an empty pre-alert window).
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise DataError(
            f"invalid duration {text!r}: expected a whole number and a unit "
            "(ms, s, m, h, d), e.g. '90s', '15m', '6h', '5d'"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_interval(text: str) -> int:
    """A candle interval (one of ``SUPPORTED_INTERVALS``) in ms."""
    if text not in SUPPORTED_INTERVALS:
        raise DataError(
            f"unsupported candle interval {text!r}: expected one of {', '.join(SUPPORTED_INTERVALS)}"
        )
    return parse_duration(text)


def format_duration(ms: int) -> str:
    """The shortest exact text form of ``ms`` (``5_400_000`` → ``'90m'``); inverse of parse."""
    if isinstance(ms, bool) or not isinstance(ms, numbers.Integral) or ms < 0:
        raise DataError(f"invalid duration {ms!r}: expected a non-negative integer of ms")
    ms = int(ms)  # numpy integers too
    if ms == 0:
        return "0s"
    for unit in ("d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"
