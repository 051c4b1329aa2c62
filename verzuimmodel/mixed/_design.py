r"""Shared machinery of the mixed models: checked model frames and the random-intercept normal equations.

Two pieces, used by :mod:`~verzuimmodel.mixed.lmm` and :mod:`~verzuimmodel.mixed.glmm`:

``model_frame(df, formula, groups, offset=None, weights=None, table="data") -> ModelFrame``
    Outcome, fixed-effects design (patsy formula), grouping factors, offset and weights as arrays,
    with a :class:`~verzuimmodel.schema.SchemaError` for anything a model cannot use. A
    ``ModelFrame`` unpacks as ``y, X, names, group_codes, group_labels, offset, weights``.
    :func:`new_design` and :func:`new_group_codes` build the same design on new data (prediction).

``InterceptSystem(group_codes, n_levels)``
    The penalised least-squares problem of a model with one or more (crossed) random intercepts,
    for any prior or working weights:

    .. math:: \min_{\beta, u}\ \| W^{1/2}(y - X\beta - Z\Lambda_\theta u) \|^2 + \|u\|^2,

    with :math:`Z = [Z_1 \cdots Z_K]` the indicator matrices of the :math:`K` grouping factors,
    :math:`\Lambda_\theta = \operatorname{diag}(\theta_1 I_{G_1}, \ldots, \theta_K I_{G_K})` and
    :math:`u` the spherical random effects (``b = \Lambda_\theta u``). ``cross_products(X, y, w)`` does the
    one pass over the rows; ``solve(cp, theta)`` then costs :math:`O(G_1 p^2 + \mathrm{nnz} + q_2^3)` and no
    loop over rows or groups: it returns :math:`\hat\beta(\theta)`, :math:`\hat u(\theta)`,
    :math:`\log|L_\theta|^2 = \log|\Lambda Z'WZ\Lambda + I|`, :math:`\log|R_X|^2` and the penalised
    weighted residual sum of squares — everything lme4's profiled deviance and a Laplace
    approximation need.

How ``solve`` works: with the factor with the most levels first (``G_1`` levels, its block of
:math:`A = \Lambda Z'WZ\Lambda + I` is diagonal) and the other factors together (:math:`q_2` levels),

.. math:: A = \begin{pmatrix} D_1 & B \\ B' & A_{22} \end{pmatrix}, \qquad
          S = A_{22} - B' D_1^{-1} B \quad (q_2 \times q_2,\ \text{dense Cholesky}),

:math:`\log|A| = \sum \log D_1 + \log|S|`; :math:`B` (the weighted cross-tabulation of factor 1 against
the others) is sparse. Systems :math:`A c = r` are solved by block elimination. The fixed effects follow
from the Schur complement :math:`R_X'R_X = X'WX - r_X' A^{-1} r_X` with :math:`r = \Lambda Z'W[X\ y]`.
With one factor :math:`q_2 = 0` and everything is per-group sums. For two crossed factors put the one with
fewer levels second (done automatically): e.g. 1,000 PO schools diagonal and a 150 x 150 Schur complement
for the VO schools.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import patsy
from scipy import linalg, sparse

from ..schema import SchemaError

__all__ = ["ModelFrame", "model_frame", "new_design", "new_group_codes", "InterceptSystem", "CrossProducts",
           "PLSSolution"]

# names a formula may use that are not columns (patsy's own helpers and numpy)
_FORMULA_NAMES = {"np", "C", "Q", "I", "center", "standardize", "scale", "bs", "cr", "cc", "te", "poly",
                  "Treatment", "Sum", "Diff", "Helmert", "Poly", "log", "exp", "sqrt", "abs"}


def _rows(mask: np.ndarray) -> list[int]:
    """1-based data row numbers of the first offending rows."""
    return (np.flatnonzero(mask)[:5] + 1).tolist()


@dataclass(frozen=True)
class ModelFrame:
    """Arrays a mixed model fits on (one entry per row of the input, in its order).

    Unpacks as the 7-tuple ``y, X, names, group_codes, group_labels, offset, weights``.

    Attributes
    ----------
    y : (n,) float outcome.
    X : (n, p) float fixed-effects design (patsy; an intercept unless the formula has ``- 1`` / ``0 +``).
    names : the p column names of ``X`` (patsy's, e.g. ``"Intercept"``, ``"x1"``, ``"C(track)[T.vwo]"``).
    group_codes : one (n,) int64 array per grouping factor, codes ``0..G_k-1``.
    group_labels : one :class:`pandas.Index` per factor: the label of each code (sorted).
    offset : (n,) float or None.
    weights : (n,) float (positive) or None.
    outcome : name of the outcome (left-hand side of the formula).
    factors : names of the grouping columns, in the order given.
    design_info : patsy ``DesignInfo`` of ``X`` (for :func:`new_design`).
    """

    y: np.ndarray
    X: np.ndarray
    names: list[str]
    group_codes: list[np.ndarray]
    group_labels: list[pd.Index]
    offset: np.ndarray | None
    weights: np.ndarray | None
    outcome: str = ""
    factors: list[str] = field(default_factory=list)
    design_info: object = None

    def __iter__(self) -> Iterator:
        return iter((self.y, self.X, self.names, self.group_codes, self.group_labels, self.offset, self.weights))

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def n_levels(self) -> list[int]:
        return [len(lab) for lab in self.group_labels]


def _formula_columns(code: str) -> list[str]:
    """Column names a patsy factor expression refers to (bare names and ``Q("...")``)."""
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.append(node.id)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Q"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.append(node.args[0].value)
    return out


def _numeric_column(df: pd.DataFrame, col: str, table: str, what: str) -> np.ndarray:
    if col not in df.columns:
        raise SchemaError(table, col, f"column not found (the {what})",
                          expected="one of the columns: " + ", ".join(map(str, df.columns[:20])))
    s = df[col]
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        converted = pd.to_numeric(s, errors="coerce")
        bad = (converted.isna() & s.notna()).to_numpy()
        raise SchemaError(table, col, f"non-numeric values in the {what}", _rows(bad) or None, "numbers",
                          n_rows=int(bad.sum()))
    x = s.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(x)
    if bad.any():
        raise SchemaError(table, col, f"missing or infinite values in the {what}", _rows(bad), "finite numbers",
                          n_rows=int(bad.sum()))
    return x


def _group_column(df: pd.DataFrame, col: str, table: str) -> tuple[np.ndarray, pd.Index]:
    if not isinstance(col, str):
        raise TypeError(f"a grouping factor must be a column name, got {col!r}")
    if col not in df.columns:
        raise SchemaError(table, col, "column not found (a grouping factor)",
                          expected="one of the columns: " + ", ".join(map(str, df.columns[:20])))
    s = df[col]
    bad = s.isna().to_numpy()
    if bad.any():
        raise SchemaError(table, col, "missing values in a grouping factor", _rows(bad), "a group for every row",
                          n_rows=int(bad.sum()))
    codes, labels = pd.factorize(s, sort=True)
    return codes.astype(np.int64), pd.Index(labels, name=col)


def model_frame(df: pd.DataFrame, formula: str, groups: str | Sequence[str], offset: str | None = None,
                weights: str | None = None, table: str = "data") -> ModelFrame:
    """Check ``df`` and return the arrays of ``formula`` with grouping factors ``groups``.

    Parameters
    ----------
    df : the data, one row per observation.
    formula : patsy formula ``"outcome ~ terms"`` for the fixed effects (strings and categoricals are
        treatment-coded; ``C(x)`` forces a factor). Random effects go in ``groups``, not the formula.
    groups : a grouping column, or several for crossed (not nested) random intercepts. Nested factors
        are crossed factors with unique labels (e.g. a class label that includes its school).
    offset, weights : optional numeric columns (weights must be positive).
    table : name of the table in error messages.

    Raises
    ------
    SchemaError
        A column is missing; missing or infinite values (naming the first rows); a non-numeric
        outcome; a grouping factor with fewer than two groups; non-positive weights; a rank-deficient
        fixed-effects design. (A factor with a group per row is allowed here: it is an observation-level
        effect in a GLMM; the linear model rejects it.)
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"formula must be a string 'outcome ~ terms', got {formula!r}")
    if "|" in formula:
        raise ValueError("model_frame takes the fixed-effects formula: split off the '(1 | g)' terms first "
                         "(random_terms.split_formula)")
    factors = [groups] if isinstance(groups, str) else list(groups)
    terms = [f for f in factors if isinstance(f, str) and "|" in f]
    if terms:
        raise ValueError(f"groups={terms[0]!r}: model_frame takes grouping columns; read random-effects terms "
                         "('(x | g)') with random_terms.parse_random first")
    if not factors:
        raise ValueError("groups must name at least one grouping column")
    if len(set(factors)) != len(factors):
        raise ValueError(f"grouping factors given twice: {factors}")
    n = len(df)
    if n == 0:
        raise SchemaError(table, None, "no rows", expected="at least one row")
    desc = patsy.ModelDesc.from_formula(formula)
    if len(desc.lhs_termlist) != 1 or len(desc.lhs_termlist[0].factors) != 1:
        raise ValueError(f"formula needs exactly one outcome on the left of '~', got {formula!r}")
    outcome_code = desc.lhs_termlist[0].factors[0].code
    used = [outcome_code] + [f.code for t in desc.rhs_termlist for f in t.factors]
    columns: list[str] = []
    for code in used:
        for name in _formula_columns(code):
            if name not in columns:
                columns.append(name)
    for name in columns:
        if name not in df.columns and name not in _FORMULA_NAMES:
            raise SchemaError(table, name, "column not found (used in the formula)",
                              expected="one of the columns: " + ", ".join(map(str, df.columns[:20])))
    # the outcome: taken from its column when the left-hand side is a column (numbers or booleans)
    y_column = _numeric_column(df, outcome_code, table, "outcome") if outcome_code in df.columns else None
    for name in columns:
        if name in df.columns:
            bad = df[name].isna().to_numpy()
            if bad.any():
                raise SchemaError(table, name, "missing values in a column of the formula", _rows(bad),
                                  "a value in every row", n_rows=int(bad.sum()))
    codes, labels = [], []
    for col in factors:
        c, lab = _group_column(df, col, table)
        if len(lab) < 2:
            raise SchemaError(table, col, f"only {len(lab)} group in the grouping factor",
                              expected="at least 2 groups (a variance between groups needs several groups)")
        codes.append(c)
        labels.append(lab)
    env = patsy.EvalEnvironment([{"np": np}])
    no_na = patsy.NAAction(NA_types=[])     # no rows dropped: missing values left by a transformation are named below
    try:
        if y_column is not None:
            xmat = patsy.dmatrix(patsy.ModelDesc([], desc.rhs_termlist), df, eval_env=env, NA_action=no_na,
                                 return_type="matrix")
            y = y_column
        else:
            ymat, xmat = patsy.dmatrices(formula, df, eval_env=env, NA_action=no_na, return_type="matrix")
            if ymat.shape[1] != 1:
                raise SchemaError(table, outcome_code, "non-numeric outcome (patsy made it a factor)",
                                  expected="numbers")
            y = np.asarray(ymat, dtype=float)[:, 0]
    except patsy.PatsyError as e:
        raise SchemaError(table, None, f"cannot build the design of {formula!r}: {e}") from e
    bad = ~np.isfinite(y)
    if bad.any():
        raise SchemaError(table, outcome_code, "missing or infinite values in the outcome", _rows(bad),
                          "finite numbers", n_rows=int(bad.sum()))
    X = np.asarray(xmat, dtype=float)
    names = list(xmat.design_info.column_names)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        cols = ", ".join(nm for nm, ok in zip(names, np.isfinite(X).all(axis=0)) if not ok)
        raise SchemaError(table, cols, "missing or infinite values in the fixed-effects design", _rows(bad),
                          "finite values", n_rows=int(bad.sum()))
    _check_rank(X, names, table)
    off = _numeric_column(df, offset, table, "offset") if offset is not None else None
    w = None
    if weights is not None:
        w = _numeric_column(df, weights, table, "weights")
        bad = w <= 0
        if bad.any():
            raise SchemaError(table, weights, "weights not positive", _rows(bad), "weights > 0",
                              n_rows=int(bad.sum()))
    return ModelFrame(y=y, X=X, names=names, group_codes=codes, group_labels=labels, offset=off, weights=w,
                      outcome=outcome_code, factors=factors, design_info=xmat.design_info)


