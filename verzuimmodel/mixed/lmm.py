r"""Linear mixed model with crossed random intercepts, random slopes and correlated random effects, fitted by
profiled (RE)ML as ``lme4::lmer``.

Model
-----
For observation :math:`i` (a pupil, a pupil-year, a measurement) and random-effects terms
:math:`t = 1, \ldots, T` -- each a grouping factor :math:`g_t` (school, PO school, VO school, pupil) with
:math:`q_t` columns :math:`z_{ti}` (1 for a random intercept; ``(x | g)``: :math:`(1, x_i)`)

.. math:: y_i = x_i'\beta + \sum_{t=1}^{T} z_{ti}' b_{t, g_t(i)} + \varepsilon_i, \qquad
          b_{t,g} \sim N(0, \Sigma_t), \qquad \varepsilon_i \sim N(0, \sigma^2 / w_i),

all independent; in matrix form :math:`y = X\beta + Zb + \varepsilon`. With random intercepts only
(``groups=["po_school", "vo_school"]``, crossed: pupils of one PO school go to several VO schools)
:math:`\Sigma_t = \sigma_t^2`. The terms are lme4's (``"(Days | Subject)"``, ``"(x || g)"``,
``"(0 + x | g)"``; :mod:`~verzuimmodel.mixed.random_terms`), given with ``groups=`` or in the formula. The
weights :math:`w_i` (default 1) are precision weights, as ``lmer(weights=)``.

Estimation
----------
As lme4 (Bates, Mächler, Bolker & Walker 2015): with the relative covariance factors
:math:`\Sigma_t = \sigma^2 T_t T_t'` (:math:`T_t` lower triangular, diagonal :math:`\ge 0`; :math:`\theta` lists
their elements; for a random intercept :math:`\theta_t = \sigma_t/\sigma`),
:math:`\Lambda_\theta = \operatorname{diag}_t(I_{G_t} \otimes T_t)` and spherical random effects :math:`u`
(:math:`b = \Lambda_\theta u`), :math:`\beta` and :math:`\sigma` are profiled out and the (RE)ML criterion is
minimised over :math:`\theta` only:

.. math:: d_{ML}(\theta) = \log|L_\theta|^2 - \sum_i \log w_i + n\Big[1 + \log\frac{2\pi\, r^2(\theta)}{n}\Big],

.. math:: d_{REML}(\theta) = \log|L_\theta|^2 - \sum_i \log w_i + \log|R_X|^2
          + (n - p)\Big[1 + \log\frac{2\pi\, r^2(\theta)}{n - p}\Big],

where :math:`L_\theta L_\theta' = \Lambda_\theta' Z'WZ\Lambda_\theta + I`,
:math:`r^2(\theta) = \min_{\beta, u} \|W^{1/2}(y - X\beta - Z\Lambda_\theta u)\|^2 + \|u\|^2` and
:math:`R_X'R_X = X'WX - X'WZ\Lambda_\theta L_\theta^{-T} L_\theta^{-1}\Lambda_\theta' Z'WX`.
Then :math:`\hat\sigma^2 = r^2 / n` (ML) or :math:`r^2/(n-p)` (REML),
:math:`\operatorname{Var}\hat\beta = \hat\sigma^2 (R_X'R_X)^{-1}`, and the random effects
:math:`\hat b = \Lambda_\theta \hat u` are the conditional modes (BLUPs). The sparse algebra (no
loop over rows or groups; the largest factor's block diagonal, a dense Schur complement for the
others) is :class:`~verzuimmodel.mixed._design.InterceptSystem` for random intercepts and
:class:`~verzuimmodel.mixed.random_slopes.SlopeSystem` otherwise. The criterion is minimised with
L-BFGS-B from lme4's start :math:`T_t = I`, over :math:`\psi = \theta^2 \ge 0` for the diagonal elements (the
criterion is even in each column of :math:`T_t`, so its slope in a diagonal :math:`\theta` is 0 at the boundary
whether or not 0 is the minimum; in :math:`\psi` the bound is a proper constraint) and :math:`\theta` itself for
the others, then polished with Newton steps in :math:`\theta` on the elements off the boundary.
A diagonal :math:`\theta` below :math:`10^{-4}` is a boundary (singular) fit, as ``lme4::isSingular``: a variance
at 0 or, within a term, a correlation of :math:`\pm 1`.

Comparisons and intervals (:mod:`~verzuimmodel.mixed.lmm_profile`, :mod:`~verzuimmodel.mixed.compare`):
``aic_`` and ``bic_`` of the fitted criterion (as R's ``AIC``/``BIC``, with :math:`p + \dim\theta + 1`
parameters), :meth:`LinearMixed.confint` (profile likelihood or Wald, as ``confint.merMod``) and
:func:`~verzuimmodel.mixed.compare.anova` / :func:`~verzuimmodel.mixed.compare.lr_test` for nested fits.

Satterthwaite degrees of freedom
--------------------------------
Exactly as ``lmerTest``: with the variance parameters :math:`\phi = (\theta, \sigma)`, :math:`H` the
Hessian of the (RE)ML deviance :math:`-2\ell(\phi)` (:math:`\beta` at its conditional estimate) and
:math:`A = 2 H^{+}` (pseudo-inverse over eigenvalues above :math:`10^{-8}`; :math:`\theta` as above, so
random slopes and correlations included), for the contrast
:math:`c = L'\beta` with :math:`v(\phi) = L' \operatorname{Var}_\phi(\hat\beta) L` and gradient
:math:`g = \partial v / \partial\phi`,

.. math:: \nu = \frac{2\, v(\hat\phi)^2}{g' A g}.

:math:`H` and :math:`g` are central differences with Richardson extrapolation as numDeriv's ``hessian`` and
``jacobian`` in lmerTest (first steps :math:`0.1|\phi|` and :math:`10^{-4}|\phi|`, four levels).
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
from ._design import InterceptSystem, model_frame, new_design, new_group_codes
from ._numeric import _grad_hess, _jacobian, numderiv_steps
from .random_slopes import SlopeSystem
from .random_terms import RandomStructure, add_factor_columns, read_terms

__all__ = ["LinearMixed"]

SINGULAR_TOL = 1e-4       # lme4::isSingular(tol = 1e-4)
EIGEN_TOL = 1e-8          # lmerTest: eigenvalues of the deviance Hessian treated as zero


class LinearMixed:
    r"""Linear mixed model :math:`y = X\beta + Zb + \varepsilon` with random intercepts, random slopes and
    correlated random effects (lme4's terms).

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
    variance_components_ : Series of variances: ``g`` for the random intercept of a factor that has only an
        intercept, ``g.x`` for column ``x`` of factor ``g`` (``g.Intercept`` when the factor also has slopes),
        and ``"residual"``.
    varcorr_ : DataFrame as R's ``as.data.frame(VarCorr(fit))``: ``grp, var1, var2, vcov, sdcor`` (per term its
        variances and SDs, then its covariances and correlations; the residual last).
    theta_ : the relative covariance factors' elements (Series): for a lone random intercept
        :math:`\sigma_k/\sigma` named by its factor, else lme4's ``g.x`` (diagonal) and ``g.x.y`` names.
    sigma_ : residual standard deviation.
    log_likelihood_ : the REML criterion (``reml=True``) or log-likelihood, as ``logLik()`` of lme4;
        ``deviance_`` is :math:`-2` times it.
    aic_, bic_, n_parameters_ : ``AIC(fit)``, ``BIC(fit)`` (REML criterion for REML fits, as R) and the number of
        parameters (fixed effects, :math:`\theta`, :math:`\sigma`).
    ranef_ : dict factor -> conditional modes (BLUPs) by group label: a Series for a factor with only a random
        intercept, else a DataFrame with a column per random-effects column (as ``ranef(fit)``).
    random_terms_ : the random-effects terms as fitted (``||`` and ``/`` expanded).
    n_obs_, n_groups_ : number of rows; number of groups per factor (Series).
    converged_ : whether the optimiser converged (a boundary fit can have converged).
    boundary_ : the :math:`\theta` elements on the boundary (names of ``theta_``; for random intercepts the
        factors whose variance is 0).

    Examples
    --------
    >>> m = LinearMixed().fit(df, formula="y ~ x1 + treat", groups=["po_school", "vo_school"])
    >>> m = LinearMixed().fit(sleep, "Reaction ~ Days", groups="(Days | Subject)")    # doctest: +SKIP
    >>> m = LinearMixed().fit(sleep, "Reaction ~ Days + (Days | Subject)")            # doctest: +SKIP
    >>> m.tidy(), m.varcorr_, m.confint()                                             # doctest: +SKIP
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
        head = f"LinearMixed(reml={self.reml}, ddf={self.ddf!r}, max_iter={self.max_iter})"
        if not hasattr(self, "params_"):
            return head
        from .lmm_profile import summary_text
        return head + "\n" + summary_text(self)

    # ------------------------------------------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame, formula: str, groups: str | Sequence[str] | None = None,
            weights: str | None = None, table: str = "data") -> "LinearMixed":
        """Fit the model.

        Parameters
        ----------
        df : the data, one row per observation.
        formula : patsy formula of the fixed effects, ``"y ~ x1 + x2 + treat"``; it may carry lme4's random-effects
            terms instead of ``groups`` (``"Reaction ~ Days + (Days | Subject)"``).
        groups : the random effects: a grouping column with a random intercept, several (crossed), or lme4 terms
            (``"(Days | Subject)"``, ``"(Days || Subject)"``, ``"(0 + x | g) + (1 | h)"``, or a list of
            columns and terms; see :mod:`~verzuimmodel.mixed.random_terms`).
        weights : optional column of positive precision weights
            (:math:`\\operatorname{Var}\\,\\varepsilon_i = \\sigma^2/w_i`).
        table : name of the table in error messages.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            A random-effects term whose syntax is not lme4's (named); random effects both in the formula and in
            ``groups`` or in neither.
        SchemaError
            Missing columns or values, too few groups, as many random effects as rows, a rank-deficient design
            (see :func:`~verzuimmodel.mixed._design.model_frame`).
        """
        fixed, terms, data, factors = read_terms(df, formula, groups, table)
        mf = model_frame(data, fixed, factors, weights=weights, table=table)
        y, X, w = mf.y, mf.X, mf.weights
        n, p = X.shape
        if n - p < 1:
            raise SchemaError(table, None, f"{n} rows for {p} fixed effects", expected="more rows than fixed effects")
        for f, g in zip(mf.factors, mf.n_levels):
            if g >= n:       # as lme4: the group variance would not be separable from the residual variance
                raise SchemaError(table, f, f"as many groups ({g}) as rows ({n})",
                                  expected="fewer groups than rows (the group variance is not identifiable)")
        structure, blocks = RandomStructure.build(terms, data, dict(zip(factors, mf.n_levels)), table)
        _check_residual_variation(y, X, w, mf.outcome, table)
        if structure.intercepts_only:
            system = InterceptSystem(mf.group_codes, mf.n_levels)
        else:
            system = SlopeSystem(structure, mf.group_codes, mf.n_levels, blocks)
        with single_threaded_blas():     # small dense algebra: BLAS threads only contend
            cp = system.cross_products(X, y, w)
        return self._estimate(mf, structure, system, cp, formula, weights)

    def _estimate(self, mf, structure: RandomStructure, system, cp, formula: str, weights: str | None,
                  warn: bool = True, stacklevel: int = 3) -> "LinearMixed":
        """Minimise the criterion and keep the results (the rows are read: ``cp`` holds their cross products)."""
        n, p = mf.X.shape
        names, factors = list(mf.names), list(structure.factors)
        with single_threaded_blas():
            theta, converged, message = self._optimise(system, cp, structure)
            sol = system.solve(cp, theta)
        m = n - p if self.reml else n
        sigma2 = sol.pwrss / m
        sigma = float(np.sqrt(sigma2))
        vcov = sigma2 * linalg.inv(sol.RXtRX)
        vcov = 0.5 * (vcov + vcov.T)

        self._mf, self._system, self._state = mf, system, (mf, structure, system, cp)
        self.formula_, self.groups_, self.weights_column_ = formula, factors, weights
        self.random_terms_ = structure.describe()
        self.n_obs_ = n
        self.n_groups_ = pd.Series(mf.n_levels, index=factors, dtype=int, name="n_groups")
        theta_names = structure.theta_names()
        self.theta_ = pd.Series(theta, index=theta_names, name="theta")
        self.sigma_ = sigma
        self.params_ = pd.Series(sol.beta, index=names, name="estimate")
        self.vcov_ = pd.DataFrame(vcov, index=names, columns=names)
        self.standard_errors_ = pd.Series(np.sqrt(np.diag(vcov)), index=names, name="std_error")
        self.varcorr_ = structure.varcorr(theta, sigma)
        T = structure.block_factors(theta)
        vc_names, vc = [], []
        for b, f in enumerate(factors):
            for i, col in enumerate(structure.block_columns[b]):
                vc_names.append(structure.variance_name(f, col))
                vc.append(sigma2 * float(T[b][i] @ T[b][i]))
        self.variance_components_ = pd.Series(vc + [sigma2], index=vc_names + ["residual"], name="variance")
        self.deviance_ = float(self._profiled_deviance(system, cp, theta))
        self.log_likelihood_ = -0.5 * self.deviance_
        self.n_parameters_ = p + structure.n_theta + 1
        self.aic_ = self.deviance_ + 2.0 * self.n_parameters_
        self.bic_ = self.deviance_ + np.log(n) * self.n_parameters_
        self._ranef = []
        self.ranef_ = {}
        for b, f in enumerate(factors):
            u = np.asarray(sol.u[b], dtype=float).reshape(mf.n_levels[b], -1)
            bb = u @ T[b].T
            self._ranef.append(bb)
            cols = structure.block_columns[b]
            self.ranef_[f] = (pd.Series(bb[:, 0], index=mf.group_labels[b], name=f) if cols == ["Intercept"]
                              else pd.DataFrame(bb, index=mf.group_labels[b], columns=cols))
        self.converged_ = bool(converged)
        self.optimizer_message_ = message
        self.boundary_ = [nm for nm, t, d in zip(theta_names, theta, structure.is_diag) if d and t < SINGULAR_TOL]
        if self.ddf == "satterthwaite":
            with single_threaded_blas():
                ddf = self._satterthwaite(system, cp, theta, sigma, vcov)
            self.df_ = pd.Series(ddf, index=names, name="df")
        else:
            self.df_ = pd.Series(np.inf, index=names, name="df")

        if not converged:
            warnings.warn(f"LinearMixed: the optimiser (L-BFGS-B with Newton polishing) did not converge: {message}; "
                          "estimates at the last iterate are returned", ConvergenceWarning, stacklevel=stacklevel)
        if self.boundary_ and warn:
            which = ", ".join(f"'{f}' (theta = {self.theta_[f]:.2g})" for f in self.boundary_)
            if structure.intercepts_only:
                what = (f"the variance of {which} is estimated at (or near) 0; the estimates are returned, but "
                        "consider dropping that grouping factor")
            else:
                what = (f"the relative covariance factor is singular at {which}: a variance estimated at 0 or a "
                        "correlation of +-1; the estimates are returned, but consider a simpler random-effects "
                        "structure")
            warnings.warn(f"LinearMixed: boundary (singular) fit: {what}", ConvergenceWarning, stacklevel=stacklevel)
        return self

    def _refit_ml(self) -> "LinearMixed":
        """This fit by maximum likelihood (itself when it is one), as lme4's ``refitML``; no Satterthwaite df."""
        self._check_fitted()
        if not self.reml:
            return self
        mf, structure, system, cp = self._state
        return LinearMixed(reml=False, ddf=None, max_iter=self.max_iter)._estimate(
            mf, structure, system, cp, self.formula_, self.weights_column_, warn=False, stacklevel=4)

    # ------------------------------------------------------------------------------------------------------------
    def _profiled_deviance(self, system, cp, theta: np.ndarray) -> float:
        """lme4's deviance (ML) or REML criterion with beta and sigma profiled out."""
        sol = system.solve(cp, theta)
        n, p = system.n, cp.p
        if self.reml:
            m = n - p
            return sol.ldL2 - cp.sum_log_w + sol.ldRX2 + m * (1.0 + np.log(2.0 * np.pi * sol.pwrss / m))
        return sol.ldL2 - cp.sum_log_w + n * (1.0 + np.log(2.0 * np.pi * sol.pwrss / n))

    def _optimise(self, system, cp, structure: RandomStructure,
                  start: np.ndarray | None = None) -> tuple[np.ndarray, bool, str]:
        K, diag = structure.n_theta, structure.is_diag

        def f(t):                   # even in each column of T: numeric derivatives may step below 0
            return self._profiled_deviance(system, cp, structure.canonical(t))

        def to_theta(x):
            t = np.array(x, dtype=float)
            t[diag] = np.sqrt(np.maximum(t[diag], 0.0))
            return t

        def f_psi(x):               # psi = theta^2 on the diagonal: its slope at 0 is not forced to 0
            return f(to_theta(x))

        x0 = structure.start() if start is None else np.where(diag, np.asarray(start, dtype=float) ** 2, start)
        res = optimize.minimize(f_psi, x0, method="L-BFGS-B", jac="3-point",
                                bounds=[(0.0, None) if d else (None, None) for d in diag],
                                options={"maxiter": self.max_iter, "ftol": 1e-15, "gtol": 1e-10})
        theta = structure.canonical(to_theta(res.x))
        message = f"L-BFGS-B: {res.message}"
        # Newton polish of the elements off the boundary (numeric gradient and Hessian in theta)
        step_size = 0.0
        for _ in range(20):
            free = ~diag | (theta > 0)
            if not free.any():
                step_size = 0.0
                break

            def f_free(tf, free=free):
                t = theta.copy()
                t[free] = tf
                return f(t)

            g, H = _grad_hess(f_free, theta[free])
            try:
                d = -linalg.cho_solve(linalg.cho_factor(H), g)
            except linalg.LinAlgError:
                ev, V = np.linalg.eigh(H)      # flat directions (a singular factor) are left alone
                if ev.min() < -1e-6 * max(np.abs(ev).max(), 1.0) or diag.all():
                    message += "; the Hessian of the criterion is not positive definite at the optimum"
                    step_size = np.inf
                    break
                keep = ev > 1e-10 * ev.max()
                d = -(V[:, keep] / ev[keep]) @ (V[:, keep].T @ g)
            step_size = float(np.max(np.abs(d) / (1.0 + np.abs(theta[free]))))
            if step_size < 1e-9:
                break
            f0, t = f(theta), 1.0
            while t > 1e-6:
                cand = theta.copy()
                new = theta[free] + t * d
                cand[free] = np.where(diag[free], np.maximum(new, 0.0), new)
                if f(cand) <= f0 + 1e-12 * abs(f0):
                    theta = cand
                    break
                t /= 2
            else:
                break
        # a theta within rounding of the boundary is put on it (lme4 reports such a variance as exactly 0)
        for k in np.flatnonzero(diag & (theta > 0) & (theta < 1e-6)):
            cand = theta.copy()
            cand[k] = 0.0
            if f(cand) <= f(theta) + 1e-12 * abs(f(theta)):
                theta = cand
        converged = step_size < 1e-6
        if not converged:
            message += f"; the last Newton step was {step_size:.1e} (relative)"
        # a diagonal element at 0 must be a minimum along psi = theta^2 >= 0 (one-sided slope not negative)
        x_hat = np.where(diag, theta ** 2, theta)
        f0 = f(theta)
        for k in np.flatnonzero(diag & (theta == 0)):
            e = np.zeros(K)
            e[k] = 1e-6
            if f_psi(x_hat + e) < f0 - 1e-10 * abs(f0):
                converged = False
                message += f"; the criterion still decreases away from a zero variance (theta {k + 1})"
        return theta, converged, message

    def _satterthwaite(self, system, cp, theta: np.ndarray, sigma: float, vcov: np.ndarray) -> np.ndarray:
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

        phi = np.concatenate([theta, [sigma]])     # numDeriv's hessian (d = 0.1) and jacobian (d = 1e-4), r = 4
        _, H = _grad_hess(dev_vp, phi, steps=numderiv_steps(phi, 0.1), levels=4)
        J = _jacobian(diag_covbeta, phi, steps=numderiv_steps(phi, 1e-4), levels=4)     # (p, K+1)
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

    def confint(self, parm: str | Sequence[str] | None = None, level: float = 0.95,
                method: Literal["profile", "Wald"] = "profile") -> pd.DataFrame:
        """Confidence intervals of the variance parameters and fixed effects, as lme4's ``confint.merMod``.

        ``method="profile"``: profile likelihood intervals of the SDs, correlations, residual SD (named as
        ``confint(oldNames = FALSE)``: ``sd_Intercept|Subject``, ``cor_Days.Intercept|Subject``, ``sigma``) and
        fixed effects, from the ML fit (a REML fit is refitted by ML first, as lme4).
        ``method="Wald"``: estimate :math:`\\pm z` standard errors for the fixed effects, NaN for the variance
        parameters (as lme4). ``parm``: names, ``"theta_"`` (variance parameters) or ``"beta_"`` (fixed effects).
        Returns a DataFrame with ``conf_low`` and ``conf_high`` by parameter; see
        :mod:`~verzuimmodel.mixed.lmm_profile`.
        """
        from .lmm_profile import confint
        return confint(self, parm=parm, level=level, method=method)

    def profile(self):
        """The likelihood profile of the ML fit (:class:`~verzuimmodel.mixed.lmm_profile.LikelihoodProfile`)."""
        from .lmm_profile import LikelihoodProfile
        self._check_fitted()
        return LikelihoodProfile(self)

    def predict(self, df: pd.DataFrame, include_random: bool = True) -> np.ndarray:
        """Predictions :math:`x'\\hat\\beta` (+ :math:`z'\\hat b` of the rows' groups with ``include_random``).

        Groups not seen in fitting get a random effect of 0 (the population value).
        """
        self._check_fitted()
        X = new_design(self._mf, df)
        out = X @ self.params_.to_numpy()
        if include_random:
            mf, structure = self._state[0], self._state[1]
            data = add_factor_columns(df, structure.terms, "newdata")
            cols = structure.new_columns(data)
            for b, f in enumerate(self.groups_):
                codes = new_group_codes(data, f, mf.group_labels[b])
                rows = self._ranef[b][np.maximum(codes, 0)]
                out = out + np.where(codes >= 0, np.sum(cols[b] * rows, axis=1), 0.0)
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
