"""Plotly figures for the run, compare and callers pages, built from the dicts of
``quantbot.analysis`` (run_detail, compare_many, caller_overview) — no data is read here.

Pages embed each figure as JSON (:func:`json_script`) that ``static/charts.js`` draws with
``Plotly.newPlot`` (plotly.min.js comes from the plotly package: no CDN). Colours are the
Okabe-Ito palette (readable with colour-blindness); every axis says its unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import plotly.graph_objects as go
from markupsafe import Markup

from quantbot.analysis.chart_data import MS_PER_HOUR

#: Okabe-Ito: distinguishable with every common colour-vision deficiency.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000", "#999999", "#882255")
SPLIT_COLOURS = {"all": COLOURS[0], "train": COLOURS[0], "validation": COLOURS[1]}
FRONT_COLOUR = "#D55E00"
HEIGHT = 340
GRID = "#e5e9f0"
#: A small white template (plotly_white's look): applying a named template costs ~80 ms per
#: figure, this one nothing, and it keeps the JSON small.
TEMPLATE = go.layout.Template(layout={
    "paper_bgcolor": "white", "plot_bgcolor": "white", "colorway": list(COLOURS),
    "xaxis": {"gridcolor": GRID, "zerolinecolor": GRID, "linecolor": "#b0b7c3", "ticks": ""},
    "yaxis": {"gridcolor": GRID, "zerolinecolor": GRID, "linecolor": "#b0b7c3", "ticks": ""},
    "font": {"color": "#2a3f5f"}})


def _arr(values: Sequence[Any]) -> np.ndarray:
    """Numbers as a float array (None → NaN, drawn as a gap): Plotly validates a numpy
    array at once but a list element by element (100 ms for 10 000 points)."""
    return np.asarray(values, dtype=np.float64)


def _line(axis: str, at: float, colour: str, dash: str = "dash") -> dict[str, Any]:
    """A full-height (``axis="x"``) or full-width (``"y"``) reference line as a layout shape
    (``add_vline`` costs ~20 ms a call)."""
    coords = ({"x0": at, "x1": at, "y0": 0, "y1": 1, "xref": "x", "yref": "paper"}
              if axis == "x" else {"y0": at, "y1": at, "x0": 0, "x1": 1, "yref": "y",
                                   "xref": "paper"})
    return {"type": "line", "line": {"color": colour, "width": 1, "dash": dash}, **coords}


def _figure(traces: Sequence[Any], *, x: str, y: str, height: int = HEIGHT,
            **extra: Any) -> go.Figure:
    """One Figure built in one go (each ``add_trace`` / ``update_layout`` re-validates and
    copies: ten of them cost more than the page's whole data)."""
    layout: dict[str, Any] = {
        "template": TEMPLATE, "height": height, "autosize": True, "font": {"size": 12},
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50}, "hovermode": "closest",
        "legend": {"orientation": "h", "y": -0.22, "x": 0},
        "xaxis": {"title": {"text": x}, "automargin": True},
        "yaxis": {"title": {"text": y}, "automargin": True}}
    for key, value in extra.items():
        layout[key] = {**layout[key], **value} if isinstance(layout.get(key), dict) else value
    return go.Figure(data=list(traces), layout=layout)


def _centres(hist: dict[str, Any]) -> list[float]:
    e = hist["edges"]
    return [(a + b) / 2 for a, b in pairwise(e)]


def histogram_figure(hists: Sequence[tuple[str, dict[str, Any]]], *, x: str, y: str = "trades"
                     ) -> go.Figure:
    """Bars of precomputed histograms (chart_data.histogram); several series overlay as
    steps so that each stays visible, with each median dashed."""
    traces: list[Any] = []
    overlay = len(hists) > 1
    shapes = []
    for i, (label, hist) in enumerate(hists):
        colour = COLOURS[i % len(COLOURS)]
        width = hist["edges"][1] - hist["edges"][0] if len(hist["edges"]) > 1 else 1
        if overlay:
            traces.append(go.Scatter(x=_arr(_centres(hist)), y=_arr(hist["counts"]), mode="lines",
                                     line={"shape": "hvh", "width": 2, "color": colour},
                                     name=f"{label} (n={hist['n']})"))
        else:
            traces.append(go.Bar(x=_arr(_centres(hist)), y=_arr(hist["counts"]), width=width,
                                 marker={"color": colour}, name=f"{label} (n={hist['n']})",
                                 hovertemplate="%{x:.0f}: %{y}<extra></extra>"))
        if hist.get("median") is not None:
            shapes.append(_line("x", hist["median"], colour))
    return _figure(traces, x=x, y=y, bargap=0.02, showlegend=overlay, shapes=shapes)


