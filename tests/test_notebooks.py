"""Every notebook runs top to bottom, and is committed with the outputs of such a run.

The outputs are stored by ``make notebooks-run`` (``notebooks/execute.py``); a notebook committed
without them (stripped), or with outputs that hold a traceback or a directory of the machine that
ran it, fails here.
"""

import ast
import importlib.util
import time
from pathlib import Path

import nbformat
import pytest

FOLDER = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))

_spec = importlib.util.spec_from_file_location("notebook_execute", FOLDER / "execute.py")
execute = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path):
    t0 = time.perf_counter()
    nb = execute.execute(path, timeout=300)          # a fresh run (the file is not written)
    assert time.perf_counter() - t0 < 300
    assert execute.output_problems(nb) == []


SILENT_CALLS = {"set_option"}
"""Functions that return None (a cell ending in a call of one shows nothing)."""


def _shows_something(source: str) -> bool:
    """Whether a cell ends in an expression, whose value (or what it prints or draws) Jupyter shows.

    A cell ending in an assignment, an import or a loop shows nothing by itself; ``;`` hides a value.
    """
    body = ast.parse(source).body
    if not body or not isinstance(body[-1], ast.Expr) or source.rstrip().endswith(";"):
        return False
    value = body[-1].value
    name = getattr(value.func, "attr", getattr(value.func, "id", None)) if isinstance(value, ast.Call) else None
    return name not in SILENT_CALLS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_with_its_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), \
        "outputs stripped or not from one run top to bottom: run `make notebooks-run`"
    for i, cell in enumerate(code):
        if _shows_something(cell.source):
            assert cell.outputs, f"code cell {i + 1} ends in an expression but has no output: run `make notebooks-run`"
    assert any(cell.outputs for cell in code)
    assert execute.output_problems(nb) == []
    for cell in code:
        for output in cell.outputs:
            images = [k for k in output.get("data", {}) if k.startswith("image/")]
            assert images in ([], ["image/png"]), images        # plots stored as PNG only


def test_plots_are_stored():
    nbs = [nbformat.read(p, as_version=4) for p in NOTEBOOKS]
    pngs = [o for nb in nbs for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if "image/png" in o.get("data", {})]
    assert len(pngs) >= 3


def test_the_output_check_finds_paths_and_tracebacks():
    ok = nbformat.v4.new_output("stream", name="stdout", text="Only 4 episodes received mazl\n")
    bad = [nbformat.v4.new_output("stream", name="stderr", text="/work/x/returns.py:118: ConvergenceWarning: CoxPH\n"),
           nbformat.v4.new_output("execute_result", data={"text/plain": "PosixPath('/tmp/tmpab12/report')"},
                                  execution_count=1),
           nbformat.v4.new_output("display_data", data={"text/html": "<pre>/home/someone/data</pre>"}),
           nbformat.v4.new_output("stream", name="stderr", text="Traceback (most recent call last):\n"),
           nbformat.v4.new_output("error", ename="ValueError", evalue="x", traceback=["ValueError: x"])]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[ok])])
    assert execute.output_problems(nb) == []
    for output in bad:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[ok, output])])
        assert len(execute.output_problems(nb)) == 1, output
