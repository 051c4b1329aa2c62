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


def _vo_columns(cohort: Cohort) -> dict[str, np.ndarray]:
    """The VO pupil-years' columns with ``days``: school days enrolled outside long-term episodes (only
    the columns used are taken from the absence table)."""
    a = cohort.absence
    rows = np.flatnonzero((a["level"] == "vo").to_numpy())

    def col(name):
        return a[name].to_numpy()[rows]

    return {"pupil_id": col("pupil_id"), "school_year": col("school_year"), "grade": col("grade").astype(int),
            "days": (col("enrolled_days") - col("long_absence_days")).clip(min=0),
            "unexcused_hours": col("unexcused_hours"), "sick_days": col("sick_days"),
            "sick_reports": col("sick_reports")}


def _pupil_columns(pupil_id: np.ndarray, cohort: Cohort, exposed_from_grade: int) -> dict[str, np.ndarray]:
    """Schools, cohort, exposure and :data:`COVARIATES` of the pupils ``pupil_id`` (one per row)."""
    pupils = cohort.pupils
    at = pd.Index(pupils["pupil_id"]).get_indexer(pupil_id)
    if (at < 0).any():
        missing = pupil_id[at < 0][0]
        raise ValueError(f"absence rows of pupil {getattr(missing, 'item', lambda: missing)()!r}, who is not in the "
                         "pupils table")

    def col(name):
        return pupils[name].take(at).to_numpy()

    out = {"po_school_id": col("po_school_id"), "vo_school_id": col("vo_school_id"),
           "cohort": col("cohort").astype(int)}
    out["t"] = out["cohort"] + (exposed_from_grade - 3)
    start = cohort.schools.set_index("school_id")["approach_start_year"]
    out["adopt_year"] = start.reindex(out["po_school_id"]).to_numpy(dtype=float, na_value=np.nan)
    out["exposed"] = (out["adopt_year"] <= out["t"]).astype(int)
    out["female"] = (pupils["sex"].take(at) == "F").to_numpy().astype(int)
    for c in ("disadvantaged", "chronic_illness", "special_needs"):
        out[c] = col(c).astype(int)
    out["vmbo"] = (pupils["vo_track"].take(at) == "vmbo").to_numpy().astype(int)
    return out


def vo_pupils(cohort: Cohort, exposed_from_grade: int = 7) -> pd.DataFrame:
    """One row per pupil observed in VO: VO totals of absence and exposure, covariates, PO exposure.

    Columns: ``pupil_id, po_school_id, vo_school_id, cohort, t`` (school year in group
    ``exposed_from_grade``), ``adopt_year`` (PO school's start year, NaN if never), ``exposed`` (0/1),
    ``days`` (VO school days enrolled outside long-term episodes), ``unexcused_hours``, ``sick_days``,
    ``sick_reports``, ``vo_years``, ``vo_episodes`` (onsets of long-term episodes in VO) and :data:`COVARIATES` (0/1).
    """
    cols = _vo_columns(cohort)
    codes, ids = pd.factorize(cols["pupil_id"], sort=True)

    def total(name):                                    # the pupil's sum over the VO years, in the column's type
        return np.bincount(codes, weights=cols[name], minlength=len(ids)).astype(cols[name].dtype)

    out = {"pupil_id": ids, **{c: total(c) for c in ("days", "unexcused_hours", "sick_days", "sick_reports")},
           "vo_years": np.bincount(codes, minlength=len(ids)).astype(np.int64)}
    keep = out["days"] > 0
    out = {k: v[keep] for k, v in out.items()}
    out.update(_pupil_columns(out["pupil_id"], cohort, exposed_from_grade))
    e = cohort.episodes
    vo_schools = set(cohort.schools.loc[cohort.schools["level"] == "vo", "school_id"])
    onsets = e[e["school_id"].isin(vo_schools) & (e["episode_type"] != "5a")].groupby("pupil_id").size()
    out["vo_episodes"] = onsets.reindex(out["pupil_id"]).fillna(0).to_numpy().astype(int)
    return pd.DataFrame(out)


def vo_pupil_years(cohort: Cohort, exposed_from_grade: int = 7) -> pd.DataFrame:
    """One row per VO pupil-year with school days outside long-term episodes (``days`` > 0).

    Columns as :func:`vo_pupils` (without ``vo_years`` and ``vo_episodes``) plus ``school_year`` and
    ``grade`` (the VO year, 1-6); sorted by pupil and school year.
    """
    cols = _vo_columns(cohort)
    rows = np.flatnonzero(cols["days"] > 0)
    rows = rows[np.lexsort((cols["school_year"][rows], cols["pupil_id"][rows]))]
    out = {k: v[rows] for k, v in cols.items()}
    out.update(_pupil_columns(out["pupil_id"], cohort, exposed_from_grade))
    return pd.DataFrame(out)


def school_cohorts(pupils: pd.DataFrame, outcome: str = "unexcused_hours") -> pd.DataFrame:
    """PO school x cohort cells: outcome and exposure-day totals, the cell's rate, adoption year and ``t``."""
    g = pupils.groupby(["po_school_id", "t"], sort=True).agg(
        y=(outcome, "sum"), days=("days", "sum"), n=("pupil_id", "size"), adopt_year=("adopt_year", "first"))
    g["rate"] = g["y"] / g["days"]
    return g.reset_index()
