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

Equivalent policies are evaluated once and reported once. (a) Before simulating, each
policy gets a canonical form: a time stop's hold becomes ``ceil(hold/I)·I`` when every
scanned candle of every eligible window lies a whole number of intervals ``I`` after its
entry (then ``ts - entry_ts >= hold`` ⟺ ``>= ceil(hold/I)·I``), and a hold longer than
the longest window (the largest ``last candle ts - entry ts``) is "no time stop" (it never
fires); policies with equal canonical forms are simulated once. (b) After simulating,
policies whose trades are bit-identical on every eligible alert (a 128-bit blake2b of
exit time, exit price, gross return, MAE, stop-out flag and time exposed; not the exit
reason's name) are merged too. Each group is
reported by its first policy in grid order (:attr:`OptimizationResult.alias_of`); the
others are its ``aliases`` in the frontier. The per-policy arrays of a
:class:`GroupResult` stay indexed like the grid (an alias carries its representative's
numbers), and ranks count representatives only.

The search is evaluate-a-chunk + merge: :func:`evaluate_chunk` simulates some of the
representatives (in batches) and computes every group's per-policy statistics, trade
fingerprints and best candidate; :func:`merge_chunk` writes a chunk into the grid-indexed
results. A local run is one chunk of everything; with an executor the chunks run on its
workers (:mod:`quantbot.backtest.optimize.distributed`) and the result is the same, bit for
bit.

Scores, constraints and ranking: :mod:`quantbot.backtest.optimize.objective`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from quantbot.backtest.data.candle_set import CandleSet
from quantbot.backtest.engine.policies import Combo, TimeStop, parse_policy
from quantbot.backtest.engine.simulate import ScanIndex, Trades, build_scan_index, simulate_many
from quantbot.backtest.engine.windows import Windows
from quantbot.backtest.executors import Executor
from quantbot.backtest.optimize.grid import PolicyGrid
from quantbot.backtest.optimize.objective import (
    OptimizerConfig,
    PolicyStats,
    feasible,
    group_stats,
    objective_scores,
    overfit_flags,
    rank_policies,
)
from quantbot.backtest.optimize.splits import Split, make_split
from quantbot.errors import ObjectiveError

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
    "validation_rank": pa.int64(),
}

#: Further frontier columns for the integrator's schema (written when ``allowed`` lists
#: them): ``aliases`` is a JSON list of the policy_ids reported by this row ("[]" when
#: none); win_rate / profit_factor as in quantbot.backtest.engine.summary (training calls).
FRONTIER_EXTRA_COLUMNS: dict[str, pa.DataType] = {
    "split": pa.string(),
    "aliases": pa.string(),
    "win_rate": pa.float64(),
    "profit_factor": pa.float64(),
    "sharpe": pa.float64(),
    "total_return": pa.float64(),
    "max_drawdown": pa.float64(),
}

Progress = Callable[[int, int], None]  # (policies done, policies total)
#: The portfolio hook: one policy's trades on one group's calls -> its portfolio metric.
PortfolioMetric = Callable[[Trades], tuple[float, float, float]]
"""One policy's trades -> its portfolio's (sharpe, total_return, max_drawdown)."""


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
    validation_rank: np.ndarray | None = None  # competition rank among validation results
    overfit: np.ndarray | None = None
    best: int = -1  # grid index of the rank-1 policy
    best_all: Trades | None = None  # best policy on every eligible call (train + validation)
    best_key: tuple = ()  # (infeasible, -score, grid index) of ``best``, while searching
    validated: bool = False  # has out-of-sample statistics (validation_* fields)

    @property
    def report_rows(self) -> np.ndarray:
        """Calls the best policy is reported on: validation calls if split, else training."""
        return self.validation_rows if self.validated else self.train_rows

    @property
    def best_trades(self) -> Trades | None:
        """The best policy's trades on the reported calls."""
        return None if self.best_all is None else self.best_all.take(self.report_rows)


