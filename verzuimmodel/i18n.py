"""Messages in Dutch and English: the language in force and the catalogue of validation and command texts.

Every validation error (:class:`~verzuimmodel.schema.SchemaError`, the importer's
:class:`~verzuimmodel.importing.MappingError`) and every message of the ``verzuim`` command is a keyed
text in ``verzuimmodel/messages/{nl,en}.toml`` with named parameters (``{table}``, ``{column}``,
``{rows}``, ...). An error keeps its key and parameters, so the same error is written in either
language: ``str(err)`` in the language in force when it is printed, ``err.message("nl")`` in Dutch.

The language in force, first that applies:

1. ``with vm.i18n.language("en"): ...`` (a context manager; the command's ``--lang`` uses it);
2. ``vm.set_language("nl")`` (for the whole session, e.g. in a notebook; ``vm.set_language(None)``
   undoes it);
3. the environment variable ``VERZUIM_LANG`` (``nl`` or ``en``; a locale name such as ``nl_NL.UTF-8``
   counts by its first two letters);
4. the locale: the first of ``LC_ALL``, ``LC_MESSAGES`` and ``LANG`` that is set and not empty; Dutch
   if it starts with ``nl`` (``nl_NL.UTF-8``, ``nl_BE``), otherwise English.

The effect report (:mod:`verzuimmodel.report`) has its own catalogue and is Dutch unless asked
otherwise; the command's ``--lang`` chooses both.

Numbers formatted in a message (``{n:,}``, ``{x:.3g}``) get the language's marks: ``1,234.5`` in
English, ``1.234,5`` in Dutch. Values quoted from the data (``'mbo'``, ``2019-11-04``) are written
as they are in the data, in either language.
"""

from __future__ import annotations

import contextvars
import numbers
import os
import string
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any

__all__ = ["ENV_VAR", "LANGUAGES", "InputError", "LocalizedError", "LocalizedFileExistsError",
           "LocalizedFileNotFoundError", "Message", "catalogue", "check_language", "environment_language",
           "format_number", "get_language", "language", "locale_language", "render", "set_language", "text"]

LANGUAGES: tuple[str, ...] = ("nl", "en")
"""The languages of the messages."""

ENV_VAR = "VERZUIM_LANG"
"""Environment variable that chooses the language of the messages (over the locale)."""

_LOCALE_VARS = ("LC_ALL", "LC_MESSAGES", "LANG")

_session: str | None = None
"""The language set by :func:`set_language` (a module variable, so that it holds in every thread and in
every notebook cell)."""

_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("verzuim_language", default=None)
"""The language of the innermost :func:`language` block."""


def check_language(lang: Any, what: str = "language") -> str:
    """``lang`` if it is one of :data:`LANGUAGES`, else an :class:`InputError` naming ``what``."""
    if isinstance(lang, str) and lang.strip().lower() in LANGUAGES:
        return lang.strip().lower()
    raise InputError(Message("language.unknown", what=what, got=repr(lang), expected=_choices()))


def _choices() -> str:
    return ", ".join(repr(x) for x in LANGUAGES)


def set_language(lang: str | None) -> None:
    """Write the messages in ``lang`` (``"nl"`` or ``"en"``) from now on; None: back to the default
    (``VERZUIM_LANG``, then the locale). A :func:`language` block still takes precedence."""
    global _session
    _session = None if lang is None else check_language(lang)


@contextmanager
def language(lang: str | None) -> Iterator[str]:
    """Write the messages in ``lang`` inside the block (None: leave the language as it is).

    Yields the language in force inside the block. Blocks nest; each thread and task has its own.
    """
    if lang is None:
        yield get_language()
        return
    token = _override.set(check_language(lang))
    try:
        yield get_language()
    finally:
        _override.reset(token)


def _from_locale_name(value: str | None) -> str | None:
    """``nl`` or ``en`` from a language or locale name (``nl``, ``nl_NL.UTF-8``, ``en_GB``), else None."""
    if not value:
        return None
    head = value.strip().lower()[:2]
    return head if head in LANGUAGES else None


def environment_language(environ: Mapping[str, str] | None = None) -> str | None:
    """The language ``VERZUIM_LANG`` asks for, or None when it is not set.

    Raises
    ------
    InputError
        ``VERZUIM_LANG`` is set to something other than a Dutch or English language or locale name
        (the command line refuses it; :func:`get_language` then falls back to the locale).
    """
    value = (os.environ if environ is None else environ).get(ENV_VAR, "")
    if not value.strip():
        return None
    found = _from_locale_name(value)
    if found is None:
        raise InputError(Message("language.unknown", what=ENV_VAR, got=repr(value), expected=_choices()))
    return found


def locale_language(environ: Mapping[str, str] | None = None) -> str:
    """The language of the locale: Dutch if the first of ``LC_ALL``, ``LC_MESSAGES`` and ``LANG`` that
    is set (and not empty) starts with ``nl``, otherwise English (also for ``C`` and ``POSIX``)."""
    environ = os.environ if environ is None else environ
    for name in _LOCALE_VARS:
        value = environ.get(name, "")
        if value:
            return "nl" if value.strip().lower().startswith("nl") else "en"
    return "en"


