r"""Linear mixed model with one or more crossed random intercepts, fitted by profiled (RE)ML as ``lme4::lmer``.

Model
-----
For observation :math:`i` (a pupil, a pupil-year) in group :math:`g_k(i)` of each grouping factor
:math:`k = 1, \ldots, K` (e.g. PO school and VO school, crossed: pupils of one PO school go to
several VO schools)

.. math:: y_i = x_i'\beta + \sum_{k=1}^{K} b_{k, g_k(i)} + \varepsilon_i, \qquad
          b_{k,g} \sim N(0, \sigma_k^2), \qquad \varepsilon_i \sim N(0, \sigma^2 / w_i),

all independent; in matrix form :math:`y = X\beta + \sum_k Z_k b_k + \varepsilon`. The weights
:math:`w_i` (default 1) are precision weights, as ``lmer(weights=)``.

Estimation
----------
As lme4 (Bates, Mächler, Bolker & Walker 2015): with relative standard deviations
:math:`\theta_k = \sigma_k / \sigma`, :math:`\Lambda_\theta = \operatorname{diag}(\theta_k I_{G_k})` and
spherical random effects :math:`u` (:math:`b = \Lambda_\theta u`), :math:`\beta` and :math:`\sigma` are
profiled out and the (RE)ML criterion is minimised over :math:`\theta \ge 0` only:

.. math:: d_{ML}(\theta) = \log|L_\theta|^2 - \sum_i \log w_i + n\Big[1 + \log\frac{2\pi\, r^2(\theta)}{n}\Big],

.. math:: d_{REML}(\theta) = \log|L_\theta|^2 - \sum_i \log w_i + \log|R_X|^2
          + (n - p)\Big[1 + \log\frac{2\pi\, r^2(\theta)}{n - p}\Big],

where :math:`L_\theta L_\theta' = \Lambda_\theta Z'WZ\Lambda_\theta + I`,
:math:`r^2(\theta) = \min_{\beta, u} \|W^{1/2}(y - X\beta - Z\Lambda_\theta u)\|^2 + \|u\|^2` and
:math:`R_X'R_X = X'WX - X'WZ\Lambda_\theta L_\theta^{-T} L_\theta^{-1}\Lambda_\theta Z'WX`.
Then :math:`\hat\sigma^2 = r^2 / n` (ML) or :math:`r^2/(n-p)` (REML),
:math:`\operatorname{Var}\hat\beta = \hat\sigma^2 (R_X'R_X)^{-1}`, and the random effects
:math:`\hat b = \Lambda_\theta \hat u` are the conditional modes (BLUPs). The sparse algebra (no
loop over rows or groups; the largest factor's block diagonal, a dense Schur complement for the
others) is :class:`~verzuimmodel.mixed._design.InterceptSystem`. The criterion is minimised with
L-BFGS-B over :math:`\psi_k = \theta_k^2 \ge 0` from :math:`\psi = 1` (the criterion is even in
:math:`\theta`, so its slope in :math:`\theta` is 0 at the boundary whether or not 0 is the minimum; in
:math:`\psi` the bound is a proper constraint), then polished with Newton steps in :math:`\theta` on the
components off the boundary.
A :math:`\theta_k` below :math:`10^{-4}` is a boundary (singular) fit, as ``lme4::isSingular``.

Satterthwaite degrees of freedom
--------------------------------
Exactly as ``lmerTest``: with the variance parameters :math:`\phi = (\theta, \sigma)`, :math:`H` the
Hessian of the (RE)ML deviance :math:`-2\ell(\phi)` (:math:`\beta` at its conditional estimate) and
:math:`A = 2 H^{+}` (pseudo-inverse over eigenvalues above :math:`10^{-8}`), for the contrast
:math:`c = L'\beta` with :math:`v(\phi) = L' \operatorname{Var}_\phi(\hat\beta) L` and gradient
:math:`g = \partial v / \partial\phi`,

.. math:: \nu = \frac{2\, v(\hat\phi)^2}{g' A g}.

:math:`H` and :math:`g` are central differences with one Richardson extrapolation.
"""

