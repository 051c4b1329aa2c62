"""Reading and writing cohorts.

A cohort on disk is a directory with one file per table, named after the table
(``schools.csv``, ``pupils.parquet``, ``absence.xlsx``, ...), or an Excel workbook (``.xlsx``)
with one sheet per table. A simulated cohort's directory also holds ``truth.json`` (the true
values), ``scenario.toml`` (the scenario it was drawn from) and ``cohort.json`` (its seed).

Every table read goes through :func:`verzuimmodel.schema.validate_cohort`, so a cohort that
reads without error is valid. Writing goes through :mod:`verzuimmodel.outputs`: it is atomic (a
cohort directory is either the old one or the complete new one, never half written), it replaces
only a directory the package wrote itself (its marker ``.verzuimmodel-output``) and only with
``overwrite=True``, and one writer at a time.

CSV and Excel tables are written with formula escaping (:func:`verzuimmodel.outputs.escape_formulas`):
a text cell beginning with ``= + - @``, a tab or a carriage return (or with ``'``) gets a leading
``'``, so a spreadsheet never runs an identifier such as ``=HYPERLINK(...)`` as a formula. A cohort
export is also a data file that the package reads back, so :func:`read_cohort` removes that one
``'`` again — but only from the CSV and Excel files of a directory that carries the package's
marker (which only escaped exports do); a registry export is read exactly as it is.
"""

from __future__ import annotations

import csv
import json
import os
import posixpath
import re
import zipfile
from xml.etree import ElementTree
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .cohort import Cohort
from .file_rows import TableFile, locate
from .i18n import InputError, LocalizedFileNotFoundError, Message
from .outputs import (OUTPUT_MARKER, check_output, escape_formulas, is_output, output_directory,
                      recover_for_reading, to_csv, unescape_formulas)
from .schema import TABLES, FileSource, SchemaError, empty_table, validate_cohort

__all__ = ["FORMATS", "REQUIRED_TABLES", "read_cohort", "write_cohort", "check_target", "OUTPUT_MARKER",
           "output_directory"]

Format = Literal["parquet", "csv", "xlsx"]
FORMATS: tuple[str, ...] = ("parquet", "csv", "xlsx")
"""File formats of the tables, which are also the file name extensions."""

REQUIRED_TABLES: tuple[str, ...] = ("schools", "pupils")
"""Tables a cohort on disk must have; a missing ``absence``, ``episodes`` or ``interventions``
table is read as an empty table."""

TRUTH_FILE = "truth.json"
SCENARIO_FILE = "scenario.toml"
META_FILE = "cohort.json"

_EXCEL_MAX_ROWS = 1_048_575
"""Data rows that fit on an Excel sheet (1,048,576 rows including the header)."""

_NA_TEXT = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
            "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
