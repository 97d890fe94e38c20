"""The run, compare and callers pages through the app (FastAPI TestClient, real runs):
status, the values shown, the embedded figures, and escaping of a ``<script>`` caller."""

# ruff: noqa: F811 (the imported fixture ``demo`` is named as a test argument)
from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from .page_runs import EVIL_CALLER, demo, make_app  # noqa: F401 (demo is a fixture)


@pytest.fixture(scope="module")
def client(demo):
    # a loopback host name: the app serves only those without a token
    return TestClient(make_app(demo["base"], demo["catalog"]), base_url="http://127.0.0.1")


def _figures(html):
    found = re.findall(r'<script type="application/json" class="qb-figure">(.*?)</script>', html,
                       re.DOTALL)
    return [json.loads(f) for f in found]


def _assert_escaped(html):
    assert EVIL_CALLER not in html and "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html  # the name, as text


def test_run_page(client, demo):
    run_id = demo["ids"]["a"]
    r = client.get(f"/runs/{run_id[:8]}")
    assert r.status_code == 200
    html = r.text
    for section in ("provenance", "parameters", "timing", "artifacts", "exclusions", "charts",
                    "per-caller", "rerun", "annotate"):
        assert f'id="{section}"' in html
    assert f'hx-get="/runs/{run_id}/artifacts/trades/preview' in html
    assert f'href="/api/runs/{run_id}/artifacts/trades.parquet"' in html
    assert f'href="/api/runs/{run_id}/artifacts/trades.csv"' in html
    assert f"quantbot backtest rerun {run_id}" in html and 'data-copy="rerun-command"' in html
    assert html.count('action="/runs/annotate"') == html.count('name="csrf_token"') == 4
    for action in ("name", "tag", "note", "delete"):
        assert f'<input type="hidden" name="action" value="{action}">' in html
    assert html.count(f'<input type="hidden" name="runs" value="{run_id}">') == 4
    assert "fixed_stop:sl0.2:tp1" in html and "verified" in html
    figures = _figures(html)
    assert len(figures) == 4 and all(f["data"] for f in figures)
    _assert_escaped(html)


def test_optimization_run_page_has_the_frontier(client, demo):
    html = client.get(f"/runs/{demo['ids']['full']}").text
    assert 'id="frontier"' in html and "Pareto" in html
    kinds = [f["data"][0]["type"] for f in _figures(html)]
    assert "parcoords" in kinds and len(kinds) == 7  # 4 run charts + frontier, parcoords, train/val


def test_path_only_run_page(client, demo):
    r = client.get(f"/runs/{demo['ids']['paths']}")
    assert r.status_code == 200 and "hit 2x rate" in r.text and not _figures(r.text)
    _assert_escaped(r.text)


def test_unknown_run_is_a_404_page(client):
    r = client.get("/runs/deadbeefdeadbeef")
    assert r.status_code == 404 and "not found" in r.text


def test_compare_page_and_differences_only(client, demo):
    ids = demo["ids"]
    runs = f"{ids['a']},{ids['b']}"
    full = client.get(f"/compare?runs={runs}")
    diff = client.get(f"/compare?runs={runs}&only=diff")
    assert full.status_code == diff.status_code == 200

    def rows(html):
        table = html[html.index('id="compare-parameters"'):]
        table = table[:table.index("</table>")]
        return re.findall(r'<tr( class="differs")?><th class="mono">([^<]+)</th>', table)

    all_rows, diff_rows = rows(full.text), rows(diff.text)
    assert {k for cls, k in diff_rows} == {k for cls, k in all_rows if cls} == {
        "policy.stop_pct", "policy_id"}
    assert all(cls for cls, _ in diff_rows) and len(all_rows) > len(diff_rows)
    assert "&amp;only=diff" in full.text and "differences only" in full.text
    assert len(_figures(full.text)) == 2
    _assert_escaped(full.text)


def test_compare_page_with_one_run_is_a_clean_error(client, demo):
    r = client.get(f"/compare?runs={demo['ids']['a']}")
    assert r.status_code == 400 and "compare takes 2 to 10 runs (got 1)" in r.text


def test_callers_page(client, demo):
    r = client.get("/callers?period=month")
    assert r.status_code == 200
    assert 'id="callers-table"' in r.text and len(_figures(r.text)) == 1
    assert '<option value="month" selected>' in r.text
    _assert_escaped(r.text)
    figure = _figures(r.text)[0]
    assert EVIL_CALLER in {t["name"] for t in figure["data"] if "name" in t}  # as data, escaped
