"""The flows' parameters, with their defaults, units and help text in one place.

:class:`FlowParams` is what the Python API validates and the manifest records; the CLI
builds its ``--interval``, ``--horizon``, ``--activity-move-pct``, ``--pre-window``,
``--taker-fee-bps`` and ``--slippage-bps`` options from these fields' metadata
(:func:`quantbot.cli.options.field_options`), so a default or a help text is written
once. The optimizer's settings live the same way in
:data:`~quantbot.backtest.optimize.settings.OPTIMIZER_SETTINGS`. This module imports
nothing heavy (no numpy): the CLI reads it to build its options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from quantbot.durations import SUPPORTED_INTERVALS, format_duration, parse_duration, parse_interval
from quantbot.errors import FlowParameterError


def _param(default: Any, help: str, unit: str) -> Any:
    return field(default=default, metadata={"help": help, "unit": unit})


#: Parameters that only flows simulating trades use (path-only runs take none).
FEE_FIELDS = ("taker_fee_bps", "slippage_bps")


@dataclass(frozen=True)
class FlowParams:
    """Engine parameters shared by the flows; durations as text (``90s``, ``15m``, ``6h``)."""

    interval: str = _param("1m", f"Candle interval: {', '.join(SUPPORTED_INTERVALS)}.",
                           "duration")
    horizon: str = _param("24h", "Window after entry; a whole number of intervals "
                                 "(90s, 15m, 6h, 5d).", "duration")
    activity_move_pct: float = _param(0.10, "Move (a fraction: 0.1 = 10 %) that counts as "
                                            "activity in alert_to_activity_ms.", "fraction")
    pre_window: str = _param("1h", "Pre-alert window of the features.", "duration")
    taker_fee_bps: float = _param(30.0, "Taker fee per side, bps.", "bps")
    slippage_bps: float = _param(10.0, "Slippage per side, bps.", "bps")

    def __post_init__(self) -> None:
        interval_ms = parse_interval(self.interval)
        horizon_ms = parse_duration(self.horizon)
        if horizon_ms <= 0 or horizon_ms % interval_ms:
            raise FlowParameterError(f"horizon {self.horizon!r} must be a positive whole number "
                                     f"of {self.interval} intervals")
        if parse_duration(self.pre_window) <= 0:
            raise FlowParameterError(f"pre_window {self.pre_window!r} must be > 0")
        if not (0.0 < float(self.activity_move_pct) < 1.0):
            raise FlowParameterError(f"activity_move_pct must be > 0 and < 1 (a fraction; got "
                                     f"{self.activity_move_pct!r})")
        for name in FEE_FIELDS:
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value >= 0.0):
                raise FlowParameterError(f"{name} must be >= 0 bps (got {value!r})")
        # Normalised text, so '1440m' and '24h' record (and hash) the same.
        object.__setattr__(self, "horizon", format_duration(horizon_ms))
        object.__setattr__(self, "pre_window", format_duration(parse_duration(self.pre_window)))
        object.__setattr__(self, "activity_move_pct", float(self.activity_move_pct))
        for name in FEE_FIELDS:
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> FlowParams:
        """The params a manifest's ``parameters`` recorded (absent keys: the defaults)."""
        return cls(**{f.name: parameters[f.name] for f in fields(cls) if f.name in parameters})

    @property
    def interval_ms(self) -> int:
        return parse_interval(self.interval)

    @property
    def horizon_ms(self) -> int:
        return parse_duration(self.horizon)

    @property
    def pre_window_ms(self) -> int:
        return parse_duration(self.pre_window)

    def manifest_parameters(self, with_fees: bool) -> dict[str, Any]:
        """What the manifest's ``parameters`` records of these params."""
        out: dict[str, Any] = {"interval": self.interval, "horizon": self.horizon,
                               "horizon_ms": self.horizon_ms,
                               "activity_move_pct": self.activity_move_pct,
                               "pre_window": self.pre_window}
        if with_fees:
            out.update({name: getattr(self, name) for name in FEE_FIELDS})
        return out


__all__ = ["FEE_FIELDS", "FlowParameterError", "FlowParams"]
