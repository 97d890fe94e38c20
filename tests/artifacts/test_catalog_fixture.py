"""benchmarks/catalog_fixture.py: the replicated runs are consistent catalog rows, so the
listing and web-app benchmarks built on it measure a catalog a real sync could produce."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

from quantbot.artifacts import catalog_all_runs, query_runs
from quantbot.artifacts.schema.manifest import RunManifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fixture_module() -> ModuleType:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("benchmarks.catalog_fixture")


def test_replicas_are_consistent_rows(fixture_module: ModuleType, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixture_module, "REAL_RUNS", 12)
    db, base = fixture_module.synthetic_catalog(tmp_path, 50)
    con = duckdb.connect(str(db), read_only=True)
    try:
        runs = con.execute("SELECT run_id, created_at, completed_at, status, run_type, git_branch, "
                           "run_dir, manifest_json FROM backtest_runs_catalog").fetchall()
        assert len(runs) == 50 and len({r[0] for r in runs}) == 50
        for run_id, created, completed, status, run_type, branch, run_dir, text in runs:
            m = RunManifest.model_validate_json(text)
            assert (m.run_id, m.status, m.run_type, m.git_branch) == (run_id, status, run_type, branch)
            assert m.created_at is not None and m.completed_at is not None
            assert m.created_at.startswith(created.isoformat(timespec="milliseconds"))
            assert m.completed_at.startswith(completed.isoformat(timespec="milliseconds"))
            assert run_dir.endswith(f"{created:%Y-%m}/run_id={run_id}")
            fields = dict(con.execute("SELECT field, value_text FROM run_fields WHERE run_id = ?",
                                      [run_id]).fetchall())
            params = json.loads(text)["parameters"]
            assert fields["params.policy.kind"] == params["policy"]["kind"]
            assert fields["params.seed"] == str(params["seed"])
        with_summary = {r[0] for r in con.execute(
            "SELECT DISTINCT run_id FROM artifact_summary").fetchall()}
        metrics = {r[0] for r in con.execute("SELECT run_id FROM run_metrics").fetchall()}
        assert metrics == with_summary and 0 < len(metrics) < 50
        [(orphans,)] = con.execute(
            "SELECT count(*) FROM (SELECT run_id FROM run_tags UNION ALL SELECT run_id "
            "FROM run_labels) ANTI JOIN backtest_runs_catalog USING (run_id)").fetchall()
        assert orphans == 0
        assert {r[0] for r in con.execute("SELECT status FROM backtest_runs_catalog").fetchall()} \
            == {"completed", "failed"}
        assert len(query_runs(con, limit=100)) == 50
    finally:
        con.close()
    report = catalog_all_runs(catalog=db, base_dir=base)  # the real runs are all there
    assert (report.registered, report.already_present, report.invalid) == (0, 12, [])
