"""The DuckDB catalog: sync, register, query filters, views, stats, rebuild, goldens."""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from qbtest import catalog_dump, make_run, rows

from quantbot.artifacts import (
    catalog_all_runs,
    get_artifact_path,
    get_catalog_stats,
    initialize_catalog,
    query_runs,
    register_run,
    run_sql,
)
from quantbot.artifacts.catalog import InvalidRunError
from quantbot.errors import (
    CatalogError,
    InvalidRunIdError,
    QuantbotError,
    RunNotFoundError,
    UnknownArtifactTypeError,
)


def set_created(run, when: str, branch: str | None = None) -> None:
    """Rewrite a (still open) run's created_at through its manifest file, for date filters."""
    p = Path(run.path, "run.json")
    data = json.loads(p.read_text())
    data["created_at"] = when
    if branch is not None:
        data["git_branch"] = branch
    p.write_text(json.dumps(data))


def fixed_runs(base_dir):
    """Four runs with known created_at / branch / type / status."""
    spec = [
        ("path-only", "2024-01-10T12:00:00.000Z", "main", False),
        ("policy", "2024-01-20T23:59:59.500Z", "main", False),
        ("policy", "2024-02-01T00:00:00.000Z", "dev", True),
        ("optimization", "2024-02-15T08:00:00.000Z", "dev", False),
    ]
    out = []
    for run_type, when, branch, fail in spec:
        run = make_run(base_dir, run_type, artifacts={"trades": rows("trades", 2), "errors": []},
                       fail=fail)
        set_created(run, when, branch)
        out.append(run)
    return out


def test_sync_registers_completed_and_failed(base_dir, catalog):
    done = make_run(base_dir)
    failed = make_run(base_dir, fail=True)
    running = make_run(base_dir, complete=False)
    report = catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert (report.registered, report.already_present, report.incomplete, report.invalid) == \
        (2, 0, 1, [])
    by_id = {m.run_id: m for m in query_runs(catalog, limit=None)}
    assert set(by_id) == {done.run_id, failed.run_id}
    assert by_id[failed.run_id].status == "failed"
    assert by_id[failed.run_id].error.message == "boom"
    assert running.run_id not in by_id
    again = catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert (again.registered, again.already_present, again.incomplete) == (0, 2, 1)
    running.mark_success()
    third = catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert (third.registered, third.already_present, third.incomplete) == (1, 2, 0)


def test_query_filters(base_dir, catalog):
    runs = fixed_runs(base_dir)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    ids = lambda ms: [m.run_id for m in ms]
    assert ids(query_runs(catalog)) == [r.run_id for r in reversed(runs)]  # newest first
    assert ids(query_runs(catalog, limit=2)) == [runs[3].run_id, runs[2].run_id]
    assert query_runs(catalog, limit=0) == []
    assert ids(query_runs(catalog, run_type="policy")) == [runs[2].run_id, runs[1].run_id]
    assert ids(query_runs(catalog, status="failed")) == [runs[2].run_id]
    assert ids(query_runs(catalog, status="completed", run_type="policy")) == [runs[1].run_id]
    assert ids(query_runs(catalog, git_branch="dev")) == [runs[3].run_id, runs[2].run_id]
    assert query_runs(catalog, git_branch="x' OR 1=1 --") == []
    assert query_runs(catalog, git_branch="main' OR '1'='1") == []
    # a bare-date upper bound covers the whole day (23:59:59.5 included)
    assert ids(query_runs(catalog, to_date="2024-01-20")) == [runs[1].run_id, runs[0].run_id]
    assert ids(query_runs(catalog, to_date=date(2024, 1, 20))) == [runs[1].run_id, runs[0].run_id]
    assert ids(query_runs(catalog, from_date="2024-01-20", to_date="2024-02-01")) == \
        [runs[2].run_id, runs[1].run_id]
    assert ids(query_runs(catalog, from_date="2024-01-21")) == [runs[3].run_id, runs[2].run_id]
    assert ids(query_runs(catalog, from_date="2024-02-01T00:00:00Z")) == \
        [runs[3].run_id, runs[2].run_id]
    assert ids(query_runs(catalog, from_date="2024-02-01T01:00:00+02:00")) == \
        [runs[3].run_id, runs[2].run_id]
    assert ids(query_runs(catalog, to_date=datetime(2024, 1, 10, 12, 0))) == [runs[0].run_id]
    assert query_runs(catalog, from_date="2030-01-01") == []
    m = query_runs(catalog, run_type="optimization")[0]
    assert m.artifacts["trades"].rows == 2 and m.run_type == "optimization"


