r"""Poisson and negative binomial (NB2) mixed models with random intercepts, fitted by maximum likelihood (glmmTMB).

Model
-----
For observation :math:`i` (a pupil-year) in group :math:`g_k(i)` of each grouping factor
:math:`k = 1, \ldots, K` (one factor such as the school, two crossed ones such as PO school and VO
school, or more, e.g. pupil, PO school and VO school with pupil-years nested in pupils),
with count :math:`y_i` (e.g. yearly hours of unexcused absence), covariates :math:`x_i` and
offset :math:`o_i` (the log exposure, e.g. log enrolled days),

.. math:: \log \mu_i = x_i'\beta + \sum_{k=1}^{K} u_{k, g_k(i)} + o_i, \qquad
          u_{k,g} \sim N(0, \sigma_k^2) \text{ independent},

.. math:: y_i \mid u \sim \text{Poisson}(\mu_i) \quad\text{or}\quad
          y_i \mid u \sim \text{NB2}(\mu_i, \theta): \;
          \Pr(y) = \frac{\Gamma(y + \theta)}{\Gamma(\theta)\, y!}
          \Big(\frac{\theta}{\theta + \mu}\Big)^{\theta} \Big(\frac{\mu}{\theta + \mu}\Big)^{y},
          \quad \operatorname{Var}(y \mid u) = \mu + \mu^2/\theta.

:math:`e^{\beta}` are rate ratios *conditional* on the random effects (the school). Small
:math:`\theta` means strong overdispersion (``dispersion_`` is :math:`\theta`, as ``sigma()`` of a
``glmmTMB(family = nbinom2)`` fit); :math:`\theta \to \infty` is the Poisson model.

Laplace approximation (as glmmTMB / TMB)
----------------------------------------
With :math:`\ell_i(\eta_i)` the conditional log-likelihood of row :math:`i`, :math:`u` all random
effects (:math:`q` of them), :math:`Z` their indicator matrix and
:math:`P = \operatorname{diag}(\sigma_k^{-2})` their prior precision, the joint negative log density is

.. math:: f(u) = -\sum_i \ell_i(\eta_i) + \tfrac12 u'Pu + \sum_k G_k \log\sigma_k + \tfrac q2 \log 2\pi,

and the marginal log-likelihood is approximated at the conditional mode :math:`\hat u = \arg\min f`:

.. math:: \log L(\beta, \sigma, \theta) \approx \sum_i \ell_i(\hat\eta_i) - \tfrac12 \hat u'P\hat u
          - \sum_k G_k \log\sigma_k - \tfrac12 \log|H|, \qquad H = Z'WZ + P,

with :math:`W = \operatorname{diag}(w_i)`, :math:`w_i = -\ell_i''(\hat\eta_i)` the *observed* curvature
(Poisson :math:`\mu_i`; NB2 :math:`\theta\mu_i(\theta + y_i)/(\theta+\mu_i)^2`). :math:`\hat u` comes
from an inner Newton iteration with step halving (:math:`f` is strictly convex in :math:`u`), warm-started
from the previous mode. The outer problem maximises :math:`\log L` over
:math:`\phi = (\beta, \log\sigma_k, \log\theta)`, as glmmTMB does (:math:`\beta` is not integrated out).

Structure of :math:`H`. With one factor :math:`H` is diagonal. With two or more factors, the one with
most levels (:math:`a`: the pupil, or the PO school) is eliminated and the others are stacked into one
block :math:`B`:

.. math:: H = \begin{pmatrix} D_a & C \\ C' & H_B \end{pmatrix}, \qquad
          S = H_B - C' D_a^{-1} C,

:math:`D_a` diagonal, :math:`C` the :math:`W`-weighted cross-tabulation of :math:`a` with the factors of
:math:`B` (sparse: one entry per pair that occurs), :math:`H_B` diagonal per factor plus the cross-tabulations
between the factors of :math:`B` (e.g. PO x VO school), and :math:`S` the dense Schur complement (its size is
the number of levels of :math:`B`, at most ``MAX_DENSE_LEVELS``). :math:`\log|H| = \sum\log D_a + \log|S|`;
systems are solved by block elimination, and the entries of :math:`H^{-1}` the gradient needs (its diagonal
and the pairs that occur) follow from :math:`S^{-1}` (:math:`(H^{-1})_{BB} = S^{-1}`,
:math:`(H^{-1})_{aB} = -D_a^{-1} C S^{-1}`, :math:`(H^{-1})_{aa} = D_a^{-1} + D_a^{-1} C S^{-1} C' D_a^{-1}`).
Everything is sums over rows (``bincount``); no loop over rows or groups.
(The formula, grouping codes and input checks are :func:`~verzuimmodel.mixed._design.model_frame`'s; the
factorisation is this module's own because the gradient needs these entries of :math:`H^{-1}`, which
:class:`~verzuimmodel.mixed._design.InterceptSystem`, lme4's joint penalised least squares, does not give.)

Exact gradient. With :math:`h_i = z_i' H^{-1} z_i`, :math:`r_i = \tfrac12 h_i\, \partial w_i/\partial\eta_i`,
:math:`s = H^{-1} Z' r` and :math:`a_i = \ell_i'(\hat\eta_i)`, the implicit function theorem (the mode
moves with :math:`\phi`: :math:`d\hat u/d\phi = -H^{-1}\partial^2 f/\partial u\,\partial\phi`) gives, for
:math:`F = -\log L`,

.. math:: \frac{\partial F}{\partial\beta} = X'(r - a - W Z s), \qquad
          \frac{\partial F}{\partial \log\sigma_k} = G_k - \frac{\|\hat u_k\|^2 + \operatorname{tr}_k H^{-1}
          - 2 s_k'\hat u_k}{\sigma_k^2},

.. math:: \frac{\partial F}{\partial\log\theta} = -\sum_i \frac{\partial\ell_i}{\partial\log\theta}
          + \tfrac12 \sum_i h_i \frac{\partial w_i}{\partial\log\theta}
          + \sum_i (Zs)_i \frac{\partial a_i}{\partial\log\theta}

(the structure TMB exploits; Kristensen et al. 2016). The outer optimiser is L-BFGS-B on Jacobi-scaled
parameters from Poisson/NB GLM starting values, polished by Newton steps with the Hessian from central
differences of this gradient (as TMB's ``sdreport`` / ``optimHess``). That Hessian is the observed
information of the Laplace likelihood; ``standard_errors_`` are the square roots of the diagonal of the
fixed-effects block of its inverse (``vcov()`` of glmmTMB).

Adaptive Gauss–Hermite quadrature (one grouping factor)
-------------------------------------------------------
With one factor the integral factorises over groups :math:`j`; with
:math:`s_j = H_{jj}^{-1/2}` and the :math:`Q` Gauss–Hermite nodes :math:`z_m` and weights
:math:`\omega_m` of the standard normal (``n_agq=Q``),

.. math:: \log L_j \approx \log s_j + \tfrac12\log 2\pi + \log \sum_{m=1}^{Q} \omega_m\,
          e^{z_m^2/2}\, e^{g_j(\hat u_j + s_j z_m)}, \qquad
          g_j(u) = \sum_{i \in j}\ell_i(\eta_i^0 + u) + \log\varphi_{\sigma}(u),

as ``lme4::glmer(nAGQ = Q)``; :math:`Q = 1` is the Laplace approximation. Its gradient is exact too
(differentiating through :math:`\hat u_j` and :math:`s_j`). With small groups (a few rows, low
counts) the Laplace approximation underestimates the variance; quadrature reduces that error.

Boundaries and warnings
-----------------------
A variance whose estimate falls below :math:`10^{-6}` is checked against the fit without that factor;
when that fit is as good, the variance is on its boundary: it is reported as exactly 0, the factor
is dropped from the final fit (its ``ranef_`` are 0) and a
:class:`~verzuimmodel.errors.ConvergenceWarning` names it. A dispersion :math:`\theta` above
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

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import linalg, optimize, sparse, special

from ..errors import ConvergenceError, ConvergenceWarning
from ..schema import SchemaError
from ..tidy import tidy_table
from ._design import ModelFrame, model_frame, new_design, new_group_codes

__all__ = ["PoissonMixed", "NegativeBinomialMixed"]

BOUNDARY_VARIANCE = 1e-6       # a variance below this is tested against the fit without its factor
THETA_MAX = 1e6                # a dispersion above this is reported as "no overdispersion"
_LOG_SIGMA_BOUNDS = (np.log(1e-5), np.log(1e2))
_LOG_THETA_BOUNDS = (np.log(1e-4), np.log(1e8))
_ETA_MAX = 700.0
MAX_DENSE_LEVELS = 8000     # levels of all grouping factors but the largest (dense Schur complement)


# ----------------------------------------------------------------------------------------------------------------
# families: per-row log-likelihood and its derivatives in eta = log mu (and in omega = log theta)


class _Poisson:
    name = "poisson"
    has_dispersion = False

    def __init__(self, y: np.ndarray):
        self.y = y
        self.lgy1 = special.gammaln(y + 1.0)

    def prepare(self, omega: float | None) -> dict:
        return {}

    def core(self, eta: np.ndarray, prep: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-row log-likelihood, its first derivative and minus its second derivative in eta."""
        mu = np.exp(np.minimum(eta, _ETA_MAX))
        return self.y * eta - mu - self.lgy1, self.y - mu, mu

    def loglik(self, eta: np.ndarray, prep: dict) -> tuple[np.ndarray, np.ndarray, None]:
        """Per-row log-likelihood, its derivative in eta and in log theta (None for Poisson)."""
        ll, a, _ = self.core(eta, prep)
        return ll, a, None

    def all(self, eta: np.ndarray, prep: dict) -> dict:
        """Everything the gradient needs at the mode: ``ll, a, w, w1`` (+ ``l_om, a_om, w_om`` for NB)."""
        ll, a, mu = self.core(eta, prep)
        return {"ll": ll, "a": a, "w": mu, "w1": mu}


