r"""The audit: can an attacker pin a hidden cell down from the shown ones?

For a :class:`~verzuimmodel.disclosure.cells.CellSet` and a pattern of hidden cells, the attacker
knows the shown values :math:`x_S = v_S`, the identities :math:`A x = 0` and :math:`G x \le 0`,
non-negativity, and what the outputs say about each hidden cell (its bounds
:math:`l_i \le x_i \le u_i`, below). For every hidden cell :math:`i` the audit finds the
attacker's interval

.. math::

    \underline{x}_i = \min x_i, \quad \overline{x}_i = \max x_i \quad \text{s.t.}\quad
    A x = 0,\; G x \le 0,\; x_S = v_S,\; l \le x \le u,

by linear programming (``scipy.optimize.linprog``, HiGHS), as tau-ARGUS' audit does. Whole
numbers only narrow it to :math:`[\lceil\underline{x}_i\rceil, \lfloor\overline{x}_i\rfloor]`.

What the attacker knows about a hidden cell (``knows_status``):

- ``False`` (the default: what the outputs say): every hidden cell is printed the same way
  (missing, "x"), and a zero may be hidden to protect a neighbour, so a hidden cell is only
  known to be :math:`\ge 0`. This is the attacker the suppression search protects against.
- ``True`` (stricter, for inspection): the attacker also knows which hidden cells are the small
  counts, :math:`x_i \in [1, m-1]`; any other hidden cell is :math:`\ge 0`. Every interval is
  then inside the one of the default. A small count that is part of a small total (2 = 1 + 1)
  can never span the whole of 1..9 for this attacker, so some cells fail here by construction.

Implied cells (never printed) are only known to be :math:`\ge 0` (and below ``upper``).

A cell is audited when it is hidden and not zero, or implied and small (1..m-1); it is **safe**
when :math:`\lfloor\overline{x}_i\rfloor - \lceil\underline{x}_i\rceil \ge m-2`: the attacker
cannot narrow it to fewer values than the range 1..m-1 holds. (A hidden zero that comes out as
0 discloses nothing the policy of showing zeros does not.) The audit is exact for the linear
relaxation, rounded inwards to whole numbers; an integer programme could in rare cases narrow an
interval further (tau-ARGUS' audit has the same limit).

Speed: cells fixed by an identity in which every other cell is shown are settled without a
solver; the rest is split into independent blocks (connected components of the identities).
Feasible points found by a few linear programmes that push many cells at once (minimise or
maximise their sum) certify most cells; only cells they do not certify get their own bound, one
cell per block in each programme (the blocks are independent, so one programme bounds as many
cells as there are blocks).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog
from scipy.sparse.csgraph import connected_components

from ._rules import MIN_COUNT
from .cells import CellSet

__all__ = ["audit", "propagate", "AUDIT_COLUMNS", "AuditError"]

AUDIT_COLUMNS = ["table", "row", "column", "kind", "status", "value", "lower", "upper", "exact", "safe", "cell"]
"""Columns of :func:`audit`."""

TOL = 1e-6
ROUNDS = 24
LOCAL_RADII = (2,)
"""Neighbourhoods (identities away) of the small programmes tried before a cell's own bound."""


class AuditError(RuntimeError):
    """The linear programme of the audit failed (it should never: the true values are feasible)."""