@dataclass(frozen=True)
class OptimizationResult:
    grid: PolicyGrid
    config: OptimizerConfig
    eligible_idx: np.ndarray  # input alert index of each eligible call
    split: Split
    groups: list[GroupResult]
    skipped: list[SkippedGroup]
    alias_of: np.ndarray  # int64 per grid policy: grid index of the policy reporting it
    #: How the grid was evaluated: executor kind, chunks, policies per chunk, measured ms
    #: per simulated policy (and for a cluster: its address, workers, the probe).
    execution: dict[str, Any] = field(default_factory=dict)

    @property
    def representatives(self) -> np.ndarray:
        """Grid indices of the policies with a frontier row (ascending)."""
        return np.flatnonzero(self.alias_of == np.arange(len(self.alias_of)))

    def aliases(self) -> dict[int, list[str]]:
        """Representative grid index -> policy_ids of its aliases, in grid order."""
        ids = self.grid.policy_ids
        out: dict[int, list[str]] = {int(r): [] for r in self.representatives}
        for i, r in enumerate(self.alias_of):
            if i != r:
                out[int(r)].append(ids[i])
        return out

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
                  interval_ms: int | None = None,
                  portfolio_metric: PortfolioMetric | None = None,
                  executor: Executor | None = None) -> OptimizationResult:
    """Evaluate every grid policy pooled and per caller (``callers``: one per input alert).

    ``interval_ms`` (the run's bar; None: 1m) lets time stops be canonicalised to whole bars
    and turns a time limit written in bars (the default) into ms;
    ``portfolio_metric`` is called once per (simulated policy, group, split) on that
    policy's trades and fills the :class:`PolicyStats` portfolio figures (the ``sharpe``
    objective needs it). ``executor`` (:mod:`quantbot.backtest.executors`; None or local:
    this process) evaluates the grid in chunks on its workers
    (:mod:`quantbot.backtest.optimize.distributed`); the result is the same, bit for bit.
    """
    config = (config or OptimizerConfig()).in_ms(interval_ms)  # a time limit in bars: ms
    if config.objective == "sharpe" and portfolio_metric is None:
        raise ObjectiveError("objective sharpe: optimize_grid needs portfolio_metric "
                             "(a function of one policy's trades)")
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
    policies = grid.policies
    alias_of = canonical_groups(policies, candles, windows, interval_ms)
    todo = np.flatnonzero(alias_of == np.arange(n_pol))
    inputs = SearchInputs(candles, windows, index, tuple(
        (g.train_rows, g.validation_rows if g.validated else None) for g in groups),
        len(eligible), config, taker_fee_bps, slippage_bps, batch_size, portfolio_metric)
    if executor is None or executor.kind == "local":
        def batch_done(done: int, last: int) -> None:
            if on_progress is not None:
                on_progress(last + 1 if done < len(todo) else n_pol, n_pol)

        chunk = evaluate_chunk(inputs, todo, [policies[i] for i in todo], keep_trades=True,
                               on_batch=batch_done)
        merge_chunk(groups, chunk)
        digests = [chunk.digests]
        execution = {"executor": "local", "chunks": 1, "chunk_policies": len(todo),
                     "policy_ms": 1e3 * chunk.seconds / max(len(todo), 1)}
    else:
        from quantbot.backtest.optimize.distributed import evaluate_distributed

        digests, execution = evaluate_distributed(executor, inputs, groups, todo, policies,
                                                  n_pol, on_progress)
        _resimulate_best(groups, inputs, policies)
    alias_of = _merge_identical(alias_of, todo, digests)
    for g in groups:
        _score(g, alias_of, config)
    return OptimizationResult(grid, config, eligible, split, groups, skipped, alias_of,
                              execution)


