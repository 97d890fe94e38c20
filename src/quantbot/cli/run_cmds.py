"""run path-only, run policy, rerun and sample-data: the commands that produce runs.

Shared with the optimizer's commands (``optimize_cmds``), so every command that writes a run
takes the same flags, writes it the same way and reports the same way:

- ``input_options``: the sources, date filters and :class:`FlowParams` options (defaults
  and help from the dataclass fields); ``fee_options``; ``run_options`` (``--base-dir``,
  ``--duckdb``, ``--sync``, ``--no-durable``);
- ``writing_run``: the one code path of every command that writes a run: a fresh run id,
  the process's stdout/stderr teed into the run's ``logs/stdout.txt`` and
  ``logs/stderr.txt`` while it runs (the CLI owns its streams; the Python API never does
  this), and with ``--sync`` the run registered in the catalog, a failed run too;
- ``finish`` / ``report_lines``: the JSON object or the short report.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click

from quantbot.backtest.flows.params import FEE_FIELDS, FlowParams
from quantbot.cli.app import backtest
from quantbot.cli.options import (
    base_dir_option,
    duckdb_option,
    field_options,
    format_option,
    sync_option,
)
from quantbot.cli.render import echo_field, print_json

F = Callable[..., Any]

fee_options = field_options(FlowParams, FEE_FIELDS)
portfolio_option = click.option(
    "--portfolio", metavar="JSON", default=None,
    help='The account the calls are followed with, e.g. \'{"capital": 100000, "size": '
         '{"amount": 1000}, "max_concurrent": 20, "compound": false}\' (size may be '
         '{"fraction": 0.01} or {"volatility": {"target_bps": 100, "fraction": 0.01}}); '
         'default: capital 100000, size fraction 0.01, no concurrency limit, no compounding.')
FLOW_PARAM_OPTIONS = ("interval", "horizon", "activity_move_pct", "pre_window", "entry", "levels",
                      "max_entry_delay")


def run_options(f: F) -> F:
    """Where the run goes and how: shared by every command that writes a run."""
    options = [base_dir_option, duckdb_option, sync_option,
               click.option("--no-durable", "no_durable", is_flag=True,
                            help="Skip fsync (scratch runs: faster, may be lost on power loss).")]
    for option in reversed(options):
        f = option(f)
    return f


def input_options(f: F) -> F:
    options = [
        click.option("--alerts", "alerts", required=True, metavar="PATH_OR_DB",
                     help="Alerts: CSV, Parquet, or a DuckDB database (with --alerts-table or "
                          "--alerts-query)."),
        click.option("--alerts-query", metavar="SQL", help="SQL selecting the alerts: over a "
                     "CSV/Parquet file or folder the data is the view 'alerts'; over a DuckDB "
                     "database its tables."),
        click.option("--alerts-table", metavar="TABLE", help="Table of the --alerts database."),
        click.option("--alerts-columns", metavar="ROLE=COL,...",
                     help="Which column is which: call_id, alert_ts, mint (the asset), "
                          "caller_name, chain, side; e.g. mint=symbol,alert_ts=alert_time."),
        click.option("--candles", "candles", required=True, metavar="PATH",
                     help="Candles: CSV, Parquet file, folder / Hive dataset of Parquet, or a "
                          "DuckDB database."),
        click.option("--candles-query", metavar="SQL", help="SQL selecting the candles (the "
                     "view 'candles' over a file, or the tables of a DuckDB database)."),
        click.option("--candles-table", metavar="TABLE", help="Table of the --candles database."),
        click.option("--candles-columns", metavar="ROLE=COL,...",
                     help="Which column is which: mint, ts, open, high, low, close, volume."),
        click.option("--symbol", metavar="NAME", help="The asset of a candle file without an "
                     "asset column (a single-asset file such as Date,Open,High,Low,Close)."),
        click.option("--ts-unit", type=click.Choice(["s", "ms"]), default=None,
                     help="Unit of integer candle timestamps (default: inferred per value)."),
        click.option("--ts-format", metavar="FORMAT", help="strptime format of text timestamps "
                     "in both sources, e.g. '%m/%d/%Y %I:%M %p' (default: ISO 8601)."),
        click.option("--alerts-ts-format", metavar="FORMAT", help="The same for the alerts only."),
        click.option("--candles-ts-format", metavar="FORMAT",
                     help="The same for the candles only."),
        click.option("--tz", metavar="ZONE", default="UTC", show_default=True,
                     help="Time zone of naive timestamps in both sources (e.g. "
                          "America/New_York); timestamps with an offset keep it."),
        click.option("--side", type=click.Choice(["long", "short"]), default=None,
                     help="Side of every alert when the alerts have no side column "
                          "(default long)."),
        click.option("--duplicates", type=click.Choice(["error", "first", "last"]),
                     default="error", show_default=True,
                     help="Candles with the same (asset, time) but different values: refuse, "
                          "or keep the first/last in source order. Identical ones are always "
                          "dropped with a warning row."),
        click.option("--from", "date_from", metavar="DATE",
                     help="Only alerts at or after this ISO date/datetime (UTC)."),
        click.option("--to", "date_to", metavar="DATE",
                     help="Only alerts at or before this (a bare date includes that day)."),
        field_options(FlowParams, FLOW_PARAM_OPTIONS),
        click.option("--name", metavar="TEXT", default=None,
                     help="Name the new run (an annotation: `name` changes it later)."),
        run_options,
        format_option("table", "json"),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str], None] | None]:
    """A spinner with the current phase on stderr, only when stderr is a terminal."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.console import Console

    with Console(stderr=True).status("starting", spinner="dots") as status:
        yield lambda label: status.update(label)


