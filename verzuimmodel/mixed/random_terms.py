r"""lme4's random-effects terms for :class:`~verzuimmodel.mixed.lmm.LinearMixed`: parsing and the covariance
parametrisation.

Syntax
------
``groups=`` (or the formula) takes lme4's terms, joined with ``+``:

=========================  ===================================================================
``"school"``, ``"(1 | g)"``  a random intercept per level of ``g`` (a column name alone means this)
``"(x | g)"``                correlated random intercept and slope of ``x``: :math:`(b_0, b_1)_g \sim N(0, \Sigma)`
``"(0 + x | g)"``            a random slope of ``x`` only (``- 1`` works too)
``"(x || g)"``               uncorrelated intercept and slope: ``(1 | g) + (0 + x | g)`` (as lme4)
``"(1 | a:b)"``              the groups are the combinations of ``a`` and ``b``
``"(1 | a/b)"``              nested: ``(1 | a) + (1 | a:b)``
=========================  ===================================================================

The left of the bar is a patsy formula (``"x1 + x2"``, ``"C(track)"``); several terms may name the same
grouping factor if they do not repeat a column, and different factors are crossed.

Model and parametrisation
-------------------------
Term :math:`t` with :math:`q_t` columns :math:`z_{ti}` and grouping factor :math:`g_t` adds
:math:`z_{ti}' b_{t, g_t(i)}` to the linear predictor, :math:`b_{t,g} \sim N(0, \Sigma_t)` independent across
groups and terms. As lme4, :math:`\Sigma_t = \sigma^2 T_t T_t'` with :math:`T_t` lower triangular with a
non-negative diagonal (the relative covariance factor), and :math:`\theta` lists the lower triangles column by
column (for ``(x | g)``: :math:`\theta = (T_{11}, T_{21}, T_{22})`). The standard deviations and correlations
(``VarCorr``) are :math:`\sigma\sqrt{(T T')_{jj}}` and :math:`(TT')_{jk}/\sqrt{(TT')_{jj}(TT')_{kk}}`.
Terms on the same factor form one block whose :math:`T` is block diagonal (zero covariance between them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import patsy

from ..schema import SchemaError
from ._design import _FORMULA_NAMES, _formula_columns, _rows

__all__ = ["RandomTerm", "RandomStructure", "parse_random", "split_formula", "add_factor_columns", "read_terms"]

_SYNTAX = ("lme4 terms such as '(1 | g)', '(x | g)', '(x || g)', '(0 + x | g)', '(1 | a:b)' or '(1 | a/b)', "
           "or a grouping column name")
_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class RandomTerm:
    """One lme4 term ``(expr | factor)`` after ``||`` and ``/`` are expanded."""

    expr: str       # left of the bar: a patsy formula ("1", "Days", "0 + Days")
    factor: str     # the grouping factor: a column, or columns joined by ':'

    @property
    def text(self) -> str:
        return f"({self.expr} | {self.factor})"


def _top_level_split(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside parentheses."""
    out, depth, start = [], 0, 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced parentheses in {text!r}")
        elif depth == 0 and text.startswith(sep, i):
            out.append(text[start:i])
            start = i + len(sep)
            i += len(sep)
            continue
        i += 1
    if depth != 0:
        raise ValueError(f"unbalanced parentheses in {text!r}")
    out.append(text[start:])
    return out


def _unwrap(piece: str) -> str | None:
    """The inside of ``(...)`` when the parentheses enclose the whole piece, else None."""
    s = piece.strip()
    if not (s.startswith("(") and s.endswith(")")):
        return None
    depth = 0
    for i, c in enumerate(s):
        depth += c == "("
        depth -= c == ")"
        if depth == 0 and i < len(s) - 1:
            return None
    return s[1:-1]


def _unknown(piece: str, where: str) -> ValueError:
    return ValueError(f"unknown random-effects term {piece.strip()!r} in {where!r}: expected {_SYNTAX}")


