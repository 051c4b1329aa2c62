"""A small, hand-made, valid cohort for the schema, I/O and CLI tests.

Six schools (four PO of which one SBO, two VO; text ids such as BRIN codes), twenty pupils
(integer ids 101-120; the first twelve are in VO), two absence rows per pupil, six episodes (one
still running, one censored when the pupil moved away, one recurrence) and four interventions
(one on the first day of its episode, one in a running episode).

The tables hold plain Python and pandas values as a user or the simulator would give them
(codes as text, dates as timestamps, missing values as None); validation normalises them.
"""

from __future__ import annotations

import pandas as pd

PO_SCHOOLS = ["04AA00", "04AB00", "05CC00", "06DD00"]
VO_SCHOOLS = ["20VO00", "21VO01"]
N_PUPILS = 20
N_VO_PUPILS = 12
FIRST_PUPIL = 101
MOVED_PUPIL = 110
"""The pupil who moved away (follow-up ends early; their episode is censored then)."""


def _schools() -> pd.DataFrame:
    return pd.DataFrame({
        "school_id": PO_SCHOOLS + VO_SCHOOLS,
        "region_id": [1, 1, 2, 2, 1, 2],
        "level": ["po", "po", "po", "po", "vo", "vo"],
        "school_type": ["bo", "bo", "sbo", "bo", "vo", "vo"],
        "approach_start_year": [2018, None, 2019, None, None, None],
    })


def _pupils() -> pd.DataFrame:
    rows = []
    for i in range(N_PUPILS):
        in_vo = i < N_VO_PUPILS
        pupil_id = FIRST_PUPIL + i
        rows.append({
            "pupil_id": pupil_id,
            "po_school_id": PO_SCHOOLS[i % 4],
            "vo_school_id": VO_SCHOOLS[i % 2] if in_vo else None,
            "cohort": 2012 if in_vo else 2016,
            "sex": "FM"[i % 2],
            "disadvantaged": i % 3 == 0,
            "chronic_illness": i % 5 == 0,
            "special_needs": PO_SCHOOLS[i % 4] == "05CC00",
            "vo_track": ["vmbo", "havo", "vwo"][i % 3] if in_vo else None,
            "followup_end": pd.Timestamp("2022-03-01" if pupil_id == MOVED_PUPIL else "2024-07-31"),
        })
    return pd.DataFrame(rows)


def _absence() -> pd.DataFrame:
    rows = []
    for i in range(N_PUPILS):
        pupil_id = FIRST_PUPIL + i
        if i < N_VO_PUPILS:
            years = [(2017, PO_SCHOOLS[i % 4], "po", 8), (2019, VO_SCHOOLS[i % 2], "vo", 2)]
        else:
            years = [(2019, PO_SCHOOLS[i % 4], "po", 6), (2020, PO_SCHOOLS[i % 4], "po", 7)]
        for school_year, school_id, level, grade in years:
            sick_days = i % 7 + 1
            rows.append({
                "pupil_id": pupil_id,
                "school_id": school_id,
                "school_year": school_year,
                "level": level,
                "grade": grade,
                "enrolled_days": 190 - 5 * (i % 3),
                "sick_days": sick_days,
                "sick_reports": min(sick_days, i % 3 + 1),
                "sick_long_spells": int(sick_days >= 7),
                "late_arrivals": i % 4,
                "luxury_days": i % 2,
                "unexcused_hours": 1.5 * (i % 5),
                "long_absence_days": 30 if level == "vo" and i < 3 else 0,
            })
    return pd.DataFrame(rows)


def _episodes() -> pd.DataFrame:
    return pd.DataFrame({
        "episode_id": [1, 2, 3, 4, 5, 6],
        "pupil_id": [101, 102, 103, MOVED_PUPIL, 104, 101],
        "school_id": ["20VO00", "21VO01", "20VO00", "21VO01", "21VO01", "20VO00"],
        "episode_type": ["LRV", "LRV", "AV", "LRV", "5a", "LRV"],
        "start_date": pd.to_datetime(["2019-10-01", "2019-11-04", "2020-02-03", "2021-09-06",
                                      "2020-09-01", "2020-10-05"]),
        "end_date": pd.to_datetime(["2020-01-15", "2020-03-02", None, "2022-03-01", "2021-06-30", "2021-02-01"]),
        "outcome": ["own_school", "other_school", "censored", "censored", "exemption", "specialist_care"],
    })


def _interventions() -> pd.DataFrame:
    return pd.DataFrame({
        "intervention_id": ["I01", "I02", "I03", "I04"],
        "pupil_id": [101, 102, 103, 101],
        "episode_id": [1, 2, 3, 6],
        "intervention_type": ["kernpartnerteam", "verzuimcoach", "mazl", "verzuimcoach"],
        "start_date": pd.to_datetime(["2019-11-15", "2019-12-02", "2020-06-01", "2020-10-05"]),
    })


def small_cohort() -> dict[str, pd.DataFrame]:
    """The five tables of a small valid cohort, by name, in dependency order (fresh copies)."""
    return {
        "schools": _schools(),
        "pupils": _pupils(),
        "absence": _absence(),
        "episodes": _episodes(),
        "interventions": _interventions(),
    }
