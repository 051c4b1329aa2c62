"""The simulator: reproducibility, structure of the tables, and the truth it reports."""

import dataclasses
import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verzuimmodel.simulate import Scenario, simulate
from verzuimmodel.simulate.episodes import invert_piecewise_weibull
from verzuimmodel.simulate.population import aug1


def with_approach(scen: Scenario, **kw) -> Scenario:
    return dataclasses.replace(scen, approach=dataclasses.replace(scen.approach, **kw))


def with_population(scen: Scenario, **kw) -> Scenario:
    return dataclasses.replace(scen, population=dataclasses.replace(scen.population, **kw))


@pytest.fixture(scope="module")
def cohort():
    return simulate(Scenario.default(), seed=1)


def test_same_seed_same_tables_different_seed_different_tables(cohort):
    again = simulate(Scenario.default(), seed=1)
    for name, table in cohort.tables.items():
        pd.testing.assert_frame_equal(table, again.tables[name])
    assert again.truth == cohort.truth
    other = simulate(Scenario.default(), seed=2)
    for name in ("pupils", "absence", "episodes"):
        assert not cohort.tables[name].equals(other.tables[name]), name


def test_global_random_state_untouched():
    np.random.seed(123)
    random.seed(123)
    np_state, py_state = np.random.get_state(), random.getstate()
    simulate(Scenario.default(), seed=5)
    after = np.random.get_state()
    assert all(np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b for a, b in zip(np_state, after))
    assert random.getstate() == py_state


def test_aug1_matches_calendar():
    years = np.arange(1990, 2101)
    expected = np.array([np.datetime64(f"{y}-08-01", "D").astype(np.int64) for y in years])
    assert np.array_equal(aug1(years), expected)


def test_tables_validate(cohort):
    from verzuimmodel.schema import validate_cohort

    validate_cohort(cohort.tables)


def test_cross_classified_schools(cohort):
    p = cohort.pupils.dropna(subset=["vo_school_id"])
    vo_per_po = p.groupby("po_school_id")["vo_school_id"].nunique()
    po_per_vo = p.groupby("vo_school_id")["po_school_id"].nunique()
    assert vo_per_po.median() >= 2       # a PO school feeds several VO schools
    assert po_per_vo.min() >= 2          # a VO school draws from several PO schools
    assert vo_per_po.max() <= 8


def test_absence_rows_cover_followup(cohort):
    a, p = cohort.absence, cohort.pupils.set_index("pupil_id")
    assert not a.duplicated(["pupil_id", "school_year"]).any()
    year_start = pd.to_datetime(a["school_year"].astype(str) + "-08-01")
    assert (year_start <= p["followup_end"].reindex(a["pupil_id"]).to_numpy()).all()
    assert set(a.loc[a["level"] == "po", "grade"]) == set(range(3, 9))
    assert set(a.loc[a["level"] == "vo", "grade"]) == set(range(1, 5))
    assert (a["enrolled_days"].between(1, 190)).all()


def test_recording(cohort):
    a = cohort.absence
    po, vo = a[a["level"] == "po"], a[a["level"] == "vo"]
    for m in ("sick_days", "sick_reports", "sick_long_spells", "late_arrivals", "luxury_days", "unexcused_hours"):
        assert (po[m] <= po[m + "_true"]).all(), m
        assert po[m].sum() < po[m + "_true"].sum(), m           # PO records miss some absence
        assert (vo[m] == vo[m + "_true"]).all(), m              # VO records are complete
    assert (a["sick_long_spells"] <= a["sick_reports"]).all()
    assert (a["sick_days"] >= a["sick_reports"]).all()
    assert (a["sick_days"] + a["luxury_days"] + a["long_absence_days"] <= a["enrolled_days"]).all()


def test_approach_raises_po_detection(cohort):
    a = cohort.absence
    start = cohort.schools.set_index("school_id")["approach_start_year"].reindex(a["school_id"]).to_numpy(
        dtype=float, na_value=np.inf)
    po = (a["level"] == "po").to_numpy()
    active = po & (start <= a["school_year"].to_numpy())
    ratio = [a.loc[rows, "unexcused_hours"].sum() / a.loc[rows, "unexcused_hours_true"].sum()
             for rows in (active, po & ~active)]
    assert ratio[0] > ratio[1] + 0.1
    assert cohort.truth["po_detection_sick"]["mean_sick_with_approach_active"] > \
        cohort.truth["po_detection_sick"]["mean_sick_without_approach"]


