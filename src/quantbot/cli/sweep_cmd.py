"""``quantbot backtest sweep SPEC.json``: many runs from one spec, on any executor.

The command validates the spec (a bad one: one line, nothing written), runs it with
:func:`quantbot.backtest.flows.sweep.run_sweep`, shows a progress bar on stderr (on a
terminal), prints the Dask dashboard address when there is one, registers the runs in the
catalog (``--catalog-sync``, the default) and prints one row per task. Exit status: 0 when
every task completed, 1 when any failed (the sweep run itself completes and records them),
130 on Ctrl-C (outstanding tasks cancelled, the sweep run marked failed).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from quantbot.cli.app import backtest
from quantbot.cli.options import base_dir_option, duckdb_option, executor_option, format_option
from quantbot.cli.render import print_json, print_table


@backtest.command("sweep")
@click.argument("spec", type=click.Path(dir_okay=False))
@base_dir_option
@executor_option
@duckdb_option
@click.option("--catalog-sync/--no-catalog-sync", "catalog_sync", default=True,
              show_default=True,
              help="Register the sweep's runs (and the sweep run) in the catalog at the end.")
@click.option("--no-durable", "no_durable", is_flag=True,
              help="Skip fsync (scratch runs: faster, may be lost on power loss).")
@format_option("table", "json")
def sweep_cmd(spec: str, base_dir: Any, executor: str, duckdb_path: str, catalog_sync: bool,
              no_durable: bool, fmt: str) -> None:
    """Run every task of the sweep SPEC (JSON; docs/scale-out.md), each as its own run."""
    from quantbot.backtest.flows.sweep import run_sweep
    from quantbot.backtest.flows.sweep_spec import load_spec

    sweep = load_spec(spec)  # refused here, before an executor or a run exists
    with _progress_bar(len(sweep.tasks)) as progress:
        result = run_sweep(sweep, base_dir=base_dir, executor=executor, progress=progress,
                           durable=not no_durable)
    sync = None
    if catalog_sync:
        from quantbot.artifacts import catalog_all_runs

        sync = catalog_all_runs(catalog=duckdb_path, base_dir=base_dir)
    rows = [{"task": t.key, "status": t.status, "run_id": t.run_id, "attempts": t.attempts,
             "error": f"{t.error_type}: {t.error}" if t.error_type else None}
            for t in result.tasks]
    if fmt == "json":
        print_json({**result.to_dict(), "catalog": sync.to_dict() if sync else None})
    else:
        print_table(rows, title=f"sweep {result.sweep_id}  ({len(rows)} tasks, "
                                f"{len(result.failed)} failed, {result.elapsed_s:.1f} s on "
                                f"{result.executor})")
        click.echo(f"  directory  {result.run_dir}")
        if sync is not None:
            click.echo(f"  cataloged  {duckdb_path} ({sync.registered} new runs)")
    if result.failed:
        sys.exit(1)  # quantbot.cli.main keeps the code of SystemExit


@contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[Any], None]]:
    """The progress callback: a rich bar on stderr when it is a terminal (done, running,
    failed, ETA); the dashboard address and the sweep id are printed either way."""
    announced: list[bool] = []

    def announce(p: Any) -> None:
        if announced:
            return
        announced.append(True)
        click.echo(f"sweep {p.sweep_id}: {p.total} tasks on {p.executor}", err=True)
        if p.dashboard_link:
            click.echo(f"dashboard  {p.dashboard_link}", err=True)

    if not sys.stderr.isatty():
        yield announce
        return
    from quantbot.cli.render import stderr_progress

    with stderr_progress("running {task.fields[running]}  failed {task.fields[failed]}",
                         transient=False) as bar:
        task = bar.add_task("sweep", total=total, running=0, failed=0)

        def update(p: Any) -> None:
            if not announced:
                announce(p)
            bar.update(task, completed=p.done, running=p.running, failed=p.failed)

        yield update
