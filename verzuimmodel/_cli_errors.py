"""How every command-line command reports bad input (shared by :mod:`verzuimmodel.cli` and
:mod:`verzuimmodel.evaluate.cli`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

__all__ = ["bad_input"]


@contextmanager
def bad_input() -> Iterator[None]:
    """Report bad input as one line ``error: ...`` on stderr and exit with code 2.

    SchemaError, TOML errors and scenario validation errors are ValueErrors; missing or
    unreplaceable files are OSErrors; a missing optional dependency (e.g. dask) is an ImportError.
    """
    try:
        yield
    except (ValueError, OSError, ImportError) as e:
        typer.echo(f"error: {' '.join(str(e).split())}", err=True)
        raise typer.Exit(code=2) from None
