r"""Weighted Aalen–Johansen cumulative incidence on whole days, with weights that change over time.

Clone :math:`i` (of the target-trial emulation, :mod:`.target_trial`) is at risk on the days
:math:`\lfloor e_i \rfloor < t \le x_i` (``entry``, ``x`` its exit day) with weight
:math:`f_i\,W_{p(i), c(t)}`: a frequency :math:`f_i` (the bootstrap's), and an inverse
probability weight that depends on the clone through its covariate pattern :math:`p(i)` and on
the day through a column :math:`c(t)` (the interval of day :math:`t - 1`). With :math:`Y(t)` the
weighted number at risk, :math:`d(t)` the weighted events of any cause and :math:`d_1(t)` those
of cause 1 on day :math:`t`,

.. math:: F_1(t) = \sum_{u \le t} S(u - 1)\,\frac{d_1(u)}{Y(u)}, \qquad
          S(u) = \prod_{v \le u}\Big(1 - \frac{d(v)}{Y(v)}\Big),

the cumulative incidence of cause 1 with the other causes competing (R's ``survfit`` with
weights). Days with nobody at risk add nothing. One compiled pass over the clones' days at risk
(numba): its cost is the number of clone-days up to the last day, and no (clones x columns)
weight matrix is built.

Holds as an estimator of the weighted populations' incidence for any nonnegative weights; it is
the weights that must be right (see :mod:`.target_trial`). Events are counted on whole days:
times within a day are tied.
"""

from __future__ import annotations

import numpy as np

__all__ = ["weighted_aj"]


def weighted_aj(entry: np.ndarray, x: np.ndarray, st: np.ndarray, W: np.ndarray, col: np.ndarray,
                pattern: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Weighted Aalen–Johansen cumulative incidence of cause 1 on days ``0 .. len(col) - 1``
    (module docstring).

    Parameters
    ----------
    entry, x : (n,) entry and exit day of each clone (at risk on ``floor(entry) < t <= x``).
    st : (n,) status at exit: 0 censored, 1 the cause of interest, 2 (or more) competing.
    W : (P, C) weights per covariate pattern and column.
    col : (t_max + 1,) the column of ``W`` on each day.
    pattern : (n,) the row of ``W`` of each clone.
    f : (n,) frequency weights.
    """
    from .cox_checks import jit

    t_max = len(col) - 1
    lo = np.clip(np.floor(entry).astype(np.int64) + 1, 1, t_max + 1)      # first day at risk (day 0: none)
    day = x.astype(np.int64)
    hi = np.clip(day, -1, t_max)                                         # last day at risk
    st = np.where(day <= t_max, st, 0)                                   # an exit after t_max is no event here
    Y, d_all, d1 = jit(_at_risk_and_events)(lo, hi, st.astype(np.int64),
                                            np.asarray(pattern, dtype=np.int64), np.asarray(f, dtype=float),
                                            np.ascontiguousarray(W, dtype=float), np.asarray(col, dtype=np.int64))
    with np.errstate(divide="ignore", invalid="ignore"):
        haz_all = np.where(Y > 0, d_all / Y, 0.0)
        haz_1 = np.where(Y > 0, d1 / Y, 0.0)
    surv_before = np.r_[1.0, np.cumprod(1 - haz_all)[:-1]]
    return np.cumsum(surv_before * haz_1)


def _at_risk_and_events(lo, hi, st, pattern, f, W, col):                 # pragma: no cover (numba)
    """Weighted number at risk and events (all causes, cause 1) per day: clone ``i`` adds
    ``W[pattern[i], col[t]] * f[i]`` on days ``lo[i] .. hi[i]`` and, with an event, on day ``hi[i]``
    (compiled by :func:`~verzuimmodel.survival.cox_checks.jit`)."""
    T = len(col)
    Y = np.zeros(T)
    d_all = np.zeros(T)
    d1 = np.zeros(T)
    for i in range(len(lo)):
        p = pattern[i]
        fi = f[i]
        for t in range(lo[i], hi[i] + 1):
            Y[t] += W[p, col[t]] * fi
        if st[i] > 0 and hi[i] >= lo[i]:
            w = W[p, col[hi[i]]] * fi
            d_all[hi[i]] += w
            if st[i] == 1:
                d1[hi[i]] += w
    return Y, d_all, d1
