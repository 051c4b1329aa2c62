r"""Confidence intervals of :class:`~verzuimmodel.mixed.lmm.LinearMixed` as lme4's ``confint.merMod``, and its
printed summary.

Profile likelihood (``method="profile"``)
-----------------------------------------
As lme4's ``profile.merMod``, always on the maximum-likelihood fit (a REML fit is refitted by ML first). The
variance parameters are the SDs and correlations of each term and the residual SD,
:math:`v = (\sigma_1, \rho_{21}, \sigma_2, \ldots, \sigma)` in :math:`\theta`'s order (lme4's ``Cv_to_Sv``), and
the deviance with :math:`\sigma` explicit is lme4's ``devfun2``

.. math:: d(v) = \log|L_\theta|^2 - \sum_i \log w_i + \frac{r^2(\theta)}{\sigma^2} + n \log(2\pi\sigma^2),
          \qquad \theta = \theta(v)

(:math:`\beta` profiled out). For a variance parameter :math:`v_k` the signed root of the profile is

.. math:: \zeta_k(x) = \operatorname{sign}(x - \hat v_k)\sqrt{\min_{v:\, v_k = x} d(v) - d(\hat v)},

minimised over the others within their bounds (SDs :math:`\ge 0`, correlations in :math:`[-1, 1]`); for a fixed
effect :math:`\beta_j` the minimum is over :math:`\theta` (and :math:`\sigma`, the other :math:`\beta`) of the
ML deviance with :math:`x X_j` as an offset. The interval is :math:`\{x : |\zeta(x)| \le z_{1-\alpha/2}\}`; its ends
are found as the roots of :math:`\zeta(x) = \pm z_{1-\alpha/2}` (bracketed from the quadratic approximation, then
secant steps within the bracket; :mod:`~verzuimmodel.mixed._profile`, shared with the GLMMs), where lme4
interpolates a spline through a grid of :math:`\zeta` values -- the two agree to the spline's accuracy (about
:math:`10^{-4}` relative with lme4's default grid). An end beyond a bound (an SD whose profile stays below the
cut-off down to 0, a correlation up to :math:`\pm 1`) is the bound, as lme4.

Wald (``method="Wald"``)
------------------------
:math:`\hat\beta_j \pm z_{1-\alpha/2}\, \mathrm{SE}_j` with the fit's own standard errors; NaN for the variance
parameters, as lme4.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import optimize

from .._blas import single_threaded_blas
from ._numeric import _grad_hess
from ._profile import ProfileBase, check_confint_args, select_parameters, wald_table

__all__ = ["LikelihoodProfile", "confint", "summary_text"]


class LikelihoodProfile(ProfileBase):
    """The profile likelihood of a :class:`~verzuimmodel.mixed.lmm.LinearMixed` fit (its ML refit).

    Attributes
    ----------
    names : the parameters: lme4's ``sd_x|g``, ``cor_x.y|g``, ``sigma``, then the fixed effects.
    estimate : their ML estimates (Series).
    base_deviance : the ML deviance at the optimum.

    Use :meth:`zeta` for the signed root of the profile at a value and :meth:`interval` for the limits.
    """

    def __init__(self, model):
        super().__init__()
        ml = model._refit_ml()
        mf, self.structure, self.system, cp = ml._state
        self._ml, self._cp = ml, cp
        s = self.structure
        self.n_var = s.n_theta + 1
        theta, sigma = ml.theta_.to_numpy(), ml.sigma_
        v_hat = np.append(s.sdcor(theta, sigma), sigma)
        v_hat[~np.isfinite(v_hat)] = 0.0        # a correlation with an SD at 0 is undefined: started at 0
        self.names = s.profile_names() + ["sigma"] + list(ml.params_.index)
        self.estimate = pd.Series(np.concatenate([v_hat, ml.params_.to_numpy()]), index=self.names, name="estimate")
        self.base_deviance = ml.deviance_
        cor = np.append(~s.is_diag, False)
        self._lower = np.concatenate([np.where(cor, -1.0, 0.0), np.full(len(ml.params_), -np.inf)])
        self._upper = np.concatenate([np.where(cor, 1.0, np.inf), np.full(len(ml.params_), np.inf)])
        self._scale = np.where(cor, 1.0, np.maximum(np.abs(v_hat), 1e-2 * sigma))
        self._theta_hat = theta
        with single_threaded_blas():
            self._se = np.concatenate([self._var_se(v_hat), ml.standard_errors_.to_numpy()])

    # ------------------------------------------------------------------------------------------------------------
    def deviance(self, v: np.ndarray) -> float:
        """lme4's ``devfun2``: the ML deviance at SDs, correlations and residual SD ``v`` (beta profiled out)."""
        sigma = float(v[-1])
        if not sigma > 0:
            return np.inf
        theta = self.structure.theta_from_sdcor(np.asarray(v[:-1], dtype=float), sigma)
        sol = self.system.solve(self._cp, theta)
        n = self.system.n
        return sol.ldL2 - self._cp.sum_log_w + sol.pwrss / sigma ** 2 + n * np.log(2 * np.pi * sigma ** 2)

    def _var_se(self, v_hat: np.ndarray) -> np.ndarray:
        """Approximate SEs of the variance parameters from the deviance's curvature (to start the search)."""
        try:
            _, H = _grad_hess(self.deviance, v_hat)
            se = np.sqrt(np.abs(np.diag(2.0 * np.linalg.pinv(H))))
        except (np.linalg.LinAlgError, ValueError):
            se = np.full(len(v_hat), np.nan)
        bad = ~np.isfinite(se) | (se <= 0)
        return np.where(bad, 0.1 * self._scale, se)

    def _min_deviance(self, k: int, x: float) -> float:
        if k < self.n_var:
            return self._min_var(k, x)
        return self._min_fixed(k - self.n_var, x)

    def _min_var(self, k: int, x: float) -> float:
        """Minimum of the deviance over the other variance parameters with parameter ``k`` at ``x``."""
        others = np.arange(self.n_var) != k
        v0 = self.estimate.to_numpy()[:self.n_var].copy()
        start = self._start(k, x)
        z0 = (start if start is not None else v0[others]) / self._scale[others]
        lo, hi = self._lower[:self.n_var][others], self._upper[:self.n_var][others]
        lo = np.where(np.arange(self.n_var)[others] == self.n_var - 1, 1e-8 * v0[-1], lo)   # sigma > 0

        def f(z):
            v = v0.copy()
            v[others] = z * self._scale[others]
            v[k] = x
            return self.deviance(v)

        res = optimize.minimize(f, np.clip(z0, lo / self._scale[others], hi / self._scale[others]),
                                method="L-BFGS-B", jac="3-point",
                                bounds=list(zip(lo / self._scale[others], hi / self._scale[others])),
                                options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-11})
        self._remember(k, x, res.x * self._scale[others])
        return float(res.fun)

    def _min_fixed(self, j: int, x: float) -> float:
        """ML deviance minimised over theta (sigma and the other betas profiled) with ``x X_j`` as an offset."""
        p = self._cp.p
        Tm = np.zeros((p + 1, p))
        keep = [i for i in range(p) if i != j]
        Tm[keep, np.arange(p - 1)] = 1.0
        Tm[p, p - 1] = 1.0
        Tm[j, p - 1] = -x
        cp = dataclasses.replace(self._cp, p=p - 1, r1=self._cp.r1 @ Tm, r2=self._cp.r2 @ Tm, M=Tm.T @ self._cp.M @ Tm)
        k = self.n_var + j
        start = self._start(k, x)
        theta, _, _ = self._ml._optimise(self.system, cp, self.structure,
                                         start=self._theta_hat if start is None else start)
        self._remember(k, x, theta)
        return float(self._ml._profiled_deviance(self.system, cp, theta))


