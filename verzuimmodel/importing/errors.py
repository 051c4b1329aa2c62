"""The error of an import mapping, and how labels and names are matched."""

from __future__ import annotations

from typing import Any, Literal

from ..i18n import Message, get_language

__all__ = ["MappingError", "normalise"]


class MappingError(ValueError):
    """A mapping, or the export it is applied to, has a problem: one line naming the key and the rows.

    The line is written in the language in force (:mod:`verzuimmodel.i18n`): ``str(err)``;
    ``err.message("nl")`` in Dutch.

    Parameters
    ----------
    key : the mapping key concerned (``tables.pupils.columns.sex``, ``codes.outcome``, ``format.encoding``).
    problem : what is wrong (a :class:`~verzuimmodel.i18n.Message` of the catalogue, or plain text).
    source : where (the user's column and file, or the mapping file).
    rows : the rows of the user's file: the lines of a CSV file (the header is line 1) or the rows of a
        sheet as a spreadsheet numbers them (the header is row 1); the first few.
    n_rows : how many rows have the problem in total.
    hint : what to do.
    unit : ``"line"`` (a CSV file) or ``"row"`` (a sheet): what ``rows`` count.

    Attributes
    ----------
    key, problem, source, rows, n_rows, hint, unit
        As given (``problem``, ``source`` and ``hint`` as English text: messages are ``str``).
    message_key : str or None
        The catalogue key of the problem (``"mapping.unmapped_code"``); None for plain text.
    params : dict
        The problem's parameters, with ``key``, ``source``, ``rows``, ``n_rows`` and ``hint``.
    """

    def __init__(self, key: str, problem: str, *, source: str | None = None, rows=(), n_rows: int | None = None,
                 hint: str | None = None, unit: Literal["line", "row"] = "row"):
        self.key, self.problem, self.source, self.hint, self.unit = key, problem, source, hint, unit
        self.rows = [int(r) for r in rows]
        self.n_rows = len(self.rows) if n_rows is None else int(n_rows)
        super().__init__(self.message("en"))

    @property
    def message_key(self) -> str | None:
        problem = self.problem
        if isinstance(problem, Message) and problem.key == "mapping.with_value":
            problem = problem.params["problem"]
        return problem.key if isinstance(problem, Message) else None

    @property
    def params(self) -> dict:
        problem, out = self.problem, {}
        if isinstance(problem, Message) and problem.key == "mapping.with_value":
            out["value"] = problem.params["value"]
            problem = problem.params["problem"]
        if isinstance(problem, Message):
            out.update(problem.params)
        out.update(key=self.key, source=self.source, rows=self.rows, n_rows=self.n_rows, hint=self.hint)
        return out

    def message(self, lang: str | None = None) -> str:
        """The one-line message in ``lang`` (``"nl"`` or ``"en"``; default: the language in force)."""
        lang = lang or get_language()
        parts = [Message("mapping.frame.key", key=self.key).render(lang)]
        if self.source:
            parts.append(Message("mapping.frame.source", source=self.source).render(lang))
        parts.append(Message("mapping.frame.problem", problem=self.problem).render(lang))
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:5])
            parts.append(Message(f"frame.{self.unit}s", n=self.n_rows, rows=shown).render(lang))
            more = self.n_rows - min(len(self.rows), 5)
            if more > 0:
                parts.append(Message("frame.more", more=more).render(lang))
        if self.hint:
            parts.append(Message("mapping.frame.hint", hint=self.hint).render(lang))
        return " ".join("".join(parts).split())

    def __str__(self) -> str:
        return self.message()

    def __reduce__(self):
        return _rebuild, (self.key, self.problem, self.source, self.rows, self.n_rows, self.hint, self.unit)


def _rebuild(key, problem, source, rows, n_rows, hint, unit="row") -> MappingError:
    return MappingError(key, problem, source=source, rows=rows, n_rows=n_rows, hint=hint, unit=unit)


def normalise(label: Any) -> str:
    """A label as it is matched: blanks collapsed, case folded (``" Terug  School"`` -> ``"terug school"``)."""
    return " ".join(str(label).split()).casefold()