from __future__ import annotations

import warnings
from typing import Literal, Sequence

import numpy as np
import pandas as pd
from scipy import linalg, optimize

from .._blas import single_threaded_blas
from ..errors import ConvergenceWarning
from ..schema import SchemaError
from ..tidy import tidy_table
from ._design import CrossProducts, InterceptSystem, model_frame, new_design, new_group_codes

__all__ = ["LinearMixed"]

SINGULAR_TOL = 1e-4       # lme4::isSingular(tol = 1e-4)
EIGEN_TOL = 1e-8          # lmerTest: eigenvalues of the deviance Hessian treated as zero


class LinearMixed:
    r"""Linear mixed model :math:`y = X\beta + \sum_k Z_k b_k + \varepsilon` with random intercepts.

    Parameters
    ----------
    reml : fit by restricted maximum likelihood (default, as ``lmer``) or by maximum likelihood.
    ddf : degrees of freedom of the t-tests and intervals in :meth:`tidy`: ``"satterthwaite"``
        (as ``lmerTest``) or ``None`` (normal distribution).
    max_iter : most iterations of the optimiser.

    Attributes (after :meth:`fit`)
    ------------------------------
    params_, standard_errors_ : fixed effects and their standard errors (Series by term).
    vcov_ : covariance matrix of the fixed effects (DataFrame).
    df_ : Satterthwaite degrees of freedom per fixed effect (Series; ``inf`` with ``ddf=None``).
    variance_components_ : Series: the variance of each grouping factor and ``"residual"``.
    theta_ : relative standard deviations :math:`\sigma_k/\sigma` (Series by factor).
    sigma_ : residual standard deviation.
    log_likelihood_ : the REML criterion (``reml=True``) or log-likelihood, as ``logLik()`` of lme4.
    ranef_ : dict factor -> Series of the random effects (BLUPs) indexed by group label.
    n_obs_, n_groups_ : number of rows; number of groups per factor (Series).
    converged_ : whether the optimiser converged (a boundary fit can have converged).
    boundary_ : factors whose variance is estimated on the boundary (0).

    Examples
    --------
    >>> m = LinearMixed().fit(df, formula="y ~ x1 + treat", groups=["po_school", "vo_school"])
    >>> m.tidy()                      # doctest: +SKIP
    """

    def __init__(self, reml: bool = True, ddf: Literal["satterthwaite"] | None = "satterthwaite",
                 max_iter: int = 1000):
        if not isinstance(reml, (bool, np.bool_)):
            raise TypeError(f"reml must be True or False, got {reml!r}")
        if ddf not in ("satterthwaite", None):
            raise ValueError(f"ddf must be 'satterthwaite' or None, got {ddf!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
        self.reml = bool(reml)
        self.ddf = ddf
        self.max_iter = int(max_iter)

    def __repr__(self) -> str:
        return f"LinearMixed(reml={self.reml}, ddf={self.ddf!r}, max_iter={self.max_iter})"

    # ------------------------------------------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame, formula: str, groups: str | Sequence[str], weights: str | None = None,
            table: str = "data") -> "LinearMixed":
        """Fit the model.

        Parameters
        ----------
        df : the data, one row per observation.
        formula : patsy formula of the fixed effects, ``"y ~ x1 + x2 + treat"``.
        groups : grouping column(s) with a random intercept each; several are crossed.
        weights : optional column of positive precision weights
            (:math:`\\operatorname{Var}\\,\\varepsilon_i = \\sigma^2/w_i`).
        table : name of the table in error messages.

        Returns
        -------
        self
        """
        mf = model_frame(df, formula, groups, weights=weights, table=table)
        y, X, names, codes, labels, _, w = mf
        n, p = X.shape
        if n - p < 1:
            raise SchemaError(table, None, f"{n} rows for {p} fixed effects", expected="more rows than fixed effects")
        for f, g in zip(mf.factors, mf.n_levels):
            if g >= n:       # as lme4: the group variance would not be separable from the residual variance
                raise SchemaError(table, f, f"as many groups ({g}) as rows ({n})",
                                  expected="fewer groups than rows (the group variance is not identifiable)")
        _check_residual_variation(y, X, w, mf.outcome, table)
        system = InterceptSystem(codes, mf.n_levels)
        factors = list(mf.factors)

        with single_threaded_blas():     # small dense algebra: BLAS threads only contend
            cp = system.cross_products(X, y, w)
            theta, converged, message = self._optimise(system, cp)
            sol = system.solve(cp, theta)
        m = n - p if self.reml else n
        sigma2 = sol.pwrss / m
        sigma = float(np.sqrt(sigma2))
        vcov = sigma2 * linalg.inv(sol.RXtRX)
        vcov = 0.5 * (vcov + vcov.T)

        self._mf, self._system = mf, system
        self.formula_, self.groups_, self.weights_column_ = formula, factors, weights
        self.n_obs_ = n
        self.n_groups_ = pd.Series(mf.n_levels, index=factors, dtype=int, name="n_groups")
        self.theta_ = pd.Series(theta, index=factors, name="theta")
        self.sigma_ = sigma
        self.params_ = pd.Series(sol.beta, index=names, name="estimate")
        self.vcov_ = pd.DataFrame(vcov, index=names, columns=names)
        self.standard_errors_ = pd.Series(np.sqrt(np.diag(vcov)), index=names, name="std_error")
        self.variance_components_ = pd.Series(np.concatenate([(sigma * theta) ** 2, [sigma2]]),
                                              index=factors + ["residual"], name="variance")
        self.deviance_ = float(self._profiled_deviance(system, cp, theta))
        self.log_likelihood_ = -0.5 * self.deviance_
        self.ranef_ = {f: pd.Series(theta[k] * sol.u[k], index=labels[k], name=f) for k, f in enumerate(factors)}
        self.converged_ = bool(converged)
        self.optimizer_message_ = message
        self.boundary_ = [f for f, t in zip(factors, theta) if t < SINGULAR_TOL]
        if self.ddf == "satterthwaite":
            with single_threaded_blas():
                ddf = self._satterthwaite(system, cp, theta, sigma, vcov)
            self.df_ = pd.Series(ddf, index=names, name="df")
        else:
            self.df_ = pd.Series(np.inf, index=names, name="df")

        if not converged:
            warnings.warn(f"LinearMixed: the optimiser (L-BFGS-B with Newton polishing) did not converge: {message}; "
                          "estimates at the last iterate are returned", ConvergenceWarning, stacklevel=2)
        if self.boundary_:
            which = ", ".join(f"'{f}' (theta = {self.theta_[f]:.2g})" for f in self.boundary_)
            warnings.warn(f"LinearMixed: boundary (singular) fit: the variance of {which} is estimated at (or "
                          "near) 0; the estimates are returned, but consider dropping that grouping factor",
                          ConvergenceWarning, stacklevel=2)
        return self

    # ------------------------------------------------------------------------------------------------------------
    def _profiled_deviance(self, system: InterceptSystem, cp: CrossProducts, theta: np.ndarray) -> float:
        """lme4's deviance (ML) or REML criterion with beta and sigma profiled out."""
        sol = system.solve(cp, theta)
        n, p = system.n, cp.p
        if self.reml:
            m = n - p
            return sol.ldL2 - cp.sum_log_w + sol.ldRX2 + m * (1.0 + np.log(2.0 * np.pi * sol.pwrss / m))
        return sol.ldL2 - cp.sum_log_w + n * (1.0 + np.log(2.0 * np.pi * sol.pwrss / n))

    def _optimise(self, system: InterceptSystem, cp: CrossProducts) -> tuple[np.ndarray, bool, str]:
        K = system.K

        def f(t):                   # the criterion is even in each theta: numeric derivatives may step below 0
            return self._profiled_deviance(system, cp, np.abs(t))

        def f_psi(psi):             # in psi = theta^2 its slope at 0 is not forced to 0: a proper bound
            return f(np.sqrt(np.maximum(psi, 0.0)))

        res = optimize.minimize(f_psi, np.ones(K), method="L-BFGS-B", jac="3-point", bounds=[(0.0, None)] * K,
                                options={"maxiter": self.max_iter, "ftol": 1e-15, "gtol": 1e-10})
        theta = np.sqrt(np.maximum(np.asarray(res.x, dtype=float), 0.0))
        message = f"L-BFGS-B: {res.message}"
        # Newton polish of the components off the boundary (numeric gradient and Hessian in theta)
        step_size = 0.0
        for _ in range(20):
            free = theta > 0
            if not free.any():
                step_size = 0.0
                break

            def f_free(tf, free=free):
                t = theta.copy()
                t[free] = tf
                return f(t)

            g, H = _grad_hess(f_free, theta[free])
            try:
                c = linalg.cho_factor(H)
            except linalg.LinAlgError:
                message += "; the Hessian of the criterion is not positive definite at the optimum"
                step_size = np.inf
                break
            d = -linalg.cho_solve(c, g)
            step_size = float(np.max(np.abs(d) / (1.0 + theta[free])))
            if step_size < 1e-9:
                break
            f0, t = f(theta), 1.0
            while t > 1e-6:
                cand = theta.copy()
                cand[free] = np.maximum(theta[free] + t * d, 0.0)
                if f(cand) <= f0 + 1e-12 * abs(f0):
                    theta = cand
                    break
                t /= 2
            else:
                break
        # a theta within rounding of the boundary is put on it (lme4 reports such a variance as exactly 0)
        for k in np.flatnonzero((theta > 0) & (theta < 1e-6)):
            cand = theta.copy()
            cand[k] = 0.0
            if f(cand) <= f(theta) + 1e-12 * abs(f(theta)):
                theta = cand
        converged = step_size < 1e-6
        if not converged:
            message += f"; the last Newton step was {step_size:.1e} (relative)"
        # a variance at 0 must be a minimum along psi = theta^2 >= 0 (one-sided slope not negative)
        f0 = f(theta)
        for k in np.flatnonzero(theta == 0):
            e = np.zeros(K)
            e[k] = 1e-6
            if f_psi(theta ** 2 + e) < f0 - 1e-10 * abs(f0):
                converged = False
                message += f"; the criterion still decreases away from a zero variance (factor {k + 1})"
        return theta, converged, message

    def _satterthwaite(self, system: InterceptSystem, cp: CrossProducts, theta: np.ndarray, sigma: float,
                       vcov: np.ndarray) -> np.ndarray:
        """lmerTest's Satterthwaite df of each fixed effect (see the module docstring)."""
        n, p = system.n, cp.p
        K = len(theta)

        def dev_vp(phi):            # lmerTest:::devfun_vp
            s2 = phi[K] ** 2
            sol = system.solve(cp, phi[:K])
            d = sol.ldL2 + sol.pwrss / s2 + n * np.log(2 * np.pi * s2)
            if self.reml:
                d += sol.ldRX2 - p * np.log(2 * np.pi * s2)
            return d

        def diag_covbeta(phi):      # lmerTest:::get_covbeta (its diagonal)
            sol = system.solve(cp, phi[:K])
            return phi[K] ** 2 * np.diag(linalg.inv(sol.RXtRX))

        phi = np.concatenate([theta, [sigma]])
        _, H = _grad_hess(dev_vp, phi)
        J = _jacobian(diag_covbeta, phi)            # (p, K+1)
        ev, V = np.linalg.eigh(H)
        pos = ev > EIGEN_TOL
        A = 2.0 * (V[:, pos] / ev[pos]) @ V[:, pos].T
        var = np.diag(vcov)
        denom = np.einsum("jk,kl,jl->j", J, A, J)
        with np.errstate(divide="ignore", invalid="ignore"):
            ddf = np.where(denom > 0, 2.0 * var ** 2 / denom, np.inf)
        return ddf

    # ------------------------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise RuntimeError("LinearMixed is not fitted yet: call fit() first")

    def tidy(self, level: float = 0.95) -> pd.DataFrame:
        """Fixed effects: term, estimate, std_error, t statistic, p-value and interval (t with ``df_``)."""
        self._check_fitted()
        df = None if self.ddf is None else self.df_
        return tidy_table(self.params_, self.standard_errors_, level=level, df=df, exponentiate=False)

    def predict(self, df: pd.DataFrame, include_random: bool = True) -> np.ndarray:
        """Predictions :math:`x'\\hat\\beta` (+ the BLUPs of the rows' groups with ``include_random``).

        Groups not seen in fitting get a random effect of 0 (the population value).
        """
        self._check_fitted()
        X = new_design(self._mf, df)
        out = X @ self.params_.to_numpy()
        if include_random:
            for f in self.groups_:
                codes = new_group_codes(df, f, self.ranef_[f].index)
                b = self.ranef_[f].to_numpy()
                out = out + np.where(codes >= 0, b[np.maximum(codes, 0)], 0.0)
        return out


