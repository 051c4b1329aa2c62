r"""Logistic mixed model (binomial, logit link) with random intercepts, random slopes and correlated random effects,
fitted by maximum likelihood as ``lme4::glmer(family = binomial)`` and ``glmmTMB(family = binomial)``.

Model
-----
For observation :math:`i` (a pupil, a pupil-year, a herd-period) in group :math:`g_k(i)` of each grouping
factor :math:`k = 1, \ldots, K` (one factor such as the school; crossed ones such as PO school and VO
school; nested ones such as the class within its school, coded with labels unique across schools), with
:math:`y_i` successes out of :math:`m_i` trials (a 0/1 outcome: :math:`m_i = 1`, e.g. long-term absence
yes/no), covariates :math:`x_i` and offset :math:`o_i` (0 unless given),

.. math:: \operatorname{logit} p_i = \log\frac{p_i}{1 - p_i} = x_i'\beta + \sum_{k=1}^{K} u_{k, g_k(i)} + o_i,
          \qquad u_{k,g} \sim N(0, \sigma_k^2) \text{ independent},

and with random slopes (lme4's terms ``(x | g)``, ``(x || g)``, in ``groups=`` or the formula; e.g. the effect of
a pupil's prior absence varying between schools) per term :math:`t` with columns :math:`z_{ti}`
(``(x | g)``: :math:`(1, x_i)`)

.. math:: \operatorname{logit} p_i = x_i'\beta + \sum_t z_{ti}' b_{t, g_t(i)} + o_i, \qquad
          b_{t,g} \sim N(0, \Sigma_t), \quad \Sigma_t = T_t T_t'

(the SDs and correlations of :math:`\Sigma_t`; :mod:`~verzuimmodel.mixed.glmm_slopes`). In both,

.. math:: y_i \mid u \sim \text{Binomial}(m_i, p_i): \quad
          \Pr(y_i \mid u) = \binom{m_i}{y_i} p_i^{y_i} (1 - p_i)^{m_i - y_i}.

:math:`e^{\beta}` are odds ratios *conditional* on the random effects (for pupils in the same school);
the population-averaged (marginal) odds ratios are closer to 1 (by about
:math:`(1 + 0.346\,\sigma^2)^{-1/2}` on the log scale with one factor; Zeger, Liang & Albert 1988).

How it is fitted: the same machinery as :class:`~verzuimmodel.mixed.glmm.PoissonMixed` -- the Laplace
approximation of the marginal likelihood at the conditional modes of :math:`u`, with its exact gradient
(:mod:`~verzuimmodel.mixed.laplace`), maximised over :math:`(\beta, \log\sigma_k)` by L-BFGS-B and polished
by Newton steps; with one grouping factor (random intercept only) and ``n_agq > 1`` adaptive Gauss–Hermite
quadrature (``glmer(nAGQ = n_agq)``); with random slopes lme4's spherical random effects
(:mod:`~verzuimmodel.mixed.slope_laplace`). The per-row likelihood is
:mod:`~verzuimmodel.mixed.binomial_family`'s. The logit link is canonical, so glmer's Laplace approximation
(PIRLS, expected weights) and glmmTMB's (observed curvature) are the same. Standard errors come from the observed
information of the approximate likelihood (central differences of its exact gradient).

Boundaries and warnings
-----------------------
As the count models (:mod:`~verzuimmodel.mixed.glmm_results`): a variance below :math:`10^{-6}` that the
fit without its factor matches is reported as exactly 0 and warned; a Hessian that is not positive definite
or an optimiser that stops early is warned naming the parameter; with random slopes a correlation at
:math:`\pm 1` is a boundary too (warned by name); and a coefficient that may be infinite
is warned naming the term: (quasi-)complete separation, e.g. every pupil in one arm with outcome 0, or the
outcome 1 exactly above some value of a covariate. A coefficient beyond 10 on the logit scale with a standard
error above ten times its size (or a Hessian that is not positive definite) triggers the check; the linear
programme of :func:`~verzuimmodel.mixed.binomial_family._separation_direction` then names the coefficients
of the separating direction. Each is a :class:`~verzuimmodel.errors.ConvergenceWarning`.

Where it holds and where it does not
------------------------------------
The coefficients are *conditional* log odds ratios (within a school); they are larger in size than the
population-averaged ones a GEE or a model without the random effects estimates. When an effect varies between
schools and the model has a random intercept only, its interval is too narrow and its estimate attenuated:
in a world where the slope's SD is 0.6 between 40 schools of 25 pupils, the intercept-only model's 95%
interval covered the truth in 72% of 400 replicates (bias -0.05 on 0.4); the model with ``(x | school)``
covered it in 94% (``tests/test_glmm_slopes.py``). With few pupils per school and a rare outcome the
Laplace approximation underestimates the variance; use ``n_agq`` > 1 for one random intercept.

References: Bates D, Mächler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models using lme4.
J Stat Softw 67(1). Brooks ME et al. (2017). glmmTMB balances speed and flexibility among packages for
zero-inflated generalized linear mixed modeling. R Journal 9(2). Zeger SL, Liang KY, Albert PS (1988).
Models for longitudinal data: a generalized estimating equation approach. Biometrics 44(4).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import special

from .._blas import single_threaded_blas
from ._design import model_frame
from .binomial_family import _Binomial, _binomial_outcome, _binomial_start, _separation_direction
from .glmm import _LaplaceMixed
from .glmm_slopes import fit_slopes, model_frame_for, random_spec

__all__ = ["BinomialMixed"]


class BinomialMixed(_LaplaceMixed):
    r"""Logistic mixed model :math:`\operatorname{logit} p = X\beta + \sum_k Z_k u_k + o`,
    :math:`u_k \sim N(0, \sigma_k^2)` (or with random slopes :math:`b_{t,g} \sim N(0, \Sigma_t)` per term
    ``(x | g)``), for 0/1 outcomes or successes out of trials.

    See the module docstring for the equations.

    Parameters
    ----------
    n_agq : number of adaptive Gauss–Hermite quadrature points per group; 1 (default) is the Laplace
        approximation (``glmer(nAGQ = 1)``, glmmTMB); more (e.g. 10, as ``glmer(nAGQ = 10)``) needs one
        grouping factor and matters with small groups (a few pupils per group) and binary outcomes.
    level : confidence level of the intervals in :meth:`tidy`.
    max_iter : most iterations of the outer optimiser.
    schur : ``"auto"``, ``"dense"`` or ``"sparse"``: how the block of the factors beside the largest is
        factorised (see :class:`~verzuimmodel.mixed.glmm.PoissonMixed`).

    Attributes (after :meth:`fit`)
    ------------------------------
    params_, standard_errors_ : fixed effects (log odds ratios) and their SEs (Series by term);
        ``vcov_`` their covariance (observed information of the approximate likelihood).
    variance_components_ : Series: :math:`\sigma_k^2` per grouping factor (0 on the boundary).
    parameter_vcov_ : covariance of the log SDs from the same information.
    log_likelihood_, aic_, bic_ : approximate marginal log-likelihood (with the binomial coefficients, as
        R's ``logLik``) and information criteria (``n_parameters_`` = fixed effects + variances).
    ranef_ : dict factor -> Series of the conditional modes :math:`\hat u` by group label.
    n_obs_, n_groups_ : rows; groups per factor. ``trials_column_``: the trials column (None: 0/1).
    converged_ : optimiser reached a stationary point with a positive definite Hessian.
    boundary_ : factors whose variance is estimated at 0.
    With random slopes the attributes are as :class:`~verzuimmodel.mixed.glmm.PoissonMixed`'s (``theta_``,
    ``varcorr_``, ``ranef_`` as DataFrames, ``boundary_`` as elements of ``theta_``).

    Examples
    --------
    >>> m = BinomialMixed().fit(df, "long_absence ~ sex + disadvantaged", groups=["po_school", "vo_school"])
    ...                                                                              # doctest: +SKIP
    >>> m.tidy()[["term", "exp_estimate", "exp_conf_low", "exp_conf_high"]]      # odds ratios  # doctest: +SKIP
    >>> BinomialMixed(n_agq=10).fit(cbpp, "incidence ~ C(period)", groups="herd", trials="size")  # doctest: +SKIP
    >>> BinomialMixed().fit(cbpp, "incidence ~ period_numeric + (period_numeric | herd)", trials="size")
    ...                                                                              # doctest: +SKIP
    """

    _separation_hint = ("the fixed effects separate the rows with outcome 0 from those with outcome 1: every row "
                        "is 0, or every row is 1, in a level of this term or beyond some value of it")

    def fit(self, df: pd.DataFrame, formula: str, groups: str | Sequence[str] | None = None,
            trials: str | None = None, offset: str | None = None, table: str = "data") -> "BinomialMixed":
        """Fit the model by maximum likelihood (Laplace, or quadrature with ``n_agq > 1``).

        Parameters
        ----------
        df : the data, one row per observation (a pupil; or a group of trials).
        formula : patsy formula of the fixed effects, ``"long_absence ~ x1 + treat"``; the outcome is 0/1
            (numbers or booleans), or with ``trials`` the number of successes. It may carry lme4's random-effects
            terms instead of ``groups`` (``"long_absence ~ x1 + treat + (x1 | school)"``).
        groups : grouping column with a random intercept (``"school"``), or several crossed or nested
            ones (``["po_school", "vo_school"]``, ``["klas", "po_school", "vo_school"]``; a nested factor
            needs labels unique across the groups it is nested in, or ``"(1 | po_school/klas)"``); or lme4
            terms with random slopes and correlated random effects (``"(x1 | school)"``, ``"(x1 || school)"``;
            see :mod:`~verzuimmodel.mixed.glmm_slopes`).
        trials : column with the number of trials (whole, >= 1) of which the outcome counts the successes,
            as ``cbind(successes, trials - successes)`` in R; None (default) for a 0/1 outcome.
        offset : column added to the linear predictor (logit scale) with coefficient 1.
        table : name of the table in error messages.

        Returns
        -------
        self

        Raises
        ------
        SchemaError
            Missing columns; an outcome that is missing, not 0/1 (or, with ``trials``, not a whole number
            from 0 to the trials); trials missing, not whole or below 1; missing covariates or groups; a
            rank-deficient design -- each naming the table, the column and the first rows. And degenerate
            data: no successes or no failures at all, or a grouping factor with one group.
        ValueError
            ``n_agq > 1`` with more than one grouping factor or with random slopes; a random-effects term whose
            syntax is not lme4's; random effects both in the formula and in ``groups`` or in neither.

        Warns
        -----
        ConvergenceWarning
            A variance on its boundary (0) or, with random slopes, a correlation at +-1; an optimiser or Hessian
            failure; or a coefficient that may be infinite (separation) -- the estimates are returned as found.
        """
        with single_threaded_blas():      # small dense factorisations: BLAS threads only contend
            spec = random_spec(df, formula, groups, table)
            if spec is None:
                return self._fit(df, formula, groups, trials, offset, table)
            if spec.intercepts_only:
                self._fit(spec.data, spec.fixed, list(spec.factors), trials, offset, table)
                self.formula_ = formula
                return self
            mf = model_frame_for(spec, offset, table)
            m = _binomial_outcome(spec.data, mf, trials, table)
            off = mf.offset if mf.offset is not None else np.zeros(mf.n)
            fit_slopes(self, mf, spec, _Binomial(mf.y, m), off, _binomial_start, formula, offset, None, table,
                       stacklevel=3)
            self.trials_column_ = trials
            return self

    def _fit(self, df, formula, groups, trials, offset, table):
        mf = model_frame(df, formula, groups, offset=offset, table=table)
        m = _binomial_outcome(df, mf, trials, table)
        factors = list(mf.factors)
        self._check_agq(factors)
        off = mf.offset if mf.offset is not None else np.zeros(mf.n)
        fit, active, boundary = self._estimate(mf, _Binomial(mf.y, m), off, _binomial_start)
        self._store(mf, fit, factors, active, boundary, list(mf.names), formula, offset, None, stacklevel=4)
        self.trials_column_ = trials
        return self

    @staticmethod
    def _infinite_coefficients(names, beta, var, hess_ok, obj) -> list[tuple[str, float]]:
        """Coefficients that may be infinite: when one is beyond 10 with a standard error above ten times its
        size, or with a Hessian that is not positive definite, the coefficients of a separating direction
        (:func:`~verzuimmodel.mixed.binomial_family._separation_direction`; none: the size rule alone)."""
        big = [abs(b) > 10 and (not hess_ok or not v > 0 or v > 100 * b * b) for b, v in zip(beta, var)]
        if not any(big):
            return []
        d = _separation_direction(obj.X, obj.y, obj.family.m)
        if d is None:
            return [(n, b) for n, b, v in zip(names, beta, var) if hess_ok and abs(b) > 10 and v > 100 * b * b]
        return [(n, b) for n, b, dj in zip(names, beta, d) if dj != 0]

    def predict(self, df: pd.DataFrame, include_random: bool = True, kind: str = "response") -> np.ndarray:
        """Predicted probabilities :math:`p` (``kind="response"``; per trial) or logits (``kind="link"``).

        The fitted offset column is used when ``df`` has it. With ``include_random`` the conditional modes
        of the rows' groups are added; groups not seen in fitting get 0 (a typical group's probability,
        not the population-averaged one).
        """
        if kind not in ("response", "link"):
            raise ValueError(f"kind must be 'response' or 'link', got {kind!r}")
        eta = super().predict(df, include_random=include_random, kind="link")
        return special.expit(eta) if kind == "response" else eta

    def tidy(self, level: float | None = None, effects: str = "fixed") -> pd.DataFrame:
        """Fixed effects (``effects="fixed"``, default): term, estimate (log odds ratio), std_error, z statistic,
        p-value, interval, and the odds ratios ``exp_estimate``, ``exp_conf_low``, ``exp_conf_high`` (Wald, normal
        distribution). ``"ran_pars"``: the SDs and correlations of the random effects (with Wald intervals on the
        log-SD and Fisher-z scales); ``"all"``: both (see :meth:`PoissonMixed.tidy
        <verzuimmodel.mixed.glmm.PoissonMixed.tidy>`)."""
        return super().tidy(level, effects)