def confint(model, parm: str | Sequence[str] | None = None, level: float = 0.95,
            method: str = "profile") -> pd.DataFrame:
    """Intervals of a fitted LinearMixed as ``confint(fit, method = ..., oldNames = FALSE)`` (module docstring).

    Returns a DataFrame indexed by parameter with ``conf_low`` and ``conf_high``.
    """
    model._check_fitted()
    z = check_confint_args(method, level)
    structure = model._state[1]
    names_var = structure.profile_names() + ["sigma"]
    names_fixed = list(model.params_.index)
    chosen = select_parameters(names_var, names_fixed, parm)
    if method == "Wald":
        return wald_table(chosen, model.params_, model.standard_errors_, z)
    return LikelihoodProfile(model).table(chosen, level)


# --------------------------------------------------------------------------------------------------------------------

def summary_text(model) -> str:
    """What ``print(fit)`` of lme4 shows: formula, criterion, random effects (variances, SDs, correlations),
    fixed effects with Satterthwaite df, n and the groups."""
    structure = model._state[1]
    random = "" if "|" in model.formula_ else f"; random: {' + '.join(model.random_terms_)}"
    crit = (f"REML criterion {model.deviance_:.4f}" if model.reml
            else f"log-likelihood {model.log_likelihood_:.4f}, deviance {model.deviance_:.4f}")
    groups = ", ".join(f"{f} {g:,}" for f, g in model.n_groups_.items())
    lines = [f"formula: {model.formula_}{random}",
             f"{crit}; AIC {model.aic_:.4f}; BIC {model.bic_:.4f}",
             f"n = {model.n_obs_:,}; groups: {groups}", "random effects:"]
    vc = model.varcorr_
    rows = structure.varcorr_rows(model.theta_.to_numpy(), model.sigma_ ** 2)
    rows.append({"group": "Residual", "name": "", "variance": f"{vc['vcov'].iloc[-1]:.6g}",
                 "sd": f"{model.sigma_:.6g}", "corr": ""})
    table = pd.DataFrame(rows)
    if not table["corr"].str.len().any():
        table = table.drop(columns="corr")
    lines.append(table.to_string(index=False))
    lines.append("fixed effects:")
    fixed = model.tidy()[["term", "estimate", "std_error", "statistic", "p_value"]].copy()
    fixed.insert(3, "df", model.df_.to_numpy())
    lines.append(fixed.to_string(index=False))
    if model.boundary_:
        lines.append(f"boundary (singular) fit: {', '.join(model.boundary_)}")
    if not model.converged_:
        lines.append(f"not converged: {model.optimizer_message_}")
    return "\n".join(lines)
