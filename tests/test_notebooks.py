"""The notebooks run top to bottom (so they cannot rot) and are committed without outputs.

A task notebook's first code cell is tagged `parameters` (the papermill convention) and chooses
its `run_dir`. The test runs the notebook as written but on a copy of the tiny run the task tests
also use (`tiny_run`, trained once per pytest run): `loop.train` then resumes a finished run and
every later cell evaluates, plots and exports it, with the notebook's own checks.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
TRAINED_RUN = {
    "02_sentiment.ipynb": "sentiment",
    "03_translation.ipynb": "translation",
    "04_speech.ipynb": "speech",
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stripped(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name}: commit notebooks without outputs"
            )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, tiny_run):
    nb = nbformat.read(path, as_version=4)
    if path.name in TRAINED_RUN:
        run_dir = tiny_run(TRAINED_RUN[path.name], tmp_path / "run")
        inject_after_parameters(nb, f"run_dir = Path({str(run_dir)!r})")
    env_backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"
    try:
        client = NotebookClient(
            nb,
            timeout=900,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        )
        # The kernel must be this interpreter (the project's virtualenv), whatever the
        # machine's default "python3" kernel is.
        client.kernel_manager_class = _kernel_manager_for(sys.executable)
        client.execute()
    finally:
        if env_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = env_backend


def inject_after_parameters(nb, source: str) -> None:
    """Inserts a code cell with `source` after the cell tagged `parameters` (there must be one)."""
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "a task notebook needs exactly one cell tagged 'parameters'"
    nb.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(source))


def _kernel_manager_for(python: str):
    from jupyter_client.manager import KernelManager

    class ThisPythonKernel(KernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            return [python, "-m", "ipykernel_launcher", "-f", self.connection_file]

    return ThisPythonKernel
