"""Issue 11: a run folder written before schema 1.2.0 (summary without split, win/loss and
portfolio columns, trades and alerts without side, no equity artifact) still reads, syncs,
reports and follows as a portfolio; the new columns read as null, never as invented values.

The old folder is a real policy run rewritten as the 1.1.0 writer left it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from quantbot.analysis.report import render_report
from quantbot.artifacts import catalog_all_runs, run_sql
from quantbot.artifacts.schema.arrow_schemas import SUMMARY_1_2_FIELDS, SUMMARY_SCHEMA
from quantbot.artifacts.store.reader import read_artifact
from quantbot.backtest import run_policy_backtest
from quantbot.backtest.data.sample import write_sample_data
from quantbot.backtest.flows.portfolio_step import run_portfolio

NEW_SUMMARY = {f.name for f in SUMMARY_1_2_FIELDS}


def _as_1_1_0(run_dir: Path) -> None:
    """Drop what 1.2.0 added, mark every file and the manifest 1.1.0, fix the checksums."""
    manifest = json.loads((run_dir / "run.json").read_text())
    drop = {"summary": NEW_SUMMARY, "trades": {"side"}, "alerts": {"side"}}
    for kind in ("alerts", "trades", "summary", "errors"):
        info = manifest["artifacts"][kind]
        path = run_dir / info["path"]
        table = pq.read_table(path)
        table = table.drop_columns([c for c in table.column_names if c in drop.get(kind, ())])
        meta = {**(table.schema.metadata or {}), b"schema_version": b"1.1.0"}
        pq.write_table(table.replace_schema_metadata(meta), path)
        data = path.read_bytes()
        info.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (run_dir / manifest["artifacts"].pop("equity")["path"]).unlink()
    manifest["schema_version"]["artifacts"] = "1.1.0"
    (run_dir / "run.json").write_text(json.dumps(manifest, indent=2))


@pytest.fixture(scope="module")
def old_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("old")
    alerts, candles = write_sample_data(root / "data", n_alerts=120)
    result = run_policy_backtest(alerts, candles, {"kind": "fixed_stop", "stop_pct": 0.2},
                                 base_dir=root / "runs", durable=False)
    run_dir = Path(result.run_dir)
    _as_1_1_0(run_dir)
    assert not NEW_SUMMARY & set(pq.read_table(run_dir / "results/summary.parquet").column_names)
    return root, run_dir


def test_an_old_summary_reads_with_the_new_columns_null(old_run):
    _, run_dir = old_run
    summary = read_artifact(run_dir, "summary")
    assert summary.schema.names == SUMMARY_SCHEMA.names
    for name in ("split", "win_rate", "profit_factor", "sharpe", "final_equity"):
        assert summary.column(name).null_count == summary.num_rows, name
    assert set(read_artifact(run_dir, "trades").column("side").to_pylist()) == {"long"}


def test_an_old_run_syncs_reports_and_follows_as_a_portfolio(old_run):
    root, run_dir = old_run
    catalog = root / "catalog.duckdb"
    catalog_all_runs(catalog=catalog, base_dir=root / "runs")
    rows = run_sql(catalog, "SELECT win_rate, profit_factor, split FROM all_summary").to_pylist()
    assert rows and all(r == {"win_rate": None, "profit_factor": None, "split": None}
                        for r in rows)
    page = render_report(run_dir)
    assert "alt='Equity'" not in page and "Summary (" in page  # no curve was written then
    trades = pq.read_table(run_dir / "policy" / "trades.parquet").column(
        "realized_return_bps").to_pylist()
    books = run_portfolio(run_dir.name.split("=")[1], {"size": {"amount": 100}},
                          base_dir=root / "runs", catalog=catalog)
    pooled = next(b for b in books if b["caller_name"] is None)
    assert pooled["trades_taken"] == len(trades)  # no limit: every trade taken
    assert pooled["final_equity"] == pytest.approx(100_000 + sum(100 * r / 1e4 for r in trades),
                                                   rel=1e-12)
    assert pooled["win_rate"] == pytest.approx(sum(r > 0 for r in trades) / len(trades))
