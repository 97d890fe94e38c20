"""Issue 11: the CLI's best lines, summary.parquet, the frontier and the report headline
label their split and agree; the report's frontier table lists aliases compactly.

One optimization run on the sample data through the CLI (as a user types it), with a grid
whose sub-bar time stops on 1m bars are one policy (aliases).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from qbtest import run_main

from quantbot.analysis.report import aliases_text, format_cell, render_report
from quantbot.backtest.data.sample import write_sample_data

GRID = {"families": {
    "fixed_stop": {"kind": "fixed_stop", "product": {"stop_pct": [0.1, 0.3],
                                                     "take_profit_pct": [0.5, None]}},
    # on 1m bars 20s, 30s, 45s and 1m all exit at the first bar after entry: one policy
    "time_stop": {"kind": "time_stop", "product": {"max_hold_ms": ["20s", "30s", "45s", "1m",
                                                                   "4h"]}},
}}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("labels")
    alerts, candles = write_sample_data(folder / "sample", n_alerts=200)
    grid = folder / "grid.json"
    grid.write_text(json.dumps(GRID))
    args = ["backtest", "optimize", "--alerts", str(alerts), "--candles", str(candles),
            "--grid", str(grid), "--validation", "time:0.7", "--no-per-caller",
            "--base-dir", str(folder / "runs"), "--no-durable"]
    table = run_main(*args, cwd=folder)
    assert table.returncode == 0, table.stderr
    as_json = run_main(*args, "--format", "json", cwd=folder)
    assert as_json.returncode == 0, as_json.stderr
    out = json.loads(as_json.stdout)
    run_dir = Path(out["run_dir"])
    return {"table": table.stdout, "json": out, "run_dir": run_dir,
            "summary": pq.read_table(run_dir / "results" / "summary.parquet").to_pylist(),
            "frontier": pq.read_table(run_dir / "results" / "frontier.parquet").to_pylist(),
            "page": render_report(run_dir)}


def _line(stdout: str, split: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith(f"  {split:<10} "))


def test_cli_json_summary_and_frontier_agree_per_split(run):
    splits = run["json"]["metrics"]["splits"]
    rows = {r["split"]: r for r in run["summary"] if r["caller_name"] == "*"}
    assert set(splits) == set(rows) == {"train", "validation"}
    for split in ("train", "validation"):
        for key in ("trades_count", "avg_return_bps", "median_return_bps", "win_rate",
                    "stop_out_rate", "total_return", "max_drawdown", "sharpe"):
            assert splits[split][key] == pytest.approx(rows[split][key], rel=1e-12), (split, key)
        # the table line shows the same numbers, labelled with its split
        line = _line(run["table"], split)
        assert f"trades {rows[split]['trades_count']} " in line
        assert f"avg {rows[split]['avg_return_bps']:.1f} bps" in line
    best = next(r for r in run["frontier"] if r["rank"] == 1)
    assert best["split"] == "train" and best["policy_id"] == run["json"]["metrics"]["policy_id"]
    assert best["avg_return_bps"] == pytest.approx(rows["train"]["avg_return_bps"], rel=1e-12)
    assert best["trades_count"] == rows["train"]["trades_count"]
    assert best["validation_objective_score"] == pytest.approx(
        splits["validation"]["objective_score"], rel=1e-12)


def test_report_headline_names_its_split_and_shows_its_numbers(run):
    page = run["page"]
    cards = {label: value for value, label in re.findall(
        r"<div class='card'><div class='v'>(.*?)</div><div class='k'>(.*?)</div></div>", page)}
    assert cards["split of these figures"] == "validation"
    validation = next(r for r in run["summary"]
                      if r["caller_name"] == "*" and r["split"] == "validation")
    assert cards["trades"] == f"{validation['trades_count']:,}"
    assert cards["avg_return_bps"] == format_cell(validation["avg_return_bps"])
    assert cards["win_rate"] == format_cell(validation["win_rate"], "win_rate")


def test_frontier_rows_list_aliases_compactly(run):
    one_bar = next(r for r in run["frontier"] if r["policy_id"] == "time_stop:hold20s")
    assert json.loads(one_bar["aliases"]) == ["time_stop:hold30s", "time_stop:hold45s",
                                              "time_stop:hold1m"]
    assert "time_stop:hold30s and 2 more" in run["page"]
    assert '["time_stop:hold30s"' not in run["page"]  # not the raw JSON list


@pytest.mark.parametrize("text, expected", [
    (None, None), ("[]", None), ('["a"]', "a"), ('["a", "b"]', "a and 1 more"),
    ('["a", "b", "c"]', "a and 2 more"),
])
def test_aliases_text(text, expected):
    assert aliases_text(text) == expected


def test_full_run_headline_keeps_the_truth_layer_apart(tmp_path):
    """The truth layer's cards cover every eligible call: their own group, labelled 'all'."""
    from quantbot.backtest import run_full

    alerts, candles = write_sample_data(tmp_path / "sample", n_alerts=120)
    result = run_full(alerts, candles, grid=GRID, config={"validation": "time:0.7"},
                      per_caller=False, base_dir=tmp_path / "runs", durable=False)
    page = render_report(result.run_dir)
    groups = re.findall(r"<div class='cards'>(.*?)</div></div></div>", page)
    assert len(groups) == 2
    policy, truth = ({label: value for value, label in re.findall(
        r"<div class='v'>(.*?)</div><div class='k'>(.*?)</div>", g + "</div></div>")}
        for g in groups)
    assert policy["split of these figures"] == "validation" and "eligible calls" not in policy
    assert truth["split of these figures"] == "all"
    paths = pq.read_table(Path(result.run_dir) / "truth" / "paths.parquet")
    assert truth["eligible calls"] == f"{paths.num_rows:,}" and "2x hit rate" in truth