def get_language() -> str:
    """The language in force (see the module docstring for the order)."""
    lang = _override.get() or _session
    if lang:
        return lang
    try:
        lang = environment_language()
    except InputError:
        lang = None
    return lang or locale_language()


# -- the catalogue ------------------------------------------------------------------------------------


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and not _is_plural(v):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _is_plural(v: Mapping) -> bool:
    return set(v) == {"one", "other"}


@lru_cache(maxsize=None)
def catalogue(lang: str) -> Mapping[str, Any]:
    """The messages of ``lang``: dotted key -> template (a text, or ``{one = ..., other = ...}`` chosen by
    the parameter ``n``)."""
    lang = check_language(lang)
    raw = resources.files("verzuimmodel").joinpath("messages", f"{lang}.toml").read_text(encoding="utf-8")
    return MappingProxyType(_flatten(tomllib.loads(raw)))


class _Formatter(string.Formatter):
    """``str.format`` with the number marks of a language (Dutch: ``.`` groups thousands, ``,`` is the
    decimal mark)."""

    def __init__(self, lang: str):
        self.lang = lang

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Message):
            return format(value.render(self.lang), format_spec)
        if isinstance(value, (list, tuple)):
            return format(", ".join(self.format_field(v, "") for v in value), format_spec)
        out = format(value, format_spec)
        if self.lang == "nl" and isinstance(value, numbers.Number) and not isinstance(value, bool):
            out = out.translate(_SWAP)
        return out


_SWAP = str.maketrans({",": ".", ".": ","})


def _template(key: str, lang: str, params: Mapping[str, Any]) -> str:
    entries = catalogue(lang)
    if key not in entries:
        raise KeyError(f"message '{key}' is not in the {lang} catalogue (verzuimmodel/messages/{lang}.toml)")
    entry = entries[key]
    if isinstance(entry, Mapping):
        return entry["one" if params.get("n") == 1 else "other"]
    return entry


def _render(key: str, params: Mapping[str, Any], lang: str) -> str:
    return _Formatter(lang).vformat(_template(key, lang, params), (), params)


class Message(str):
    """A text of the catalogue: its key and parameters. As a ``str`` it is the English text, so it can
    stand wherever text is expected; :meth:`render` writes it in any language.

    Parameters may themselves be messages (rendered in the same language) or lists (their items
    rendered and joined with ``", "``). The key must exist and the parameters must fill its English
    template (checked when the message is made).

    Examples
    --------
    >>> m = Message("schema.missing_values")
    >>> m.render("nl")
    'ontbrekende waarde(n)'
    """

    key: str
    params: Mapping[str, Any]

    def __new__(cls, key: str, /, **params: Any) -> "Message":
        self = super().__new__(cls, _render(key, params, "en"))
        self.key = key
        self.params = MappingProxyType(dict(params))
        return self

    def render(self, lang: str | None = None) -> str:
        """The text in ``lang`` (default: the language in force)."""
        return _render(self.key, self.params, check_language(lang) if lang else get_language())

    def __reduce__(self):
        return _message, (self.key, dict(self.params))

    def __repr__(self) -> str:
        return f"Message({self.key!r}, {dict(self.params)!r})"


def _message(key: str, params: dict) -> Message:
    return Message(key, **params)


def render(value: Any, lang: str | None = None) -> str:
    """``value`` as text in ``lang``: a :class:`Message` rendered, anything else as ``str``."""
    return value.render(lang) if isinstance(value, Message) else str(value)


def format_number(value: Any, spec: str = "", lang: str | None = None) -> str:
    """``format(value, spec)`` with the number marks of ``lang`` (default: the language in force)."""
    return _Formatter(check_language(lang) if lang else get_language()).format_field(value, spec)


def text(key: str, /, **params: Any) -> str:
    """The message ``key`` in the language in force."""
    return Message(key, **params).render()


# -- errors whose text is a message --------------------------------------------------------------------


class LocalizedError(Exception):
    """An error whose text is a :class:`Message`: ``str(err)`` in the language in force,
    ``err.message(lang)`` in any. ``message_key`` and ``params`` are those of the message."""

    def __init__(self, message: Message):
        super().__init__(message)
        self.text = message

    @property
    def message_key(self) -> str:
        return self.text.key

    @property
    def params(self) -> Mapping[str, Any]:
        return self.text.params

    def message(self, lang: str | None = None) -> str:
        return self.text.render(lang)

    def __str__(self) -> str:
        return self.message()


class InputError(LocalizedError, ValueError):
    """Bad input (an option, a setting): a ValueError with a localized text."""


class LocalizedFileNotFoundError(LocalizedError, FileNotFoundError):
    """A file or directory that was asked for does not exist."""


class LocalizedFileExistsError(LocalizedError, FileExistsError):
    """A file that would be replaced exists."""