def _parse_piece(piece: str, where: str, bare: bool = False) -> list[RandomTerm]:
    inner = piece if bare else _unwrap(piece)
    if inner is None:                              # among terms, only terms: "(x | g) + x" is refused
        raise _unknown(piece, where)
    double = "||" in inner
    parts = _top_level_split(inner, "||" if double else "|")
    if len(parts) != 2 or "|" in parts[1] or (not double and "|" in parts[0]):
        raise _unknown(piece, where)
    lhs, rhs = parts[0].strip(), parts[1].strip()
    if not lhs:
        raise _unknown(piece, where)
    nested = [f.strip() for f in rhs.split("/")]
    for f in nested:
        if not all(_NAME.match(c.strip()) for c in f.split(":")):
            raise ValueError(f"random-effects term {piece.strip()!r} in {where!r}: the grouping factor {rhs!r} must "
                             "be a column name, columns joined by ':' (their combinations) or '/' (nested)")
    factors = [":".join(c.strip() for f in nested[:k + 1] for c in f.split(":")) for k in range(len(nested))]
    lhs_terms = [lhs]
    if double:                                     # lme4's expandDoubleVerts: one term per formula term
        try:
            desc = patsy.ModelDesc.from_formula("~ " + lhs)
        except patsy.PatsyError as e:
            raise ValueError(f"random-effects term {piece.strip()!r}: cannot read {lhs!r}: {e}") from e
        lhs_terms = ["1" if not t.factors else "0 + " + t.name() for t in desc.rhs_termlist]
    return [RandomTerm(e, f) for f in factors for e in lhs_terms]


def parse_random(groups: str | Sequence[str]) -> list[RandomTerm]:
    """The random-effects terms of ``groups``: a column name, lme4 terms, or a list of either.

    Raises
    ------
    ValueError
        A term whose syntax is not lme4's (the message names it).
    """
    items = [groups] if isinstance(groups, str) else list(groups)
    if not items:
        raise ValueError("groups must name at least one grouping column or random-effects term")
    terms: list[RandomTerm] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"a grouping factor must be a column name or an lme4 term, got {item!r}")
        if "|" not in item and _unwrap(item) is None:
            terms.append(RandomTerm("1", item))    # a column name, whatever its characters (as before)
            continue
        if not item.strip().startswith("("):           # one bare term: "x | g"
            terms.extend(_parse_piece(item, item, bare=True))
            continue
        for piece in _top_level_split(item, "+"):
            if not piece.strip():
                raise _unknown(piece, item)
            terms.extend(_parse_piece(piece, item))
    return terms


def split_formula(formula: str) -> tuple[str, str | None]:
    """``"y ~ x + (x | g)"`` -> ``("y ~ x", "(x | g)")``: the fixed part and the random terms (or None)."""
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"formula must be a string 'outcome ~ terms', got {formula!r}")
    if "|" not in formula:
        return formula, None
    lhs, rhs = formula.split("~", 1)
    fixed, random = [], []
    for piece in _top_level_split(rhs, "+"):
        (random if "|" in piece else fixed).append(piece.strip())
    if any(_unwrap(p) is None for p in random):
        bad = next(p for p in random if _unwrap(p) is None)
        raise _unknown(bad, formula)
    fixed = [p for p in fixed if p]
    return f"{lhs.strip()} ~ {' + '.join(fixed) if fixed else '1'}", " + ".join(random)


def read_terms(df: pd.DataFrame, formula: str, groups, table: str = "data"
               ) -> tuple[str, list[RandomTerm], pd.DataFrame, list[str]]:
    """The fixed formula, the random-effects terms (from ``(... | g)`` in ``formula`` or from ``groups``),
    ``df`` with the interaction factors' columns (:func:`add_factor_columns`) and the grouping factors in order.

    Raises ``ValueError`` for terms both in the formula and in ``groups`` or in neither, or not in lme4's
    syntax, and ``TypeError`` if ``df`` is not a DataFrame.
    """
    fixed, in_formula = split_formula(formula)
    if in_formula is not None and groups is not None:
        raise ValueError("random effects are given either as '(... | g)' terms in the formula or with groups=, "
                         f"not both (formula {formula!r}, groups={groups!r})")
    if in_formula is None and groups is None:
        raise ValueError("no random effects: give groups= (a grouping column, or lme4 terms such as '(x | g)') "
                         "or '(... | g)' terms in the formula")
    terms = parse_random(in_formula if in_formula is not None else groups)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    data = add_factor_columns(df, terms, table)
    return fixed, terms, data, list(dict.fromkeys(t.factor for t in terms))


