r"""Poisson and negative binomial (NB2) regression with absorbed fixed effects, by IRLS.

The model, for rows :math:`i` with outcome :math:`y_i \ge 0`, offset :math:`o_i`, prior
(variance) weight :math:`w_i > 0`, covariates :math:`x_i` and levels :math:`l_f(i)` of the absorbed
factors :math:`f`:

.. math:: \log \mu_i = o_i + x_i'\beta + \sum_f \alpha_{f, l_f(i)}, \qquad
          \operatorname{Var} y_i = (\mu_i + \kappa\mu_i^2) / w_i

(:math:`\kappa = 0`: Poisson, a quasi-likelihood model when :math:`y` is not a count). The
estimates maximise :math:`\sum_i w_i \ell_i`, with :math:`\ell_i` the Poisson or NB2
log-likelihood of row :math:`i`. Iteratively reweighted least squares, Newton's method: with
working weights :math:`W_i = w_i\mu_i(1 + \kappa y_i)/(1 + \kappa\mu_i)^2`, the observed
information of :math:`\eta_i` (positive, as :math:`y_i \ge 0`; for Poisson :math:`w_i\mu_i`, also
Fisher scoring), and working response :math:`z_i = \eta_i - o_i + s_i/W_i` with the score
:math:`s_i = w_i(y_i - \mu_i)/(1 + \kappa\mu_i)`, each step is the weighted least squares fit of
:math:`z` on :math:`[X, D]`, done without :math:`D` by Frisch–Waugh–Lovell:
:math:`\hat\beta = (\tilde X'W\tilde X)^{-1}\tilde X'W\tilde z` with :math:`\tilde X = M_D X`,
:math:`\tilde z = M_D z` (:func:`~verzuimmodel.glm.absorb.demean`), and the new linear predictor
:math:`\eta - o = z - (\tilde z - \tilde X\hat\beta)` (the residual of the full fit is that of the
demeaned one). A step that raises the deviance is halved. Converged when the linear predictor
moves by less than ``tol`` (absolute, on the log scale) in a step (and, for NB2, :math:`\log\theta`
too). This is the algorithm of ``fixest::fepois`` and ``pyfixest.fepois``; with the factors
dummy-coded it gives ``statsmodels`` GLM's and R ``glm``'s estimates. (Fisher scoring, the weights
:math:`w_i\mu_i/(1 + \kappa\mu_i)` of ``glm``, converges to the same point; Newton's weights halve
the NB2 steps. The variances use the expected information, see :mod:`~verzuimmodel.glm.cluster`.)

NB2: :math:`\theta = 1/\kappa` by maximum likelihood given the means (Newton steps on
:math:`\log\theta`, as ``MASS::theta.ml``), alternating with the IRLS steps from a rough Poisson
fit on (as ``MASS::glm.nb``); the two converge to the joint maximum (their information is orthogonal:
:math:`E[\partial^2\ell/\partial\kappa\,\partial\beta] = 0` for NB2 with a log link). The
estimates are those of ``statsmodels.discrete.NegativeBinomial`` and ``MASS::glm.nb`` with the
factors dummy-coded. When the data are not overdispersed the maximum is at :math:`\kappa = 0`; the
fit then stops at :math:`\kappa = 10^{-8}` with a :class:`~verzuimmodel.errors.ConvergenceWarning`.

Rows that carry no information on :math:`\beta` are dropped first
(:func:`~verzuimmodel.glm.absorb.informative_rows`): rows alone in a level of an absorbed factor,
and rows of a level whose outcomes are all 0 (that fixed effect's estimate is :math:`-\infty`;
``fixest`` drops them too). A dense fit with the dummies gives the same :math:`\hat\beta` up to
its convergence tolerance. Not detected: separation by a covariate (e.g. a 0/1 column whose rows
with value 1 all have :math:`y = 0`); the fit then warns that it did not converge.

Memory: :math:`O(np)` (the covariates, their demeaned copy and a few vectors of length
:math:`n`), nothing of size :math:`n \times` levels; time per step :math:`O(np^2)`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special

from ..errors import ConvergenceError, ConvergenceWarning
from . import rows
from .absorb import Factors, demean, factorize, informative_rows

__all__ = ["CountFit", "poisson", "negbin"]

Family = Literal["poisson", "negbin"]
_START_TOL = 1e-2
"""NB2: the Poisson fit that gives the first kappa stops when eta moves by less than this."""
KAPPA_FLOOR = 1e-8
"""The smallest NB2 overdispersion the fit reports (the maximum is then at 0: Poisson)."""


@dataclass(frozen=True, eq=False)
class CountFit:
    r"""A fitted Poisson or NB2 regression with absorbed fixed effects.

    ``coef``: :math:`\hat\beta` (named as the columns of ``X``); ``kappa``: :math:`\hat\kappa`
    (0 for Poisson); ``kept``: which input rows the fit used (see the module docstring for those
    dropped: ``n_singleton`` alone in a level, ``n_all_zero`` in a level whose outcomes are all 0).
    The arrays ``Xd`` (:math:`\tilde X` at the estimate), ``weights`` (:math:`W` of the expected
    information, :math:`w\mu/(1 + \kappa\mu)`), ``resid``
    (working residuals :math:`(y - \mu)/\mu`), ``fe`` (each row's sum of fixed effects) and ``bread``
    (:math:`(\tilde X'W\tilde X)^{-1}`) are of the rows used; :meth:`vcov` computes the variances
    from them.
    """

    family: Family
    coef: pd.Series
    kappa: float
    loglik: float
    deviance: float
    n_obs: int
    kept: np.ndarray = field(repr=False)
    n_singleton: int
    n_all_zero: int
    factors: Factors = field(repr=False)
    n_iter: int
    converged: bool
    Xd: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    resid: np.ndarray = field(repr=False)
    mu: np.ndarray = field(repr=False)
    fe: np.ndarray = field(repr=False)
    bread: np.ndarray = field(repr=False)

    @property
    def n_params(self) -> int:
        """Coefficients of the model with the fixed effects dummy-coded: ``len(coef)`` plus the rank of
        the factors' indicators (the ``K`` of the CR1 small-sample factor)."""
        return len(self.coef) + self.factors.rank()

    def vcov(self, kind: Literal["iid", "CR0", "CR1", "CR3"] = "CR1", clusters=None) -> pd.DataFrame:
        """The covariance matrix of ``coef`` (see :func:`~verzuimmodel.glm.cluster.vcov`)."""
        from .cluster import vcov
        return vcov(self, kind, clusters)

    def fixef(self) -> list[pd.Series]:
        r"""The fixed effects :math:`\hat\alpha_f`, one Series per factor indexed by its levels.

        One factor: exact (each row's ``fe`` is its level's effect). Several: only their sums are
        identified; they are split by alternating projections (unit weights), normalised so that
        the first level of every factor after the first is 0 (valid when the levels are connected).
        """
        f = self.factors
        if len(f) == 0:
            return []
        if len(f) == 1:
            eff = np.zeros(f.n_levels[0])
            eff[f.codes[0]] = self.fe
            return [pd.Series(eff, index=f.labels[0], name=f.names[0])]
        effects = [np.zeros(k) for k in f.n_levels]
        rest = self.fe.copy()
        for _ in range(10_000):
            biggest = 0.0
            for k, c in enumerate(f.codes):
                m = np.bincount(c, weights=rest, minlength=f.n_levels[k]) / np.bincount(c, minlength=f.n_levels[k])
                effects[k] += m
                rest -= m[c]
                biggest = max(biggest, float(np.abs(m).max()))
            if biggest < 1e-13 * (1 + float(np.abs(self.fe).max())):
                break
        for k in range(1, len(f)):
            effects[0] += effects[k][0]
            effects[k] -= effects[k][0]
        return [pd.Series(e, index=lab, name=name) for e, lab, name in zip(effects, f.labels, f.names)]


def poisson(y, X, absorb=None, offset=None, weights=None, tol: float = 1e-10, maxiter: int = 100,
            demean_tol: float = 1e-13) -> CountFit:
    r"""Poisson (quasi-likelihood) regression of ``y`` on ``X`` with the factors ``absorb`` absorbed.

    Parameters
    ----------
    y : array of length n, non-negative and finite (not necessarily whole numbers)
    X : DataFrame or array (n, p)
        Covariates; no constant when a factor is absorbed (the factors hold it), a constant column
        otherwise. Columns constant within the levels of the factors, or collinear, raise
        ``ValueError``.
    absorb : DataFrame, dict of arrays or sequence of arrays, optional
        Factors whose fixed effects are absorbed (school, year, ...).
    offset : array, optional
        Added to the linear predictor (e.g. log days).
    weights : array, optional
        Prior (variance) weights, positive: the log-likelihood is :math:`\sum_i w_i\ell_i`.
    tol, maxiter :
        Converged when the linear predictor moves by less than ``tol`` in a step.
    demean_tol :
        Tolerance of the alternating projections (several factors).
    """
    return _fit("poisson", y, X, absorb, offset, weights, None, tol, maxiter, demean_tol)


def negbin(y, X, absorb=None, offset=None, weights=None, kappa: float | None = None, tol: float = 1e-10,
           maxiter: int = 200, demean_tol: float = 1e-13) -> CountFit:
    r"""NB2 regression (:math:`\operatorname{Var} y = \mu + \kappa\mu^2`) with absorbed factors;
    :math:`\kappa` by maximum likelihood, or fixed at ``kappa``. Arguments as :func:`poisson`."""
    if kappa is not None and not (np.isfinite(kappa) and kappa > 0):
        raise ValueError(f"negbin: kappa must be positive and finite, got {kappa!r}")
    return _fit("negbin", y, X, absorb, offset, weights, kappa, tol, maxiter, demean_tol)


# -- input ---------------------------------------------------------------------------------------

def _vector(name: str, fn: str, values, n: int | None, positive: bool = False, nonneg: bool = False) -> np.ndarray:
    a = np.asarray(values, dtype=float) if not isinstance(values, pd.Series) else values.to_numpy(dtype=float)
    if a.ndim != 1 or (n is not None and len(a) != n):
        raise ValueError(f"{fn}: {name} has shape {a.shape}; expected one value per row ({n:,})" if n is not None
                         else f"{fn}: {name} must be one-dimensional, got shape {a.shape}")
    bad = ~np.isfinite(a) | ((a <= 0) if positive else (a < 0) if nonneg else False)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        need = "positive and finite" if positive else "non-negative and finite" if nonneg else "finite"
        raise ValueError(f"{fn}: {name} is {float(a[row])!r} at row {row}; expected {need} values")
    return a


def _design(X, n: int, fn: str) -> tuple[np.ndarray, list[str]]:
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        try:
            M = X.to_numpy(dtype=float)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{fn}: X must hold numbers: {e}") from None
    else:
        M = np.asarray(X, dtype=float)
        if M.ndim == 1:
            M = M[:, None]
        names = [f"x{j + 1}" for j in range(M.shape[1] if M.ndim == 2 else 0)]
    if M.ndim != 2 or M.shape[0] != n or M.shape[1] == 0:
        raise ValueError(f"{fn}: X has shape {M.shape}; expected {n:,} rows and at least one column")
    bad = ~np.isfinite(M)
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        raise ValueError(f"{fn}: X column '{names[col]}' is {float(M[row, col])!r} at row {row}; expected finite "
                         "values")
    return np.ascontiguousarray(M), names


# -- the fit -------------------------------------------------------------------------------------

def _fit(family: Family, y, X, absorb, offset, weights, kappa_fixed, tol, maxiter, demean_tol) -> CountFit:
    fn = family
    y = _vector("y", fn, y, None, nonneg=True)
    n = len(y)
    X, names = _design(X, n, fn)
    off = np.zeros(n) if offset is None else _vector("offset", fn, offset, n)
    w = np.ones(n) if weights is None else _vector("weights", fn, weights, n, positive=True)
    factors = factorize(absorb, n, fn)
    if not (y > 0).any():
        raise ValueError(f"{fn}: y is 0 in every one of the {n:,} rows: no rate to model")
    kept, n_single, n_zero = informative_rows(factors, y)
    if not kept.any():
        raise ValueError(f"{fn}: no row is left after dropping {n_single:,} rows alone in a level and {n_zero:,} "
                         "rows of levels whose outcomes are all 0")
    if not kept.all():
        y, X, off, w = y[kept], X[kept], off[kept], w[kept]
        factors = factors.subset(kept)
    _check_columns(fn, X, names, factors, w, demean_tol)
    est = _Irls(family, y, X, factors, off, w, demean_tol)
    if family == "negbin" and kappa_fixed is None:
        est.run(0.0, _START_TOL, maxiter, fn)
        theta = est.theta_ml(1.0 / _moment_kappa(y, est.mu, w))
        n_iter, converged = est.run(1.0 / theta, tol, maxiter, fn, estimate_theta=True)
    else:
        n_iter, converged = est.run(0.0 if family == "poisson" else kappa_fixed, tol, maxiter, fn)
    if est.at_floor:
        warnings.warn(f"{fn}: no overdispersion: the maximum likelihood kappa is 0 (a Poisson model); kappa is set "
                      f"to {KAPPA_FLOOR:g}", ConvergenceWarning, stacklevel=3)
    if not converged:
        warnings.warn(f"{fn}: IRLS stopped after {maxiter} iterations without converging (the linear predictor "
                      f"still moved by more than {tol:g}); a coefficient may be running off to infinity",
                      ConvergenceWarning, stacklevel=3)
    return est.result(names, kept, n_single, n_zero, n_iter, converged)


def _check_columns(fn: str, X: np.ndarray, names: list[str], factors: Factors, w: np.ndarray, tol: float) -> None:
    """``ValueError`` naming the columns of ``X`` that the absorbed factors or the other columns explain."""
    Xd = demean(X, w, factors, tol) if len(factors) else X
    norm0 = np.sqrt(np.einsum("ij,ij->j", X, X))
    norm1 = np.sqrt(np.einsum("ij,ij->j", Xd, Xd))
    flat = norm1 <= 1e-9 * np.maximum(norm0, 1e-300)
    if flat.any():
        cols = ", ".join(f"'{names[j]}'" for j in np.flatnonzero(flat))
        what = (f"constant within the levels of {', '.join(factors.names)} (absorbed)" if len(factors)
                else "zero in every row")
        many = int(flat.sum()) > 1
        raise ValueError(f"{fn}: X column{'s' if many else ''} {cols} {'are' if many else 'is'} {what}: "
                         f"{'their coefficients are' if many else 'its coefficient is'} not identified")
    G = Xd.T @ Xd
    d = 1 / np.sqrt(np.diag(G))
    vals, vecs = np.linalg.eigh(G * d[:, None] * d[None, :])
    if vals[0] <= 1e-10 * vals[-1]:
        v = np.abs(vecs[:, 0])
        cols = ", ".join(f"'{names[j]}'" for j in np.flatnonzero(v > 0.1 * v.max()))
        extra = f" and the levels of {', '.join(factors.names)}" if len(factors) else ""
        raise ValueError(f"{fn}: X columns {cols} are collinear (with each other{extra}): their coefficients are not "
                         "identified")


def _moment_kappa(y, mu, w) -> float:
    """A start for kappa: the method of moments, Var y = mu + kappa mu^2 (at least 0.01)."""
    return max(float(np.sum(w * ((y - mu) ** 2 - y)) / np.sum(w * mu ** 2)), 0.01)


class _Irls:
    """The state of one fit: data of the rows used, the linear predictor (offset included), mu, kappa
    and the deviance there."""

    def __init__(self, family, y, X, factors, off, w, demean_tol):
        self.family, self.y, self.X, self.factors, self.off, self.w = family, y, X, factors, off, w
        self.demean_tol = demean_tol
        n, p = X.shape
        self.Z = np.empty((n, p + 1))                   # [X, z], demeaned together each step
        self.Z[:, :p] = X
        self.Zd, self.ZW, self.W = np.empty_like(self.Z), np.empty_like(self.Z), np.empty(n)
        self.mu = (y + np.average(y, weights=w)) / 2    # glm's start (as fixest)
        self.eta = np.log(self.mu)
        self.beta = np.zeros(p)
        self.kappa = 0.0
        self.dev = np.inf                               # the start is not a point of the model: not compared
        self.at_floor = False
        self._levels = None
        self.ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)

    @property
    def levels(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct values of y and the sums of w over their rows (NB2 sums over y use them)."""
        if self._levels is None:
            values, inverse = np.unique(self.y, return_inverse=True)
            self._levels = (values, np.bincount(inverse, weights=self.w))
        return self._levels

    def loglik(self) -> float:
        y, w, mu = self.y, self.w, self.mu
        if self.kappa == 0:
            return float(np.sum(w * (y * self.eta - mu - special.gammaln(y + 1))))
        t = 1 / self.kappa
        yl, wl = self.levels
        lg = np.sum(wl * (special.gammaln(yl + t) - special.gammaln(yl + 1)))
        return float(lg - w.sum() * special.gammaln(t)
                     + np.sum(w * (t * np.log(t / (t + mu)) + y * np.log(mu / (t + mu)))))

    def set_kappa(self, kappa: float) -> None:
        self.kappa = kappa
        if np.isfinite(self.dev):
            self.dev = rows.deviance(self.eta, self.mu, self.y, self.w, kappa, self.ylogy)

    def step(self, fn: str) -> float:
        """One Newton step at ``self.kappa`` (halved while it raises the deviance); the largest change of eta."""
        p, W = self.X.shape[1], self.W
        rows.working(self.eta, self.off, self.y, self.mu, self.w, self.kappa, self.Z, p, W)
        Zd = demean(self.Z, W, self.factors, self.demean_tol, out=self.Zd)
        np.multiply(Zd, np.sqrt(W)[:, None], out=self.ZW)
        C = self.ZW.T @ self.ZW                         # [X z]'W[X z], demeaned
        try:
            beta = np.linalg.solve(C[:p, :p], C[:p, p])
        except np.linalg.LinAlgError:
            raise ConvergenceError(f"{fn}: the weighted cross-product of the covariates is singular during IRLS") from None
        eta = self.off + self.Z[:, p] - Zd @ np.append(-beta, 1.0)  # o + z - (z~ - X~ beta)
        mu = np.empty_like(eta)
        old = self.dev
        for _ in range(40):
            dev, change, ok = rows.advance(eta, self.eta, self.y, self.w, self.kappa, self.ylogy, mu)
            if ok and np.isfinite(dev) and (dev <= old + 1e-9 * (abs(old) + 1) or not np.isfinite(old)):
                break
            eta = (eta + self.eta) / 2                  # step halving
            beta = (beta + self.beta) / 2
        else:
            raise ConvergenceError(f"{fn}: IRLS step halving found no step that lowers the deviance")
        self.eta, self.mu, self.beta, self.dev = eta, mu, beta, dev
        return change

    def theta_ml(self, theta: float) -> float:
        """theta = 1/kappa maximising the NB2 likelihood given mu: Newton steps on log theta."""
        yl, wl = self.levels
        sw = self.w.sum()
        phi = np.log(theta)
        for _ in range(100):
            t = np.exp(phi)
            s_mu, h_mu = rows.theta_sums(self.y, self.mu, self.w, t)
            s = np.sum(wl * special.digamma(yl + t)) - sw * special.digamma(t) + s_mu
            h = np.sum(wl * special.polygamma(1, yl + t)) - sw * special.polygamma(1, t) + h_mu
            d1, d2 = t * s, t * s + t * t * h           # derivatives in log theta
            delta = -d1 / d2 if d2 < 0 else np.sign(d1)
            delta = float(np.clip(delta, -2.0, 2.0))
            phi += delta
            if abs(delta) < 1e-12 or phi > -np.log(KAPPA_FLOOR):
                break
        if phi > -np.log(KAPPA_FLOOR):             # the maximum is at kappa = 0
            self.at_floor = True
            return 1 / KAPPA_FLOOR
        self.at_floor = False
        return float(np.exp(phi))

    def run(self, kappa: float, tol: float, maxiter: int, fn: str, estimate_theta: bool = False) -> tuple[int, bool]:
        """Newton steps (alternating with theta given mu when ``estimate_theta``) until converged."""
        self.set_kappa(kappa)
        for it in range(1, maxiter + 1):
            change = self.step(fn)
            theta_change = 0.0
            if estimate_theta:
                theta = self.theta_ml(1 / self.kappa)
                theta_change = abs(np.log(theta * self.kappa))
                self.set_kappa(1 / theta)
            if change < tol and theta_change < tol:
                return it, True
        return maxiter, False

    def result(self, names, kept, n_single, n_zero, n_iter, converged) -> CountFit:
        y, mu, kappa = self.y, self.mu, self.kappa
        W = self.w * mu / (1 + kappa * mu)
        self.Zd = self.ZW = self.Z = None               # free the working copies
        Xd = demean(self.X, W, self.factors, self.demean_tol)
        Xw = Xd * np.sqrt(W)[:, None]
        G = Xw.T @ Xw
        del Xw
        try:
            bread = np.linalg.inv(G)
        except np.linalg.LinAlgError:
            raise ConvergenceError(f"{self.family}: the information matrix of the coefficients is singular") from None
        fe = self.eta - self.off - self.X @ self.beta
        return CountFit(family=self.family, coef=pd.Series(self.beta, index=names), kappa=kappa,
                        loglik=self.loglik(), deviance=self.dev, n_obs=len(y), kept=kept,
                        n_singleton=n_single, n_all_zero=n_zero, factors=self.factors, n_iter=n_iter,
                        converged=converged, Xd=Xd, weights=W, resid=(y - mu) / mu, mu=mu, fe=fe, bread=bread)
