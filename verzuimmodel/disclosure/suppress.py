r"""Primary and complementary (secondary) suppression over a set of outputs.

*Primary* suppression hides every printed count from 1 to :math:`m-1` (:math:`m` =
``MIN_COUNT`` = 10) and every share whose numerator is such a count. That alone is not enough:
the hidden cells can be solved from the identities that link the shown ones (a stock-flow
identity with one hidden term gives that term exactly). *Secondary* suppression hides further,
larger cells until the audit (:func:`verzuimmodel.disclosure.audit`) finds no hidden cell, and
no small implied count (a difference of two cumulative columns, the complement of a share), that
the attacker can narrow below the whole range 1..m-1.

The greedy search (tau-ARGUS' audit-and-repair in small):

1. hide the primary cells, and every cell linked to a hidden one (the same number printed twice;
   a share whose denominator is hidden);
2. an identity in which one unknown cell is left pins it down: while such an identity pins an
   audited cell, hide the cheapest shown cell of that identity;
3. audit the pattern by linear programming; for every unsafe cell hide the cheapest shown cell
   of an identity it is in (cheapest: a zero, then a share, then a smaller count before a larger
   one), and go back to 2 until the audit passes.

Cells of coarser grouping levels can be *fixed* (their pattern chosen before): then only the
finer cells are candidates, so every output of one data set — everything together, by region,
by school — is a subset of one jointly protected publication, whichever of them is asked for.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from ._rules import MIN_COUNT
from .audit import audit
from .cells import CellSet

__all__ = ["Protection", "protect", "protect_hierarchy", "primary", "DisclosureWarning"]

MAX_ROUNDS = 60


class DisclosureWarning(UserWarning):
    """Secondary suppression could not make every hidden cell safe (see ``Protection.audit``)."""


@dataclass(frozen=True)
class Protection:
    """A suppression pattern and its audit.

    Attributes
    ----------
    hidden : bool array over the cells: printed cells that are hidden.
    primary : bool array: the printed small counts (1..m-1), hidden by the first rule.
    audit : :func:`verzuimmodel.disclosure.audit` of the pattern (the last one run).
    rounds : audit rounds the search needed.
    """

    hidden: np.ndarray
    primary: np.ndarray
    audit: pd.DataFrame
    rounds: int

    @property
    def safe(self) -> bool:
        return bool(self.audit["safe"].all())

    @property
    def secondary(self) -> np.ndarray:
        return self.hidden & ~self.primary


PROVE_AT_MOST = 32
"""Inside the search, cells left uncertified by feasible points get exact bounds only when at most
this many are left; more are treated as unsafe (measured on 4 national regions: 57 s -> 8 s, 0.2%
more cells hidden)."""


def primary(cs: CellSet, min_count: int = MIN_COUNT) -> np.ndarray:
    """Printed cells holding a count from 1 to ``min_count - 1``."""
    v = cs.cells["value"].to_numpy()
    return cs.published & (v >= 1) & (v <= min_count - 1)


def _cost(cs: CellSet) -> np.ndarray:
    """What hiding a cell costs: a zero least (it protects its neighbours at no loss: it may be any
    hidden number to the attacker), then a share's numerator, then counts, the smaller the less."""
    v = cs.cells["value"].to_numpy().astype(float)
    return np.where(v == 0, 0.1, np.where(cs.cells["kind"].to_numpy() == "share", 0.5, v))


