"""Effect estimators of the PO approach: registry, analysis tables, and what each recovers."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import verzuimmodel as vm
from verzuimmodel import effects
from verzuimmodel.effects.data import vo_pupil_years, vo_pupils
from verzuimmodel.effects.estimators import did_rate_ratio, nb_cluster_cr3

REF = Path(__file__).resolve().parent / "reference"
FAST = ["vo_nb_glm", "vo_nb_glmm", "vo_nb_glmm_sick", "vo_did", "vo_ipw", "po_recorded_naive", "vo_episode_rate"]


def scenario(design="staggered", regions=1, **approach):
    s = vm.Scenario.default()
    return dataclasses.replace(
        s, population=dataclasses.replace(s.population, n_regions=regions, n_po_schools=40 * regions,
                                          n_vo_schools=8 * regions),
        approach=dataclasses.replace(s.approach, design=design, **approach))


@pytest.fixture(scope="module")
def cohort():
    return vm.simulate(scenario(regions=2), seed=1)


def test_registry():
    names = effects.available()
    assert set(FAST) <= set(names)
    # vo_did (group-time ATTs) targets the effect among the pupils of adopting schools, not the ATE
    assert effects.get("vo_did").estimand == "po_approach_vo_rate_ratio_exposed"
    assert effects.get("po_recorded_naive").estimand == "po_approach_po_true_rate_ratio"
    with pytest.raises(ValueError, match="unknown estimator 'nope'"):
        effects.estimate(None, "nope")


# (key, population, scope, contrast) each estimator declares
DECLARED = {
    "vo_nb_glm": ("po_approach_vo_rate_ratio", "ATE", "conditional", "ITT"),
    "vo_nb_glmm": ("po_approach_vo_rate_ratio", "ATE", "conditional", "ITT"),
    "vo_ipw": ("po_approach_vo_rate_ratio", "ATE", "marginal", "ITT"),
    "vo_did": ("po_approach_vo_rate_ratio_exposed", "ATT", "marginal", "ITT"),
    "vo_nb_glmm_sick": ("po_approach_vo_sick_rate_ratio", "ATE", "conditional", "ITT"),
    "vo_episode_rate": ("po_approach_vo_episode_rate_ratio", "ATE", "conditional", "ITT"),
    "po_recorded_naive": ("po_approach_po_true_rate_ratio", "ATE", "conditional", "ITT"),
    "mazl_itt_sick": ("mazl_itt_sick_rate_ratio", "ATE", "marginal", "ITT"),
    **{f"{prefix}_{kind}": (f"intervention_hr.{kind}", "ATE", "conditional", "per_protocol")
       for prefix in ("tv_cox", "naive_cox") for kind in ("kernpartnerteam", "verzuimcoach", "mazl")},
    **{f"tte_{short}_{kind}": (f"intervention_risk.{kind}.{key}", "ATE", "marginal", "per_protocol")
       for short, key in (("rd3m", "rd_3m"), ("rr3m", "rr_3m"), ("rmst", "rmst_out_diff"), ("hr", "hr_after_treat_day"))
       for kind in ("kernpartnerteam", "verzuimcoach", "mazl")},
    **{f"msm_hr_{kind}": (f"intervention_risk.{kind}.hr_after_treat_day", "ATE", "marginal", "per_protocol")
       for kind in ("kernpartnerteam", "verzuimcoach", "mazl")},
    **{f"gcomp_rd3m_{kind}": (f"intervention_risk.{kind}.rd_3m", "ATE", "marginal", "per_protocol")
       for kind in ("kernpartnerteam", "verzuimcoach", "mazl")},
    "cluster_means": ("effect", "ATE", "marginal", "ITT"),
    "gee": ("effect", "ATE", "marginal", "ITT"),
    "lmm": ("effect", "ATE", "conditional", "ITT"),
    "gee_logit": ("marginal_odds_ratio", "ATE", "marginal", "ITT"),
    "gee_poisson": ("rate_ratio", "ATE", "marginal", "ITT"),
}
WORLD_OF = {"mazl_itt_sick": "mazl_consult"}
"""Estimators whose truth exists only in a world that simulates what they need (default: ``default``)."""


def _builtin():
    return [n for n in effects.available() if effects.get(n).fn.__module__.startswith("verzuimmodel.")]


def test_every_builtin_estimator_declares_its_target():
    assert sorted(_builtin()) == sorted(DECLARED)
    for name, (key, population, scope, contrast) in DECLARED.items():
        e = effects.get(name)
        t = e.target
        assert isinstance(t, effects.Target) and (t.key, t.population, t.scope, t.contrast) == (
            key, population, scope, contrast), name
        assert e.estimand == key and t.description, name
        assert t.kind == f"{population}, {scope}, {contrast}"


def test_every_target_key_is_in_the_truth():
    """Each built-in estimator's key is in the truth of a small simulated cohort of its world (cohort
    estimators) or of a trial with the outcome it analyses (trial estimators), as a number of its scale."""
    from verzuimmodel.evaluate.design import true_value
    from verzuimmodel.evaluate.trials import TRIAL_ESTIMATOR_OUTCOMES

    def small(world):
        s = vm.Scenario.load(world)
        return dataclasses.replace(s, population=dataclasses.replace(s.population, n_regions=1, n_po_schools=12,
                                                                     n_vo_schools=3))

    truths = {w: vm.simulate(small(w), seed=3).truth for w in {"default", *WORLD_OF.values()}}
    for name in _builtin():
        e = effects.get(name)
        if e.data == "cohort":
            truth = truths[WORLD_OF.get(name, "default")]
        else:
            outcome = TRIAL_ESTIMATOR_OUTCOMES[name][0]
            truth = vm.evaluate.ParallelTrial(outcome=outcome).true_values()
        value = true_value(truth, e.estimand)        # KeyError: the key is not in the truth
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (name, value)
        assert value > 0 if e.scale == "log" else np.isfinite(value), (name, value)
    # the ATT and the ATE are different entries
    assert "po_approach_vo_rate_ratio_exposed" in truths["default"] and "po_approach_vo_rate_ratio" in truths["default"]


def test_target_validates_its_kind():
    assert effects.Target("k").kind == "ATE, marginal, ITT"
    for kwargs, message in [(dict(population="ATC"), "estimand population: got 'ATC'; expected one of ATE, ATT"),
                            (dict(scope="partial"), "estimand scope"),
                            (dict(contrast="as_treated"), "estimand contrast: .*ITT, per_protocol"),
                            (dict(key=""), "estimand key")]:
        with pytest.raises(ValueError, match=message):
            effects.Target(**{"key": "k", **kwargs})


def test_register_with_a_target_or_a_key_and_kind():
    from verzuimmodel.effects import registry

    def fn(data):
        return effects.Estimate(0.0, 1.0)

    try:
        effects.register("tmp_att", estimand="some_key", population="ATT", scope="conditional",
                         contrast="per_protocol", estimand_description="words", data="trial")(fn)
        t = effects.get("tmp_att").target
        assert (t.key, t.population, t.scope, t.contrast, t.description) == (
            "some_key", "ATT", "conditional", "per_protocol", "words")
        target = effects.Target("other_key", population="ATT")
        effects.register("tmp_target", estimand=target, data="trial")(fn)
        assert effects.get("tmp_target").target is target and effects.get("tmp_target").estimand == "other_key"
        with pytest.raises(ValueError, match="population given beside a Target"):
            effects.register("tmp_bad", estimand=target, population="ATE")
        with pytest.raises(ValueError, match="estimand scope"):
            effects.register("tmp_bad", estimand="k", scope="both")
        assert "tmp_bad" not in effects.available()
        # the one-row table is unchanged: the kind lives on the estimator, not in the row
        row = effects.estimate(None, "tmp_att")
        assert list(row.columns) == effects.ESTIMATE_COLUMNS and row["estimand"].iloc[0] == "some_key"
    finally:
        for name in ("tmp_att", "tmp_target", "tmp_bad"):
            registry._REGISTRY.pop(name, None)


@pytest.mark.parametrize("name", FAST)
def test_one_row_tidy(cohort, name):
    row = effects.estimate(cohort, name)
    assert list(row.columns) == effects.ESTIMATE_COLUMNS and len(row) == 1
    r = row.iloc[0]
    assert r["estimator"] == name and r["scale"] == "log"
    assert r["conf_low"] < r["estimate"] < r["conf_high"]
    assert r["std_error"] > 0 and r["n_clusters"] > 10
    # clustered sandwich SEs: t with (clusters - 1) df; the GLMM (likelihood) and the DiD (bootstrap): normal
    q = 1.959963984540054 if name in ("vo_nb_glmm", "vo_nb_glmm_sick", "vo_did") else stats.t.ppf(0.975, r["n_clusters"] - 1)
    np.testing.assert_allclose(np.log(r["conf_high"]) - np.log(r["estimate"]), q * r["std_error"])


def test_nb_cluster_cr3_matches_r():
    """glm.nb + clubSandwich::vcovCR(type = "CR3") on tests/reference/glmm/nb_crossed.csv (see
    tests/reference/robust/cr3.R)."""
    ref = pd.read_csv(REF / "robust" / "cr3_reference.csv").set_index("term")
    d = pd.read_csv(REF / "glmm" / "nb_crossed.csv")
    X = pd.concat([pd.Series(1.0, index=d.index, name="(Intercept)"), d[["x1", "x2", "treat"]].astype(float)], axis=1)
    params, se, kappa = nb_cluster_cr3(d["y"].to_numpy(), X, np.log(d["days"].to_numpy()), d["po"].to_numpy())
    np.testing.assert_allclose(params[ref.index], ref["estimate"], rtol=1e-5)
    np.testing.assert_allclose(se[ref.index], ref["se_cr3"], rtol=1e-5)
    assert 1 / kappa == pytest.approx(ref["theta"].iloc[0], rel=1e-5)
    assert (se[ref.index] > ref["se_cr0"]).all()          # the correction inflates the plain sandwich


def test_vo_pupils_exposure_definition(cohort):
    d = vo_pupils(cohort)
    p = cohort.pupils.set_index("pupil_id").loc[d["pupil_id"]]
    start = cohort.schools.set_index("school_id")["approach_start_year"].reindex(p["po_school_id"]).to_numpy(
        dtype=float, na_value=np.inf)
    np.testing.assert_array_equal(d["exposed"].to_numpy(), (start <= p["cohort"].to_numpy() + 4).astype(int))
    a = cohort.absence[cohort.absence["level"] == "vo"]
    hours = a.groupby("pupil_id")["unexcused_hours"].sum()
    np.testing.assert_allclose(d.set_index("pupil_id")["unexcused_hours"], hours.reindex(d["pupil_id"]))


def test_vo_pupil_years_add_up_to_vo_pupils(cohort):
    years = vo_pupil_years(cohort)
    pupils = vo_pupils(cohort).set_index("pupil_id")
    totals = years.groupby("pupil_id")[["days", "unexcused_hours", "sick_days", "sick_reports"]].sum()
    # pupils with VO days outside episodes in some year; their totals are the sum of those years
    pd.testing.assert_frame_equal(totals, pupils.loc[totals.index, totals.columns], check_dtype=False)
    assert (years["days"] > 0).all() and years["grade"].between(1, 6).all()
    same = ["po_school_id", "vo_school_id", "cohort", "exposed", "female", "vmbo"]
    pd.testing.assert_frame_equal(years.groupby("pupil_id")[same].first(), pupils.loc[totals.index, same],
                                  check_dtype=False)


def test_did_on_known_cells():
    """Controls flat at 1; the 2018 group drops from 1 to 0.8 from its adoption: RR = 0.8 exactly."""
    rows = []
    for school in range(20):
        adopt = 2018.0 if school < 10 else np.nan
        for t in range(2015, 2021):
            rate = 0.8 if adopt == 2018.0 and t >= 2018 else 1.0
            rows.append({"po_school_id": school, "t": t, "rate": rate * (1 + 0.1 * (school % 3)),
                         "adopt_year": adopt, "n": 10})
    cells = pd.DataFrame(rows)
    # school level differences (the 1 + 0.1 * (school % 3) factor) are removed by the differencing
    log_rr, boot = did_rate_ratio(cells, n_boot=50, seed=1)
    expected = np.mean([0.8 * (1 + 0.1 * (s % 3)) for s in range(10)])
    expected_att = np.mean([-0.2 * (1 + 0.1 * (s % 3)) for s in range(10)])
    assert log_rr == pytest.approx(np.log(expected / (expected - expected_att)))
    assert np.all(np.isfinite(boot))


def test_recorded_po_absence_is_biased_upwards():
    """The approach truly lowers PO absence (truth 0.95) but raises what is recorded."""
    c = vm.simulate(scenario("parallel", regions=3), seed=2)
    r = effects.estimate(c, "po_recorded_naive").iloc[0]
    assert c.truth["po_approach_po_true_rate_ratio"] < 1 < r["conf_low"]


@pytest.mark.slow
@pytest.mark.parametrize("design, names", [
    ("parallel", ["vo_nb_glm", "vo_nb_glmm", "vo_ipw", "vo_episode_rate"]),
    ("staggered", ["vo_nb_glm", "vo_did"]),
    ("observational", ["vo_did"]),
])
def test_recovers_truth_under_its_design(design, names):
    """20 cohorts of 3 regions: bias of the log rate ratio within 3 Monte Carlo SE."""
    scen = scenario(design, regions=3, share_treated=0.5)
    est = {n: [] for n in names}
    truth = {}
    for seed in range(20):
        c = vm.simulate(scen, seed=seed)
        for n in names:
            row = effects.estimate(c, n).iloc[0]
            est[n].append(np.log(row["estimate"]))
            truth[n] = np.log(c.truth[row["estimand"]])
    for n in names:
        e = np.array(est[n])
        mcse = e.std(ddof=1) / np.sqrt(len(e))
        assert abs(e.mean() - truth[n]) < 3 * mcse, (n, e.mean(), truth[n], mcse)


@pytest.mark.slow
def test_confounded_adoption_biases_the_regression():
    """Observational adoption (schools with more absence adopt): the plain regression is biased upwards."""
    scen = scenario("observational", regions=3, share_treated=0.5, confounding=1.5)
    e = [np.log(effects.estimate(vm.simulate(scen, seed=s), "vo_nb_glm").iloc[0]["estimate"]) for s in range(10)]
    assert np.mean(e) - np.log(0.85) > 3 * np.std(e, ddof=1) / np.sqrt(len(e))


def test_in_episode_estimators_are_time_to_return():
    c = vm.simulate(vm.Scenario.default(), seed=1)
    e = vm.survival.time_to_return(c).effects.set_index(["method", "intervention"])
    for kind in ("kernpartnerteam", "verzuimcoach", "mazl"):
        for method, prefix in (("time_varying", "tv_cox"), ("naive", "naive_cox")):
            row = effects.estimate(c, f"{prefix}_{kind}").iloc[0]
            assert row["estimand"] == f"intervention_hr.{kind}"
            assert row["estimate"] == pytest.approx(e.loc[(method, kind), "estimate"], rel=1e-12)
            assert row["std_error"] == pytest.approx(e.loc[(method, kind), "std_error"], rel=1e-12)
