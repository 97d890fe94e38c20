"""Hostile caller names through the CLI (hardening issue item 17): a real run whose alerts
carry them, registered in a real catalog, printed as table, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json

import pytest
from qbtest import alert_row, make_run, run_cli

DB = "data/backtest_catalog.duckdb"
NAMES = {
    "call-0": "\x1b[31mred\x1b[0m",
    "call-1": "nul\x00byte",
    "call-2": "two\nlines\r\nhere",
    "call-3": '=HYPERLINK("http://evil.example","click")',
    "call-4": "+cmd|' /C calc'!A0",
    "call-5": "-2+3",
    "call-6": "@SUM(1+1)",
    "call-7": "\tTAB",
    "call-8": "del\x7f c1\x9b bidi\u202e",
    "call-9": "-1.5",
    "call-10": "plain alice",
}
SQL = ("SELECT call_id, caller_name, -1.5::DOUBLE AS neg, -7 AS neg_int FROM all_alerts "
       "ORDER BY length(call_id), call_id")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("escaping")
    alerts = [alert_row(i, call_id=cid, caller_name=name)
              for i, (cid, name) in enumerate(NAMES.items())]
    make_run(root / "runs", "path-only", artifacts={"alerts": alerts, "errors": []})
    proc = run_cli("backtest", "catalog-sync", "--base-dir", "runs", "--duckdb", DB, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root


def _sql(root, fmt: str) -> str:
    proc = run_cli("backtest", "sql", SQL, "--duckdb", DB, "--format", fmt, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_table_output_shows_control_characters_as_escapes(workspace):
    out = _sql(workspace, "table")
    lines = out.splitlines()
    assert len(lines) == 2 + len(NAMES)  # header, rule, one line per row: no broken layout
    for bad in ("\x1b", "\x00", "\x7f", "\x9b", "\u202e"):
        assert bad not in out
    assert "\\x1b[31mred\\x1b[0m" in out
    assert "nul\\x00byte" in out
    assert "two\\nlines\\r\\nhere" in out
    assert "del\\x7f c1\\x9b bidi\\u202e" in out
    assert "\\tTAB" in out


def test_csv_output_neutralises_formulas_and_keeps_numbers(workspace):
    got = list(csv.DictReader(io.StringIO(_sql(workspace, "csv"))))
    by_id = {r["call_id"]: r for r in got}
    assert by_id["call-3"]["caller_name"] == "'" + NAMES["call-3"]
    for cid in ("call-4", "call-5", "call-6", "call-7"):
        assert by_id[cid]["caller_name"] == "'" + NAMES[cid]
    assert by_id["call-9"]["caller_name"] == "-1.5"  # a number, not a formula
    assert by_id["call-10"]["caller_name"] == "plain alice"
    # csv quoting keeps it exact (the pipe's text mode turns \r\n into \n)
    assert by_id["call-2"]["caller_name"] == NAMES["call-2"].replace("\r\n", "\n")
    assert {r["neg"] for r in got} == {"-1.5"} and {r["neg_int"] for r in got} == {"-7"}


def test_json_output_stays_exact(workspace):
    got = json.loads(_sql(workspace, "json"))
    assert {r["call_id"]: r["caller_name"] for r in got} == NAMES
    assert {r["neg"] for r in got} == {-1.5}
