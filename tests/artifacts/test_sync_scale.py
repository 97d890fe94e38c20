"""The sync's shortcuts for large base dirs and rebuilds give the catalog the long way would.

One listing serves both the new-run search and the duplicate check; the schema check skips
views that are already right; batches without summaries skip the metrics scan; inserts
may land in any order. Each shortcut is checked against the plain result here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from catalog_compare import catalog_tables
from qbtest import make_run, rows, summary_row

from quantbot.artifacts import catalog_all_runs
from quantbot.artifacts.catalog import sync
from quantbot.artifacts.catalog.connection import open_catalog
from quantbot.artifacts.catalog.schema import ensure_schema
from quantbot.artifacts.store.backends import open_storage
from quantbot.artifacts.store.runs import (
    copy_paths,
    iter_run_locations,
    list_run_folders,
    run_id_copies,
)


def _mixed_runs(base: Path) -> list[str]:
    """Runs with and without summaries (several splits), one failed, one path-only."""
    ids = []
    for i in range(7):
        artifacts: dict[str, object] = {"trades": rows("trades", 2 + i)}
        if i % 3 != 1:
            artifacts["summary"] = [summary_row(i, split="validation"), summary_row(i, split="all"),
                                    summary_row(i, caller_name="alice", split="all")]
        ids.append(make_run(base, "policy", artifacts=artifacts, fail=i == 4,
                            parameters={"policy_id": f"p{i}", "policy": {"sl": 0.1 * i}}).run_id)
    ids.append(make_run(base, "path-only", artifacts={"errors": []}).run_id)
    return ids


def test_listing_finds_every_run_and_names_each_copy(base_dir: Path) -> None:
    runs = [make_run(base_dir) for _ in range(3)]
    month = Path(runs[0].path).parent.name
    twice, thrice = Path(runs[0].path), Path(runs[1].path)
    for copy_month in ("2020-01", "2021-06"):
        shutil.copytree(thrice, base_dir / copy_month / thrice.name)
    shutil.copytree(twice, base_dir / "2020-01" / twice.name)
    (base_dir / month / "not-a-run").mkdir()
    (base_dir / "misc").mkdir()
    storage = open_storage(base_dir)
    found, copies = list_run_folders(storage)
    assert set(found) == {r.run_id for r in runs}
    assert copies == {runs[0].run_id: ["2020-01", month],
                      runs[1].run_id: ["2020-01", "2021-06", month]}
    by_id: dict[str, list[str]] = {}
    for loc in iter_run_locations(storage):  # the plain walk, as verify makes it
        by_id.setdefault(loc.run_id, []).append(loc.path)
    plain = {rid: sorted(paths) for rid, paths in by_id.items() if len(paths) > 1}
    assert {k: sorted(v) for k, v in copy_paths(storage, copies).items()} == plain
    assert {k: sorted(v) for k, v in run_id_copies(storage).items()} == plain
    report = catalog_all_runs(catalog=base_dir.parent / "cat.duckdb", base_dir=base_dir)
    assert report.registered == 1
    assert sorted(p for p, _ in report.invalid) == sorted(
        [str(base_dir / month / twice.name), str(base_dir / month / thrice.name)])
    for _, reason in report.invalid:
        assert "more than one month" in reason


def test_small_batches_rebuild_and_incremental_syncs_agree(base_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _mixed_runs(base_dir)
    default = tmp_path / "default.duckdb"
    assert catalog_all_runs(catalog=default, base_dir=base_dir).registered == len(ids)
    monkeypatch.setattr(sync, "_BATCH_RUNS", 2)  # batches of summaries, of none, of a mix
    batched = tmp_path / "batched.duckdb"
    assert catalog_all_runs(catalog=batched, base_dir=base_dir).registered == len(ids)
    one_by_one = tmp_path / "incremental.duckdb"
    for rid in ids:  # one new run per sync, in creation order
        path = next(p for p in base_dir.glob(f"*/run_id={rid}"))
        sync.register_run(one_by_one, path)
    assert catalog_tables(batched) == catalog_tables(default) == catalog_tables(one_by_one)
    con = duckdb.connect(str(batched), read_only=True)
    try:
        metrics = dict(con.execute("SELECT run_id, split FROM run_metrics").fetchall())
        summaries = {r for (r,) in con.execute("SELECT DISTINCT run_id FROM all_summary").fetchall()}
    finally:
        con.close()
    assert set(metrics) == summaries and len(summaries) == 5  # runs 1 and 4 have none
    assert set(metrics.values()) == {"validation"}


def test_a_bad_run_in_a_batch_fails_alone(base_dir: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs whose features collide (one column spelled two ways inside one run) share a
    batch with good runs: only the bad one is reported, the others are registered."""
    good = [make_run(base_dir, artifacts={"trades": rows("trades", 3)}).run_id for _ in range(4)]
    bad = make_run(base_dir, artifacts={"features": [
        {**rows("features", 1)[0], "Score": 1.0, "score": 2.0}]})
    monkeypatch.setattr(sync, "_BATCH_RUNS", 3)
    report = catalog_all_runs(catalog=tmp_path / "cat.duckdb", base_dir=base_dir)
    assert report.registered == len(good)
    [(path, reason)] = report.invalid
    assert bad.run_id in path and "differ only in case" in reason


