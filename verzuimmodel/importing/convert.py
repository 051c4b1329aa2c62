"""Applying an import mapping: a municipality's own export -> a validated cohort and a log.

:func:`read_export` reads every table the mapping names (:mod:`~verzuimmodel.importing.sources`),
refuses columns that look like direct identifiers (unless the mapping drops them), converts each
mapped column (:mod:`~verzuimmodel.importing.values`) and validates the cohort
(:func:`verzuimmodel.validation.validate_cohort`); a validation error is reported with the mapping
key and the rows of the user's file (its lines for a CSV file, its rows for a sheet), also after empty
rows were dropped. :func:`import_export` also writes the cohort and its log
(``import_log.csv``) through the output-directory rules of :mod:`verzuimmodel.outputs`.

The log counts, per table and column, what was mapped, coerced (decimal commas, date formats,
school-year notation, text for missing, ...), translated from the user's labels to codes, and
dropped (columns, empty rows). It holds column names, code labels and counts, never a value of an
identifier or any other cell.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import io as cohort_io
from ..cohort import Cohort
from ..i18n import InputError, Message
from ..outputs import output_directory, to_csv
from ..schema import TABLES, SchemaError, empty_table, validate_cohort
from .mapping import TEMPLATES, ImportMapping, MappingError, TableMap
from .sources import Export, RawTable
from .values import Context, cells, convert

__all__ = ["LOG_FILE", "LOG_COLUMNS", "read_export", "import_export", "write_import", "as_mapping",
           "identifier_kind"]

LOG_FILE = "import_log.csv"
"""Name of the log that ``verzuim import`` writes beside the tables."""

LOG_COLUMNS = ("table", "column", "source", "action", "detail", "count")
"""Columns of the log: the package's table and column, the user's column (or file), the action
(``read``, ``mapped``, ``constant``, ``code``, ``coerced``, ``dropped``, ``skipped``), what was done, and
how many values (rows for ``read`` and empty rows)."""

_IDENTIFIERS = {
    "bsn": r"bsn|burgerservicenummer|sofinummer|sofi",
    "name": r"(?:voor|achter|roep|leerling|volledige|geboorte|meisjes)?na(?:am|men)|voorletters?|"
            r"tussenvoegsels?|(?:first|last|sur|full)?name",
    "address": r"(?:woon|huis|post|thuis)?adres(?:sen)?|straat(?:naam)?|huisnummer|address|street",
    "postcode": r"postcode|zipcode|zip",
    "email": r"e?mail(?:adres)?",
    "telephone": r"telefoon(?:nummer|nr)?|tel(?:nr)?|mobiel(?:nummer)?|gsm|phone",
    "birth": r"geboortedatum|geb(?:oorte)?dat(?:um)?|birthdate|dateofbirth|dob",
}
"""Kinds of direct identifiers (``mapping.identifier.<kind>`` in the message catalogue) and the column
names that give them away."""
_BIRTH = "mapping.identifier.birth"


def identifier_kind(name: str) -> str | None:
    """What a column called ``name`` looks like, if a direct identifier (``"a name"``, ...), else None.

    The name is matched word by word (split at anything but letters and digits) and as a whole without
    separators: ``Achternaam``, ``naam leerling``, ``e-mail``, ``Tel.nr`` are identifiers;
    ``schoolnaam`` and ``geboortejaar`` are not. The kind is a :class:`~verzuimmodel.i18n.Message`:
    as text the English words (``"a citizen service number (BSN)"``), ``.render("nl")`` the Dutch.
    """
    folded = str(name).casefold()
    words = [w for w in re.split(r"[^0-9a-z]+", folded) if w] + [re.sub(r"[^0-9a-z]", "", folded)]
    for kind, pattern in _IDENTIFIERS.items():
        if any(re.fullmatch(pattern, w) for w in words):
            return Message(f"mapping.identifier.{kind}")
    return None


class _Log:
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, table: str, column: str, source: str, action: str, detail: str, count) -> None:
        """A line of the log; ``source`` may be a message (the log holds its English text)."""
        if int(count) or action in ("read", "skipped"):
            self.rows.append((table, column, str.__str__(source), action, detail, int(count)))

    def frame(self) -> pd.DataFrame:
        log = pd.DataFrame(self.rows, columns=list(LOG_COLUMNS))
        keys = list(LOG_COLUMNS[:-1])
        return log.groupby(keys, sort=False, as_index=False)["count"].sum().astype({"count": "int64"})


def as_mapping(mapping: ImportMapping | Mapping | str | os.PathLike) -> ImportMapping:
    """An :class:`ImportMapping` from a mapping, a parsed TOML dict, a shipped template's name or a file."""
    if isinstance(mapping, ImportMapping):
        return mapping
    if isinstance(mapping, Mapping):
        return ImportMapping.from_dict(mapping)
    if isinstance(mapping, str) and mapping in TEMPLATES and not Path(mapping).exists():
        return ImportMapping.template(mapping)
    return ImportMapping.load(mapping)


