r"""Risk sets of survival data: the Cox log partial likelihood, its score and information, and score residuals.

For row :math:`i` at risk on :math:`(s_i, t_i]` in stratum :math:`g(i)`, with :math:`D_k` the deaths at
the :math:`k`-th distinct (stratum, event time) key, :math:`R_k` its risk set (:math:`s_i < t_k \le t_i`),
:math:`r_i = \exp(\eta_i)`, :math:`m_k = |D_k|`, :math:`W_k = \sum_{D_k} w_i`, :math:`\bar w_k = W_k/m_k`,
Efron's denominators :math:`\mathrm{den}_{kl} = S_{0k} - f_l S^D_{0k}` (:math:`f_l = l/m_k`,
:math:`l = 0..m_k-1`; Breslow: :math:`m_k` is taken as 1), :math:`S_{0k} = \sum_{R_k} w_i r_i` and
:math:`S_{1k} = \sum_{R_k} w_i r_i z_i` (:math:`S^D` the same over :math:`D_k`), :math:`z = x - \mu` the
centred covariates:

.. math:: \ell = \sum_{D} w_i \eta_i - \sum_k \bar w_k \sum_l \log \mathrm{den}_{kl}, \qquad
          U = \sum_D w_i z_i - \sum_k (c_{0k} S_{1k} - c_{1k} S^D_{1k}),

.. math:: I = \sum_i u_i z_i z_i' - \sum_k \big[c_{2k} S_{1k}S_{1k}' - c_{3k}(S_{1k}S^{D\prime}_{1k}
          + S^D_{1k}S_{1k}') + c_{4k} S^D_{1k}S^{D\prime}_{1k}\big],

with, per key, :math:`c_0 = \sum_l \bar w/\mathrm{den}_l`, :math:`c_1 = \sum_l \bar w f_l/\mathrm{den}_l`,
:math:`c_2 = \sum_l \bar w/\mathrm{den}_l^2`, :math:`c_3 = \sum_l \bar w f_l/\mathrm{den}_l^2`,
:math:`c_4 = \sum_l \bar w f_l^2/\mathrm{den}_l^2`
and :math:`u_i = w_i r_i (\sum_{k \in \mathrm{window}(i)} c_{0k} - [i \in D_k] c_{1k})`. Centring
changes neither :math:`U` nor :math:`I` (the score's centring terms sum to
:math:`\mu \sum_k (W_k - c_{0k}S_{0k} + c_{1k}S^D_{0k}) = 0`); it keeps :math:`I` accurate.

Cost: one compiled pass over the rows for :math:`\ell` and :math:`U`, a second one for :math:`I`
(:mod:`~verzuimmodel.survival.risk_kernels`), and per key work proportional to its deaths; no sort
of the rows and no pass per event time. The rows are taken in the order given. Accuracy: the
risk-set sums at a key are sums of the rows leaving at or after it minus those entering at or after
it, as in R; with heavy late entry the small risk sets at early times carry the rounding of the
larger sums.
"""

from __future__ import annotations

import copy
from typing import Literal

import numpy as np
import pandas as pd

from ._data import SurvData
from ._jit import jit
from .risk_kernels import column_means, event_sums, first_moments, per_key, score_rows, weighted_gram, windows

__all__ = ["RiskSets"]

