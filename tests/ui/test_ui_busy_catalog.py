"""The app keeps answering while another process holds the catalog for writing: pages say
the catalog is busy, the API answers 503 with one line; never a 500. Once the writer lets
go, the same requests succeed."""

from __future__ import annotations

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
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert page.status_code == 200 and "is busy" in page.text and "msg-error" in page.text
    assert api.status_code == sql.status_code == 503
    assert "busy" in api.json()["error"] and "\n" not in api.json()["error"]
    assert live.status_code == 204  # the poller just asks again later
    assert health.status_code == 200
    deadline = time.monotonic() + 10
    with server.client() as c:
        while (r := c.get("/api/runs")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert r.json()["total"] == 6
