"""One test per safety rule of the web app, against a real server: escaping of run-derived
values, cross-site and CSRF-less POSTs, traversal in artifact URLs, the SQL guard, loopback
names only without a token, and the token when one is set."""

from __future__ import annotations

import re

import pytest

from .conftest import HOSTILE, UiServer


def _csrf(client) -> str:
    html = client.get("/").text
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_script_in_caller_name_tag_and_run_name_is_escaped(server, demo):
    with server.client() as c:
        pages = [c.get("/").text,
                 c.get(f"/runs/{demo.hostile_run}/artifacts/summary/preview").text,
                 c.get("/sql", params={"q": "SELECT caller_name FROM all_summary"}).text,
                 c.get("/", params={"cols": "tags.xss"}).text]
    for html in pages:
        assert HOSTILE not in html
        assert "&lt;script&gt;" in html


def test_cross_site_post_is_refused(server, demo):
    with server.client() as c:
        token = _csrf(c)
        form = {"action": "tag", "runs": demo.policy_runs[0], "text": "evil=1", "csrf_token": token}
        evil = c.post("/runs/annotate", data=form, headers={"Origin": "http://evil.example"})
        evil_referer = c.post("/runs/annotate", data=form,
                              headers={"Referer": "http://evil.example/page"})
        sql = c.post("/api/sql", json={"sql": "SELECT 1"}, headers={"Origin": "http://evil.example"})
        tags = c.get(f"/api/runs/{demo.policy_runs[0]}").json()["annotations"]["tags"]
    assert evil.status_code == evil_referer.status_code == sql.status_code == 403
    assert "evil" not in tags


def test_post_without_the_csrf_token_is_refused(server, demo):
    with server.client() as c:
        _csrf(c)  # the session cookie exists, the form lacks its token
        r = c.post("/runs/annotate", data={"action": "tag", "runs": demo.policy_runs[0],
                                           "text": "nocsrf=1"}, headers={"Origin": server.url})
        wrong = c.post("/runs/annotate", data={"action": "tag", "runs": demo.policy_runs[0],
                                               "text": "nocsrf=1", "csrf_token": "guess"})
        tags = c.get(f"/api/runs/{demo.policy_runs[0]}").json()["annotations"]["tags"]
    assert r.status_code == wrong.status_code == 403
    assert "nocsrf" not in tags


@pytest.mark.parametrize("path", [
    "/api/runs/{run}/artifacts/..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/runs/{run}/artifacts/..%2Frun.json.parquet",
    "/api/runs/{run}/artifacts/%2e%2e%2f%2e%2e%2fcatalog.csv",
    "/api/runs/..%2F..%2Fetc/artifacts/trades.parquet",
    "/runs/{run}/artifacts/..%2F..%2Fpasswd/preview",
])
def test_traversal_in_an_artifact_url_is_refused(server, demo, path):
    with server.client() as c:
        r = c.get(path.format(run=demo.policy_runs[0]))
    assert r.status_code in (400, 404)
    assert "root:" not in r.text and "PAR1" not in r.text[:4]


@pytest.mark.parametrize("sql", [
    "COPY backtest_runs_catalog TO '/tmp/quantbot-ui-escape.csv'",
    "ATTACH '/tmp/quantbot-ui-escape.duckdb' AS x",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SET enable_external_access = true",
    "INSTALL httpfs",
    "LOAD httpfs",
])
def test_each_sql_escape_is_refused(server, sql, tmp_path):
    with server.client() as c:
        api = c.post("/api/sql", json={"sql": sql})
        page = c.get("/sql", params={"q": sql})
    assert api.status_code == 400, api.text
    assert api.json()["error"].startswith("SQL error")
    assert page.status_code == 200 and "msg-error" in page.text and "root:" not in page.text


def test_without_a_token_only_loopback_host_names_are_served(server):
    with server.client() as c:
        rebound = c.get("/api/runs", headers={"Host": f"evil.example:{server.port}"})
        local = c.get("/healthz", headers={"Host": f"localhost:{server.port}"})
    assert rebound.status_code == 403
    assert local.status_code == 200


def test_non_loopback_bind_requires_the_printed_token(demo):
    srv = UiServer(demo, host="0.0.0.0").start()
    try:
        srv.host = "127.0.0.1"  # reach it through loopback; the app still demands the token
        token = re.search(r"\?token=(\S+)", srv.output).group(1)
        with srv.client() as c:
            assert c.get("/api/runs").status_code == 401
            assert c.get("/").status_code == 401
            assert c.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
            ok = c.get("/api/runs", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200 and ok.json()["total"] == 6
            first = c.get(f"/?token={token}", follow_redirects=False)
            assert first.status_code == 303 and first.headers["location"] == "/"
            assert c.get("/").status_code == 200  # the cookie now carries it
    finally:
        srv.stop()
