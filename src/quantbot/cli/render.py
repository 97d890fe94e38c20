"""Uniform output for every command: a readable table, JSON for scripts, or CSV."""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

import click


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def print_table(rows: list[dict[str, Any]], title: str | None = None) -> None:
    """An aligned plain-text table (no colour codes, so it pipes and diffs cleanly)."""
    if title:
        click.echo(title)
    if not rows:
        click.echo("(no rows)")
        return
    cols = list(rows[0])
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def print_csv(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)


def _strict(value: Any) -> Any:
    """JSON has no NaN/Infinity: such floats become null so any JSON parser accepts the output."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def print_json(value: Any) -> None:
    click.echo(json.dumps(_strict(value), indent=2, default=str, allow_nan=False))


def print_rows(rows: list[dict[str, Any]], fmt: str, title: str | None = None) -> None:
    if fmt == "json":
        print_json(rows)
    elif fmt == "csv":
        print_csv(rows)
    else:
        print_table(rows, title)
