"""The run report wraps its fields at a terminal's width, between parts, under the first
part; output that is not a terminal (a pipe, a log) keeps each field on one line. The
terminal is a real pseudo-terminal, its width ``COLUMNS``."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pytest
from qbtest import QUANTBOT, run_main

import quantbot

SOURCES = str(Path(quantbot.__file__).resolve().parents[1])  # the quantbot under test
GOOG_CSV = Path(__import__("backtesting.test", fromlist=["_"]).__file__).parent / "GOOG.csv"
POLICY = ["--policy", '{"kind": "fixed_stop", "stop_pct": 0.05}', "--taker-fee-bps", "1",
          "--slippage-bps", "2"]
ARGS = ["--candles", "GOOG.csv", "--symbol", "GOOG", "--interval", "1d", "--horizon", "10d",
        "--levels", "1.05,1.1,1.2,1.5,2,3", "--entry", "next-open"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "GOOG.csv").write_text("Date" + GOOG_CSV.read_text(encoding="utf-8"),
                                       encoding="utf-8")
    (tmp_path / "alerts.csv").write_text(
        "id,alert_time,caller\ng1,2006-05-09 21:05:00,ana\ng2,2010-03-05 21:05:00,bo\n",
        encoding="utf-8")
    (tmp_path / "weekday.csv").write_text("id,alert_time,caller\ng1,2006-05-09 21:05:00,ana\n",
                                          encoding="utf-8")
    return tmp_path


def _on_terminal(folder: Path, columns: int, *args: str) -> list[str]:
    """The CLI's stdout on a pseudo-terminal ``columns`` wide (its lines, CR LF undone)."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "QUANTBOT_DEBUG"}
    env.update(COLUMNS=str(columns), PYTHONPATH=SOURCES)
    with subprocess.Popen([QUANTBOT, *args], cwd=folder, stdout=slave,
                          stderr=subprocess.PIPE, env=env) as proc:
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        stderr = proc.stderr.read() if proc.stderr else b""
    os.close(master)
    assert proc.returncode == 0, stderr
    return b"".join(chunks).decode().replace("\r\n", "\n").splitlines()[1:]


def _piped(folder: Path, *args: str) -> list[str]:
    proc = run_main(*args, cwd=folder, env={"COLUMNS": "50"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()[1:]  # after "started ... run <id>"


def _fields(lines: list[str]) -> dict[str, str]:
    """Label -> the field's text, continuation lines joined back."""
    out: dict[str, str] = {}
    label = ""
    for line in lines[1:]:
        if line[2:13].strip():
            label = line[2:13].strip()
            out[label] = line[13:]
        else:
            out[label] += " " + line[13:]
    return out


@pytest.mark.parametrize("columns", [50, 80])
@pytest.mark.parametrize("alerts, flow", [("alerts.csv", ["policy", *POLICY]),
                                          ("weekday.csv", ["path-only"])])
def test_fields_wrap_within_the_width_and_say_the_same(folder, columns, alerts, flow):
    args = ["backtest", "run", *flow, "--alerts", alerts, *ARGS]
    wide, narrow = _piped(folder, *args), _on_terminal(folder, columns, *args)
    ids = ("run ", "  directory")  # a run id and its folder do not break
    assert all(len(line) <= columns for line in narrow if not line.startswith(ids)), narrow
    assert len(narrow) > len(wide)
    one, wrapped = _fields(wide), _fields(narrow)
    assert one.keys() == wrapped.keys() >= {"calls", "setup", "timing"}
    for label in one.keys() - {"timing", "directory"}:
        assert " ".join(one[label].split()) == " ".join(wrapped[label].split()), label
    phases = [[part.split()[0] for part in f["timing"].split(", ")] for f in (one, wrapped)]
    assert phases[0] == phases[1] and phases[0][-1] == "total"


def test_output_that_is_no_terminal_keeps_each_field_on_one_line(folder):
    lines = _piped(folder, "backtest", "run", "policy", *POLICY, "--alerts", "alerts.csv", *ARGS,
                   "--max-entry-delay", "2d")
    assert [line[2:13].strip() for line in lines[1:]] == [
        "directory", "calls", "note", "setup", "policy", "trades", "portfolio", "timing"]
    assert ("  note       1 alert(s) wait longer than --max-entry-delay 2d for their entry "
            "candle (holes in the data?); a longer limit, or none, enters them") in lines
    assert "  calls      2  eligible 1  excluded 1 (late_entry 1)" in lines
    assert ("  setup      1d bars, horizon 10d, entry next-open, fees 1 + slippage 2 bps per "
            "side, levels 1.05x, 1.1x, 1.2x, 1.5x, 2x, 3x, max entry delay 2d") in lines


def test_the_default_entry_delay_waits_out_a_weekend(folder):
    """The Friday-evening alert waits ~51 h for Monday's bar: the data's usual gap (the
    weekend's 3 days, seen in both windows) plus one bar allows it, and the report says so."""
    lines = _piped(folder, "backtest", "run", "policy", *POLICY, "--alerts", "alerts.csv", *ARGS)
    assert "  calls      2  eligible 2  excluded 0" in lines
    assert not any(line.startswith("  note") for line in lines)
    assert any(line.startswith("  setup") and line.endswith(", max entry delay 4d")
               for line in lines), lines