def read_export(path: str | os.PathLike, mapping: ImportMapping | Mapping | str | os.PathLike
                ) -> tuple[Cohort, pd.DataFrame]:
    """Read a municipality's own export with an import mapping.

    Parameters
    ----------
    path : a folder with a file per table (CSV or ``.xlsx``; ``tables.X.file``) or one ``.xlsx`` workbook
        with a sheet per table (``tables.X.sheet``).
    mapping : an :class:`ImportMapping`, the path of a mapping file (TOML), a shipped template's name
        (``"nl_template"``) or a parsed TOML dict. See ``data/README.md``.

    Returns
    -------
    (Cohort, pandas.DataFrame)
        The validated cohort, and the log of what was read, mapped, coerced and dropped
        (:data:`LOG_COLUMNS`; counts, never identifiers). A table the mapping leaves out or marks
        ``skip = true`` is empty.

    Raises
    ------
    MappingError
        A ValueError in one line naming the mapping key and the rows of the user's file (the lines of a
        CSV file as a text editor numbers them, the rows of a sheet as a spreadsheet does: the header is
        line or row 1), in the language in force (:mod:`verzuimmodel.i18n`): a column or file not found, a
        column that looks like a direct
        identifier and is not dropped, an unmapped code, an unparsable or ambiguous date, a value that
        is not a number, an Excel formula without a computed value or an error value, or a value that
        fails validation.
    FileNotFoundError
        ``path`` or the mapping file does not exist.
    """
    mapping = as_mapping(mapping)
    log = _Log()
    tables: dict[str, pd.DataFrame] = {}
    rows: dict[str, np.ndarray] = {}
    raws: dict[str, RawTable] = {}
    with Export(path) as export:
        for name in TABLES:
            tmap = mapping.tables.get(name)
            if tmap is None or tmap.skip:
                log.add(name, "", "", "skipped", "not in the export: empty table", 0)
                tables[name] = empty_table(name)
                continue
            raw = export.read(tmap)
            log.add(name, "", raw.label, "read", raw.details, len(raw.frame))
            tables[name], rows[name] = _table(raw, tmap, mapping, log)
            raws[name] = raw
    try:
        valid = validate_cohort(tables, copy=False)
    except SchemaError as e:
        raise _translate(e, mapping, rows, raws) from None
    return Cohort(**valid), log.frame()


def _table(raw: RawTable, tmap: TableMap, mapping: ImportMapping, log: _Log) -> tuple[pd.DataFrame, np.ndarray]:
    """The mapped columns of one table (before validation) and the file row of each of its rows."""
    frame = raw.frame
    used: dict[str, int] = {}
    for cm in tmap.columns:
        if cm.source is None:
            continue
        found = raw.positions(cm.source)
        if len(found) != 1:
            problem = (Message("mapping.column_not_found", column=cm.source) if not found
                       else Message("mapping.column_twice", column=cm.source, n=len(found)))
            raise MappingError(cm.key, problem, source=raw.label, rows=[1], unit=raw.unit,
                               hint=Message("mapping.hint_columns",
                                            columns=", ".join(f"'{h}'" for h in raw.header[:30] if h)))
        used[cm.name] = found[0]
    dropped = {p for d in tmap.drop for p in raw.positions(d)}
    _refuse_identifiers(raw, tmap, dropped)
    _refuse_cells(raw, tmap, used)
    empty = (frame.isna() | frame.eq("")).all(axis=1).to_numpy() if frame.shape[1] else np.ones(len(frame), bool)
    frame = frame[~empty]
    log.add(tmap.name, "", raw.label, "dropped", "empty rows", empty.sum())
    for pos, header in enumerate(raw.header):
        if pos in used.values():
            continue
        filled = (~(frame[pos].isna() | frame[pos].eq(""))).sum()
        why = "listed in drop" if pos in dropped else ("column without a name" if not header
                                                      else "column not in the mapping")
        log.add(tmap.name, "", header, "dropped", why, filled)
    out = {}
    for cm in tmap.columns:
        column = TABLES[tmap.name].column(cm.name)

        def note(action: str, detail: str, count, cm=cm) -> None:
            log.add(tmap.name, cm.name, cm.source or "", action, detail, count)

        if cm.source is None:
            values = pd.Series(cm.value, index=frame.index, dtype=object)
            ctx = Context(cm, Message("mapping.source_constant", key=cm.key), note, with_rows=False)
            note("constant", f"constant value {cm.value!r}", len(frame))
        else:
            values = frame[used[cm.name]]
            ctx = Context(cm, Message("mapping.source_column", column=cm.source, source=raw.label), note,
                          unit=raw.unit)
        c = cells(values, tmap.format, note)
        out[cm.name] = convert(c, column, ctx, tmap.format, mapping).reset_index(drop=True)
        if cm.source is not None:
            note("mapped", "column mapped", c.count(~c.missing))
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame))), frame.index.to_numpy()


