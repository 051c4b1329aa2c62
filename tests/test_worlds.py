"""The named worlds: each loads, each ingredient does what its equations say, and each truth agrees
with a computation that does not share the simulator's code path (quadrature of the hazards, or
the same draw with the effect switched off). Tolerances are Monte Carlo standard errors."""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

import verzuimmodel as vm
from verzuimmodel.simulate.episodes import draw_episodes
from verzuimmodel.simulate.population import draw_pupils, draw_schools, exposure

WORLDS = ["confounded_referral", "heterogeneous", "trend", "open_region", "mazl_consult", "null", "recorded_severity"]


def _episodes(scen, seed):
    """The simulator's episode draw with its per-episode hazards (internal, for brute-force checks)."""
    rng = np.random.default_rng(seed)
    schools = draw_schools(scen, rng)
    pupils = draw_pupils(scen, schools, rng)
    return draw_episodes(scen, schools, pupils, exposure(scen, schools, pupils).dose, rng)


@pytest.mark.parametrize("name", WORLDS)
def test_world_loads_round_trips_and_differs_from_default(name, tmp_path):
    scen = vm.Scenario.load(name)
    assert scen.name == name
    scen.to_toml(tmp_path / "w.toml")
    assert vm.Scenario.from_toml(tmp_path / "w.toml") == scen
    assert scen != dataclasses.replace(vm.Scenario.default(), name=name)


def test_default_has_every_new_ingredient_off():
    from verzuimmodel.simulate.scenario import Calendar, Consult, Severity

    s = vm.Scenario.default()
    assert s.episodes.severity == Severity() and s.calendar == Calendar() and s.consult == Consult()
    assert s.episodes.severity.sd == 0 and s.episodes.severity.loss_rate == 0
    assert s.calendar.unexcused_trend == 0 and s.calendar.shock_year == 0 and s.calendar.vo_detection == 1
    assert s.consult.uptake == 0 and s.population.mode == "cohorts" and s.population.po_switch_rate == 0
    assert s.approach.fidelity_mean == 1
    assert all(iv.uptake_severity == 0 and iv.hr_disadvantaged == 0 and iv.effect_halflife_days == 0
               for iv in s.interventions.values())


@pytest.mark.parametrize("key,value,message", [
    ("episodes.severity.sd", -0.5, "episodes.severity.sd"),
    ("episodes.severity.loss_rate", -1.0, "episodes.severity.loss_rate"),
    ("consult.uptake", 1.5, "consult.uptake"),
    ("consult.school_share", -0.1, "consult.school_share"),
    ("consult.sick_rate_ratio", 1.3, "consult.sick_rate_ratio"),
    ("approach.fidelity_mean", 0.0, "approach.fidelity_mean"),
    ("population.po_switch_rate", 2.0, "population.po_switch_rate"),
    ("population.vo_years", 8, "population.vo_years"),
    ("population.mode", "closed", "population.mode"),
    ("calendar.vo_detection", 1.2, "calendar.vo_detection"),
    ("calendar.shock_unexcused_rr", -1.0, "calendar.shock_unexcused_rr"),
    ("calendar.warp", 1.0, "calendar.warp"),
    ("interventions.verzuimcoach.effect_halflife_days", -3.0, "interventions.verzuimcoach.effect_halflife_days"),
    ("estimands.treat_day", -1, "estimands.treat_day"),
    ("consult.offer_confounding", float("nan"), "consult.offer_confounding"),
    ("interventions.kernpartnerteam.review_days", 2.5, "interventions.kernpartnerteam.review_days"),
    ("episodes.severity.recorded", "yes", "episodes.severity.recorded"),
])
def test_bad_world_values_name_the_key(key, value, message):
    data = vm.Scenario.load("heterogeneous").to_dict()
    node = data
    *path, last = key.split(".")
    for part in path:
        node = node.setdefault(part, {})
    node[last] = value
    with pytest.raises(ValueError) as err:
        vm.Scenario.from_dict(data)
    text = str(err.value)
    assert f"'{message}'" in text and "\n" not in text


def test_unknown_world_name_lists_the_worlds():
    with pytest.raises(ValueError, match="confounded_referral.*open_region"):
        vm.Scenario.load("no_such_world")


