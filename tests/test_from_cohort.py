"""``Scenario.from_cohort``: a scenario fitted to an observed cohort by the method of moments.

The recovery tolerances are ``|bias| + 4 SD`` of each parameter's estimation error over 40 replicate
cohorts of the known scenario (``tests/from_cohort_cases.py``, seeds 1-40), rounded up to two
significant digits, as measured by ``benchmarks/from_cohort_recovery.py`` (its output is the source of
the numbers below; the comment beside each gives the measured bias and SD). Errors are on the scale
``PARAMETERS`` gives: ``abs`` (estimate - truth) or ``log`` (log ratio); ``exact`` parameters must
be equal. The test fits a cohort drawn with another seed (``KNOWN_SEED``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import verzuimmodel as vm
from from_cohort_cases import KNOWN_SEED, PARAMETERS, changed_effects, error, known_scenario, round_trip, value

EXAMPLE = Path(__file__).resolve().parent.parent / "data" / "example"

TOLERANCES = {
    "population.sbo_share": 0.017,  # bias -0.017, SD 0: the simulator makes round(0.1 * 24) = 2 SBO schools
    "population.n_po_pupils": 0.0092,  # bias +3.9e-05, SD 0.0023
    "population.move_rate": 0.13,  # bias +0.0071, SD 0.03
    "population.p_female": 0.032,  # bias -0.0011, SD 0.0075
    "population.p_disadvantaged": 0.095,  # bias +0.0027, SD 0.023
    "population.p_chronic_illness": 0.025,  # bias +0.00023, SD 0.0061
    "population.p_special_needs": 0.013,  # bias -0.0001, SD 0.003
    "population.vmbo_share": 0.017,  # bias +0.00075, SD 0.0039
    "population.havo_share": 0.018,  # bias -7.6e-05, SD 0.0043
    "population.feeder_concentration": 1.1,  # bias +0.0089, SD 0.26
    "population.po_switch_rate": 0.19,  # bias -0.025, SD 0.041
    "variation.tracking_rho": 0.38,  # bias +0.022, SD 0.087
    "absence.sick_reports.po_rate": 0.25,  # bias +0.021, SD 0.056
    "absence.sick_reports.vo_rate": 0.29,  # bias +0.0035, SD 0.07
    "absence.sick_reports.grade_slope": 0.02,  # bias -0.0005, SD 0.0046
    "absence.sick_reports.loading": 0.14,  # bias -0.012, SD 0.031
    "absence.sick_reports.dispersion": 0.77,  # bias +0.0095, SD 0.19
    "absence.late_arrivals.po_rate": 0.27,  # bias +0.017, SD 0.061
    "absence.late_arrivals.vo_rate": 0.28,  # bias +0.0032, SD 0.067
    "absence.late_arrivals.grade_slope": 0.038,  # bias -0.0016, SD 0.0089
    "absence.late_arrivals.loading": 0.15,  # bias -0.011, SD 0.034
    "absence.late_arrivals.dispersion": 0.19,  # bias +0.0037, SD 0.045
    "absence.luxury_days.po_rate": 0.3,  # bias +0.0021, SD 0.073
    "absence.luxury_days.vo_rate": 0.35,  # bias -0.00059, SD 0.087
    "absence.luxury_days.grade_slope": 0.046,  # bias -0.0016, SD 0.011
    "absence.luxury_days.loading": 0.53,  # bias -0.037, SD 0.12
    "absence.luxury_days.dispersion": 0.35,  # bias +0.015, SD 0.082
    "absence.unexcused_hours.po_rate": 0.38,  # bias +0.035, SD 0.085
    "absence.unexcused_hours.vo_rate": 0.39,  # bias +0.01, SD 0.092
    "absence.unexcused_hours.grade_slope": 0.047,  # bias -0.004, SD 0.011
    "absence.unexcused_hours.loading": 0.24,  # bias -0.018, SD 0.053
    "absence.unexcused_hours.dispersion": 0.21,  # bias +0.016, SD 0.046
    "absence.short_spell_mean": 0.011,  # bias -0.00041, SD 0.0026
    "absence.long_spell_mean": 0.02,  # bias +0.0014, SD 0.0045
    "absence.long_spell_logit": 0.084,  # bias +0.0064, SD 0.019
    "absence.long_spell_chronic": 0.16,  # bias -0.0031, SD 0.037
    "episodes.onset_po": 0.82,  # bias -0.015, SD 0.2
    "episodes.onset_vo": 0.58,  # bias -0.016, SD 0.14
    "episodes.grade_slope_vo": 0.31,  # bias -0.039, SD 0.068
    "episodes.p5a_logit": 0.73,  # bias -0.023, SD 0.18
    "episodes.p_av": 0.15,  # bias +0.0014, SD 0.035
    "episodes.shape": 0.26,  # bias +0.0053, SD 0.062
    "episodes.ret_scale": 1.6,  # bias +0.012, SD 0.39
    "episodes.non_scale": 1.7,  # bias -0.077, SD 0.4
    "episodes.own_school_share": 0.16,  # bias +0.0069, SD 0.037
    "episodes.nonreturn_shares.0": 0.21,  # bias +0.0022, SD 0.05
    "episodes.nonreturn_shares.1": 0.28,  # bias -0.0024, SD 0.069
    "episodes.nonreturn_shares.2": 0.3,  # bias +0.00017, SD 0.074
    "episodes.av_return_mult": 0.91,  # bias +0.0014, SD 0.23
    "episodes.fiveA_return_mult": 1.2,  # bias +0.04, SD 0.28
    "interventions.kernpartnerteam.uptake": 0.22,  # bias -0.015, SD 0.05
    "interventions.kernpartnerteam.delay_mean": 0.27,  # bias -0.0075, SD 0.065
    "interventions.verzuimcoach.uptake": 0.27,  # bias -0.00073, SD 0.067
    "interventions.verzuimcoach.delay_mean": 0.62,  # bias -0.021, SD 0.15
    "interventions.mazl.uptake": 0.11,  # bias +0.0029, SD 0.025
    "interventions.mazl.delay_mean": 0.68,  # bias -0.002, SD 0.17
    "approach.share_treated": 0.0,  # exact: 15 of 24 schools
}

ROUND_TRIP_TOLERANCES = {
    # log ratios, simulated from the fitted scenario over the original (from_cohort_cases.round_trip);
    # pupils and schools of one region (and within 10%), absence means over four regions
    "pupils.first": 0.0098,  # bias +0.00058, SD 0.0023
    "po_schools.first": 0.0,
    "vo_schools.first": 0.0,
    "pupils_per_bo_school.first": 0.033,  # bias -0.017, SD 0.0039
    "sick_days.po": 0.11,  # bias +0.043, SD 0.016
    "sick_reports.po": 0.099,  # bias +0.04, SD 0.015
    "late_arrivals.po": 0.11,  # bias +0.036, SD 0.017
    "luxury_days.po": 0.08,  # bias +0.017, SD 0.016
    "unexcused_hours.po": 0.11,  # bias +0.033, SD 0.018
    "sick_days.vo": 0.12,  # bias +0.019, SD 0.024
    "sick_reports.vo": 0.12,  # bias +0.021, SD 0.024
    "late_arrivals.vo": 0.15,  # bias +0.03, SD 0.028
    "luxury_days.vo": 0.12,  # bias +0.018, SD 0.025
    "unexcused_hours.vo": 0.15,  # bias +0.031, SD 0.029
}


@pytest.fixture(scope="module")
def known():
    truth = known_scenario()
    cohort = vm.simulate(truth, seed=KNOWN_SEED)
    return truth, cohort, vm.Scenario.from_cohort(cohort)


def test_every_estimated_parameter_has_a_tolerance():
    assert {p for p, kind in PARAMETERS.items() if kind != "exact"} == set(TOLERANCES)


def test_recovers_the_known_scenario(known):
    truth, _, fitted = known
    assert fitted.name == "own data"
    wrong = {}
    for path, kind in PARAMETERS.items():
        err = error(fitted, truth, path)
        if abs(err) > (0.0 if kind == "exact" else TOLERANCES[path]) + 1e-12:
            wrong[path] = (value(fitted, path), value(truth, path))
    assert wrong == {}
    # a fit that returned the defaults would fail on many of them
    default = vm.Scenario.default()
    caught = [p for p, kind in PARAMETERS.items() if value(default, p) is not None
              and abs(error(default, truth, p)) > (0.0 if kind == "exact" else TOLERANCES[p])]
    assert len(caught) >= 15, caught


def test_round_trip_regions_are_like_the_original(known):
    _, cohort, fitted = known
    trip = round_trip(fitted, cohort)
    assert set(trip) == set(ROUND_TRIP_TOLERANCES)
    assert abs(trip["pupils.first"]) <= 0.10 and abs(trip["po_schools.first"]) <= 0.10
    wrong = {k: round(v, 4) for k, v in trip.items() if abs(v) > ROUND_TRIP_TOLERANCES[k] + 1e-12}
    assert wrong == {}


def test_true_effects_and_what_the_tables_cannot_identify_stay_at_the_defaults():
    """The design check asks what the design could detect, not what the data show: a cohort drawn with
    other true effects still gets the default's (and its recording, calendar and consults)."""
    truth = changed_effects(dataclasses.replace(known_scenario(), population=dataclasses.replace(
        known_scenario().population, n_po_schools=10, n_vo_schools=3, n_po_pupils=2000)))
    fitted = vm.Scenario.from_cohort(vm.simulate(truth, seed=3))
    default = vm.Scenario.default()
    effects = ("vo_unexcused_rate_ratio", "vo_sick_rate_ratio", "vo_episode_rate_ratio", "po_true_rate_ratio",
               "modifier_disadvantaged", "exposed_from_grade", "fidelity_mean")
    assert {k: getattr(fitted.approach, k) for k in effects} == {k: getattr(default.approach, k) for k in effects}
    assert truth.approach.vo_unexcused_rate_ratio != default.approach.vo_unexcused_rate_ratio
    for name, iv in default.interventions.items():
        assert fitted.interventions[name].hr == iv.hr
        assert (fitted.interventions[name].hr_disadvantaged, fitted.interventions[name].effect_halflife_days) == \
               (iv.hr_disadvantaged, iv.effect_halflife_days)
    assert truth.interventions["kernpartnerteam"].hr != default.interventions["kernpartnerteam"].hr
    assert (fitted.recording, fitted.calendar, fitted.consult, fitted.estimands) == \
           (default.recording, default.calendar, default.consult, default.estimands)
    assert (fitted.variation.sd_po_school, fitted.variation.sd_vo_school) == \
           (default.variation.sd_po_school, default.variation.sd_vo_school)
    assert fitted.episodes.recurrence_rr == default.episodes.recurrence_rr
    # the fitted parts did move (the same fit, so the assertions above are not vacuous)
    assert fitted.population.n_po_schools == 10 and fitted.absence != default.absence


