"""Checks of one cohort table against its declaration in :mod:`verzuimmodel.schema`.

``validate_table`` converts every declared column to its canonical dtype
(:mod:`~verzuimmodel.column_types`), then checks missing values, bounds, the primary key and the row
rules of the table. Everything works on whole columns: a failure is a boolean mask over the rows,
turned into a :class:`~verzuimmodel.schema.SchemaError` by ``_check``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from .column_types import _CONVERTERS, _clean_object, _is_missing_text, _missing
from .i18n import Message
from .schema import CODE_LISTS, FIRST_DATE, LAST_DATE, TABLES, Column, SchemaError, Table

__all__ = ["validate_table"]

_REPORTED_ROWS = 20
"""How many offending row numbers a SchemaError carries."""

_SCHOOL_TYPE_LEVEL = {"bo": "po", "sbo": "po", "vo": "vo"}
"""The level each school type belongs to."""

_MAX_VO_GRADE = 6


def _check(bad, table: str, column: str | None, problem: Message, expected: Message | None = None,
           values: pd.Series | pd.DataFrame | None = None, show: list[str] | None = None) -> None:
    """Raise a :class:`SchemaError` if any element of the boolean mask ``bad`` is set.

    Parameters
    ----------
    bad : array-like of bool, one element per row of the table.
    table, column, problem, expected : as in :class:`SchemaError` (messages of the catalogue).
    values : the column or table whose offending values are quoted after ``problem``.
    show : the columns of ``values`` (a table) to quote.
    """
    bad = np.asarray(bad, dtype=bool)
    if not bad.any():
        return
    pos = np.flatnonzero(bad)
    shown = pos[:_REPORTED_ROWS]
    quoted = None
    if values is not None:
        offending = values.iloc[shown]
        quoted = _examples(offending if show is None else offending[show])
    raise SchemaError(table, column, problem, (shown + 1).tolist(), expected, n_rows=len(pos), values=quoted)


def _examples(values: pd.Series | pd.DataFrame, n: int = 3) -> str:
    """The first ``n`` distinct values (or rows of values), quoted for a message."""
    if isinstance(values, pd.DataFrame):
        quoted = ("(" + ", ".join(f"{c}={_quote(v)}" for c, v in zip(values.columns, row)) + ")"
                  for row in values.itertuples(index=False, name=None))
    else:
        quoted = (_quote(v) for v in values.astype(object))
    return ", ".join(list(dict.fromkeys(quoted))[:n])


def _quote(value) -> str:
    """A value as written in a message: text quoted, dates without a midnight time."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, pd.Timestamp) and value == value.normalize():
        return value.date().isoformat()
    return str(value)


@lru_cache(maxsize=None)
def _fixed(key: str) -> Message:
    """The message ``key`` without parameters, made once (validation checks many columns)."""
    return Message(key)


@lru_cache(maxsize=None)
def _expected(col: Column) -> Message:
    """What a column holds, for messages (made once per column)."""
    if col.kind == "code":
        return Message("expected.one_of", choices=", ".join(repr(c) for c in CODE_LISTS[col.codes]))
    what = _fixed(f"expected.kind_{col.kind}")
    if col.kind == "date":
        what = Message("expected.dates_from_to", what=what, low=FIRST_DATE.date().isoformat(),
                       high=LAST_DATE.date().isoformat())
    if col.min is not None and col.max is not None:
        return Message("expected.from_to", what=what, low=col.min, high=col.max)
    if col.min is not None:
        return Message("expected.at_least", what=what, low=col.min)
    if col.max is not None:
        return Message("expected.at_most", what=what, high=col.max)
    return what


def _numbers(values: pd.Series) -> np.ndarray:
    """A numeric column as a numpy array (missing values as NaN)."""
    if isinstance(values.dtype, np.dtype):
        return values.to_numpy()
    return values.to_numpy(dtype=float, na_value=np.nan)


