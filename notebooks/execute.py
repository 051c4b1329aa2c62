"""Run the notebooks top to bottom and store their outputs in place (``make notebooks-run``).

::

    python notebooks/execute.py                      # every notebook in notebooks/
    python notebooks/execute.py notebooks/05_*.ipynb  # some of them

Each notebook runs in a fresh ``python3`` kernel started in ``notebooks/`` (as
``tests/test_notebooks.py`` runs them), with ``PYTHONHASHSEED`` fixed so that a rerun gives the
same outputs (the notebooks seed their own simulations), plots stored as PNG and a time limit per
cell. A notebook whose run fails is left as it was. Outputs that name a directory of this machine
or hold a traceback are refused: the notebooks are committed with their outputs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIMEOUT = 300
"""Seconds a cell may run (the limit ``tests/test_notebooks.py`` uses)."""

SEED = "0"
"""``PYTHONHASHSEED`` of the kernels."""


def execute(path: Path, timeout: int = TIMEOUT):
    """The notebook at ``path`` run top to bottom (not written)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   extra_arguments=["--InlineBackend.figure_formats=png"],      # plots as PNG, whatever the profile
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


MACHINE_PATH = re.compile(r"(?<![\w.])(/home/|/work/|/tmp/|/root/|/Users/|/private/var/|/var/folders/|"
                          r"[A-Za-z]:\\Users\\|site-packages)")
"""A directory of the machine that ran a notebook (or of its Python installation)."""


def output_text(output) -> str:
    """The text of one output (streams, text and HTML representations, errors); not images."""
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join([output.get("ename", ""), output.get("evalue", ""), *output.get("traceback", [])])
    data = output.get("data", {})
    return "\n".join(v if isinstance(v, str) else "".join(v) for k, v in data.items() if not k.startswith("image/"))


def output_problems(nb) -> list[str]:
    """What makes a notebook's outputs unfit to commit: an error, a traceback, a machine's directory."""
    found = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = output_text(output)
            if output.get("output_type") == "error" or "Traceback" in text:
                found.append(f"cell {i}: an error or traceback")
            match = MACHINE_PATH.search(text)
            if match:
                found.append(f"cell {i}: a directory of this machine ({match.group(0)!r})")
    return list(dict.fromkeys(found))


def main(argv: list[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all in notebooks/)")
    parser.add_argument("--timeout", type=int, default=TIMEOUT, help="seconds a cell may run")
    args = parser.parse_args(argv)
    os.environ["PYTHONHASHSEED"] = SEED          # inherited by the kernels
    paths = args.notebooks or sorted(HERE.glob("*.ipynb"))
    failed = 0
    for path in paths:
        t0 = time.perf_counter()
        try:
            nb = execute(path.resolve(), args.timeout)
        except Exception as e:  # noqa: BLE001  (report it and go on with the next notebook)
            first = (str(e).strip().splitlines() or [""])[0]
            print(f"{path.name}: failed, left as it was: {type(e).__name__}: {first}", file=sys.stderr)
            failed += 1
            continue
        found = output_problems(nb)
        if found:
            print(f"{path.name}: not stored: " + "; ".join(found), file=sys.stderr)
            failed += 1
            continue
        nbformat.validate(nb)
        tmp = path.with_name(f".{path.name}.tmp")
        nbformat.write(nb, tmp)
        os.replace(tmp, path)
        print(f"{path.name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
