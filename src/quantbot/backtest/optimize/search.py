"""The policy optimizer: a grid of policies evaluated pooled (``*``) and per caller.

``optimize_grid(grid, candles, windows, callers, config)`` simulates every policy once
(``simulate_many`` batches: each alert window is walked by a whole batch of policies), then
computes each group's statistics from those same trades — the pooled group and every
caller are column subsets of one (policies × calls) matrix, never a re-simulation.

Groups: ``*`` (every eligible call; evaluated when its training set is non-empty) and each
caller, in name order, whose training set holds at least ``config.min_calls`` eligible
calls; the others are listed in :attr:`OptimizationResult.skipped` (the flow writes them as
warnings). With a validation split (:mod:`quantbot.backtest.optimize.splits`) the statistics, score,
feasibility and rank are computed on the training calls, the same numbers on the validation
calls are kept alongside, and the best policy — rank 1 on train — is reported on the
validation calls (:attr:`GroupResult.best_trades`).

Scores, constraints and ranking: :mod:`quantbot.backtest.optimize.objective`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from quantbot.backtest.data.candle_set import CandleSet
from quantbot.backtest.engine.simulate import ScanIndex, Trades, build_scan_index, simulate_many
from quantbot.backtest.engine.windows import Windows
from quantbot.backtest.optimize.grid import PolicyGrid
from quantbot.backtest.optimize.objective import (
    OptimizerConfig,
    PolicyStats,
    feasible,
    group_stats,
    id_order_keys,
    objective_scores,
    overfit_flags,
    rank_policies,
)
from quantbot.backtest.optimize.splits import Split, make_split

POOLED = "*"
DEFAULT_BATCH_SIZE = 64

#: Frontier columns this module can add beyond the SCHEMAS.md frontier (all nullable; null
#: when the run has no validation split). Written only once the frontier schema in
#: quantbot.artifacts.schema.arrow_schemas declares them — see :func:`frontier_columns`.
FRONTIER_VALIDATION_COLUMNS: dict[str, pa.DataType] = {
    "validation_objective_score": pa.float64(),
    "validation_median_return_bps": pa.float64(),
    "validation_meets_constraints": pa.bool_(),
    "validation_trades_count": pa.int64(),
    "overfit": pa.bool_(),
}

Progress = Callable[[int, int], None]  # (policies done, policies total)


@dataclass(frozen=True)
class SkippedGroup:
    """A caller (or ``*``) that was not optimized, and why."""

    caller_name: str
    train_calls: int
    reason: str  # "min_calls" | "held_out" | "no_calls"


@dataclass
class GroupResult:
    """One group's evaluation of every grid policy (arrays indexed like the grid)."""

    caller_name: str
    train_rows: np.ndarray  # int64 positions into the eligible calls
    validation_rows: np.ndarray  # empty without a split
    stats: PolicyStats  # on the training calls
    validation_stats: PolicyStats | None
    score: np.ndarray = field(default_factory=lambda: np.empty(0))
    meets_constraints: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    rank: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    validation_score: np.ndarray | None = None
    validation_meets_constraints: np.ndarray | None = None
    overfit: np.ndarray | None = None
    best: int = -1  # grid index of the rank-1 policy
    best_trades: Trades | None = None  # best policy on the reported rows
    validated: bool = False  # has out-of-sample statistics (validation_* fields)

    @property
    def report_rows(self) -> np.ndarray:
        """Calls the best policy is reported on: validation calls if split, else training."""
        return self.validation_rows if self.validated else self.train_rows


@dataclass(frozen=True)
class OptimizationResult:
    grid: PolicyGrid
    config: OptimizerConfig
    eligible_idx: np.ndarray  # input alert index of each eligible call
    split: Split
    groups: list[GroupResult]
    skipped: list[SkippedGroup]

    def group(self, caller_name: str) -> GroupResult:
        for g in self.groups:
            if g.caller_name == caller_name:
                return g
        raise KeyError(caller_name)


