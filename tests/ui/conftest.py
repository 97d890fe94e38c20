"""A real app server over a small real catalog, shared by the web app's tests.

``UiServer`` starts ``quantbot backtest ui`` in a subprocess on a free loopback port and
waits for ``/healthz``; the catalog holds real runs written through the public API (policy
runs with trades and pooled summaries, a failed run, a run whose caller name, tag and name
are HTML) and synced by ``catalog_all_runs``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from qbtest import make_run, rows, summary_row, trade_row

HOSTILE = "<script>alert('x')</script>"
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DemoCatalog:
    base_dir: Path
    catalog: Path
    policy_runs: list[str] = field(default_factory=list)  # oldest first
    failed_run: str = ""
    hostile_run: str = ""


def policy_run(base_dir: Path, i: int, *, caller: str | None = None, n_trades: int = 30) -> str:
    """A completed policy run with ``n_trades`` trades and a pooled summary row."""
    summary = [summary_row(0, policy_id=f"fixed:{i}", trades_count=n_trades,
                           win_rate=0.4 + 0.05 * i, median_return_bps=10.0 * i, split="all")]
    if caller is not None:
        summary.append(summary_row(1, policy_id=f"fixed:{i}", caller_name=caller, split="all"))
    run = make_run(base_dir, "policy", parameters={
        "policy_id": f"fixed:{i}", "policy": {"kind": "fixed_stop", "stop_pct": 0.1 * (i + 1)},
        "horizon": "1d"},
        dataset={"interval": "1m", "calls_count": 40 + i},
        artifacts={"trades": [trade_row(j, policy_id=f"fixed:{i}", call_id=f"c{i}-{j}")
                              for j in range(n_trades)],
                   "summary": summary, "errors": []})
    return run.run_id


def build_catalog(root: Path) -> DemoCatalog:
    from quantbot.artifacts import catalog_all_runs
    from quantbot.artifacts.ops.annotate import name_run, tag_runs

    base, db = root / "runs", root / "catalog.duckdb"
    demo = DemoCatalog(base, db)
    for i in range(4):
        demo.policy_runs.append(policy_run(base, i))
        time.sleep(0.002)  # distinct created_at: "newest first" is well defined
    demo.failed_run = make_run(base, "policy", fail=True,
                               artifacts={"errors": rows("errors", 1)}).run_id
    time.sleep(0.002)
    demo.hostile_run = policy_run(base, 9, caller=HOSTILE)
    catalog_all_runs(catalog=db, base_dir=base)
    tag_runs([demo.hostile_run], {"xss": HOSTILE}, base_dir=base, catalog=db)
    name_run(demo.hostile_run, HOSTILE, base_dir=base, catalog=db)
    return demo


@dataclass
class UiServer:
    """``quantbot backtest ui`` in a subprocess; ``url`` ends without a slash."""

    demo: DemoCatalog
    args: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    proc: subprocess.Popen[str] | None = None
    port: int = 0
    output: str = ""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> UiServer:
        self.port = free_port()
        cmd = [sys.executable, "-c", "from quantbot.cli import main; main()", "backtest", "ui",
               "--base-dir", str(self.demo.base_dir), "--duckdb", str(self.demo.catalog),
               "--host", self.host, "--port", str(self.port), *self.args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ui server exited: {self.proc.stdout.read()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("ui server did not start in 30 s")
        self.output = self.proc.stdout.readline()  # the URL line, printed before serving
        return self

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=20, **kw)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


def serve(demo: DemoCatalog) -> Iterator[UiServer]:
    srv = UiServer(demo, args=("--lock-timeout", "0.3")).start()
    yield srv
    srv.stop()


# Shared by the modules that leave the catalog as it is (one server per xdist worker);
# a module that adds runs or tags overrides both with module-scoped ones.
@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoCatalog:
    return build_catalog(tmp_path_factory.mktemp("ui"))


@pytest.fixture(scope="session")
def server(demo: DemoCatalog) -> Iterator[UiServer]:
    yield from serve(demo)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian chromium driven by Playwright (its own download is unreachable)."""
    if not os.path.exists(CHROMIUM):
        from qbtest import unavailable

        unavailable("chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()
