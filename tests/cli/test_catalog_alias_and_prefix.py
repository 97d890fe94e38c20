"""`--catalog` is `--duckdb`; commands that name one run take an 8-character prefix."""

from __future__ import annotations

import json

from qbtest import make_run, rows, run_main

from quantbot.artifacts import catalog_all_runs


def test_catalog_is_an_alias_of_duckdb(base_dir, catalog, tmp_path):
    run = make_run(base_dir)
    out = run_main("backtest", "catalog-sync", "--base-dir", str(base_dir), "--catalog",
                   str(catalog), "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["registered"] == 1
    listed = run_main("backtest", "catalog-query", "--duckdb", str(catalog), "--format", "json",
                      cwd=tmp_path)
    assert [r["run_id"] for r in json.loads(listed.stdout)["runs"]] == [run.run_id]


def test_show_and_compare_take_the_short_ids_the_demo_prints(base_dir, catalog, tmp_path):
    a = make_run(base_dir, artifacts={"trades": rows("trades", 3)})
    b = make_run(base_dir, artifacts={"trades": rows("trades", 4)})
    catalog_all_runs(catalog=catalog, base_dir=base_dir)
    common = ["--base-dir", str(base_dir), "--catalog", str(catalog)]
    shown = run_main("backtest", "show", a.run_id[:8], *common, "--format", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["manifest"]["run_id"] == a.run_id
    compared = run_main("backtest", "compare", a.run_id[:8], b.run_id[:8], *common,
                        "--format", "json", cwd=tmp_path)
    assert compared.returncode in (0, 1), compared.stderr
    result = json.loads(compared.stdout)
    assert (result["run_a"]["run_id"], result["run_b"]["run_id"]) == (a.run_id, b.run_id)
    too_short = run_main("backtest", "show", a.run_id[:7], *common, cwd=tmp_path)
    assert too_short.returncode == 1 and "at least 8" in too_short.stderr