def returns_figure(hist: dict[str, Any], label: str = "trades") -> go.Figure:
    """Distribution of net returns per trade (bps, after fees and slippage)."""
    return histogram_figure([(label, hist)], x="net return per trade (bps)")


def hold_figure(hist: dict[str, Any]) -> go.Figure:
    """Distribution of the time each trade was held (hours)."""
    return histogram_figure([("trades", hist)], x="hold time (hours)")


def mae_figure(mae: dict[str, Any]) -> go.Figure:
    """Each trade's maximum adverse excursion against its net return (both bps)."""
    trace = go.Scattergl(
        x=_arr(mae["mae_bps"]), y=_arr(mae["return_bps"]), mode="markers",
        text=np.asarray(mae["call_id"], dtype=str),
        marker={"size": 5, "color": COLOURS[0], "opacity": 0.55},
        hovertemplate="%{text}<br>MAE %{x:.0f} bps<br>return %{y:.0f} bps<extra></extra>")
    return _figure([trace], x="max adverse excursion (bps, ≤ 0)", y="net return (bps)",
                   showlegend=False, shapes=[_line("y", 0, "#555", "solid")])


def equity_figure(series: Sequence[dict[str, Any]], *, label_key: str = "split") -> go.Figure:
    """Equity (currency) above, drawdown (% of the running peak) below on the same time
    axis, one line per series (the splits of one run, or one run each on the compare page)."""
    traces = []
    for i, s in enumerate(series):
        label = s.get("label") or s[label_key]
        colour = (SPLIT_COLOURS.get(s["split"], COLOURS[i % len(COLOURS)])
                  if label_key == "split" else COLOURS[i % len(COLOURS)])
        when = np.asarray([t.rstrip("Z") for t in s["ts"]], dtype="datetime64[ms]")
        traces.append(go.Scatter(x=when, y=_arr(s["equity"]), mode="lines", name=label,
                                 legendgroup=label, line={"shape": "hv", "color": colour,
                                                          "width": 1.6}))
        traces.append(go.Scatter(x=when, y=_arr(s["drawdown"]) * 100, yaxis="y2",
                                 mode="lines", name=label, legendgroup=label, showlegend=False,
                                 line={"shape": "hv", "color": colour, "width": 1.2},
                                 fill="tozeroy"))
    return _figure(traces, x="time (UTC)", y="equity (currency)", height=HEIGHT + 120,
                   showlegend=len(series) > 1, xaxis={"anchor": "y2"},
                   yaxis={"domain": [0.4, 1.0]},
                   yaxis2={"domain": [0.0, 0.32], "anchor": "x", "automargin": True,
                           "title": {"text": "drawdown (%)"}})


def frontier_figure(frontier: dict[str, Any]) -> go.Figure:
    """Score against risk per policy; the Pareto set (no policy has a lower risk and a
    higher score) joined by a line; infeasible policies hollow."""
    pts = frontier["points"]
    traces = []
    for feasible, name in ((True, "meets constraints"), (False, "infeasible")):
        sel = [p for p in pts if p["meets_constraints"] is feasible]
        if not sel:
            continue
        traces.append(go.Scatter(
            x=[p["risk"] for p in sel], y=[p["score"] for p in sel], mode="markers", name=name,
            text=[p["policy_id"] for p in sel],
            marker={"size": 9, "color": COLOURS[0] if feasible else "rgba(0,0,0,0)",
                    "line": {"color": COLOURS[0] if feasible else "#888", "width": 1.5}},
            hovertemplate="%{text}<br>risk %{x:.3f}<br>score %{y:.1f}<extra></extra>"))
    front = sorted((p for p in pts if p["on_front"]), key=lambda p: p["risk"])
    traces.append(go.Scatter(x=[p["risk"] for p in front], y=[p["score"] for p in front],
                             mode="lines+markers", name=f"Pareto set ({len(front)})",
                             text=[p["policy_id"] for p in front],
                             marker={"size": 11, "symbol": "diamond-open", "color": FRONT_COLOUR},
                             line={"color": FRONT_COLOUR, "width": 1.5},
                             hovertemplate="%{text}<extra>Pareto</extra>"))
    return _figure(traces, x=f"risk: {frontier['risk']} (fraction of trades stopped out)",
                   y=f"score: {frontier['score']} (bps)")