def _refuse_identifiers(raw: RawTable, tmap: TableMap, dropped: set[int]) -> None:
    """A MappingError for the first column that looks like a direct identifier and is not dropped.

    A date of birth is an identifier when it gives the day (a date cell, a serial number, or text with
    three numbers); a year or a month and year is not.
    """
    for pos, header in enumerate(raw.header):
        kind = identifier_kind(header) if header else None
        if kind is None or pos in dropped:
            continue
        if kind.key == _BIRTH:
            c = cells(raw.frame[pos], tmap.format, lambda *args: None)
            day = (c.text.str.count(r"\d+") >= 3) | (c.number > 9999) | c.datetime.notna()
            if not day.any():
                continue
            kind = Message("mapping.identifier.birth_day")
        raise MappingError(f"{tmap.key}.drop", Message("mapping.identifier_refused", column=header, kind=kind),
                           source=raw.label, rows=[1], unit=raw.unit,
                           hint=Message("mapping.hint_drop", column=header, key=f"{tmap.key}.drop"))


def _refuse_cells(raw: RawTable, tmap: TableMap, used: dict[str, int]) -> None:
    """A MappingError for the first Excel cell of a mapped column without a usable value."""
    by_pos = {pos: name for name, pos in used.items()}
    for row, pos, kind, value, ref in raw.cells:
        if pos not in by_pos:
            continue
        key = next(cm.key for cm in tmap.columns if cm.name == by_pos[pos])
        source = Message("mapping.source_column", column=raw.header[pos], source=raw.label)
        if kind == "formula":
            raise MappingError(key, Message("mapping.formula_cell", cell=ref), source=source, rows=[row],
                               hint=Message("mapping.hint_formula"), unit=raw.unit)
        raise MappingError(key, Message("mapping.error_value_cell", value=value, cell=ref), source=source,
                           rows=[row], hint=Message("mapping.hint_error_value"), unit=raw.unit)


def _translate(e: SchemaError, mapping: ImportMapping, rows: dict[str, np.ndarray],
               raws: dict[str, RawTable]) -> MappingError:
    """A validation error, with the mapping key and the rows of the user's file (also after empty rows
    were dropped: ``rows`` holds the file's number of each row of the converted table)."""
    tmap = mapping.tables.get(e.table)
    names = e.column.split(", ") if e.column else []
    mapped = {cm.name: cm for cm in tmap.columns} if tmap is not None else {}
    found = [mapped[n] for n in names if n in mapped]
    key = found[0].key if found else f"tables.{e.table}"
    raw = raws.get(e.table)
    where = raw.label if raw is not None else Message("frame.table", table=e.table)
    if found:
        sources = [f"'{cm.source}'" if cm.source else Message("mapping.constant") for cm in found]
        source = Message("mapping.source_columns", n=len(sources), columns=sources, source=where)
    else:
        source = where
    file_rows = rows.get(e.table)
    user_rows = [int(file_rows[r - 1]) for r in e.rows if file_rows is not None and 0 < r <= len(file_rows)]
    return MappingError(key, e.problem, source=source, rows=user_rows, n_rows=e.n_rows if user_rows else None,
                        hint=Message("mapping.hint_expected", expected=e.expected) if e.expected else None,
                        unit=raw.unit if raw is not None else "row")


def write_import(cohort: Cohort, log: pd.DataFrame, path: str | os.PathLike, *, fmt: str = "parquet",
                 overwrite: bool = False) -> Path:
    """Write an imported cohort and its log (:data:`LOG_FILE`) to directory ``path``.

    As :func:`verzuimmodel.io.write_cohort` (the same writers, atomic, only into a new or empty directory
    or, with ``overwrite``, over an earlier output of the package), with the log beside the tables.
    """
    if fmt not in cohort_io.FORMATS:
        raise InputError(Message("io.unknown_format", fmt=fmt, formats=", ".join(cohort_io.FORMATS)))
    cohort_io.check_target(path, overwrite)
    tables = validate_cohort(cohort.tables, copy=False)
    if fmt == "xlsx":
        cohort_io._check_excel_size(tables)
    with output_directory(path, overwrite) as tmp:
        for name, df in tables.items():
            cohort_io._WRITERS[fmt](df, tmp / f"{name}.{fmt}", name)
        to_csv(log, tmp / LOG_FILE)
    return Path(path)


def import_export(path: str | os.PathLike, mapping: Any, out: str | os.PathLike, *, fmt: str = "parquet",
                  overwrite: bool = False) -> tuple[Cohort, pd.DataFrame]:
    """:func:`read_export`, then :func:`write_import` to ``out`` (checked first, before the export is read)."""
    cohort_io.check_target(out, overwrite)
    cohort, log = read_export(path, mapping)
    write_import(cohort, log, out, fmt=fmt, overwrite=overwrite)
    return cohort, log
