"""Uniform output for every command: a readable table, JSON for scripts, or CSV.

Cells come from user data (caller names, SQL results), so each format defends its reader:
the table shows control characters as visible escapes (an ESC never reaches the terminal,
a newline never breaks a row), CSV neutralises spreadsheet formulas (OWASP CSV injection:
a text cell starting with = + - @ TAB or CR gets a leading '), JSON is exact (json escapes).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
from typing import Any

import click

# C0 controls, DEL, C1 controls, Unicode line/paragraph separators, bidi overrides/isolates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _visible(char: re.Match[str]) -> str:
    c = char.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) <= 0xFF else f"\\u{ord(c):04x}")


def escape_control(text: str) -> str:
    """``text`` with every control character written as a visible escape (``\\x1b``, ``\\n``)."""
    return _CONTROL.sub(_visible, text)


def csv_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading '; numbers stay as is."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return escape_control(str(value))


REPORT_INDENT = 13  # "  " + an 11-character label column


def report_width() -> int | None:
    """Columns to wrap a report at on a terminal (its width, or ``COLUMNS``); None when
    stdout is not a terminal, so logs and scripts get each field on one line."""
    if not sys.stdout.isatty():
        return None
    return max(shutil.get_terminal_size().columns, 40)


def echo_field(label: str, parts: list[str], sep: str | list[str] = ", ") -> None:
    """One report field, ``  label      part, part``, wrapped between parts at the terminal
    width with its continuation under the first part (readable at 50 columns). ``sep``:
    one separator, or one per gap (``len(parts) - 1``); a break keeps its non-blank end."""
    width = report_width()
    seps = [sep] * max(len(parts) - 1, 0) if isinstance(sep, str) else sep
    lines = [f"  {label:<{REPORT_INDENT - 2}}{parts[0] if parts else ''}"]
    for gap, part in zip(seps, parts[1:], strict=True):
        if width and len(lines[-1]) + len(gap) + len(part) + 1 > width:
            lines[-1] += gap.rstrip()
            lines.append(" " * REPORT_INDENT + part)
        else:
            lines[-1] += gap + part
    click.echo("\n".join(lines))


def print_table(rows: list[dict[str, Any]], title: str | None = None) -> None:
    """An aligned plain-text table (no colour codes, so it pipes and diffs cleanly)."""
    if title:
        click.echo(escape_control(title))
    if not rows:
        click.echo("(no rows)")
        return
    keys = list(rows[0])
    cols = [escape_control(str(k)) for k in keys]
    cells = [[_cell(r.get(k)) for k in keys] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def print_csv(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    keys = list(rows[0])
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([csv_safe(str(k)) for k in keys])
    writer.writerows([("" if (v := r.get(k)) is None else csv_safe(v)) for k in keys] for r in rows)


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


def stderr_progress(*fields: str, transient: bool = True) -> Any:
    """A rich progress bar on stderr: the task's description, a bar, done/total, the
    ``fields`` (rich TextColumn templates, e.g. ``"failed {task.fields[failed]}"``), elapsed
    time and ETA. Only for a terminal: callers check ``sys.stderr.isatty()`` first."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    *(TextColumn(f) for f in fields), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=transient)
