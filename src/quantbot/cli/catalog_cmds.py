"""catalog-sync, catalog-query, show and sql: finding runs again."""

from __future__ import annotations

import json
import shutil
from typing import Any

import click

from quantbot.cli.app import backtest
from quantbot.cli.options import (
    base_dir_option,
    duckdb_option,
    format_option,
    lock_timeout_option,
)
from quantbot.cli.render import print_json, print_rows, print_table

RUN_TYPES = ("path-only", "policy", "optimization", "full", "sweep")
RUN_STATUSES = ("pending", "running", "completed", "failed")
ARTIFACT_TYPES = ("alerts", "paths", "features", "trades", "summary", "frontier", "errors")


@backtest.command("catalog-sync")
@base_dir_option
@duckdb_option
@click.option("--stats", is_flag=True, help="Print catalog statistics after the sync.")
@format_option("table", "json")
@lock_timeout_option
def catalog_sync(base_dir: str, duckdb_path: str, stats: bool, fmt: str,
                 lock_timeout: float | None) -> None:
    """Register completed (and failed) runs under BASE_DIR in the catalog."""
    from quantbot.artifacts.catalog import catalog_all_runs, get_catalog_stats

    report = catalog_all_runs(catalog=duckdb_path, base_dir=base_dir, lock_timeout=lock_timeout)
    catalog_stats = get_catalog_stats(duckdb_path) if stats else None
    if fmt == "json":
        out: dict[str, Any] = report.to_dict()
        if catalog_stats is not None:
            out["stats"] = catalog_stats
        print_json(out)
        return
    click.echo(f"registered: {report.registered}  already present: {report.already_present}  "
               f"incomplete: {report.incomplete}  invalid: {len(report.invalid)}")
    for path, reason in report.invalid:
        click.echo(f"  invalid {path}: {reason}")
    if catalog_stats is not None:
        _print_stats(catalog_stats)


def _print_stats(stats: dict[str, Any]) -> None:
    click.echo(f"catalog: {stats['total_runs']} runs "
               f"({', '.join(f'{k} {v}' for k, v in stats['by_status'].items()) or 'none'}); "
               f"from {stats['oldest_run']} to {stats['newest_run']}")
    print_table([{"run_type": k, "runs": v} for k, v in stats["by_run_type"].items()])
    print_table([{"artifact": k, **v} for k, v in stats["artifacts"].items()])


@backtest.command("catalog-query")
@duckdb_option
@click.option("--filter", "filter_text", metavar="TEXT",
              help="Only runs matching this filter, e.g. \"status = 'failed' AND "
                   "params.policy.sl < 0.2\" (grammar: docs/schemas.md, Run filters).")
@click.option("--order-by", metavar="TEXT",
              help="Sort keys, e.g. \"metrics.median_return_bps DESC, created_at\" "
                   "(default: newest first; nulls last).")
@click.option("--columns", metavar="A,B,...",
              help="Columns of the table/CSV: fields such as status, params.policy.sl, "
                   "metrics.sharpe, tags.round, or policy, calls, tags.")
@click.option("--only-changed", is_flag=True,
              help="Show only the columns whose values differ between the listed runs "
                   "(without --columns: every parameter, metric and tag is a candidate).")
@click.option("--include-deleted", is_flag=True, help="List deleted runs too.")
@click.option("--only-deleted", is_flag=True, help="List only deleted runs.")
@click.option("--run-type", type=click.Choice(RUN_TYPES), help="Only runs of this type.")
@click.option("--status", type=click.Choice(RUN_STATUSES), help="Only runs with this status.")
@click.option("--git-branch", help="Only runs from this git branch.")
@click.option("--from-date", help="Created on or after (YYYY-MM-DD or ISO datetime, UTC).")
@click.option("--to-date", help="Created on or before (a bare date includes that whole day).")
@click.option("--limit", type=click.IntRange(min=0), default=10, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True,
              help="Skip this many matching runs (paging).")
