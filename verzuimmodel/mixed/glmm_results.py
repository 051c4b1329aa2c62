"""What a fitted Poisson, NB2 or binomial mixed model holds and reports: the fitted state, its warnings,
predictions, the tidy table, the summary and ``confint`` (computed by :mod:`~verzuimmodel.mixed.glmm_profile`;
shared by :class:`~verzuimmodel.mixed.glmm.PoissonMixed`, :class:`~verzuimmodel.mixed.glmm.NegativeBinomialMixed` and
:class:`~verzuimmodel.mixed.binomial_mixed.BinomialMixed`). A fit with random slopes keeps its own state
through :mod:`~verzuimmodel.mixed.glmm_slopes`, which also builds the variance rows of ``tidy`` and the summary."""

from __future__ import annotations

import warnings
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from ..errors import ConvergenceWarning
from ..tidy import tidy_table
from ._design import new_design, new_group_codes
from .count_families import _exposure_offset
from .glmm_slopes import ran_pars_table, random_part, summary_text
from .laplace import THETA_MAX, LaplaceInputs, _Fit, _inverse_hessian


class _CountResults:
    """The fitted state of a count mixed model (``_store``) and what reads it: ``predict`` and ``tidy``."""

    # what separation means for the outcome, in the warning of a coefficient that may be infinite
    _separation_hint = "the counts are 0 in every row at one extreme of this covariate"

    def _store(self, mf, fit: _Fit, factors, active, boundary, names, formula, offset, exposure,
               stacklevel: int = 5):
        """Keep the fit's results and warn about it; ``stacklevel`` makes the warnings point at the
        caller of the public ``fit``."""
        obj, st = fit.obj, fit.state
        p = obj.p
        phi = st.phi
        beta, tau, omega = obj.unpack(phi)
        H, free = fit.hessian, fit.free.copy()
        cov, hess_ok = _inverse_hessian(fit)
        vcov = cov[:p, :p]
        vcov = 0.5 * (vcov + vcov.T)
        self.formula_, self.groups_ = formula, factors
        self.offset_column_, self.exposure_column_ = offset, exposure
        self.family_ = obj.family.name
        self.n_obs_ = obj.n
        self.n_groups_ = pd.Series(mf.n_levels, index=factors, dtype=int, name="n_groups")
        self.params_ = pd.Series(beta, index=names, name="estimate")
        self.vcov_ = pd.DataFrame(vcov, index=names, columns=names)
        self.standard_errors_ = pd.Series(np.sqrt(np.diag(vcov)), index=names, name="std_error")
        var = np.zeros(len(factors))
        for j, k in enumerate(active):
            var[k] = np.exp(2 * tau[j])
        self.variance_components_ = pd.Series(var, index=factors, name="variance")
        if obj.family.has_dispersion:
            self.dispersion_ = float(np.exp(omega))
        # covariance of the variance parameters on the log-SD (and log-theta) scale
        par_names = [f"log_sd_{factors[k]}" for k in active] + (["log_theta"] if obj.family.has_dispersion else [])
        self.parameter_vcov_ = pd.DataFrame(cov[p:, p:], index=par_names, columns=par_names)
        self.log_likelihood_ = float(st.loglik)
        n_par = p + len(factors) + int(obj.family.has_dispersion)
        self.n_parameters_ = n_par
        self.aic_ = -2 * self.log_likelihood_ + 2 * n_par
        self.bic_ = -2 * self.log_likelihood_ + np.log(obj.n) * n_par
        self.ranef_ = {}
        g = obj.groups
        for k, f in enumerate(factors):
            vals = g.block(st.u, active.index(k)) if k in active else np.zeros(mf.n_levels[k])
            self.ranef_[f] = pd.Series(vals, index=mf.group_labels[k], name=f)
        self.n_agq_ = obj.n_agq
        self.boundary_ = list(boundary)
        self.converged_ = bool(fit.converged and hess_ok)
        self.optimizer_message_ = fit.message
        self._mf = mf
        self._slopes = None
        self._laplace_inputs = LaplaceInputs(obj.y, obj.X, obj.offset, obj.family)
        for stale in ("theta_", "varcorr_", "random_terms_"):     # of an earlier fit with random slopes
            self.__dict__.pop(stale, None)
        label = type(self).__name__
        for f in boundary:
            warnings.warn(f"{label}: the variance of the random intercept of '{f}' is estimated at 0 (boundary): the "
                          f"fit without '{f}' is as good; it is reported as 0 and '{f}' is left out of the final fit",
                          ConvergenceWarning, stacklevel=stacklevel)
        if obj.family.has_dispersion and self.dispersion_ > THETA_MAX:
            warnings.warn(f"{label}: the dispersion theta ({self.dispersion_:.3g}) may be infinite: no overdispersion "
                          "beyond the random effects; consider PoissonMixed", ConvergenceWarning,
                          stacklevel=stacklevel)
        for n, b in self._infinite_coefficients(names, beta, np.diag(vcov), hess_ok, obj):
            warnings.warn(f"{label}: the coefficient of '{n}' may be infinite (separation: "
                          f"{self._separation_hint}); its estimate ({b:.3g}) and standard error are not "
                          "reliable", ConvergenceWarning, stacklevel=stacklevel)
        if not hess_ok:
            bad = self._weak_parameters(H, free, names, factors, active, obj)
            warnings.warn(f"{label}: the Hessian of the log-likelihood is not positive definite (parameters "
                          f"{bad}): the standard errors are not available (NaN)", ConvergenceWarning,
                          stacklevel=stacklevel)
        elif not fit.converged:
            all_names = self._parameter_names(names, factors, active, obj)
            score = np.abs(st.grad) * np.sqrt(np.abs(np.diag(cov)))      # gradient in standard-error units
            score[~free | ~np.isfinite(score)] = 0.0
            worst = all_names[int(np.argmax(score))]
            warnings.warn(f"{label}: the optimiser did not converge ({fit.message}); the largest remaining "
                          f"gradient is in the {worst}; the estimates at the last iterate are returned",
                          ConvergenceWarning, stacklevel=stacklevel)

    @staticmethod
    def _infinite_coefficients(names, beta, var, hess_ok, obj) -> list[tuple[str, float]]:
        """Coefficients that may be infinite: beyond 10 with a standard error above ten times their size."""
        return [(n, b) for n, b, v in zip(names, beta, var) if hess_ok and abs(b) > 10 and v > 100 * b * b]

    @staticmethod
    def _parameter_names(names, factors, active, obj) -> list[str]:
        return [f"coefficient '{n}'" for n in names] + [f"variance of '{factors[k]}'" for k in active] + (
            ["dispersion theta"] if obj.family.has_dispersion else [])

    @classmethod
    def _weak_parameters(cls, H, free, names, factors, active, obj) -> str:
        return cls._weak_names(H, free, cls._parameter_names(names, factors, active, obj))

    @staticmethod
    def _weak_names(H, free, all_names) -> str:
        """The parameters of the direction in which the Hessian is least positive."""
        if H is None:
            return "unknown"
        idx = np.flatnonzero(free)
        try:
            ev, V = np.linalg.eigh(H[np.ix_(idx, idx)])
        except np.linalg.LinAlgError:
            return ", ".join(all_names)
        v = V[:, np.argmin(ev)]
        big = np.abs(v) > 0.3 * np.abs(v).max()
        return ", ".join(all_names[i] for i in idx[big])

    # ------------------------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit() first")

    def predict(self, df: pd.DataFrame, include_random: bool = True, kind: str = "response") -> np.ndarray:
        """Predicted counts :math:`\\mu` (``kind="response"``) or linear predictors (``kind="link"``).

        The fitted offset or exposure column is used when ``df`` has it (else the prediction is per unit
        of exposure). With ``include_random`` the conditional modes of the rows' groups are added;
        groups not seen in fitting get 0 (the population value).
        """
        self._check_fitted()
        if kind not in ("response", "link"):
            raise ValueError(f"kind must be 'response' or 'link', got {kind!r}")
        eta = new_design(self._mf, df) @ self.params_.to_numpy()
        if self.offset_column_ is not None and self.offset_column_ in df.columns:
            eta = eta + pd.to_numeric(df[self.offset_column_]).to_numpy(dtype=float)
        elif self.exposure_column_ is not None and self.exposure_column_ in df.columns:
            eta = eta + _exposure_offset(df, None, self.exposure_column_, "newdata")
        if include_random and getattr(self, "_slopes", None) is not None:
            eta = eta + random_part(self, df)
        elif include_random:
            for f in self.groups_:
                codes = new_group_codes(df, f, self.ranef_[f].index)
                b = self.ranef_[f].to_numpy()
                eta = eta + np.where(codes >= 0, b[np.maximum(codes, 0)], 0.0)
        return np.exp(eta) if kind == "response" else eta

    def tidy(self, level: float | None = None, effects: str = "fixed") -> pd.DataFrame:
        """The estimates as one table.

        ``effects="fixed"`` (default): the fixed effects -- term, estimate (log rate ratio), std_error, z statistic,
        p-value, interval, and the rate ratios ``exp_estimate``, ``exp_conf_low``, ``exp_conf_high`` (Wald, normal
        distribution). ``"ran_pars"``: the variance parameters -- the SD of each random effect (``sd_x|g``), the
        correlations within a term (``cor_x.Intercept|g``) and, for NB2, the ``dispersion`` theta, with
        delta-method standard errors and Wald intervals on the log-SD (log theta) and Fisher-z scales,
        back-transformed; no test statistic (a variance is not tested against 0 this way). ``"all"``: both,
        fixed effects first.
        """
        self._check_fitted()
        if effects not in ("fixed", "ran_pars", "all"):
            raise ValueError(f"effects must be 'fixed', 'ran_pars' or 'all', got {effects!r}")
        level = self.level if level is None else level
        parts = []
        if effects in ("fixed", "all"):
            parts.append(tidy_table(self.params_, self.standard_errors_, level=level))
        if effects in ("ran_pars", "all"):
            parts.append(ran_pars_table(self, level))
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)

    def confint(self, parm: str | Sequence[str] | None = None, level: float = 0.95,
                method: Literal["profile", "Wald"] = "profile") -> pd.DataFrame:
        r"""Confidence intervals of the variance parameters and fixed effects, as lme4's ``confint.merMod`` of a
        glmer fit (and glmmTMB's ``confint`` for the NB2 dispersion).

        Parameters
        ----------
        parm : parameters by name -- the SDs ``sd_x|g`` (``sd_Intercept|school``), correlations
            ``cor_x.Intercept|g``, ``dispersion`` (NB2: :math:`\theta`) and the fixed effects by term -- or
            ``"theta_"`` (the variance parameters), ``"beta_"`` (the fixed effects); None (default): all.
        level : confidence level, in (0, 1).
        method : ``"profile"`` (default): profile likelihood, the interval where the signed root of the deviance
            difference :math:`\zeta(x) = \operatorname{sign}(x - \hat\psi)\sqrt{\min_{\psi_k = x} d - \hat d}`
            (the Laplace deviance minimised over every other parameter) lies within :math:`\pm z_{(1+level)/2}`;
            a lower limit 0 for an SD whose profile stays below the cut-off down to 0 (or estimated at 0).
            ``"Wald"``: :math:`\hat\beta \pm z\,\mathrm{SE}` for the fixed effects, NaN for the variance
            parameters (as lme4).

        Returns
        -------
        DataFrame indexed by ``parameter`` with ``conf_low`` and ``conf_high`` (the variance parameters first, as
        :meth:`LinearMixed.confint <verzuimmodel.mixed.lmm.LinearMixed.confint>`).

        Raises
        ------
        ValueError
            An unknown parameter (the message lists the parameters), a level outside (0, 1), a method other than
            ``"profile"`` or ``"Wald"``.

        See :mod:`~verzuimmodel.mixed.glmm_profile` for the definitions and how the profile is computed.
        """
        from .glmm_profile import confint
        return confint(self, parm=parm, level=level, method=method)

    def profile(self):
        """The likelihood profile of the fit (:class:`~verzuimmodel.mixed.glmm_profile.GlmmProfile`)."""
        from .glmm_profile import GlmmProfile
        self._check_fitted()
        return GlmmProfile(self)

    def summary(self) -> str:
        """The fit as text (as ``summary()`` of glmer): formula, family, log-likelihood, AIC, BIC, the random
        effects with their variances, SDs and correlations, the dispersion and the fixed effects."""
        self._check_fitted()
        return summary_text(self)
