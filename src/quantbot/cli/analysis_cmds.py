"""compare, report and portfolio: what a change did, one run as a shareable HTML page, and
a run's trades followed as one account."""

from __future__ import annotations

import json
from typing import Any

import click

from quantbot.cli.app import backtest
from quantbot.cli.options import base_dir_option, duckdb_option, format_option
from quantbot.cli.render import print_json, print_table
from quantbot.cli.run_cmds import portfolio_option


@backtest.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@base_dir_option
@duckdb_option
@click.option("--tolerance-bps", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="A return (or peak multiple, relative) that moved less than this is "
                   "unchanged.")
@click.option("--max-rows", type=click.IntRange(min=1), default=50, show_default=True,
              help="Changed calls printed per artifact in table format (json prints all).")
@format_option("table", "json")
def compare(run_a: str, run_b: str, base_dir: str, duckdb_path: str, tolerance_bps: float,
            max_rows: int, fmt: str) -> None:
    """Compare RUN_B against RUN_A: parameters that differ, summaries, changed calls."""
    from quantbot.analysis.compare import compare_runs

    result = compare_runs(run_a, run_b, catalog=duckdb_path, base_dir=base_dir,
                          tolerance_bps=tolerance_bps)
    if fmt == "json":
        print_json(result.to_dict())
        return
    _print_comparison(result, max_rows)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _print_comparison(c: Any, max_rows: int) -> None:
    for label, info in (("A", c.run_a), ("B", c.run_b)):
        git = f"  {info.git_branch or '?'} @ {info.git_commit[:12]}" if info.git_commit else ""
        click.echo(f"{label}  {info.run_id}  ({info.run_type}, {info.status})  "
                   f"{info.created_at}{git}")
    click.echo("")
    if c.param_diff:
        print_table([{"parameter": d.key, "A": _fmt(d.a), "B": _fmt(d.b)} for d in c.param_diff],
                    title="parameters that differ:")
    else:
        click.echo("parameters: identical")
    click.echo("")
    if c.summary:
        _print_summary(c.summary)
    for art in c.artifacts:
        click.echo("")
        click.echo(f"{art.artifact}: {art.rows_a} vs {art.rows_b} rows, matched on "
                   f"{'+'.join(art.key)} (tolerance {c.tolerance_bps:g} bps): "
                   f"{art.changed} changed, {art.added} added, {art.removed} removed, "
                   f"{art.unchanged} unchanged")
        rows = [_change_row(ch, art.artifact) for ch in art.changes[:max_rows]]
        if rows:
            print_table(rows)
        if len(art.changes) > max_rows:
            click.echo(f"... {len(art.changes) - max_rows} more (use --format json for all)")
    click.echo("")
    click.echo("no call changed" if c.identical else "outcomes differ")


def _print_summary(pairs: list[Any]) -> None:
    first = pairs[0]
    label = "all calls" if first.group is None else (
        "pooled (*)" if first.group == "*" else first.group)
    metrics = list(dict.fromkeys([*(first.a or {}), *(first.b or {})]))
    rows: list[dict[str, Any]] = []
    if first.policy_a or first.policy_b:
        rows.append({"metric": "policy_id", "A": _fmt(first.policy_a), "B": _fmt(first.policy_b),
                     "B - A": ""})
    for m in metrics:
        a = (first.a or {}).get(m)
        b = (first.b or {}).get(m)
        delta = b - a if isinstance(a, int | float) and isinstance(b, int | float) else None
        rows.append({"metric": m, "A": _fmt(a), "B": _fmt(b), "B - A": _fmt(delta)})
    print_table(rows, title=f"summary, {label}:")
    rest = pairs[1:]
    if rest:
        click.echo("")
        print_table([{"caller": p.group, "policy A": _fmt(p.policy_a),
                      "policy B": _fmt(p.policy_b),
                      "median bps A": _fmt((p.a or {}).get("median_return_bps")),
                      "median bps B": _fmt((p.b or {}).get("median_return_bps")),
                      "trades A": _fmt((p.a or {}).get("trades_count")),
                      "trades B": _fmt((p.b or {}).get("trades_count"))} for p in rest],
                    title="summary per caller:")


def _change_row(ch: Any, artifact: str) -> dict[str, Any]:
    row: dict[str, Any] = {"call_id": ch.call_id}
    if ch.policy_id is not None:
        row["policy_id"] = ch.policy_id
    row["caller"] = ch.caller_name or ""
    row["change"] = ch.change
    a, b = ch.a or {}, ch.b or {}
    if artifact == "trades":
        row.update({"exit A": _fmt(a.get("exit_reason")), "exit B": _fmt(b.get("exit_reason")),
                    "bps A": _fmt(a.get("realized_return_bps")),
                    "bps B": _fmt(b.get("realized_return_bps")),
                    "delta bps": _fmt(ch.delta_bps)})
    else:
        for col in ("hit_2x", "peak_multiple"):
            row[f"{col} A"] = _fmt(a.get(col))
            row[f"{col} B"] = _fmt(b.get(col))
        row["differs"] = ",".join(ch.differs)
    return row


@backtest.command("report")
@click.argument("run_id")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="HTML file to write (default: report-<run_id>.html in the current folder).")
@base_dir_option
@duckdb_option
@click.option("--top", type=click.IntRange(min=1), default=15, show_default=True,
              help="Frontier rows shown per caller group.")
def report(run_id: str, out: str | None, base_dir: str, duckdb_path: str, top: int) -> None:
    """Write a self-contained HTML report of one run (tables and embedded plots)."""
    from quantbot.analysis.report import write_report

    path = write_report(run_id, out, catalog=duckdb_path, base_dir=base_dir, top_n=top)
    click.echo(str(path))


_PORTFOLIO_COLUMNS = ("policy_id", "caller_name", "trades_taken", "skipped_signals",
                      "final_equity", "total_return", "annualised_return", "max_drawdown",
                      "sharpe", "sortino", "win_rate", "profit_factor")


@backtest.command("portfolio")
@click.argument("run_id")
@portfolio_option
@base_dir_option
@duckdb_option
@format_option("table", "json")
def portfolio_cmd(run_id: str, portfolio: str | None, base_dir: Any, duckdb_path: str,
                  fmt: str) -> None:
    """Follow a completed run's trades as one account: equity metrics per caller and pooled
    (what-if: another capital, size or concurrency limit, without running the backtest)."""
    from quantbot.backtest.flows.portfolio_step import run_portfolio

    books = run_portfolio(run_id, portfolio, catalog=duckdb_path, base_dir=base_dir)
    rows = [{k: v for k, v in book.items() if k != "curve"} for book in books]
    if fmt == "json":
        print_json(rows)
        return
    calls = f" (trades on {rows[0]['calls']} calls)" if rows else ""
    print_table([{k: ("(pooled)" if k == "caller_name" and r[k] is None else r[k])
                  for k in _PORTFOLIO_COLUMNS} for r in rows],
                title=f"portfolio of {run_id}{calls}")
