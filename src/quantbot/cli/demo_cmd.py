"""``quantbot backtest demo``: the main job on bundled data with the embedded defaults."""

from __future__ import annotations

import click

from quantbot.cli.app import backtest
from quantbot.cli.options import base_dir_option, duckdb_option


@backtest.command("demo")
@base_dir_option
@duckdb_option
def demo(base_dir: str, duckdb_path: str) -> None:
    """Write a few runs of each type, sync the catalog, and query across runs."""
    import random

    from quantbot.artifacts import catalog_all_runs, create_run_directory, query_runs, run_sql
    from quantbot.cli.render import print_rows

    rng = random.Random(7)
    for run_type in ("path-only", "policy", "policy", "optimization", "full"):
        with create_run_directory(run_type, base_dir=base_dir,
                                  parameters={"policy_id": f"demo-{run_type}"},
                                  dataset={"interval": "1m", "calls_count": 20}) as run:
            trades = []
            for i in range(20):
                ret = rng.gauss(50, 400)
                trades.append({
                    "policy_id": f"demo-{run_type}", "call_id": f"call-{i}",
                    "entry_ts_ms": 1_700_000_000_000 + i * 60_000, "entry_px": 1.0,
                    "exit_ts_ms": 1_700_000_600_000 + i * 60_000, "exit_px": 1 + ret / 1e4,
                    "exit_reason": "take_profit" if ret > 0 else "stop_loss",
                    "realized_return_bps": ret - 80, "stop_out": ret <= 0,
                    "max_adverse_excursion_bps": -abs(rng.gauss(0, 300)),
                    "time_exposed_ms": 600_000, "tail_capture": None,
                })
            run.write_artifact("trades", trades)
            run.write_artifact("errors", [])
        click.echo(f"wrote {run_type} run {run.run_id}")
    report = catalog_all_runs(duckdb_path, base_dir)
    click.echo(f"catalog-sync: registered {report.registered}, already present "
               f"{report.already_present}, incomplete {report.incomplete}, invalid {len(report.invalid)}")
    runs = query_runs(duckdb_path, status="completed", limit=5)
    click.echo(f"newest completed run: {runs[0].run_id} ({runs[0].run_type})")
    table = run_sql(duckdb_path, """
        SELECT r.run_type, count(*) AS trades, round(avg(t.realized_return_bps), 1) AS avg_bps
        FROM all_trades t JOIN backtest_runs_catalog r USING (run_id)
        GROUP BY r.run_type ORDER BY r.run_type""")
    print_rows(table.to_pylist(), "table", title="trades across runs by run type:")
