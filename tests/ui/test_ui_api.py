"""The web app's JSON API against a real server and a real catalog, checked against the
catalog and the run folders read independently (DuckDB, pyarrow)."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import duckdb
import pyarrow.parquet as pq

from quantbot.artifacts import read_manifest


def test_healthz_and_server_timing(server):
    with server.client() as c:
        r = c.get("/healthz")
    assert r.json()["status"] == "ok"
    assert float(r.headers["server-timing"].removeprefix("app;dur=")) >= 0


def test_runs_newest_first_with_total_and_paging(server, demo):
    with duckdb.connect(str(demo.catalog), read_only=True) as con:
        expected = [r[0] for r in con.execute(
            "SELECT run_id FROM backtest_runs_catalog ORDER BY created_at DESC, run_id DESC").fetchall()]
    with server.client() as c:
        first = c.get("/api/runs", params={"limit": 2}).json()
        second = c.get("/api/runs", params={"limit": 2, "offset": 2}).json()
    assert first["total"] == second["total"] == len(expected) == 6
    assert [r["run_id"] for r in first["runs"] + second["runs"]] == expected[:4]
    run = first["runs"][0]
    for key in ("run_id", "name", "run_type", "status", "created_at", "git_branch", "params",
                "metrics", "tags"):
        assert key in run


def test_runs_filter_and_bad_filter(server, demo):
    with server.client() as c:
        failed = c.get("/api/runs", params={"filter": "status = 'failed'"}).json()
        bad = c.get("/api/runs", params={"filter": "status = = AND"})
    assert [r["run_id"] for r in failed["runs"]] == [demo.failed_run]
    assert failed["runs"][0]["error"]  # the failed run says why
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("filter")


def test_run_by_prefix_has_manifest_and_annotations(server, demo):
    with server.client() as c:
        body = c.get(f"/api/runs/{demo.hostile_run[:8]}").json()
        missing = c.get("/api/runs/00000000")
        invalid = c.get("/api/runs/not-a-run")
    assert body["run_id"] == demo.hostile_run
    assert body["manifest"]["run_id"] == demo.hostile_run
    assert body["annotations"]["tags"]["xss"].startswith("<script>")
    assert missing.status_code == 404 and "not found" in missing.json()["error"]
    assert invalid.status_code == 400


def test_artifact_page_parquet_and_csv_agree_with_the_file(server, demo):
    run_id = demo.policy_runs[0]
    run_dir = next(demo.base_dir.glob(f"*/run_id={run_id}"))
    manifest = read_manifest(run_dir)
    entry = manifest.artifacts["trades"]
    table = pq.read_table(run_dir / entry.path)
    with server.client() as c:
        page = c.get(f"/api/runs/{run_id}/artifacts/trades", params={"limit": 5, "offset": 3}).json()
        raw = c.get(f"/api/runs/{run_id}/artifacts/trades.parquet")
        text = c.get(f"/api/runs/{run_id}/artifacts/trades.csv").text
    assert page["total"] == table.num_rows == 30
    calls = table.column("call_id").to_pylist()
    assert [r[page["columns"].index("call_id")] for r in page["rows"]] == calls[3:8]
    assert raw.status_code == 200 and hashlib.sha256(raw.content).hexdigest() == entry.sha256
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [r["call_id"] for r in parsed] == calls
    assert [float(r["realized_return_bps"]) for r in parsed] == \
        table.column("realized_return_bps").to_pylist()


def test_artifact_the_run_lacks_is_a_clean_404(server, demo):
    with server.client() as c:
        r = c.get(f"/api/runs/{demo.failed_run}/artifacts/trades.parquet")
    assert r.status_code == 404 and "trades" in r.json()["error"]


def test_sql_api(server, demo):
    with server.client() as c:
        r = c.post("/api/sql", json={"sql": "SELECT count(*) AS n FROM backtest_runs_catalog"})
    assert r.json() == {"columns": ["n"], "rows": [[6]]}


def test_docs_page_lists_every_api_route(server):
    with server.client() as c:
        html = c.get("/docs").text
        spec = c.get("/openapi.json").json()
    for path in ("/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/artifacts/{artifact_type}",
                 "/api/runs/{run_id}/artifacts/{artifact_type}.parquet",
                 "/api/runs/{run_id}/artifacts/{artifact_type}.csv", "/api/sql", "/healthz"):
        assert path in spec["paths"]
        assert path in html
    assert "cdn" not in html.lower()
    json.dumps(spec)


def test_sql_csv_download_has_every_row(server, demo):
    sql = "SELECT run_id, run_type, status FROM backtest_runs_catalog ORDER BY run_id"
    with duckdb.connect(str(demo.catalog), read_only=True) as con:
        expected = [list(r) for r in con.execute(sql).fetchall()]
    with server.client() as c:
        r = c.get("/sql.csv", params={"q": sql})
        refused = c.get("/sql.csv", params={"q": "COPY backtest_runs_catalog TO '/tmp/x.csv'"})
    assert r.headers["content-type"].startswith("text/csv")
    parsed = list(csv.reader(io.StringIO(r.text)))
    assert parsed[0] == ["run_id", "run_type", "status"] and parsed[1:] == expected
    assert refused.status_code == 400
