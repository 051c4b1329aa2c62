r"""The random intercepts of the count mixed models: :math:`Zu`, :math:`Z'v` and factorisations of
:math:`H = Z'WZ + P`.

:math:`Z` is the indicator matrix of all random effects :math:`u` (:math:`q` of them, factor after factor),
:math:`W = \operatorname{diag}(w_i)` the observed curvature of the rows and
:math:`P = \operatorname{diag}(\sigma_k^{-2})` the prior precision; :math:`H` is the curvature of the joint
negative log density in :math:`u` that the Laplace approximation (:mod:`~verzuimmodel.mixed.laplace`) needs.

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
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import linalg, sparse

MAX_DENSE_LEVELS = 8000     # levels of all grouping factors but the largest (dense Schur complement)


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
