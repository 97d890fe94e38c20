"""User SQL is read-only for real: every escape of the hardening issue, item 1, is refused.

Real catalog, real run directories, real files around them; each test checks the refusal
and that nothing on disk changed.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from qbtest import make_run, rows, sha256_file, snapshot_tree

from quantbot.artifacts import catalog_all_runs, run_sql
from quantbot.errors import SqlError, SqlTimeoutError

LONG_QUERY = "SELECT sum(hash(i)) AS s FROM range(8000000000) t(i)"


@pytest.fixture
def synced(base_dir, catalog, tmp_path):
    """A completed run with alerts, registered in the catalog; a secret file beside it."""
    run = make_run(base_dir, "policy", artifacts={"alerts": rows("alerts", 2),
                                                  "trades": rows("trades", 3), "errors": []})
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    return run, catalog, secret


def _refused(catalog: Path, sql: str, **kw: object) -> str:
    with pytest.raises(SqlError) as info:
        run_sql(catalog, sql, **kw)
    return str(info.value)


def test_copy_cannot_overwrite_a_completed_runs_artifact(synced, base_dir):
    run, catalog, _ = synced
    target = Path(run.path) / "inputs" / "alerts.parquet"
    assert target.exists()
    before = snapshot_tree(base_dir)
    message = _refused(catalog, f"COPY (SELECT 1 x) TO '{target}' (FORMAT parquet)")
    assert "COPY" in message
    assert snapshot_tree(base_dir) == before


def test_copy_cannot_write_any_file(synced, tmp_path):
    _, catalog, _ = synced
    script = tmp_path / "x.sh"
    _refused(catalog, f"COPY (SELECT 'echo pwned' x) TO '{script}' (HEADER false)")
    assert not script.exists()


def test_attach_cannot_modify_another_database(synced, tmp_path):
    _, catalog, _ = synced
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    before = sha256_file(other)
    _refused(catalog, f"ATTACH '{other}' AS e (READ_WRITE)")
    assert sha256_file(other) == before


def test_export_database_is_refused(synced, tmp_path):
    _, catalog, _ = synced
    _refused(catalog, f"EXPORT DATABASE '{tmp_path / 'dump'}'")
    assert not (tmp_path / "dump").exists()


@pytest.mark.parametrize("reader", ["read_text", "read_blob", "glob", "read_csv"])
def test_files_outside_the_catalog_are_unreadable(synced, reader):
    _, catalog, secret = synced
    message = _refused(catalog, f"SELECT * FROM {reader}('{secret}')")
    assert "disabled" in message
    _refused(catalog, f"SELECT * FROM {reader}('{secret.parent}/*')")


@pytest.mark.parametrize("statement", [
    "SET threads = 1", "SET enable_external_access = true", "RESET lock_configuration",
    "PRAGMA threads = 1", "SELECT 1; SELECT 2", "SELECT 1; DROP TABLE backtest_runs_catalog",
    "INSTALL httpfs", "LOAD httpfs", "CREATE TEMP TABLE z AS SELECT 1", "CHECKPOINT",
    "CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 's')", "DETACH backtest_catalog",
    "SELECT * FROM query('COPY (SELECT 1) TO ''x.csv''')",
])
def test_settings_several_statements_and_extensions_are_refused(synced, statement):
    _, catalog, _ = synced
    assert "SQL error" in _refused(catalog, statement)


def test_extension_auto_install_and_community_extensions_are_off(synced):
    _, catalog, _ = synced
    names = ("autoinstall_known_extensions", "autoload_known_extensions",
             "allow_community_extensions", "enable_external_access", "lock_configuration")
    got = run_sql(catalog, "SELECT name, value FROM duckdb_settings() WHERE list_contains(?, name) "
                  "ORDER BY name", [list(names)]).to_pylist()
    assert {r["name"]: r["value"] for r in got} == {
        "allow_community_extensions": "false", "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false", "enable_external_access": "false",
        "lock_configuration": "true"}


def test_cross_run_views_still_work(synced):
    run, catalog, _ = synced
    got = run_sql(catalog, "SELECT a.run_id, count(*) AS n FROM all_alerts a JOIN all_trades t "
                  "USING (run_id, call_id) GROUP BY ALL").to_pylist()
    assert got == [{"run_id": run.run_id, "n": 2}]
    assert run_sql(catalog, "DESCRIBE all_trades").num_rows > 5


def test_allow_read_opens_exactly_the_listed_file_or_directory(synced, tmp_path):
    _, catalog, secret = synced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "calls.csv").write_text("caller,n\nbob,3\n")
    assert run_sql(catalog, f"SELECT * FROM read_csv('{mine}/calls.csv')",
                   allow_read=[mine]).to_pylist() == [{"caller": "bob", "n": 3}]
    assert run_sql(catalog, f"SELECT content FROM read_text('{secret}')",
                   allow_read=[secret]).to_pylist() == [{"content": "top secret\n"}]
    _refused(catalog, f"SELECT * FROM read_text('{secret}')", allow_read=[mine])
    _refused(catalog, f"SELECT * FROM read_text('{mine}/../secret.txt')", allow_read=[mine])
    _refused(catalog, "SELECT * FROM read_text('/etc/passwd')", allow_read=[mine, secret])


def test_allow_read_never_allows_writing(synced, tmp_path):
    _, catalog, secret = synced
    mine = tmp_path / "mine"
    mine.mkdir()
    _refused(catalog, f"COPY (SELECT 1 x) TO '{mine}/out.csv'", allow_read=[mine])
    _refused(catalog, f"COPY (SELECT 1 x) TO '{secret}'", allow_read=[secret])
    assert list(mine.iterdir()) == []
    assert secret.read_text() == "top secret\n"


def test_allow_read_of_a_missing_path_names_it(synced, tmp_path):
    _, catalog, _ = synced
    assert "nowhere" in _refused(catalog, "SELECT 1", allow_read=[tmp_path / "nowhere"])


@pytest.mark.parametrize("timeout", [0.5, 6.0])  # in place, and on a snapshot
def test_a_statement_is_interrupted_after_its_timeout(synced, timeout):
    _, catalog, _ = synced
    big = "SELECT sum(hash(i)) AS s FROM range(200000000000) t(i)"
    with pytest.raises(SqlTimeoutError, match=f"timeout of {timeout:g} s"):
        run_sql(catalog, big, timeout=timeout)
    assert run_sql(catalog, "SELECT 1 AS x", timeout=timeout).to_pylist() == [{"x": 1}]


def test_a_snapshot_reader_sees_the_catalog_and_leaves_no_copy(synced, tmp_path, monkeypatch):
    run, catalog, _ = synced
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # where the snapshot goes (tempfile honours it)
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    got = run_sql(catalog, "SELECT run_id FROM backtest_runs_catalog", timeout=60).to_pylist()
    assert got == [{"run_id": run.run_id}]
    assert list(scratch.iterdir()) == []


def test_an_open_connection_is_refused(synced):
    _, catalog, _ = synced
    with duckdb.connect(str(catalog), read_only=True) as con, pytest.raises(SqlError):
        run_sql(con, "SELECT 1")
