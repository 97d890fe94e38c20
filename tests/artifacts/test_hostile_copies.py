"""A run id in two month partitions, an edited manifest, and the watcher facing hostile
runs: reported, never registered silently, never stopping anything."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

from qbtest import QUANTBOT, make_run

from .test_hostile_runs import manifest_is_a_fifo, run_child, run_folder_is_a_link


def test_a_run_id_in_two_months_is_invalid_in_both(base_dir: Path, tmp_path: Path) -> None:
    other = make_run(base_dir)
    run = make_run(base_dir, parameters={"strategy_id": "s1"})
    copy = base_dir / "2020-01" / Path(run.path).name
    shutil.copytree(run.path, copy)
    manifest = json.loads((copy / "run.json").read_text())
    manifest["parameters"]["strategy_id"] = "edited"
    (copy / "run.json").write_text(json.dumps(manifest))
    out = run_child(base_dir, tmp_path / "cat.duckdb")
    assert out["sync"]["registered"] == 1  # only the other run
    [invalid] = out["sync"]["invalid"]
    assert "more than one month" in invalid["reason"]
    assert run.path in invalid["reason"] and str(copy) in invalid["reason"]
    dup = [p for p in out["verify"]["problems"] if "more than one month" in p["problem"]]
    assert sorted(p["path"] for p in dup) == sorted([run.path, str(copy)])
    assert all(p["run_id"] != other.run_id for p in out["verify"]["problems"])


def test_verify_recomputes_config_hash(base_dir: Path, tmp_path: Path) -> None:
    clean = make_run(base_dir, parameters={"strategy_id": "s1", "x": {"a": [1, 2.5]}})
    edited = make_run(base_dir, parameters={"strategy_id": "s1"})
    path = Path(edited.path) / "run.json"
    manifest = json.loads(path.read_text())
    manifest["parameters"]["strategy_id"] = "s2"  # config_hash left as it was
    path.write_text(json.dumps(manifest))
    problems = run_child(base_dir, tmp_path / "cat.duckdb")["verify"]["problems"]
    [problem] = problems
    assert problem["run_id"] == edited.run_id and problem["path"] == str(path)
    assert "config_hash" in problem["problem"]
    assert clean.run_id not in json.dumps(problems)


def test_watch_keeps_running_past_hostile_runs(tmp_path: Path) -> None:
    base = tmp_path / "runs"
    good = make_run(base)
    fifo, link = make_run(base), make_run(base)
    manifest_is_a_fifo(Path(fifo.path))
    run_folder_is_a_link(Path(link.path))
    proc = subprocess.Popen(
        [QUANTBOT, "backtest", "catalog-watch", "--base-dir", "runs", "--duckdb", "cat.duckdb",
         "--debounce-ms", "100"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    seen: list[str] = []
    all_reported = threading.Event()
    later: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if " started: " in line:  # the watcher is up: add a run meanwhile
                later.append(make_run(base).run_id)
            # a rescan prints its registered runs first, then the invalid ones: wait for all
            text = "".join(seen)
            if later and all(f"registered {r}" in text for r in (later[0], good.run_id)) \
                    and all(f"run_id={r}" in text for r in (fifo.run_id, link.run_id)):
                all_reported.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert all_reported.wait(60), (seen, proc.poll())
        assert proc.poll() is None  # still watching
        text = "".join(seen)
        invalid = [line for line in seen if " invalid " in line]
        assert any(fifo.run_id in line and "run.json" in line for line in invalid), text
        assert any(link.run_id in line and "symbolic link" in line for line in invalid), text
        assert any(good.run_id in line for line in seen if " registered " in line), text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
    assert os.path.islink(link.path)  # nothing was "repaired"
