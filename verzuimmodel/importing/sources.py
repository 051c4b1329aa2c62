"""Reading the files of a municipality's export: every cell as the user sees it, numbered by its row.

An export is a folder with a file per table (CSV or Excel; ``tables.X.file``) or one Excel workbook
with a sheet per table (``tables.X.sheet``). A table is read without any interpretation: a CSV file's
cells as text (decoded with the declared or detected encoding, split at the declared or detected
separator), an Excel sheet's cells as their values (text, numbers, dates, true/false). The index of
the frame is the row number as a spreadsheet shows it (the header is row 1), so every later error can
name it. Excel cells holding a formula without a computed value, or an error value, are found with the
reader of :mod:`verzuimmodel.io`.
"""

from __future__ import annotations

import io as _io
import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import io as cohort_io
from .mapping import ENCODINGS_AUTO, MappingError, TableMap, normalise

__all__ = ["RawTable", "Export"]


@dataclass
class RawTable:
    """The cells of one table of the export.

    ``frame`` has the columns in file order (numbered 0, 1, ...), object values (text, and for Excel
    also numbers, dates and booleans; an empty cell is ``""``) and as index the file's row numbers.
    ``header`` holds the column names (blanks stripped). ``cells`` lists the Excel cells without a usable
    value: ``(row, column position, kind, value, reference)``.
    """

    frame: pd.DataFrame
    header: list[str]
    label: str
    details: str
    cells: list[tuple[int, int, str, str, str]] = field(default_factory=list)

    def positions(self, name: str) -> list[int]:
        """Positions of the columns called ``name`` (matched without regard to case and blanks)."""
        wanted = normalise(name)
        return [i for i, h in enumerate(self.header) if normalise(h) == wanted]