def flow_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    """The Python API's keyword arguments from the common options."""
    keys = ("alerts_query", "alerts_table", "alerts_columns", "candles_query", "candles_table",
            "candles_columns", "symbol", "ts_unit", "tz", "side", "duplicates", "date_from",
            "date_to", *FLOW_PARAM_OPTIONS, "base_dir", "name")
    formats = {"alerts_ts_format": kw["alerts_ts_format"] or kw["ts_format"],
               "candles_ts_format": kw["candles_ts_format"] or kw["ts_format"]}
    return {k: kw[k] for k in keys} | formats | {"durable": not kw["no_durable"]}


@dataclass
class RunStart:
    """What ``writing_run`` hands the flow: the new run's id and its ``around_run`` hook."""

    run_id: str
    announce: bool  # print "started ..." (table format): the first line of logs/stdout.txt
    cataloged: bool = False

    @contextmanager
    def around_run(self, run: Any) -> Iterator[None]:
        from quantbot.artifacts.store.backends import LocalStorage

        if not isinstance(run.storage, LocalStorage):  # the tee writes local files
            yield
            return
        with run.capture_output():
            if self.announce:
                click.echo(f"started {run.manifest.run_type} run {run.run_id}")
            yield


@contextmanager
def writing_run(kw: dict[str, Any]) -> Iterator[RunStart]:
    """The one code path of a command that writes a run (see the module docstring)."""
    start = RunStart(str(uuid.uuid4()), announce=kw["fmt"] != "json")
    try:
        yield start
    except Exception:
        if kw["sync"]:
            try:
                _register(kw, start.run_id)
            except Exception:  # noqa: BLE001 - the flow's error is the one to report
                pass  # e.g. rejected before its directory existed: nothing to catalog
        raise
    if kw["sync"]:
        _register(kw, start.run_id)
        start.cataloged = True


def _register(kw: dict[str, Any], run_id: str) -> None:
    from quantbot.artifacts import locate_run, register_run
    from quantbot.artifacts.catalog.labels import sync_annotations

    register_run(kw["duckdb_path"], locate_run(run_id, base_dir=kw["base_dir"]))
    if kw.get("name"):  # the name record written as the run was created
        sync_annotations(kw["base_dir"], kw["duckdb_path"])