@dataclass(frozen=True)
class SearchInputs:
    """Everything a chunk of the search needs besides its policies (shipped once to every
    worker): the candles, windows and scan index, each group's (training rows, validation
    rows or None), the number of eligible calls, the config, fees (bps per side), the batch
    size (policies simulated together) and the portfolio hook."""

    candles: CandleSet
    windows: Windows
    scan_index: ScanIndex
    groups: tuple[tuple[np.ndarray, np.ndarray | None], ...]
    n_calls: int
    config: OptimizerConfig
    taker_fee_bps: float
    slippage_bps: float
    batch_size: int
    portfolio_metric: PortfolioMetric | None


@dataclass
class ChunkResult:
    """One chunk's per-policy figures (arrays indexed like ``at``), per group."""

    at: np.ndarray  # grid indices evaluated (ascending)
    stats: list[tuple[PolicyStats, PolicyStats | None]]  # per group: (train, validation)
    best: list[tuple[tuple, Trades | None]]  # per group: best key (see _track_best), trades
    digests: list[bytes]  # per policy of ``at``: its trades' fingerprint (_digest)
    seconds: float  # wall time of the evaluation


def evaluate_chunk(inputs: SearchInputs, at: np.ndarray, policies: Sequence[Any], *,
                   keep_trades: bool = False,
                   on_batch: Callable[[int, int], None] | None = None) -> ChunkResult:
    """Simulate the policies of grid indices ``at`` (``policies``, same order) in batches
    of ``inputs.batch_size`` and compute every group's statistics from the same trades.
    ``keep_trades``: keep each group's best trades (else only its key: less to ship).
    ``on_batch(policies done, grid index of the last one)`` after each batch."""
    t0 = time.perf_counter()
    n, config = len(at), inputs.config
    stats = [(PolicyStats.empty(n, len(tr)), None if va is None else PolicyStats.empty(n, len(va)))
             for tr, va in inputs.groups]
    best: list[tuple[tuple, Trades | None]] = [((), None) for _ in inputs.groups]
    digests: list[bytes] = []
    for b0 in range(0, n, inputs.batch_size):
        pos = slice(b0, min(b0 + inputs.batch_size, n))
        trades = simulate_many(policies[pos], inputs.candles, inputs.windows,
                               inputs.taker_fee_bps, inputs.slippage_bps, inputs.scan_index)
        mats = _matrices(trades)
        for k, (tr, va) in enumerate(inputs.groups):
            train = _stats(mats, tr, inputs.n_calls, config)
            valid = None if va is None else _stats(mats, va, inputs.n_calls, config)
            if inputs.portfolio_metric is not None:
                _fill_metric(train, valid, tr, va, trades, inputs.portfolio_metric)
            stats[k][0].fill(pos, train)
            if valid is not None:
                stats[k][1].fill(pos, valid)
            best[k] = _track_best(best[k], train, trades, at[pos], config, keep_trades)
        digests += [_digest(t) for t in trades]
        if on_batch is not None:
            on_batch(pos.stop, int(at[pos.stop - 1]))
    return ChunkResult(at, stats, best, digests, time.perf_counter() - t0)


def merge_chunk(groups: list[GroupResult], chunk: ChunkResult) -> None:
    """Write a chunk's figures into the groups (any chunk order gives the same result: the
    best policy is the minimum of a total order)."""
    for g, (train, valid), (key, trades) in zip(groups, chunk.stats, chunk.best):
        g.stats.fill(chunk.at, train)
        if valid is not None:
            g.validation_stats.fill(chunk.at, valid)
        if key and (g.best < 0 or key < g.best_key):
            g.best_key, g.best, g.best_all = key, key[2], trades


def _merge_identical(alias_of: np.ndarray, todo: np.ndarray,
                     digests: Sequence[Sequence[bytes]]) -> np.ndarray:
    """Merge simulated policies whose trades are bit-identical (``digests``: per chunk, in
    grid order, the fingerprints of ``todo``): each goes to the first with its digest."""
    first: dict[bytes, int] = {}
    remap = np.arange(len(alias_of))
    for i, d in zip(todo, itertools.chain.from_iterable(digests)):
        remap[i] = first.setdefault(d, int(i))
    return remap[alias_of]


