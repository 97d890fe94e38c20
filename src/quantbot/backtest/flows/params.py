"""The flows' parameters, with their defaults, units and help text in one place.

:class:`FlowParams` is what the Python API validates and the manifest records; the CLI
builds its ``--interval``, ``--horizon``, ``--activity-move-pct``, ``--pre-window``,
``--entry``, ``--levels``, ``--max-entry-delay``, ``--taker-fee-bps`` and ``--slippage-bps`` options from these fields' metadata
(:func:`quantbot.cli.options.field_options`), so a default or a help text is written
once. The optimizer's settings live the same way in
:data:`~quantbot.backtest.optimize.settings.OPTIMIZER_SETTINGS`. This module imports
nothing heavy (no numpy): the CLI reads it to build its options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from quantbot.durations import format_duration, parse_bars, parse_duration, parse_interval
from quantbot.errors import DataError, FlowParameterError


def _param(default: Any, help: str, unit: str, choices: tuple[str, ...] = ()) -> Any:
    return field(default=default, metadata={"help": help, "unit": unit, "choices": choices})


#: Parameters that only flows simulating trades use (path-only runs take none).
FEE_FIELDS = ("taker_fee_bps", "slippage_bps")


ENTRY_MODES = ("close", "next-open")
_NO_LIMIT = ("none", "off")
AUTO = "auto"  # max_entry_delay derived from the data
_MAX_LEVEL = 1e6  # below it every float's shortest repr is decimal: a plain column name
_MIN_AUTO_HORIZON_BARS = 20
_MIN_AUTO_HORIZON_MS = 86_400_000


def bars_or_duration_ms(text: str, interval_ms: int, name: str) -> int:
    """``'60bars'`` (a count of candles of ``interval_ms``) or a duration (``'1h'``), in ms:
    windows written in bars follow the data's interval (60 bars: 1 h of 1m candles, 60 days
    of daily ones)."""
    bars = parse_bars(text)
    if bars is not None:
        return bars * interval_ms
    try:
        return parse_duration(text)
    except DataError:
        raise FlowParameterError(f"{name} {text!r}: expected a duration (90s, 15m, 6h, 5d) "
                                 "or a number of bars (60bars)") from None


def auto_horizon_ms(interval_ms: int) -> int:
    """The default horizon: 24 h, or 20 bars when that is longer, in whole bars (1m: 24 h,
    1h: 24 h, 4h: 80 h, 1d: 20 d, 1w: 20 w), so a daily run follows its calls for a month
    rather than for one candle."""
    bars = max(_MIN_AUTO_HORIZON_BARS, -(-_MIN_AUTO_HORIZON_MS // interval_ms))
    return bars * interval_ms


def parse_levels(value: str | tuple[float, ...] | list[float]) -> tuple[float, ...]:
    """Truth-layer levels: price multiples > 1 (``'2,3,4'`` or a sequence), unique, in
    the given order."""
    items = value.split(",") if isinstance(value, str) else list(value)
    levels: list[float] = []
    for item in items:
        try:
            level = float(item)
        except (TypeError, ValueError):
            raise FlowParameterError(f"levels: {item!r} is not a number (expected multiples "
                                     "> 1 such as 2,3,4 or 1.05,1.1,1.2)") from None
        if not (math.isfinite(level) and 1.0 < level < _MAX_LEVEL):
            raise FlowParameterError(f"levels: {item!r} must be a multiple > 1 and < 1e6 "
                                     "(1.05 = 5 % in the trade's favour)")
        if level in levels:
            raise FlowParameterError(f"levels: {item!r} is listed twice")
        levels.append(level)
    if not levels:
        raise FlowParameterError("levels: give at least one multiple, e.g. 2,3,4")
    return tuple(levels)


@dataclass(frozen=True)
class FlowParams:
    """Engine parameters shared by the flows; durations as text (``90s``, ``15m``, ``6h``)."""

    interval: str = _param("1m", "Candle interval: any fixed duration (30s, 1m, 5m, 1h, 1d, "
                                 "1w); checked against the candles' spacing.", "duration")
    horizon: str | None = _param(None, "Window after entry; a whole number of intervals (90s, "
                                       "15m, 6h, 5d). Default: 24h, or 20 bars when longer.",
                                 "duration")
    activity_move_pct: float = _param(0.10, "Move (a fraction: 0.1 = 10 %) that counts as "
                                            "activity in alert_to_activity_ms.", "fraction")
    pre_window: str = _param("60bars", "Pre-alert window of the features: a duration or a "
                                       "number of bars (60bars = 1h of 1m candles).",
                             "duration")
    entry: str = _param("close", "Entry fill: close (the close of the first candle opening "
                                 "at or after the alert) or next-open (the open of the first "
                                 "candle opening after it).", "choice", ENTRY_MODES)
    levels: str | tuple[float, ...] = _param("2,3,4", "Truth-layer levels: price multiples in "
                                                      "the trade's favour (2,3,4 or "
                                                      "1.05,1.1,1.2).", "multiples")
    max_entry_delay: str | None = _param(None, "Exclude an alert (late_entry) whose entry "
                                               "candle opens more than this after it; "
                                               "default (auto): 1 bar plus the data's "
                                               "usual gap (weekends, closed sessions); "
                                               "'none': no limit.", "duration")
    taker_fee_bps: float = _param(30.0, "Taker fee per side, bps.", "bps")
    slippage_bps: float = _param(10.0, "Slippage per side, bps.", "bps")

    def __post_init__(self) -> None:
        try:
            interval_ms = parse_interval(self.interval)
        except DataError as exc:
            raise FlowParameterError(str(exc)) from None
        horizon_ms = (auto_horizon_ms(interval_ms) if self.horizon is None
                      else bars_or_duration_ms(self.horizon, interval_ms, "horizon"))
        if horizon_ms <= 0 or horizon_ms % interval_ms:
            raise FlowParameterError(f"horizon {self.horizon!r} must be a positive whole number "
                                     f"of {self.interval} intervals")
        pre_window_ms = bars_or_duration_ms(self.pre_window, interval_ms, "pre_window")
        if pre_window_ms <= 0:
            raise FlowParameterError(f"pre_window {self.pre_window!r} must be > 0")
        if self.entry not in ENTRY_MODES:
            raise FlowParameterError(f"entry {self.entry!r}: expected one of "
                                     f"{', '.join(ENTRY_MODES)}")
        if not (0.0 < float(self.activity_move_pct) < 1.0):
            raise FlowParameterError(f"activity_move_pct must be > 0 and < 1 (a fraction; got "
                                     f"{self.activity_move_pct!r})")
        for name in FEE_FIELDS:
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value >= 0.0):
                raise FlowParameterError(f"{name} must be >= 0 bps (got {value!r})")
        # Normalised text, so '1440m' and '24h' record (and hash) the same.
        object.__setattr__(self, "horizon", format_duration(horizon_ms))
        object.__setattr__(self, "pre_window", format_duration(pre_window_ms))
        object.__setattr__(self, "levels", parse_levels(self.levels))
        object.__setattr__(self, "max_entry_delay", self._entry_delay(interval_ms))
        object.__setattr__(self, "activity_move_pct", float(self.activity_move_pct))
        for name in FEE_FIELDS:
            object.__setattr__(self, name, float(getattr(self, name)))

    def _entry_delay(self, interval_ms: int) -> str:
        """The limit as given: a duration, 'none', or 'auto' (the flow derives it from the
        loaded candles: :meth:`with_entry_delay`)."""
        value = self.max_entry_delay
        word = value.strip().lower() if isinstance(value, str) else value
        if word is None or word == AUTO:
            return AUTO
        if word in _NO_LIMIT:
            return "none"
        ms = bars_or_duration_ms(value, interval_ms, "max_entry_delay")
        if ms <= 0:
            raise FlowParameterError(f"max_entry_delay {value!r} must be > 0 (or 'none')")
        return format_duration(ms)

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> FlowParams:
        """The params a manifest's ``parameters`` recorded (absent keys: the defaults of
        the version that wrote it: before ``entry``, ``levels`` and ``max_entry_delay``
        existed runs entered at the close, used 2/3/4 and had no entry-delay limit)."""
        found = {f.name: parameters[f.name] for f in fields(cls) if f.name in parameters}
        found.setdefault("max_entry_delay", "none")  # runs before 1.2.0 had no limit
        return cls(**found)

    @property
    def interval_ms(self) -> int:
        return parse_interval(self.interval)

    @property
    def horizon_ms(self) -> int:
        return parse_duration(self.horizon)

    @property
    def pre_window_ms(self) -> int:
        return parse_duration(self.pre_window)

    @property
    def max_entry_delay_ms(self) -> int | None:
        """None: no limit. An 'auto' limit is known once the candles are loaded."""
        if self.max_entry_delay == AUTO:
            raise ValueError("max_entry_delay 'auto' is derived from the candles: "
                             "use with_entry_delay(usual_gap_ms) first")
        return None if self.max_entry_delay == "none" else parse_duration(self.max_entry_delay)

    def with_entry_delay(self, usual_gap_ms: int) -> FlowParams:
        """These params with an 'auto' limit resolved: one interval plus the data's usual
        gap (ms), so a weekend on daily stock bars or hourly FX is no late entry but a
        hole longer than the market's own is. Other limits are returned unchanged."""
        if self.max_entry_delay != AUTO:
            return self
        delay = format_duration(self.interval_ms + int(usual_gap_ms))
        return replace(self, max_entry_delay=delay)

    def manifest_parameters(self, with_fees: bool) -> dict[str, Any]:
        """What the manifest's ``parameters`` records of these params."""
        out: dict[str, Any] = {"interval": self.interval, "horizon": self.horizon,
                               "horizon_ms": self.horizon_ms,
                               "activity_move_pct": self.activity_move_pct,
                               "pre_window": self.pre_window, "entry": self.entry,
                               "levels": list(self.levels),
                               "max_entry_delay": self.max_entry_delay}
        if with_fees:
            out.update({name: getattr(self, name) for name in FEE_FIELDS})
        return out


__all__ = ["AUTO", "ENTRY_MODES", "FEE_FIELDS", "FlowParameterError", "FlowParams",
           "auto_horizon_ms", "bars_or_duration_ms", "parse_levels"]
