"""The typer classes of the ``verzuim`` command (:mod:`verzuimmodel.cli`): what every command shares.

- **Flags without a type in --help.** typer's rich help prints each option's type in a column of
  its own, and for a boolean flag that is ``<bool>`` (``TyperOption.display_type_rich`` does not
  leave flags out; only the plain help does), so ``--calibration <bool>`` read as if the flag took
  a value. A flag here is shown by its names alone: ``--calibration  --no-calibration``.
- **Warnings** of every command are collected and summarised (:mod:`verzuimmodel._cli_log`).
- ``--version``.

``Typer`` is :class:`typer.Typer` with these classes as the default for its group and commands.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from ._cli_log import captured_warnings

__all__ = ["Typer", "show_version"]


def _untyped_flags(params: list) -> list:
    """``params`` with no type shown for flags (an empty metavar: the help's type column stays empty)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A ``verzuim`` command: flags without a type in its help; its warnings collected and logged."""

    def get_params(self, ctx: Any) -> list:
        return _untyped_flags(super().get_params(ctx))

    def invoke(self, ctx: Any) -> Any:
        with captured_warnings(ctx.command_path, ctx.params.get("out")):
            return super().invoke(ctx)


class Group(TyperGroup):
    """A group of ``verzuim`` commands (the command itself, ``verzuim mapping``): flags without a type."""

    def get_params(self, ctx: Any) -> list:
        return _untyped_flags(super().get_params(ctx))


class Typer(typer.Typer):
    """:class:`typer.Typer` whose group and commands are :class:`Group` and :class:`Command`."""

    def __init__(self, *args: Any, cls: type[TyperGroup] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, cls=cls or Group, **kwargs)

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or Command, **kwargs)


def show_version(value: bool) -> None:
    """Callback of ``--version``: print the version of verzuimmodel and exit."""
    if value:
        from . import __version__

        typer.echo(f"verzuimmodel {__version__}")
        raise typer.Exit()
