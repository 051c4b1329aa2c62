"""Rule-based signals (rules of thumb used in practice today), applied to yearly registry counts.

The registry holds one row per pupil per school year with counts, not dates, so each rule is
applied to a year's counts: a pupil is flagged when *any* year in the window meets *any* of the
rule's conditions (a condition is ``count >= threshold`` on a recorded column).

``mazl``
    The M@ZL criterion: 4 sick reports in 12 school weeks, or a sick spell of more than 6
    consecutive school days. Per year: ``sick_long_spells >= 1`` (a spell of more than 6 days) or
    ``sick_reports >= 14`` (the rate of 4 reports per 12 weeks over a 40-week school year is
    13.3 a year). A year's count cannot show whether 4 reports fell within 12 weeks, so this
    flags a steady rate, not a cluster.
``extensive_sick``
    Extensive sickness absence (*zorgwekkend ziekteverzuim*): more than 9 sick days or more than
    4 sick reports in a school year: ``sick_days >= 10`` or ``sick_reports >= 5``.
``unexcused_16h``
    The duty to report 16 hours of unexcused absence within 4 weeks to DUO (leerplicht). Per year:
    ``unexcused_hours >= 16``, a necessary condition for a report (16 hours in some 4 weeks
    implies at least 16 in the year); the yearly count overstates the reports.
``any_rule``
    Any of the three.

Partial years (moving, a year begun out of school) are not prorated: a rule applied to fewer
enrolled days flags fewer pupils. The window is a parameter: ``"all_po"`` (every PO year, the
default: a pupil flagged at any point in primary school) or ``"groups_7_8"`` (the last two PO
years). Rules read recorded counts only; a condition on a ``*_true`` column is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["Condition", "Rule", "RULES", "RuleWindow", "WINDOWS", "rule_flags"]

RuleWindow = Literal["all_po", "groups_7_8"]
WINDOWS: dict[str, tuple[int, ...]] = {"all_po": (1, 2, 3, 4, 5, 6, 7, 8), "groups_7_8": (7, 8)}
"""PO groups each rule window looks at."""


@dataclass(frozen=True)
class Condition:
    """``column >= threshold`` on one row of the ``absence`` table (one pupil-year)."""

    column: str
    threshold: float

    def __post_init__(self):
        if self.column.endswith("_true"):
            raise ValueError(f"a rule may use recorded counts only, not the simulated truth '{self.column}'")


@dataclass(frozen=True)
class Rule:
    """A rule-based signal: flag a pupil-year that meets any of ``conditions``.

    Parameters
    ----------
    name : short name (the ``signal`` in result tables).
    label_nl, label_en : names in Dutch and English.
    conditions : the conditions, joined by *or*.
    source : what the rule stands for in practice and how it is applied to yearly counts.
    """

    name: str
    label_nl: str
    label_en: str
    conditions: tuple[Condition, ...]
    source: str = ""

    def flag_years(self, years: pd.DataFrame) -> np.ndarray:
        """Boolean per row of ``years`` (pupil-years): does the row meet any condition?"""
        missing = [c.column for c in self.conditions if c.column not in years.columns]
        if missing:
            raise ValueError(f"rule '{self.name}' needs absence column(s) {missing}")
        hit = np.zeros(len(years), dtype=bool)
        for c in self.conditions:
            hit |= years[c.column].to_numpy(dtype=float) >= c.threshold
        return hit


_MAZL = Rule("mazl", "M@ZL-criterium", "M@ZL criterion",
             (Condition("sick_long_spells", 1), Condition("sick_reports", 14)),
             "4 sick reports in 12 school weeks or more than 6 consecutive sick days; per year: a long spell, "
             "or at least 14 reports (4 per 12 weeks over 40 weeks)")
_EXTENSIVE = Rule("extensive_sick", "zorgwekkend ziekteverzuim", "extensive sickness absence",
                  (Condition("sick_days", 10), Condition("sick_reports", 5)),
                  "more than 9 sick days or more than 4 sick reports in a school year")
_UNEXCUSED = Rule("unexcused_16h", "16 uur ongeoorloofd verzuim", "16 hours unexcused absence",
                  (Condition("unexcused_hours", 16),),
                  "the duty to report 16 hours of unexcused absence in 4 weeks; per year: at least 16 hours")
_ANY = Rule("any_rule", "een van de signalen", "any of the rules",
            _MAZL.conditions + _EXTENSIVE.conditions + _UNEXCUSED.conditions, "any of the three rules")

RULES: dict[str, Rule] = {r.name: r for r in (_MAZL, _EXTENSIVE, _UNEXCUSED, _ANY)}
"""The rule-based baselines, by name."""


def rule_flags(absence: pd.DataFrame, rules: dict[str, Rule] | None = None,
               window: RuleWindow = "all_po") -> pd.DataFrame:
    """Which pupils each rule flags in their PO years.

    Parameters
    ----------
    absence : pandas.DataFrame
        Rows of the ``absence`` table (``pupil_id``, ``grade``, the counts the rules read and,
        if present, ``level``: only PO rows are used).
    rules : dict of Rule, optional
        Default :data:`RULES`.
    window : {"all_po", "groups_7_8"}
        The PO groups looked at.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``pupil_id`` (every pupil with a PO row), one boolean column per rule: True when
        any PO year in the window meets the rule.
    """
    rules = RULES if rules is None else rules
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {list(WINDOWS)}, got {window!r}")
    po = absence if "level" not in absence.columns else absence[absence["level"].astype(str) == "po"]
    ids = np.unique(po["pupil_id"].to_numpy())
    in_window = po["grade"].isin(WINDOWS[window]).to_numpy()
    years = po[in_window]
    out = pd.DataFrame(index=pd.Index(ids, name="pupil_id"))
    for name, rule in rules.items():
        hit = rule.flag_years(years)
        out[name] = np.isin(ids, years["pupil_id"].to_numpy()[hit])
    return out
