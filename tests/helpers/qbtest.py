"""Test helpers: valid sample rows for every artifact type, run factories, CLI runners.

Two ways to run the CLI, same arguments, same result (a ``subprocess.CompletedProcess``):
``run_main`` calls ``quantbot.cli.main`` in this process (milliseconds; the one-line error
handling users see is in ``main``, so it is what tests go through), ``run_cli`` starts the
installed console script (about a second of interpreter and import start-up each). Use
``run_cli`` only where the real process is the point: its exit status, a traceback, signals,
a lock held by another process, or proving that a command's entry point works.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

QUANTBOT = str(Path(sys.executable).parent / "quantbot")
HELPERS_DIR = Path(__file__).parent


def trade_row(i: int = 0, **over: Any) -> dict[str, Any]:
    row = {
        "policy_id": "p1", "call_id": f"call-{i}", "entry_ts_ms": 1_700_000_000_000 + i,
        "entry_px": 1.0 + i, "exit_ts_ms": 1_700_000_060_000 + i, "exit_px": 1.5 + i,
        "exit_reason": "take_profit", "realized_return_bps": 100.0 + i, "stop_out": False,
        "max_adverse_excursion_bps": -10.0, "time_exposed_ms": 60_000, "tail_capture": 0.5,
        "side": "long",
    }
    row.update(over)
    return row


def alert_row(i: int = 0, **over: Any) -> dict[str, Any]:
    row = {"call_id": f"call-{i}", "mint": f"mint-{i}", "caller_name": "alice", "chain": "solana",
           "alert_ts_ms": 1_700_000_000_000 + i, "created_at": "2023-11-14T22:13:20Z",
           "side": "long"}
    row.update(over)
    return row


def path_row(i: int = 0, **over: Any) -> dict[str, Any]:
    row = {"call_id": f"call-{i}", "caller_name": "alice", "mint": f"mint-{i}", "chain": "solana",
           "interval": "1m", "alert_ts_ms": 1_700_000_000_000 + i, "p0": 1.0, "hit_2x": True,
           "t_2x_ms": 1_700_000_100_000, "hit_3x": False, "t_3x_ms": None, "hit_4x": False,
           "t_4x_ms": None, "dd_bps": -50.0, "dd_to_2x_bps": -20.0,
           "alert_to_activity_ms": 60_000, "peak_multiple": 2.5, "side": "long"}
    row.update(over)
    return row


def feature_row(i: int = 0, **over: Any) -> dict[str, Any]:
    row = {"call_id": f"call-{i}", "vol_pre_alert": 0.1, "volume_spike": 2.0,
           "caller_prior_calls": i, "caller_prior_hit_2x_rate": 0.5}
    row.update(over)
    return row


def summary_row(i: int = 0, **over: Any) -> dict[str, Any]:
    row = {"policy_id": f"p{i}", "caller_name": None, "calls_processed": 10, "calls_excluded": 1,
           "trades_count": 9, "avg_return_bps": 10.0, "median_return_bps": 5.0,
           "p25_return_bps": -5.0, "p75_return_bps": 20.0, "p90_return_bps": 40.0,
           "stop_out_rate": 0.1, "avg_max_adverse_excursion_bps": -30.0,
           "avg_time_exposed_ms": 1000.0, "median_time_exposed_ms": 900.0,
           "avg_tail_capture": 0.3, "median_tail_capture": 0.2}
    row.update(over)
    return row


def frontier_row(i: int = 0, **over: Any) -> dict[str, Any]:
    row = {"caller_name": "*", "policy_id": f"p{i}", "policy_params": '{"kind":"fixed_stop"}',
           "meets_constraints": True, "objective_score": 1.5, "avg_return_bps": 10.0,
           "median_return_bps": 5.0, "stop_out_rate": 0.1, "p95_drawdown_bps": -100.0,
           "avg_time_exposed_ms": 1000.0, "trades_count": 9, "rank": i + 1}
    row.update(over)
    return row


def error_row(i: int = 0, **over: Any) -> dict[str, Any]:
    row = {"timestamp": "2023-11-14T22:13:20Z", "level": "warning", "phase": "coverage",
           "call_id": f"call-{i}", "message": "too_new", "details": None}
    row.update(over)
    return row


def equity_row(i: int = 0, **over: Any) -> dict[str, Any]:
    row = {"policy_id": "p1", "caller_name": None, "split": "all",
           "ts_ms": 1_700_000_000_000 + i, "equity": 100_000.0 + i, "cash": 99_000.0,
           "exposure": 0.01, "open_positions": 1, "drawdown": 0.0}
    row.update(over)
    return row


ROW_FACTORIES = {
    "alerts": alert_row, "paths": path_row, "features": feature_row, "trades": trade_row,
    "summary": summary_row, "frontier": frontier_row, "errors": error_row,
    "equity": equity_row,
}


def rows(kind: str, n: int, **over: Any) -> list[dict[str, Any]]:
    return [ROW_FACTORIES[kind](i, **over) for i in range(n)]


def make_run(base_dir: Any, run_type: str = "policy", *, artifacts: dict[str, Any] | None = None,
             fail: bool = False, complete: bool = True, parameters: dict[str, Any] | None = None,
             dataset: dict[str, Any] | None = None, run_id: str | None = None) -> Any:
    """A run written through the public API (not durable, no git: fast)."""
    from quantbot.artifacts import create_run_directory

    run = create_run_directory(run_type, run_id=run_id, base_dir=base_dir, durable=False, git=False,
                               parameters=parameters, dataset=dataset)
    if artifacts is None:
        artifacts = {"trades": rows("trades", 3), "errors": []}
    for kind, data in artifacts.items():
        run.write_artifact(kind, data)
    if fail:
        run.mark_failure(RuntimeError("boom"))
    elif complete:
        run.mark_success()
    return run


def sha256_file(path: Any) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot_tree(root: Any) -> dict[str, str]:
    """Relative path -> sha256 of every file below ``root``."""
    root = Path(root)
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def catalog_dump(db: Any) -> dict[str, Any]:
    """Everything a user can see in a catalog, minus cataloged_at: for before/after checks."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        out: dict[str, Any] = {}
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema='main' "
            "AND table_type='BASE TABLE' ORDER BY 1").fetchall()]
        for t in tables:
            cols = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name=? "
                "ORDER BY ordinal_position", [t]).fetchall() if r[0] != "cataloged_at"]
            sel = ", ".join(f'"{c}"' for c in cols)
            out[t] = sorted(map(repr, con.execute(f'SELECT {sel} FROM "{t}"').fetchall()))
        return out
    finally:
        con.close()


