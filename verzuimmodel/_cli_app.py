"""The typer classes of the ``verzuim`` command (:mod:`verzuimmodel.cli`): what every command shares.

- **Flags without a type in --help.** typer's rich help prints each option's type in a column of
  its own, and for a boolean flag that is ``<bool>`` (``TyperOption.display_type_rich`` does not
  leave flags out; only the plain help does), so ``--calibration <bool>`` read as if the flag took
  a value. A flag here is shown by its names alone: ``--calibration  --no-calibration``.
- **Warnings** of every command are collected and summarised (:mod:`verzuimmodel._cli_log`).
- **The language of the messages**: ``--lang nl|en`` on the command itself (``verzuim --lang nl
  validate ...``) and on every subcommand (``verzuim validate ... --lang nl``; the subcommand's wins),
  default ``VERZUIM_LANG``, then the locale (:mod:`verzuimmodel.i18n`). A command runs inside
  ``i18n.language(...)``, so its messages, errors and warning summaries are in that language and the
  setting ends with the command. An unknown ``--lang`` or ``VERZUIM_LANG`` is bad input (exit 2).
- ``--version``.

``Typer`` is :class:`typer.Typer` with these classes as the default for its group and commands.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from . import i18n
from ._cli_errors import bad_input
from ._cli_log import captured_warnings

__all__ = ["LANG_HELP", "Typer", "chosen_language", "remember_language", "show_version"]

_LANG_KEY = "verzuimmodel.lang"
"""Where ``--lang`` is kept in ``ctx.meta`` (shared by the command and its subcommands)."""

LANG_HELP = ("Language of the messages: 'nl' or 'en' (default: the environment variable VERZUIM_LANG, then the "
             "locale: Dutch if LC_ALL, LC_MESSAGES or LANG starts with 'nl').")


def remember_language(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """Callback of ``--lang``: keep the value for the command (checked when it runs, as bad input)."""
    if value is not None:
        ctx.meta[_LANG_KEY] = value
    return value


def chosen_language(ctx: typer.Context) -> str | None:
    """The language given with ``--lang`` (on the command or a subcommand), or None."""
    return ctx.meta.get(_LANG_KEY)


def _command_language(ctx: typer.Context) -> str | None:
    """The language of the messages of a command: ``--lang``, else ``VERZUIM_LANG`` (None: the locale's).

    Raises :class:`~verzuimmodel.i18n.InputError` for an unknown value of either."""
    given = chosen_language(ctx)
    if given is not None:
        return i18n.check_language(given, "--lang")
    return i18n.environment_language()


def _lang_option() -> Any:
    """A fresh ``--lang`` option (made by typer from a declaration, as typer makes every option)."""
    probe = typer.Typer()

    @probe.command()
    def _probe(lang: Annotated[str | None, typer.Option("--lang", callback=remember_language, is_eager=True,
                                                        metavar="[nl|en]", help=LANG_HELP)] = None) -> None:
        pass  # pragma: no cover

    option = typer.main.get_command(probe).params[0]
    option.expose_value = False
    return option


def _with_lang(params: list) -> list:
    """``params`` with ``--lang`` added unless the command declares its own (``report``)."""
    if not any(p.name == "lang" for p in params):
        params.append(_lang_option())
    return params


def _untyped_flags(params: list) -> list:
    """``params`` with no type shown for flags (an empty metavar: the help's type column stays empty)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A ``verzuim`` command: flags without a type in its help; ``--lang``; its messages in that language;
    its warnings collected and logged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _with_lang(self.params)

    def get_params(self, ctx: Any) -> list:
        return _untyped_flags(super().get_params(ctx))

    def invoke(self, ctx: Any) -> Any:
        with bad_input():
            lang = _command_language(ctx)
        with i18n.language(lang), captured_warnings(ctx.command_path, ctx.params.get("out")):
            return super().invoke(ctx)


class Group(TyperGroup):
    """A group of ``verzuim`` commands (the command itself, ``verzuim mapping``): flags without a type;
    ``--lang`` for all commands below it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _with_lang(self.params)

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
