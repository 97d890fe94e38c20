"""The command groups; commands register themselves from their own modules."""

from __future__ import annotations

import click

from quantbot import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="quantbot")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--s3-endpoint", metavar="URL",
              help="Endpoint of an S3-compatible store for s3:// base dirs "
                   "(default: env QUANTBOT_S3_ENDPOINT or AWS_ENDPOINT_URL).")
def cli(debug: bool, s3_endpoint: str | None) -> None:
    """quantbot: store, catalog and analyse backtest runs."""
    # Read by the --base-dir option of each command (options.StorageParam): the endpoint
    # travels with the opened storage, never through the process environment.


@cli.group()
def backtest() -> None:
    """Backtest runs: write, catalog, query, analyse."""


# Importing the command modules attaches their commands to the groups above.
from quantbot.cli import (  # noqa: E402,F401
    analysis_cmds,  # noqa: E402,F401
    catalog_cmds,
    curate_cmds,  # noqa: E402,F401
    demo_cmd,
    ops_cmds,  # noqa: E402,F401
    optimize_cmds,  # noqa: E402,F401
    run_cmds,  # noqa: E402,F401
    sweep_cmd,  # noqa: E402,F401
    ui_cmd,  # noqa: E402,F401
)
