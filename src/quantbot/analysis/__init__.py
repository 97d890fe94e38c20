"""quantbot.analysis: readers of finished runs — comparing two runs, the HTML report, and
statistics across runs (Pareto fronts, regressions, spread), and the data behind the web
app's run, compare and callers pages (run_detail, compare_many, caller_overview). Never
writes a run."""

from quantbot._lazy import lazy_exports

_EXPORTS = {
    **{name: "quantbot.analysis.stats" for name in (
        "detect_regressions", "metric_spread", "pareto_front", "pareto_mask")},
    **{name: "quantbot.analysis.compare" for name in ("Comparison", "compare_runs")},
    "caller_overview": "quantbot.analysis.callers",
    "compare_many": "quantbot.analysis.run_compare",
    "run_detail": "quantbot.analysis.run_views",
    **{name: "quantbot.analysis.report" for name in (
        "plot_equity", "plot_frontier", "plot_peaks", "plot_returns", "render_report",
        "write_report")},
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
