"""A cohort's five tables as aligned numpy arrays, for the moment estimators of
:func:`verzuimmodel.simulate.from_cohort.from_cohort`.

Identifiers become positions (schools, pupils, episodes); dates become day numbers (days since
1970-01-01, as in the simulator); codes become small integers. Nothing here estimates anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .episodes import OUTCOME_CODES, TYPES
from .population import aug1

__all__ = ["CohortArrays", "cohort_arrays", "school_year_of"]

TRACK_CODES = ("vmbo", "havo", "vwo")


def _days(values) -> np.ndarray:
    """Day numbers of a datetime column (NaT -> the smallest int64)."""
    return pd.to_datetime(pd.Series(values)).to_numpy().astype("datetime64[D]").astype(np.int64)


def school_year_of(day: np.ndarray) -> np.ndarray:
    """The school year (its first calendar year) holding each day number (school years start on 1 August)."""
    year = np.asarray(day, dtype="datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    return year - (np.asarray(day) < aug1(year))


def _flag(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame[column].astype("boolean").fillna(False).to_numpy(dtype=bool)


def _positions(index: pd.Index, values, what: str) -> np.ndarray:
    pos = index.get_indexer(pd.Series(values))
    if (pos < 0).any():
        raise ValueError(f"from_cohort: {what} refers to a row that does not exist (validate the cohort first)")
    return pos.astype(np.int64)


@dataclass(frozen=True)
class CohortArrays:
    """The arrays the estimators use (schools ``s_*``, pupils ``p_*``, absence rows ``a_*``,
    episodes ``e_*``, interventions ``i_*``); school and pupil references are positions."""

    s_po: np.ndarray
    s_sbo: np.ndarray
    s_region: np.ndarray            # region code 0..n_regions-1
    s_start: np.ndarray             # approach start year (float, nan: never)
    p_po_school: np.ndarray         # recorded (last) PO school
    p_vo_school: np.ndarray         # -1: not in VO
    p_cohort: np.ndarray
    p_female: np.ndarray
    p_dis: np.ndarray
    p_chronic: np.ndarray
    p_special: np.ndarray
    p_track: np.ndarray             # -1 none, 0 vmbo, 1 havo, 2 vwo
    p_start: np.ndarray             # first day observed
    p_end: np.ndarray               # last day observed
    has_followup_start: bool
    a_pupil: np.ndarray
    a_school: np.ndarray
    a_year: np.ndarray
    a_vo: np.ndarray
    a_grade: np.ndarray             # PO group 1-8 or VO year 1-6
    a_enrolled: np.ndarray
    a_long: np.ndarray
    a_counts: dict                  # measure -> float array (recorded)
    e_pupil: np.ndarray
    e_school: np.ndarray
    e_type: np.ndarray              # index into TYPES
    e_start: np.ndarray
    e_end: np.ndarray               # end day (the pupil's follow-up end if missing)
    e_outcome: np.ndarray           # index into OUTCOME_CODES
    i_episode: np.ndarray
    i_type: np.ndarray              # intervention type (str)
    i_start: np.ndarray

    @property
    def n_pupils(self) -> int:
        return len(self.p_cohort)

    @property
    def n_schools(self) -> int:
        return len(self.s_po)


ABSENCE_COUNTS = ("sick_days", "sick_reports", "sick_long_spells", "late_arrivals", "luxury_days", "unexcused_hours")


def cohort_arrays(cohort) -> CohortArrays:
    """The cohort's tables as :class:`CohortArrays` (``cohort``: a validated :class:`~verzuimmodel.Cohort`)."""
    s, p, a, e, iv = cohort.schools, cohort.pupils, cohort.absence, cohort.episodes, cohort.interventions
    if not len(s) or not len(p):
        raise ValueError("from_cohort: the cohort has no schools or no pupils")
    school_index = pd.Index(s["school_id"])
    pupil_index = pd.Index(p["pupil_id"])
    region = pd.factorize(s["region_id"])[0] if "region_id" in s.columns else np.zeros(len(s), dtype=np.int64)
    start = pd.to_numeric(s["approach_start_year"], errors="coerce").to_numpy(dtype=float, na_value=np.nan) \
        if "approach_start_year" in s.columns else np.full(len(s), np.nan)
    vo_id = p["vo_school_id"]
    vo_school = np.full(len(p), -1, dtype=np.int64)
    in_vo = vo_id.notna().to_numpy()
    vo_school[in_vo] = _positions(school_index, vo_id[in_vo], "pupils.vo_school_id")
    track = np.full(len(p), -1, dtype=np.int64)
    if "vo_track" in p.columns:
        t = p["vo_track"].astype("object").to_numpy()
        for k, code in enumerate(TRACK_CODES):
            track[t == code] = k
    cohort_year = p["cohort"].to_numpy(dtype=np.int64)
    p_end = _days(p["followup_end"])
    has_start = "followup_start" in p.columns
    p_start = aug1(cohort_year)
    if has_start:
        given = p["followup_start"].notna().to_numpy()
        p_start = np.where(given, np.maximum(p_start, _days(p["followup_start"])), p_start)
    e_pupil = _positions(pupil_index, e["pupil_id"], "episodes.pupil_id")
    e_end = _days(e["end_date"])
    missing = e["end_date"].isna().to_numpy()
    e_end = np.where(missing, p_end[e_pupil], e_end)
    episode_index = pd.Index(e["episode_id"])
    return CohortArrays(
        s_po=(s["level"].astype("object") == "po").to_numpy(),
        s_sbo=(s["school_type"].astype("object") == "sbo").to_numpy(),
        s_region=np.asarray(region, dtype=np.int64),
        s_start=start,
        p_po_school=_positions(school_index, p["po_school_id"], "pupils.po_school_id"),
        p_vo_school=vo_school,
        p_cohort=cohort_year,
        p_female=(p["sex"].astype("object") == "F").to_numpy(),
        p_dis=_flag(p, "disadvantaged"),
        p_chronic=_flag(p, "chronic_illness"),
        p_special=_flag(p, "special_needs"),
        p_track=track,
        p_start=p_start,
        p_end=p_end,
        has_followup_start=has_start,
        a_pupil=_positions(pupil_index, a["pupil_id"], "absence.pupil_id"),
        a_school=_positions(school_index, a["school_id"], "absence.school_id"),
        a_year=a["school_year"].to_numpy(dtype=np.int64),
        a_vo=(a["level"].astype("object") == "vo").to_numpy(),
        a_grade=a["grade"].to_numpy(dtype=np.int64),
        a_enrolled=a["enrolled_days"].to_numpy(dtype=float),
        a_long=a["long_absence_days"].to_numpy(dtype=float) if "long_absence_days" in a.columns
        else np.zeros(len(a)),
        a_counts={k: a[k].to_numpy(dtype=float) for k in ABSENCE_COUNTS if k in a.columns},
        e_pupil=e_pupil,
        e_school=_positions(school_index, e["school_id"], "episodes.school_id"),
        e_type=pd.Index(TYPES).get_indexer(e["episode_type"].astype("object")).astype(np.int64),
        e_start=_days(e["start_date"]),
        e_end=e_end,
        e_outcome=pd.Index(OUTCOME_CODES).get_indexer(e["outcome"].astype("object")).astype(np.int64),
        i_episode=_positions(episode_index, iv["episode_id"], "interventions.episode_id"),
        i_type=iv["intervention_type"].astype("object").to_numpy(dtype=object),
        i_start=_days(iv["start_date"]),
    )