"""Text that pandas reads as missing by default (``na_values`` of ``read_csv`` and ``read_excel``)."""


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_cohort(path: str | os.PathLike, *, tables: Mapping[str, str | os.PathLike] | None = None) -> Cohort:
    """Read and validate a cohort.

    Parameters
    ----------
    path : a directory holding one file per table, named after the table with extension
        ``.csv``, ``.parquet`` or ``.xlsx`` (exactly one format per table), or an Excel workbook
        (``.xlsx``) with one sheet per table, named after the table; other sheets are ignored.
    tables : optional mapping from table name to a file to read that table from instead (for
        registry exports with other names); a relative file name is taken relative to the
        directory ``path`` (or the workbook's directory).

    Returns
    -------
    Cohort
        The validated, normalised tables (see :func:`verzuimmodel.schema.validate_table`).
        ``schools`` and ``pupils`` are required; a missing ``absence``, ``episodes`` or
        ``interventions`` table is taken to be empty (no rows). Where the directory holds
        ``truth.json``, ``scenario.toml`` or ``cohort.json`` (as written for a simulated cohort),
        ``truth``, ``scenario`` or ``seed`` is restored; ``scenario`` stays None if
        :mod:`verzuimmodel.simulate` cannot be imported.

    Raises
    ------
    FileNotFoundError
        ``path`` (or a file in ``tables``) does not exist.
    SchemaError
        A required table is missing (the message names the files or sheet looked for), a table
        has files in more than one format, a file cannot be parsed, or a table is invalid. The
        error names the file (and sheet) the table was read from and the offending rows as they
        are numbered there (:attr:`~verzuimmodel.schema.SchemaError.file_rows`): a CSV file's
        lines (the header is line 1; blank lines, which are skipped, still count) or a sheet's
        rows (the header is row 1); ``rows`` keeps the data rows of the table as read.

    Notes
    -----
    CSV files must be UTF-8 (a byte-order mark is fine); the separator is ``,`` or ``;`` (as in
    Dutch Excel exports, where a decimal comma is then also accepted), detected from the header.
    Identifier and code columns are read as text, so leading zeros survive. Text that pandas takes
    for missing (``NULL``, ``NA``, ``nan``, ...) is read as missing except in identifier columns,
    where only an empty cell is missing and such text is refused by validation
    (:data:`verzuimmodel.schema.MISSING_TEXT`). An Excel cell holding a formula without a computed
    value (a workbook written by a program, never opened and saved in a spreadsheet) or an error
    value (``#N/A``, ``#REF!``, ...) in a column of the table is an error, not a missing value. In a directory the
    package wrote (it carries ``.verzuimmodel-output``), the formula escaping of its CSV and Excel
    files is undone (see the module docstring). A cohort directory that a killed write left aside
    (``.<name>.old-<id>``, see :mod:`verzuimmodel.outputs`) is put back first.
    """
    path = Path(path)
    recover_for_reading(path)
    if not path.exists():
        raise LocalizedFileNotFoundError(Message("io.cohort_not_found", path=str(path)))
    for name in tables or ():
        if name not in TABLES:
            raise SchemaError(name, None, Message("schema.unknown_table"),
                              expected=Message("expected.one_of", choices=", ".join(TABLES)))
    skip = set(tables or ())
    files: dict[str, TableFile] = {}
    if path.is_dir():
        raw, folder = _read_directory(path, skip, files), path
    elif path.suffix.lower() == ".xlsx":
        raw, folder = _read_workbook(path, skip, files), path.parent
    else:
        raise InputError(Message("io.not_a_cohort", path=str(path)))
    for name, file in (tables or {}).items():
        raw[name] = _read_file(name, folder / file, files)
    for name in TABLES:
        raw.setdefault(name, empty_table(name))
    try:
        valid = validate_cohort(raw, copy=False)
    except SchemaError as e:
        raise locate(e, files) from None
    extras = _read_extras(path) if path.is_dir() else {}
    return Cohort(**valid, **extras)


def _read_directory(folder: Path, skip: set[str], files: dict[str, TableFile]) -> dict[str, pd.DataFrame]:
    """The tables found in ``folder`` (tables in ``skip`` are read from elsewhere); where each was read
    from is added to ``files``."""
    raw = {}
    for name in TABLES:
        if name in skip:
            continue
        candidates = [f"{name}.{ext}" for ext in FORMATS]
        found = [folder / f for f in candidates if (folder / f).is_file()]
        if len(found) > 1:
            raise SchemaError(name, None, Message("io.several_files", files=", ".join(f.name for f in found)),
                              expected=Message("io.expected_exactly_one", files=", ".join(candidates),
                                               folder=str(folder)))
        if found:
            raw[name] = _read_file(name, found[0], files)
        elif name in REQUIRED_TABLES:
            raise SchemaError(name, None, Message("io.table_not_found"),
                              expected=Message("io.expected_one_file", files=", ".join(candidates),
                                               folder=str(folder)))
    return raw


