"""quantbot backtest compare: API and CLI on real runs of the sample data."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from qbtest import run_cli, run_main

from quantbot.analysis.compare import compare_runs, diff_parameters
from quantbot.backtest import run_path_only, run_policy_backtest
from quantbot.backtest.data.sample import write_sample_data
from quantbot.errors import IncomparableRunsError

FIXED = {"kind": "fixed_stop", "stop_pct": 0.2, "take_profit_pct": 1.0}
TRAIL = {"kind": "trailing_stop", "activation_pct": 0.3, "trail_pct": 0.2, "hard_stop_pct": 0.3}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("compare")
    alerts, candles = write_sample_data(root / "data", n_alerts=120)
    kw = {"base_dir": root / "runs", "durable": False}
    return {
        "root": root,
        "fixed": run_policy_backtest(alerts, candles, FIXED, **kw).run_id,
        "fixed_again": run_policy_backtest(alerts, candles, FIXED, **kw).run_id,
        "fixed_slippage": run_policy_backtest(alerts, candles, FIXED, slippage_bps=25.0,
                                              **kw).run_id,
        "trail": run_policy_backtest(alerts, candles, TRAIL, **kw).run_id,
        "paths": run_path_only(alerts, candles, **kw).run_id,
        "paths_again": run_path_only(alerts, candles, **kw).run_id,
        "paths_short": run_path_only(alerts, candles, horizon="6h", **kw).run_id,
    }


def _cmp(runs: dict[str, Any], a: str, b: str, **kw: Any) -> Any:
    return compare_runs(runs[a], runs[b], base_dir=runs["root"] / "runs", **kw)


def test_different_policies_list_changed_calls(runs: dict[str, Any]) -> None:
    c = _cmp(runs, "fixed", "trail")
    keys = {d.key for d in c.param_diff}
    assert {"policy.kind", "policy_id", "policy.trail_pct", "policy.stop_pct"} <= keys
    assert "config_hash" not in keys and "interval" not in keys
    (trades,) = c.artifacts
    assert trades.artifact == "trades" and trades.key == ["call_id"]
    assert trades.changed > 0 and trades.added == trades.removed == 0
    assert trades.changed + trades.unchanged == trades.rows_a == trades.rows_b
    ch = trades.changes[0]
    assert ch.change == "changed" and ch.caller_name
    assert ch.differs and set(ch.differs) <= {"exit_reason", "realized_return_bps"}
    assert ch.a["policy_id"] != ch.b["policy_id"]
    assert not c.identical
    pair, *per_caller = c.summary  # the pooled row first, then one per caller
    assert pair.group is None and pair.policy_a != pair.policy_b
    assert pair.a["trades_count"] == trades.rows_a
    assert per_caller and sum(p.a["trades_count"] for p in per_caller) == trades.rows_a


def test_identical_rerun_has_no_changes(runs: dict[str, Any]) -> None:
    c = _cmp(runs, "fixed", "fixed_again")
    assert c.param_diff == []
    assert c.identical and c.artifacts[0].unchanged == c.artifacts[0].rows_a


def test_tolerance_decides_what_changed(runs: dict[str, Any]) -> None:
    # 15 bps more slippage per side = every return 30 bps lower, exits unchanged
    c = _cmp(runs, "fixed", "fixed_slippage", tolerance_bps=1.0)
    assert [(d.key, d.a, d.b) for d in c.param_diff] == [("slippage_bps", 10.0, 25.0)]
    trades = c.artifacts[0]
    assert trades.changed == trades.rows_a
    assert all(ch.differs == ["realized_return_bps"] for ch in trades.changes)
    assert all(ch.delta_bps == pytest.approx(-30.0) for ch in trades.changes)
    assert _cmp(runs, "fixed", "fixed_slippage", tolerance_bps=30.5).identical


def test_path_only_vs_path_only(runs: dict[str, Any]) -> None:
    same = _cmp(runs, "paths", "paths_again")
    assert same.identical and same.artifacts[0].artifact == "paths"
    assert same.summary[0].a["hit_2x_rate"] == same.summary[0].b["hit_2x_rate"]
    shorter = _cmp(runs, "paths", "paths_short")
    assert {d.key for d in shorter.param_diff} >= {"horizon", "horizon_ms"}
    paths = shorter.artifacts[0]
    assert paths.changed > 0
    assert all(set(ch.differs) <= {"hit_2x", "hit_3x", "hit_4x", "peak_multiple"}
               for ch in paths.changes)
    # a shorter horizon can only lower the peak and drop hits; calls excluded for a missing
    # range under 24h are eligible under 6h (added)
    changed = [ch for ch in paths.changes if ch.change == "changed"]
    assert changed and all(ch.b["peak_multiple"] <= ch.a["peak_multiple"] for ch in changed)
    assert all(ch.a is None for ch in paths.changes if ch.change == "added")


def test_incompatible_runs(runs: dict[str, Any]) -> None:
    with pytest.raises(IncomparableRunsError, match="share no comparable artifact"):
        _cmp(runs, "fixed", "paths")


def test_diff_parameters_flattens_nested_keys() -> None:
    a = {"config_hash": "x", "policy": {"kind": "k", "levels": [1]}, "n": 1}
    b = {"config_hash": "y", "policy": {"kind": "k", "levels": [2]}, "m": 2}
    assert [(d.key, d.a, d.b) for d in diff_parameters(a, b)] == [
        ("m", None, 2), ("n", 1, None), ("policy.levels", [1], [2])]


def _cli(runs: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """``compare`` in-process through quantbot.cli.main."""
    return run_main("backtest", "compare", *args, "--base-dir", "runs", cwd=runs["root"])


def test_cli_table_and_json(runs: dict[str, Any]) -> None:
    # once through the installed console script: the entry point works end to end
    out = run_cli("backtest", "compare", runs["fixed"], runs["trail"], "--max-rows", "3",
                  "--base-dir", "runs", cwd=runs["root"])
    assert out.returncode == 0, out.stderr
    assert "parameters that differ:" in out.stdout and "policy.kind" in out.stdout
    assert "trades: " in out.stdout and " changed, 0 added, 0 removed" in out.stdout
    assert "take_profit" in out.stdout or "stop_loss" in out.stdout
    assert "... " in out.stdout and "outcomes differ" in out.stdout
    js = _cli(runs, runs["fixed"], runs["fixed_again"], "--format", "json")
    assert js.returncode == 0, js.stderr
    data = json.loads(js.stdout)
    assert data["identical"] is True and data["param_diff"] == []
    assert data["run_a"]["run_id"] == runs["fixed"]
    assert data["artifacts"][0]["changes"] == []


def test_cli_incompatible_and_unknown_runs_are_one_line_errors(runs: dict[str, Any]) -> None:
    out = _cli(runs, runs["fixed"], runs["paths"])
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1
    assert "share no comparable artifact" in out.stderr and "Traceback" not in out.stderr
    missing = _cli(runs, runs["fixed"], "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "not found" in missing.stderr