@pytest.mark.parametrize("kw,match", [
    ({"run_type": "bogus"}, "run type"), ({"status": "done' --"}, "status"),
    ({"from_date": "yesterday"}, "from date"), ({"to_date": "2024-13-45"}, "to date"),
    ({"from_date": "1; DROP TABLE backtest_runs_catalog"}, "from date"), ({"limit": -1}, "limit"),
])
def test_query_bad_filters_are_clean_errors(base_dir, catalog, kw, match):
    make_run(base_dir)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    before = catalog_dump(catalog)
    with pytest.raises(QuantbotError, match=match):
        query_runs(catalog, **kw)
    assert catalog_dump(catalog) == before


def test_get_artifact_path(base_dir, catalog):
    run = make_run(base_dir)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    p = get_artifact_path(catalog, run.run_id, "trades")
    assert p == os.path.join(run.path, "policy", "trades.parquet") and os.path.exists(p)
    assert get_artifact_path(catalog, run.run_id.upper(), "errors").endswith("errors/errors.parquet")
    with pytest.raises(RunNotFoundError, match="no paths artifact"):
        get_artifact_path(catalog, run.run_id, "paths")
    with pytest.raises(RunNotFoundError, match="not in the catalog"):
        get_artifact_path(catalog, "0f8fad5b-d9cb-469f-a165-70867728950e", "trades")
    with pytest.raises(UnknownArtifactTypeError):
        get_artifact_path(catalog, run.run_id, "candles")
    with pytest.raises(InvalidRunIdError):
        get_artifact_path(catalog, "../" + run.run_id, "trades")


def test_catalog_stats(base_dir, catalog):
    fixed_runs(base_dir)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    stats = get_catalog_stats(catalog)
    assert stats["total_runs"] == 4
    assert stats["by_status"] == {"completed": 3, "failed": 1}
    assert stats["by_run_type"] == {"optimization": 1, "path-only": 1, "policy": 2}
    assert stats["artifacts"]["trades"]["files"] == 4 and stats["artifacts"]["trades"]["rows"] == 8
    assert stats["artifacts"]["errors"]["rows"] == 0
    assert stats["oldest_run"].startswith("2024-01-10T12:00")
    assert stats["newest_run"].startswith("2024-02-15T08:00")


def test_register_run(base_dir, catalog):
    run = make_run(base_dir)
    assert register_run(catalog, run.path) is True
    assert register_run(catalog, run.path) is False
    assert register_run(catalog, Path(run.path + "/")) is False
    assert [m.run_id for m in query_runs(catalog)] == [run.run_id]
    failed = make_run(base_dir, fail=True)
    assert register_run(catalog, failed.path) is True
    incomplete = make_run(base_dir, complete=False)
    before = catalog_dump(catalog)
    with pytest.raises(InvalidRunError, match="incomplete"):
        register_run(catalog, incomplete.path)
    with pytest.raises(InvalidRunError, match="not a run directory"):
        register_run(catalog, base_dir)
    assert catalog_dump(catalog) == before
    report = catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert (report.registered, report.already_present, report.incomplete) == (0, 2, 1)


def test_register_run_rejects_tampered(base_dir, catalog):
    run = make_run(base_dir)
    f = Path(run.path, "policy", "trades.parquet")
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(InvalidRunError, match="trades"):
        register_run(catalog, run.path)