class _NB2:
    name = "nbinom2"
    has_dispersion = True

    def __init__(self, y: np.ndarray):
        self.y = y
        # the gamma functions depend on y only through its (few) distinct values
        self.y_unique, self.y_index = np.unique(y, return_inverse=True)
        self.lgy1 = special.gammaln(self.y_unique + 1.0)

    def prepare(self, omega: float) -> dict:
        theta = float(np.exp(omega))
        yu = self.y_unique
        const = special.gammaln(yu + theta) - special.gammaln(theta) - self.lgy1
        return {"omega": omega, "theta": theta, "const": const[self.y_index]}

    def _digamma(self, prep):
        if "dig" not in prep:
            theta = prep["theta"]
            prep["dig"] = (special.digamma(self.y_unique + theta) - special.digamma(theta))[self.y_index]
        return prep["dig"]

    @staticmethod
    def _pq(eta, prep):
        """p = theta/(theta+mu), q = mu/(theta+mu) and their logs, without overflow."""
        d = np.clip(eta - prep["omega"], -_ETA_MAX, _ETA_MAX)     # log(mu / theta)
        ed = np.exp(-d)
        opd = 1.0 + ed
        q = 1.0 / opd
        logq = -np.log(opd)
        return ed * q, q, logq - d, logq

    def core(self, eta, prep):
        y, theta = self.y, prep["theta"]
        p, q, logp, logq = self._pq(eta, prep)
        ll = prep["const"] + theta * logp + y * logq
        a = y * p - theta * q                                   # (y - mu) p, as mu p = theta q
        w = (theta + y) * p * q
        return ll, a, w

    def loglik(self, eta, prep):
        y, theta = self.y, prep["theta"]
        p, q, logp, logq = self._pq(eta, prep)
        ll = prep["const"] + theta * logp + y * logq
        a = y * p - theta * q
        l_om = theta * (self._digamma(prep) + logp) - a          # d loglik / d log theta
        return ll, a, l_om

    def all(self, eta, prep):
        y, theta = self.y, prep["theta"]
        p, q, logp, logq = self._pq(eta, prep)
        pq = p * q
        a = y * p - theta * q
        return {"ll": prep["const"] + theta * logp + y * logq, "a": a, "w": (theta + y) * pq,
                "w1": (theta + y) * pq * (p - q),                    # dw / deta
                "l_om": theta * (self._digamma(prep) + logp) - a,   # d loglik / d log theta
                "a_om": y * pq - theta * q * q,                     # da / d log theta = (y - mu) p q
                "w_om": pq * (2 * theta * q + y * (q - p))}         # dw / d log theta


