"""CLI errors: one line on stderr starting with 'error:', no traceback, nothing damaged.

In-process through ``quantbot.cli.main`` (``run_main``); real subprocesses (``run_cli``) only
where the process is the point: --debug's traceback and a catalog locked by another process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from qbtest import (
    assert_clean_error,
    assert_usage_error,
    catalog_dump,
    make_run,
    rows,
    run_cli,
    run_main,
    snapshot_tree,
)


def rel(root, run) -> str:
    """The run folder as the CLI names it: relative to the --base-dir it was given."""
    return os.path.relpath(run.path, root)


SYNC = ("backtest", "catalog-sync", "--base-dir", "runs", "--duckdb", "cat.duckdb")


@pytest.fixture
def ws(tmp_path):
    good = make_run(tmp_path / "runs", artifacts={"trades": rows("trades", 2), "errors": []})
    proc = run_main(*SYNC, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path, good


def test_corrupt_and_missing_run_json_reported_and_skipped(ws):
    root, good = ws
    before_good = snapshot_tree(good.path)
    before_cat = catalog_dump(root / "cat.duckdb")
    corrupt = make_run(root / "runs")
    Path(corrupt.path, "run.json").write_text("{not json")
    invalid = make_run(root / "runs")
    p = Path(invalid.path, "run.json")
    p.write_text(p.read_text().replace('"completed"', '"finished"'))
    missing = make_run(root / "runs")
    Path(missing.path, "run.json").unlink()
    Path(missing.path, "_SUCCESS").unlink()
    proc = run_main(*SYNC, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "registered: 0" in proc.stdout and "incomplete: 1" in proc.stdout
    assert "invalid: 2" in proc.stdout
    assert f"invalid {rel(root, corrupt)}: " in proc.stdout and "not valid JSON" in proc.stdout
    assert f"invalid {rel(root, invalid)}: " in proc.stdout and "status" in proc.stdout
    js = json.loads(run_main(*SYNC, "--format", "json", cwd=root).stdout)
    assert {i["path"] for i in js["invalid"]} == {rel(root, corrupt), rel(root, invalid)}
    assert snapshot_tree(good.path) == before_good
    assert catalog_dump(root / "cat.duckdb") == before_cat


def test_truncated_parquet_is_invalid_sha_mismatch(ws):
    root, good = ws
    before_cat = catalog_dump(root / "cat.duckdb")
    bad = make_run(root / "runs")
    f = Path(bad.path, "policy", "trades.parquet")
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    proc = run_main(*SYNC, "--format", "json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["registered"] == 0
    assert report["invalid"][0]["path"] == rel(root, bad)
    assert "trades" in report["invalid"][0]["reason"]
    # same size, different bytes: the sha256 check is what catches it
    f.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    report = json.loads(run_main(*SYNC, "--format", "json", cwd=root).stdout)
    assert "sha256" in report["invalid"][0]["reason"]
    assert catalog_dump(root / "cat.duckdb") == before_cat


def test_catalog_that_is_not_duckdb(tmp_path):
    make_run(tmp_path / "runs")
    junk = tmp_path / "cat.duckdb"
    junk.write_bytes(b"this is not a database\n" * 100)
    before = junk.read_bytes()
    for args in (SYNC, ("backtest", "catalog-query", "--duckdb", "cat.duckdb"),
                 ("backtest", "sql", "SELECT 1", "--duckdb", "cat.duckdb")):
        proc = run_main(*args, cwd=tmp_path)
        line = assert_clean_error(proc, 1)
        assert "cat.duckdb" in line and "not a DuckDB database" in line
    assert junk.read_bytes() == before


@pytest.mark.parametrize("bad", ["../x", "x' OR 1=1 --", ""])
def test_bad_run_ids(ws, bad):
    root, good = ws
    line = assert_clean_error(run_main("backtest", "show", bad, "--duckdb", "cat.duckdb", cwd=root), 1)
    assert "invalid run id" in line
    line = assert_clean_error(run_main("backtest", "catalog-query", "--run-id", bad, "--duckdb",
                                      "cat.duckdb", cwd=root), 1)
    assert "invalid run id" in line
    line = assert_clean_error(run_main("backtest", "catalog-query", "--run-id", bad,
                                      "--artifact-type", "trades", "--duckdb", "cat.duckdb",
                                      cwd=root), 1)
    assert "invalid run id" in line


def test_unknown_run_and_missing_artifact(ws):
    root, good = ws
    other = "0f8fad5b-d9cb-469f-a165-70867728950e"
    env = {"QUANTBOT_CATALOG": "cat.duckdb"}
    assert_clean_error(run_main("backtest", "show", other, cwd=root, env=env), 1, contains="not found")
    assert_clean_error(run_main("backtest", "catalog-query", "--run-id", other, cwd=root, env=env), 1,
                       contains="not in the catalog")
    assert_clean_error(run_main("backtest", "catalog-query", "--run-id", good.run_id,
                               "--artifact-type", "paths", cwd=root, env=env), 1, contains="no paths")
    assert_usage_error(run_main("backtest", "catalog-query", "--run-id", good.run_id,
                               "--artifact-type", "candles", cwd=root, env=env), contains="candles")
    assert_usage_error(run_main("backtest", "catalog-query", "--artifact-type", "trades", cwd=root, env=env))


def test_missing_catalog_and_bad_sql(tmp_path, ws):
    root, _ = ws
    assert_clean_error(run_main("backtest", "catalog-query", "--duckdb", "none.duckdb", cwd=root),
                       1, contains="does not exist")
    assert not (root / "none.duckdb").exists()
    before = catalog_dump(root / "cat.duckdb")
    for q in ("DROP TABLE backtest_runs_catalog", "SELEC 1", "SELECT * FROM nope"):
        assert_clean_error(run_main("backtest", "sql", q, "--duckdb", "cat.duckdb", cwd=root), 1,
                           contains="SQL error")
    assert catalog_dump(root / "cat.duckdb") == before


def test_debug_shows_traceback(ws):
    root, _ = ws
    proc = run_cli("--debug", "backtest", "show", "../x", cwd=root)
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    proc = run_cli("backtest", "show", "../x", cwd=root)
    assert_clean_error(proc, 1, contains="invalid run id")


def test_lock_timeout_cli_message(ws):
    import duckdb

    root, _ = ws
    make_run(root / "runs")
    holder = duckdb.connect(str(root / "cat.duckdb"))
    try:  # the lock is held by this process: the CLI must be another one to feel it
        proc = run_cli(*SYNC, "--lock-timeout", "0.2", cwd=root)
        line = assert_clean_error(proc, 1)
        assert "busy" in line and "0.2 s" in line
        proc = run_cli(*SYNC, cwd=root, env={"QUANTBOT_LOCK_TIMEOUT": "0.2"})
        assert "busy" in assert_clean_error(proc, 1)
    finally:
        holder.close()
    assert "registered: 1" in run_main(*SYNC, cwd=root).stdout