@pytest.mark.parametrize("before", [True, False])
def test_a_callers_connection_keeps_its_insertion_order_setting(base_dir: Path, tmp_path: Path,
                                                                before: bool) -> None:
    _mixed_runs(base_dir)
    con = duckdb.connect(str(tmp_path / "cat.duckdb"))
    try:
        con.execute(f"SET preserve_insertion_order = {str(before).lower()}")
        assert catalog_all_runs(catalog=con, base_dir=base_dir).registered == 8
        [(now,)] = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
        assert now is before
    finally:
        con.close()


def test_schema_check_repairs_a_missing_or_stale_view(base_dir: Path, tmp_path: Path) -> None:
    _mixed_runs(base_dir)
    db = tmp_path / "cat.duckdb"
    catalog_all_runs(catalog=db, base_dir=base_dir)
    expected = catalog_tables(db)
    with open_catalog(db, read_only=False) as con:
        con.execute("DROP VIEW all_trades")
        con.execute("CREATE OR REPLACE VIEW all_summary AS SELECT run_id FROM artifact_summary")
        ensure_schema(con)
    assert catalog_tables(db) == expected


def test_a_failed_batch_insert_is_retried_run_by_run_with_its_summaries(
        base_dir: Path, tmp_path: Path) -> None:
    """A stale ``run_fields`` row for a new run makes its insert fail inside the batch's
    transaction (after its summaries were staged): the batch is rolled back and retried one
    run at a time, so the others register with their metrics and the bad run leaves nothing."""
    db = tmp_path / "cat.duckdb"
    first = make_run(base_dir, artifacts={"summary": [summary_row(0)]})
    catalog_all_runs(catalog=db, base_dir=base_dir)
    new = [make_run(base_dir, artifacts={"summary": [summary_row(i), summary_row(i, split="all")]},
                    parameters={"policy_id": f"p{i}"}) for i in range(3)]
    stale = new[1].run_id
    with open_catalog(db, read_only=False) as con:
        con.execute("INSERT INTO run_fields VALUES (?, 'params.policy_id', 'x', NULL)", [stale])
    report = catalog_all_runs(catalog=db, base_dir=base_dir)
    assert report.registered == 2 and report.already_present == 1
    [(path, reason)] = report.invalid
    assert stale in path and reason.startswith("catalog insert failed")
    con = duckdb.connect(str(db), read_only=True)
    try:
        metrics = {r[0] for r in con.execute("SELECT run_id FROM run_metrics").fetchall()}
        summaries = con.execute("SELECT run_id, count(*) FROM artifact_summary GROUP BY 1").fetchall()
        temp = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall()
    finally:
        con.close()
    assert metrics == {first.run_id, new[0].run_id, new[2].run_id}
    assert dict(summaries) == {first.run_id: 1, new[0].run_id: 2, new[2].run_id: 2}
    assert temp == [(0,)]
