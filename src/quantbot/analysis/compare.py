"""Comparing two runs: "what did my change do?"

:func:`compare_runs` puts two runs side by side: the parameters that differ, the summary
metrics of each, and the calls whose outcome changed. Trades are compared when both runs
have trades (policy, optimization, full runs), paths when both have paths (path-only, full
runs); a full run against a full run compares both.

A trade changed when its exit reason differs or its realized_return_bps differs by more
than the tolerance; a path changed when hit_2x/hit_3x/hit_4x differ or peak_multiple moved
by more than the tolerance (relative, in bps of the baseline multiple). Calls present in
one run only are ``added`` (only in B) or ``removed`` (only in A). Trades are matched on
call_id when each run holds at most one policy, else on (policy_id, call_id).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from quantbot._compat import legacy_arguments
from quantbot.artifacts.catalog.connection import CatalogRef
from quantbot.artifacts.ops.lookup import locate_run, run_uri
from quantbot.artifacts.schema.arrow_schemas import STANDARD_LEVELS, level_column_suffix
from quantbot.artifacts.store.backends import Storage
from quantbot.errors import IncomparableRunsError, InvalidArgumentError

#: Artifacts whose rows are per-call outcomes that two runs can share, in comparison order.
COMPARABLE = ("trades", "paths")
#: Columns of the summary artifact shown side by side.
SUMMARY_METRICS = ("trades_count", "calls_processed", "calls_excluded", "avg_return_bps",
                   "median_return_bps", "p25_return_bps", "p75_return_bps", "p90_return_bps",
                   "stop_out_rate", "avg_max_adverse_excursion_bps", "avg_time_exposed_ms",
                   "avg_tail_capture")


@dataclass(frozen=True)
class RunInfo:
    """The identity of one side of a comparison."""

    run_id: str
    run_type: str
    status: str
    created_at: str
    git_branch: str | None
    git_commit: str | None
    run_dir: str
    calls: int
    artifacts: list[str]


@dataclass(frozen=True)
class ParamDiff:
    """A parameter (dotted path into ``parameters``) whose value differs; None = absent."""

    key: str
    a: Any
    b: Any


@dataclass(frozen=True)
class SummaryPair:
    """The summary metrics of both runs for one group (caller_name: None for the pooled row of
    policy and path-only runs, ``*`` = pooled in optimization runs; there the validation row
    when the run has a split). ``a``/``b`` are None when a run lacks the group."""

    group: str | None
    policy_a: str | None
    policy_b: str | None
    a: dict[str, float | None] | None
    b: dict[str, float | None] | None


@dataclass(frozen=True)
class CallChange:
    """One call whose outcome differs. ``change``: changed, added (only in B), removed
    (only in A). ``a``/``b``: the outcome fields of each run (None where the call is
    absent); ``differs``: the fields that changed; ``delta_bps``: B − A of the realized
    return (trades) or of the peak multiple relative to A (paths)."""

    artifact: str
    call_id: str
    policy_id: str | None
    caller_name: str | None
    change: str
    differs: list[str]
    a: dict[str, Any] | None
    b: dict[str, Any] | None
    delta_bps: float | None = None


@dataclass(frozen=True)
class ArtifactComparison:
    """The per-call comparison of one artifact type."""

    artifact: str
    key: list[str]
    rows_a: int
    rows_b: int
    changed: int
    added: int
    removed: int
    unchanged: int
    changes: list[CallChange] = field(default_factory=list)


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare_runs`."""

    run_a: RunInfo
    run_b: RunInfo
    tolerance_bps: float
    param_diff: list[ParamDiff]
    summary: list[SummaryPair]
    artifacts: list[ArtifactComparison]

    @property
    def identical(self) -> bool:
        """No call changed, none added or removed (parameters may still differ)."""
        return all(a.changed == a.added == a.removed == 0 for a in self.artifacts)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["identical"] = self.identical
        return out


@legacy_arguments()
def compare_runs(run_a: str, run_b: str, *, catalog: CatalogRef | None = None,
                 base_dir: str | os.PathLike[str] | Storage = "runs",
                 tolerance_bps: float = 1.0) -> Comparison:
    """Compare run B against run A (A is the baseline); each a UUID or an unambiguous
    prefix, found through ``catalog`` first, else under ``base_dir``.

    Raises IncomparableRunsError when the runs share neither trades nor paths, and
    RunNotFoundError / ManifestError for a run that cannot be found or read.
    """
    from quantbot.artifacts.store.reader import read_artifact
    from quantbot.artifacts.store.runs import read_manifest

    if not (tolerance_bps >= 0 and math.isfinite(tolerance_bps)):
        raise InvalidArgumentError(
            f"tolerance_bps must be a finite number >= 0 (got {tolerance_bps})")
    dir_a = locate_run(run_a, catalog=catalog, base_dir=base_dir)
    dir_b = locate_run(run_b, catalog=catalog, base_dir=base_dir)
    man_a, man_b = read_manifest(dir_a), read_manifest(dir_b)
    shared = [t for t in COMPARABLE if t in man_a.artifacts and t in man_b.artifacts]
    if not shared:
        raise IncomparableRunsError(
            f"runs {man_a.run_id} ({man_a.run_type}: {_have(man_a)}) and {man_b.run_id} "
            f"({man_b.run_type}: {_have(man_b)}) share no comparable artifact (trades or paths)")
    callers = {**_callers(dir_a, man_a), **_callers(dir_b, man_b)}
    comparisons = []
    for kind in shared:
        ta, tb = read_artifact(dir_a, kind), read_artifact(dir_b, kind)
        compare = _compare_trades if kind == "trades" else _compare_paths
        comparisons.append(compare(ta, tb, tolerance_bps, callers))
    summary = _summary_pairs(dir_a, man_a, dir_b, man_b)
    return Comparison(run_a=_info(man_a, dir_a), run_b=_info(man_b, dir_b),
                      tolerance_bps=float(tolerance_bps),
                      param_diff=diff_parameters(man_a.to_dict()["parameters"],
                                                  man_b.to_dict()["parameters"]),
                      summary=summary, artifacts=comparisons)


