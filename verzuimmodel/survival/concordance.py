r"""Harrell's concordance of a fitted Cox model, as R's ``survival::concordance``.

:func:`concordance` (and :func:`concordance_index` for any risk score) count the comparable
pairs -- concordant, discordant, tied in the predictor, tied in time -- with weights, strata and
late entry as R does (``timewt = "n"``), and give C with its infinitesimal-jackknife standard
error. Split from :mod:`.cox_checks` (residuals and the proportional-hazards test), whose
``model_data`` rebuilds the fit's rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .cox import CoxPH
from .cox_checks import model_data

__all__ = ["concordance", "concordance_index"]


def concordance(model: CoxPH, df: pd.DataFrame) -> pd.DataFrame:
    """Harrell's C of a fitted Cox model on its data, as R's ``concordance(fit)``.

    Parameters
    ----------
    model : a fitted :class:`~verzuimmodel.survival.CoxPH` (its strata, weights and clusters are used).
    df : the data frame the model was fitted on.

    Returns
    -------
    One-row DataFrame: ``concordance``, ``std_error`` (infinitesimal jackknife), the weighted pair
    counts ``concordant, discordant, tied_x, tied_y, tied_xy`` and ``n`` (rows).
    """
    md = model_data(model, df)
    d = md.d
    return concordance_index(d.exit, d.event, md.eta, entry=d.entry if d.has_entry else None, strata=d.strata,
                             weights=d.weights, cluster=d.cluster)


def concordance_index(time, event, risk, *, entry=None, strata=None, weights=None, cluster=None) -> pd.DataFrame:
    """Harrell's C of ``risk`` (higher risk, shorter time) for ``(entry, time]`` survival data; see the module
    docstring. Arrays of one value per row; ``strata`` and ``cluster`` integer codes or labels."""
    time = np.asarray(time, dtype=float)
    n = len(time)
    dead = np.asarray(event) == 1
    risk = np.asarray(risk, dtype=float)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    s = np.zeros(n, dtype=np.int64) if strata is None else pd.factorize(np.asarray(strata), sort=True)[0]
    entry = None if entry is None else np.asarray(entry, dtype=float)
    for name, v in (("event", dead), ("risk", risk), ("weights", w), ("strata", s), ("entry", entry)):
        if v is not None and len(v) != n:
            raise ValueError(f"{name}: got {len(v):,} values for {n:,} times; expected one per row")
    late = np.isfinite(entry) if entry is not None else np.zeros(n, dtype=bool)
    has_entry = bool(late.any())
    # time keys: within a stratum a death at t has key 2u(t), a row leaving at t key 2u(t) + (1 - event), a row
    # entering at t key 2u(t) + 1 (u: the rank of t); "at risk after a death" is then a key above the death's
    utimes = np.unique(np.concatenate([time, entry[late]]) if has_entry else time)
    span = 2 * len(utimes) + 2
    base = s * span
    E = base + 2 * np.searchsorted(utimes, time) + (~dead)
    F = base - 1                                   # no late entry: at risk from the stratum's start
    if has_entry:
        F[late] += 2 + 2 * np.searchsorted(utimes, entry[late])
    xr = np.unique(risk, return_inverse=True)[1].astype(np.int64)
    nbits = int(xr.max()).bit_length() if n else 0
    sr = (s << nbits) | xr                         # stratum above the risk rank: comparisons stay within strata
    Dk, xd, wd = E[dead], xr[dead], w[dead]
    # a death's comparable rows: exit key in (D, end of stratum), less those entering at or after it
    less_f, eq_f, tot_f = _range_rank_sums(E, sr, w, sr[dead], nbits, lo=Dk)
    if has_entry:
        lf, ef, tf = _range_rank_sums(F[late], sr[late], w[late], sr[dead], nbits, lo=Dk)
        less_f, eq_f, tot_f = less_f - lf, eq_f - ef, tot_f - tf
    # a row's deaths: those with key in (F, E)
    less_r, eq_r, tot_r = _range_rank_sums(Dk, sr[dead], wd, sr, nbits, lo=F if has_entry else None, hi=E)
    # per row, weighted counts of its comparable pairs: concordant (the death has the higher risk), etc.
    conc_i = tot_r - less_r - eq_r                 # as the later row: deaths with a higher risk than its own
    disc_i = less_r
    tied_i = eq_r
    conc_i[dead] += less_f                         # as the death: later rows with a lower risk than its own
    disc_i[dead] += tot_f - less_f - eq_f
    tied_i[dead] += eq_f
    n_c, n_d, n_t = float(wd @ less_f), float(wd @ (tot_f - less_f - eq_f)), float(wd @ eq_f)
    tied_y = _tied_pairs(Dk, wd)
    tied_xy = _tied_pairs(np.unique(Dk, return_inverse=True)[1] * (xr.max() + 1) + xd, wd)
    npair = n_c + n_d + n_t
    with np.errstate(invalid="ignore", divide="ignore"):
        somers = (n_c - n_d) / npair
        dfbeta = w * (conc_i - disc_i - somers * (conc_i + disc_i + tied_i)) / npair
    if cluster is not None:
        dfbeta = np.bincount(pd.factorize(np.asarray(cluster), sort=True)[0], weights=dfbeta)
    return pd.DataFrame([{"concordance": (somers + 1) / 2, "std_error": np.sqrt(float(dfbeta @ dfbeta) / 4),
                          "concordant": n_c, "discordant": n_d, "tied_x": n_t, "tied_y": tied_y - tied_xy,
                          "tied_xy": tied_xy, "n": n}])


def _tied_pairs(key: np.ndarray, w: np.ndarray) -> float:
    """Sum of ``w_i w_j`` over unordered pairs with equal ``key``."""
    if len(key) == 0:
        return 0.0
    inv = np.unique(key, return_inverse=True)[1]
    tot = np.bincount(inv, weights=w)
    return float((tot @ tot - w @ w) / 2)


def _range_rank_sums(pkey, prank, pw, qrank, nbits, lo=None, hi=None):
    """For each query: sums of the points' weights over the points of its group with ``lo < pkey < hi``
    and, among those, ``prank < qrank`` and ``prank == qrank``; returns ``(less, equal, total)``.

    A rank is the group (stratum) above ``nbits`` bits of risk rank; keys sort by group first. A bound
    left out is the group's start (``lo``) or end (``hi``). Points and the bounds are sorted once by
    (key, ``hi`` before and ``lo`` after points with equal key); a query's sum is then the point weight
    between its bounds within the group. The less-than sums split the rank comparison at the highest
    differing bit ``b``: point and query agree above ``b`` and the point has 0, the query 1 at ``b``.
    From the top bit down, the order is kept sorted by (rank >> (b + 1), key) by a stable partition of
    each group on bit ``b`` (prefix sums, no sort), so a bit costs a few passes over the arrays.
    """
    nq, npt = len(qrank), len(pkey)
    if npt == 0 or nq == 0:
        return np.zeros(nq), np.zeros(nq), np.zeros(nq)
    bounds = [(b, kind) for b, kind in ((hi, 0), (lo, 2)) if b is not None]
    key = np.concatenate([pkey] + [b for b, _ in bounds]).astype(np.int64)
    kind = np.concatenate([np.ones(npt, np.int64)] + [np.full(nq, k, np.int64) for _, k in bounds])
    n = len(key)
    rank = np.concatenate([prank] + [qrank] * len(bounds))
    it = np.int32 if max(n, int(rank.max())) < 2**31 else np.int64     # half the memory traffic when it fits
    order = np.argsort(key * 3 + kind)
    rank = rank.astype(it)[order]
    w = np.concatenate([pw, np.zeros(len(bounds) * nq)])[order]       # bounds weigh nothing
    pos = np.arange(n, dtype=it)
    at = np.empty(n, it)
    at[order] = pos                                  # position of each point and bound
    hpos = at[npt:npt + nq] if hi is not None else None
    lpos = at[n - nq:] if lo is not None else None

    def between(gs, ge, weights):
        """Per query: the weight between its bounds within the bounds' group."""
        cs = np.concatenate([[0.0], np.cumsum(weights)])
        if hpos is None:
            return cs[ge[lpos]] - cs[lpos]
        out = cs[hpos] - cs[gs[hpos]]
        return out if lpos is None else out - (cs[lpos] - cs[gs[lpos]])

    gs, ge = _runs(rank >> nbits)
    total = between(gs, ge, w)
    less = np.zeros(nq)
    for b in range(nbits - 1, -1, -1):
        low = (rank >> b) & 1 == 0
        less += ((qrank >> b) & 1) * between(gs, ge, w * low)
        # stable partition of each group on the bit: the order becomes (rank >> b, key, kind)
        cz = np.concatenate([np.zeros(1, it), np.cumsum(low, dtype=it)])
        before = cz[:-1] - cz[gs]
        new = gs + np.where(low, before, cz[ge] - cz[gs] + (pos - gs) - before)
        inv = np.empty(n, it)
        inv[new] = pos
        rank, w = rank[inv], w[inv]
        hpos = new[hpos] if hpos is not None else None
        lpos = new[lpos] if lpos is not None else None
        gs, ge = _runs(rank >> b)
    equal = between(gs, ge, w)
    return less, equal, total


def _runs(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per position of the sorted array ``g``: the first and one-past-last position of its run of equal values."""
    first = np.empty(len(g), dtype=bool)
    first[:1] = True
    np.not_equal(g[1:], g[:-1], out=first[1:])
    starts = np.flatnonzero(first).astype(g.dtype)
    run = np.cumsum(first, dtype=g.dtype) - 1
    return starts[run], np.append(starts[1:], len(g)).astype(g.dtype)[run]
