"""Checked survival input: the arrays every survival estimator fits on.

``survival_data`` turns a DataFrame into a :class:`SurvData`, raising a
:class:`~verzuimmodel.schema.SchemaError` that names the table, column and first offending
rows for anything a model cannot use (missing columns, non-numeric or missing values, stop not
after start, events not coded as expected, non-positive weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from ..schema import SchemaError

__all__ = ["SurvData", "survival_data", "group_codes"]


@dataclass(frozen=True)
class SurvData:
    """Survival data as arrays, one entry per row of the input.

    ``entry`` is ``-inf`` without late entry. ``event`` is 0/1 (``kind="binary"``) or 0 (censored)
    and cause codes 1..K (``kind="causes"``). ``strata`` and ``cluster`` are integer codes
    (0..G-1) or None; ``strata_labels`` / ``cluster_labels`` hold the original values.
    """

    entry: np.ndarray
    exit: np.ndarray
    event: np.ndarray
    X: np.ndarray
    covariates: list[str]
    weights: np.ndarray
    strata: np.ndarray | None
    strata_labels: pd.Index | None
    cluster: np.ndarray | None
    cluster_labels: pd.Index | None
    index: pd.Index

    @property
    def n(self) -> int:
        return len(self.exit)

    @property
    def has_entry(self) -> bool:
        return bool(np.isfinite(self.entry).any())


def _rows(mask: np.ndarray) -> list[int]:
    return (np.flatnonzero(mask)[:5] + 1).tolist()


def _numeric(df: pd.DataFrame, col: str, table: str, what: str) -> np.ndarray:
    if col not in df.columns:
        raise SchemaError(table, col, f"column not found (the {what})",
                          expected="one of the columns: " + ", ".join(map(str, df.columns[:20])))
    s = df[col]
    if s.dtype == bool:
        s = s.astype(float)
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        converted = pd.to_numeric(s, errors="coerce")
        bad = converted.isna() & s.notna()
        hint = f' (a categorical column goes in a formula: formula="C({col})")' if what == "covariate" else ""
        raise SchemaError(table, col, f"non-numeric values in the {what}", _rows(bad.to_numpy()), "numbers" + hint)
    x = s.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(x)
    if bad.any():
        raise SchemaError(table, col, f"missing or infinite values in the {what}", _rows(bad), "finite numbers")
    return x


def _covariates(df: pd.DataFrame, covariates: list[str], table: str) -> np.ndarray:
    """The covariates as an (n, p) C-ordered float array: in one copy when they are all plain numeric
    columns with finite values, else column by column (which names the first bad column and rows)."""
    if not covariates:
        return np.empty((len(df), 0))
    if len(set(covariates)) == len(covariates) and df.columns.is_unique and all(
            c in df.columns and isinstance(df[c].dtype, np.dtype) and df[c].dtype.kind in "fiub" for c in covariates):
        X = np.ascontiguousarray(df[covariates].to_numpy(dtype=float))
        if np.isfinite(X).all():
            return X
    return np.column_stack([_numeric(df, c, table, "covariate") for c in covariates])


def group_codes(df: pd.DataFrame, col: str, table: str, what: str) -> tuple[np.ndarray, pd.Index]:
    """Integer codes 0..G-1 of a grouping column (strata, cluster, school)."""
    if col not in df.columns:
        raise SchemaError(table, col, f"column not found (the {what})")
    s = df[col]
    bad = s.isna().to_numpy()
    if bad.any():
        raise SchemaError(table, col, f"missing values in the {what}", _rows(bad), "a group for every row")
    codes, labels = pd.factorize(s, sort=True)
    return codes.astype(np.int64), pd.Index(labels)


def survival_data(df: pd.DataFrame, *, duration: str, event: str, covariates: Sequence[str] = (),
                  entry: str | None = None, weights: str | None = None, strata: str | Sequence[str] | None = None,
                  cluster: str | None = None, kind: Literal["binary", "causes"] = "binary",
                  table: str = "data") -> SurvData:
    """Check ``df`` and return its survival arrays (see :class:`SurvData`).

    ``duration`` is the exit (stop) time; with ``entry`` the data are in counting-process form
    ``(entry, duration]`` (time-varying covariates, late entry) and ``duration > entry`` is
    required; without it ``duration >= 0``.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise SchemaError(table, None, "no rows", expected="at least one row")
    covariates = list(covariates)
    exit_ = _numeric(df, duration, table, "duration")
    ev = _numeric(df, event, table, "event indicator")
    if kind == "binary":
        bad = ~np.isin(ev, (0.0, 1.0))
        if bad.any():
            raise SchemaError(table, event, "event indicator not 0/1", _rows(bad), "0 (censored) or 1 (event)")
    else:
        bad = (ev < 0) | (ev != np.round(ev))
        if bad.any():
            raise SchemaError(table, event, "event codes not 0 or a positive integer", _rows(bad),
                              "0 (censored) or a cause 1, 2, ...")
    if entry is not None:
        ent = _numeric(df, entry, table, "entry (start) time")
        bad = exit_ <= ent
        if bad.any():
            raise SchemaError(table, duration, f"stop time not after start time '{entry}'", _rows(bad),
                              f"{duration} > {entry}")
    else:
        ent = np.full(len(df), -np.inf)
        bad = exit_ < 0
        if bad.any():
            raise SchemaError(table, duration, "negative durations", _rows(bad), "durations >= 0")
    X = _covariates(df, covariates, table)
    if weights is not None:
        w = _numeric(df, weights, table, "case weights")
        bad = w <= 0
        if bad.any():
            raise SchemaError(table, weights, "case weights not positive", _rows(bad), "weights > 0")
    else:
        w = np.ones(len(df))
    s_codes = s_labels = None
    if strata is not None:
        cols = [strata] if isinstance(strata, str) else list(strata)
        for c in cols:
            group_codes(df, c, table, "strata")
        key = df[cols[0]] if len(cols) == 1 else pd.MultiIndex.from_frame(df[cols])
        s_codes, s_labels = pd.factorize(key, sort=True)
        s_codes, s_labels = s_codes.astype(np.int64), pd.Index(s_labels)
    c_codes = c_labels = None
    if cluster is not None:
        c_codes, c_labels = group_codes(df, cluster, table, "cluster")
    return SurvData(entry=ent, exit=exit_, event=ev.astype(np.int64), X=X, covariates=covariates, weights=w,
                    strata=s_codes, strata_labels=s_labels, cluster=c_codes, cluster_labels=c_labels,
                    index=df.index)
