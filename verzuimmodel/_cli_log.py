"""The warnings of a ``verzuim`` command: a log in its output directory and one line per kind on stderr.

Python prints a warning (a model that did not converge, separation, ...) with the line of source
code that raised it. While a command runs its warnings are collected instead; the warning filters
in force still decide which are shown, as without collecting. Afterwards stderr gets one line per
kind of warning with a count::

    2 convergence warnings; details in reports/verzuim.log

and :data:`LOG_NAME` in the command's output directory lists every warning with its class,
message and where it was raised. The log is written only into an output directory that the
command wrote in this run (it ended with exit code 0 or 1, and ``--out`` carries the package's
marker), and it is listed in the marker (:func:`verzuimmodel.outputs.add_file`): a later
``--overwrite`` may replace the directory, and a user's file of that name is never replaced.
Without such a directory the line gives the first message instead of the log. The lines on stderr
are in the language of the command's messages (:mod:`verzuimmodel.i18n`); the log itself is English
(the warnings' own texts are).
"""

from __future__ import annotations

import re
import sys
import sysconfig
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import typer

from .i18n import Message, catalogue, get_language
from .outputs import add_file, is_output

__all__ = ["LOG_NAME", "captured_warnings", "kind"]

LOG_NAME = "verzuim.log"
"""Name of the warnings log in a command's output directory."""

WRITES_OUTPUT = (0, 1)
"""Exit codes after which ``--out`` holds what the command wrote (2: bad input, nothing written)."""


@contextmanager
def captured_warnings(command: str, out: object = None) -> Iterator[list[warnings.WarningMessage]]:
    """Collect the warnings raised in the block; then log them in ``out`` and summarise them on stderr.

    ``command`` names the command in the log (``verzuim report``); ``out`` is its output directory
    (``--out``), or None.
    """
    caught: list[warnings.WarningMessage] = []
    code = None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: caught.append(
                warnings.WarningMessage(message, category, filename, lineno))
            try:
                yield caught
                code = 0
            except typer.Exit as e:
                code = e.exit_code
                raise
    finally:
        if caught:
            written = isinstance(out, (str, Path)) and code in WRITES_OUTPUT and is_output(out)
            summarise(caught, command, Path(out) if written else None)


def kind(category: type[Warning]) -> str:
    """A warning class in words: ``ConvergenceWarning`` -> ``convergence``, ``Warning`` -> ``other``."""
    name = re.sub(r"Warning$", "", category.__name__)
    return " ".join(w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", name)) or "other"


def summarise(caught: list[warnings.WarningMessage], command: str, out: Path | None) -> None:
    """One line per kind of warning on stderr, after writing the log into ``out`` (if not None)."""
    log = None
    if out is not None:
        try:
            log = add_file(out, LOG_NAME, lambda p: p.write_text(log_text(caught, command), encoding="utf-8"))
        except OSError as e:                     # a user's file of that name, another writer, a full disk
            typer.echo(Message("log.not_logged", error=_one_line(e)).render(), err=True)
    counts = Counter(kind(w.category) for w in caught)
    for what, n in counts.items():
        line = Message("log.count", n=n, kind=_kind_words(what))
        if log is not None:
            line = Message("log.details", line=line, log=str(out / LOG_NAME))
        else:
            first = next(w for w in caught if kind(w.category) == what)
            line = Message("log.first" if n > 1 else "log.only", line=line, message=_one_line(first.message))
        typer.echo(line.render(), err=True)


def _kind_words(what: str) -> str:
    """A kind of warning in the language in force (``log.kinds`` of the catalogue; else as it is)."""
    return catalogue(get_language()).get(f"log.kinds.{what.replace(' ', '_')}", what)


def log_text(caught: list[warnings.WarningMessage], command: str) -> str:
    """The log: a header, then a line per warning (class, where it was raised, message)."""
    from . import __version__

    n = len(caught)
    head = (f"{command}: {n} warning{'' if n == 1 else 's'} (verzuimmodel {__version__}, "
            f"{datetime.now().astimezone().isoformat(timespec='seconds')})")
    lines = [f"{_class_name(w.category)} at {_where(w.filename, w.lineno)}: {_one_line(w.message)}" for w in caught]
    return "\n".join([head, *lines]) + "\n"


def _one_line(message: Warning | str) -> str:
    return " ".join(str(message).split())


def _class_name(category: type[Warning]) -> str:
    module = category.__module__
    return category.__qualname__ if module == "builtins" else f"{module}.{category.__qualname__}"


def _where(filename: str, lineno: int) -> str:
    """``file:line`` relative to the installation (``verzuimmodel/survival/cox.py:381``), never a
    directory of the machine."""
    path = Path(filename)
    roots = {Path(__file__).resolve().parent.parent, *(Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib",
                                                                                                "stdlib"))}
    roots |= {Path(p) for p in sys.path if p and Path(p).is_dir()}
    for root in sorted(roots, key=lambda r: len(r.parts), reverse=True):
        try:
            return f"{path.resolve().relative_to(root.resolve()).as_posix()}:{lineno}"
        except (ValueError, OSError):
            continue
    return f"{path.name}:{lineno}"
