"""Compare a cohort with published figures (``data/calibration_targets.csv``).

:func:`compare` computes, from a cohort's tables alone, the figure each target describes and
reports whether it lies in the published range. It works on simulated and on real cohorts.
How each figure is computed is documented with its function below and in ``data/README.md``.

The ``use`` column of the targets file says what a target is for:

- ``solid``: a Dutch figure with a range; the shipped scenarios must fall within it.
- ``prior``: English, clinical or press figures; reported, used as a guide only.
- ``structural``: counts that set the size of the national scenario.
- ``effect``: an intervention effect from a trial; computed only from cohorts that record it
  (``mazl_effect_sick_days``: cohorts with M@ZL signal and consult columns, such as the
  ``mazl_consult`` world).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import binom

from .cohort import Cohort

__all__ = ["compare", "compare_seeds", "targets", "TARGETS_PATH", "N_LEERPLICHTIG"]

TARGETS_PATH = Path(__file__).resolve().parent / "data" / "calibration_targets.csv"
N_LEERPLICHTIG = 2_400_000
"""Pupils of compulsory school age in the Netherlands, the denominator of the national counts."""
SCHOOL_WEEKS = 40
MAZL_WEEKS = 12
FULL_YEAR_SHARE = 0.8
"""A pupil-year counts as a full year when enrolled at least this share of the school days."""


def targets() -> pd.DataFrame:
    """The calibration targets with their sources."""
    return pd.read_csv(TARGETS_PATH)


def compare(cohort: Cohort) -> pd.DataFrame:
    """Calibration table: one row per target the cohort can speak to.

    Returns
    -------
    DataFrame with columns ``target_id, quantity, target, low, high, simulated, within_range,
    use, unit, source``. ``within_range`` is missing where the target has no range.
    """
    t = targets().set_index("id")
    ctx = _Context(cohort)
    rows = []
    for target_id, fn in _FIGURES.items():
        value = fn(ctx)
        if value is None or not np.isfinite(value):
            continue
        row = t.loc[target_id]
        low, high = row["low"], row["high"]
        within = pd.NA if pd.isna(low) or pd.isna(high) else bool(low <= value <= high)
        rows.append({"target_id": target_id, "quantity": row["quantity"], "target": row["value"], "low": low,
                     "high": high, "simulated": float(value), "within_range": within, "use": row["use"],
                     "unit": row["unit"], "source": row["source"]})
    out = pd.DataFrame(rows)
    out["within_range"] = out["within_range"].astype("boolean")
    return out


def compare_seeds(scenario, n_seeds: int = 10, seed: int = 0) -> pd.DataFrame:
    """Calibration of a scenario: :func:`compare` averaged over ``n_seeds`` simulated cohorts.

    Cohort ``i`` uses stream ``i`` of ``SeedSequence(seed).spawn(n_seeds)``. Returns the
    columns of :func:`compare` with ``simulated`` the mean over cohorts, plus ``mcse`` (its Monte
    Carlo standard error), ``sd`` (the spread between cohorts) and ``share_within`` (the share of
    cohorts whose figure lies within range); ``within_range`` refers to the mean.
    """
    from .simulate import simulate

    tables = [compare(simulate(scenario, seed=s)) for s in np.random.SeedSequence(seed).spawn(n_seeds)]
    long = pd.concat(tables, ignore_index=True)
    stats = long.groupby("target_id", sort=False).agg(
        simulated=("simulated", "mean"), sd=("simulated", "std"), n=("simulated", "size"),
        share_within=("within_range", lambda s: s.astype(float).mean()))
    stats["mcse"] = stats["sd"] / np.sqrt(stats["n"])
    out = tables[0].drop(columns=["simulated", "within_range"]).merge(stats.reset_index(), on="target_id")
    within = (out["low"] <= out["simulated"]) & (out["simulated"] <= out["high"])
    out["within_range"] = within.where(out["low"].notna() & out["high"].notna()).astype("boolean")
    return out[["target_id", "quantity", "target", "low", "high", "simulated", "mcse", "sd", "n", "within_range",
                "share_within", "use", "unit", "source"]]


class _Context:
    """Derived quantities shared by the figures (computed once)."""

    def __init__(self, cohort: Cohort):
        self.cohort = cohort
        scen = cohort.scenario
        self.school_days = scen.absence.school_days if scen is not None else int(cohort.absence["enrolled_days"].max())
        a = cohort.absence
        schools = cohort.schools.set_index("school_id")
        self.school_type = schools["school_type"].reindex(a["school_id"]).to_numpy()
        start = schools["approach_start_year"].reindex(a["school_id"]).to_numpy(dtype=float, na_value=np.inf)
        self.approach_active = start <= a["school_year"].to_numpy()
        self.full_year = a["enrolled_days"].to_numpy() >= FULL_YEAR_SHARE * self.school_days
        self.po = (a["level"] == "po").to_numpy()
        days_absent = (a["sick_days"] + a["luxury_days"] + a["unexcused_hours"] / 5.0 + a["long_absence_days"])
        self.absence_rate = (days_absent / a["enrolled_days"].clip(lower=1)).to_numpy()
        p = cohort.pupils
        first_day = pd.to_datetime(p["cohort"].astype(str) + "-08-01")
        if "followup_start" in p.columns:                 # an open population: observed from moving in
            first_day = first_day.where(first_day >= p["followup_start"], p["followup_start"])
        observed = (p["followup_end"] - first_day).dt.days.to_numpy() + 1
        self.pupil_years = float(np.clip(observed, 0, None).sum() / 365.0)
        self.scale = N_LEERPLICHTIG / self.pupil_years if self.pupil_years > 0 else np.nan
        e = cohort.episodes.copy()
        followup = p.set_index("pupil_id")["followup_end"]
        e["end"] = e["end_date"].fillna(followup.reindex(e["pupil_id"]).set_axis(e.index))
        e["duration"] = (e["end"] - e["start_date"]).dt.days
        self.episodes = e
        self.followup = followup


def _school_year(dates: pd.Series) -> np.ndarray:
    d = pd.DatetimeIndex(dates)
    return np.where(d.month >= 8, d.year, d.year - 1)


def _pupil_years_with(ctx: _Context, episodes: pd.DataFrame, from_day: np.ndarray) -> int:
    """Distinct (pupil, school year) pairs in which an episode runs at some point from ``from_day`` on."""
    a = episodes["start_date"] + pd.to_timedelta(from_day, unit="D")
    b = episodes["end"]
    ok = (b >= a).to_numpy()
    if not ok.any():
        return 0
    y0, y1 = _school_year(a[ok]), _school_year(b[ok])
    n = y1 - y0 + 1
    pupil = np.repeat(episodes["pupil_id"].to_numpy()[ok], n)
    year = np.repeat(y0, n) + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
    return len(pd.MultiIndex.from_arrays([pupil, year]).unique())


# -- the figures ------------------------------------------------------------------------------

def _po_rows(ctx: _Context, school_type: str) -> np.ndarray:
    """Full-year PO pupil-years at schools of ``school_type`` without the approach running."""
    return ctx.po & (ctx.school_type == school_type) & ~ctx.approach_active & ctx.full_year


def po_any_absence(ctx: _Context):
    """Share of full-year bo pupil-years (approach not running) with any recorded absence."""
    a = ctx.cohort.absence
    rows = _po_rows(ctx, "bo")
    anyabs = (a["sick_days"] + a["luxury_days"] + a["unexcused_hours"] + a["long_absence_days"]).to_numpy() > 0
    return anyabs[rows].mean() if rows.any() else None


def _extensive_sick(ctx: _Context, school_type: str):
    a = ctx.cohort.absence
    rows = _po_rows(ctx, school_type)
    ext = ((a["sick_days"] > 9) | (a["sick_reports"] > 4)).to_numpy()
    return ext[rows].mean() if rows.sum() >= 50 else None


def po_extensive_sick(ctx):
    """Share of full-year bo pupil-years (approach not running) with > 9 sick days or > 4 sick reports."""
    return _extensive_sick(ctx, "bo")


def sbo_extensive_sick(ctx):
    """As ``po_extensive_sick``, in SBO schools."""
    return _extensive_sick(ctx, "sbo")


def vmbo_mazl_criterion(ctx: _Context):
    """Expected share of vmbo pupils meeting the M@ZL criterion in a 12-week window.

    With a year's ``L`` long (> 6 days) and ``S`` short sick reports spread uniformly over 40
    school weeks, a 12-week window holds each report with probability ``f = 12/40``:
    ``P = 1 - (1 - f)^L * P(Binomial(S, f) <= 3)``, averaged over full-year vmbo VO pupil-years.
    """
    a = ctx.cohort.absence
    track = ctx.cohort.pupils.set_index("pupil_id")["vo_track"].reindex(a["pupil_id"]).to_numpy()
    rows = ~ctx.po & (track == "vmbo") & ctx.full_year
    if not rows.any():
        return None
    f = MAZL_WEEKS / SCHOOL_WEEKS
    long_ = a["sick_long_spells"].to_numpy()[rows]
    short = a["sick_reports"].to_numpy()[rows] - long_
    return float(np.mean(1 - (1 - f) ** long_ * binom.cdf(3, short, f)))


def mazl_effect_sick_days(ctx: _Context):
    """Change in sick days after an M@ZL consult relative to control pupils, as in the trial: among
    pupils meeting the criterion for the first time (``absence.mazl_signal``) and followed the next
    school year, (next-year / this-year sick days per enrolled day) of the consulted pupils
    (``absence.mazl_consult``) divided by the same ratio at schools that do not offer M@ZL
    (``schools.mazl_offered``), minus 1. Only for cohorts with these columns."""
    a = ctx.cohort.absence
    if not {"mazl_signal", "mazl_consult"} <= set(a.columns) or "mazl_offered" not in ctx.cohort.schools:
        return None
    a = a.sort_values(["pupil_id", "school_year"], kind="stable")
    pupil, year = a["pupil_id"].to_numpy(), a["school_year"].to_numpy()
    signal = a["mazl_signal"].to_numpy(dtype=bool)
    first = signal & (pd.Series(signal.astype(int)).groupby(pupil).cumsum().to_numpy() == 1)
    has_next = np.r_[(pupil[1:] == pupil[:-1]) & (year[1:] == year[:-1] + 1), False]
    rows = np.flatnonzero(first & has_next)
    offered = ctx.cohort.schools.set_index("school_id")["mazl_offered"].astype(bool).reindex(
        a["school_id"].to_numpy()[rows]).to_numpy(dtype=bool)
    consulted = a["mazl_consult"].to_numpy(dtype=bool)[rows]
    sick, days = a["sick_days"].to_numpy(float), a["enrolled_days"].to_numpy(float)

    def change(r):
        return (sick[r + 1].sum() / days[r + 1].sum()) / (sick[r].sum() / days[r].sum()) if len(r) >= 30 else np.nan

    return change(rows[consulted]) / change(rows[~offered]) - 1


def vo_medical_absence_rate(ctx: _Context):
    """Sick days / enrolled days over all VO pupil-years."""
    a = ctx.cohort.absence[~ctx.po]
    return a["sick_days"].sum() / a["enrolled_days"].sum() if len(a) else None


def _national(ctx: _Context, count: float):
    return count * ctx.scale if len(ctx.episodes) else None


def nl_lrv_per_year(ctx: _Context):
    """Pupil-years with an LRV episode beyond its first 3 months (91 days), scaled.

    The Leerplichttelling series is read as LRV longer than 3 months: in every year it lies below
    the count of LRV + AV longer than 3 months (``nl_thuiszit_over_3m``), and a count of all LRV
    longer than 4 weeks would exceed the 4,400 LRV episodes of 4 weeks to 3 months alone
    (``nl_lrv_4w_3m``).
    """
    e = ctx.episodes[ctx.episodes["episode_type"] == "LRV"]
    return _national(ctx, _pupil_years_with(ctx, e, np.full(len(e), 91)))


def nl_thuiszit_over_3m(ctx: _Context):
    """Pupil-years with an LRV or AV episode beyond its first 3 months (91 days), scaled."""
    e = ctx.episodes[ctx.episodes["episode_type"].isin(["LRV", "AV"])]
    return _national(ctx, _pupil_years_with(ctx, e, np.full(len(e), 91)))


def nl_lrv_4w_3m(ctx: _Context):
    """LRV episodes that ended (not censored) after 4 weeks and within 3 months (28-91 days), scaled."""
    e = ctx.episodes
    n = ((e["episode_type"] == "LRV") & (e["outcome"] != "censored") & e["duration"].between(29, 91)).sum()
    return _national(ctx, n)


def nl_5a_exemptions(ctx: _Context):
    """Pupil-years with a 5a exemption running, scaled."""
    e = ctx.episodes[ctx.episodes["episode_type"] == "5a"]
    return _national(ctx, _pupil_years_with(ctx, e, np.zeros(len(e))))


def nl_thuiszit_rate(ctx: _Context):
    """Pupil-years with a 5a exemption, AV, or LRV beyond 4 weeks, per 1,000 pupil-years."""
    e = ctx.episodes
    from_day = np.where(e["episode_type"] == "LRV", 28, 0)
    return 1000 * _pupil_years_with(ctx, e, from_day) / ctx.pupil_years if len(e) else None


def tracking_r_y6_y7(ctx: _Context):
    """Pearson r of the recorded absence rate in group 8 and in VO year 1 (full years only).

    Absence rate = (sick days + luxury days + unexcused hours / 5 + long-term absence days) / enrolled days.
    """
    a = ctx.cohort.absence
    full = ctx.full_year
    g8 = pd.Series(ctx.absence_rate[ctx.po & (a["grade"] == 8).to_numpy() & full],
                   index=a["pupil_id"].to_numpy()[ctx.po & (a["grade"] == 8).to_numpy() & full])
    v1m = ~ctx.po & (a["grade"] == 1).to_numpy() & full
    v1 = pd.Series(ctx.absence_rate[v1m], index=a["pupil_id"].to_numpy()[v1m])
    both = pd.concat([g8, v1], axis=1, join="inner")
    return both.corr().iloc[0, 1] if len(both) > 10 else None


def between_school_share(ctx: _Context):
    """One-way ANOVA intraclass correlation of the pupil-year absence rate by school (full years)."""
    a = ctx.cohort.absence
    y = ctx.absence_rate[ctx.full_year]
    g = a["school_id"].to_numpy()[ctx.full_year]
    _, gi, counts = np.unique(g, return_inverse=True, return_counts=True)
    k, n = len(counts), len(y)
    if k < 2:
        return None
    means = np.bincount(gi, y) / counts
    ssb = (counts * (means - y.mean()) ** 2).sum()
    ssw = ((y - means[gi]) ** 2).sum()
    msb, msw = ssb / (k - 1), ssw / (n - k)
    n0 = (n - (counts**2).sum() / n) / (k - 1)
    s2b = max((msb - msw) / n0, 0.0)
    return s2b / (s2b + msw)


def _persistent(ctx: _Context, po: bool):
    rows = ctx.full_year & (ctx.po if po else ~ctx.po)
    return float((ctx.absence_rate[rows] >= 0.10).mean()) if rows.any() else None


def persistent_absence_primary(ctx):
    """Share of full-year PO pupil-years with an absence rate of at least 10%."""
    return _persistent(ctx, True)


def persistent_absence_secondary(ctx):
    """Share of full-year VO pupil-years with an absence rate of at least 10%."""
    return _persistent(ctx, False)


def return_6m_school_refusal(ctx: _Context):
    """Share of LRV episodes back at school (own or other) within 6 months (182 days) of the first absence day.

    Among episodes whose pupil is followed at least 182 days after the start, so censoring plays no part.
    """
    e = ctx.episodes[ctx.episodes["episode_type"] == "LRV"]
    followed = (ctx.followup.reindex(e["pupil_id"]).to_numpy() - e["start_date"].to_numpy()) >= np.timedelta64(182, "D")
    e = e[followed]
    back = e["outcome"].isin(["own_school", "other_school"]) & (e["duration"] <= 182)
    return back.mean() if len(e) >= 20 else None


def den_bosch_reports(ctx: _Context):
    """Recorded unexcused PO hours per enrolled day at adopting schools: first approach year / the year before."""
    a = ctx.cohort.absence
    start = ctx.cohort.schools.set_index("school_id")["approach_start_year"]
    s = start.reindex(a["school_id"]).to_numpy(dtype=float, na_value=np.nan)
    y = a["school_year"].to_numpy()
    first, before = ctx.po & (y == s), ctx.po & (y == s - 1)
    hours, days = a["unexcused_hours"].to_numpy(), a["enrolled_days"].to_numpy()
    if not before.any() or hours[before].sum() == 0:
        return None
    return (hours[first].sum() / days[first].sum()) / (hours[before].sum() / days[before].sum())


def _national_structure(fn: Callable[[_Context], float]) -> Callable[[_Context], float | None]:
    @functools.wraps(fn)
    def figure(ctx: _Context):
        return fn(ctx) if (ctx.cohort.schools["level"] == "po").sum() >= 1000 else None
    return figure


@_national_structure
def nl_po_schools(ctx):
    """Number of PO schools (national-scale cohorts only)."""
    return (ctx.cohort.schools["level"] == "po").sum()


@_national_structure
def nl_po_pupils(ctx):
    """Number of PO pupils: pupils of the eight followed grade cohorts (national-scale cohorts only)."""
    n_cohorts = ctx.cohort.pupils["cohort"].nunique()
    return len(ctx.cohort.pupils) * 8 / n_cohorts


@_national_structure
def nl_bo_mean_school_size(ctx):
    """Mean pupils per mainstream PO school (national-scale cohorts only)."""
    p = ctx.cohort.pupils
    n_cohorts = p["cohort"].nunique()
    types = ctx.cohort.schools.set_index("school_id")["school_type"]
    bo = types.reindex(p["po_school_id"]).to_numpy() == "bo"
    return bo.sum() * 8 / n_cohorts / (types == "bo").sum()


@_national_structure
def nl_vo_locations(ctx):
    """Number of VO schools (national-scale cohorts only)."""
    return (ctx.cohort.schools["level"] == "vo").sum()


_FIGURES: dict[str, Callable[[_Context], float | None]] = {
    f.__name__: f for f in (
        po_any_absence, po_extensive_sick, sbo_extensive_sick, vmbo_mazl_criterion, mazl_effect_sick_days,
        vo_medical_absence_rate,
        nl_lrv_per_year, nl_thuiszit_over_3m, nl_lrv_4w_3m, nl_thuiszit_rate, nl_5a_exemptions,
        tracking_r_y6_y7, between_school_share, persistent_absence_primary, persistent_absence_secondary,
        return_6m_school_refusal, den_bosch_reports, nl_po_schools, nl_po_pupils, nl_bo_mean_school_size,
        nl_vo_locations,
    )
}