def test_views_span_registered_runs_with_run_id_from_file(base_dir, catalog):
    a = make_run(base_dir, artifacts={
        "alerts": [{**r, "extra_score": 1.5} for r in rows("alerts", 2)],
        "paths": rows("paths", 2), "features": rows("features", 2),
        "trades": rows("trades", 3), "summary": rows("summary", 1),
        "frontier": rows("frontier", 2), "errors": rows("errors", 1)})
    b = make_run(base_dir, artifacts={"trades": rows("trades", 4), "errors": [],
                                      "features": [{**r, "new_feat": 7} for r in rows("features", 1)]})
    make_run(base_dir, artifacts={"trades": rows("trades", 5)}, complete=False)  # not registered
    failed = make_run(base_dir, artifacts={"trades": rows("trades", 6)}, fail=True)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    counts = {r["run_id"]: r["n"] for r in run_sql(
        catalog, "SELECT run_id, count(*) AS n FROM all_trades GROUP BY 1").to_pylist()}
    assert counts == {a.run_id: 3, b.run_id: 4, failed.run_id: 6}
    for view, n in (("all_alerts", 2), ("all_paths", 2), ("all_summary", 1), ("all_frontier", 2),
                    ("all_errors", 1), ("all_features", 3)):
        t = run_sql(catalog, f"SELECT * FROM {view}")
        assert t.num_rows == n, view
        assert "run_id" in t.column_names
    alerts = run_sql(catalog, "SELECT run_id, extra_score FROM all_alerts").to_pylist()
    assert alerts == [{"run_id": a.run_id, "extra_score": 1.5}] * 2
    feats = run_sql(catalog, "SELECT run_id, new_feat FROM all_features ORDER BY new_feat NULLS FIRST"
                    ).to_pylist()
    assert [f["new_feat"] for f in feats] == [None, None, 7]
    joined = run_sql(catalog, """SELECT r.status, count(*) AS n FROM all_trades t
                                 JOIN backtest_runs_catalog r USING (run_id)
                                 GROUP BY 1 ORDER BY 1""").to_pylist()
    assert joined == [{"status": "completed", "n": 7}, {"status": "failed", "n": 6}]


def test_run_sql_is_read_only_and_errors_are_clean(base_dir, catalog):
    make_run(base_dir)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    before = catalog_dump(catalog)
    for bad in ("DROP TABLE backtest_runs_catalog", "DELETE FROM backtest_runs_catalog",
                "SELEC nonsense", "SELECT * FROM no_such_table"):
        with pytest.raises(QuantbotError, match="SQL error"):
            run_sql(catalog, bad)
    assert catalog_dump(catalog) == before
    assert run_sql(catalog, "SELECT ? AS x", ["a' OR 1=1"]).to_pylist() == [{"x": "a' OR 1=1"}]


def test_missing_catalog_and_empty_catalog(tmp_path, catalog):
    with pytest.raises(CatalogError, match="does not exist"):
        query_runs(catalog)
    assert not catalog.exists()
    initialize_catalog(catalog)
    initialize_catalog(catalog)  # idempotent
    assert query_runs(catalog) == []
    stats = get_catalog_stats(catalog)
    assert stats["total_runs"] == 0 and stats["oldest_run"] is None
    report = catalog_all_runs(catalog=catalog, base_dir=tmp_path / "no-runs-here")
    assert report.registered == 0


def test_catalog_accepts_open_connection(base_dir, tmp_path):
    make_run(base_dir)
    con = duckdb.connect(str(tmp_path / "c.duckdb"))
    try:
        assert catalog_all_runs(catalog=con, base_dir=base_dir).registered == 1
        assert len(query_runs(con)) == 1
    finally:
        con.close()


def _golden_view(catalog):
    runs = [m.to_dict() for m in query_runs(catalog, limit=None)]
    agg = run_sql(catalog, """SELECT run_id, count(*) AS n, sum(realized_return_bps) AS s,
                              min(entry_ts_ms) AS first_entry FROM all_trades
                              GROUP BY run_id ORDER BY run_id""").to_pylist()
    stats = get_catalog_stats(catalog)
    return runs, agg, stats


def test_drop_catalog_and_resync_gives_identical_answers(base_dir, catalog):
    fixed_runs(base_dir)
    make_run(base_dir, complete=False)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    before = _golden_view(catalog)
    before_dump = catalog_dump(catalog)
    catalog.unlink()
    report = catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert (report.registered, report.incomplete) == (4, 1)
    assert _golden_view(catalog) == before
    assert catalog_dump(catalog) == before_dump


def normalise_manifest(d: dict) -> dict:
    d = json.loads(json.dumps(d))
    d["run_id"] = "<run_id>"
    for k in ("created_at", "started_at", "completed_at"):
        if k in d:
            d[k] = "<ts>"
    d["host"] = "<host>"
    for k in ("git_commit", "git_branch", "git_dirty"):
        d.pop(k, None)
    if "timing" in d and "total_ms" in d["timing"]:
        d["timing"]["total_ms"] = "<ms>"
    for entry in d.get("artifacts", {}).values():
        entry["bytes"] = "<bytes>" if entry["bytes"] > 0 else 0
        entry["sha256"] = "<sha256>"
    return d


