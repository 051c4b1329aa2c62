"""Words and numbers of a report: the message catalogues, number formatting and table cells.

Every word of a report comes from the message files (``messages/<lang>.toml``); :class:`Fmt`
formats every number in the language's style; :class:`Table` and :class:`Cell` carry a table to
the templates, each cell knowing its kind (``count`` cells are already disclosure-controlled) and
whether it is suppressed (the table then gets the legend of "afgeschermd").
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


__all__ = ["Messages", "messages", "Fmt", "Table", "Cell", "LANGUAGES"]

MESSAGES_DIR = Path(__file__).resolve().parent / "messages"
LANGUAGES = ("nl", "en")


class Messages(dict):
    """Message catalogue of one language: nested dicts; ``get_path("a.b")``; ``fmt("a.b", **values)``."""

    def get_path(self, key: str) -> Any:
        node: Any = self
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"message '{key}' missing for language '{self.get('meta', {}).get('lang')}'")
            node = node[part]
        return node

    def fmt(self, key: str, **values) -> str:
        return self.get_path(key).format(**values)

    def label(self, group: str, code: Any) -> str:
        """The label of ``code`` in message table ``group``, or the code itself when it has none."""
        table = self.get(group, {})
        entry = table.get(str(code), str(code))
        return entry.get("label", str(code)) if isinstance(entry, dict) else entry


@lru_cache(maxsize=None)
def _load(lang: str) -> dict:
    with open(MESSAGES_DIR / f"{lang}.toml", "rb") as f:
        return tomllib.load(f)


def messages(lang: str) -> Messages:
    """The message catalogue of ``lang`` (``ValueError`` for an unknown language)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; expected one of {', '.join(LANGUAGES)}")
    return Messages(_load(lang))


def _missing(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, (float, np.floating)) and math.isnan(x))


class Fmt:
    """Every number of a report, in the language's style: the one formatting function of the report.

    Decimal sign and digit grouping come from the messages (``meta.decimal``, ``meta.group``):
    Dutch ``1 234,5`` (a non-breaking space between groups of three), English ``1,234.5``. Every
    number of at least 1,000 is grouped, in tables and in sentences alike, so that a column never
    mixes "3167" and "10 560"; years (:meth:`year`) are never grouped. A suppressed count reads
    ``meta.suppressed`` ("afgeschermd") in a table and ``meta.suppressed_text`` ("een afgeschermd
    aantal") in a sentence; a value that does not exist reads ``meta.missing`` ("–").
    """

    def __init__(self, m: Messages):
        self.m = m
        self.decimal = m["meta"]["decimal"]
        self.group = m["meta"]["group"]
        self.suppressed = m["meta"]["suppressed"]
        self.suppressed_text = m["meta"]["suppressed_text"]
        self.missing = m["meta"]["missing"]

    def fixed(self, x, digits: int = 2, sign: bool = False) -> str:
        """``x`` with ``digits`` decimals, grouped from 1,000 on, with a sign (``+``, ``−``) if asked."""
        if _missing(x):
            return self.missing
        x = float(x)
        if round(x, digits) == 0:
            x = 0.0                                       # no "-0,00"
        text = f"{x:{'+' if sign else ''},.{digits}f}"
        text = text.replace(",", "\x00").replace(".", self.decimal).replace("\x00", self.group)
        return text.replace("-", "\u2212")

    def ratio(self, x) -> str:
        """A ratio (hazard or rate ratio) with two decimals."""
        return self.fixed(x, 2)

    def number(self, x, digits: int = 2) -> str:
        return self.fixed(x, digits)

    def signed(self, x, digits: int = 3) -> str:
        return self.fixed(x, digits, sign=True)

    def signed_pct(self, x, digits: int = 0) -> str:
        """A relative difference with its sign: -0.031 -> "−3%"."""
        return self.missing if _missing(x) else self.fixed(100 * float(x), digits, sign=True) + "%"

    def pct(self, x, digits: int = 0) -> str:
        """A share as a percentage: 0.531 -> "53%"."""
        return self.missing if _missing(x) else self.fixed(100 * float(x), digits) + "%"

    def pct_number(self, x, digits: int = 0) -> str:
        return self.missing if _missing(x) else self.fixed(100 * float(x), digits)

    def points(self, x) -> str:
        """A risk difference per 100, signed: 0.052 -> "+5", -0.031 -> "−3", 0.004 -> "0"."""
        if _missing(x):
            return self.missing
        v = round(100 * float(x))
        return self.fixed(v, 0, sign=True) if v else "0"

    def per100(self, x) -> str:
        return self.missing if _missing(x) else self.fixed(100 * float(x), 0)

    def change(self, ratio) -> str:
        """How far a ratio is from 1, in whole percent, without sign: 0.85 -> "15"."""
        return self.missing if _missing(ratio) else self.fixed(_percent_change(ratio), 0)

    def count(self, n) -> str:
        """A published count in a table: ``meta.suppressed`` when hidden; grouped from 1,000 on."""
        return self.suppressed if _missing(n) else self.fixed(int(n), 0)

    def count_text(self, n) -> str:
        """A published count in a sentence: ``meta.suppressed_text`` ("een afgeschermd aantal") when hidden."""
        return self.suppressed_text if _missing(n) else self.fixed(int(n), 0)

    def plain(self, x) -> str:
        """A published figure: from 100 on in whole units, below that to three significant digits."""
        if _missing(x):
            return self.missing
        x = float(x)
        if abs(x) >= 100:
            return self.fixed(round(x), 0)
        text = f"{x:.3g}"
        if "e" in text:
            return self.fixed(x, 6)
        return self.fixed(x, max(1, len(text.partition(".")[2])))   # 6 -> "6,0": a figure, not a count

    def year(self, y) -> str:
        """A year, never grouped (2019, not "2 019")."""
        return self.missing if _missing(y) else str(int(y))

    def interval(self, lo, hi, kind: str = "ratio") -> str:
        f = getattr(self, kind)
        if _missing(lo) or _missing(hi):
            return self.missing
        return f"{f(lo)}\u2013{f(hi)}"

    def names(self, items: list[str], conjunction: str = "and") -> str:
        """``a``, ``a en b``, ``a, b en c`` (``meta.and``; ``conjunction="or"``: ``meta.or``)."""
        items = list(items)
        if len(items) <= 1:
            return "".join(items)
        return f"{', '.join(items[:-1])} {self.m['meta'][conjunction]} {items[-1]}"


