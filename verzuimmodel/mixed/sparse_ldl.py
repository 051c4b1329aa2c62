r"""Sparse :math:`LDL'` factorisation of a symmetric positive definite matrix, its solves, log-determinant and
selected inverse (Takahashi's equations), compiled by numba.

For :math:`A` (:math:`n \times n`, symmetric positive definite, sparse) in a fill-reducing order,

.. math:: A = LDL', \qquad \log|A| = \sum_j \log D_j,

with :math:`L` unit lower triangular. The factorisation is the up-looking one of Davis' LDL (row :math:`k` of
:math:`L` from a sparse triangular solve along the elimination tree): the elimination tree and the pattern of
:math:`L` are found once (:func:`analyse`) and every factorisation of a matrix with the same pattern reuses them.

Selected inverse. :math:`Z = A^{-1}` satisfies :math:`Z = D^{-1}L^{-1} + (I - L')Z` (Takahashi, Fagan & Chen
1973; Erisman & Tinney 1975), whose entries on the pattern of :math:`L` follow from the last column backwards:
with :math:`R_j` the rows of column :math:`j` of :math:`L`,

.. math:: Z_{ij} = -\sum_{k \in R_j} L_{kj} Z_{ik} \quad (i \in R_j), \qquad
          Z_{jj} = 1/D_j - \sum_{k \in R_j} L_{kj} Z_{kj}.

Every :math:`Z_{ik}` these need lies on the pattern of :math:`L` (the rows of a column of :math:`L` form a
clique in the later columns: if :math:`L_{ij} \ne 0` and :math:`L_{kj} \ne 0` with :math:`i > k > j`, then
:math:`L_{ik} \ne 0`), so the entries of :math:`A^{-1}` on that pattern -- which holds the pattern of :math:`A`
-- cost about as much as the factorisation, without forming the dense inverse.

Where it holds and where it does not: exact (up to rounding) for any symmetric positive definite matrix; a
pivot :math:`D_k \le 0` (a matrix that is not positive definite, or one so ill-conditioned that rounding makes
it so) stops the factorisation with :class:`numpy.linalg.LinAlgError`, as a dense Cholesky does. No pivoting is
done, so the order is chosen for sparsity alone (:func:`fill_reducing_order`); the work grows with the fill
of :math:`L`, which depends on the pattern (for PO x VO schools, where each PO school sends its pupils to a few
nearby VO schools, the fill is small; for factors crossed at random it approaches a dense matrix).

References: Davis TA (2005). Algorithm 849: A concise sparse Cholesky factorization package. ACM TOMS 31(4).
Takahashi K, Fagan J, Chen MS (1973). Formation of a sparse bus impedance matrix and its application to short
circuit study. PICA Conference Proceedings. Erisman AM, Tinney WF (1975). On computing certain elements of
the inverse of a sparse matrix. Communications of the ACM 18(3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import reverse_cuthill_mckee
from scipy.sparse.linalg import splu

__all__ = ["LDLPattern", "LDLFactor", "analyse", "fill_reducing_order"]

_JITTED: dict = {}


def _jit(fn):
    """``fn`` compiled by numba on first use (importing the package stays fast) and cached on disk."""
    if fn not in _JITTED:
        import numba
        _JITTED[fn] = numba.njit(cache=True, nogil=True)(fn)
    return _JITTED[fn]


# ----------------------------------------------------------------------------------------------------------------
# compiled kernels (A given by its upper triangle in compressed columns: column k holds the rows i <= k)


def _etree(n, Ap, Ai):                                                     # pragma: no cover (numba)
    """Elimination tree (``parent``, -1 at a root) and the number of entries below the diagonal of each
    column of :math:`L` (Davis' ``ldl_symbolic``)."""
    parent = np.full(n, -1, dtype=np.int64)
    flag = np.empty(n, dtype=np.int64)
    count = np.zeros(n, dtype=np.int64)
    for k in range(n):
        flag[k] = k
        for p in range(Ap[k], Ap[k + 1]):
            i = Ai[p]
            if i < k:
                while flag[i] != k:
                    if parent[i] == -1:
                        parent[i] = k
                    count[i] += 1
                    flag[i] = k
                    i = parent[i]
    return parent, count


def _ldl(n, Ap, Ai, Ax, Lp, parent, Li, Lx, D):                            # pragma: no cover (numba)
    """Numeric factorisation (Davis' ``ldl_numeric``): fills ``Li``, ``Lx`` (columns of L below the
    diagonal, rows ascending) and ``D``. Returns -1, or the first column whose pivot is not positive."""
    y = np.zeros(n)
    stack = np.empty(n, dtype=np.int64)
    flag = np.empty(n, dtype=np.int64)
    filled = np.zeros(n, dtype=np.int64)
    for k in range(n):
        top = n
        flag[k] = k
        for p in range(Ap[k], Ap[k + 1]):
            i = Ai[p]
            y[i] += Ax[p]
            length = 0
            while flag[i] != k:                      # the path up the tree from i to the part already seen
                stack[length] = i
                length += 1
                flag[i] = k
                i = parent[i]
            while length > 0:
                top -= 1
                length -= 1
                stack[top] = stack[length]
        dk = y[k]
        y[k] = 0.0
        for t in range(top, n):                      # the pattern of row k, in topological order
            i = stack[t]
            yi = y[i]
            y[i] = 0.0
            end = Lp[i] + filled[i]
            for p in range(Lp[i], end):
                y[Li[p]] -= Lx[p] * yi
            lki = yi / D[i]
            dk -= lki * yi
            Li[end] = k
            Lx[end] = lki
            filled[i] += 1
        if not dk > 0.0:
            return k
        D[k] = dk
    return -1


def _solve(n, Lp, Li, Lx, D, x):                                           # pragma: no cover (numba)
    """Overwrite ``x`` (in the factor's order) with :math:`A^{-1}x`."""
    for j in range(n):
        xj = x[j]
        for p in range(Lp[j], Lp[j + 1]):
            x[Li[p]] -= Lx[p] * xj
    for j in range(n):
        x[j] /= D[j]
    for j in range(n - 1, -1, -1):
        s = x[j]
        for p in range(Lp[j], Lp[j + 1]):
            s -= Lx[p] * x[Li[p]]
        x[j] = s


def _takahashi(n, Lp, Li, Lx, D):                                          # pragma: no cover (numba)
    """Entries of :math:`A^{-1}` on the pattern of :math:`L`: its diagonal ``Zd`` and ``Zx`` beside ``Lx``.
    Returns ``(Zd, Zx, missing)``; ``missing`` counts entries the equations needed off the pattern (0 for a
    pattern from the elimination tree; checked by the tests)."""
    Zd = np.empty(n)
    Zx = np.empty(len(Lx))
    pos = np.full(n, -1, dtype=np.int64)
    work = np.zeros(n)
    missing = 0
    for j in range(n - 1, -1, -1):
        p0 = Lp[j]
        m = Lp[j + 1] - p0
        for s in range(m):
            pos[Li[p0 + s]] = s
        for t in range(m):
            rt = Li[p0 + t]
            lt = Lx[p0 + t]
            work[t] -= lt * Zd[rt]
            hits = 0
            for p in range(Lp[rt], Lp[rt + 1]):     # Z(r_s, r_t) for the rows r_s > r_t of column j
                s = pos[Li[p]]
                if s >= 0:
                    z = Zx[p]
                    work[s] -= lt * z
                    work[t] -= Lx[p0 + s] * z
                    hits += 1
            missing += m - 1 - t - hits
        dj = 1.0 / D[j]
        for s in range(m):
            z = work[s]
            Zx[p0 + s] = z
            dj -= Lx[p0 + s] * z
            work[s] = 0.0
            pos[Li[p0 + s]] = -1
        Zd[j] = dj
    return Zd, Zx, missing


# ----------------------------------------------------------------------------------------------------------------
# analysis (once per pattern) and factorisation (once per matrix)


def fill_reducing_order(rows: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    r"""A symmetric permutation with little fill for the pattern ``(rows, cols)`` of an :math:`n \times n`
    symmetric matrix: the best (fewest entries in :math:`L`) of SuperLU's minimum degree on :math:`A + A'`,
    its COLAMD and reverse Cuthill–McKee. Returns ``order``: position ``j`` of the permuted matrix is row
    ``order[j]`` of the original."""
    off = rows != cols
    r, c = np.concatenate([rows[off], cols[off]]), np.concatenate([cols[off], rows[off]])
    pattern = sparse.csc_matrix((np.full(len(r), -1.0), (r, c)), shape=(n, n))
    pattern.sum_duplicates()
    pattern.data[:] = -1.0
    degree = np.diff(pattern.indptr)
    dominant = (pattern + sparse.diags(degree + 1.0)).tocsc()   # a diagonally dominant matrix of that pattern
    candidates = [np.asarray(reverse_cuthill_mckee(pattern, symmetric_mode=True), dtype=np.int64)]
    for spec in ("MMD_AT_PLUS_A", "COLAMD"):
        lu = splu(dominant, permc_spec=spec, diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        candidates.append(np.argsort(lu.perm_c).astype(np.int64))
    fills = [_fill(r, c, n, order) for order in candidates]
    return candidates[int(np.argmin(fills))]


def _upper(rows: np.ndarray, cols: np.ndarray, n: int, order: np.ndarray):
    """The upper triangle's pattern in the permuted order (compressed columns ``Ap``, ``Ai``) and the inverse
    permutation."""
    inv = np.empty(n, dtype=np.int64)
    inv[order] = np.arange(n)
    i, k = inv[rows], inv[cols]
    lo, hi = np.minimum(i, k), np.maximum(i, k)
    key = hi * n + lo
    keys = np.unique(np.concatenate([key, np.arange(n, dtype=np.int64) * (n + 1)]))
    Ap = np.concatenate([[0], np.cumsum(np.bincount(keys // n, minlength=n))]).astype(np.int64)
    Ai = (keys % n).astype(np.int64)
    return Ap, Ai, inv


def _fill(rows, cols, n, order) -> int:
    Ap, Ai, _ = _upper(rows, cols, n, order)
    return int(_jit(_etree)(n, Ap, Ai)[1].sum())


@dataclass(frozen=True, eq=False)
class LDLPattern:
    """The analysis of a pattern: its order, the upper triangle's compressed columns (``Ap``, ``Ai``), the
    elimination tree and the pattern of :math:`L` (``Lp``, ``Li``)."""

    n: int
    order: np.ndarray          # permuted position j <- original index order[j]
    inv: np.ndarray            # original index -> permuted position
    Ap: np.ndarray
    Ai: np.ndarray
    parent: np.ndarray
    Lp: np.ndarray
    Li: np.ndarray

    @property
    def nnz_upper(self) -> int:
        return len(self.Ai)

    def factorize(self, Ax: np.ndarray) -> "LDLFactor":
        """Factorise the matrix whose upper triangle's values (in the slots of ``Ap``/``Ai``) are ``Ax``.

        Raises
        ------
        numpy.linalg.LinAlgError
            A pivot that is not positive (the matrix is not positive definite).
        """
        Li = np.empty_like(self.Li)
        Lx = np.empty(len(self.Li))
        D = np.empty(self.n)
        k = _jit(_ldl)(self.n, self.Ap, self.Ai, np.asarray(Ax, dtype=float), self.Lp, self.parent, Li, Lx, D)
        if k >= 0:
            raise np.linalg.LinAlgError(f"the sparse LDL' factorisation met a pivot that is not positive in column "
                                        f"{int(self.order[k])} (the matrix is not positive definite)")
        return LDLFactor(self, Lx, D)

    def slots_of_a(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """For entries ``(rows, cols)`` (original indices) of the analysed pattern, their slot in the values
        ``Ax`` that :meth:`factorize` takes (an entry and its mirror share a slot)."""
        i, k = self.inv[np.asarray(rows)], self.inv[np.asarray(cols)]
        want = np.maximum(i, k) * self.n + np.minimum(i, k)
        keys = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(self.Ap)) * self.n + self.Ai
        at = np.searchsorted(keys, want)
        if len(want) and not np.array_equal(keys[np.minimum(at, len(keys) - 1)], want):
            raise ValueError("an entry asked for is not on the analysed pattern")
        return at

    def slots_of_l(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """For entries ``(rows, cols)`` (original indices) on the pattern of :math:`L + L'`, their index in
        :meth:`LDLFactor.selected_inverse`'s array (the diagonal first, then the entries below it)."""
        i, k = self.inv[np.asarray(rows)], self.inv[np.asarray(cols)]
        lo, hi = np.minimum(i, k), np.maximum(i, k)
        col_of = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(self.Lp))
        lkeys = col_of * self.n + self.Li
        want = lo * self.n + hi
        at = np.searchsorted(lkeys, want)
        off = lo != hi
        found = np.zeros(len(want), dtype=bool)
        found[off] = (at[off] < len(lkeys)) & (lkeys[np.minimum(at[off], len(lkeys) - 1)] == want[off])
        if not np.all(found[off]):
            raise ValueError("an entry asked for is not on the pattern of the factor")
        return np.where(off, self.n + at, lo)


def analyse(rows: np.ndarray, cols: np.ndarray, n: int, order: np.ndarray | None = None) -> LDLPattern:
    r"""Analyse the pattern of a symmetric :math:`n \times n` matrix given by entries ``(rows, cols)`` (either
    triangle or both; the diagonal is always included): a fill-reducing order (:func:`fill_reducing_order`,
    unless ``order`` is given), the elimination tree and the pattern of :math:`L`."""
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    if order is None:
        order = fill_reducing_order(rows, cols, n)
    Ap, Ai, inv = _upper(rows, cols, n, order)
    parent, count = _jit(_etree)(n, Ap, Ai)
    Lp = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
    # the pattern of L: one factorisation of a diagonally dominant matrix with this pattern
    col = np.repeat(np.arange(n), np.diff(Ap))
    Ax = np.where(Ai == col, np.diff(Ap)[col] + 1.0, -1.0 / n)
    Li = np.empty(int(Lp[-1]), dtype=np.int64)
    _jit(_ldl)(n, Ap, Ai, Ax, Lp, parent, Li, np.empty(len(Li)), np.empty(n))
    return LDLPattern(n, order, inv, Ap, Ai, parent, Lp, Li)


class LDLFactor:
    """:math:`A = LDL'` (in the pattern's order): log-determinant, solves and the selected inverse."""

    def __init__(self, pattern: LDLPattern, Lx: np.ndarray, D: np.ndarray):
        self.pattern, self.Lx, self.D = pattern, Lx, D
        self.logdet = float(np.log(D).sum())

    def solve(self, b: np.ndarray) -> np.ndarray:
        """:math:`A^{-1}b` for a vector ``b`` (original order)."""
        pt = self.pattern
        x = np.ascontiguousarray(b[pt.order], dtype=float)
        _jit(_solve)(pt.n, pt.Lp, pt.Li, self.Lx, self.D, x)
        out = np.empty_like(x)
        out[pt.order] = x
        return out

    def selected_inverse(self) -> np.ndarray:
        """The entries of :math:`A^{-1}` on the pattern of :math:`L + L'`: the diagonal (permuted order)
        followed by the entries below it in ``Li``'s order; index it with :meth:`LDLPattern.slots_of_l`."""
        pt = self.pattern
        Zd, Zx, missing = _jit(_takahashi)(pt.n, pt.Lp, pt.Li, self.Lx, self.D)
        if missing:                                  # pragma: no cover - impossible for an elimination-tree pattern
            raise RuntimeError(f"Takahashi's equations needed {missing} entries off the pattern of L")
        return np.concatenate([Zd, Zx])
