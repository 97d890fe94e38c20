"""Exit policies: the validated model, its canonical JSON and its readable id.

A policy is JSON with a ``kind`` (SCHEMAS.md): ``fixed_stop``, ``time_stop``,
``trailing_stop``, ``ladder`` or ``combo``. Percentages are fractions (0.2 = 20 %), not bps;
0 or absent (or null) switches a rule off. snake_case keys and the original camelCase keys
(stopPct, takeProfitPct, maxHoldMs, activationPct, trailPct, hardStopPct) are accepted;
unknown keys are rejected so that a typo never silently disables a stop. ``max_hold_ms``
also accepts a duration string (``90s``, ``15m``, ``6h``, ``5d``).

Every validation failure raises :class:`~quantbot.errors.PolicyError` with one line naming
the field, e.g. ``policy.trail_pct: must be > 0 and < 1 (got 1.5)``.

``policy_id`` is readable and lossless (numbers as Python's shortest repr, rules that are
off omitted), e.g. ``fixed_stop:sl0.2:tp1``, ``time_stop:hold6h``,
``trailing_stop:act0.5:trail0.2:hs0.3``, ``ladder:2x0.5+3x0.5:sl0.3``,
``combo(fixed_stop:sl0.2|time_stop:hold6h)``; two policies share an id iff their canonical
JSON is equal.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from quantbot.errors import PolicyError

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_FIELD_PREFIX = re.compile(r"^[a-z_]+: ")
LADDER_SUM_TOLERANCE = 1e-9  # fractions like 0.1 * 10 do not sum to exactly 1.0


def _alias(snake: str, camel: str | None = None) -> Any:
    choices = (snake, camel) if camel else (snake,)
    return AliasChoices(*choices)


def _off_if_none(v: Any) -> Any:
    return 0.0 if v is None else v


def _check(name: str, v: float, ok: bool, rule: str) -> float:
    if not (ok and math.isfinite(v)):
        raise ValueError(f"{name}: must be {rule} (got {v!r})")
    return v


def _fraction_below_one(name: str, v: float) -> float:
    return _check(name, v, 0.0 <= v < 1.0, ">= 0 and < 1")


def _non_negative(name: str, v: float) -> float:
    return _check(name, v, v >= 0.0, ">= 0")


class _PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FixedStop(_PolicyModel):
    """Stop below entry and/or take profit above it."""

    kind: Literal["fixed_stop"] = "fixed_stop"
    stop_pct: float = Field(0.0, validation_alias=_alias("stop_pct", "stopPct"))
    take_profit_pct: float = Field(0.0, validation_alias=_alias("take_profit_pct", "takeProfitPct"))

    _none = field_validator("stop_pct", "take_profit_pct", mode="before")(_off_if_none)

    @model_validator(mode="after")
    def _ranges(self) -> "FixedStop":
        _fraction_below_one("stop_pct", self.stop_pct)
        _non_negative("take_profit_pct", self.take_profit_pct)
        return self


class TimeStop(_PolicyModel):
    """Exit at the close of the first candle opening max_hold_ms after entry (or at a target)."""

    kind: Literal["time_stop"] = "time_stop"
    max_hold_ms: int = Field(validation_alias=_alias("max_hold_ms", "maxHoldMs"))
    take_profit_pct: float = Field(0.0, validation_alias=_alias("take_profit_pct", "takeProfitPct"))

    _none = field_validator("take_profit_pct", mode="before")(_off_if_none)

    @field_validator("max_hold_ms", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        if isinstance(v, str):
            m = _DURATION.match(v)
            if not m:
                raise ValueError(f"not a duration like 90s, 15m, 6h, 5d (got {v!r})")
            return int(m.group(1)) * _UNIT_MS[m.group(2)]
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v

    @model_validator(mode="after")
    def _ranges(self) -> "TimeStop":
        if self.max_hold_ms <= 0:
            raise ValueError(f"max_hold_ms: must be > 0 (got {self.max_hold_ms})")
        _non_negative("take_profit_pct", self.take_profit_pct)
        return self


class TrailingStop(_PolicyModel):
    """Trail peak·(1 − trail_pct) once the high reaches E·(1 + activation_pct)."""

    kind: Literal["trailing_stop"] = "trailing_stop"
    activation_pct: float = Field(0.0, validation_alias=_alias("activation_pct", "activationPct"))
    trail_pct: float = Field(validation_alias=_alias("trail_pct", "trailPct"))
    hard_stop_pct: float = Field(0.0, validation_alias=_alias("hard_stop_pct", "hardStopPct"))

    _none = field_validator("activation_pct", "hard_stop_pct", mode="before")(_off_if_none)

    @model_validator(mode="after")
    def _ranges(self) -> "TrailingStop":
        _non_negative("activation_pct", self.activation_pct)
        _check("trail_pct", self.trail_pct, 0.0 < self.trail_pct < 1.0, "> 0 and < 1")
        _fraction_below_one("hard_stop_pct", self.hard_stop_pct)
        return self


class LadderLevel(_PolicyModel):
    """Sell ``fraction`` of the original position when the high reaches E·multiple."""

    multiple: float
    fraction: float

    @model_validator(mode="after")
    def _ranges(self) -> "LadderLevel":
        _check("multiple", self.multiple, self.multiple > 1.0, "> 1")
        _check("fraction", self.fraction, 0.0 < self.fraction <= 1.0, "> 0 and <= 1")
        return self


class Ladder(_PolicyModel):
    """Scale out at several multiples; a stop closes what remains."""

    kind: Literal["ladder"] = "ladder"
    levels: list[LadderLevel] = Field(min_length=1)
    stop_pct: float = Field(0.0, validation_alias=_alias("stop_pct", "stopPct"))

    _none = field_validator("stop_pct", mode="before")(_off_if_none)

    @model_validator(mode="after")
    def _ranges(self) -> "Ladder":
        _fraction_below_one("stop_pct", self.stop_pct)
        total = sum(level.fraction for level in self.levels)
        if total > 1.0 + LADDER_SUM_TOLERANCE:
            raise ValueError(f"levels: fractions must sum to <= 1 (got {total!r})")
        return self


class Combo(_PolicyModel):
    """Sub-policies run independently; the earliest exit wins, ties go to the first listed."""

    kind: Literal["combo"] = "combo"
    policies: list["Policy"] = Field(min_length=1)


AnyPolicy = FixedStop | TimeStop | TrailingStop | Ladder | Combo
Policy = Annotated[AnyPolicy, Field(discriminator="kind")]
Combo.model_rebuild()
KINDS = ("fixed_stop", "time_stop", "trailing_stop", "ladder", "combo")
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Policy)


def parse_policy(obj: str | dict[str, Any] | BaseModel) -> AnyPolicy:
    """Validate a policy given as JSON text or a dict; raises PolicyError (one line)."""
    if isinstance(obj, (FixedStop, TimeStop, TrailingStop, Ladder, Combo)):
        return obj
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"policy: not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(obj, dict):
        raise PolicyError(f"policy: must be a JSON object with a kind (got {type(obj).__name__})")
    try:
        return _ADAPTER.validate_python(obj)
    except ValidationError as exc:
        raise PolicyError(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    """The first validation error as ``policy.<path>: <message>``."""
    err = exc.errors(include_url=False)[0]
    parts: list[str] = []
    for item in err["loc"]:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item not in KINDS:
            parts.append(f".{item}")
    path = "policy" + "".join(parts)
    kind = err["type"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        got = err.get("ctx", {}).get("tag")
        got_txt = f" (got {got!r})" if got is not None else " (missing)"
        return f"{path}.kind: must be one of {', '.join(KINDS)}{got_txt}"
    msg = err["msg"].removeprefix("Value error, ")
    if kind == "value_error":
        field = _FIELD_PREFIX.match(msg)  # model-level checks name their field first
        return f"{path}.{msg}" if field else f"{path}: {msg}"
    if kind == "missing":
        return f"{path}: required"
    if kind == "extra_forbidden":
        return f"{path}: unknown field"
    return f"{path}: {msg} (got {err.get('input')!r})"


def canonical_json(policy: Any) -> str:
    """Sorted-key, snake_case, whitespace-free JSON with every field: policy_params and hashing."""
    data = parse_policy(policy).model_dump(mode="json")
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _num(x: float) -> str:
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _duration(ms: int) -> str:
    for unit in ("d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def policy_id(policy: Any) -> str:
    """Short readable id, lossless for the canonical policy (see the module docstring)."""
    p = parse_policy(policy)
    if isinstance(p, Combo):
        return "combo(" + "|".join(policy_id(sub) for sub in p.policies) + ")"
    if isinstance(p, Ladder):
        parts = ["+".join(f"{_num(lv.multiple)}x{_num(lv.fraction)}" for lv in p.levels)]
        tagged = [("sl", p.stop_pct)]
    elif isinstance(p, FixedStop):
        parts, tagged = [], [("sl", p.stop_pct), ("tp", p.take_profit_pct)]
    elif isinstance(p, TimeStop):
        parts, tagged = [f"hold{_duration(p.max_hold_ms)}"], [("tp", p.take_profit_pct)]
    else:
        parts = []
        tagged = [("act", p.activation_pct), ("trail", p.trail_pct), ("hs", p.hard_stop_pct)]
    parts += [f"{tag}{_num(v)}" for tag, v in tagged if v != 0.0]
    return ":".join([p.kind, *parts])