def _check_rank(X: np.ndarray, names: list[str], table: str) -> None:
    p = X.shape[1]
    if p == 0:
        return
    G = X.T @ X
    d = np.sqrt(np.diag(G))
    zero = d == 0
    if zero.any():
        raise SchemaError(table, ", ".join(n for n, z in zip(names, zero) if z), "a column of the design is all zero",
                          expected="a fixed-effects design of full column rank")
    C = G / np.outer(d, d)
    _, R, piv = linalg.qr(C, pivoting=True)
    r = np.abs(np.diag(R))
    dep = r < 1e-10 * r[0]
    if dep.any():
        cols = [names[j] for j in piv[dep]]
        raise SchemaError(table, ", ".join(cols), "the fixed-effects design is rank deficient (collinear columns)",
                          expected="columns that are not linear combinations of the others")


def new_design(mf: ModelFrame, df: pd.DataFrame, table: str = "newdata") -> np.ndarray:
    """The fixed-effects design of ``mf``'s formula on new data (same coding of categoricals)."""
    needed = [name for t in mf.design_info.terms for f in t.factors for name in _formula_columns(f.code)]
    for name in dict.fromkeys(needed):
        if name not in df.columns and name not in _FORMULA_NAMES:
            raise SchemaError(table, name, "column not found (used in the formula)")
        if name in df.columns:
            bad = df[name].isna().to_numpy()
            if bad.any():
                raise SchemaError(table, name, "missing values", _rows(bad), "a value in every row",
                                  n_rows=int(bad.sum()))
    try:
        (X,) = patsy.build_design_matrices([mf.design_info], df, NA_action=patsy.NAAction(NA_types=[]))
    except patsy.PatsyError as e:
        raise SchemaError(table, None, f"cannot build the fixed-effects design: {e}") from e
    return np.asarray(X, dtype=float)


