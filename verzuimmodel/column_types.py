"""Conversion of the columns of a cohort table to their canonical dtypes, for
:func:`~verzuimmodel.validation.validate_table`.

A converter takes a column's values and its declaration (:class:`~verzuimmodel.schema.Column`) and
returns the canonical values and a mask of the invalid values. Invalid values become missing in the
canonical values, so that only one check reports them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import (infer_dtype, is_bool_dtype, is_datetime64_any_dtype, is_integer_dtype,
                              is_numeric_dtype)

from .schema import CODE_LISTS, MISSING_TEXT, Column

_BOOL_WORDS = {"true": True, "false": False, "ja": True, "nee": False, "yes": True, "no": False,
               "1": True, "0": False, "1.0": True, "0.0": False}
"""Accepted spellings of booleans, after ``str(value).strip().lower()``."""

_EXCEL_ORIGIN = "1899-12-30"
_EXCEL_MAX_SERIAL = 2_958_465
"""Excel serial date of 9999-12-31."""


def _missing(s: pd.Series) -> np.ndarray:
    return s.isna().to_numpy()


def _clean_object(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """An object copy of ``s`` with strings stripped and blank strings missing.

    Returns the copy and a mask of the entries that are (non-blank) strings.
    """
    obj = s.astype(object)
    if infer_dtype(obj, skipna=True) not in ("string", "mixed", "mixed-integer"):
        return obj, np.zeros(len(obj), dtype=bool)
    stripped = obj.str.strip()
    is_str = stripped.notna().to_numpy()
    blank = is_str & (stripped == "").to_numpy()
    obj = obj.mask(is_str, stripped).mask(blank, np.nan)
    return obj, is_str & ~blank


def _none_for_missing(obj: pd.Series) -> pd.Series:
    return obj.astype(object).where(obj.notna(), None)


def _whole(x: np.ndarray) -> np.ndarray:
    """Mask of finite whole numbers that fit in int64 (missing values are not whole)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(x) & (np.floor(x) == x) & (np.abs(x) < 2.0 ** 63)


def _as_integers(num: pd.Series, nullable: bool) -> pd.Series:
    """``num`` (integral or missing) as int64, or as nullable Int64 when needed."""
    if nullable or num.isna().any():
        return num.astype("Int64", copy=False)
    return num.astype("int64", copy=False)


