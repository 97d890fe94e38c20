"""The optimizer's numbers: configuration, per-policy statistics, objectives, rank, overfit.

Everything here works on arrays over policies (one entry per policy of a grid) for one
group of calls (a caller, or ``*`` for all callers pooled):

- :func:`group_stats` — the frontier statistics of every policy of a batch at once, from
  (policies × calls) matrices; identical to :func:`~quantbot.backtest.engine.summary.frontier_stats`
  per policy (same numpy reductions, row by row).
- :func:`objective_scores` — the configured objective (``config.objective``, one of
  :data:`OBJECTIVES`; :func:`objective_formula` prints it with the config's numbers). The
  default ``robust`` = trimmed mean of realized_return_bps − stop_out_weight·stop_out_rate:
  :func:`robust_influence_bound` states how far one trade can move it. A group without
  trades scores NaN. Infeasible policies are scored too.
- :func:`feasible` — stop_out_rate ≤ max_stop_out_rate, p95_drawdown_bps ≥
  min_p95_drawdown_bps, avg_time_exposed_ms ≤ max_avg_time_exposed_ms (NaN fails; by
  default 2880 bars of the run's interval).
- :func:`rank_policies` — competition ranks (1, 2, 2, 4): feasible before infeasible, then
  score descending (NaN last); equal (feasibility, score) share a rank.
  :func:`ranking_order` lists the policies best first, ties in grid order.
- :func:`overfit_flags` — overfit only when the validation score is more than
  max(overfit_min_gap, overfit_rel_gap·|train score|) below the train score AND the
  policy's validation rank is outside the top ceil(overfit_top_fraction·policies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from quantbot.backtest.engine.summary import trim_count, trimmed_mean, win_loss
from quantbot.backtest.optimize.settings import (
    DEFAULT_INTERVAL_MS,
    OBJECTIVE_FORMULAS,
    OPTIMIZER_SETTINGS,
    formula_text,
)
from quantbot.backtest.optimize.splits import ValidationSplit, parse_validation
from quantbot.durations import parse_bars, parse_duration
from quantbot.errors import ObjectiveError, OptimizerConfigError

#: Each objective's formula; ``{...}`` are OptimizerConfig fields (see objective_formula).
OBJECTIVES: dict[str, str] = OBJECTIVE_FORMULAS


def _field(name: str, **constraints: Any) -> Any:
    setting = OPTIMIZER_SETTINGS[name]
    return Field(setting.default, description=setting.help, **constraints)


class OptimizerConfig(BaseModel):
    """Constraints, objective and its weights, and evaluation rules of an optimization run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Defaults and descriptions: OPTIMIZER_SETTINGS (also the CLI's option defaults and help).
    objective: str = _field("objective")  # a key of OBJECTIVES
    trim_fraction: float = _field("trim_fraction", ge=0.0, lt=0.5)
    stop_out_weight: float = _field("stop_out_weight", ge=0.0)  # bps per unit stop-out rate
    max_stop_out_rate: float = _field("max_stop_out_rate")
    min_p95_drawdown_bps: float = _field("min_p95_drawdown_bps")
    # ms, a duration ("48h") or bars of the run's interval ("2880bars"; see in_ms)
    max_avg_time_exposed_ms: int | str = _field("max_avg_time_exposed_ms")
    return_weight: float = _field("return_weight")
    tail_capture_weight: float = _field("tail_capture_weight")
    mae_weight: float = _field("mae_weight")  # per bps of |median max_adverse_excursion_bps|
    min_calls: int = _field("min_calls", ge=1)  # per caller, eligible calls in training
    validation: ValidationSplit | None = _field("validation")  # also "time:0.8" etc.
    overfit_min_gap: float = _field("overfit_min_gap", ge=0.0)  # score points
    overfit_rel_gap: float = _field("overfit_rel_gap", ge=0.0)  # fraction of |train score|
    overfit_top_fraction: float = _field("overfit_top_fraction", gt=0.0, le=1.0)

    @field_validator("objective")
    @classmethod
    def _objective(cls, v: str) -> str:
        if v not in OBJECTIVES:
            raise ValueError(f"unknown objective {v!r}; choose one of {', '.join(OBJECTIVES)}")
        return v

    @field_validator("max_avg_time_exposed_ms", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        bars = parse_bars(v)
        return parse_duration(v) if bars is None else f"{bars}bars"

    def in_ms(self, interval_ms: int | None) -> OptimizerConfig:
        """This config with a time limit written in bars as ms of the run's bar
        (``interval_ms``; None: 1m bars, the default grid's assumption too)."""
        bars = parse_bars(self.max_avg_time_exposed_ms)
        if bars is None:
            return self
        limit = bars * (interval_ms or DEFAULT_INTERVAL_MS)
        return self.model_copy(update={"max_avg_time_exposed_ms": limit})

    @field_validator("validation", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return parse_validation(v) if isinstance(v, str) else v


def make_config(config: OptimizerConfig | dict[str, Any] | None = None,
                **overrides: Any) -> OptimizerConfig:
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


def objective_formula(name: str, config: OptimizerConfig | None = None) -> str:
    """The formula of objective ``name`` with ``config``'s numbers (for --help and docs)."""
    if name not in OBJECTIVES:
        raise OptimizerConfigError(f"optimizer.objective: unknown objective {name!r}; "
                                   f"choose one of {', '.join(OBJECTIVES)}")
    return formula_text(name, (config or OptimizerConfig()).model_dump())


@dataclass(frozen=True)
class PolicyStats:
    """Frontier statistics of many policies over one group of calls (NaN = null).

    ``sharpe``, ``total_return`` and ``max_drawdown`` are the policy's portfolio figures
    (:mod:`quantbot.backtest.engine.portfolio`), filled by the optimizer's portfolio hook
    (NaN without one)."""

    trades_count: int
    avg_return_bps: np.ndarray
    median_return_bps: np.ndarray
    trimmed_return_bps: np.ndarray
    stop_out_rate: np.ndarray
    p95_drawdown_bps: np.ndarray
    median_mae_bps: np.ndarray
    avg_time_exposed_ms: np.ndarray
    avg_tail_capture: np.ndarray
    win_rate: np.ndarray
    profit_factor: np.ndarray
    avg_win_bps: np.ndarray
    avg_loss_bps: np.ndarray
    sharpe: np.ndarray
    total_return: np.ndarray
    max_drawdown: np.ndarray

    @classmethod
    def empty(cls, n_policies: int, trades_count: int = 0) -> PolicyStats:
        """All-NaN statistics, to be filled batch by batch with :meth:`fill`."""
        return cls(trades_count, *(np.full(n_policies, np.nan) for _ in _STAT_ARRAYS))

    def fill(self, at: slice | np.ndarray, other: PolicyStats) -> None:
        """Write ``other``'s policies at positions ``at`` (a slice or index array)."""
        for name in _STAT_ARRAYS:
            getattr(self, name)[at] = getattr(other, name)

    def take(self, at: slice | np.ndarray) -> PolicyStats:
        """The statistics of the policies at ``at`` (a copy for an index array)."""
        return PolicyStats(self.trades_count, *(getattr(self, n)[at] for n in _STAT_ARRAYS))

    def row(self, i: int) -> dict[str, float | int | None]:
        """One policy's statistics as plain numbers (None for NaN)."""
        out: dict[str, float | int | None] = {"trades_count": self.trades_count}
        for name in _STAT_ARRAYS:
            v = float(getattr(self, name)[i])
            out[name] = None if np.isnan(v) else v
        return out


_STAT_ARRAYS = tuple(f.name for f in fields(PolicyStats) if f.name != "trades_count")


def group_stats(ret: np.ndarray, stop_out: np.ndarray, mae: np.ndarray, exposed: np.ndarray,
                tail: np.ndarray, trim_fraction: float = OPTIMIZER_SETTINGS[
                    "trim_fraction"].default) -> PolicyStats:
    """Statistics per row of (policies × calls) matrices; ``tail`` NaN = null."""
    n_pol, n = ret.shape
    if n == 0:
        return PolicyStats.empty(n_pol)
    valid = ~np.isnan(tail)
    counts = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg_tail = np.where(counts > 0, np.where(valid, tail, 0.0).sum(axis=1) / counts, np.nan)
    wl = win_loss(ret)
    return PolicyStats(
        trades_count=n,
        avg_return_bps=ret.mean(axis=1),
        median_return_bps=np.median(ret, axis=1),
        trimmed_return_bps=trimmed_mean(ret, trim_fraction),
        stop_out_rate=stop_out.mean(axis=1),
        p95_drawdown_bps=np.percentile(mae, 5, axis=1),
        median_mae_bps=np.median(mae, axis=1),
        avg_time_exposed_ms=exposed.mean(axis=1),
        avg_tail_capture=avg_tail,
        win_rate=wl["win_rate"], profit_factor=wl["profit_factor"],
        avg_win_bps=wl["avg_win_bps"], avg_loss_bps=wl["avg_loss_bps"],
        sharpe=np.full(n_pol, np.nan), total_return=np.full(n_pol, np.nan),
        max_drawdown=np.full(n_pol, np.nan),
    )


def objective_scores(stats: PolicyStats, config: OptimizerConfig,
                     portfolio_metric: np.ndarray | None = None) -> np.ndarray:
    """objective_score per policy (formulas: :data:`OBJECTIVES`); NaN when there are no
    trades. ``portfolio_metric`` (per policy) is what ``sharpe`` ranks on; it must be given
    for that objective (ObjectiveError otherwise) and is ignored by the others."""
    name = config.objective
    if name == "robust":
        return stats.trimmed_return_bps - config.stop_out_weight * stats.stop_out_rate
    if name == "median":
        return stats.median_return_bps.copy()
    if name == "sharpe":
        if portfolio_metric is None:
            raise ObjectiveError("objective sharpe: no per-policy portfolio metrics were given "
                                 "(pass portfolio_metric, or choose another objective)")
        return np.asarray(portfolio_metric, dtype=np.float64).copy()
    tail = np.nan_to_num(stats.avg_tail_capture, nan=0.0)
    return (config.return_weight * stats.median_return_bps
            + config.tail_capture_weight * tail
            - config.mae_weight * np.abs(stats.median_mae_bps))


def robust_influence_bound(returns_bps: np.ndarray, config: OptimizerConfig) -> float:
    """How far replacing ONE trade (any return, any stop-out flag) can move the robust score.

    With n trades, k = trim_count(n) and x the returns sorted ascending (1-based), the
    bound is ``(x_(n-k+1) - x_(k)) / (n - 2k) + stop_out_weight / n``: the k-th largest
    minus the k-th smallest return over the trades kept, plus one trade's share of the
    stop-out penalty. Why: replacing one value moves every order statistic by at most one
    place (x'_(i) lies in [x_(i-1), x_(i+1)]), so the kept sum moves by at most the spread
    of its neighbours. Infinite for n <= 2 (k = 0: nothing is trimmed) and with k = 0.
    """
    x = np.sort(np.asarray(returns_bps, dtype=np.float64))
    n = len(x)
    k = trim_count(n, config.trim_fraction)
    if k == 0:
        return math.inf
    return float((x[n - k] - x[k - 1]) / (n - 2 * k) + config.stop_out_weight / n)


def feasible(stats: PolicyStats, config: OptimizerConfig,
             interval_ms: int | None = None) -> np.ndarray:
    """Bool per policy: every constraint holds (a NaN statistic fails its constraint); a
    time limit in bars is in bars of ``interval_ms`` (see :meth:`OptimizerConfig.in_ms`)."""
    max_exposed = config.in_ms(interval_ms).max_avg_time_exposed_ms
    return ((stats.stop_out_rate <= config.max_stop_out_rate)
            & (stats.p95_drawdown_bps >= config.min_p95_drawdown_bps)
            & (stats.avg_time_exposed_ms <= max_exposed))


def _sort_keys(is_feasible: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    infeasible = ~np.asarray(is_feasible, dtype=bool)
    neg = np.where(np.isnan(score), np.inf, -np.asarray(score, dtype=np.float64))
    return infeasible, neg


def ranking_order(is_feasible: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Policy indices best first: feasible first, score descending (NaN last), ties in
    input (grid) order — deterministic, and the first of a tie is the one reported."""
    infeasible, neg = _sort_keys(is_feasible, score)
    return np.lexsort((np.arange(len(neg)), neg, infeasible))


def rank_policies(is_feasible: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Competition rank per policy (int64, 1 = best; 1, 2, 2, 4): policies with the same
    feasibility and the same score (NaN equals NaN) share the rank of the first of them."""
    order = ranking_order(is_feasible, score)
    infeasible, neg = _sort_keys(is_feasible, score)
    inf_s, neg_s = infeasible[order], neg[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (inf_s[1:] != inf_s[:-1]) | (neg_s[1:] != neg_s[:-1])
    first = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = first + 1
    return rank


def overfit_flags(train_score: np.ndarray, validation_score: np.ndarray,
                  validation_rank: np.ndarray, config: OptimizerConfig) -> np.ndarray:
    """Bool per policy: validation score more than max(overfit_min_gap,
    overfit_rel_gap·|train score|) below the train score AND validation rank (among the
    same policies' validation results) worse than ceil(overfit_top_fraction·policies).

    A validation score at or above the train score is never overfit; neither is a policy
    that still ranks among the best on validation (its lower score is then the data's, not
    the choice's). False where either score is NaN."""
    gap = np.maximum(config.overfit_min_gap, config.overfit_rel_gap * np.abs(train_score))
    top = math.ceil(config.overfit_top_fraction * len(validation_rank))
    with np.errstate(invalid="ignore"):
        worse = np.asarray(validation_score < train_score - gap, dtype=bool)
    return worse & (np.asarray(validation_rank) > top)