@click.option("--run-id", help="A run id; with --artifact-type prints that artifact's path.")
@click.option("--artifact-type", type=click.Choice(ARTIFACT_TYPES))
@format_option("table", "json", "csv")
@lock_timeout_option
def catalog_query(duckdb_path: str, filter_text: str | None, order_by: str | None,
                  columns: str | None, only_changed: bool, include_deleted: bool,
                  only_deleted: bool, run_type: str | None, status: str | None,
                  git_branch: str | None, from_date: str | None, to_date: str | None,
                  limit: int, offset: int, run_id: str | None, artifact_type: str | None,
                  fmt: str, lock_timeout: float | None) -> None:
    """List cataloged runs, newest first (or print one artifact's path).

    The old flags (--run-type, --status, ...) and --filter are AND-ed. JSON output is
    {"runs": [...], "count": listed, "total": matching}.
    """
    from quantbot.artifacts.catalog import flat_row, get_artifact_path, listing_columns
    from quantbot.artifacts.catalog.listing import check_columns, list_selection, selection
    from quantbot.artifacts.catalog.query import flag_conditions
    from quantbot.errors import RunNotFoundError

    if artifact_type and run_id is None:
        raise click.UsageError("--artifact-type needs --run-id")
    if run_id is not None and artifact_type:
        path = get_artifact_path(duckdb_path, run_id, artifact_type)
        if fmt == "json":
            print_json({"run_id": run_id, "artifact_type": artifact_type, "path": path})
        else:
            click.echo(path)
        return
    chosen = check_columns([c.strip() for c in columns.split(",") if c.strip()]) \
        if columns else None
    flags = flag_conditions(run_type, status, git_branch, from_date, to_date, run_id)
    sel = selection(filter_text, order_by, extra=flags, only_deleted=only_deleted,
                    include_deleted=include_deleted or run_id is not None)
    listing = list_selection(duckdb_path, sel, limit=limit, offset=offset,
                             lock_timeout=lock_timeout)
    if run_id is not None and not listing.runs:
        raise RunNotFoundError(f"run {run_id} is not in the catalog (run catalog-sync?)")
    if fmt == "json":
        print_json({"runs": listing.runs, "count": len(listing.runs), "total": listing.total})
        return
    cols = listing_columns(listing.runs, chosen, only_changed)
    rows = [flat_row(r, cols) for r in listing.runs]
    if fmt == "table":
        for row in rows:
            if row.get("error"):
                row["error"] = _one_line(row["error"], 60)
    print_rows(rows, fmt)
    if fmt == "table" and listing.total > offset + len(rows):
        click.echo(f"... {listing.total - offset - len(rows)} more matching runs "
                   "(--limit, --offset)")