def _validate_column(table: str, col: Column, s: pd.Series) -> pd.Series:
    """Convert one column to its canonical dtype and check values, missing values and bounds."""
    values, bad = _CONVERTERS[col.kind](s, col)
    if col.kind == "id" and bad.any():
        _check(bad & _is_missing_text(_clean_object(s)[0]), table, col.name,
               _fixed("schema.missing_text_identifier"),
               _fixed("expected.identifier_or_empty" if col.nullable else "expected.identifier_every_row"), s)
    _check(bad, table, col.name, _fixed("schema.invalid_values"), _expected(col), s)
    if not col.nullable:
        missing = _missing(values)
        if missing.any():
            _check(missing, table, col.name, _fixed("schema.missing_values"),
                   Message("expected.every_row", what=_expected(col)))
    if col.min is not None or col.max is not None:
        x = _numbers(values)
        out = np.zeros(len(x), dtype=bool)
        if col.min is not None:
            out |= x < col.min
        if col.max is not None:
            out |= x > col.max
        _check(out, table, col.name, _fixed("schema.out_of_range"), _expected(col), values)
    if col.kind == "date":
        x = values.to_numpy()
        _check((x < FIRST_DATE.to_datetime64()) | (x > LAST_DATE.to_datetime64()),  # NaT compares False
               table, col.name, _fixed("schema.dates_out_of_range"), _expected(col), values)
    return values


def _table(name: str) -> Table:
    if name not in TABLES:
        raise SchemaError(name, None, Message("schema.unknown_table"),
                          expected=Message("expected.one_of", choices=", ".join(TABLES)))
    return TABLES[name]


def _check_columns(table: Table, df: pd.DataFrame) -> None:
    """The frame is a DataFrame with unique column names and every required column."""
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(table.name, None, Message("schema.not_a_table", type=type(df).__name__),
                          expected=Message("expected.dataframe"))
    twice = df.columns[df.columns.duplicated()]
    if len(twice):
        raise SchemaError(table.name, ", ".join(map(str, twice.unique())), Message("schema.duplicate_columns"),
                          expected=Message("expected.each_column_once"))
    missing = [c for c in table.required_columns if c not in df.columns]
    if missing:
        optional = ", ".join(c.name for c in table.columns if not c.required)
        raise SchemaError(table.name, ", ".join(missing),
                          Message("schema.missing_columns", n=len(missing), columns=", ".join(missing)),
                          expected=Message("expected.columns", columns=", ".join(table.required_columns),
                                           optional=optional or Message("expected.none")))


# -- row rules: checks across the columns of one (already converted) table --------------------


def _school_type_matches_level(df: pd.DataFrame) -> None:
    level = df["school_type"].astype(object).map(_SCHOOL_TYPE_LEVEL)
    _check((level != df["level"].astype(object)).to_numpy(), "schools", "school_type",
           Message("schema.school_type_level"), Message("expected.school_type_level"), df, ["school_type", "level"])


def _absence_within_enrolment(df: pd.DataFrame) -> None:
    days = df["sick_days"].to_numpy() + df["luxury_days"].to_numpy() + df["long_absence_days"].to_numpy()
    _check(days > df["enrolled_days"].to_numpy(), "absence", "enrolled_days",
           Message("schema.absence_exceeds_enrolment"), Message("expected.absence_within_enrolment"),
           df, ["sick_days", "luxury_days", "long_absence_days", "enrolled_days"])


def _long_spells_are_reports(df: pd.DataFrame) -> None:
    _check(df["sick_long_spells"].to_numpy() > df["sick_reports"].to_numpy(), "absence", "sick_long_spells",
           Message("schema.long_spells_exceed_reports"), Message("expected.long_spells_within_reports"),
           df, ["sick_long_spells", "sick_reports"])


def _vo_grades(df: pd.DataFrame) -> None:
    bad = (df["level"] == "vo").to_numpy() & (df["grade"].to_numpy() > _MAX_VO_GRADE)
    _check(bad, "absence", "grade", Message("schema.vo_grade"), Message("expected.vo_grade", max=_MAX_VO_GRADE),
           df["grade"])


def _episode_ends(df: pd.DataFrame) -> None:
    _check((df["end_date"] < df["start_date"]).to_numpy(), "episodes", "end_date",
           Message("schema.end_before_start"), Message("expected.end_after_start"), df, ["start_date", "end_date"])
    open_ended = _missing(df["end_date"]) & (df["outcome"] != "censored").to_numpy()
    _check(open_ended, "episodes", "end_date", Message("schema.missing_end_date"),
           Message("expected.end_date_unless_censored"), df["outcome"])


_ROW_RULES = {
    "schools": (_school_type_matches_level,),
    "absence": (_absence_within_enrolment, _long_spells_are_reports, _vo_grades),
    "episodes": (_episode_ends,),
}
"""Rules across the columns of one table, run after its columns are valid."""


