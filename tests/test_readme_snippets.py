"""The README's Python snippets run verbatim (on a folder with one cataloged path-only run)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pyarrow as pa
import pytest
from qbtest import make_run, rows

from quantbot.artifacts import catalog_all_runs

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_has_python_snippets():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_snippet_runs_verbatim(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_run("runs", "path-only", artifacts={"paths": rows("paths", 3)})
    catalog_all_runs(catalog="data/backtest_catalog.duckdb", base_dir="runs")
    namespace = {"trades_df": pa.Table.from_pylist(rows("trades", 3))}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the README shows current forms
        exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), namespace)
