r"""The Schur complement of the random intercepts: :math:`S = H_B - C'D_a^{-1}C`, factorised densely or sparsely.

:math:`S` is the block of :math:`H = Z'WZ + P` left after eliminating the largest grouping factor :math:`a`
(see :mod:`~verzuimmodel.mixed.random_intercepts`): one row and column per level of the other factors
(:math:`B`, e.g. PO and VO schools). Its entries are

.. math:: S = \operatorname{diag}(d_B) - \sum_{(p, r)} \frac{C_p C_r}{d_{a(p)}}\, e_{b(p)} e_{b(r)}'
          + \sum_{j < k} (M_{jk} + M_{jk}'),

the first sum over the pairs :math:`(p, r)` of (:math:`a`-level, :math:`B`-level) pairs that share an
:math:`a`-level (:math:`C_p` the :math:`W`-weighted count of pair :math:`p`, :math:`b(p)` its :math:`B`-level), and
:math:`M_{jk}` the :math:`W`-weighted cross-tabulation of factors :math:`j` and :math:`k` of :math:`B` (the rows
that share a PO and a VO school). What the Laplace approximation needs from :math:`S` is :math:`\log|S|`,
solves with :math:`S`, and the entries of :math:`S^{-1}` on its own pattern: its diagonal, the entries at the
:math:`B`-levels of pairs that share an :math:`a`-level, and the entries at the cells of :math:`M_{jk}`.

Two factorisations give the same numbers (to rounding):

* :class:`DenseSchur`: a dense Cholesky of :math:`S` and the whole of :math:`S^{-1}`: :math:`O(m_B^3)`
  work and :math:`8 m_B^2` bytes (about 8 s and 0.5 GB at :math:`m_B = 8{,}000`), used up to
  :data:`~verzuimmodel.mixed.random_intercepts.MAX_DENSE_LEVELS` levels.
* :class:`SparseSchur`: a sparse :math:`LDL'` in a fill-reducing order and the entries of :math:`S^{-1}` on
  the pattern of :math:`L` by Takahashi's equations (:mod:`~verzuimmodel.mixed.sparse_ldl`): work and memory
  grow with the fill of :math:`L`, small when each PO school sends its pupils to a few VO schools (the
  national cohort's 6,582 PO and 1,454 VO schools: 0.18 million entries in :math:`L`, against 32 million in
  the dense triangle). The pattern is analysed once per model; each evaluation refactorises.

Why this route and not scipy's sparse LU (``splu``): its :math:`L` and :math:`U` give :math:`\log|S|` and solves,
but the gradient needs entries of :math:`S^{-1}`, and Takahashi's equations need the exact pattern of the
factor; the compiled :math:`LDL'` gives both, and at this fill it is faster (the national cohort's :math:`S`:
about 5 ms per factorisation, against 0.12 s for ``splu`` with the same order). SuperLU's minimum-degree order
is used for the analysis. scikit-sparse (CHOLMOD) is not used: it builds against SuiteSparse from the system.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from .row_passes import pair_products
from .sparse_ldl import analyse

__all__ = ["DenseSchur", "SparseSchur", "schur_pattern", "MAX_FACTOR_ENTRIES"]

MAX_FACTOR_ENTRIES = 100_000_000    # entries of the sparse factor L (about 2.4 GB with L, S^-1 and the pattern)


class DenseSchur:
    """:math:`S` factorised densely (see the module docstring); ``g`` is the crossed structure of
    :class:`~verzuimmodel.mixed.random_intercepts._Groups` (its pairs ``pa``, ``pb``, pairs of pairs ``jP``,
    ``jQ`` and cross-tabulation cells ``cells``, as ``row * mb + column``)."""

    def __init__(self, g):
        self.g = g

    def factorize(self, C: np.ndarray, da: np.ndarray, db: np.ndarray, cell_w: np.ndarray) -> "_DenseSchurFactor":
        """Factorise :math:`S` from the pairs' weights ``C``, the diagonals ``da``, ``db`` of :math:`H` and the
        cells' weights ``cell_w``."""
        g = self.g
        mb = g.mb
        S = np.zeros(mb * mb)
        pair_products(g.jP, g.jQ, g.pa, g.pb[g.jP] * mb + g.pb[g.jQ], C, da, S)
        S = S.reshape(mb, mb)
        S[np.diag_indices(mb)] += db
        M = np.bincount(g.cells, weights=cell_w, minlength=mb * mb).reshape(mb, mb)
        S += M + M.T
        return _DenseSchurFactor(g, linalg.cho_factor(S, lower=True, check_finite=False))


