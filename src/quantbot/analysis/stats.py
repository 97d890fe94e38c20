"""Reusable cross-run analysis: the Pareto set of a frontier, regression detection, spread.

Pure functions over tables. Each accepts a pyarrow Table or a pandas DataFrame and returns
the same kind it was given (pandas is never required: with Arrow in, Arrow comes out).
The notebook ``examples/analysis.ipynb`` and ``quantbot backtest report`` use them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

#: Summary metrics where a smaller value is better (all others: larger is better).
LOWER_IS_BETTER: frozenset[str] = frozenset({
    "stop_out_rate", "avg_time_exposed_ms", "median_time_exposed_ms", "calls_excluded"})

Table = Any  # a pyarrow.Table or a pandas.DataFrame


def _to_arrow(table: Table) -> tuple[pa.Table, bool]:
    """(the table as Arrow, whether it came in as pandas)."""
    if isinstance(table, pa.Table):
        return table, False
    if hasattr(table, "to_dict") and hasattr(table, "columns"):  # a pandas DataFrame
        return pa.Table.from_pandas(table, preserve_index=False), True
    raise TypeError(f"expected a pyarrow Table or a pandas DataFrame, got {type(table).__name__}")


def _back(table: pa.Table, as_pandas: bool) -> Table:
    return table.to_pandas() if as_pandas else table


def _floats(table: pa.Table, column: str) -> np.ndarray:
    if column not in table.column_names:
        raise KeyError(f"column {column!r} not in table (columns: {', '.join(table.column_names)})")
    return np.asarray(table.column(column).to_numpy(zero_copy_only=False), dtype=np.float64)


def pareto_mask(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, *,
                minimize_x: bool = True, maximize_y: bool = True) -> np.ndarray:
    """Which points are Pareto-optimal: no other point is at least as good on both axes and
    strictly better on one. By default a small x (e.g. stop-out rate) and a large y (e.g.
    median return, bps) are good. Points with a NaN coordinate are never on the front;
    identical points do not dominate each other (all copies stay). O(n log n).
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.shape != ys.shape:
        raise ValueError(f"x and y differ in length ({xs.size} vs {ys.size})")
    gx = xs if minimize_x else -xs  # now: smaller is better on both axes
    gy = -ys if maximize_y else ys
    mask = np.zeros(xs.size, dtype=bool)
    ok = np.flatnonzero(np.isfinite(gx) & np.isfinite(gy))
    if ok.size == 0:
        return mask
    order = ok[np.lexsort((gy[ok], gx[ok]))]  # by x, then y: best first
    best_y = math.inf  # best y among points with a strictly smaller x
    i = 0
    while i < order.size:
        j = i
        while j < order.size and gx[order[j]] == gx[order[i]]:
            j += 1
        group = order[i:j]
        group_best = gy[group[0]]  # sorted by y within equal x
        if group_best < best_y:
            mask[group[gy[group] == group_best]] = True
            best_y = group_best
        i = j
    return mask


def pareto_front(table: Table, x: str = "stop_out_rate", y: str = "median_return_bps", *,
                 minimize_x: bool = True, maximize_y: bool = True) -> Table:
    """The Pareto-optimal rows of ``table`` (see :func:`pareto_mask`), sorted by ``x``
    ascending (the front read from safest to riskiest when x is a risk)."""
    arrow, as_pandas = _to_arrow(table)
    mask = pareto_mask(_floats(arrow, x), _floats(arrow, y),
                       minimize_x=minimize_x, maximize_y=maximize_y)
    front = arrow.filter(pa.array(mask))
    if front.num_rows:
        order = "ascending" if minimize_x else "descending"
        front = front.sort_by([(x, order), (y, "descending" if maximize_y else "ascending")])
    return _back(front, as_pandas)


def _key_tuples(table: pa.Table, keys: Sequence[str]) -> list[tuple[Any, ...]]:
    cols = [table.column(k).to_pylist() for k in keys]
    return list(zip(*cols)) if cols else [()] * table.num_rows


