"""The catalog's per-run index (run_fields, run_metrics, error columns) against the runs on
disk, and the upgrade of a catalog written before the index existed (schema version 1)."""

from __future__ import annotations

import json

import duckdb
from qbtest import make_run, rows, summary_row

from quantbot.artifacts import catalog_all_runs, read_manifest
from quantbot.artifacts.catalog import initialize_catalog
from quantbot.artifacts.catalog.run_index import metric_names
from quantbot.artifacts.store.backends import open_storage


def _leaves(prefix, value):
    """Independent flattening: ``{"a": {"b": 1}}`` -> [("params.a.b", 1)]."""
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _leaves(f"{prefix}.{k}", v)]
    return [] if value is None else [(prefix, value)]


def _corpus(base):
    params = {"policy": {"kind": "fixed_stop", "sl": 0.05}, "fees": 30, "flag": True,
              "levels": [2.0, 3.0], "name": "it's \"quoted\""}
    opt = make_run(base, "optimization", parameters=params, dataset={"interval": "1m", "calls_count": 7},
                   artifacts={"summary": [
                       summary_row(0, caller_name="*", split="train", median_return_bps=1.0),
                       summary_row(1, caller_name="*", split="validation", median_return_bps=2.0),
                       summary_row(2, caller_name="bob", split="validation", median_return_bps=3.0)]})
    pol = make_run(base, "policy", parameters={"policy_id": "p"}, artifacts={"summary": [
        summary_row(0, split="all", median_return_bps=4.0),
        summary_row(1, caller_name="alice", split="all", median_return_bps=5.0)]})
    bare = make_run(base, "path-only", artifacts={"trades": rows("trades", 2)})
    failed = make_run(base, "policy", fail=True)
    return opt, pol, bare, failed


def _index(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        fields = con.execute("SELECT run_id, field, value_text, value_num FROM run_fields").fetchall()
        metrics = con.execute("SELECT run_id, split, policy_id, median_return_bps FROM run_metrics "
                              "ORDER BY run_id").fetchall()
        errors = con.execute("SELECT run_id, error_type, error_message FROM backtest_runs_catalog "
                             "WHERE status = 'failed'").fetchall()
        cols = [r[0] for r in con.execute("DESCRIBE run_metrics").fetchall()]
    finally:
        con.close()
    return fields, metrics, errors, cols


def test_index_rows_match_the_runs_on_disk(tmp_path):
    base, db = tmp_path / "runs", tmp_path / "c.duckdb"
    opt, pol, bare, failed = _corpus(base)
    catalog_all_runs(catalog=db, base_dir=base)
    fields, metrics, errors, cols = _index(db)
    expected = set()
    for run in (opt, pol, bare, failed):
        m = read_manifest(open_storage(run.path))
        leaves = (_leaves("params", m.parameters.model_dump(exclude_none=True))
                  + _leaves("dataset", m.dataset.model_dump(by_alias=True, exclude_none=True)))
        for field, value in leaves:
            if isinstance(value, bool):
                expected.add((m.run_id, field, str(value).lower(), None))
            elif isinstance(value, int | float):
                expected.add((m.run_id, field, json.dumps(value), float(value)))
            elif isinstance(value, str):
                expected.add((m.run_id, field, value, None))
            else:
                expected.add((m.run_id, field, json.dumps(value, sort_keys=True), None))
    assert set(fields) == expected
    assert (opt.run_id, "params.policy.sl", "0.05", 0.05) in expected  # nested keys, dotted
    # Pooled rows only; validation preferred over train; a run without a summary has none.
    assert metrics == sorted([(opt.run_id, "validation", "p1", 2.0), (pol.run_id, "all", "p0", 4.0)])
    assert cols == ["run_id", "split", "policy_id", *metric_names()]
    assert errors == [(failed.run_id, "RuntimeError", "boom")]


def test_a_version_1_catalog_is_upgraded_with_the_index_of_its_runs(tmp_path):
    base, db = tmp_path / "runs", tmp_path / "c.duckdb"
    _corpus(base)
    catalog_all_runs(catalog=db, base_dir=base)
    want = _index(db)
    con = duckdb.connect(str(db))  # what a first-release catalog looks like
    for table in ("run_fields", "run_metrics"):
        con.execute(f"DROP TABLE {table}")
    for column in ("error_type", "error_message", "error_phase"):
        con.execute(f"ALTER TABLE backtest_runs_catalog DROP COLUMN {column}")
    con.execute("UPDATE quantbot_catalog_meta SET value = '1' WHERE key = 'schema_version'")
    con.close()
    initialize_catalog(db)
    assert _index(db) == want
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT value FROM quantbot_catalog_meta WHERE key = 'schema_version'"
                       ).fetchall() == [("2",)]
    con.close()
