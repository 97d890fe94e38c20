"""``backtest optimize`` and ``backtest run full``: a policy grid, pooled and per caller."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from quantbot.cli.app import backtest
from quantbot.cli.run_cmds import finish, flow_kwargs, input_options, run_group

F = Callable[..., Any]
Callbacks = tuple[Callable[[str], None] | None, Callable[[int, int], None] | None]


def _optimizer_options(f: F) -> F:
    options = [
        click.option("--grid", "grid_path", type=click.Path(exists=True, dir_okay=False),
                     help="Policy grid JSON file (default: the built-in ~600-policy grid; "
                          "see docs/optimizer.md)."),
        click.option("--validation", metavar="SPEC",
                     help="Out-of-sample split: time[:F], caller[:F[:SEED]] or "
                          "random:SEED[:F] (F = training fraction, default 0.8)."),
        click.option("--min-calls", type=int, default=None,
                     help="Callers with fewer eligible training calls are skipped "
                          "(default 10)."),
        click.option("--max-stop-out-rate", type=float, default=None,
                     help="Constraint: stop_out_rate <= this (default 0.30)."),
        click.option("--min-p95-drawdown-bps", type=float, default=None,
                     help="Constraint: p95_drawdown_bps >= this (default -3000)."),
        click.option("--max-avg-time-exposed", metavar="DURATION", default=None,
                     help="Constraint: avg_time_exposed <= this (default 48h)."),
        click.option("--return-weight", type=float, default=None,
                     help="Objective weight of median_return_bps (default 1)."),
        click.option("--tail-capture-weight", type=float, default=None,
                     help="Objective weight of avg_tail_capture (default 200)."),
        click.option("--mae-weight", type=float, default=None,
                     help="Objective penalty per bps of |median MAE| (default 0.01)."),
        click.option("--overfit-min-gap", type=float, default=None,
                     help="Overfit when the validation score is more than max(this, "
                          "rel-gap x |train score|) below the train score (default 100)."),
        click.option("--overfit-rel-gap", type=float, default=None,
                     help="See --overfit-min-gap (default 0.5)."),
        click.option("--no-per-caller", "no_per_caller", is_flag=True,
                     help="Only the pooled evaluation (caller_name '*')."),
        click.option("--taker-fee-bps", type=float, default=30.0, show_default=True,
                     help="Taker fee per side, bps."),
        click.option("--slippage-bps", type=float, default=10.0, show_default=True,
                     help="Slippage per side, bps."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@contextmanager
def _optimizer_progress() -> Iterator[Callbacks]:
    """Phase label plus a bar over policies on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield None, None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def phase(label: str) -> None:
            bar.update(task, description=label)

        def policies(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield phase, policies


def _config(kw: dict[str, Any]) -> Any:
    from quantbot.backtest.optimize.objective import make_config

    return make_config(
        validation=kw.pop("validation"), min_calls=kw.pop("min_calls"),
        max_stop_out_rate=kw.pop("max_stop_out_rate"),
        min_p95_drawdown_bps=kw.pop("min_p95_drawdown_bps"),
        max_avg_time_exposed_ms=kw.pop("max_avg_time_exposed"),
        return_weight=kw.pop("return_weight"), tail_capture_weight=kw.pop("tail_capture_weight"),
        mae_weight=kw.pop("mae_weight"), overfit_min_gap=kw.pop("overfit_min_gap"),
        overfit_rel_gap=kw.pop("overfit_rel_gap"))


def _run(flow: Callable[..., Any], kw: dict[str, Any]) -> None:
    config = _config(kw)
    with _optimizer_progress() as (phase, policies):
        result = flow(kw["alerts"], kw["candles"], grid=kw["grid_path"], config=config,
                      taker_fee_bps=kw["taker_fee_bps"], slippage_bps=kw["slippage_bps"],
                      per_caller=not kw["no_per_caller"], progress=phase,
                      policy_progress=policies, **flow_kwargs(kw))
    finish(result, kw)
    if kw["fmt"] == "json":
        return
    m = result.metrics
    line = f"  grid       {m['policies']} policies, {m['groups']} groups optimized"
    click.echo(line + (f", {m['skipped_callers']} callers skipped" if m["skipped_callers"]
                       else ""))
    if "objective_score" in m:
        text = (f"  objective  (*) {m['objective_score']:.1f} "
                f"({'feasible' if m['meets_constraints'] else 'infeasible'})")
        if "validation_objective_score" in m:
            v = m["validation_objective_score"]
            text += f"  validation {'-' if v is None else f'{v:.1f}'}"
            text += "  OVERFIT" if m.get("overfit") else ""
        click.echo(text)


@backtest.command("optimize")
@input_options
@_optimizer_options
def optimize_cmd(**kw: Any) -> None:
    """Evaluate a policy grid pooled and per caller (frontier, best trades and summary)."""
    from quantbot.backtest.flows.optimization import run_optimization

    _run(run_optimization, kw)


@run_group.command("full")
@input_options
@_optimizer_options
def run_full_cmd(**kw: Any) -> None:
    """Truth layer and optimization in one run: every artifact type."""
    from quantbot.backtest.flows.optimization import run_full

    _run(run_full, kw)
