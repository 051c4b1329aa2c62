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
between the factors of :math:`B` (e.g. PO x VO school), and :math:`S` the Schur complement (its size is
the number of levels of :math:`B`), factorised densely or sparsely
(:mod:`~verzuimmodel.mixed.schur_complement`: ``schur="dense"`` up to ``MAX_DENSE_LEVELS`` levels,
``"sparse"`` for any number, ``"auto"`` sparse from ``SPARSE_FROM_LEVELS`` levels on unless its factor
would be nearly dense; the two agree to rounding). :math:`\log|H| = \sum\log D_a + \log|S|`;
systems are solved by block elimination, and the entries of :math:`H^{-1}` the gradient needs (its diagonal
and the pairs that occur) follow from the entries of :math:`S^{-1}` on the pattern of :math:`S`
(:math:`(H^{-1})_{BB} = S^{-1}`, :math:`(H^{-1})_{aB} = -D_a^{-1} C S^{-1}`,
:math:`(H^{-1})_{aa} = D_a^{-1} + D_a^{-1} C S^{-1} C' D_a^{-1}`: at a pair :math:`(a, b)` that occurs,
:math:`(CS^{-1})_{ab}` sums :math:`S^{-1}` over the :math:`B`-levels that share the level :math:`a` with
:math:`b`, all on the pattern of :math:`S`).
Everything is sums over rows and pairs, by compiled passes (:mod:`~verzuimmodel.mixed.row_passes`: one pass over
the rows gives :math:`Z'a`, :math:`Z'w`, :math:`C` and the cross-tabulations together); no Python loop over rows
or groups. Measured for ``auto``'s threshold (NB2 fits of pupil-years with PO schools feeding a few nearby VO
schools, best of 3 on a shared two-core machine): with 100 levels beside the pupil the sparse path took 0.06 s and
the dense 0.08 s, with 200 levels 0.06 s against 0.19 s, with 800 levels 0.14 s against 5.3 s.
(The formula, grouping codes and input checks are :func:`~verzuimmodel.mixed._design.model_frame`'s; the
factorisation is this module's own because the gradient needs these entries of :math:`H^{-1}`, which
:class:`~verzuimmodel.mixed._design.InterceptSystem`, lme4's joint penalised least squares, does not give.)
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from scipy import sparse

from .row_passes import gather_sum, scatter_sum, scatter_two, subtract_through_pairs, sum_over_pairs
from .schur_complement import DenseSchur, SparseSchur, schur_pattern

MAX_DENSE_LEVELS = 8000     # levels of all grouping factors but the largest with schur="dense"
SCHUR_OPTIONS = ("auto", "dense", "sparse")
SPARSE_FROM_LEVELS = 200    # "auto": the Schur complement is factorised sparsely from this many levels on ...
DENSE_FILL = 0.3            # ... unless its factor L would fill more than this share of the triangle


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
    and the others are stacked into one block ``B`` of ``mb`` levels (see the module docstring), whose
    Schur complement is factorised as ``schur`` says (``"auto"``, ``"dense"`` or ``"sparse"``).

    ``index`` (R x n) sends each row to what it is summed into (:mod:`~verzuimmodel.mixed.row_passes`): its level
    of each factor (positions in ``u``, ``0..q-1``), with two or more factors also its (a, B) pair of each factor
    of ``B`` (``q + pair``) and its cell of each cross-tabulation of two factors of ``B`` (``q + n_pairs + cell``).
    """

    def __init__(self, codes: Sequence[np.ndarray], sizes: Sequence[int], n: int,
                 schur: Literal["auto", "dense", "sparse"] = "auto"):
        if schur not in SCHUR_OPTIONS:
            raise ValueError(f"schur must be one of {', '.join(map(repr, SCHUR_OPTIONS))}, got {schur!r}")
        self.schur_option = schur
        self.codes = [np.asarray(c, dtype=np.int64) for c in codes]
        self.sizes = [int(s) for s in sizes]
        self.K = len(self.codes)
        self.n = n
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.q = int(self.starts[-1])
        rows = [c + s for c, s in zip(self.codes, self.starts)]
        if self.K >= 2:
            rows += self._crossed_structure()
        self.size = self.q + (len(self.pa) + len(self.cells) if self.K >= 2 else 0)
        dtype = np.int32 if self.size < 2 ** 31 else np.int64
        self.index = np.empty((len(rows), n), dtype=dtype)
        for r, row in enumerate(rows):
            self.index[r] = row

    def _crossed_structure(self) -> list[np.ndarray]:
        ia = int(np.argmax(self.sizes))                 # eliminated (diagonal) factor: the largest one
        rest = [k for k in range(self.K) if k != ia]
        b_starts = np.concatenate([[0], np.cumsum([self.sizes[k] for k in rest])])
        mb = int(b_starts[-1])
        if self.schur_option == "dense" and mb > MAX_DENSE_LEVELS:
            raise ValueError(f"the grouping factors other than the largest have {mb:,} levels together; at most "
                             f"{MAX_DENSE_LEVELS:,} are supported with schur='dense' (their block is factorised "
                             f"densely); use schur='sparse' or 'auto'")
        self.mb = mb
        self.pos_a = np.arange(self.starts[ia], self.starts[ia + 1])
        self.pos_b = np.concatenate([np.arange(self.starts[k], self.starts[k + 1]) for k in rest])
        ga = self.codes[ia]
        code_b = [b_starts[j] + self.codes[k] for j, k in enumerate(rest)]   # row -> B level, per factor
        key, pair = np.unique(np.concatenate([ga * mb + cb for cb in code_b]), return_inverse=True)
        pair = pair.reshape(len(rest), self.n)          # row -> (a, B) pair, per factor of B
        self.pa, self.pb = key // mb, key % mb           # pairs sorted by (a, B)
        # all (p, r) pairs of pairs in the same a-level (for the selected inverse and C'D^{-1}C)
        cnt = np.bincount(self.pa, minlength=self.sizes[ia])
        first = np.concatenate([[0], np.cumsum(cnt)])[:-1]
        reps = cnt[self.pa]
        P = np.repeat(np.arange(len(key)), reps)
        local = np.arange(len(P)) - np.repeat(np.cumsum(reps) - reps, reps)
        self.jP, self.jQ = P, first[self.pa[P]] + local
        # B x B cells shared by two factors of B (three or more factors: e.g. PO x VO school beside pupil)
        bb = [code_b[j] * mb + code_b[k] for j in range(len(rest)) for k in range(j + 1, len(rest))]
        if bb:
            self.cells, cell = np.unique(np.concatenate(bb), return_inverse=True)
            cell = cell.reshape(len(bb), self.n)
        else:
            self.cells, cell = np.zeros(0, dtype=np.int64), np.zeros((0, self.n), dtype=np.int64)
        self.schur = self._schur()
        return [self.q + p for p in pair] + [self.q + len(key) + c for c in cell]

    def _schur(self):
        """The factorisation of the Schur complement: ``schur="auto"`` takes the sparse one from
        ``SPARSE_FROM_LEVELS`` levels on, unless its factor would be nearly dense (more than ``DENSE_FILL`` of
        the triangle) and the dense one is allowed (up to ``MAX_DENSE_LEVELS`` levels)."""
        mb = self.mb
        if self.schur_option == "dense" or (self.schur_option == "auto" and mb < SPARSE_FROM_LEVELS):
            return DenseSchur(self)
        pattern = schur_pattern(self)
        if self.schur_option == "auto" and mb <= MAX_DENSE_LEVELS and len(pattern.Li) > DENSE_FILL * mb * (mb - 1) / 2:
            return DenseSchur(self)
        return SparseSchur(self, pattern)

    def block(self, v: np.ndarray, k: int) -> np.ndarray:
        return v[self.starts[k]:self.starts[k + 1]]

    def Zu(self, u: np.ndarray, base: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """:math:`Zu` (plus ``base``, e.g. the fixed part of the linear predictor), into ``out`` if given."""
        if self.K == 0:
            return np.zeros(self.n) if base is None else np.array(base, dtype=float)
        return gather_sum(self.index[:self.K], u, base, out)

    def Ztv(self, v: np.ndarray) -> np.ndarray:
        if self.K == 0:
            return np.zeros(0)
        return scatter_sum(self.index[:self.K], v, self.q)

    def ZtM(self, M: np.ndarray) -> np.ndarray:
        """:math:`Z'M` for an (n, p) matrix (q, p)."""
        if self.K == 0:
            return np.zeros((0, M.shape[1]))
        Zt = [sparse.csr_matrix((np.ones(self.n), (c, np.arange(self.n))), shape=(s, self.n))
              for c, s in zip(self.codes, self.sizes)]
        return np.vstack([np.asarray(z @ M) for z in Zt])

    def factorize(self, w: np.ndarray, prec: np.ndarray, out: np.ndarray | None = None) -> _Factor:
        """Factorise :math:`H = Z'\\operatorname{diag}(w)Z + \\operatorname{diag}(prec)`; ``out`` (of ``size``), if
        given, holds the sums over rows, and the factorisation is valid until it is overwritten."""
        if self.K <= 1:
            return _DiagonalFactor(self.Ztv(w) + prec, self.codes[0] if self.K else None)
        sums = scatter_sum(self.index, w, self.size, out)    # Z'w, then C (per pair) and the cells' sums
        return _CrossedFactor(self, sums, prec)

    def factorize_with_score(self, w: np.ndarray, a: np.ndarray, prec: np.ndarray, out: np.ndarray | None = None
                             ) -> tuple[_Factor, np.ndarray]:
        """:meth:`factorize` and :math:`Z'a` from one pass over the rows."""
        if self.K <= 1:
            return self.factorize(w, prec), self.Ztv(a)
        za, sums = scatter_two(self.index, self.K, a, w, self.q, np.empty(self.size) if out is None else out)
        return _CrossedFactor(self, sums, prec), za


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
    def __init__(self, g: _Groups, sums: np.ndarray, prec: np.ndarray):
        self.g = g
        q, npairs = g.q, len(g.pa)
        d = sums[:q] + prec
        self.da, self.db = d[g.pos_a], d[g.pos_b]
        self.C = sums[q:q + npairs]
        self.S = g.schur.factorize(self.C, self.da, self.db, sums[q + npairs:])
        self.logdet = float(np.log(self.da).sum() + self.S.logdet)
        self._sel = None

    def _join(self, xa, xb):
        out = np.empty(self.g.q)
        out[self.g.pos_a], out[self.g.pos_b] = xa, xb
        return out

    def solve(self, r):
        g = self.g
        ra, rb = r[g.pos_a], r[g.pos_b]
        t = subtract_through_pairs(g.pb, g.pa, self.C, ra / self.da, np.array(rb, dtype=float))
        xb = self.S.solve(t)
        xa = subtract_through_pairs(g.pa, g.pb, self.C, xb, np.array(ra, dtype=float)) / self.da
        return self._join(xa, xb)

    def _selected(self):
        """Diagonal of H^{-1}, and its (a, B) entries at the pairs that occur and (B, B) entries at the cells."""
        if self._sel is None:
            g = self.g
            s_diag, s_pairs, s_cells = self.S.inverse_entries()
            G = sum_over_pairs(g.jP, g.jQ, self.C, s_pairs, len(g.pa))                    # (C S^-1) at pairs
            diag_a = 1.0 / self.da + np.bincount(g.pa, weights=self.C * G, minlength=len(self.da)) / self.da ** 2
            off = -G / self.da[g.pa]
            self._sel = (self._join(diag_a, s_diag), off, s_cells)
        return self._sel

    def diag_inv(self):
        return self._selected()[0]

    def leverage(self):
        dinv, off, s_cells = self._selected()
        # h_i = sum over the row's levels of diag(H^-1) + 2 (H^-1 at its pairs) + 2 (S^-1 at its cells)
        return gather_sum(self.g.index, np.concatenate([dinv, 2.0 * off, 2.0 * s_cells]))
