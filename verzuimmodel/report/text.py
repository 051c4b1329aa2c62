"""Words and numbers of a report: the message catalogues, number formatting and table cells.

Every word of a report comes from the message files (``messages/<lang>.toml``); :class:`Fmt`
formats numbers in the language's style; :class:`Table` and :class:`Cell` carry a table to the
templates, each cell knowing its kind (``count`` cells are already disclosure-controlled).
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

from ..disclosure import MIN_COUNT

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
    """Number formatting for one language (decimal sign and digit grouping from the messages)."""

    def __init__(self, m: Messages):
        self.m = m
        self.decimal = m["meta"]["decimal"]
        self.group = m["meta"]["group"]
        self.suppressed = m["meta"]["suppressed"].format(min=MIN_COUNT)
        self.missing = m["meta"]["missing"]

    def _dec(self, text: str) -> str:
        return text.replace(".", self.decimal)

    def ratio(self, x) -> str:
        """A ratio (hazard or rate ratio) with two decimals."""
        return self.missing if _missing(x) else self._dec(f"{float(x):.2f}")

    def number(self, x, digits: int = 2) -> str:
        return self.missing if _missing(x) else self._dec(f"{float(x):.{digits}f}")

    def signed(self, x, digits: int = 3) -> str:
        return self.missing if _missing(x) else self._dec(f"{float(x):+.{digits}f}").replace("-", "\u2212")

    def signed_pct(self, x, digits: int = 0) -> str:
        """A relative difference with its sign: -0.031 -> "−3%"."""
        if _missing(x):
            return self.missing
        return self._dec(f"{100 * float(x):+.{digits}f}").replace("-", "\u2212") + "%"

    def pct(self, x, digits: int = 0) -> str:
        """A share as a percentage: 0.531 -> "53%"."""
        return self.missing if _missing(x) else self._dec(f"{100 * float(x):.{digits}f}") + "%"

    def pct_number(self, x, digits: int = 0) -> str:
        return self.missing if _missing(x) else self._dec(f"{100 * float(x):.{digits}f}")

    def points(self, x) -> str:
        """A risk difference per 100, signed: 0.052 -> "+5", -0.031 -> "−3"."""
        if _missing(x):
            return self.missing
        v = round(100 * float(x))
        return f"{v:+d}".replace("-", "\u2212") if v else "0"

    def per100(self, x) -> str:
        return self.missing if _missing(x) else f"{100 * float(x):.0f}"

    def change(self, ratio) -> str:
        """How far a ratio is from 1, in percent, without sign: 0.85 -> "15"."""
        return self.missing if _missing(ratio) else f"{abs(100 * (float(ratio) - 1)):.0f}"

    def count(self, n) -> str:
        """A published count: "< 10" when suppressed; digits grouped (SI style) from 10,000 on."""
        if _missing(n):
            return self.suppressed
        n = int(n)
        if abs(n) < 10_000:
            return str(n)
        return f"{n:,}".replace(",", self.group)

    def plain(self, x) -> str:
        """A published figure: from 100 on in whole units, below that to three significant digits."""
        if _missing(x):
            return self.missing
        x = float(x)
        if abs(x) >= 100:
            return self.count(round(x))
        text = f"{x:.3g}"
        return self._dec(text if "." in text or "e" in text else f"{x:.1f}")   # 6 -> "6,0": a figure, not a count

    def year(self, y) -> str:
        return self.missing if _missing(y) else str(int(y))

    def interval(self, lo, hi, kind: str = "ratio") -> str:
        f = getattr(self, kind)
        if _missing(lo) or _missing(hi):
            return self.missing
        return f"{f(lo)}\u2013{f(hi)}"


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


def _text(x) -> Cell:
    return Cell(str(x))


def _num(text: str) -> Cell:
    return Cell(text, "num")


def _count(f: Fmt, n) -> Cell:
    if _missing(n):
        return Cell(f.suppressed, "count", "", True)
    return Cell(f.count(n), "count", str(int(n)))


def _est(f: Fmt, est, lo, hi, suppressed: bool = False, kind: str = "ratio") -> Cell:
    """"1,40 (1,01–1,93)", or "< 10" when the estimate was withheld."""
    if suppressed:
        return Cell(f.suppressed, "num", "", True)
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
