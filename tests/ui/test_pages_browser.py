"""A real headless Chromium (Debian's /usr/bin/chromium through Playwright) opens the run,
compare and callers pages served by a real uvicorn on loopback: every Plotly chart is
drawn (an SVG inside each .js-plotly-plot) and no page logs a console error."""

# ruff: noqa: F811 (the imported fixture ``demo`` is named as a test argument)
from __future__ import annotations

import os
import threading
import time

import pytest
from qbtest import unavailable

from .page_runs import demo, make_app  # noqa: F401 (demo is a fixture)

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server(demo):
    """uvicorn serving the app on a free loopback port, in a thread of this process."""
    import uvicorn

    config = uvicorn.Config(make_app(demo["base"], demo["catalog"]), host="127.0.0.1", port=0,
                            log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


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
            # the clipboard answers asynchronously (and "copied" turns back after 1.5 s):
            # the first label after the click is the answer
            label = page.wait_for_function(
                "() => { const t = document.querySelector('[data-copy=\"rerun-command\"]')"
                ".textContent; return t !== 'copy' && t; }", timeout=10_000).json_value()
            assert label in ("copied", "selected: press Ctrl+C")
            assert errors == []
        finally:
            browser.close()