# -- truths against brute force ---------------------------------------------------------------------

def _placement_probability(scen, hz, j, arm, grid):
    """P(in a suitable place by each grid time) per episode, by quadrature of the hazards.

    ``h_ret(t) = lam * g * t^(g-1) * prod_k HR_k^[t >= s_k]``, ``h_non(t) = lam_non * g * t^(g-1)``,
    from ``t0`` on; an exemption (share ``nonreturn_shares[2]``) is not a place.
    """
    from verzuimmodel.simulate.episodes import FAR

    g = scen.episodes.shape
    starts = hz["starts"].copy()
    starts[:, j] = float(scen.estimands.treat_day) if arm else FAR
    ivs = list(scen.interventions.values())
    hr = np.empty_like(starts)
    for k, iv in enumerate(ivs):
        decay = 2.0 ** (-np.minimum(starts[:, k] - iv.delay_mean, 1e4) / iv.effect_halflife_days) \
            if iv.effect_halflife_days > 0 else 1.0
        hr[:, k] = np.exp(hz["log_hr"][:, k] * decay)
    t = grid[None, :]
    mult = np.prod(np.where(t[:, :, None] >= starts[:, None, :], hr[:, None, :], 1.0), axis=2)
    base = g * t ** (g - 1)
    h_ret = hz["lam_ret"][:, None] * base * mult
    h_non = hz["lam_non"][:, None] * base
    live = t >= hz["t0"][:, None]
    dt = np.diff(grid, prepend=0.0)[None, :]
    H = np.cumsum((h_ret + h_non) * live * dt, axis=1)
    S = np.exp(-H)
    p_place = np.cumsum((h_ret + (1 - scen.episodes.nonreturn_shares[2]) * h_non) * S * live * dt, axis=1)
    return p_place


@pytest.mark.parametrize("name,seed", [("confounded_referral", 3), ("heterogeneous", 4), ("null", 5), ("trend", 6),
                                       ("open_region", 7), ("mazl_consult", 8), ("default", 9)])
def test_target_trial_truth_matches_quadrature_of_the_hazards(name, seed):
    scen = vm.Scenario.load(name)
    e = _episodes(scen, seed)
    keep = e.type < 2
    hz = {k: v[keep] for k, v in e.hazard.items()}
    time = e.potential["time_to_place"][keep]
    grid = np.arange(0.125, 365.0, 0.25)                  # midpoints of quarter days
    horizons = {"3m": 91.0, "6m": 182.0, "12m": 365.0}
    for j, iv in enumerate(scen.interventions):
        for arm in (0, 1):
            p = _placement_probability(scen, hz, j, arm, grid)
            for label, h in horizons.items():
                expected = p[:, np.searchsorted(grid, h) - 1]
                realised = time[:, j, arm] <= h
                se = np.sqrt(np.sum(expected * (1 - expected))) / len(expected)
                assert abs(realised.mean() - expected.mean()) < 4 * se + 2e-3, (iv, arm, label)
            # restricted mean time out of school: t0 + integral of P(not placed) from t0 to 365
            rmst_expected = np.mean(hz["t0"] + np.sum((1 - p) * (grid[None, :] >= hz["t0"][:, None]) * 0.25, axis=1))
            realised = np.minimum(time[:, j, arm], 365.0)
            assert abs(realised.mean() - rmst_expected) < 4 * realised.std() / np.sqrt(len(realised)) + 0.5
    # and the cohort's truth is the realised mean over the observed episodes
    c = vm.simulate(scen, seed=seed)
    risk = c.truth["intervention_risk"]["kernpartnerteam"]
    assert risk["rd_3m"] == pytest.approx(np.mean(time[:, 0, 1] <= 91) - np.mean(time[:, 0, 0] <= 91))
    assert risk["n_episodes"] == int(keep.sum())