def _check_residual_variation(y: np.ndarray, X: np.ndarray, w: np.ndarray | None, outcome: str, table: str) -> None:
    """``SchemaError`` when the fixed effects fit the outcome exactly (a constant outcome, say): there is
    no residual variance to estimate, and the (RE)ML criterion is ``-inf``."""
    sw = np.ones_like(y) if w is None else np.sqrt(w)
    beta = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
    rss = float(np.sum((sw * (y - X @ beta)) ** 2))
    if rss <= 1e-20 * max(float(np.sum((sw * y) ** 2)), np.finfo(float).tiny):
        what = (f"does not vary (every value is {y[0]:.6g})" if np.all(y == y[0])
                else "is fitted exactly by the fixed effects")
        raise SchemaError(table, outcome, f"LinearMixed: the outcome {what}, so there is no residual variance to "
                          "estimate", expected="an outcome that varies around the fixed effects")


# --------------------------------------------------------------------------------------------------------------------
# numeric derivatives: central differences with one Richardson extrapolation


def _steps(x: np.ndarray) -> np.ndarray:
    return 1e-3 * np.maximum(np.abs(x), 1e-2)


def _grad_hess(f, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of scalar ``f`` at ``x`` (``f`` must be defined around ``x``)."""
    x = np.asarray(x, dtype=float)

    def at(h):
        k = len(x)
        f0 = f(x)
        g = np.empty(k)
        H = np.empty((k, k))
        fp, fm = np.empty(k), np.empty(k)
        for i in range(k):
            e = np.zeros(k)
            e[i] = h[i]
            fp[i], fm[i] = f(x + e), f(x - e)
            g[i] = (fp[i] - fm[i]) / (2 * h[i])
            H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h[i] ** 2
        for i in range(k):
            for j in range(i):
                ei = np.zeros(k)
                ej = np.zeros(k)
                ei[i], ej[j] = h[i], h[j]
                H[i, j] = H[j, i] = ((f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej))
                                     / (4 * h[i] * h[j]))
        return g, H

    h = _steps(x)
    g1, H1 = at(h)
    g2, H2 = at(h / 2)
    return (4 * g2 - g1) / 3, (4 * H2 - H1) / 3


def _jacobian(f, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)

    def at(h):
        cols = []
        for i in range(len(x)):
            e = np.zeros(len(x))
            e[i] = h[i]
            cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h[i]))
        return np.column_stack(cols)

    h = _steps(x)
    return (4 * at(h / 2) - at(h)) / 3
