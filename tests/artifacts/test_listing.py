"""Run listings: order, paging, deleted runs, the columns a table shows, query_runs' filter,
and a failed flow's error phase reaching the catalog."""

from __future__ import annotations

import os
from datetime import datetime

import duckdb
import pytest
from qbtest import make_run, rows

from quantbot.artifacts import Store, list_runs, query_runs, read_manifest
from quantbot.artifacts.catalog import catalog_all_runs, filter_fields, flat_row, listing_columns
from quantbot.errors import CatalogError, FilterError, InvalidArgumentError

SLS = [0.3, 0.1, None, 0.2, 0.1]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("listing")
    base, db = root / "runs", root / "cat.duckdb"
    runs = []
    for i, sl in enumerate(SLS):
        params = {"policy_id": f"p{i}", "sweep": {"task": f"t{i}"}, "fixed": 1}
        if sl is not None:
            params["policy"] = {"sl": sl}
        summary = [] if i == 2 else rows("summary", 1, median_return_bps=float(i * 10))
        runs.append(make_run(base, parameters=params, fail=i == 4,
                             artifacts={"trades": rows("trades", 2), "summary": summary}))
    catalog_all_runs(catalog=db, base_dir=base)
    with duckdb.connect(str(db)) as con:
        con.execute("INSERT INTO run_labels VALUES (?, 'kept', NULL, 1, 'why'), "
                    "(?, NULL, ?, 0, NULL)", [runs[0].run_id, runs[1].run_id, datetime(2026, 1, 2)])
        con.execute("INSERT INTO run_tags VALUES (?, 'round', '1'), (?, 'round', '2'), "
                    "(?, 'owner', 'ann')", [runs[0].run_id, runs[3].run_id, runs[3].run_id])
    return db, [r.run_id for r in runs]


def test_default_order_is_newest_first_and_hides_deleted(catalog):
    db, ids = catalog
    listing = list_runs(db)
    assert [r["run_id"] for r in listing.runs] == [ids[i] for i in (4, 3, 2, 0)]
    assert listing.total == 4
    assert [r["run_id"] for r in list_runs(db, only_deleted=True).runs] == [ids[1]]
    assert list_runs(db, include_deleted=True).total == 5


def test_order_by_several_keys_nulls_last(catalog):
    db, ids = catalog
    got = list_runs(db, order_by="params.policy.sl DESC, created_at ASC", include_deleted=True)
    assert [r["run_id"] for r in got.runs] == [ids[i] for i in (0, 3, 1, 4, 2)]
    got = list_runs(db, order_by="params.policy.sl asc, metrics.median_return_bps DESC",
                    include_deleted=True)
    assert [r["run_id"] for r in got.runs] == [ids[i] for i in (4, 1, 3, 0, 2)]  # sl ties: higher median first
    got = list_runs(db, order_by="metrics.median_return_bps", include_deleted=True)
    assert [r["run_id"] for r in got.runs][-1] == ids[2]  # no metrics: last either way


def test_offset_limit_total(catalog):
    db, ids = catalog
    order = [ids[i] for i in (4, 3, 2, 1, 0)]
    for offset in range(7):
        page = list_runs(db, limit=2, offset=offset, include_deleted=True)
        assert [r["run_id"] for r in page.runs] == order[offset:offset + 2]
        assert page.total == 5
    assert list_runs(db, limit=0).runs == [] and list_runs(db, limit=0).total == 4
    with pytest.raises(InvalidArgumentError, match="offset"):
        list_runs(db, offset=-1)


