"""``--sync`` is one option with one code path: every command that writes a run registers it
in the catalog exactly as a later ``catalog-sync`` would, a failed run too."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from quantbot.artifacts import catalog_all_runs
from quantbot.artifacts.store.writer import RunDirectory
from quantbot.backtest import write_sample_data
from quantbot.cli import cli
from quantbot.errors import DataError

GRID = {"families": {"fixed": {"kind": "fixed_stop", "product": {"stop_pct": [0.1, 0.3]}}}}
POLICY = '{"kind":"fixed_stop","stop_pct":0.2}'
COMMANDS = {
    "path-only": ["run", "path-only"],
    "policy": ["run", "policy", "--policy", POLICY],
    "full": ["run", "full", "--grid", "grid.json", "--min-calls", "3"],
    "optimization": ["optimize", "--grid", "grid.json", "--min-calls", "3"],
}
VOLATILE = ("cataloged_at",)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("work")
    write_sample_data(out, n_alerts=40)
    (out / "grid.json").write_text(json.dumps(GRID))
    (out / "broken.parquet").write_bytes(b"PAR1 not really parquet")
    return out


def _invoke(work: Path, db: Path, *args: str) -> dict:
    res = CliRunner().invoke(cli, ["backtest", *args, "--base-dir", str(work / "runs"),
                                   "--duckdb", str(db), "--sync", "--no-durable", "--format", "json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _row(db: Path, run_id: str) -> dict:
    with duckdb.connect(str(db), read_only=True) as con:
        cur = con.execute("SELECT * FROM backtest_runs_catalog WHERE run_id = ?", [run_id])
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    assert len(rows) == 1, run_id
    return {k: v for k, v in zip(names, rows[0]) if k not in VOLATILE}


def _inputs(work: Path, candles: str = "candles.parquet") -> list[str]:
    return ["--alerts", str(work / "alerts.parquet"), "--candles", str(work / candles)]


def test_sync_registers_every_run_type_like_catalog_sync(work, tmp_path, monkeypatch):
    monkeypatch.chdir(work)  # grid.json is relative
    db = tmp_path / "synced.duckdb"
    out = {name: _invoke(work, db, *args, *_inputs(work)) for name, args in COMMANDS.items()}
    out["rerun"] = _invoke(work, db, "rerun", out["policy"]["run_id"])
    assert all(o["cataloged"] for o in out.values())
    reference = tmp_path / "reference.duckdb"
    catalog_all_runs(catalog=reference, base_dir=work / "runs")
    for name, o in out.items():
        run_id = o["run_id"]
        synced = _row(db, run_id)
        assert synced == _row(reference, run_id), name
        assert synced["run_type"] == ("policy" if name == "rerun" else name)
        assert synced["status"] == "completed"


def _full_disk(self, *args, **kwargs):
    """The disk fills up while the run writes its artifacts (ENOSPC from the writer)."""
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_sync_registers_a_failed_run(name, work, tmp_path, monkeypatch):
    monkeypatch.chdir(work)
    monkeypatch.setattr(RunDirectory, "write_artifact", _full_disk)
    db = tmp_path / "synced.duckdb"
    base = tmp_path / "runs"
    res = CliRunner().invoke(cli, ["backtest", *COMMANDS[name], *_inputs(work),
                                   "--base-dir", str(base), "--duckdb", str(db), "--sync",
                                   "--no-durable"])
    assert res.exit_code != 0
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT run_type, status FROM backtest_runs_catalog").fetchall()
    assert rows == [(name, "failed")]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_unreadable_input_is_refused_before_a_run_exists(name, work, tmp_path, monkeypatch):
    monkeypatch.chdir(work)
    db, base = tmp_path / "synced.duckdb", tmp_path / "runs"
    res = CliRunner().invoke(cli, ["backtest", *COMMANDS[name], *_inputs(work, "broken.parquet"),
                                   "--base-dir", str(base), "--duckdb", str(db), "--sync",
                                   "--no-durable"])
    assert isinstance(res.exception, DataError) and "broken.parquet" in str(res.exception)
    assert not base.exists() or not any(base.rglob("run.json"))
    assert not db.exists()  # nothing to register
