r"""Absorbed fixed effects: factor codes, the rows that carry no information, weighted demeaning.

A model :math:`\eta = X\beta + D\alpha` with :math:`D` the indicator columns of one or more
factors (schools, years) is fitted without ever forming :math:`D`: by Frisch–Waugh–Lovell the
weighted least squares coefficient of :math:`X` is that of the regression of :math:`M_D z` on
:math:`M_D X`, where :math:`M_D = I - D(D'WD)^{-}D'W` removes from each column its
:math:`W`-weighted projection on the factors ("demeaning", the within transformation).

- One factor: :math:`(M_D x)_i = x_i - \sum_{j \in l(i)} W_j x_j / \sum_{j \in l(i)} W_j`, the
  weighted mean of the row's level subtracted: exact in one pass.
- Several factors: the method of alternating projections (as ``fixest`` and ``pyfixest``): the
  level means of each factor in turn are subtracted until no factor's weighted level mean exceeds
  ``tol`` times the column's scale. It converges to :math:`M_D x` linearly, slowly when the factors
  are nearly collinear (e.g. a school factor and a year factor where schools are observed in few
  years); the result is then as accurate as ``tol`` and ``maxiter`` allow (a
  :class:`~verzuimmodel.errors.ConvergenceWarning` says when it stopped early).

Memory is that of the data (:math:`n \times p` plus level sums), never :math:`n \times` levels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ConvergenceWarning

__all__ = ["Factors", "factorize", "informative_rows", "demean", "jit"]


@dataclass(frozen=True, eq=False)
class Factors:
    """The absorbed factors of the rows a model uses.

    ``codes[f]`` holds each row's level of factor ``f`` (0 to ``len(labels[f]) - 1``, every level
    used), ``labels[f]`` the level labels, ``names[f]`` the factor's name.
    """

    codes: tuple[np.ndarray, ...]
    labels: tuple[pd.Index, ...]
    names: tuple[str, ...]

    @property
    def n_levels(self) -> tuple[int, ...]:
        return tuple(len(lab) for lab in self.labels)

    def __len__(self) -> int:
        return len(self.codes)

    def subset(self, rows: np.ndarray) -> "Factors":
        """The factors of the rows ``rows`` (a boolean mask), levels without a row removed."""
        codes, labels = [], []
        for c, lab in zip(self.codes, self.labels):
            used, new = np.unique(c[rows], return_inverse=True)
            codes.append(new.astype(np.int64))
            labels.append(lab[used])
        return Factors(tuple(codes), tuple(labels), self.names)

    def rank(self) -> int:
        r"""The rank of the indicator matrix :math:`D = [D_1, \dots, D_F]`: the number of fixed effects
        the factors add to a model (with the constant).

        One factor: its number of levels :math:`L_1`. Two: :math:`L_1 + L_2 - C`, with :math:`C` the
        connected components of the graph linking the levels seen together in a row (exact). Three
        or more: :math:`\sum_f L_f - (F - 1)`, exact when the levels of every pair are connected
        (a further redundancy, as a factor nested in another, is not counted).
        """
        if not self.codes:
            return 0
        if len(self.codes) == 1:
            return self.n_levels[0]
        if len(self.codes) == 2:
            from scipy.sparse import coo_matrix
            from scipy.sparse.csgraph import connected_components

            l1, l2 = self.n_levels
            n = len(self.codes[0])
            g = coo_matrix((np.ones(n, dtype=np.int8), (self.codes[0], l1 + self.codes[1])), shape=(l1 + l2,) * 2)
            n_comp = connected_components(g, directed=False)[0]
            return l1 + l2 - n_comp
        return sum(self.n_levels) - (len(self.codes) - 1)


def factorize(absorb, n: int, what: str = "absorb") -> Factors:
    """:class:`Factors` from ``absorb``: a DataFrame (one column per factor), a dict of arrays, or a
    sequence of arrays (named ``fe1, fe2, ...``), each of length ``n``. ``ValueError`` naming the
    factor and the first row when a length differs or a value is missing."""
    if absorb is None:
        items: list = []
    elif isinstance(absorb, pd.DataFrame):
        items = [(str(c), absorb[c].to_numpy()) for c in absorb.columns]
    elif isinstance(absorb, dict):
        items = [(str(k), np.asarray(v)) for k, v in absorb.items()]
    elif isinstance(absorb, (pd.Series, np.ndarray)) and np.ndim(absorb) == 1:
        items = [(str(getattr(absorb, "name", None) or "fe1"), np.asarray(absorb))]
    else:
        items = [(str(getattr(a, "name", None) or f"fe{k + 1}"), np.asarray(a)) for k, a in enumerate(absorb)]
    codes, labels, names = [], [], []
    for name, values in items:
        if values.ndim != 1 or len(values) != n:
            raise ValueError(f"{what}: factor '{name}' has {len(values) if values.ndim == 1 else values.shape} "
                             f"values; expected one per row ({n:,})")
        c, lab = pd.factorize(values)
        if (c < 0).any():
            row = int(np.flatnonzero(c < 0)[0])
            raise ValueError(f"{what}: factor '{name}' is missing at row {row}; every row needs a level")
        codes.append(c.astype(np.int64))
        labels.append(pd.Index(lab))
        names.append(name)
    return Factors(tuple(codes), tuple(labels), tuple(names))


def informative_rows(factors: Factors, y: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    r"""The rows that tell something about the other coefficients: ``(kept, n_singleton, n_zero)``.

    Removed, repeatedly until none is left (removing rows can make new ones):

    - rows alone in a level of some factor (*singletons*): their fixed effect fits them exactly, so
      they add nothing to the estimating equations of :math:`\beta` (their demeaned row is 0) and
      their leverage is 1, which leaves the CR3 correction :math:`(I - H_{gg})^{-1}` undefined;
    - with ``y`` (count models), rows of a level whose outcomes are all 0: the maximum likelihood
      estimate of that fixed effect is :math:`-\infty`, where those rows have mean 0 and weight 0;
      the other estimates are their limit, which the fit without the rows gives exactly
      (``fixest`` does the same).
    """
    n = len(factors.codes[0]) if factors.codes else (0 if y is None else len(y))
    kept = np.ones(n, dtype=bool)
    n_single = n_zero = 0
    while factors.codes:
        changed = False
        for c in factors.codes:
            counts = np.bincount(c, weights=kept.astype(float))
            single = kept & (counts[c] == 1)
            if single.any():
                n_single += int(single.sum())
                kept &= ~single
                changed = True
            if y is not None:
                total = np.bincount(c, weights=np.where(kept, y, 0.0))
                zero = kept & (total[c] == 0)
                if zero.any():
                    n_zero += int(zero.sum())
                    kept &= ~zero
                    changed = True
        if not changed:
            break
    return kept, n_single, n_zero


def demean(X: np.ndarray, w: np.ndarray, factors: Factors, tol: float = 1e-13, maxiter: int = 10_000,
           out: np.ndarray | None = None) -> np.ndarray:
    r""":math:`M_D X`: the columns of ``X`` (:math:`n \times p`) with their ``w``-weighted projection on
    the factors removed (see the module docstring). One factor: exact. Several: alternating
    projections until every factor's weighted level means are below ``tol`` times the column's
    largest absolute value (plus 1), at most ``maxiter`` sweeps. ``out``: an array of the shape of
    ``X`` (C order) to write the result to."""
    X = np.ascontiguousarray(X, dtype=float)
    w = np.ascontiguousarray(w, dtype=float)
    if X.ndim == 1:
        return demean(X[:, None], w, factors, tol, maxiter)[:, 0]
    if out is None:
        out = np.empty_like(X)
    if not factors.codes:
        out[:] = X
        return out
    if len(factors.codes) == 1:
        jit(_demean_one)(X, w, factors.codes[0], factors.n_levels[0], out)
        return out
    codes = np.ascontiguousarray(np.vstack(factors.codes))
    out[:] = X
    sweeps, converged = jit(_demean_many, _level_means)(out, w, codes, np.asarray(factors.n_levels), tol, maxiter)
    if not converged:
        warnings.warn(f"demeaning by {', '.join(factors.names)}: alternating projections stopped after {sweeps:,} "
                      f"sweeps above the tolerance {tol:g}; the absorbed fit is approximate",
                      ConvergenceWarning, stacklevel=2)
    return out


# -- compiled loops over rows --------------------------------------------------------------------

def jit(fn, *helpers):
    """``fn`` compiled by numba, imported on first use (importing the package stays fast) and cached
    on disk; ``helpers`` are the plain functions ``fn`` calls, compiled first and bound under their
    names in their module."""
    if fn not in _JITTED:
        import numba
        for h in helpers:
            if h not in _JITTED and not hasattr(h, "py_func"):     # not compiled yet (by another caller)
                _JITTED[h] = fn.__globals__[h.__name__] = numba.njit(cache=True, nogil=True)(h)
        _JITTED[fn] = numba.njit(cache=True, nogil=True)(fn)
    return _JITTED[fn]


_JITTED: dict = {}


def _demean_one(X, w, code, n_levels, out):                                # pragma: no cover (numba)
    n, p = X.shape
    sw = np.zeros(n_levels)
    s = np.zeros((n_levels, p))
    for i in range(n):
        k = code[i]
        sw[k] += w[i]
        for j in range(p):
            s[k, j] += w[i] * X[i, j]
    for k in range(n_levels):
        for j in range(p):
            s[k, j] /= sw[k]
    for i in range(n):
        k = code[i]
        for j in range(p):
            out[i, j] = X[i, j] - s[k, j]
    return out


def _level_means(out, w, code, sw, s):                                      # pragma: no cover (numba)
    """Subtract from ``out`` the ``w``-weighted means of the levels ``code``; the largest mean per column."""
    n, p = out.shape
    s[:] = 0.0
    for i in range(n):
        k = code[i]
        for j in range(p):
            s[k, j] += w[i] * out[i, j]
    biggest = np.zeros(p)
    for k in range(s.shape[0]):
        if sw[k] > 0:
            for j in range(p):
                s[k, j] /= sw[k]
                if abs(s[k, j]) > biggest[j]:
                    biggest[j] = abs(s[k, j])
    for i in range(n):
        k = code[i]
        for j in range(p):
            out[i, j] -= s[k, j]
    return biggest


def _demean_many(out, w, codes, n_levels, tol, maxiter):                   # pragma: no cover (numba)
    """Alternating projections on ``out`` in place; ``(sweeps, converged)``."""
    n, p = out.shape
    n_f = codes.shape[0]
    scale = np.ones(p)
    for i in range(n):
        for j in range(p):
            if abs(out[i, j]) + 1.0 > scale[j]:
                scale[j] = abs(out[i, j]) + 1.0
    sws = np.zeros((n_f, n_levels.max()))
    for f in range(n_f):
        for i in range(n):
            sws[f, codes[f, i]] += w[i]
    s = np.zeros((n_levels.max(), p))
    for sweep in range(1, maxiter + 1):
        done = True
        for f in range(n_f):
            biggest = _level_means(out, w, codes[f], sws[f], s[:n_levels[f]])
            for j in range(p):
                if biggest[j] > tol * scale[j]:
                    done = False
        if done:
            return sweep, True
    return maxiter, False
