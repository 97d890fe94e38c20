"""Operations: catalog-watch (daemon), verify, gc, archive and restore."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from quantbot.cli.app import backtest
from quantbot.cli.options import base_dir_option, duckdb_option, format_option, lock_timeout_option
from quantbot.cli.render import print_json, print_table

if TYPE_CHECKING:
    from quantbot.artifacts.store.backends import Storage


@backtest.command("catalog-watch")
@base_dir_option
@duckdb_option
@click.option("--rescan-interval", type=click.FloatRange(min=0, min_open=True), default=60.0,
              show_default=True, help="Seconds between full rescans (a safety net for missed events).")
@click.option("--debounce-ms", type=click.IntRange(min=1), default=500, show_default=True,
              help="File events arriving within this window are registered as one batch.")
@click.option("--poll", "force_polling", is_flag=True, default=None,
              help="Poll the filesystem instead of using OS notifications (network filesystems).")
@lock_timeout_option
def catalog_watch(base_dir: str, duckdb_path: str, rescan_interval: float, debounce_ms: int,
                  force_polling: bool | None, lock_timeout: float | None) -> None:
    """Register runs in the catalog as they complete or fail, until SIGINT/SIGTERM.

    Prints one timestamped line per registered or invalid run. The catalog is opened only
    while a batch is written, so catalog-query and sql keep working meanwhile.
    """
    import signal
    import threading

    from quantbot.artifacts.catalog.watch import watch_catalog

    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)
    watch_catalog(catalog=duckdb_path, base_dir=base_dir, stop_event=stop, rescan_interval=rescan_interval,
                  debounce_ms=debounce_ms, lock_timeout=lock_timeout,
                  on_event=lambda e: click.echo(e.line()), force_polling=force_polling)


@backtest.command("verify")
@click.argument("run_id", required=False)
@click.option("--all", "all_runs", is_flag=True, help="Verify every run under --base-dir.")
@base_dir_option
@format_option("table", "json")
def verify(run_id: str | None, all_runs: bool, base_dir: str, fmt: str) -> None:
    """Check manifests, artifacts (bytes, sha256, rows, schema) and _SUCCESS markers.

    Prints one row per problem; exits 1 if there is any.
    """
    from quantbot.artifacts.ops.verify import verify_runs

    if bool(run_id) == all_runs:
        raise click.UsageError("give a RUN_ID or --all (not both)")
    report = verify_runs(base_dir, run_id)
    if fmt == "json":
        print_json(report.to_dict())
    elif report.problems:
        print_table([{"run_id": p.run_id, "path": p.path, "problem": p.problem}
                     for p in report.problems])
    if report.problems:
        runs = len({p.run_id for p in report.problems})
        click.echo(f"{len(report.problems)} problem(s) in {runs} of {report.runs_checked} run(s)",
                   err=True)
        # not ctx.exit(1): cli.main(standalone_mode=False) returns Exit codes instead of exiting
        raise SystemExit(1)
    if fmt != "json":
        click.echo(f"{report.runs_checked} run(s) checked, no problems")


@backtest.command("gc")
@click.option("--stale", default="24h", show_default=True,
              help="Age after which a run without _SUCCESS (pending, running, or completed "
                   "but never sealed) counts as crashed (s, m, h, d, w).")
@click.option("--deleted", is_flag=True,
              help="Instead: remove for good the runs soft-deleted (`delete`) longer ago "
                   "than --older-than (folder and catalog rows).")
@click.option("--older-than", default="30d", show_default=True,
              help="With --deleted: how long ago the delete in force must be (s, m, h, d, w).")
@click.option("--apply", is_flag=True,
              help="Mark the stale runs failed and finish what a killed archive left; with "
                   "--deleted, remove the runs (default: list only).")
@base_dir_option
@duckdb_option
@format_option("table", "json")
@lock_timeout_option
def gc(stale: str, deleted: bool, older_than: str, apply: bool, base_dir: Storage,
       duckdb_path: str, fmt: str, lock_timeout: float | None) -> None:
    """List runs left unfinished by a crashed process; --apply marks them failed.

    With --deleted: list (or with --apply remove) the runs soft-deleted longer ago than
    --older-than, one line per run.
    """
    from dataclasses import asdict

    from quantbot.artifacts.ops.archive import cleanup_archive_leftovers
    from quantbot.artifacts.ops.gc import collect_deleted_runs, collect_stale_runs

    if deleted:
        gone = collect_deleted_runs(base_dir, older_than, catalog=duckdb_path, apply=apply,
                                    lock_timeout=lock_timeout)
        if fmt == "json":
            print_json({"applied": apply, "deleted": [asdict(d) for d in gone],
                        "count": len(gone)})
            return
        for d in gone:
            click.echo(d.line())
        click.echo(f"removed {len(gone)} run(s) deleted more than {older_than} ago" if apply
                   else f"{len(gone)} run(s) deleted more than {older_than} ago; dry run, "
                        "nothing changed (use --apply)")
        return
    runs = collect_stale_runs(base_dir, stale, apply=apply)
    leftovers = (cleanup_archive_leftovers(base_dir, apply=apply)
                 if base_dir.local_path(base_dir.root) is not None else [])
    if fmt == "json":
        print_json({"applied": apply, "stale": [asdict(r) for r in runs], "count": len(runs),
                    "archive_leftovers": leftovers})
        return
    for line in leftovers:
        click.echo(line)
    if not runs:
        click.echo(f"no runs stale for more than {stale}")
        return
    action = (lambda r: "marked failed" if r.marked_failed else "skipped (finished meanwhile)") \
        if apply else (lambda r: "would mark failed")
    print_table([{"run_id": r.run_id, "status": r.status, "since": r.since,
                  "age_h": r.age_hours, "action": action(r), "path": r.path} for r in runs])
    if not apply:
        click.echo(f"{len(runs)} stale run(s); dry run, nothing changed (use --apply)")


@backtest.command("archive")
@click.option("--before", required=True, metavar="YYYY-MM",
              help="Archive every month partition older than this month.")
@click.option("--out", "out_dir", default=None,
              help="Folder for the archives [default: <base-dir>/../archive].")
@base_dir_option
@duckdb_option
@format_option("table", "json")
@lock_timeout_option
def archive(before: str, out_dir: str | None, base_dir: str, duckdb_path: str, fmt: str,
            lock_timeout: float | None) -> None:
    """Pack old month partitions into runs-YYYY-MM.tar.gz, verify, then remove them."""
    from dataclasses import asdict

    from quantbot.artifacts.ops.archive import archive_months

    done = archive_months(before, base_dir=base_dir, out_dir=out_dir, catalog=duckdb_path,
                          lock_timeout=lock_timeout)
    if fmt == "json":
        print_json([{**asdict(a), "runs": len(a.run_ids)} for a in done])
        return
    if not done:
        click.echo(f"no month partitions before {before}")
        return
    print_table([{"month": a.month, "runs": len(a.run_ids), "files": a.files, "bytes": a.bytes,
                  "uncataloged": a.unregistered, "archive": a.path} for a in done])


@backtest.command("restore")
@click.argument("archive_path", metavar="ARCHIVE")
@base_dir_option
@duckdb_option
@format_option("table", "json")
@lock_timeout_option
def restore(archive_path: str, base_dir: str, duckdb_path: str, fmt: str,
            lock_timeout: float | None) -> None:
    """Bring an archived month back (never overwriting a run) and sync the catalog."""
    from quantbot.artifacts.ops.archive import restore_archive

    result = restore_archive(archive_path, base_dir=base_dir, catalog=duckdb_path,
                             lock_timeout=lock_timeout)
    sync = result.sync.to_dict() if result.sync else None
    if fmt == "json":
        print_json({"archive": result.archive, "months": result.months, "run_ids": result.run_ids,
                    "run_dirs": result.run_dirs, "sync": sync})
        return
    click.echo(f"restored {len(result.run_ids)} run(s) of {', '.join(result.months)} "
               f"from {result.archive}")
    if sync:
        click.echo(f"catalog-sync: registered {sync['registered']}, already present "
                   f"{sync['already_present']}, incomplete {sync['incomplete']}, "
                   f"invalid {len(sync['invalid'])}")
        for item in sync["invalid"]:
            click.echo(f"  invalid {item['path']}: {item['reason']}")
