"""Evaluation: performance measures, trial generators, designs, diagnose, backends and resuming.

Power against closed-form formulas, power curves and sample sizes: ``test_evaluate_power.py``;
the ``verzuim diagnose`` / ``verzuim power`` commands: ``test_evaluate_cli.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import verzuimmodel as vm
from verzuimmodel.effects import registry
from verzuimmodel.errors import ConvergenceWarning
from verzuimmodel.effects.registry import Estimate, register
from verzuimmodel.evaluate import measures, trials
from verzuimmodel.evaluate.diagnose import DIAGNOSIS_COLUMNS, REPLICATE_COLUMNS, WARNED_COLUMNS, replicate_seed

SMALL = vm.evaluate.ParallelTrial(n_clusters=8, cluster_size=10, icc=0.05, effect=0.5)
"""A cheap trial for the machinery tests."""


# -- estimators registered by the tests only ----------------------------------------------------

def vo_poisson(cohort) -> Estimate:
    """Poisson GLM of VO unexcused hours on PO exposure (offset log school days), SE clustered by PO school."""
    import statsmodels.api as sm

    pupils, schools = cohort.pupils, cohort.schools
    start = pupils["po_school_id"].map(schools.set_index("school_id")["approach_start_year"])
    grade = cohort.scenario.approach.exposed_from_grade
    exposed = (start <= pupils["cohort"] + (grade - 3)).fillna(False).astype(float)
    vo = cohort.absence[cohort.absence["level"] == "vo"].groupby("pupil_id")[["unexcused_hours", "enrolled_days"]].sum()
    df = pd.DataFrame({"pupil_id": pupils["pupil_id"], "exposed": exposed.to_numpy(),
                       "school": pupils["po_school_id"]}).merge(vo, left_on="pupil_id", right_index=True)
    df = df[df["enrolled_days"] > 0]
    x = sm.add_constant(df[["exposed"]].to_numpy())
    fit = sm.GLM(df["unexcused_hours"].to_numpy(), x, family=sm.families.Poisson(),
                 offset=np.log(df["enrolled_days"].to_numpy())).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(df["school"])[0]})
    return Estimate(float(fit.params[1]), float(fit.bse[1]), n_obs=len(df), n_clusters=int(df["school"].nunique()))


def flaky(data) -> Estimate:
    """cluster_means, but fails on some replicates (an exception, or a non-finite SE) and warns on others."""
    est = trials.cluster_means(data)
    y = data.data["y"].to_numpy()
    if y[2] > 1.0:
        warnings.warn(f"shaky fit ({y[2]:.3f})", ConvergenceWarning)
    if y[0] > 1.0:
        raise np.linalg.LinAlgError("singular matrix (on purpose)")
    if y[1] > 1.0:
        return Estimate(est.coef, float("nan"))
    return est


def warns_twice(data) -> Estimate:
    """cluster_means that warns on some replicates: a ConvergenceWarning (the same text every time)
    and then a RuntimeWarning, and on others a ConvergenceWarning only."""
    y = data.data["y"].to_numpy()
    if y[3] > 0.5:
        warnings.warn("the same text every time", ConvergenceWarning)
        if y[4] > 0.5:
            warnings.warn("a second warning, of another type", RuntimeWarning)
    return trials.cluster_means(data)


@dataclass(frozen=True)
class NormalMean:
    """A data model whose true value differs per replicate: theta ~ U(0.5, 1.5), y ~ N(theta, 1).

    Its truth also holds ``theta_shifted`` = theta + 1 (another estimand, for designs whose
    estimators target different keys)."""

    n: int = 40

    def simulate(self, seed):
        rng = np.random.default_rng(seed)
        theta = rng.uniform(0.5, 1.5)
        return vm.evaluate.TrialData(pd.DataFrame({"y": rng.normal(theta, 1.0, self.n)}),
                                     {"theta": theta, "theta_shifted": theta + 1.0})


def normal_mean(data) -> Estimate:
    """Sample mean with a t interval."""
    y = data.data["y"].to_numpy()
    return Estimate(float(y.mean()), float(y.std(ddof=1) / math.sqrt(len(y))), df=len(y) - 1)


INTERRUPT = {"after_calls": None, "calls": 0}


def interruptible(data) -> Estimate:
    """cluster_means that raises KeyboardInterrupt (like Ctrl-C) on its n-th call while armed."""
    INTERRUPT["calls"] += 1
    if INTERRUPT["after_calls"] is not None and INTERRUPT["calls"] >= INTERRUPT["after_calls"]:
        raise KeyboardInterrupt
    return trials.cluster_means(data)


@pytest.fixture(scope="module", autouse=True)
def test_estimators():
    added = {"test_vo_poisson": dict(estimand="po_approach_vo_rate_ratio", data="cohort", scale="log"),
             "test_flaky": dict(estimand="effect", data="trial", scale="identity"),
             "test_warns_twice": dict(estimand="effect", data="trial", scale="identity"),
             "test_normal_mean": dict(estimand="theta", data="trial", scale="identity"),
             "test_interruptible": dict(estimand="effect", data="trial", scale="identity"),
             "test_other_estimand": dict(estimand="something_else", data="trial", scale="identity"),
             # the sample mean declared as an estimator of theta + 1, of another kind (for the kind columns)
             "test_shifted_mean": dict(estimand="theta_shifted", data="trial", scale="identity", population="ATT",
                                       scope="conditional", contrast="per_protocol")}
    fns = {"test_vo_poisson": vo_poisson, "test_flaky": flaky, "test_warns_twice": warns_twice,
           "test_normal_mean": normal_mean,
           "test_interruptible": interruptible, "test_other_estimand": trials.cluster_means,
           "test_shifted_mean": normal_mean}
    for name, kw in added.items():
        register(name, **kw)(fns[name])
    yield
    for name in added:
        registry._REGISTRY.pop(name, None)


# -- performance measures: hand-computed values ----------------------------------------------------

EST = np.array([1.0, 2.0, 3.0, 4.0])
SE = np.array([1.0, 1.0, 2.0, 2.0])
TRUTH = 2.0


def test_bias_and_empirical_se_by_hand():
    # bias = mean(-1, 0, 1, 2) = 0.5; SD(est) = sqrt(5/3) = 1.29099; MCSE = SD / sqrt(4)
    assert measures.bias(EST, TRUTH) == pytest.approx((0.5, math.sqrt(5 / 3) / 2), rel=1e-12)
    # EmpSE = sqrt(5/3); MCSE = EmpSE / sqrt(2 * 3)
    assert measures.empirical_se(EST) == pytest.approx((math.sqrt(5 / 3), math.sqrt(5 / 3) / math.sqrt(6)), rel=1e-12)


def test_bias_mcse_with_a_truth_varying_per_replicate():
    # errors d = (1, 1, 2): bias 4/3, SD(d) = sqrt(1/3), MCSE = sqrt(1/3) / sqrt(3) = 1/3
    assert measures.bias([1.0, 2.0, 4.0], [0.0, 1.0, 2.0]) == pytest.approx((4 / 3, 1 / 3), rel=1e-12)


def test_mse_by_hand():
    # squared errors (1, 0, 1, 4): MSE 1.5; MCSE = sqrt(sum((sq - 1.5)^2) / (4 * 3)) = sqrt(9 / 12)
    assert measures.mse(EST, TRUTH) == pytest.approx((1.5, math.sqrt(9 / 12)), rel=1e-12)


def test_model_se_and_its_relative_error_by_hand():
    # SE^2 = (1, 1, 4, 4): ModSE = sqrt(2.5); Var(SE^2) = 9 / 3 = 3; MCSE = sqrt(3 / (4 * 4 * 2.5))
    mod = math.sqrt(2.5)
    assert measures.model_se(SE) == pytest.approx((mod, math.sqrt(3 / 40)), rel=1e-12)
    # 100 (ModSE / EmpSE - 1); MCSE = 100 ratio sqrt(Var(SE^2) / (4 n ModSE^4) + 1 / (2 (n - 1)))
    ratio = mod / math.sqrt(5 / 3)
    expected = (100 * (ratio - 1), 100 * ratio * math.sqrt(3 / (4 * 4 * 2.5 ** 2) + 1 / 6))
    assert measures.relative_error_model_se(EST, SE) == pytest.approx(expected, rel=1e-12)
    assert expected[0] == pytest.approx(22.4745, abs=1e-4)


def test_coverage_power_and_type_s_by_hand():
    # intervals (0,2) (1.5,2.5) (2.5,3.5) (1,5) cover 2 three times: 0.75, MCSE sqrt(.75 * .25 / 4)
    cov = measures.coverage([0, 1.5, 2.5, 1], [2, 2.5, 3.5, 5], TRUTH)
    assert cov == pytest.approx((0.75, math.sqrt(0.75 * 0.25 / 4)), rel=1e-12)
    # p <= 0.05 in 3 of 4 (0.05 itself counts)
    assert measures.power([0.01, 0.05, 0.2, 0.04]) == pytest.approx((0.75, math.sqrt(0.75 * 0.25 / 4)), rel=1e-12)
    # rejections: estimates 1, -0.5, -3 with truth 1: two of three have the wrong sign
    s = measures.type_s([1, -0.5, 2, -3], [0.01, 0.03, 0.2, 0.04], 1.0)
    assert s == pytest.approx((2 / 3, math.sqrt(2 / 3 * 1 / 3 / 3)), rel=1e-12)
    assert np.isnan(measures.type_s([1, 2], [0.5, 0.6], 1.0)[0])  # nothing rejects
    assert np.isnan(measures.type_s([1, 2], [0.01, 0.01], 0.0)[0])  # no sign to get wrong


def test_performance_collects_every_measure():
    out = measures.performance(EST, SE, TRUTH, EST - 1.96 * SE, EST + 1.96 * SE, [0.01, 0.05, 0.2, 0.04])
    assert list(out) == measures.MEASURES
    assert out["rmse"] == pytest.approx(math.sqrt(1.5))
    assert out["rmse_mcse"] == pytest.approx(math.sqrt(9 / 12) / (2 * math.sqrt(1.5)))
    assert out["true_value"] == 2.0 and out["mean_estimate"] == 2.5
    # bias-eliminated coverage: intervals compared with truth + bias = 2.5; (-0.96, 2.96) ... all cover
    assert out["be_coverage"] == 1.0
    few = measures.performance([1.0], [1.0], 1.0, [0.0], [2.0], [0.5])
    assert np.isnan(few["emp_se"]) and np.isnan(few["bias_mcse"]) and few["coverage"] == 1.0


# -- seeds -------------------------------------------------------------------------------------------

def test_replicate_seed_is_the_spawned_stream():
    children = np.random.SeedSequence(7).spawn(5)
    for i, child in enumerate(children):
        assert np.array_equal(replicate_seed(7, i).generate_state(4), child.generate_state(4))


# -- trial generators ------------------------------------------------------------------------------

def test_parallel_trial_data_and_truth():
    tr = vm.evaluate.ParallelTrial(n_clusters=10, cluster_size=7, icc=0.1, effect=0.4)
    t = tr.simulate(3)
    assert list(t.data.columns) == ["cluster", "period", "treat", "y"]
    assert len(t.data) == 70 and (t.data["period"] == 0).all()
    arms = t.data.groupby("cluster")["treat"].agg(["min", "max"])
    assert (arms["min"] == arms["max"]).all() and arms["max"].sum() == 5
    assert t.truth["effect"] == 0.4
    pd.testing.assert_frame_equal(tr.simulate(3).data, t.data)  # the seed is the only randomness
    assert not tr.simulate(4).data.equals(t.data)


def test_stepped_wedge_sequences():
    tr = vm.evaluate.SteppedWedgeTrial(n_clusters=5, n_periods=4, cluster_period_size=3)
    assert tr.sequence_sizes().tolist() == [2, 2, 1]
    x = tr.treatment_matrix()
    assert x.tolist() == [[0, 1, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]]
    d = tr.simulate(1).data
    assert len(d) == 5 * 4 * 3
    pattern = d.groupby(["cluster", "period"])["treat"].first().unstack().to_numpy()
    assert sorted(map(tuple, pattern)) == sorted(map(tuple, x))  # randomised order of the same sequences


def test_truth_per_outcome():
    b = vm.evaluate.ParallelTrial(outcome="binary", icc=0.1, effect=math.log(2), control_risk=0.3)
    t = b.true_values()
    assert t["odds_ratio"] == pytest.approx(2.0)
    assert t["control_risk"] == pytest.approx(0.3, abs=1e-10)  # the marginal control risk, as asked
    assert 1 < t["marginal_odds_ratio"] < 2  # attenuated: odds ratios are not collapsible
    c = vm.evaluate.ParallelTrial(outcome="count", icc=0.1, effect=math.log(0.8))
    assert set(c.true_values()) >= {"rate_ratio"} and c.true_values()["rate_ratio"] == pytest.approx(0.8)
    assert "effect" not in t and "effect" not in c.true_values()


def test_count_icc_is_the_outcome_scale_icc():
    tr = vm.evaluate.ParallelTrial(outcome="count", icc=0.08, control_rate=3.0, dispersion=1.5)
    a, m, theta = math.exp(tr.cluster_variance()), 3.0, 1.5
    between = m ** 2 * (a - 1)  # Var E[y | u]
    within = m + m ** 2 * a / theta  # E Var(y | u), NB2
    assert between / (between + within) == pytest.approx(0.08, rel=1e-12)


@pytest.mark.parametrize("outcome", ["binary", "count"])
def test_generator_control_mean_and_cluster_variance(outcome):
    """Control-arm mean and the variance of cluster means agree with the model (4 Monte Carlo SEs)."""
    tr = vm.evaluate.ParallelTrial(n_clusters=4000, cluster_size=10, icc=0.1, effect=0.5, outcome=outcome,
                                   treated_share=0.5, control_risk=0.3, control_rate=2.0, dispersion=2.0)
    d = tr.simulate(11).data
    means = d[d["treat"] == 0].groupby("cluster")["y"].mean().to_numpy()
    k = len(means)
    target = 0.3 if outcome == "binary" else 2.0
    assert abs(means.mean() - target) < 4 * means.std(ddof=1) / math.sqrt(k)
    if outcome == "count":
        a = math.exp(tr.cluster_variance())
        expected = target ** 2 * (a - 1) + (target + target ** 2 * a / 2.0) / 10
    else:
        tau2 = tr.cluster_variance()
        b0 = tr._intercept()
        nodes, weights = np.polynomial.hermite.hermgauss(80)
        p = 1 / (1 + np.exp(-(b0 + math.sqrt(2 * tau2) * nodes)))
        ep, ep2 = (weights * p).sum() / math.sqrt(math.pi), (weights * p ** 2).sum() / math.sqrt(math.pi)
        expected = (ep2 - ep ** 2) + (ep - ep2) / 10
    s2 = means.var(ddof=1)
    se_s2 = math.sqrt((np.mean((means - means.mean()) ** 4) - s2 ** 2) / k)
    assert abs(s2 - expected) < 4 * se_s2


@pytest.mark.parametrize("kwargs, key", [
    (dict(n_clusters=3), "n_clusters"),
    (dict(icc=1.0), "icc"),
    (dict(outcome="ordinal"), "outcome"),
    (dict(treated_share=0.1), "treated_share"),
    (dict(outcome="count", icc=0.6, dispersion=1.0), "icc"),
])
def test_parallel_trial_rejects_bad_parameters(kwargs, key):
    with pytest.raises(ValueError, match=f"trial key '{key}'"):
        vm.evaluate.ParallelTrial(**kwargs)


def test_stepped_wedge_rejects_too_few_clusters():
    with pytest.raises(ValueError, match="trial key 'n_clusters'.*n_periods - 1 = 4"):
        vm.evaluate.SteppedWedgeTrial(n_clusters=3, n_periods=5)


# -- trial estimators --------------------------------------------------------------------------------

def test_cluster_means_parallel_is_the_two_sample_t_test():
    t = SMALL.simulate(5)
    m = t.data.groupby("cluster").agg(y=("y", "mean"), treat=("treat", "first"))
    ref = stats.ttest_ind(m.loc[m.treat == 1, "y"], m.loc[m.treat == 0, "y"])
    est = trials.cluster_means(t)
    assert est.coef / est.std_error == pytest.approx(ref.statistic, rel=1e-10)
    assert est.df == 6 and est.n_clusters == 8 and est.n_obs == 80
    # one row of the registry's table, t-based
    row = vm.effects.estimate(t, "cluster_means")
    assert row["p_value"].iloc[0] == pytest.approx(ref.pvalue, rel=1e-8)


def test_cluster_means_stepped_wedge_is_fixed_effects_ols_on_cell_means():
    import statsmodels.formula.api as smf

    t = vm.evaluate.SteppedWedgeTrial(n_clusters=6, n_periods=4, cluster_period_size=5, time_trend=0.2).simulate(2)
    cells = t.data.groupby(["cluster", "period"], as_index=False).agg(y=("y", "mean"), treat=("treat", "first"))
    ref = smf.ols("y ~ treat + C(cluster) + C(period)", cells).fit()
    est = trials.cluster_means(t)
    assert est.coef == pytest.approx(ref.params["treat"], rel=1e-10)
    assert est.std_error == pytest.approx(ref.bse["treat"], rel=1e-10)
    assert est.df == ref.df_resid == 6 * 4 - 6 - 4


def test_gee_estimators_take_data_frames_and_check_outcomes():
    t = SMALL.simulate(1)
    est = trials.gee(t.data)
    assert np.isfinite(est.coef) and est.df == 6
    with pytest.raises(ValueError, match="0/1"):
        trials.gee_logit(t)
    with pytest.raises(ValueError, match="counts"):
        trials.gee_poisson(t)
    with pytest.raises(ValueError, match="missing column"):
        trials.gee(t.data.drop(columns="treat"))


# -- Design ---------------------------------------------------------------------------------------

def test_design_estimand_from_the_estimators():
    d = vm.Design(SMALL, ["cluster_means", "gee"])
    assert d.estimators == ("cluster_means", "gee") and d.data_kind == "trial"
    # no forced estimand: each estimator is scored against the key it declares
    assert d.estimand is None and d.targets == {"cluster_means": "effect", "gee": "effect"}
    assert d.target_of("gee") == "effect"
    b = vm.Design(vm.evaluate.ParallelTrial(outcome="binary"), "gee_logit")
    assert b.estimand is None and b.target_of("gee_logit") == "marginal_odds_ratio"
    with pytest.raises(ValueError, match="estimator 'lmm' is not in the design"):
        d.target_of("lmm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.estimand = "x"


def test_design_with_estimators_of_different_estimands():
    d = vm.Design(NormalMean(), ["test_normal_mean", "test_shifted_mean"])
    assert d.estimand is None
    assert d.targets == {"test_normal_mean": "theta", "test_shifted_mean": "theta_shifted"}
    forced = vm.Design(NormalMean(), ["test_normal_mean", "test_shifted_mean"], estimand="theta")
    assert forced.estimand == "theta" and forced.targets == {"test_normal_mean": "theta", "test_shifted_mean": "theta"}


@pytest.mark.parametrize("args, message", [
    ((SMALL, ["nope"]), "unknown estimator 'nope'"),
    ((SMALL, []), "at least one"),
    ((SMALL, ["gee", "gee"]), "unique"),
    ((SMALL, ["cluster_means", "test_other_estimand"]),
     "'test_other_estimand' targets 'something_else', which is not in the truth of a continuous ParallelTrial"),
    ((SMALL, ["cluster_means"], "odds_ratio"), "'odds_ratio' is not in the truth"),
    ((vm.evaluate.ParallelTrial(outcome="binary"), ["cluster_means"]), "'cluster_means' analyses continuous"),
    ((vm.Scenario(), ["cluster_means"]), "analyses trial data"),
    ((SMALL, ["test_vo_poisson"]), "analyses cohort data"),
    (("default", ["gee"]), "expected a Scenario or a trial generator"),
])
def test_design_rejects(args, message):
    with pytest.raises(ValueError, match=message):
        vm.Design(*args)


def test_design_may_compare_an_estimator_with_another_estimand(tmp_path):
    d = vm.Design(vm.evaluate.ParallelTrial(outcome="binary"), ["gee_logit"], estimand="odds_ratio")
    assert d.estimand == "odds_ratio" and d.target_of("gee_logit") == "odds_ratio"
    # a forced estimand is written to the design file and read back
    assert 'estimand = "odds_ratio"' in d.to_toml(tmp_path / "forced.toml")
    assert vm.Design.from_toml(tmp_path / "forced.toml") == d


def test_design_toml_round_trip_trial(tmp_path):
    d = vm.Design(vm.evaluate.SteppedWedgeTrial(n_clusters=9, n_periods=4, icc=0.02, effect=0.2),
                  ["cluster_means", "gee"], alpha=0.1, name="sw")
    path = tmp_path / "d.toml"
    d.to_toml(path)
    assert 'type = "stepped_wedge"' in path.read_text()
    assert "estimand" not in path.read_text()     # each estimator its own target: nothing to write
    assert vm.Design.from_toml(path) == d
    assert vm.Design.from_toml(path).estimand is None


def test_design_toml_scenario_reference_inline_and_path(tmp_path):
    d = vm.Design(vm.Scenario.default(), ["test_vo_poisson"])
    assert 'scenario = "default"' in d.to_toml()
    assert vm.Design.from_toml(_write(tmp_path / "a.toml", d.to_toml())) == d
    small = dataclasses.replace(vm.Scenario.default(), population=dataclasses.replace(
        vm.Scenario.default().population, n_po_schools=20))
    d2 = vm.Design(small, ["test_vo_poisson"])
    assert "[scenario.population]" in d2.to_toml()
    assert vm.Design.from_toml(_write(tmp_path / "b.toml", d2.to_toml())) == d2
    small.to_toml(tmp_path / "small.toml")
    ref = _write(tmp_path / "sub" / "c.toml", 'estimators = ["test_vo_poisson"]\nscenario = "../small.toml"\n')
    assert vm.Design.from_toml(ref).scenario == small


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


TRIAL = '[trial]\ntype = "parallel"\nn_clusters = 8\n'


@pytest.mark.parametrize("text, message", [
    (TRIAL, "design key 'estimators': missing"),
    ('estimators = "gee"\n' + TRIAL, "design key 'estimators': expected a non-empty list"),
    ('estimators = ["gee"]\nseed = 3\n' + TRIAL, "design key 'seed': unknown key"),
    ('estimators = ["gee"]\n', "design key 'scenario' or 'trial': expected exactly one"),
    ('estimators = ["gee"]\nscenario = "default"\n' + TRIAL, "expected exactly one"),
    ('estimators = ["gee"]\n[trial]\ntype = "crossover"\n', "design key 'trial.type'"),
    ('estimators = ["gee"]\n[trial]\ntype = "parallel"\nicc = "high"\n', "design key 'trial.icc': expected a number"),
    ('estimators = ["gee"]\n[trial]\ntype = "parallel"\nn_clusters = 2\n', "design key 'trial.n_clusters'.*>= 4"),
    ('estimators = ["gee"]\n[trial]\ntype = "parallel"\nclusters = 8\n', "design key 'trial.clusters': unknown"),
    ('estimators = ["gee"]\n[trial]\ntype = "parallel"\noutcome = "ordinal"\n', "design key 'trial.outcome'"),
    ('estimators = ["nope"]\n' + TRIAL, "unknown estimator 'nope'"),
    ('estimators = ["gee"]\nestimand = "odds_ratio"\n' + TRIAL, "design key 'estimand'"),
    ('estimators = ["gee"]\nalpha = 2\n' + TRIAL, "design key 'alpha'"),
    ('estimators = ["test_vo_poisson"]\nscenario = "atlantis"\n', "unknown scenario 'atlantis'"),
    ('estimators = ["test_vo_poisson"]\n[scenario.population]\nn_schools = 3\n',
     "scenario key 'population.n_schools': unknown key"),
    ('estimators = ["gee"\n', "invalid TOML"),
])
def test_bad_design_files_name_the_key(tmp_path, text, message):
    path = _write(tmp_path / "bad.toml", text)
    with pytest.raises(ValueError, match=message) as e:
        vm.Design.from_toml(path)
    assert str(e.value).startswith("design file bad.toml: ")


def test_missing_design_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="design file not found"):
        vm.Design.from_toml(tmp_path / "nope.toml")


def test_with_parameters():
    d = vm.Design(SMALL, ["cluster_means"])
    assert d.with_parameters({"n_clusters": 12.0}).scenario.n_clusters == 12
    with pytest.raises(ValueError, match="trial parameter 'clusters': unknown"):
        d.with_parameters({"clusters": 12})
    with pytest.raises(ValueError, match="trial key 'n_clusters'"):
        d.with_parameters({"n_clusters": 2})
    s = vm.Design(vm.Scenario.default(), ["test_vo_poisson"])
    assert s.with_parameters({"population.n_po_schools": 12}).scenario.population.n_po_schools == 12
    with pytest.raises(ValueError, match="scenario key 'population.n_schools'"):
        s.with_parameters({"population.n_schools": 12})


# -- diagnose ----------------------------------------------------------------------------------------

def test_diagnose_tidy_and_replicates():
    d = vm.Design(SMALL, ["cluster_means", "gee"])
    diag = vm.diagnose(d, n_sims=12, seed=3, progress=False)
    tidy = diag.tidy()
    assert list(tidy.columns) == DIAGNOSIS_COLUMNS
    assert tidy["estimator"].tolist() == ["cluster_means", "gee"]
    assert (tidy["n_sims"] == 12).all() and (tidy["n_failed"] == 0).all() and (tidy["true_value"] == 0.5).all()
    reps = diag.replicates
    assert list(reps.columns) == REPLICATE_COLUMNS and len(reps) == 24
    assert reps["replicate"].tolist() == [i for i in range(12) for _ in range(2)]
    # replicate i is stream i of SeedSequence(seed).spawn(n_sims)
    child = np.random.SeedSequence(3).spawn(12)[7]
    est = trials.cluster_means(SMALL.simulate(child))
    row = reps[(reps["replicate"] == 7) & (reps["estimator"] == "cluster_means")].iloc[0]
    assert row["coef"] == est.coef and row["std_error"] == est.std_error and row["df"] == 6
    q = stats.t.ppf(0.975, 6)
    assert row["ci_low"] == pytest.approx(est.coef - q * est.std_error, rel=1e-12)
    # the tidy measures are those of the measures module on the replicates
    cm = reps[reps["estimator"] == "cluster_means"]
    expected = measures.performance(cm["coef"], cm["std_error"], cm["true_value"], cm["ci_low"], cm["ci_high"],
                                    cm["p_value"])
    got = tidy.iloc[0]
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, rel=1e-12, nan_ok=True), k
    assert (diag.timings["fit_seconds"] > 0).all()


def test_more_replicates_extend_the_same_streams():
    d = vm.Design(SMALL, ["cluster_means"])
    short = vm.diagnose(d, n_sims=5, seed=2, progress=False).replicates
    long = vm.diagnose(d, n_sims=9, seed=2, progress=False).replicates
    pd.testing.assert_frame_equal(long.iloc[:5], short)


def test_failed_fits_are_counted_and_kept():
    d = vm.Design(SMALL, ["test_flaky", "cluster_means"])
    diag = vm.diagnose(d, n_sims=30, seed=4, progress=False)
    reps = diag.replicates
    fl = reps[reps["estimator"] == "test_flaky"]
    raised = fl["error"].str.startswith("LinAlgError: singular matrix", na=False)
    nonfinite = fl["error"].str.contains("non-finite", na=False)
    assert raised.any() and nonfinite.any()
    tidy = diag.tidy().set_index("estimator")
    assert tidy.loc["test_flaky", "n_failed"] == raised.sum() + nonfinite.sum()
    assert tidy.loc["cluster_means", "n_failed"] == 0 and tidy.loc["test_flaky", "n_sims"] == 30
    ok = fl[fl["error"].isna()]
    assert fl.loc[fl["error"].notna(), "coef"].isna().all()
    assert tidy.loc["test_flaky", "bias"] == pytest.approx((ok["coef"] - 0.5).mean(), rel=1e-12)
    f = diag.failures
    assert list(f.columns) == ["replicate", "estimator", "error"] and (f["estimator"] == "test_flaky").all()
    assert len(f) == min(20, tidy.loc["test_flaky", "n_failed"])
    # warnings are kept per fit and counted (the fit itself counts)
    warned = fl["warning"].str.startswith("ConvergenceWarning: shaky fit", na=False)
    assert warned.any() and fl["warning"].dropna().str.startswith("ConvergenceWarning").all()
    assert (fl["warning_types"].notna() == warned).all()
    assert tidy.loc["test_flaky", "n_warned"] == (warned & fl["error"].isna()).sum()
    assert tidy.loc["test_flaky", "n_used"] == 30 - tidy.loc["test_flaky", "n_failed"]   # warned fits included
    assert tidy.loc["cluster_means", "n_warned"] == 0
    assert (warned & fl["error"].notna()).any()       # a fit that warned and then failed keeps its warning


# -- warnings: every type recorded, counted, included or left out ------------------------------------------

RARE = vm.evaluate.ParallelTrial(n_clusters=8, cluster_size=10, icc=0.05, effect=0.5, outcome="binary",
                                 control_risk=0.03)
"""A rare binary outcome: in some replicates no pupil, or no pupil of one arm, has the event, and
``gee_logit`` (statsmodels) warns (perfect separation; an invalid value in a square root)."""


def test_every_warning_type_of_a_fit_is_kept_and_counted():
    d = vm.Design(SMALL, ["test_warns_twice", "cluster_means"])
    with warnings.catch_warnings():
        warnings.simplefilter("default")   # the same warning from the same line would be shown once
        diag = vm.diagnose(d, n_sims=40, seed=11, progress=False)
    r = diag.replicates[diag.replicates["estimator"] == "test_warns_twice"]
    y = [SMALL.simulate(replicate_seed(11, i)).data["y"].to_numpy() for i in range(40)]
    first = np.array([v[3] > 0.5 for v in y])
    both = np.array([v[3] > 0.5 and v[4] > 0.5 for v in y])
    assert both.any() and (first & ~both).any() and (~first).any()
    # every replicate's warnings, also a repeat of the same text from the same line
    assert r["warning_types"].tolist() == [("ConvergenceWarning;RuntimeWarning" if b else "ConvergenceWarning")
                                           if f else None for f, b in zip(first, both)]
    assert (r.loc[first, "warning"] == "ConvergenceWarning: the same text every time").all()
    tidy = diag.tidy().set_index("estimator")
    assert tidy.loc["test_warns_twice", "n_warned"] == first.sum() and tidy.loc["cluster_means", "n_warned"] == 0
    by_type = diag.warned_by_type()
    assert list(by_type.columns) == WARNED_COLUMNS
    assert by_type.values.tolist() == [["test_warns_twice", "ConvergenceWarning", first.sum()],
                                       ["test_warns_twice", "RuntimeWarning", both.sum()]]


def test_warnings_are_recorded_whatever_the_filters_say():
    d = vm.Design(RARE, ["gee_logit"])
    reference = vm.diagnose(d, n_sims=20, seed=3, progress=False)
    assert reference.tidy()["n_warned"].iloc[0] > 0
    for action in ("ignore", "error"):
        with warnings.catch_warnings():
            warnings.simplefilter(action)
            again = vm.diagnose(d, n_sims=20, seed=3, progress=False)
        pd.testing.assert_frame_equal(again.replicates, reference.replicates)


def test_warned_fits_included_or_excluded():
    d = vm.Design(SMALL, ["test_flaky", "cluster_means"])
    incl = vm.diagnose(d, n_sims=40, seed=4, progress=False)
    excl = vm.diagnose(d, n_sims=40, seed=4, progress=False, warned="exclude")
    assert incl.warned == "include" and excl.warned == "exclude"
    pd.testing.assert_frame_equal(excl.replicates, incl.replicates)        # the same fits; only the measures differ
    reps = incl.replicates[incl.replicates["estimator"] == "test_flaky"]
    clean = reps[reps["error"].isna() & reps["warning_types"].isna()]
    t = excl.tidy().set_index("estimator")
    n_warned, n_failed = t.loc["test_flaky", "n_warned"], t.loc["test_flaky", "n_failed"]
    assert n_warned > 0 and t.loc["test_flaky", "n_used"] == len(clean) == 40 - n_failed - n_warned
    expected = measures.performance(clean["coef"], clean["std_error"], clean["true_value"], clean["ci_low"],
                                    clean["ci_high"], clean["p_value"])
    for k, v in expected.items():
        assert t.loc["test_flaky", k] == pytest.approx(v, rel=1e-12, nan_ok=True), k
    assert t.loc["test_flaky", "bias"] != incl.tidy().set_index("estimator").loc["test_flaky", "bias"]
    # an estimator without warnings is measured the same either way; tidy(warned=...) overrides the run's choice
    pd.testing.assert_frame_equal(excl.tidy().iloc[[1]], incl.tidy().iloc[[1]])
    pd.testing.assert_frame_equal(incl.tidy(warned="exclude"), excl.tidy())
    pd.testing.assert_frame_equal(excl.tidy(warned="include"), incl.tidy())
    with pytest.raises(ValueError, match="warned: got 'drop'"):
        incl.tidy(warned="drop")
    with pytest.raises(ValueError, match="warned: got 'drop'"):
        vm.diagnose(d, n_sims=2, seed=4, progress=False, warned="drop")


def test_other_threads_warnings_are_not_recorded_as_the_fits():
    import threading

    from verzuimmodel.evaluate.diagnose import _recording

    started, release = threading.Event(), threading.Event()

    def other():
        started.wait()
        warnings.warn("from another thread", UserWarning)
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with warnings.catch_warnings(record=True) as elsewhere:   # where the other thread's warning goes
        warnings.simplefilter("always")
        with _recording() as caught:
            warnings.warn("from the fit", ConvergenceWarning)
            started.set()
            release.wait(10)
    t.join()
    assert caught == [("ConvergenceWarning", "from the fit")]
    assert [str(w.message) for w in elsewhere] == ["from another thread"]


def test_stored_runs_without_warning_types_resume(tmp_path):
    d = vm.Design(SMALL, ["test_flaky"])
    full = vm.diagnose(d, n_sims=12, seed=4, progress=False)
    path = tmp_path / "run"
    vm.diagnose(d, n_sims=12, seed=4, path=path, progress=False)
    for f in path.glob("part-*.parquet"):    # as stored before every warning's type was kept
        pd.read_parquet(f).drop(columns="warning_types").to_parquet(f, index=False)
    again = vm.diagnose(d, n_sims=12, seed=4, path=path, progress=False)
    pd.testing.assert_frame_equal(again.replicates, full.replicates)      # one type per fit here: the first one's


def test_truth_varying_per_replicate():
    d = vm.Design(NormalMean(), ["test_normal_mean"])
    diag = vm.diagnose(d, n_sims=40, seed=5, progress=False)
    reps = diag.replicates
    truths = [NormalMean().simulate(replicate_seed(5, i)).truth["theta"] for i in range(40)]
    assert reps["truth"].tolist() == truths
    tidy = diag.tidy().iloc[0]
    assert tidy["true_value"] == pytest.approx(np.mean(truths), rel=1e-12)
    assert tidy["bias"] == pytest.approx(np.mean(reps["coef"] - reps["truth"]), rel=1e-12)
    covers = (reps["ci_low"] <= reps["truth"]) & (reps["truth"] <= reps["ci_high"])
    assert reps["covers"].tolist() == covers.tolist()
    assert tidy["coverage"] == covers.mean()


def test_log_scale_estimators_are_measured_on_the_log_scale():
    tr = vm.evaluate.ParallelTrial(n_clusters=10, cluster_size=15, icc=0.05, effect=math.log(0.7), outcome="count")
    diag = vm.diagnose(vm.Design(tr, ["gee_poisson"]), n_sims=6, seed=1, progress=False)
    reps = diag.replicates
    assert (reps["scale"] == "log").all()
    assert reps["truth"].to_numpy() == pytest.approx(0.7)
    assert reps["true_value"].to_numpy() == pytest.approx(math.log(0.7))
    est = trials.gee_poisson(tr.simulate(replicate_seed(1, 2)))
    assert reps["coef"].iloc[2] == pytest.approx(est.coef, rel=1e-12)
    assert diag.tidy()["true_value"].iloc[0] == pytest.approx(math.log(0.7))


def test_each_estimator_is_scored_against_its_own_target():
    d = vm.Design(NormalMean(), ["test_normal_mean", "test_shifted_mean"])
    diag = vm.diagnose(d, n_sims=15, seed=9, progress=False)
    reps = diag.replicates
    truths = [NormalMean().simulate(replicate_seed(9, i)).truth for i in range(15)]
    mean = reps[reps["estimator"] == "test_normal_mean"]
    shifted = reps[reps["estimator"] == "test_shifted_mean"]
    assert (mean["estimand"] == "theta").all() and (shifted["estimand"] == "theta_shifted").all()
    assert mean["truth"].tolist() == [t["theta"] for t in truths]
    assert shifted["truth"].tolist() == [t["theta_shifted"] for t in truths]
    # the same estimate (the sample mean) on the same replicates, scored against two truths one apart
    np.testing.assert_array_equal(mean["coef"].to_numpy(), shifted["coef"].to_numpy())
    tidy = diag.tidy().set_index("estimator")
    assert list(diag.tidy().columns) == DIAGNOSIS_COLUMNS
    assert tidy.loc["test_normal_mean", "bias"] == pytest.approx(np.mean(mean["coef"] - mean["truth"]), rel=1e-12)
    assert tidy.loc["test_shifted_mean", "bias"] == pytest.approx(
        tidy.loc["test_normal_mean", "bias"] - 1.0, rel=1e-12)
    # the declared kind of each estimand
    assert tidy.loc["test_normal_mean", ["estimand", "population", "scope", "contrast"]].tolist() == [
        "theta", "ATE", "marginal", "ITT"]
    assert tidy.loc["test_shifted_mean", ["estimand", "population", "scope", "contrast"]].tolist() == [
        "theta_shifted", "ATT", "conditional", "per_protocol"]


def test_a_forced_estimand_scores_every_estimator_against_it():
    d = vm.Design(NormalMean(), ["test_normal_mean", "test_shifted_mean"], estimand="theta")
    diag = vm.diagnose(d, n_sims=6, seed=9, progress=False)
    reps = diag.replicates
    theta = [NormalMean().simulate(replicate_seed(9, i)).truth["theta"] for i in range(6)]
    for name in ("test_normal_mean", "test_shifted_mean"):
        r = reps[reps["estimator"] == name]
        assert (r["estimand"] == "theta").all() and r["truth"].tolist() == theta
    tidy = diag.tidy().set_index("estimator")
    assert (tidy["estimand"] == "theta").all()
    assert tidy.loc["test_shifted_mean", "bias"] == pytest.approx(tidy.loc["test_normal_mean", "bias"], rel=1e-12)
    # the kind columns still say what each estimator declares, not what it was forced against
    assert tidy.loc["test_shifted_mean", ["population", "scope", "contrast"]].tolist() == [
        "ATT", "conditional", "per_protocol"]


def test_a_truth_without_an_estimators_target_raises():
    d = vm.Design(NormalMean(), ["test_normal_mean", "test_other_estimand"])   # no true_values(): found by diagnose
    with pytest.raises(ValueError, match="estimand 'something_else' is not in the truth of replicate 0 "
                                         r"\(the estimand of test_other_estimand\); its keys are theta, theta_shifted"):
        vm.diagnose(d, n_sims=2, seed=1, progress=False)
    with pytest.raises(ValueError, match="estimand 'nowhere' is not in the truth of replicate 0"):
        vm.diagnose(vm.Design(NormalMean(), ["test_normal_mean"], estimand="nowhere"), n_sims=2, seed=1,
                    progress=False)


def test_diagnose_rejects_bad_arguments(tmp_path):
    d = vm.Design(SMALL, ["cluster_means"])
    for kwargs, message in [(dict(n_sims=0), "n_sims"), (dict(seed=-1), "seed"), (dict(backend="mpi"), "backend"),
                            (dict(scheduler="tcp://x:1"), "scheduler"), (dict(backend="processes", workers=0),
                                                                         "workers"),
                            (dict(backend="dask", scheduler="tcp://x:1", workers=2), "workers: with a scheduler")]:
        with pytest.raises(ValueError, match=message):
            vm.diagnose(d, **{"n_sims": 2, **kwargs}, progress=False, path=tmp_path / "run")
        assert not (tmp_path / "run").exists()  # checked before anything is written


# -- the cohort simulator as data model ---------------------------------------------------------------

def test_diagnose_a_scenario_end_to_end(tmp_path):
    scen = vm.Scenario.default()
    text = 'estimators = ["test_vo_poisson"]\nscenario = "default"\n'
    design = vm.Design.from_toml(_write(tmp_path / "d.toml", text))
    assert design.scenario == scen and design.estimand is None
    assert design.target_of("test_vo_poisson") == "po_approach_vo_rate_ratio"
    diag = vm.diagnose(design, n_sims=3, seed=8, progress=False)
    truths = [vm.simulate(scen, replicate_seed(8, i)).truth["po_approach_vo_rate_ratio"] for i in range(3)]
    reps = diag.replicates
    assert reps["error"].isna().all()
    assert reps["true_value"].to_numpy() == pytest.approx(np.log(truths), rel=1e-12)
    tidy = diag.tidy().iloc[0]
    assert tidy["true_value"] == pytest.approx(np.mean(np.log(truths)), rel=1e-12)
    assert tidy["n_failed"] == 0 and np.isfinite(tidy["bias"]) and np.isfinite(tidy["emp_se"])
    assert (reps["n_clusters"] == scen.population.n_po_schools).all()


def _heterogeneous_region():
    """The heterogeneous world (effect larger for disadvantaged pupils, adoption by disadvantage: ATE != ATT),
    one region of 24 PO schools."""
    s = vm.Scenario.load("heterogeneous")
    return dataclasses.replace(s, population=dataclasses.replace(s.population, n_regions=1, n_po_schools=24,
                                                                 n_vo_schools=5))


def test_vo_did_is_scored_against_the_att_beside_an_ate_estimator():
    scen = _heterogeneous_region()
    design = vm.Design(scen, ["vo_did", "test_vo_poisson"])
    assert design.targets == {"vo_did": "po_approach_vo_rate_ratio_exposed",
                              "test_vo_poisson": "po_approach_vo_rate_ratio"}
    diag = vm.diagnose(design, n_sims=2, seed=8, progress=False)
    reps = diag.replicates
    assert reps["error"].isna().all()
    for i in range(2):
        truth = vm.simulate(scen, seed=replicate_seed(8, i)).truth
        ate, att = truth["po_approach_vo_rate_ratio"], truth["po_approach_vo_rate_ratio_exposed"]
        assert abs(math.log(att) - math.log(ate)) > 0.01     # the two estimands differ in this world
        r = reps[reps["replicate"] == i].set_index("estimator")
        assert r.loc["vo_did", "truth"] == att and r.loc["vo_did", "true_value"] == pytest.approx(math.log(att))
        assert r.loc["test_vo_poisson", "truth"] == ate
        assert r.loc["vo_did", "estimand"] == "po_approach_vo_rate_ratio_exposed"
    tidy = diag.tidy().set_index("estimator")
    assert tidy.loc["vo_did", ["estimand", "population", "scope", "contrast"]].tolist() == [
        "po_approach_vo_rate_ratio_exposed", "ATT", "marginal", "ITT"]
    assert tidy.loc["test_vo_poisson", ["estimand", "population"]].tolist() == ["po_approach_vo_rate_ratio", "ATE"]


def test_power_curve_over_a_scenario_parameter():
    design = vm.Design(vm.Scenario.default(), ["test_vo_poisson"])
    curve = vm.power_curve(design, vary={"population.n_po_schools": [16, 24]}, n_sims=2, seed=1, progress=False)
    assert curve["population.n_po_schools"].tolist() == [16, 24]
    assert (curve["n_sims"] == 2).all() and curve["formula_power"].isna().all()
    assert curve["power"].between(0, 1).all()


# -- backends --------------------------------------------------------------------------------------------

def test_backends_give_identical_replicates():
    d = vm.Design(SMALL, ["cluster_means", "gee", "test_flaky", "test_warns_twice"])
    serial = vm.diagnose(d, n_sims=24, seed=9, progress=False, chunk_size=5)
    procs = vm.diagnose(d, n_sims=24, seed=9, backend="processes", workers=2, progress=False, chunk_size=7)
    # two workers in threads of this process: the same numbers and warnings (they run one replicate at a time)
    dask_threads = vm.diagnose(d, n_sims=24, seed=9, backend="dask", workers=2, dask_processes=False,
                               progress=False, chunk_size=3)
    assert serial.tidy()["n_warned"].iloc[2:].gt(0).all()
    for other in (procs, dask_threads):
        pd.testing.assert_frame_equal(other.replicates, serial.replicates)
        pd.testing.assert_frame_equal(other.tidy(), serial.tidy())
        pd.testing.assert_frame_equal(other.warned_by_type(), serial.warned_by_type())


def test_warned_fits_are_counted_alike_on_every_backend():
    """A rare-event design whose gee_logit fits warn on some replicates (statsmodels' warnings):
    the same tidy table, n_warned and its types included, on serial, processes and a LocalCluster of
    worker processes, with warned fits included or left out."""
    from distributed import Client, LocalCluster

    d = vm.Design(RARE, ["gee_logit"])
    serial = vm.diagnose(d, n_sims=30, seed=3, progress=False)
    procs = vm.diagnose(d, n_sims=30, seed=3, backend="processes", workers=2, progress=False, chunk_size=4)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        dask = vm.diagnose(d, n_sims=30, seed=3, backend="dask", scheduler=client, progress=False, chunk_size=3)
    assert serial.tidy()["n_warned"].iloc[0] > 0 and len(serial.warned_by_type()) >= 1
    for other in (procs, dask):
        pd.testing.assert_frame_equal(other.replicates, serial.replicates)
        pd.testing.assert_frame_equal(other.warned_by_type(), serial.warned_by_type())
        for warned in ("include", "exclude"):
            pd.testing.assert_frame_equal(other.tidy(warned=warned), serial.tidy(warned=warned))


def test_workers_with_several_threads_are_pointed_to_one_thread_each():
    from distributed import Client, LocalCluster

    d = vm.Design(SMALL, ["test_warns_twice"])
    serial = vm.diagnose(d, n_sims=6, seed=2, progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        with pytest.warns(UserWarning, match="more than one thread.*--nthreads 1"):
            threaded = vm.diagnose(d, n_sims=6, seed=2, backend="dask", scheduler=client, progress=False,
                                   chunk_size=1)
    pd.testing.assert_frame_equal(threaded.replicates, serial.replicates)


def test_dask_with_a_client_and_worker_processes():
    from distributed import Client, LocalCluster

    d = vm.Design(SMALL, ["cluster_means", "gee"])
    serial = vm.diagnose(d, n_sims=10, seed=2, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        viaclient = vm.diagnose(d, n_sims=10, seed=2, backend="dask", scheduler=client, progress=False)
        address = vm.diagnose(d, n_sims=10, seed=2, backend="dask", scheduler=cluster.scheduler_address,
                              progress=False)
    pd.testing.assert_frame_equal(viaclient.replicates, serial.replicates)
    pd.testing.assert_frame_equal(address.replicates, serial.replicates)


# -- long runs: the Parquet store and resuming -----------------------------------------------------------

class Stop(Exception):
    pass


def _stored(path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(f) for f in sorted(path.glob("part-*.parquet"))], ignore_index=True)


def test_interrupted_run_resumes_with_the_same_numbers(tmp_path):
    d = vm.Design(SMALL, ["cluster_means", "gee"])
    full = vm.diagnose(d, n_sims=30, seed=6, progress=False)
    path = tmp_path / "run"
    seen = []

    def stop_after_12(frame):
        seen.extend(frame["replicate"].unique())
        if len(seen) >= 12:
            raise Stop

    with pytest.raises(Stop):
        vm.diagnose(d, n_sims=30, seed=6, path=path, chunk_size=4, progress=False, on_chunk=stop_after_12)
    stored = _stored(path)
    assert sorted(stored["replicate"].unique()) == list(range(12))
    assert not list(path.glob(".*tmp*"))
    calls = []
    resumed = vm.diagnose(d, n_sims=30, seed=6, path=path, chunk_size=5, progress=False,
                          on_chunk=lambda f: calls.extend(f["replicate"].unique()))
    assert sorted(calls) == list(range(12, 30))  # only the missing replicates ran
    pd.testing.assert_frame_equal(resumed.replicates, full.replicates)
    pd.testing.assert_frame_equal(resumed.tidy(), full.tidy())
    stored = _stored(path)
    assert len(stored) == 60 and not stored.duplicated(["replicate", "estimator"]).any()
    # a finished run is read back, nothing reruns; a larger n_sims extends it
    again = vm.diagnose(d, n_sims=30, seed=6, path=path, progress=False, on_chunk=lambda f: pytest.fail("reran"))
    pd.testing.assert_frame_equal(again.replicates, full.replicates)
    more = vm.diagnose(d, n_sims=35, seed=6, path=path, progress=False)
    pd.testing.assert_frame_equal(more.replicates.iloc[:60], full.replicates)


def test_ctrl_c_inside_a_chunk_loses_only_that_chunk(tmp_path):
    d = vm.Design(SMALL, ["test_interruptible"])
    full = vm.diagnose(d, n_sims=20, seed=3, progress=False)
    path = tmp_path / "run"
    INTERRUPT.update(after_calls=INTERRUPT["calls"] + 11, calls=INTERRUPT["calls"])
    try:
        with pytest.raises(KeyboardInterrupt):
            vm.diagnose(d, n_sims=20, seed=3, path=path, chunk_size=4, progress=False)
    finally:
        INTERRUPT["after_calls"] = None
    assert sorted(_stored(path)["replicate"]) == list(range(8))  # two whole chunks; the third was lost
    resumed = vm.diagnose(d, n_sims=20, seed=3, path=path, backend="processes", workers=2, progress=False)
    pd.testing.assert_frame_equal(resumed.replicates, full.replicates)


def test_store_belongs_to_one_design_and_seed(tmp_path):
    d = vm.Design(SMALL, ["cluster_means"])
    vm.diagnose(d, n_sims=3, seed=1, path=tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="another design or seed"):
        vm.diagnose(d, n_sims=3, seed=2, path=tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="another design or seed"):
        vm.diagnose(vm.Design(SMALL, ["gee"]), n_sims=3, seed=1, path=tmp_path / "run", progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        vm.diagnose(d, n_sims=3, seed=1, path=tmp_path / "file", progress=False)


def test_stored_runs_resume_with_per_estimator_targets(tmp_path):
    d = vm.Design(NormalMean(), ["test_normal_mean", "test_shifted_mean"])
    full = vm.diagnose(d, n_sims=8, seed=2, progress=False)
    path = tmp_path / "run"
    vm.diagnose(d, n_sims=5, seed=2, path=path, chunk_size=2, progress=False)
    meta = json.loads((path / "diagnose.json").read_text())
    assert meta["targets"] == {"test_normal_mean": "theta", "test_shifted_mean": "theta_shifted"}
    resumed = vm.diagnose(d, n_sims=8, seed=2, path=path, progress=False)
    pd.testing.assert_frame_equal(resumed.replicates, full.replicates)
    pd.testing.assert_frame_equal(resumed.tidy(), full.tidy())
    # the same estimators scored against another truth are another design
    with pytest.raises(ValueError, match="another design or seed"):
        vm.diagnose(dataclasses.replace(d, estimand="theta"), n_sims=8, seed=2, path=path, progress=False)


def test_store_fingerprint_of_a_one_estimand_design_is_unchanged(tmp_path):
    """A design whose estimators are all scored against one key is fingerprinted as when the design
    carried that key as its estimand, so runs stored before per-estimator targets still resume."""
    d = vm.Design(SMALL, ["cluster_means", "gee"])
    vm.diagnose(d, n_sims=2, seed=1, path=tmp_path / "run", progress=False)
    stored = json.loads((tmp_path / "run" / "diagnose.json").read_text())["fingerprint"]
    forced = dataclasses.replace(d, estimand="effect")
    assert stored == hashlib.sha256(f"{forced!r}|seed=1".encode()).hexdigest()
    vm.diagnose(forced, n_sims=3, seed=1, path=tmp_path / "run", progress=False)   # the same scoring: resumes


# -- the replicate store: the package's own directory, one writer; workers die with their parent ----

def test_store_is_never_a_users_directory_and_is_replaced_only_with_overwrite(tmp_path):
    from verzuimmodel.outputs import OutputExistsError

    d = vm.Design(SMALL, ["cluster_means"])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(OutputExistsError, match="did not write"):
            vm.diagnose(d, n_sims=2, seed=1, path=mine, progress=False, overwrite=overwrite)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    run = tmp_path / "run"
    vm.diagnose(d, n_sims=3, seed=1, path=run, progress=False)
    with pytest.raises(ValueError, match="overwrite"):
        vm.diagnose(d, n_sims=3, seed=2, path=run, progress=False)
    fresh = vm.diagnose(d, n_sims=3, seed=2, path=run, progress=False, overwrite=True)
    pd.testing.assert_frame_equal(fresh.replicates, vm.diagnose(d, n_sims=3, seed=2, progress=False).replicates)
    assert json.loads((run / "diagnose.json").read_text())["seed"] == 2
    assert len(_stored(run)) == 3


def test_store_has_one_writer(tmp_path):
    from verzuimmodel.outputs import OutputLockedError, output_lock

    d = vm.Design(SMALL, ["cluster_means"])
    path = tmp_path / "run"
    with output_lock(path):
        with pytest.raises(OutputLockedError, match="another process"):
            vm.diagnose(d, n_sims=2, seed=1, path=path, progress=False)
    assert not path.exists()
    vm.diagnose(d, n_sims=2, seed=1, path=path, progress=False)
    assert len(_stored(path)) == 2


def test_processes_workers_die_with_a_killed_parent():
    """``kill -9`` of a run on the processes backend takes its workers with it (PR_SET_PDEATHSIG).

    psutil comes with dask.distributed; it also makes sure a pid reused after a worker died is never
    taken for that worker."""
    import signal
    import subprocess
    import sys
    import time

    import psutil

    code = ("import verzuimmodel as vm\n"
            "trial = vm.evaluate.ParallelTrial(n_clusters=8, cluster_size=10, icc=0.05, effect=0.5)\n"
            "vm.diagnose(vm.Design(trial, ['cluster_means']), n_sims=200000, seed=1, backend='processes',\n"
            "            workers=2, chunk_size=200, progress=False)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def running(procs):
        out = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.NoSuchProcess:
                pass
        return out

    workers: list = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline:
            assert parent.poll() is None, "the run ended before its workers started"
            time.sleep(0.2)
            workers = running(psutil.Process(parent.pid).children(recursive=True))
        assert len(workers) >= 2, "the processes backend started no workers"
        time.sleep(1.0)                                    # the workers are running replicates
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while running(workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running(workers) == [], "workers outlived their killed parent"
    finally:
        parent.kill()
        parent.wait()
        for p in running(workers):      # psutil checks the process is still that worker before killing it
            p.kill()
