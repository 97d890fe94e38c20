"""examples/analysis.ipynb runs clean, top to bottom, and draws its plots.

The kernel is this interpreter (a kernel spec written into tmp_path), so the test works in
a fresh venv with no ``ipykernel install`` step and never picks up another Python's kernel.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _kernel_manager(tmp_path: Path) -> KernelManager:
    spec_dir = tmp_path / "kernels" / "quantbot-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "quantbot test", "language": "python"}))
    ksm = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name="quantbot-test", kernel_spec_manager=ksm)


def test_analysis_notebook_runs(tmp_path: Path) -> None:
    work = tmp_path / "work"  # a fresh folder: the notebook finds the grid next to itself
    work.mkdir()
    shutil.copy(EXAMPLES / "small_grid.json", work / "small_grid.json")
    nb = nbformat.read(EXAMPLES / "analysis.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "store the notebook without outputs"
    client = NotebookClient(nb, km=_kernel_manager(tmp_path), timeout=120,
                            resources={"metadata": {"path": str(work)}})
    try:
        client.execute()
    except CellExecutionError as err:
        pytest.fail(f"notebook cell failed:\n{str(err)[-3000:]}")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, f"expected >= 3 plots (frontier, returns, daily), got {len(images)}"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "registered 7, invalid 0" in text
    assert "max spread of a caller's 2x hit rate: 0.0" in text
