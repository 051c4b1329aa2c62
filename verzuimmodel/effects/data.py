"""Analysis tables for the PO approach's effect, built from a cohort's registry tables alone.

A pupil counts as *exposed* when the PO school had started the approach by the school year in
which the pupil was in group ``exposed_from_grade`` (default 7: the last two PO years), the
definition the simulator uses; with real data it is the evaluator's choice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cohort import Cohort

__all__ = ["vo_pupils", "vo_pupil_years", "school_cohorts", "COVARIATES"]

COVARIATES = ("female", "disadvantaged", "chronic_illness", "special_needs", "vmbo")


def _vo_rows(cohort: Cohort) -> pd.DataFrame:
    """VO pupil-years with ``days``: school days enrolled outside long-term episodes."""
    vo = cohort.absence[cohort.absence["level"] == "vo"]
    return pd.DataFrame({
        "pupil_id": vo["pupil_id"].to_numpy(), "school_year": vo["school_year"].to_numpy(),
        "grade": vo["grade"].to_numpy().astype(int),
        "days": (vo["enrolled_days"] - vo["long_absence_days"]).clip(lower=0).to_numpy(),
        "unexcused_hours": vo["unexcused_hours"].to_numpy(), "sick_days": vo["sick_days"].to_numpy(),
        "sick_reports": vo["sick_reports"].to_numpy()})


def _add_pupil_columns(out: pd.DataFrame, cohort: Cohort, exposed_from_grade: int) -> pd.DataFrame:
    """Schools, cohort, exposure and :data:`COVARIATES` of each row's pupil (``pupil_id``)."""
    p = cohort.pupils.set_index("pupil_id").reindex(out["pupil_id"].to_numpy())
    out["po_school_id"] = p["po_school_id"].to_numpy()
    out["vo_school_id"] = p["vo_school_id"].to_numpy()
    out["cohort"] = p["cohort"].to_numpy().astype(int)
    out["t"] = out["cohort"] + (exposed_from_grade - 3)
    start = cohort.schools.set_index("school_id")["approach_start_year"]
    out["adopt_year"] = start.reindex(out["po_school_id"]).to_numpy(dtype=float, na_value=np.nan)
    out["exposed"] = (out["adopt_year"] <= out["t"]).astype(int)
    out["female"] = (p["sex"].astype(str).to_numpy() == "F").astype(int)
    for c in ("disadvantaged", "chronic_illness", "special_needs"):
        out[c] = p[c].to_numpy().astype(int)
    out["vmbo"] = (p["vo_track"].astype(str).to_numpy() == "vmbo").astype(int)
    return out


def vo_pupils(cohort: Cohort, exposed_from_grade: int = 7) -> pd.DataFrame:
    """One row per pupil observed in VO: VO totals of absence and exposure, covariates, PO exposure.

    Columns: ``pupil_id, po_school_id, vo_school_id, cohort, t`` (school year in group
    ``exposed_from_grade``), ``adopt_year`` (PO school's start year, NaN if never), ``exposed`` (0/1),
    ``days`` (VO school days enrolled outside long-term episodes), ``unexcused_hours``, ``sick_days``,
    ``sick_reports``, ``vo_years``, ``vo_episodes`` (onsets of long-term episodes in VO) and :data:`COVARIATES` (0/1).
    """
    rows = _vo_rows(cohort).drop(columns=["school_year", "grade"]).assign(vo_years=1)
    out = _add_pupil_columns(rows.groupby("pupil_id", sort=True).sum().reset_index(), cohort, exposed_from_grade)
    e = cohort.episodes
    vo_schools = set(cohort.schools.loc[cohort.schools["level"] == "vo", "school_id"])
    onsets = e[e["school_id"].isin(vo_schools) & (e["episode_type"] != "5a")].groupby("pupil_id").size()
    out["vo_episodes"] = onsets.reindex(out["pupil_id"]).fillna(0).to_numpy().astype(int)
    return out[out["days"] > 0].reset_index(drop=True)


def vo_pupil_years(cohort: Cohort, exposed_from_grade: int = 7) -> pd.DataFrame:
    """One row per VO pupil-year with school days outside long-term episodes (``days`` > 0).

    Columns as :func:`vo_pupils` (without ``vo_years`` and ``vo_episodes``) plus ``school_year`` and
    ``grade`` (the VO year, 1-6); sorted by pupil and school year.
    """
    rows = _vo_rows(cohort)
    rows = rows[rows["days"] > 0].sort_values(["pupil_id", "school_year"], kind="stable").reset_index(drop=True)
    return _add_pupil_columns(rows, cohort, exposed_from_grade)


def school_cohorts(pupils: pd.DataFrame, outcome: str = "unexcused_hours") -> pd.DataFrame:
    """PO school x cohort cells: outcome and exposure-day totals, the cell's rate, adoption year and ``t``."""
    g = pupils.groupby(["po_school_id", "t"], sort=True).agg(
        y=(outcome, "sum"), days=("days", "sum"), n=("pupil_id", "size"), adopt_year=("adopt_year", "first"))
    g["rate"] = g["y"] / g["days"]
    return g.reset_index()
