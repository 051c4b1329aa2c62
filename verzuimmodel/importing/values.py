"""Turning the cells of one column of an export into the values of a package column.

A column is first reduced to its distinct cells (:func:`cells`, with ``pandas.factorize``): every
string operation, code lookup and date parse then runs once per distinct value, on whole arrays
(pandas string methods, ``map`` with a dictionary, ``to_datetime`` on year/month/day columns), and the
result is spread back over the rows with one ``take``. There is no Python loop over rows, and a column
of 100,000 pupil-years with a few hundred distinct values costs little more than one with a few hundred
rows. Each converter returns values that :func:`verzuimmodel.validation.validate_cohort` then checks as
it checks any cohort; what a converter cannot read is a
:class:`~verzuimmodel.importing.mapping.MappingError` naming the mapping key and the file rows, and every
value it changes is counted in the import log (``note``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..i18n import Message
from ..schema import Column
from .mapping import BOOLEAN, ColumnMap, DateFormat, Format, ImportMapping, MappingError, normalise

__all__ = ["Cells", "Context", "cells", "convert"]

YEAR_COLUMNS = frozenset({"school_year", "cohort", "approach_start_year"})
"""Columns holding a school year by its first calendar year: ``2018-2019``, ``2018/19`` are read as 2018."""

_EXCEL_ORIGIN = pd.Timestamp("1899-12-30")
_EXCEL_MAX_SERIAL = 2_958_465
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"


@dataclass
class Cells:
    """The distinct cells of a column, sorted by kind.

    ``raw`` is the column as read (one value per row, indexed by file row). Every other field but
    ``take`` has one element per distinct cell: its ``value``, how many rows hold it (``weight``), its
    stripped ``text`` (missing unless it is text and not missing), ``number``, ``boolean`` and
    ``datetime`` (Excel cells), and masks of the ``missing`` and ``unreadable`` cells. ``take`` gives
    each row's distinct cell (``len(value)`` for an absent value).
    """

    raw: pd.Series
    take: np.ndarray
    value: pd.Series
    weight: np.ndarray
    text: pd.Series
    number: pd.Series
    boolean: pd.Series
    datetime: pd.Series
    missing: np.ndarray
    unreadable: np.ndarray

    def rows(self, mask) -> np.ndarray:
        """A mask over the distinct cells, as a mask over the rows."""
        return np.append(np.asarray(mask, dtype=bool), False)[self.take]

    def count(self, mask) -> int:
        """How many rows hold a distinct cell in ``mask``."""
        return int(self.weight[np.asarray(mask, dtype=bool)].sum())

    def spread(self, values: pd.Series, fill) -> pd.Series:
        """Values of the distinct cells as values of the rows (``fill`` for absent cells)."""
        ext = pd.concat([values.reset_index(drop=True), pd.Series([fill], dtype=values.dtype)], ignore_index=True)
        return pd.Series(ext.take(self.take).to_numpy(), index=self.raw.index, dtype=values.dtype)


@dataclass
class Context:
    """What a converter needs to report on one column: its mapping, where it comes from, the log."""

    column: ColumnMap
    source: Message
    note: Callable[[str, str, int], None]
    with_rows: bool = True
    unit: str = "row"

    def fail(self, c: Cells, bad, problem: Message, hint: Message | None = None) -> None:
        """Raise a MappingError for the distinct cells in mask ``bad`` (if any), naming their rows (lines of
        a CSV file, rows of a sheet) and quoting the first offending cell."""
        rows = c.rows(bad)
        if not rows.any():
            return
        problem = Message("mapping.with_value", problem=problem, value=repr(c.raw[rows].iloc[0]))
        raise MappingError(self.column.key, problem, source=self.source,
                           rows=c.raw.index[rows][:20] if self.with_rows else (),
                           n_rows=int(rows.sum()) if self.with_rows else None, hint=hint, unit=self.unit)


def _mask(values: pd.Series) -> np.ndarray:
    """A boolean mask from the result of a string method (missing: False)."""
    return values.eq(True).to_numpy(dtype=bool)


def cells(raw: pd.Series, fmt: Format, note) -> Cells:
    """The distinct cells of ``raw`` by kind; text in ``fmt.missing`` (and empty text) is missing."""
    codes, uniques = pd.factorize(raw)
    value = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
    weight = np.bincount(codes[codes >= 0], minlength=len(value))
    take = np.where(codes < 0, len(value), codes)
    try:
        stripped = value.str.strip()
    except AttributeError:  # no text at all (an Excel column of numbers or dates)
        stripped = pd.Series(np.nan, index=value.index, dtype=object)
    is_text = stripped.notna().to_numpy()
    blanks = is_text & (stripped != value).to_numpy() & (stripped != "").to_numpy()
    note("coerced", "surrounding blanks removed", weight[blanks].sum())
    folded = stripped.str.casefold().str.replace(r"\s+", " ", regex=True) if is_text.any() else stripped
    said_missing = is_text & folded.isin({normalise(m) for m in fmt.missing} - {""}).to_numpy()
    if said_missing.any():
        for label, n in pd.Series(weight[said_missing], index=folded[said_missing]).groupby(level=0).sum().items():
            note("coerced", f"text '{label}' -> missing", n)
    missing = (is_text & (stripped == "").to_numpy()) | said_missing
    text = stripped.where(is_text & ~missing)
    number = pd.Series(np.nan, index=value.index, dtype=float)
    boolean = pd.Series(np.nan, index=value.index, dtype=object)
    dates = pd.Series(pd.NaT, index=value.index, dtype="datetime64[ns]")
    other = ~is_text
    unreadable = np.zeros(len(value), dtype=bool)
    if other.any():
        sub = value[other]
        as_text = sub.astype(str)
        is_bool = as_text.isin(["True", "False"]).to_numpy()
        boolean[other] = (as_text == "True").where(is_bool)
        numbers = pd.to_numeric(sub.where(~is_bool), errors="coerce")
        number[other] = numbers
        rest = other.copy()
        rest[other] = ~is_bool & numbers.isna().to_numpy()
        if rest.any():
            try:
                dates[rest] = pd.to_datetime(value[rest], errors="coerce")
            except (TypeError, ValueError):  # times of day, durations: not dates
                pass
            unreadable = rest & dates.isna().to_numpy()
    return Cells(raw, take, value, weight, text, number, boolean, dates, missing, unreadable)


def convert(c: Cells, column: Column, ctx: Context, fmt: Format, mapping: ImportMapping) -> pd.Series:
    """The values of package column ``column`` (one per row) from the cells ``c``."""
    ctx.fail(c, c.unreadable, Message("mapping.unreadable_cell"))
    if column.kind in ("int", "float"):
        return c.spread(_numbers(c, column, ctx, fmt), np.nan)
    if column.kind in ("code", "bool"):
        return _labels(c, column, ctx, mapping)
    if column.kind == "date":
        return c.spread(_dates(c, ctx, fmt, ctx.column.date_formats or fmt.date_formats), pd.NaT)
    ctx.fail(c, c.boolean.notna() | c.datetime.notna(), Message("mapping.not_text"))
    values = c.text.astype(object)
    numbers = c.number.notna().to_numpy()
    values[numbers] = c.number[numbers]
    return c.spread(values.where(values.notna(), None), None)


def _numbers(c: Cells, column: Column, ctx: Context, fmt: Format) -> pd.Series:
    ctx.fail(c, c.boolean.notna() | c.datetime.notna(), Message("mapping.not_a_number"))
    values = c.number.copy()
    text = c.text
    if column.name in YEAR_COLUMNS and text.notna().any():
        parts = text.str.extract(r"^(\d{4})\s*[-/]\s*(\d{4}|\d{2})$")
        found = parts[0].notna().to_numpy()
        first, second = parts[0].astype(float), parts[1].astype(float)
        consecutive = (second == first + 1) | ((parts[1].str.len() == 2) & (second == (first + 1) % 100))
        ctx.fail(c, found & ~consecutive.to_numpy(), Message("mapping.not_a_school_year"))
        values[found] = first[found]
        ctx.note("coerced", "school year 'jjjj-jjjj' -> its first year", c.count(found))
        text = text.where(~found)
    if fmt.thousands and text.notna().any():
        mark, dec = re.escape(fmt.thousands), re.escape(fmt.decimal)
        has = _mask(text.str.contains(mark, regex=True))
        grouped = _mask(text.str.fullmatch(rf"[+-]?\d{{1,3}}(?:{mark}\d{{3}})+(?:{dec}\d*)?"))
        ctx.fail(c, has & ~grouped, Message("mapping.misplaced_thousands", mark=fmt.thousands),
                 hint=Message("mapping.hint_check", key=fmt.key("thousands")))
        text = text.where(~has, text.str.replace(fmt.thousands, "", regex=False))
        ctx.note("coerced", f"thousands mark '{fmt.thousands}' removed", c.count(has))
    if text.notna().any():
        other = "." if fmt.decimal == "," else ","
        hint = (Message("mapping.hint_decimal_or_thousands", key=fmt.key("decimal"), mark=other,
                        thousands=fmt.key("thousands")) if other == "."
                else Message("mapping.hint_decimal", key=fmt.key("decimal"), mark=other))
        ctx.fail(c, _mask(text.str.contains(other, regex=False)),
                 Message("mapping.wrong_decimal", mark=other, decimal=fmt.decimal), hint=hint)
        if fmt.decimal == ",":
            ctx.note("coerced", "decimal comma -> number", c.count(_mask(text.str.contains(",", regex=False))))
            text = text.str.replace(",", ".", regex=False)
        valid = _mask(text.str.fullmatch(_NUMBER))
        ctx.fail(c, text.notna().to_numpy() & ~valid, Message("mapping.not_a_number"))
        values[valid] = text[valid].astype(float)  # float() is exact; pandas' own parser is not always
    return values


def _labels(c: Cells, column: Column, ctx: Context, mapping: ImportMapping) -> pd.Series:
    codes = column.codes or BOOLEAN
    ctx.fail(c, c.datetime.notna(), Message("mapping.date_not_code"))
    label = c.text.astype(object)
    numbers = c.number.notna().to_numpy()
    if numbers.any():
        label[numbers] = c.number[numbers].astype(str).str.replace(r"\.0$", "", regex=True)
    booleans = c.boolean.notna().to_numpy()
    if booleans.any():
        label[booleans] = c.boolean[booleans].map({True: "true", False: "false"})
    folded = label.str.casefold().str.replace(r"\s+", " ", regex=True) if label.notna().any() else label
    values = folded.map(mapping.labels(codes, ctx.column))
    what = Message("mapping.true_or_false") if codes == BOOLEAN else Message("mapping.a_code_of", codes=codes)
    hint = (Message("mapping.hint_unmapped_own", codes=codes, key=ctx.column.key, what=what) if ctx.column.codes
            else Message("mapping.hint_unmapped", codes=codes, what=what))
    ctx.fail(c, label.notna().to_numpy() & values.isna().to_numpy(), Message("mapping.unmapped_code"), hint=hint)
    shown = values.map({True: "true", False: "false"}) if codes == BOOLEAN else values
    changed = (label.notna() & (label != shown)).to_numpy()
    if changed.any():
        pairs = pd.DataFrame({"label": label[changed], "code": shown[changed], "n": c.weight[changed]})
        for (text, code), n in pairs.groupby(["label", "code"], sort=False)["n"].sum().items():
            ctx.note("code", f"label '{text}' -> " + (code if codes == BOOLEAN else f"'{code}'"), n)
    rows = c.spread(values.astype(object), np.nan)
    if codes == BOOLEAN:
        return rows.astype("boolean") if rows.isna().any() else rows.astype(bool)
    return rows


def _serial(x: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Dates from Excel serial day numbers, and a mask of the numbers with a time of day."""
    ok = (x >= 1) & (x <= _EXCEL_MAX_SERIAL)
    days = np.floor(x.where(ok, 0))
    dates = (_EXCEL_ORIGIN + pd.to_timedelta(days.astype("int64"), unit="D")).where(ok)
    return dates, (ok & (x != days)).to_numpy()


