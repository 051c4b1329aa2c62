"""How every command-line command reports bad input (shared by :mod:`verzuimmodel.cli` and
:mod:`verzuimmodel.evaluate.cli`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from .i18n import text

__all__ = ["bad_input", "error_line"]


def error_line(error: BaseException | str) -> str:
    """``error: ...`` (``fout: ...`` in Dutch): the error's text in the language in force, on one line."""
    return text("cli.error", message=" ".join(str(error).split()))


@contextmanager
def bad_input() -> Iterator[None]:
    """Report bad input as one line ``error: ...`` on stderr and exit with code 2.

    SchemaError, TOML errors and scenario validation errors are ValueErrors; missing or
    unreplaceable files are OSErrors; a missing optional dependency (e.g. dask) is an ImportError.
    The line is in the language in force (:mod:`verzuimmodel.i18n`): validation errors and the
    command's own messages are translated; a few messages of other parts of the package are
    English only.
    """
    try:
        yield
    except (ValueError, OSError, ImportError) as e:
        typer.echo(error_line(e), err=True)
        raise typer.Exit(code=2) from None
