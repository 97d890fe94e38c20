"""Out-of-sample splits: which eligible calls train the optimizer and which validate it.

``--validation`` takes one of

- ``time[:F]`` (F default 0.8): the earliest F of the eligible calls by alert time train,
  the rest validate (n_train = floor(F·n); equal alert times keep input order). One global
  cutoff, so a caller's training calls are all earlier than every validation call.
- ``caller[:F[:SEED]]`` (F default 0.8, SEED default 0): whole callers are held out.
  Callers are ordered by sha256("SEED:caller_name") and the first
  max(1, round-half-up((1 − F)·callers)) of that order are held out (at least one caller trains).
  The pooled group (``*``) trains on the kept callers and validates on the held-out ones;
  held-out callers get no per-caller frontier (they have no training calls), and a kept
  caller's frontier is in-sample only (validation columns null, reported on its own calls).
- ``random:SEED[:F]`` (F default 0.8): a seeded permutation (numpy default_rng(SEED)) of the
  eligible calls; its first floor(F·n) train.

The split is a pure function of the eligible calls, their alert times and callers, so a
rerun with the same spec reproduces it exactly.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from quantbot.errors import ValidationSpecError

DEFAULT_TRAIN_FRACTION = 0.8


class ValidationSplit(BaseModel):
    """How to split eligible calls into train and validation (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["time", "caller", "random"]
    train_fraction: float = Field(DEFAULT_TRAIN_FRACTION, gt=0.0, lt=1.0)
    seed: int = 0

    def spec(self) -> str:
        """The canonical ``--validation`` text of this split."""
        f = repr(self.train_fraction)
        if self.kind == "time":
            return f"time:{f}"
        if self.kind == "caller":
            return f"caller:{f}:{self.seed}"
        return f"random:{self.seed}:{f}"


@dataclass(frozen=True)
class Split:
    """A train/validation partition of the eligible calls (rows of the trades)."""

    train: np.ndarray  # bool per eligible call
    held_out_callers: tuple[str, ...] = ()  # caller split only

    @property
    def validation(self) -> np.ndarray:
        return ~self.train


def parse_validation(text: str | None) -> ValidationSplit | None:
    """``time:0.8`` / ``caller:0.8:7`` / ``random:42:0.7`` -> a split; None/""/"none" -> None."""
    if text is None or text.strip().lower() in ("", "none", "off"):
        return None
    parts = [p.strip() for p in text.strip().split(":")]
    kind, args = parts[0].lower(), parts[1:]
    usage = "expected time[:FRACTION], caller[:FRACTION[:SEED]] or random:SEED[:FRACTION]"
    try:
        if kind == "time" and len(args) <= 1:
            return ValidationSplit(kind="time", train_fraction=_fraction(args, 0))
        if kind == "caller" and len(args) <= 2:
            return ValidationSplit(kind="caller", train_fraction=_fraction(args, 0),
                                   seed=int(args[1]) if len(args) > 1 else 0)
        if kind == "random" and 1 <= len(args) <= 2:
            return ValidationSplit(kind="random", seed=int(args[0]),
                                   train_fraction=_fraction(args, 1))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError too
        detail = str(exc).splitlines()[-1].strip() if str(exc) else ""
        raise ValidationSpecError(f"--validation {text!r}: {detail or 'invalid value'} ({usage})"
                                  ) from None
    raise ValidationSpecError(f"--validation {text!r}: {usage}")


def _fraction(args: list[str], i: int) -> float:
    if len(args) <= i or args[i] == "":
        return DEFAULT_TRAIN_FRACTION
    value = float(args[i])
    if not (0.0 < value < 1.0) or not math.isfinite(value):
        raise ValueError(f"train fraction must be > 0 and < 1 (got {args[i]})")
    return value


def make_split(split: ValidationSplit | None, alert_ts_ms: np.ndarray,
               callers: np.ndarray) -> Split:
    """Partition the eligible calls; ``alert_ts_ms`` and ``callers`` have one entry per call."""
    n = len(alert_ts_ms)
    train = np.ones(n, dtype=bool)
    if split is None:
        return Split(train)
    if split.kind == "time":
        order = np.argsort(np.asarray(alert_ts_ms, dtype=np.int64), kind="stable")
        train[order[_n_train(split.train_fraction, n):]] = False
        return Split(train)
    if split.kind == "random":
        order = np.random.default_rng(split.seed).permutation(n)
        train[order[_n_train(split.train_fraction, n):]] = False
        return Split(train)
    held = held_out_callers(sorted(set(np.asarray(callers, dtype=object).tolist())),
                            split.train_fraction, split.seed)
    train = ~np.isin(np.asarray(callers, dtype=object), list(held))
    return Split(train, held)


def _n_train(fraction: float, n: int) -> int:
    # 1e-9 absorbs float products like 0.29 * 100 = 28.999999999999996
    return math.floor(fraction * n + 1e-9)


def held_out_callers(callers: list[str], train_fraction: float, seed: int) -> tuple[str, ...]:
    """The callers a ``caller`` split holds out, sorted by name (see the module docstring)."""
    if len(callers) < 2:
        raise ValidationSpecError(
            "--validation caller: needs at least 2 callers with eligible calls "
            f"(got {len(callers)})")
    n_hold = min(len(callers) - 1,
                 max(1, math.floor((1.0 - train_fraction) * len(callers) + 0.5)))
    ranked = sorted(callers, key=lambda c: hashlib.sha256(f"{seed}:{c}".encode()).hexdigest())
    return tuple(sorted(ranked[:n_hold]))
