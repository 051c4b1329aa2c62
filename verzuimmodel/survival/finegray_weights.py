r"""Weighted counting-process data for a Fine–Gray model fitted as a weighted Cox model (R ``survival::finegray``).

:func:`finegray_expand` extends the rows of episodes that end in a competing outcome past that time,
with inverse-probability-of-censoring weights (and, with late entry, of entry; Geskus 2011), so that a
weighted Cox model on the expanded rows estimates the Fine–Gray model. Unlike the direct fit
(:class:`~verzuimmodel.survival.competing.FineGray`, as ``cmprsk::crr``) it handles late entry and
start–stop rows with time-varying covariates.

References: Geskus RB (2011). Cause-specific cumulative incidence estimation and the Fine and Gray
model under both left truncation and right censoring. Biometrics 67:39–49.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import SchemaError
from ._data import group_codes, survival_data

__all__ = ["finegray_expand"]


def finegray_expand(df: pd.DataFrame, *, duration: str, event: str, cause: int = 1, entry: str | None = None,
                    id: str | None = None, weights: str | None = None, strata: str | None = None,
                    prefix: str = "fg") -> pd.DataFrame:
    r"""Expand data for a Fine–Gray model fitted as a weighted Cox model (R ``survival::finegray``).

    Mirrors ``finegray(Surv(<entry>, <duration>, factor(<event>)) ~ ., data, id = <id>,
    weights = <weights>, etype = <cause>)`` (with ``timefix`` off; times are compared exactly):
    the rows of subjects whose episode ends in a *competing* outcome are extended past that time
    over the intervals between censoring (and, with late entry, entry) times that contain a failure
    of ``cause``, with weights :math:`\hat G(t)/\hat G(T_i)` (times :math:`\hat H` for late entry,
    Geskus 2011). All other rows are kept as they are.

    Parameters
    ----------
    df : one row per episode, or start–stop rows (with ``entry`` and ``id``; the outcome only
        on a subject's last row, no gaps).
    duration, event : exit time and outcome code (0 censored, 1..K).
    cause : the outcome of interest.
    entry, id : start time column and subject id for counting-process rows (time-varying
        covariates, late entry).
    weights : optional case weights; multiplied into ``fgwt`` (the censoring curve is
        unweighted, as in R).
    strata : optional column: censoring (and entry) distributions per stratum; rows are returned
        stratum by stratum (strata without an event of ``cause`` are dropped, as in R).
    prefix : prefix of the new columns.

    Returns
    -------
    DataFrame with the columns of ``df`` (rows repeated) plus ``{prefix}start``, ``{prefix}stop``,
    ``{prefix}status`` (1 = ``cause``, else 0) and ``{prefix}wt``, in R's row order. Fit a Cox model
    with ``entry={prefix}start, duration={prefix}stop, event={prefix}status, weights={prefix}wt`` and
    ``cluster=<id>``; its coefficients are the Fine–Gray estimates (Breslow ties; they can differ
    slightly from :class:`~verzuimmodel.survival.competing.FineGray`/``crr`` when outcomes are tied with
    censoring times, because ``finegray`` treats outcomes at a censoring time as before it).
    """
    d = survival_data(df, duration=duration, event=event, entry=entry, weights=weights, strata=strata,
                      kind="causes")
    if not (isinstance(cause, (int, np.integer)) and not isinstance(cause, bool) and cause >= 1):
        raise ValueError(f"finegray_expand: cause={cause!r}; expected a cause code 1, 2, ...")
    n = d.n
    stop = d.exit
    status = d.event
    if id is not None:
        ids, _ = group_codes(df, id, "data", "subject id")
    else:
        ids = np.arange(n)
    first = np.ones(n, bool)
    last = np.ones(n, bool)
    delay = False
    if entry is not None:
        if id is None:
            raise ValueError("finegray_expand: start-stop rows (entry=) need id= (the subject of each row)")
        start = d.entry
        o = np.lexsort((stop, ids))
        so, io = stop[o], ids[o]
        new_subj = np.r_[True, io[1:] != io[:-1]]
        is_last = np.r_[io[1:] != io[:-1], True]
        bad = (~is_last) & (status[o] != 0)
        if bad.any():
            raise SchemaError("data", event, "a subject has an outcome before its last row",
                              np.sort(o[bad][:5] + 1).tolist(), "0 on every row but the subject's last",
                              n_rows=int(bad.sum()))
        gap = (~is_last[:-1]) & (start[o][1:] != so[:-1])
        if gap.any():
            rows = o[1:][gap]
            raise SchemaError("data", f"{entry}, {duration}", "a subject has gaps (or overlaps) between rows",
                              np.sort(rows[:5] + 1).tolist(), "each row to start where the previous one stopped",
                              n_rows=int(gap.sum()))
        first[:] = False
        last[:] = False
        first[o[new_subj]] = True
        last[o[is_last]] = True
        delay = bool(np.any(start[first] > stop.min()))
    else:
        if id is not None and len(np.unique(ids)) < n:
            raise SchemaError("data", id, "repeated subject ids without entry= (start-stop rows)",
                              expected="one row per subject, or give entry= for start-stop rows")
        mn = stop.min()
        start = np.full(n, 0.0 if mn > 0 else 2 * mn - 1)
    utime = np.unique(np.concatenate([start, stop]))
    nstart = np.searchsorted(utime, start).astype(float) + 1
    nstop = np.searchsorted(utime, stop).astype(float) + 1
    nstop[status != 0] -= 0.2
    if strata is not None:
        s_codes, n_strata = d.strata, len(d.strata_labels)
    else:
        s_codes, n_strata = np.zeros(n, np.int64), 1
    uw = d.weights
    pieces = []
    for s in range(n_strata):          # a loop over strata, not rows
        rows = np.flatnonzero(s_codes == s)
        piece = _finegray_stratum(rows, start[rows], stop[rows], status[rows], nstart[rows], nstop[rows],
                                  first[rows], last[rows], utime, cause, delay)
        if piece is not None:
            pieces.append(piece)
    if not pieces:
        raise SchemaError("data", event, f"no rows end in cause {cause}", expected=f"at least one {event} == {cause}")
    row = np.concatenate([p[0] for p in pieces])
    out = df.iloc[row].reset_index(drop=True)
    out[prefix + "start"] = np.concatenate([p[1] for p in pieces])
    out[prefix + "stop"] = np.concatenate([p[2] for p in pieces])
    out[prefix + "status"] = (status[row] == cause).astype(np.int64)
    out[prefix + "wt"] = np.concatenate([p[3] for p in pieces]) * uw[row]
    return out


def _finegray_stratum(rows, start, stop, status, nstart, nstop, first, last, utime, cause, delay):
    """One stratum of :func:`finegray_expand` (the R function's ``stratfun`` and C ``finegray``)."""
    times = np.unique(stop[status == cause])
    if len(times) == 0:
        return None
    maxtime = stop.max()
    # censoring distribution on the index scale (events at k - 0.2 come before censoring at k)
    cens = last & (status == 0)
    kc, dc = np.unique(nstop[cens], return_counts=True)
    sorted_stop, sorted_start = np.sort(nstop), np.sort(nstart)
    y = (len(nstop) - np.searchsorted(sorted_stop, kc, side="left")) \
        - (len(nstart) - np.searchsorted(sorted_start, kc, side="left"))          # start < k <= stop
    G = np.cumprod(1.0 - dc / y)
    if delay:
        # reverse-time Kaplan-Meier of the entry times: at risk at e when start <= e < stop
        de, dd = np.unique(nstart[first], return_counts=True)
        yh = np.searchsorted(sorted_start, de, side="right") - np.searchsorted(sorted_stop, de, side="right")
        H = np.cumprod((1.0 - dd / yh)[::-1])[::-1]          # prod over entry times >= e
        dprob = np.r_[H[1:], 1.0]
        cprob_full = np.r_[1.0, G]
        temp = np.unique(np.concatenate([de, kc]))
        i1 = np.searchsorted(de, temp, side="right")
        i2 = np.searchsorted(kc, temp, side="right")
        ctime = utime[temp.astype(np.int64) - 1]
        cprob = dprob[i1 - 1] * cprob_full[i2]
    else:
        ctime = utime[kc.astype(np.int64) - 1]
        cprob = G
    ct2 = np.r_[ctime, maxtime]
    cp2 = np.r_[1.0, cprob]
    ncut = len(cp2)
    idx = np.unique(np.searchsorted(ct2, times, side="left"))       # R findInterval(left.open = TRUE)
    keep = np.zeros(ncut + 1, bool)
    keep[0] = True
    keep[idx[idx >= 1]] = True                                      # C keep[j] = c(TRUE, ckeep)[j]
    kept = np.flatnonzero(keep[:ncut])
    expand = (status != 0) & (status != cause) & last
    n = len(rows)
    out_start, out_stop, out_wt = start.copy(), stop.copy(), np.ones(n)
    j = np.searchsorted(ct2, stop, side="left")                      # first cut >= stop
    ex = np.flatnonzero(expand)
    jx = np.minimum(j[ex], ncut - 1)
    out_stop[ex] = ct2[jx]
    base = cp2[jx]
    pos = np.searchsorted(kept, jx, side="right")
    n_add = len(kept) - pos
    owner = np.repeat(np.arange(len(ex)), n_add)
    offs = np.arange(n_add.sum()) - np.repeat(np.cumsum(n_add) - n_add, n_add)
    jj = kept[pos[owner] + offs]
    add_row = ex[owner]
    add_start, add_stop, add_wt = ct2[jj - 1], ct2[jj], cp2[jj] / base[owner]
    # R order: each row followed by its added intervals
    all_row = np.concatenate([np.arange(n), add_row])
    rank = np.concatenate([np.zeros(n, np.int64), offs + 1])
    o = np.lexsort((rank, all_row))
    return (rows[all_row[o]], np.concatenate([out_start, add_start])[o], np.concatenate([out_stop, add_stop])[o],
            np.concatenate([out_wt, add_wt])[o])
