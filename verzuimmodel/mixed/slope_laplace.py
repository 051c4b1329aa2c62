r"""The Laplace approximation of the count and logistic mixed models with random slopes and correlated random
effects (lme4's terms ``(x | g)``, ``(x || g)``, ``(0 + x | g)``), its exact gradient, and the algebra of
:math:`\Lambda_\theta' Z'WZ\Lambda_\theta + I`.

The models are :class:`~verzuimmodel.mixed.glmm.PoissonMixed`, :class:`~verzuimmodel.mixed.glmm.NegativeBinomialMixed`
and :class:`~verzuimmodel.mixed.binomial_mixed.BinomialMixed`; the terms and the map from :math:`\theta` to the
relative covariance factors are :mod:`~verzuimmodel.mixed.random_terms`' (shared with
:class:`~verzuimmodel.mixed.lmm.LinearMixed`); the estimation around this objective is
:mod:`~verzuimmodel.mixed.glmm_slopes`'.

Model and parametrisation (as ``lme4::glmer``)
----------------------------------------------
The grouping factors are blocks :math:`b` (all terms on one factor together) with :math:`q_b` columns
:math:`z_{bi}` (``(x | g)``: :math:`(1, x_i)`), :math:`G_b` groups and random effects
:math:`b_{b,g} = T_b u_{b,g} \sim N(0, \Sigma_b)`, :math:`\Sigma_b = T_b T_b'`, with :math:`T_b` lower triangular
(block diagonal across the terms of one factor: ``(x || g)`` has a diagonal :math:`T_b`) and spherical
:math:`u \sim N(0, I)`. With :math:`\Lambda_\theta = \operatorname{diag}_b(I_{G_b} \otimes T_b)` the linear
predictor is :math:`\eta = X\beta + Z\Lambda_\theta u + o`, and the Laplace approximation of the marginal
log-likelihood is

.. math:: \log L(\beta, \theta) \approx \sum_i \ell_i(\hat\eta_i) - \tfrac12 \hat u'\hat u - \tfrac12\log|A|,
          \qquad A = \Lambda_\theta' Z'WZ\Lambda_\theta + I,

at the conditional mode :math:`\hat u = \arg\max_u \sum_i \ell_i(\eta_i) - \frac12 u'u` (Newton with step halving,
warm-started), with :math:`W = \operatorname{diag}(w_i)` the observed curvature of the rows
(:mod:`~verzuimmodel.mixed.count_families`, :mod:`~verzuimmodel.mixed.binomial_family`). With a non-singular
:math:`\Sigma` this is the random-intercept models' (and glmmTMB's) :math:`\log|Z'WZ + \Sigma^{-1}| + \log|\Sigma|`;
in the spherical form it stays finite when :math:`\Sigma_b` is singular (a variance at 0, a correlation at
:math:`\pm 1`: a column of :math:`T_b` at 0), which is how boundary fits are represented.

The outer parameters are :math:`\phi = (\beta, \tau, \log\theta_{NB})` with :math:`\tau` the elements of
:math:`T_b` in lme4's order (column by column of each term's lower triangle): the logarithm of the diagonal ones
(the scale of the random-intercept models' :math:`\log\sigma`), the off-diagonal ones as they are. Internally
each column of :math:`z_b` is divided by its root mean square (:math:`T_b` is then in units of the linear
predictor, so the boundary rule does not depend on the units of :math:`x`); what is reported (``theta_``) is
lme4's :math:`\theta` on the columns as given.

Exact gradient
--------------
With :math:`a_i = \ell_i'(\hat\eta_i)`, :math:`h_i = \tilde z_i' A^{-1} \tilde z_i` (:math:`\tilde z_i = \Lambda'z_i`),
:math:`r_i = \tfrac12 h_i\,\partial w_i/\partial\eta_i`, :math:`s = A^{-1}\Lambda'Z'r` and the implicit function
theorem for :math:`\hat u` (:math:`A\,d\hat u = d\Lambda'Z'a - \Lambda'Z'W(X d\beta + Z\,d\Lambda\,\hat u)`),

.. math:: \frac{\partial \log L}{\partial\beta} = X'(a - r + WZ\Lambda s), \qquad
          \frac{\partial \log L}{\partial T_b} = \sum_g \big(c_{bg}\hat u_{bg}' - (Z'a)_{bg} s_{bg}'\big) - Q_b,

with :math:`c = Z'(a - r + WZ\Lambda s)` and :math:`Q_b = \sum_i w_i z_{bi} y_{bi}'`, :math:`y_{bi}` the part of
:math:`A^{-1}\tilde z_i` at row :math:`i`'s group of block :math:`b` (the derivative of :math:`-\frac12\log|A|` at
fixed :math:`W`), and for NB2
:math:`\partial\log L/\partial\log\theta = \sum_i \partial\ell_i/\partial\log\theta
- \tfrac12\sum_i h_i\,\partial w_i/\partial\log\theta - (Z\Lambda s)'\partial a/\partial\log\theta`.

The algebra of :math:`A`
------------------------
As :class:`~verzuimmodel.mixed.random_slopes.SlopeSystem`: the block with the most random effects
(:math:`G_1 q_1`) first; its part of :math:`A` is block diagonal,
:math:`A_{11} = \operatorname{diag}_g(T_1'D_gT_1 + I)` with :math:`D_g = \sum_{i\in g} w_i z_i z_i'`
(:math:`q_1 \times q_1` per group, all at once); the other blocks (:math:`q_2` random effects) go into the dense
Schur complement :math:`S = A_{22} - A_{21}A_{11}^{-1}A_{12}`. The entries of :math:`A^{-1}` that :math:`h_i` and
:math:`Q_b` need -- the diagonal blocks of the groups of block 1, and the pairs of random effects that share rows --
follow from :math:`S^{-1}`: :math:`(A^{-1})_{22} = S^{-1}`, :math:`(A^{-1})_{12} = -U S^{-1}` and
:math:`(A^{-1})_{11,gg} = A_{11,g}^{-1} + (US^{-1}U')_{gg}` with :math:`U = A_{11}^{-1}A_{12}`, evaluated only at the
pairs that occur. Everything is sums over rows (``bincount``) and batched small matrices; no loop over rows or
groups.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import linalg

from .laplace import _LOG_SIGMA_BOUNDS, _LOG_THETA_BOUNDS, BOUNDARY_VARIANCE, THETA_MAX, _State
from .random_slopes import MAX_SCHUR
from .random_terms import RandomStructure

__all__ = ["SlopeGroups", "SlopeObjective", "MAX_PAIRS"]

MAX_PAIRS = 3 * 10 ** 7     # most pairs of random effects sharing a group of the largest block


def _batched_cholesky(A: np.ndarray) -> tuple[np.ndarray, float]:
    """Inverse and log-determinant of a stack of (small) positive definite matrices."""
    if A.shape[1] == 1:
        return 1.0 / A, float(np.log(A[:, 0, 0]).sum())
    L = np.linalg.cholesky(A)
    logdet = 2.0 * float(np.log(np.diagonal(L, axis1=1, axis2=2)).sum())
    return np.linalg.inv(A), logdet


class SlopeGroups:
    r"""The random-effects columns of ``structure`` as blocks (one per grouping factor): :math:`Z\Lambda u`,
    :math:`\Lambda'Z'v` and factorisations of :math:`A = \Lambda'Z'WZ\Lambda + I` (see the module docstring).

    ``u`` is one vector: block after block, group after group, the :math:`q_b` columns of a group together.
    The columns are scaled to a root mean square of 1 (``scale``); the factors :math:`T_b` given to the methods
    are on that scale.
    """

    def __init__(self, structure: RandomStructure, group_codes: Sequence[np.ndarray], n_levels: Sequence[int],
                 columns: Sequence[np.ndarray]):
        self.structure = structure
        self.codes = [np.asarray(c, dtype=np.int64) for c in group_codes]
        self.sizes = [int(g) for g in n_levels]
        raw = [np.asarray(z, dtype=float) for z in columns]
        self.scale = [np.sqrt(np.mean(z * z, axis=0)) for z in raw]
        for s in self.scale:
            s[s == 0] = 1.0
        self.Z = [z / s for z, s in zip(raw, self.scale)]
        self.ones = [np.all(z == 1.0, axis=0) for z in self.Z]
        self.q_b = [z.shape[1] for z in self.Z]
        self.B = len(self.Z)
        self.n = len(self.codes[0])
        lengths = [g * q for g, q in zip(self.sizes, self.q_b)]
        self.starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.q = int(self.starts[-1])
        first = int(np.argmax(lengths))
        self.order = [first] + [b for b in range(self.B) if b != first]
        self.rest = self.order[1:]
        self.q2 = int(sum(lengths[b] for b in self.rest))
        if self.q2 > MAX_SCHUR:
            raise ValueError(f"{self.q2:,} random effects outside the largest grouping factor "
                             f"('{structure.factors[first]}'): at most {MAX_SCHUR:,} (they form a dense matrix); use "
                             "fewer or smaller terms on the other factors")
        if self.q2:
            self._pairs()

    # -- structure of the rows' random effects outside the first block ---------------------------------------------
    def _pairs(self):
        """Per row its columns in the dense block (``col``, (n, m)); the (group of block 1, column) pairs that
        occur (``pg``, ``pc``; ``pair`` per row and position); and all pairs of such pairs in one group of block 1
        (``jP``, ``jQ``)."""
        first, n = self.order[0], self.n
        cols, self.pos_block, self.pos_col = [], [], []
        off = 0
        for b in self.rest:
            q = self.q_b[b]
            cols.append(off + self.codes[b][:, None] * q + np.arange(q))
            self.pos_block += [b] * q
            self.pos_col += list(range(q))
            off += self.sizes[b] * q
        self.col = np.concatenate(cols, axis=1)                         # (n, m)
        m = self.col.shape[1]
        g1 = self.codes[first]
        key, pair = np.unique((g1[:, None] * self.q2 + self.col).ravel(), return_inverse=True)
        self.pair = pair.reshape(n, m)
        self.pg, self.pc = key // self.q2, key % self.q2
        cnt = np.bincount(self.pg, minlength=self.sizes[first])
        n_pp = int((cnt.astype(np.int64) ** 2).sum())
        if n_pp > MAX_PAIRS:
            raise ValueError(f"the random effects of the other grouping factors share groups of "
                             f"'{self.structure.factors[first]}' in {n_pp:,} pairs; at most {MAX_PAIRS:,} are "
                             "supported")
        start = np.concatenate([[0], np.cumsum(cnt)])[:-1]
        reps = cnt[self.pg]
        P = np.repeat(np.arange(len(key)), reps)
        local = np.arange(len(P)) - np.repeat(np.cumsum(reps) - reps, reps)
        self.jP, self.jQ = P, start[self.pg[P]] + local
        # position pairs within a row (for the dense block A_22 and the rows' parts of S^{-1})
        self.pp = np.array([(i, j) for i in range(m) for j in range(m)], dtype=np.int64).reshape(-1, 2)

    # -- products ----------------------------------------------------------------------------------------------------
    def split(self, u: np.ndarray) -> list[np.ndarray]:
        """``u`` as one (G_b, q_b) array per block."""
        return [u[self.starts[b]:self.starts[b + 1]].reshape(self.sizes[b], self.q_b[b]) for b in range(self.B)]

    def ZLu(self, u: np.ndarray, T: Sequence[np.ndarray]) -> np.ndarray:
        r""":math:`Z\Lambda u` (n,)."""
        out = np.zeros(self.n)
        for b, ub in enumerate(self.split(u)):
            bb = (ub @ T[b].T)[self.codes[b]]
            for c in range(self.q_b[b]):
                out += bb[:, c] if self.ones[b][c] else self.Z[b][:, c] * bb[:, c]
        return out

    def Ztv(self, v: np.ndarray) -> list[np.ndarray]:
        r""":math:`Z'v` per block, (G_b, q_b) arrays."""
        out = []
        for b in range(self.B):
            cols = [np.bincount(self.codes[b], weights=v if self.ones[b][c] else self.Z[b][:, c] * v,
                                minlength=self.sizes[b]) for c in range(self.q_b[b])]
            out.append(np.column_stack(cols))
        return out

    def LtZtv(self, v: np.ndarray, T: Sequence[np.ndarray]) -> np.ndarray:
        r""":math:`\Lambda'Z'v` as one vector."""
        return np.concatenate([(m @ T[b]).ravel() for b, m in enumerate(self.Ztv(v))])

    def factorize(self, w: np.ndarray, T: Sequence[np.ndarray]) -> "SlopeFactor":
        return SlopeFactor(self, w, T)


class SlopeFactor:
    r"""A factorisation of :math:`A = \Lambda'Z'WZ\Lambda + I` (module docstring): ``logdet``, ``solve`` and the
    rows' leverages with the trace terms of the gradient (``leverage_and_traces``)."""

    def __init__(self, g: SlopeGroups, w: np.ndarray, T: Sequence[np.ndarray]):
        self.g, self.w, self.T = g, w, T
        first = g.order[0]
        q1, c1, Z1 = g.q_b[first], g.codes[first], g.Z[first]
        G1 = g.sizes[first]
        T1 = T[first]
        D = np.empty((G1, q1, q1))                          # D_g = sum_i w_i z_i z_i' per group
        for i in range(q1):
            for j in range(i + 1):
                wz = w if g.ones[first][i] and g.ones[first][j] else w * Z1[:, i] * Z1[:, j]
                D[:, i, j] = D[:, j, i] = np.bincount(c1, weights=wz, minlength=G1)
        A11 = np.matmul(T1.T, np.matmul(D, T1))
        A11[:, np.arange(q1), np.arange(q1)] += 1.0
        self.A11inv, self.logdet = _batched_cholesky(A11)
        self._X1 = None
        if g.q2:
            self._schur()

    @property
    def X1(self) -> np.ndarray:
        r"""Rows of :math:`Z_1\Lambda_1` (n, q1), made when first needed (not by the inner Newton steps of one
        block)."""
        if self._X1 is None:
            first = self.g.order[0]
            self._X1 = self.g.Z[first] @ self.T[first]
        return self._X1

    def _schur(self):
        g, w = self.g, self.w
        q2, X1 = g.q2, self.X1
        self.Y2 = np.column_stack([(g.Z[b] @ self.T[b])[:, c] for b, c in zip(g.pos_block, g.pos_col)])  # (n, m)
        npair = len(g.pg)
        wY2 = w[:, None] * self.Y2
        self.A12 = np.column_stack([np.bincount(g.pair.ravel(), weights=(X1[:, r:r + 1] * wY2).ravel(),
                                                minlength=npair) for r in range(X1.shape[1])])       # (npair, q1)
        i, j = g.pp[:, 0], g.pp[:, 1]
        flat = (g.col[:, i] * q2 + g.col[:, j]).ravel()
        S = np.bincount(flat, weights=(wY2[:, i] * self.Y2[:, j]).ravel(), minlength=q2 * q2).reshape(q2, q2)
        S[np.diag_indices(q2)] += 1.0
        self.U = np.einsum("pij,pj->pi", self.A11inv[g.pg], self.A12)                                 # A11^-1 A12
        P, Q = g.jP, g.jQ
        S -= np.bincount(g.pc[P] * q2 + g.pc[Q], weights=np.einsum("pi,pi->p", self.A12[P], self.U[Q]),
                         minlength=q2 * q2).reshape(q2, q2)
        self.cS = linalg.cho_factor(0.5 * (S + S.T), lower=True, check_finite=False)
        self.logdet += 2.0 * float(np.log(np.diag(self.cS[0])).sum())

    def _split_first(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = self.g
        first = g.order[0]
        r1 = r[g.starts[first]:g.starts[first + 1]].reshape(g.sizes[first], g.q_b[first])
        r2 = np.concatenate([r[g.starts[b]:g.starts[b + 1]] for b in g.rest]) if g.q2 else np.empty(0)
        return r1, r2

    def _join(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        g = self.g
        out = np.empty(g.q)
        first = g.order[0]
        out[g.starts[first]:g.starts[first + 1]] = x1.ravel()
        off = 0
        for b in g.rest:
            k = g.starts[b + 1] - g.starts[b]
            out[g.starts[b]:g.starts[b + 1]] = x2[off:off + k]
            off += k
        return out

    def solve(self, r: np.ndarray) -> np.ndarray:
        r""":math:`A^{-1} r` by block elimination."""
        g = self.g
        r1, r2 = self._split_first(r)
        t1 = np.einsum("gij,gj->gi", self.A11inv, r1)
        if not g.q2:
            return self._join(t1, r2)
        rhs = r2 - np.bincount(g.pc, weights=np.einsum("pi,pi->p", self.A12, t1[g.pg]), minlength=g.q2)
        x2 = linalg.cho_solve(self.cS, rhs, check_finite=False)
        q1 = r1.shape[1]
        corr = np.column_stack([np.bincount(g.pg, weights=self.U[:, k] * x2[g.pc], minlength=len(r1))
                                for k in range(q1)])
        return self._join(t1 - corr, x2)

    def leverage_and_traces(self) -> tuple[np.ndarray, list[np.ndarray]]:
        r""":math:`h_i = \tilde z_i'A^{-1}\tilde z_i` per row and :math:`Q_b = \sum_i w_i z_{bi} y_{bi}'` per block
        (module docstring)."""
        g, w = self.g, self.w
        first = g.order[0]
        c1, X1 = g.codes[first], self.X1
        if not g.q2:
            Y1 = np.einsum("nij,nj->ni", self.A11inv[c1], X1)
            h = np.einsum("ni,ni->n", X1, Y1)
            Q = [None] * g.B
            Q[first] = (g.Z[first] * w[:, None]).T @ Y1
            return h, Q
        P, Qp = g.jP, g.jQ
        R = linalg.cho_solve(self.cS, np.eye(g.q2), check_finite=False)
        q1, npair = X1.shape[1], len(g.pg)
        Rpq = R[g.pc[P], g.pc[Qp]]
        UR = np.column_stack([np.bincount(Qp, weights=self.U[P, k] * Rpq, minlength=npair) for k in range(q1)])
        Ainv11 = self.A11inv + np.stack([np.column_stack([np.bincount(g.pg, weights=UR[:, r] * self.U[:, c],
                                                                      minlength=len(self.A11inv))
                                                          for c in range(q1)]) for r in range(q1)], axis=1)
        URrow = UR[g.pair]                                                    # (n, m, q1)
        Y1 = np.einsum("nij,nj->ni", Ainv11[c1], X1) - np.einsum("npi,np->ni", URrow, self.Y2)
        m = self.Y2.shape[1]
        Rrow = R[g.col[:, g.pp[:, 0]], g.col[:, g.pp[:, 1]]].reshape(self.g.n, m, m)
        Y2 = -np.einsum("npi,ni->np", URrow, X1) + np.einsum("npk,nk->np", Rrow, self.Y2)
        h = np.einsum("ni,ni->n", X1, Y1) + np.einsum("np,np->n", self.Y2, Y2)
        Q = [None] * g.B
        Q[first] = (g.Z[first] * w[:, None]).T @ Y1
        pos = 0
        for b in g.rest:
            qb = g.q_b[b]
            Q[b] = (g.Z[b] * w[:, None]).T @ Y2[:, pos:pos + qb]
            pos += qb
        return h, Q


class SlopeObjective:
    r"""Minus the Laplace log-likelihood of a model with random slopes and its exact gradient in
    :math:`\phi = (\beta, \tau, \log\theta_{NB})` (module docstring), for
    :func:`~verzuimmodel.mixed.laplace._optimise`.

    ``zero`` marks elements of :math:`\theta` held at 0 (a boundary fit: whole columns of a :math:`T_b`); the
    others are the free ones in :math:`\tau`.
    """

    n_agq = 1

    def __init__(self, y, X, offset, groups: SlopeGroups, family, zero: np.ndarray | None = None,
                 inner_tol: float = 1e-10, inner_max_iter: int = 100):
        self.y, self.X, self.offset, self.groups, self.family = y, X, offset, groups, family
        self.n, self.p = X.shape
        s = groups.structure
        self.zero = np.zeros(s.n_theta, dtype=bool) if zero is None else np.asarray(zero, dtype=bool)
        self.free = np.flatnonzero(~self.zero)
        self.K = len(self.free)
        self.m = self.p + self.K + int(family.has_dispersion)
        self.is_diag = s.is_diag[self.free]
        self.index = [s.block_index[k] for k in self.free]
        self.inner_tol, self.inner_max_iter = inner_tol, inner_max_iter
        self.u = np.zeros(groups.q)

    # -- parameters ------------------------------------------------------------------------------------------------
    def unpack(self, phi):
        p, K = self.p, self.K
        beta, tau = phi[:p], phi[p:p + K]
        omega = float(phi[p + K]) if self.family.has_dispersion else None
        return beta, tau, omega

    def factors(self, tau: np.ndarray) -> list[np.ndarray]:
        """The (internal, column-scaled) :math:`T_b` of ``tau``."""
        T = [np.zeros((q, q)) for q in self.groups.q_b]
        for v, d, (b, i, j) in zip(tau, self.is_diag, self.index):
            T[b][i, j] = np.exp(v) if d else v
        return T

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        p, K = self.p, self.K
        lower, upper = np.full(self.m, -np.inf), np.full(self.m, np.inf)
        lower[p:p + K] = np.where(self.is_diag, _LOG_SIGMA_BOUNDS[0], -np.inf)
        upper[p:p + K] = np.where(self.is_diag, _LOG_SIGMA_BOUNDS[1], np.inf)
        if self.family.has_dispersion:
            lower[-1], upper[-1] = _LOG_THETA_BOUNDS
        return lower, upper

    def flat(self, phi: np.ndarray) -> np.ndarray:
        """Held fixed by the Newton polish: a diagonal element of :math:`T_b` that vanishes and the elements below
        it in its column (they then only rotate; the fit with that column at 0 is tried afterwards), and a
        dispersion that is infinite in effect."""
        p, K = self.p, self.K
        out = np.zeros(self.m, dtype=bool)
        tau = phi[p:p + K]
        small = {(b, j) for v, d, (b, i, j) in zip(tau, self.is_diag, self.index)
                 if d and np.exp(2 * v) < BOUNDARY_VARIANCE}
        out[p:p + K] = [(b, j) in small for (b, i, j) in self.index]
        if self.family.has_dispersion:
            out[-1] = np.exp(phi[-1]) > THETA_MAX
        return out

    # -- inner problem ---------------------------------------------------------------------------------------------
    def mode(self, eta0, T, prep):
        """Conditional mode of the spherical u (Newton with step halving); (u, eta, converged)."""
        g, fam = self.groups, self.family
        u = self.u.copy()
        if not np.all(np.isfinite(u)):
            u = np.zeros(g.q)
        eta = eta0 + g.ZLu(u, T)
        ll, a, w = fam.core(eta, prep)
        f = -ll.sum() + 0.5 * np.dot(u, u)
        converged = False
        for _ in range(self.inner_max_iter):
            grad = u - g.LtZtv(a, T)
            step = -g.factorize(w, T).solve(grad)
            size = np.abs(step).max(initial=0.0)
            t = 1.0
            for _ in range(60):
                un = u + t * step
                etan = eta0 + g.ZLu(un, T)
                lln, an, wn = fam.core(etan, prep)
                fn = -lln.sum() + 0.5 * np.dot(un, un)
                if fn <= f + 1e-12 * (1.0 + abs(f)):
                    break
                t /= 2
            else:
                break
            u, eta, a, w, f = un, etan, an, wn, fn
            if size * t <= self.inner_tol:
                converged = True
                break
        return u, eta, converged

    # -- Laplace -----------------------------------------------------------------------------------------------------
    def evaluate(self, phi) -> _State:
        beta, tau, omega = self.unpack(phi)
        T = self.factors(tau)
        loglik, grad_beta, dT, grad_omega, u, conv = self.laplace(beta, T, omega)
        grad_tau = np.array([-dT[b][i, j] * (T[b][i, j] if d else 1.0)
                             for d, (b, i, j) in zip(self.is_diag, self.index)])
        grad = [grad_beta, grad_tau] + ([[grad_omega]] if self.family.has_dispersion else [])
        return _State(np.array(phi, dtype=float), loglik, np.concatenate(grad), u, conv)

    def laplace(self, beta: np.ndarray, T: Sequence[np.ndarray], omega: float | None) -> tuple:
        r"""The Laplace log-likelihood at the fixed effects ``beta``, the (internal, column-scaled) factors ``T`` --
        any lower-triangular :math:`T_b`, singular ones included -- and :math:`\log\theta` ``omega`` (NB2; else
        None). Returns ``(loglik, d(-loglik)/d beta, [d loglik / d T_b], d(-loglik)/d omega, u, converged)``; the
        mode :math:`\hat u` is kept as the next start."""
        g, fam, X = self.groups, self.family, self.X
        prep = fam.prepare(omega)
        eta0 = X @ beta + self.offset
        u, eta, conv = self.mode(eta0, T, prep)
        self.u = u
        ex = fam.all(eta, prep)
        ll, a, w = ex["ll"], ex["a"], ex["w"]
        fac = g.factorize(w, T)
        loglik = float(ll.sum() - 0.5 * np.dot(u, u) - 0.5 * fac.logdet)
        h, Q = fac.leverage_and_traces()
        r = 0.5 * h * ex["w1"]
        s = fac.solve(g.LtZtv(r, T))
        ZLs = g.ZLu(s, T)
        grad_beta = X.T @ (r - a - w * ZLs)
        Zc, Za = g.Ztv(a - r + w * ZLs), g.Ztv(a)
        ub, sb = g.split(u), g.split(s)
        dT = [Zc[b].T @ ub[b] - Za[b].T @ sb[b] - Q[b] for b in range(g.B)]     # d log L / d T_b
        grad_omega = None
        if fam.has_dispersion:
            grad_omega = float(-ex["l_om"].sum() + 0.5 * np.dot(h, ex["w_om"]) + np.dot(ZLs, ex["a_om"]))
        return loglik, grad_beta, dT, grad_omega, u, conv