def _have(manifest: Any) -> str:
    return ", ".join(sorted(manifest.artifacts)) or "no artifacts"


def _info(manifest: Any, run_dir: Storage) -> RunInfo:
    return RunInfo(run_id=manifest.run_id, run_type=manifest.run_type, status=manifest.status,
                   created_at=str(manifest.created_at), git_branch=manifest.git_branch,
                   git_commit=manifest.git_commit, run_dir=run_uri(run_dir),
                   calls=manifest.dataset.calls_count, artifacts=sorted(manifest.artifacts))


def _callers(run_dir: Storage, manifest: Any) -> dict[str, str]:
    """call_id -> caller_name from the run's alerts (empty when it has none)."""
    from quantbot.artifacts.store.reader import read_artifact

    if "alerts" not in manifest.artifacts:
        return {}
    alerts = read_artifact(run_dir, "alerts").select(["call_id", "caller_name"])
    return dict(zip(alerts.column("call_id").to_pylist(), alerts.column("caller_name").to_pylist()))


def flatten_parameters(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested parameters as {dotted.key: leaf}; an empty dict is a leaf (shown as {})."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten_parameters(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def diff_parameters(a: dict[str, Any], b: dict[str, Any]) -> list[ParamDiff]:
    """Parameters (flattened to dotted keys) whose values differ, sorted by key.
    ``config_hash`` is left out: it differs whenever anything else does."""
    fa, fb = flatten_parameters(a), flatten_parameters(b)
    keys = sorted((set(fa) | set(fb)) - {"config_hash"})
    return [ParamDiff(k, fa.get(k), fb.get(k)) for k in keys if fa.get(k) != fb.get(k)]


def _summary_pairs(dir_a: Storage, man_a: Any, dir_b: Storage, man_b: Any) -> list[SummaryPair]:
    """Summary rows paired by caller_name (policy runs: the single null-caller row); runs
    without a summary get metrics computed from their paths."""
    sides = [summary_by_group(d, m) for d, m in ((dir_a, man_a), (dir_b, man_b))]
    groups = list(dict.fromkeys([*sides[0], *sides[1]]))
    groups.sort(key=lambda g: (g not in (None, "*"), g is not None, g or ""))
    pairs = []
    for g in groups:
        ra, rb = sides[0].get(g), sides[1].get(g)
        pairs.append(SummaryPair(g, ra[0] if ra else None, rb[0] if rb else None,
                                 ra[1] if ra else None, rb[1] if rb else None))
    return pairs


def summary_by_group(run_dir: Storage, manifest: Any
                     ) -> dict[str | None, tuple[str | None, dict[str, float | None]]]:
    """{caller_name: (policy_id, SUMMARY_METRICS)} of a run's summary (the validation row
    where the run has a split: out-of-sample wins); runs without a summary get one pooled
    group (None) computed from their paths by :func:`path_metrics`; {} when neither."""
    from quantbot.artifacts.store.reader import read_artifact as read

    if "summary" in manifest.artifacts:
        table = read(run_dir, "summary")
        out: dict[str | None, tuple[str | None, dict[str, float | None]]] = {}
        for row in table.to_pylist():
            metrics = {m: _clean(row.get(m)) for m in SUMMARY_METRICS if m in row}
            if row["caller_name"] not in out or row.get("split") == "validation":
                out[row["caller_name"]] = (row["policy_id"], metrics)  # out-of-sample wins
        return out
    if "paths" in manifest.artifacts:
        return {None: (None, path_metrics(read(run_dir, "paths")))}
    return {}


def path_metrics(paths: pa.Table, levels: Sequence[float] = STANDARD_LEVELS
                 ) -> dict[str, float | None]:
    """Headline numbers of a truth layer: calls, the hit rate of each of the run's
    ``levels`` (share of eligible calls; ``hit_<m>x_rate``), median peak multiple, median
    drawdown (bps)."""
    n = paths.num_rows
    out: dict[str, float | None] = {"calls": n}
    for level in levels:
        col = f"hit_{level_column_suffix(level)}x"
        if col not in paths.column_names:
            continue  # a level the run did not compute
        hits = np.asarray(paths.column(col).to_numpy(zero_copy_only=False), dtype=bool)
        out[f"{col}_rate"] = float(hits.mean()) if n else None
    for col, name in (("peak_multiple", "median_peak_multiple"), ("dd_bps", "median_dd_bps")):
        vals = np.asarray(paths.column(col).to_numpy(zero_copy_only=False), dtype=np.float64)
        out[name] = float(np.nanmedian(vals)) if n and np.isfinite(vals).any() else None
    return out


def path_metrics_by_caller(paths: pa.Table, levels: Sequence[float] = STANDARD_LEVELS
                           ) -> list[dict[str, Any]]:
    """:func:`path_metrics` per caller_name, the pooled row (caller ``None``) first."""
    callers = paths.column("caller_name").to_pylist()
    out = [{"caller_name": None, **path_metrics(paths, levels)}]
    for name in sorted({c for c in callers if c is not None}):
        part = paths.filter(pa.array([c == name for c in callers]))
        out.append({"caller_name": name, **path_metrics(part, levels)})
    return out


def _clean(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _index(table: pa.Table, key: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r[k] for k in key): r for r in table.to_pylist()}


def _same_float(a: Any, b: Any, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= tol


def _walk(ta: pa.Table, tb: pa.Table, key: list[str], artifact: str, outcome: list[str],
          diff: Any, callers: dict[str, str]) -> ArtifactComparison:
    ia, ib = _index(ta, key), _index(tb, key)
    changes: list[CallChange] = []
    unchanged = 0
    for k in sorted(set(ia) | set(ib), key=lambda k: tuple(str(x) for x in k)):
        ra, rb = ia.get(k), ib.get(k)
        row = ra or rb
        assert row is not None
        policy = row.get("policy_id") if "policy_id" in key else None
        va = {c: _clean(ra[c]) for c in outcome} if ra is not None else None
        vb = {c: _clean(rb[c]) for c in outcome} if rb is not None else None
        if ra is None or rb is None:
            changes.append(CallChange(artifact, row["call_id"], policy,
                                      callers.get(row["call_id"]),
                                      "added" if ra is None else "removed", [], va, vb))
            continue
        differs, delta = diff(ra, rb)
        if differs:
            changes.append(CallChange(artifact, row["call_id"], policy,
                                      callers.get(row["call_id"]), "changed", differs, va, vb,
                                      delta))
        else:
            unchanged += 1
    counts = {c: sum(ch.change == c for ch in changes) for c in ("changed", "added", "removed")}
    return ArtifactComparison(artifact, key, ta.num_rows, tb.num_rows, counts["changed"],
                              counts["added"], counts["removed"], unchanged, changes)


def _compare_trades(ta: pa.Table, tb: pa.Table, tol: float,
                    callers: dict[str, str]) -> ArtifactComparison:
    single = all(len(set(t.column("policy_id").to_pylist())) <= 1 for t in (ta, tb))
    key = ["call_id"] if single else ["policy_id", "call_id"]

    def diff(ra: dict[str, Any], rb: dict[str, Any]) -> tuple[list[str], float | None]:
        differs = []
        ret_a, ret_b = ra["realized_return_bps"], rb["realized_return_bps"]
        if ra["exit_reason"] != rb["exit_reason"]:
            differs.append("exit_reason")
        if not _same_float(ret_a, ret_b, tol):
            differs.append("realized_return_bps")
        delta = ret_b - ret_a if ret_a is not None and ret_b is not None else None
        return differs, (_clean(delta) if differs else None)

    outcome = ["policy_id", "exit_reason", "realized_return_bps", "exit_ts_ms", "stop_out"]
    return _walk(ta, tb, key, "trades", outcome, diff, callers)


def _compare_paths(ta: pa.Table, tb: pa.Table, tol: float,
                   callers: dict[str, str]) -> ArtifactComparison:
    def diff(ra: dict[str, Any], rb: dict[str, Any]) -> tuple[list[str], float | None]:
        differs = [col for col in ("hit_2x", "hit_3x", "hit_4x") if ra[col] != rb[col]]
        pa_, pb = ra["peak_multiple"], rb["peak_multiple"]
        delta = None
        if not _same_float(pa_, pb, 0.0):
            finite = all(v is not None and math.isfinite(v) for v in (pa_, pb))
            if finite and pa_ > 0:
                delta = (pb / pa_ - 1.0) * 1e4  # bps of the baseline multiple
            if delta is None or abs(delta) > tol:
                differs.append("peak_multiple")
        return differs, (delta if differs else None)

    outcome = ["hit_2x", "hit_3x", "hit_4x", "peak_multiple"]
    return _walk(ta, tb, ["call_id"], "paths", outcome, diff, callers)


__all__ = ["ArtifactComparison", "CallChange", "Comparison", "IncomparableRunsError",
           "ParamDiff", "RunInfo", "SummaryPair", "compare_runs", "diff_parameters",
           "flatten_parameters", "path_metrics", "path_metrics_by_caller",
           "summary_by_group"]
