"""`quantbot backtest sql` through real subprocesses: the guard, --allow-read, --timeout,
and a long reader that never stalls catalog-sync (hardening issue items 1 and 2)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import duckdb
import pytest
from qbtest import QUANTBOT, assert_clean_error, make_run, rows, run_cli, snapshot_tree

DB = "data/backtest_catalog.duckdb"
ENDLESS = "SELECT sum(hash(i)) AS s FROM range(8000000000000) t(i)"


@pytest.fixture
def workspace(tmp_path):
    """cwd with one completed run registered in data/backtest_catalog.duckdb."""
    run = make_run(tmp_path / "runs", "policy", artifacts={"alerts": rows("alerts", 2),
                                                           "trades": rows("trades", 2), "errors": []})
    proc = run_cli("backtest", "catalog-sync", "--base-dir", "runs", "--duckdb", DB, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path, run


def _sql(root, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("backtest", "sql", *args, "--duckdb", DB, cwd=root, env=env)


def test_copy_over_a_completed_run_is_a_clean_error_and_verify_stays_clean(workspace):
    root, run = workspace
    target = os.path.join(run.path, "inputs", "alerts.parquet")
    before = snapshot_tree(root / "runs")
    proc = _sql(root, f"COPY (SELECT 1 x) TO '{target}' (FORMAT parquet)")
    assert_clean_error(proc, contains="only read-only SELECT")
    assert snapshot_tree(root / "runs") == before
    verify = run_cli("backtest", "verify", "--all", "--base-dir", "runs", cwd=root)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.parametrize("statement", [
    "SELECT * FROM read_text('/etc/passwd')", "SELECT * FROM glob('/etc/*')",
    "SET threads = 1", "SELECT 1; SELECT 2", "INSTALL httpfs", "EXPORT DATABASE 'dump'",
    "ATTACH 'other.duckdb' AS e (READ_WRITE)",
])
def test_escapes_are_one_line_errors(workspace, statement):
    root, _ = workspace
    home = root / "home"  # where DuckDB would install extensions (~/.duckdb)
    home.mkdir()
    assert_clean_error(_sql(root, statement, env={"HOME": str(home)}), contains="SQL error")
    assert not (root / "dump").exists() and not (root / "other.duckdb").exists()
    assert list(home.iterdir()) == []


def test_allow_read_file_and_directory(workspace):
    root, _ = workspace
    (root / "mine").mkdir()
    (root / "mine" / "a.csv").write_text("x\n1\n")
    (root / "b.csv").write_text("y\n2\n")
    (root / "c.csv").write_text("z\n3\n")
    proc = _sql(root, "SELECT x, (SELECT y FROM read_csv('b.csv')) AS y FROM read_csv('mine/a.csv')",
                "--allow-read", "mine", "--allow-read", "b.csv", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"x": 1, "y": 2}]
    assert_clean_error(_sql(root, "SELECT * FROM read_csv('c.csv')", "--allow-read", "mine"),
                       contains="disabled")
    assert_clean_error(_sql(root, "COPY (SELECT 1) TO 'mine/out.csv'", "--allow-read", "mine"),
                       contains="SQL error")
    assert sorted(p.name for p in (root / "mine").iterdir()) == ["a.csv"]


def test_timeout_flag_interrupts_with_a_clean_error(workspace):
    root, _ = workspace
    assert_clean_error(_sql(root, ENDLESS, "--timeout", "0.5"), contains="timeout of 0.5 s")


def _start_reader(root, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen([QUANTBOT, "backtest", "sql", ENDLESS, "--duckdb", DB, *args],
                            cwd=root, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_until_reader_holds_the_lock(root, reader: subprocess.Popen[str]) -> None:
    """Poll the file lock until the reader has it (a writer's open then fails as locked)."""
    while reader.poll() is None:
        try:
            duckdb.connect(str(root / DB)).close()
        except duckdb.IOException as err:
            if "lock" in str(err).lower():
                return
            raise
        time.sleep(0.02)
    pytest.fail(f"the reader ended before taking the lock: {reader.communicate()}")


def test_a_long_in_place_reader_holds_writers_only_for_its_timeout(workspace):
    root, _ = workspace
    reader = _start_reader(root, "--timeout", "2")
    try:
        _wait_until_reader_holds_the_lock(root, reader)
        new = make_run(root / "runs", "policy")
        sync = run_cli("backtest", "catalog-sync", "--base-dir", "runs", "--duckdb", DB,
                       "--format", "json", cwd=root)  # default lock timeout (10 s)
        assert sync.returncode == 0, sync.stderr
        assert json.loads(sync.stdout)["registered"] == 1
        _, err = reader.communicate(timeout=60)
        assert reader.returncode == 1 and "timeout of 2 s" in err, err
    finally:
        reader.kill()
        reader.wait()
    ids = _sql(root, "SELECT run_id FROM backtest_runs_catalog", "--format", "json")
    assert new.run_id in {r["run_id"] for r in json.loads(ids.stdout)}


def test_a_long_snapshot_reader_never_blocks_catalog_sync(workspace):
    root, _ = workspace
    scratch = root / "scratch"
    scratch.mkdir()
    reader = _start_reader(root, "--timeout", "600", env={"TMPDIR": str(scratch)})
    try:
        while reader.poll() is None and not list(scratch.glob("quantbot-sql-*/*.duckdb")):
            time.sleep(0.02)  # the snapshot is being taken (or done): the query starts now
        assert reader.poll() is None, reader.communicate()
        new = make_run(root / "runs", "policy")
        sync = run_cli("backtest", "catalog-sync", "--base-dir", "runs", "--duckdb", DB,
                       "--format", "json", cwd=root)  # default lock timeout (10 s)
        assert sync.returncode == 0, sync.stderr
        assert json.loads(sync.stdout)["registered"] == 1
        assert reader.poll() is None  # the long query was running all along
    finally:
        reader.kill()
        reader.wait()
    ids = _sql(root, "SELECT run_id FROM backtest_runs_catalog", "--format", "json")
    assert new.run_id in {r["run_id"] for r in json.loads(ids.stdout)}
