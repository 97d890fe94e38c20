"""The optimizer's numbers: configuration, per-policy statistics, constraints, score, rank.

Everything here works on arrays over policies (one entry per policy of a grid) for one
group of calls (a caller, or ``*`` for all callers pooled):

- :func:`group_stats` — the frontier statistics of every policy of a batch at once, from
  (policies × calls) matrices; identical to :func:`~quantbot.backtest.engine.summary.frontier_stats`
  per policy (same numpy reductions, row by row).
- :func:`objective_scores` — ``return_weight·median_return_bps
  + tail_capture_weight·avg_tail_capture − mae_weight·|median MAE bps|`` (defaults 1, 200,
  1/100). A null avg_tail_capture (no trade had a positive peak) counts as 0; a group
  without trades scores NaN. Infeasible policies are scored too.
- :func:`feasible` — stop_out_rate ≤ max_stop_out_rate, p95_drawdown_bps ≥
  min_p95_drawdown_bps, avg_time_exposed_ms ≤ max_avg_time_exposed_ms (NaN fails).
- :func:`rank_policies` — 1 = best: feasible before infeasible, then score descending
  (NaN last), then policy_id ascending (byte order) so that ties rank deterministically.
- :func:`overfit_flags` — a policy overfits when its validation score is more than
  max(overfit_min_gap, overfit_rel_gap·|train score|) below its train score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from quantbot.backtest.optimize.settings import OPTIMIZER_SETTINGS
from quantbot.backtest.optimize.splits import ValidationSplit, parse_validation
from quantbot.durations import parse_duration
from quantbot.errors import OptimizerConfigError


def _field(name: str, **constraints: Any) -> Any:
    setting = OPTIMIZER_SETTINGS[name]
    return Field(setting.default, description=setting.help, **constraints)


class OptimizerConfig(BaseModel):
    """Constraints, objective weights and evaluation rules of an optimization run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Defaults and descriptions: OPTIMIZER_SETTINGS (also the CLI's option defaults and help).
    max_stop_out_rate: float = _field("max_stop_out_rate")
    min_p95_drawdown_bps: float = _field("min_p95_drawdown_bps")
    max_avg_time_exposed_ms: int = _field("max_avg_time_exposed_ms")  # or a duration: "48h"
    return_weight: float = _field("return_weight")
    tail_capture_weight: float = _field("tail_capture_weight")
    mae_weight: float = _field("mae_weight")  # per bps of |median max_adverse_excursion_bps|
    min_calls: int = _field("min_calls", ge=1)  # per caller, eligible calls in training
    validation: ValidationSplit | None = _field("validation")  # also "time:0.8" etc.
    overfit_min_gap: float = _field("overfit_min_gap", ge=0.0)  # score points (≈ bps)
    overfit_rel_gap: float = _field("overfit_rel_gap", ge=0.0)  # fraction of |train score|

    @field_validator("max_avg_time_exposed_ms", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return parse_duration(v) if isinstance(v, str) else v

    @field_validator("validation", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return parse_validation(v) if isinstance(v, str) else v


def make_config(config: "OptimizerConfig | dict[str, Any] | None" = None,
                **overrides: Any) -> "OptimizerConfig":
    """An OptimizerConfig from a config or dict plus keyword overrides (None = default);
    invalid values raise OptimizerConfigError."""
    base = config.model_dump() if isinstance(config, OptimizerConfig) else dict(config or {})
    base.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return OptimizerConfig(**base)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "optimizer"
        msg = err["msg"].removeprefix("Value error, ")
        got = repr(err.get("input"))
        raise OptimizerConfigError(f"optimizer.{where}: {msg}"
                                   + ("" if got in msg else f" (got {got})")) from None


@dataclass(frozen=True)
class PolicyStats:
    """Frontier statistics of many policies over one group of calls (NaN = null)."""

    trades_count: int
    avg_return_bps: np.ndarray
    median_return_bps: np.ndarray
    stop_out_rate: np.ndarray
    p95_drawdown_bps: np.ndarray
    median_mae_bps: np.ndarray
    avg_time_exposed_ms: np.ndarray
    avg_tail_capture: np.ndarray

    @classmethod
    def empty(cls, n_policies: int, trades_count: int = 0) -> "PolicyStats":
        """All-NaN statistics, to be filled batch by batch with :meth:`fill`."""
        nan = [np.full(n_policies, np.nan) for _ in range(7)]
        return cls(trades_count, *nan)

    def fill(self, at: slice, other: "PolicyStats") -> None:
        for name in _STAT_ARRAYS:
            getattr(self, name)[at] = getattr(other, name)

    def row(self, i: int) -> dict[str, float | int | None]:
        """One policy's statistics as plain numbers (None for NaN)."""
        out: dict[str, float | int | None] = {"trades_count": self.trades_count}
        for name in _STAT_ARRAYS:
            v = float(getattr(self, name)[i])
            out[name] = None if np.isnan(v) else v
        return out


_STAT_ARRAYS = ("avg_return_bps", "median_return_bps", "stop_out_rate", "p95_drawdown_bps",
                "median_mae_bps", "avg_time_exposed_ms", "avg_tail_capture")


def group_stats(ret: np.ndarray, stop_out: np.ndarray, mae: np.ndarray, exposed: np.ndarray,
                tail: np.ndarray) -> PolicyStats:
    """Statistics per row of (policies × calls) matrices; ``tail`` NaN = null."""
    n_pol, n = ret.shape
    if n == 0:
        return PolicyStats.empty(n_pol)
    valid = ~np.isnan(tail)
    counts = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg_tail = np.where(counts > 0, np.where(valid, tail, 0.0).sum(axis=1) / counts, np.nan)
    return PolicyStats(
        trades_count=n,
        avg_return_bps=ret.mean(axis=1),
        median_return_bps=np.median(ret, axis=1),
        stop_out_rate=stop_out.mean(axis=1),
        p95_drawdown_bps=np.percentile(mae, 5, axis=1),
        median_mae_bps=np.median(mae, axis=1),
        avg_time_exposed_ms=exposed.mean(axis=1),
        avg_tail_capture=avg_tail,
    )


def objective_scores(stats: PolicyStats, config: OptimizerConfig) -> np.ndarray:
    """objective_score per policy (see the module docstring); NaN when there are no trades."""
    tail = np.nan_to_num(stats.avg_tail_capture, nan=0.0)
    return (config.return_weight * stats.median_return_bps
            + config.tail_capture_weight * tail
            - config.mae_weight * np.abs(stats.median_mae_bps))


def feasible(stats: PolicyStats, config: OptimizerConfig) -> np.ndarray:
    """Bool per policy: every constraint holds (a NaN statistic fails its constraint)."""
    return ((stats.stop_out_rate <= config.max_stop_out_rate)
            & (stats.p95_drawdown_bps >= config.min_p95_drawdown_bps)
            & (stats.avg_time_exposed_ms <= config.max_avg_time_exposed_ms))


def rank_policies(is_feasible: np.ndarray, score: np.ndarray, policy_ids: list[str]) -> np.ndarray:
    """Rank per policy (int64, 1 = best): feasible first, score descending, NaN last, then id."""
    order = ranking_order(is_feasible, score, policy_ids)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1, dtype=np.int64)
    return rank


def ranking_order(is_feasible: np.ndarray, score: np.ndarray,
                  policy_ids: list[str]) -> np.ndarray:
    """Policy indices best first (the order :func:`rank_policies` numbers)."""
    id_rank = id_order_keys(policy_ids)
    neg = np.where(np.isnan(score), np.inf, -np.asarray(score, dtype=np.float64))
    return np.lexsort((id_rank, neg, ~np.asarray(is_feasible, dtype=bool)))


def id_order_keys(policy_ids: list[str]) -> np.ndarray:
    """Integer key per id preserving the ids' byte order (the ranking's last tiebreak)."""
    order = sorted(range(len(policy_ids)), key=lambda i: policy_ids[i].encode())
    keys = np.empty(len(policy_ids), dtype=np.int64)
    keys[order] = np.arange(len(policy_ids), dtype=np.int64)
    return keys


def overfit_flags(train_score: np.ndarray, validation_score: np.ndarray,
                  config: OptimizerConfig) -> np.ndarray:
    """Bool per policy: validation score far below train score (False where either is NaN)."""
    gap = np.maximum(config.overfit_min_gap, config.overfit_rel_gap * np.abs(train_score))
    with np.errstate(invalid="ignore"):
        return np.asarray(validation_score < train_score - gap, dtype=bool)
