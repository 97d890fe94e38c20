"""Runs started from the CLI tee the process's stdout/stderr into logs/; API runs do not
touch the caller's streams."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from qbtest import run_cli

from quantbot.artifacts import read_manifest
from quantbot.backtest import run_policy_backtest, write_sample_data

INPUTS = ("--alerts", "data/alerts.parquet", "--candles", "data/candles.parquet")
POLICY = '{"kind":"fixed_stop","stop_pct":0.2}'


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("work")
    write_sample_data(out / "data", n_alerts=40)
    return out


@pytest.mark.parametrize("command", [("run", "path-only"), ("run", "policy", "--policy", POLICY)])
def test_cli_run_writes_logs(command, sample):
    proc = run_cli("backtest", *command, *INPUTS, "--no-durable", cwd=sample)
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(sample, proc.stdout.split("directory")[1].split()[0])
    run_id = read_manifest(run_dir).run_id
    stdout_log = (run_dir / "logs" / "stdout.txt").read_text()
    assert stdout_log == f"started {command[1]} run {run_id}\n"  # what it printed meanwhile
    assert proc.stdout.startswith(stdout_log)  # and the user saw it too (tee)
    assert (run_dir / "logs" / "stderr.txt").read_text() == ""
    assert read_manifest(run_dir).logs.model_dump() == {"stdout": "logs/stdout.txt",
                                                       "stderr": "logs/stderr.txt"}


def test_cli_rerun_writes_logs_and_json_stdout_stays_json(sample):
    first = run_cli("backtest", "run", "path-only", *INPUTS, "--no-durable", "--format", "json",
                    cwd=sample)
    assert first.returncode == 0 and not first.stderr, first.stderr
    original = json.loads(first.stdout)
    assert (Path(sample, original["run_dir"]) / "logs" / "stdout.txt").read_text() == ""
    again = run_cli("backtest", "rerun", original["run_id"], "--no-durable", cwd=sample)
    assert again.returncode == 0, again.stderr
    new_dir = Path(sample, again.stdout.split("directory")[1].split()[0])
    assert (new_dir / "logs" / "stdout.txt").read_text().startswith("started path-only run ")


def test_api_run_leaves_the_callers_streams_alone(sample, tmp_path):
    streams = (sys.stdout, sys.stderr)
    fds = [os.fstat(fd) for fd in (1, 2)]
    seen = []

    def progress(label: str) -> None:  # during the run: fd 1 and 2 are what they were
        seen.append([(s.st_dev, s.st_ino) for s in map(os.fstat, (1, 2))])

    result = run_policy_backtest(sample / "data/alerts.parquet", sample / "data/candles.parquet",
                                 POLICY, base_dir=tmp_path, durable=False, progress=progress)
    assert (sys.stdout, sys.stderr) == streams
    assert seen and all(s == [(f.st_dev, f.st_ino) for f in fds] for s in seen)
    assert not (Path(result.run_dir) / "logs").exists()
    assert read_manifest(result.run_dir).logs is None