class Export:
    """An export on disk (a folder or an ``.xlsx`` workbook); open workbooks are closed on exit."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"export not found: '{self.path}' does not exist")
        if not self.path.is_dir() and self.path.suffix.lower() != ".xlsx":
            raise ValueError(f"cannot import '{self.path}': expected a folder with a file per table or an .xlsx "
                             "workbook with a sheet per table")
        self._stack = ExitStack()
        self._books: dict[Path, pd.ExcelFile] = {}

    def __enter__(self) -> "Export":
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def read(self, tmap: TableMap) -> RawTable:
        """The cells of table ``tmap``: from its file in a folder, or its sheet in the workbook."""
        if self.path.is_dir():
            if tmap.file is None:
                raise MappingError(f"{tmap.key}.file", "no file given for a folder export", source=self.path.name,
                                   hint=f"set {tmap.key}.file to the name of the table's file")
            file = self.path / tmap.file
            if not file.is_file():
                present = sorted(p.name for p in self.path.iterdir() if p.is_file())
                raise MappingError(f"{tmap.key}.file", f"file '{tmap.file}' not found in the export folder",
                                   hint="files there: " + (", ".join(present[:10]) or "none")
                                   + (", ..." if len(present) > 10 else ""))
            if file.suffix.lower() == ".xlsx":
                return self._sheet(tmap, file, single=True)
            if file.suffix.lower() in (".csv", ".txt"):
                return _read_csv(tmap, file)
            raise MappingError(f"{tmap.key}.file", f"cannot read '{tmap.file}'", hint="expected a .csv, .txt or "
                               ".xlsx file")
        if tmap.sheet is None:
            raise MappingError(f"{tmap.key}.sheet", "no sheet given for a workbook export", source=self.path.name,
                               hint=f"set {tmap.key}.sheet to the name of the table's sheet")
        return self._sheet(tmap, self.path, single=False)

    def _book(self, tmap: TableMap, file: Path) -> pd.ExcelFile:
        if file not in self._books:
            try:
                self._books[file] = self._stack.enter_context(pd.ExcelFile(file, engine="openpyxl"))
            except Exception as e:  # openpyxl raises many kinds of errors on bad files
                raise MappingError(f"{tmap.key}.{'file' if self.path.is_dir() else 'sheet'}",
                                   f"cannot read '{file.name}': {type(e).__name__}: {e}") from None
        return self._books[file]

    def _sheet(self, tmap: TableMap, file: Path, single: bool) -> RawTable:
        book = self._book(tmap, file)
        sheets = [str(s) for s in book.sheet_names]
        wanted = normalise(tmap.sheet or "")
        found = [s for s in sheets if s == tmap.sheet] or [s for s in sheets if normalise(s) == wanted]
        if not found and single and (tmap.sheet is None or len(sheets) == 1):
            found = sheets[:1]
        if len(found) != 1:
            problem = f"sheet '{tmap.sheet}' " + ("not found" if not found else "is ambiguous")
            raise MappingError(f"{tmap.key}.sheet", problem, source=file.name,
                               hint="sheets: " + ", ".join(sheets))
        sheet = found[0]
        try:
            cells = book.parse(sheet, header=None, dtype=object, keep_default_na=False, na_values=[])
        except Exception as e:  # pandas and openpyxl raise many kinds of errors on bad sheets
            raise MappingError(f"{tmap.key}.sheet", f"cannot read sheet '{sheet}' of '{file.name}': "
                               f"{type(e).__name__}: {e}") from None
        bad = [(row, col - 1, kind, value, cohort_io._cell(row, col))
               for row, col, kind, value in cohort_io._unusable_cells(file, sheet)]
        label = f"sheet '{sheet}' of {file.name}"
        return _raw(cells, label, "{rows} rows", bad)


def _raw(cells: pd.DataFrame, label: str, details: str, bad=()) -> RawTable:
    """Header (the first row) and data (the rest, indexed by row number from 2) of a table of cells."""
    if cells.empty:
        return RawTable(pd.DataFrame(index=pd.Index([], dtype=np.int64)), [], label, details.format(rows=0),
                        list(bad))
    header = [" ".join(str(h).split()) for h in cells.iloc[0]]
    data = cells.iloc[1:].copy()
    data.index = pd.RangeIndex(2, len(cells) + 1)
    data.columns = range(len(header))
    return RawTable(data, header, label, details.format(rows=len(data)), list(bad))


def _decode(data: bytes, tmap: TableMap, label: str) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was read with (declared, or the first of
    :data:`ENCODINGS_AUTO` that decodes it)."""
    fmt = tmap.format
    if fmt.encoding == "auto":
        for encoding in ENCODINGS_AUTO:
            try:
                return data.decode(encoding), f"{encoding.removesuffix('-sig')} (detected)"
            except UnicodeDecodeError:
                continue
    try:
        return data.decode(fmt.encoding), f"{fmt.encoding.removesuffix('-sig')} (declared)"
    except UnicodeDecodeError as e:
        row = data[:e.start].count(b"\n") + 1
        raise MappingError(fmt.key("encoding"), f"the file is not {fmt.encoding.removesuffix('-sig')}: byte "
                           f"0x{data[e.start]:02x} cannot be read", source=label, rows=[row],
                           hint="declare its encoding ('cp1252', 'latin-1', 'utf-8') or use 'auto'") from None


_LINE = re.compile(r"line (\d+)")


def _read_csv(tmap: TableMap, file: Path) -> RawTable:
    """The cells of a CSV file, as text."""
    label = file.name
    text, encoding = _decode(file.read_bytes(), tmap, label)
    sep = tmap.format.separator
    how = "declared"
    if sep == "auto":
        first = text.split("\n", 1)[0]
        counts = {s: first.count(s) for s in (";", ",", "\t", "|")}
        sep, how = max(counts, key=counts.get), "detected"
        if counts[sep] == 0:
            sep = ","
    try:
        cells = pd.read_csv(_io.StringIO(text), sep=sep, header=None, dtype=str, keep_default_na=False,
                            na_filter=False, skip_blank_lines=False, engine="c")
    except pd.errors.EmptyDataError:
        cells = pd.DataFrame()
    except Exception as e:  # the C parser reports ragged rows as "Expected 5 fields in line 7, saw 6"
        match = _LINE.search(str(e))
        raise MappingError(f"{tmap.key}.file", f"cannot read the file: {str(e).split('. ')[-1]}", source=label,
                           rows=[int(match.group(1))] if match else (),
                           hint=f"check the separator ({tmap.format.key('separator')}) and quotes") from None
    shown = {"\t": "tab"}.get(sep, sep)
    return _raw(cells, label, f"{{rows}} rows, encoding {encoding}, separator '{shown}' ({how})")
