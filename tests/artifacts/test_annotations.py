"""Annotation records (names, tags, notes, soft delete): the files in the base dir, the
catalog's label tables derived from them, and every other reader of the base dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from qbtest import make_run, rows

from quantbot.artifacts import (
    annotation_history,
    catalog_all_runs,
    delete_runs,
    list_run_directories,
    locate_run,
    name_run,
    note_run,
    run_annotations_state,
    tag_runs,
    undelete_runs,
    untag_runs,
)
from quantbot.artifacts.catalog.labels import apply_records, sync_annotations
from quantbot.artifacts.catalog.remove import unregister_runs
from quantbot.artifacts.catalog.transaction import transaction
from quantbot.artifacts.ops.annotate import CatalogPendingWarning
from quantbot.artifacts.ops.gc import collect_stale_runs
from quantbot.artifacts.ops.verify import verify_runs
from quantbot.artifacts.store.annotations import (
    ANNOTATIONS_DIR,
    fold_records,
    read_records,
)
from quantbot.artifacts.store.backends import open_storage
from quantbot.errors import AnnotationError, InvalidRunIdError, RunNotFoundError

INJECTIONS = ["x'; DROP TABLE run_tags; --", 'a"b', "1 OR 1=1", "\\'", "%_*", "ü 名前 🚀",
              "line\nbreak", "$(rm -rf /)", "NULL"]


def _runs(base: Path, n: int) -> list[str]:
    return [make_run(base, artifacts={"trades": rows("trades", 2 + i)}).run_id for i in range(n)]


def _files(base: Path) -> list[Path]:
    return sorted((base / ANNOTATIONS_DIR).rglob("*.json"))


def _query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_each_record_is_one_small_json_object_named_by_time_and_uuid(base_dir, catalog):
    (run_id,) = _runs(base_dir, 1)
    made = tag_runs([run_id], {"exp": "fees", "owner": "ana"}, base_dir=base_dir,
                    catalog=catalog, author="ana@box")
    files = _files(base_dir)
    assert len(files) == 2 == len(made)
    for path, record in zip(files, sorted(made, key=lambda r: r.record_id), strict=True):
        data = json.loads(path.read_bytes())
        assert set(data) == {"record_id", "run_id", "action", "key", "value", "author",
                             "created_at", "format"}
        assert data["format"] == 1 and data["author"] == "ana@box" and data["action"] == "tag"
        assert path.name == f"{data['record_id']}.json"
        ms, hexpart = data["record_id"].split("-")
        assert len(ms) == 13 and len(hexpart) == 32
        assert path.parent.name == data["created_at"][:7]  # YYYY-MM of created_at
        assert data == record.to_dict()
    records, invalid = read_records(open_storage(base_dir))
    assert records == sorted(made, key=lambda r: (r.created_at, r.record_id)) and invalid == []


def test_the_state_folds_the_records_in_order(base_dir, catalog):
    run_id, other = _runs(base_dir, 2)
    common = {"base_dir": base_dir, "catalog": None}  # applied by the sync below
    tag_runs([run_id, other], {"a": "1", "b": "2"}, **common)
    tag_runs(run_id, {"a": "3"}, **common)
    untag_runs([run_id], ["b"], **common)
    name_run(run_id, "first", **common)
    name_run(run_id, "second", **common)
    note_run(run_id, "one", **common)
    note_run(run_id, "two", **common)
    delete_runs([run_id], **common)
    undelete_runs([run_id], **common)
    last = delete_runs([run_id], **common)[0]
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    state = run_annotations_state(catalog, run_id)
    assert state["name"] == "second" and state["tags"] == {"a": "3"}
    assert [n["text"] for n in state["notes"]] == ["one", "two"]
    assert state["deleted_at"] == last.created_at
    assert run_annotations_state(catalog, other) == {"name": None, "tags": {"a": "1", "b": "2"},
                                                     "notes": [], "deleted_at": None}
    ((count, last_note),) = _query(catalog, "SELECT notes_count, last_note FROM run_labels "
                                            "WHERE run_id = ?", [run_id])
    assert (count, last_note) == (2, "two")
    # the catalog agrees with an independent fold of the files
    records, _ = read_records(open_storage(base_dir))
    folded = fold_records(records)[run_id]
    assert folded.name == state["name"] and folded.tags == state["tags"]
    assert [r.action for r in annotation_history(run_id, **common)] == [
        "tag", "tag", "tag", "untag", "name", "name", "note", "note", "delete", "undelete",
        "delete"]


def test_applying_records_twice_or_out_of_order_changes_nothing(base_dir, catalog):
    (run_id,) = _runs(base_dir, 1)
    common = {"base_dir": base_dir, "catalog": None}
    tag_runs([run_id], {"k": "old"}, **common)
    tag_runs([run_id], {"k": "new"}, **common)
    delete_runs([run_id], **common)
    records, _ = read_records(open_storage(base_dir))
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    con = duckdb.connect(str(catalog))
    try:
        with transaction(con):
            assert apply_records(con, list(reversed(records))) == 0  # all seen already
        with transaction(con):
            apply_records(con, records[-1:])
        assert con.execute("SELECT key, value FROM run_tags").fetchall() == [("k", "new")]
        assert con.execute("SELECT count(*) FROM run_annotations").fetchall() == [(3,)]
    finally:
        con.close()
    assert sync_annotations(base_dir, catalog).applied == 0


def test_a_rebuilt_catalog_has_every_name_tag_note_and_deletion_back(base_dir, catalog):
    ids = _runs(base_dir, 4)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    common = {"base_dir": base_dir, "catalog": catalog}
    tag_runs(ids[:3], {"exp": "fees", "round": "2"}, **common)
    untag_runs(ids[0], ["round"], **common)
    name_run(ids[1], "the keeper", **common)
    note_run(ids[1], "beats baseline", **common)
    delete_runs(ids[2:], **common)
    undelete_runs(ids[3], **common)
    tables = ("run_annotations", "run_labels", "run_tags")
    before = {t: sorted(_query(catalog, f"SELECT * FROM {t}")) for t in tables}
    views = sorted(_query(catalog, "SELECT DISTINCT run_id FROM all_trades"))
    os.remove(catalog)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert {t: sorted(_query(catalog, f"SELECT * FROM {t}")) for t in tables} == before
    assert sorted(_query(catalog, "SELECT DISTINCT run_id FROM all_trades")) == views
    assert run_annotations_state(catalog, ids[1])["name"] == "the keeper"
    assert run_annotations_state(catalog, ids[2])["deleted_at"] is not None


def test_deleted_runs_leave_the_views_but_not_the_tables_and_come_back(base_dir, catalog):
    ids = _runs(base_dir, 3)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    everything = sorted(_query(catalog, "SELECT run_id, count(*) FROM all_trades GROUP BY 1"))
    delete_runs(ids[:2], base_dir=base_dir, catalog=catalog)
    assert _query(catalog, "SELECT DISTINCT run_id FROM all_trades") == [(ids[2],)]
    assert sorted(_query(catalog, "SELECT run_id, count(*) FROM artifact_trades GROUP BY 1")) \
        == everything
    assert sorted(r[0] for r in _query(
        catalog, "SELECT run_id FROM run_labels WHERE deleted_at IS NOT NULL")) == sorted(ids[:2])
    undelete_runs(ids[:2], base_dir=base_dir, catalog=catalog)
    assert sorted(_query(catalog, "SELECT run_id, count(*) FROM all_trades GROUP BY 1")) \
        == everything


def test_unregistering_a_run_leaves_its_annotations(base_dir, catalog):
    (run_id,) = _runs(base_dir, 1)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    name_run(run_id, "kept", base_dir=base_dir, catalog=catalog)
    assert unregister_runs(catalog, [run_id]) == 1
    assert run_annotations_state(catalog, run_id)["name"] == "kept"
    assert len(_files(base_dir)) == 1


def test_injection_strings_are_stored_literally(base_dir, catalog):
    (run_id,) = _runs(base_dir, 1)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    tags = {f"k{i}": text for i, text in enumerate(INJECTIONS)}
    tag_runs([run_id], tags, base_dir=base_dir, catalog=catalog)  # applied right away
    for text in INJECTIONS:  # applied by the sync below
        name_run(run_id, text, base_dir=base_dir, catalog=None)
        note_run(run_id, text, base_dir=base_dir, catalog=None)
    assert sync_annotations(base_dir, catalog).applied == 2 * len(INJECTIONS)
    state = run_annotations_state(catalog, run_id)
    assert state["tags"] == tags and state["name"] == INJECTIONS[-1]
    assert [n["text"] for n in state["notes"]] == INJECTIONS
    assert _query(catalog, "SELECT count(*) FROM run_tags") == [(len(INJECTIONS),)]
    for key in ("x'; DROP TABLE run_tags; --", "a b", "", "ключ", "a=b", "../x"):
        with pytest.raises(AnnotationError, match=r"\[A-Za-z0-9_\.-\]\+"):
            tag_runs([run_id], {key: "v"}, base_dir=base_dir, catalog=catalog)


def test_bad_input_writes_nothing(base_dir, catalog):
    (run_id,) = _runs(base_dir, 1)
    common = {"base_dir": base_dir, "catalog": catalog}
    with pytest.raises(AnnotationError, match="at most 1000"):
        tag_runs([run_id], {"k": "v" * 1001}, **common)
    with pytest.raises(AnnotationError, match="at most 10000"):
        note_run(run_id, "n" * 10_001, **common)
    with pytest.raises(AnnotationError, match="at most 1000"):
        name_run(run_id, "n" * 1001, **common)
    with pytest.raises(RunNotFoundError, match="run 0123abcd not found"):
        tag_runs([run_id, "0123abcd"], {"k": "v"}, **common)
    with pytest.raises(InvalidRunIdError):
        delete_runs(["../etc"], **common)
    assert _files(base_dir) == []
    note_run(run_id, "n" * 10_000, **common)  # the limits are inclusive
    tag_runs(run_id[:8], {"k": "v" * 1000}, **common)


def test_a_busy_catalog_is_a_warning_and_the_next_sync_applies_the_records(base_dir, catalog):
    (run_id,) = _runs(base_dir, 1)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('locked', flush=True); time.sleep(60)", str(catalog)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.warns(CatalogPendingWarning, match="next catalog-sync"):
            tag_runs([run_id], {"k": "v"}, base_dir=base_dir, catalog=catalog,
                     lock_timeout=0.2)
    finally:
        holder.kill()
        holder.wait()
    assert len(_files(base_dir)) == 1
    assert run_annotations_state(catalog, run_id)["tags"] == {}
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert run_annotations_state(catalog, run_id)["tags"] == {"k": "v"}


def test_the_annotations_folder_disturbs_no_other_reader_of_the_base_dir(base_dir, catalog):
    ids = _runs(base_dir, 2)
    tag_runs(ids, {"k": "v"}, base_dir=base_dir, catalog=None)
    month = next((base_dir / ANNOTATIONS_DIR).iterdir())
    (month / "junk.json").write_text("{not json")
    (month / "0000000000000-0.json").write_text(json.dumps({"format": 1}))
    (month / ".tmp-abc-half.json").write_text("{")  # an interrupted write: not a record
    (base_dir / ANNOTATIONS_DIR / "notes.txt").write_text("stray")
    report = catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert report.registered == 2 and report.incomplete == 0
    assert sorted(Path(p).name for p, _ in report.invalid) == ["0000000000000-0.json",
                                                               "junk.json"]
    assert all(reason.startswith("invalid annotation record") for _, reason in report.invalid)
    assert run_annotations_state(catalog, ids[0])["tags"] == {"k": "v"}
    verified = verify_runs(base_dir)
    assert verified.ok and verified.runs_checked == 2
    assert collect_stale_runs(base_dir, "0s") == []
    assert len(list_run_directories(base_dir)) == 2
    assert locate_run(ids[0][:8], catalog=catalog, base_dir=base_dir).root.endswith(ids[0])
    assert catalog_all_runs(catalog=catalog, base_dir=base_dir).already_present == 2


def test_catalog_watch_ignores_the_annotations_folder_and_applies_records(tmp_path):
    from qbtest import QUANTBOT

    base = tmp_path / "runs"
    (run_id,) = _runs(base, 1)
    tag_runs([run_id], {"seen": "yes"}, base_dir=base, catalog=None)
    proc = subprocess.Popen([QUANTBOT, "backtest", "catalog-watch", "--base-dir", str(base),
                             "--duckdb", str(tmp_path / "cat.duckdb"), "--debounce-ms", "50"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        lines = []
        while time.monotonic() < deadline:
            lines.append(proc.stdout.readline())
            if "registered" in lines[-1]:
                break
        name_run(run_id, "while watched", base_dir=base, catalog=None)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    text = "".join(lines) + out
    assert f"registered {run_id}" in text and "0 invalid" in text and "0 error(s)" in text, text
    assert " invalid " not in text.replace("0 invalid", ""), text
    assert run_annotations_state(tmp_path / "cat.duckdb", run_id)["tags"] == {"seen": "yes"}
