r"""A Cox model of fixed start–stop rows, refitted fast under many frequency weightings (a bootstrap).

The model and its estimator are those of :class:`~verzuimmodel.survival.CoxPH` with Efron ties:
row :math:`i` at risk on :math:`(s_i, t_i]` with covariates :math:`x_i`, frequency weight
:math:`w_i \ge 0`, :math:`r_i = \exp(x_i'\beta)`; at the :math:`k`-th distinct event time
:math:`u_k`, :math:`S_k = \sum_{s_i < u_k \le t_i} w_i r_i`, :math:`S^D_k` the same sum over the
events at :math:`u_k`, :math:`W_k` their weight and :math:`m_k` their number (rows with
:math:`w_i > 0`):

.. math:: \ell(\beta) = \sum_k \Big[\sum_{D_k} w_i x_i'\beta - \frac{W_k}{m_k}
          \sum_{l=0}^{m_k-1} \log\big(S_k - \tfrac{l}{m_k} S^D_k\big)\Big],
          \qquad \Delta\Lambda_0(u_k) = \frac{W_k}{m_k}\sum_{l=0}^{m_k-1}
          \frac{1}{S_k - \tfrac{l}{m_k} S^D_k}.

A row with weight 0 is not in the data (as if dropped before the fit). Only the weights change
between fits, so everything else is done once: rows with the same covariates, entry, exit and
event are merged into a *cell* (its weight the sum of theirs, its row count the number with
positive weight -- the :math:`m_k` of Efron's correction count rows, so merging is exact), each
cell's window of event times is found once, and a fit only sums the weights per cell
(``bincount``) and runs Newton–Raphson on the cells, each step one compiled pass (numba). The
risk-set sums are suffix sums over the event times (accurate for the small late risk sets), the
information :math:`X'\operatorname{diag}(u)X` minus the per-time outer products of the Efron
terms, as in :class:`~verzuimmodel.survival.CoxPH`.

Holds wherever :class:`~verzuimmodel.survival.CoxPH` does (same likelihood, same Newton
iterations from :math:`\beta = 0` and stopping rule, so the same estimates to rounding:
``tests/`` compare them to 1e-8); no strata, clusters or robust variance, and no standard
errors: it is for refitting point estimates. Fastest when many rows share a cell (discrete
covariates, whole days); with a continuous covariate every row is a cell, and a Newton step
costs a pass over the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConvergenceError

__all__ = ["ReweightedCox", "CoxFit"]


@dataclass(frozen=True)
class CoxFit:
    """One fit of :class:`ReweightedCox`: ``beta`` (of the columns fitted), ``times`` (every
    event time of the rows) and ``increments`` (the baseline hazard's :math:`\\Delta\\Lambda_0` at
    them, at :math:`x = 0`; 0 at a time without weighted events), ``n_iter``, ``converged``."""

    beta: np.ndarray
    times: np.ndarray
    increments: np.ndarray
    n_iter: int
    converged: bool


class ReweightedCox:
    """Precomputed cells of start–stop rows ``(entry, exit]`` with covariates ``X`` and 0/1 ``event``
    (see the module docstring); :meth:`fit` fits the Cox model under weights of the rows."""

    def __init__(self, X: np.ndarray, entry: np.ndarray, exit: np.ndarray, event: np.ndarray):
        X = np.asarray(X, dtype=float)
        entry, exit, event = (np.asarray(a, dtype=float) for a in (entry, exit, event))
        n = len(exit)
        if X.ndim != 2 or X.shape[0] != n or entry.shape != (n,) or event.shape != (n,):
            raise ValueError(f"ReweightedCox: X ({X.shape}), entry, exit and event must have {n} rows")
        bad = np.flatnonzero(~(exit > entry))
        if len(bad):
            raise ValueError(f"ReweightedCox: rows {bad[:5].tolist()} have exit <= entry; expected exit > entry")
        bad = np.flatnonzero(~np.isin(event, (0.0, 1.0)))
        if len(bad):
            raise ValueError(f"ReweightedCox: rows {bad[:5].tolist()} have event {event[bad[:5]].tolist()}; "
                             "expected 0 or 1")
        key = np.column_stack([X, entry, exit, event])
        cells, self.cell_of_row = np.unique(key, axis=0, return_inverse=True)
        self.cell_of_row = self.cell_of_row.reshape(-1)
        self.n_cells = len(cells)
        self.X = np.ascontiguousarray(cells[:, :-3])
        self.times = np.unique(exit[event == 1])
        c_entry, c_exit, c_event = cells[:, -3], cells[:, -2], cells[:, -1] == 1
        # at risk at the k-th event time for lo <= k < hi (entry < u_k <= exit)
        self.lo = np.searchsorted(self.times, c_entry, side="right")
        self.hi = np.searchsorted(self.times, c_exit, side="right")
        self.is_event = c_event

    def fit(self, w: np.ndarray, columns: np.ndarray | None = None, beta0: np.ndarray | None = None, *,
            tol: float = 1e-10, max_iter: int = 50) -> CoxFit:
        """The Cox model under row weights ``w`` (>= 0), with the covariates ``columns`` (indices
        into ``X``'s columns; default all), Newton–Raphson from ``beta0`` (default 0) with step
        halving, stopping as :class:`~verzuimmodel.survival.CoxPH` (relative change of the log
        likelihood at most ``tol``).

        Raises
        ------
        ValueError
            A covariate does not vary or the covariates are collinear among the rows with positive
            weight (as :class:`~verzuimmodel.survival.CoxPH`).
        ConvergenceError
            No event with positive weight; a singular information.
        """
        w = np.asarray(w, dtype=float)
        if w.shape != self.cell_of_row.shape:
            raise ValueError(f"ReweightedCox.fit: w has shape {w.shape}; expected ({len(self.cell_of_row)},), a "
                             "weight per row")
        bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)))
        if len(bad):
            raise ValueError(f"ReweightedCox.fit: rows {bad[:5].tolist()} have weights {w[bad[:5]].tolist()}; "
                             "expected finite weights >= 0")
        cols = np.arange(self.X.shape[1]) if columns is None else np.asarray(columns, dtype=np.int64)
        wc = np.bincount(self.cell_of_row, weights=w, minlength=self.n_cells)
        nc = np.bincount(self.cell_of_row, weights=(w > 0).astype(float), minlength=self.n_cells)
        live = np.flatnonzero(wc > 0)
        X = self.X[np.ix_(live, cols)]
        _check_design(X, nc[live])
        state = _Cells(X, wc[live], nc[live], self.lo[live], self.hi[live], len(self.times), self.is_event[live])
        if state.m.sum() == 0:
            raise ConvergenceError("no events in the data: a Cox model needs at least one event")
        beta, n_iter, converged, c0, shift = _newton(state, np.zeros(len(cols)) if beta0 is None else beta0,
                                                     tol, max_iter)
        return CoxFit(beta=beta, times=self.times, increments=c0 * np.exp(-shift), n_iter=n_iter,
                      converged=converged)


class _Cells:
    """The cells of one fit: covariates, weights, row counts, event-time windows ``[lo, hi)``."""

    def __init__(self, X, w, n_rows, lo, hi, K, is_event):
        self.X, self.w, self.lo, self.hi, self.K = np.ascontiguousarray(X), w, lo, hi, K
        self.ev = np.flatnonzero(is_event)
        self.ev_k = hi[self.ev] - 1                     # an event cell's exit is an event time
        self.m = np.bincount(self.ev_k, weights=n_rows[self.ev], minlength=K).round().astype(np.int64)
        self.dw = np.bincount(self.ev_k, weights=w[self.ev], minlength=K)
        self.ev_wx = w[self.ev] @ X[self.ev]

    def evaluate(self, beta: np.ndarray):
        """Log partial likelihood (``-inf`` if a risk set underflows), gradient, information, the
        baseline increments' sums ``c0`` and the shift of the linear predictor (:func:`_evaluate`)."""
        from .cox_checks import jit

        return jit(_evaluate)(self.X, self.w, self.lo, self.hi, self.ev, self.ev_k, self.m, self.dw, self.ev_wx,
                              np.asarray(beta, dtype=float))


def _evaluate(X, w, lo, hi, ev, ev_k, m, dw, ev_wx, beta):             # pragma: no cover (numba)
    """One compiled pass for :meth:`_Cells.evaluate` (compiled by
    :func:`~verzuimmodel.survival.cox_checks.jit`), the formulas of
    :meth:`~verzuimmodel.survival.cox.RiskSets.evaluate`: risk-set sums ``S`` (of ``w r [1, x]``)
    as suffix sums over the event times of the cells' exits minus their entries, event sums ``D``;
    per event time Efron's ``l = 0 .. m - 1`` terms with ``den_l = S0 - (l / m) D0``, giving the
    scalars ``c_j``; the information ``X' diag(u) X`` minus the per-time outer products."""
    n, p = X.shape
    K = len(m)
    eta = np.zeros(n)
    shift = -np.inf
    for c in range(n):
        for j in range(p):
            eta[c] += X[c, j] * beta[j]
        shift = max(shift, eta[c])
    if n == 0:
        shift = 0.0
    wr = np.empty(n)
    for c in range(n):
        wr[c] = w[c] * np.exp(eta[c] - shift)
    q = p + 1
    A = np.zeros((K + 1, q))            # sums by exit key, then by entry key (subtracted)
    B = np.zeros((K + 1, q))
    for c in range(n):
        A[hi[c], 0] += wr[c]
        B[lo[c], 0] += wr[c]
        for j in range(p):
            A[hi[c], j + 1] += wr[c] * X[c, j]
            B[lo[c], j + 1] += wr[c] * X[c, j]
    R = np.zeros((K, q))
    sa = np.zeros(q)
    sb = np.zeros(q)
    for k in range(K, 0, -1):           # R[k - 1]: cells with hi > k - 1 minus cells with lo > k - 1
        for j in range(q):
            sa[j] += A[k, j]
            sb[j] += B[k, j]
            R[k - 1, j] = sa[j] - sb[j]
    D = np.zeros((K, q))
    loglik = 0.0
    for e in range(len(ev)):
        c = ev[e]
        k = ev_k[e]
        D[k, 0] += wr[c]
        for j in range(p):
            D[k, j + 1] += wr[c] * X[c, j]
        loglik += w[c] * eta[c]
    c0 = np.zeros(K)
    c1 = np.zeros(K)
    c2 = np.zeros(K)
    c3 = np.zeros(K)
    c4 = np.zeros(K)
    for k in range(K):
        mk = m[k]
        if mk == 0:
            continue
        wbar = dw[k] / mk
        for l in range(mk):
            f = l / mk
            den = R[k, 0] - f * D[k, 0]
            if den <= 0:
                return -np.inf, np.zeros(p), np.zeros((p, p)), c0, shift
            inv = wbar / den
            loglik -= wbar * (np.log(den) + shift)
            c0[k] += inv
            c1[k] += inv * f
            inv2 = inv / den
            c2[k] += inv2
            c3[k] += inv2 * f
            c4[k] += inv2 * f * f
    grad = ev_wx.copy()
    info = np.zeros((p, p))
    for k in range(K):
        if m[k] == 0:
            continue
        for a in range(p):
            grad[a] -= c0[k] * R[k, a + 1] - c1[k] * D[k, a + 1]
            for b in range(p):
                info[a, b] -= (c2[k] * R[k, a + 1] * R[k, b + 1] - c3[k] * (R[k, a + 1] * D[k, b + 1]
                               + D[k, a + 1] * R[k, b + 1]) + c4[k] * D[k, a + 1] * D[k, b + 1])
    cum0 = np.zeros(K + 1)
    for k in range(K):
        cum0[k + 1] = cum0[k] + c0[k]
    u = np.empty(n)
    for c in range(n):
        u[c] = wr[c] * (cum0[hi[c]] - cum0[lo[c]])
    for e in range(len(ev)):
        u[ev[e]] -= wr[ev[e]] * c1[ev_k[e]]
    for c in range(n):
        for a in range(p):
            xa = u[c] * X[c, a]
            for b in range(a + 1):
                info[a, b] += xa * X[c, b]
    for a in range(p):
        for b in range(a + 1, p):
            info[a, b] = info[b, a]
    return loglik, grad, info, c0, shift


def _check_design(X: np.ndarray, n_rows: np.ndarray) -> None:
    """As :class:`~verzuimmodel.survival.CoxPH`: every covariate varies and none is a linear
    combination of the others (eigenvalues of their correlation matrix over the rows)."""
    if X.shape[1] == 0:
        return
    if np.any(X.min(axis=0) == X.max(axis=0)):
        raise ValueError("a covariate does not vary: a Cox model has no intercept")
    n = n_rows.sum()
    mean = n_rows @ X / n
    cov = X.T @ (X * n_rows[:, None]) / n - np.outer(mean, mean)
    sd = np.sqrt(np.maximum(np.diag(cov), 1e-300))
    if np.linalg.eigvalsh(cov / np.outer(sd, sd)).min() < 1e-10 * X.shape[1]:
        raise ValueError("the covariates are collinear: one is a linear combination of the others")


def _newton(cells: _Cells, beta0: np.ndarray, tol: float, max_iter: int):
    """Newton–Raphson with step halving, as :class:`~verzuimmodel.survival.CoxPH`."""
    beta = np.array(beta0, dtype=float)
    p = len(beta)
    loglik, grad, info, c0, shift = cells.evaluate(beta)
    if not np.isfinite(loglik):
        raise ConvergenceError("a risk set is empty at the starting values")
    converged, n_iter = p == 0, 0
    for n_iter in range(1, max_iter + 1):
        if p == 0:
            break
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            raise ConvergenceError("the information matrix is singular: check for collinear covariates") from None
        new = beta + step
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            res = cells.evaluate(new)
            halvings = 0
            while not np.isfinite(res[0]) or res[0] < loglik - 1e-12 * abs(loglik):
                halvings += 1
                if halvings > 30:
                    return beta, n_iter, False, c0, shift
                new = (beta + new) / 2
                res = cells.evaluate(new)
        change = abs(res[0] - loglik)
        beta, (loglik, grad, info, c0, shift) = new, res
        if change <= tol * max(abs(loglik), 1.0):
            converged = True
            break
    return beta, n_iter, converged, c0, shift
