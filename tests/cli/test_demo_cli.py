"""``quantbot backtest demo`` end to end: real runs, a synced catalog, the cross-run comparison.

The first demo runs through the installed console script, the second (reusing the sample
data) in-process through ``quantbot.cli.main``.
"""

from __future__ import annotations

import duckdb
from qbtest import run_cli, run_main

from quantbot.cli.demo_cmd import DEMO_POLICIES


def test_demo_runs_syncs_and_compares(tmp_path):
    proc = run_cli("backtest", "demo", cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    assert "wrote data/sample/alerts.parquet" in out
    for section in ("== run path-only", "== catalog-sync", "== catalog-query",
                    "== policies compared across runs"):
        assert section in out
    assert out.count("(policy, completed)") == len(DEMO_POLICIES) == 3
    assert "registered 4, already present 0, incomplete 0, invalid 0" in out
    comparison = out.split("== policies compared across runs")[1]
    for policy_id in ("fixed_stop:sl0.2:tp1", "trailing_stop:act0.3:trail0.2:hs0.3",
                      "ladder:2x0.5+4x0.5:sl0.3"):
        assert policy_id in comparison

    db = tmp_path / "data" / "backtest_catalog.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.execute("SELECT run_type, count(*) FROM backtest_runs_catalog "
                           "WHERE status = 'completed' GROUP BY 1 ORDER BY 1").fetchall()
    assert runs == [("path-only", 1), ("policy", 3)]

    again = run_main("backtest", "demo", cwd=tmp_path)  # reuses the sample data
    assert again.returncode == 0, again.stderr
    assert "using data/sample" in again.stdout
    assert "registered 4, already present 4" in again.stdout
    assert again.stdout.strip().splitlines()[-1] == (  # the demo ends with the app's command
        "quantbot backtest ui --base-dir runs --duckdb data/backtest_catalog.duckdb")