def test_severity_slows_return_and_drives_referral():
    scen = vm.Scenario.load("confounded_referral")
    e = _episodes(scen, 5)
    sev = e.hazard["severity"][e.type < 2]
    assert abs(sev.mean()) < 4 / np.sqrt(len(sev)) and abs(sev.std() - 1) < 0.1
    treated = np.zeros(e.n, dtype=bool)
    treated[e.iv_episode[e.iv_type == 0]] = True
    # referred episodes are more severe (uptake logit +1 per SD, and they last long enough to be referred)
    assert sev[treated[e.type < 2]].mean() - sev[~treated[e.type < 2]].mean() > 0.4
    # severity lowers the return hazard: log lam_ret falls by sd per SD of severity
    slope = np.polyfit(sev, np.log(e.hazard["lam_ret"][e.type < 2]), 1)[0]
    assert slope == pytest.approx(-scen.episodes.severity.sd, abs=0.15)
    # loss to follow-up: more severe episodes are censored before the study end more often
    c = vm.simulate(scen, seed=5)
    ep = c.episodes.merge(c.pupils[["pupil_id", "followup_end"]], on="pupil_id")
    lost = (ep["outcome"] == "censored") & (ep["end_date"] < pd.Timestamp(scen.population.followup_end))
    assert lost.sum() > 10


def test_time_varying_cox_is_confounded_by_severity():
    """Under confounded referral the time-varying Cox HR of the kernpartnerteam is biased beyond
    5 Monte Carlo SE (30 cohorts; measured mean log HR -0.17 against the true log 1.5 = 0.405)."""
    scen = vm.Scenario.load("confounded_referral")
    logs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(30):
            r = vm.effects.estimate(vm.simulate(scen, seed=seed), "tv_cox_kernpartnerteam")
            logs.append(np.log(r["estimate"].iloc[0]))
    logs = np.array(logs)
    mcse = logs.std(ddof=1) / np.sqrt(len(logs))
    bias = logs.mean() - np.log(scen.interventions["kernpartnerteam"].hr)
    assert bias < -5 * mcse


def test_did_is_biased_when_adopters_trend_differently():
    """Under ``trend`` (absence rising 3% a year faster at adopting schools) vo_did, scored by
    ``diagnose`` against the ATT it declares, is biased upwards beyond 3 Monte Carlo SE over 60
    regions (the paper's 500 regions: mean rate ratio 0.96 against 0.85)."""
    d = vm.Design(vm.Scenario.load("trend"), estimators=["vo_did"], name="trend")
    r = vm.diagnose(d, n_sims=60, seed=3).tidy().iloc[0]
    assert r["estimand"] == "po_approach_vo_rate_ratio_exposed" and r["n_failed"] == 0
    assert r["bias"] > 3 * r["bias_mcse"]


def test_absorbed_nb_regression_fails_when_adopters_trend_differently():
    """Where ``vo_nb_glm`` (VO school absorbed) should fail: under ``trend`` it has no pre-period to
    see that adopting schools' absence rises faster, and, scored against the ATE it declares, is
    biased upwards beyond 3 Monte Carlo SE and covers below 0.95 (the paper's 500 regions: mean
    rate ratio 1.01 against 0.85, coverage 0.44)."""
    d = vm.Design(vm.Scenario.load("trend"), estimators=["vo_nb_glm"], name="trend")
    r = vm.diagnose(d, n_sims=40, seed=3).tidy().iloc[0]
    assert r["estimand"] == "po_approach_vo_rate_ratio" and r["population"] == "ATE" and r["n_failed"] == 0
    assert r["bias"] > 3 * r["bias_mcse"]
    assert r["coverage"] < 0.95 - 3 * r["coverage_mcse"]


def _sum_true_vo_hours(c, pupils=None):
    a = c.absence[c.absence["level"] == "vo"]
    if pupils is not None:
        a = a[a["pupil_id"].isin(pupils)]
    return a.groupby("pupil_id")["unexcused_hours_true"].sum()