def optimize_grid(grid: PolicyGrid, candles: CandleSet, windows: Windows,
                  callers: Sequence[str] | np.ndarray, config: OptimizerConfig | None = None, *,
                  taker_fee_bps: float = 30.0, slippage_bps: float = 10.0,
                  scan_index: ScanIndex | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                  per_caller: bool = True, on_progress: Progress | None = None,
                  ) -> OptimizationResult:
    """Evaluate every grid policy pooled and per caller (``callers``: one per input alert)."""
    config = config or OptimizerConfig()
    index = scan_index if scan_index is not None else build_scan_index(candles)
    eligible = windows.eligible_idx
    call_callers = np.asarray(callers, dtype=object)[eligible]
    split = make_split(config.validation, windows.alert_ts_ms[eligible], call_callers)
    groups, skipped = _plan_groups(call_callers, split, config, per_caller)
    n_pol = len(grid)
    for g in groups:
        g.stats = PolicyStats.empty(n_pol, len(g.train_rows))
        if g.validated:
            g.validation_stats = PolicyStats.empty(n_pol, len(g.validation_rows))
    id_keys = id_order_keys(grid.policy_ids)
    best_key: dict[str, tuple] = {}
    policies = grid.policies
    for b0 in range(0, n_pol, batch_size):
        batch = policies[b0:b0 + batch_size]
        trades = simulate_many(batch, candles, windows, taker_fee_bps, slippage_bps, index)
        mats = _matrices(trades)
        at = slice(b0, b0 + len(batch))
        for g in groups:
            g.stats.fill(at, _stats(mats, g.train_rows, len(eligible)))
            if g.validation_stats is not None:
                g.validation_stats.fill(at, _stats(mats, g.validation_rows, len(eligible)))
            _track_best(g, best_key, trades, b0, id_keys, config)
        if on_progress is not None:
            on_progress(b0 + len(batch), n_pol)
    ids = grid.policy_ids
    for g in groups:
        g.score = objective_scores(g.stats, config)
        g.meets_constraints = feasible(g.stats, config)
        g.rank = rank_policies(g.meets_constraints, g.score, ids)
        if g.validation_stats is not None:
            g.validation_score = objective_scores(g.validation_stats, config)
            g.validation_meets_constraints = feasible(g.validation_stats, config)
            g.overfit = overfit_flags(g.score, g.validation_score, config)
    return OptimizationResult(grid, config, eligible, split, groups, skipped)


def _plan_groups(call_callers: np.ndarray, split: Split, config: OptimizerConfig,
                 per_caller: bool) -> tuple[list[GroupResult], list[SkippedGroup]]:
    train, valid = split.train, split.validation
    has_split = config.validation is not None
    # A caller split validates the pooled choice on unseen callers; a kept caller has no
    # out-of-sample calls of its own, so its group is in-sample only.
    callers_split = has_split and config.validation.kind == "caller"
    groups: list[GroupResult] = []
    skipped: list[SkippedGroup] = []
    everyone = np.arange(len(call_callers), dtype=np.int64)
    candidates = [(POOLED, everyone)]
    if per_caller and len(call_callers):
        names, inverse = np.unique(call_callers.astype(str), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(names) + 1))
        candidates += [(str(n), order[bounds[i]:bounds[i + 1]]) for i, n in enumerate(names)]
    for name, rows in candidates:
        tr = rows[train[rows]]
        validated = has_split and (name == POOLED or not callers_split)
        va = rows[valid[rows]] if validated else np.empty(0, dtype=np.int64)
        if name in split.held_out_callers:
            skipped.append(SkippedGroup(name, 0, "held_out"))
        elif len(tr) == 0 and name == POOLED:
            skipped.append(SkippedGroup(name, 0, "no_calls"))
        elif name != POOLED and len(tr) < config.min_calls:
            skipped.append(SkippedGroup(name, len(tr), "min_calls"))
        else:
            groups.append(GroupResult(name, tr, va, PolicyStats.empty(0), None,
                                      validated=validated))
    return groups, skipped


def _matrices(trades: list[Trades]) -> tuple[np.ndarray, ...]:
    return tuple(np.stack([getattr(t, name) for t in trades]) for name in
                 ("realized_return_bps", "stop_out", "max_adverse_excursion_bps",
                  "time_exposed_ms", "tail_capture"))


def _stats(mats: tuple[np.ndarray, ...], rows: np.ndarray, n_calls: int) -> PolicyStats:
    if len(rows) == n_calls:  # every call: no copy
        return group_stats(*mats)
    return group_stats(*(m[:, rows] for m in mats))


