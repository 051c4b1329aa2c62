r"""The audit: can an attacker pin a hidden cell down from the shown ones?

For a :class:`~verzuimmodel.disclosure.cells.CellSet` and a pattern of hidden cells, the attacker
knows the shown values :math:`x_S = v_S`, the identities :math:`A x = 0` and :math:`G x \le 0`,
non-negativity, and what the outputs say about each hidden cell (its bounds
:math:`l_i \le x_i \le u_i`, below). For every hidden cell :math:`i` the audit finds the
attacker's interval

.. math::

    \underline{x}_i = \min x_i, \quad \overline{x}_i = \max x_i \quad \text{s.t.}\quad
    A x = 0,\; G x \le 0,\; x_S = v_S,\; l \le x \le u,

by linear programming (HiGHS, ``highspy``: :mod:`._solver`), as tau-ARGUS' audit does. Whole
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
cells as there are blocks). All programmes of one audit share their feasible set, so each is
solved from the last one's optimal basis (:mod:`._solver`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from ._rules import MIN_COUNT
from ._solver import TOL, AuditError, Solver
from .cells import CellSet

__all__ = ["audit", "propagate", "AUDIT_COLUMNS", "AuditError"]

AUDIT_COLUMNS = ["table", "row", "column", "kind", "status", "value", "lower", "upper", "exact", "safe", "cell"]
"""Columns of :func:`audit`."""

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
    solver = None if quick else Solver.of(cs.eq, cs.le, var, lo_b, hi_b, v, min_count, _units(cs))
    if quick:
        lo_pt, hi_pt = np.where(narrow, lo_pt, -np.inf), np.where(narrow, hi_pt, np.inf)
    elif solver.n:
        todo = audited & var & (exact or ~narrow)
        if exact:
            solver.exact(np.flatnonzero(todo), lo_pt, hi_pt, exact_lo, exact_hi, need_lo=todo, need_hi=todo)
        else:
            solver.certify(todo, lo_pt, hi_pt, exact_lo, exact_hi, prove_unsafe)
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


def _units(cs: CellSet) -> np.ndarray | None:
    """Each cell's ``unit`` (see :class:`CellSet`); None if no cell has one."""
    unit = cs.cells["unit"].to_numpy() if "unit" in cs.cells else None
    return None if unit is None or (unit < 0).all() else unit


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