def _dense_key(df: pd.DataFrame, key: list[str]) -> np.ndarray | None:
    """The key as one small non-negative integer per row, or None.

    Possible when every key column is int64 and the product of their ranges is at most a few
    times the number of rows (e.g. pupil_id x school_year).
    """
    if len(df) == 0 or any(df[c].dtype != np.int64 for c in key):
        return None
    columns = [df[c].to_numpy() for c in key]
    lows = [x.min() for x in columns]
    spans = [int(x.max()) - int(low) + 1 for x, low in zip(columns, lows)]
    if np.prod(spans, dtype=float) > max(8 * len(df), 1 << 20):
        return None
    combined = columns[0] - lows[0]
    for x, low, span in zip(columns[1:], lows[1:], spans[1:]):
        combined *= span
        combined += x
        combined -= low
    return combined


def _duplicated(df: pd.DataFrame, key: list[str]) -> np.ndarray:
    """Mask of every row whose key occurs more than once (all occurrences)."""
    codes = _dense_key(df, key)
    if codes is None:
        return df.duplicated(subset=key, keep=False).to_numpy()
    return np.bincount(codes)[codes] > 1


def validate_table(name: str, df: pd.DataFrame, *, copy: bool = True) -> pd.DataFrame:
    """Check one table against its declaration in :data:`TABLES` and return a normalised copy.

    Parameters
    ----------
    name : table name, a key of :data:`TABLES`.
    df : the table as read. Its rows are reported as 1-based data rows (data row 1 is the first
        row under the header), whatever its index.
    copy : if False, columns that are already in their canonical dtype are shared with ``df``
        rather than copied (faster for large tables that are not used afterwards).

    Returns
    -------
    pandas.DataFrame
        A copy with a fresh ``RangeIndex``, the columns in their original order (undeclared extra
        columns are kept unchanged) and each declared column in its canonical dtype:

        ========  ==============================================================================
        ``id``    int64 when every value is an integer (``Int64`` if the column is nullable),
                  else text (object, ``None`` where missing); text such as ``"12"`` counts as
                  an integer, ``"012"`` stays text; text that means missing (``NULL``, ``NaN``,
                  ``None``, ``NA``, ``N/A``, ``-``, ``n.v.t.``, Excel error values: all of
                  :data:`MISSING_TEXT`, in any case) is an error, also in a nullable column
        ``int``   int64, or ``Int64`` if nullable; ``3``, ``3.0`` and ``"3"`` are accepted
        ``float`` float64
        ``bool``  bool (``boolean`` if nullable); True/False, 1/0, true/false, ja/nee, yes/no
        ``code``  Categorical with the code list as categories
        ``date``  datetime64[ns]; datetimes, ISO text (``2020-08-31``) or Excel serial numbers;
                  from :data:`FIRST_DATE` (1990-01-01) to :data:`LAST_DATE` (2101-12-31)
        ``str``   text (object, ``None`` where missing)
        ========  ==============================================================================

        Blank text counts as missing.

    Raises
    ------
    SchemaError
        On the first problem found, checked in this order: required columns missing; per declared
        column (in declaration order) text meaning missing in an identifier column, a value that
        cannot be converted, a missing value in a non-nullable column, a value outside
        ``min``/``max``, a date outside the plausible range; a duplicated (possibly composite)
        key; the row rules of the table (school type vs level; absence days within enrolled days,
        long sick spells not exceeding sick reports and VO years 1-6; episodes ending before
        they start or without an end date while not censored).
    """
    table = _table(name)
    _check_columns(table, df)
    declared = {c.name: c for c in table.columns}
    columns = {}
    for c in df.columns:
        # column by column, with a fresh RangeIndex (DataFrame.copy() consolidates, which is slow)
        s = pd.Series(df[c].array, name=c, copy=copy)
        columns[c] = _validate_column(name, declared[c], s) if c in declared else s
    out = pd.DataFrame(columns, copy=False)
    key = list(table.key)
    _check(_duplicated(out, key), name, ", ".join(key), Message("schema.duplicate_key"),
           Message("expected.key_once", key=" + ".join(key)), out, key)
    for rule in _ROW_RULES.get(name, ()):
        rule(out)
    return out