def _resimulate_best(groups: list[GroupResult], inputs: SearchInputs,
                     policies: Sequence[Any]) -> None:
    """Each group's best trades, simulated once per distinct best policy (a chunk ships
    only its best keys; a policy's trades do not depend on the batch it is simulated in)."""
    bests = sorted({g.best for g in groups})
    if not bests:
        return
    trades = dict(zip(bests, simulate_many([policies[i] for i in bests], inputs.candles,
                                           inputs.windows, inputs.taker_fee_bps,
                                           inputs.slippage_bps, inputs.scan_index)))
    for g in groups:
        g.best_all = trades[g.best]


def _score(g: GroupResult, alias_of: np.ndarray, config: OptimizerConfig) -> None:
    """Scores, feasibility, ranks (over representatives) and overfit of one group."""
    reps = np.flatnonzero(alias_of == np.arange(len(alias_of)))
    pos = np.searchsorted(reps, alias_of)  # representative's position, per grid policy
    g.stats.fill(slice(None), g.stats.take(alias_of))
    g.score = objective_scores(g.stats, config, g.stats.sharpe)
    g.meets_constraints = feasible(g.stats, config)
    g.rank = rank_policies(g.meets_constraints[reps], g.score[reps])[pos]
    if g.validation_stats is not None:
        g.validation_stats.fill(slice(None), g.validation_stats.take(alias_of))
        g.validation_score = objective_scores(g.validation_stats, config,
                                              g.validation_stats.sharpe)
        g.validation_meets_constraints = feasible(g.validation_stats, config)
        g.validation_rank = rank_policies(g.validation_meets_constraints[reps],
                                          g.validation_score[reps])[pos]
        rep_flags = overfit_flags(g.score[reps], g.validation_score[reps],
                                  g.validation_rank[reps], config)
        g.overfit = rep_flags[pos]


def _fill_metric(train: PolicyStats, valid: PolicyStats | None, train_rows: np.ndarray,
                 valid_rows: np.ndarray | None, trades: list[Trades],
                 metric: PortfolioMetric) -> None:
    for j, t in enumerate(trades):
        _put_portfolio(train, j, metric(t.take(train_rows)))
        if valid is not None:
            _put_portfolio(valid, j, metric(t.take(valid_rows)))


def _put_portfolio(stats: PolicyStats, j: int, figures: tuple[float, float, float]) -> None:
    stats.sharpe[j], stats.total_return[j], stats.max_drawdown[j] = figures


def _digest(t: Trades) -> bytes:
    """128-bit fingerprint of a policy's trades: everything a statistic or the portfolio
    reads that differs between policies (the rest derives from these and the shared
    windows). Not the exit reason's name: a fixed stop's ``stop_loss`` and a trailing
    stop's ``hard_stop`` at the same fill are the same trade (``stop_out`` is hashed)."""
    h = hashlib.blake2b(digest_size=16)
    for a in (t.exit_ts_ms, t.exit_px, t.gross_return_bps, t.max_adverse_excursion_bps,
              t.stop_out, t.time_exposed_ms):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.digest()


def canonical_groups(policies: Sequence[Any], candles: CandleSet, windows: Windows,
                     interval_ms: int | None = None) -> np.ndarray:
    """Per policy, the grid index of the first policy with the same canonical form (see the
    module docstring): int64, ``i`` for a policy that is its own representative."""
    reach = _longest_window_ms(candles, windows)
    bar = interval_ms if interval_ms and windows_aligned(candles, windows, interval_ms) else None
    first: dict[str, int] = {}
    leaves: dict[int, tuple[Any, str]] = {}
    out = np.empty(len(policies), dtype=np.int64)
    for i, p in enumerate(policies):
        out[i] = first.setdefault(_canonical_key(parse_policy(p), reach, bar, leaves), i)
    return out


