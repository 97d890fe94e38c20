"""verify, gc, archive/restore and unregister_runs on real run folders under tmp_path."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from qbtest import catalog_dump, make_run, rows, snapshot_tree

from quantbot.artifacts import catalog_all_runs, create_run_directory
from quantbot.artifacts.catalog.remove import unregister_runs
from quantbot.artifacts.ops.archive import ArchiveError, archive_months, restore_archive
from quantbot.artifacts.ops.gc import collect_stale_runs
from quantbot.artifacts.ops.verify import verify_runs
from quantbot.durations import parse_age
from quantbot.errors import QuantbotError, RunExistsError, RunNotFoundError


def _at(monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    """Make the writer believe it is ``when`` (runs land in that month's partition)."""
    monkeypatch.setattr("quantbot.artifacts.store.writer.utc_now", lambda: when)


def _edit_manifest(run_dir: Path, **changes: object) -> None:
    path = run_dir / "run.json"
    data = json.loads(path.read_text())
    for dotted, value in changes.items():
        node = data
        *head, last = dotted.split("__")
        for key in head:
            node = node[key]
        node[last] = value
    path.write_text(json.dumps(data))


# -- verify -----------------------------------------------------------------------------
def test_verify_clean_runs_have_no_problems(base_dir: Path) -> None:
    make_run(base_dir, artifacts={k: rows(k, 3) for k in ("alerts", "trades", "errors")})
    make_run(base_dir, fail=True)
    make_run(base_dir, complete=False)  # running is a state, not a problem
    report = verify_runs(base_dir)
    assert report.runs_checked == 3
    assert report.ok, report.problems


def test_verify_reports_every_problem_one_row_each(base_dir: Path) -> None:
    good = make_run(base_dir)
    bad = make_run(base_dir, artifacts={"trades": rows("trades", 3), "errors": [],
                                        "alerts": rows("alerts", 2)})
    run_dir = Path(bad.path)
    trades = run_dir / "policy" / "trades.parquet"
    data = bytearray(trades.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    trades.write_bytes(bytes(data))
    (run_dir / "errors" / "errors.parquet").unlink()
    _edit_manifest(run_dir, artifacts__alerts__rows=99)
    marker_run = make_run(base_dir, complete=False)
    (Path(marker_run.path) / "_SUCCESS").write_text("2024-01-01T00:00:00.000Z")

    report = verify_runs(base_dir)
    assert report.runs_checked == 3
    by_run: dict[str, list[str]] = {}
    for p in report.problems:
        by_run.setdefault(p.run_id, []).append(p.problem)
    assert good.run_id not in by_run
    problems = sorted(by_run[bad.run_id])
    assert len(problems) == 3, problems
    assert any("sha256" in p for p in problems)
    assert any("errors.parquet is missing" in p for p in problems)
    assert any("2 rows, manifest says 99" in p for p in problems)
    assert by_run[marker_run.run_id] == ["_SUCCESS present but manifest status is running"]
    paths = {p.path for p in report.problems if p.run_id == bad.run_id}
    assert str(trades) in paths


def test_verify_marker_consistency(base_dir: Path) -> None:
    no_marker = make_run(base_dir)
    (Path(no_marker.path) / "_SUCCESS").unlink()
    wrong_stamp = make_run(base_dir)
    (Path(wrong_stamp.path) / "_SUCCESS").write_text("not a time")
    report = verify_runs(base_dir)
    got = {p.run_id: p.problem for p in report.problems}
    assert got[no_marker.run_id].startswith("status completed but _SUCCESS is missing")
    assert "not an ISO completion timestamp" in got[wrong_stamp.run_id]


def test_verify_one_run_and_unknown_run(base_dir: Path) -> None:
    run = make_run(base_dir)
    broken = make_run(base_dir)
    (Path(broken.path) / "run.json").write_text("{not json")
    assert verify_runs(base_dir, run.run_id).ok
    report = verify_runs(base_dir, broken.run_id)
    assert report.runs_checked == 1 and "not valid JSON" in report.problems[0].problem
    with pytest.raises(RunNotFoundError):
        verify_runs(base_dir, "00000000-0000-4000-8000-000000000000")


# -- gc ---------------------------------------------------------------------------------
def test_parse_age() -> None:
    assert parse_age("24h") == timedelta(hours=24)
    assert parse_age("90s") == timedelta(seconds=90)
    assert parse_age("2w") == timedelta(days=14)
    with pytest.raises(QuantbotError, match="invalid age"):
        parse_age("tomorrow")


def test_gc_dry_run_then_apply(base_dir: Path, catalog: Path) -> None:
    done = make_run(base_dir)
    failed = make_run(base_dir, fail=True)
    crashed = make_run(base_dir, complete=False)
    fresh = make_run(base_dir, complete=False)
    _edit_manifest(Path(crashed.path), started_at="2020-01-01T00:00:00.000Z")
    orphan = base_dir / Path(done.path).parent.name / "run_id=11111111-2222-4333-8444-555555555555"
    orphan.mkdir()
    old = time.time() - 3 * 86400
    os.utime(orphan, (old, old))
    before = snapshot_tree(base_dir)

    listed = collect_stale_runs(base_dir, "24h")
    assert {r.run_id for r in listed} == {crashed.run_id, orphan.name.split("=")[1]}
    assert {r.status for r in listed} == {"running", "no run.json"}
    assert not any(r.marked_failed for r in listed)
    assert snapshot_tree(base_dir) == before  # dry run changes nothing

    applied = collect_stale_runs(base_dir, "24h", apply=True)
    assert all(r.marked_failed for r in applied) and len(applied) == 2
    m = json.loads((Path(crashed.path) / "run.json").read_text())
    assert m["status"] == "failed" and m["error"]["type"] == "StaleRun"
    assert m["completed_at"] and "crashed" in m["error"]["message"]
    o = json.loads((orphan / "run.json").read_text())
    assert o["status"] == "failed" and o["error"]["type"] == "StaleRun"
    assert not list(Path(crashed.path).glob(".tmp-*"))
    assert collect_stale_runs(base_dir, "24h") == []
    # the catalog now takes them as failed runs; the fresh one stays incomplete
    report = catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert report.registered == 4 and report.incomplete == 1 and not report.invalid
    assert {done.run_id, failed.run_id, fresh.run_id}  # untouched
    assert json.loads((Path(fresh.path) / "run.json").read_text())["status"] == "running"


# -- unregister, archive, restore --------------------------------------------------------
def _old_runs(base_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for month, day in (("2024-01", datetime(2024, 1, 15, tzinfo=UTC)),
                       ("2024-02", datetime(2024, 2, 10, tzinfo=UTC))):
        _at(monkeypatch, day)
        runs = [make_run(base_dir, artifacts={"trades": rows("trades", 4), "errors": [],
                                              "alerts": rows("alerts", 2)}),
                make_run(base_dir, fail=True)]
        out[month] = [r.run_id for r in runs]
    monkeypatch.undo()
    make_run(base_dir)  # this month's run stays
    return out


def _count(db: Path, sql: str) -> int:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def test_unregister_runs_removes_every_trace(base_dir: Path, catalog: Path) -> None:
    keep, drop = make_run(base_dir), make_run(base_dir)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert unregister_runs(catalog, [drop.run_id, "00000000-0000-4000-8000-000000000000"]) == 1
    assert unregister_runs(catalog, [drop.run_id]) == 0  # idempotent
    assert _count(catalog, "SELECT count(*) FROM backtest_runs_catalog") == 1
    assert _count(catalog, f"SELECT count(*) FROM backtest_artifacts_catalog WHERE run_id = '{drop.run_id}'") == 0
    assert _count(catalog, "SELECT count(DISTINCT run_id) FROM all_trades") == 1
    assert _count(catalog, f"SELECT count(*) FROM all_trades WHERE run_id = '{keep.run_id}'") == 3
    assert unregister_runs(base_dir / "missing.duckdb", [drop.run_id]) == 0


def test_archive_restore_round_trip(base_dir: Path, catalog: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    months = _old_runs(base_dir, monkeypatch)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    tree_before, dump_before = snapshot_tree(base_dir), catalog_dump(catalog)
    runs_before = _count(catalog, "SELECT count(*) FROM backtest_runs_catalog")
    trades_before = _count(catalog, "SELECT count(*) FROM all_trades")

    done = archive_months("2024-02", base_dir=base_dir, catalog=catalog)
    assert [a.month for a in done] == ["2024-01"]
    archive = Path(done[0].path)
    assert archive == tmp_path / "archive" / "runs-2024-01.tar.gz" and archive.is_file()
    assert sorted(done[0].run_ids) == sorted(months["2024-01"]) and done[0].unregistered == 2
    assert not (base_dir / "2024-01").exists() and (base_dir / "2024-02").is_dir()
    assert not [p for p in base_dir.iterdir() if p.name.startswith(".tmp")]
    assert not [p for p in archive.parent.iterdir() if p.name.startswith(".tmp")]
    assert _count(catalog, "SELECT count(*) FROM backtest_runs_catalog") == runs_before - 2
    assert _count(catalog, "SELECT count(*) FROM all_trades") == trades_before - 4 - 3
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert all(n.startswith("2024-01") for n in names)
    assert archive_months("2024-02", base_dir=base_dir, catalog=catalog) == []  # nothing left to archive

    result = restore_archive(archive, base_dir=base_dir, catalog=catalog)
    assert sorted(result.run_ids) == sorted(months["2024-01"])
    assert result.sync is not None and result.sync.registered == 2
    assert snapshot_tree(base_dir) == tree_before
    assert catalog_dump(catalog) == dump_before
    assert _count(catalog, "SELECT count(*) FROM backtest_runs_catalog") == runs_before
    assert verify_runs(base_dir).ok


def test_restore_refuses_to_overwrite(base_dir: Path, catalog: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _old_runs(base_dir, monkeypatch)
    [done] = archive_months("2024-02", base_dir=base_dir, out_dir=tmp_path / "arch")
    restore_archive(done.path, base_dir=base_dir)
    tree = snapshot_tree(base_dir)
    with pytest.raises(RunExistsError, match="never overwritten"):
        restore_archive(done.path, base_dir=base_dir, catalog=catalog)
    assert snapshot_tree(base_dir) == tree
    assert not catalog.exists()
    # a run of the archive living in another month still counts as existing
    moved = tmp_path / "elsewhere"
    (base_dir / "2024-01").rename(moved)
    victim = next(moved.iterdir())
    (base_dir / "2023-12").mkdir()
    victim.rename(base_dir / "2023-12" / victim.name)
    with pytest.raises(RunExistsError):
        restore_archive(done.path, base_dir=base_dir)


def test_archive_refusals_change_nothing(base_dir: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _at(monkeypatch, datetime(2024, 1, 15, tzinfo=UTC))
    make_run(base_dir)
    running = make_run(base_dir, complete=False)
    monkeypatch.undo()
    tree = snapshot_tree(base_dir)
    with pytest.raises(ArchiveError, match="without _SUCCESS"):
        archive_months("2024-02", base_dir=base_dir)
    assert snapshot_tree(base_dir) == tree and not (tmp_path / "archive").exists()
    running.mark_failure(RuntimeError("boom"))
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "runs-2024-01.tar.gz").write_bytes(b"older archive")
    with pytest.raises(ArchiveError, match="already exists"):
        archive_months("2024-02", base_dir=base_dir)
    with pytest.raises(ArchiveError, match="after the current month"):
        archive_months("2999-01", base_dir=base_dir)
    with pytest.raises(ArchiveError, match="invalid month"):
        archive_months("2024-13", base_dir=base_dir)
    (base_dir / "2024-01" / "notes.txt").write_text("hand-made")
    with pytest.raises(ArchiveError, match="not run folders"):
        archive_months("2024-02", base_dir=base_dir, out_dir=tmp_path / "other")
    assert (tmp_path / "archive" / "runs-2024-01.tar.gz").read_bytes() == b"older archive"


def test_restore_rejects_foreign_archives(base_dir: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("2024-01/run_id=11111111-2222-4333-8444-555555555555/../../../x")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(ArchiveError, match="unexpected member"):
        restore_archive(evil, base_dir=base_dir)
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(ArchiveError, match="not a readable tar"):
        restore_archive(tmp_path / "junk.tar.gz", base_dir=base_dir)
    assert list(base_dir.iterdir()) == []


def test_run_written_after_archive_goes_to_its_own_month(base_dir: Path) -> None:
    # sanity for the round trip above: runs are partitioned by their creation month
    run = create_run_directory("policy", base_dir=base_dir, durable=False, git=False)
    assert Path(run.path).parent.name == datetime.now(UTC).strftime("%Y-%m")


_READ_BACK: dict[str, Any] = {}  # the armed archive path -> its corruption, and "hooked"


def _on_open(event: str, args: tuple[Any, ...]) -> None:
    """Audit hook: rewrite the armed archive on disk the moment it is opened for reading
    (archive reads back its temporary tarball, ``.tmp-archiving-<hex>-<final name>``)."""
    if event == "open" and "path" in _READ_BACK and isinstance(args[0], str) \
            and "r" in (args[1] or "") and _is_armed(os.path.realpath(args[0])):
        del _READ_BACK["path"]
        _READ_BACK.pop("corrupt")(Path(args[0]))


def _is_armed(path: str) -> bool:
    final = _READ_BACK["path"]
    folder, name = os.path.split(final)
    return path == final or (os.path.dirname(path) == folder
                             and os.path.basename(path).startswith(".tmp-archiving-")
                             and path.endswith("-" + name))


@contextmanager
def _corrupt_when_read_back(archive: Path, corrupt: Callable[[Path], None]) -> Iterator[None]:
    """Real bytes, real detection: archive_months writes ``archive`` and then reads it back;
    ``corrupt`` changes it on disk in between. An audit hook cannot be removed, so it is
    installed once per process and idle unless armed."""
    if not _READ_BACK.setdefault("hooked", False):
        sys.addaudithook(_on_open)
        _READ_BACK["hooked"] = True
    _READ_BACK.update(path=os.path.realpath(archive), corrupt=corrupt)
    try:
        yield
        assert "path" not in _READ_BACK, f"{archive} was never read back"
    finally:
        _READ_BACK.pop("path", None)
        _READ_BACK.pop("corrupt", None)


def _flip_a_byte_of_one_member(archive: Path) -> None:
    """Still a valid tar.gz; one file's content has a byte flipped (same size)."""
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar]
    member, data = next((m, d) for m, d in members if d)
    members[members.index((member, data))] = (member, data[:-1] + bytes([data[-1] ^ 0xFF]))
    with tarfile.open(archive, "w:gz") as tar:
        for m, d in members:
            tar.addfile(m, None if d is None else io.BytesIO(d))


def _cut_in_half(archive: Path) -> None:
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("corrupt, message", [(_flip_a_byte_of_one_member, "does not match the source"),
                                              (_cut_in_half, "unreadable after writing")])
def test_archive_read_back_that_differs_deletes_nothing(
        base_dir: Path, catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        corrupt: Callable[[Path], None], message: str) -> None:
    _old_runs(base_dir, monkeypatch)
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    tree, cat = snapshot_tree(base_dir), catalog_dump(catalog)
    archive = tmp_path / "archive" / "runs-2024-01.tar.gz"
    with _corrupt_when_read_back(archive, corrupt), \
            pytest.raises(ArchiveError, match=f"{message}.*nothing deleted"):
        archive_months("2024-02", base_dir=base_dir, catalog=catalog)
    # nothing deleted or unregistered, and the bad archive removed so a retry can succeed
    assert snapshot_tree(base_dir) == tree and catalog_dump(catalog) == cat
    assert not archive.exists()
    assert [m.month for m in archive_months("2024-02", base_dir=base_dir, catalog=catalog)] == ["2024-01"]
    assert archive.is_file()


def test_archive_rolls_back_when_the_catalog_fails(
        base_dir: Path, catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _old_runs(base_dir, monkeypatch)
    tree = snapshot_tree(base_dir)
    archive = tmp_path / "archive" / "runs-2024-01.tar.gz"
    # a catalog that cannot be written: the month folder comes back, the archive goes
    catalog.parent.mkdir(parents=True)
    catalog.write_bytes(b"not a duckdb file")
    with pytest.raises(QuantbotError, match="not a DuckDB database"):
        archive_months("2024-02", base_dir=base_dir, catalog=catalog)
    assert snapshot_tree(base_dir) == tree and not archive.exists()
    assert not [p for p in base_dir.iterdir() if p.name.startswith(".tmp")]
