"""Degenerate cohorts and trial data: what every public estimator must meet with a clear error or
a named warning, never a bare numpy/statsmodels error or a silent NaN.

Each cohort is made from one small simulated cohort (the ``mazl_consult`` world, so that M@ZL
signals, offers and consults are recorded, with the PO approach randomised over its schools) by
changing one thing:

- ``all_zero``: every recorded (and true) absence count is 0;
- ``one_po_school``: every PO pupil-year, pupil and episode moved to one PO school;
- ``one_vo_school``: every VO pupil-year, pupil and episode moved to one VO school;
- ``no_episodes``: no long-term absence episodes (and so no interventions);
- ``all_censored``: every episode still running (outcome ``censored``);
- ``treated_never_return``: every episode that received an intervention still running (no return
  among the treated: a hazard ratio of 0);
- ``constant_outcome``: every pupil-year has the same absence (3 of each count, 6 unexcused hours;
  the few enrolled for under 6 days outside episodes enrolled for enough days);
- ``no_treated``: no PO school adopted the approach, no school offers M@ZL, no interventions;
- ``all_treated``: every PO school adopted the approach from the start, every school offers M@ZL;
- ``same_adoption_year``: every PO school adopted the approach in the same year (mid-way), so
  exposure follows the cohort alone.

The trial data (``data="trial"`` estimators) are made from small simulated cluster trials the
same way: ``constant_outcome`` (y = 0 for every pupil), ``no_treated``, ``all_treated``,
``one_cluster``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

import verzuimmodel as vm

COUNT_COLUMNS = ("sick_days", "sick_reports", "sick_long_spells", "late_arrivals", "luxury_days", "unexcused_hours")
COHORTS = ("all_zero", "one_po_school", "one_vo_school", "no_episodes", "all_censored", "treated_never_return",
           "constant_outcome", "no_treated", "all_treated", "same_adoption_year")
TRIALS = ("constant_outcome", "no_treated", "all_treated", "one_cluster")


def base_cohort(seed: int = 5) -> vm.Cohort:
    """A small simulated cohort (one region, 8 PO and 2 VO schools, approach randomised)."""
    s = vm.Scenario.load("mazl_consult")
    s = dataclasses.replace(
        s, population=dataclasses.replace(s.population, n_regions=1, n_po_schools=8, n_vo_schools=2),
        approach=dataclasses.replace(s.approach, design="parallel", share_treated=0.5))
    return vm.simulate(s, seed=seed)


def _replace(c: vm.Cohort, **tables) -> vm.Cohort:
    return dataclasses.replace(c, **tables)


def _counts(a: pd.DataFrame, value) -> pd.DataFrame:
    a = a.copy()
    for col in COUNT_COLUMNS:
        for name in (col, f"{col}_true"):
            if name in a.columns:
                v = value(col)
                a[name] = pd.Series(v, index=a.index).astype(a[name].dtype)
    return a


def degenerate_cohort(base: vm.Cohort, kind: str) -> vm.Cohort:
    """``base`` made degenerate in the way ``kind`` names (one of :data:`COHORTS`)."""
    schools, pupils, absence = base.schools, base.pupils, base.absence
    episodes, interventions = base.episodes, base.interventions
    if kind == "all_zero":
        return _replace(base, absence=_counts(absence, lambda col: 0))
    if kind == "constant_outcome":
        a = _counts(absence, lambda col: 6.0 if col == "unexcused_hours" else 3)
        # the few pupil-years enrolled for under 6 days outside episodes get the days their absence needs
        a["enrolled_days"] = np.maximum(a["enrolled_days"], a["long_absence_days"] + 6).astype(a["enrolled_days"].dtype)
        return _replace(base, absence=a)
    if kind == "one_po_school":
        po = schools.loc[schools["level"] == "po", "school_id"]
        keep = po.iloc[0]
        p = pupils.assign(po_school_id=keep)
        a = absence.copy()
        a.loc[a["level"] == "po", "school_id"] = keep
        e = episodes.copy()
        e.loc[e["school_id"].isin(set(po)), "school_id"] = keep
        return _replace(base, schools=schools[(schools["level"] == "vo") | (schools["school_id"] == keep)]
                        .reset_index(drop=True), pupils=p, absence=a, episodes=e)
    if kind == "one_vo_school":
        vo = schools.loc[schools["level"] == "vo", "school_id"]
        keep = vo.iloc[0]
        p = pupils.copy()
        p["vo_school_id"] = p["vo_school_id"].where(p["vo_school_id"].isna(), keep)
        a = absence.copy()
        a.loc[a["level"] == "vo", "school_id"] = keep
        e = episodes.copy()
        e.loc[e["school_id"].isin(set(vo)), "school_id"] = keep
        return _replace(base, schools=schools[(schools["level"] == "po") | (schools["school_id"] == keep)]
                        .reset_index(drop=True), pupils=p, absence=a, episodes=e)
    if kind == "no_episodes":
        return _replace(base, episodes=episodes.iloc[:0], interventions=interventions.iloc[:0])
    if kind in ("all_censored", "treated_never_return"):
        e = episodes.copy()
        censor = np.ones(len(e), bool) if kind == "all_censored" else \
            e["episode_id"].isin(interventions["episode_id"]).to_numpy()
        e["outcome"] = e["outcome"].where(~censor, "censored")
        return _replace(base, episodes=e)
    if kind == "same_adoption_year":
        t = pupils["cohort"] + 4                  # the school year of group 7
        s = schools.copy()
        s["approach_start_year"] = pd.array([int(t.median()) if lvl == "po" else pd.NA for lvl in s["level"]],
                                            dtype="Int64")
        return _replace(base, schools=s)
    if kind in ("no_treated", "all_treated"):
        s = schools.copy()
        po = s["level"] == "po"
        if kind == "no_treated":
            s["approach_start_year"] = pd.array([pd.NA] * len(s), dtype="Int64")
        else:
            first = int(absence["school_year"].min())
            s["approach_start_year"] = pd.array([first if p else pd.NA for p in po], dtype="Int64")
        if "mazl_offered" in s.columns:
            s["mazl_offered"] = kind == "all_treated"
        iv = interventions.iloc[:0] if kind == "no_treated" else interventions
        return _replace(base, schools=s, interventions=iv)
    raise ValueError(f"unknown degenerate cohort {kind!r}; expected one of {', '.join(COHORTS)}")


def base_trial(outcome: str, seed: int = 3):
    """A small parallel cluster trial with the given outcome type."""
    return vm.evaluate.ParallelTrial(n_clusters=8, cluster_size=10, outcome=outcome).simulate(seed)


def degenerate_trial(base, kind: str) -> pd.DataFrame:
    """The data frame of trial ``base`` made degenerate in the way ``kind`` names (:data:`TRIALS`)."""
    d = base.data.copy()
    if kind == "constant_outcome":
        d["y"] = 0
    elif kind == "no_treated":
        d["treat"] = 0
    elif kind == "all_treated":
        d["treat"] = 1
    elif kind == "one_cluster":
        d["cluster"] = 0
    else:
        raise ValueError(f"unknown degenerate trial {kind!r}; expected one of {', '.join(TRIALS)}")
    return d
