"""verify, gc, archive and restore through the installed console script (cwd = tmp_path,
so the default ``runs`` and ``data/backtest_catalog.duckdb`` land in the test's folder)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from qbtest import assert_clean_error, assert_usage_error, make_run, run_cli


def test_ops_commands_are_listed(tmp_path: Path) -> None:
    proc = run_cli("backtest", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    for name in ("catalog-watch", "verify", "gc", "archive", "restore"):
        assert name in proc.stdout


def test_verify_cli(base_dir: Path, tmp_path: Path) -> None:
    good, bad = make_run(base_dir), make_run(base_dir)
    ok = run_cli("backtest", "verify", "--all", cwd=tmp_path)
    assert ok.returncode == 0 and "2 run(s) checked, no problems" in ok.stdout, ok
    trades = Path(bad.path) / "policy" / "trades.parquet"
    trades.write_bytes(trades.read_bytes()[:-1] + b"\0")

    proc = run_cli("backtest", "verify", "--all", cwd=tmp_path)
    assert proc.returncode == 1, proc
    header, _, row = proc.stdout.splitlines()
    assert header.split() == ["run_id", "path", "problem"]
    assert row.startswith(bad.run_id) and "sha256 does not match" in row
    assert proc.stderr.strip() == "1 problem(s) in 1 of 2 run(s)"

    one = run_cli("backtest", "verify", bad.run_id, "--format", "json", cwd=tmp_path)
    assert one.returncode == 1
    report = json.loads(one.stdout)
    assert report["runs_checked"] == 1 and not report["ok"]
    assert report["problems"][0]["path"].endswith("policy/trades.parquet")
    assert run_cli("backtest", "verify", good.run_id, cwd=tmp_path).returncode == 0

    assert_usage_error(run_cli("backtest", "verify", cwd=tmp_path), "RUN_ID or --all")
    assert_clean_error(run_cli("backtest", "verify", "../etc", cwd=tmp_path), contains="invalid run id")


def test_gc_cli_dry_run_then_apply(base_dir: Path, tmp_path: Path) -> None:
    running = make_run(base_dir, complete=False)
    done = make_run(base_dir)
    manifest = Path(running.path) / "run.json"
    before = manifest.read_bytes()

    dry = run_cli("backtest", "gc", "--stale", "0s", cwd=tmp_path)
    assert dry.returncode == 0, dry
    assert running.run_id in dry.stdout and "would mark failed" in dry.stdout
    assert done.run_id not in dry.stdout and "dry run, nothing changed" in dry.stdout
    assert manifest.read_bytes() == before

    applied = run_cli("backtest", "gc", "--stale", "0s", "--apply", "--format", "json", cwd=tmp_path)
    assert applied.returncode == 0, applied
    out = json.loads(applied.stdout)
    assert out["count"] == 1 and out["stale"][0]["marked_failed"] is True
    m = json.loads(manifest.read_text())
    assert m["status"] == "failed" and m["error"]["type"] == "StaleRun"
    assert "no runs stale" in run_cli("backtest", "gc", "--stale", "0s", cwd=tmp_path).stdout

    assert_clean_error(run_cli("backtest", "gc", "--stale", "soon", cwd=tmp_path), contains="invalid age")


def test_archive_and_restore_cli(base_dir: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("quantbot.artifacts.writer.utc_now",
                        lambda: datetime(2024, 1, 20, tzinfo=UTC))
    old = [make_run(base_dir), make_run(base_dir, fail=True)]
    monkeypatch.undo()
    make_run(base_dir)
    assert run_cli("backtest", "catalog-sync", cwd=tmp_path).returncode == 0

    def count() -> int:
        proc = run_cli("backtest", "sql", "SELECT count(*) AS n FROM backtest_runs_catalog",
                       "--format", "csv", cwd=tmp_path)
        assert proc.returncode == 0, proc
        return int(proc.stdout.splitlines()[1])

    assert count() == 3
    arch = run_cli("backtest", "archive", "--before", "2024-02", "--format", "json", cwd=tmp_path)
    assert arch.returncode == 0, arch
    [month] = json.loads(arch.stdout)
    assert month["month"] == "2024-01" and month["runs"] == 2 and month["unregistered"] == 2
    archive = tmp_path / "archive" / "runs-2024-01.tar.gz"
    assert (tmp_path / month["path"]).resolve() == archive.resolve() and archive.is_file()
    assert not (base_dir / "2024-01").exists()
    assert count() == 1

    restored = run_cli("backtest", "restore", "archive/runs-2024-01.tar.gz", cwd=tmp_path)
    assert restored.returncode == 0, restored
    assert "restored 2 run(s) of 2024-01" in restored.stdout
    assert "registered 2" in restored.stdout
    assert {p.name for p in (base_dir / "2024-01").iterdir()} == {f"run_id={r.run_id}" for r in old}
    assert count() == 3

    again = run_cli("backtest", "restore", "archive/runs-2024-01.tar.gz", cwd=tmp_path)
    assert_clean_error(again, contains="never overwritten")
    assert_clean_error(run_cli("backtest", "archive", "--before", "24-01", cwd=tmp_path),
                       contains="invalid month")
