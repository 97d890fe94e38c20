"""quantbot backtest tag/untag/name/note/delete/undelete/history, gc --deleted and --name."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from qbtest import assert_clean_error, assert_usage_error, make_run, run_main

from quantbot.artifacts import catalog_all_runs, run_annotations_state
from quantbot.backtest import write_sample_data


@pytest.fixture
def runs(tmp_path: Path) -> list[str]:
    ids = [make_run(tmp_path / "runs").run_id for _ in range(2)]
    catalog_all_runs(catalog=tmp_path / "cat.duckdb", base_dir=tmp_path / "runs")
    return ids


def _qb(tmp_path: Path, *args: str):
    return run_main("backtest", *args, "--base-dir", "runs", "--duckdb", "cat.duckdb",
                    cwd=tmp_path)


def test_curating_runs_by_prefix_and_reading_the_history(tmp_path, runs):
    a, b = runs
    out = _qb(tmp_path, "tag", a[:8], b, "exp=fees", "stop=0.2", "note=x=y")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "tagged 2 run(s): exp=fees stop=0.2 note=x=y\n"
    assert _qb(tmp_path, "untag", a[:8], "stop", "note").stdout == \
        "untagged 1 run(s): stop note\n"
    assert _qb(tmp_path, "name", a, "baseline 'v1'").stdout == f"named {a}: baseline 'v1'\n"
    assert _qb(tmp_path, "note", a, "fees checked").returncode == 0
    assert _qb(tmp_path, "delete", b).stdout == "deleted 1 run(s)\n"
    state = run_annotations_state(tmp_path / "cat.duckdb", a)
    assert state["name"] == "baseline 'v1'" and state["tags"] == {"exp": "fees"}
    assert run_annotations_state(tmp_path / "cat.duckdb", b)["deleted_at"] is not None
    assert _qb(tmp_path, "undelete", b[:8]).stdout == "undeleted 1 run(s)\n"
    assert run_annotations_state(tmp_path / "cat.duckdb", b)["deleted_at"] is None

    hist = json.loads(_qb(tmp_path, "history", a[:8], "--format", "json").stdout)
    assert [(h["action"], h["key"], h["value"]) for h in hist] == [
        ("tag", "exp", "fees"), ("tag", "stop", "0.2"), ("tag", "note", "x=y"),
        ("untag", "stop", None), ("untag", "note", None), ("name", None, "baseline 'v1'"),
        ("note", None, "fees checked")]
    assert [h["created_at"] for h in hist] == sorted(h["created_at"] for h in hist)
    table = _qb(tmp_path, "history", a).stdout.splitlines()
    assert table[0].split() == ["created_at", "action", "key", "value", "author"]
    assert len(table) == 2 + len(hist) and "fees checked" in table[-1]


def test_curation_errors_are_one_line(tmp_path, runs):
    a, _ = runs
    assert_clean_error(_qb(tmp_path, "tag", a, "bad key=1"), contains="[A-Za-z0-9_.-]+")
    assert_clean_error(_qb(tmp_path, "tag", "0123abcd", "k=v"), contains="run 0123abcd not found")
    assert_clean_error(_qb(tmp_path, "note", a, "x" * 10_001), contains="at most 10000")
    assert_clean_error(_qb(tmp_path, "name", "../../etc", "x"), contains="invalid run id")
    assert_clean_error(_qb(tmp_path, "untag", a, "no/slash"), contains="tag key")
    assert_usage_error(_qb(tmp_path, "tag", a), "key=value")
    assert_usage_error(_qb(tmp_path, "tag", a, "k=v", a), "expected key=value after the runs")
    assert_usage_error(_qb(tmp_path, "delete"), "RUN arguments or --filter")
    assert not (tmp_path / "runs" / "_annotations").exists()


def test_gc_deleted_dry_run_then_apply(tmp_path, runs):
    a, b = runs
    assert _qb(tmp_path, "delete", b, "--author", "ana@box").returncode == 0
    dry = _qb(tmp_path, "gc", "--deleted", "--older-than", "0s")
    lines = dry.stdout.splitlines()
    assert dry.returncode == 0 and len(lines) == 2, dry.stdout
    assert lines[0].startswith(f"would remove {b} ") and lines[0].endswith(" by ana@box)")
    assert lines[1] == "1 run(s) deleted more than 0s ago; dry run, nothing changed (use --apply)"
    assert len(list((tmp_path / "runs").glob("*/run_id=*"))) == 2
    assert _qb(tmp_path, "gc", "--deleted").stdout.startswith("0 run(s) deleted more than 30d")
    done = _qb(tmp_path, "gc", "--deleted", "--older-than", "0s", "--apply")
    assert done.stdout.splitlines()[0].startswith(f"removed {b} ")
    assert done.stdout.splitlines()[1] == "removed 1 run(s) deleted more than 0s ago"
    assert [p.name for p in (tmp_path / "runs").glob("*/run_id=*")] == [f"run_id={a}"]
    con = duckdb.connect(str(tmp_path / "cat.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT run_id FROM backtest_runs_catalog").fetchall() == [(a,)]
        assert con.execute("SELECT DISTINCT run_id FROM artifact_trades").fetchall() == [(a,)]
    finally:
        con.close()


def test_a_run_named_at_creation_and_its_rerun_unnamed(tmp_path):
    write_sample_data(tmp_path / "data", n_alerts=20)
    made = run_main("backtest", "run", "path-only", "--alerts", "data/alerts.parquet",
                    "--candles", "data/candles.parquet", "--base-dir", "runs", "--duckdb",
                    "cat.duckdb", "--sync", "--no-durable", "--name", "first 'look'",
                    "--format", "json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    run_id = json.loads(made.stdout)["run_id"]
    assert run_annotations_state(tmp_path / "cat.duckdb", run_id)["name"] == "first 'look'"
    manifest = next((tmp_path / "runs").glob(f"*/run_id={run_id}/run.json")).read_text()
    assert "first 'look'" not in manifest  # a record beside the run, not in it
    again = run_main("backtest", "rerun", run_id, "--base-dir", "runs", "--duckdb", "cat.duckdb",
                     "--sync", "--no-durable", "--format", "json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    rerun_id = json.loads(again.stdout)["run_id"]
    assert run_annotations_state(tmp_path / "cat.duckdb", rerun_id)["name"] is None
    bad = run_main("backtest", "run", "path-only", "--alerts", "data/alerts.parquet",
                   "--candles", "data/candles.parquet", "--base-dir", "runs",
                   "--name", "n" * 1001, cwd=tmp_path)
    assert_clean_error(bad, contains="at most 1000")
    assert len(list((tmp_path / "runs").glob("*/run_id=*"))) == 2  # refused before a run
