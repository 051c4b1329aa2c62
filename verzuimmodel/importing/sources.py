"""Reading the files of a municipality's export: every cell as the user sees it, numbered by its row.

An export is a folder with a file per table (CSV or Excel; ``tables.X.file``) or one Excel workbook
with a sheet per table (``tables.X.sheet``). A table is read without any interpretation: a CSV file's
cells as text (decoded with the declared or detected encoding, split at the declared or detected
separator), an Excel sheet's cells as their values (text, numbers, dates, true/false). The index of
the frame is the row's number in the file, so every later error can name it: for a CSV file the line
where the row starts, as a text editor numbers them (the header is line 1; a quoted cell may span
lines), for a sheet the row as a spreadsheet shows it (the header is row 1). Excel cells holding a
formula without a computed value, or an error value, are found with the reader of
:mod:`verzuimmodel.io`.
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
from ..i18n import InputError, LocalizedFileNotFoundError, Message
from .mapping import ENCODINGS_AUTO, MappingError, TableMap, normalise

__all__ = ["RawTable", "Export"]


@dataclass
class RawTable:
    """The cells of one table of the export.

    ``frame`` has the columns in file order (numbered 0, 1, ...), object values (text, and for Excel
    also numbers, dates and booleans; an empty cell is ``""``) and as index the file's line (CSV) or row
    (sheet) numbers; ``unit`` says which. ``header`` holds the column names (blanks stripped). ``label``
    names the file (and sheet) in messages; ``details`` is the log's note on how it was read. ``cells``
    lists the Excel cells without a usable value: ``(row, column position, kind, value, reference)``.
    """

    frame: pd.DataFrame
    header: list[str]
    label: Message
    details: str
    cells: list[tuple[int, int, str, str, str]] = field(default_factory=list)
    unit: str = "row"

    def positions(self, name: str) -> list[int]:
        """Positions of the columns called ``name`` (matched without regard to case and blanks)."""
        wanted = normalise(name)
        return [i for i, h in enumerate(self.header) if normalise(h) == wanted]


class Export:
    """An export on disk (a folder or an ``.xlsx`` workbook); open workbooks are closed on exit."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise LocalizedFileNotFoundError(Message("mapping.export_not_found", path=str(self.path)))
        if not self.path.is_dir() and self.path.suffix.lower() != ".xlsx":
            raise InputError(Message("mapping.not_an_export", path=str(self.path)))
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
                raise MappingError(f"{tmap.key}.file", Message("mapping.no_file"), source=self.path.name,
                                   hint=Message("mapping.hint_set_file", key=tmap.key))
            file = self.path / tmap.file
            if not file.is_file():
                present = sorted(p.name for p in self.path.iterdir() if p.is_file())
                listed = ", ".join(present[:10]) + (", ..." if len(present) > 10 else "")
                raise MappingError(f"{tmap.key}.file", Message("mapping.file_not_in_export", file=tmap.file),
                                   hint=Message("mapping.hint_files_there", files=listed or Message("expected.none")))
            if file.suffix.lower() == ".xlsx":
                return self._sheet(tmap, file, single=True)
            if file.suffix.lower() in (".csv", ".txt"):
                return _read_csv(tmap, file)
            raise MappingError(f"{tmap.key}.file", Message("mapping.cannot_read", file=tmap.file),
                               hint=Message("mapping.hint_file_format"))
        if tmap.sheet is None:
            raise MappingError(f"{tmap.key}.sheet", Message("mapping.no_sheet"), source=self.path.name,
                               hint=Message("mapping.hint_set_sheet", key=tmap.key))
        return self._sheet(tmap, self.path, single=False)

    def _book(self, tmap: TableMap, file: Path) -> pd.ExcelFile:
        if file not in self._books:
            try:
                self._books[file] = self._stack.enter_context(pd.ExcelFile(file, engine="openpyxl"))
            except Exception as e:  # openpyxl raises many kinds of errors on bad files
                raise MappingError(f"{tmap.key}.{'file' if self.path.is_dir() else 'sheet'}",
                                   Message("mapping.read_failed", file=file.name, error=f"{type(e).__name__}: {e}")
                                   ) from None
        return self._books[file]

    def _sheet(self, tmap: TableMap, file: Path, single: bool) -> RawTable:
        book = self._book(tmap, file)
        sheets = [str(s) for s in book.sheet_names]
        wanted = normalise(tmap.sheet or "")
        found = [s for s in sheets if s == tmap.sheet] or [s for s in sheets if normalise(s) == wanted]
        if not found and single and (tmap.sheet is None or len(sheets) == 1):
            found = sheets[:1]
        if len(found) != 1:
            problem = Message("mapping.sheet_not_found" if not found else "mapping.sheet_ambiguous", sheet=tmap.sheet)
            raise MappingError(f"{tmap.key}.sheet", problem, source=file.name,
                               hint=Message("mapping.hint_sheets", sheets=", ".join(sheets)))
        sheet = found[0]
        try:
            cells = book.parse(sheet, header=None, dtype=object, keep_default_na=False, na_values=[])
        except Exception as e:  # pandas and openpyxl raise many kinds of errors on bad sheets
            raise MappingError(f"{tmap.key}.sheet", Message("mapping.sheet_read_failed", sheet=sheet, file=file.name,
                                                            error=f"{type(e).__name__}: {e}")) from None
        bad = [(row, col - 1, kind, value, cohort_io._cell(row, col))
               for row, col, kind, value in cohort_io._unusable_cells(file, sheet)]
        label = Message("frame.source_sheet", sheet=sheet, file=file.name)
        return _raw(cells, label, "{rows} rows", bad)