def _canonical_key(p: Any, reach_ms: int, bar_ms: int | None,
                   leaves: dict[int, tuple[Any, str]]) -> str:
    """``json.dumps(_canonical(p), sort_keys=True)``, each non-combo policy object dumped
    once (the combos of a grid share their parts' objects; ``leaves`` keeps each object
    it saw alive, so an ``id`` is never reused for another)."""
    if isinstance(p, Combo):
        return ('{"kind": "combo", "policies": ['
                + ", ".join(_canonical_key(s, reach_ms, bar_ms, leaves) for s in p.policies)
                + "]}")
    seen = leaves.get(id(p))
    if seen is None:
        seen = leaves[id(p)] = (p, json.dumps(_canonical(p, reach_ms, bar_ms), sort_keys=True))
    return seen[1]


def _canonical(p: Any, reach_ms: int, bar_ms: int | None) -> Any:
    out = p.model_dump(mode="json")
    if isinstance(p, TimeStop):
        hold = p.max_hold_ms
        if bar_ms is not None:
            hold = math.ceil(hold / bar_ms) * bar_ms
        out["max_hold_ms"] = 0 if hold > reach_ms else hold  # 0: never fires
    return out


def _longest_window_ms(candles: CandleSet, windows: Windows) -> int:
    """max over eligible windows of (last scanned candle ts - entry ts): no hold beyond it
    can fire (0 without eligible windows)."""
    idx = windows.eligible_idx
    if len(idx) == 0:
        return 0
    return int((candles.ts_ms[windows.end[idx] - 1] - windows.anchor_ts_ms[idx]).max())


def windows_aligned(candles: CandleSet, windows: Windows, interval_ms: int) -> bool:
    """True when every scanned candle of every eligible window opens a whole number of
    ``interval_ms`` after its window's entry time (O(candles + windows))."""
    idx = windows.eligible_idx
    if len(idx) == 0:
        return True
    ts = candles.ts_ms
    step = np.diff(ts)
    np.remainder(step, interval_ms, out=step)
    changes = np.zeros(len(ts), dtype=np.int64)
    np.cumsum(step != 0, out=changes[1:])  # residue changes up to each row
    start, last = windows.start[idx], windows.end[idx] - 1
    same_residue = changes[last] == changes[start]
    on_grid = (ts[start] - windows.anchor_ts_ms[idx]) % interval_ms == 0
    return bool((same_residue & on_grid).all())


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


def _stats(mats: tuple[np.ndarray, ...], rows: np.ndarray, n_calls: int,
           config: OptimizerConfig) -> PolicyStats:
    if len(rows) == n_calls:  # every call: no copy
        return group_stats(*mats, trim_fraction=config.trim_fraction)
    return group_stats(*(m[:, rows] for m in mats), trim_fraction=config.trim_fraction)


def _track_best(best: tuple[tuple, Trades | None], sub: PolicyStats, trades: list[Trades],
                at: np.ndarray, config: OptimizerConfig, keep_trades: bool
                ) -> tuple[tuple, Trades | None]:
    """The best policy so far, as ((infeasible, -score, grid index), its trades or None),
    given one batch's statistics ``sub``: the ranking order (feasible, score, grid index)
    is total, so a running best works, and the first of a tie in grid order is always a
    representative (an identical earlier policy would tie and come first)."""
    score = objective_scores(sub, config, sub.sharpe)
    ok = feasible(sub, config)
    neg = np.where(np.isnan(score), np.inf, -score)
    i = int(np.lexsort((at, neg, ~ok))[0])
    key = (not bool(ok[i]), float(neg[i]), int(at[i]))
    if not best[0] or key < best[0]:
        return key, trades[i] if keep_trades else None
    return best


