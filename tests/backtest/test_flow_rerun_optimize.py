"""rerun of optimization and full runs: the grid (an API dict, a PolicyGrid, a grid file) and
the optimizer config are rebuilt from the manifest and every artifact reproduces."""

from __future__ import annotations

import json

import pytest

from quantbot.artifacts import read_manifest
from quantbot.backtest import parse_grid, rerun, run_full, run_optimization, write_sample_data

GRID = {"families": {
    "fixed_stop": {"kind": "fixed_stop", "product": {"stop_pct": [0.1, 0.3],
                                                     "take_profit_pct": [0.5, 2.0]}},
    "time_stop": {"kind": "time_stop", "product": {"max_hold_ms": ["30m", "4h"]}},
}}
CONFIG = {"validation": "time:0.7", "min_calls": 3, "max_stop_out_rate": 0.9}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_data(tmp_path_factory.mktemp("sample"), n_alerts=60)


def _check_reproduced(report, original_run_id: str) -> None:
    assert report.original_run_id == original_run_id
    assert report.identical, report.to_dict()
    assert all(a.rows_original == a.rows_rerun for a in report.artifacts)
    assert report.warnings == []
    assert report.fingerprints_match == {"alerts": True, "candles": True, "grid": True}


@pytest.mark.parametrize("flow, grid_kind", [(run_optimization, "dict"), (run_full, "dict"),
                                             (run_optimization, "policy_grid"),
                                             (run_full, "file")])
def test_rerun_reproduces_optimization_and_full(flow, grid_kind, sample, tmp_path):
    if grid_kind == "file":
        grid_file = tmp_path / "grid.json"
        grid_file.write_text(json.dumps(GRID))
        grid = str(grid_file)
    else:
        grid = GRID if grid_kind == "dict" else parse_grid(GRID)
    original = flow(*sample, grid=grid, config=CONFIG, taker_fee_bps=12.0, per_caller=True,
                    base_dir=tmp_path / "runs", durable=False)
    report = rerun(original.run_id, base_dir=tmp_path / "runs", durable=False)
    _check_reproduced(report, original.run_id)
    artifacts = {a.artifact for a in report.artifacts}
    expected = {"alerts", "frontier", "trades", "summary", "equity", "errors"}
    assert artifacts == (expected | {"paths", "features"} if flow is run_full else expected)
    new = read_manifest(report.rerun.run_dir).parameters.model_dump()
    old = read_manifest(original.run_dir).parameters.model_dump()
    assert report.rerun.run_type == original.run_type
    for key in ("grid", "optimizer", "per_caller", "taker_fee_bps", "slippage_bps", "horizon"):
        assert new[key] == old[key], key


def test_rerun_warns_when_the_grid_file_changed(sample, tmp_path):
    grid_file = tmp_path / "grid.json"
    grid_file.write_text(json.dumps(GRID))
    original = run_optimization(*sample, grid=str(grid_file), base_dir=tmp_path / "runs",
                                durable=False)
    smaller = {"families": {"time_stop": GRID["families"]["time_stop"]}}
    grid_file.write_text(json.dumps(smaller))
    report = rerun(original.run_id, base_dir=tmp_path / "runs", durable=False)
    assert report.fingerprints_match["grid"] is False and not report.identical
    assert any(w.startswith("fingerprint of grid differs") for w in report.warnings)
