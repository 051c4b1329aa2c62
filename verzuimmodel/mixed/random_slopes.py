r"""Penalised least squares with random slopes and correlated random effects (lme4's general ``Lambda``).

The random effects of :class:`~verzuimmodel.mixed.lmm.LinearMixed` with terms such as ``(x | g)`` (see
:mod:`~verzuimmodel.mixed.random_terms` for the syntax and the parametrisation). With the grouping factors as
blocks :math:`b` (all terms on one factor together), block :math:`b` has :math:`q_b` columns :math:`z_{bi}`,
:math:`G_b` groups and relative covariance factor :math:`T_b(\theta)`; :math:`Z` has the columns
:math:`z_{bi} \cdot 1[g_b(i) = g]` and :math:`\Lambda_\theta = \operatorname{diag}_b(I_{G_b} \otimes T_b)`. For each
:math:`\theta` the problem is lme4's

.. math:: \min_{\beta, u}\ \| W^{1/2}(y - X\beta - Z\Lambda_\theta u) \|^2 + \|u\|^2,
          \qquad A = \Lambda_\theta' Z'WZ \Lambda_\theta + I = L_\theta L_\theta',

and :class:`SlopeSystem` returns what the profiled (RE)ML criterion needs (:math:`\hat\beta`, :math:`\hat u`,
:math:`\log|A|`, :math:`\log|R_X|^2`, the penalised weighted residual sum of squares), as
:class:`~verzuimmodel.mixed._design.InterceptSystem` does for random intercepts.

The algebra: the block with the most random effects (:math:`G_1 q_1`) first; its part of :math:`A` is block
diagonal, :math:`A_{11} = \operatorname{diag}_g(T_1' D_g T_1 + I)` with :math:`D_g = \sum_{i \in g} w_i z_i z_i'`
(:math:`q_1 \times q_1` per group, inverted all at once), and the other blocks (:math:`q_2 = \sum_{b>1} G_b q_b`
random effects) go into the dense Schur complement

.. math:: S = \Lambda_2'\big(C - B' \Lambda_1 A_{11}^{-1} \Lambda_1' B\big)\Lambda_2 + I, \qquad
          B = Z_1'WZ_2,\ C = Z_2'WZ_2,

so :math:`\log|A| = \sum_g \log|A_{11,g}| + \log|S|` and systems in :math:`A` are solved by block elimination;
:math:`R_X'R_X = X'WX - r_X'A^{-1}r_X` with :math:`r = \Lambda'Z'W[X\ y]`. The rows are read once
(:meth:`SlopeSystem.cross_products`); each :math:`\theta` then costs :math:`O(G_1 q_1^3 + \mathrm{nnz}(B) + q_2^3)`
without a loop over rows or groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import linalg, sparse

from ._design import PLSSolution, fixed_effects
from .random_terms import RandomStructure

__all__ = ["SlopeSystem", "SlopeCrossProducts", "MAX_SCHUR"]

MAX_SCHUR = 8000      # most random effects outside the largest block (the dense Schur complement is q2 x q2)


@dataclass(frozen=True)
class SlopeCrossProducts:
    """Weighted cross products of one (X, y, w) for :class:`SlopeSystem` (the only pass over the rows)."""

    p: int
    D1: np.ndarray            # (G1, q1, q1) per group of the first block: sum_i w_i z_i z_i'
    B: sparse.csr_matrix      # (G1 q1, q2) Z_1'WZ_2
    BT: sparse.csr_matrix     # its transpose
    C: np.ndarray             # (q2, q2) Z_2'WZ_2 (dense)
    r1: np.ndarray            # (G1, q1, p+1) Z_1'W[X y] per group
    r2: np.ndarray            # (q2, p+1) Z_2'W[X y]
    M: np.ndarray             # (p+1, p+1) [X y]'W[X y]
    sum_log_w: float


class SlopeSystem:
    """Random slopes and correlated random effects of ``structure`` (see the module docstring).

    Parameters
    ----------
    structure : the terms and the map from :math:`\\theta` to each block's :math:`T_b`.
    group_codes : per block (``structure.factors``), (n,) codes ``0..G_b-1``.
    n_levels : :math:`G_b` per block.
    columns : per block, the (n, q_b) random-effects columns.
    """

    def __init__(self, structure: RandomStructure, group_codes: Sequence[np.ndarray], n_levels: Sequence[int],
                 columns: Sequence[np.ndarray]):
        self.structure = structure
        self.K = structure.n_theta
        self.codes = [np.asarray(c, dtype=np.int64) for c in group_codes]
        self.n_levels = [int(g) for g in n_levels]
        self.Z = [np.asarray(z, dtype=float) for z in columns]
        self.n = len(self.codes[0])
        sizes = [g * z.shape[1] for g, z in zip(self.n_levels, self.Z)]
        first = int(np.argmax(sizes))
        self.order = [first] + [b for b in range(len(self.codes)) if b != first]
        self.G1, self.q1 = self.n_levels[first], self.Z[first].shape[1]
        rest = self.order[1:]
        self.rest_sizes = [sizes[b] for b in rest]
        self.q2 = int(sum(self.rest_sizes))
        if self.q2 > MAX_SCHUR:
            raise ValueError(f"{self.q2} random effects outside the largest grouping factor "
                             f"('{structure.factors[first]}'): at most {MAX_SCHUR} (they form a dense "
                             f"{self.q2} x {self.q2} matrix at each evaluation); use fewer or smaller terms on the "
                             "other factors")
        self.rest_starts = np.concatenate([[0], np.cumsum(self.rest_sizes)]).astype(np.int64)
        n, q1 = self.n, self.q1
        rows = np.repeat(np.arange(n), q1)
        cols = (self.codes[first][:, None] * q1 + np.arange(q1)).ravel()
        self._Z1 = sparse.csr_matrix((self.Z[first].ravel(), (rows, cols)), shape=(n, self.G1 * q1))
        if self.q2:
            r, c, v = [], [], []
            for j, b in enumerate(rest):
                qb = self.Z[b].shape[1]
                r.append(np.repeat(np.arange(n), qb))
                c.append((self.rest_starts[j] + self.codes[b][:, None] * qb + np.arange(qb)).ravel())
                v.append(self.Z[b].ravel())
            self._Z2 = sparse.csr_matrix((np.concatenate(v), (np.concatenate(r), np.concatenate(c))),
                                         shape=(n, self.q2))

    def cross_products(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> SlopeCrossProducts:
        """Weighted cross products of ``[X y]`` with itself and with the random-effects columns."""
        n = self.n
        X = np.asarray(X, dtype=float).reshape(n, -1)
        p = X.shape[1]
        Xy = np.column_stack([X, np.asarray(y, dtype=float)])
        if w is None:
            w, sum_log_w = np.ones(n), 0.0
        else:
            w = np.asarray(w, dtype=float)
            sum_log_w = float(np.log(w).sum())
        first = self.order[0]
        c1, Z1 = self.codes[first], self.Z[first]
        G1, q1 = self.G1, self.q1
        wZ1 = Z1 * w[:, None]
        D1 = np.empty((G1, q1, q1))
        for j in range(q1):
            for k in range(j, q1):
                D1[:, j, k] = D1[:, k, j] = np.bincount(c1, weights=wZ1[:, j] * Z1[:, k], minlength=G1)
        r1 = np.empty((G1, q1, p + 1))
        for j in range(q1):
            for m in range(p + 1):
                r1[:, j, m] = np.bincount(c1, weights=wZ1[:, j] * Xy[:, m], minlength=G1)
        WXy = Xy * w[:, None]
        M = Xy.T @ WXy
        if self.q2:
            WZ2 = sparse.diags(w) @ self._Z2
            B = (self._Z1.T @ WZ2).tocsr()
            BT = B.T.tocsr()
            C = (self._Z2.T @ WZ2).toarray()
            r2 = np.asarray(self._Z2.T @ WXy)
        else:
            B = sparse.csr_matrix((G1 * q1, 0))
            BT = sparse.csr_matrix((0, G1 * q1))
            C, r2 = np.empty((0, 0)), np.empty((0, p + 1))
        return SlopeCrossProducts(p=p, D1=D1, B=B, BT=BT, C=C, r1=r1, r2=r2, M=M, sum_log_w=sum_log_w)

    def _rest(self, T: list[np.ndarray], X: np.ndarray, transpose: bool) -> np.ndarray:
        r""":math:`\Lambda_2 X` (or :math:`\Lambda_2' X`) for a dense (q2, m) ``X``, block by block."""
        out = np.empty_like(X)
        for j, b in enumerate(self.order[1:]):
            s, e = self.rest_starts[j], self.rest_starts[j + 1]
            Tb = T[b].T if transpose else T[b]
            out[s:e] = np.matmul(Tb, X[s:e].reshape(self.n_levels[b], Tb.shape[0], -1)).reshape(e - s, -1)
        return out

    def solve(self, cp: SlopeCrossProducts, theta: Sequence[float]) -> PLSSolution:
        """Solve the penalised least-squares problem at ``theta``; ``u`` per block as (G_b, q_b) arrays."""
        p, G1, q1 = cp.p, self.G1, self.q1
        T = self.structure.block_factors(np.asarray(theta, dtype=float))
        T1 = T[self.order[0]]
        if q1 == 1:
            a = T1[0, 0] ** 2 * cp.D1[:, 0, 0] + 1.0
            ldL2 = float(np.log(a).sum())
            Ainv = (1.0 / a)[:, None, None]
        else:
            A = np.matmul(T1.T, np.matmul(cp.D1, T1))
            A[:, np.arange(q1), np.arange(q1)] += 1.0
            ldL2 = float(np.linalg.slogdet(A)[1].sum())
            Ainv = np.linalg.inv(A)
        r1 = np.matmul(T1.T, cp.r1)                       # Lambda_1' Z_1'W[X y]
        s1 = np.matmul(Ainv, r1)
        if self.q2:
            K = np.matmul(T1, np.matmul(Ainv, T1.T))      # Lambda_1 A_11^{-1} Lambda_1', per group
            Kb = sparse.bsr_matrix((K, np.arange(G1), np.arange(G1 + 1)), shape=(G1 * q1, G1 * q1))
            mid = cp.C - (cp.BT @ (Kb @ cp.B)).toarray()
            S = self._rest(T, self._rest(T, mid, True).T, True)     # Lambda_2' mid Lambda_2 (mid symmetric)
            S = 0.5 * (S + S.T)
            S[np.diag_indices_from(S)] += 1.0
            cS = linalg.cho_factor(S, lower=True, check_finite=False)
            ldL2 += 2.0 * float(np.log(np.diag(cS[0])).sum())
            r2 = self._rest(T, cp.r2, True)
            Ls1 = np.matmul(T1, s1).reshape(G1 * q1, p + 1)
            c2 = linalg.cho_solve(cS, r2 - self._rest(T, np.asarray(cp.BT @ Ls1), True), check_finite=False)
            back = np.asarray(cp.B @ self._rest(T, c2, False)).reshape(G1, q1, p + 1)
            c1 = s1 - np.matmul(Ainv, np.matmul(T1.T, back))
            M = cp.M - np.einsum("gjk,gjl->kl", r1, c1) - r2.T @ c2
        else:
            c1, c2 = s1, np.empty((0, p + 1))
            M = cp.M - np.einsum("gjk,gjl->kl", r1, c1)
        beta, ldRX2, pwrss, RXtRX = fixed_effects(M, p)
        u: list[np.ndarray] = [np.empty(0)] * len(self.codes)
        u[self.order[0]] = c1[..., p] - c1[..., :p] @ beta
        u2 = c2[:, p] - c2[:, :p] @ beta
        for j, b in enumerate(self.order[1:]):
            u[b] = u2[self.rest_starts[j]:self.rest_starts[j + 1]].reshape(self.n_levels[b], -1)
        return PLSSolution(beta=beta, u=u, ldL2=ldL2, ldRX2=ldRX2, pwrss=max(pwrss, 0.0), RXtRX=RXtRX)
