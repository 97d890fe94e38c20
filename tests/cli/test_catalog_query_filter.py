"""catalog-query --filter/--order-by/--columns/--only-changed/--offset/--*-deleted, and show
with a failed run's phase and the run's labels."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import duckdb
import pytest
from qbtest import assert_clean_error, catalog_fingerprint, make_run, rows, run_main

from quantbot.artifacts.catalog import catalog_all_runs
from quantbot.artifacts.ops.annotate import name_run, note_run, tag_runs


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cq")
    base, db = root / "runs", root / "cat.duckdb"
    runs = []
    for i, sl in enumerate([0.3, 0.1, 0.2]):
        summary = rows("summary", 1, median_return_bps=float(10 * i))
        runs.append(make_run(base, parameters={"policy_id": f"p{i}", "policy": {"sl": sl}},
                             artifacts={"trades": rows("trades", 2), "summary": summary}))
    failed = make_run(base, complete=False, parameters={"policy_id": "pf"})
    err = RuntimeError("the engine ran out of candles while simulating a very long horizon "
                       "for every caller\nsecond line")
    err.quantbot_phase = "execution"
    failed.mark_failure(err)
    runs.append(failed)
    catalog_all_runs(catalog=db, base_dir=base)
    with duckdb.connect(str(db)) as con:
        con.execute("INSERT INTO run_labels VALUES (?, 'best', NULL, 2, 'keep this one'), "
                    "(?, NULL, ?, 0, NULL)", [runs[0].run_id, runs[1].run_id, datetime(2026, 1, 1)])
        con.execute("INSERT INTO run_tags VALUES (?, 'round', '1'), (?, 'owner', 'ann')",
                    [runs[0].run_id, runs[0].run_id])
    return root, [r.run_id for r in runs]


def _q(root, *args):
    return run_main("backtest", "catalog-query", "--duckdb", "cat.duckdb", *args, cwd=root)


def _json(root, *args):
    proc = _q(root, *args, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_filter_order_and_json_shape(workspace):
    root, ids = workspace
    out = _json(root, "--filter", "params.policy.sl < 0.25 OR status = 'failed'",
                "--order-by", "params.policy.sl DESC", "--include-deleted")
    assert [r["run_id"] for r in out["runs"]] == [ids[2], ids[1], ids[3]]
    assert out["count"] == 3 == out["total"]
    assert out["runs"][0]["params"]["policy"] == {"sl": 0.2}
    assert out["runs"][2]["error_phase"] == "execution"
    out = _json(root, "--filter", "params.policy.sl < 0.25")  # ids[1] is deleted
    assert [r["run_id"] for r in out["runs"]] == [ids[2]]
    assert [r["run_id"] for r in _json(root, "--only-deleted")["runs"]] == [ids[1]]
    out = _json(root, "--limit", "1", "--offset", "1", "--status", "completed")
    assert [r["run_id"] for r in out["runs"]] == [ids[0]] and out["total"] == 2


def test_default_table_shows_policy_metrics_tags_and_error(workspace):
    root, ids = workspace
    proc = _q(root)
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[0].split()
    assert header == ["run_id", "name", "run_type", "status", "created_at", "git_branch",
                      "policy", "calls", "metrics.median_return_bps", "tags", "error"]
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()[2:]}
    assert "best" in lines[ids[0]] and "owner=ann,round=1" in lines[ids[0]]
    assert "p0" in lines[ids[0]]
    failed = lines[ids[3]]
    assert "RuntimeError: the engine ran out of candles" in failed and failed.endswith("...")
    assert "second line" not in proc.stdout
    rows_ = list(csv.DictReader(io.StringIO(_q(root, "--format", "csv").stdout)))
    assert rows_[0]["error"].endswith("second line")  # CSV keeps the whole message


def test_columns_and_only_changed(workspace):
    root, ids = workspace
    proc = _q(root, "--columns", "run_id,params.policy.sl,metrics.median_return_bps,tags.round",
              "--format", "csv", "--status", "completed")
    table = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert table == [
        {"run_id": ids[2], "params.policy.sl": "0.2", "metrics.median_return_bps": "20.0",
         "tags.round": ""},
        {"run_id": ids[0], "params.policy.sl": "0.3", "metrics.median_return_bps": "0.0",
         "tags.round": "1"}]
    proc = _q(root, "--only-changed", "--format", "csv", "--status", "completed")
    header = proc.stdout.splitlines()[0].split(",")
    assert header[0] == "run_id" and "params.policy.sl" in header and "policy" in header
    assert "status" not in header and "run_type" not in header and "calls" not in header


@pytest.mark.parametrize("args, message", [
    (("--filter", "status = 'failed' AN x"), "error: filter: unexpected 'AN' at column 19"),
    (("--filter", "stauts = 'failed'"), "error: filter: unknown field 'stauts' (did you mean: status?)"),
    (("--filter", "status = "), "error: filter: unexpected end of filter"),
    (("--order-by", "metrics.sharpe DOWN"), "error: order-by: unexpected 'DOWN' at column 16"),
    (("--columns", "run_id,metrics.sharp"), "error: columns: unknown field 'metrics.sharp'"),
    (("--filter", "name ~ '[a'"), "error: filter: invalid regular expression"),
])
def test_bad_input_is_one_line(workspace, args, message):
    root, _ = workspace
    line = assert_clean_error(_q(root, *args))
    assert line.startswith(message), line


def test_injection_through_the_cli_is_literal(workspace):
    root, _ = workspace
    before = catalog_fingerprint(root / "cat.duckdb")
    for value in ("x' OR 1=1 --", "'; DROP TABLE backtest_runs_catalog; --", "/* */", "a\\b"):
        lit = "'" + value.replace("'", "''") + "'"
        for text in (f"git_branch = {lit}", f"tags.owner = {lit}", f"params.policy_id IN ({lit})"):
            assert _json(root, "--filter", text)["total"] == 0
    assert catalog_fingerprint(root / "cat.duckdb") == before
    assert _json(root)["total"] == 3


def test_show_prints_phase_and_labels(workspace):
    root, ids = workspace
    proc = run_main("backtest", "show", ids[3], "--duckdb", "cat.duckdb", "--base-dir", "runs",
                    cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "RuntimeError: the engine ran out of candles" in proc.stdout
    assert "(in phase execution)" in proc.stdout
    where = {"base_dir": root / "runs", "catalog": root / "cat.duckdb"}
    name_run(ids[0], "best", **where)  # through the API: show reads what annotations record
    tag_runs([ids[0]], {"round": "1", "owner": "ann"}, **where)
    note_run(ids[0], "first look", **where)
    note_run(ids[0], "keep this one", **where)
    proc = run_main("backtest", "show", ids[0], "--duckdb", "cat.duckdb", "--base-dir", "runs",
                    cwd=root)
    assert "  name       best" in proc.stdout
    assert "  tags       owner=ann, round=1" in proc.stdout
    assert "  notes      2 (last: keep this one)" in proc.stdout
    info = json.loads(run_main("backtest", "show", ids[1], "--duckdb", "cat.duckdb",
                               "--base-dir", "runs", "--format", "json", cwd=root).stdout)
    assert info["labels"]["deleted_at"] == "2026-01-01T00:00:00.000Z"