# ----------------------------------------------------------------------------------------------------------------
# the random-effects structure: Z u, Z'v, and factorisations of H = Z'WZ + P


class _Factor:
    """A factorisation of :math:`H = Z'WZ + P` (see the module docstring)."""

    logdet: float

    def solve(self, r: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def diag_inv(self) -> np.ndarray:
        """Diagonal of :math:`H^{-1}` (length q)."""
        raise NotImplementedError

    def leverage(self) -> np.ndarray:
        r""":math:`h_i = z_i'H^{-1}z_i` for every row."""
        raise NotImplementedError


class _Groups:
    """Indicator structure of the grouping factors; ``u`` is stored factor after factor.

    With two or more factors the one with most levels (``a``, e.g. pupil or PO school) is eliminated
    and the others are stacked into one block ``B`` of ``mb`` levels (see the module docstring).
    """

    def __init__(self, codes: Sequence[np.ndarray], sizes: Sequence[int], n: int):
        self.codes = [np.asarray(c, dtype=np.int64) for c in codes]
        self.sizes = [int(s) for s in sizes]
        self.K = len(self.codes)
        self.n = n
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.q = int(self.starts[-1])
        self.Zt = [sparse.csr_matrix((np.ones(n), (c, np.arange(n))), shape=(s, n))
                   for c, s in zip(self.codes, self.sizes)]
        if self.K >= 2:
            self._crossed_structure()

    def _crossed_structure(self):
        ia = int(np.argmax(self.sizes))                 # eliminated (diagonal) factor: the largest one
        rest = [k for k in range(self.K) if k != ia]
        b_starts = np.concatenate([[0], np.cumsum([self.sizes[k] for k in rest])])
        mb = int(b_starts[-1])
        if mb > MAX_DENSE_LEVELS:
            raise ValueError(f"the grouping factors other than the largest have {mb:,} levels together; at most "
                             f"{MAX_DENSE_LEVELS:,} are supported (their block is factorised densely)")
        self.mb = mb
        self.pos_a = np.arange(self.starts[ia], self.starts[ia + 1])
        self.pos_b = np.concatenate([np.arange(self.starts[k], self.starts[k + 1]) for k in rest])
        self.code_a = ga = self.codes[ia]
        self.code_b = [b_starts[j] + self.codes[k] for j, k in enumerate(rest)]   # row -> B level, per factor
        key, pair = np.unique(np.concatenate([ga * mb + cb for cb in self.code_b]), return_inverse=True)
        self.pair = pair.reshape(len(rest), self.n)     # row -> (a, B) pair, per factor of B
        self.pa, self.pb = key // mb, key % mb           # pairs sorted by (a, B)
        # all (p, r) pairs of pairs in the same a-level (for the selected inverse and C'D^{-1}C)
        cnt = np.bincount(self.pa, minlength=self.sizes[ia])
        first = np.concatenate([[0], np.cumsum(cnt)])[:-1]
        reps = cnt[self.pa]
        P = np.repeat(np.arange(len(key)), reps)
        local = np.arange(len(P)) - np.repeat(np.cumsum(reps) - reps, reps)
        self.jP, self.jQ = P, first[self.pa[P]] + local
        # B x B cells shared by two factors of B (three or more factors: e.g. PO x VO school beside pupil)
        self.bb = [self.code_b[j] * mb + self.code_b[k] for j in range(len(rest)) for k in range(j + 1, len(rest))]

    def block(self, v: np.ndarray, k: int) -> np.ndarray:
        return v[self.starts[k]:self.starts[k + 1]]

    def Zu(self, u: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n)
        for k, c in enumerate(self.codes):
            out += self.block(u, k)[c]
        return out

    def Ztv(self, v: np.ndarray) -> np.ndarray:
        if self.K == 0:
            return np.zeros(0)
        return np.concatenate([np.bincount(c, weights=v, minlength=s) for c, s in zip(self.codes, self.sizes)])

    def ZtM(self, M: np.ndarray) -> np.ndarray:
        """:math:`Z'M` for an (n, p) matrix (q, p)."""
        if self.K == 0:
            return np.zeros((0, M.shape[1]))
        return np.vstack([np.asarray(Zt @ M) for Zt in self.Zt])

    def factorize(self, w: np.ndarray, prec: np.ndarray) -> _Factor:
        """Factorise :math:`H = Z'\\operatorname{diag}(w)Z + \\operatorname{diag}(prec)`."""
        d = self.Ztv(w) + prec
        if self.K <= 1:
            return _DiagonalFactor(d, self.codes[0] if self.K else None)
        return _CrossedFactor(self, w, d)


class _DiagonalFactor(_Factor):
    def __init__(self, d: np.ndarray, codes: np.ndarray | None):
        self.d, self.codes = d, codes
        self.logdet = float(np.log(d).sum())

    def solve(self, r):
        return r / self.d

    def diag_inv(self):
        return 1.0 / self.d

    def leverage(self):
        return (1.0 / self.d)[self.codes] if self.codes is not None else np.zeros(0)


class _CrossedFactor(_Factor):
    def __init__(self, g: _Groups, w: np.ndarray, d: np.ndarray):
        self.g = g
        mb = g.mb
        self.da, self.db = d[g.pos_a], d[g.pos_b]
        self.C = np.bincount(g.pair.ravel(), weights=np.tile(w, len(g.pair)), minlength=len(g.pa))
        C, pa, pb, P, Q = self.C, g.pa, g.pb, g.jP, g.jQ
        S = np.diag(self.db) - np.bincount(pb[P] * mb + pb[Q], weights=C[P] * C[Q] / self.da[pa[P]],
                                           minlength=mb * mb).reshape(mb, mb)
        for cells in g.bb:
            M = np.bincount(cells, weights=w, minlength=mb * mb).reshape(mb, mb)
            S += M + M.T
        self.cS = linalg.cho_factor(S, lower=True, check_finite=False)
        self.logdet = float(np.log(self.da).sum() + 2.0 * np.log(np.diag(self.cS[0])).sum())
        self._sel = None

    def _join(self, xa, xb):
        out = np.empty(self.g.q)
        out[self.g.pos_a], out[self.g.pos_b] = xa, xb
        return out

    def solve(self, r):
        g = self.g
        ra, rb = r[g.pos_a], r[g.pos_b]
        ta = ra / self.da
        t = rb - np.bincount(g.pb, weights=self.C * ta[g.pa], minlength=len(rb))
        xb = linalg.cho_solve(self.cS, t, check_finite=False)
        xa = (ra - np.bincount(g.pa, weights=self.C * xb[g.pb], minlength=len(ra))) / self.da
        return self._join(xa, xb)

    def _selected(self):
        """Diagonal of H^{-1} on the a block, S^{-1} (the B block of H^{-1}) and the (a, B) entries at the
        pairs that occur."""
        if self._sel is None:
            g = self.g
            Sinv = linalg.cho_solve(self.cS, np.eye(len(self.db)), check_finite=False)
            P, Q, pa, pb = g.jP, g.jQ, g.pa, g.pb
            G = np.bincount(P, weights=self.C[Q] * Sinv[pb[Q], pb[P]], minlength=len(pa))   # (C S^-1) at pairs
            diag_a = 1.0 / self.da + np.bincount(pa, weights=self.C * G, minlength=len(self.da)) / self.da ** 2
            off = -G / self.da[pa]
            self._sel = (diag_a, Sinv, off)
        return self._sel

    def diag_inv(self):
        diag_a, Sinv, _ = self._selected()
        return self._join(diag_a, np.diag(Sinv).copy())

    def leverage(self):
        g = self.g
        diag_a, Sinv, off = self._selected()
        h = diag_a[g.code_a]
        for cb, pair in zip(g.code_b, g.pair):
            h += Sinv[cb, cb] + 2.0 * off[pair]
        for cells in g.bb:
            h += 2.0 * Sinv.ravel()[cells]
        return h


# ----------------------------------------------------------------------------------------------------------------
# the objective: minus the (Laplace or AGQ) log-likelihood and its gradient in phi = (beta, log sigma, log theta)


@dataclass
class _State:
    """Everything at the conditional mode for one phi."""

    phi: np.ndarray
    loglik: float
    grad: np.ndarray             # gradient of minus the log-likelihood
    u: np.ndarray
    inner_converged: bool


class _Objective:
    def __init__(self, y, X, offset, groups: _Groups, family, n_agq: int = 1, inner_tol: float = 1e-10,
                 inner_max_iter: int = 100):
        self.y, self.X, self.offset, self.groups, self.family = y, X, offset, groups, family
        self.n, self.p = X.shape
        self.K = groups.K
        self.m = self.p + self.K + int(family.has_dispersion)
        self.n_agq = n_agq
        self.inner_tol, self.inner_max_iter = inner_tol, inner_max_iter
        self.u = np.zeros(groups.q)
        if n_agq > 1:
            if self.K != 1:
                raise ValueError("adaptive Gauss-Hermite quadrature (n_agq > 1) needs exactly one grouping factor")
            z, wts = np.polynomial.hermite_e.hermegauss(n_agq)
            self.nodes = z
            self.log_node_weights = np.log(wts / np.sqrt(2 * np.pi)) + z ** 2 / 2

    def unpack(self, phi):
        p, K = self.p, self.K
        beta, tau = phi[:p], phi[p:p + K]
        omega = float(phi[p + K]) if self.family.has_dispersion else None
        return beta, tau, omega

    def prec_vector(self, tau):
        return np.repeat(np.exp(-2.0 * tau), self.groups.sizes)

    # -- inner problem ---------------------------------------------------------------------------------------------
    def mode(self, eta0, prec, prep):
        """Conditional mode of u (Newton with step halving); returns (u, eta, ll, a, w, converged)."""
        g, fam = self.groups, self.family
        u = self.u.copy()
        if g.q == 0:
            ll, a, w = fam.core(eta0, prep)
            return u, eta0, ll, a, w, True
        if not np.all(np.isfinite(u)):
            u = np.zeros(g.q)
        eta = eta0 + g.Zu(u)
        ll, a, w = fam.core(eta, prep)
        f = -ll.sum() + 0.5 * np.dot(prec * u, u)
        converged = False
        for _ in range(self.inner_max_iter):
            grad = -g.Ztv(a) + prec * u
            step = -g.factorize(w, prec).solve(grad)
            size = np.abs(step).max(initial=0.0)
            t = 1.0
            for _ in range(60):
                un = u + t * step
                etan = eta0 + g.Zu(un)
                lln, an, wn = fam.core(etan, prep)
                fn = -lln.sum() + 0.5 * np.dot(prec * un, un)
                if fn <= f + 1e-12 * (1.0 + abs(f)):
                    break
                t /= 2
            else:
                break
            u, eta, ll, a, w, f = un, etan, lln, an, wn, fn
            if size * t <= self.inner_tol:
                converged = True
                break
        return u, eta, ll, a, w, converged

    # -- Laplace ---------------------------------------------------------------------------------------------------
    def evaluate(self, phi) -> _State:
        if self.n_agq > 1:
            return self._agq(phi)
        return self._laplace(phi)

    def _laplace(self, phi) -> _State:
        g, fam, X = self.groups, self.family, self.X
        beta, tau, omega = self.unpack(phi)
        prep = fam.prepare(omega)
        prec = self.prec_vector(tau)
        eta0 = X @ beta + self.offset
        u, eta, _, _, _, conv = self.mode(eta0, prec, prep)
        self.u = u
        ex = fam.all(eta, prep)
        ll, a, w = ex["ll"], ex["a"], ex["w"]
        if g.q == 0:
            loglik = float(ll.sum())
            grad = [-(X.T @ a)]
            if fam.has_dispersion:
                grad.append([-ex["l_om"].sum()])
            return _State(np.array(phi, dtype=float), loglik, np.concatenate(grad), u, conv)
        fac = g.factorize(w, prec)
        loglik = float(ll.sum() - 0.5 * np.dot(prec * u, u) - np.dot(g.sizes, tau) - 0.5 * fac.logdet)
        h = fac.leverage()
        r = 0.5 * h * ex["w1"]
        s = fac.solve(g.Ztv(r))
        Zs = g.Zu(s)
        grad_beta = X.T @ (r - a - w * Zs)
        dinv = fac.diag_inv()
        grad_tau = np.empty(self.K)
        for k in range(self.K):                      # loop over the (few) factors
            uk, sk, dk = g.block(u, k), g.block(s, k), g.block(dinv, k)
            pk = np.exp(-2.0 * tau[k])
            grad_tau[k] = g.sizes[k] - pk * (uk @ uk + dk.sum() - 2.0 * sk @ uk)
        grad = [grad_beta, grad_tau]
        if fam.has_dispersion:
            grad.append([-ex["l_om"].sum() + 0.5 * np.dot(h, ex["w_om"]) + np.dot(Zs, ex["a_om"])])
        return _State(np.array(phi, dtype=float), loglik, np.concatenate(grad), u, conv)

    # -- adaptive Gauss-Hermite quadrature (one factor) ------------------------------------------------------------
    def _agq(self, phi) -> _State:
        g, fam, X = self.groups, self.family, self.X
        beta, tau, omega = self.unpack(phi)
        prep = fam.prepare(omega)
        code, q = g.codes[0], g.q
        pk = float(np.exp(-2.0 * tau[0]))
        prec = np.full(q, pk)
        eta0 = X @ beta + self.offset
        u, eta, _, _, _, conv = self.mode(eta0, prec, prep)
        self.u = u
        ex = fam.all(eta, prep)
        w = ex["w"]
        H = g.Ztv(w) + pk
        s = 1.0 / np.sqrt(H)
        Qn = self.n_agq
        A = np.empty((Qn, q))
        Gp = np.empty((Qn, q))                      # g_j'(u) at each node
        Unode = np.empty((Qn, q))
        a_nodes = np.empty((Qn, self.n))
        lom_nodes = np.empty((Qn, self.n)) if fam.has_dispersion else None
        for m_, z in enumerate(self.nodes):          # loop over quadrature nodes
            um = u + s * z
            ll, a, l_om = fam.loglik(eta0 + um[code], prep)
            A[m_] = self.log_node_weights[m_] + g.Ztv(ll) - 0.5 * pk * um * um
            Gp[m_] = g.Ztv(a) - pk * um
            Unode[m_] = um
            a_nodes[m_] = a
            if lom_nodes is not None:
                lom_nodes[m_] = l_om
        lse = special.logsumexp(A, axis=0)
        loglik = float(np.sum(np.log(s) + lse) - q * tau[0])
        pi = np.exp(A - lse)                         # (Q, q) posterior node weights per group
        c1 = (pi * Gp).sum(0)
        c2 = (pi * Gp * self.nodes[:, None]).sum(0)
        bw1 = g.Ztv(ex["w1"])
        s3 = s ** 3

        def total(dH, du):                            # -1/2 dH/H + c1 du + c2 ds (per group)
            return -0.5 * dH / H + c1 * du - 0.5 * c2 * s3 * dH

        # beta
        ZwX = g.ZtM(w[:, None] * X)
        Zw1X = g.ZtM(ex["w1"][:, None] * X)
        du_b = -ZwX / H[:, None]
        dH_b = Zw1X + bw1[:, None] * du_b
        abar = (pi[:, code] * a_nodes).sum(0)
        d_beta = X.T @ abar + (-0.5 * dH_b / H[:, None] + c1[:, None] * du_b
                               - 0.5 * (c2 * s3)[:, None] * dH_b).sum(0)
        # log sigma
        du_t = 2.0 * pk * u / H
        dH_t = bw1 * du_t - 2.0 * pk
        d_tau = float(np.sum(total(dH_t, du_t)) + np.sum(pi * pk * Unode ** 2) - q)
        grad = [-d_beta, [-d_tau]]
        if fam.has_dispersion:
            du_o = g.Ztv(ex["a_om"]) / H
            dH_o = bw1 * du_o + g.Ztv(ex["w_om"])
            lbar = (pi[:, code] * lom_nodes).sum()
            grad.append([-(lbar + np.sum(total(dH_o, du_o)))])
        return _State(np.array(phi, dtype=float), loglik, np.concatenate([np.ravel(x) for x in grad]), u, conv)


# ----------------------------------------------------------------------------------------------------------------
# outer optimisation


def _glm_start(y, X, offset, family, groups: _Groups) -> np.ndarray:
    """Starting values: Poisson GLM (IRLS) for beta, moments for theta and the group SDs."""
    n, p = X.shape
    eta = np.log(y + 0.5)
    beta = np.linalg.lstsq(X, eta - offset, rcond=None)[0]
    for _ in range(50):
        eta = np.clip(X @ beta + offset, -50, 50)
        mu = np.exp(eta)
        z = eta - offset + (y - mu) / mu
        Xw = X * mu[:, None]
        new = np.linalg.solve(X.T @ Xw + 1e-10 * np.eye(p), Xw.T @ z)
        if np.max(np.abs(new - beta)) < 1e-8:
            beta = new
            break
        beta = new
    mu = np.exp(np.clip(X @ beta + offset, -50, 50))
    phi = [beta]
    sds = []
    for c, G in zip(groups.codes, groups.sizes):
        oy, em = np.bincount(c, y, G), np.bincount(c, mu, G)
        r = np.log((oy + 0.5) / (em + 0.5))
        sds.append(float(np.clip(np.std(r), 0.1, 2.0)))
    phi.append(np.log(sds))
    if family.has_dispersion:
        extra = np.sum((y - mu) ** 2 - mu)
        theta = np.sum(mu ** 2) / extra if extra > 0 else 100.0
        phi.append([np.log(np.clip(theta, 0.05, 1e4))])
    return np.concatenate([np.ravel(x) for x in phi])


class _Fit:
    """Result of optimising one objective."""

    def __init__(self, obj: _Objective, state: _State, hessian: np.ndarray, free: np.ndarray, converged: bool,
                 message: str):
        self.obj, self.state, self.hessian, self.free = obj, state, hessian, free
        self.converged, self.message = converged, message


def _fd_hessian(obj: _Objective, phi: np.ndarray, free: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Central differences of the exact gradient (as TMB's ``optimHess``), symmetrised."""
    m = len(phi)
    H = np.zeros((m, m))
    u0 = obj.u.copy()
    for i in np.flatnonzero(free):
        e = np.zeros(m)
        e[i] = steps[i]
        obj.u = u0
        gp = obj.evaluate(phi + e).grad
        obj.u = u0
        gm = obj.evaluate(phi - e).grad
        H[:, i] = (gp - gm) / (2 * steps[i])
    obj.u = u0
    H = 0.5 * (H + H.T)
    H[~free, :] = 0.0
    H[:, ~free] = 0.0
    return H


def _optimise(obj: _Objective, phi0: np.ndarray, max_iter: int) -> _Fit:
    p, K, m = obj.p, obj.K, obj.m
    lower = np.full(m, -np.inf)
    upper = np.full(m, np.inf)
    lower[p:p + K], upper[p:p + K] = _LOG_SIGMA_BOUNDS
    if obj.family.has_dispersion:
        lower[-1], upper[-1] = _LOG_THETA_BOUNDS
    phi0 = np.clip(phi0, lower, upper)
    cache: dict = {}

    def state(phi):
        key = phi.tobytes()
        if key not in cache:
            if len(cache) > 8:
                cache.clear()
            cache[key] = obj.evaluate(phi)
        return cache[key]

    # Jacobi scaling from forward differences of the gradient at the start
    s0 = state(phi0)
    if not np.isfinite(s0.loglik):
        raise ConvergenceError("the log-likelihood is not finite at the starting values")
    scale = np.ones(m)
    u0 = obj.u.copy()
    for i in range(m):
        h = 1e-4 * max(1.0, abs(phi0[i]))
        e = np.zeros(m)
        e[i] = h
        obj.u = u0
        hii = (obj.evaluate(phi0 + e).grad[i] - s0.grad[i]) / h
        scale[i] = np.sqrt(hii) if np.isfinite(hii) and hii > 1e-8 else 1.0
    obj.u = u0

    def fun(x):
        phi = phi0 + x / scale
        st = state(phi)
        if not np.isfinite(st.loglik):
            return 1e300, np.zeros(m)
        return -st.loglik, st.grad / scale

    bounds = list(zip((lower - phi0) * scale, (upper - phi0) * scale))
    res = optimize.minimize(fun, np.zeros(m), jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 20})
    phi = np.clip(phi0 + res.x / scale, lower, upper)
    message = f"L-BFGS-B: {res.message}"
    # Newton polish on the parameters not at a bound
    steps = 1e-4 / scale
    at_bound = np.zeros(m, dtype=bool)
    H, H_free = None, None
    decrement = np.inf
    for it in range(8):
        st = state(phi)
        # flat directions are held fixed: a parameter at its bound, a variance that vanishes (checked
        # against the fit without its factor afterwards), a dispersion that is infinite in effect
        at_bound = (phi <= lower + 1e-6) | (phi >= upper - 1e-6)
        at_bound[p:p + K] |= np.exp(2 * phi[p:p + K]) < BOUNDARY_VARIANCE
        if obj.family.has_dispersion:
            at_bound[-1] |= np.exp(phi[-1]) > THETA_MAX
        free = ~at_bound
        if H is None or decrement > 1e-6 or not np.array_equal(free, H_free):
            # after a tiny step (decrement below 1e-6: a move of 1e-3 standard errors) the Hessian is kept
            H, H_free = _fd_hessian(obj, phi, free, steps), free
        Hf = H[np.ix_(free, free)]
        try:
            cf = linalg.cho_factor(Hf, check_finite=True)
        except (linalg.LinAlgError, ValueError):
            message += "; the Hessian is not positive definite"
            decrement = np.inf
            break
        d = np.zeros(m)
        d[free] = -linalg.cho_solve(cf, st.grad[free])
        decrement = float(-np.dot(st.grad, d))
        if decrement < 1e-12:
            break
        t = 1.0
        improved = False
        for _ in range(30):
            cand = np.clip(phi + t * d, lower, upper)
            sc = state(cand)
            if np.isfinite(sc.loglik) and -sc.loglik <= -st.loglik + 1e-4 * t * np.dot(st.grad, d) + 1e-10:
                phi, improved = cand, True
                break
            t /= 2
        if not improved:
            break
    st = state(phi)
    obj.u = st.u
    converged = bool(decrement < 1e-6 and st.inner_converged)
    if decrement >= 1e-6 and np.isfinite(decrement):
        message += f"; Newton decrement {decrement:.1e} at the last iterate"
    if not st.inner_converged:
        message += "; the conditional modes of the random effects did not converge at the estimates"
    return _Fit(obj, st, H, ~at_bound, converged, message)


# ----------------------------------------------------------------------------------------------------------------
# the estimators


def _count_outcome(mf: ModelFrame, table: str) -> None:
    y, name = mf.y, mf.outcome
    bad = y < 0
    if bad.any():
        raise SchemaError(table, name, "negative counts in the outcome", (np.flatnonzero(bad)[:5] + 1).tolist(),
                          "counts 0, 1, 2, ...", n_rows=int(bad.sum()))
    bad = y != np.round(y)
    if bad.any():
        raise SchemaError(table, name, "non-integer counts in the outcome", (np.flatnonzero(bad)[:5] + 1).tolist(),
                          "whole counts 0, 1, 2, ... (hours? round them or model them with LinearMixed)",
                          n_rows=int(bad.sum()))
    if y.sum() == 0:
        raise SchemaError(table, name, "every count is 0", expected="some positive counts")


def _exposure_offset(df: pd.DataFrame, offset: str | None, exposure: str | None, table: str) -> np.ndarray | None:
    if offset is not None and exposure is not None:
        raise ValueError("give offset= (log exposure) or exposure= (exposure, logged here), not both")
    if exposure is None:
        return None
    if exposure not in df.columns:
        raise SchemaError(table, exposure, "column not found (the exposure)",
                          expected="one of the columns: " + ", ".join(map(str, df.columns[:20])))
    s = df[exposure]
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(x) | (x <= 0)
    if bad.any():
        raise SchemaError(table, exposure, "missing, non-numeric or non-positive exposure",
                          (np.flatnonzero(bad)[:5] + 1).tolist(), "exposure > 0 (e.g. enrolled days)",
                          n_rows=int(bad.sum()))
    return np.log(x)


class _CountMixed:
    """Shared fitting code of :class:`PoissonMixed` and :class:`NegativeBinomialMixed`."""

    _family: type = _Poisson
    _label = "PoissonMixed"

    def __init__(self, n_agq: int = 1, level: float = 0.95, max_iter: int = 500):
        if isinstance(n_agq, bool) or not isinstance(n_agq, (int, np.integer)) or n_agq < 1 or n_agq > 50:
            raise ValueError(f"n_agq must be an integer from 1 (Laplace) to 50, got {n_agq!r}")
        if not (isinstance(level, (float, int)) and 0 < level < 1):
            raise ValueError(f"level must be a number between 0 and 1, got {level!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
        self.n_agq, self.level, self.max_iter = int(n_agq), float(level), int(max_iter)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_agq={self.n_agq}, level={self.level}, max_iter={self.max_iter})"

    def fit(self, df: pd.DataFrame, formula: str, groups: str | Sequence[str], offset: str | None = None,
            exposure: str | None = None, table: str = "data"):
        """Fit the model by maximum likelihood (Laplace, or quadrature with ``n_agq > 1``).

        Parameters
        ----------
        df : the data, one row per observation (e.g. pupil-year).
        formula : patsy formula of the fixed effects, ``"days ~ x1 + treat"``; the outcome is a count.
        groups : grouping column with a random intercept (``"school"``), or several crossed or nested
            ones (``["po_school", "vo_school"]``, ``["pupil", "po_school", "vo_school"]``).
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

        Warns
        -----
        ConvergenceWarning
            A variance on its boundary (0), a dispersion that may be infinite, an optimiser or
            Hessian failure, or a coefficient that may be infinite (separation: every count 0 at
            one extreme of a covariate, e.g. in one arm) -- the estimates are returned as found.
        """
        log_exposure = _exposure_offset(df, offset, exposure, table)
        mf = model_frame(df, formula, groups, offset=offset, table=table)
        _count_outcome(mf, table)
        y, X, names = mf.y, mf.X, list(mf.names)
        n, p = X.shape
        factors = list(mf.factors)
        if self.n_agq > 1 and len(factors) != 1:
            raise ValueError("n_agq > 1 (adaptive Gauss-Hermite quadrature) needs exactly one grouping factor; "
                             "use n_agq=1 (Laplace) for crossed factors")
        off = mf.offset if mf.offset is not None else (log_exposure if log_exposure is not None else np.zeros(n))
        family = self._family(y)
        sizes = mf.n_levels
        groups_all = _Groups(mf.group_codes, sizes, n)
        phi0 = _glm_start(y, X, off, family, groups_all)
        obj = _Objective(y, X, off, groups_all, family)
        fit = _optimise(obj, phi0, self.max_iter)
        active = list(range(len(factors)))
        # boundary: variances that went to (near) 0, checked against the fit without them
        tau = fit.state.phi[p:p + len(factors)]
        small = [k for k in active if np.exp(2 * tau[k]) < BOUNDARY_VARIANCE]
        if small:
            keep = [k for k in active if k not in small]
            sub = _Groups([mf.group_codes[k] for k in keep], [sizes[k] for k in keep], n)
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
        self._store(mf, fit, factors, active, boundary, names, formula, offset, exposure)
        return self

    def _store(self, mf, fit: _Fit, factors, active, boundary, names, formula, offset, exposure):
        obj, st = fit.obj, fit.state
        p = obj.p
        phi = st.phi
        beta, tau, omega = obj.unpack(phi)
        H, free = fit.hessian, fit.free.copy()
        cov = np.full((obj.m, obj.m), np.nan)
        hess_ok = False
        if H is not None:
            Hf = H[np.ix_(free, free)]
            try:
                linalg.cho_factor(Hf)
                hess_ok = True
                cov[np.ix_(free, free)] = linalg.inv(Hf)
            except (linalg.LinAlgError, ValueError):
                hess_ok = False
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
        label = type(self).__name__
        for f in boundary:
            warnings.warn(f"{label}: the variance of the random intercept of '{f}' is estimated at 0 (boundary): the "
                          f"fit without '{f}' is as good; it is reported as 0 and '{f}' is left out of the final fit",
                          ConvergenceWarning, stacklevel=4)
        if obj.family.has_dispersion and self.dispersion_ > THETA_MAX:
            warnings.warn(f"{label}: the dispersion theta ({self.dispersion_:.3g}) may be infinite: no overdispersion "
                          "beyond the random effects; consider PoissonMixed", ConvergenceWarning, stacklevel=4)
        for n, b, v in zip(names, beta, np.diag(vcov)):
            if hess_ok and abs(b) > 10 and v > 100 * b * b:
                warnings.warn(f"{label}: the coefficient of '{n}' may be infinite (separation: the counts are 0 in "
                              f"every row at one extreme of this covariate); its estimate ({b:.3g}) and standard "
                              "error are not reliable", ConvergenceWarning, stacklevel=4)
        if not hess_ok:
            bad = self._weak_parameters(H, free, names, factors, active, obj)
            warnings.warn(f"{label}: the Hessian of the log-likelihood is not positive definite (parameters "
                          f"{bad}): the standard errors are not available (NaN)", ConvergenceWarning, stacklevel=4)
        elif not fit.converged:
            all_names = self._parameter_names(names, factors, active, obj)
            score = np.abs(st.grad) * np.sqrt(np.abs(np.diag(cov)))      # gradient in standard-error units
            score[~free | ~np.isfinite(score)] = 0.0
            worst = all_names[int(np.argmax(score))]
            warnings.warn(f"{label}: the optimiser did not converge ({fit.message}); the largest remaining "
                          f"gradient is in the {worst}; the estimates at the last iterate are returned",
                          ConvergenceWarning, stacklevel=4)

    @staticmethod
    def _parameter_names(names, factors, active, obj) -> list[str]:
        return [f"coefficient '{n}'" for n in names] + [f"variance of '{factors[k]}'" for k in active] + (
            ["dispersion theta"] if obj.family.has_dispersion else [])

    @classmethod
    def _weak_parameters(cls, H, free, names, factors, active, obj) -> str:
        all_names = cls._parameter_names(names, factors, active, obj)
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
        if include_random:
            for f in self.groups_:
                codes = new_group_codes(df, f, self.ranef_[f].index)
                b = self.ranef_[f].to_numpy()
                eta = eta + np.where(codes >= 0, b[np.maximum(codes, 0)], 0.0)
        return np.exp(eta) if kind == "response" else eta

    def tidy(self, level: float | None = None) -> pd.DataFrame:
        """Fixed effects: term, estimate (log rate ratio), std_error, z statistic, p-value, interval, and
        the rate ratios ``exp_estimate``, ``exp_conf_low``, ``exp_conf_high`` (Wald, normal distribution)."""
        self._check_fitted()
        return tidy_table(self.params_, self.standard_errors_, level=self.level if level is None else level)


class PoissonMixed(_CountMixed):
    r"""Poisson mixed model :math:`\log\mu = X\beta + \sum_k Z_k u_k + o`, :math:`u_k \sim N(0, \sigma_k^2)`.

    See the module docstring for the model, the Laplace approximation and the quadrature.

    Parameters
    ----------
    n_agq : number of adaptive Gauss–Hermite quadrature points per group; 1 (default) is the Laplace
        approximation (``glmmTMB``, ``glmer(nAGQ = 1)``); more (e.g. 10, as ``glmer(nAGQ = 10)``) needs
        one grouping factor and matters with small groups.
    level : confidence level of the intervals in :meth:`tidy`.
    max_iter : most iterations of the outer optimiser.

    Attributes (after :meth:`fit`)
    ------------------------------
    params_, standard_errors_ : fixed effects (log rate ratios) and their SEs (Series by term);
        ``vcov_`` their covariance (observed information of the approximate likelihood).
    variance_components_ : Series: :math:`\sigma_k^2` per grouping factor (0 on the boundary).
    parameter_vcov_ : covariance of the log SDs (and log theta) from the same information.
    log_likelihood_, aic_, bic_ : approximate marginal log-likelihood (full, with all constants)
        and information criteria (``n_parameters_`` counts every estimated parameter).
    ranef_ : dict factor -> Series of the conditional modes :math:`\hat u` by group label.
    n_obs_, n_groups_ : rows; groups per factor.
    converged_ : optimiser reached a stationary point with a positive definite Hessian.
    boundary_ : factors whose variance is estimated at 0.

    Examples
    --------
    >>> m = PoissonMixed().fit(df, "sick_reports ~ sex + disadvantaged", groups="school",
    ...                        exposure="enrolled_days")                              # doctest: +SKIP
    >>> m.tidy()[["term", "exp_estimate", "exp_conf_low", "exp_conf_high"]]          # doctest: +SKIP
    """

    _family = _Poisson

    def fit(self, df: pd.DataFrame, formula: str, groups: str | Sequence[str], offset: str | None = None,
            exposure: str | None = None, table: str = "data") -> "PoissonMixed":
        return super().fit(df, formula, groups, offset=offset, exposure=exposure, table=table)

    fit.__doc__ = _CountMixed.fit.__doc__


class NegativeBinomialMixed(_CountMixed):
    r"""Negative binomial (NB2) mixed model: :math:`\operatorname{Var}(y \mid u) = \mu + \mu^2/\theta`.

    :math:`\log\mu = X\beta + \sum_k Z_k u_k + o`, :math:`u_k \sim N(0, \sigma_k^2)`, fitted by
    maximum likelihood with the Laplace approximation as ``glmmTMB(family = nbinom2)`` (or adaptive
    quadrature with ``n_agq > 1``). See the module docstring for the equations.

    Parameters
    ----------
    n_agq : quadrature points per group (1 = Laplace, default; more needs one grouping factor).
    level : confidence level of the intervals in :meth:`tidy`.
    max_iter : most iterations of the outer optimiser.

    Attributes (after :meth:`fit`)
    ------------------------------
    As :class:`PoissonMixed`, and ``dispersion_``: :math:`\theta` (``sigma()`` of glmmTMB's nbinom2).

    Examples
    --------
    >>> m = NegativeBinomialMixed().fit(df, "unexcused_hours ~ disadvantaged + treat",
    ...                                 groups=["po_school", "vo_school"], exposure="enrolled_days")  # doctest: +SKIP
    >>> m.variance_components_, m.dispersion_                                                      # doctest: +SKIP
    """

    _family = _NB2

    def fit(self, df: pd.DataFrame, formula: str, groups: str | Sequence[str], offset: str | None = None,
            exposure: str | None = None, table: str = "data") -> "NegativeBinomialMixed":
        return super().fit(df, formula, groups, offset=offset, exposure=exposure, table=table)

    fit.__doc__ = _CountMixed.fit.__doc__
