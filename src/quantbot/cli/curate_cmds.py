"""tag, untag, name, note, delete, undelete, history: curating runs.

Every command writes append-only annotation records into the base dir and applies them to
the catalog (``quantbot.artifacts.ops.annotate``). The bulk forms (``--filter``) select
runs with the filter language of ``catalog-query`` and change nothing without ``--yes``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from quantbot.cli.app import backtest
from quantbot.cli.options import base_dir_option, duckdb_option, format_option, lock_timeout_option
from quantbot.cli.render import print_json, print_table

if TYPE_CHECKING:
    from quantbot.artifacts.store.annotations import AnnotationRecord
    from quantbot.artifacts.store.backends import Storage

F = Callable[..., Any]


def _common(f: F) -> F:
    options = [base_dir_option, duckdb_option,
               click.option("--author", metavar="TEXT",
                            help="Who says it (default: user@host)."),
               format_option("table", "json"), lock_timeout_option]
    for option in reversed(options):
        f = option(f)
    return f


def _bulk(verb: str) -> Callable[[F], F]:
    def deco(f: F) -> F:
        f = click.option("--yes", is_flag=True, help=f"With --filter: {verb} the matching "
                                                     "runs (without it: count only).")(f)
        return click.option("--filter", "filter_text", metavar="EXPR",
                            help=f"{verb.capitalize()} every run this filter selects (the "
                                 "language of catalog-query --filter) instead of RUN "
                                 "arguments.")(f)
    return deco


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """A catalog that could not take the records is a warning line, not a failure."""
    from quantbot.artifacts.ops.annotate import CatalogPendingWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CatalogPendingWarning)
        yield
    for w in caught:
        if issubclass(w.category, CatalogPendingWarning):
            click.echo(f"warning: {w.message}", err=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _selected(kw: dict[str, Any], runs: list[str], verb: str, *,
              only_deleted: bool = False) -> list[str] | None:
    """The runs to change: RUN arguments, or those ``--filter`` selects; None when the
    filter's count was shown and ``--yes`` is missing (the caller exits 1)."""
    text = kw["filter_text"]
    if text is None:
        if not runs:
            raise click.UsageError("give RUN arguments or --filter")
        return runs
    if runs:
        raise click.UsageError(f"give RUN arguments or --filter, not both (got {runs[0]!r})")
    from quantbot.artifacts.catalog.listing import list_runs

    listing = list_runs(kw["duckdb_path"], text, limit=None, only_deleted=only_deleted,
                        lock_timeout=kw["lock_timeout"])
    ids = [r["run_id"] for r in listing.runs]
    if not ids:
        click.echo(f"0 runs match; nothing to {verb}")
        return []
    if not kw["yes"]:
        click.echo(f"{len(ids)} runs match; rerun with --yes to {verb} them")
        return None
    return ids


def _api(kw: dict[str, Any]) -> dict[str, Any]:
    return {"base_dir": kw["base_dir"], "catalog": kw["duckdb_path"], "author": kw["author"],
            "lock_timeout": kw["lock_timeout"]}


def _report(records: list[AnnotationRecord], fmt: str, line: str) -> None:
    if fmt == "json":
        print_json([r.to_dict() for r in records])
    else:
        click.echo(line)


