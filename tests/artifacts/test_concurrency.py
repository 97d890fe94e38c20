"""Many writers, concurrent syncs and queries: nothing corrupt, nothing duplicated."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest
from qbtest import HELPERS_DIR, catalog_fingerprint, make_run

from quantbot.artifacts import catalog_all_runs, query_runs
from quantbot.errors import CatalogError

CHILD = str(HELPERS_DIR / "concurrent_child.py")


def spawn(*args, env=None):
    return subprocess.Popen([sys.executable, CHILD, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def check_consistent(db, expected_runs: int) -> None:
    con = duckdb.connect(str(db), read_only=True)
    try:
        n, distinct = con.execute("SELECT count(*), count(DISTINCT run_id) "
                                  "FROM backtest_runs_catalog").fetchone()
        assert n == distinct == expected_runs
        n, distinct = con.execute("SELECT count(*), count(DISTINCT (run_id, artifact_type)) "
                                  "FROM backtest_artifacts_catalog").fetchone()
        assert n == distinct == 2 * expected_runs
        # every registered run's data is in the consolidated tables exactly once
        rows = con.execute("""SELECT a.run_id, a.rows, coalesce(t.n, 0) FROM backtest_artifacts_catalog a
                              LEFT JOIN (SELECT run_id, count(*) n FROM artifact_trades GROUP BY 1) t
                              USING (run_id) WHERE a.artifact_type = 'trades'""").fetchall()
        assert len(rows) == expected_runs
        assert all(r[1] == r[2] == 3 for r in rows), rows[:3]
        orphans = con.execute("SELECT count(*) FROM artifact_trades WHERE run_id NOT IN "
                              "(SELECT run_id FROM backtest_runs_catalog)").fetchone()[0]
        assert orphans == 0
    finally:
        con.close()


@pytest.mark.slow
def test_four_writers_and_a_syncing_process(tmp_path):
    base, db = tmp_path / "runs", tmp_path / "cat.duckdb"
    writers = [spawn("write", base, 25) for _ in range(4)]
    syncer = spawn("sync", base, db, 4)
    querier = spawn("query", db, 4)
    for w in writers:
        assert finish(w).strip() == "done"
    sync_out = finish(syncer)
    assert sync_out.startswith("syncs ") and int(sync_out.split()[1]) >= 1, sync_out
    finish(querier)
    report = catalog_all_runs(catalog=db, base_dir=base)
    assert report.invalid == [] and report.incomplete == 0
    assert report.registered + report.already_present == 100
    check_consistent(db, 100)
    runs = query_runs(db, limit=None)
    assert len(runs) == 100
    assert sum(r.status == "failed" for r in runs) == 4 * 2
    again = catalog_all_runs(catalog=db, base_dir=base)
    assert (again.registered, again.already_present) == (0, 100)
    check_consistent(db, 100)


@pytest.mark.slow
def test_two_syncs_at_once_and_a_query_during_sync(tmp_path):
    base, db = tmp_path / "runs", tmp_path / "cat.duckdb"
    for i in range(30):
        make_run(base, fail=(i % 7 == 0))
    syncs = [spawn("sync", base, db, 1.5) for _ in range(2)]
    querier = spawn("query", db, 1.5)
    for s in syncs:
        finish(s)
    finish(querier)
    report = catalog_all_runs(catalog=db, base_dir=base)
    assert report.registered == 0 and report.already_present == 30
    check_consistent(db, 30)


def test_lock_timeout_is_a_clear_catalog_error(tmp_path, base_dir):
    make_run(base_dir)
    db = tmp_path / "cat.duckdb"
    catalog_all_runs(catalog=db, base_dir=base_dir)
    before = catalog_fingerprint(db)
    make_run(base_dir)
    holder = duckdb.connect(str(db))  # another process-level writer holds the file lock
    try:
        code = ("import sys\n"
                "from quantbot.artifacts import catalog_all_runs, query_runs\n"
                "from quantbot.errors import CatalogError\n"
                "for f in (lambda: catalog_all_runs(catalog=sys.argv[1], base_dir=sys.argv[2]),"
                " lambda: query_runs(sys.argv[1])):\n"
                "    try:\n        f()\n        print('no error')\n"
                "    except CatalogError as e:\n        print(e)\n")
        proc = subprocess.run([sys.executable, "-c", code, str(db), str(base_dir)],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "QUANTBOT_LOCK_TIMEOUT": "0.3"})
    finally:
        holder.close()
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert str(db) in line and "busy" in line and "0.3 s" in line, line
    assert catalog_fingerprint(db) == before
    assert catalog_all_runs(catalog=db, base_dir=base_dir).registered == 1


def test_lock_timeout_argument(tmp_path, base_dir):
    make_run(base_dir)
    db = tmp_path / "cat.duckdb"
    catalog_all_runs(catalog=db, base_dir=base_dir)
    code = ("import sys, duckdb, time\ncon = duckdb.connect(sys.argv[1])\nprint('held', flush=True)\n"
            "time.sleep(30)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CatalogError, match=r"busy .* 0\.2 s"):
            catalog_all_runs(catalog=db, base_dir=base_dir, lock_timeout=0.2)
    finally:
        holder.kill()
        holder.wait()
    assert len(query_runs(db)) == 1
