"""Validation of cohort tables against their declarations in :mod:`verzuimmodel.schema`.

``validate_table`` converts every declared column to its canonical dtype (the converters below),
then checks missing values, bounds, the primary key and the row rules of the table.
``validate_cohort`` adds the rules between tables. Everything works on whole columns: a failure
is a boolean mask over the rows, turned into a :class:`~verzuimmodel.schema.SchemaError` by
``_check``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import (infer_dtype, is_bool_dtype, is_datetime64_any_dtype, is_integer_dtype,
                              is_numeric_dtype)

from .schema import CODE_LISTS, FIRST_DATE, LAST_DATE, LEVELS, MISSING_TEXT, TABLES, Column, SchemaError, Table

__all__ = ["validate_table", "validate_cohort"]

_REPORTED_ROWS = 20
"""How many offending row numbers a SchemaError carries."""

_BOOL_WORDS = {"true": True, "false": False, "ja": True, "nee": False, "yes": True, "no": False,
               "1": True, "0": False, "1.0": True, "0.0": False}
"""Accepted spellings of booleans, after ``str(value).strip().lower()``."""

_EXCEL_ORIGIN = "1899-12-30"
_EXCEL_MAX_SERIAL = 2_958_465
"""Excel serial date of 9999-12-31."""

_SCHOOL_TYPE_LEVEL = {"bo": "po", "sbo": "po", "vo": "vo"}
"""The level each school type belongs to."""

_MAX_VO_GRADE = 6


def _check(bad, table: str, column: str | None, problem: str, expected: str | None = None,
           values: pd.Series | pd.DataFrame | None = None, show: list[str] | None = None) -> None:
    """Raise a :class:`SchemaError` if any element of the boolean mask ``bad`` is set.

    Parameters
    ----------
    bad : array-like of bool, one element per row of the table.
    table, column, problem, expected : as in :class:`SchemaError`.
    values : the column or table whose offending values are quoted after ``problem``.
    show : the columns of ``values`` (a table) to quote.
    """
    bad = np.asarray(bad, dtype=bool)
    if not bad.any():
        return
    pos = np.flatnonzero(bad)
    shown = pos[:_REPORTED_ROWS]
    if values is not None:
        offending = values.iloc[shown]
        problem = f"{problem}: {_examples(offending if show is None else offending[show])}"
    raise SchemaError(table, column, problem, (shown + 1).tolist(), expected, n_rows=len(pos))


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


def _missing(s: pd.Series) -> np.ndarray:
    return s.isna().to_numpy()


# -- converters: (column values, declaration) -> (canonical values, mask of invalid values) ----
#
# Invalid values become missing in the canonical values, so that only one check reports them.


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


def _expected(col: Column) -> str:
    """What a column holds, for messages."""
    if col.kind == "code":
        return "one of " + ", ".join(repr(c) for c in CODE_LISTS[col.codes])
    kinds = {
        "id": "integer or non-empty text identifiers",
        "int": "whole numbers",
        "float": "numbers",
        "bool": "true/false, 1/0, ja/nee or yes/no",
        "str": "text",
        "date": "dates (ISO 'YYYY-MM-DD' text or Excel dates)",
    }
    text = kinds[col.kind]
    if col.kind == "date":
        text += f" from {FIRST_DATE.date().isoformat()} to {LAST_DATE.date().isoformat()}"
    if col.min is not None and col.max is not None:
        text += f" from {col.min:g} to {col.max:g}"
    elif col.min is not None:
        text += f" of at least {col.min:g}"
    elif col.max is not None:
        text += f" of at most {col.max:g}"
    return text


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
               "text that means missing is not an identifier",
               "an identifier, or an empty cell where there is none" if col.nullable
               else "an identifier in every row (the column may not be empty)", s)
    _check(bad, table, col.name, "invalid value(s)", _expected(col), s)
    if not col.nullable:
        _check(_missing(values), table, col.name, "missing value(s)",
               _expected(col) + " in every row (the column may not be empty)")
    if col.min is not None or col.max is not None:
        x = _numbers(values)
        out = np.zeros(len(x), dtype=bool)
        if col.min is not None:
            out |= x < col.min
        if col.max is not None:
            out |= x > col.max
        _check(out, table, col.name, "value(s) out of range", _expected(col), values)
    if col.kind == "date":
        x = values.to_numpy()
        _check((x < FIRST_DATE.to_datetime64()) | (x > LAST_DATE.to_datetime64()),  # NaT compares False
               table, col.name, "date(s) out of range", _expected(col), values)
    return values


def _table(name: str) -> Table:
    if name not in TABLES:
        raise SchemaError(name, None, "unknown table", expected="one of " + ", ".join(TABLES))
    return TABLES[name]


def _check_columns(table: Table, df: pd.DataFrame) -> None:
    """The frame is a DataFrame with unique column names and every required column."""
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(table.name, None, f"not a table but a {type(df).__name__}",
                          expected="a pandas DataFrame")
    twice = df.columns[df.columns.duplicated()]
    if len(twice):
        raise SchemaError(table.name, ", ".join(map(str, twice.unique())), "column name(s) occur more than once",
                          expected="each column once")
    missing = [c for c in table.required_columns if c not in df.columns]
    if missing:
        raise SchemaError(table.name, ", ".join(missing), "missing required column(s) " + ", ".join(missing),
                          expected="columns " + ", ".join(table.required_columns)
                          + " (optional: " + (", ".join(c.name for c in table.columns if not c.required)
                                              or "none") + ")")


# -- row rules: checks across the columns of one (already converted) table --------------------


def _school_type_matches_level(df: pd.DataFrame) -> None:
    level = df["school_type"].astype(object).map(_SCHOOL_TYPE_LEVEL)
    _check((level != df["level"].astype(object)).to_numpy(), "schools", "school_type",
           "school type does not belong to the school's level", "bo or sbo at level po, vo at level vo",
           df, ["school_type", "level"])


def _absence_within_enrolment(df: pd.DataFrame) -> None:
    days = df["sick_days"].to_numpy() + df["luxury_days"].to_numpy() + df["long_absence_days"].to_numpy()
    _check(days > df["enrolled_days"].to_numpy(), "absence", "enrolled_days",
           "sick_days + luxury_days + long_absence_days exceed enrolled_days",
           "at most enrolled_days days of sick, luxury and long-term absence together",
           df, ["sick_days", "luxury_days", "long_absence_days", "enrolled_days"])


def _long_spells_are_reports(df: pd.DataFrame) -> None:
    _check(df["sick_long_spells"].to_numpy() > df["sick_reports"].to_numpy(), "absence", "sick_long_spells",
           "more long sick spells than sick reports", "sick_long_spells <= sick_reports (a long spell is a report)",
           df, ["sick_long_spells", "sick_reports"])


def _vo_grades(df: pd.DataFrame) -> None:
    bad = (df["level"] == "vo").to_numpy() & (df["grade"].to_numpy() > _MAX_VO_GRADE)
    _check(bad, "absence", "grade", "VO year out of range", f"VO years 1 to {_MAX_VO_GRADE} (PO groups 1 to 8)",
           df["grade"])


def _episode_ends(df: pd.DataFrame) -> None:
    _check((df["end_date"] < df["start_date"]).to_numpy(), "episodes", "end_date", "end_date before start_date",
           "end_date on or after start_date", df, ["start_date", "end_date"])
    open_ended = _missing(df["end_date"]) & (df["outcome"] != "censored").to_numpy()
    _check(open_ended, "episodes", "end_date", "missing end_date for an observed outcome",
           "an end_date unless the outcome is 'censored'", df["outcome"])


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
    _check(_duplicated(out, key), name, ", ".join(key),
           "duplicate key value(s)", "each value of " + " + ".join(key) + " once", out, key)
    for rule in _ROW_RULES.get(name, ()):
        rule(out)
    return out


# -- cohort rules: checks between tables ------------------------------------------------------


def _positions(child: pd.Series, parent: pd.Series) -> np.ndarray:
    """For each value of ``child``, its row position in the key column ``parent``.

    -1 where ``child`` is missing or its value does not occur in ``parent``. Integer and text
    identifiers are compared as text when the two columns differ in kind.
    """
    present = ~_missing(child)
    values = child[present] if not present.all() else child
    if (values.dtype == object) != (parent.dtype == object):
        values, parent = values.astype(str), parent.astype(str)
    elif values.dtype != object:
        values = values.to_numpy(dtype=np.int64)
    pos = np.full(len(child), -1, dtype=np.intp)
    pos[present] = pd.Index(parent).get_indexer(values)
    return pos


def _foreign_keys(tables: dict[str, pd.DataFrame]) -> dict[tuple[str, str], np.ndarray]:
    """Check every foreign key; return the referenced row positions per (table, column)."""
    links = {}
    for name, table in TABLES.items():
        for column, (ref_table, ref_column) in table.foreign_keys.items():
            child = tables[name][column]
            pos = _positions(child, tables[ref_table][ref_column])
            _check(~_missing(child) & (pos < 0), name, column, f"value(s) not in {ref_table}.{ref_column}",
                   f"values of column '{ref_column}' in table '{ref_table}'", child)
            links[name, column] = pos
    return links


def _level_codes(tables: dict[str, pd.DataFrame], pos: np.ndarray) -> np.ndarray:
    """The level code (index into LEVELS) of the schools at row positions ``pos``."""
    return tables["schools"]["level"].cat.codes.to_numpy()[pos]


def _school_levels(tables: dict[str, pd.DataFrame], links: dict) -> None:
    absence = tables["absence"]
    school_level = _level_codes(tables, links["absence", "school_id"])
    _check(school_level != absence["level"].cat.codes.to_numpy(), "absence", "level",
           "level differs from the level of the school in schools", "the level of school_id in schools",
           absence, ["school_id", "level"])
    for column, level in (("po_school_id", "po"), ("vo_school_id", "vo")):
        pos = links["pupils", column]
        bad = (pos >= 0) & (_level_codes(tables, pos) != list(LEVELS).index(level))
        _check(bad, "pupils", column, f"school is not a {level.upper()} school", f"a school of level {level}",
               tables["pupils"][column])


def _interventions_in_episodes(tables: dict[str, pd.DataFrame], links: dict) -> None:
    interventions, episodes = tables["interventions"], tables["episodes"]
    episode = links["interventions", "episode_id"]
    episode_pupil = links["episodes", "pupil_id"][episode]
    _check(links["interventions", "pupil_id"] != episode_pupil, "interventions", "pupil_id",
           "pupil differs from the pupil of the episode", "the pupil_id of episode_id in episodes",
           interventions, ["pupil_id", "episode_id"])
    start = interventions["start_date"].to_numpy()
    episode_start = episodes["start_date"].to_numpy()[episode]
    episode_end = episodes["end_date"].to_numpy()[episode]
    outside = (start < episode_start) | (start > episode_end)  # comparisons with NaT are False
    _check(outside, "interventions", "start_date", "start_date outside its episode",
           "a start_date from the episode's start_date to its end_date (or later, if it has none)",
           interventions["start_date"])


def _followup_covers_episodes(tables: dict[str, pd.DataFrame], links: dict) -> None:
    pupils, episodes = tables["pupils"], tables["episodes"]
    pupil = links["episodes", "pupil_id"]
    early = episodes["start_date"].to_numpy() > pupils["followup_end"].to_numpy()[pupil]
    bad = np.zeros(len(pupils), dtype=bool)
    bad[pupil[early]] = True
    _check(bad, "pupils", "followup_end", "followup_end before the start_date of an episode of the pupil",
           "followup_end on or after the start of each of the pupil's episodes", pupils["followup_end"])
    _after_followup(tables, links, "episodes", "end_date",
                    "an end_date on or before the pupil's followup_end in pupils (an episode running then is "
                    "censored at followup_end)")


def _followup_covers_interventions(tables: dict[str, pd.DataFrame], links: dict) -> None:
    _after_followup(tables, links, "interventions", "start_date",
                    "a start_date on or before the pupil's followup_end in pupils")


def _after_followup(tables: dict[str, pd.DataFrame], links: dict, table: str, column: str, expected: str) -> None:
    """Refuse dates in ``table.column`` after the followup_end of the row's pupil."""
    df = tables[table]
    followup_end = tables["pupils"]["followup_end"].to_numpy()[links[table, "pupil_id"]]
    late = df[column].to_numpy() > followup_end  # comparisons with NaT are False
    if late.any():
        shown = pd.DataFrame({"pupil_id": df["pupil_id"], column: df[column], "followup_end": followup_end})
        _check(late, table, column, f"{column} after the pupil's followup_end", expected, shown)


