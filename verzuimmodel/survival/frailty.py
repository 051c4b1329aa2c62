r"""Cox model with a shared gamma frailty per group (school), fitted as R's ``coxph(... + frailty(g))``.

Model
-----
For row :math:`i` of group :math:`j` (e.g. a pupil's episode in school :math:`j`), at risk on
:math:`(s_{ij}, t_{ij}]` in stratum :math:`g(ij)`:

.. math:: h_{ij}(t) = h_{0,g(ij)}(t)\, Z_j \exp(x_{ij}'\beta), \qquad
          Z_j \sim \text{Gamma}(\text{shape } 1/\theta,\ \text{scale } \theta)
          \quad (E Z_j = 1,\ \operatorname{Var} Z_j = \theta).

:math:`\exp(\beta)` are hazard ratios *conditional* on the frailty (within a school). They differ
from the marginal (population-averaged) hazard ratios a plain Cox model estimates: hazard ratios
are not collapsible, and the marginal one is attenuated towards 1.

How it is fitted: for a given :math:`\theta` the penalised partial likelihood of
:math:`(\beta, \log Z_j)` is maximised, and the I-likelihood :math:`L(\theta)` computed with its slope and
curvature, by :mod:`~verzuimmodel.survival.penalised_frailty` (the equations are there); this module
searches for :math:`\hat\theta`, its interval and test, and reports the fit.

Standard errors
---------------
As in R, ``standard_errors_`` are the square roots of the diagonal of :math:`S^{-1}` (R's
``fit$var``, from ``coxpenal.df``), with the sparse approximation in :math:`S` (or the full
information with few groups). With case weights R's diagonal frailty information counts each tied
death once instead of with the deaths' mean weight (``coxfit5.c``: ``fdiag += temp2 * (1 - temp2)``);
this is reproduced, so weighted standard errors are R's (the estimates do not depend on it).

Estimating the frailty variance
-------------------------------
:math:`\hat\theta` maximises :math:`L(\theta)`; it is found by Newton's method on :math:`dL/d\log\theta`
(safeguarded by bisection once bracketed) from a moment estimate, to a relative precision of about ``1e-10`` (R's
own search, ``frailty.controlgam``, creeps towards the maximum and stops far earlier), in a handful
of inner fits, each warm-started along the tangent of the nearest one already done.

At :math:`\theta \to 0` the model is the plain Cox model and :math:`L(0)` its log partial
likelihood. The slope there is :math:`dL/d\theta\,(0) = \tfrac12 \sum_j (U_j^2 - d_j)`, with
:math:`U_j` the group sums of the Cox model's (weighted) martingale residuals. When it is not
positive (or the slope is still negative at :math:`\theta = 10^{-6}`) the estimate is
:math:`\hat\theta = 0`, on the boundary: a :class:`~verzuimmodel.errors.ConvergenceWarning` says so
and the fit is the plain Cox model.

Uncertainty of :math:`\hat\theta`: ``frailty_variance_ci_`` is the profile-likelihood interval
:math:`\{\theta \ge 0: 2\{L(\hat\theta) - L(\theta)\} \le \chi^2_{1, \text{level}}\}`. It is the
one to report: the likelihood of a variance is skewed, and the interval respects
:math:`\theta \ge 0` (its lower end is 0 when :math:`L(0)` is above the cut-off).
``frailty_variance_se_`` is :math:`\{-L''(\hat\theta)\}^{-1/2}` from the curvature (``nan`` on the
boundary, where it has no meaning). The interval's ends are found with second-order steps from the
slope and curvature of each inner fit. ``frailty_lr_statistic_`` :math:`= 2\{L(\hat\theta) - L(0)\}` tests
:math:`\theta = 0`, with its p-value from the :math:`\tfrac12\chi^2_0 + \tfrac12\chi^2_1` mixture
(the null value is on the boundary).

References: Therneau TM, Grambsch PM, Pankratz VS (2003). Penalized survival models and frailty.
J Comput Graph Stat 12:156–175. R ``survival``: ``frailty.gamma``, ``frailty.controlgam``,
``frailty.gammacon``, ``coxpenal.fit``, ``coxpenal.df``, ``coxfit5.c``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ConvergenceError, ConvergenceWarning
from ..tidy import tidy_table
from ._data import group_codes, survival_data
from .cox import _check_design
from .formula import dropped_note, model_design, with_n_dropped
from .penalised_frailty import _cox_fit, _Inner, _penalised_fit, _Problem, _schur, effective_df

__all__ = ["FrailtyCox"]

_THETA_MIN = 1e-6       # a slope still negative here: the frailty variance is reported as 0 (boundary)
_THETA_MAX = 1e4        # a slope still positive here: not identified


@dataclass(frozen=True)
class _Options:
    distribution: Literal["gamma"]
    theta: float | None
    ties: Literal["efron", "breslow"]
    level: float
    sparse: bool | None
    ci: Literal["profile", "none"]
    tol: float
    max_iter: int


class FrailtyCox:
    """Cox model with a shared gamma frailty per group (see the module docstring, and
    :mod:`~verzuimmodel.survival.penalised_frailty` for the equations of the fit).

    Parameters
    ----------
    distribution : ``"gamma"`` (the only one; R's default for ``frailty()``).
    ties : ``"efron"`` (default, as R) or ``"breslow"``.
    theta : ``None`` (default) estimates the frailty variance; a number fixes it (R's
        ``frailty(g, theta = ...)``; 0 is the plain Cox model) and leaves its SE and interval missing.
    level : confidence level of the intervals in :meth:`tidy` and of ``frailty_variance_ci_``.
    sparse : treat the frailty block of the information as diagonal for the variance (R's
        ``sparse``); ``None`` (default) does as R: sparse with more than 5 groups.
    ci : ``"profile"`` (default) computes the profile-likelihood interval of the frailty variance
        (a few more inner fits); ``"none"`` skips it.
    tol : convergence of the inner Newton–Raphson (largest change of a coefficient or log frailty).
    max_iter : maximum Newton iterations per inner fit.

    Attributes (after :meth:`fit`)
    ------------------------------
    params_, standard_errors_ : Series of log hazard ratios (conditional on the frailty) and SEs
        (R's ``sqrt(diag(fit$var))``); ``variance_`` the covariance matrix.
    frailty_variance_ : theta-hat; ``frailty_variance_se_`` (curvature), ``frailty_variance_ci_``
        (profile likelihood; preferred).
    frailties_ : Series of the estimated frailties :math:`\\hat Z_j = e^{\\hat\\omega_j}` by group
        (``log_frailties_`` is R's ``fit$frail``).
    log_likelihood_ : the I-likelihood at theta-hat (R's ``c.loglik``);
        ``partial_log_likelihood_`` the partial likelihood at the fit (R's ``fit$loglik[2]``);
        ``log_likelihood_cox_`` the plain Cox model's (theta = 0).
    df_ : Series, the effective degrees of freedom of each covariate and of the frailty term (R's ``fit$df``,
        from ``coxpenal.df``); ``aic_``, ``bic_`` : ``-2 partial loglik + 2 sum(df_)`` and
        ``-2 partial loglik + log(n_events_) sum(df_)``, as R's ``AIC(fit)`` and ``BIC(fit)``.
    frailty_lr_statistic_, frailty_lr_p_value_ : likelihood-ratio test of theta = 0.
    boundary_ : True when theta-hat is 0. ``history_`` : the theta values evaluated, with the
        I-likelihood, its slope and curvature in log(theta), and the Newton steps of each inner fit
        (0 for theta-hat when its last, tiny step was taken along the tangent).

    Examples
    --------
    >>> m = FrailtyCox().fit(df, duration="stop", event="event", covariates=["x1", "x2"],
    ...                      group="school", entry="start")                            # doctest: +SKIP
    >>> m.tidy()                                                                        # doctest: +SKIP
    """

    def __init__(self, distribution: Literal["gamma"] = "gamma", ties: Literal["efron", "breslow"] = "efron",
                 theta: float | None = None, level: float = 0.95, sparse: bool | None = None,
                 ci: Literal["profile", "none"] = "profile", tol: float = 1e-9, max_iter: int = 100):
        if distribution != "gamma":
            raise ValueError(f"distribution: got {distribution!r}; only 'gamma' is implemented")
        if ties not in ("efron", "breslow"):
            raise ValueError(f"ties: got {ties!r}; expected 'efron' or 'breslow'")
        if theta is not None and not (isinstance(theta, (int, float)) and np.isfinite(theta) and theta >= 0):
            raise ValueError(f"theta: got {theta!r}; expected None (estimate it) or a fixed variance >= 0")
        if not 0 < level < 1:
            raise ValueError(f"level: got {level!r}; expected a number between 0 and 1")
        if sparse not in (None, True, False):
            raise ValueError(f"sparse: got {sparse!r}; expected None, True or False")
        if ci not in ("profile", "none"):
            raise ValueError(f"ci: got {ci!r}; expected 'profile' or 'none'")
        if not tol > 0 or not max_iter >= 1:
            raise ValueError(f"tol must be > 0 and max_iter >= 1; got {tol!r}, {max_iter!r}")
        self.options = _Options(distribution, None if theta is None else float(theta), ties, level, sparse, ci,
                                float(tol), int(max_iter))

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame, duration: str, event: str, covariates: Sequence[str] | None = None,
            group: str | None = None, entry: str | None = None, strata: str | Sequence[str] | None = None,
            weights: str | None = None, *, formula: str | None = None, na_action: str = "raise") -> "FrailtyCox":
        """Fit the model; returns ``self``.

        ``covariates`` or ``formula`` (``"age + C(sex) + strata(region) + frailty(school)"``, ``frailty()``
        giving ``group``) and ``na_action`` as :meth:`CoxPH.fit <verzuimmodel.survival.CoxPH.fit>`.

        ``group`` names the column of the shared frailty (e.g. ``"school"``). ``entry`` gives
        start–stop rows ``(entry, duration]`` (time-varying covariates, late entry); ``strata``
        separate baseline hazards; ``weights`` case weights (as R, they weight the partial
        likelihood; the event counts :math:`d_j` of the I-likelihood are unweighted).
        Bad input raises :class:`~verzuimmodel.schema.SchemaError` naming the column and rows.
        Degenerate data: no events (every row censored) or a Cox model without frailty whose
        information matrix becomes singular (a coefficient running off to infinity) raise
        :class:`~verzuimmodel.errors.ConvergenceError`; a ``group`` with one level ``ValueError``.
        """
        opt = self.options
        des = model_design(df, "FrailtyCox", formula=formula, covariates=covariates, na_action=na_action,
                           specials={"strata": strata, "frailty": group}, columns=(duration, event, entry, weights))
        df, covariates, strata, group = des.data, des.covariates, des.specials["strata"], des.specials["frailty"]
        if group is None:
            raise ValueError("FrailtyCox.fit: group= (or frailty(...) in the formula) names the frailty's groups")
        with des.original_rows():
            d = survival_data(df, duration=duration, event=event, covariates=covariates, entry=entry,
                              weights=weights, strata=strata)
            codes, labels = group_codes(df, group, "data", "group (frailty)")
        if len(labels) < 2:
            raise ValueError(f"FrailtyCox: group '{group}' has {len(labels)} level(s): a frailty needs at least 2 "
                             "groups")
        _check_design(d)
        sparse = opt.sparse if opt.sparse is not None else len(labels) > 5
        if not sparse and d.n * (d.X.shape[1] + len(labels)) > 2e7:
            raise ValueError(f"sparse=False with {len(labels):,} groups needs a dense {d.n:,} x "
                             f"{d.X.shape[1] + len(labels):,} design of group indicators: use sparse=True (the default "
                             f"with more than 5 groups)")
        prob = _Problem(d, codes, len(labels), opt.ties, sparse)
        cox, slope0, expected = _cox_fit(prob, opt.tol, opt.max_iter)
        fits: dict[float, _Inner] = {0.0: cox}
        at = self._evaluator(prob, fits, expected)
        se, ci, boundary = np.nan, (np.nan, np.nan), False
        if opt.theta is not None:
            best = at(opt.theta) if opt.theta > 0 else cox
        else:
            best, boundary = self._maximise(at, cox, slope0, expected)
            if not boundary:        # at the maximum d2L/dtheta2 = (d2L/dlog(theta)^2) / theta^2
                se = float(best.theta / np.sqrt(-best.curvature)) if best.curvature < 0 else np.inf
            if opt.ci == "profile":
                ci = self._profile_interval(at, best, cox, slope0)
        self._store(prob, d, labels, best, cox, boundary, se, ci, fits, list(covariates))
        self.n_dropped_, self.design_ = des.n_dropped, des.spec
        return self

    def _evaluator(self, prob: _Problem, fits: dict, expected: np.ndarray) -> Callable[[float], _Inner]:
        """``at(theta)``: the inner fit, cached; warm-started along the tangent of the nearest fit."""
        opt = self.options

        def at(theta: float) -> _Inner:
            theta = float(theta)
            if theta in fits:
                return fits[theta]
            done = [f for t, f in fits.items() if t > 0]
            if done:
                near = min(done, key=lambda f: abs(np.log(f.theta / theta)))
                dx = float(np.clip(np.log(theta / near.theta), -1.0, 1.0))
                beta = near.beta + dx * near.tangent[:prob.p]
                omega = near.omega + dx * near.tangent[prob.p:]
            else:                   # the gamma posterior mode of Z_j given the Cox fit's expected events
                beta = fits[0.0].beta
                omega = np.log((1 / theta + prob.events) / (1 / theta + expected))
            fits[theta] = _penalised_fit(prob, theta, beta, omega, opt.tol, opt.max_iter)
            return fits[theta]

        at.fits = fits
        return at

    @staticmethod
    def _maximise(at, cox: _Inner, slope0: float, expected: np.ndarray) -> tuple[_Inner, bool]:
        """theta-hat: Newton's method on s(x) = dL/dx, x = log(theta), from a moment estimate; or 0.

        The derivative of s comes from the tangent of the path of the inner fits. Steps are kept
        within a bracket once s has changed sign, and to a factor 10 in theta before. A last step
        below 1e-5 is taken along the tangent without another inner fit (errors O(1e-10)).
        """
        if slope0 <= 0:
            return cox, True
        # moment estimate: E[(d_j - E_j)^2 - d_j] = theta E_j^2
        f = at(float(np.clip(2 * slope0 / np.sum(expected ** 2), 1e-3, 1e2)))
        lo, hi = -np.inf, np.inf        # x with s > 0 (below the maximum) and s < 0 (above it)
        for _ in range(100):
            x, s, ds = np.log(f.theta), f.slope, f.curvature
            if s == 0:
                return f, False
            if s > 0:
                lo = max(lo, x)
            else:
                hi = min(hi, x)
            step = -s / ds if ds < 0 else np.sign(s) * np.log(3.0)
            if abs(step) < 1e-5:        # the last Newton step, along the tangent: errors O(step^2)
                final = f.moved(step)
                at.fits.setdefault(final.theta, final)
                return final, False
            new = x + float(np.clip(step, -np.log(10.0), np.log(10.0)))
            if not lo < new < hi:
                new = (lo + hi) / 2 if np.isfinite(lo) and np.isfinite(hi) else x + np.sign(s) * np.log(3.0)
            if hi - lo < 1e-10:
                return f, False
            if new > np.log(_THETA_MAX):
                warnings.warn(f"FrailtyCox: the I-likelihood still increases at a frailty variance of "
                              f"{_THETA_MAX:g}; the variance is not identified (too few events per group?)",
                              ConvergenceWarning, stacklevel=4)
                return f, False
            if new < np.log(_THETA_MIN):
                return cox, True
            f = at(float(np.exp(new)))
        warnings.warn("FrailtyCox: the search for the frailty variance did not converge", ConvergenceWarning,
                      stacklevel=4)
        return f, False

    def _profile_interval(self, at, best: _Inner, cox: _Inner, slope0: float) -> tuple[float, float]:
        """Profile-likelihood interval of theta: where L falls chi2_1(level)/2 below its maximum.

        Second-order (Halley-type) steps in log(theta) on L - cut-off, from the slope and curvature of
        each inner fit, kept inside the bracket once found.
        """
        cut = best.iloglik - stats.chi2.ppf(self.options.level, 1) / 2
        ends = []
        for direction in (-1, 1):
            if direction < 0 and (best.theta == 0 or cox.iloglik >= cut):
                ends.append(0.0)
                continue
            if best.theta > 0:          # quadratic approximation in log(theta) for the first guess
                inside = np.log(best.theta)
                x = inside + direction * min(np.sqrt(2 * (best.iloglik - cut) / max(-best.curvature, 1e-12)),
                                             np.log(10.0))
            else:                       # boundary: L(theta) ~ L(0) + slope0 theta for small theta
                inside = np.log(_THETA_MIN)
                x = np.log(np.clip((best.iloglik - cut) / max(-slope0, 1e-12), 1e-4, 10.0))
            ends.append(self._cross(at, cut, inside, x, direction))
        return ends[0], ends[1]

    @staticmethod
    def _cross(at, cut: float, inside: float, x: float, direction: int) -> float:
        outside = None
        for _ in range(100):
            if x > np.log(_THETA_MAX):
                return np.inf
            if x < np.log(_THETA_MIN):
                return 0.0
            f = at(float(np.exp(x)))
            gap = f.iloglik - cut
            if gap > 0:
                inside = x
            else:
                outside = x
            # next x from the second-order expansion gap + s d + c d^2 / 2 = 0 (the root nearest to x),
            # or Newton's step when it has no real root
            s_, c_ = f.slope, f.curvature
            disc = s_ * s_ - 2 * c_ * gap
            if c_ != 0 and disc >= 0:
                roots = (-s_ + np.array([1.0, -1.0]) * np.sqrt(disc)) / c_
                newton = x + roots[np.argmin(np.abs(roots))]
            else:
                newton = x - gap / s_ if s_ != 0 else np.nan
            if abs(gap) < 1e-9:
                return f.theta
            if np.isfinite(newton) and abs(newton - x) < 1e-5:     # second-order prediction, error O(1e-15)
                return float(np.exp(newton))
            if outside is None:     # move further out, at most a factor 10 in theta
                if not np.isfinite(newton) or (newton - x) * direction <= 0:
                    newton = x + direction * np.log(3.0)
                x = x + direction * min(abs(newton - x), np.log(10.0))
            else:
                lo_x, hi_x = sorted((inside, outside))
                if hi_x - lo_x < 1e-10:
                    return f.theta
                x = newton if np.isfinite(newton) and lo_x < newton < hi_x else (inside + outside) / 2
        return float(np.exp(x))

    def _store(self, prob, d, labels, best, cox, boundary, se, ci, fits, names):
        opt = self.options
        if boundary:
            warnings.warn("FrailtyCox: the frailty variance is on the boundary (estimate 0): the groups vary no more "
                          "than chance, and the fit is the plain Cox model", ConvergenceWarning, stacklevel=3)
        not_conv = [f.theta for f in fits.values() if not f.converged]
        if not_conv:
            warnings.warn(f"FrailtyCox: the penalised fit did not converge in {opt.max_iter} iterations at "
                          f"theta = {', '.join(f'{t:.4g}' for t in not_conv[:3])}", ConvergenceWarning, stacklevel=3)
        # variance as R: inverse of the Schur complement of the (sparse or full) penalised information
        p = prob.p
        pt = prob.point(best.beta, best.omega, r_style=True)
        if best.theta == 0:
            schur = pt.info_bb
        elif prob.sparse:
            schur = _schur(pt, np.exp(best.omega) / best.theta)[2]
        else:
            H = np.block([[pt.info_bb, pt.info_wb.T],
                          [pt.info_wb, pt.info_ww + np.diag(np.exp(best.omega) / best.theta)]])
            schur = np.linalg.inv(np.linalg.inv(H)[:p, :p]) if p else np.zeros((0, 0))
        try:
            var = np.linalg.inv(schur) if p else np.zeros((0, 0))
        except np.linalg.LinAlgError:
            raise ConvergenceError("the information matrix is singular: check for collinear covariates") from None
        self.params_ = pd.Series(best.beta, index=names, name="coef", dtype=float)
        self.variance_ = pd.DataFrame(var, index=names, columns=names)
        v = np.diag(var)
        self.standard_errors_ = pd.Series(np.where(v > 0, np.sqrt(np.abs(v)), np.inf), index=names, name="se",
                                          dtype=float)
        self.frailty_variance_ = float(best.theta)
        self.frailty_variance_se_ = float(se)
        self.frailty_variance_ci_ = (float(ci[0]), float(ci[1]))
        self.log_frailties_ = pd.Series(best.omega, index=labels, name="log_frailty")
        self.frailties_ = pd.Series(np.exp(best.omega), index=labels, name="frailty")
        self.log_likelihood_ = float(best.iloglik)
        self.partial_log_likelihood_ = float(best.loglik)
        self.log_likelihood_cox_ = float(cox.iloglik)
        lr = max(2 * (best.iloglik - cox.iloglik), 0.0)
        self.frailty_lr_statistic_ = float(lr)
        self.frailty_lr_p_value_ = float(0.5 * stats.chi2.sf(lr, 1)) if lr > 0 else 1.0
        self.boundary_ = bool(boundary)
        self.sparse_ = bool(prob.sparse)
        self.converged_ = bool(best.converged)
        self.n_iter_ = int(sum(f.n_iter for f in fits.values()))
        hist = sorted(fits.values(), key=lambda f: f.theta)
        self.history_ = pd.DataFrame({"theta": [f.theta for f in hist], "i_loglik": [f.iloglik for f in hist],
                                      "slope_log_theta": [f.slope for f in hist],
                                      "curvature_log_theta": [f.curvature for f in hist],
                                      "partial_loglik": [f.loglik for f in hist],
                                      "n_iter": [f.n_iter for f in hist]})
        self.n_obs_, self.n_events_, self.n_groups_ = d.n, int(prob.events.sum()), prob.G
        self.covariates_ = names
        # as R's AIC(fit), BIC(fit): the partial likelihood with the effective degrees of freedom, n the events
        df = np.append(np.ones(p), 0.0) if best.theta == 0 else effective_df(pt, np.exp(best.omega) / best.theta,
                                                                            prob.sparse)
        self.df_ = pd.Series(df, index=[*names, "frailty"], name="df")
        self.aic_ = -2 * self.partial_log_likelihood_ + 2 * float(df.sum())
        self.bic_ = -2 * self.partial_log_likelihood_ + np.log(self.n_events_) * float(df.sum())

    # -- results ---------------------------------------------------------------------------------
    def tidy(self, frailty: bool = True) -> pd.DataFrame:
        """Log hazard ratios (conditional on the frailty) with SE, Wald tests, intervals and hazard ratios.

        With ``frailty`` (default) a last row ``term="frailty_variance"`` holds theta-hat with its
        curvature SE and its profile-likelihood interval; its statistic and p-value are those of
        the likelihood-ratio test of theta = 0 (chi-square statistic, boundary-mixture p-value) and
        its ``exp_*`` columns are missing.
        """
        out = with_n_dropped(tidy_table(self.params_, self.standard_errors_, level=self.options.level), self)
        if not frailty:
            return out
        row = {"term": "frailty_variance", "estimate": self.frailty_variance_, "std_error": self.frailty_variance_se_,
               "statistic": self.frailty_lr_statistic_, "p_value": self.frailty_lr_p_value_,
               "conf_low": self.frailty_variance_ci_[0], "conf_high": self.frailty_variance_ci_[1],
               "exp_estimate": np.nan, "exp_conf_low": np.nan, "exp_conf_high": np.nan}
        return with_n_dropped(pd.concat([out, pd.DataFrame([row], columns=out.columns)], ignore_index=True), self)

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"FrailtyCox(distribution={self.options.distribution!r}, ties={self.options.ties!r})"
        return (f"FrailtyCox(gamma, ties={self.options.ties!r}): n={self.n_obs_:,}, events={self.n_events_:,}, "
                f"groups={self.n_groups_:,}, frailty variance={self.frailty_variance_:.4g}, "
                f"I-likelihood={self.log_likelihood_:.4f}, AIC={self.aic_:.2f}, BIC={self.bic_:.2f}"
                f"{dropped_note(self)}\n{self.tidy().to_string(index=False)}")