def test_run_dicts(catalog):
    db, ids = catalog
    by_id = {r["run_id"]: r for r in list_runs(db, include_deleted=True).runs}
    first = by_id[ids[0]]
    assert first["name"] == "kept" and first["tags"] == {"round": "1"} and first["notes_count"] == 1
    assert first["params"]["policy"] == {"sl": 0.3} and first["metrics"]["median_return_bps"] == 0.0
    assert first["created_at"].endswith("Z") and first["error"] is None
    assert by_id[ids[1]]["deleted_at"] == "2026-01-02T00:00:00.000Z"
    assert by_id[ids[2]]["metrics"] == {}
    assert by_id[ids[3]]["tags"] == {"owner": "ann", "round": "2"}
    assert by_id[ids[4]]["error"] == "RuntimeError: boom" and by_id[ids[4]]["status"] == "failed"
    assert set(first) == {"run_id", "name", "run_type", "status", "created_at", "completed_at",
                          "git_branch", "git_commit", "error", "error_phase", "deleted_at",
                          "params", "dataset", "metrics", "tags", "notes_count"}


def test_only_changed_keeps_what_differs(catalog):
    db, _ = catalog
    runs = list_runs(db, "status = 'completed'").runs
    cols = listing_columns(runs, only_changed=True)
    assert cols[0] == "run_id"
    assert "params.policy.sl" in cols and "params.sweep.task" in cols and "tags" in cols
    assert "params.fixed" not in cols and "status" not in cols and "run_type" not in cols
    chosen = listing_columns(runs, ["run_id", "status", "params.fixed", "params.policy_id"],
                             only_changed=True)
    assert chosen == ["run_id", "params.policy_id"]
    assert listing_columns(runs)[:4] == ["run_id", "name", "run_type", "status"]
    row = flat_row(runs[-1], ["policy", "calls", "tags", "params.policy.sl", "metrics.sharpe"])
    assert row == {"policy": "p0", "calls": 0, "tags": "round=1", "params.policy.sl": 0.3,
                   "metrics.sharpe": None}
    with pytest.raises(FilterError, match=r"columns: unknown field 'stauts' \(did you mean: status"):
        listing_columns(runs, ["stauts"])


def test_query_runs_takes_a_filter(catalog):
    db, ids = catalog
    got = query_runs(db, filter="params.policy.sl <= 0.2", status="completed", limit=None)
    assert [m.run_id for m in got] == [ids[3]]  # ids[1] is deleted, ids[4] failed
    got = query_runs(db, filter="params.policy.sl <= 0.2", include_deleted=True,
                     order_by="params.policy.sl, created_at", offset=1, limit=None)
    assert [m.run_id for m in got] == [ids[4], ids[3]]
    store = Store(os.path.dirname(db), catalog=db)
    assert [m.run_id for m in store.query("tags.round = '2'")] == [ids[3]]
    assert [r["run_id"] for r in store.list_runs("name = 'kept'").runs] == [ids[0]]


def test_filter_fields_lists_what_the_catalog_has(catalog):
    db, _ = catalog
    fields = filter_fields(db)
    for name in ("status", "created_at", "metrics.median_return_bps", "params.policy.sl",
                 "params.sweep.task", "dataset.calls_count", "tags.owner", "tags.round"):
        assert name in fields


def test_a_catalog_without_tables_is_a_clear_error(tmp_path):
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    with pytest.raises(CatalogError, match="no tables yet"):
        list_runs(db)


def test_a_run_failing_in_execution_records_its_phase(tmp_path, monkeypatch):
    import quantbot.backtest.engine.price_paths as paths_module
    from quantbot.backtest import run_path_only
    from quantbot.backtest.data.sample import write_sample_data

    alerts, candles = write_sample_data(tmp_path / "sample", n_alerts=18)

    def boom(*args, **kwargs):  # the fault: the engine raises mid-execution
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(paths_module, "compute_paths", boom)
    with pytest.raises(RuntimeError, match="engine exploded"):
        run_path_only(alerts, candles, base_dir=tmp_path / "runs", durable=False)
    (manifest,) = (tmp_path / "runs").rglob("run.json")
    assert read_manifest(manifest.parent).error.phase == "execution"
    db = tmp_path / "cat.duckdb"
    catalog_all_runs(catalog=db, base_dir=tmp_path / "runs")
    (run,) = list_runs(db, "error_phase = 'execution' AND error ~ 'exploded'").runs
    assert run["error"] == "RuntimeError: engine exploded" and run["error_phase"] == "execution"
