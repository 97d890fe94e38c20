"""run_optimization / run_full: the frontier file of the hand-made dataset (golden), the
best trades and summary, errors rows, the manifest, and failure handling."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quantbot.artifacts import read_manifest
from quantbot.backtest.data.sample import write_sample_data
from quantbot.backtest.flows.optimization import run_full, run_optimization
from quantbot.errors import GridError

from .reference import MIN
from .test_optimize import (
    HAND_CALLERS,
    HAND_GRID,
    HAND_START_MIN,
    HAND_WINDOWS,
    P1,
    P2,
    P3,
    P4,
    hand_candle_rows,
)

SMALL_GRID = {"families": {
    "fixed_stop": {"kind": "fixed_stop", "product": {"stop_pct": [0.1, 0.3],
                                                     "take_profit_pct": [0.5, 2.0]}},
    "time_stop": {"kind": "time_stop", "product": {"max_hold_ms": ["30m", "4h"]}},
    "combo": {"combo": ["time_stop", [{"kind": "trailing_stop", "activation_pct": 0.5,
                                       "trail_pct": 0.2}]]},
}}
T0_MS = 1_767_225_600_000  # 2026-01-01: real epoch ms, so the timestamp unit is unambiguous


@pytest.fixture(scope="module")
def hand_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hand")
    mints = list(HAND_WINDOWS)
    pq.write_table(pa.table({
        "call_id": [f"call-{m}" for m in mints], "mint": mints, "caller_name": HAND_CALLERS,
        "chain": ["solana"] * 4,
        "alert_ts_ms": [T0_MS + HAND_START_MIN[m] * MIN for m in mints],
        "created_at": ["2026-01-01T00:00:00Z"] * 4}), folder / "alerts.parquet")
    rows = hand_candle_rows()
    pq.write_table(pa.table({
        "mint": [r[0] for r in rows], "ts": [T0_MS + r[1] * MIN for r in rows],
        "open": [r[2] for r in rows], "high": [r[3] for r in rows], "low": [r[4] for r in rows],
        "close": [r[5] for r in rows], "volume": [10.0] * len(rows)}), folder / "candles.parquet")
    return folder / "alerts.parquet", folder / "candles.parquet"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_data(tmp_path_factory.mktemp("sample"))


def _read(run_dir: str, path: str) -> pa.Table:
    return pq.read_table(f"{run_dir}/{path}")


def test_frontier_file_of_the_hand_dataset(hand_files, tmp_path):
    result = run_optimization(*hand_files, grid=HAND_GRID,
                              config={"min_calls": 2, "objective": "original"},
                              horizon="3m", taker_fee_bps=0, slippage_bps=0,
                              base_dir=tmp_path, durable=False)
    assert result.status == "completed" and result.eligible == 4
    frontier = _read(result.run_dir, "results/frontier.parquet").to_pylist()
    # P4 trades exactly like P1 on every call: one row (P1's), P4 listed as its alias
    assert len(frontier) == 9 and {r["run_id"] for r in frontier} == {result.run_id}
    got = {(r["caller_name"], r["policy_id"]): r for r in frontier}
    assert {json.dumps([P4])} == {r["aliases"] for r in frontier if r["policy_id"] == P1}
    assert {r["split"] for r in frontier} == {"all"}
    expected_rank = {"*": {P1: 2, P2: 1, P3: 3}, "alice": {P1: 2, P2: 3, P3: 1},
                     "bob": {P1: 1, P2: 1, P3: 3}}  # bob: P1 and P2 tie, and share rank 1
    for caller, ranks in expected_rank.items():
        for pid, rank in ranks.items():
            assert got[(caller, pid)]["rank"] == rank, (caller, pid)
    assert got[("*", P2)]["objective_score"] == pytest.approx(747.5)
    assert got[("alice", P2)]["meets_constraints"] is False
    assert got[("alice", P3)]["objective_score"] == pytest.approx(1400.0)
    assert got[("*", P1)]["policy_params"] == (
        '{"kind":"fixed_stop","stop_pct":0.0,"take_profit_pct":0.2}')
    assert got[("*", P1)]["p95_drawdown_bps"] == pytest.approx(-1775.0)
    assert got[("bob", P1)]["trades_count"] == 2
    # bob (m3, m4): P1 and P2 trade [0, 1200] and tie at 600 + 200 - 2.5 = 797.5; the
    # first in grid order is reported
    bob_scores = {got[("bob", p)]["objective_score"] for p in (P1, P2)}
    assert len(bob_scores) == 1 and bob_scores.pop() == pytest.approx(797.5)
    summary = {r["caller_name"]: r
               for r in _read(result.run_dir, "results/summary.parquet").to_pylist()}
    assert {k: v["policy_id"] for k, v in summary.items()} == {"*": P2, "alice": P3, "bob": P1}
    assert summary["alice"]["trades_count"] == 2 and summary["*"]["calls_processed"] == 4
    assert summary["alice"]["median_return_bps"] == pytest.approx(1250.0)
    trades = _read(result.run_dir, "policy/trades.parquet")
    pairs = list(zip(trades.column("policy_id").to_pylist(), trades.column("call_id").to_pylist()))
    # each (policy, call) once, grid order: P1 for bob (m3, m4), P2 for * (every call), P3
    # for alice (m1, m2)
    assert pairs == ([(P1, "call-m3"), (P1, "call-m4")] + [(P2, f"call-{m}") for m in HAND_WINDOWS]
                     + [(P3, "call-m1"), (P3, "call-m2")])


def test_optimize_on_sample_data(sample, tmp_path):
    result = run_optimization(*sample, grid=SMALL_GRID, base_dir=tmp_path, durable=False)
    run_dir = result.run_dir
    manifest = read_manifest(run_dir)
    assert manifest.run_type == "optimization" and manifest.status == "completed"
    assert set(manifest.artifacts) == {"alerts", "frontier", "trades", "summary", "equity", "errors"}
    assert manifest.timing.optimization_ms is not None
    params = manifest.parameters.model_dump()
    assert params["grid"]["policies"] == 8 and params["grid"]["source"] == "api"
    assert params["optimizer"]["min_calls"] == 10 and params["optimizer"]["validation"] is None
    frontier = _read(run_dir, "results/frontier.parquet")
    summary = _read(run_dir, "results/summary.parquet").to_pylist()
    callers = sorted({r["caller_name"] for r in summary})
    assert frontier.num_rows == 8 * len(summary) and callers[0] == "*"
    errors = _read(run_dir, "errors/errors.parquet").to_pylist()
    skipped = [e for e in errors if e["phase"] == "optimization" and e["level"] == "warning"]
    assert skipped and all("fewer than min_calls 10" in e["message"] for e in skipped)
    assert len(summary) + len(skipped) == 1 + len(set(_read(run_dir, "inputs/alerts.parquet")
                                                      .column("caller_name").to_pylist()))
    best = [e for e in errors if e["message"].startswith("best policy for")]
    assert len(best) == len(summary) and json.loads(best[0]["details"])["rank"] == 1
    pooled = next(r for r in summary if r["caller_name"] == "*")
    assert pooled["trades_count"] == result.eligible
    assert result.metrics["policy_id"] == pooled["policy_id"]


def test_run_full_with_time_validation(sample, tmp_path):
    result = run_full(*sample, grid=SMALL_GRID, config={"validation": "time:0.8"},
                      base_dir=tmp_path, durable=False)
    manifest = read_manifest(result.run_dir)
    assert manifest.run_type == "full" and manifest.status == "completed"
    assert set(manifest.artifacts) == {"alerts", "paths", "features", "frontier", "trades",
                                       "summary", "equity", "errors"}
    assert manifest.parameters.model_dump()["optimizer"]["validation"] == "time:0.8"
    summary = _read(result.run_dir, "results/summary.parquet").to_pylist()
    pooled = {r["split"]: r for r in summary if r["caller_name"] == "*"}
    assert set(pooled) == {"train", "validation"}  # every number says which calls
    assert pooled["validation"]["trades_count"] == result.eligible - int(0.8 * result.eligible)
    assert pooled["train"]["trades_count"] == int(0.8 * result.eligible)
    equity = _read(result.run_dir, "results/equity.parquet")
    assert set(equity.column("split").to_pylist()) == {"train", "validation"}
    assert set(equity.column("caller_name").to_pylist()) == {None}
    errors = _read(result.run_dir, "errors/errors.parquet").to_pylist()
    split = [e for e in errors if e["message"].startswith("validation split time:0.8")]
    assert len(split) == 1
    best = json.loads(next(e for e in errors if e["message"].startswith("best policy for *"))
                      ["details"])
    assert {"train", "validation", "validation_objective_score", "overfit"} <= set(best)
    assert "overfit" in result.metrics
    assert _read(result.run_dir, "truth/paths.parquet").num_rows == result.eligible


def test_bad_grid_leaves_no_run(sample, tmp_path):
    with pytest.raises(GridError):
        run_optimization(*sample, grid={"families": {"a": []}}, base_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_interrupt_marks_the_run_failed(sample, tmp_path):
    def interrupt(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_optimization(*sample, grid=SMALL_GRID, base_dir=tmp_path, durable=False,
                         policy_progress=interrupt)
    (run_dir,) = list(tmp_path.glob("*/run_id=*"))
    manifest = read_manifest(str(run_dir))
    assert manifest.status == "failed" and manifest.error.type == "KeyboardInterrupt"
    assert not (run_dir / "_SUCCESS").exists()


def test_frontier_portfolio_figures_are_the_summary_portfolio_of_the_best_policy(sample, tmp_path):
    """One account, one answer: the best pooled policy's frontier Sharpe, return and drawdown
    (training calls) are its summary's train row, with concurrency limiting the account."""
    account = {"capital": 100_000, "size": {"amount": 5_000}, "max_concurrent": 3}
    result = run_optimization(*sample, grid=SMALL_GRID, config={"validation": "time:0.8"},
                              portfolio=account, base_dir=tmp_path, durable=False)
    frontier = _read(result.run_dir, "results/frontier.parquet").to_pylist()
    best = next(r for r in frontier if r["caller_name"] == "*" and r["policy_id"] ==
                result.metrics["policy_id"])
    summary = _read(result.run_dir, "results/summary.parquet").to_pylist()
    train = next(r for r in summary if r["caller_name"] == "*" and r["split"] == "train")
    assert train["skipped_signals"] > 0  # the limit binds, so the entry order matters
    for key in ("sharpe", "total_return", "max_drawdown"):
        assert best[key] == pytest.approx(train[key], rel=1e-12), key
