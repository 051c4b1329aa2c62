r"""Random slopes and correlated random effects in :class:`~verzuimmodel.mixed.glmm.PoissonMixed`,
:class:`~verzuimmodel.mixed.glmm.NegativeBinomialMixed` and :class:`~verzuimmodel.mixed.binomial_mixed.BinomialMixed`:
reading the random-effects terms, the estimation with its boundary check, and what such a fit holds and reports.

Model
-----
With random-effects terms :math:`t` (lme4's ``(x | g)``, ``(x || g)``, ``(0 + x | g)``, ``(1 | a/b)``; parsed by
:mod:`~verzuimmodel.mixed.random_terms`, as for :class:`~verzuimmodel.mixed.lmm.LinearMixed`), each a grouping factor
:math:`g_t` with :math:`q_t` columns :math:`z_{ti}`,

.. math:: g(\mu_i) = x_i'\beta + \sum_t z_{ti}' b_{t, g_t(i)} + o_i, \qquad b_{t,g} \sim N(0, \Sigma_t),
          \quad \Sigma_t = T_t T_t',

:math:`g` the log (Poisson, NB2) or logit (binomial) link. ``(x | g)`` has
:math:`\Sigma = \begin{pmatrix}\sigma_0^2 & \rho\sigma_0\sigma_1\\ \rho\sigma_0\sigma_1 & \sigma_1^2\end{pmatrix}`
(a school's intercept and its slope in :math:`x`, correlated); ``(x || g)`` the same with :math:`\rho = 0`.
:math:`T_t` is the lower-triangular Cholesky factor with a positive diagonal, and ``theta_`` lists its elements
column by column, as ``getME(fit, "theta")`` of ``glmer``. The fit maximises the Laplace approximation of the
marginal likelihood with its exact gradient (:mod:`~verzuimmodel.mixed.slope_laplace`); ``glmmTMB`` fits the
same function (its parametrisation differs: log SDs and correlation parameters; the maximum is the same).

Boundaries
----------
A covariance matrix on its boundary is singular: a variance at 0 or, within a term, a correlation at
:math:`\pm 1`. Both show as a diagonal element of :math:`T_b` going to 0. A diagonal element whose square is
below :math:`10^{-6}` (on columns scaled to a root mean square of 1) is checked against the fit with that
column of :math:`T_b` held at exactly 0; when that fit is as good, it is kept and a
:class:`~verzuimmodel.errors.ConvergenceWarning` names the term and says which: the variance of a column at 0,
or a correlation at :math:`\pm 1` (``boundary_`` lists the :math:`\theta` elements held at 0, as
:class:`~verzuimmodel.mixed.lmm.LinearMixed`).

Standard errors
---------------
The covariance of all estimates is the inverse of the observed information (central differences of the exact
gradient), as ``vcov()`` of glmmTMB. The variance parameters are reported as SDs and correlations
(``tidy(effects="ran_pars")``) with delta-method standard errors and Wald intervals on the log-SD and Fisher-z
(:math:`\operatorname{atanh}\rho`) scales, back-transformed (inside :math:`(0, \infty)` and :math:`(-1, 1)`; the
SD intervals are ``confint(fit, parm = "theta_")`` of glmmTMB); ``parameter_vcov_`` is their covariance on those
scales. The variance parameters of a term on its boundary get none (NaN): Wald intervals do not apply there.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ConvergenceWarning
from ._design import model_frame, new_group_codes
from ._numeric import _jacobian
from .laplace import (_LOG_SIGMA_BOUNDS, BOUNDARY_VARIANCE, THETA_MAX, LaplaceInputs, _Fit, _inverse_hessian,
                      _optimise)
from .random_terms import RandomStructure, RandomTerm, add_factor_columns, read_terms
from .slope_laplace import SlopeGroups, SlopeObjective

__all__ = ["RandomSpec", "random_spec", "fit_slopes", "ran_pars_table", "summary_text"]


# ----------------------------------------------------------------------------------------------------------------
# the random-effects terms of a GLMM fit


@dataclass(frozen=True)
class RandomSpec:
    """The random effects of a fit given as lme4 terms: the fixed-effects formula, the terms, the data (with a
    column per interaction factor ``a:b``) and the grouping factors; ``intercepts_only`` when every term is a
    random intercept on its own factor (the random-intercept models then fit it)."""

    fixed: str
    terms: tuple[RandomTerm, ...]
    data: pd.DataFrame
    factors: tuple[str, ...]
    intercepts_only: bool


def _plain_columns(groups) -> bool:
    items = [groups] if isinstance(groups, str) else groups
    return isinstance(items, (list, tuple)) and all(isinstance(g, str) and "|" not in g and "(" not in g
                                                    for g in items)


def random_spec(df: pd.DataFrame, formula: str, groups: str | Sequence[str] | None,
                table: str = "data") -> RandomSpec | None:
    """The random-effects terms of ``formula`` or ``groups``; None when ``groups`` names grouping columns and the
    formula has no terms (the random-intercept models' own arguments, passed on unchanged).

    Raises
    ------
    ValueError
        Terms both in the formula and in ``groups``, or in neither; a term whose syntax is not lme4's.
    """
    if isinstance(formula, str) and "|" not in formula and groups is not None and _plain_columns(groups):
        return None
    fixed, terms, data, factors = read_terms(df, formula, groups, table)
    intercepts = all(t.expr.strip() == "1" for t in terms) and len(factors) == len(terms)
    return RandomSpec(fixed, tuple(terms), data, tuple(factors), intercepts)


# ----------------------------------------------------------------------------------------------------------------
# estimation


def _start(mf, structure: RandomStructure, family, off, start_fn) -> np.ndarray:
    """Starting values: the random-intercept models' (GLM for beta, moments for a random intercept's SD and for
    theta); a slope's SD (on its scaled column) half its factor's intercept SD; correlations 0."""
    base = start_fn(mf.y, mf.X, off, family, SimpleNamespace(codes=mf.group_codes, sizes=mf.n_levels))
    p, K = mf.X.shape[1], len(mf.factors)
    tau = []
    for b, i, j in structure.block_index:
        if i != j:
            tau.append(0.0)
        elif structure.block_columns[b][i] == "Intercept":
            tau.append(base[p + b])
        else:
            tau.append(base[p + b] + np.log(0.5))
    return np.concatenate([base[:p], tau, base[p + K:]])


def _cholesky_with_zero_columns(S: np.ndarray, zero_cols: set[int]) -> np.ndarray:
    """A lower Cholesky factor of the covariance ``S`` with the columns ``zero_cols`` at 0 (the variance left in
    them is dropped): the start of the fit on that boundary."""
    q = len(S)
    L = np.zeros((q, q))
    for j in range(q):
        if j in zero_cols:
            continue
        d = S[j, j] - L[j, :j] @ L[j, :j]
        L[j, j] = np.sqrt(max(d, 1e-4 * S[j, j], 1e-8))
        L[j + 1:, j] = (S[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]
    return L


def _full_factors(obj: SlopeObjective, phi: np.ndarray) -> list[np.ndarray]:
    return obj.factors(phi[obj.p:obj.p + obj.K])


def _estimate(y, X, off, sg: SlopeGroups, family, phi0: np.ndarray, max_iter: int) -> tuple[_Fit, np.ndarray]:
    """Maximise the Laplace likelihood from ``phi0``; a diagonal element of a :math:`T_b` that goes to 0 is
    checked against the fit with its column held at 0 (module docstring). Returns the fit and the elements of
    theta held at 0."""
    s = sg.structure
    obj = SlopeObjective(y, X, off, sg, family)
    fit = _optimise(obj, phi0, max_iter)
    zero = np.zeros(s.n_theta, dtype=bool)
    p = X.shape[1]
    for _ in range(s.n_theta):
        T = _full_factors(fit.obj, fit.state.phi)
        small = {(b, i) for (b, i, j), z in zip(s.block_index, zero) if i == j and not z
                 and T[b][i, i] ** 2 < BOUNDARY_VARIANCE}
        if not small:
            break
        new_zero = zero | np.array([(b, j) in small for b, i, j in s.block_index])
        start_T = [_cholesky_with_zero_columns(Tb @ Tb.T, {j for bb, j in small if bb == b}) for b, Tb in enumerate(T)]
        tau = [np.clip(np.log(max(start_T[b][i, j], 1e-300)), *_LOG_SIGMA_BOUNDS) if i == j else start_T[b][i, j]
               for (b, i, j), z in zip(s.block_index, new_zero) if not z]
        phi_sub = np.concatenate([fit.state.phi[:p], tau, fit.state.phi[p + fit.obj.K:]])
        obj_sub = SlopeObjective(y, X, off, sg, family, zero=new_zero)
        obj_sub.u = fit.state.u.copy()
        fit_sub = _optimise(obj_sub, phi_sub, max_iter)
        if fit_sub.state.loglik < fit.state.loglik - 1e-6:
            break
        fit, zero = fit_sub, new_zero
    return fit, zero


def fit_slopes(model, mf, spec: RandomSpec, family, off: np.ndarray, start_fn, formula: str, offset, exposure,
               table: str, stacklevel: int) -> None:
    """Fit ``model`` (a Laplace mixed model) with the random-effects terms of ``spec`` on the model frame ``mf``
    and keep the results on it; ``stacklevel`` counts from this function to the user's call (for the warnings)."""
    if model.n_agq > 1:
        raise ValueError("n_agq > 1 (adaptive Gauss-Hermite quadrature) needs a single random intercept (one "
                         "grouping factor, no random slopes), as glmer; use n_agq=1 (Laplace)")
    structure, blocks = RandomStructure.build(list(spec.terms), spec.data, dict(zip(spec.factors, mf.n_levels)),
                                              table)
    sg = SlopeGroups(structure, mf.group_codes, mf.n_levels, blocks)
    phi0 = _start(mf, structure, family, off, start_fn)
    fit, zero = _estimate(mf.y, mf.X, off, sg, family, phi0, model.max_iter)
    _store(model, mf, fit, zero, structure, sg, formula, offset, exposure, stacklevel + 1)
    model._laplace_inputs = LaplaceInputs(mf.y, mf.X, off, family, tuple(blocks))