def _axis(values: list[float | None], label: str) -> dict[str, Any]:
    """A parallel-coordinates axis; a parameter a policy lacks sits on a "n/a" tick just
    below the axis' range (Plotly cannot draw a missing value)."""
    known = [v for v in values if v is not None]
    lo, hi = (min(known), max(known)) if known else (0.0, 1.0)
    span = (hi - lo) or 1.0
    na = lo - 0.15 * span
    dim: dict[str, Any] = {"label": label, "values": [na if v is None else v for v in values]}
    if len(known) < len(values):
        ticks = sorted(set(known))[:6]
        dim.update(tickvals=[na, *ticks], ticktext=["n/a", *(f"{t:g}" for t in ticks)],
                   range=[na, hi])
    return dim


def parcoords_figure(frontier: dict[str, Any]) -> go.Figure:
    """One line per policy across its kind and numeric parameters, coloured by the
    validation score (the score itself when the run has no validation split)."""
    pts = frontier["points"]
    kinds = sorted({p["kind"] or "?" for p in pts})
    colour_key = "validation_score" if frontier["has_validation"] else "score"
    colour = [p[colour_key] if p[colour_key] is not None else 0.0 for p in pts]
    dims = [{"label": "kind", "values": [kinds.index(p["kind"] or "?") for p in pts],
             "tickvals": list(range(len(kinds))), "ticktext": kinds}]
    for n in frontier["param_names"]:
        values = [p["params"].get(n) for p in pts]
        if n.endswith("_ms"):  # durations read in hours, not 1.44e+07 ms
            values = [None if v is None else v / MS_PER_HOUR for v in values]
            n = n.removesuffix("_ms") + " (h)"
        dims.append(_axis(values, n))
    dims.append({"label": "score (bps)", "values": [p["score"] for p in pts]})
    title = "validation score (bps)" if frontier["has_validation"] else "score (bps)"
    return go.Figure(
        data=[go.Parcoords(
            dimensions=dims, labelangle=-20, labelside="top",
            line={"color": colour, "colorscale": "Viridis", "showscale": True,
                  "colorbar": {"title": {"text": title, "side": "right"}, "thickness": 12}})],
        layout={"template": TEMPLATE, "height": HEIGHT + 20, "font": {"size": 12},
                "margin": {"l": 60, "r": 30, "t": 70, "b": 30}})


def train_validation_figure(frontier: dict[str, Any]) -> go.Figure:
    """Each policy's train score against its validation score (bps), with the diagonal:
    points far below it did better in sample than out of sample."""
    pts = [p for p in frontier["points"] if p["validation_score"] is not None]
    xs, ys = [p["score"] for p in pts], [p["validation_score"] for p in pts]
    traces = [go.Scatter(x=xs, y=ys, mode="markers", text=[p["policy_id"] for p in pts],
                               marker={"size": 9, "color": COLOURS[2]}, name="policy",
                               hovertemplate="%{text}<br>train %{x:.1f}<br>validation %{y:.1f}"
                                             "<extra></extra>")]
    if pts:
        lo, hi = min(xs + ys), max(xs + ys)
        traces.append(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="validation = train",
                                 line={"dash": "dot", "color": "#777"}, hoverinfo="skip"))
    return _figure(traces, x="train score (bps)", y="validation score (bps)")