def _percent_change(ratio) -> int:
    """|ratio - 1| in whole percent, rounded half up (0.845 -> 16, not banker's 15 or 16)."""
    return int(math.floor(abs(100 * (float(ratio) - 1)) + 0.5 + 1e-9))


@dataclass
class Cell:
    text: str
    kind: str = "text"            # "text", "count" (pupils or episodes) or "num"
    value: str = ""               # data-value: the raw count ("" when suppressed)
    suppressed: bool = False

    @property
    def css(self) -> str:
        return " ".join(c for c in (self.kind, "suppressed" if self.suppressed else "") if c)


@dataclass
class Table:
    caption: str
    columns: list[tuple[str, str]]           # (label, kind)
    rows: list[tuple[list[Cell], str]] = field(default_factory=list)   # (cells, row class)
    note: str = ""

    def add(self, cells: list[Cell], css: str = "") -> None:
        self.rows.append((cells, css))

    @property
    def suppressed(self) -> bool:
        """Whether a cell is suppressed: the template then prints the legend of "afgeschermd" under the table."""
        return any(c.suppressed for cells, _ in self.rows for c in cells)


def _text(x) -> Cell:
    return Cell(str(x))


def _num(text: str) -> Cell:
    return Cell(text, "num")


def _count(f: Fmt, n) -> Cell:
    if _missing(n):
        return _suppressed(f, "count")
    return Cell(f.count(n), "count", str(int(n)))


def _suppressed(f: Fmt, kind: str = "num") -> Cell:
    """A suppressed cell: "afgeschermd" (never a number, "< 10" or "x"), explained by the table's legend."""
    return Cell(f.suppressed, kind, "", True)


def _est(f: Fmt, est, lo, hi, suppressed: bool = False, kind: str = "ratio") -> Cell:
    """"1,40 (1,01–1,93)", or "afgeschermd" when the estimate was withheld."""
    if suppressed:
        return _suppressed(f)
    if _missing(est):
        return _num(f.missing)
    return _num(f"{getattr(f, kind)(est)} ({f.interval(lo, hi, kind)})")


def _direction(lo, hi) -> str:
    """Which message fits a ratio's 95% interval: above 1, below 1, or containing 1."""
    if lo > 1:
        return "up"
    if hi < 1:
        return "down"
    return "unclear"
