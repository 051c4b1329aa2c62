"""Where the data rows of a table are in the file it was read from, for messages.

A validation error names data rows: data row k is the k-th row under the header of the table as
read. The user knows the file, so :func:`locate` adds the file's own numbering to a
:class:`~verzuimmodel.schema.SchemaError`:

- **CSV**: the line where the row starts, as a text editor numbers the lines (the header is line 1).
  pandas skips blank lines (empty or only blanks), so after a blank line data row k is not line
  k + 1; a quoted cell may also span lines. The lines are found by reading the file again with the
  :mod:`csv` module up to the last row wanted — only when an error is reported, so reading a valid
  file costs nothing extra.
- **Excel**: the sheet's row (the header is row 1 and pandas keeps empty rows), k + 1.
- **Parquet**: the row of the file, k.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .schema import FileSource, SchemaError

__all__ = ["TableFile", "csv_lines", "locate"]


@dataclass(frozen=True)
class TableFile:
    """The file a table was read from: its path, the sheet (Excel) and its format."""

    path: Path
    fmt: str
    sheet: str | None = None
    separator: str = ","
    encoding: str = "utf-8-sig"

    @property
    def source(self) -> FileSource:
        return FileSource(self.path.name, self.sheet, "line" if self.fmt == "csv" else "row")

    def file_rows(self, rows: list[int]) -> list[int]:
        """The file's line (CSV) or row numbers of 1-based data rows ``rows``."""
        if self.fmt == "csv":
            return csv_lines(self.path, rows, self.separator, self.encoding)
        if self.fmt == "xlsx":
            return [r + 1 for r in rows]
        return list(rows)


def _blank(record: list[str]) -> bool:
    """A record pandas skips as a blank line: nothing, or only blanks and no separator."""
    return not record or (len(record) == 1 and record[0] != "" and not record[0].strip(" \t"))


def csv_lines(path: str | Path, rows: list[int], separator: str = ",", encoding: str = "utf-8-sig") -> list[int]:
    """The line of the file where each of the 1-based data rows ``rows`` starts.

    The first record that is not blank is the header; later blank records (lines that are empty or
    hold only spaces and tabs) are skipped, as ``pandas.read_csv`` skips them. A row that does not
    exist (beyond the end of the file) is given as 0.
    """
    wanted = sorted(set(int(r) for r in rows))
    found: dict[int, int] = {}
    if wanted:
        with open(path, encoding=encoding, newline="", errors="replace") as f:
            reader = csv.reader(f, delimiter=separator)
            header_seen, row, last_line = False, 0, 0
            for record in reader:
                start, last_line = last_line + 1, reader.line_num
                if _blank(record):
                    continue
                if not header_seen:
                    header_seen = True
                    continue
                row += 1
                if row in wanted:
                    found[row] = start
                    if row == wanted[-1]:
                        break
    return [found.get(int(r), 0) for r in rows]


def locate(error: SchemaError, files: dict[str, TableFile]) -> SchemaError:
    """``error`` naming the file of its table and the rows there (``error`` itself if the table was not
    read from a file)."""
    table_file = files.get(error.table)
    if table_file is None or error.source is not None:
        return error
    file_rows = table_file.file_rows(error.rows) if error.rows else []
    return error.located(table_file.source, file_rows)