GOLDEN_MANIFEST = {
    "run_id": "<run_id>", "run_type": "policy", "status": "completed",
    "created_at": "<ts>", "started_at": "<ts>", "completed_at": "<ts>",
    "dataset": {"from": "2024-01-01T00:00:00Z", "to": "2024-01-02T00:00:00Z", "interval": "1m",
                "calls_count": 3},
    "parameters": {
        "strategy_id": "s1", "policy_id": "fixed_stop:sl0.2",
        # sha256 of canonical JSON of the parameters without the hash itself
        "config_hash": "8e8a0e0b5a1f2a7a2f6c6f3ba5d2f20e3c84c3b0bd2e3b8f43ebbe0bba4b6b1c",
        "policy": {"kind": "fixed_stop", "stop_pct": 0.2}, "fees_bps": 30,
    },
    "schema_version": {"manifest": "1.1.0", "artifacts": "1.2.0"},
    "artifacts": {
        "trades": {"rows": 3, "path": "policy/trades.parquet", "bytes": "<bytes>",
                   "sha256": "<sha256>"},
        "summary": {"rows": 1, "path": "results/summary.parquet", "bytes": "<bytes>",
                    "sha256": "<sha256>"},
        "errors": {"rows": 0, "path": "errors/errors.parquet", "bytes": "<bytes>",
                   "sha256": "<sha256>"},
    },
    "timing": {"plan_ms": 1.0, "execution_ms": 2.5, "total_ms": "<ms>"},
    "host": "<host>",
}


def test_golden_manifest_and_query(base_dir, catalog):
    from quantbot.artifacts.schema.manifest import config_hash

    params = {"strategy_id": "s1", "policy_id": "fixed_stop:sl0.2",
              "policy": {"kind": "fixed_stop", "stop_pct": 0.2}, "fees_bps": 30}
    run = make_run(base_dir, "policy", parameters=params,
                   dataset={"from": "2024-01-01T00:00:00Z", "to": "2024-01-02T00:00:00Z",
                            "interval": "1m", "calls_count": 3},
                   artifacts={"trades": rows("trades", 3), "summary": rows("summary", 1),
                              "errors": []}, complete=False)
    run.update_manifest(timing={"plan_ms": 1.0, "execution_ms": 2.5})
    run.mark_success()
    golden = json.loads(json.dumps(GOLDEN_MANIFEST))
    golden["parameters"]["config_hash"] = config_hash(params)
    on_disk = json.loads(Path(run.path, "run.json").read_text())
    assert normalise_manifest(on_disk) == golden
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert normalise_manifest(query_runs(catalog)[0].to_dict()) == golden
    result = run_sql(catalog, """SELECT policy_id, exit_reason, count(*) AS n,
                                 round(avg(realized_return_bps), 3) AS avg_bps,
                                 sum(time_exposed_ms) AS exposed
                                 FROM all_trades GROUP BY ALL ORDER BY ALL""").to_pylist()
    assert result == [{"policy_id": "p1", "exit_reason": "take_profit", "n": 3,
                       "avg_bps": 101.0, "exposed": 180000}]
    row = run_sql(catalog, "SELECT run_type, status, dataset_interval, dataset_calls_count, "
                           "timing_plan_ms, timing_execution_ms, git_dirty, "
                           "parameters_json FROM backtest_runs_catalog").to_pylist()[0]
    assert row["parameters_json"] == json.dumps(
        {**params, "config_hash": config_hash(params)}, sort_keys=True)
    del row["parameters_json"]
    assert row == {"run_type": "policy", "status": "completed", "dataset_interval": "1m",
                   "dataset_calls_count": 3, "timing_plan_ms": 1.0, "timing_execution_ms": 2.5,
                   "git_dirty": None}
    arts = run_sql(catalog, "SELECT artifact_type, artifact_path, rows FROM "
                            "backtest_artifacts_catalog ORDER BY 1").to_pylist()
    assert arts == [{"artifact_type": "errors", "artifact_path": "errors/errors.parquet", "rows": 0},
                    {"artifact_type": "summary", "artifact_path": "results/summary.parquet",
                     "rows": 1},
                    {"artifact_type": "trades", "artifact_path": "policy/trades.parquet",
                     "rows": 3}]