def protect(cs: CellSet, min_count: int = MIN_COUNT, *, fixed: np.ndarray | None = None,
            fixed_hidden: np.ndarray | None = None, force: np.ndarray | None = None,
            knows_status: bool = False, warn: bool = True,
            points: tuple[np.ndarray, np.ndarray] | None = None) -> Protection:
    """Primary and secondary suppression of the cells ``cs`` until the audit passes.

    Parameters
    ----------
    cs : cells and identities of the outputs produced together.
    min_count : counts from 1 to ``min_count - 1`` are hidden.
    fixed, fixed_hidden : bool arrays: cells whose pattern was chosen before (a coarser grouping
        level) and, of those, the hidden ones. Fixed cells are never hidden here.
    force : bool array: cells hidden in any case, as the primary ones (a finer level could not be
        protected while they were shown).
    points : feasible points of an earlier search on the same cells whose hidden cells are all
        hidden now (see :func:`verzuimmodel.disclosure.audit`), updated in place.
    knows_status : the attacker model of the audit (:func:`verzuimmodel.disclosure.audit`).
    warn : emit a :class:`DisclosureWarning` if some cell cannot be made safe.

    Returns
    -------
    :class:`Protection`.
    """
    n = cs.n
    fixed = np.zeros(n, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    fixed_hidden = np.zeros(n, dtype=bool) if fixed_hidden is None else np.asarray(fixed_hidden, dtype=bool) & fixed
    prim = primary(cs, min_count)
    force = np.zeros(n, dtype=bool) if force is None else np.asarray(force, dtype=bool) & cs.published
    hidden = cs.close_links(((prim | force) & ~fixed) | fixed_hidden)
    cand = cs.published & ~fixed
    cost = _cost(cs)
    inc = sparse.vstack([(cs.eq != 0), (cs.le != 0)]).astype(np.int8).tocsr()
    inc_eq = (cs.eq != 0).astype(np.int8).tocsr()
    rounds = picked = 0
    fails = np.zeros(n, dtype=int)
    v = cs.cells["value"].to_numpy().astype(float)
    if points is None:                     # feasible points carried from one audit to the next
        points = (v.copy(), v.copy())
    while True:
        hidden = _singletons(cs, hidden, cand, cost, inc_eq, min_count)
        result = audit(cs, hidden, min_count, knows_status=knows_status, quick=True)
        result.attrs["quick"] = True
        if result["safe"].all():     # nothing narrow by propagation: prove it by linear programming
            rounds += 1
            # when many cells are left that feasible points do not certify (most of them unsafe),
            # they count as unsafe here: hiding more is cheaper than proving each; few are proved
            result = audit(cs, hidden, min_count, knows_status=knows_status, points=points,
                           prove_unsafe=PROVE_AT_MOST)
        bad = result[~result["safe"]]
        picks = ()
        if not (bad.empty or rounds >= MAX_ROUNDS or (picked := picked + 1) > 20 * MAX_ROUNDS):
            cells = bad["cell"].to_numpy()
            fails[cells] += 1           # a cell still unsafe: twice as many picks for it each time
            picks = _cheapest(inc, cells, cand & ~hidden, cost, k=2 ** np.maximum(fails[cells] - 1, 0))
        if not len(picks):
            # the search gave up: proved bounds of what is left (unless the last audit proved them)
            if not bad.empty and (result.attrs.get("quick") or not bad["exact"].all()):
                result = audit(cs, hidden, min_count, knows_status=knows_status, points=points)
            break
        hidden[picks] = True
        hidden = cs.close_links(hidden)
    if warn and not result["safe"].all():
        warnings.warn(f"{int((~result['safe']).sum())} hidden cells could not be protected against "
                      "differencing", DisclosureWarning, stacklevel=2)
    return Protection(hidden, prim & hidden, result, rounds)


BACKTRACKS = 3
"""Times the coarser levels' pattern is widened for a finer level that cannot be protected."""


def protect_hierarchy(cs: CellSet, min_count: int = MIN_COUNT, *, knows_status: bool = False,
                      backtrack_levels: int | None = None, warn: bool = True) -> tuple[np.ndarray, Protection]:
    """Protect the grouping levels of ``cs`` (``cells["level"]``) from the coarsest down.

    Each level is protected with the coarser levels' pattern fixed (:func:`protect` with
    ``fixed``), so a coarser table is the same whichever finer ones are published beside it. A
    coarser pattern chosen first can leave a finer cell that no finer suppression protects (a
    region's count of 1 beside a national total that the other regions' cells pin down): then the
    shown coarser cells in the identities of the cells left unsafe are hidden as well (``force``)
    and the levels are protected again from the coarsest, as tau-ARGUS' modular method backtracks,
    at most :data:`BACKTRACKS` times. Only levels below ``backtrack_levels`` (default: all) widen
    the coarser ones: the coarser tables then depend on which finer levels are protected, so every
    output that is to be one publication must protect the same levels below it.

    Returns
    -------
    ``(hidden, protection)``: the hidden cells of every level, and the :class:`Protection` of the
    finest level (its audit covers every level's cells as published together).
    """
    level = cs.cells["level"].to_numpy()
    n_levels = int(level.max()) + 1 if cs.n else 1
    backtrack_levels = n_levels if backtrack_levels is None else backtrack_levels
    inc = sparse.vstack([cs.eq != 0, cs.le != 0]).tocsr()
    force = np.zeros(cs.n, dtype=bool)
    hidden = np.zeros(cs.n, dtype=bool)
    points = {}
    for attempt in range(BACKTRACKS + 1):
        # again from the coarsest level, each level starting from its last pattern: every pattern
        # then holds the last one, so the feasible points found for it still hold and are kept
        start, hidden = hidden, np.zeros(cs.n, dtype=bool)
        widened = False
        for k in range(n_levels):
            keep = level <= k
            fixed = (level < k)[keep]
            sub = cs.subset(keep)
            v = sub.cells["value"].to_numpy().astype(float)
            prot = protect(sub, min_count, fixed=fixed, fixed_hidden=hidden[keep] & fixed,
                           force=(force | (start & (level == k)))[keep], knows_status=knows_status, warn=False,
                           points=points.setdefault(k, (v.copy(), v.copy())))
            hidden[keep] = prot.hidden
            if prot.safe or not 0 < k < backtrack_levels or attempt == BACKTRACKS:
                continue
            unsafe = np.flatnonzero(keep)[prot.audit.loc[~prot.audit["safe"], "cell"].to_numpy()]
            near = np.asarray(inc[np.unique(inc[:, unsafe].nonzero()[0])].sum(axis=0)).ravel() > 0
            coarser = near & (level < k) & cs.published & ~hidden
            if coarser.any():
                force |= coarser
                widened = True
                break
        if not widened:
            break
    if warn and not prot.safe:       # the finest level's audit covers the coarser levels' cells too
        warnings.warn(f"{int((~prot.audit['safe']).sum())} hidden cells could not be protected against "
                      "differencing", DisclosureWarning, stacklevel=2)
    return hidden, prot


def _cheapest(inc: sparse.csr_matrix, cells: np.ndarray, cand: np.ndarray, cost: np.ndarray,
              max_reach: int = 4, k: np.ndarray | None = None) -> np.ndarray:
    """For each cell in ``cells``, the cheapest candidate in an identity it is in (the ``k[j]``
    cheapest for the j-th cell); for a cell with none there, in the identities of the cells it
    shares one with, and so on (unique indices)."""
    k = np.ones(len(cells), dtype=int) if k is None else np.asarray(k)
    picks = []
    reach = sparse.csr_matrix((np.ones(len(cells), dtype=np.int8), (np.arange(len(cells)), cells)),
                              shape=(len(cells), inc.shape[1]))
    who = np.arange(len(cells))
    for _ in range(max_reach):
        if not len(who):
            break
        reach = ((reach @ inc.T) @ inc).tocsr()          # cells one identity further
        reach.data[:] = 1
        coo = reach.tocoo()
        ok = cand[coo.col]
        t = pd.DataFrame({"who": coo.row[ok], "cell": coo.col[ok], "cost": cost[coo.col[ok]]})
        t = t.sort_values(["who", "cost", "cell"], kind="stable")
        best = t[t.groupby("who").cumcount().to_numpy() < k[who[t["who"].to_numpy()]]]
        picks.append(best["cell"].to_numpy())
        left = np.setdiff1d(np.arange(reach.shape[0]), best["who"].to_numpy())
        reach, who = reach[left], who[left]
    return np.unique(np.concatenate(picks)) if picks else np.empty(0, dtype=np.int64)


def _singletons(cs: CellSet, hidden, cand, cost, inc_eq, min_count) -> np.ndarray:
    """Hide cells until no identity with a single unknown cell pins an audited cell (step 2)."""
    v = cs.cells["value"].to_numpy()
    small = (v >= 1) & (v <= min_count - 1)
    implied = ~cs.published
    while True:
        var = (hidden & cs.published) | implied
        audited = (hidden & (v != 0)) | (implied & small)
        picks = []
        live = var.copy()
        while True:
            n_var = inc_eq @ live.astype(np.int64)
            rows = np.flatnonzero(n_var == 1)
            if not len(rows):
                break
            sub = inc_eq[rows].multiply(live[None, :].astype(np.int8)).tocoo()
            pinned = sub.col[sub.data != 0]
            row_of = rows[sub.row[sub.data != 0]]
            bad = audited[pinned]
            if bad.any():
                picks.append(row_of[bad])
            live[pinned] = False
        if not picks:
            return hidden
        rows = np.unique(np.concatenate(picks))
        sub = inc_eq[rows].tocoo()
        ok = (cand & ~hidden)[sub.col]
        if not ok.any():
            return hidden
        t = pd.DataFrame({"row": sub.row[ok], "cell": sub.col[ok], "cost": cost[sub.col[ok]]})
        best = t.sort_values(["row", "cost", "cell"], kind="stable").drop_duplicates("row")["cell"].to_numpy()
        hidden = hidden.copy()
        hidden[best] = True
        hidden = cs.close_links(hidden)