class RiskSets:
    """Precomputed risk-set structure of survival data and a design ``X`` (independent of the coefficients).

    ``evaluate(eta)`` returns the log partial likelihood and its gradient and information with
    respect to the coefficients of the columns of ``X``, at linear predictor ``eta`` (see the module
    docstring). Reused by the frailty model and the residuals.

    Attributes: ``K`` event keys with their ``times``, ``key_stratum``, numbers of deaths ``m`` and
    weights ``dw``; per row its window of keys ``row_lo <= k < row_hi`` and the key bins its sums go to
    (``add_bin``, ``sub_bin``: -1 for none, see :mod:`~verzuimmodel.survival.risk_kernels`); the deaths'
    rows ``ev_rows`` and their keys ``ev_group``; ``event`` (bool per row), ``w``, ``X``, ``mu`` (the
    column means the covariates are centred by), ``n``, ``p``, ``ties``.
    """

    def __init__(self, d: SurvData, X: np.ndarray, ties: Literal["efron", "breslow"] = "efron"):
        self.ties = ties
        self.efron = ties == "efron"
        self.w = np.ascontiguousarray(d.weights, dtype=float)
        self.X = np.ascontiguousarray(X, dtype=float)
        n, p = self.X.shape
        self.n, self.p = n, p
        ev = np.asarray(d.event) == 1
        self.event = ev
        self.has_entry = bool(np.isfinite(d.entry).any())
        pair_exit, pair_entry, pair_stratum, pair_time = _pairs(d)
        codes, self.row_hi, self.row_lo, self.add_bin, self.sub_bin, self.m, self.dw = jit(windows)(
            pair_exit, pair_entry, pair_stratum, ev, self.w)
        self.keys = codes
        self.K = len(codes)
        self.times = pair_time[codes]
        self.key_stratum = pair_stratum[codes]
        self.ev_rows = np.flatnonzero(ev)
        self.ev_group = self.row_hi[self.ev_rows] - 1
        self.mu = jit(column_means)(self.X, np.zeros(0))
        self._ev_wz = jit(event_sums)(self.X, self.mu, self.w, ev)
        self._trivial = (bool(np.all(self.w == 1.0)), not bool(np.any(self.sub_bin >= 0)),
                         not bool(self.row_lo.any()))

    def weighted_mean(self) -> np.ndarray:
        """The covariates' mean weighted by the case weights (``mu`` with unit weights), without BLAS: a
        multi-threaded product over all rows costs more in waking threads than it computes."""
        return self.mu if self._trivial[0] else jit(column_means)(self.X, self.w)

    def kernel_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The weights, late-entry bins and window starts for the kernels; empty when trivial (all weights 1,
        nobody entering late, every window starting at key 0), so that they are not read."""
        empty_f, empty_i = np.zeros(0), np.zeros(0, dtype=np.int64)
        ones, no_late, zero_lo = self._trivial
        return (empty_f if ones else self.w, empty_i if no_late else self.sub_bin,
                empty_i if zero_lo else self.row_lo)

    def take(self, order: np.ndarray) -> "RiskSets":
        """The same risk sets with the rows in the order ``order`` (a permutation of the rows)."""
        out = copy.copy(self)
        ones, no_late, zero_lo = self._trivial       # constant arrays stay as they are
        for name, constant in (("w", ones), ("X", False), ("event", False), ("row_hi", False), ("row_lo", zero_lo),
                               ("add_bin", False), ("sub_bin", no_late)):
            if not constant:
                setattr(out, name, np.ascontiguousarray(getattr(self, name)[order]))
        out.ev_rows = np.flatnonzero(out.event)
        out.ev_group = out.row_hi[out.ev_rows] - 1
        out._ev_wz = jit(event_sums)(out.X, out.mu, out.w, out.event)
        return out

    def evaluate(self, eta: np.ndarray, *, need: Literal["loglik", "gradient", "hessian"] = "hessian"):
        """Log partial likelihood, gradient and information at linear predictor ``eta``.

        Returns ``(loglik, gradient, information, state)`` (``None`` for what was not asked);
        ``loglik`` is ``-inf`` (and the rest ``None``) if a risk set underflows, which is only
        possible far from the optimum. ``state`` feeds :meth:`score_residuals`, :meth:`baseline_hazard`
        and the frailty model: ``r = exp(eta - shift)`` per row, ``shift`` (the largest ``eta``), the
        risk-set and deaths' sums ``S1``, ``D1`` (K x p, covariates not centred; ``D1`` zero with
        Breslow), their centred ``S1c``, ``D1c`` and totals ``S0``, ``D0``, and ``c`` (``"0"``..``"4"``:
        Efron's coefficients per key).
        """
        eta = np.ascontiguousarray(eta, dtype=float)
        shift = float(eta.max()) if len(eta) else 0.0
        w, sub, lo = self.kernel_rows()
        with np.errstate(invalid="ignore", over="ignore"):      # inf or nan in eta: a risk set underflows below
            r = eta - shift
            np.exp(r, out=r)
        B, D, ev_eta = jit(first_moments)(self.X, self.mu, eta, r, w, self.add_bin, sub, self.event, self.K,
                                          self.efron)
        S, c, ll, grad, info2, ok = jit(per_key)(B, D, self.m, self.dw, self.key_stratum, self.efron, shift,
                                                 need == "hessian")
        if not ok:
            return -np.inf, None, None, None
        loglik = float(ev_eta + ll)
        S1c, D1c = S[:, 1:], D[:, 1:]
        state = {"r": r, "shift": shift, "S1": S1c + S[:, :1] * self.mu, "D1": D1c + D[:, :1] * self.mu,
                 "S1c": S1c, "D1c": D1c, "S0": S[:, 0], "D0": D[:, 0],
                 "c": {str(j): c[j] for j in range(5)}}
        if need == "loglik":
            return loglik, None, None, state
        grad = self._ev_wz + grad
        info = None
        if need == "hessian":
            C0 = np.concatenate([[0.0], np.cumsum(c[0])])
            info = jit(weighted_gram)(self.X, self.mu, w, r, lo, self.row_hi, self.event, C0, c[1], self.efron)
            info += info2
            info = np.tril(info) + np.tril(info, -1).T
        return loglik, grad, info, state

    def _score_terms(self, state: dict) -> tuple:
        """Per key what the score residuals need (centred): prefix sums of ``H = c0`` and ``A = sum_l a_l
        dLambda_l``, the deaths' mean ``abar`` and Efron's own-time terms ``c1``, ``Ef``."""
        c, S1, D1 = state["c"], state["S1c"], state["D1c"]
        p = self.p
        cumH = np.concatenate([[0.0], np.cumsum(c["0"])])
        A = S1 * c["2"][:, None] - D1 * c["3"][:, None]
        cumA = np.vstack([np.zeros((1, p)), np.cumsum(A, axis=0)])
        with np.errstate(invalid="ignore", divide="ignore"):
            abar = (S1 * c["0"][:, None] - D1 * c["1"][:, None]) / self.dw[:, None]
        Ef = S1 * c["3"][:, None] - D1 * c["4"][:, None]
        return cumH, cumA, abar, np.ascontiguousarray(c["1"]), Ef

    def score_residuals(self, state: dict) -> np.ndarray:
        """Score residuals per row (unweighted), as R's ``residuals(fit, type="score")``.

        Row ``i``: ``delta_i (x_i - abar_k) - r_i sum_k sum_l (x_i - a_kl) dLambda_kl`` over the event
        times in its window; with Efron a death takes part in its own time's steps with weight
        ``1 - l/m``, and ``abar_k`` is the mean of the ``a_kl``.
        """
        w, _, lo = self.kernel_rows()
        return jit(score_rows)(self.X, self.mu, state["r"], w, lo, self.row_hi, self.event, *self._score_terms(state),
                               np.zeros(0, dtype=np.int64), 0)

    def score_sums(self, state: dict, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
        """Sums of the weighted score residuals ``w_i`` times :meth:`score_residuals` by cluster (G x p), in
        one pass without the rows' residuals."""
        w, _, lo = self.kernel_rows()
        return jit(score_rows)(self.X, self.mu, state["r"], w, lo, self.row_hi, self.event, *self._score_terms(state),
                               np.ascontiguousarray(cluster, dtype=np.int64), int(n_clusters))

    def baseline_hazard(self, state: dict) -> np.ndarray:
        """Increments of the baseline cumulative hazard (at x = 0) at each event time (Breslow or Efron)."""
        return state["c"]["0"] * np.exp(-state["shift"])


def _pairs(d: SurvData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows' exit and entry (stratum, time) pairs as positions among the sorted distinct pairs
    (entry -1 for none; empty without entry times), and each pair's stratum and time."""
    n = len(d.exit)
    finite = np.isfinite(d.entry)
    has_entry = bool(finite.any())
    values = np.concatenate([d.exit, d.entry[finite]]) if has_entry else d.exit
    uniq, rank = _ranks(values)
    if d.strata is None:
        pairs, stratum, time = rank, np.zeros(len(uniq), dtype=np.int64), uniq
    else:
        s = np.asarray(d.strata, dtype=np.int64)
        U = len(uniq)
        keys, pairs = _ranks(np.concatenate([s, s[finite]]) * U + rank if has_entry else s * U + rank)
        stratum, time = keys // U, uniq[keys % U]
    entry = np.full(n, -1, dtype=np.int64) if has_entry else np.zeros(0, dtype=np.int64)
    if has_entry:
        entry[finite] = pairs[n:]
    return np.ascontiguousarray(pairs[:n], dtype=np.int64), entry, stratum, time


def _ranks(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of ``a`` and each element's position among them (by hashing: no sort of
    the rows unless they are already sorted, which is checked first)."""
    if len(a) < 2 or bool(np.all(a[1:] >= a[:-1])):
        first = np.empty(len(a), dtype=bool)
        first[:1] = True
        np.not_equal(a[1:], a[:-1], out=first[1:])
        return a[first], np.cumsum(first) - 1
    codes, uniq = pd.factorize(a)
    uniq = np.asarray(uniq)
    order = np.argsort(uniq, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return uniq[order], rank[codes]
