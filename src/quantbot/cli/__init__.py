"""The command line: ``quantbot backtest ...``.

A thin layer: each command parses its flags, calls one API function and prints the result.
Errors a user can cause print one line on stderr and exit non-zero; ``--debug`` shows the
traceback. Heavy libraries are imported inside the commands that need them, so a quick
query starts fast.
"""

from __future__ import annotations

import os
import sys

import click

from quantbot.cli.app import backtest, cli


def main(argv: list[str] | None = None) -> None:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or bool(
        os.environ.get("QUANTBOT_DEBUG"))
    try:
        # Without standalone mode click *returns* ctx.exit(n)'s code instead of exiting.
        code = cli.main(args=argv, prog_name="quantbot", standalone_mode=False)
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.exceptions.Abort:  # click's form of Ctrl-C
        click.echo("error: interrupted", err=True)
        raise SystemExit(130) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        raise SystemExit(130) from None
    except BrokenPipeError:
        raise SystemExit(0) from None
    except Exception as exc:  # one line, never a traceback dump (unless --debug)
        if debug:
            raise
        from quantbot.errors import QuantbotError

        if isinstance(exc, QuantbotError):
            click.echo(f"error: {exc}", err=True)
        else:
            click.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for details)", err=True)
        raise SystemExit(1) from None
    raise SystemExit(code if isinstance(code, int) else 0)


__all__ = ["backtest", "cli", "main"]