@pytest.mark.parametrize("name", ["heterogeneous", "trend", "open_region", "null"])
def test_vo_rate_ratio_truths_match_the_same_draw_without_the_effect(name):
    """ATE, ATT and per-protocol truths against brute force: the same draw (same random numbers) with
    the effect switched off, and with every school adopting in time. The episode effect is set to 1
    so that the episode draws, and so every later random number, stay aligned. Changes of school and
    partial fidelity are switched on, so ATE, ATT and per protocol differ even without modifiers."""
    base = vm.Scenario.load(name)
    ap = dataclasses.replace(base.approach, vo_episode_rate_ratio=1.0, fidelity_mean=0.7)
    scen = dataclasses.replace(base, approach=ap,
                               population=dataclasses.replace(base.population, po_switch_rate=0.05))
    off = dataclasses.replace(scen, approach=dataclasses.replace(ap, vo_unexcused_rate_ratio=1.0,
                                                                 modifier_disadvantaged=0.0))
    everywhere = dataclasses.replace(scen, approach=dataclasses.replace(ap, design="parallel", share_treated=1.0,
                                                                        start_year=1990))
    everywhere_off = dataclasses.replace(everywhere, approach=dataclasses.replace(
        everywhere.approach, vo_unexcused_rate_ratio=1.0, modifier_disadvantaged=0.0))
    for seed in (1, 2):
        c, c0 = vm.simulate(scen, seed=seed), vm.simulate(off, seed=seed)
        assert c.pupils.equals(c0.pupils) and c.episodes.equals(c0.episodes)
        assigned = c.pupils.loc[c.pupils["po_school_id"].map(
            c.schools.set_index("school_id")["approach_start_year"]) <= c.pupils["cohort"] + 4, "pupil_id"]
        y1, y0 = _sum_true_vo_hours(c, assigned), _sum_true_vo_hours(c0, assigned)
        _check_ratio(y1, y0, c.truth["po_approach_vo_rate_ratio_exposed"])
        ca, ca0 = vm.simulate(everywhere, seed=seed), vm.simulate(everywhere_off, seed=seed)
        _check_ratio(_sum_true_vo_hours(ca), _sum_true_vo_hours(ca0), c.truth["po_approach_vo_rate_ratio"])
        if base.approach.vo_unexcused_rate_ratio < 1:
            assert c.truth["po_approach_vo_rate_ratio"] > c.truth["po_approach_vo_rate_ratio_per_protocol"]


def _check_ratio(y1: pd.Series, y0: pd.Series, truth: float) -> None:
    """log(sum y1 / sum y0) within 4 SE of log(truth), SE by the delta method over pupils."""
    y1, y0 = y1.align(y0, fill_value=0)
    r = y1.sum() / y0.sum()
    se = np.sqrt(np.sum((y1 - r * y0) ** 2)) / y1.sum()
    assert abs(np.log(r) - np.log(truth)) < 4 * se + 0.01, (r, truth, se)


def test_heterogeneous_world_separates_ate_and_att():
    c = vm.simulate(vm.Scenario.load("heterogeneous"), seed=1)
    ate, att = np.log(c.truth["po_approach_vo_rate_ratio"]), np.log(c.truth["po_approach_vo_rate_ratio_exposed"])
    assert att < ate - 0.03          # adopters have more disadvantaged pupils, who benefit more


def test_verzuimcoach_effect_fades_with_a_later_start():
    from verzuimmodel.simulate.episodes import hr_at

    scen = vm.Scenario.load("heterogeneous")
    log_hr = np.zeros((3, 3)) + np.log([iv.hr for iv in scen.interventions.values()])
    starts = np.array([[10.0, 10.0, 10.0], [70.0, 70.0, 70.0], [190.0, 190.0, 190.0]])
    hr = hr_at(scen, log_hr, starts)[:, 1]
    assert hr[1] == pytest.approx(1.25) and hr[2] == pytest.approx(1.25 ** 0.25) and hr[0] > hr[1]


