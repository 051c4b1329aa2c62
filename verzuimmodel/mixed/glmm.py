r"""Poisson and negative binomial (NB2) mixed models with random intercepts, random slopes and correlated random
effects, fitted by maximum likelihood (as glmmTMB and ``lme4::glmer``).

Model
-----
For observation :math:`i` (a pupil-year) in group :math:`g_k(i)` of each grouping factor
:math:`k = 1, \ldots, K` (one factor such as the school, two crossed ones such as PO school and VO
school, or more, e.g. pupil, PO school and VO school with pupil-years nested in pupils),
with count :math:`y_i` (e.g. yearly hours of unexcused absence), covariates :math:`x_i` and
offset :math:`o_i` (the log exposure, e.g. log enrolled days), with random intercepts
(``groups="school"``, ``groups=["po_school", "vo_school"]``)

.. math:: \log \mu_i = x_i'\beta + \sum_{k=1}^{K} u_{k, g_k(i)} + o_i, \qquad
          u_{k,g} \sim N(0, \sigma_k^2) \text{ independent},

and with random slopes (lme4's terms ``(x | g)``, ``(x || g)``, ``(0 + x | g)``, in ``groups=`` or the formula):
per term :math:`t` with columns :math:`z_{ti}` (``(x | g)``: :math:`z_{ti} = (1, x_i)`)

.. math:: \log \mu_i = x_i'\beta + \sum_t z_{ti}' b_{t, g_t(i)} + o_i, \qquad
          b_{t,g} \sim N(0, \Sigma_t) \text{ independent}, \qquad
          \Sigma_{(x | g)} = \begin{pmatrix}\sigma_0^2 & \rho\sigma_0\sigma_1 \\
                                            \rho\sigma_0\sigma_1 & \sigma_1^2\end{pmatrix},

(``(x || g)``: :math:`\rho = 0`), parametrised as lme4 by the Cholesky factor :math:`\Sigma_t = T_tT_t'`
(``theta_``; :mod:`~verzuimmodel.mixed.glmm_slopes`). In both,

.. math:: y_i \mid u \sim \text{Poisson}(\mu_i) \quad\text{or}\quad
          y_i \mid u \sim \text{NB2}(\mu_i, \theta): \;
          \Pr(y) = \frac{\Gamma(y + \theta)}{\Gamma(\theta)\, y!}
          \Big(\frac{\theta}{\theta + \mu}\Big)^{\theta} \Big(\frac{\mu}{\theta + \mu}\Big)^{y},
          \quad \operatorname{Var}(y \mid u) = \mu + \mu^2/\theta.

:math:`e^{\beta}` are rate ratios *conditional* on the random effects (the school); with a random slope of
:math:`x`, :math:`e^{\beta_x}` is the rate ratio in a typical school and :math:`e^{\beta_x \pm 1.96\sigma_1}` the range
over schools. Small :math:`\theta` means strong overdispersion (``dispersion_`` is :math:`\theta`, as ``sigma()`` of a
``glmmTMB(family = nbinom2)`` fit); :math:`\theta \to \infty` is the Poisson model.

How it is fitted: by the Laplace approximation (or, with one random intercept only, adaptive Gauss–Hermite
quadrature) of the marginal likelihood, with its exact gradient, as glmmTMB / TMB
(:mod:`~verzuimmodel.mixed.laplace`), the random intercepts' block factorisation
(:mod:`~verzuimmodel.mixed.random_intercepts`) or, with random slopes, lme4's spherical random effects and
relative covariance factors (:mod:`~verzuimmodel.mixed.slope_laplace`), and the per-row likelihoods of the two
families (:mod:`~verzuimmodel.mixed.count_families`). Terms that are random intercepts only (``"(1 | school)"``,
``"(1 | po/klas)"``) are fitted by the random-intercept code. What a fit holds and reports is in
:mod:`~verzuimmodel.mixed.glmm_results` (and :mod:`~verzuimmodel.mixed.glmm_slopes`): ``tidy()`` gives the fixed
effects, ``tidy(effects="ran_pars")`` the SDs, correlations and :math:`\theta` with Wald intervals,
``summary()`` (and ``repr`` of a fit) the whole fit as glmer's ``summary``, ``confint()`` profile-likelihood (or
Wald) intervals of the SDs, correlations, :math:`\theta` and fixed effects as lme4's ``confint.merMod``
(:mod:`~verzuimmodel.mixed.glmm_profile`).

Boundaries and warnings
-----------------------
A variance whose estimate falls below :math:`10^{-6}` is checked against the fit without that factor;
when that fit is as good, the variance is on its boundary: it is reported as exactly 0, the factor
is dropped from the final fit (its ``ranef_`` are 0) and a
:class:`~verzuimmodel.errors.ConvergenceWarning` names it. With random slopes a covariance matrix on its
boundary (a variance at 0, or a correlation at :math:`\pm 1`) is checked the same way, against the fit with a
column of its Cholesky factor at 0, and the warning says which it is. A dispersion :math:`\theta` above
:math:`10^{6}` means no overdispersion (the Poisson model): warned, and the standard errors hold it
fixed. An optimiser that does not reach a
stationary point with a positive definite Hessian is warned naming the parameter concerned, and
``converged_`` is False.

References: Kristensen K, Nielsen A, Berg CW, Skaug H, Bell BM (2016). TMB: Automatic differentiation
and Laplace approximation. J Stat Softw 70(5). Brooks ME et al. (2017). glmmTMB balances speed and
flexibility among packages for zero-inflated generalized linear mixed modeling. R Journal 9(2).
Bates D, Mächler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models using lme4.
J Stat Softw 67(1) (``glmerAGQ``).
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import pandas as pd

from .._blas import single_threaded_blas
from ._design import model_frame
from .count_families import _NB2, _Poisson, _count_outcome, _exposure_offset
from .glmm_results import _CountResults
from .glmm_slopes import fit_slopes, model_frame_for, random_spec
from .laplace import BOUNDARY_VARIANCE, THETA_MAX, _glm_start, _Objective, _optimise  # noqa: F401 (THETA_MAX)
from .random_intercepts import MAX_DENSE_LEVELS, SCHUR_OPTIONS, _Groups  # noqa: F401 (MAX_DENSE_LEVELS)

__all__ = ["PoissonMixed", "NegativeBinomialMixed"]


class _LaplaceMixed(_CountResults):
    """Options and the shared estimation of the mixed models fitted by Laplace / adaptive quadrature
    (:class:`PoissonMixed`, :class:`NegativeBinomialMixed` and
    :class:`~verzuimmodel.mixed.binomial_mixed.BinomialMixed`): the outer optimisation, the check of
    variances on their boundary and the quadrature refit."""

    def __init__(self, n_agq: int = 1, level: float = 0.95, max_iter: int = 500,
                 schur: Literal["auto", "dense", "sparse"] = "auto"):
        if schur not in SCHUR_OPTIONS:
            raise ValueError(f"schur must be one of {', '.join(map(repr, SCHUR_OPTIONS))}, got {schur!r}")
        if isinstance(n_agq, bool) or not isinstance(n_agq, (int, np.integer)) or n_agq < 1 or n_agq > 50:
            raise ValueError(f"n_agq must be an integer from 1 (Laplace) to 50, got {n_agq!r}")
        if not (isinstance(level, (float, int)) and 0 < level < 1):
            raise ValueError(f"level must be a number between 0 and 1, got {level!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
        self.n_agq, self.level, self.max_iter = int(n_agq), float(level), int(max_iter)
        self.schur = schur

    def __repr__(self) -> str:
        schur = "" if self.schur == "auto" else f", schur={self.schur!r}"
        head = f"{type(self).__name__}(n_agq={self.n_agq}, level={self.level}, max_iter={self.max_iter}{schur})"
        return head + "\n" + self.summary() if hasattr(self, "params_") else head

    def _check_agq(self, factors) -> None:
        if self.n_agq > 1 and len(factors) != 1:
            raise ValueError("n_agq > 1 (adaptive Gauss-Hermite quadrature) needs exactly one grouping factor; "
                             "use n_agq=1 (Laplace) for crossed factors")

    def _estimate(self, mf, family, off, start) -> tuple:
        """Maximise the Laplace (then, with ``n_agq > 1``, the quadrature) likelihood from ``start(y, X, off,
        family, groups)``; a variance that goes to 0 is checked against the fit without its factor.
        Returns the fit, the factors kept in it and those on their boundary."""
        y, X = mf.y, mf.X
        n, p = X.shape
        factors = list(mf.factors)
        sizes = mf.n_levels
        groups_all = _Groups(mf.group_codes, sizes, n, schur=self.schur)
        obj = _Objective(y, X, off, groups_all, family)
        phi0 = start(y, X, off, family, groups_all, design=obj.design)
        fit = _optimise(obj, phi0, self.max_iter)
        active = list(range(len(factors)))
        # boundary: variances that went to (near) 0, checked against the fit without them
        tau = fit.state.phi[p:p + len(factors)]
        small = [k for k in active if np.exp(2 * tau[k]) < BOUNDARY_VARIANCE]
        if small:
            keep = [k for k in active if k not in small]
            sub = _Groups([mf.group_codes[k] for k in keep], [sizes[k] for k in keep], n, schur=self.schur)
            phi_sub = np.concatenate([fit.state.phi[:p], tau[keep], fit.state.phi[p + len(factors):]])
            obj_sub = _Objective(y, X, off, sub, family)
            fit_sub = _optimise(obj_sub, phi_sub, self.max_iter)
            if fit_sub.state.loglik >= fit.state.loglik - 1e-6:
                fit, active = fit_sub, keep
        boundary = [factors[k] for k in range(len(factors)) if k not in active]
        if self.n_agq > 1 and active:
            agq = _Objective(y, X, off, fit.obj.groups, family, n_agq=self.n_agq)
            agq.u = fit.state.u.copy()
            fit = _optimise(agq, fit.state.phi, self.max_iter)
            if np.exp(2 * fit.state.phi[p]) < BOUNDARY_VARIANCE:
                boundary = factors
        return fit, active, boundary


class _CountMixed(_LaplaceMixed):
    """Shared fitting code of :class:`PoissonMixed` and :class:`NegativeBinomialMixed`."""

    _family: type = _Poisson
    _label = "PoissonMixed"

    def fit(self, df: pd.DataFrame, formula: str, groups: str | Sequence[str] | None = None,
            offset: str | None = None, exposure: str | None = None, table: str = "data"):
        """Fit the model by maximum likelihood (Laplace, or quadrature with ``n_agq > 1``).

        Parameters
        ----------
        df : the data, one row per observation (e.g. pupil-year).
        formula : patsy formula of the fixed effects, ``"days ~ x1 + treat"``; the outcome is a count. It may
            carry lme4's random-effects terms instead of ``groups`` (``"days ~ x1 + treat + (x1 | school)"``).
        groups : grouping column with a random intercept (``"school"``), or several crossed or nested
            ones (``["po_school", "vo_school"]``, ``["pupil", "po_school", "vo_school"]``); or lme4 terms with
            random slopes and correlated random effects (``"(x1 | school)"``, ``"(x1 || school)"``,
            ``"(x1 | po_school) + (1 | vo_school)"``; see :mod:`~verzuimmodel.mixed.random_terms` and
            :mod:`~verzuimmodel.mixed.glmm_slopes`).
        offset : column holding the log exposure (e.g. log enrolled days), entering with coefficient 1.
        exposure : alternatively, a column of exposure (> 0) whose log is the offset.
        table : name of the table in error messages.

        Returns
        -------
        self

        Raises
        ------
        SchemaError
            Missing columns; missing, non-numeric, negative or non-integer counts (named by row);
            missing covariates or groups; a non-positive exposure; a rank-deficient design. And
            degenerate data: every count 0, or a grouping factor with one group.
        ValueError
            A random-effects term whose syntax is not lme4's (named); random effects both in the formula and in
            ``groups`` or in neither; ``n_agq > 1`` with more than one grouping factor or with random slopes.

        Warns
        -----
        ConvergenceWarning
            A variance on its boundary (0) or, with random slopes, a correlation at +-1; a dispersion that may be
            infinite; an optimiser or Hessian failure; or a coefficient that may be infinite (separation: every
            count 0 at one extreme of a covariate, e.g. in one arm) -- the estimates are returned as found.
        """
        with single_threaded_blas():      # small dense factorisations: BLAS threads only contend
            spec = random_spec(df, formula, groups, table)
            if spec is None:
                return self._fit(df, formula, groups, offset, exposure, table)
            if spec.intercepts_only:
                self._fit(spec.data, spec.fixed, list(spec.factors), offset, exposure, table)
                self.formula_ = formula
                return self
            return self._fit_slopes(spec, formula, offset, exposure, table)

    def _fit(self, df, formula, groups, offset, exposure, table):
        log_exposure = _exposure_offset(df, offset, exposure, table)
        mf = model_frame(df, formula, groups, offset=offset, table=table)
        _count_outcome(mf, table)
        factors = list(mf.factors)
        self._check_agq(factors)
        n = mf.n
        off = mf.offset if mf.offset is not None else (log_exposure if log_exposure is not None else np.zeros(n))
        fit, active, boundary = self._estimate(mf, self._family(mf.y), off, _glm_start)
        self._store(mf, fit, factors, active, boundary, list(mf.names), formula, offset, exposure)
        return self

    def _fit_slopes(self, spec, formula, offset, exposure, table):
        log_exposure = _exposure_offset(spec.data, offset, exposure, table)
        mf = model_frame_for(spec, offset, table)
        _count_outcome(mf, table)
        off = mf.offset if mf.offset is not None else (log_exposure if log_exposure is not None else np.zeros(mf.n))
        fit_slopes(self, mf, spec, self._family(mf.y), off, _glm_start, formula, offset, exposure, table,
                   stacklevel=5)
        return self


class PoissonMixed(_CountMixed):
    r"""Poisson mixed model :math:`\log\mu = X\beta + \sum_k Z_k u_k + o`, :math:`u_k \sim N(0, \sigma_k^2)`; with
    random slopes :math:`\log\mu = X\beta + Zb + o`, :math:`b_{t,g} \sim N(0, \Sigma_t)` per term ``(x | g)``.

    See the module docstring for the model, :mod:`~verzuimmodel.mixed.laplace` for the Laplace
    approximation and the quadrature and :mod:`~verzuimmodel.mixed.glmm_slopes` for random slopes.

    Parameters
    ----------
    n_agq : number of adaptive Gauss–Hermite quadrature points per group; 1 (default) is the Laplace
        approximation (``glmmTMB``, ``glmer(nAGQ = 1)``); more (e.g. 10, as ``glmer(nAGQ = 10)``) needs
        one grouping factor with a random intercept only and matters with small groups.
    level : confidence level of the intervals in :meth:`tidy`.
    max_iter : most iterations of the outer optimiser.
    schur : how the random intercepts' block beside the largest factor (the Schur complement over the levels
        of the other factors, e.g. PO and VO schools) is factorised: ``"dense"`` (up to
        ``MAX_DENSE_LEVELS`` = 8,000 levels), ``"sparse"`` (any number: a sparse :math:`LDL'` and Takahashi's
        selected inverse) or ``"auto"`` (default: sparse from 200 levels on, unless its factor would be nearly
        dense). Both give the same fit to rounding (:mod:`~verzuimmodel.mixed.schur_complement`); random slopes
        keep their dense block.

    Attributes (after :meth:`fit`)
    ------------------------------
    params_, standard_errors_ : fixed effects (log rate ratios) and their SEs (Series by term);
        ``vcov_`` their covariance (observed information of the approximate likelihood).
    variance_components_ : Series: :math:`\sigma_k^2` per grouping factor (0 on the boundary); with random
        slopes the variance of each random effect, named as :class:`~verzuimmodel.mixed.lmm.LinearMixed`'s
        (``school.Intercept``, ``school.x1``).
    parameter_vcov_ : covariance of the log SDs (and log theta) from the same information; with random slopes of
        the log SDs and the Fisher-z correlations.
    log_likelihood_, aic_, bic_ : approximate marginal log-likelihood (full, with all constants)
        and information criteria (``n_parameters_`` counts every estimated parameter).
    ranef_ : dict factor -> Series of the conditional modes :math:`\hat u` by group label (a DataFrame with a
        column per random effect for a factor with random slopes, as ``ranef(fit)``).
    n_obs_, n_groups_ : rows; groups per factor.
    converged_ : optimiser reached a stationary point with a positive definite Hessian.
    boundary_ : factors whose variance is estimated at 0 (with random slopes: the elements of ``theta_`` held at
        0, as ``LinearMixed``).
    With random slopes also ``theta_`` (the Cholesky factors' elements, ``getME(fit, "theta")`` of glmer),
    ``varcorr_`` (as ``as.data.frame(VarCorr(fit))``: SDs and correlations) and ``random_terms_``.

    Examples
    --------
    >>> m = PoissonMixed().fit(df, "sick_reports ~ sex + disadvantaged", groups="school",
    ...                        exposure="enrolled_days")                              # doctest: +SKIP
    >>> m.tidy()[["term", "exp_estimate", "exp_conf_low", "exp_conf_high"]]          # doctest: +SKIP
    >>> m = PoissonMixed().fit(df, "sick_reports ~ prior_absence + treat + (prior_absence | school)",
    ...                        exposure="enrolled_days")                              # doctest: +SKIP
    >>> m.tidy(effects="all"), m.varcorr_, print(m.summary())                         # doctest: +SKIP
    >>> m.confint(), m.confint("sd_prior_absence|school", level=0.9)   # profile likelihood  # doctest: +SKIP
    """

    _family = _Poisson

    def fit(self, df: pd.DataFrame, formula: str, groups: str | Sequence[str] | None = None,
            offset: str | None = None, exposure: str | None = None, table: str = "data") -> "PoissonMixed":
        return super().fit(df, formula, groups, offset=offset, exposure=exposure, table=table)

    fit.__doc__ = _CountMixed.fit.__doc__


class NegativeBinomialMixed(_CountMixed):
    r"""Negative binomial (NB2) mixed model: :math:`\operatorname{Var}(y \mid u) = \mu + \mu^2/\theta`.

    :math:`\log\mu = X\beta + \sum_k Z_k u_k + o`, :math:`u_k \sim N(0, \sigma_k^2)` (or with random slopes,
    :math:`b_{t,g} \sim N(0, \Sigma_t)` per term ``(x | g)``), fitted by maximum likelihood with the Laplace
    approximation as ``glmmTMB(family = nbinom2)`` (or adaptive quadrature with ``n_agq > 1``). See the module
    docstring for the equations.

    Parameters
    ----------
    n_agq : quadrature points per group (1 = Laplace, default; more needs one grouping factor, no slopes).
    level : confidence level of the intervals in :meth:`tidy`.
    max_iter : most iterations of the outer optimiser.
    schur : ``"auto"``, ``"dense"`` or ``"sparse"``: how the block of the factors beside the largest is
        factorised (see :class:`PoissonMixed`).

    Attributes (after :meth:`fit`)
    ------------------------------
    As :class:`PoissonMixed`, and ``dispersion_``: :math:`\theta` (``sigma()`` of glmmTMB's nbinom2).

    Examples
    --------
    >>> m = NegativeBinomialMixed().fit(df, "unexcused_hours ~ disadvantaged + treat",
    ...                                 groups=["po_school", "vo_school"], exposure="enrolled_days")  # doctest: +SKIP
    >>> m.variance_components_, m.dispersion_                                                      # doctest: +SKIP
    >>> m = NegativeBinomialMixed().fit(df, "unexcused_hours ~ prior_absence + treat",
    ...                                 groups="(prior_absence | po_school) + (1 | vo_school)",
    ...                                 exposure="enrolled_days")                                     # doctest: +SKIP
    >>> m.tidy(effects="ran_pars")          # SDs, the correlation and theta with Wald intervals  # doctest: +SKIP
    """

    _family = _NB2

    def fit(self, df: pd.DataFrame, formula: str, groups: str | Sequence[str] | None = None,
            offset: str | None = None, exposure: str | None = None, table: str = "data") -> "NegativeBinomialMixed":
        return super().fit(df, formula, groups, offset=offset, exposure=exposure, table=table)

    fit.__doc__ = _CountMixed.fit.__doc__