def add_factor_columns(df: pd.DataFrame, terms: Sequence[RandomTerm], table: str = "data") -> pd.DataFrame:
    """``df`` with a column per interaction factor ``a:b`` (labels joined by ':'), when there are any."""
    new = {}
    for t in terms:
        cols = t.factor.split(":")
        if len(cols) == 1 or t.factor in df.columns or t.factor in new:
            continue
        for c in cols:
            if c not in df.columns:
                raise SchemaError(table, c, "column not found (a grouping factor)",
                                  expected="one of the columns: " + ", ".join(map(str, df.columns[:20])))
        bad = df[cols].isna().any(axis=1).to_numpy()
        if bad.any():
            raise SchemaError(table, ", ".join(cols), "missing values in a grouping factor", _rows(bad),
                              "a group for every row", n_rows=int(bad.sum()))
        lab = df[cols[0]].astype(str)
        for c in cols[1:]:
            lab = lab + ":" + df[c].astype(str)
        new[t.factor] = lab.to_numpy()
    return df.assign(**new) if new else df


# --------------------------------------------------------------------------------------------------------------------

class RandomStructure:
    r"""The random-effects structure of a fit: terms, their columns, blocks (one per grouping factor) and the map
    between :math:`\theta`, the relative covariance factors :math:`T` and the SDs and correlations.

    Build with :meth:`build`. ``theta_index`` lists for each element of :math:`\theta` its (term, row, column)
    in the term's :math:`T_t`; ``block_index`` the same element's (block, row, column) in the block's :math:`T`.
    """

    def __init__(self, terms: list[RandomTerm], columns: list[list[str]], design_infos: list, factors: list[str]):
        self.terms, self.columns, self.design_infos, self.factors = terms, columns, design_infos, factors
        self.term_block = [factors.index(t.factor) for t in terms]
        self.block_columns: list[list[str]] = [[] for _ in factors]
        self.term_offset = []
        for t, cols in zip(terms, columns):
            b = self.term_block[len(self.term_offset)]
            self.term_offset.append(len(self.block_columns[b]))
            self.block_columns[b].extend(cols)
        self.block_q = [len(c) for c in self.block_columns]
        theta_index, block_index = [], []
        for k, cols in enumerate(columns):
            q = len(cols)
            for j in range(q):
                for i in range(j, q):
                    theta_index.append((k, i, j))
                    off = self.term_offset[k]
                    block_index.append((self.term_block[k], off + i, off + j))
        self.theta_index, self.block_index = theta_index, block_index
        self.n_theta = len(theta_index)
        self.is_diag = np.array([i == j for _, i, j in theta_index])
        self.lower = np.where(self.is_diag, 0.0, -np.inf)
        self.intercepts_only = (all(c == ["Intercept"] for c in columns) and len(set(self.term_block)) == len(terms))

    # ------------------------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, terms: list[RandomTerm], df: pd.DataFrame, n_levels: dict[str, int],
              table: str = "data") -> tuple["RandomStructure", list[np.ndarray]]:
        """The structure of ``terms`` on ``df`` and each block's (n, q_b) columns; ``n_levels`` per factor.

        Raises
        ------
        SchemaError
            A column of a term is missing or has missing values; a term repeats a column of another term on the
            same factor; a term with as many random effects as rows.
        ValueError
            The same term given twice.
        """
        seen = set()
        for t in terms:
            if t in seen:
                raise ValueError(f"random-effects term {t.text} given twice")
            seen.add(t)
        factors = list(dict.fromkeys(t.factor for t in terms))
        env = patsy.EvalEnvironment([{"np": np}])
        columns, infos, mats = [], [], []
        n = len(df)
        for t in terms:
            try:
                desc = patsy.ModelDesc.from_formula("~ " + t.expr)
            except patsy.PatsyError as e:
                raise ValueError(f"random-effects term {t.text}: cannot read {t.expr!r}: {e}") from e
            for code in [f.code for term in desc.rhs_termlist for f in term.factors]:
                for name in _formula_columns(code):
                    if name not in df.columns and name not in _FORMULA_NAMES:
                        raise SchemaError(table, name, f"column not found (used in the random-effects term {t.text})",
                                          expected="one of the columns: " + ", ".join(map(str, df.columns[:20])))
                    if name in df.columns:
                        bad = df[name].isna().to_numpy()
                        if bad.any():
                            raise SchemaError(table, name, f"missing values in a column of the random-effects term "
                                              f"{t.text}", _rows(bad), "a value in every row", n_rows=int(bad.sum()))
            try:
                m = patsy.dmatrix(desc, df, eval_env=env, NA_action=patsy.NAAction(NA_types=[]),
                                  return_type="matrix")
            except patsy.PatsyError as e:
                raise SchemaError(table, None, f"cannot build the random-effects term {t.text}: {e}") from e
            Z = np.asarray(m, dtype=float)
            if Z.shape[1] == 0:
                raise ValueError(f"random-effects term {t.text} has no columns")
            bad = ~np.isfinite(Z).all(axis=1)
            if bad.any():
                raise SchemaError(table, t.expr, f"missing or infinite values in the random-effects term {t.text}",
                                  _rows(bad), "finite values", n_rows=int(bad.sum()))
            G = n_levels[t.factor]
            if G * Z.shape[1] >= n:
                raise SchemaError(table, t.factor, f"the random-effects term {t.text} has {G * Z.shape[1]} random "
                                  f"effects for {n} rows", expected="fewer random effects than rows (they would "
                                  "not be separable from the residual variance)")
            columns.append(list(m.design_info.column_names))
            infos.append(m.design_info)
            mats.append(Z)
        for f in factors:
            names = [c for t, cols in zip(terms, columns) if t.factor == f for c in cols]
            dup = sorted({c for c in names if names.count(c) > 1})
            if dup:
                which = " and ".join(t.text for t, cols in zip(terms, columns)
                                     if t.factor == f and set(dup) & set(cols))
                raise SchemaError(table, f, f"the random-effects terms {which} repeat the column(s) {', '.join(dup)} "
                                  "of the same grouping factor", expected="each column once per grouping factor")
        s = cls(terms, columns, infos, factors)
        blocks = [np.column_stack([mats[k] for k in range(len(terms)) if s.term_block[k] == b])
                  for b in range(len(factors))]
        return s, blocks

    def new_columns(self, df: pd.DataFrame) -> list[np.ndarray]:
        """Each block's columns on new data (same coding), for prediction."""
        mats = []
        for t, info in zip(self.terms, self.design_infos):
            try:
                (m,) = patsy.build_design_matrices([info], df, NA_action=patsy.NAAction(NA_types=[]))
            except patsy.PatsyError as e:
                raise SchemaError("newdata", None, f"cannot build the random-effects term {t.text}: {e}") from e
            mats.append(np.asarray(m, dtype=float).reshape(len(df), -1))
        return [np.column_stack([mats[k] for k in range(len(self.terms)) if self.term_block[k] == b])
                for b in range(len(self.factors))]

    # ------------------------------------------------------------------------------------------------------------
    def start(self) -> np.ndarray:
        """lme4's starting value: :math:`T = I`."""
        return self.is_diag.astype(float)

    def block_factors(self, theta: np.ndarray) -> list[np.ndarray]:
        """The relative covariance factor :math:`T_b` of each block (lower triangular, q_b x q_b)."""
        T = [np.zeros((q, q)) for q in self.block_q]
        for v, (b, i, j) in zip(np.asarray(theta, dtype=float), self.block_index):
            T[b][i, j] = v
        return T

    def term_factors(self, theta: np.ndarray) -> list[np.ndarray]:
        T = [np.zeros((len(c), len(c))) for c in self.columns]
        for v, (k, i, j) in zip(np.asarray(theta, dtype=float), self.theta_index):
            T[k][i, j] = v
        return T

    def varcorr_rows(self, theta: np.ndarray, scale: float = 1.0) -> list[dict]:
        """Rows of a printed random-effects table (as lme4's ``VarCorr``): per term and column its
        variance, SD and correlations with the columns before it; the covariance is ``scale`` (the
        residual variance of a linear model, 1 otherwise) times :math:`TT'`."""
        rows = []
        for Tk, t, cols in zip(self.term_factors(theta), self.terms, self.columns):
            S = scale * Tk @ Tk.T
            sd = np.sqrt(np.maximum(np.diag(S), 0.0))
            for i, c in enumerate(cols):
                with np.errstate(divide="ignore", invalid="ignore"):
                    cor = " ".join(f"{S[i, j] / (sd[i] * sd[j]):.3f}" for j in range(i))
                rows.append({"group": t.factor if i == 0 else "", "name": c, "variance": f"{S[i, i]:.6g}",
                             "sd": f"{sd[i]:.6g}", "corr": cor})
        return rows

    def _from_term_factors(self, T: list[np.ndarray]) -> np.ndarray:
        return np.array([T[k][i, j] for k, i, j in self.theta_index])

    def canonical(self, theta: np.ndarray) -> np.ndarray:
        """The same covariance with a non-negative diagonal (columns of :math:`T` with a negative diagonal
        flipped; :math:`TT'` is unchanged)."""
        theta = np.asarray(theta, dtype=float)
        if self.is_diag.all():
            return np.abs(theta)
        T = self.term_factors(theta)
        for Tk in T:
            Tk *= np.where(np.diag(Tk) < 0, -1.0, 1.0)[None, :]
        return self._from_term_factors(T)

    def sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """lme4's ``Cv_to_Sv``: SDs (diagonal positions) and correlations (off-diagonal) in :math:`\\theta`'s order."""
        out = []
        for Tk, cols in zip(self.term_factors(theta), self.columns):
            S = sigma ** 2 * Tk @ Tk.T
            sd = np.sqrt(np.maximum(np.diag(S), 0.0))
            with np.errstate(divide="ignore", invalid="ignore"):
                C = S / np.outer(sd, sd)
            q = len(cols)
            out.extend(sd[i] if i == j else C[i, j] for j in range(q) for i in range(j, q))
        return np.array(out, dtype=float)

    def theta_from_sdcor(self, v: np.ndarray, sigma: float) -> np.ndarray:
        """lme4's ``Sv_to_Cv``: :math:`\\theta` of SDs and correlations ``v`` (a Cholesky that allows a singular
        covariance, as lme4's ``safe_chol``)."""
        T = []
        pos = 0
        for cols in self.columns:
            q = len(cols)
            S = np.zeros((q, q))
            for j in range(q):
                for i in range(j, q):
                    S[i, j] = v[pos]
                    pos += 1
            sd = np.diag(S).copy()
            C = S + S.T - np.diag(np.diag(S))
            np.fill_diagonal(C, 1.0)
            T.append(_safe_cholesky(C * np.outer(sd, sd)) / sigma)
        return self._from_term_factors(T)

    # ------------------------------------------------------------------------------------------------------------
    def theta_names(self) -> list[str]:
        """``g`` for a random intercept alone on its factor, else lme4's ``g.col`` and ``g.col_i.col_j``."""
        out = []
        for k, i, j in self.theta_index:
            t, cols = self.terms[k], self.columns[k]
            if i == j:
                out.append(self.variance_name(t.factor, cols[i]))
            else:
                out.append(f"{t.factor}.{cols[i]}.{cols[j]}")
        return out

    def variance_name(self, factor: str, column: str) -> str:
        b = self.factors.index(factor)
        return factor if column == "Intercept" and self.block_columns[b] == ["Intercept"] else f"{factor}.{column}"

    def profile_names(self) -> list[str]:
        """lme4's ``confint(oldNames = FALSE)`` names: ``sd_col|g``, ``cor_col_i.col_j|g`` (patsy's column names)."""
        out = []
        for k, i, j in self.theta_index:
            t, cols = self.terms[k], self.columns[k]
            out.append(f"sd_{cols[i]}|{t.factor}" if i == j else f"cor_{cols[i]}.{cols[j]}|{t.factor}")
        return out

    def varcorr(self, theta: np.ndarray, sigma: float) -> pd.DataFrame:
        """``as.data.frame(VarCorr(fit))``: per term its variances, then its covariances; then the residual."""
        rows = []
        for Tk, t, cols in zip(self.term_factors(theta), self.terms, self.columns):
            S = sigma ** 2 * Tk @ Tk.T
            sd = np.sqrt(np.maximum(np.diag(S), 0.0))
            for i, c in enumerate(cols):
                rows.append((t.factor, c, None, S[i, i], sd[i]))
            for j in range(len(cols)):
                for i in range(j + 1, len(cols)):
                    cor = S[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan
                    rows.append((t.factor, cols[j], cols[i], S[i, j], cor))
        rows.append(("Residual", None, None, sigma ** 2, sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    def describe(self) -> list[str]:
        return [t.text for t in self.terms]


def _safe_cholesky(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite matrix (zero columns where it is singular)."""
    q = len(S)
    L = np.zeros((q, q))
    for j in range(q):
        d = S[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-14 * max(S[j, j], 1e-300):
            L[j, j] = 0.0
            continue
        L[j, j] = np.sqrt(d)
        L[j + 1:, j] = (S[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]
    return L
