"""The app keeps answering while another process holds the catalog for writing: pages say
the catalog is busy, the API answers 503 with one line; never a 500. Once the writer lets
go, the same requests succeed."""

from __future__ import annotations

import re
import subprocess
import sys
import time

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("BEGIN TRANSACTION")
print("held", flush=True)
sys.stdin.readline()
"""


def test_busy_catalog_is_a_message_then_recovers(server, demo):
    with server.client() as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/").text).group(1)
        cookies = c.cookies
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(demo.catalog)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with server.client() as c:
            page = c.get("/")
            api = c.get("/api/runs")
            sql = c.post("/api/sql", json={"sql": "SELECT 1"})
            live = c.get("/runs/live", params={"stamp": "x"})
            health = c.get("/healthz")
        with server.client(cookies=cookies) as c:
            tag = c.post("/runs/annotate", headers={"HX-Request": "true"},
                         data={"action": "tag", "runs": demo.policy_runs[0],
                               "text": "pending=1", "csrf_token": token})
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert page.status_code == 200 and "is busy" in page.text and "msg-error" in page.text
    assert api.status_code == sql.status_code == 503
    assert "busy" in api.json()["error"] and "\n" not in api.json()["error"]
    assert live.status_code == 204  # the poller just asks again later
    assert health.status_code == 200
    # the record is saved in the base dir; the catalog takes it at the next sync
    assert tag.status_code == 200 and "msg-ok" in tag.text and "catalog-sync" in tag.text
    deadline = time.monotonic() + 10
    with server.client() as c:
        while (r := c.get("/api/runs")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert r.json()["total"] == 6