def _read_workbook(path: Path, skip: set[str], files: dict[str, TableFile]) -> dict[str, pd.DataFrame]:
    """The sheets of a workbook that are named after a table (tables in ``skip`` are read from elsewhere);
    where each was read from is added to ``files``."""
    with _parse(None, path, lambda: pd.ExcelFile(path)) as workbook:
        sheets = workbook.sheet_names
        for name in REQUIRED_TABLES:
            if name not in sheets and name not in skip:
                raise SchemaError(name, None, Message("io.table_not_found"),
                                  expected=Message("io.expected_sheet", sheet=name, path=str(path),
                                                   sheets=", ".join(map(str, sheets))))
        raw = {}
        for name in TABLES:
            if name in sheets and name not in skip:
                raw[name] = _tidy_header(_parse(name, path, lambda name=name: _read_sheet(workbook, path, name, name)))
                files[name] = TableFile(path, "xlsx", name)
    return raw


def _read_file(name: str, file: Path, files: dict[str, TableFile]) -> pd.DataFrame:
    """One table from a CSV, Parquet or Excel file; where it was read from is added to ``files``."""
    if not file.is_file():
        raise LocalizedFileNotFoundError(Message("io.table_file_not_found", table=name, file=str(file)))
    readers = {".csv": _read_csv, ".parquet": _read_parquet, ".xlsx": _read_excel}
    reader = readers.get(file.suffix.lower())
    if reader is None:
        raise SchemaError(name, None, Message("io.cannot_read", file=file.name),
                          expected=Message("io.expected_file_format"))
    df, files[name] = _parse(name, file, lambda: reader(name, file))
    df = _tidy_header(df)
    if reader is not _read_parquet and is_output(file.parent):  # written by _write_csv / _write_excel
        for c in TABLES[name].columns:
            if c.kind in ("id", "code", "str") and c.name in df.columns:
                df[c.name] = unescape_formulas(df[c.name])
    return df


def _parse(name: str | None, file: Path, read) -> Any:
    """Call ``read()``, turning a parse failure into a SchemaError naming the table and file.

    With ``name`` None (a whole workbook) the error is a plain ValueError.
    """
    try:
        return read()
    except (FileNotFoundError, SchemaError):
        raise
    except Exception as e:  # pandas, pyarrow and openpyxl raise many kinds of errors on bad files
        problem = Message("io.parse_failed", file=str(file), error=f"{type(e).__name__}: {e}")
        if name is None:
            raise InputError(problem) from e
        raise SchemaError(name, None, problem) from e


def _na_values(name: str, columns) -> dict:
    """Per column of table ``name``, the text read as missing: pandas' default, but in identifier
    columns only the empty cell (validation refuses ``NULL`` and the like there)."""
    ids = {c.name for c in TABLES[name].columns if c.kind == "id"}
    return {c: [""] if str(c).strip() in ids else list(_NA_TEXT) for c in columns}


def _read_csv(name: str, file: Path) -> tuple[pd.DataFrame, TableFile]:
    with open(file, encoding="utf-8-sig", newline="") as f:
        header = f.readline()
    sep = ";" if header.count(";") > header.count(",") else ","
    names = [c.strip() for c in next(csv.reader([header], delimiter=sep), [])]
    text = {c.name: str for c in TABLES[name].columns if c.kind in ("id", "code", "str") and c.name in names}
    df = pd.read_csv(file, sep=sep, header=0, names=names or None, dtype=text, encoding="utf-8-sig",
                     decimal="," if sep == ";" else ".", float_precision="round_trip",
                     keep_default_na=False, na_values=_na_values(name, names))
    return df, TableFile(file, "csv", separator=sep)


