r"""Discrete-time hazard models: pooled logistic regression with one intercept per time interval.

For person-interval rows :math:`r` (the unit at risk in interval :math:`k_r`, covariates
:math:`z_r`, frequency weight :math:`w_r`, :math:`y_r = 1` if the event happens in the interval):

.. math:: \operatorname{logit} P(y_r = 1) = \alpha_{k_r} + z_r'\beta .

The interval intercepts make the baseline hazard nonparametric, as the Kalbfleisch–Prentice
discrete-time analogue of the Cox model. Intervals without events have hazard 0 (their
intercept is :math:`-\infty`; their rows carry no information about :math:`\beta` and are
dropped). A covariate that is constant within the intervals with events, or a combination of
others there, is not identified: its coefficient is 0 (R's ``glm`` reports ``NA``).
Newton–Raphson exploits the block structure of the information: the intercepts'
block is diagonal, so each step costs one pass over the rows and a :math:`p \times p` solve
(Schur complement), whatever the number of intervals.

Used by the target-trial emulation (:mod:`.target_trial`) for the hazards of starting an
intervention and of loss to follow-up; R's ``glm(y ~ factor(k) + z, family = binomial)`` fits the
same model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from ..errors import ConvergenceError, ConvergenceWarning

__all__ = ["PooledLogistic", "fit_pooled_logistic"]


@dataclass(frozen=True)
class PooledLogistic:
    """A fitted discrete-time hazard model (see the module docstring).

    Attributes
    ----------
    alpha : (K,) interval intercepts (``-inf`` for intervals without events).
    beta : (p,) covariate coefficients.
    n_iter : Newton iterations used.
    converged : whether the log likelihood converged.
    """

    alpha: np.ndarray
    beta: np.ndarray
    n_iter: int
    converged: bool

    def hazard(self, k: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Discrete hazard of rows in intervals ``k`` with covariates ``z`` (rows x p)."""
        a = self.alpha[k]
        out = np.zeros(len(k))
        finite = np.isfinite(a)
        out[finite] = expit(a[finite] + z[finite] @ self.beta)
        return out