class _DenseSchurFactor:
    def __init__(self, g, cS):
        self.g, self.cS = g, cS
        self.logdet = float(2.0 * np.log(np.diag(cS[0])).sum())

    def solve(self, t: np.ndarray) -> np.ndarray:
        return linalg.cho_solve(self.cS, t, check_finite=False)

    def inverse_entries(self):
        """:math:`S^{-1}`: its diagonal, its entries at :math:`(b(r), b(p))` for the pairs of pairs of
        ``g.jP``/``g.jQ`` and at the cross-tabulations' cells."""
        g = self.g
        Sinv = linalg.cho_solve(self.cS, np.eye(g.mb), check_finite=False)
        return np.diag(Sinv).copy(), Sinv[g.pb[g.jQ], g.pb[g.jP]], Sinv.ravel()[g.cells]


def schur_pattern(g):
    """The analysed pattern of :math:`S` (:func:`~verzuimmodel.mixed.sparse_ldl.analyse`): the levels of
    :math:`B` that share an :math:`a`-level, and the cells of the cross-tabulations."""
    mb, pb = g.mb, g.pb
    cells = np.unique(np.concatenate([pb[g.jP] * mb + pb[g.jQ], g.cells]))
    return analyse(cells // mb, cells % mb, mb)


class SparseSchur:
    """:math:`S` factorised sparsely (see the module docstring), on its analysed ``pattern``
    (:func:`schur_pattern`).

    Raises
    ------
    ValueError
        When :math:`L` would have more than ``MAX_FACTOR_ENTRIES`` entries (factors crossed so freely that
        :math:`S` is close to dense).
    """

    def __init__(self, g, pattern=None):
        self.g = g
        mb = g.mb
        P, Q, pb = g.jP, g.jQ, g.pb
        self.pattern = pt = schur_pattern(g) if pattern is None else pattern
        if len(pt.Li) > MAX_FACTOR_ENTRIES:
            raise ValueError(f"the grouping factors other than the largest ({mb:,} levels) are crossed so freely "
                             f"that their sparse factor has {len(pt.Li):,} entries; at most "
                             f"{MAX_FACTOR_ENTRIES:,} are supported")
        upper = pt.inv[pb[P]] <= pt.inv[pb[Q]]          # each pair of pairs once (an entry and its mirror)
        self.P, self.Q = P[upper], Q[upper]
        self.slot_pq = pt.slots_of_a(pb[self.P], pb[self.Q])
        self.slot_diag = pt.slots_of_a(np.arange(mb), np.arange(mb))
        self.slot_cells = pt.slots_of_a(g.cells // mb, g.cells % mb)
        # where the entries of S^-1 the gradient needs are in the selected inverse
        self.z_diag = pt.slots_of_l(np.arange(mb), np.arange(mb))
        self.z_pq = pt.slots_of_l(pb[P], pb[Q])
        self.z_cells = pt.slots_of_l(g.cells // mb, g.cells % mb)

    def factorize(self, C: np.ndarray, da: np.ndarray, db: np.ndarray, cell_w: np.ndarray) -> "_SparseSchurFactor":
        """As :meth:`DenseSchur.factorize`."""
        pt = self.pattern
        Ax = pair_products(self.P, self.Q, self.g.pa, self.slot_pq, C, da, np.zeros(pt.nnz_upper))
        Ax[self.slot_diag] += db
        Ax += np.bincount(self.slot_cells, weights=cell_w, minlength=pt.nnz_upper)
        return _SparseSchurFactor(self, pt.factorize(Ax))


class _SparseSchurFactor:
    def __init__(self, schur: SparseSchur, ldl):
        self.schur, self.ldl = schur, ldl
        self.logdet = ldl.logdet

    def solve(self, t: np.ndarray) -> np.ndarray:
        return self.ldl.solve(t)

    def inverse_entries(self):
        """As :meth:`_DenseSchurFactor.inverse_entries`, from the selected inverse."""
        s = self.schur
        Z = self.ldl.selected_inverse()
        return Z[s.z_diag], Z[s.z_pq], Z[s.z_cells]