def _one_line(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[:width - 3] + "..."


@backtest.command("show")
@click.argument("run_id")
@duckdb_option
@base_dir_option
@format_option("table", "json")
def show(run_id: str, duckdb_path: str, base_dir: str, fmt: str) -> None:
    """Show a run's manifest and artifact inventory (from the catalog or the base dir)."""
    from quantbot.artifacts.ops.describe import describe_run

    info = describe_run(run_id, catalog=duckdb_path, base_dir=base_dir)
    labels = _labels(duckdb_path, info["manifest"]["run_id"]) if info["cataloged"] else None
    if fmt == "json":
        print_json({**info, "labels": labels} if labels else info)
        return
    m = info["manifest"]
    click.echo(f"run {m['run_id']}  ({m['run_type']}, {m['status']})")
    if labels and labels["name"]:
        click.echo(f"  name       {labels['name']}")
    click.echo(f"  folder     {info['run_dir']}")
    click.echo(f"  cataloged  {'yes' if info['cataloged'] else 'no'}")
    if labels and labels["deleted_at"]:
        click.echo(f"  deleted    {labels['deleted_at']}")
    for key in ("created_at", "started_at", "completed_at"):
        if m.get(key):
            click.echo(f"  {key:<10} {m[key]}")
    if m.get("git_commit"):
        dirty = " (dirty)" if m.get("git_dirty") else ""
        click.echo(f"  git        {m.get('git_branch') or '?'} @ {m['git_commit'][:12]}{dirty}")
    ds = m.get("dataset", {})
    click.echo(f"  dataset    {ds.get('from', '?')} .. {ds.get('to', '?')}, interval "
               f"{ds.get('interval') or '?'}, {ds.get('calls_count', 0)} calls")
    params = {k: v for k, v in m.get("parameters", {}).items() if k != "config_hash"}
    if m["run_type"] == "sweep":  # the task list is long: its counts here, all of it in json
        counts = params.pop("counts", {})
        for key in ("spec", "tasks", "outcomes"):
            params.pop(key, None)
        click.echo("  tasks      " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    width = max(40, shutil.get_terminal_size((100, 24)).columns - 13)
    for i, (key, value) in enumerate(params.items()):
        text = _one_line(json.dumps(value, default=str) if isinstance(value, dict | list)
                         else str(value), width - len(key) - 2)
        click.echo(f"  {'parameters' if i == 0 else '':<10} {key}: {text}")
    if labels and labels["tags"]:
        click.echo("  tags       " + ", ".join(f"{k}={v}" for k, v in labels["tags"].items()))
    if labels and labels["notes"]:
        last = labels["notes"][-1]
        click.echo(f"  notes      {len(labels['notes'])} (last: {last['text']})")
    if m.get("timing"):
        click.echo("  timing     " + ", ".join(f"{k} {v:.1f}" for k, v in m["timing"].items()))
    if m.get("error"):
        phase = f" (in phase {m['error']['phase']})" if m["error"].get("phase") else ""
        click.echo(f"  error      {m['error']['type']}: {m['error']['message']}{phase}")
    print_table(info["artifacts"], title="artifacts:")


def _labels(duckdb_path: str, run_id: str) -> dict[str, Any] | None:
    """The run's name, tags, notes and deletion as the catalog has them (None when the
    catalog cannot say: busy, or older than the label tables)."""
    from quantbot.artifacts.ops.annotate import run_annotations_state
    from quantbot.errors import CatalogError

    try:
        return run_annotations_state(duckdb_path, run_id)
    except CatalogError:
        return None


@backtest.command("sql")
@click.argument("query")
@duckdb_option
@format_option("table", "json", "csv")
@click.option("--max-rows", type=click.IntRange(min=1), default=100, show_default=True,
              help="Rows printed in table format (json/csv print all).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS",
              help="Interrupt the statement after this long (default 5). Above 5 s it runs on "
                   "a snapshot copy of the catalog, so catalog-sync is never held up.")
@click.option("--allow-read", "allow_read", multiple=True, metavar="PATH",
              type=click.Path(exists=True),
              help="A file or directory the statement may read (repeatable); every other "
                   "file is unreadable and nothing is ever writable.")
@lock_timeout_option
def sql(query: str, duckdb_path: str, fmt: str, max_rows: int, timeout: float | None,
        allow_read: tuple[str, ...], lock_timeout: float | None) -> None:
    """Run one read-only SELECT against the catalog and its cross-run views (all_trades, ...)."""
    from quantbot.artifacts.catalog import run_sql

    limit = {} if timeout is None else {"timeout": timeout}
    table = run_sql(duckdb_path, query, allow_read=allow_read, lock_timeout=lock_timeout, **limit)
    rows = table.slice(0, max_rows).to_pylist() if fmt == "table" else table.to_pylist()
    print_rows(rows, fmt)
    if fmt == "table" and table.num_rows > max_rows:
        click.echo(f"... {table.num_rows - max_rows} more rows (use --format csv for all)")