def _dates(c: Cells, ctx: Context, fmt: Format, formats: tuple[str, ...]) -> pd.Series:
    specs = [DateFormat.parse(f, ctx.column.key) for f in formats]
    ctx.fail(c, c.boolean.notna(), Message("mapping.not_a_date"))
    values = c.datetime.dt.normalize().copy()
    timed = (c.datetime.notna() & (c.datetime != values)).to_numpy()
    ctx.note("coerced", "Excel date cell -> date", c.count(c.datetime.notna()))
    numbers = c.number.notna().to_numpy()
    if numbers.any():
        ctx.fail(c, numbers & (not any(f.excel for f in specs)), Message("mapping.number_in_date_column"),
                 hint=Message("mapping.hint_excel_dates", key=ctx.column.key, format_key=fmt.key("date_formats")))
        dates, fraction = _serial(c.number.where(numbers))
        ctx.fail(c, numbers & dates.isna().to_numpy(), Message("mapping.not_an_excel_date"))
        values[numbers] = dates[numbers]
        timed |= fraction
        ctx.note("coerced", "Excel serial number -> date", c.count(numbers))
    text = c.text
    if text.notna().any():
        parsed, times = {}, {}
        for f in specs:
            if f.excel:
                serial = text.where(_mask(text.str.fullmatch(r"\d+(?:[.,]\d+)?")))
                parsed[f.spec], fraction = _serial(serial.str.replace(",", ".", regex=False).astype(float))
                times[f.spec] = fraction
                continue
            parts = text.str.extract(f.regex)
            year = parts["y"].astype(float)
            if f.two_digit_year:
                year = fmt.two_digit_year_from + (year - fmt.two_digit_year_from % 100) % 100
            parsed[f.spec] = pd.to_datetime(pd.DataFrame({"year": year, "month": parts["m"].astype(float),
                                                          "day": parts["d"].astype(float)}), errors="coerce")
            times[f.spec] = (parts["t"].notna() & parsed[f.spec].notna()).to_numpy()
        table = pd.DataFrame(parsed)
        first = table.bfill(axis=1).iloc[:, 0]
        listed = [f.spec for f in specs]
        ctx.fail(c, (table.notna() & table.ne(first, axis=0)).any(axis=1), Message("mapping.ambiguous_date"),
                 hint=Message("mapping.hint_ambiguous_date", formats=listed, key=fmt.key("date_formats")))
        ctx.fail(c, text.notna().to_numpy() & first.isna().to_numpy(), Message("mapping.unparsable_date"),
                 hint=Message("mapping.hint_unparsable_date", n=len(listed), formats=listed[:-1], last=listed[-1],
                              key=ctx.column.key, format_key=fmt.key("date_formats")))
        which = table.notna().idxmax(axis=1).where(first.notna())
        for spec in table.columns:
            hit = (which == spec).to_numpy()
            ctx.note("coerced", f"date as {spec} -> date" if spec != "excel" else "Excel serial number -> date",
                     c.count(hit))
            timed |= hit & times[spec]
        found = first.notna().to_numpy()
        values[found] = first[found]
    ctx.note("coerced", "time of day dropped", c.count(timed))
    return values
