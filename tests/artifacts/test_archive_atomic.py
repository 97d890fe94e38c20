"""archive is all-or-nothing: checks before changes, rollback on failure, and nothing lost
when the process is SIGKILLed at any step (the next archive or a cleanup finishes it)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from catalog_compare import catalog_tables
from qbtest import (
    HELPERS_DIR,
    assert_clean_error,
    make_run,
    rows,
    run_cli,
    run_main,
    snapshot_tree,
    unavailable,
)

from quantbot.artifacts import catalog_all_runs
from quantbot.artifacts.ops.archive import ArchiveError, archive_months

MONTH = "2024-01"


def _old_runs(base: Path, monkeypatch: pytest.MonkeyPatch, month: str = MONTH, n: int = 2) -> list[str]:
    year, mon = map(int, month.split("-"))
    monkeypatch.setattr("quantbot.artifacts.store.writer.utc_now",  # runs land in that month
                        lambda: datetime(year, mon, 15, tzinfo=UTC))
    ids = [make_run(base, artifacts={"trades": rows("trades", 30), "errors": []}).run_id
           for _ in range(n)]
    monkeypatch.undo()
    return ids


def _leftovers(*folders: Path) -> list[str]:
    return [p.name for f in folders if f.exists() for p in f.iterdir() if p.name.startswith(".tmp")]


def test_a_symlinked_month_is_refused_before_anything_changes(base_dir: Path, catalog: Path,
                                                              tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    real = tmp_path / "elsewhere"
    real.mkdir()
    _old_runs(real, monkeypatch)
    (real / MONTH).rename(real / "real-month")
    (base_dir / MONTH).symlink_to(real / "real-month")
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    tree, before = snapshot_tree(real), catalog_tables(catalog)
    proc = run_cli("backtest", "archive", "--before", "2024-02", "--base-dir", str(base_dir),
                   "--duckdb", str(catalog), cwd=tmp_path)
    assert_clean_error(proc, contains="is a symbolic link")
    assert (base_dir / MONTH).is_symlink() and snapshot_tree(real) == tree
    assert catalog_tables(catalog) == before and not (tmp_path / "archive").exists()


def test_a_link_in_a_later_month_refuses_every_month(base_dir: Path, catalog: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    _old_runs(base_dir, monkeypatch, "2023-12")
    [run] = _old_runs(base_dir, monkeypatch, MONTH, 1)
    (base_dir / MONTH / f"run_id={run}" / "link").symlink_to("/etc/hostname")
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    tree, before = snapshot_tree(base_dir), catalog_tables(catalog)
    with pytest.raises(ArchiveError, match="link.* is a symbolic link"):
        archive_months("2024-02", base_dir=base_dir, catalog=catalog)
    assert snapshot_tree(base_dir) == tree and catalog_tables(catalog) == before
    assert not (tmp_path / "archive").exists()


def test_too_little_space_for_the_tarball_is_refused_up_front(base_dir: Path, catalog: Path,
                                                              tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)]).returncode:
        unavailable("cannot mount a tmpfs here")
    try:
        ids = _old_runs(base_dir, monkeypatch, n=1)
        big = base_dir / MONTH / f"run_id={ids[0]}" / "logs"
        big.mkdir(exist_ok=True)
        (big / "noise.log").write_bytes(os.urandom(400_000))  # incompressible
        catalog_all_runs(catalog=catalog, base_dir=base_dir)
        tree, before = snapshot_tree(base_dir), catalog_tables(catalog)
        proc = run_cli("backtest", "archive", "--before", "2024-02", "--base-dir", str(base_dir),
                       "--duckdb", str(catalog), "--out", str(disk / "archive"), cwd=tmp_path)
        assert_clean_error(proc, contains="bytes free")
        assert snapshot_tree(base_dir) == tree and catalog_tables(catalog) == before
        assert not list(disk.iterdir())  # no temporary tarball, not even the folder
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _kill_archive(k: int, base: Path, catalog: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("QUANTBOT_DEBUG", None)
    return subprocess.run([sys.executable, str(HELPERS_DIR / "archive_kill_child.py"), str(k),
                           "backtest", "archive", "--before", "2024-02", "--base-dir", str(base),
                           "--duckdb", str(catalog)], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120)


def _state(base: Path, archive: Path, files: dict[str, str]) -> str:
    """'archived' or 'present'; fails if any run file is neither in the tarball nor on disk."""
    month_dir = base / MONTH
    if archive.exists():
        with tarfile.open(archive) as tar:
            got = {m.name[len(MONTH) + 1:]: hashlib.sha256(tar.extractfile(m).read()).hexdigest()
                   for m in tar if m.isfile()}
        assert got == files and not month_dir.exists()
        return "archived"
    assert snapshot_tree(month_dir) == files  # every file back, byte for byte
    return "present"


def test_sigkill_at_any_step_loses_nothing(base_dir: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch):
    ids = _old_runs(base_dir, monkeypatch)
    catalog = tmp_path / "catalog.duckdb"
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    files = snapshot_tree(base_dir / MONTH)
    pristine = tmp_path / "pristine"
    subprocess.run(["cp", "-a", str(base_dir), str(pristine)], check=True)
    subprocess.run(["cp", "-a", str(catalog), str(tmp_path / "pristine.duckdb")], check=True)
    archive_dir = tmp_path / "archive"
    full = _kill_archive(0, base_dir, catalog, tmp_path)
    assert full.returncode == 0, full.stderr
    steps = int(full.stderr.strip().rsplit("steps=", 1)[1])
    assert steps >= 6 and (archive_dir / f"runs-{MONTH}.tar.gz").exists()
    seen = set()
    for k in range(1, steps + 1):
        subprocess.run(["rm", "-rf", str(base_dir), str(archive_dir), str(catalog)], check=True)
        subprocess.run(["cp", "-a", str(pristine), str(base_dir)], check=True)
        subprocess.run(["cp", "-a", str(tmp_path / "pristine.duckdb"), str(catalog)], check=True)
        killed = _kill_archive(k, base_dir, catalog, tmp_path)
        assert killed.returncode == -9, (k, killed.stderr)
        if k % 2:  # the cleanup alone, as `gc --apply` runs it ...
            gc = run_main("backtest", "gc", "--apply", "--base-dir", str(base_dir), cwd=tmp_path)
            assert gc.returncode == 0, (k, gc.stderr)
            state = _state(base_dir, archive_dir / f"runs-{MONTH}.tar.gz", files)
            seen.add(state)
            assert not _leftovers(base_dir, archive_dir), k
            if state == "present":  # still registered, or found again by the next sync
                catalog_all_runs(catalog=catalog, base_dir=base_dir)
                con = duckdb.connect(str(catalog), read_only=True)
                got = {r[0] for r in con.execute("SELECT run_id FROM backtest_runs_catalog").fetchall()}
                con.close()
                assert set(ids) <= got, k
        # ... or the next archive finishes the job
        again = run_cli("backtest", "archive", "--before", "2024-02", "--base-dir", str(base_dir),
                        "--duckdb", str(catalog), cwd=tmp_path)
        assert again.returncode == 0, (k, again.stderr)
        assert _state(base_dir, archive_dir / f"runs-{MONTH}.tar.gz", files) == "archived"
        assert not _leftovers(base_dir, archive_dir), k
        con = duckdb.connect(str(catalog), read_only=True)
        assert con.execute("SELECT count(*) FROM backtest_runs_catalog").fetchone() == (0,), k
        con.close()
    assert seen == {"archived", "present"}
