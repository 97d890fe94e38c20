"""``quantbot backtest ui``: serve the web app (quantbot.ui) over the catalog and the runs.

Binds 127.0.0.1 unless told otherwise. Any other address needs a token: the one given
with ``--token`` or one generated now and printed in the URL, as Jupyter does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from quantbot.cli.app import backtest
from quantbot.cli.options import base_dir_option, duckdb_option, lock_timeout_option

if TYPE_CHECKING:
    from quantbot.artifacts.store.backends import Storage

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def ui_command_line(duckdb_path: str, base_dir: Storage) -> str:
    """The command that starts the app on ``duckdb_path`` (what ``demo`` prints last)."""
    import os
    import shlex

    local = base_dir.local_path(base_dir.root)
    where = base_dir.uri(base_dir.root) if local is None else os.path.relpath(local)
    return (f"quantbot backtest ui --base-dir {shlex.quote(where)} "
            f"--duckdb {shlex.quote(str(duckdb_path))}")


@backtest.command("ui")
@base_dir_option
@duckdb_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback requires a token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to bind (0: any free port).")
@click.option("--open", "open_browser", is_flag=True, help="Open the app in the web browser.")
@lock_timeout_option
@click.option("--token", default=None, envvar="QUANTBOT_UI_TOKEN",
              help="Token every request must carry (default: none on loopback, a generated "
                   "one on other addresses; env QUANTBOT_UI_TOKEN).")
def ui(base_dir: Storage, duckdb_path: str, host: str, port: int, open_browser: bool,
       lock_timeout: float | None, token: str | None) -> None:
    """Serve the web app: runs, run pages, compare, callers, SQL, JSON API (/docs)."""
    import socket

    import uvicorn

    from quantbot.ui.app import create_app
    from quantbot.ui.security import new_token

    if host not in LOOPBACK and not token:
        token = new_token()
    app = create_app(base_dir, duckdb_path, token=token, lock_timeout=lock_timeout)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        from quantbot.errors import InvalidArgumentError

        raise InvalidArgumentError(f"cannot bind {host}:{port}: {err.strerror}") from None
    bound = sock.getsockname()[1]
    shown = "localhost" if host in LOOPBACK else host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{bound}/"
    if token:
        url += f"?token={token}"
    click.echo(f"quantbot ui on {url}  (catalog {duckdb_path}; Ctrl+C stops)", err=False)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
