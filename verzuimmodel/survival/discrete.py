r"""Discrete-time hazard models: pooled logistic regression with one intercept per time interval.

For person-interval rows :math:`r` (the unit at risk in interval :math:`k_r`, covariates
:math:`z_r`, frequency weight :math:`w_r`, :math:`y_r = 1` if the event happens in the interval):

.. math:: \operatorname{logit} P(y_r = 1) = \alpha_{k_r} + z_r'\beta .

The interval intercepts make the baseline hazard nonparametric, as the Kalbfleisch–Prentice
discrete-time analogue of the Cox model. Intervals without events have hazard 0 (their
intercept is :math:`-\infty`; their rows carry no information about :math:`\beta` and are
dropped). Newton–Raphson exploits the block structure of the information: the intercepts'
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
        The covariates are collinear among the rows with events' intervals.
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
    beta = np.zeros(p)
    if not len(k):
        return PooledLogistic(alpha, beta, 0, True)
    # centring the covariates keeps the Newton steps well scaled; undone at the end
    centre = np.average(z, axis=0, weights=w) if p else np.zeros(0)
    zc = z - centre
    ll_old, converged, it = -np.inf, False, 0
    for it in range(1, max_iter + 1):
        eta = alpha[k] + zc @ beta
        mu = expit(eta)
        ll = float(np.sum(w * (y * eta - np.logaddexp(0.0, eta))))
        if abs(ll - ll_old) <= tol * max(abs(ll), 1.0):
            converged = True
            break
        ll_old = ll
        r = w * (y - mu)
        v = w * mu * (1 - mu)
        g_a = np.bincount(k, weights=r, minlength=K)[live]
        d = np.bincount(k, weights=v, minlength=K)[live]
        d = np.maximum(d, 1e-12)
        if p:
            g_b = zc.T @ r
            B = np.zeros((K, p))
            _add_rows(B, k, zc * v[:, None])
            B = B[live]
            C = zc.T @ (zc * v[:, None])
            S = C - B.T @ (B / d[:, None])
            try:
                step_b = np.linalg.solve(S, g_b - B.T @ (g_a / d))
            except np.linalg.LinAlgError:
                raise ConvergenceError(f"{name}: the covariates are collinear (singular information)") from None
            step_a = (g_a - B @ step_b) / d
        else:
            step_b = np.zeros(0)
            step_a = g_a / d
        # a plain Newton step, limited in size (separated intervals would otherwise jump far)
        scale = min(1.0, 5.0 / max(np.abs(step_a).max(initial=0), np.abs(step_b).max(initial=0), 1e-12))
        alpha[live] += scale * step_a
        beta = beta + scale * step_b
    if not converged:
        warnings.warn(f"{name}: the pooled logistic model did not converge in {max_iter} iterations",
                      ConvergenceWarning, stacklevel=2)
    if p and not np.all(np.isfinite(beta)):
        raise ConvergenceError(f"{name}: non-finite coefficients")
    alpha[live] -= centre @ beta
    return PooledLogistic(alpha, beta, it, converged)


def _add_rows(out: np.ndarray, idx: np.ndarray, values: np.ndarray) -> None:
    """``np.add.at(out, idx, values)``, as one bincount per column (much faster for many rows)."""
    for j in range(values.shape[1]):
        out[:, j] += np.bincount(idx, weights=values[:, j], minlength=out.shape[0])
