"""One run as a self-contained HTML page: manifest, parameters, summaries, exclusions,
the frontier's top policies and plots embedded as base64 PNG.

The page has no external CSS, JS or images: it opens from disk in any browser and can be
mailed around. Every text value is escaped. Plots are rendered to PNG with matplotlib
(imported lazily, so the rest of quantbot starts without it); the ``plot_*`` helpers are
public so the notebook draws the same pictures.

Just over 400 lines: one page and the plots drawn on it change together; the plotting
helpers are too small to be worth a module of their own.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from quantbot._compat import legacy_arguments
from quantbot.analysis.stats import pareto_mask
from quantbot.artifacts.catalog.connection import CatalogRef
from quantbot.artifacts.ops.lookup import run_uri
from quantbot.artifacts.schema.arrow_schemas import STANDARD_LEVELS, level_column_suffix
from quantbot.artifacts.store.backends import Storage, open_storage
from quantbot.errors import ReportError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SUMMARY_COLUMNS = ("caller_name", "split", "policy_id", "trades_count", "calls_excluded",
                   "avg_return_bps", "median_return_bps", "p25_return_bps", "p75_return_bps",
                   "win_rate", "profit_factor", "stop_out_rate",
                   "avg_max_adverse_excursion_bps", "avg_time_exposed_ms", "avg_tail_capture",
                   "total_return", "max_drawdown", "sharpe")
FRONTIER_COLUMNS = ("rank", "policy_id", "split", "meets_constraints", "objective_score",
                    "median_return_bps", "avg_return_bps", "win_rate", "stop_out_rate",
                    "p95_drawdown_bps", "sharpe", "trades_count", "validation_rank",
                    "validation_objective_score", "validation_median_return_bps", "overfit",
                    "aliases")


# ---------------------------------------------------------------- plots (also for notebooks)
# The plot_* functions draw into a matplotlib Axes the caller owns (a notebook's
# plt.subplots()); the report draws into bare Figure objects, which need no pyplot and no
# display backend (savefig renders PNG with Agg).

def _column(table: Any, name: str) -> np.ndarray:
    if isinstance(table, pa.Table):
        return np.asarray(table.column(name).to_numpy(zero_copy_only=False))
    return np.asarray(table[name].to_numpy())


def plot_frontier(ax: Axes, frontier: Any, *,
                  title: str = "Frontier: median return vs stop-out rate") -> None:
    """Scatter of median_return_bps against stop_out_rate, one point per policy of a
    frontier (pass one caller group's rows); feasible policies filled, infeasible hollow,
    the Pareto front (low stop-out, high return) as a connected red line."""
    x = _column(frontier, "stop_out_rate").astype(float)
    y = _column(frontier, "median_return_bps").astype(float)
    feasible = _column(frontier, "meets_constraints").astype(bool)
    front = pareto_mask(x, y)
    ax.scatter(x[feasible], y[feasible], s=22, color="#4C72B0", label="meets constraints")
    ax.scatter(x[~feasible], y[~feasible], s=22, facecolors="none", edgecolors="#8C8C8C",
               label="infeasible")
    order = np.argsort(x[front], kind="stable")
    ax.plot(x[front][order], y[front][order], "-o", color="#C44E52", ms=6, lw=1.5,
            label=f"Pareto front ({int(front.sum())})")
    ax.axhline(0, color="#333333", lw=0.6)
    ax.set_xlabel("stop-out rate")
    ax.set_ylabel("median return (bps)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)


def plot_returns(ax: Axes, trades: Any, *, max_policies: int = 6,
                 title: str = "Realized return per trade") -> None:
    """Histogram of realized_return_bps per policy_id (the ``max_policies`` policies with
    the most trades). The x axis is clipped to the 2.5th-97.5th percentile of all returns so
    that a few 50x trades do not squash the picture; clipped trades fall in the edge bins."""
    returns = _column(trades, "realized_return_bps").astype(float)
    policies = _column(trades, "policy_id").astype(str)
    finite = np.isfinite(returns)
    if not finite.any():
        ax.text(0.5, 0.5, "no trades", ha="center", va="center", transform=ax.transAxes)
    else:
        lo, hi = np.percentile(returns[finite], [2.5, 97.5])
        if hi <= lo:
            lo, hi = lo - 1.0, hi + 1.0
        bins = np.linspace(lo, hi, 41)
        top = [p for p, _ in Counter(policies[finite]).most_common(max_policies)]
        for p in top:
            vals = np.clip(returns[finite & (policies == p)], lo, hi)
            ax.hist(vals, bins=bins, histtype="step", lw=1.6, label=f"{p} ({vals.size})")
        ax.axvline(0, color="#333333", lw=0.6)
        ax.legend(loc="best", fontsize=7)
    ax.set_xlabel("realized return (bps; tails beyond the 2.5/97.5th percentile in the edge bins)")
    ax.set_ylabel("trades")
    ax.set_title(title)
    ax.grid(alpha=0.3)


SPLIT_COLOURS = {"all": "#4C72B0", "train": "#4C72B0", "validation": "#DD8452"}


def plot_equity(ax: Axes, equity: Any, *, column: str = "equity",
                title: str = "Portfolio equity (realised)") -> None:
    """The pooled portfolio's ``column`` (equity or drawdown) over time, one line per split:
    train and validation each in its own colour over a shaded span of its own time range."""
    callers = _column(equity, "caller_name")
    pooled = np.asarray([c is None for c in callers], dtype=bool)
    splits = _column(equity, "split").astype(str)
    ts = _column(equity, "ts_ms").astype(np.int64)
    values = _column(equity, column).astype(float)
    if not pooled.any():
        ax.text(0.5, 0.5, "no trades taken", ha="center", va="center", transform=ax.transAxes)
    for split in ("all", "train", "validation"):
        sel = pooled & (splits == split)
        if not sel.any():
            continue
        when = ts[sel].astype("datetime64[ms]")
        colour = SPLIT_COLOURS[split]
        ax.step(when, values[sel], where="post", color=colour, lw=1.4, label=split)
        if split != "all":
            ax.axvspan(when.min(), when.max(), color=colour, alpha=0.08)
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # no overlapping dates
    ax.set_ylabel(column if column == "equity" else "drawdown (fraction of the peak)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if pooled.any():
        ax.legend(loc="best", fontsize=8)


def setup_text(parameters: dict[str, Any]) -> str | None:
    """What a run's numbers depend on, in one line: bars, horizon, entry, fees (no fee
    default suits every market, so every report says which were used), levels and the
    entry-delay limit (by default derived from the data, so worth seeing)."""
    if not parameters:
        return None
    parts = [f"{parameters.get('interval', '?')} bars",
             f"horizon {parameters.get('horizon', '?')}",
             f"entry {parameters.get('entry', 'close')}"]
    if "taker_fee_bps" in parameters:
        parts.append(f"fees {parameters['taker_fee_bps']:g} + slippage "
                     f"{parameters.get('slippage_bps', 0):g} bps per side")
    levels = parameters.get("levels") or STANDARD_LEVELS
    parts.append("levels " + ", ".join(f"{v:g}x" for v in levels))
    if parameters.get("max_entry_delay"):  # runs before 1.2.0 did not record it
        parts.append(f"max entry delay {parameters['max_entry_delay']}")
    return ", ".join(parts)


def plot_peaks(ax: Axes, paths: Any, *, levels: Sequence[float] = STANDARD_LEVELS,
               title: str = "Peak multiple within the horizon") -> None:
    """Histogram of peak_multiple (log x axis) with the run's levels dashed."""
    peaks = _column(paths, "peak_multiple").astype(float)
    peaks = peaks[np.isfinite(peaks) & (peaks > 0)]
    if peaks.size:
        bins = np.geomspace(max(peaks.min(), 0.1), max(peaks.max(), 1.01), 41)
        ax.hist(peaks, bins=bins, color="#4C72B0", alpha=0.8)
        ax.set_xscale("log")
        for level in levels:
            ax.axvline(level, color="#C44E52", lw=1, ls="--")
        ticks = [t for t in (0.5, 1, 2, 3, 4, 5, 10, 20, 50, 100) if bins[0] <= t <= bins[-1]]
        ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
        ax.minorticks_off()
    shown = ", ".join(f"{level:g}x" for level in levels)
    ax.set_xlabel(f"peak multiple (in the trade's favour, log scale; dashed: {shown})")
    ax.set_ylabel("calls")
    ax.set_title(title)
    ax.grid(alpha=0.3)


