r"""Confidence intervals of :class:`~verzuimmodel.mixed.glmm.PoissonMixed`,
:class:`~verzuimmodel.mixed.glmm.NegativeBinomialMixed` and :class:`~verzuimmodel.mixed.binomial_mixed.BinomialMixed`
(``confint``), as lme4's ``confint.merMod`` for ``glmer`` fits and glmmTMB's ``confint`` for the NB2 dispersion.

Names
-----
As :meth:`LinearMixed.confint <verzuimmodel.mixed.lmm.LinearMixed.confint>` (lme4's
``confint(oldNames = FALSE)``) and :meth:`tidy(effects="ran_pars") <verzuimmodel.mixed.glmm.PoissonMixed.tidy>`:
the SD of each random effect ``sd_x|g`` (``sd_Intercept|school``), the correlations within a term
``cor_x.Intercept|g``, for NB2 the ``dispersion`` :math:`\theta`, then the fixed effects by term.

Profile likelihood (``method="profile"``)
-----------------------------------------
With the Laplace deviance :math:`d = -2\log L` (or the adaptive-quadrature one of a fit with ``n_agq > 1``) as a
function of :math:`\psi` = (SDs, correlations, :math:`\theta`, :math:`\beta`), the profile of a parameter
:math:`\psi_k` is lme4's ``profile.merMod`` for glmer:

.. math:: \zeta_k(x) = \operatorname{sign}(x - \hat\psi_k)\sqrt{\min_{\psi:\,\psi_k = x} d(\psi) - d(\hat\psi)},

minimised over *all* other parameters -- the other variance parameters and the fixed effects (:math:`\beta` is not
integrated out: lme4's ``devfun2`` of a glmer fit takes :math:`(\theta, \beta)`) -- within their bounds (SDs
:math:`\ge 0`, correlations in :math:`[-1, 1]`). The interval is
:math:`\{x : |\zeta_k(x)| \le z_{(1+\text{level})/2}\}`, its ends the roots of :math:`\zeta_k(x) = \pm z`
(:mod:`~verzuimmodel.mixed._profile`, shared with :class:`~verzuimmodel.mixed.lmm.LinearMixed`). An SD whose
profile stays below the cut-off down to 0 has the lower limit 0, as lme4 (so does an SD estimated at 0); a
correlation likewise :math:`\pm 1`. The NB2 dispersion is profiled on :math:`\log\theta`, as glmmTMB's
``confint(method = "profile")`` (the interval is the same on either scale; the limits are reported as
:math:`\theta`); an end beyond :math:`\theta = 10^{8}` is :math:`\infty` (no evidence against the Poisson model
there), one below :math:`10^{-4}` is 0. lme4 and glmmTMB read the ends off a spline through :math:`\zeta` on a grid,
to about :math:`10^{-3}` (relative); here they are roots, to :math:`10^{-9}` of the parameter's scale.

The minimisation over the other parameters is L-BFGS-B with the exact gradient of the Laplace likelihood
(:meth:`SlopeObjective.laplace <verzuimmodel.mixed.slope_laplace.SlopeObjective.laplace>`; for random intercepts
only the fit's own objective, :class:`~verzuimmodel.mixed.laplace._Objective`, which also does the quadrature), on
the log SDs, the Fisher-z correlations (:math:`\operatorname{atanh}\rho`), :math:`\log\theta` and :math:`\beta`,
scaled by their standard errors and warm-started from the nearest point already profiled. A nuisance SD is kept
above :math:`10^{-5}` (on the linear predictor's scale; a profiled SD at exactly 0 is the model without that random
effect). The deviance is flat in a log SD near 0 whether or not 0 is its minimum, so a variance parameter that ends
on its bound is started again away from it and the lower minimum kept. With random slopes :math:`\psi` maps to the
Cholesky factors by lme4's ``Sv_to_Cv`` (:meth:`RandomStructure.theta_from_sdcor
<verzuimmodel.mixed.random_terms.RandomStructure.theta_from_sdcor>`), whose Jacobian is taken by central
differences (small matrices). The optimum :math:`d(\hat\psi)` is recomputed the same way from the fit's estimates.

Wald (``method="Wald"``)
------------------------
:math:`\hat\beta_j \pm z\,\mathrm{SE}_j` with the fit's standard errors (observed information of the approximate
likelihood); NaN for the variance parameters, as lme4 (``tidy(effects="ran_pars")`` has Wald intervals on the
log-SD and Fisher-z scales).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import optimize

from .._blas import single_threaded_blas
from ._profile import ProfileBase, check_confint_args, find_end, select_parameters, wald_table
from .glmm_slopes import _ran_pars
from .laplace import _LOG_SIGMA_BOUNDS, _LOG_THETA_BOUNDS, _Objective
from .random_intercepts import _Groups
from .slope_laplace import SlopeGroups, SlopeObjective

__all__ = ["GlmmProfile", "confint"]

SD, COR, DISPERSION, FIXED = 0, 1, 2, 3
_ATANH_MAX = float(np.arctanh(1 - 1e-10))     # the Fisher-z bound of a correlation (|rho| <= 1 - 1e-10)


class _Intercepts:
    """Random intercepts only: the fit's objective over every factor (also those with a variance at 0),
    :math:`\\phi = (\\beta, \\log\\sigma_k, \\log\\theta)`; a factor at exactly 0 is left out (a sub-objective)."""

    def __init__(self, inputs, mf, n_agq: int, schur: str = "auto"):
        self.inputs, self.mf, self.n_agq, self.schur = inputs, mf, n_agq, schur
        self.K = len(mf.group_codes)
        self.is_sd = np.ones(self.K, dtype=bool)
        self.shift = np.zeros(self.K)                  # psi = log(sd) + shift
        self._objectives: dict[tuple[int, ...], _Objective] = {}

    def _objective(self, keep: tuple[int, ...]) -> _Objective:
        if keep not in self._objectives:
            mf, inp = self.mf, self.inputs
            groups = _Groups([mf.group_codes[k] for k in keep], [mf.n_levels[k] for k in keep], mf.n,
                             schur=self.schur)
            self._objectives[keep] = _Objective(inp.y, inp.X, inp.offset, groups, inp.family,
                                                n_agq=self.n_agq if len(keep) == 1 else 1)
        return self._objectives[keep]

    def deviance(self, var, psi_var, diff, omega, beta):
        """The deviance and its gradient in ``beta``, the free ``psi_var`` (``diff``) and ``omega``."""
        keep = tuple(int(k) for k in np.flatnonzero(var > 0))
        obj = self._objective(keep)
        phi = np.concatenate([beta, psi_var[list(keep)], [] if omega is None else [omega]])
        st = obj.evaluate(phi)
        p = len(beta)
        g_var = np.zeros(self.K)
        g_var[list(keep)] = 2.0 * st.grad[p:p + len(keep)]
        g_omega = 2.0 * st.grad[-1] if omega is not None else None
        return -2.0 * st.loglik, 2.0 * st.grad[:p], np.where(diff, g_var, 0.0), g_omega


class _Slopes:
    """Random slopes: the spherical Laplace objective at the Cholesky factors of the SDs and correlations (lme4's
    ``Sv_to_Cv``); singular covariances (an SD at 0, a correlation at +-1) included."""

    def __init__(self, inputs, model):
        s = model._slopes.structure
        sg = SlopeGroups(s, model._mf.group_codes, model._mf.n_levels, inputs.slope_columns)
        self.structure = s
        self.obj = SlopeObjective(inputs.y, inputs.X, inputs.offset, sg, inputs.family)
        self.scale = sg.scale
        self.is_sd = np.asarray(s.is_diag, dtype=bool)
        self.shift = np.array([np.log(sg.scale[b][i]) if i == j else 0.0 for b, i, j in s.block_index])

    def factors(self, var: np.ndarray) -> list[np.ndarray]:
        """The internal (column-scaled) :math:`T_b` of SDs and correlations ``var``."""
        theta = self.structure.theta_from_sdcor(var, 1.0)
        return [sc[:, None] * T for sc, T in zip(self.scale, self.structure.block_factors(theta))]

    def deviance(self, var, psi_var, diff, omega, beta):
        T = self.factors(var)
        ll, g_beta, dT, g_omega, _, _ = self.obj.laplace(beta, T, omega)
        g_var = np.zeros(len(var))
        for j in np.flatnonzero(diff):                 # d T / d psi_j by central differences (small matrices)
            h = 1e-6 * max(1.0, abs(psi_var[j]))
            up, down = var.copy(), var.copy()
            up[j], down[j] = self._natural(j, psi_var[j] + h), self._natural(j, psi_var[j] - h)
            Tu, Td = self.factors(up), self.factors(down)
            g_var[j] = -sum(float(np.sum(d * (a - b))) for d, a, b in zip(dT, Tu, Td)) / h   # -2 dlogL / dpsi_j
        return -2.0 * ll, 2.0 * g_beta, g_var, None if g_omega is None else 2.0 * g_omega

    def _natural(self, j: int, psi: float) -> float:
        return float(np.exp(psi - self.shift[j])) if self.is_sd[j] else float(np.tanh(psi))


class GlmmProfile(ProfileBase):
    """The profile likelihood of a fitted Poisson, NB2 or binomial mixed model (module docstring).

    Attributes
    ----------
    names : the parameters: ``sd_x|g``, ``cor_x.y|g``, ``dispersion`` (NB2), then the fixed effects.
    estimate : the fit's estimates of them (Series).
    base_deviance : :math:`-2\\log L` at the optimum (recomputed by the profile's own minimisation).

    Use :meth:`zeta` for the signed root of the profile at a value, :meth:`interval` for the limits and
    :meth:`deviance` for :math:`-2\\log L` at given parameter values.
    """

    def __init__(self, model):
        super().__init__()
        inputs = getattr(model, "_laplace_inputs", None)
        if inputs is None:
            raise RuntimeError(f"{type(model).__name__}: this fit does not keep what its likelihood profile needs "
                               "(made by an earlier version); fit the model again")
        self._adapter = (_Slopes(inputs, model) if inputs.slope_columns is not None
                         else _Intercepts(inputs, model._mf, model.n_agq_, getattr(model, "schur", "auto")))
        ad = self._adapter
        names_var, est_var, se_t, _ = _ran_pars(model)
        has_disp = hasattr(model, "dispersion_")
        self.n_var = len(ad.is_sd)
        self.has_dispersion = has_disp
        p = len(model.params_)
        self.names = names_var + list(model.params_.index)
        kind = np.concatenate([np.where(ad.is_sd, SD, COR), [DISPERSION] * has_disp, [FIXED] * p])
        self._kind = kind
        est = np.concatenate([np.nan_to_num(est_var), model.params_.to_numpy()])   # an undefined correlation: 0
        self.estimate = pd.Series(est, index=self.names, name="estimate")
        self._lower = np.select([kind == SD, kind == COR, kind == DISPERSION], [0.0, -1.0, 0.0], -np.inf)
        self._upper = np.where(kind == COR, 1.0, np.inf)
        psi_lo, psi_hi = np.full(len(kind), -np.inf), np.full(len(kind), np.inf)
        psi_lo[kind == SD], psi_hi[kind == SD] = _LOG_SIGMA_BOUNDS
        psi_lo[kind == COR], psi_hi[kind == COR] = -_ATANH_MAX, _ATANH_MAX
        psi_lo[kind == DISPERSION], psi_hi[kind == DISPERSION] = _LOG_THETA_BOUNDS
        self._psi_lo, self._psi_hi = psi_lo, psi_hi
        # standard errors on the psi scale (Jacobi scaling of the minimisation) and of the estimates (search)
        se_psi = np.concatenate([se_t, model.standard_errors_.to_numpy()])
        se_psi = np.where(np.isfinite(se_psi) & (se_psi > 0), se_psi, 1.0)
        self._psi_scale = 1.0 / se_psi
        nat_se = np.select([kind == SD, kind == COR, kind == DISPERSION],
                           [est * se_psi, (1 - est ** 2) * se_psi, est * se_psi], se_psi)
        fallback = np.select([kind == SD, kind == COR], [np.maximum(0.5 * est, 0.1), 0.2], 0.5 * np.abs(est) + 0.1)
        self._se = np.where(np.isfinite(nat_se) & (nat_se > 0), nat_se, fallback)
        self._psi_hat = np.clip(self._to_psi(est), psi_lo, psi_hi)
        # where a variance parameter that got stuck on its bound starts again: an SD of at least 0.2 on the
        # linear predictor's scale, a correlation within +-0.9, theta within (0.1, 1e3)
        nat_restart = np.select([kind == SD, kind == COR, kind == DISPERSION],
                                [np.maximum(est, 0.2 / np.exp(np.append(ad.shift, np.zeros(len(kind) - self.n_var)))),
                                 np.clip(est, -0.9, 0.9), np.clip(est, 0.1, 1e3)], est)
        self._psi_restart = self._to_psi(nat_restart)
        with single_threaded_blas():
            at_estimate = self._deviance_at(est)
            dev, psi = self._minimise(None, None, self._psi_hat)
        self._psi_hat = psi if dev < at_estimate else self._psi_hat
        self.base_deviance = float(min(dev, at_estimate))

    # ------------------------------------------------------------------------------------------------------------
    def _to_psi(self, values: np.ndarray) -> np.ndarray:
        kind = self._kind
        shift = np.concatenate([self._adapter.shift, np.zeros(len(kind) - self.n_var)])
        with np.errstate(divide="ignore"):
            return np.select([kind == SD, kind == COR, kind == DISPERSION],
                             [np.log(np.abs(values)) + shift, np.arctanh(np.clip(values, -1.0, 1.0)),
                              np.log(np.abs(values))], values)

    def _to_natural(self, psi: np.ndarray) -> np.ndarray:
        kind = self._kind
        shift = np.concatenate([self._adapter.shift, np.zeros(len(kind) - self.n_var)])
        return np.select([kind == SD, kind == COR, kind == DISPERSION],
                         [np.exp(psi - shift), np.tanh(psi), np.exp(psi)], psi)

    def _evaluate(self, psi: np.ndarray, k: int | None, x: float | None) -> tuple[float, np.ndarray]:
        """The deviance and its gradient in ``psi`` (0 at ``k``) with parameter ``k`` at ``x`` (natural scale)."""
        nat = self._to_natural(psi)
        free = np.ones(len(psi), dtype=bool)
        if k is not None:
            point = np.full(len(psi), x)
            psi = psi.copy()
            nat[k], psi[k], free[k] = x, self._to_psi(point)[k], False
        nv, p0 = self.n_var, self.n_var + int(self.has_dispersion)
        omega = float(np.log(nat[nv])) if self.has_dispersion else None
        dev, g_beta, g_var, g_omega = self._adapter.deviance(nat[:nv], psi[:nv], free[:nv], omega, nat[p0:])
        grad = np.concatenate([g_var, [g_omega] if self.has_dispersion else [], g_beta])
        grad[~free] = 0.0
        if not np.isfinite(dev) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros(len(psi))
        return float(dev), grad

    def deviance(self, values: Sequence[float]) -> float:
        """:math:`-2\\log L` (Laplace, or quadrature with ``n_agq > 1``) at ``values`` of :attr:`names` (SDs at
        exactly 0 included: the model without those random effects)."""
        values = np.asarray(values, dtype=float)
        if values.shape != (len(self.names),):
            raise ValueError(f"expected {len(self.names)} values ({', '.join(self.names)}), got shape {values.shape}")
        with single_threaded_blas():
            return self._deviance_at(values)

    def _deviance_at(self, values: np.ndarray) -> float:
        nv, p0 = self.n_var, self.n_var + int(self.has_dispersion)
        omega = float(np.log(values[nv])) if self.has_dispersion else None
        return float(self._adapter.deviance(values[:nv], self._to_psi(values)[:nv], np.zeros(nv, dtype=bool), omega,
                                            values[p0:])[0])

    def _minimise(self, k: int | None, x: float | None, start: np.ndarray) -> tuple[float, np.ndarray]:
        """The deviance minimised over every parameter but ``k`` (at ``x``) from ``start`` (full psi). A variance
        parameter that ends on its bound (an SD at the floor, where the deviance is flat in the log SD whether or
        not 0 is the minimum; a correlation at +-1) is started again away from it (``_psi_restart``); the lower of
        the two minima is kept."""
        dev, psi = self._descend(k, x, start)
        stuck = (self._kind != FIXED) & ((psi <= self._psi_lo + 1e-3) | (psi >= self._psi_hi - 1e-3))
        if k is not None:
            stuck[k] = False
        if stuck.any():
            again = psi.copy()
            again[stuck] = self._psi_restart[stuck]
            dev2, psi2 = self._descend(k, x, again)
            if dev2 < dev:
                dev, psi = dev2, psi2
        floor = (self._kind == SD) & (psi <= self._psi_lo + 1e-3)
        if k is not None:
            floor[k] = False
        if floor.any():                                # SDs at the floor: the deviance with them at exactly 0
            dev = min(dev, self._exact(psi, k, x, floor))
        return dev, psi

    def _exact(self, psi: np.ndarray, k: int | None, x: float | None, zero: np.ndarray) -> float:
        """The deviance at ``psi`` (``k`` at ``x``) with the SDs ``zero`` at exactly 0."""
        nat = self._to_natural(psi)
        if k is not None:
            nat[k] = x
        nat[zero] = 0.0
        return self._deviance_at(nat)

    def _descend(self, k: int | None, x: float | None, start: np.ndarray) -> tuple[float, np.ndarray]:
        """L-BFGS-B from ``start`` on the Jacobi-scaled psi (every parameter but ``k``)."""
        free = np.ones(len(start), dtype=bool)
        if k is not None:
            free[k] = False
        sc = self._psi_scale[free]
        psi = np.array(start, dtype=float)

        def f(z):
            psi[free] = z / sc
            dev, grad = self._evaluate(psi, k, x)
            return dev, grad[free] / sc

        lo, hi = self._psi_lo[free] * sc, self._psi_hi[free] * sc
        res = optimize.minimize(f, np.clip(start[free] * sc, lo, hi), jac=True, method="L-BFGS-B",
                                bounds=list(zip(lo, hi)),
                                options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-8, "maxcor": 20})
        psi[free] = res.x / sc
        return float(res.fun), psi

    def _min_deviance(self, k: int, x: float) -> float:
        """The deviance minimised with parameter ``k`` at ``x``, from the nearest point profiled on the same side
        of the estimate, or from the optimum (as lme4's ``startmethod = "prev"``: the two sides do not share their
        starts, which would carry one side's nuisance parameters into the other's basin)."""
        start = self._psi_hat.copy()
        free = np.arange(len(start)) != k
        est = float(self.estimate.iloc[k])
        same_side = [(xp, o) for xp, o in self._cache.get(k, []) if (xp - est) * (x - est) > 0
                     and abs(xp - est) <= abs(x - est) * 1.5 + 1e-12]
        if same_side and abs(x - est) > 0:
            start[free] = min(same_side, key=lambda q: abs(q[0] - x))[1]
        dev, psi = self._minimise(k, x, start)
        self._remember(k, x, psi[free])
        return dev

    def _end(self, k: int, side: int, target: float) -> float:
        if self._kind[k] != DISPERSION:
            return super()._end(k, side, target)
        # the dispersion: searched on log theta, as glmmTMB; beyond the box, 0 or infinity
        est = float(self.estimate.iloc[k])
        lo, hi = _LOG_THETA_BOUNDS
        s = find_end(lambda t: side * self._zeta(k, float(np.exp(t))) - target, np.log(est), self._se[k] / est,
                     lo, hi, side, target)
        if s == lo:
            return 0.0
        if s == hi:
            return np.inf
        return float(np.exp(s))


def parameter_names(model) -> tuple[list[str], list[str]]:
    """The variance parameters (SDs, correlations, ``dispersion``) and the fixed effects of a fitted GLMM."""
    return _ran_pars(model)[0], list(model.params_.index)


def confint(model, parm: str | Sequence[str] | None = None, level: float = 0.95,
            method: str = "profile") -> pd.DataFrame:
    """Intervals of a fitted GLMM as ``confint(fit, method = ..., oldNames = FALSE)`` of glmer (module docstring).

    Returns a DataFrame indexed by parameter with ``conf_low`` and ``conf_high``.
    """
    model._check_fitted()
    z = check_confint_args(method, level)
    names_var, names_fixed = parameter_names(model)
    chosen = select_parameters(names_var, names_fixed, parm)
    if method == "Wald":
        return wald_table(chosen, model.params_, model.standard_errors_, z)
    return GlmmProfile(model).table(chosen, level)