def _read_parquet(name: str, file: Path) -> tuple[pd.DataFrame, TableFile]:
    """A parquet file as a DataFrame, converted column by column with the Arrow table freed as it
    goes (``self_destruct``) and Arrow's unused memory handed back: on the national cohort this
    keeps the peak at 3.4 GB instead of 4.6 GB (the tables hold 2.0 GB)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(file)
    df = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    pa.default_memory_pool().release_unused()
    return df, TableFile(file, "parquet")


def _read_excel(name: str, file: Path) -> tuple[pd.DataFrame, TableFile]:
    with pd.ExcelFile(file) as workbook:
        sheet = name if name in workbook.sheet_names else workbook.sheet_names[0]
        return _read_sheet(workbook, file, sheet, name), TableFile(file, "xlsx", str(sheet))


def _read_sheet(workbook: pd.ExcelFile, file: Path, sheet: str, name: str) -> pd.DataFrame:
    """Table ``name`` from sheet ``sheet`` of an open workbook, refusing cells without a usable value.

    pandas (through openpyxl) reads the value each cell had when the file was last saved by a
    spreadsheet program; a formula never computed has none and an error value is read as missing
    or as text, so both are looked for in the file itself (:func:`_unusable_cells`).
    """
    header = workbook.parse(sheet, nrows=0).columns  # reads the first row only
    df = workbook.parse(sheet, keep_default_na=False, na_values=_na_values(name, header))
    _check_cells(name, file, sheet, df.columns)
    return df


def _check_cells(name: str, file: Path, sheet: str, columns) -> None:
    """Raise a SchemaError for the first column of the table holding unusable cells (see :func:`_unusable_cells`).

    pandas takes the header from the sheet's first row and column ``A`` as its first column, so
    the cell in row ``r`` and column ``k`` is data row ``r - 1`` of column ``columns[k - 1]``.
    """
    cells = _unusable_cells(file, sheet)
    if not cells:
        return
    names = [str(c).strip() for c in columns]
    declared = set(TABLES[name].column_names)
    source = FileSource(file.name, str(sheet), "row")
    at = {}  # (column, kind) -> [(row, reference, value)], in the order of the sheet
    for row, col, kind, value in cells:
        column = names[col - 1] if col <= len(names) else None
        if row == 1:
            problem = (Message("io.header_formula", cell=_cell(row, col)) if kind == "formula"
                       else Message("io.header_error_value", cell=_cell(row, col), value=value))
            raise SchemaError(name, None, problem, expected=Message("io.expected_header"), source=source)
        if column in declared:
            at.setdefault((column, kind), []).append((row, _cell(row, col), value))
    if not at:
        return
    (column, kind), found = next(iter(at.items()))
    refs = ", ".join(ref for _, ref, _ in found[:5]) + (", ..." if len(found) > 5 else "")
    if kind == "formula":
        problem = Message("io.formula_cells", n=len(found), cells=refs)
        expected = Message("io.expected_formula_value")
    else:
        values = ", ".join(dict.fromkeys(repr(v) for _, _, v in found[:20]))
        problem = Message("io.error_value_cells", n=len(found), values=values, cells=refs)
        expected = Message("io.expected_error_value")
    sheet_rows = [r for r, _, _ in found]
    raise SchemaError(name, column, problem, [r - 1 for r in sheet_rows[:20]], expected, n_rows=len(sheet_rows),
                      source=source, file_rows=sheet_rows[:20])


def _cell(row: int, col: int) -> str:
    """The Excel reference (``"E3"``) of the cell in row ``row`` and column ``col`` (1-based)."""
    letters = ""
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"{letters}{row}"


_SUSPECTS = tuple(re.compile(p) for p in (rb"<f[\s/>]", rb":f[\s/>]", rb"""t=["']e["']"""))
"""A formula element (also with a namespace prefix) or an error cell in the XML of a sheet. Searched
for one by one: each begins with a literal, which ``re`` finds fast; a false match only costs time."""

_CHUNK = 1 << 24


def _unusable_cells(file: Path, sheet: str) -> list[tuple[int, int, str, str]]:
    """The cells of a sheet that hold a formula without a computed value, or an error value.

    Returns ``(row, column, kind, value)`` (1-based row and column; ``kind`` ``"formula"`` or
    ``"error"``; ``value`` the error value, such as ``"#N/A"``) in the order of the sheet.

    The sheet's XML is scanned once for formula elements and error cells (a fast search over the
    raw bytes) and parsed cell by cell only if it has any. A formula cell has a computed value when
    its ``<v>`` element is present and not empty (or empty with ``t="str"``: a computed empty text).
    A file whose sheet cannot be found is not checked (pandas has read it already).
    """
    try:
        with zipfile.ZipFile(file) as archive:
            part = _sheet_part(archive, sheet)
            if part is None or not _has_suspects(archive, part):
                return []
            with archive.open(part) as xml:
                return list(_scan_cells(xml))
    except (KeyError, zipfile.BadZipFile, ElementTree.ParseError):
        return []


def _has_suspects(archive: zipfile.ZipFile, part: str) -> bool:
    with archive.open(part) as xml:
        tail = b""
        while chunk := xml.read(_CHUNK):
            block = tail + chunk
            if any(p.search(block) for p in _SUSPECTS):
                return True
            tail = chunk[-64:]
    return False


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _sheet_part(archive: zipfile.ZipFile, sheet: str) -> str | None:
    """The path inside the archive of the XML of sheet ``sheet``, or None."""
    book = "xl/workbook.xml"
    for rel in ElementTree.fromstring(archive.read("_rels/.rels")):
        if rel.get("Type", "").endswith("/officeDocument"):
            book = rel.get("Target", book).lstrip("/")
    folder = posixpath.dirname(book)
    rels = ElementTree.fromstring(archive.read(posixpath.join(folder, "_rels", posixpath.basename(book) + ".rels")))
    targets = {rel.get("Id"): rel.get("Target", "") for rel in rels}
    for element in ElementTree.fromstring(archive.read(book)).iter():
        if _local(element.tag) == "sheet" and element.get("name") == sheet:
            rid = next((v for k, v in element.attrib.items() if _local(k) == "id"), None)
            target = targets.get(rid)
            if not target:
                return None
            return target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
    return None


_REFERENCE = re.compile(r"([A-Z]+)(\d+)")


def _scan_cells(xml) -> list[tuple[int, int, str, str]]:
    """See :func:`_unusable_cells`; rows and cells without a reference follow the one before."""
    found = []
    row = col = 0
    for event, element in ElementTree.iterparse(xml, events=("start", "end")):
        tag = _local(element.tag)
        if event == "start":
            if tag == "row":
                row, col = int(element.get("r") or row + 1), 0
            continue
        if tag == "c":
            match = _REFERENCE.fullmatch(element.get("r") or "")
            if match:
                letters, number = match.groups()
                col = 0
                for letter in letters:
                    col = 26 * col + ord(letter) - ord("A") + 1
                row = int(number)
            else:
                col += 1
            children = {_local(child.tag): child for child in element}
            value = (children["v"].text or "") if "v" in children else None
            if element.get("t") == "e":
                found.append((row, col, "error", value or ""))
            elif "f" in children and (value is None or (value == "" and element.get("t") != "str")):
                found.append((row, col, "formula", ""))
            element.clear()
        elif tag == "row":
            element.clear()
    return found


def _tidy_header(df: pd.DataFrame) -> pd.DataFrame:
    """Column names as text without surrounding blanks."""
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _read_extras(folder: Path) -> dict[str, Any]:
    """``truth``, ``scenario`` and ``seed`` of a simulated cohort, where their files exist."""
    extras: dict[str, Any] = {}
    if (folder / TRUTH_FILE).is_file():
        extras["truth"] = json.loads((folder / TRUTH_FILE).read_text(encoding="utf-8"))
    if (folder / META_FILE).is_file():
        extras["seed"] = json.loads((folder / META_FILE).read_text(encoding="utf-8")).get("seed")
    if (folder / SCENARIO_FILE).is_file():
        try:
            from .simulate import Scenario
        except ImportError:
            pass
        else:
            extras["scenario"] = Scenario.from_toml(folder / SCENARIO_FILE)
    return extras


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def check_target(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Check that :func:`write_cohort` may write to ``path``, before doing long work.

    ``path`` may be new, an empty directory, or (with ``overwrite``) an earlier output of the
    package (:func:`verzuimmodel.outputs.check_output`). Returns ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    verzuimmodel.outputs.OutputExistsError
        A ``FileExistsError``: ``path`` is a file, a directory the package did not write (such as a
        registry export), or an earlier output and ``overwrite`` is false.
    """
    return check_output(path, overwrite)


def write_cohort(cohort: Cohort, path: str | os.PathLike, fmt: Format = "parquet", *,
                 overwrite: bool = False) -> Path:
    """Validate a cohort and write it to directory ``path``, one file per table.

    Parameters
    ----------
    cohort : the cohort.
    path : the directory to write: new, or empty. Missing parent directories are created.
    fmt : ``"parquet"`` (via pyarrow; dtypes including categories round-trip), ``"csv"`` (UTF-8,
        comma-separated, ISO dates) or ``"xlsx"`` (one workbook per table; at most 1,048,575 rows).
        Text cells of CSV and Excel tables are formula-escaped (see the module docstring).
    overwrite : replace an earlier output of the package at ``path``. A directory the package did
        not write (no marker ``.verzuimmodel-output``), or one to which other files were added, is
        never replaced.

    Returns
    -------
    pathlib.Path
        ``path``.

    Notes
    -----
    Atomic (:func:`verzuimmodel.outputs.output_directory`): everything is written to a temporary
    directory beside ``path`` that then takes its place in one step, and the directory is locked
    while it is written. If anything fails, the temporary directory is removed and an existing
    ``path`` is left as it was. Besides the tables, a simulated cohort gets ``truth.json`` (numpy
    values converted to plain JSON), ``scenario.toml`` (``cohort.scenario.to_toml``) and
    ``cohort.json`` (the seed).

    Raises
    ------
    ValueError
        Unknown ``fmt``, or a table too large for Excel.
    SchemaError
        The cohort is invalid (nothing is written).
    FileExistsError
        ``path`` may not be replaced (:class:`~verzuimmodel.outputs.OutputExistsError`).
    OSError
        Another process is writing ``path`` (:class:`~verzuimmodel.outputs.OutputLockedError`).
    """
    if fmt not in FORMATS:
        raise InputError(Message("io.unknown_format", fmt=fmt, formats=", ".join(FORMATS)))
    path = check_target(path, overwrite)
    tables = validate_cohort(cohort.tables, copy=False)
    if fmt == "xlsx":
        _check_excel_size(tables)
    with output_directory(path, overwrite) as tmp:
        for name, df in tables.items():
            _WRITERS[fmt](df, tmp / f"{name}.{fmt}", name)
        _write_extras(cohort, tmp)
    return path


def _write_parquet(df: pd.DataFrame, file: Path, name: str) -> None:
    df.to_parquet(file, engine="pyarrow", index=False)


def _write_csv(df: pd.DataFrame, file: Path, name: str) -> None:
    to_csv(df, file)


def _write_excel(df: pd.DataFrame, file: Path, name: str) -> None:
    escape_formulas(df).to_excel(file, sheet_name=name, index=False)


_WRITERS = {"parquet": _write_parquet, "csv": _write_csv, "xlsx": _write_excel}


def _check_excel_size(tables: dict[str, pd.DataFrame]) -> None:
    for name, df in tables.items():
        if len(df) > _EXCEL_MAX_ROWS:
            raise InputError(Message("io.too_many_rows_for_excel", table=name, n=len(df), max=_EXCEL_MAX_ROWS))


def _write_extras(cohort: Cohort, folder: Path) -> None:
    """``truth.json``, ``scenario.toml`` and ``cohort.json`` of a simulated cohort."""
    if cohort.truth:
        (folder / TRUTH_FILE).write_text(json.dumps(_jsonable(cohort.truth), indent=2), encoding="utf-8")
    if cohort.scenario is not None:
        cohort.scenario.to_toml(folder / SCENARIO_FILE)
    if cohort.seed is not None:
        (folder / META_FILE).write_text(json.dumps({"seed": int(cohort.seed)}, indent=2), encoding="utf-8")


def _jsonable(value: Any) -> Any:
    """``value`` with numpy, pandas and date values turned into plain JSON values.

    Dictionary keys become text; arrays, tuples and sets lists; a DataFrame a dict of column lists.
    """
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(_jsonable(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, pd.DataFrame):
        return _jsonable(value.to_dict(orient="list"))
    if isinstance(value, (pd.Series, pd.Index, np.ndarray, list, tuple, set, frozenset)):
        return [_jsonable(v) for v in (sorted(value) if isinstance(value, (set, frozenset)) else value)]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"cannot write a {type(value).__name__} to {TRUTH_FILE}")