def detect_regressions(baseline: Table, current: Table, *, on: Sequence[str],
                       tolerances: Mapping[str, float],
                       lower_is_better: Collection[str] = LOWER_IS_BETTER,
                       only_changes: bool = True) -> Table:
    """Metrics that moved beyond a tolerance between a baseline and a current table.

    Rows are matched on the key columns ``on`` (e.g. ``["policy_id", "caller_name"]``); each
    key must be unique within each table. ``tolerances`` maps a metric column to the
    absolute change that is still noise (in the metric's unit: bps, a rate, ms). A change
    of more than the tolerance is ``improved`` or ``regressed`` (direction from
    ``lower_is_better``); within it ``ok``. A metric that turns NaN/null (or back) counts as
    beyond any tolerance (``regressed`` when it is lost). Keys present on one side only
    give one row with status ``missing`` (baseline only) or ``new`` (current only).

    Returns columns: the keys, metric, baseline, current, delta (current − baseline),
    tolerance, status; with ``only_changes`` (default) rows with status ``ok`` are dropped.
    Order: keys as in the baseline (new keys last), metrics in ``tolerances`` order.
    """
    base, as_pandas = _to_arrow(baseline)
    cur, _ = _to_arrow(current)
    for name, t in (("baseline", base), ("current", cur)):
        for col in [*on, *tolerances]:
            if col not in t.column_names:
                raise KeyError(f"{name} table has no column {col!r}")
    base_keys, cur_keys = _key_tuples(base, on), _key_tuples(cur, on)
    for name, keys in (("baseline", base_keys), ("current", cur_keys)):
        if len(set(keys)) != len(keys):
            raise ValueError(f"{name} table: key {list(on)} is not unique")
    base_idx = {k: i for i, k in enumerate(base_keys)}
    cur_idx = {k: i for i, k in enumerate(cur_keys)}
    base_vals = {m: base.column(m).to_pylist() for m in tolerances}
    cur_vals = {m: cur.column(m).to_pylist() for m in tolerances}

    rows: list[dict[str, Any]] = []

    def emit(key: tuple[Any, ...], metric: str | None, b: float | None, c: float | None,
             tol: float | None, status: str) -> None:
        delta = None if b is None or c is None else c - b
        rows.append({**dict(zip(on, key)), "metric": metric, "baseline": b, "current": c,
                     "delta": delta, "tolerance": tol, "status": status})

    for key in [*base_keys, *(k for k in cur_keys if k not in base_idx)]:
        if key not in cur_idx:
            emit(key, None, None, None, None, "missing")
            continue
        if key not in base_idx:
            emit(key, None, None, None, None, "new")
            continue
        for metric, tol in tolerances.items():
            b = _num(base_vals[metric][base_idx[key]])
            c = _num(cur_vals[metric][cur_idx[key]])
            status = _status(metric, b, c, float(tol), lower_is_better)
            if status != "ok" or not only_changes:
                emit(key, metric, b, c, float(tol), status)
    schema = pa.schema([*(base.schema.field(k) for k in on), pa.field("metric", pa.string()),
                        pa.field("baseline", pa.float64()), pa.field("current", pa.float64()),
                        pa.field("delta", pa.float64()), pa.field("tolerance", pa.float64()),
                        pa.field("status", pa.string())])
    return _back(pa.Table.from_pylist(rows, schema=schema), as_pandas)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return None if math.isnan(f) else f


def _status(metric: str, b: float | None, c: float | None, tol: float,
            lower_is_better: Collection[str]) -> str:
    if b is None and c is None:
        return "ok"
    if c is None:
        return "regressed"
    if b is None:
        return "improved"
    delta = c - b
    if abs(delta) <= tol or b == c:  # b == c also covers inf == inf
        return "ok"
    better = delta < 0 if metric in lower_is_better else delta > 0
    return "improved" if better else "regressed"


def metric_spread(table: Table, *, group: str, value: str, across: str = "run_id") -> Table:
    """How consistent a metric is across runs: per ``group`` (e.g. caller_name), over the
    rows of different ``across`` values (e.g. run_id): runs, min, max, mean, spread (max −
    min) and std (population). NaN/null values are ignored. Sorted by spread, largest
    first (ties by group)."""
    arrow, as_pandas = _to_arrow(table)
    groups = arrow.column(group).to_pylist()
    runs = arrow.column(across).to_pylist()
    values = _floats(arrow, value)
    buckets: dict[Any, list[tuple[Any, float]]] = {}
    for g, r, v in zip(groups, runs, values):
        if not math.isnan(v):
            buckets.setdefault(g, []).append((r, v))
    rows = []
    for g, items in buckets.items():
        vs = np.array([v for _, v in items])
        rows.append({group: g, "runs": len({r for r, _ in items}), "min": float(vs.min()),
                     "max": float(vs.max()), "mean": float(vs.mean()),
                     "spread": float(vs.max() - vs.min()), "std": float(vs.std())})
    rows.sort(key=lambda r: (-r["spread"], str(r[group])))
    schema = pa.schema([arrow.schema.field(group), pa.field("runs", pa.int64()),
                        *(pa.field(n, pa.float64()) for n in ("min", "max", "mean", "spread",
                                                               "std"))])
    return _back(pa.Table.from_pylist(rows, schema=schema), as_pandas)


__all__ = ["LOWER_IS_BETTER", "detect_regressions", "metric_spread", "pareto_front",
           "pareto_mask"]