def test_the_fit_is_deterministic_and_round_trips_through_toml(known, tmp_path):
    _, cohort, fitted = known
    assert vm.Scenario.from_cohort(cohort) == fitted
    fitted.to_toml(tmp_path / "own.toml")
    assert vm.Scenario.from_toml(tmp_path / "own.toml") == fitted


def test_the_example_export():
    """data/example: a region of 14 PO and 4 VO schools, 6 cohorts, a staggered roll-out (5 then 2)."""
    example = vm.read_cohort(EXAMPLE)
    fitted = vm.Scenario.from_cohort(example, name="example")
    p, ap = fitted.population, fitted.approach
    assert (p.n_regions, p.n_po_schools, p.n_vo_schools, p.first_cohort, p.n_cohorts) == (1, 14, 4, 2010, 6)
    assert p.sbo_share == 1 / 14 and p.n_po_pupils == round(8 * len(example.pupils) / 6)
    assert (ap.design, ap.start_year, ap.pilot_schools, ap.wave_size, ap.share_treated) == \
           ("staggered", 2016, 5, 2, 0.5)
    region = vm.simulate(fitted, seed=1)
    assert abs(len(region.pupils) / len(example.pupils) - 1) <= 0.10
    assert (region.schools["level"] == "po").sum() == 14 and (region.schools["level"] == "vo").sum() == 4


def test_without_episodes_or_absence_the_defaults_are_kept(known):
    _, cohort, _ = known
    from verzuimmodel.schema import empty_table

    default = vm.Scenario.default()
    no_episodes = dataclasses.replace(cohort, episodes=empty_table("episodes"),
                                      interventions=empty_table("interventions"), truth={}, scenario=None)
    fitted = vm.Scenario.from_cohort(no_episodes)
    assert fitted.episodes == default.episodes and fitted.interventions == default.interventions
    assert fitted.population.n_po_schools == 24                      # the rest is still fitted
    no_absence = dataclasses.replace(no_episodes, absence=empty_table("absence"))
    fitted = vm.Scenario.from_cohort(no_absence)
    assert fitted.absence == default.absence and fitted.variation == default.variation
    assert fitted.population.n_vo_schools == 6
