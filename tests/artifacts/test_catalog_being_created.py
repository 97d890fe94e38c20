"""A reader that opens the catalog while the first sync is creating it waits, as it waits
for a lock; a file that is not a catalog is still refused at once."""

from __future__ import annotations

import os
import shutil
import threading

import pytest
from qbtest import make_run

from quantbot.artifacts import catalog_all_runs, query_runs
from quantbot.errors import CatalogError


def test_a_catalog_half_created_is_waited_for(base_dir, tmp_path):
    run = make_run(base_dir)
    done = tmp_path / "done.duckdb"
    catalog_all_runs(catalog=done, base_dir=base_dir)
    creating = tmp_path / "cat.duckdb"
    creating.write_bytes(done.read_bytes()[:4096])  # the file header only: being written
    whole = tmp_path / "whole.duckdb"
    shutil.copyfile(done, whole)  # DuckDB holds its lock once the headers are written:
    finish = threading.Timer(0.5, lambda: os.replace(whole, creating))  # model that as one step
    finish.start()
    try:
        assert [m.run_id for m in query_runs(creating)] == [run.run_id]
    finally:
        finish.join()


def test_a_file_that_is_not_a_catalog_is_refused_without_waiting(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTBOT_LOCK_TIMEOUT", "3600")  # waiting would hang the test
    bad = tmp_path / "cat.duckdb"
    bad.write_bytes(b"not a duckdb file")
    with pytest.raises(CatalogError, match="is not a DuckDB database"):
        query_runs(bad)
    assert os.path.getsize(bad) == 17