def test_episodes_structure(cohort):
    e = cohort.episodes
    assert (e["end_date"] >= e["start_date"]).all()
    lrv = e[e["episode_type"] == "LRV"]
    assert ((lrv["end_date"] - lrv["start_date"]).dt.days >= 28).all()
    # episodes of a pupil never overlap (a 5a episode may start on the day the previous one ended)
    e = e.sort_values(["pupil_id", "start_date"])
    same = e["pupil_id"].to_numpy()[1:] == e["pupil_id"].to_numpy()[:-1]
    assert (e["start_date"].to_numpy()[1:][same] >= e["end_date"].to_numpy()[:-1][same]).all()
    # censored episodes end on the pupil's last observed day; others not after it
    fu = cohort.pupils.set_index("pupil_id")["followup_end"].reindex(e["pupil_id"]).to_numpy()
    cens = (e["outcome"] == "censored").to_numpy()
    assert (e["end_date"].to_numpy()[cens] == fu[cens]).all()
    assert (e["end_date"].to_numpy() <= fu).all()
    assert set(e["outcome"]) == {"own_school", "other_school", "work", "specialist_care", "exemption", "censored"}
    assert e["episode_type"].value_counts().min() > 0


def test_exemption_starts_a_5a_episode(cohort):
    e = cohort.episodes
    ex = e[e["outcome"] == "exemption"]
    follow = e.merge(ex[["pupil_id", "end_date"]], left_on=["pupil_id", "start_date"],
                     right_on=["pupil_id", "end_date"], suffixes=("", "_prev"))
    assert len(ex) > 0
    assert (follow["episode_type"] == "5a").all()
    assert len(follow) == len(ex)


def test_interventions_start_within_running_episodes(cohort):
    iv = cohort.interventions.merge(cohort.episodes, on="episode_id", suffixes=("", "_ep"))
    assert (iv["pupil_id"] == iv["pupil_id_ep"]).all()
    assert (iv["start_date"] > iv["start_date_ep"]).all()
    assert (iv["start_date"] < iv["end_date"]).all()
    assert iv["episode_type"].isin(["LRV", "AV"]).all()
    assert not iv.duplicated(["episode_id", "intervention_type"]).any()
    assert set(iv["intervention_type"]) == set(Scenario.default().interventions)


def test_truth_present_and_consistent(cohort):
    t = cohort.truth
    scen = Scenario.default()
    # a homogeneous effect: the marginal rate ratio equals the conditional one
    assert t["po_approach_vo_rate_ratio"] == pytest.approx(scen.approach.vo_unexcused_rate_ratio, rel=1e-12)
    assert t["intervention_hr"] == {k: v.hr for k, v in scen.interventions.items()}
    assert 0 < t["return_cif"]["3m"] < t["return_cif"]["6m"] < 1
    assert set(t["notes"]) >= {"po_approach_vo_rate_ratio", "intervention_hr"}


def test_truth_with_approach_switched_off():
    scen = Scenario.default()
    no_effect = with_approach(scen, vo_unexcused_rate_ratio=1.0, vo_sick_rate_ratio=1.0, vo_episode_rate_ratio=1.0,
                              po_true_rate_ratio=1.0)
    assert simulate(no_effect, seed=3).truth["po_approach_vo_rate_ratio"] == pytest.approx(1.0, abs=1e-12)
    # nobody adopting: no exposure, and the data do not depend on the effect the approach would have had
    none = simulate(with_approach(scen, design="none"), seed=3)
    assert none.schools["approach_start_year"].isna().all()
    assert none.truth["n_po_schools_adopting"] == 0 and none.truth["share_pupils_exposed"] == 0
    none_no_effect = simulate(with_approach(no_effect, design="none"), seed=3)
    for name in ("absence", "episodes", "interventions"):
        pd.testing.assert_frame_equal(none.tables[name], none_no_effect.tables[name])
    # the estimand is the effect the approach would have: defined from potential outcomes all the same
    assert none.truth["po_approach_vo_rate_ratio"] == pytest.approx(scen.approach.vo_unexcused_rate_ratio)


def test_truth_with_effect_modification_is_marginal():
    scen = with_approach(Scenario.default(), vo_unexcused_rate_ratio=0.8, modifier_disadvantaged=-0.5)
    t = simulate(scen, seed=4).truth
    # between the effect for the advantaged (0.8) and for the disadvantaged (0.8 * e^-0.5)
    assert 0.8 * np.exp(-0.5) < t["po_approach_vo_rate_ratio"] < 0.8
    assert t["po_approach_vo_rate_ratio"] > 0.8 * np.exp(-0.5) + 0.8 * (1 - np.exp(-0.5)) * 0.5  # mostly advantaged


