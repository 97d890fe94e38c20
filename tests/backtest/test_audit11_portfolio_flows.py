"""Issue 11: ``--portfolio JSON`` end to end, as a user runs it, against a plain-Python loop
over the run's own trades artifact.

The loop is written from docs/portfolio.md: a position opens at its entry and closes at its
exit, exits before entries at one instant, entries at one instant by caller then trade
order, a signal beyond ``max_concurrent`` is skipped, the size is the amount or a fraction of
the equity at entry (compounding) or of the capital, P&L booked at the exit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from qbtest import run_main

from quantbot.backtest.data.sample import write_sample_data

POLICY = '{"kind": "fixed_stop", "stop_pct": 0.1, "take_profit_pct": 0.3}'


def account(trades: list[dict[str, Any]], cfg: dict[str, Any]) -> dict[str, Any]:
    """(final equity, taken, skipped, Σ amount·r/1e4 over the taken) by a loop over events."""
    capital, size = cfg["capital"], cfg["size"]
    order = sorted(range(len(trades)), key=lambda i: (trades[i]["entry_ts_ms"],
                                                      trades[i]["caller_name"], i))
    rank = {i: r for r, i in enumerate(order)}
    events = sorted([(t["exit_ts_ms"], 0, rank[i], i) for i, t in enumerate(trades)]
                    + [(t["entry_ts_ms"], 1, rank[i], i) for i, t in enumerate(trades)])
    cash, open_pos, taken, skipped, pnl = float(capital), {}, 0, 0, 0.0
    for _, phase, _, i in events:
        r = trades[i]["realized_return_bps"] / 1e4
        if phase == 0:
            if i in open_pos:
                amount = open_pos.pop(i)
                cash += amount * (1 + r)
                pnl += amount * r
        elif cfg.get("max_concurrent") is not None and len(open_pos) >= cfg["max_concurrent"]:
            skipped += 1
        else:
            base = cash + sum(open_pos.values()) if cfg.get("compound") else capital
            amount = size["amount"] if "amount" in size else size["fraction"] * base
            if amount > cash:
                skipped += 1
                continue
            cash -= amount
            open_pos[i] = amount
            taken += 1
    return {"final_equity": cash + sum(open_pos.values()), "taken": taken,
            "skipped": skipped, "pnl": pnl}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("portfolio")
    alerts, candles = write_sample_data(folder / "sample", n_alerts=300)
    return folder, ["--alerts", str(alerts), "--candles", str(candles), "--no-durable",
                    "--base-dir", str(folder / "runs"), "--format", "json"]


def _run(folder: Path, *args: str) -> dict[str, Any]:
    res = run_main(*args, cwd=folder)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _trades(run_dir: Path, policy_id: str | None = None) -> list[dict[str, Any]]:
    callers = {a["call_id"]: a["caller_name"]
               for a in pq.read_table(run_dir / "inputs" / "alerts.parquet").to_pylist()}
    rows = pq.read_table(run_dir / "policy" / "trades.parquet").to_pylist()
    return [{**t, "caller_name": callers[t["call_id"]]} for t in rows
            if policy_id is None or t["policy_id"] == policy_id]


def _pooled(run_dir: Path, split: str) -> dict[str, Any]:
    rows = pq.read_table(run_dir / "results" / "summary.parquet").to_pylist()
    return next(r for r in rows if r["caller_name"] in (None, "*") and r["split"] == split)


@pytest.mark.parametrize("cfg", [
    {"capital": 100_000, "size": {"amount": 1000}, "max_concurrent": 3, "compound": False},
    {"capital": 50_000, "size": {"fraction": 0.2}, "max_concurrent": 4, "compound": True},
    {"capital": 50_000, "size": {"fraction": 0.2}, "compound": False},
])
def test_run_policy_portfolio_equals_a_plain_loop(sample, cfg):
    folder, common = sample
    out = _run(folder, "backtest", "run", "policy", *common, "--policy", POLICY,
               "--portfolio", json.dumps(cfg))
    run_dir = Path(out["run_dir"])
    trades = _trades(run_dir)
    ref = account(trades, cfg)
    row = _pooled(run_dir, "all")
    assert row["trades_taken"] == ref["taken"] == out["metrics"]["trades_taken"]
    assert row["skipped_signals"] == ref["skipped"] == out["metrics"]["skipped_signals"]
    assert row["final_equity"] == pytest.approx(ref["final_equity"], rel=1e-12)
    if "max_concurrent" in cfg:
        assert ref["skipped"] > 0  # the limit binds: overlapping positions were skipped
    if "amount" in cfg["size"]:  # the identity of the issue
        assert row["final_equity"] == pytest.approx(cfg["capital"] + ref["pnl"], rel=1e-12)
    curve = [e for e in pq.read_table(run_dir / "results" / "equity.parquet").to_pylist()
             if e["caller_name"] is None]
    assert curve[-1]["equity"] == pytest.approx(ref["final_equity"], rel=1e-12)
    if "max_concurrent" in cfg:
        assert max(e["open_positions"] for e in curve) == cfg["max_concurrent"]

    # the same account afterwards, on the completed run (`backtest portfolio`)
    books = _run(folder, "backtest", "portfolio", out["run_id"], "--base-dir",
                 str(folder / "runs"), "--portfolio", json.dumps(cfg), "--format", "json")
    pooled = next(b for b in books if b["caller_name"] is None)
    assert pooled["final_equity"] == pytest.approx(ref["final_equity"], rel=1e-12)
    assert pooled["trades_taken"] == ref["taken"] and pooled["calls"] == "all"


def test_optimize_portfolio_of_the_validation_trades_equals_a_plain_loop(sample):
    folder, common = sample
    cfg = {"capital": 100_000, "size": {"amount": 2000}, "max_concurrent": 5,
           "compound": False}
    grid = folder / "grid.json"
    grid.write_text(json.dumps({"families": {"f": {"kind": "fixed_stop", "product": {
        "stop_pct": [0.1, 0.3], "take_profit_pct": [0.3, 1.0]}}}}))
    out = _run(folder, "backtest", "optimize", *common, "--grid", str(grid), "--validation",
               "time:0.6", "--no-per-caller", "--portfolio", json.dumps(cfg))
    run_dir = Path(out["run_dir"])
    best = out["metrics"]["policy_id"]
    ref = account(_trades(run_dir, best), cfg)  # the trades written: the validation calls
    row = _pooled(run_dir, "validation")
    assert row["policy_id"] == best and row["trades_taken"] == ref["taken"]
    assert row["skipped_signals"] == ref["skipped"]
    assert row["final_equity"] == pytest.approx(cfg["capital"] + ref["pnl"], rel=1e-12)
    assert out["metrics"]["splits"]["validation"]["total_return"] == pytest.approx(
        ref["pnl"] / cfg["capital"], rel=1e-9)
    splits = {e["split"] for e in pq.read_table(run_dir / "results" / "equity.parquet")
              .to_pylist()}
    assert splits == {"train", "validation"}
    books = _run(folder, "backtest", "portfolio", out["run_id"], "--base-dir",
                 str(folder / "runs"), "--portfolio", json.dumps(cfg), "--format", "json")
    pooled = next(b for b in books if b["caller_name"] is None)
    assert pooled["calls"] == "validation (time:0.6)"  # it says which calls it follows
    assert pooled["final_equity"] == pytest.approx(row["final_equity"], rel=1e-12)


@pytest.mark.parametrize("run_type, validation, calls", [
    ("policy", None, "all"), ("optimization", None, "all"),
    ("full", "random:3:0.8", "validation (random:3:0.8)"),
    ("optimization", "caller:0.8:1", ("validation (caller:0.8:1: held-out callers; a kept "
                                      "caller's own best on its calls)")),
])
def test_trades_calls(run_type, validation, calls):
    from quantbot.backtest.flows.portfolio_step import trades_calls

    assert trades_calls(run_type, {"optimizer": {"validation": validation}}) == calls