def new_group_codes(df: pd.DataFrame, factor: str, labels: pd.Index, table: str = "newdata") -> np.ndarray:
    """Codes of ``df[factor]`` in the fitted ``labels``; -1 for groups not seen in fitting."""
    if factor not in df.columns:
        raise SchemaError(table, factor, "column not found (a grouping factor)")
    s = df[factor]
    bad = s.isna().to_numpy()
    if bad.any():
        raise SchemaError(table, factor, "missing values in a grouping factor", _rows(bad), "a group for every row",
                          n_rows=int(bad.sum()))
    return labels.get_indexer(s).astype(np.int64)


# --------------------------------------------------------------------------------------------------------------------
# penalised least squares with crossed random intercepts


def fixed_effects(M: np.ndarray, p: int) -> tuple[np.ndarray, float, float, np.ndarray]:
    r"""From the profiled cross-product matrix :math:`M` of :math:`[X, y]` (random effects
    eliminated; :math:`(p+1) \times (p+1)`): :math:`\hat\beta` (Cholesky of :math:`R_X^\top R_X
    = M_{XX}`), :math:`\log|R_X|^2`, the penalised residual sum of squares and :math:`M_{XX}`."""
    M = 0.5 * (M + M.T)
    if p:
        cX = linalg.cho_factor(M[:p, :p], lower=True, check_finite=False)
        beta = linalg.cho_solve(cX, M[:p, p], check_finite=False)
        ldRX2 = 2.0 * float(np.log(np.diag(cX[0])).sum())
    else:
        beta, ldRX2 = np.empty(0), 0.0
    return beta, ldRX2, float(M[p, p] - M[:p, p] @ beta), M[:p, :p]


