"""``backtest optimize`` and ``backtest run full``: a policy grid, pooled and per caller."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from quantbot.backtest.optimize.settings import OPTIMIZER_SETTINGS
from quantbot.cli.app import backtest
from quantbot.cli.options import executor_option, field_options
from quantbot.cli.render import echo_field
from quantbot.cli.run_cmds import (
    bps_text,
    fee_options,
    finish,
    flow_kwargs,
    input_options,
    pct_text,
    portfolio_option,
    run_group,
    writing_run,
)

F = Callable[..., Any]
Callbacks = tuple[Callable[[str], None] | None, Callable[[int, int], None] | None]


#: Optimizer settings offered as options (defaults and help: OPTIMIZER_SETTINGS).
OPTIMIZER_FIELDS = ("objective", "trim_fraction", "stop_out_weight", "validation", "min_calls",
                    "max_stop_out_rate", "min_p95_drawdown_bps", "max_avg_time_exposed_ms",
                    "return_weight", "tail_capture_weight", "mae_weight", "overfit_min_gap",
                    "overfit_rel_gap", "overfit_top_fraction")


def _optimizer_options(f: F) -> F:
    options = [
        click.option("--grid", "grid_path", type=click.Path(exists=True, dir_okay=False),
                     help="Policy grid JSON file (default: the built-in ~600-policy grid; "
                          "see docs/optimizer.md)."),
        field_options(OPTIMIZER_SETTINGS, OPTIMIZER_FIELDS),
        click.option("--no-per-caller", "no_per_caller", is_flag=True,
                     help="Only the pooled evaluation (caller_name '*')."),
        portfolio_option,
        fee_options,
        executor_option,
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
    from quantbot.cli.render import stderr_progress

    with stderr_progress() as bar:
        task = bar.add_task("starting", total=None)

        def phase(label: str) -> None:
            bar.update(task, description=label)

        def policies(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield phase, policies


def _run(flow: Callable[..., Any], kw: dict[str, Any]) -> None:
    from quantbot.backtest.executors import open_executor
    from quantbot.backtest.optimize.objective import make_config

    config = make_config(**{name: kw.pop(name) for name in OPTIMIZER_FIELDS})
    with open_executor(kw.pop("executor")) as executor, \
            _optimizer_progress() as (phase, policies), writing_run(kw) as start:
        _announce(executor)
        result = flow(kw["alerts"], kw["candles"], grid=kw["grid_path"], config=config,
                      taker_fee_bps=kw["taker_fee_bps"], slippage_bps=kw["slippage_bps"],
                      per_caller=not kw["no_per_caller"], portfolio=kw["portfolio"],
                      progress=phase, policy_progress=policies, executor=executor,
                      run_id=start.run_id, around_run=start.around_run, **flow_kwargs(kw))
    finish(result, kw, start.cataloged)
    if kw["fmt"] == "json":
        return
    m = result.metrics
    echo_field("grid", [f"{m['policies']} policies ({m['distinct_policies']} distinct on this "
                        f"data)", f"{m['groups']} groups optimized",
                        *([f"{m['skipped_callers']} callers skipped"] if m["skipped_callers"] else [])])
    if "splits" in m:
        click.echo(f"  objective  {m['objective']}, best (*) "
                   f"{'feasible' if m['meets_constraints'] else 'infeasible'}"
                   + ("  OVERFIT" if m.get("overfit") else ""))
        for split, figures in m["splits"].items():
            echo_field(split, split_parts(figures), "  ")


def _announce(executor: Any) -> None:
    """On stderr (stdout may be JSON): the cluster the grid runs on and its dashboard."""
    if executor.kind == "local":
        return
    dashboard = f", dashboard {executor.dashboard_link}" if executor.dashboard_link else ""
    click.echo(f"executor   {executor.kind} {executor.address} ({executor.n_workers} workers"
               f"{dashboard})", err=True)


def split_parts(f: dict[str, Any]) -> list[str]:
    """One split's figures of the best policy, as the parts of one report field."""
    score = f.get("objective_score")
    return [f"score {'-' if score is None else f'{score:.1f}'}", f"trades {f['trades_count']}",
            f"avg {bps_text(f['avg_return_bps'])}", f"median {bps_text(f['median_return_bps'])}",
            f"win {pct_text(f['win_rate'])}", f"stop-out {pct_text(f['stop_out_rate'])}",
            f"portfolio {pct_text(f['total_return'])} (max dd {pct_text(f['max_drawdown'])})"]


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
