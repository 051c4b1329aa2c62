"""The error of an import mapping, and how labels and names are matched."""

from __future__ import annotations

from typing import Any

__all__ = ["MappingError", "normalise"]


class MappingError(ValueError):
    """A mapping, or the export it is applied to, has a problem: one line naming the key and the rows.

    Parameters
    ----------
    key : the mapping key concerned (``tables.pupils.columns.sex``, ``codes.outcome``, ``format.encoding``).
    problem : what is wrong.
    source : where (the user's column and file, or the mapping file).
    rows : rows of the user's file as a spreadsheet numbers them (the header is row 1); the first few.
    n_rows : how many rows have the problem in total.
    hint : what to do.
    """

    def __init__(self, key: str, problem: str, *, source: str | None = None, rows=(), n_rows: int | None = None,
                 hint: str | None = None):
        self.key, self.problem, self.source, self.hint = key, problem, source, hint
        self.rows = [int(r) for r in rows]
        self.n_rows = len(self.rows) if n_rows is None else int(n_rows)
        msg = f"mapping key '{key}'" + (f" ({source})" if source else "") + f": {problem}"
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:5])
            more = self.n_rows - min(len(self.rows), 5)
            msg += f" at row{'s' if self.n_rows > 1 else ''} {shown}" + (f" (and {more} more)" if more > 0 else "")
        if hint:
            msg += f"; {hint}"
        super().__init__(" ".join(msg.split()))

    def __reduce__(self):
        return _rebuild, (self.key, self.problem, self.source, self.rows, self.n_rows, self.hint)


def _rebuild(key, problem, source, rows, n_rows, hint) -> MappingError:
    return MappingError(key, problem, source=source, rows=rows, n_rows=n_rows, hint=hint)


def normalise(label: Any) -> str:
    """A label as it is matched: blanks collapsed, case folded (``" Terug  School"`` -> ``"terug school"``)."""
    return " ".join(str(label).split()).casefold()
