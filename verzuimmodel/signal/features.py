"""The analysis table of the signal models: one row per pupil, PO history and the VO label.

Prediction moment
-----------------
The end of primary school (group 8). Everything a model sees is known by then and comes from
the registry tables as recorded: the PO rows of ``absence`` (recorded counts, never the
simulator's ``*_true`` columns), long-term absence episodes that started at a PO school, the
PO school (type, the preventive approach's start year) and the pupil's covariates. The VO track
is *not* a feature: the ``pupils`` table records the track of the first VO year.

Label
-----
``event = 1`` when the pupil has an episode of a type in ``FeatureConfig.label_types`` (default
LRV or AV: long-term relative or absolute absence) that started at a VO school: the episode's
``school_id`` is a school with ``level == "vo"`` in the ``schools`` table. With
``FeatureConfig.max_vo_year`` the episode must also start by that VO year (VO year ``k`` is
school year ``cohort + 5 + k``; a school year begins on 1 August).

Only pupils *followed into VO year* ``min_vo_year`` (default 2) count as labelled: the pupil has
a VO school and either a VO absence row of that year or later, or a follow-up end on or after
1 August of school year ``cohort + 5 + min_vo_year`` (the start of that VO year without grade
repetition; this covers pupils out of school all year, who have no absence row). Pupils who
moved away or whose follow-up ends earlier are unlabelled (``labelled == False``): whether they
would have had an episode is unknown, and counting them as negatives would bias every measure.
The rule is the same for pupils with and without an episode, so the selection does not depend
on the outcome. Later cohorts are followed for fewer VO years (the default scenario follows
cohort 2017 into VO year 3 only); use ``max_vo_year`` to equalise the window.

Features (:data:`FEATURES`)
---------------------------
For each recorded measure in :data:`MEASURES`: ``{m}_rate`` (the count per ``days_per_year``
enrolled school days over all PO years) and ``{m}_rate_78`` (the same over groups 7-8; the
all-years rate when the pupil has no enrolled day in groups 7-8); ``sick_reports_max`` (the
largest yearly number of sick reports); ``po_years`` (PO years with an absence row);
``approach_years`` (PO years in which the pupil's school ran the preventive approach, which
raises *recorded* absence); ``po_episode`` (any long-term absence episode started at a PO
school); ``female``, ``disadvantaged``, ``chronic_illness``, ``special_needs`` and ``sbo``
(the PO school is an SBO school).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..schema import EPISODE_TYPES
from .rules import RULES, Rule, RuleWindow, rule_flags

__all__ = ["FeatureConfig", "features", "MEASURES", "FEATURES", "CONTINUOUS", "COUNTS", "BINARY",
           "GROUP_COLUMNS"]

MEASURES = ("sick_days", "sick_reports", "sick_long_spells", "late_arrivals", "luxury_days", "unexcused_hours",
            "long_absence_days")
"""Recorded absence measures summarised per pupil (columns of the ``absence`` table)."""

CONTINUOUS = tuple(f"{m}_rate" for m in MEASURES) + tuple(f"{m}_rate_78" for m in MEASURES) + ("sick_reports_max",)
"""Skewed non-negative features (log1p-transformed and expanded in splines by the logistic model)."""
COUNTS = ("po_years", "approach_years")
"""Small counts entering the logistic model linearly."""
BINARY = ("po_episode", "female", "disadvantaged", "chronic_illness", "special_needs", "sbo")
"""0/1 features."""
FEATURES = CONTINUOUS + COUNTS + BINARY
"""Every feature a signal model sees, in this order."""

GROUP_COLUMNS = ("female", "disadvantaged", "special_needs", "sbo")
"""0/1 columns the performance is broken down by (see :data:`verzuimmodel.signal.metrics.GROUPS`)."""


@dataclass(frozen=True)
class FeatureConfig:
    """How the analysis table is built.

    Parameters
    ----------
    label_types : tuple of str
        Episode types that count as long-term absence in VO (codes of ``EPISODE_TYPES``).
    min_vo_year : int
        A pupil counts as labelled when followed into this VO year (see the module docstring).
    max_vo_year : int or None
        Count only episodes starting by this VO year; None counts every VO episode observed.
    days_per_year : int
        School days in a full year; rates are per this many enrolled days.
    recent_grades : tuple of int
        The PO groups of the ``*_rate_78`` features.
    """

    label_types: tuple[str, ...] = ("LRV", "AV")
    min_vo_year: int = 2
    max_vo_year: int | None = None
    days_per_year: int = 190
    recent_grades: tuple[int, ...] = (7, 8)

    def __post_init__(self):
        bad = [t for t in self.label_types if t not in EPISODE_TYPES]
        if bad or not self.label_types:
            raise ValueError(f"label_types must be codes of {list(EPISODE_TYPES)}, got {self.label_types!r}")
        if not 1 <= self.min_vo_year <= 6:
            raise ValueError(f"min_vo_year must be between 1 and 6, got {self.min_vo_year}")
        if self.max_vo_year is not None and self.max_vo_year < 1:
            raise ValueError(f"max_vo_year must be at least 1 or None, got {self.max_vo_year}")
        if self.days_per_year <= 0:
            raise ValueError(f"days_per_year must be positive, got {self.days_per_year}")
        if not set(self.recent_grades) <= set(range(1, 9)):
            raise ValueError(f"recent_grades must be PO groups 1-8, got {self.recent_grades!r}")


def _school_year(dates: pd.Series) -> np.ndarray:
    """First calendar year of the school year (1 August - 31 July) holding each date."""
    d = pd.to_datetime(dates)
    return (d.dt.year - (d.dt.month < 8)).to_numpy()


def features(cohort: Cohort, config: FeatureConfig | None = None, *,
             rules: dict[str, Rule] | None = None, rule_window: RuleWindow = "all_po") -> pd.DataFrame:
    """One row per pupil with PO history: features, rule signals, label and grouping columns.

    Parameters
    ----------
    cohort : Cohort
        Simulated or real. Only recorded columns are read; ``*_true`` columns are never used.
    config : FeatureConfig, optional
        Label and feature definitions (defaults: see :class:`FeatureConfig`).
    rules : dict of Rule, optional
        Rule-based signals to add as 0/1 columns ``rule_<name>`` (default :data:`RULES`).
    rule_window : {"all_po", "groups_7_8"}
        The PO years a rule looks at (see :func:`verzuimmodel.signal.rules.rule_flags`).

    Returns
    -------
    pandas.DataFrame
        Sorted by ``pupil_id``. Columns ``pupil_id, po_school_id, cohort, labelled, event``,
        :data:`FEATURES` and ``rule_<name>`` for every rule. ``event`` is 0/1 for labelled
        pupils and missing (``pd.NA``) for the others.
    """
    config = config or FeatureConfig()
    rules = RULES if rules is None else rules
    a = cohort.absence
    po = a[a["level"].astype(str) == "po"]
    if po.empty:
        raise ValueError("the cohort has no PO absence rows: the signal models predict from PO history")
    pupils = cohort.pupils.set_index("pupil_id").sort_index()
    ids = np.unique(po["pupil_id"].to_numpy())
    p = pupils.reindex(ids)
    out = pd.DataFrame({"pupil_id": ids, "po_school_id": p["po_school_id"].to_numpy(),
                        "cohort": p["cohort"].to_numpy().astype(int)})

    recent = po["grade"].isin(config.recent_grades).to_numpy()
    cols = ["enrolled_days", *MEASURES]
    values = po[cols].to_numpy(dtype=float)
    allyears = pd.DataFrame(values, columns=cols).groupby(po["pupil_id"].to_numpy()).sum().reindex(ids)
    late = pd.DataFrame(values[recent], columns=cols).groupby(po["pupil_id"].to_numpy()[recent]).sum().reindex(ids)
    scale = float(config.days_per_year)
    days_all = allyears["enrolled_days"].to_numpy()
    days_late = late["enrolled_days"].fillna(0.0).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        for m in MEASURES:
            rate = np.where(days_all > 0, allyears[m].to_numpy() / days_all * scale, 0.0)
            out[f"{m}_rate"] = rate
            out[f"{m}_rate_78"] = np.where(days_late > 0, late[m].fillna(0.0).to_numpy() / days_late * scale, rate)
    out = out[["pupil_id", "po_school_id", "cohort", *[f"{m}_rate" for m in MEASURES],
               *[f"{m}_rate_78" for m in MEASURES]]].copy()
    grouped = po.groupby("pupil_id", sort=True)
    out["sick_reports_max"] = grouped["sick_reports"].max().reindex(ids).to_numpy(dtype=float)
    out["po_years"] = grouped.size().reindex(ids).to_numpy()

    schools = cohort.schools.set_index("school_id")
    start = schools["approach_start_year"].reindex(po["school_id"].to_numpy()).to_numpy(dtype=float, na_value=np.inf)
    active = (start <= po["school_year"].to_numpy()).astype(int)
    out["approach_years"] = pd.Series(active).groupby(po["pupil_id"].to_numpy()).sum().reindex(ids).to_numpy()

    level = schools["level"].astype(str)
    vo_ids = set(level.index[level.to_numpy() == "vo"])
    po_ids = set(level.index[level.to_numpy() == "po"])
    e = cohort.episodes
    out["po_episode"] = np.isin(ids, e.loc[e["school_id"].isin(po_ids), "pupil_id"].to_numpy()).astype(int)
    out["female"] = (p["sex"].astype(str).to_numpy() == "F").astype(int)
    for c in ("disadvantaged", "chronic_illness", "special_needs"):
        out[c] = p[c].to_numpy().astype(int)
    school_type = schools["school_type"].astype(str).reindex(out["po_school_id"].to_numpy()).to_numpy()
    out["sbo"] = (school_type == "sbo").astype(int)

    flags = rule_flags(po, rules, window=rule_window).reindex(ids, fill_value=False)
    for name in rules:
        out[f"rule_{name}"] = flags[name].to_numpy().astype(int)

    labelled, event = _label(cohort, p, ids, vo_ids, config)
    out.insert(3, "labelled", labelled)
    out.insert(4, "event", pd.array(np.where(labelled, event, 0), dtype="Int64"))
    out.loc[~labelled, "event"] = pd.NA
    return out.reset_index(drop=True)


def _label(cohort: Cohort, p: pd.DataFrame, ids: np.ndarray, vo_ids: set, config: FeatureConfig):
    """``labelled`` (followed into VO year ``min_vo_year``) and ``event`` (a VO episode of a label type)."""
    cohort_year = p["cohort"].to_numpy().astype(int)
    in_vo = p["vo_school_id"].notna().to_numpy()
    a = cohort.absence
    vo_rows = a[(a["level"].astype(str) == "vo") & (a["grade"] >= config.min_vo_year)]
    has_row = np.isin(ids, vo_rows["pupil_id"].to_numpy())
    start_of_year = pd.to_datetime({"year": cohort_year + 5 + config.min_vo_year, "month": 8, "day": 1})
    reached = (pd.to_datetime(p["followup_end"]).to_numpy() >= start_of_year.to_numpy())
    labelled = in_vo & (has_row | reached)

    e = cohort.episodes
    keep = e["school_id"].isin(vo_ids).to_numpy() & e["episode_type"].astype(str).isin(config.label_types).to_numpy()
    e = e[keep]
    if config.max_vo_year is not None and len(e):
        first = p["cohort"].reindex(e["pupil_id"].to_numpy()).to_numpy(dtype=float)
        vo_year = _school_year(e["start_date"]) - first - 5
        e = e[vo_year <= config.max_vo_year]
    event = np.isin(ids, e["pupil_id"].to_numpy()).astype(int)
    return labelled, event