def test_mazl_itt_truth_matches_offering_everywhere_vs_nowhere():
    """Brute force: all schools offering M@ZL vs none (same seeds otherwise); the next-year sick
    reports per day among first-signal pupil-years, ratio against 1 - uptake * (1 - rr)."""
    from verzuimmodel.effects.consult import mazl_signal_years

    base = vm.Scenario.load("mazl_consult")
    rates = {}
    for share in (1.0, 0.0):
        scen = dataclasses.replace(base, consult=dataclasses.replace(base.consult, school_share=share))
        ys = []
        for seed in range(3):
            c = vm.simulate(scen, seed=seed)
            # true next-year sick days: the recorded ones of PO rows are thinned by detection
            true = c.absence.assign(sick_days=c.absence["sick_days_true"])
            d = mazl_signal_years(dataclasses.replace(c, absence=true))
            ys.append(d)
        d = pd.concat(ys)
        rates[share] = (d["next_sick_days"].sum() / d["next_days"].sum(),
                        d["next_sick_days"].std() / d["next_days"].mean() / np.sqrt(len(d)))
    ratio = rates[1.0][0] / rates[0.0][0]
    se = np.hypot(rates[1.0][1] / rates[1.0][0], rates[0.0][1] / rates[0.0][0])
    truth = 1 - base.consult.uptake * (1 - base.consult.sick_rate_ratio)
    assert abs(np.log(ratio) - np.log(truth)) < 4 * se
    assert abs(np.log(ratio) - np.log(base.consult.sick_rate_ratio)) > 4 * se      # the ITT, not the per-protocol


def test_mazl_estimator_recovers_the_itt_effect():
    """``mazl_itt_sick`` over 20 cohorts of the mazl_consult world: mean log RR within 3 MCSE of the truth."""
    scen = vm.Scenario.load("mazl_consult")
    est = np.array([np.log(vm.effects.estimate(vm.simulate(scen, seed=s), "mazl_itt_sick")["estimate"].iloc[0])
                    for s in range(20)])
    truth = np.log(1 - scen.consult.uptake * (1 - scen.consult.sick_rate_ratio))
    assert abs(est.mean() - truth) < 3 * est.std(ddof=1) / np.sqrt(len(est))


def test_mazl_estimator_is_biased_when_schools_choose_to_offer_by_their_absence():
    """Where ``mazl_itt_sick`` should fail: schools with more absence offer M@ZL more often
    (``consult.offer_confounding`` 1.0); over 20 cohorts its mean log RR is off by more than 5 MCSE,
    towards no effect (the offering schools' pupils have more sick absence to start with)."""
    base = vm.Scenario.load("mazl_consult")
    scen = dataclasses.replace(base, consult=dataclasses.replace(base.consult, offer_confounding=1.0))
    cohorts = [vm.simulate(scen, seed=s) for s in range(20)]
    offered = pd.concat([c.schools.assign(seed=i) for i, c in enumerate(cohorts)])
    assert 0.35 < offered["mazl_offered"].mean() < 0.65                      # the share is kept on average
    est = np.array([np.log(vm.effects.estimate(c, "mazl_itt_sick")["estimate"].iloc[0]) for c in cohorts])
    truth = np.log(1 - scen.consult.uptake * (1 - scen.consult.sick_rate_ratio))
    assert est.mean() - truth > 5 * est.std(ddof=1) / np.sqrt(len(est))


def test_mazl_signal_share_is_near_the_trial_schools():
    """The criterion is met in 10-20% of VO pupil-years (Vanneste et al.: 13% of vmbo pupils per
    12-week window; a school year holds about three such windows, so the yearly share is an upper
    bound and the window share a lower one)."""
    c = vm.simulate(vm.Scenario.load("mazl_consult"), seed=1)
    vo = c.absence[c.absence["level"] == "vo"]
    assert 0.10 < vo["mazl_signal"].mean() < 0.30
    assert vo["mazl_consult"].sum() > 0 and not c.absence.loc[c.absence["mazl_consult"], "mazl_signal"].eq(False).any()


def test_trend_world_moves_recorded_absence_over_calendar_time():
    c = vm.simulate(vm.Scenario.load("trend"), seed=1)
    vo = c.absence[c.absence["level"] == "vo"]
    by_year = vo.groupby("school_year")["unexcused_hours_true"].sum() / vo.groupby("school_year")["enrolled_days"].sum()
    assert by_year.loc[2019] < 0.8 * by_year.loc[[2018, 2020]].mean()      # the closure year
    ratio = vo.groupby("school_year")["unexcused_hours"].sum() / vo.groupby("school_year")["unexcused_hours_true"].sum()
    assert ratio.loc[2016] == pytest.approx(0.8, abs=0.02) and ratio.iloc[-1] > ratio.iloc[0]