def _to_number(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Numbers from numeric columns or from text such as ``"3"`` or ``"2.5"``."""
    if is_bool_dtype(s.dtype):
        return pd.Series(np.nan, index=s.index), ~_missing(s)
    if is_numeric_dtype(s.dtype):
        return s, np.zeros(len(s), dtype=bool)
    obj, _ = _clean_object(s)
    num = pd.to_numeric(obj, errors="coerce")
    return num, obj.notna().to_numpy() & num.isna().to_numpy()


def _convert_int(s: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray]:
    num, bad = _to_number(s)
    if not is_integer_dtype(num.dtype):
        x = num.to_numpy(dtype=float, na_value=np.nan)
        bad = bad | (~np.isnan(x) & ~_whole(x))
        num = pd.Series(np.where(bad, np.nan, x), index=s.index)
    return _as_integers(num, col.nullable), bad


def _convert_float(s: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray]:
    num, bad = _to_number(s)
    x = num.to_numpy(dtype=float, na_value=np.nan)
    bad = bad | np.isinf(x)
    if bad.any():
        x = np.where(bad, np.nan, x)
    return pd.Series(x, index=s.index, copy=False), bad


def _convert_bool(s: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray]:
    if s.dtype == bool:
        values, bad = s, np.zeros(len(s), dtype=bool)
    else:
        obj, _ = _clean_object(s)
        values = obj.astype(str).str.lower().map(_BOOL_WORDS)
        bad = obj.notna().to_numpy() & values.isna().to_numpy()
    if col.nullable or values.isna().any():
        return values.astype("boolean", copy=False), bad
    return values.astype(bool, copy=False), bad


def _convert_code(s: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray]:
    dtype = pd.CategoricalDtype(list(CODE_LISTS[col.codes]))
    values = s.astype(dtype, copy=False)
    bad = ~_missing(s) & _missing(values)
    if bad.any():  # retry with surrounding blanks removed and blank strings as missing
        obj, _ = _clean_object(s)
        values = obj.astype(dtype)
        bad = ~_missing(obj) & _missing(values)
    return values, bad


def _from_excel(serial: pd.Series) -> pd.Series:
    """Dates from Excel serial day numbers (1900 date system; serial 1 is 1900-01-01)."""
    x = serial.to_numpy(dtype=float, na_value=np.nan)
    x = np.where((x >= 1) & (x <= _EXCEL_MAX_SERIAL), x, np.nan)
    return pd.Series(pd.to_datetime(x, unit="D", origin=_EXCEL_ORIGIN, errors="coerce"), index=serial.index)


def _convert_date(s: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray]:
    if is_datetime64_any_dtype(s.dtype):
        values = s.dt.tz_localize(None) if s.dt.tz is not None else s
        return values.astype("datetime64[ns]", copy=False), np.zeros(len(s), dtype=bool)
    if is_numeric_dtype(s.dtype) and not is_bool_dtype(s.dtype):
        values = _from_excel(s)
        return values, ~_missing(s) & _missing(values)
    obj, _ = _clean_object(s)
    values = pd.Series(pd.to_datetime(obj, errors="coerce", format="ISO8601"), index=s.index)
    retry = ~_missing(obj) & _missing(values)
    if retry.any():  # Excel serial numbers, possibly as text
        values = values.fillna(_from_excel(pd.to_numeric(obj.where(retry), errors="coerce")))
    values = values.astype("datetime64[ns]")
    return values, ~_missing(obj) & _missing(values)


def _convert_str(s: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray]:
    obj, is_str = _clean_object(s)
    other = ~_missing(obj) & ~is_str
    if other.any():
        obj = obj.mask(other, obj.astype(str))
    return _none_for_missing(obj), np.zeros(len(s), dtype=bool)


def _convert_id(s: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray]:
    """Identifiers: int64 (Int64 if nullable) when every value is an integer, else text.

    Text that is a canonical integer (``"12"``, not ``"012"`` or ``"12.0"``) counts as an
    integer, so ids survive a round trip through CSV; other text keeps its leading zeros.
    Numbers in a text column become their integer text; fractions and booleans are invalid.
    """
    if is_bool_dtype(s.dtype) or is_numeric_dtype(s.dtype):
        return _convert_int(s, col)
    obj, is_str = _clean_object(s)
    if not is_str.any():
        return _convert_int(obj, col)
    other = ~_missing(obj) & ~is_str
    x = pd.to_numeric(obj.where(other), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = other & ~_whole(x)
    numbers = other & ~bad
    text = obj.where(is_str)
    t = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    whole = _whole(t) & (np.abs(t) < 2.0 ** 53)
    canonical = whole & (_integer_text(t, whole) == text.to_numpy())
    if canonical[is_str].all():
        ints = pd.Series(np.where(is_str, t, np.where(numbers, x, np.nan)), index=s.index)
        return _as_integers(ints, col.nullable), bad
    missing_text = _is_missing_text(text)
    if missing_text.any():
        bad = bad | missing_text
        text = text.mask(missing_text)
    values = text.mask(numbers, _integer_text(x, numbers))
    return _none_for_missing(values), bad


def _is_missing_text(obj: pd.Series) -> np.ndarray:
    """Mask of the text values of ``obj`` (already stripped) that are in :data:`MISSING_TEXT`."""
    try:
        lower = obj.str.lower()  # missing where a value is not text
    except AttributeError:  # no text at all
        return np.zeros(len(obj), dtype=bool)
    return lower.isin(MISSING_TEXT).to_numpy()


def _integer_text(x: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``str(int(x))`` where ``where`` is set (x must be whole there), else missing."""
    text = pd.Series(np.where(where, x, 0).astype(np.int64)).astype(str).to_numpy(dtype=object)
    text[~where] = np.nan
    return text


_CONVERTERS = {
    "id": _convert_id,
    "int": _convert_int,
    "float": _convert_float,
    "bool": _convert_bool,
    "str": _convert_str,
    "code": _convert_code,
    "date": _convert_date,
}