def flow_command(kw: dict[str, Any], flow: Callable[..., Any], *args: Any, **extra: Any) -> Any:
    """Run ``flow(alerts, candles, *args, **extra, **common options)`` through
    ``writing_run``, print its report; returns the FlowResult."""
    with _progress(True) as progress, writing_run(kw) as start:
        result = flow(kw["alerts"], kw["candles"], *args, progress=progress,
                      run_id=start.run_id, around_run=start.around_run, **extra,
                      **flow_kwargs(kw))
    finish(result, kw, start.cataloged)
    return result


@backtest.group("run")
def run_group() -> None:
    """Run a backtest into a new run directory."""


@run_group.command("path-only")
@input_options
def run_path_only_cmd(**kw: Any) -> None:
    """Truth layer: what the price did after each call (paths, features, errors)."""
    from quantbot.backtest.flows.path_only import run_path_only

    flow_command(kw, run_path_only)


@run_group.command("policy")
@input_options
@click.option("--policy", "policy_json", metavar="JSON",
              help='Policy JSON, e.g. \'{"kind":"fixed_stop","stop_pct":0.2}\'.')
@click.option("--policy-file", type=click.Path(exists=True, dir_okay=False),
              help="File holding the policy JSON.")
@click.option("--policy-id", help="Id recorded for the policy (default: derived from it).")
@portfolio_option
@fee_options
def run_policy_cmd(policy_json: str | None, policy_file: str | None, policy_id: str | None,
                   portfolio: str | None, taker_fee_bps: float, slippage_bps: float,
                   **kw: Any) -> None:
    """Simulate one exit policy over every eligible call, then follow the calls as one
    portfolio (trades, summary, equity, errors)."""
    from quantbot.backtest.flows.policy import run_policy_backtest

    if (policy_json is None) == (policy_file is None):
        raise click.UsageError("pass exactly one of --policy and --policy-file")
    if policy_file is not None:
        with open(policy_file, encoding="utf-8") as fh:
            policy_json = fh.read()
    flow_command(kw, run_policy_backtest, policy_json, policy_id=policy_id, portfolio=portfolio,
                 taker_fee_bps=taker_fee_bps, slippage_bps=slippage_bps)


def finish(result: Any, kw: dict[str, Any], cataloged: bool) -> None:
    """Print the JSON object or the report (``cataloged``: registered by --sync)."""
    if kw["fmt"] == "json":
        print_json({**result.to_dict(), "cataloged": cataloged})
        return
    report_lines(result)
    if cataloged:
        click.echo(f"  cataloged  {kw['duckdb_path']}")


def pct_text(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def bps_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} bps"


