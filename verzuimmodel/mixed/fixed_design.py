r"""Products with the fixed-effects design of the mixed models fitted by Laplace
(:mod:`~verzuimmodel.mixed.laplace`): :math:`X\beta`, :math:`X'v` and the weighted least-squares steps of their
starting values, without n x p temporaries.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FixedDesign", "weighted_least_squares"]

_BLOCK = 65536      # rows per block of the weighted cross-products (no n x p temporaries)


class FixedDesign:
    r"""Products with the fixed-effects design :math:`X` (n x p): :math:`X\beta` and :math:`X'v`.

    When :math:`X` has few distinct rows (dummies and indicators: the 17 columns of ``vo_nb_glmm``'s design take
    1,709 distinct rows on the national cohort's 5.1 million pupil-years), :math:`X = UX_u` with :math:`X_u` the
    distinct rows and :math:`U` the indicator of each row's one: :math:`X\beta = (X_u\beta)_{u(i)}` and
    :math:`X'v = X_u'\,(\sum_{i: u(i) = j} v_i)_j`, without reading the n x p matrix (the same numbers up to
    rounding). Otherwise the products are BLAS's on :math:`X`. The distinct rows are found by hashing each row
    (its product with a fixed random vector) and checked exactly.
    """

    def __init__(self, X: np.ndarray, max_share: float = 0.05, min_rows: int = 100_000):
        self.X = X
        self.distinct, self.row_of = None, None
        n, p = X.shape
        if n < min_rows or p == 0:
            return
        key = X @ np.random.default_rng(20240601).normal(size=p)
        keys, first, row_of = np.unique(key, return_index=True, return_inverse=True)
        if len(keys) > max_share * n:
            return
        distinct = X[first]
        for start in range(0, n, _BLOCK):            # exact check: two rows with one key would be merged
            if not np.array_equal(distinct[row_of[start:start + _BLOCK]], X[start:start + _BLOCK]):
                return
        self.distinct, self.row_of = distinct, row_of.astype(np.int32 if len(keys) < 2 ** 31 else np.int64)

    def matvec(self, beta: np.ndarray) -> np.ndarray:
        if self.distinct is None:
            return self.X @ beta
        return (self.distinct @ beta)[self.row_of]

    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        if self.distinct is None:
            return self.X.T @ v
        return self.distinct.T @ np.bincount(self.row_of, weights=v, minlength=len(self.distinct))


def weighted_least_squares(X: np.ndarray | FixedDesign, w: np.ndarray | None, z: np.ndarray) -> np.ndarray:
    r"""The solution of :math:`(X'WX + 10^{-10} I)\beta = X'Wz` (:math:`W = \operatorname{diag}(w)`, or
    :math:`I` for ``w=None``): one step of iteratively reweighted least squares. The cross-products are summed
    over blocks of rows (or over a :class:`FixedDesign`'s distinct rows), so that no weighted copy of :math:`X`
    (n x p) is made."""
    if isinstance(X, FixedDesign):
        if X.distinct is not None:
            Xu, m = X.distinct, len(X.distinct)
            wu = np.bincount(X.row_of, weights=w, minlength=m) if w is not None else np.bincount(X.row_of, minlength=m)
            wz = np.bincount(X.row_of, weights=z if w is None else w * z, minlength=m)
            return np.linalg.solve((Xu.T * wu) @ Xu + 1e-10 * np.eye(Xu.shape[1]), Xu.T @ wz)
        X = X.X
    n, p = X.shape
    XtWX, XtWz = np.zeros((p, p)), np.zeros(p)
    for start in range(0, n, _BLOCK):
        Xb = X[start:start + _BLOCK]
        Xw = Xb if w is None else Xb * w[start:start + _BLOCK, None]
        XtWX += Xw.T @ Xb
        XtWz += Xw.T @ z[start:start + _BLOCK]
    return np.linalg.solve(XtWX + 1e-10 * np.eye(p), XtWz)