def render_png(draw: Callable[[Axes], None], *, size: tuple[float, float] = (7.5, 4.4)
               ) -> str:
    """Draw with ``draw(ax)`` on a new figure; return it as a ``data:image/png;base64,``
    URI. Uses a bare matplotlib Figure: no pyplot state, no display backend."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - matplotlib is a dependency
        raise ReportError(f"plots need matplotlib ({err}); pip install matplotlib") from None
    fig = Figure(figsize=size, dpi=100)
    draw(fig.subplots())
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# ---------------------------------------------------------------- HTML

def format_cell(value: Any, column: str = "") -> str:
    """A value as people read it, by its column's unit: rates and fractions as %, ``_ms``
    durations in hours, large numbers with thousands separators, None as "–"."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if column.endswith(("rate", "total_return", "annualised_return", "max_drawdown",
                            "exposure_time")):  # fractions shown as percentages
            return f"{value * 100:.1f}\u00a0%"
        if column.endswith("_ms") and not column.endswith("ts_ms"):
            return f"{value / 3_600_000:,.2f} h"
        if abs(value) >= 100:
            return f"{value:,.1f}"
        if abs(value) >= 1:
            return f"{value:,.2f}"
        return f"{value:.4g}"
    return str(value)


def aliases_text(aliases_json: str | None, shown: int = 1) -> str | None:
    """A frontier row's ``aliases`` (a JSON list of policy_ids) for a table cell: the first
    ``shown`` and how many more (a default-grid class on daily bars has dozens; the full
    list is in the frontier artifact). None when there are none."""
    ids = json.loads(aliases_json) if aliases_json else []
    if not ids:
        return None
    more = len(ids) - shown
    return ", ".join(ids[:shown]) + (f" and {more} more" if more > 0 else "")


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
           css: str = "") -> str:
    if not rows:
        return "<p class='muted'>(no rows)</p>"
    cols = list(columns or rows[0])
    head = "".join(f"<th>{html.escape(c).replace('_', '_<wbr>')}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            num = isinstance(v, int | float) and not isinstance(v, bool)
            text = html.escape(format_cell(v, c))
            cells.append(f"<td{' class=num' if num else ''}>{text}</td>")
        body.append(f"<tr{' class=hl' if r.get('_hl') else ''}>{''.join(cells)}</tr>")
    return (f"<div class='wide'><table class='{css}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _kv(pairs: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(format_cell(v))}</td></tr>"
                   for k, v in pairs)
    return f"<table class='kv'>{rows}</table>"


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list):
        return [(prefix, json.dumps(value, separators=(",", ":")))]
    return [(prefix, value)]


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1100px;color:#222;line-height:1.4;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;
border-bottom:1px solid #ddd;padding-bottom:4px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;
background:#e8eef7;color:#24466e;margin-right:6px}.badge.failed{background:#f7e1e1;color:#8a1f1f}
.badge.completed{background:#e3f3e6;color:#1e5e2c}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0}
th,td{border:1px solid #e2e2e2;padding:3px 8px;text-align:left;vertical-align:top}
thead th{background:#f4f6f8;font-size:11.5px}.wide{overflow-x:auto}td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
table.kv th{background:#f8f8f8;font-weight:600;white-space:nowrap}
table.kv td{word-break:break-all;max-width:820px}
tr.hl td{background:#fff6e0}.muted{color:#777}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{border:1px solid #e2e2e2;border-radius:6px;padding:8px 14px;min-width:120px;
overflow-wrap:anywhere;max-width:100%;box-sizing:border-box}
.card .v{font-size:20px;font-weight:600}.card .k{font-size:12px;color:#666}
img{max-width:100%;border:1px solid #eee;margin:6px 0}
footer{margin-top:30px;font-size:11px;color:#888}
"""


def _cards(pairs: Sequence[tuple[str, Any]]) -> str:
    return "<div class='cards'>" + "".join(
        f"<div class='card'><div class='v'>{html.escape(format_cell(v, k))}</div>"
        f"<div class='k'>{html.escape(k)}</div></div>" for k, v in pairs) + "</div>"


def error_counts(errors: pa.Table) -> list[dict[str, Any]]:
    """Rows by level, phase and reason (coverage exclusions: the reason; others: blank)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for level, phase, msg in zip(errors.column("level").to_pylist(),
                                 errors.column("phase").to_pylist(),
                                 errors.column("message").to_pylist()):
        counts[(level, phase, msg if phase == "coverage" else "")] += 1
    return [{"level": k[0], "phase": k[1], "reason": k[2], "rows": n}
            for k, n in sorted(counts.items())]


def render_report(run_dir: str | os.PathLike[str] | Storage, *, top_n: int = 15) -> str:
    """The HTML page of the run in ``run_dir`` (see the module docstring)."""
    from quantbot import __version__
    from quantbot.analysis.compare import path_metrics
    from quantbot.artifacts.store.reader import read_artifact
    from quantbot.artifacts.store.runs import read_manifest

    manifest = read_manifest(run_dir)
    m = manifest.to_dict()
    arts = {name: read_artifact(run_dir, name) for name in manifest.artifacts
            if name in ("paths", "trades", "summary", "frontier", "errors", "equity")}
    esc = html.escape
    parts: list[str] = []
    status_cls = m["status"] if m["status"] in ("completed", "failed") else ""
    parts.append(f"<h1>Run {esc(m['run_id'])}</h1><div><span class='badge'>"
                 f"{esc(m['run_type'])}</span><span class='badge {status_cls}'>"
                 f"{esc(m['status'])}</span></div>")

    headline: list[tuple[str, Any]] = []
    pooled = None
    if "summary" in arts and arts["summary"].num_rows:
        rows = arts["summary"].to_pylist()
        pooled = headline_row(rows)
        split = pooled.get("split") or "reported"
        label = "policy" if m["run_type"] == "policy" else "best policy (pooled)"
        headline += [(label, pooled["policy_id"]), ("split of these figures", split),
                     ("trades", pooled["trades_count"]),
                     ("avg_return_bps", pooled["avg_return_bps"]),
                     ("median_return_bps", pooled["median_return_bps"]),
                     ("win_rate", pooled.get("win_rate")),
                     ("stop_out_rate", pooled["stop_out_rate"]),
                     ("portfolio total_return", pooled.get("total_return")),
                     ("portfolio max_drawdown", pooled.get("max_drawdown"))]
    if headline:
        parts.append(_cards(headline))
    levels = (m.get("parameters") or {}).get("levels") or STANDARD_LEVELS
    if "paths" in arts:  # the truth layer covers every eligible call, whatever the split
        pm = path_metrics(arts["paths"], levels)
        truth: list[tuple[str, Any]] = [("split of these figures", "all")] if headline else []
        truth += [("eligible calls", int(pm["calls"] or 0))]
        truth += [(f"{level:g}x hit rate", pm[f"hit_{level_column_suffix(level)}x_rate"])
                  for level in levels if f"hit_{level_column_suffix(level)}x_rate" in pm]
        truth += [("median peak multiple", pm["median_peak_multiple"])]
        parts.append(_cards(truth))

    ds = m.get("dataset", {})
    git = None
    if m.get("git_commit"):
        git = (f"{m.get('git_branch') or '(detached)'} @ {m['git_commit'][:12]}"
               f"{' (dirty)' if m.get('git_dirty') else ''}")
    timing = m.get("timing") or {}
    overview = [("run_type", m["run_type"]), ("status", m["status"]),
                ("created_at", m.get("created_at")), ("completed_at", m.get("completed_at")),
                ("git", git), ("dataset", f"{ds.get('from') or '?'} .. {ds.get('to') or '?'}"),
                ("interval", ds.get("interval")), ("calls", ds.get("calls_count")),
                ("setup", setup_text(m.get("parameters") or {})),
                ("total time", f"{timing['total_ms'] / 1000:.2f} s"
                 if timing.get("total_ms") is not None else None),
                ("phases", ", ".join(f"{k.removesuffix('_ms')} {v:.0f} ms"
                                     for k, v in timing.items() if k != "total_ms") or None),
                ("quantbot", (m.get("host") or {}).get("quantbot")),
                ("run folder", run_uri(open_storage(run_dir)))]
    parts.append("<h2>Overview</h2>" + _kv(overview))
    if m.get("error"):
        err = m["error"]
        parts.append(f"<h2>Error</h2><p><b>{esc(err.get('type', ''))}</b>: "
                     f"{esc(err.get('message', ''))}</p>")

    if "summary" in arts:
        rows = arts["summary"].to_pylist()
        cols = [c for c in SUMMARY_COLUMNS if c in arts["summary"].column_names]
        for r in rows:
            r["_hl"] = r is pooled and len(rows) > 1
        parts.append(f"<h2>Summary ({len(rows)} row{'s' if len(rows) != 1 else ''})</h2>"
                     + _table(rows, cols))
    if "paths" in arts:
        pm = path_metrics(arts["paths"], levels)
        parts.append("<h2>Truth layer (paths)</h2>" + _table([pm]))

    plots: list[tuple[str, str]] = []
    if "frontier" in arts and arts["frontier"].num_rows:
        parts.append(_frontier_section(arts["frontier"], top_n))
        group = frontier_group(arts["frontier"])
        label = _group_label(group)
        plots.append(("Frontier", render_png(lambda ax: plot_frontier(
            ax, group, title=f"Frontier ({label}): median return vs stop-out rate"))))
    if "equity" in arts and arts["equity"].num_rows:
        whose = "Portfolio" if m["run_type"] == "policy" else "Best policy's portfolio"
        plots.append(("Equity", render_png(lambda ax: plot_equity(
            ax, arts["equity"], title=f"{whose} equity (realised)"))))
        plots.append(("Drawdown", render_png(lambda ax: plot_equity(
            ax, arts["equity"], column="drawdown", title=f"{whose} drawdown"))))
    if "trades" in arts and arts["trades"].num_rows:
        plots.append(("Return distribution",
                      render_png(lambda ax: plot_returns(ax, arts["trades"]))))
    if "paths" in arts and arts["paths"].num_rows:
        plots.append(("Peak multiples", render_png(
            lambda ax: plot_peaks(ax, arts["paths"], levels=levels))))
    if plots:
        parts.append("<h2>Plots</h2>" + "".join(
            f"<div><img alt='{esc(title)}' src='{uri}'></div>" for title, uri in plots))

    if "errors" in arts:
        errors = arts["errors"]
        parts.append(f"<h2>Errors and exclusions ({errors.num_rows} rows)</h2>"
                     + _table(error_counts(errors)))
        others = [r for r in errors.to_pylist() if r["phase"] != "coverage"]
        if others:
            shown = [{"level": r["level"], "phase": r["phase"], "call_id": r["call_id"],
                      "message": r["message"]} for r in others[:20]]
            more = (f"<p class='muted'>... {len(others) - 20} more</p>"
                    if len(others) > 20 else "")
            parts.append(_table(shown) + more)

    params = [(k, v) for k, v in _flatten(m.get("parameters", {})) if k != "config_hash"]
    params.append(("config_hash", m.get("parameters", {}).get("config_hash")))
    parts.append("<h2>Parameters</h2>" + _kv(params))

    inventory = [{"artifact": name, "rows": e["rows"], "bytes": e["bytes"], "path": e["path"]}
                 for name, e in m.get("artifacts", {}).items()]
    parts.append("<h2>Artifacts</h2>" + _table(inventory))

    generated = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    parts.append(f"<footer>quantbot {esc(__version__)} · report generated {generated}</footer>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>quantbot run {esc(m['run_id'])}</title><style>{_CSS}</style></head>"
            f"<body>{''.join(parts)}</body></html>\n")


def headline_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The pooled row the headline shows: out-of-sample (validation) when the run has a
    split, else its only pooled row."""
    pooled = [r for r in rows if r["caller_name"] in (None, "*")] or rows
    return next((r for r in pooled if r.get("split") == "validation"), pooled[0])


def frontier_group(frontier: pa.Table) -> pa.Table:
    """The pooled group's rows (``*``), else the first caller's."""
    callers = frontier.column("caller_name").to_pylist()
    name = "*" if "*" in callers else callers[0]
    return frontier.filter(pa.array([c == name for c in callers]))


def _group_label(group: pa.Table) -> str:
    name = group.column("caller_name")[0].as_py()
    return "all callers pooled" if name == "*" else f"caller {name}"


def _frontier_section(frontier: pa.Table, top_n: int) -> str:
    group = frontier_group(frontier)
    front = pareto_mask(_column(group, "stop_out_rate").astype(float),
                        _column(group, "median_return_bps").astype(float))
    rows = group.to_pylist()
    for r, on_front in zip(rows, front):
        r["pareto"] = bool(on_front)
        if "aliases" in r:
            r["aliases"] = aliases_text(r["aliases"])
    rows.sort(key=lambda r: r["rank"])
    cols = [c for c in FRONTIER_COLUMNS if c in group.column_names] + ["pareto"]
    out = (f"<h2>Frontier: top {min(top_n, len(rows))} of {len(rows)} policies "
           f"({html.escape(_group_label(group))})</h2>" + _table(rows[:top_n], cols))
    callers = [c for c in dict.fromkeys(frontier.column("caller_name").to_pylist()) if c != "*"]
    if callers:
        best = [r for r in frontier.to_pylist() if r["rank"] == 1 and r["caller_name"] != "*"]
        best.sort(key=lambda r: r["caller_name"])
        cols = ["caller_name", "policy_id", "meets_constraints", "objective_score",
                "median_return_bps", "stop_out_rate", "trades_count"]
        n_callers = len({r["caller_name"] for r in best})
        ties = " (policies tied on score share rank 1 and are all listed)" if (
            len(best) > n_callers) else ""
        out += (f"<p>Best policy per caller ({n_callers} callers with enough calls{ties}):</p>"
                + _table(best, cols))
    return out


@legacy_arguments()
def write_report(run_id: str, out: str | os.PathLike[str] | None = None, *,
                 catalog: CatalogRef | None = None,
                 base_dir: str | os.PathLike[str] | Storage = "runs", top_n: int = 15) -> Path:
    """Write the HTML report of ``run_id`` (a UUID or an unambiguous prefix, found through
    ``catalog`` or under ``base_dir``) to ``out`` (default ``report-<run_id>.html`` in the
    current folder)."""
    from quantbot.artifacts.ops.lookup import locate_run

    run_dir = locate_run(run_id, catalog=catalog, base_dir=base_dir)
    page = render_report(run_dir, top_n=top_n)
    from quantbot.artifacts.store.runs import read_manifest

    path = Path(out) if out is not None else Path(f"report-{read_manifest(run_dir).run_id}.html")
    try:
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as err:
        raise ReportError(f"cannot write report {path}: {err.strerror or err}") from None
    return path


__all__ = ["ReportError", "error_counts", "format_cell", "frontier_group", "headline_row", "plot_equity",
           "plot_frontier", "plot_peaks", "plot_returns", "render_png", "render_report",
           "setup_text", "write_report"]