def _pair(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key, value


@backtest.command("tag")
@click.argument("args", nargs=-1, metavar="RUN... KEY=VALUE...")
@_bulk("tag")
@_common
def tag_cmd(args: tuple[str, ...], **kw: Any) -> None:
    """Set tags on runs: the runs first, then key=value pairs (keys: A-Z a-z 0-9 _ . -)."""
    from quantbot.artifacts.ops.annotate import tag_runs

    first = next((i for i, a in enumerate(args) if "=" in a), len(args))
    runs, pairs = list(args[:first]), list(args[first:])
    stray = next((a for a in pairs if "=" not in a), None)
    if stray is not None:
        raise click.UsageError(f"expected key=value after the runs, got {stray!r}")
    if not pairs:
        raise click.UsageError("give at least one key=value")
    tags = dict(_pair(p) for p in pairs)
    ids = _selected(kw, runs, "tag")
    if ids is None:
        raise SystemExit(1)
    if not ids:
        return
    with _warnings_as_lines():
        records = tag_runs(ids, tags, **_api(kw))
    shown = " ".join(f"{k}={v}" for k, v in tags.items())
    _report(records, kw["fmt"], f"tagged {len({r.run_id for r in records})} run(s): {shown}")


@backtest.command("untag")
@click.argument("args", nargs=-1, metavar="RUN... KEY...")
@_bulk("untag")
@_common
def untag_cmd(args: tuple[str, ...], **kw: Any) -> None:
    """Remove tags from runs: the runs first, then the keys (the last argument is always a
    key; with --filter every argument is)."""
    from quantbot.artifacts.ops.annotate import untag_runs
    from quantbot.artifacts.ops.lookup import is_run_ref

    if kw["filter_text"] is not None:
        runs, keys = [], list(args)
    else:
        first = next((i for i, a in enumerate(args[:-1]) if not is_run_ref(a)),
                     max(len(args) - 1, 0))
        runs, keys = list(args[:first]), list(args[first:])
    if not keys:
        raise click.UsageError("give at least one tag key")
    ids = _selected(kw, runs, "untag")
    if ids is None:
        raise SystemExit(1)
    if not ids:
        return
    with _warnings_as_lines():
        records = untag_runs(ids, keys, **_api(kw))
    _report(records, kw["fmt"],
            f"untagged {len({r.run_id for r in records})} run(s): {' '.join(keys)}")


@backtest.command("name")
@click.argument("run")
@click.argument("text")
@_common
def name_cmd(run: str, text: str, **kw: Any) -> None:
    """Name a run (the last name given wins; "" removes it)."""
    from quantbot.artifacts.ops.annotate import name_run

    with _warnings_as_lines():
        record = name_run(run, text, **_api(kw))
    _report([record], kw["fmt"], f"named {record.run_id}: {text}")


@backtest.command("note")
@click.argument("run")
@click.argument("text")
@_common
def note_cmd(run: str, text: str, **kw: Any) -> None:
    """Add a note to a run (notes accumulate; see `history`)."""
    from quantbot.artifacts.ops.annotate import note_run

    with _warnings_as_lines():
        record = note_run(run, text, **_api(kw))
    _report([record], kw["fmt"], f"noted {record.run_id} ({len(text)} characters)")


def _set_deleted(runs: tuple[str, ...], kw: dict[str, Any], verb: str) -> None:
    from quantbot.artifacts.ops.annotate import delete_runs, undelete_runs

    ids = _selected(kw, list(runs), verb, only_deleted=verb == "undelete")
    if ids is None:
        raise SystemExit(1)
    if not ids:
        return
    with _warnings_as_lines():
        records = (delete_runs if verb == "delete" else undelete_runs)(ids, **_api(kw))
    _report(records, kw["fmt"], f"{verb}d {len(records)} run(s)")


@backtest.command("delete")
@click.argument("runs", nargs=-1, metavar="RUN...")
@_bulk("delete")
@_common
def delete_cmd(runs: tuple[str, ...], **kw: Any) -> None:
    """Soft-delete runs: hidden from listings and the all_* views, kept on disk until
    `gc --deleted` removes them."""
    _set_deleted(runs, kw, "delete")


@backtest.command("undelete")
@click.argument("runs", nargs=-1, metavar="RUN...")
@_bulk("undelete")
@_common
def undelete_cmd(runs: tuple[str, ...], **kw: Any) -> None:
    """Bring soft-deleted runs back (--filter selects among the deleted runs)."""
    _set_deleted(runs, kw, "undelete")


@backtest.command("history")
@click.argument("run")
@base_dir_option
@duckdb_option
@format_option("table", "json")
def history_cmd(run: str, base_dir: Storage, duckdb_path: str, fmt: str) -> None:
    """Every annotation record of a run, oldest first."""
    from quantbot.artifacts.ops.annotate import annotation_history

    records = annotation_history(run, base_dir=base_dir, catalog=duckdb_path)
    if fmt == "json":
        print_json([r.to_dict() for r in records])
        return
    print_table([{"created_at": r.created_at, "action": r.action, "key": r.key,
                  "value": r.value, "author": r.author} for r in records])