def test_school_changes_and_fidelity_dilute_exposure():
    base = vm.Scenario.load("heterogeneous")
    scen = dataclasses.replace(base, population=dataclasses.replace(base.population, po_switch_rate=0.1),
                               approach=dataclasses.replace(base.approach, fidelity_mean=0.6))
    c = vm.simulate(scen, seed=2)
    po = c.absence[c.absence["level"] == "po"]
    schools_per_pupil = po.groupby("pupil_id")["school_id"].nunique()
    assert 0.25 < (schools_per_pupil > 1).mean() < 0.55          # 1 - 0.9^5 = 0.41 change school
    group8 = po[po["grade"] == 8].set_index("pupil_id")["school_id"]       # the pupils table records this school
    assert (c.pupils.set_index("pupil_id").loc[group8.index, "po_school_id"] == group8).all()
    assert c.truth["po_approach_vo_rate_ratio"] > c.truth["po_approach_vo_rate_ratio_per_protocol"]


def test_open_region_has_a_stationary_stock_and_reports_turnover():
    """Quarterly LRV stock over eight observed years (2017Q4-2025Q3): over ten regions (seeds) the
    mean relative slope has a 95% CI that includes 0 in the open region and excludes it in the
    closed cohort panel; the monitor's turnover equals the share of the quarter's end stock not in
    its start stock, recomputed here from the episodes as sets."""
    from verzuimmodel.monitor import monitored_episodes

    def lrv(cohort):
        q = vm.monitor.quarterly(cohort, by=None, start="2017-10-01", end="2025-09-30", min_count=0)
        return q[q["case_type"] == "LRV"].reset_index(drop=True)

    def slope_ci(scen):
        slopes = []
        for seed in range(10):
            y = lrv(vm.simulate(scen, seed=seed))["stock_end"].to_numpy(float)
            assert len(y) == 32
            slopes.append(np.polyfit(np.arange(len(y)), y, 1)[0] / y.mean())
        m, se = np.mean(slopes), np.std(slopes, ddof=1) / np.sqrt(len(slopes))
        return m - 1.96 * se, m + 1.96 * se

    scen = vm.Scenario.load("open_region")
    lo, hi = slope_ci(scen)
    assert lo < 0 < hi
    closed = dataclasses.replace(scen, population=dataclasses.replace(scen.population, mode="cohorts",
                                                                       first_cohort=2014, n_cohorts=8))
    lo_c, hi_c = slope_ci(closed)
    assert not lo_c < 0 < hi_c

    c = vm.simulate(scen, seed=1)
    q = lrv(c)
    ep = monitored_episodes(c, by=None)
    ep = ep[ep["case_type"] == "LRV"]
    b = ep["b"].fillna(pd.Timestamp("2262-01-01"))
    for i in (3, 17, 30):
        q0 = pd.Period(q.loc[i, "quarter"]).start_time
        q1 = pd.Period(q.loc[i, "quarter"]).end_time.normalize() + pd.Timedelta(days=1)
        at_end = set(ep.loc[(ep["a"] < q1) & (b >= q1), "episode_id"])
        at_start = set(ep.loc[(ep["a"] < q0) & (b >= q0), "episode_id"])
        assert len(at_end) == q.loc[i, "stock_end"] and len(at_start) == q.loc[i, "stock_start"]
        assert q.loc[i, "turnover"] == pytest.approx(len(at_end - at_start) / len(at_end))
    assert q["turnover"].between(0.05, 0.95).all()


def test_every_world_key_is_documented_in_the_data_readme():
    from pathlib import Path

    from verzuimmodel.simulate.scenario import Calendar, Consult, Estimands, Severity

    text = (Path(__file__).resolve().parent.parent / "data" / "README.md").read_text(encoding="utf-8")
    keys = [f"episodes.severity.{f.name}" for f in dataclasses.fields(Severity)]
    keys += [f"{section}.{f.name}" for section, cls in (("calendar", Calendar), ("consult", Consult),
                                                         ("estimands", Estimands)) for f in dataclasses.fields(cls)]
    keys += ["population.mode", "population.vo_years", "population.po_switch_rate", "approach.fidelity_mean",
             "approach.fidelity_concentration", "approach.modifier_disadvantaged"]
    keys += [f"interventions.<type>.{k}" for k in ("uptake_severity", "timing_severity", "hr_disadvantaged",
                                                   "hr_chronic", "effect_halflife_days")]
    missing = [k for k in keys if f"`{k}`" not in text]
    assert not missing
    for world in WORLDS:
        assert f"`{world}`" in text


