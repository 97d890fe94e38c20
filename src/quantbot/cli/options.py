"""Options shared by many commands, with the same names, defaults and env vars everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

DEFAULT_BASE_DIR = "runs"
DEFAULT_CATALOG = "data/backtest_catalog.duckdb"

F = Callable[..., Any]


def duckdb_option(f: F) -> F:
    return click.option(
        "--duckdb", "duckdb_path", default=DEFAULT_CATALOG, show_default=True,
        envvar="QUANTBOT_CATALOG", help="Catalog file (env QUANTBOT_CATALOG).")(f)


def base_dir_option(f: F) -> F:
    return click.option(
        "--base-dir", default=DEFAULT_BASE_DIR, show_default=True, envvar="QUANTBOT_BASE_DIR",
        help="Root of the run directories (env QUANTBOT_BASE_DIR).")(f)


def format_option(*choices: str) -> Callable[[F], F]:
    def deco(f: F) -> F:
        return click.option("--format", "fmt", type=click.Choice(choices), default=choices[0],
                            show_default=True, help="Output format.")(f)
    return deco


def lock_timeout_option(f: F) -> F:
    return click.option(
        "--lock-timeout", type=float, default=None,
        help="Seconds to wait for a catalog locked by another process (default 10, "
             "env QUANTBOT_LOCK_TIMEOUT).")(f)
