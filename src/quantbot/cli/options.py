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
        "--duckdb", "--catalog", "duckdb_path", default=DEFAULT_CATALOG, show_default=True,
        envvar="QUANTBOT_CATALOG", help="Catalog file (env QUANTBOT_CATALOG).")(f)


class StorageParam(click.ParamType):
    """``--base-dir`` opened once, with the root command's ``--s3-endpoint``: commands get
    a configured Storage object and pass it on, so no function re-opens a URI string
    without the endpoint (and nothing is put in ``os.environ``)."""

    name = "path|uri"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        from quantbot.artifacts.store.backends import Storage, open_storage

        if isinstance(value, Storage):
            return value
        endpoint = ctx.find_root().params.get("s3_endpoint") if ctx is not None else None
        return open_storage(value, endpoint_url=endpoint)


def base_dir_option(f: F) -> F:
    return click.option(
        "--base-dir", type=StorageParam(), default=DEFAULT_BASE_DIR, show_default=True,
        envvar="QUANTBOT_BASE_DIR",
        help="Root of the run directories: a folder or s3://bucket/prefix "
             "(env QUANTBOT_BASE_DIR).")(f)


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


def sync_option(f: F) -> F:
    """``--sync``: the same on every command that writes a run (see ``run_cmds.writing_run``)."""
    return click.option("--sync", is_flag=True,
                        help="Register the run in the catalog right away (a failed run too).")(f)


class ExecutorParam(click.ParamType):
    """``--executor``: checked by ``parse_executor`` before the command runs (its
    ExecutorError is the one-line ``error: --executor '...': ...``, not a usage screen) and
    passed on as the normalised spec string; nothing is started until a command opens it."""

    name = "spec"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        from quantbot.backtest.executors import parse_executor

        return parse_executor(value)


def executor_option(f: F) -> F:
    """``--executor``: where the tasks run (see ``quantbot.backtest.executors``)."""
    return click.option(
        "--executor", type=ExecutorParam(), default="local", show_default=True,
        envvar="QUANTBOT_EXECUTOR",
        help="Where to evaluate: local (this process), dask://HOST:PORT (an existing Dask "
             "scheduler) or dask-local[:N] (a local cluster of N worker processes; "
             "env QUANTBOT_EXECUTOR).")(f)


def field_options(source: Any, names: tuple[str, ...]) -> Callable[[F], F]:
    """Options ``--<name>`` for the fields ``names`` of a dataclass (default, and help and
    unit in ``metadata``) or of a mapping name -> setting (``.default``, ``.help``,
    ``.unit``): default and help come from there, so the CLI and the Python API cannot
    disagree. A ``_ms`` setting becomes a duration option without the suffix (``48h``; a
    default in bars, ``2880bars``, is shown as is)."""
    import dataclasses

    from quantbot.durations import format_duration

    if dataclasses.is_dataclass(source):
        specs = {f.name: (f.default, f.metadata["help"], f.metadata.get("unit"),
                          f.metadata.get("choices", ())) for f in dataclasses.fields(source)}
    else:
        specs = {n: (s.default, s.help, s.unit, s.choices) for n, s in source.items()}

    def deco(f: F) -> F:
        for name in reversed(names):
            default, help_text, unit, choices = specs[name]
            flag, kwargs = name, {}
            if choices:
                kwargs = {"type": click.Choice(choices)}
            elif name.endswith("_ms"):
                flag = name.removesuffix("_ms")
                default = default if isinstance(default, str) else format_duration(default)
                kwargs = {"metavar": "DURATION"}
            elif unit == "duration":
                kwargs = {"metavar": "DURATION"}
            elif default is None:
                kwargs = {"metavar": "SPEC"}
            elif isinstance(default, (int, float)) and not isinstance(default, bool):
                kwargs = {"type": type(default)}
            f = click.option(f"--{flag.replace('_', '-')}", name, default=default,
                             show_default=default is not None, help=help_text, **kwargs)(f)
        return f
    return deco