def caller_returns_figure(series: dict[str, dict[str, Any]], *, shown: Sequence[str],
                          period: str) -> go.Figure:
    """Median net return per alert period, one line per caller; callers outside ``shown``
    start hidden (click the legend to add them)."""
    traces = []
    # the drawn callers get the first (most distinct) colours
    order = [*shown, *(c for c in series if c not in shown)]
    colour = {c: COLOURS[i % len(COLOURS)] for i, c in enumerate(order)}
    for caller, s in series.items():
        traces.append(go.Scatter(
            x=s["period"], y=s["median_return_bps"], mode="lines+markers", name=str(caller),
            customdata=s["trades"], visible=True if caller in shown else "legendonly",
            line={"color": colour[caller]},
            hovertemplate="%{x}<br>median %{y:.0f} bps<br>%{customdata} trades<extra>"
                          + "%{fullData.name}</extra>"))
    return _figure(traces, x=f"alert {period} (UTC, start of period)",
                   y="median net return (bps)", height=HEIGHT + 60,
                   shapes=[_line("y", 0, "#555", "solid")],
                   legend={"orientation": "v", "y": 1, "x": 1.02})


def json_script(fig: go.Figure) -> Markup:
    """The figure as a ``<script type="application/json">`` element charts.js draws.
    ``<``, ``>`` and ``&`` are written as JSON \\u escapes (as Django's json_script does),
    so no value — a caller named ``</script>`` — can end the element early."""
    # the three characters occur only inside JSON strings, where \u escapes mean the same
    text = fig.to_json().replace("<", "\\u003c").replace(">", "\\u003e").replace(
        "&", "\\u0026")
    return Markup(f'<script type="application/json" class="qb-figure">{text}</script>')


def run_figures(detail: dict[str, Any]) -> dict[str, Markup]:
    """The run page's figures (those the run has data for), by name, as json_script."""
    c = detail["charts"]
    figs: dict[str, go.Figure] = {}
    if "returns" in c:
        figs["returns"] = returns_figure(c["returns"])
        figs["mae"] = mae_figure(c["mae"])
        figs["hold"] = hold_figure(c["hold"])
    if c.get("equity"):
        figs["equity"] = equity_figure(c["equity"])
    if c.get("frontier"):
        figs["frontier"] = frontier_figure(c["frontier"])
        if c["frontier"]["points"]:
            figs["parcoords"] = parcoords_figure(c["frontier"])
        if c["frontier"]["has_validation"]:
            figs["train_validation"] = train_validation_figure(c["frontier"])
    return {name: json_script(fig) for name, fig in figs.items()}


def compare_figures(comparison: dict[str, Any], labels: Sequence[str]) -> dict[str, Markup]:
    """The compare page's overlaid return distributions and equity curves (``labels``: one
    per run, in the comparison's order)."""
    figs: dict[str, go.Figure] = {}
    hists = [(label, h) for label, h in zip(labels, comparison["returns"]) if h is not None]
    if hists:
        figs["returns"] = histogram_figure(
            hists, x="net return per trade (bps)")
    curves = [{**e, "label": f"{label} ({e['split']})"}
              for label, e in zip(labels, comparison["equity"]) if e]
    if curves:
        figs["equity"] = equity_figure(curves, label_key="label")
    return {name: json_script(fig) for name, fig in figs.items()}


def caller_figures(overview: dict[str, Any], *, shown: int = 6) -> dict[str, Markup]:
    """The callers page's median return over time (the ``shown`` callers with the most
    trades drawn, the others one legend click away)."""
    if not overview["series"]:
        return {}
    by_trades = sorted(overview["series"], key=lambda c: -sum(overview["series"][c]["trades"]))
    fig = caller_returns_figure(overview["series"], shown=by_trades[:shown],
                                period=overview["period"])
    return {"returns_over_time": json_script(fig)}


__all__ = [
    "caller_figures",
    "caller_returns_figure",
    "compare_figures",
    "equity_figure",
    "frontier_figure",
    "histogram_figure",
    "hold_figure",
    "json_script",
    "mae_figure",
    "parcoords_figure",
    "returns_figure",
    "run_figures",
    "train_validation_figure",
]
