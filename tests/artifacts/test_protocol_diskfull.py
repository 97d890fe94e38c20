"""A full disk (a real 1 MiB tmpfs) never leaves a ``.tmp-*`` file behind, and the run
fails cleanly: recorded failed when there is room, else left for gc with a note."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from qbtest import rows, unavailable

from quantbot.artifacts import catalog_all_runs, create_run_directory, query_runs
from quantbot.artifacts.ops.gc import collect_stale_runs
from quantbot.artifacts.ops.verify import verify_runs
from quantbot.artifacts.schema.manifest import parse_manifest


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def _big_trades(n: int) -> list[dict]:
    noise = np.random.default_rng(0).random(n)  # incompressible
    return [dict(r, entry_px=float(x), exit_px=float(x) * 2) for r, x in
            zip(rows("trades", n), noise, strict=True)]


def _fill(disk: Path, leave: int = 0) -> Path:
    """Fill the disk to the last block, then free ``leave`` bytes again."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC
        if leave:
            f.truncate(max(0, f.tell() - leave))
    return filler


def _tmp_files(base: Path) -> list[Path]:
    return [p for p in base.rglob("*") if p.name.startswith(".tmp-")]


def test_enospc_in_an_artifact_removes_its_tmp_file_and_records_failure(small_disk, tmp_path):
    base = small_disk / "runs"
    run = create_run_directory("policy", base_dir=base, git=False)
    _fill(small_disk, leave=200_000)
    # ~740 kB of Parquet, below the sink's 1 MiB buffer: the write fails in commit
    with pytest.raises(OSError) as info, run:
        try:
            run.write_artifact("trades", _big_trades(25_000))
        finally:  # write_artifact itself cleans up, not only the run's exit
            left = _tmp_files(base)
    assert info.value.errno == errno.ENOSPC
    assert left == [] and _tmp_files(base) == []
    run_dir = Path(run.path)
    m = parse_manifest((run_dir / "run.json").read_bytes())
    assert m.status == "failed" and m.error.type == "OSError"
    assert not (run_dir / "_SUCCESS").exists()
    assert verify_runs(base).ok
    catalog_all_runs(catalog=tmp_path / "c.duckdb", base_dir=base)
    assert [r.status for r in query_runs(tmp_path / "c.duckdb")] == ["failed"]


def test_enospc_in_the_manifest_write_removes_its_tmp_file(small_disk):
    base = small_disk / "runs"
    run = create_run_directory("policy", base_dir=base, git=False)
    filler = _fill(small_disk)
    with pytest.raises(OSError) as info, run:
        run.update_manifest(parameters={"note": "x" * 20_000})
    assert info.value.errno == errno.ENOSPC
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert "gc --apply" in notes  # no room to record the failure: the note says what to do
    assert _tmp_files(base) == []
    assert parse_manifest((Path(run.path) / "run.json").read_bytes()).status == "running"
    os.unlink(filler)
    assert [s.marked_failed for s in collect_stale_runs(base, "0s", apply=True)] == [True]
    assert verify_runs(base).ok