# -- over many replicates (slow: python -m pytest -m slow tests/test_worlds.py) -------------------------

@pytest.mark.slow
def test_every_valid_test_rejects_five_percent_under_the_null_world():
    """400 null regions: every estimator but the naive foil rejects within 3 Monte Carlo SE of 0.05."""
    estimators = ["tv_cox_kernpartnerteam", "tv_cox_verzuimcoach", "tv_cox_mazl", "vo_nb_glm", "vo_ipw", "vo_did",
                  "vo_episode_rate", "po_recorded_naive"]
    d = vm.Design(vm.Scenario.load("null"), estimators=estimators, name="null")
    t = vm.diagnose(d, n_sims=400, seed=11, backend="processes").tidy().set_index("estimator")
    for name in estimators:
        r = t.loc[name]
        assert r["n_failed"] == 0 and r["true_value"] == 0.0
        assert abs(r["power"] - 0.05) < 3 * np.sqrt(0.05 * 0.95 / r["n_sims"]), (name, r["power"])


@pytest.mark.slow
def test_did_covers_the_att_under_heterogeneous_effects():
    """1,000 heterogeneous regions: vo_did, scored against the ATT it declares, covers within 3 MCSE
    of 0.95 and is unbiased within 3 MCSE; the ATT differs from the ATE by more than 5 MCSE."""
    d = vm.Design(vm.Scenario.load("heterogeneous"), estimators=["vo_did"], name="heterogeneous")
    diag = vm.diagnose(d, n_sims=1000, seed=12, backend="processes")
    r = diag.tidy().iloc[0]
    assert r["estimand"] == "po_approach_vo_rate_ratio_exposed" and r["population"] == "ATT"
    assert abs(r["coverage"] - 0.95) < 3 * np.sqrt(0.95 * 0.05 / r["n_sims"])
    assert abs(r["bias"]) < 3 * r["bias_mcse"]
    forced = vm.Design(vm.Scenario.load("heterogeneous"), estimators=["vo_did"], estimand="po_approach_vo_rate_ratio")
    ate = vm.diagnose(forced, n_sims=1000, seed=12, backend="processes").tidy().iloc[0]
    assert ate["bias"] < -5 * ate["bias_mcse"]        # scored against the ATE a correct ATT estimator looks biased


def test_recorded_severity_world_records_the_severity_and_meets_on_review_days():
    """``episodes.severity.recorded`` writes the severity the referral depends on; with
    ``review_days = 28`` the kernpartnerteam starts only on days 28, 56, 84, ... of an episode."""
    c = vm.simulate(vm.Scenario.load("recorded_severity"), seed=2)
    sev = c.episodes["severity_score"]
    assert sev.notna().all() and abs(sev.mean()) < 0.15 and 0.85 < sev.std() < 1.15
    iv = c.interventions
    day = (iv["start_date"].to_numpy() - c.episodes.set_index("episode_id")["start_date"]
           .reindex(iv["episode_id"]).to_numpy()) / np.timedelta64(1, "D")
    kpt = iv["intervention_type"].astype(str).to_numpy() == "kernpartnerteam"
    assert kpt.sum() > 50 and np.all(day[kpt] % 28 == 0) and not np.all(day[~kpt] % 28 == 0)
    # the referred episodes are the severe ones (uptake_severity = 1)
    referred = c.episodes["episode_id"].isin(iv.loc[kpt, "episode_id"])
    assert sev[referred].mean() > sev[~referred & c.episodes["episode_type"].isin(["LRV", "AV"])].mean() + 0.3
    from verzuimmodel.validation import validate_cohort
    validate_cohort({t: getattr(c, t) for t in ("schools", "pupils", "absence", "episodes", "interventions")})
    data = vm.Scenario.load("recorded_severity").to_dict()
    data["interventions"]["kernpartnerteam"]["review_days"] = -7
    with pytest.raises(ValueError, match="interventions.kernpartnerteam.review_days"):
        vm.Scenario.from_dict(data)