def fit_pooled_logistic(k: np.ndarray, z: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, *,
                        n_intervals: int | None = None, tol: float = 1e-9, max_iter: int = 50,
                        name: str = "hazard model") -> PooledLogistic:
    """Fit the pooled logistic model by Newton–Raphson (see the module docstring).

    Parameters
    ----------
    k : (n,) interval index of each row (0 .. K-1).
    z : (n, p) covariates (no intercept column).
    y : (n,) 0/1 event indicator.
    w : (n,) frequency weights (default 1).
    n_intervals : K (default ``k.max() + 1``).
    name : used in warnings and errors.

    Raises
    ------
    ConvergenceError
        The information is singular (should not happen: unidentified covariates are dropped).
    """
    k = np.asarray(k, dtype=np.int64)
    z = np.asarray(z, dtype=float).reshape(len(k), -1)
    y = np.asarray(y, dtype=float)
    w = np.ones(len(k)) if w is None else np.asarray(w, dtype=float)
    K = int(n_intervals if n_intervals is not None else (k.max() + 1 if len(k) else 0))
    p = z.shape[1]
    events = np.bincount(k, weights=w * y, minlength=K)
    at_risk = np.bincount(k, weights=w, minlength=K)
    alpha = np.full(K, -np.inf)
    live = events > 0
    keep = live[k] & (w > 0)
    k, z, y, w = k[keep], z[keep], y[keep], w[keep]
    # start: the interval's crude hazard, beta = 0 (all-event intervals are clipped just below 1)
    crude = np.clip(events[live] / at_risk[live], 1e-8, 1 - 1e-8)
    alpha[live] = np.log(crude / (1 - crude))
    if not len(k):
        return PooledLogistic(alpha, np.zeros(p), 0, True)
    # covariates that are constant within the intervals with events (or combinations of others)
    # are not identified: their coefficients are 0 (R's glm reports them as NA)
    use = _identified(k, z, w, K)
    p_all = p
    z = z[:, use]
    p = z.shape[1]
    beta = np.zeros(p)
    # centring the covariates keeps the Newton steps well scaled; undone at the end
    centre = np.average(z, axis=0, weights=w) if p else np.zeros(0)
    zc = z - centre
    def loglik(a, b):
        eta = a[k] + zc @ b
        return float(np.sum(w * (y * eta - np.logaddexp(0.0, eta)))), eta

    ll, eta = loglik(alpha, beta)
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        mu = expit(eta)
        r = w * (y - mu)
        v = w * mu * (1 - mu)
        g_a = np.bincount(k, weights=r, minlength=K)[live]
        d = np.maximum(np.bincount(k, weights=v, minlength=K)[live], 1e-12)
        if p:
            g_b = zc.T @ r
            B = np.zeros((K, p))
            _add_rows(B, k, zc * v[:, None])
            B = B[live]
            S = zc.T @ (zc * v[:, None]) - B.T @ (B / d[:, None])
            try:
                step_b = np.linalg.solve(S, g_b - B.T @ (g_a / d))
            except np.linalg.LinAlgError:
                raise ConvergenceError(f"{name}: the covariates are collinear (singular information)") from None
            step_a = (g_a - B @ step_b) / d
        else:
            step_b = np.zeros(0)
            step_a = g_a / d
        # Newton step, halved while the likelihood would fall (a separated direction may take a long
        # full step: its fitted hazards go to 0 or 1 and the likelihood to its supremum)
        new_a, new_b = alpha.copy(), beta + step_b
        new_a[live] += step_a
        new_ll, new_eta = loglik(new_a, new_b)
        halvings = 0
        while not (np.isfinite(new_ll) and new_ll >= ll - 1e-12 * abs(ll)) and halvings < 30:
            halvings += 1
            new_a[live] = (alpha[live] + new_a[live]) / 2
            new_b = (beta + new_b) / 2
            new_ll, new_eta = loglik(new_a, new_b)
        change = abs(new_ll - ll)
        alpha, beta, ll, eta = new_a, new_b, new_ll, new_eta
        if change <= tol * max(abs(ll), 1.0):
            converged = True
            break
    if not converged:
        warnings.warn(f"{name}: the pooled logistic model did not converge in {max_iter} iterations",
                      ConvergenceWarning, stacklevel=2)
    if p and not np.all(np.isfinite(beta)):
        raise ConvergenceError(f"{name}: non-finite coefficients")
    alpha[live] -= centre @ beta
    full = np.zeros(p_all)
    full[use] = beta
    return PooledLogistic(alpha, full, it, converged)


def _identified(k: np.ndarray, z: np.ndarray, w: np.ndarray, K: int, tol: float = 1e-9) -> np.ndarray:
    """Which columns of ``z`` are identified beside the interval intercepts: after removing each
    interval's weighted mean, a column is kept if what it does not share with the columns kept
    before it (a pivoted Cholesky factorisation of their cross-products) is more than ``tol`` of
    its own variation."""
    p = z.shape[1]
    if not p:
        return np.zeros(0, dtype=bool)
    tot = np.maximum(np.bincount(k, weights=w, minlength=K), 1e-300)
    means = np.column_stack([np.bincount(k, weights=w * z[:, j], minlength=K) for j in range(p)]) / tot[:, None]
    zd = z - means[k]
    G = zd.T @ (zd * w[:, None])
    keep = np.zeros(p, dtype=bool)
    L = np.zeros((p, p))
    for j in range(p):
        r = G[j, j] - L[j, :j] @ L[j, :j]
        if G[j, j] > 0 and r > tol * G[j, j]:
            keep[j] = True
            L[j, j] = np.sqrt(r)
            L[j + 1:, j] = (G[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]
    return keep


def _add_rows(out: np.ndarray, idx: np.ndarray, values: np.ndarray) -> None:
    """``np.add.at(out, idx, values)``, as one bincount per column (much faster for many rows)."""
    for j in range(values.shape[1]):
        out[:, j] += np.bincount(idx, weights=values[:, j], minlength=out.shape[0])
