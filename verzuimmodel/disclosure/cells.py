r"""The cells of a set of published tables and the identities that link them.

A set of outputs produced together (the quarterly monitor's tables at every grouping level, or
the tables of one report) is described once as a :class:`CellSet`: one *cell* per published
count (and per count a published share or a pair of columns implies), with its true value, and
the linear identities every attacker knows:

.. math::

    A x = 0, \qquad G x \le 0, \qquad x \ge 0 \text{ (whole numbers)},

where :math:`x` is the vector of all cells. Typical rows of :math:`A` are a stock-flow identity
(:math:`x_\text{end} - x_\text{start} - x_\text{in} + x_\text{out} = 0`), an outcome sum
(:math:`x_\text{out} - \sum_k x_{\text{out},k} = 0`), a total over groups
(:math:`x_\text{all} - \sum_g x_g = 0`) or a cumulative column
(:math:`x_{6m} - x_{3m} - d_{3\text{–}6m} = 0`); rows of :math:`G` are subset relations such as
:math:`x_\text{recurrent} - x_\text{in} \le 0`.

Three kinds of cell:

``count``
    a count printed in a table (hidden: missing, shown as "< 10" / an empty CSV cell);
``share``
    the numerator of a published share (``turnover`` = new / stock_end): publishing the share
    with its denominator publishes the numerator, hiding the share hides it;
``implied``
    a count that is not printed but follows from printed ones: the complement of a share's
    numerator, the difference of two cumulative columns (events between 6 and 12 months), the
    first-time part of an inflow whose recurrent part is printed. It is never hidden or shown by
    itself, but it is protected like a printed count (it must not be pinned down to 1..9).

``links`` are pairs ``(a, b)``: if cell ``a`` is hidden, ``b`` is hidden too (the same number
printed twice — a stock at the end of one quarter and the start of the next — or a share whose
denominator is hidden). ``level`` orders grouping levels from the coarsest (0: everything
together) so that the finer ones can be protected without changing the coarser ones
(:func:`verzuimmodel.disclosure.protect`). ``unit`` is a coordinate along which the identities
link few cells (the monitor's quarter: only a stock links one quarter to the next; -1 if none):
the audit first solves small programmes over a few neighbouring units at a time
(:mod:`._solver`); it never changes a result, only how fast it is found.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = ["CellSet", "CellBuilder", "KINDS"]

KINDS = ("count", "share", "implied")


@dataclass(frozen=True)
class CellSet:
    """Cells, identities and links of a set of outputs (see the module docstring).

    Attributes
    ----------
    cells : DataFrame, one row per cell: ``table, row`` (position in that table), ``column``,
        ``value`` (int64, the true count), ``kind`` (:data:`KINDS`), ``level`` (int), ``upper``
        (float: an upper bound the attacker knows from the outputs, ``inf`` if none), ``unit``
        (int: see above, -1 if none).
    eq : sparse (n_eq, n_cells) integer matrix :math:`A` with :math:`A x = 0`.
    le : sparse (n_le, n_cells) integer matrix :math:`G` with :math:`G x \\le 0`.
    links : int array (n_links, 2): hiding the first cell hides the second.
    """

    cells: pd.DataFrame
    eq: sparse.csr_matrix
    le: sparse.csr_matrix
    links: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.int64))

    def __post_init__(self):
        v = self.cells["value"].to_numpy()
        for name, m, ok in (("eq", self.eq, lambda r: r == 0), ("le", self.le, lambda r: r <= 0)):
            if m.shape[1] != len(v):
                raise ValueError(f"{name}: {m.shape[1]} columns for {len(v)} cells")
            bad = ~ok(m @ v)
            if bad.any():
                raise ValueError(f"{name}: the true values break {int(bad.sum())} identities (first: row "
                                 f"{int(np.flatnonzero(bad)[0])})")

    @property
    def n(self) -> int:
        return len(self.cells)

    @property
    def published(self) -> np.ndarray:
        """Cells printed in a table (counts and share numerators)."""
        return (self.cells["kind"] != "implied").to_numpy()

    def subset(self, keep: np.ndarray) -> "CellSet":
        """The cells ``keep`` (bool) with the identities and links among them only."""
        keep = np.asarray(keep, dtype=bool)
        idx = np.flatnonzero(keep)

        def rows(m):
            m = m.tocsr()
            outside = (abs(m[:, np.flatnonzero(~keep)]) @ np.ones((~keep).sum(), dtype=np.int64)) > 0
            return m[np.flatnonzero(~outside)][:, idx].tocsr()

        pos = np.full(self.n, -1)
        pos[idx] = np.arange(len(idx))
        links = self.links[keep[self.links[:, 0]] & keep[self.links[:, 1]]] if len(self.links) else self.links
        return CellSet(self.cells[keep].reset_index(drop=True), rows(self.eq), rows(self.le), pos[links])

    def close_links(self, hidden: np.ndarray) -> np.ndarray:
        """``hidden`` with every linked cell of a hidden cell hidden too (until nothing changes)."""
        hidden = hidden.copy()
        if len(self.links) == 0:
            return hidden
        src, dst = self.links[:, 0], self.links[:, 1]
        while True:
            new = hidden[src] & ~hidden[dst]
            if not new.any():
                return hidden
            hidden[dst[new]] = True


class CellBuilder:
    """Collects cells, identities and links, vectorised: each call adds many cells or rows at once.

    >>> b = CellBuilder()
    >>> tot = b.cells("t", np.arange(2), "total", [12, 3])
    >>> a = b.cells("t", np.arange(2), "a", [9, 3]); c = b.cells("t", np.arange(2), "b", [3, 0])
    >>> b.equal(tot, [a, c])                 # total = a + b, row by row
    >>> cs = b.build()
    """

    def __init__(self):
        self._frames: list[pd.DataFrame] = []
        self._n = 0
        self._eq: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._le: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._n_eq = self._n_le = 0
        self._links: list[np.ndarray] = []

    def cells(self, table: str, rows, column: str, values, kind: str = "count", level: int = 0,
              upper=np.inf, unit=-1) -> np.ndarray:
        """Add one cell per element of ``rows``/``values``; return their indices. ``unit``: see
        the module docstring (an int or one per cell)."""
        if kind not in KINDS:
            raise ValueError(f"kind: got {kind!r}; expected one of {KINDS}")
        values = np.asarray(values, dtype=np.int64)
        rows = np.broadcast_to(np.asarray(rows, dtype=np.int64), values.shape)
        idx = np.arange(self._n, self._n + len(values))
        self._frames.append(pd.DataFrame({
            "table": table, "row": rows, "column": column, "value": values, "kind": kind,
            "level": np.int64(level), "upper": np.broadcast_to(np.asarray(upper, dtype=float), values.shape),
            "unit": np.broadcast_to(np.asarray(unit, dtype=np.int64), values.shape)}))
        self._n += len(values)
        return idx

    def _rows(self, store: list, count: int, terms: list[tuple[int, np.ndarray]]) -> int:
        k = len(terms[0][1])
        r = np.arange(count, count + k)
        for coef, idx in terms:
            idx = np.asarray(idx, dtype=np.int64)
            if len(idx) != k:
                raise ValueError("all terms of an identity need one cell per row")
            store.append((r, idx, np.full(k, coef, dtype=np.int64)))
        return count + k

    def identity(self, terms: list[tuple[int, np.ndarray]]) -> None:
        r"""Rows :math:`\sum_j c_j x_{i_j} = 0`, one per element of the index arrays ``terms = [(c_j, i_j)]``."""
        if len(terms[0][1]):
            self._n_eq = self._rows(self._eq, self._n_eq, terms)

    def equal(self, total: np.ndarray, parts: list[np.ndarray]) -> None:
        """Rows ``total = sum(parts)``."""
        self.identity([(1, total), *[(-1, p) for p in parts]])

    def at_most(self, small: np.ndarray, large: np.ndarray) -> None:
        """Rows ``small <= large`` (a subset is no larger than its set)."""
        if len(small):
            self._n_le = self._rows(self._le, self._n_le, [(1, small), (-1, large)])

    def less_equal(self, terms: list[tuple[int, np.ndarray]]) -> None:
        r"""Rows :math:`\sum_j c_j x_{i_j} \le 0`."""
        if len(terms[0][1]):
            self._n_le = self._rows(self._le, self._n_le, terms)

    def group_sum(self, total: np.ndarray, parts: np.ndarray, parent: np.ndarray) -> None:
        """Rows ``total[k] = sum(parts[parent == k])``: ``parent`` gives each part's position in ``total``."""
        if not len(total):
            return
        r = np.arange(self._n_eq, self._n_eq + len(total))
        self._eq.append((r, np.asarray(total, dtype=np.int64), np.ones(len(total), dtype=np.int64)))
        parent = np.asarray(parent, dtype=np.int64)
        self._eq.append((r[parent], np.asarray(parts, dtype=np.int64), -np.ones(len(parts), dtype=np.int64)))
        self._n_eq += len(total)

    def same(self, a: np.ndarray, b: np.ndarray) -> None:
        """``a`` and ``b`` are the same number printed twice: equal, and hidden together."""
        self.equal(a, [b])
        self.link(a, b)
        self.link(b, a)

    def link(self, a: np.ndarray, b: np.ndarray) -> None:
        """Hiding ``a`` hides ``b``."""
        self._links.append(np.column_stack([np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)]))

    def build(self) -> CellSet:
        cells = (pd.concat(self._frames, ignore_index=True) if self._frames else
                 pd.DataFrame({"table": [], "row": [], "column": [], "value": [], "kind": [], "level": [],
                               "upper": [], "unit": []}).astype({"row": "int64", "value": "int64", "level": "int64",
                                                                 "upper": float, "unit": "int64"}))

        def matrix(store, m):
            if not store:
                return sparse.csr_matrix((m, self._n), dtype=np.int64)
            r, c, v = (np.concatenate(x) for x in zip(*store))
            return sparse.csr_matrix((v, (r, c)), shape=(m, self._n), dtype=np.int64)

        links = np.concatenate(self._links) if self._links else np.empty((0, 2), dtype=np.int64)
        return CellSet(cells, matrix(self._eq, self._n_eq), matrix(self._le, self._n_le), links)
