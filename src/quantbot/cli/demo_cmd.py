"""``quantbot backtest demo``: the main job end to end on the bundled sample data.

sample data (only if missing) -> a path-only run -> three policy runs -> catalog-sync ->
catalog-query -> one SQL statement comparing the policies across runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from quantbot.cli.app import backtest
from quantbot.cli.options import base_dir_option, duckdb_option
from quantbot.cli.ui_cmd import ui_command_line

DEMO_POLICIES = (
    {"kind": "fixed_stop", "stop_pct": 0.2, "take_profit_pct": 1.0},
    {"kind": "trailing_stop", "activation_pct": 0.3, "trail_pct": 0.2, "hard_stop_pct": 0.3},
    {"kind": "ladder", "levels": [{"multiple": 2.0, "fraction": 0.5},
                                  {"multiple": 4.0, "fraction": 0.5}], "stop_pct": 0.3},
)

COMPARE_SQL = """
SELECT s.policy_id, s.trades_count AS trades,
       round(s.avg_return_bps, 1) AS avg_bps, round(s.median_return_bps, 1) AS median_bps,
       round(s.stop_out_rate, 3) AS stop_out_rate, round(s.win_rate, 3) AS win_rate,
       round(s.total_return, 3) AS portfolio_return, round(s.max_drawdown, 4) AS max_dd,
       round(s.avg_time_exposed_ms / 3.6e6, 2) AS avg_hold_h, left(r.run_id, 8) AS run
FROM all_summary s
JOIN backtest_runs_catalog r USING (run_id)
WHERE r.run_type = 'policy' AND s.caller_name IS NULL AND list_contains(?, r.run_id)
ORDER BY s.median_return_bps DESC
"""


@backtest.command("demo")
@base_dir_option
@duckdb_option
@click.option("--data-dir", default="data/sample", show_default=True,
              help="Sample data folder (written only if missing).")
def demo(base_dir: str, duckdb_path: str, data_dir: str) -> None:
    """Sample data -> path-only run -> 3 policy runs -> catalog-sync -> cross-run SQL."""
    from quantbot.artifacts import catalog_all_runs, query_runs, run_sql
    from quantbot.artifacts.catalog.query import manifest_summary
    from quantbot.backtest import run_path_only, run_policy_backtest
    from quantbot.backtest.data.sample import write_sample_data
    from quantbot.cli.render import print_rows
    from quantbot.cli.run_cmds import report_lines

    alerts, candles = Path(data_dir) / "alerts.parquet", Path(data_dir) / "candles.parquet"
    if alerts.exists() and candles.exists():
        click.echo(f"== sample data: using {data_dir}")
    else:
        write_sample_data(data_dir)
        click.echo(f"== sample data: wrote {alerts} and {candles}")

    click.echo("\n== run path-only")
    report_lines(run_path_only(alerts, candles, base_dir=base_dir))
    run_ids = []
    for policy in DEMO_POLICIES:
        click.echo("\n== run policy")
        result = run_policy_backtest(alerts, candles, policy, base_dir=base_dir)
        report_lines(result)
        run_ids.append(result.run_id)

    click.echo("\n== catalog-sync")
    report = catalog_all_runs(catalog=duckdb_path, base_dir=base_dir)
    click.echo(f"registered {report.registered}, already present {report.already_present}, "
               f"incomplete {report.incomplete}, invalid {len(report.invalid)}  ({duckdb_path})")

    click.echo("\n== catalog-query (newest 5)")
    print_rows([manifest_summary(m) for m in query_runs(duckdb_path, limit=5)], "table")

    click.echo("\n== policies compared across runs (all_summary, pooled rows, + catalog)")
    table = run_sql(duckdb_path, COMPARE_SQL, [run_ids])
    print_rows(table.to_pylist(), "table")
    click.echo(f"\nnext: quantbot backtest show {run_ids[0]}   |   "
               f"quantbot backtest sql \"SELECT * FROM all_summary\"")
    click.echo(f"\n== see the runs in the browser:\n{ui_command_line(duckdb_path, base_dir)}")