def catalog_fingerprint(db: Any) -> dict[str, Any]:
    """Row count and an order-independent hash of every table: a cheap before/after check."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema='main' "
            "AND table_type='BASE TABLE' ORDER BY 1").fetchall()]
        return {t: con.execute(f'SELECT count(*), bit_xor(hash(x)) FROM "{t}" x').fetchone()
                for t in tables}
    finally:
        con.close()


def run_cli(*args: str, cwd: Any, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The installed console script in a real subprocess (QUANTBOT_DEBUG unset)."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("QUANTBOT_DEBUG", None)
    return subprocess.run([QUANTBOT, *args], check=False, cwd=cwd, capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def run_main(*args: str, cwd: Any,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``quantbot.cli.main(args)`` in this process with cwd and env as given, stdin empty.

    stdout and stderr are captured separately (click's CliRunner isolation). The working
    directory is restored afterwards. A command must not change ``os.environ`` (a library
    caller's process would keep the change): if it does, the change is undone and the call
    fails, naming the variables. An exception ``main`` lets through (only with --debug)
    propagates: a traceback is a subprocess test's business.
    """
    from click.testing import CliRunner

    from quantbot.cli import main

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    try:
        os.chdir(cwd)
        with CliRunner().isolation(env={"QUANTBOT_DEBUG": None, **(env or {})}) as (out, err, _):
            try:
                main(list(args))
                code: object = 0
            except SystemExit as exc:  # main always ends in one, like the console script
                code = exc.code
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            status = code if isinstance(code, int) else 0 if code is None else 1
            result = subprocess.CompletedProcess(list(args), status,
                                                 out.getvalue().decode("utf-8", "replace"),
                                                 err.getvalue().decode("utf-8", "replace"))
    finally:
        os.chdir(saved_cwd)
        leaked = sorted(k for k in saved_env.keys() | os.environ.keys()
                        if saved_env.get(k) != os.environ.get(k))
        os.environ.clear()
        os.environ.update(saved_env)
    assert not leaked, f"quantbot {' '.join(args)} changed os.environ: {leaked}"
    return result


def assert_clean_error(proc: subprocess.CompletedProcess[str], code: int = 1, contains: str | None = None) -> str:
    """Non-zero exit, exactly one line on stderr starting with 'error:', no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:"), proc.stderr
    if contains is not None:
        assert contains.lower() in lines[0].lower(), lines[0]
    return lines[0]


def assert_usage_error(proc: subprocess.CompletedProcess[str], contains: str | None = None) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "Error:" in proc.stderr or "error:" in proc.stderr, proc.stderr
    if contains is not None:
        assert contains in proc.stderr, proc.stderr


def values_equal(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (floats), recursively for lists."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


def read_parquet(path: Any) -> Any:
    return pq.read_table(path)


def load_json(text: str) -> Any:
    return json.loads(text)


def serve_forks(write_forever: Any) -> None:
    """A zygote's loop on stdin: imports and data are paid once by the caller; each "go"
    line forks a fresh writer (a real process, killable by pid) running ``write_forever()``
    (words after "go" are passed to it as arguments); each "reap PID" line waits for it and
    answers "reaped <wait status>"."""
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "go":
            pid = os.fork()
            if pid == 0:
                try:
                    write_forever(*cmd[1:])
                finally:
                    os._exit(1)
        elif cmd[0] == "reap":
            _, status = os.waitpid(int(cmd[1]), 0)
            print(f"reaped {status}", flush=True)
        else:
            return


def unavailable(reason: str) -> None:
    """A tool or facility a test needs is missing: skip on a developer's machine, fail under
    CI (``CI=true``), where the Makefile installs everything a test needs."""
    import os

    import pytest

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)