_COHORT_RULES = (_school_levels, _interventions_in_episodes, _followup_covers_episodes,
                 _followup_covers_interventions)
"""Rules between tables, run after the foreign keys are valid."""


def validate_cohort(tables: dict[str, pd.DataFrame], *, copy: bool = True) -> dict[str, pd.DataFrame]:
    """Validate the five tables of a cohort and the rules between them.

    Parameters
    ----------
    tables : mapping from table name to DataFrame; all five tables of :data:`TABLES` (an empty
        table may come from :func:`empty_table`).
    copy : passed to :func:`validate_table`.

    Returns
    -------
    dict
        The normalised tables (see :func:`validate_table`), in the order of :data:`TABLES`.

    Raises
    ------
    SchemaError
        On the first problem: a table missing or unknown; any problem of :func:`validate_table`;
        a foreign key value without its referenced row (missing values of nullable foreign keys
        are skipped); an absence row whose ``level`` differs from its school's level; a pupil whose
        ``po_school_id`` is not a PO school or ``vo_school_id`` not a VO school; an intervention whose
        pupil differs from its episode's pupil or that starts outside its episode (an episode
        without ``end_date`` is open); a pupil whose ``followup_end`` is before the start of one of
        their episodes; an episode whose ``end_date``, or an intervention whose ``start_date``, is
        after the pupil's ``followup_end`` (an episode still running when follow-up ends is
        censored then). Rows are reported in the table named by the error.

    Notes
    -----
    Only rules that hold for every correct registration are checked. For example a pupil may
    have more sick reports than sick days (half days, or a sick report in the previous school
    year), so that is not checked.
    """
    for name in tables:
        _table(name)
    for name in TABLES:
        if name not in tables:
            raise SchemaError(name, None, "table missing", expected="all of " + ", ".join(TABLES))
    out = {name: validate_table(name, tables[name], copy=copy) for name in TABLES}
    links = _foreign_keys(out)
    for rule in _COHORT_RULES:
        rule(out, links)
    return out
