"""docs/flows.md "Bring your own data": the worked examples run as written.

Each ```bash block runs in an empty folder through bash with the venv's ``quantbot`` and
``python`` first on PATH (as after activating it) and the sources under test importable; every ``quantbot backtest run`` in it must
leave one completed run under ``runs/``. The section's ```python block runs verbatim too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import quantbot
from quantbot.artifacts import is_complete, read_manifest

FLOWS = Path(__file__).resolve().parents[1] / "docs" / "flows.md"
SECTION = re.search(r"^## Bring your own data\n(.*?)(?=^## |\Z)",
                    FLOWS.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE)
TEXT = SECTION.group(1) if SECTION else ""
BASH = re.findall(r"```bash\n(.*?)```", TEXT, re.DOTALL)
PYTHON = re.findall(r"```python\n(.*?)```", TEXT, re.DOTALL)
VENV_BIN = str(Path(sys.executable).parent)
SOURCES = str(Path(quantbot.__file__).resolve().parents[1])  # the quantbot these tests import


def test_the_section_has_three_worked_examples():
    assert SECTION, "docs/flows.md has no '## Bring your own data' section"
    assert len(BASH) == 3 and len(PYTHON) == 1
    for needle in ("sample-data", "--symbol GOOG", "--tz "):
        assert sum(needle in block for block in BASH) == 1, needle


def _runs(base: Path) -> list[Path]:
    return sorted(base.rglob("run_id=*"))


@pytest.mark.parametrize("index", range(len(BASH)))
def test_worked_example_runs_as_written(index, tmp_path):
    env = {**os.environ, "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
           "PYTHONPATH": SOURCES}
    for name in ("QUANTBOT_BASE_DIR", "QUANTBOT_CATALOG", "QUANTBOT_DEBUG"):
        env.pop(name, None)
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", BASH[index]], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    runs = _runs(tmp_path / "runs")
    assert len(runs) == BASH[index].count("quantbot backtest run "), runs
    for run in runs:
        assert is_complete(run) and read_manifest(run).status == "completed", run


def test_python_example_runs_verbatim(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUANTBOT_BASE_DIR", raising=False)
    namespace: dict[str, object] = {}
    exec(compile(PYTHON[0], "docs/flows.md python block", "exec"), namespace)
    (run,) = _runs(tmp_path / "runs")
    assert is_complete(run) and namespace["result"].status == "completed"
