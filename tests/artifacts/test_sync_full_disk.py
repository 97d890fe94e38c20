"""A full disk under the catalog: the sync names the cause in one line and damages nothing.

A real 8 MB tmpfs holds the catalog (mounting needs root; elsewhere the test is skipped).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from catalog_compare import catalog_tables
from qbtest import assert_clean_error, make_run, rows, run_cli, unavailable

from quantbot.artifacts import catalog_all_runs


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _runs(base: Path, n: int) -> None:
    for _ in range(n):
        make_run(base, artifacts={"trades": rows("trades", 2000), "alerts": rows("alerts", 500)})


def test_sync_on_a_full_disk_names_the_cause_and_recovers(small_disk: Path, base_dir: Path,
                                                          tmp_path: Path):
    catalog = small_disk / "catalog.duckdb"
    _runs(base_dir, 2)
    assert catalog_all_runs(catalog=catalog, base_dir=base_dir).registered == 2
    before = catalog_tables(catalog)
    filler = small_disk / "filler"
    with filler.open("wb") as f:  # fill what is left of the disk
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    _runs(base_dir, 6)
    proc = run_cli("backtest", "catalog-sync", "--base-dir", str(base_dir), "--duckdb", str(catalog),
                   cwd=tmp_path)
    line = assert_clean_error(proc, contains="No space left on device")
    assert str(catalog) in line and "TransactionException" not in line
    assert catalog_tables(catalog) == before  # the failed batch left no trace
    filler.unlink()
    report = catalog_all_runs(catalog=catalog, base_dir=base_dir)
    assert report.registered == 6 and not report.invalid
    fresh = tmp_path / "fresh.duckdb"
    catalog_all_runs(catalog=fresh, base_dir=base_dir)
    assert catalog_tables(catalog) == catalog_tables(fresh)