@dataclass(frozen=True)
class CrossProducts:
    """Weighted cross products of one (X, y, w): the only pass over the rows (see ``InterceptSystem``)."""

    p: int
    d1: np.ndarray            # (G1,) weighted counts of the first (largest) factor
    B: sparse.csr_matrix      # (G1, q2) weighted cross-tabulation of the first factor against the others
    BT: sparse.csr_matrix     # its transpose
    pair_products: np.ndarray | None   # B[i, j] * B[i, l] for the pairs of non-zeros in a row of B
    C: np.ndarray             # (q2, q2) Z_r'WZ_r of the other factors (dense)
    r1: np.ndarray            # (G1, p+1) Z_1'W[X y]
    r2: np.ndarray            # (q2, p+1) Z_r'W[X y]
    M: np.ndarray             # (p+1, p+1) [X y]'W[X y]
    sum_log_w: float          # sum of log weights (lme4's ldW)


@dataclass(frozen=True)
class PLSSolution:
    """Solution of the penalised least-squares problem at one ``theta`` (see ``InterceptSystem``).

    ``beta`` (p,), ``u`` spherical random effects per factor (original order), ``ldL2`` =
    :math:`\\log|\\Lambda Z'WZ\\Lambda + I|`, ``ldRX2`` = :math:`\\log|R_X'R_X|`, ``pwrss`` =
    :math:`\\|W^{1/2}(y - X\\beta - Z\\Lambda u)\\|^2 + \\|u\\|^2`, ``RXtRX`` the (p, p) matrix
    :math:`X'WX - X'WZ\\Lambda A^{-1}\\Lambda Z'WX` (so ``vcov(beta) = sigma^2 inv(RXtRX)``).
    """

    beta: np.ndarray
    u: list[np.ndarray]
    ldL2: float
    ldRX2: float
    pwrss: float
    RXtRX: np.ndarray