def frontier_columns(result: OptimizationResult, run_id: str | None = None,
                     allowed: Sequence[str] | None = None) -> dict[str, pa.Array]:
    """Frontier columns (SCHEMAS.md), one row per (group, representative policy), groups in
    result order, policies in grid order; aliases are listed in the ``aliases`` column.

    The :data:`FRONTIER_VALIDATION_COLUMNS` and :data:`FRONTIER_EXTRA_COLUMNS` are included
    when ``allowed`` (the frontier schema's column names) lists them; validation values are
    null without a validation split.
    """
    reps = result.representatives
    n_rep, reps_n = len(reps), len(result.groups)
    n_rows = n_rep * reps_n
    ids = result.grid.policy_ids
    aliases = result.aliases()
    parts: dict[str, list[np.ndarray]] = {}

    def add(name: str, values: Any) -> None:
        parts.setdefault(name, []).append(np.asarray(values))

    for g in result.groups:
        s, v = g.stats, g.validation_stats
        add("caller_name", np.full(n_rep, g.caller_name, dtype=object))
        add("meets_constraints", g.meets_constraints[reps])
        add("objective_score", g.score[reps])
        for name in ("avg_return_bps", "median_return_bps", "stop_out_rate", "p95_drawdown_bps",
                     "avg_time_exposed_ms", "win_rate", "profit_factor", "sharpe",
                     "total_return", "max_drawdown"):
            add(name, getattr(s, name)[reps])
        add("trades_count", np.full(n_rep, s.trades_count, dtype=np.int64))
        add("rank", g.rank[reps])
        null_f, null_b, null_i = np.full(n_rep, np.nan), np.zeros(n_rep, bool), np.zeros(n_rep)
        add("validation_objective_score", g.validation_score[reps] if v else null_f)
        add("validation_median_return_bps", v.median_return_bps[reps] if v else null_f)
        add("validation_meets_constraints",
            g.validation_meets_constraints[reps] if v else null_b)
        add("validation_trades_count", np.full(n_rep, v.trades_count if v else 0))
        add("overfit", g.overfit[reps] if v else null_b)
        add("validation_rank", g.validation_rank[reps] if v else null_i)
    cat = {k: np.concatenate(v) for k, v in parts.items()} if result.groups else {}
    cols: dict[str, pa.Array] = {}
    if run_id is not None:
        cols["run_id"] = pa.array([run_id] * n_rows, pa.string())
    cols["caller_name"] = pa.array(cat["caller_name"].tolist() if cat else [], pa.string())
    cols["policy_id"] = pa.array([ids[i] for i in reps] * reps_n, pa.string())
    cols["policy_params"] = pa.array([result.grid.entries[i].params for i in reps] * reps_n,
                                     pa.string())
    typed = {"meets_constraints": pa.bool_(), "objective_score": pa.float64(),
             "avg_return_bps": pa.float64(), "median_return_bps": pa.float64(),
             "stop_out_rate": pa.float64(), "p95_drawdown_bps": pa.float64(),
             "avg_time_exposed_ms": pa.float64(), "trades_count": pa.int64(),
             "rank": pa.int64()}
    for name, typ in typed.items():
        cols[name] = _typed(cat.get(name, np.empty(0)), typ)
    validated = np.concatenate([np.full(n_rep, g.validation_stats is not None)
                                for g in result.groups]) if result.groups else np.empty(0, bool)
    for name, typ in FRONTIER_VALIDATION_COLUMNS.items():
        if allowed is not None and name in allowed:
            cols[name] = _typed(cat.get(name, np.empty(0)), typ, mask=~validated)
    for name, typ in FRONTIER_EXTRA_COLUMNS.items():
        if allowed is None or name not in allowed:
            continue
        if name == "aliases":
            cols[name] = pa.array([json.dumps(aliases[int(i)]) for i in reps] * reps_n, typ)
        elif name == "split":  # which calls the unprefixed figures are about
            cols[name] = pa.array(np.where(validated, "train", "all").tolist(), typ)
        else:
            values = cat.get(name, np.empty(0))
            cols[name] = _typed(values, typ, mask=np.isnan(values.astype(np.float64)))
    return cols


def _typed(values: np.ndarray, typ: pa.DataType, mask: np.ndarray | None = None) -> pa.Array:
    as_np = {pa.float64(): np.float64, pa.int64(): np.int64, pa.bool_(): bool}[typ]
    return pa.array(values.astype(as_np), typ, mask=mask)
