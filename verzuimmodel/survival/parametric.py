r"""Parametric proportional-hazards Weibull regression.

The model for row :math:`i` with covariates :math:`x_i`:

.. math::

    h(t \mid x_i) = \lambda \rho\, t^{\rho - 1} \exp(x_i'\beta), \qquad
    H(t \mid x_i) = \lambda\, t^{\rho} \exp(x_i'\beta), \qquad S(t \mid x_i) = \exp\{-H(t \mid x_i)\}.

:math:`\exp(\beta_j)` is a hazard ratio. The shape :math:`\rho` is the duration dependence: with
:math:`\rho < 1` the hazard falls with time since the start of the episode (for the return to school:
the longer a pupil is out, the lower the chance of returning in the next week — "wacht niet te
lang"); :math:`\rho = 1` is the exponential model (constant hazard), :math:`\rho > 1` a rising hazard.

Estimation is by maximum likelihood on the parameters :math:`\theta = (\beta, \log\lambda, \log\rho)`.
With event indicator :math:`\delta_i`, exit time :math:`t_i`, entry time :math:`a_i \ge 0` (late
entry / left truncation: the row is observed only because it survived to :math:`a_i`; 0 without it)
and case weights :math:`w_i`, the log-likelihood is

.. math::

    \ell(\theta) = \sum_i w_i \Big[\delta_i \{\eta_i + \log\rho + (\rho - 1)\log t_i\}
        - e^{\eta_i} (t_i^{\rho} - a_i^{\rho})\Big], \qquad \eta_i = x_i'\beta + \log\lambda .

With :math:`Q_i = e^{\eta_i} t_i^\rho`, :math:`Q^a_i = e^{\eta_i} a_i^\rho`, :math:`z_i = \log t_i`,
:math:`z^a_i = \log a_i`, the gradient is

.. math::

    \frac{\partial \ell}{\partial \eta_i} = w_i (\delta_i - Q_i + Q^a_i), \qquad
    \frac{\partial \ell}{\partial \log\rho} = \sum_i w_i \big[\delta_i (1 + \rho z_i)
        - \rho (Q_i z_i - Q^a_i z^a_i)\big],

and the Hessian :math:`\partial^2\ell/\partial\eta_i^2 = -w_i (Q_i - Q^a_i)`,
:math:`\partial^2\ell/\partial\eta_i\partial\log\rho = -w_i \rho (Q_i z_i - Q^a_i z^a_i)`,
:math:`\partial^2\ell/\partial(\log\rho)^2 = \sum_i w_i [\delta_i \rho z_i - \rho (Q_i z_i - Q^a_i z^a_i)
- \rho^2 (Q_i z_i^2 - Q^a_i (z^a_i)^2)]`. The maximum is found with scipy's trust-region Newton
method (``trust-exact``, analytic gradient and Hessian) from the exponential fit, polished with
Newton steps. The model-based variance is the inverse observed information; with ``cluster`` it is
the sandwich :math:`I^{-1} (\sum_g U_g U_g') I^{-1}`, :math:`U_g` the sum of the weighted score
contributions of cluster :math:`g`.

R's ``survreg(Surv(time, status) ~ x, dist = "weibull")`` fits the same model as an accelerated
failure time model :math:`\log T = \mu + x'\alpha + \sigma W`; then :math:`\beta = -\alpha/\sigma`,
:math:`\log\lambda = -\mu/\sigma`, :math:`\rho = 1/\sigma`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import optimize

from ..errors import ConvergenceError, ConvergenceWarning
from ..schema import SchemaError
from ..tidy import tidy_table
from ._data import SurvData, _rows, survival_data
from .formula import dropped_note, model_design, with_n_dropped

__all__ = ["WeibullPH"]

SCALE_TERMS = ("log_lambda", "log_rho")
"""Names of the baseline parameters in ``params_``: :math:`\\log\\lambda` and :math:`\\log\\rho` (log shape)."""


@dataclass(frozen=True)
class WeibullOptions:
    """Options of :class:`WeibullPH` (checked on construction).

    Parameters
    ----------
    level : confidence level of the intervals in ``tidy()``.
    tol : convergence tolerance on the gradient (scaled by the number of rows).
    max_iter : maximum iterations of the optimiser.
    """

    level: float = 0.95
    tol: float = 1e-10
    max_iter: int = 200

    def __post_init__(self):
        if isinstance(self.level, bool) or not isinstance(self.level, (int, float)) or not 0 < self.level < 1:
            raise ValueError(f"level: got {self.level!r}; expected a number between 0 and 1")
        if not isinstance(self.tol, (int, float)) or not self.tol > 0:
            raise ValueError(f"tol: got {self.tol!r}; expected a positive number")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ValueError(f"max_iter: got {self.max_iter!r}; expected a positive integer")


class _Likelihood:
    """Weibull PH log-likelihood, gradient, Hessian and per-row scores on (beta, log_lambda, log_rho)."""

    def __init__(self, d: SurvData):
        self.Z = np.column_stack([d.X, np.ones(d.n)])     # eta = Z @ (beta, log_lambda)
        self.w = d.weights
        self.delta = d.event.astype(float)
        self.z = np.log(d.exit)
        self.trunc = np.isfinite(d.entry) & (d.entry > 0)
        self.za = np.where(self.trunc, np.log(np.where(self.trunc, d.entry, 1.0)), 0.0)
        self.wd = self.w * self.delta

    def _parts(self, theta: np.ndarray):
        eta = self.Z @ theta[:-1]
        log_rho = theta[-1]
        rho = np.exp(log_rho)
        with np.errstate(over="ignore"):
            Q = np.exp(eta + rho * self.z)
            Qa = np.where(self.trunc, np.exp(eta + rho * self.za), 0.0)
        return eta, log_rho, rho, Q, Qa

    def loglik(self, theta: np.ndarray) -> float:
        """The log-likelihood; ``-inf`` where it overflows (a trial step far out: the optimiser steps back)."""
        eta, log_rho, rho, Q, Qa = self._parts(theta)
        with np.errstate(invalid="ignore"):
            ll = float(np.sum(self.wd * (eta + log_rho + (rho - 1) * self.z)) - np.sum(self.w * (Q - Qa)))
        return ll if np.isfinite(ll) else -np.inf

    def scores(self, theta: np.ndarray) -> np.ndarray:
        """Weighted score contributions of each row (n x (p + 2))."""
        _, _, rho, Q, Qa = self._parts(theta)
        g_eta = self.w * (self.delta - Q + Qa)
        g_rho = self.w * (self.delta * (1 + rho * self.z) - rho * (Q * self.z - Qa * self.za))
        return np.column_stack([self.Z * g_eta[:, None], g_rho])

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        _, _, rho, Q, Qa = self._parts(theta)
        g_eta = self.w * (self.delta - Q + Qa)
        g_rho = np.sum(self.w * (self.delta * (1 + rho * self.z) - rho * (Q * self.z - Qa * self.za)))
        return np.concatenate([self.Z.T @ g_eta, [g_rho]])

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        _, _, rho, Q, Qa = self._parts(theta)
        k = self.Z.shape[1]
        Qz = Q * self.z - Qa * self.za
        H = np.empty((k + 1, k + 1))
        H[:k, :k] = -(self.Z.T * (self.w * (Q - Qa))) @ self.Z
        H[:k, k] = H[k, :k] = -self.Z.T @ (self.w * rho * Qz)
        H[k, k] = np.sum(self.w * (self.delta * rho * self.z - rho * Qz
                                   - rho**2 * (Q * self.z**2 - Qa * self.za**2)))
        return H


def _check_data(d: SurvData, duration: str, entry: str | None) -> None:
    bad = d.exit <= 0
    if bad.any():
        raise SchemaError("data", duration, "durations not positive (the Weibull density needs t > 0)",
                          _rows(bad), "durations > 0", n_rows=int(bad.sum()))
    if entry is not None:
        bad = d.entry < 0
        if bad.any():
            raise SchemaError("data", entry, "negative entry times", _rows(bad), "entry times >= 0",
                              n_rows=int(bad.sum()))
    if not (d.event == 1).any():
        raise ConvergenceError("no events in the data: the Weibull model needs at least one event")
    if d.X.shape[1]:
        Xc = d.X - np.average(d.X, axis=0, weights=d.weights)
        const = [c for c, s in zip(d.covariates, np.abs(Xc).max(axis=0)) if s == 0]
        if const:
            raise ValueError(f"covariate(s) {', '.join(map(repr, const))} do not vary: they are collinear with "
                             "the baseline log_lambda")
        rank = np.linalg.matrix_rank(Xc / np.sqrt((Xc**2).mean(axis=0)))
        if rank < d.X.shape[1]:
            raise ValueError(f"covariates {', '.join(d.covariates)} are collinear (rank {rank} < {d.X.shape[1]})")


class WeibullPH:
    r"""Weibull proportional-hazards regression :math:`h(t|x) = \lambda\rho t^{\rho-1}\exp(x'\beta)`.

    See the module docstring for the likelihood, its derivatives and the variance. ``shape_``
    (:math:`\rho`) is the duration dependence: :math:`\rho < 1` means the hazard (e.g. of returning
    to school) falls with the time already spent out of school.

    Parameters
    ----------
    level : confidence level of the intervals in :meth:`tidy`.
    tol : convergence tolerance on the gradient.
    max_iter : maximum optimiser iterations.

    Attributes
    ----------
    params_ : Series: the log hazard ratios of the covariates, then ``log_lambda`` and ``log_rho``.
    standard_errors_ : Series, same index (robust when ``cluster`` is given).
    variance_ : DataFrame, the covariance matrix used; ``naive_variance_`` the inverse information.
    shape_ : :math:`\rho`; ``lambda_`` : :math:`\lambda` (baseline rate at :math:`x = 0`).
    log_likelihood_ : maximised log-likelihood (density of the times, as R's ``survreg``).
    aic_, bic_ : :math:`-2\ell + 2(p + 2)` and :math:`-2\ell + (p + 2)\log n`, :math:`n` the number of rows
        (R's ``AIC``, ``BIC`` of the ``survreg`` fit: ``nobs.survreg`` counts rows, also with case weights).

    Examples
    --------
    >>> m = WeibullPH().fit(episodes, duration="days", event="returned", covariates=["age"])  # doctest: +SKIP
    >>> m.tidy()                   # hazard ratios in exp_estimate; the log_rho row gives the shape  # doctest: +SKIP
    """

    def __init__(self, level: float = 0.95, tol: float = 1e-10, max_iter: int = 200):
        self.options = WeibullOptions(level, tol, max_iter)

    def fit(self, df: pd.DataFrame, duration: str, event: str, covariates: Sequence[str] | None = None,
            entry: str | None = None, weights: str | None = None, cluster: str | None = None,
            robust: bool | None = None, *, formula: str | None = None, na_action: str = "raise") -> "WeibullPH":
        """Fit by maximum likelihood; returns ``self``.

        ``event`` is 1 for an event, 0 for censoring; durations must be positive. ``entry`` gives
        late entry (left truncation): the row counts from ``entry`` on, and the likelihood is
        conditional on survival to ``entry`` (:math:`H(\\text{entry})` is subtracted). ``weights``:
        case weights. ``cluster``: robust sandwich variance by cluster (e.g. school or pupil);
        ``robust=True`` without ``cluster`` treats each row as its own cluster. ``covariates`` (numeric
        columns) or ``formula`` (``"age + C(sex) + cluster(school)"``) and ``na_action`` (``"raise"`` or
        ``"drop"``): see :mod:`~verzuimmodel.survival.formula`.

        Degenerate data: no events raise :class:`~verzuimmodel.errors.ConvergenceError`; estimates
        that may be infinite (a variance that is not positive, reported as an infinite SE, or a large
        coefficient with a far larger SE: separation) and a fit that does not converge give a
        :class:`~verzuimmodel.errors.ConvergenceWarning`.
        """
        des = model_design(df, "WeibullPH", formula=formula, covariates=covariates, na_action=na_action,
                           specials={"cluster": cluster}, columns=(duration, event, entry, weights))
        df, covariates, cluster = des.data, des.covariates, des.specials["cluster"]
        with des.original_rows():
            d = survival_data(df, duration=duration, event=event, covariates=covariates, entry=entry,
                              weights=weights, cluster=cluster)
            _check_data(d, duration, entry)
        lik = _Likelihood(d)
        theta, converged, n_iter = self._maximise(lik, d)
        names = list(d.covariates) + list(SCALE_TERMS)
        H = lik.hessian(theta)
        try:
            var = np.linalg.inv(-H)
        except np.linalg.LinAlgError:
            raise ConvergenceError("the information matrix is singular: check the covariates") from None
        if not converged:
            warnings.warn(f"WeibullPH did not converge in {self.options.max_iter} iterations", ConvergenceWarning,
                          stacklevel=2)
        use_robust = robust if robust is not None else cluster is not None
        self.naive_variance_ = pd.DataFrame(var, index=names, columns=names)
        if use_robust:
            U = lik.scores(theta)
            if d.cluster is not None:
                U = np.stack([np.bincount(d.cluster, weights=U[:, j], minlength=len(d.cluster_labels))
                              for j in range(U.shape[1])], axis=1)
            rvar = var @ (U.T @ U) @ var
            self.variance_ = pd.DataFrame(rvar, index=names, columns=names)
        else:
            self.variance_ = self.naive_variance_
        v = np.diag(self.variance_.to_numpy())
        self.params_ = pd.Series(theta, index=names, name="coef")
        # a variance that is not positive (the information is numerically singular): unbounded, as CoxPH
        self.standard_errors_ = pd.Series(np.where(v > 0, np.sqrt(np.abs(v)), np.inf), index=names, name="se")
        infinite = [n for n, b, vi in zip(names, theta, v) if not vi > 0 or (abs(b) > 10 and vi > 100 * b * b)]
        if infinite:
            warnings.warn(f"WeibullPH: the estimate(s) of {', '.join(map(repr, infinite))} may be infinite "
                          "(separation: the events occur only at one extreme of a covariate, or too few events); "
                          "their estimates and standard errors are not reliable", ConvergenceWarning, stacklevel=2)
        self.shape_ = float(np.exp(theta[-1]))
        self.lambda_ = float(np.exp(theta[-2]))
        self.log_likelihood_ = lik.loglik(theta)
        self.aic_ = -2 * self.log_likelihood_ + 2 * len(theta)
        self.bic_ = -2 * self.log_likelihood_ + np.log(d.n) * len(theta)
        self.robust_ = use_robust
        self.converged_, self.n_iter_ = converged, n_iter
        self.n_obs_, self.n_events_ = d.n, int(d.event.sum())
        self.n_clusters_ = len(d.cluster_labels) if d.cluster is not None else None
        self.covariates_ = list(d.covariates)
        self.n_dropped_, self.design_ = des.n_dropped, des.spec
        return self

    def _maximise(self, lik: _Likelihood, d: SurvData) -> tuple[np.ndarray, bool, int]:
        """trust-exact from the exponential fit, then Newton steps until the step is negligible."""
        p = d.X.shape[1]
        exposure = np.sum(d.weights * (d.exit - np.where(lik.trunc, d.entry, 0.0)))
        theta0 = np.concatenate([np.zeros(p), [np.log(np.sum(lik.wd) / exposure)], [0.0]])
        scale = max(float(np.sum(d.weights)), 1.0)
        res = optimize.minimize(lambda t: -lik.loglik(t) / scale, theta0, jac=lambda t: -lik.gradient(t) / scale,
                                hess=lambda t: -lik.hessian(t) / scale, method="trust-exact",
                                options={"gtol": self.options.tol, "maxiter": self.options.max_iter})
        theta, n_iter = res.x, int(res.nit)
        converged = False
        for _ in range(20):        # Newton polish (quadratic convergence near the maximum)
            g, H = lik.gradient(theta), lik.hessian(theta)
            try:
                step = np.linalg.solve(-H, g)
            except np.linalg.LinAlgError:
                break
            if not np.all(np.isfinite(step)):
                break
            new = theta + step
            if not lik.loglik(new) >= lik.loglik(theta) - 1e-9 * abs(lik.loglik(theta)):
                break
            theta = new
            n_iter += 1
            if np.max(np.abs(step)) < 1e-12 * max(1.0, np.max(np.abs(theta))):
                converged = True
                break
        g = lik.gradient(theta) / scale
        converged = converged or bool(np.max(np.abs(g)) < np.sqrt(self.options.tol))
        return theta, converged and bool(np.all(np.isfinite(theta))), n_iter

    # -- results --------------------------------------------------------------------------------
    def tidy(self) -> pd.DataFrame:
        """Wald table (:func:`verzuimmodel.tidy.tidy_table`).

        Covariate rows: ``exp_estimate`` is the hazard ratio. ``log_rho`` row: ``exp_estimate`` is the
        shape :math:`\\rho` with its interval; ``log_lambda`` row: :math:`\\lambda`.
        """
        return with_n_dropped(tidy_table(self.params_, self.standard_errors_, level=self.options.level), self)

    def predict_survival(self, df: pd.DataFrame, times: Sequence[float]) -> pd.DataFrame:
        """:math:`S(t|x) = \\exp(-\\lambda t^\\rho e^{x'\\beta})` of each row of ``df`` (columns) at ``times``
        (rows), from time 0 (not conditional on an entry time)."""
        t = np.atleast_1d(np.asarray(times, dtype=float))
        if t.ndim != 1 or not np.isfinite(t).all() or (t < 0).any():
            raise ValueError("times: expected finite numbers >= 0")
        df = self.design_.new_frame(df)
        missing = [c for c in self.covariates_ if c not in df.columns]
        if missing:
            raise SchemaError("data", ", ".join(missing), "covariate column(s) not found",
                              expected="the covariates of the fit: " + ", ".join(self.covariates_))
        X = df[self.covariates_].to_numpy(dtype=float) if self.covariates_ else np.empty((len(df), 0))
        eta = X @ self.params_.to_numpy()[:-2] + self.params_["log_lambda"]
        H = np.power(t, self.shape_)[:, None] * np.exp(eta)[None, :]
        return pd.DataFrame(np.exp(-H), index=pd.Index(t, name="time"), columns=df.index)

    def __repr__(self) -> str:
        o = self.options
        head = f"WeibullPH(level={o.level})"
        if not hasattr(self, "params_"):
            return head
        return (f"{head}: n={self.n_obs_:,}, events={self.n_events_:,}, shape={self.shape_:.4f}, "
                f"loglik={self.log_likelihood_:.4f}, AIC={self.aic_:.2f}, BIC={self.bic_:.2f}{dropped_note(self)}\n"
                f"{self.tidy().to_string(index=False)}")