# ----------------------------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class SlopeFit:
    """What a fit with random slopes keeps for prediction and reporting: the structure, the (reported-scale)
    relative covariance factors and the random effects per block."""

    structure: RandomStructure
    T: tuple[np.ndarray, ...]
    b: tuple[np.ndarray, ...]
    zero: np.ndarray
    sdcor: np.ndarray
    sdcor_cov: np.ndarray        # covariance of (log SD, atanh cor) for the theta positions (NaN where undefined)


def _reported_factors(obj: SlopeObjective, phi: np.ndarray) -> list[np.ndarray]:
    return [Tb / s[:, None] for Tb, s in zip(_full_factors(obj, phi), obj.groups.scale)]


def _theta_values(structure: RandomStructure, T: list[np.ndarray]) -> np.ndarray:
    return np.array([T[b][i, j] for b, i, j in structure.block_index])


def _store(model, mf, fit: _Fit, zero: np.ndarray, structure: RandomStructure, sg: SlopeGroups, formula, offset,
           exposure, stacklevel: int) -> None:
    obj, st = fit.obj, fit.state
    p, K = obj.p, obj.K
    phi = st.phi
    beta, tau, omega = obj.unpack(phi)
    free = fit.free.copy()
    cov, hess_ok = _inverse_hessian(fit)
    vcov = 0.5 * (cov[:p, :p] + cov[:p, :p].T)
    names = list(mf.names)
    factors = list(structure.factors)
    T = _reported_factors(obj, phi)
    theta = _theta_values(structure, T)
    sdcor = structure.sdcor(theta, 1.0)

    # delta method: (log SD, atanh cor) of every theta position from the free tau (+ log theta)
    def transformed(t):
        v = structure.sdcor(_theta_values(structure, _reported_factors(obj, np.concatenate([phi[:p], t,
                                                                                            phi[p + K:]]))), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(structure.is_diag, np.log(v), np.arctanh(np.clip(v, -1.0, 1.0)))

    defined = np.isfinite(transformed(tau))
    J = np.zeros((structure.n_theta, K))
    if K and defined.any():
        J = np.where(defined[:, None], _jacobian(lambda t: np.nan_to_num(transformed(t)), tau), 0.0)
    var_idx = np.arange(p, obj.m)
    Jfull = np.zeros((structure.n_theta + int(obj.family.has_dispersion), obj.m - p))
    Jfull[:structure.n_theta, :K] = J
    if obj.family.has_dispersion:
        Jfull[-1, -1] = 1.0
    pcov = Jfull @ np.nan_to_num(cov[np.ix_(var_idx, var_idx)]) @ Jfull.T
    undefined = np.concatenate([~defined, np.zeros(int(obj.family.has_dispersion), dtype=bool)])
    # a parameter held fixed (a variance vanishing, theta infinite) or an indefinite Hessian: no SE
    touched = (np.abs(Jfull[:, ~free[p:]]) > 0).any(axis=1) if (~free[p:]).any() else np.zeros(len(Jfull), bool)
    # a term on its boundary: Wald intervals of its SDs and correlations do not apply (lme4 gives none either)
    on_boundary = {b for (b, i, j), z in zip(structure.block_index, zero) if z}
    boundary_rows = np.concatenate([[b in on_boundary for b, i, j in structure.block_index],
                                    np.zeros(int(obj.family.has_dispersion), dtype=bool)])
    bad = undefined | touched | boundary_rows | (not hess_ok)
    pcov[bad, :] = np.nan
    pcov[:, bad] = np.nan

    model.formula_, model.groups_ = formula, factors
    model.offset_column_, model.exposure_column_ = offset, exposure
    model.family_ = obj.family.name
    model.n_obs_ = obj.n
    model.n_groups_ = pd.Series(mf.n_levels, index=factors, dtype=int, name="n_groups")
    model.random_terms_ = structure.describe()
    model.params_ = pd.Series(beta, index=names, name="estimate")
    model.vcov_ = pd.DataFrame(vcov, index=names, columns=names)
    model.standard_errors_ = pd.Series(np.sqrt(np.diag(vcov)), index=names, name="std_error")
    theta_names = structure.theta_names()
    model.theta_ = pd.Series(theta, index=theta_names, name="theta")
    vc_names, vc = [], []
    for b, f in enumerate(factors):
        for i, col in enumerate(structure.block_columns[b]):
            vc_names.append(structure.variance_name(f, col))
            vc.append(float(T[b][i] @ T[b][i]))
    model.variance_components_ = pd.Series(vc, index=vc_names, name="variance")
    model.varcorr_ = structure.varcorr(theta, 1.0).iloc[:-1].reset_index(drop=True)
    if obj.family.has_dispersion:
        model.dispersion_ = float(np.exp(omega))
    par_names = [("log_sd_" if d else "atanh_cor_") + nm.split("_", 1)[1] for nm, d in
                 zip(structure.profile_names(), structure.is_diag)] + (
        ["log_theta"] if obj.family.has_dispersion else [])
    model.parameter_vcov_ = pd.DataFrame(pcov, index=par_names, columns=par_names)
    model.log_likelihood_ = float(st.loglik)
    model.n_parameters_ = p + structure.n_theta + int(obj.family.has_dispersion)
    model.aic_ = -2 * model.log_likelihood_ + 2 * model.n_parameters_
    model.bic_ = -2 * model.log_likelihood_ + np.log(obj.n) * model.n_parameters_
    bs = [ub @ Tb.T for ub, Tb in zip(sg.split(st.u), T)]
    model.ranef_ = {}
    for b, f in enumerate(factors):
        cols = structure.block_columns[b]
        model.ranef_[f] = (pd.Series(bs[b][:, 0], index=mf.group_labels[b], name=f) if cols == ["Intercept"]
                           else pd.DataFrame(bs[b], index=mf.group_labels[b], columns=cols))
    model.n_agq_ = 1
    model.boundary_ = [nm for nm, z, d in zip(theta_names, zero, structure.is_diag) if z and d]
    model.converged_ = bool(fit.converged and hess_ok)
    model.optimizer_message_ = fit.message
    model._mf = mf
    model._slopes = SlopeFit(structure, tuple(T), tuple(bs), zero, sdcor, pcov[:structure.n_theta, :structure.n_theta])
    _warn(model, fit, zero, structure, T, names, beta, vcov, hess_ok, cov, free, stacklevel + 1)


def _warn(model, fit, zero, structure, T, names, beta, vcov, hess_ok, cov, free, stacklevel) -> None:
    label = type(model).__name__
    obj, st = fit.obj, fit.state
    for b, cols in enumerate(structure.block_columns):
        zc = sorted({i for (bb, i, j), z in zip(structure.block_index, zero) if bb == b and z and i == j})
        if not zc:
            continue
        terms = " + ".join(t.text for t, tb in zip(structure.terms, structure.term_block) if tb == b)
        S = T[b] @ T[b].T
        gone = [cols[i] for i in range(len(cols)) if S[i, i] == 0.0]
        what = []
        if gone:
            what.append("the variance of " + ", ".join(f"'{c}'" for c in gone) + " is estimated at 0")
        if len(gone) < len(zc):
            what.append("the covariance matrix is singular: a correlation is estimated at +-1")
        warnings.warn(f"{label}: boundary (singular) fit of {terms}: {'; '.join(what)}; the fit with "
                      f"{'that column' if len(zc) == 1 else 'those columns'} of its Cholesky factor at 0 is as good "
                      "and is kept; consider a simpler random-effects structure", ConvergenceWarning,
                      stacklevel=stacklevel)
    if obj.family.has_dispersion and model.dispersion_ > THETA_MAX:
        warnings.warn(f"{label}: the dispersion theta ({model.dispersion_:.3g}) may be infinite: no overdispersion "
                      "beyond the random effects; consider PoissonMixed", ConvergenceWarning, stacklevel=stacklevel)
    for n, bval in model._infinite_coefficients(names, beta, np.diag(vcov), hess_ok, obj):
        warnings.warn(f"{label}: the coefficient of '{n}' may be infinite (separation: {model._separation_hint}); "
                      f"its estimate ({bval:.3g}) and standard error are not reliable", ConvergenceWarning,
                      stacklevel=stacklevel)
    all_names = ([f"coefficient '{n}'" for n in names]
                 + [f"covariance parameter '{structure.theta_names()[k]}'" for k in obj.free]
                 + (["dispersion theta"] if obj.family.has_dispersion else []))
    if not hess_ok:
        bad = model._weak_names(fit.hessian, free, all_names)
        warnings.warn(f"{label}: the Hessian of the log-likelihood is not positive definite (parameters {bad}): the "
                      "standard errors are not available (NaN)", ConvergenceWarning, stacklevel=stacklevel)
    elif not fit.converged:
        score = np.abs(st.grad) * np.sqrt(np.abs(np.diag(cov)))
        score[~free | ~np.isfinite(score)] = 0.0
        warnings.warn(f"{label}: the optimiser did not converge ({fit.message}); the largest remaining gradient is "
                      f"in the {all_names[int(np.argmax(score))]}; the estimates at the last iterate are returned",
                      ConvergenceWarning, stacklevel=stacklevel)


def random_part(model, df: pd.DataFrame) -> np.ndarray:
    """:math:`\\sum_t z_{ti}'\\hat b_{t,g}` of the rows of ``df`` (0 for groups not seen in fitting)."""
    sl: SlopeFit = model._slopes
    data = add_factor_columns(df, sl.structure.terms, "newdata")
    cols = sl.structure.new_columns(data)
    out = np.zeros(len(df))
    for b, f in enumerate(model.groups_):
        codes = new_group_codes(data, f, model._mf.group_labels[b])
        rows = sl.b[b][np.maximum(codes, 0)]
        out = out + np.where(codes >= 0, np.sum(cols[b] * rows, axis=1), 0.0)
    return out


# ----------------------------------------------------------------------------------------------------------------
# the variance parameters in tidy() and the summary


def _ran_pars(model) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Names (as ``LinearMixed.confint``: ``sd_x|g``, ``cor_x.Intercept|g``), estimates, SDs on the transformed
    scale and whether each is an SD (log scale) or a correlation (atanh scale); then the NB dispersion."""
    sl = getattr(model, "_slopes", None)
    if sl is not None:
        names = list(sl.structure.profile_names())
        est = np.asarray(sl.sdcor, dtype=float)
        se_t = np.sqrt(np.diag(sl.sdcor_cov))
        is_sd = np.asarray(sl.structure.is_diag, dtype=bool)
    else:
        names = [f"sd_Intercept|{f}" for f in model.groups_]
        est = np.sqrt(model.variance_components_.to_numpy(dtype=float))
        pv = model.parameter_vcov_
        se_t = np.array([np.sqrt(pv.loc[f"log_sd_{f}", f"log_sd_{f}"]) if f"log_sd_{f}" in pv.index else np.nan
                         for f in model.groups_])
        is_sd = np.ones(len(names), dtype=bool)
    if hasattr(model, "dispersion_"):
        pv = model.parameter_vcov_
        names.append("dispersion")
        est = np.append(est, model.dispersion_)
        se_t = np.append(se_t, np.sqrt(pv.loc["log_theta", "log_theta"]) if "log_theta" in pv.index else np.nan)
        is_sd = np.append(is_sd, True)
    return names, est, se_t, is_sd


def ran_pars_table(model, level: float) -> pd.DataFrame:
    """Rows of ``tidy()`` for the variance parameters: SDs, correlations and (NB2) the dispersion theta, with
    delta-method SEs and Wald intervals on the log / atanh scale, back-transformed; no test statistic."""
    from ..tidy import TIDY_COLUMNS
    names, est, se_t, is_sd = _ran_pars(model)
    q = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        se_t = np.where(np.isfinite(se_t), se_t, np.nan)
        trans = np.where(is_sd, np.log(est), np.arctanh(est))
        back = np.where(is_sd[:, None], np.exp(trans[:, None] + np.array([-q, q]) * se_t[:, None]),
                        np.tanh(trans[:, None] + np.array([-q, q]) * se_t[:, None]))
        se = np.where(is_sd, est * se_t, (1 - est ** 2) * se_t)
    out = pd.DataFrame({"term": names, "estimate": est, "std_error": se, "statistic": np.nan, "p_value": np.nan,
                        "conf_low": back[:, 0], "conf_high": back[:, 1], "exp_estimate": np.nan,
                        "exp_conf_low": np.nan, "exp_conf_high": np.nan})
    return out[TIDY_COLUMNS]


def summary_text(model) -> str:
    """What ``print(fit)`` / ``summary(fit)`` of glmer show: formula, family, log-likelihood and information
    criteria, the random effects (variances, SDs, correlations), the dispersion and the fixed effects."""
    sl = getattr(model, "_slopes", None)
    how = "Laplace" if model.n_agq_ == 1 else f"adaptive quadrature, {model.n_agq_} points"
    groups = ", ".join(f"{f} {g:,}" for f, g in model.n_groups_.items())
    lines = [f"formula: {model.formula_}" + ("" if sl is None or "|" in model.formula_
                                            else f"; random: {' + '.join(model.random_terms_)}"),
             f"family: {model.family_} ({how}); log-likelihood {model.log_likelihood_:.4f}; AIC {model.aic_:.4f}; "
             f"BIC {model.bic_:.4f}",
             f"n = {model.n_obs_:,}; groups: {groups}", "random effects:"]
    if sl is not None:
        rows = sl.structure.varcorr_rows(model.theta_.to_numpy())
    else:
        rows = [{"group": f, "name": "Intercept", "variance": f"{v:.6g}", "sd": f"{np.sqrt(v):.6g}", "corr": ""}
                for f, v in model.variance_components_.items()]
    table = pd.DataFrame(rows)
    if not table["corr"].str.len().any():
        table = table.drop(columns="corr")
    lines.append(table.to_string(index=False))
    if hasattr(model, "dispersion_"):
        lines.append(f"dispersion theta (NB2): {model.dispersion_:.6g}")
    lines.append("fixed effects:")
    lines.append(model.tidy()[["term", "estimate", "std_error", "statistic", "p_value"]].to_string(index=False))
    if model.boundary_:
        lines.append(f"boundary (singular) fit: {', '.join(map(str, model.boundary_))}")
    if not model.converged_:
        lines.append(f"not converged: {model.optimizer_message_}")
    return "\n".join(lines)


def model_frame_for(spec: RandomSpec, offset: str | None, table: str):
    """The model frame of a fit given with terms (the fixed part; a grouping factor per block)."""
    return model_frame(spec.data, spec.fixed, list(spec.factors), offset=offset, table=table)
