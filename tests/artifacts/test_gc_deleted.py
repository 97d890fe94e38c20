"""gc --deleted: soft-deleted runs older than the threshold are removed for good, folder
and catalog rows in the same step; everything else stays."""

from __future__ import annotations

from datetime import timedelta

import duckdb
from qbtest import make_run, rows

from quantbot.artifacts import (
    catalog_all_runs,
    delete_runs,
    list_run_directories,
    run_annotations_state,
    undelete_runs,
)
from quantbot.artifacts.ops.gc import collect_deleted_runs
from quantbot.artifacts.schema.layout import parse_iso, utc_now


def _counts(db) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(DISTINCT run_id) FROM {t}").fetchall()[0][0]
                for t in ("backtest_runs_catalog", "backtest_artifacts_catalog", "run_fields",
                          "artifact_trades")}
    finally:
        con.close()


def test_dry_run_lists_and_apply_removes_folder_and_catalog_rows(base_dir, catalog):
    keep, gone, back = (make_run(base_dir, artifacts={"trades": rows("trades", 3)}).run_id
                        for _ in range(3))
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    common = {"base_dir": base_dir, "catalog": catalog}
    (deletion,) = delete_runs([gone], **common, author="ana@box")
    delete_runs([back], **common)
    undelete_runs([back], **common)
    later = parse_iso(deletion.created_at) + timedelta(days=31)

    assert collect_deleted_runs(base_dir, "30d", catalog=catalog) == []  # too recent
    found = collect_deleted_runs(base_dir, "30d", catalog=catalog, now=later)
    assert [(d.run_id, d.deleted_by, d.removed) for d in found] == [(gone, "ana@box", False)]
    assert found[0].line() == (f"would remove {gone} {found[0].path} "
                               f"(deleted {deletion.created_at} by ana@box)")
    assert len(list_run_directories(base_dir)) == 3 and _counts(catalog)["artifact_trades"] == 3

    (removed,) = collect_deleted_runs(base_dir, "30d", catalog=catalog, apply=True, now=later)
    assert removed.removed and removed.line().startswith(f"removed {gone} ")
    assert sorted(p.rsplit("=", 1)[1] for p in list_run_directories(base_dir)) == sorted([keep, back])
    assert not any(gone in str(p) for p in base_dir.rglob("*") if "_annotations" not in str(p))
    assert _counts(catalog) == {t: 2 for t in _counts(catalog)}
    assert run_annotations_state(catalog, gone)["deleted_at"] == deletion.created_at  # history kept
    assert collect_deleted_runs(base_dir, "30d", catalog=catalog, apply=True, now=later) == []
    assert catalog_all_runs(catalog=catalog, base_dir=base_dir).registered == 0


def test_the_records_decide_even_without_a_catalog(base_dir, tmp_path):
    (run_id,) = (make_run(base_dir).run_id for _ in range(1))
    delete_runs([run_id], base_dir=base_dir, catalog=None)
    missing = tmp_path / "none.duckdb"
    (done,) = collect_deleted_runs(base_dir, "0s", catalog=missing, apply=True,
                                   now=utc_now() + timedelta(seconds=1))
    assert done.run_id == run_id and list_run_directories(base_dir) == []
    assert not missing.exists()
