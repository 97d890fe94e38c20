"""quantbot backtest report: a self-contained HTML page of one run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from qbtest import assert_clean_error, run_cli, run_main

from quantbot.analysis.report import write_report
from quantbot.artifacts import catalog_all_runs
from quantbot.backtest import run_path_only, run_policy_backtest
from quantbot.backtest.data.sample import write_sample_data
from quantbot.backtest.flows.optimization import run_full

GRID = Path(__file__).resolve().parents[1] / "examples" / "small_grid.json"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("report")
    alerts, candles = write_sample_data(root / "data", n_alerts=150)
    kw = {"base_dir": root / "runs", "durable": False}
    out = {
        "root": root,
        "full": run_full(alerts, candles, grid=GRID, config={"validation": "time:0.8"}, **kw),
        "policy": run_policy_backtest(alerts, candles,
                                      {"kind": "fixed_stop", "stop_pct": 0.2,
                                       "take_profit_pct": 1.0}, **kw),
        "paths": run_path_only(alerts, candles, **kw),
    }
    catalog_all_runs(catalog=root / "catalog.duckdb", base_dir=root / "runs")
    return out


def _self_contained(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()


def test_full_run_report(runs: dict[str, Any]) -> None:
    full = runs["full"]
    path = write_report(full.run_id, runs["root"] / "out" / "full.html",
                        base_dir=runs["root"] / "runs", catalog=runs["root"] / "catalog.duckdb")
    page = path.read_text(encoding="utf-8")
    _self_contained(page)
    assert full.run_id in page
    # frontier, equity, drawdown, returns, peak multiples
    assert page.count("data:image/png;base64,") == 5
    assert "alt='Equity'" in page and "alt='Drawdown'" in page
    for section in ("Overview", "Summary", "Frontier: top", "Errors and exclusions",
                    "Parameters", "Artifacts", "Truth layer"):
        assert section in page
    best = full.metrics["policy_id"]
    assert best in page
    # the pooled summary's trade count and the exclusion reasons are shown
    assert f"<td class=num>{full.trades:,}</td>" in page or str(full.trades) in page
    assert "missing_range" in page and "invalid_price" in page


def test_policy_report_via_cli_default_name(runs: dict[str, Any]) -> None:
    pol = runs["policy"]
    # through the installed console script: the entry point works end to end
    out = run_cli("backtest", "report", pol.run_id, "--base-dir", "runs", cwd=runs["root"])
    assert out.returncode == 0, out.stderr
    path = runs["root"] / f"report-{pol.run_id}.html"
    assert out.stdout.strip() == path.name and path.exists()
    page = path.read_text(encoding="utf-8")
    _self_contained(page)
    assert pol.run_id in page and "fixed_stop:sl0.2:tp1" in page
    assert page.count("data:image/png;base64,") == 3  # equity, drawdown, the return histogram
    median = pol.metrics["median_return_bps"]
    assert f"{median:,.1f}" in page  # the headline median return, formatted like the tables


def test_path_only_report_and_escaping(runs: dict[str, Any], tmp_path: Path) -> None:
    path = write_report(runs["paths"].run_id, tmp_path / "p.html",
                        base_dir=runs["root"] / "runs")
    page = path.read_text(encoding="utf-8")
    _self_contained(page)
    assert "2x hit rate" in page and page.count("data:image/png;base64,") == 1


def test_text_is_escaped(runs: dict[str, Any], tmp_path: Path) -> None:
    from quantbot.artifacts import create_run_directory

    evil = "<script>alert('x')</script>"
    with create_run_directory("policy", base_dir=tmp_path / "runs",
                              parameters={"policy_id": evil, "note": evil}) as run:
        run.write_artifact("errors", [{"timestamp": "2026-01-01T00:00:00Z", "level": "error",
                                       "phase": "execution", "call_id": None,
                                       "message": evil, "details": None}])
    page = write_report(run.run_id, tmp_path / "e.html", base_dir=tmp_path / "runs").read_text()
    assert evil not in page and "&lt;script&gt;" in page
    _self_contained(page)


def test_unknown_run_is_a_one_line_error(runs: dict[str, Any]) -> None:
    out = run_main("backtest", "report", "00000000-0000-4000-8000-000000000000",
                   "--base-dir", "runs", cwd=runs["root"])
    assert_clean_error(out, 1)