def _track_best(g: GroupResult, best_key: dict[str, tuple], trades: list[Trades], b0: int,
                id_keys: np.ndarray, config: OptimizerConfig) -> None:
    """Keep the best policy so far (the ranking order is total, so a running best works)."""
    at = slice(b0, b0 + len(trades))
    sub = _slice_stats(g.stats, at)
    score = objective_scores(sub, config)
    ok = feasible(sub, config)
    neg = np.where(np.isnan(score), np.inf, -score)
    i = int(np.lexsort((id_keys[at], neg, ~ok))[0])
    key = (not bool(ok[i]), float(neg[i]), int(id_keys[b0 + i]))
    current = best_key.get(g.caller_name)
    if current is None or key < current:
        best_key[g.caller_name] = key
        g.best = b0 + i
        g.best_trades = trades[i].take(g.report_rows)


def _slice_stats(stats: PolicyStats, at: slice) -> PolicyStats:
    return PolicyStats(stats.trades_count, *(getattr(stats, n)[at] for n in
                                             ("avg_return_bps", "median_return_bps",
                                              "stop_out_rate", "p95_drawdown_bps",
                                              "median_mae_bps", "avg_time_exposed_ms",
                                              "avg_tail_capture")))


def frontier_columns(result: OptimizationResult, run_id: str | None = None,
                     allowed: Sequence[str] | None = None) -> dict[str, pa.Array]:
    """Frontier columns (SCHEMAS.md), one row per (group, policy), groups in result order.

    The :data:`FRONTIER_VALIDATION_COLUMNS` are included when ``allowed`` (the frontier
    schema's column names) lists them; their values are null without a validation split.
    """
    grid = result.grid
    n_pol = len(grid)
    parts: dict[str, list] = {k: [] for k in (
        "caller_name", "meets_constraints", "objective_score", "avg_return_bps",
        "median_return_bps", "stop_out_rate", "p95_drawdown_bps", "avg_time_exposed_ms",
        "trades_count", "rank", *FRONTIER_VALIDATION_COLUMNS)}
    for g in result.groups:
        s = g.stats
        parts["caller_name"].append(np.full(n_pol, g.caller_name, dtype=object))
        parts["meets_constraints"].append(g.meets_constraints)
        parts["objective_score"].append(g.score)
        for name in ("avg_return_bps", "median_return_bps", "stop_out_rate", "p95_drawdown_bps",
                     "avg_time_exposed_ms"):
            parts[name].append(getattr(s, name))
        parts["trades_count"].append(np.full(n_pol, s.trades_count, dtype=np.int64))
        parts["rank"].append(g.rank)
        v = g.validation_stats
        null_f = np.full(n_pol, np.nan)
        null_b = np.zeros(n_pol, dtype=bool)
        parts["validation_objective_score"].append(g.validation_score if v else null_f)
        parts["validation_median_return_bps"].append(v.median_return_bps if v else null_f)
        parts["validation_meets_constraints"].append(
            g.validation_meets_constraints if v else null_b)
        parts["validation_trades_count"].append(np.full(n_pol, v.trades_count if v else -1))
        parts["overfit"].append(g.overfit if v else null_b)
    n_rows = n_pol * len(result.groups)
    cat = {k: (np.concatenate(v) if v else np.empty(0)) for k, v in parts.items()}
    reps = len(result.groups)
    cols: dict[str, pa.Array] = {}
    if run_id is not None:
        cols["run_id"] = pa.array([run_id] * n_rows, pa.string())
    cols["caller_name"] = pa.array(cat["caller_name"].tolist(), pa.string())
    cols["policy_id"] = pa.array(grid.policy_ids * reps, pa.string())
    cols["policy_params"] = pa.array([e.params for e in grid.entries] * reps, pa.string())
    cols["meets_constraints"] = pa.array(cat["meets_constraints"].astype(bool), pa.bool_())
    for name in ("objective_score", "avg_return_bps", "median_return_bps", "stop_out_rate",
                 "p95_drawdown_bps", "avg_time_exposed_ms"):
        cols[name] = pa.array(cat[name].astype(np.float64), pa.float64())
    cols["trades_count"] = pa.array(cat["trades_count"].astype(np.int64), pa.int64())
    cols["rank"] = pa.array(cat["rank"].astype(np.int64), pa.int64())
    validated = np.concatenate([np.full(n_pol, g.validation_stats is not None, dtype=bool)
                                for g in result.groups]) if result.groups else np.empty(0, bool)
    for name, typ in FRONTIER_VALIDATION_COLUMNS.items():
        if allowed is None or name not in allowed:
            continue
        values = cat[name]
        if typ == pa.float64():
            values = values.astype(np.float64)
        elif typ == pa.int64():
            values = values.astype(np.int64)
        else:
            values = values.astype(bool)
        cols[name] = pa.array(values, typ, mask=~validated)
    return cols
