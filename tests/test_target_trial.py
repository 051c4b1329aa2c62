"""Target-trial emulation (clone-censor-weight): against a hand-built R version, and against the
simulator's potential-outcome truth where it should hold and where it should not."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import verzuimmodel as vm
from verzuimmodel.survival.target_trial import TrialData, _clone, _clone_weights, _estimate, _hazards

REF = Path(__file__).parent / "reference" / "target_trial"


def _reference_data():
    d = pd.read_csv(REF / "trial.csv")
    p = json.loads((REF / "params.json").read_text())
    covs = tuple(p["covariates"])
    start = np.where(d["start"] < 0, np.inf, d["start"]).astype(float)
    td = TrialData(entry=d["entry"].to_numpy(float), exit=d["exit"].to_numpy(float), status=d["status"].to_numpy(),
                   start=start, z=d[list(covs)].to_numpy(float), covariates=covs, pupil=d["pupil"].to_numpy(),
                   school=np.zeros(len(d)))
    return td, p


def test_risks_weights_and_restricted_means_match_the_hand_built_r_version():
    """R: glm(binomial) per-interval weight models, the clones' weights, survfit's weighted
    Aalen-Johansen (tests/reference/target_trial/target_trial.R)."""
    td, p = _reference_data()
    ref = json.loads((REF / "target_trial_reference.json").read_text())
    grid = np.asarray(p["grid"])
    hz = np.asarray(p["horizons"], dtype=float)
    est, diag, curves, (log_hr, hr_se) = _estimate(td, grid, np.ones(len(td.exit)), p["treat_day"],
                                                   p["grace_days"], hz, p["tau"], True, None, with_diagnostics=True)
    for arm in ("start", "never"):
        got = [est[f"risk_{arm}_{round(h / 30.4)}m"] for h in hz]
        np.testing.assert_allclose(got, ref[f"risk_{arm}"], rtol=1e-7, atol=1e-9)
        assert est[f"rmst_out_{arm}"] == pytest.approx(ref[f"rmst_{arm}"][0], rel=1e-8)
    # the hazard ratio after the treatment day: weighted coxph, robust SE clustered by episode
    assert log_hr == pytest.approx(ref["log_hr"][0], abs=1e-7)
    assert hr_se == pytest.approx(ref["log_hr_robust_se"][0], rel=1e-6)
    # the weights at each clone's exit (every row of both weight models enters them)
    K = len(grid) - 1
    t_max = int(max(hz.max(), p["tau"]))
    days = np.arange(t_max + 1)
    k_day = np.clip(np.searchsorted(grid, days - 1, side="right") - 1, 0, K - 1)
    started = np.isfinite(td.start) & (td.start < td.exit)
    f = np.ones(len(td.exit))
    kd = int(np.searchsorted(grid, p["treat_day"], side="right") - 1)
    hA = _hazards(td, grid, f, td.start, np.minimum(td.start + 1, td.exit), started, "start", own=kd)
    hC = _hazards(td, grid, f, td.exit, td.exit + 1, td.status == 0, "loss")
    sa = np.cumprod(np.c_[np.ones(len(f)), 1 - hA], axis=1)
    sc = np.cumprod(np.c_[np.ones(len(f)), 1 - hC], axis=1)
    for arm in ("start", "never"):
        x, _ = _clone(td, arm, p["treat_day"], p["grace_days"])
        W, col = _clone_weights(arm, sa, sc, hA, kd, k_day, p["treat_day"] + p["grace_days"])
        w = W[np.arange(len(x)), col[np.minimum(x, t_max).astype(int)]]
        np.testing.assert_allclose(w, ref[f"w_{arm}_at_exit"], rtol=1e-6)


@pytest.fixture(scope="module")
def region():
    return vm.simulate(vm.Scenario.load("recorded_severity"), seed=4)


def test_result_tables_weights_and_a_reproducible_bootstrap(region):
    r = vm.survival.target_trial(region, "kernpartnerteam", n_boot=40, seed=3)
    again = vm.survival.target_trial(region, "kernpartnerteam", n_boot=40, seed=3)
    pd.testing.assert_frame_equal(r.contrasts, again.contrasts)
    c = r.contrasts.set_index("term")
    rk = r.risks.set_index(["arm", "horizon"])["estimate"]
    assert c.loc["rd_3m", "estimate"] == pytest.approx(rk[("start", 91.0)] - rk[("never", 91.0)])
    assert c.loc["rr_6m", "estimate"] == pytest.approx(rk[("start", 182.0)] / rk[("never", 182.0)])
    assert (c.loc[["rd_3m", "rd_6m", "rmst_out_diff"], "std_error"] > 0).all()
    assert (c["conf_low"] <= c["estimate"]).all() and (c["estimate"] <= c["conf_high"]).all()
    # the risk curves are cumulative incidences: non-decreasing, in [0, 1]
    for _, cur in r.curves.groupby("arm"):
        assert np.all(np.diff(cur["cif"]) >= -1e-12) and cur["cif"].between(0, 1).all()
    w = r.weights.set_index("arm")
    assert (w["min"] >= 1 - 1e-9).all()                            # inverse probabilities
    assert (w["ess"] <= w["n_clones"]).all() and (w["ess"] > 0.2 * w["n_clones"]).all()
    assert w.loc["start", "n_followed"] < w.loc["never", "n_clones"]
    assert "severity_score" in r.covariates                       # the recorded confounder is used
    t = r.tidy()
    assert {"rd_3m", "log_rr_3m", "log_hr_after_treat_day"} <= set(t["term"])
    row = t.set_index("term").loc["log_rr_3m"]
    assert row["exp_estimate"] == pytest.approx(np.exp(row["estimate"]))
    truncated = vm.survival.target_trial(region, "kernpartnerteam", n_boot=0, truncate=0.9)
    assert truncated.weights["max"].max() < r.weights["max"].max()
    assert (truncated.weights["n_truncated"] > 0).all()


def test_without_the_severity_the_weights_cannot_see_the_confounder(region):
    """Dropping the recorded severity from the weight models moves the estimate (it was needed)."""
    full = vm.survival.target_trial(region, "kernpartnerteam", n_boot=0)
    blind = vm.survival.target_trial(region, "kernpartnerteam", n_boot=0,
                                     covariates=["female", "disadvantaged", "chronic_illness", "special_needs", "av"])
    assert "severity_score" not in blind.covariates
    a = full.contrasts.set_index("term")["estimate"]
    b = blind.contrasts.set_index("term")["estimate"]
    assert abs(a["rd_6m"] - b["rd_6m"]) > 0.01


@pytest.mark.parametrize("kwargs, message", [
    ({"treat_day": 0}, "treat_day"),
    ({"grace_days": -1}, "grace_days"),
    ({"horizons": (30, 91)}, "horizons"),
    ({"truncate": 1.5}, "truncate"),
    ({"cluster": "class"}, "cluster"),
    ({"treat_day": 57}, "never followed"),
    ({"grace_days": 5000, "horizons": (6000,)}, "longer than the follow-up"),
    ({"covariates": ["shoe_size"]}, "shoe_size"),
])
def test_bad_arguments_get_one_line_errors(region, kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        vm.survival.target_trial(region, "kernpartnerteam", n_boot=0, **kwargs)
    assert "\n" not in str(err.value)


def test_no_treated_episode_is_a_clear_error():
    import dataclasses
    c = vm.simulate(vm.Scenario.load("recorded_severity"), seed=1)
    none = dataclasses.replace(c, interventions=c.interventions.iloc[0:0])
    with pytest.raises(vm.errors.StrategyNotFollowedError, match="never followed"):
        vm.survival.target_trial(none, "kernpartnerteam", n_boot=0)
    with pytest.raises(ValueError, match="intervention"):
        vm.survival.target_trial(c, "huiswerkklas", n_boot=0)


def test_marginal_structural_cox_matches_the_hand_built_r_version():
    """R: glm numerator and denominator models, stabilised weights per episode-day, coxph with the
    weights and the robust variance clustered by pupil (tests/reference/target_trial/target_trial.R)."""
    from verzuimmodel.survival.msm import _fit

    td, p = _reference_data()
    ref = json.loads((REF / "target_trial_reference.json").read_text())
    m, diag = _fit(td, np.asarray(p["msm_grid"]), p["msm_horizon"], True, None, 0.95)
    assert m.params_["a"] == pytest.approx(ref["msm_log_hr"][0], abs=1e-7)
    assert m.standard_errors_["a"] == pytest.approx(ref["msm_robust_se"][0], rel=1e-6)
    assert diag["mean"].iloc[0] == pytest.approx(ref["msm_sw_mean"][0], rel=1e-9)


@pytest.mark.slow
def test_recovers_the_strategy_effects_where_referral_is_measured():
    """recorded_severity (200 regions): referral and loss to follow-up depend on the recorded
    severity. The target-trial risk difference at 3 months and HR after day 56, and the marginal
    structural model's HR, are unbiased (|bias| < 3 MCSE) and cover within 3 MCSE of 0.95; the
    time-varying Cox model of the report, which does not use the severity, is biased beyond 5 MCSE."""
    est = ["tte_rd3m_kernpartnerteam", "tte_hr_kernpartnerteam", "msm_hr_kernpartnerteam", "tv_cox_kernpartnerteam"]
    d = vm.diagnose(vm.Design(vm.Scenario.load("recorded_severity"), estimators=est), n_sims=200, seed=11,
                    backend="processes")
    t = d.tidy().set_index("estimator")
    for name in est[:3]:
        r = t.loc[name]
        assert r["n_failed"] == 0, name
        assert abs(r["bias"]) < 3 * r["bias_mcse"], (name, r["bias"], r["bias_mcse"])
        assert abs(r["coverage"] - 0.95) < 3 * np.sqrt(0.95 * 0.05 / r["n_sims"]), (name, r["coverage"])
    cox = t.loc["tv_cox_kernpartnerteam"]
    assert cox["bias"] < -5 * cox["bias_mcse"]


@pytest.mark.slow
def test_fails_where_the_severity_is_not_recorded_and_the_evalue_says_how_strong_it_had_to_be():
    """The recorded_severity region with the severity *not* recorded (200 regions): referral,
    loss to follow-up and return depend on a confounder no model sees. Outside the estimators'
    assumptions, the target trial, the marginal structural model and g-computation are biased
    beyond 5 MCSE and under-cover (the report's caveat and E-values are there for this world).
    The E-value that moves the mean HR estimate back to the truth is well above 1: a confounder of
    that strength with both referral and return, which this world has, explains the bias."""
    import dataclasses

    s = vm.Scenario.load("recorded_severity")
    sev = dataclasses.replace(s.episodes.severity, recorded=False)
    s = dataclasses.replace(s, name="unrecorded_severity", episodes=dataclasses.replace(s.episodes, severity=sev))
    est = ["tte_rd3m_kernpartnerteam", "tte_hr_kernpartnerteam", "msm_hr_kernpartnerteam",
           "gcomp_rd3m_kernpartnerteam"]
    d = vm.diagnose(vm.Design(s, estimators=est), n_sims=200, seed=11, backend="processes")
    t = d.tidy().set_index("estimator")
    for name in est:
        r = t.loc[name]
        assert r["n_failed"] == 0, name
        # the severe are referred and return late: the intervention looks worse than it is
        assert r["bias"] < -5 * r["bias_mcse"], (name, r["bias"], r["bias_mcse"])
        assert r["coverage"] < 0.95 - 3 * np.sqrt(0.95 * 0.05 / r["n_sims"]), (name, r["coverage"])
    hr = t.loc["tte_hr_kernpartnerteam"]
    needed = vm.effects.evalue(np.exp(hr["mean_estimate"]), measure="HR", outcome_common=True,
                               true=np.exp(hr["true_value"]))
    assert 1.3 < float(needed.point) < 3.0, float(needed.point)


def test_g_formula_matches_the_hand_built_r_version():
    """R: coxph for a place and for exemption with the intervention from its start, basehaz
    increments, each episode's cumulative incidence under both strategies, averaged."""
    from verzuimmodel.survival.gformula import _estimate as g_estimate
    from verzuimmodel.survival.gformula import _rows as g_rows

    td, p = _reference_data()
    ref = json.loads((REF / "target_trial_reference.json").read_text())
    hz = np.asarray(p["horizons"], dtype=float)
    est, models = g_estimate(td, g_rows(td), np.ones(len(td.exit)), p["treat_day"], hz, p["tau"],
                             int(max(hz.max(), p["tau"])))
    for arm in ("start", "never"):
        got = [est[f"risk_{arm}_{round(h / 30.4)}m"] for h in hz]
        np.testing.assert_allclose(got, ref[f"g_risk_{arm}"], rtol=1e-7)
        assert est[f"rmst_out_{arm}"] == pytest.approx(ref[f"g_rmst_{arm}"][0], rel=1e-8)
    assert set(models["cause"]) == {1, 2} and "a" in set(models["term"])


def test_g_formula_standardises_over_a_bootstrap_sample_and_refuses_what_it_cannot_estimate(region):
    import dataclasses

    r = vm.survival.g_formula(region, "kernpartnerteam", n_boot=30, seed=2)
    c = r.contrasts.set_index("term")
    assert (c.loc[["rd_3m", "rd_6m", "rmst_out_diff"], "std_error"] > 0).all()
    assert c.loc["rd_3m", "conf_low"] < c.loc["rd_3m", "estimate"] < c.loc["rd_3m", "conf_high"]
    assert "log_rr_3m" in set(r.tidy()["term"])
    none = dataclasses.replace(region, interventions=region.interventions.iloc[0:0])
    with pytest.raises(ValueError, match="no episode received kernpartnerteam"):
        vm.survival.g_formula(none, "kernpartnerteam", n_boot=0)
    with pytest.raises(ValueError, match="horizons"):
        vm.survival.g_formula(region, "kernpartnerteam", horizons=(30,), n_boot=0)


def test_extreme_weights_are_a_named_warning():
    """Weights that explode: one or a few starters carry the start arm after its window, or the
    effective sample size collapses. The estimate is returned with ExtremeWeightsWarning."""
    from verzuimmodel.errors import ExtremeWeightsWarning

    c = vm.simulate(vm.Scenario.load("confounded_referral"), seed=1)
    with pytest.warns(ExtremeWeightsWarning, match="only 1 episode\\(s\\) started mazl in the start window"):
        vm.survival.target_trial(c, "mazl", treat_day=56, n_boot=0)
    with pytest.warns(ExtremeWeightsWarning, match="the weights of arm 'start' are extreme: effective sample size"):
        r = vm.survival.target_trial(c, "mazl", treat_day=28, grace_days=27, n_boot=0)
    w = r.weights.set_index("arm")
    assert w.loc["start", "ess"] < 0.05 * w.loc["start", "n_clones"]
    import warnings as _w
    with _w.catch_warnings():
        _w.simplefilter("error", ExtremeWeightsWarning)        # a healthy trial does not warn
        vm.survival.target_trial(c, "kernpartnerteam", treat_day=28, grace_days=27, n_boot=0)


def test_marginal_structural_cox_warns_with_fewer_than_10_treated():
    import dataclasses

    from verzuimmodel.errors import ExtremeWeightsWarning

    c = vm.simulate(vm.Scenario.load("recorded_severity"), seed=1)
    iv = c.interventions
    few = iv[(iv["intervention_type"] != "kernpartnerteam") | (iv.groupby("intervention_type", observed=True).cumcount() < 5)]
    with pytest.warns(ExtremeWeightsWarning, match="marginal_structural_cox: only 5 episode\\(s\\) received"):
        vm.survival.marginal_structural_cox(dataclasses.replace(c, interventions=few.reset_index(drop=True)),
                                            "kernpartnerteam")


def _without_severity(td):
    """The reference episodes without the continuous covariate: few covariate patterns."""
    import dataclasses

    keep = [i for i, c in enumerate(td.covariates) if c != "severity_score"]
    return dataclasses.replace(td, z=td.z[:, keep], covariates=tuple(td.covariates[i] for i in keep))


def test_reweighted_cox_refits_equal_coxph_on_the_rows():
    """The bootstrap's Cox refits (rows merged into cells, compiled Newton steps) give CoxPH's
    coefficients and baseline hazard increments to 1e-8, with unit weights and with bootstrap
    frequencies (a 0 leaves the episode's rows out, as if dropped, Efron's tie counts included)."""
    from verzuimmodel.survival.cox import CoxPH
    from verzuimmodel.survival.gformula import _rows as g_rows
    from verzuimmodel.survival.reweighted_cox import ReweightedCox

    td, _ = _reference_data()
    for data in (td, _without_severity(td)):
        rows = g_rows(data)
        covs = list(data.covariates) + ["a"]
        rng = np.random.default_rng(5)
        for cause in (1, 2):
            ev = (rows["cause"] == cause).to_numpy()
            model = ReweightedCox(rows[covs].to_numpy(float), rows["start"], rows["stop"], ev)
            assert model.n_cells < len(rows) or data is td         # rows without severity share cells
            for f in (np.ones(len(data.exit)), rng.poisson(1.0, len(data.exit)).astype(float)):
                w = f[rows["episode"].to_numpy()]
                use = rows.assign(w=w, ev=ev.astype(int))[w > 0]
                m = CoxPH().fit(use, duration="stop", event="ev", entry="start", covariates=covs, weights="w",
                                robust=False)
                fit = model.fit(w)
                assert fit.converged
                np.testing.assert_allclose(fit.beta, m.params_[covs].to_numpy(), rtol=0, atol=1e-8)
                bh = m.baseline_cumulative_hazard_
                inc = pd.Series(fit.increments, index=fit.times)
                np.testing.assert_allclose(inc.loc[bh["time"].to_numpy()], bh["hazard"], rtol=1e-8)
                assert (inc.drop(bh["time"].to_numpy()) == 0).all()   # event times without a weighted event


def test_g_formula_bootstrap_refits_equal_the_coxph_estimate():
    """A replicate through the fast path (ReweightedCox, standardisation over covariate patterns
    weighted by the frequencies) equals the row-level path (CoxPH on the drawn rows, every
    episode's curve) to 1e-8, with a continuous covariate (a pattern per episode) and without."""
    from verzuimmodel.survival.gformula import _estimate as g_estimate
    from verzuimmodel.survival.gformula import _Refit
    from verzuimmodel.survival.gformula import _rows as g_rows

    td, p = _reference_data()
    hz = np.asarray(p["horizons"], dtype=float)
    t_max = int(max(hz.max(), p["tau"]))
    rng = np.random.default_rng(7)
    for data in (td, _without_severity(td)):
        rows = g_rows(data)
        refit = _Refit(data, rows)
        for f in (np.ones(len(data.exit)), rng.poisson(1.0, len(data.exit)).astype(float)):
            slow, _ = g_estimate(data, rows, f, p["treat_day"], hz, p["tau"], t_max)
            fast = refit.estimate(f, p["treat_day"], hz, p["tau"], t_max)
            pd.testing.assert_index_equal(fast.index, slow.index)
            np.testing.assert_allclose(fast.to_numpy(), slow.to_numpy(), rtol=1e-8, atol=1e-10)


def test_weighted_aalen_johansen_sums_only_the_clones_at_risk():
    """Weights of 1e15 on clones that all leave by day 20 (a start arm's weights for a pattern that
    almost never starts on the day) must not disturb the risk sets after they leave: a running sum
    of entries minus exits lost every digit of the small ones. Against the day-by-day sums."""
    from verzuimmodel.survival.weighted_incidence import weighted_aj

    rng = np.random.default_rng(0)
    n, t_max = 400, 100
    pattern = rng.integers(0, 3, n)
    x = np.where(pattern == 1, rng.integers(1, 20, n), rng.integers(1, 150, n)).astype(float)
    st = rng.integers(0, 3, n)
    f = rng.integers(1, 3, n).astype(float)
    entry = np.where(rng.random(n) < 0.3, 10.0, 0.0)
    col = np.r_[0, np.repeat([0, 1, 2], [30, 30, 40])]
    W = np.array([[1.0, 2.0, 1.0], [1e15, 1e15, 1e15], [0.5, 3.0, 2.0]])
    got = weighted_aj(entry, x, st, W, col, pattern, f)
    surv, ref = 1.0, np.zeros(t_max + 1)
    for t in range(1, t_max + 1):
        w = W[pattern, col[t]] * f
        at_risk = (entry < t) & (x >= t)
        Y = w[at_risk].sum()
        ends = at_risk & (x == t)
        d_all, d1 = w[ends & (st > 0)].sum(), w[ends & (st == 1)].sum()
        ref[t] = ref[t - 1] + (surv * d1 / Y if Y > 0 else 0.0)
        surv *= 1 - (d_all / Y if Y > 0 else 0.0)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)
    assert np.all(np.diff(got[20:]) >= 0) and got[-1] <= 1


def test_a_replicate_with_frequencies_equals_the_repeated_episodes():
    """The bootstrap's frequencies (hazards and weights per covariate pattern, looked up per clone)
    give the estimate of the data with each episode repeated that often."""
    import dataclasses

    td, p = _reference_data()
    grid = np.asarray(p["grid"])
    hz = np.asarray(p["horizons"], dtype=float)
    for data in (td, _without_severity(td)):
        f = np.random.default_rng(11).poisson(1.0, len(data.exit)).astype(float)
        rep = np.repeat(np.arange(len(f)), f.astype(int))
        repeated = dataclasses.replace(data, entry=data.entry[rep], exit=data.exit[rep], status=data.status[rep],
                                       start=data.start[rep], z=data.z[rep], pupil=data.pupil[rep],
                                       school=data.school[rep])
        args = (p["treat_day"], p["grace_days"], hz, p["tau"], True, None)
        a = _estimate(data, grid, f, *args)[0]
        b = _estimate(repeated, grid, np.ones(len(rep)), *args)[0]
        np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9)
