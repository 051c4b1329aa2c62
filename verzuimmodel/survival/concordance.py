r"""Harrell's concordance of a fitted Cox model, as R's ``survival::concordance``.

:func:`concordance` (and :func:`concordance_index` for any risk score) count the comparable
pairs -- concordant, discordant, tied in the predictor, tied in time -- with weights, strata and
late entry as R does (``timewt = "n"``), and give C with its infinitesimal-jackknife standard
error. The pairs are counted in :math:`O(n \log n)`: two sweeps over the rows sorted by time, with a
Fenwick tree over the ranks of the risk score (as R's balanced tree), compiled by numba (a loop
over rows is the algorithm; numpy has no vectorised form of it that is not a pass over the rows
per bit of the rank, about ten times slower). Split from :mod:`.cox_checks` (residuals and the
proportional-hazards test), whose ``_model_rows`` rebuilds the fit's rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .cox import CoxPH
from .cox_checks import _linear_predictor, _model_rows, jit

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
    d, XT, off = _model_rows(model, df, columns=True)
    eta = jit(_linear_predictor)(XT, model.params_.to_numpy(dtype=float), off)[0]
    return concordance_index(d.exit, d.event, eta, entry=d.entry if d.has_entry else None, strata=d.strata,
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
    xr = np.unique(risk, return_inverse=True)[1].reshape(-1).astype(np.int64)     # dense rank of the risk score
    # rows by (stratum, time); the late entries by (stratum, entry), as positions among those rows
    order = np.argsort(time) if strata is None else np.lexsort((time, s))
    rows = np.flatnonzero(late)
    if len(rows):
        rows = rows[np.argsort(entry[rows]) if strata is None else np.lexsort((entry[rows], s[rows]))]
    at = np.empty(n, dtype=np.int64)
    at[order] = np.arange(n)
    w = w[order]
    (conc_i, disc_i, tied_i), totals = jit(_sweep, _add, _below, _clear)(
        time[order], dead[order].astype(np.int64), xr[order], w, s[order], at[rows],
        entry[rows] if len(rows) else np.zeros(0), int(xr.max()) + 1 if n else 1)
    n_c, n_d, n_t, tied_y, tied_xy = totals
    npair = n_c + n_d + n_t
    with np.errstate(invalid="ignore", divide="ignore"):
        somers = (n_c - n_d) / npair
        dfbeta = w * (conc_i - disc_i - somers * (conc_i + disc_i + tied_i)) / npair
    if cluster is not None:
        dfbeta = np.bincount(pd.factorize(np.asarray(cluster), sort=True)[0][order], weights=dfbeta)
    se = np.sqrt(float(np.sum(dfbeta * dfbeta)) / 4)         # not a BLAS dot: no threads woken for it
    return pd.DataFrame([{"concordance": (somers + 1) / 2, "std_error": se,
                          "concordant": n_c, "discordant": n_d, "tied_x": n_t, "tied_y": tied_y - tied_xy,
                          "tied_xy": tied_xy, "n": n}])


def _add(tree, r, v):                                                      # pragma: no cover (numba)
    """Add ``v`` at rank ``r`` of the Fenwick tree ``tree`` (ranks from 0, the tree from 1)."""
    i = r + 1
    while i < len(tree):
        tree[i] += v
        i += i & -i


def _below(tree, r):                                                       # pragma: no cover (numba)
    """Sum of the Fenwick tree over the ranks below ``r``."""
    out = 0.0
    i = r
    while i > 0:
        out += tree[i]
        i -= i & -i
    return out


def _clear(tree, point, rank, lo, hi):                                     # pragma: no cover (numba)
    """Empty the tree and the point weights after the rows ``lo..hi-1``: all of it when cheaper."""
    if (hi - lo) * 24 > len(tree):
        tree[:] = 0.0
        point[:] = 0.0
        return
    for r in rank[lo:hi]:
        point[r] = 0.0
        i = r + 1
        while i < len(tree):
            tree[i] = 0.0
            i += i & -i


def _sweep(time, dead, rank, w, stratum, epos, entry, nrank):              # pragma: no cover (numba)
    """The comparable pairs' weighted counts per row, by two sweeps over the time-sorted rows of each
    stratum with a Fenwick tree over the risk ranks (compiled by :func:`jit`); see :func:`concordance_index`.

    Down the times: at time ``t`` the rows entering at or after ``t`` leave the tree, the censored rows at
    ``t`` join it, each death at ``t`` counts the tree's weight below, at and above its rank
    (concordant, tied, discordant), then the deaths join. Up the times: a row subtracts the deaths it
    sees at its entry (those up to the entry time), then a death counts the deaths before its time and a
    censored row those up to and at its time (above its rank: concordant, tied, below: discordant).
    ``epos`` are the positions of the late entries, sorted by stratum and entry, ``entry`` their times.
    Returns the per-row counts ``(3, n)`` and ``(concordant, discordant, tied_x, tied_y, tied pairs of
    deaths also tied in the risk)`` over all pairs.
    """
    n = len(time)
    tree = np.zeros(nrank + 1)
    point = np.zeros(nrank)
    group = np.zeros(nrank)
    out = np.zeros((3, n))
    tot = np.zeros(5)
    start, e0 = 0, 0
    while start < n:
        end = start + 1
        while end < n and stratum[end] == stratum[start]:
            end += 1
        e1 = e0
        while e1 < len(epos) and stratum[epos[e1]] == stratum[start]:
            e1 += 1
        # down the times: a death's later rows
        total = 0.0
        ep = e1 - 1
        hi = end
        while hi > start:
            lo = hi - 1
            while lo > start and time[lo - 1] == time[hi - 1]:
                lo -= 1
            t = time[lo]
            while ep >= e0 and entry[ep] >= t:
                j = epos[ep]
                _add(tree, rank[j], -w[j])
                point[rank[j]] -= w[j]
                total -= w[j]
                ep -= 1
            for i in range(lo, hi):
                if dead[i] == 0:
                    _add(tree, rank[i], w[i])
                    point[rank[i]] += w[i]
                    total += w[i]
            wd = 0.0
            wd2 = 0.0
            for i in range(lo, hi):
                if dead[i] == 1:
                    r = rank[i]
                    below = _below(tree, r)
                    at = point[r]
                    above = total - below - at
                    out[0, i] += below
                    out[1, i] += above
                    out[2, i] += at
                    tot[0] += w[i] * below
                    tot[1] += w[i] * above
                    tot[2] += w[i] * at
                    tot[4] += w[i] * group[r]          # deaths tied in time and in risk
                    group[r] += w[i]
                    wd += w[i]
                    wd2 += w[i] * w[i]
            tot[3] += (wd * wd - wd2) / 2
            for i in range(lo, hi):
                if dead[i] == 1:
                    group[rank[i]] = 0.0
                    _add(tree, rank[i], w[i])
                    point[rank[i]] += w[i]
                    total += w[i]
            hi = lo
        _clear(tree, point, rank, start, end)
        # up the times: a row's earlier deaths
        total = 0.0
        ep = e0
        lo = start
        while lo < end:
            hi = lo + 1
            while hi < end and time[hi] == time[lo]:
                hi += 1
            t = time[lo]
            while ep < e1 and entry[ep] < t:
                j = epos[ep]
                below = _below(tree, rank[j])
                at = point[rank[j]]
                out[0, j] -= total - below - at
                out[1, j] -= below
                out[2, j] -= at
                ep += 1
            for k in range(2):                        # the deaths before their own time, then the censored
                for i in range(lo, hi):
                    if dead[i] == 1 - k:
                        below = _below(tree, rank[i])
                        at = point[rank[i]]
                        out[0, i] += total - below - at
                        out[1, i] += below
                        out[2, i] += at
                if k == 0:
                    for i in range(lo, hi):
                        if dead[i] == 1:
                            _add(tree, rank[i], w[i])
                            point[rank[i]] += w[i]
                            total += w[i]
            lo = hi
        _clear(tree, point, rank, start, end)
        start, e0 = end, e1
    return out, tot
