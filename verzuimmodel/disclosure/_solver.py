r"""The audit's linear programmes, solved warm on persistent HiGHS models.

Every programme of one audit has the same feasible set (the identities, the shown values, the
bounds); only the objective changes. A :class:`_Model` keeps one HiGHS model (``highspy``) and its
optimal basis: after the first solve (dual simplex, with presolve) each new objective starts the
primal simplex from the last optimal vertex, which is still feasible, and needs a few pivots
instead of a solve from scratch (measured on the monitor's 10-region audit, 31,543 unknown cells:
10 ms per cell bound against 230 ms with ``scipy.optimize.linprog``).

Two models: one with the attacker's upper bounds (minimisation, and the exact maximum), and one
with every unknown cell capped at its true value plus :math:`m` (maximisation that only needs to
show a cell can reach :math:`v + m`; a capped programme is never unbounded).
"""

from __future__ import annotations

import os
import sys

import highspy
import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

__all__ = ["Solver", "AuditError", "TOL"]

TOL = 1e-6
ROUNDS = 24
"""At most this many programmes pushing many cells at once (stopped earlier when they stop helping)."""
GROUPS = ((4, 6), (12, 3))
"""Programmes over a few neighbouring units (quarters) at a time, before the programmes over all
of them: (units per programme, at most this many groupings), in turn. Measured on the monitor's
national regions (145,000 unknowns, 64 quarters; from scratch): groups of 4 left 1,327 cell sides
unproved, of 8 only 28 (27 of them unsafe), at twice the time."""
GROUPS_FROM = 40_000
"""Unknowns from which the programmes over groups of units are used (and, inside the suppression
search, what they leave counts as unsafe): smaller sets are solved whole, exactly as before."""


class AuditError(RuntimeError):
    """The linear programme of the audit failed (it should never: the true values are feasible)."""


_BANNER_SHOWN = False


def _highs() -> highspy.Highs:
    """A silent HiGHS instance (the first one of a process prints a banner to the C-level
    stdout, which would end up in the CLI's output: it goes to /dev/null)."""
    global _BANNER_SHOWN
    if _BANNER_SHOWN:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(null)
        _BANNER_SHOWN = True
    h.setOptionValue("output_flag", False)
    return h