@pytest.mark.parametrize("design", ["parallel", "stepped_wedge", "staggered", "observational"])
def test_adoption_designs(design):
    scen = with_population(with_approach(Scenario.default(), design=design, n_steps=4, pilot_schools=12,
                                         wave_size=4, share_treated=0.5, confounding=2.0),
                           n_regions=4, n_po_schools=200, n_vo_schools=24)
    c = simulate(scen, seed=7)
    po = c.schools[c.schools["level"] == "po"]
    years = po["approach_start_year"]
    if design == "parallel":
        assert (po.assign(t=years.notna()).groupby("region_id")["t"].mean() == 0.5).all()
        assert set(years.dropna()) == {2016}
    elif design == "stepped_wedge":
        assert years.notna().all()
        assert (years.value_counts().sort_index().to_numpy() == 50).all()
        assert sorted(years.unique()) == [2016, 2017, 2018, 2019]
    elif design == "staggered":
        counts = years.value_counts().sort_index()
        assert counts.iloc[0] == 12 and (counts.iloc[1:] == 4).all() and counts.sum() == 100
    else:
        # confounding by indication: adopting schools had more absence before the start
        a = c.absence[(c.absence["level"] == "po") & (c.absence["school_year"] < 2016)]
        rate = a.groupby("school_id")["sick_days"].sum() / a.groupby("school_id")["enrolled_days"].sum()
        adopters = po.set_index("school_id")["approach_start_year"].notna()
        assert rate[adopters[adopters].index].mean() > 1.1 * rate[adopters[~adopters].index].mean()


def test_observational_adoption_by_a_measured_characteristic():
    """adoption_driver='disadvantaged': adopters have more disadvantaged pupils, but not more absence
    than that explains (the school absence effect plays no part)."""
    scen = with_population(with_approach(Scenario.default(), design="observational", share_treated=0.5,
                                         confounding=2.0, adoption_driver="disadvantaged"),
                           n_regions=4, n_po_schools=200, n_vo_schools=24)
    c = simulate(scen, seed=7)
    po = c.schools[c.schools["level"] == "po"].set_index("school_id")
    adopters = po["approach_start_year"].notna()
    share = c.pupils.groupby("po_school_id")["disadvantaged"].mean().reindex(po.index)
    assert share[adopters].mean() > 2 * share[~adopters].mean()
    # the same school draws as by absence: only who adopts differs
    by_absence = simulate(with_approach(scen, adoption_driver="absence"), seed=7)
    pd.testing.assert_frame_equal(by_absence.pupils, c.pupils)
    assert not by_absence.schools["approach_start_year"].equals(c.schools["approach_start_year"])


def test_stratified_school_draws_keep_marginals():
    from verzuimmodel.simulate.population import _school_uniforms

    rng = np.random.default_rng(0)
    region = np.repeat(np.arange(200), 10)
    u = _school_uniforms("stratified", region, 1, rng)[0]
    # every region has exactly one school in each tenth of (0, 1): uniform marginal, balanced regions
    decile = np.floor(u * 10).astype(int)
    assert all(sorted(decile[region == r]) == list(range(10)) for r in range(200))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(st.floats(0.0, 400.0), min_size=3, max_size=3), st.lists(st.floats(0.2, 5.0), min_size=3, max_size=3),
       st.floats(0.3, 1.5), st.floats(0.0, 40.0), st.floats(1e-3, 0.5), st.floats(1e-3, 8.0))
def test_piecewise_weibull_inversion(breaks, hrs, shape, t0, lam, target):
    t = invert_piecewise_weibull(np.array([target]), np.array([lam]), shape, np.array([t0]),
                                 np.array([breaks]), np.array(hrs))[0]
    assert t >= t0

    def cumhaz(x):
        knots = np.sort(np.maximum(np.array(breaks), t0))
        order = np.argsort(np.maximum(np.array(breaks), t0), kind="stable")
        mult = np.cumprod(np.r_[1.0, np.array(hrs)[order]])
        edges = np.r_[t0, knots, np.inf]
        return sum(lam * mult[k] * max(min(x, edges[k + 1]) ** shape - edges[k] ** shape, 0.0)
                   for k in range(len(edges) - 1) if x > edges[k])

    assert cumhaz(t) == pytest.approx(target, rel=1e-7)
