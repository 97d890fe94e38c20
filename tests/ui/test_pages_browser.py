"""A real headless Chromium (Debian's /usr/bin/chromium through Playwright) opens the run,
compare and callers pages served by a real uvicorn on loopback: every Plotly chart is
drawn (an SVG inside each .js-plotly-plot) and no page logs a console error."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from qbtest import unavailable

CHROMIUM = "/usr/bin/chromium"
SERVE = """
import sys, uvicorn
sys.path.insert(0, {tests!r})
from ui.conftest import make_app
uvicorn.run(make_app({base!r}, {catalog!r}), host="127.0.0.1", port={port}, log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo):
    port = _free_port()
    code = SERVE.format(tests=str(Path(__file__).parent.parent), base=str(demo["base"]),
                        catalog=str(demo["catalog"]), port=port)
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/callers", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"server did not start: {proc.stdout.read().decode()[-2000:]}")
        time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_charts_are_drawn_without_console_errors(server, demo):
    if not os.path.exists(CHROMIUM):
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ids = demo["ids"]
    pages = {f"/runs/{ids['full'][:8]}": 7, f"/compare?runs={ids['a']},{ids['b']},{ids['full']}": 2,
             "/callers": 1}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(f"{m.text} ({m.location})")
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            for path, charts in pages.items():
                page.goto(server + path)
                page.wait_for_function(
                    f"document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= {charts}",
                    timeout=20_000)
                drawn = page.eval_on_selector_all(
                    ".qb-plot", "els => els.map(e => e.classList.contains('js-plotly-plot')"
                                " && !!e.querySelector('svg'))")
                assert drawn == [True] * charts, (path, drawn)
            # the copy button: no clipboard on plain http, so the command is selected
            page.goto(server + f"/runs/{ids['a']}")
            page.click('[data-copy="rerun-command"]')
            assert page.inner_text('[data-copy="rerun-command"]') in ("copied",
                                                                     "selected: press Ctrl+C")
            assert errors == []
        finally:
            browser.close()
