"""``quantbot backtest portfolio RUN``: another account over a completed run's trades."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from qbtest import assert_clean_error, run_main

from quantbot.backtest import run_path_only, run_policy_backtest, write_sample_data
from quantbot.backtest.flows.portfolio_step import run_portfolio


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("portfolio")
    alerts, candles = write_sample_data(root / "data", n_alerts=120)
    common = {"base_dir": root / "runs", "durable": False}
    policy = run_policy_backtest(alerts, candles, {"kind": "fixed_stop", "stop_pct": 0.2,
                                                   "take_profit_pct": 1.0}, **common)
    truth = run_path_only(alerts, candles, **common)
    return {"root": root, "policy": policy, "truth": truth}


def test_fixed_amount_final_equity_is_capital_plus_the_sum_of_pnl(runs):
    account = {"capital": 1e9, "size": {"amount": 1000}, "compound": False}
    books = run_portfolio(runs["policy"].run_id, account, base_dir=runs["root"] / "runs")
    pooled = next(b for b in books if b["caller_name"] is None)
    trades = pq.read_table(Path(runs["policy"].run_dir) / "policy/trades.parquet").to_pylist()
    expected = 1e9 + sum(1000 * t["realized_return_bps"] / 1e4 for t in trades)  # all taken
    assert pooled["trades_taken"] == len(trades) and pooled["skipped_signals"] == 0
    assert pooled["final_equity"] == pytest.approx(expected, rel=1e-12)
    per_caller = [b for b in books if b["caller_name"] is not None]
    assert sum(b["trades_taken"] for b in per_caller) == len(trades)


def test_the_default_account_reproduces_the_runs_own_summary(runs):
    books = run_portfolio(runs["policy"].run_id, None, base_dir=runs["root"] / "runs")
    summary = pq.read_table(Path(runs["policy"].run_dir) / "results/summary.parquet").to_pylist()
    by_caller = {r["caller_name"]: r for r in summary}
    for book in books:
        row = by_caller[book["caller_name"]]
        for key in ("final_equity", "total_return", "max_drawdown", "trades_taken", "sharpe"):
            assert book[key] == pytest.approx(row[key]), (book["caller_name"], key)


def test_cli_table_json_and_refusals(runs):
    root, run_id = runs["root"], runs["policy"].run_id
    limit = '{"capital": 10000, "size": {"amount": 1000}, "max_concurrent": 3}'
    proc = run_main("backtest", "portfolio", run_id[:8], "--portfolio", limit, "--base-dir",
                    "runs", "--format", "json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    books = json.loads(proc.stdout)
    pooled = next(b for b in books if b["caller_name"] is None)
    assert pooled["skipped_signals"] > 0  # three positions at most
    table = run_main("backtest", "portfolio", run_id, "--base-dir", "runs", cwd=root)
    assert table.returncode == 0 and "(pooled)" in table.stdout, table.stderr
    bad = run_main("backtest", "portfolio", run_id, "--portfolio", '{"size": {"amount": -1}}',
                   "--base-dir", "runs", cwd=root)
    assert "portfolio.size.amount" in assert_clean_error(bad, 1)
    none = run_main("backtest", "portfolio", runs["truth"].run_id, "--base-dir", "runs", cwd=root)
    assert "has no completed trades" in assert_clean_error(none, 1)


def test_volatility_sized_policy_run(runs, tmp_path):
    """Volatility sizing takes each call's pre-alert volatility (computed once per run):
    a call without one is skipped and counted, never sized by a guess."""
    alerts, candles = (runs["root"] / "data" / n for n in ("alerts.parquet", "candles.parquet"))
    account = {"capital": 1e9, "size": {"volatility": {"target_bps": 50, "fraction": 0.01}}}
    result = run_policy_backtest(alerts, candles, {"kind": "fixed_stop", "stop_pct": 0.2},
                                 portfolio=account, base_dir=tmp_path, durable=False)
    pooled = pq.read_table(Path(result.run_dir) / "results/summary.parquet").to_pylist()[0]
    assert pooled["trades_taken"] + pooled["skipped_signals"] == result.trades
    assert pooled["trades_taken"] > 0
    features = run_path_only(alerts, candles, base_dir=tmp_path, durable=False)
    vols = pq.read_table(Path(features.run_dir) / "features/features.parquet").column(
        "vol_pre_alert").to_pylist()
    eligible_unknown = pooled["skipped_signals"]
    assert eligible_unknown <= sum(v is None or v <= 0 for v in vols)