class _Model:
    """One persistent HiGHS model :math:`\\min c^T x` s.t. ``row_lo <= A x <= row_hi``, ``lo <= x <= hi``."""

    def __init__(self, a: sparse.csc_matrix, row_lo, row_hi, lo, hi):
        inf = highspy.kHighsInf
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = a.shape[1], a.shape[0]
        lp.col_cost_ = np.zeros(a.shape[1])
        lp.col_lower_ = np.asarray(lo, dtype=float)
        lp.col_upper_ = np.where(np.isinf(hi), inf, hi).astype(float)
        lp.row_lower_ = np.where(np.isinf(row_lo), -inf, row_lo).astype(float)
        lp.row_upper_ = np.where(np.isinf(row_hi), inf, row_hi).astype(float)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = a.indptr
        lp.a_matrix_.index_ = a.indices
        lp.a_matrix_.value_ = a.data.astype(float)
        self.h = _highs()
        self.h.passModel(lp)
        self.cost = np.zeros(a.shape[1])
        self.warm = False

    def solve(self, c: np.ndarray) -> np.ndarray | None:
        """The optimal point for objective ``c``; ``None`` if the programme is unbounded."""
        changed = np.flatnonzero(c != self.cost)
        if len(changed):
            self.h.changeColsCost(len(changed), changed.astype(np.int32), c[changed].astype(float))
            self.cost = c.copy()
        self.h.run()
        status = self.h.getModelStatus()
        if status in (highspy.HighsModelStatus.kUnbounded, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return None
        if status != highspy.HighsModelStatus.kOptimal:
            raise AuditError(f"audit linear programme: {self.h.modelStatusToString(status)}")
        if not self.warm:               # from now on: primal simplex from the last optimal basis
            self.h.setOptionValue("presolve", "off")
            self.h.setOptionValue("simplex_strategy", 4)
            self.warm = True
        return np.asarray(self.h.getSolution().col_value)


def _groupings(shared: np.ndarray, busy: np.ndarray, size: int, rng) -> list[list[int]]:
    """Disjoint groups of up to ``size`` units, one started at each unit of ``busy`` not yet taken
    (in random order) and grown by the free unit sharing most identities with it (``shared``:
    units x units)."""
    free = np.ones(shared.shape[0], dtype=bool)
    out = []
    for u in rng.permutation(busy):
        if not free[u]:
            continue
        chunk = [int(u)]
        free[u] = False
        while len(chunk) < size:
            weight = shared[chunk].sum(axis=0) * rng.uniform(0.5, 1.0, len(free)) * free
            best = int(np.argmax(weight))
            if weight[best] <= 0:
                break
            chunk.append(best)
            free[best] = False
        out.append(chunk)
    return out


class Solver:
    """The linear programmes over the cells still unknown after singletons.

    Built with :meth:`of`. ``lo_b, hi_b`` are the attacker's bounds of every cell, ``v`` the true
    values; ``m`` the threshold. Feasible points found are passed to ``lo_pt, hi_pt`` (arrays over
    all cells, updated in place); exact bounds to ``exact_lo, exact_hi``.
    """

    def __init__(self, a: sparse.csc_matrix, row_lo, row_hi, lo, hi, v, m: int, cols: np.ndarray,
                 unit: np.ndarray | None = None):
        self.a, self.row_lo, self.row_hi = a, row_lo, row_hi
        self.lo, self.hi, self.v, self.m = lo, hi, v, m
        self.cols = cols                       # position of each unknown in the cells
        self.n = len(cols)
        self.unit = unit
        # caps that keep "maximise" bounded: reaching v + m certifies any requirement
        self.cap = np.minimum(self.hi, self.v + m)
        self._models: dict[bool, _Model] = {}
        self._comp = None

    @classmethod
    def of(cls, eq: sparse.csr_matrix, le: sparse.csr_matrix, var: np.ndarray, lo_b, hi_b, v, m: int,
           unit: np.ndarray | None = None) -> "Solver":
        """The programmes over the cells ``var`` (bool), every other cell at its value ``v``.
        ``unit`` (int over the cells, -1 for none): the group of each cell, for :meth:`certify`'s
        programmes over a few groups at a time."""
        cols = np.flatnonzero(var)
        known = np.flatnonzero(~var)

        def reduce(mat):
            mat = mat.tocsc()
            a = mat[:, cols].tocsr()
            b = -(mat[:, known] @ v[known]).astype(float)
            keep = np.diff(a.indptr) > 0
            return a[keep], b[keep]

        a_eq, b_eq = reduce(eq)
        a_le, b_le = reduce(le)
        return cls(sparse.vstack([a_eq, a_le]).tocsc(), np.r_[b_eq, np.full(len(b_le), -np.inf)],
                   np.r_[b_eq, b_le], lo_b[cols].astype(float), hi_b[cols].astype(float), v[cols].astype(float),
                   m, cols, None if unit is None else unit[cols])

    def _sub(self, idx: np.ndarray) -> "Solver":
        """The programmes over the unknowns ``idx`` (local positions), the others at their values."""
        rest = np.setdiff1d(np.arange(self.n), idx)
        a = self.a[:, idx]
        shift = self.a[:, rest] @ self.v[rest]
        rows = np.flatnonzero(np.diff(a.tocsr().indptr) > 0)
        return Solver(a[rows].tocsc(), self.row_lo[rows] - shift[rows], self.row_hi[rows] - shift[rows],
                      self.lo[idx], self.hi[idx], self.v[idx], self.m, self.cols[idx])

    @property
    def comp(self) -> np.ndarray:
        """The block (connected component of the identities) of each unknown."""
        if self._comp is None:
            adj = (abs(self.a).T @ abs(self.a)).tocsr()
            self._comp = connected_components(adj, directed=False)[1]
        return self._comp

    def _solve(self, c: np.ndarray, capped: bool) -> np.ndarray | None:
        """A feasible point minimising ``c @ x`` (unknown cells capped at ``v + m`` if ``capped``)."""
        if capped not in self._models:
            self._models[capped] = _Model(self.a, self.row_lo, self.row_hi, self.lo,
                                          self.cap if capped else self.hi)
        return self._models[capped].solve(c)

    def _update(self, x, lo_pt, hi_pt) -> None:
        lo_pt[self.cols] = np.minimum(lo_pt[self.cols], x)
        hi_pt[self.cols] = np.maximum(hi_pt[self.cols], x)

    def _unmet(self, todo, lo_pt, hi_pt, exact_lo, exact_hi) -> tuple[np.ndarray, np.ndarray]:
        """Cells (global index) whose lower / upper side is not yet settled."""
        lo = np.where(np.isnan(exact_lo), lo_pt, exact_lo)
        hi = np.where(np.isnan(exact_hi), hi_pt, exact_hi)
        ok = hi - lo >= self.m - 2 - TOL
        return todo & ~ok & np.isnan(exact_lo), todo & ~ok & np.isnan(exact_hi)

    def certify(self, todo, lo_pt, hi_pt, exact_lo, exact_hi, prove_unsafe: bool | int = True) -> None:
        """Feasible points that show cells ``todo`` (bool over all cells) safe; the exact bounds of
        those they do not show safe (all of them if ``prove_unsafe`` is True, none if False, or
        only when at most that many are left)."""
        rng = np.random.default_rng(0)          # objective weights only: the result does not depend on them
        if self.unit is not None and self._certify_groups(todo, lo_pt, hi_pt, exact_lo, exact_hi, rng) \
                and prove_unsafe is not True:
            # inside the suppression search: what the small programmes leave counts as unsafe,
            # unless few cells are left (proving each needs the programme over everything)
            need_lo, need_hi = self._unmet(todo, lo_pt, hi_pt, exact_lo, exact_hi)
            cells = np.flatnonzero(need_lo | need_hi)
            if prove_unsafe is not False and 0 < len(cells) <= prove_unsafe:
                self.exact(cells, lo_pt, hi_pt, exact_lo, exact_hi, need_lo, need_hi)
            return
        before = np.inf
        for k in range(ROUNDS):
            need_lo, need_hi = self._unmet(todo, lo_pt, hi_pt, exact_lo, exact_hi)
            left = int(need_lo.sum() + need_hi.sum())
            if left == 0 or left > 0.97 * before:
                break
            before = left
            lo_i = self.pos_of(np.flatnonzero(need_lo))[1]
            hi_i = self.pos_of(np.flatnonzero(need_hi))[1]
            if k < 2:          # all down, then all up
                for idx, sign in ((lo_i, 1.0), (hi_i, -1.0)):
                    if len(idx):
                        c = np.zeros(self.n)
                        c[idx] = sign
                        self._update(self._solve(c, capped=sign < 0), lo_pt, hi_pt)
            else:              # random directions: half of the cells down, the others up
                both = np.union1d(lo_i, hi_i)
                c = np.zeros(self.n)
                c[both] = rng.choice([-1.0, 1.0], len(both)) * rng.uniform(0.5, 1.0, len(both))
                self._update(self._solve(c, capped=True), lo_pt, hi_pt)
        need_lo, need_hi = self._unmet(todo, lo_pt, hi_pt, exact_lo, exact_hi)
        cells = np.flatnonzero(need_lo | need_hi)
        if len(cells) and (prove_unsafe is True or (prove_unsafe is not False and len(cells) <= prove_unsafe)):
            self.exact(cells, lo_pt, hi_pt, exact_lo, exact_hi, need_lo, need_hi)

    def _certify_groups(self, todo, lo_pt, hi_pt, exact_lo, exact_hi, rng) -> bool:
        """Feasible points of programmes over a few units at a time: the unknowns of a few units
        that share identities (neighbouring quarters), with the unknowns without a unit next to
        them (``unit`` -1), every other cell at its true value. Such a point is feasible for the
        whole set, and each programme is small. Groupings of the sizes in :data:`GROUPS`, around
        the units with cells left, while they help. False if the set is too small to group
        (:data:`GROUPS_FROM`)."""
        units = np.unique(self.unit[self.unit >= 0])
        if self.n < GROUPS_FROM or len(units) < 2 * GROUPS[0][0]:
            return False
        code = np.searchsorted(units, self.unit)
        grouped = self.unit >= 0
        inc = abs(self.a).tocsr()
        # rows x units: which units' unknowns each identity holds; units x units: identities shared
        member = sparse.csr_matrix((np.ones(grouped.sum()), (np.flatnonzero(grouped), code[grouped])),
                                   shape=(self.n, len(units)))
        rows_units = ((inc @ member) > 0).astype(float)
        shared = (rows_units.T @ rows_units).toarray()
        np.fill_diagonal(shared, 0)
        hub = np.flatnonzero(~grouped)
        for size, rounds in GROUPS:
            before = np.inf
            for _ in range(rounds):
                need_lo, need_hi = self._unmet(todo, lo_pt, hi_pt, exact_lo, exact_hi)
                left = int(need_lo.sum() + need_hi.sum())
                if left == 0 or left > 0.97 * before:
                    break
                before = left
                need = np.zeros(self.n, dtype=bool)
                need[self.pos_of(np.flatnonzero(need_lo | need_hi))[1]] = True
                for chunk in _groupings(shared, np.unique(code[need & grouped]), size, rng):
                    mine = grouped & np.isin(code, chunk)
                    near = hub[np.asarray((inc[:, hub].T @ (inc @ mine.astype(float))) > 0).ravel()]
                    idx = np.union1d(np.flatnonzero(mine), near)
                    sub_todo = np.zeros_like(todo)
                    sub_todo[self.cols[idx]] = todo[self.cols[idx]]
                    self._sub(idx).certify(sub_todo, lo_pt, hi_pt, exact_lo, exact_hi, prove_unsafe=False)
        return True

    def pos_of(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cells of ``cells`` (global indices) that are unknowns here, and their local positions."""
        cells = np.asarray(cells, dtype=np.int64)
        pos = np.searchsorted(self.cols, cells)
        ok = (pos < self.n) & (self.cols[np.minimum(pos, self.n - 1)] == cells)
        return cells[ok], pos[ok]

    def exact(self, cells, lo_pt, hi_pt, exact_lo, exact_hi, need_lo, need_hi) -> None:
        """Exact bounds of ``cells`` (global indices) on the sides ``need_lo`` / ``need_hi``: each
        programme bounds one cell per block (the blocks are independent)."""
        for sign, need in ((1.0, need_lo), (-1.0, need_hi)):
            idx, pos = self.pos_of(cells[need[cells]])
            if not len(idx):
                continue
            comp = self.comp[pos]
            order = np.lexsort((np.arange(len(idx)), comp))
            # rank of each cell within its block: programme k takes the k-th cell of every block
            sorted_comp = comp[order]
            first = np.r_[0, np.flatnonzero(np.diff(sorted_comp)) + 1]
            rank = np.empty(len(idx), dtype=int)
            rank[order] = np.arange(len(idx)) - np.repeat(first, np.diff(np.r_[first, len(idx)]))
            for k in range(rank.max() + 1):
                batch = np.flatnonzero(rank == k)
                c = np.zeros(self.n)
                c[pos[batch]] = sign
                x = self._solve(c, capped=sign < 0)
                self._update(x, lo_pt, hi_pt)
                if sign > 0:
                    exact_lo[idx[batch]] = x[pos[batch]]
                    continue
                at_cap = (x[pos[batch]] >= self.cap[pos[batch]] - TOL) & (self.cap[pos[batch]] < self.hi[pos[batch]])
                exact_hi[idx[batch[~at_cap]]] = x[pos[batch[~at_cap]]]
                if at_cap.any():
                    self._beyond_cap(idx[batch[at_cap]], lo_pt, hi_pt, exact_hi)

    def _beyond_cap(self, cells, lo_pt, hi_pt, exact_hi) -> None:
        """Upper bounds of cells that reached their cap: without caps, or ``inf`` if unbounded."""
        pos = self.pos_of(cells)[1]
        c = np.zeros(self.n)
        c[pos] = -1.0
        x = self._solve(c, capped=False)
        if x is not None:
            self._update(x, lo_pt, hi_pt)
            exact_hi[cells] = x[pos]
            return
        for i, p in zip(cells, pos):          # some block is unbounded: one programme per cell
            c = np.zeros(self.n)
            c[p] = -1.0
            x = self._solve(c, capped=False)
            exact_hi[i] = np.inf if x is None else x[p]
            if x is not None:
                self._update(x, lo_pt, hi_pt)
