r"""Formulas and missing values: one layer shared by the survival regression models.

:func:`model_design` turns ``formula=`` (or ``covariates=``) and ``na_action=`` into the data a model
fits on, so that ``CoxPH``, ``FrailtyCox``, ``FineGray``, ``CauseSpecificCox`` and ``WeibullPH`` read
formulas the same way, with patsy (the formula engine of the mixed models too).

Formulas
--------
A right-hand side, as in R: ``"age + C(sex) + treat:age + strata(region)"`` (a leading ``~`` is
allowed; the outcome is ``duration=`` and ``event=``). String, boolean and categorical columns, and
``C(x)``, are treatment-coded against their first level (R's default); ``C(x, Treatment(reference="b"))``
chooses the reference. ``a:b`` is an interaction, ``a*b`` is ``a + b + a:b``; ``np.log(x)``, ``I(x**2)``
and patsy's other transformations work; ``Q("ph.ecog")`` quotes a column name. Factors are coded as
with an intercept, which is then left out (a Cox model has none; in ``WeibullPH`` it is ``log_lambda``;
``- 1`` / ``0 +`` are refused). Coefficients have patsy's names (``C(sex)[T.M]``, ``age:treat``) and
order (R's, by degree, can differ); levels are sorted as Python sorts them (R's locale order can
differ for mixed case). Special terms of bare column names leave the design: ``strata(a, b)`` becomes
``strata=``, ``cluster(school)`` ``cluster=`` (in models that have them) and ``frailty(school)`` the
``group=`` of ``FrailtyCox``. A special both in the formula and as an argument, or ``formula=`` with
``covariates=``, is an error.

Missing values
--------------
``na_action="raise"`` (default) refuses missing values with a :class:`~verzuimmodel.schema.SchemaError`
naming the column and first rows. ``"drop"`` drops rows with a missing value (``None``/``NaN``/``NA``;
infinite values remain errors) in any column the model uses — duration, event, entry, weights,
offset, frailty group, covariates or formula columns, strata, cluster — as R's default ``na.omit``.
The count is the model's ``n_dropped_``, in its ``repr`` (as R's "deleted due to missingness") and
``tidy().attrs["n_dropped"]``; not a warning, as dropping was asked for and :func:`~verzuimmodel.diagnose`
would count every such fit as warned. Later errors number rows as in the data passed in; unused
levels of a categorical column are dropped.
"""

from __future__ import annotations

import ast
import builtins
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy

from ..schema import SchemaError

__all__ = ["NA_ACTIONS", "DesignSpec", "SurvivalDesign", "model_design", "dropped_note", "with_n_dropped"]

NA_ACTIONS = ("raise", "drop")
SPECIALS = ("strata", "cluster", "frailty")
_FUNCTIONS = {"C", "I", "Q", "Treatment", "Sum", "Diff", "Helmert", "Poly", "center", "standardize", "scale",
              "bs", "cr", "cc", "te"}       # patsy's; besides these, Python's builtins and np.<function>
_ENV = patsy.EvalEnvironment([{"np": np}])
_NO_NA = patsy.NAAction(NA_types=[])      # patsy drops nothing: missing values are handled here


def _rows(mask: np.ndarray, rows: np.ndarray | None = None) -> list[int]:
    """1-based numbers of the first offending rows; with ``rows``, as numbered in the data passed in."""
    first = (np.flatnonzero(mask)[:5] + 1).tolist()
    return first if rows is None else [int(rows[r - 1]) for r in first]