class InterceptSystem:
    """Random-intercept structure of ``K`` grouping factors (see the module docstring for the algebra).

    Parameters
    ----------
    group_codes : one (n,) int array per factor, codes ``0..n_levels[k]-1``.
    n_levels : number of levels of each factor.

    Use ``cp = system.cross_products(X, y, w)`` once per set of (working) weights, then
    ``system.solve(cp, theta)`` for each ``theta`` (relative standard deviations, one per factor, in the
    order given). ``system.expand(b)`` maps per-factor group values to rows: ``sum_k b_k[codes_k]``.
    """

    def __init__(self, group_codes: Sequence[np.ndarray], n_levels: Sequence[int]):
        self.codes = [np.asarray(c, dtype=np.int64) for c in group_codes]
        self.n_levels = [int(g) for g in n_levels]
        self.K = len(self.codes)
        if self.K == 0:
            raise ValueError("at least one grouping factor is needed")
        self.n = len(self.codes[0])
        # internal order: the factor with most levels first (its block of A is diagonal)
        first = int(np.argmax(self.n_levels))
        self.order = [first] + [k for k in range(self.K) if k != first]
        self.G1 = self.n_levels[first]
        rest = self.order[1:]
        self.rest_sizes = [self.n_levels[k] for k in rest]
        self.q2 = int(sum(self.rest_sizes))
        starts = np.concatenate([[0], np.cumsum(self.rest_sizes)]).astype(np.int64)
        self.rest_starts = starts
        self._z1 = self.codes[first]
        self._zr = [self.codes[k] + starts[j] for j, k in enumerate(rest)]
        if self.q2:
            # non-zero pattern of B = Z_1'WZ_r (row-major) and, for each row of the data, its entry per factor
            keys = np.concatenate([self._z1 * self.q2 + zr for zr in self._zr])
            uniq, self._entry = np.unique(keys, return_inverse=True)
            self._nnz = len(uniq)
            self._B_cols = (uniq % self.q2).astype(np.int64)
            B_rows = uniq // self.q2
            self._B_indptr = np.concatenate([[0], np.cumsum(np.bincount(B_rows, minlength=self.G1))])
            # pairs of non-zeros in the same row of B: B'DB[j, l] = sum over pairs of D_i B_ij B_il
            k = np.diff(self._B_indptr)
            n_pairs = int((k.astype(np.int64) ** 2).sum())
            if n_pairs <= 3 * 10 ** 7:
                k_e = np.repeat(k, k)                                # per non-zero: count in its row
                e = np.repeat(np.arange(self._nnz), k_e)
                row_start = np.repeat(self._B_indptr[:-1], k)        # per non-zero: start of its row
                first = np.concatenate([[0], np.cumsum(k_e)[:-1]])
                f = np.repeat(row_start, k_e) + (np.arange(n_pairs) - np.repeat(first, k_e))
                self._pair_e, self._pair_f = e, f
                self._pair_row = B_rows[e]
                self._pair_flat = self._B_cols[e] * self.q2 + self._B_cols[f]
            else:                                                   # dense rows: sparse products instead
                self._pair_e = None

    def cross_products(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> CrossProducts:
        """Weighted cross products of ``[X y]`` with itself and with the indicator matrices."""
        n = self.n
        X = np.asarray(X, dtype=float).reshape(n, -1)
        p = X.shape[1]
        Xy = np.column_stack([X, np.asarray(y, dtype=float)])
        if w is None:
            w = np.ones(n)
            sum_log_w = 0.0
        else:
            w = np.asarray(w, dtype=float)
            sum_log_w = float(np.log(w).sum())
        WXy = Xy * w[:, None]
        d1 = np.bincount(self._z1, weights=w, minlength=self.G1)
        r1 = np.column_stack([np.bincount(self._z1, weights=WXy[:, j], minlength=self.G1) for j in range(p + 1)])
        M = Xy.T @ WXy
        q2 = self.q2
        pair_products = None
        if q2:
            r2 = np.zeros((q2, p + 1))
            C = np.zeros(q2 * q2)
            for a in self._zr:
                r2 += np.column_stack([np.bincount(a, weights=WXy[:, j], minlength=q2) for j in range(p + 1)])
                for b in self._zr:
                    C += np.bincount(a * q2 + b, weights=w, minlength=q2 * q2)
            C = C.reshape(q2, q2)
            vals = np.bincount(self._entry, weights=np.tile(w, len(self._zr)), minlength=self._nnz)
            B = sparse.csr_matrix((vals, self._B_cols, self._B_indptr), shape=(self.G1, q2))
            BT = B.T.tocsr()
            if self._pair_e is not None:
                pair_products = vals[self._pair_e] * vals[self._pair_f]
        else:
            r2 = np.empty((0, p + 1))
            B = sparse.csr_matrix((self.G1, 0))
            BT = sparse.csr_matrix((0, self.G1))
            C = np.empty((0, 0))
        return CrossProducts(p=p, d1=d1, B=B, BT=BT, pair_products=pair_products, C=C, r1=r1, r2=r2, M=M,
                             sum_log_w=sum_log_w)

    def _theta_parts(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (self.K,):
            raise ValueError(f"theta needs {self.K} values, got {theta.shape}")
        t1 = float(theta[self.order[0]])
        tr = np.repeat(theta[self.order[1:]], self.rest_sizes) if self.q2 else np.empty(0)
        return t1, tr

    def solve(self, cp: CrossProducts, theta: Sequence[float]) -> PLSSolution:
        """Solve the penalised least-squares problem at ``theta`` (one relative SD per factor)."""
        p = cp.p
        t1, tr = self._theta_parts(theta)
        a1 = t1 * t1 * cp.d1 + 1.0
        r1 = t1 * cp.r1
        s1 = r1 / a1[:, None]
        ldL2 = float(np.log(a1).sum())
        if self.q2:
            q2 = self.q2
            # B'D^{-1}B, then S = Lambda_r (C - t1^2 B'D^{-1}B) Lambda_r + I
            if cp.pair_products is not None:
                BDB = np.bincount(self._pair_flat, weights=cp.pair_products / a1[self._pair_row],
                                  minlength=q2 * q2).reshape(q2, q2)
            else:
                BDB = (cp.BT @ sparse.diags(1.0 / a1) @ cp.B).toarray()
            S = (cp.C - (t1 * t1) * BDB) * tr[:, None] * tr[None, :]
            S[np.diag_indices_from(S)] += 1.0
            cS = linalg.cho_factor(S, lower=True, check_finite=False)
            ldL2 += 2.0 * float(np.log(np.diag(cS[0])).sum())
            r2 = tr[:, None] * cp.r2
            c2 = linalg.cho_solve(cS, r2 - t1 * tr[:, None] * (cp.BT @ s1), check_finite=False)
            c1 = s1 - t1 * (cp.B @ (tr[:, None] * c2)) / a1[:, None]
            M = cp.M - r1.T @ c1 - r2.T @ c2
        else:
            c1, c2 = s1, np.empty((0, p + 1))
            M = cp.M - r1.T @ c1
        beta, ldRX2, pwrss, RXtRX = fixed_effects(M, p)
        u1 = c1[:, p] - c1[:, :p] @ beta
        u2 = c2[:, p] - c2[:, :p] @ beta
        u: list[np.ndarray] = [np.empty(0)] * self.K
        u[self.order[0]] = u1
        for j, k in enumerate(self.order[1:]):
            u[k] = u2[self.rest_starts[j]:self.rest_starts[j + 1]]
        return PLSSolution(beta=beta, u=u, ldL2=ldL2, ldRX2=ldRX2, pwrss=max(pwrss, 0.0), RXtRX=RXtRX)

    def expand(self, b: Sequence[np.ndarray]) -> np.ndarray:
        """Row values ``sum_k b[k][codes_k]`` of per-group values ``b`` (one array per factor)."""
        out = np.zeros(self.n)
        for c, bk in zip(self.codes, b):
            out += np.asarray(bk)[c]
        return out