def _raw(cells: pd.DataFrame, label: Message, details: str, bad=(), unit: str = "row",
         lines: int | None = None) -> RawTable:
    """Header (the first row) and data (the rest) of a table of cells, indexed by their number in the file:
    row 2, 3, ... of a sheet; for a CSV file (``unit="line"``) the line where each row starts, counting the
    line breaks inside quoted cells of the rows before it. ``lines`` is the number of lines of the CSV
    file: when there are as many rows, no cell holds a line break and row k is line k."""
    if cells.empty:
        return RawTable(pd.DataFrame(index=pd.Index([], dtype=np.int64)), [], label, details.format(rows=0),
                        list(bad), unit)
    header = [" ".join(str(h).split()) for h in cells.iloc[0]]
    data = cells.iloc[1:].copy()
    spans_lines = unit == "line" and lines != len(cells)
    data.index = _line_numbers(cells) if spans_lines else pd.RangeIndex(2, len(cells) + 1)
    data.columns = range(len(header))
    return RawTable(data, header, label, details.format(rows=len(data)), list(bad), unit)


def _line_numbers(cells: pd.DataFrame) -> pd.Index:
    """The line of a CSV file where each record after the first starts (record i, 0-based, starts on line
    1 + i plus the line breaks inside the cells of the records before it)."""
    breaks = np.zeros(len(cells), dtype=np.int64)
    for c in cells.columns:
        text = cells[c]
        if text.str.contains("\n", regex=False).any():
            breaks += text.str.count("\n").to_numpy(dtype=np.int64)
    starts = 1 + np.arange(len(cells), dtype=np.int64) + np.concatenate([[0], np.cumsum(breaks)[:-1]])
    return pd.Index(starts[1:])


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
        raise MappingError(fmt.key("encoding"), Message("mapping.wrong_encoding",
                                                        encoding=fmt.encoding.removesuffix('-sig'),
                                                        byte=f"0x{data[e.start]:02x}"),
                           source=label, rows=[row], hint=Message("mapping.hint_declare_encoding"),
                           unit="line") from None


_LINE = re.compile(r"line (\d+)")


def _read_csv(tmap: TableMap, file: Path) -> RawTable:
    """The cells of a CSV file, as text."""
    label = Message("frame.source_file", file=file.name)
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
        raise MappingError(f"{tmap.key}.file", Message("mapping.csv_failed", error=str(e).split('. ')[-1]),
                           source=label, rows=[int(match.group(1))] if match else (),
                           hint=Message("mapping.hint_separator", key=tmap.format.key('separator')),
                           unit="line") from None
    shown = {"\t": "tab"}.get(sep, sep)
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    return _raw(cells, label, f"{{rows}} rows, encoding {encoding}, separator '{shown}' ({how})", unit="line",
                lines=lines)