@dataclass(frozen=True)
class DesignSpec:
    """How a fit made its covariates, kept on the model as ``design_``: rebuilds them on other data."""

    formula: str | None
    covariates: list[str]
    design_info: object | None            # patsy DesignInfo (None without a formula)
    na_action: str
    na_columns: tuple[str, ...]           # a missing value in one of these drops a row ("drop")
    formula_columns: tuple[str, ...]

    def __reduce__(self):   # patsy designs do not pickle: the model pickles without it (new_frame says so)
        return DesignSpec, (self.formula, self.covariates, None, self.na_action, self.na_columns, self.formula_columns)

    def fit_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``df`` the fit used, with the design columns (model checks on the fit's data)."""
        if self.na_action == "drop":
            df = df[~df[[c for c in self.na_columns if c in df.columns]].isna().any(axis=1).to_numpy()]
        return self.new_frame(df, table="data")

    def new_frame(self, df: pd.DataFrame, table: str = "newdata") -> pd.DataFrame:
        """``df`` with the design columns of the fit's formula added (same coding; for prediction)."""
        if self.design_info is None:
            if self.formula is not None:
                raise ValueError(f"this model was fitted with formula {self.formula!r} and then pickled, which loses "
                                 "patsy's coding of the formula: refit it to use it on data")
            return df
        for col in self.formula_columns:
            _check_column(df, col, table, self.formula)
        try:
            (X,) = patsy.build_design_matrices([self.design_info], _patsy_frame(df, self.formula_columns, False),
                                               NA_action=_NO_NA)
        except patsy.PatsyError as e:
            raise SchemaError(table, None, f"cannot code formula {self.formula!r}: {e.message}") from None
        return df.assign(**dict(zip(self.covariates, _without_intercept(X).T)))


@dataclass(frozen=True)
class SurvivalDesign:
    """What :func:`model_design` returns. ``data``: the rows kept, with a formula's design columns under
    their names ``covariates``; ``specials``: the resolved strata/cluster/frailty columns; ``rows``: the
    1-based numbers in the input of the rows of ``data`` (None when none was dropped)."""

    data: pd.DataFrame
    covariates: list[str]
    specials: dict
    n_dropped: int
    rows: np.ndarray | None
    spec: DesignSpec

    @contextmanager
    def original_rows(self):
        """Give :class:`SchemaError` s raised inside the row numbers of the data as passed in."""
        try:
            yield
        except SchemaError as e:
            if self.rows is None or not e.rows:
                raise
            raise SchemaError(e.table, e.column, e.problem, [int(self.rows[r - 1]) for r in e.rows], e.expected,
                              e.n_rows) from None


def model_design(df: pd.DataFrame, model: str, *, formula: str | None = None, covariates=None,
                 na_action: str = "raise", specials: dict | None = None, columns=(),
                 table: str = "data") -> SurvivalDesign:
    """Resolve ``formula``/``covariates`` and ``na_action`` for ``model`` (its name, for messages).

    ``specials`` maps the special terms the model accepts to their argument values, e.g.
    ``{"strata": strata, "cluster": cluster}``; ``columns`` names the model's other columns
    (duration, event, entry, weights, offset; ``None`` entries are skipped). See the module docstring.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if na_action not in NA_ACTIONS:
        raise ValueError(f"{model}: na_action={na_action!r}; expected 'raise' or 'drop'")
    specials = dict(specials or {})
    if formula is not None and covariates is not None:
        raise ValueError(f"{model}: give formula= or covariates=, not both (formula={formula!r}, "
                         f"covariates={list(covariates)!r})")
    terms, formula_columns = _parse(df, model, formula, specials, table) if formula is not None else ([], [])
    covariates = [covariates] if isinstance(covariates, str) else list(covariates or ())
    special_cols = [c for v in specials.values() if v is not None for c in ([v] if isinstance(v, str) else v)]
    used = list(dict.fromkeys([c for c in columns if c is not None] + covariates + formula_columns + special_cols))
    present = [c for c in used if isinstance(c, str) and c in df.columns]
    data, rows, n_dropped = df, None, 0
    if na_action == "drop" and present:
        missing = df[present].isna().any(axis=1).to_numpy()
        n_dropped = int(missing.sum())
        if n_dropped == len(df) and len(df):
            raise SchemaError(table, None, f"no rows left: every row has a missing value (na_action='drop' in "
                              f"{model}; columns {', '.join(present)})", expected="some complete rows")
        if n_dropped:
            rows, data = np.flatnonzero(~missing) + 1, df[present][~missing]
    spec = DesignSpec(formula, covariates, None, na_action, tuple(present), tuple(formula_columns))
    if formula is not None:
        for col in formula_columns:
            _check_column(data, col, table, formula, rows)
        X, covariates, info = _build(data, model, formula, terms, formula_columns, table, rows)
        spec = DesignSpec(formula, covariates, info, na_action, tuple(present), tuple(formula_columns))
        # the model's other columns; a numeric column also in the formula has the same values as its design column
        others = [c for c in present if (c not in formula_columns or c in special_cols or c in columns)
                  and c not in covariates]
        data = pd.concat([data[others], pd.DataFrame(X, columns=covariates, index=data.index)], axis=1)
    return SurvivalDesign(data, covariates, specials, n_dropped, rows, spec)


def _parse(df, model, formula, specials, table):
    """Terms of the design and the columns they use; special terms resolved into ``specials`` (in place)."""
    if not isinstance(formula, str):
        raise TypeError(f"{model}: formula must be a string such as 'age + C(sex)', got {type(formula).__name__}")
    lhs, tilde, rhs = formula.partition("~")
    if tilde and lhs.strip():
        raise ValueError(f"{model}: formula {formula!r}: give the right-hand side only (the outcome is "
                         "duration= and event=)")
    try:
        desc = patsy.ModelDesc.from_formula("~ " + ((rhs if tilde else lhs).strip() or "1"))
    except patsy.PatsyError as e:
        raise _patsy_error(model, formula, e) from None
    if patsy.INTERCEPT not in desc.rhs_termlist:
        raise ValueError(f"{model}: formula {formula!r}: '- 1' / '0 +' is not needed: the model has no intercept "
                         "column, and factors are coded against their first level")
    terms, columns = [], []
    for term in desc.rhs_termlist:
        name = term.name()
        special = [s for s in (_special(f.code, model, name) for f in term.factors) if s is not None]
        if special:
            kind, cols = special[0]
            checks = [(len(term.factors) > 1, f"{kind}() cannot be part of an interaction"),
                      (kind not in specials, f"{model} has no {kind} (special terms: "
                                             f"{', '.join(f'{k}()' for k in specials) or 'none'})"),
                      (not cols, f"{kind}() names no column; expected e.g. {kind}(school)"),
                      (specials.get(kind) is not None, f"{kind} given twice (also {kind}={specials.get(kind)!r})"),
                      (kind != "strata" and len(cols) > 1, f"{kind}() takes one column")]
            problem = next((message for bad, message in checks if bad), None)
            if problem:
                raise ValueError(f"{model}: formula term {name!r}: {problem}")
            specials[kind] = cols[0] if len(cols) == 1 else cols
        used = [c for _, cs in special for c in cs] or [c for f in term.factors for c in _names(f.code, model, name)]
        for c in used:
            if c not in df.columns:
                dotted = [str(d) for d in df.columns if str(d).startswith(f"{c}.")][:1]
                raise SchemaError(table, c, f"column not found (in the formula term {name!r})",
                                  expected=f'Q("{dotted[0]}") for a column name with a dot' if dotted else
                                  "one of the columns: " + ", ".join(map(str, df.columns[:20])))
            if not special and c not in columns:
                columns.append(c)
        if not special and term != patsy.INTERCEPT:
            terms.append(term)
    return terms, columns


def _special(code: str, model: str, term: str):
    """``(kind, columns)`` of a special term ``strata(a, b)``, ``cluster(c)``, ``frailty(g)``; else None."""
    node = _parsed(code)
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SPECIALS):
        return None
    cols = [a.id if isinstance(a, ast.Name) else _quoted(a) for a in node.args]
    if None in cols or node.keywords:
        raise ValueError(f"{model}: formula term {term!r}: {node.func.id}() takes column names only")
    return node.func.id, cols


def _names(code: str, model: str, term: str) -> list[str]:
    """Columns a patsy factor refers to (bare names and ``Q("...")``); unknown functions are refused."""
    tree = _parsed(code)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    for f in {n.func.id for n in calls} - _FUNCTIONS:
        if not hasattr(builtins, f):
            raise ValueError(f"{model}: formula term {term!r}: unknown function {f!r} (use np.{f} or patsy's "
                             "C(), I(), Q(), ...; strata() and cluster() stand alone)")
    funcs = {id(n.func) for n in calls}
    return [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in funcs and n.id != "np"] \
        + [q for q in map(_quoted, calls) if q is not None]


def _parsed(code: str):
    try:
        return ast.parse(code.strip(), mode="eval").body
    except SyntaxError:       # patsy reports it when it evaluates the factor
        return ast.Constant(None)


def _quoted(node) -> str | None:
    """The column name of ``Q("name")``, else None."""
    ok = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Q" and node.args
    return node.args[0].value if ok and isinstance(getattr(node.args[0], "value", None), str) else None


def _patsy_error(model: str, formula: str, e: patsy.PatsyError) -> ValueError:
    at = e.origin.code[e.origin.start:e.origin.end] if e.origin is not None else ""
    return ValueError(f"{model}: formula {formula!r}" + (f", term {at!r}" if at else "") + ": "
                      + e.message.splitlines()[0])


def _check_column(df, col, table, formula, rows=None):
    if col not in df.columns:
        raise SchemaError(table, col, f"column not found (used in the formula {formula!r})")
    bad = df[col].isna().to_numpy()
    if bad.any():
        raise SchemaError(table, col, f"missing values in a column of the formula {formula!r}", _rows(bad, rows),
                          "a value in every row (na_action='drop' drops rows with missing values)",
                          n_rows=int(bad.sum()))


def _patsy_frame(df: pd.DataFrame, columns, fitting: bool = True) -> pd.DataFrame:
    """The formula's columns, pandas' nullable types as numpy ones; categoricals without their unused
    categories (fitting) or as their values (new data: patsy maps them to the fitted levels)."""
    out = {}
    for c in columns:
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.cat.remove_unused_categories() if fitting else s.astype(object)
        elif pd.api.types.is_extension_array_dtype(s.dtype):
            s = s.astype(bool if pd.api.types.is_bool_dtype(s.dtype) else
                         float if pd.api.types.is_numeric_dtype(s.dtype) else object)
        out[c] = s
    return pd.DataFrame(out, index=df.index)


def _build(data, model, formula, terms, columns, table, rows):
    try:       # values a transformation cannot take (np.log(0)) are refused below, by term: no numpy warnings
        with np.errstate(all="ignore"):
            mat = patsy.dmatrix(patsy.ModelDesc([], [patsy.INTERCEPT] + terms), _patsy_frame(data, columns),
                                eval_env=_ENV, NA_action=_NO_NA, return_type="matrix")
    except patsy.PatsyError as e:
        raise _patsy_error(model, formula, e) from None
    X, names = _without_intercept(mat), _without_intercept(mat, mat.design_info.column_names)
    finite = np.isfinite(X)
    if not finite.all():
        j = int(np.flatnonzero(~finite.all(axis=0))[0])
        raise SchemaError(table, names[j], f"missing or infinite values made by the formula {formula!r}",
                          _rows(~finite[:, j], rows), "finite values (e.g. np.log of positive numbers only)",
                          n_rows=int((~finite[:, j]).sum()))
    return X, names, mat.design_info


def _without_intercept(mat, values=None):
    """Columns (or, with ``values``, column names) of a patsy design matrix without its intercept."""
    isl = mat.design_info.term_slices[patsy.INTERCEPT]
    if values is not None:
        return list(values[:isl.start]) + list(values[isl.stop:])
    return np.delete(np.asarray(mat, dtype=float), np.s_[isl.start:isl.stop], axis=1)


def dropped_note(model) -> str:
    """``" (3 rows deleted due to missingness)"`` for a model's repr; empty when none were dropped."""
    k = getattr(model, "n_dropped_", 0)
    return f" ({k:,} row{'s' if k != 1 else ''} deleted due to missingness)" if k else ""


def with_n_dropped(table: pd.DataFrame, model) -> pd.DataFrame:
    """``table`` with ``attrs["n_dropped"]``: the rows the fit dropped for missing values."""
    table.attrs["n_dropped"] = int(getattr(model, "n_dropped_", 0))
    return table