def _bounds(cs: CellSet, hidden: np.ndarray, min_count: int, knows_status: bool) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound of every cell as the attacker knows them (shown cells: their value)."""
    c = cs.cells
    v = c["value"].to_numpy().astype(float)
    upper = c["upper"].to_numpy(dtype=float)
    lo = np.zeros(len(v))
    hi = upper.copy()
    if knows_status:
        small = cs.published & hidden & (v >= 1) & (v <= min_count - 1)
        lo[small] = 1
        hi[small] = np.minimum(upper[small], min_count - 1)
    shown = cs.published & ~hidden
    lo[shown] = v[shown]
    hi[shown] = v[shown]
    return lo, hi


def _requirements(cs: CellSet, hidden: np.ndarray, min_count: int) -> tuple[np.ndarray, np.ndarray]:
    """Which cells are audited, and which of those hold a small count."""
    v = cs.cells["value"].to_numpy()
    small = (v >= 1) & (v <= min_count - 1)
    implied = ~cs.published
    audited = (cs.published & hidden & (v != 0)) | (implied & small)
    # a hidden zero protects others; that it could be pinned to 0 discloses nothing (zeros are shown)
    return audited, small & audited


def audit(cs: CellSet, hidden: np.ndarray, min_count: int = MIN_COUNT, *, knows_status: bool = False,
          exact: bool = False, quick: bool = False, points: tuple[np.ndarray, np.ndarray] | None = None,
          prove_unsafe: bool | int = True) -> pd.DataFrame:
    """The attacker's interval of every hidden (and every small implied) cell, and whether it is safe.

    Parameters
    ----------
    cs : the cells and identities of a set of outputs.
    hidden : bool array over ``cs.cells``: the printed cells that are hidden (implied cells are
        never printed; their entry is ignored).
    min_count : the threshold :math:`m`; counts 1..m-1 are small.
    knows_status : whether the attacker knows which hidden cells are the small ones (see the module
        docstring).
    exact : compute the exact bounds of every audited cell. Without it, a cell shown to be safe by
        feasible points gets the widest values found (``exact`` False), which is all safety needs;
        an unsafe cell gets its exact bounds, or bounds found by propagation
        (:func:`propagate`) that are already too narrow.
    quick : propagation only, no linear programme: ``safe`` False is then certain, ``safe`` True
        is not proved (used inside the suppression search).
    prove_unsafe : give a cell that feasible points do not certify its exact bounds (default
        ``True``). ``False``, or a number that fewer cells are left than: such a cell is reported
        unsafe with the widest values found (``exact`` False): ``safe`` True is still proved,
        ``safe`` False may be a safe cell the search did not certify. The suppression search uses
        a number: when many cells are left (most of them unsafe), hiding more is cheaper than the
        programmes that would prove each one, and its last audit proves every cell safe.
    points : ``(low, high)``, arrays over the cells, updated in place: the smallest and largest
        value of each cell in feasible points found so far. Feasible points of a pattern stay
        feasible when more cells are hidden (the attacker knows less), so the suppression search
        passes them from one audit to the next and each audit starts where the last one ended.
        Only for ``knows_status=False`` with the same cells; start with the true values.

    Returns
    -------
    DataFrame with :data:`AUDIT_COLUMNS`, one row per audited cell: ``status`` ``"primary"`` (a
    hidden small count), ``"secondary"`` (hidden to protect another) or ``"implied"``;
    ``lower, upper`` the attacker's interval (whole numbers; ``upper`` may be ``inf``) when
    ``exact``, else an inner interval proved by feasible points; ``safe`` as in the module docstring;
    ``cell`` the position in ``cs.cells``.
    """
    hidden = np.asarray(hidden, dtype=bool) & cs.published
    v = cs.cells["value"].to_numpy().astype(float)
    lo_b, hi_b = _bounds(cs, hidden, min_count, knows_status)
    audited, small = _requirements(cs, hidden, min_count)
    lo_pt, hi_pt = v.copy(), v.copy()                 # the true values are a feasible point
    if points is not None and not knows_status:       # and so are those of a pattern with fewer hidden
        lo_pt, hi_pt = np.minimum(lo_pt, points[0]), np.maximum(hi_pt, points[1])
    exact_lo = np.full(len(v), np.nan)
    exact_hi = np.full(len(v), np.nan)
    var = ~(cs.published & ~hidden)                   # unknown to the attacker: hidden and implied cells
    _settle_singletons(cs, var, exact_lo, exact_hi, v)
    # bounds propagated identity by identity are the attacker's too: too narrow there is unsafe
    out_lo, out_hi = propagate(cs, np.where(var, lo_b, v), np.where(var, hi_b, v))
    narrow = var & audited & (np.floor(out_hi + TOL) - np.ceil(out_lo - TOL) < min_count - 2)
    if not exact:
        exact_lo[narrow], exact_hi[narrow] = out_lo[narrow], out_hi[narrow]
    solver = _Solver(cs, var, lo_b, hi_b, v, min_count) if not quick else None
    if quick:
        lo_pt, hi_pt = np.where(narrow, lo_pt, -np.inf), np.where(narrow, hi_pt, np.inf)
    elif solver.n:
        todo = audited & var & (exact or ~narrow)
        if exact:
            solver.exact(np.flatnonzero(todo), lo_pt, hi_pt, exact_lo, exact_hi, need_lo=todo, need_hi=todo)
        else:
            solver.certify(todo, small, lo_pt, hi_pt, exact_lo, exact_hi, min_count, prove_unsafe)
    if points is not None and not knows_status and not quick:
        points[0][:] = np.minimum(points[0], lo_pt)
        points[1][:] = np.maximum(points[1], hi_pt)
    lower = np.where(np.isnan(exact_lo), lo_pt, exact_lo)
    upper = np.where(np.isnan(exact_hi), hi_pt, exact_hi)
    lower = np.ceil(lower - TOL)
    upper = np.where(np.isinf(upper), np.inf, np.floor(upper + TOL))
    safe = upper - lower >= min_count - 2
    c = cs.cells
    status = np.where(~cs.published, "implied", np.where(small, "primary", "secondary"))
    out = pd.DataFrame({"table": c["table"].to_numpy(), "row": c["row"].to_numpy(), "column": c["column"].to_numpy(),
                        "kind": c["kind"].to_numpy(), "status": status, "value": c["value"].to_numpy(),
                        "lower": lower, "upper": upper,
                        "exact": ~np.isnan(exact_lo) & ~np.isnan(exact_hi), "safe": safe,
                        "cell": np.arange(cs.n)})
    return out[audited].reset_index(drop=True)


def propagate(cs: CellSet, lo: np.ndarray, hi: np.ndarray, rounds: int = 30) -> tuple[np.ndarray, np.ndarray]:
    r"""Outer bounds of every cell by interval arithmetic, one identity at a time, repeated.

    For a row :math:`\sum_j a_j x_j = 0` (or :math:`\le 0`) and a cell :math:`i` in it,
    :math:`a_i x_i = -\sum_{j \ne i} a_j x_j` lies between the smallest and largest value of the
    right-hand side over the others' bounds. Every bound found holds for the attacker; the linear
    programme can only narrow further.
    """
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    mats = [(m.tocoo(), True) for m in (cs.eq,) if m.nnz] + [(m.tocoo(), False) for m in (cs.le,) if m.nnz]
    for _ in range(rounds):
        changed = False
        for m, is_eq in mats:
            r, j, a = m.row, m.col, m.data.astype(float)
            tmin = np.where(a > 0, a * lo[j], a * hi[j])
            tmax = np.where(a > 0, a * hi[j], a * lo[j])
            ninf_min = np.isinf(tmin)
            ninf_max = np.isinf(tmax)
            n = m.shape[0]
            smin = np.bincount(r, np.where(ninf_min, 0, tmin), n)
            smax = np.bincount(r, np.where(ninf_max, 0, tmax), n)
            cmin = np.bincount(r, ninf_min, n)
            cmax = np.bincount(r, ninf_max, n)
            # the others' sum: row sum less the own term (infinite when another term is)
            omin = np.where(cmin[r] - ninf_min > 0, -np.inf, smin[r] - np.where(ninf_min, 0, tmin))
            omax = np.where(cmax[r] - ninf_max > 0, np.inf, smax[r] - np.where(ninf_max, 0, tmax))
            # a_i x_i <= -omin always; a_i x_i >= -omax for identities
            with np.errstate(invalid="ignore"):
                up = np.where(a > 0, -omin / a, -omax / a if is_eq else np.inf)
                dn = np.where(a > 0, -omax / a if is_eq else -np.inf, -omin / a)
            new_hi = np.full(len(hi), np.inf)
            np.minimum.at(new_hi, j, np.where(np.isnan(up), np.inf, up))
            new_lo = np.full(len(lo), -np.inf)
            np.maximum.at(new_lo, j, np.where(np.isnan(dn), -np.inf, dn))
            nh, nl = np.minimum(hi, new_hi), np.maximum(lo, new_lo)
            if (nh < hi - TOL).any() or (nl > lo + TOL).any():
                changed = True
            hi, lo = nh, nl
        if not changed:
            break
    return lo, hi


def _settle_singletons(cs: CellSet, var: np.ndarray, exact_lo, exact_hi, v) -> None:
    """Cells an identity pins down because every other cell in it is known: fixed (in place)."""
    inc = (cs.eq != 0).astype(np.int64).tocsr()
    while True:
        n_var = inc @ var.astype(np.int64)
        rows = np.flatnonzero(n_var == 1)
        if not len(rows):
            return
        sub = inc[rows].multiply(var[None, :].astype(np.int64)).tocoo()
        cells = np.unique(sub.col[sub.data != 0])
        exact_lo[cells] = exact_hi[cells] = v[cells]
        var[cells] = False


class _Solver:
    """The linear programmes over the cells still unknown after singletons (``var``)."""

    def __init__(self, cs: CellSet, var: np.ndarray, lo_b, hi_b, v, min_count: int):
        self.cols = np.flatnonzero(var)
        self.n = len(self.cols)
        if not self.n:
            return
        known = ~var
        self.pos = np.full(len(var), -1)
        self.pos[self.cols] = np.arange(self.n)

        def reduce(m):
            m = m.tocsc()
            a = m[:, self.cols].tocsr()
            b = -(m[:, np.flatnonzero(known)] @ v[known])
            keep = np.diff(a.indptr) > 0
            return a[keep], b[keep]

        self.a_eq, self.b_eq = reduce(cs.eq)
        self.a_le, self.b_le = reduce(cs.le)
        self.lo = lo_b[self.cols]
        self.hi = hi_b[self.cols]
        self.v = v[self.cols]
        # caps that keep "maximise" bounded: reaching v + m certifies any requirement
        self.cap = np.minimum(self.hi, self.v + min_count)
        inc = sparse.vstack([abs(self.a_eq), abs(self.a_le)]).tocsr()
        adj = (inc.T @ inc).tocsr()
        self.adj = (adj != 0).astype(np.int8).tocsr()
        self.a_eq_c, self.a_le_c = self.a_eq.tocsc(), self.a_le.tocsc()
        self.n_comp, self.comp = connected_components(adj, directed=False)
        # every row's cells lie in one block: the block of a row is that of its first cell
        self.row_comp_eq = self.comp[self.a_eq.indices[self.a_eq.indptr[:-1]]] if self.a_eq.shape[0] else \
            np.zeros(0, dtype=int)
        self.row_comp_le = self.comp[self.a_le.indices[self.a_le.indptr[:-1]]] if self.a_le.shape[0] else \
            np.zeros(0, dtype=int)

    def _solve(self, c: np.ndarray, upper: np.ndarray) -> np.ndarray | None:
        """A feasible point minimising ``c @ x`` with upper bounds ``upper``; None if unbounded.

        The blocks are independent: only those the objective touches are solved, the others stay
        at the true values (a feasible point of theirs), so the programme is as small as it can be.
        """
        blocks = np.zeros(self.n_comp, dtype=bool)
        blocks[self.comp[c != 0]] = True
        cols = blocks[self.comp]
        kw = {}
        for a, b, rc, key in ((self.a_eq, self.b_eq, self.row_comp_eq, "eq"),
                              (self.a_le, self.b_le, self.row_comp_le, "ub")):
            rows = blocks[rc]
            if rows.any():
                kw[f"A_{key}"], kw[f"b_{key}"] = a[rows][:, cols], b[rows]
        r = linprog(c[cols], bounds=np.column_stack([self.lo[cols], upper[cols]]), method="highs", **kw)
        if r.status == 3:
            return None
        if r.status != 0:
            raise AuditError(f"audit linear programme: {r.message}")
        x = self.v.copy()
        x[cols] = r.x
        return x

    def _update(self, x, lo_pt, hi_pt) -> None:
        lo_pt[self.cols] = np.minimum(lo_pt[self.cols], x)
        hi_pt[self.cols] = np.maximum(hi_pt[self.cols], x)

    def _unmet(self, todo, small, lo_pt, hi_pt, exact_lo, exact_hi, m) -> tuple[np.ndarray, np.ndarray]:
        """Cells (global index) whose lower / upper side is not yet settled."""
        lo = np.where(np.isnan(exact_lo), lo_pt, exact_lo)
        hi = np.where(np.isnan(exact_hi), hi_pt, exact_hi)
        ok = hi - lo >= m - 2 - TOL
        need_lo = todo & ~ok & np.isnan(exact_lo)
        need_hi = todo & ~ok & np.isnan(exact_hi)
        return need_lo, need_hi

    def certify(self, todo, small, lo_pt, hi_pt, exact_lo, exact_hi, m, prove_unsafe: bool | int = True) -> None:
        rng = np.random.default_rng(0)          # objective weights only: the result does not depend on them
        before = np.inf
        for k in range(ROUNDS):
            need_lo, need_hi = self._unmet(todo, small, lo_pt, hi_pt, exact_lo, exact_hi, m)
            left = int(need_lo.sum() + need_hi.sum())
            if left == 0 or left > 0.97 * before:
                break
            before = left
            lo_i = self.pos[np.flatnonzero(need_lo)]
            hi_i = self.pos[np.flatnonzero(need_hi)]
            lo_i, hi_i = lo_i[lo_i >= 0], hi_i[hi_i >= 0]
            if k < 2:          # all down, then all up
                for idx, sign in ((lo_i, 1.0), (hi_i, -1.0)):
                    if len(idx):
                        c = np.zeros(self.n)
                        c[idx] = sign
                        self._update(self._solve(c, self.cap if sign < 0 else self.hi), lo_pt, hi_pt)
            else:              # random directions: half of the cells down, the others up
                both = np.union1d(lo_i, hi_i)
                c = np.zeros(self.n)
                c[both] = rng.choice([-1.0, 1.0], len(both)) * rng.uniform(0.5, 1.0, len(both))
                self._update(self._solve(c, self.cap), lo_pt, hi_pt)
        for radius in LOCAL_RADII:
            need_lo, need_hi = self._unmet(todo, small, lo_pt, hi_pt, exact_lo, exact_hi, m)
            for i in np.flatnonzero(need_lo | need_hi):
                self._local(i, radius, need_lo[i], need_hi[i], lo_pt, hi_pt)
        need_lo, need_hi = self._unmet(todo, small, lo_pt, hi_pt, exact_lo, exact_hi, m)
        cells = np.flatnonzero(need_lo | need_hi)
        if len(cells) and (prove_unsafe is True or (prove_unsafe is not False and len(cells) <= prove_unsafe)):
            self.exact(cells, lo_pt, hi_pt, exact_lo, exact_hi, need_lo, need_hi)

    def _local(self, i: int, radius: int, low: bool, high: bool, lo_pt, hi_pt) -> None:
        """Feasible points moving cell ``i`` with only its neighbours (``radius`` identities away)
        free and every other cell at its true value: a smaller programme whose points are
        feasible for the whole set, so what they show is proved."""
        p = self.pos[i]
        if p < 0:
            return
        reach = np.zeros(self.n, dtype=bool)
        reach[p] = True
        for _ in range(radius):
            reach = reach | (self.adj @ reach.astype(np.int8) > 0)
        free = np.flatnonzero(reach)
        fixed = np.flatnonzero(~reach)
        kw = {}
        for a, b, key in ((self.a_eq_c, self.b_eq, "eq"), (self.a_le_c, self.b_le, "ub")):
            if not a.shape[0]:
                continue
            sub = a[:, free].tocsr()
            rows = np.flatnonzero(np.diff(sub.indptr) > 0)
            rhs = b[rows] - a[rows][:, fixed] @ self.v[fixed]
            kw[f"A_{key}"], kw[f"b_{key}"] = sub[rows], rhs
        k = int(np.flatnonzero(free == p)[0])
        for sign, want in ((1.0, low), (-1.0, high)):
            if not want:
                continue
            c = np.zeros(len(free))
            c[k] = sign
            upper = self.cap[free] if sign < 0 else self.hi[free]
            r = linprog(c, bounds=np.column_stack([self.lo[free], upper]), method="highs", **kw)
            if r.status == 0:
                x = self.v.copy()
                x[free] = r.x
                self._update(x, lo_pt, hi_pt)

    def exact(self, cells, lo_pt, hi_pt, exact_lo, exact_hi, need_lo, need_hi) -> None:
        """Exact bounds of ``cells`` (global indices): each programme bounds one cell per block."""
        tasks = [(i, s) for i in cells for s, need in ((1.0, need_lo), (-1.0, need_hi))
                 if need[i] and self.pos[i] >= 0]
        if not tasks:
            return
        pos = np.array([self.pos[i] for i, _ in tasks])
        comp = self.comp[pos]
        order = np.lexsort((np.arange(len(tasks)), comp))
        # rank of each task within its block: programme k takes the k-th task of every block
        sorted_comp = comp[order]
        first = np.r_[0, np.flatnonzero(np.diff(sorted_comp)) + 1]
        rank = np.empty(len(tasks), dtype=int)
        rank[order] = np.arange(len(tasks)) - np.repeat(first, np.diff(np.r_[first, len(tasks)]))
        for k in range(rank.max() + 1):
            batch = np.flatnonzero(rank == k)
            c = np.zeros(self.n)
            sign = np.array([tasks[t][1] for t in batch])
            c[pos[batch]] = sign
            # cap the blocks that are maximised (bounded programme); minimised blocks keep their bounds
            upper = np.where(np.isin(self.comp, comp[batch[sign < 0]]), self.cap, self.hi)
            x = self._solve(c, upper)
            self._update(x, lo_pt, hi_pt)
            at_cap = []
            for t, s in zip(batch, sign):
                i, p = tasks[t][0], pos[t]
                if s > 0:
                    exact_lo[i] = x[p]
                elif x[p] >= self.cap[p] - TOL and self.cap[p] < self.hi[p]:
                    at_cap.append(t)
                else:
                    exact_hi[i] = x[p]
            if at_cap:
                self._beyond_cap(at_cap, tasks, pos, lo_pt, hi_pt, exact_hi)

    def _beyond_cap(self, batch, tasks, pos, lo_pt, hi_pt, exact_hi) -> None:
        """Upper bounds of cells that reached their cap: without caps, or ``inf`` if unbounded."""
        c = np.zeros(self.n)
        c[pos[batch]] = -1.0
        x = self._solve(c, self.hi)
        if x is not None:
            self._update(x, lo_pt, hi_pt)
            for t in batch:
                exact_hi[tasks[t][0]] = x[pos[t]]
            return
        for t in batch:                 # some block is unbounded: one programme per cell
            c = np.zeros(self.n)
            c[pos[t]] = -1.0
            x = self._solve(c, self.hi)
            exact_hi[tasks[t][0]] = np.inf if x is None else x[pos[t]]
            if x is not None:
                self._update(x, lo_pt, hi_pt)
