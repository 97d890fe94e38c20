"""Durations written the way users type them (``90s``, ``15m``, ``6h``, ``2w``): the one grammar.

A duration is a number and one unit: ``ms``, ``s``, ``m``, ``h``, ``d``, ``w``. Two readings
of that grammar exist, because their users need different things:

- :func:`parse_duration` (flow parameters, policies, optimizer constraints): a *whole*
  number of ``ms s m h d w``, as integer epoch milliseconds, the unit of everything inside
  quantbot. Fractions (``1.5h``) and compound forms (``1h30m``) are rejected on purpose
  (write ``90m``): a manifest must record one exact value.
- :func:`parse_interval` (candle intervals): a *positive* whole number of ``ms s m h d w``;
  calendar months and years are refused (irregular bars).
- :func:`parse_age` (``gc --older-than``): a whole or decimal number of ``s m h d w``, as a
  ``timedelta`` (``90s 30m 24h 7d 2w``, ``1.5d``): an age threshold is a human cut-off.

:func:`format_duration` is the inverse of :func:`parse_duration`, so configs, manifests and
CLI flags agree.
"""

from __future__ import annotations

import numbers
import re
from datetime import timedelta

from quantbot.errors import DataError

_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 7 * 86_400_000}
_GRAMMAR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = ("ms", "s", "m", "h", "d", "w")
_AGE_UNITS = ("s", "m", "h", "d", "w")

_CALENDAR = re.compile(r"^\s*\d*\s*(mo|mon|mons|month|months|M|y|yr|year|years)\s*$")


def _match(text: object, units: tuple[str, ...], whole: bool) -> tuple[str, str] | None:
    match = _GRAMMAR.match(text) if isinstance(text, str) else None
    if match is None or match.group(2) not in units or (whole and "." in match.group(1)):
        return None
    return match.group(1), match.group(2)


def parse_duration(text: str) -> int:
    """``'90s'`` → 90000: a whole number and one unit (ms, s, m, h, d, w), in ms.

    Zero is allowed (e.g. an empty pre-alert window).
    """
    found = _match(text, _DURATION_UNITS, whole=True)
    if found is None:
        raise DataError(
            f"invalid duration {text!r}: expected a whole number and a unit "
            "(ms, s, m, h, d, w), e.g. '90s', '15m', '6h', '5d'"
        )
    return int(found[0]) * _UNIT_MS[found[1]]


def parse_age(text: str | timedelta) -> timedelta:
    """``'90s' '30m' '24h' '7d' '2w'`` (decimals allowed: ``'1.5d'``) as a timedelta.

    A timedelta is returned as is. Errors are :class:`~quantbot.errors.DataError` starting
    with ``invalid age``.
    """
    if isinstance(text, timedelta):
        return text
    found = _match(str(text), _AGE_UNITS, whole=False)
    if found is None:
        raise DataError(f"invalid age {text!r}: expected a number and a unit s, m, h, d or w "
                        "(e.g. 24h)")
    try:
        return timedelta(milliseconds=float(found[0]) * _UNIT_MS[found[1]])
    except OverflowError:
        raise DataError(f"invalid age {text!r}: too large") from None


def parse_interval(text: str) -> int:
    """A candle interval in ms: a positive whole number and one unit (ms, s, m, h, d, w).

    Calendar months and years are refused: their bars differ in length (28-31 days), and
    every check on the data (spacing, late entries) needs one fixed interval.
    """
    if isinstance(text, str) and _CALENDAR.match(text):
        raise DataError(f"unsupported candle interval {text!r}: calendar months are irregular "
                        "bars; quantbot needs a fixed interval (e.g. 30d) or resampled data")
    found = _match(text, tuple(_UNIT_MS), whole=True)
    if found is None or int(found[0]) == 0:
        raise DataError(f"invalid candle interval {text!r}: expected a positive whole number "
                        "and a unit (ms, s, m, h, d, w), e.g. '30s', '1m', '4h', '1d', '1w'")
    return int(found[0]) * _UNIT_MS[found[1]]


_BARS = re.compile(r"^\s*(\d+)\s*bars?\s*$")


def parse_bars(text: object) -> int | None:
    """``'60bars'`` / ``'1 bar'`` → the count of candles; None for anything else (then the
    text is a duration). Windows and time stops in bars follow the run's interval."""
    match = _BARS.match(text) if isinstance(text, str) else None
    return int(match.group(1)) if match else None


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