def num_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report_lines(result: Any) -> None:
    """The short human report of a finished flow (fields wrap at the terminal's width)."""
    click.echo(f"run {result.run_id}  ({result.run_type}, {result.status})")
    click.echo(f"  directory  {result.run_dir}")
    _calls_field(result)
    late = result.excluded.get("late_entry", 0)
    if late:  # the default limit covers the data's usual gaps: these wait longer
        limit = (result.settings or {}).get("max_entry_delay", "?")
        echo_field("note", (f"{late} alert(s) wait longer than --max-entry-delay {limit} for "
                            "their entry candle (holes in the data?); a longer limit, or "
                            "none, enters them").split(" "), " ")
    from quantbot.analysis.report import setup_text

    echo_field("setup", str(setup_text(result.settings)).split(", "))
    m = result.metrics
    if result.trades is None:
        rates = [(k.removeprefix("hit_").removesuffix("_rate").replace("_", "."), v)
                 for k, v in m.items()
                 if k.startswith("hit_") and k.endswith("_rate")]
        echo_field("hit rates", [f"{name} {pct_text(v)}" for name, v in rates], "  ")
    elif "groups" in m:  # optimization/full: the figures per split follow (optimize_cmds)
        click.echo(f"  trades     {result.trades} written (best policy of each of "
                   f"{m['groups']} groups)")
        click.echo(f"  best (*)   {m.get('policy_id', '-')}")
    else:
        click.echo(f"  policy     {m['policy_id']}")
        echo_field("trades", [str(result.trades), f"avg {bps_text(m['avg_return_bps'])}",
                              f"median {bps_text(m['median_return_bps'])}",
                              f"win {pct_text(m['win_rate'])}",
                              f"stop-out {pct_text(m['stop_out_rate'])}"], "  ")
        echo_field("portfolio", [f"return {pct_text(m['total_return'])}",
                                 f"max dd {pct_text(m['max_drawdown'])}",
                                 f"sharpe {num_text(m['sharpe'])}",
                                 f"taken {m['trades_taken']}",
                                 f"skipped {m['skipped_signals']}"], "  ")
    echo_field("timing", [f"{k.removesuffix('_ms')} {v:.0f} ms" if k.endswith("_ms")
                          else f"{k} {v:g}"  # counts: chunks, workers
                          for k, v in result.timing.items()])


def _calls_field(result: Any) -> None:
    """``500  eligible 492  excluded 8 (no_candles 2, too_new 2, ...)``, wrappable."""
    parts = [str(result.calls), f"eligible {result.eligible}", f"excluded {result.excluded_total}"]
    seps = ["  ", "  "]
    reasons = [f"{k} {v}" for k, v in result.excluded.items()]
    if reasons:
        parts += [f"({reasons[0]}", *reasons[1:]]
        parts[-1] += ")"
        seps += [" "] + [", "] * (len(reasons) - 1)
    echo_field("calls", parts, seps)


@backtest.command("rerun")
@click.argument("run_id")
@run_options
@format_option("table", "json")
def rerun_cmd(run_id: str, **kw: Any) -> None:
    """Run RUN_ID again into a new run and check that every artifact is identical."""
    from quantbot.backtest.flows.rerun import rerun

    with _progress(True) as progress, writing_run(kw) as start:
        report = rerun(run_id, catalog=kw["duckdb_path"], base_dir=kw["base_dir"],
                       durable=not kw["no_durable"],
                       progress=progress, new_run_id=start.run_id,
                       around_run=start.around_run)
    fmt = kw["fmt"]
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if fmt == "json":
        print_json({**report.to_dict(), "cataloged": start.cataloged})
    else:
        click.echo(f"rerun of {report.original_run_id}: new run {report.rerun.run_id}")
        click.echo(f"  directory  {report.rerun.run_dir}")
        for a in report.artifacts:
            state = "identical" if a.identical else "DIFFERS"
            cols = f" (columns: {', '.join(a.differing_columns)})" if a.differing_columns else ""
            click.echo(f"  {a.artifact:<10} {state:<9} rows {a.rows_original} -> {a.rows_rerun}"
                       + cols)
        click.echo("reproduced: every artifact is identical" if report.identical else
                   f"NOT reproduced: {', '.join(report.differing)} differ")
        if start.cataloged:
            click.echo(f"  cataloged  {kw['duckdb_path']}")
    if not report.identical:
        sys.exit(1)  # quantbot.cli.main drops the code of click.exceptions.Exit


@backtest.command("sample-data")
@click.option("--out", default="data/sample", show_default=True, help="Output folder.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed.")
@click.option("--n-alerts", type=click.IntRange(min=18), default=500, show_default=True,
              help="Number of alerts (8 of them built to be excluded).")
def sample_data_cmd(out: str, seed: int, n_alerts: int) -> None:
    """Write a deterministic synthetic alerts.parquet and candles.parquet."""
    from quantbot.backtest.data.sample import write_sample_data

    for path in write_sample_data(out, seed=seed, n_alerts=n_alerts):
        click.echo(str(path))
