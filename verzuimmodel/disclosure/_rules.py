"""Disclosure control for published tables: no count (or share) based on fewer than 10 pupils.

Tables that leave the analyst — reports, monitor outputs, plots — show a count between 1 and
``min_count - 1`` as missing (printed "< 10"), and a share whose denominator is below
``min_count`` likewise. Zero is shown: it discloses nothing about a pupil that "fewer than 10"
would not. Identifiers never appear in published tables.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["MIN_COUNT", "suppress_counts", "suppress_shares", "label"]

MIN_COUNT = 10


def suppress_counts(table: pd.DataFrame, columns: Sequence[str], min_count: int = MIN_COUNT) -> pd.DataFrame:
    """Copy of ``table`` with counts in ``columns`` between 1 and ``min_count - 1`` set to missing (Int64)."""
    out = table.copy()
    for c in columns:
        v = out[c].astype("Float64")
        small = (v > 0) & (v < min_count)
        out[c] = v.mask(small).round().astype("Int64")
    return out


def suppress_shares(table: pd.DataFrame, share: str, denominator: str, min_count: int = MIN_COUNT) -> pd.DataFrame:
    """Copy of ``table`` with ``share`` missing where its ``denominator`` is below ``min_count``."""
    out = table.copy()
    den = out[denominator].astype("Float64")
    out[share] = out[share].astype("Float64").mask(den.isna() | (den < min_count))
    return out


def label(value, min_count: int = MIN_COUNT) -> str:
    """Text for a published cell: the number, or ``"< 10"`` for a suppressed one."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return f"< {min_count}"
    return f"{value:,}" if isinstance(value, (int, np.integer)) else f"{value:.3g}"
