"""The catalog commands: sync, query, sql, show.

Each command runs once through the installed console script (``run_cli``: the entry point
works end to end); everything else goes through ``quantbot.cli.main`` in-process
(``run_main``: the same parsing, output and one-line errors, without an interpreter start).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from qbtest import assert_clean_error, assert_usage_error, make_run, rows, run_cli, run_main


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """cwd with runs/ (2 completed policy, 1 path-only, 1 failed, 1 running) synced once."""
    root = tmp_path_factory.mktemp("cli")
    base = root / "runs"
    runs = {
        "policy1": make_run(base, "policy", artifacts={"trades": rows("trades", 2), "errors": []}),
        "path": make_run(base, "path-only", artifacts={"paths": rows("paths", 3), "errors": []}),
        "policy2": make_run(base, "policy", artifacts={"trades": rows("trades", 4), "errors": []}),
        "failed": make_run(base, "policy", fail=True),
        "running": make_run(base, "policy", complete=False),
    }
    proc = run_cli("backtest", "catalog-sync", "--base-dir", "runs", "--duckdb",
                   "data/backtest_catalog.duckdb", "--stats", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root, runs, proc


def test_seed_sync_command(workspace):
    root, runs, proc = workspace
    assert "registered: 4" in proc.stdout and "incomplete: 1" in proc.stdout
    assert "invalid: 0" in proc.stdout
    assert "catalog: 4 runs" in proc.stdout
    assert proc.stderr == ""
    assert (root / "data" / "backtest_catalog.duckdb").exists()
    again = run_main("backtest", "catalog-sync", "--base-dir", "runs", "--duckdb",
                    "data/backtest_catalog.duckdb", "--format", "json", cwd=root)
    report = json.loads(again.stdout)
    assert report == {"registered": 0, "already_present": 4, "incomplete": 1, "invalid": []}


def test_seed_query_commands(workspace):
    root, runs, _ = workspace
    proc = run_cli("backtest", "catalog-query", "--run-type", "path-only", "--status", "completed",
                   cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert runs["path"].run_id in proc.stdout
    assert runs["policy1"].run_id not in proc.stdout
    proc = run_main("backtest", "catalog-query", "--run-id", runs["path"].run_id,
                   "--artifact-type", "paths", cwd=root)
    assert proc.returncode == 0, proc.stderr
    path = proc.stdout.strip()
    assert path == str(Path(runs["path"].path) / "truth" / "paths.parquet")
    assert (root / path).exists() or Path(path).exists()


def test_query_json_and_csv(workspace):
    root, runs, _ = workspace
    proc = run_main("backtest", "catalog-query", "--format", "json", cwd=root)
    data = json.loads(proc.stdout)
    assert set(data) == {"runs", "count", "total"} and data["count"] == 4 == len(data["runs"])
    ids = [r["run_id"] for r in data["runs"]]
    assert ids == [runs[k].run_id for k in ("failed", "policy2", "path", "policy1")]
    assert data["runs"][0]["status"] == "failed" and data["runs"][0]["error"] == "RuntimeError: boom"
    proc = run_main("backtest", "catalog-query", "--status", "completed", "--limit", "2",
                   "--format", "csv", cwd=root)
    table = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["run_id"] for r in table] == [runs["policy2"].run_id, runs["path"].run_id]
    assert table[0]["run_type"] == "policy"
    proc = run_main("backtest", "catalog-query", "--run-id", runs["policy1"].run_id.upper(),
                   "--format", "json", cwd=root)
    assert json.loads(proc.stdout)["runs"][0]["run_id"] == runs["policy1"].run_id


def test_sql_formats(workspace):
    root, runs, _ = workspace
    q = "SELECT run_id, count(*) AS n FROM all_trades GROUP BY 1 ORDER BY n"
    proc = run_cli("backtest", "sql", q, "--format", "json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"run_id": runs["policy1"].run_id, "n": 2},
                                       {"run_id": runs["failed"].run_id, "n": 3},
                                       {"run_id": runs["policy2"].run_id, "n": 4}]
    proc = run_main("backtest", "sql", q, "--format", "csv", cwd=root)
    assert proc.stdout.splitlines() == ["run_id,n", f"{runs['policy1'].run_id},2",
                                        f"{runs['failed'].run_id},3",
                                        f"{runs['policy2'].run_id},4"]
    proc = run_main("backtest", "sql", q, cwd=root)
    assert "run_id" in proc.stdout and runs["policy2"].run_id in proc.stdout


def test_show_cataloged_and_uncataloged(workspace):
    root, runs, _ = workspace
    proc = run_cli("backtest", "show", runs["policy1"].run_id, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert runs["policy1"].run_id in proc.stdout and "cataloged  yes" in proc.stdout
    assert "trades" in proc.stdout
    proc = run_main("backtest", "show", runs["running"].run_id, "--format", "json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["cataloged"] is False and info["complete"] is False
    assert info["manifest"]["status"] == "running"
    # a run that appears after the sync is found by scanning --base-dir
    late = make_run(root / "runs")
    proc = run_main("backtest", "show", late.run_id, "--format", "json", cwd=root)
    info = json.loads(proc.stdout)
    assert info["cataloged"] is False and info["complete"] is True
    assert [a["on_disk"] for a in info["artifacts"]] == ["ok", "ok"]
    # and with no catalog at all
    proc = run_main("backtest", "show", late.run_id, "--duckdb", "nowhere.duckdb", cwd=root)
    assert proc.returncode == 0 and "cataloged  no" in proc.stdout


@pytest.mark.parametrize("flag", ["--git-branch", "--from-date", "--to-date"])
def test_injection_strings_in_filters(workspace, flag):
    root, _, _ = workspace
    db = root / "data" / "backtest_catalog.duckdb"
    before = db.read_bytes()
    for value in ("x' OR 1=1 --", "'; DROP TABLE backtest_runs_catalog; --"):
        proc = run_main("backtest", "catalog-query", flag, value, "--format", "json", cwd=root)
        if flag == "--git-branch":
            assert proc.returncode == 0, proc.stderr
            assert json.loads(proc.stdout) == {"runs": [], "count": 0, "total": 0}
        else:
            assert_clean_error(proc, contains="date")
    assert db.read_bytes() == before
    assert json.loads(run_main("backtest", "catalog-query", "--format", "json",
                              cwd=root).stdout)["count"] == 4


@pytest.mark.parametrize("flag", ["--run-type", "--status", "--artifact-type", "--format"])
def test_enumerated_flags_reject_junk(workspace, flag):
    root, runs, _ = workspace
    extra = ["--run-id", runs["policy1"].run_id] if flag == "--artifact-type" else []
    proc = run_main("backtest", "catalog-query", *extra, flag, "x' OR 1=1 --", cwd=root)
    assert_usage_error(proc, contains=flag)


def test_limit_injection_is_usage_error(workspace):
    root, _, _ = workspace
    assert_usage_error(run_main("backtest", "catalog-query", "--limit", "1; DROP", cwd=root))
    assert_usage_error(run_main("backtest", "catalog-query", "--limit", "-1", cwd=root))


def test_date_filters_cli(workspace):
    root, _, _ = workspace
    proc = run_main("backtest", "catalog-query", "--from-date", "2000-01-01", "--to-date",
                   "2999-12-31", "--format", "json", cwd=root)
    assert json.loads(proc.stdout)["count"] == 4
    proc = run_main("backtest", "catalog-query", "--to-date", "2000-01-01", "--format", "json",
                   cwd=root)
    assert json.loads(proc.stdout)["count"] == 0
