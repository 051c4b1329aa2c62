"""Simulated power against closed forms, power curves and sample sizes.

Tolerances are 3 Monte Carlo SEs of the simulated power, computed from the formula's power
(``sqrt(p (1 - p) / n_sims)``); every run is seeded, so the checks are deterministic.

The t-versus-normal question: the ``cluster_means`` tests are t-tests, so they are compared with
the exact power of a t-test (noncentral t) built on the same closed-form variance — the
design-effect variance for a parallel trial, the Hussey & Hughes variance (its within-cluster
limit, which is what a cluster fixed-effects analysis estimates) for a stepped wedge. The
textbook normal-reference formulas are checked where the difference is negligible: a parallel
trial with 200 clusters (t and normal power differ by 0.004, a third of an MCSE), and the
stepped-wedge LMM, whose Satterthwaite df are in the hundreds.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import verzuimmodel as vm
from verzuimmodel.evaluate import formula_power, hussey_hughes_variance, parallel_variance, trials, wald_power

P = vm.evaluate.ParallelTrial
SW = vm.evaluate.SteppedWedgeTrial


def simulated_power(trial, estimator, n_sims, seed, **kwargs) -> pd.Series:
    return vm.diagnose(vm.Design(trial, [estimator]), n_sims=n_sims, seed=seed, progress=False, **kwargs).tidy().iloc[0]


def within_3_mcse(row, expected, n_sims):
    mcse = math.sqrt(expected * (1 - expected) / n_sims)
    assert row["n_failed"] == 0
    assert abs(row["power"] - expected) < 3 * mcse, (row["power"], expected, mcse)


# -- the closed forms themselves -------------------------------------------------------------------------

def test_design_effect_variance():
    # DE = 1 + (m - 1) rho; Var = s^2 / m * DE * (1/k1 + 1/k0)
    assert vm.evaluate.design_effect(20, 0.05) == pytest.approx(1.95)
    assert parallel_variance(4, 4, 20, 0.05, sd=2.0) == pytest.approx(4 / 20 * 1.95 * 0.5)


def _gls_variance(x, tau2, sigma2):
    """[(X' V^-1 X)^-1]_treat for cluster-period means with period effects, V = sigma2 I + tau2 J per cluster."""
    n_cl, t = x.shape
    vinv = np.linalg.inv(sigma2 * np.eye(t) + tau2 * np.ones((t, t)))
    info = np.zeros((t + 1, t + 1))
    for i in range(n_cl):
        z = np.column_stack([np.eye(t), x[i]])  # period means, then treat
        info += z.T @ vinv @ z
    return np.linalg.inv(info)[-1, -1]


def test_hussey_hughes_closed_form_is_the_gls_variance():
    x = SW(n_clusters=7, n_periods=5).treatment_matrix()
    for tau2, sigma2 in [(0.05, 0.095), (0.5, 0.02), (0.0, 0.1)]:
        assert hussey_hughes_variance(x, tau2, sigma2) == pytest.approx(_gls_variance(x, tau2, sigma2), rel=1e-10)
    # tau -> infinity: the cluster fixed-effects (within-cluster) variance
    assert hussey_hughes_variance(x, math.inf, 0.1) == pytest.approx(_gls_variance(x, 1e9, 0.1), rel=1e-6)


def test_wald_power():
    assert wald_power(0.0, 1.0) == pytest.approx(0.05)
    assert wald_power(2.8, 1.0) == pytest.approx(0.7995, abs=1e-4)  # the classic 80% at 2.8 SE
    assert wald_power(0.0, 1.0, df=5) == pytest.approx(0.05)
    assert wald_power(2.8, 1.0, df=5) < wald_power(2.8, 1.0)
    assert np.isnan(formula_power(P(outcome="binary")))


# -- simulated power versus the formulas -------------------------------------------------------------------

def test_parallel_power_matches_the_design_effect_formula_t_reference():
    """8 clusters of 20: the cluster-means t-test (6 df) against the exact t power with the DE variance.
    (The normal-reference formula, 0.776, would be 0.15 off: the small-sample t difference.)"""
    trial = P(n_clusters=8, cluster_size=20, icc=0.05, effect=0.6)
    expected = formula_power(trial, reference="t")
    assert expected == pytest.approx(0.623, abs=1e-3)
    within_3_mcse(simulated_power(trial, "cluster_means", 2000, seed=1), expected, 2000)


def test_parallel_power_matches_the_design_effect_formula_normal_reference():
    """200 clusters of 5: the textbook normal formula, where t and normal differ by 0.004 (0.35 MCSE)."""
    trial = P(n_clusters=200, cluster_size=5, icc=0.05, effect=0.14)
    expected = formula_power(trial, reference="z")
    assert abs(expected - formula_power(trial, reference="t")) < 0.005
    within_3_mcse(simulated_power(trial, "cluster_means", 2000, seed=2), expected, 2000)


def test_stepped_wedge_within_cluster_power_matches_hussey_hughes():
    """6 clusters, 4 periods, 10 per cluster-period: the cluster fixed-effects analysis of cluster-period
    means against Hussey & Hughes' variance in its within-cluster limit, exact t power on KT - K - T df."""
    trial = SW(n_clusters=6, n_periods=4, cluster_period_size=10, icc=0.05, effect=0.4, time_trend=0.1)
    expected = formula_power(trial, reference="t")
    sigma2 = 0.95 / 10
    se = math.sqrt(hussey_hughes_variance(trial.treatment_matrix(), math.inf, sigma2))
    assert expected == pytest.approx(wald_power(0.4, se, df=6 * 4 - 6 - 4), rel=1e-12)
    within_3_mcse(simulated_power(trial, "cluster_means", 2000, seed=3), expected, 2000)



def _lmm_available() -> bool:
    try:
        import verzuimmodel.mixed.lmm  # noqa: F401
    except ImportError:
        return False
    return True


needs_lmm = pytest.mark.skipif(not _lmm_available(), reason="verzuimmodel.mixed.lmm cannot be imported")


@needs_lmm
def test_lmm_on_a_balanced_parallel_trial_is_the_cluster_means_t_test():
    """Balanced one-way data with an interior REML fit: the LMM's estimate, SE and Satterthwaite df are
    those of the t-test on cluster means (K - 2 df)."""
    trial = P(n_clusters=10, cluster_size=12, icc=0.2, effect=0.5)
    checked = 0
    for seed in range(6):
        data = trial.simulate(seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = trials.lmm(data)
        if any("boundary" in str(w.message) for w in caught):
            continue
        ref = trials.cluster_means(data)
        assert est.coef == pytest.approx(ref.coef, rel=1e-8)
        assert est.std_error == pytest.approx(ref.std_error, rel=1e-4)
        assert est.df == pytest.approx(8, rel=1e-3)
        checked += 1
    assert checked >= 3


@needs_lmm
def test_stepped_wedge_lmm_power_matches_hussey_hughes():
    """12 clusters, 4 periods, 10 per cluster-period: REML LMM with period effects against Hussey &
    Hughes' GLS formula (normal reference; the LMM's Satterthwaite df are in the hundreds)."""
    trial = SW(n_clusters=12, n_periods=4, cluster_period_size=10, icc=0.05, effect=0.3)
    expected = formula_power(trial, reference="z")
    row = simulated_power(trial, "lmm", 300, seed=4, backend="processes", workers=2)
    within_3_mcse(row, expected, 300)
    assert abs(row["coverage"] - 0.95) < 3 * math.sqrt(0.95 * 0.05 / 300)


@pytest.mark.slow
def test_stepped_wedge_gee_power_matches_hussey_hughes():
    """48 clusters, 4 periods: exchangeable GEE (Mancl-DeRouen SE, t on 46 df) against Hussey & Hughes."""
    trial = SW(n_clusters=48, n_periods=4, cluster_period_size=10, icc=0.05, effect=0.15)
    expected = formula_power(trial, reference="z")
    row = simulated_power(trial, "gee", 1000, seed=5, backend="processes", workers=2)
    within_3_mcse(row, expected, 1000)


@pytest.mark.slow
@pytest.mark.parametrize("trial, estimator", [
    (P(n_clusters=40, cluster_size=20, icc=0.05, effect=math.log(1.5), outcome="binary"), "gee_logit"),
    (P(n_clusters=20, cluster_size=20, icc=0.05, effect=math.log(0.8), outcome="count"), "gee_poisson"),
    (SW(n_clusters=12, n_periods=4, cluster_period_size=10, outcome="binary", effect=0.4), "gee_logit"),
])
def test_gee_recovers_the_marginal_truth(trial, estimator):
    """Bias within 3 MCSE and coverage within 3 MCSE of 0.95 over 1000 replicates. (With 20 binary
    clusters the Mancl-DeRouen intervals over-cover, 0.972: they are conservative with few clusters.)"""
    row = simulated_power(trial, estimator, 1000, seed=6, backend="processes", workers=2)
    assert row["n_failed"] == 0
    assert abs(row["bias"]) < 3 * row["bias_mcse"]
    assert abs(row["coverage"] - 0.95) < 3 * math.sqrt(0.95 * 0.05 / 1000)


# -- power curves and sample size ---------------------------------------------------------------------------

def test_power_curve_table_and_plot():
    design = vm.Design(P(cluster_size=10, icc=0.05, effect=0.5), ["cluster_means", "gee"])
    curve = vm.power_curve(design, vary={"n_clusters": [6, 10], "icc": [0.02, 0.1]}, n_sims=20, seed=1,
                           progress=False)
    assert list(curve.columns[:3]) == ["n_clusters", "icc", "estimator"]
    assert len(curve) == 8 and (curve["n_sims"] == 20).all()
    expected = [formula_power(P(n_clusters=k, cluster_size=10, icc=r, effect=0.5)) for k in (6, 10)
                for r in (0.02, 0.1) for _ in range(2)]
    assert curve["formula_power"].tolist() == pytest.approx(expected)
    # every point uses the same seed: the n_clusters=6, icc=0.02 point is an ordinary diagnosis
    one = vm.diagnose(vm.Design(P(n_clusters=6, cluster_size=10, icc=0.02, effect=0.5), ["cluster_means", "gee"]),
                      n_sims=20, seed=1, progress=False).tidy()
    pd.testing.assert_frame_equal(curve.iloc[:2, 2:-1].reset_index(drop=True), one)
    import matplotlib

    matplotlib.use("Agg")
    fig = vm.evaluate.plots.plot_power_curve(curve)
    assert fig.axes[0].get_xlabel() == "n_clusters"
    fig2 = vm.evaluate.plots.plot_diagnosis(one)
    assert len(fig2.axes) == 3


def test_power_curve_rejects_bad_grids():
    design = vm.Design(P(), ["cluster_means"])
    with pytest.raises(ValueError, match="trial parameter 'clusters'"):
        vm.power_curve(design, vary={"clusters": [4, 6]}, n_sims=2, progress=False)
    with pytest.raises(ValueError, match="trial key 'n_clusters'"):  # checked before anything runs
        vm.power_curve(design, vary={"n_clusters": [8, 2]}, n_sims=2, progress=False)
    with pytest.raises(ValueError, match="non-empty list"):
        vm.power_curve(design, vary={"n_clusters": 8}, n_sims=2, progress=False)


def test_sample_size_reaches_the_target_with_the_fewest_clusters():
    design = vm.Design(P(n_clusters=8, cluster_size=20, icc=0.05, effect=0.5), ["cluster_means"])
    n_sims = 1000
    ss = vm.sample_size(design, parameter="n_clusters", target_power=0.8, n_sims=n_sims, seed=1, progress=False)
    ev = ss.evaluated.set_index("n_clusters")
    assert ss.power >= 0.8 and ss.power == ev.loc[ss.value, "power"]
    assert ss.power_mcse == pytest.approx(math.sqrt(ss.power * (1 - ss.power) / n_sims))
    assert (ev.loc[ev.index < ss.value, "power"] < 0.8).all() and ss.value - 1 in ev.index
    # the exact t-test power agrees within Monte Carlo error at the answer and just below it
    for k in (ss.value - 1, ss.value):
        exact = formula_power(P(n_clusters=k, cluster_size=20, icc=0.05, effect=0.5), reference="t")
        assert abs(ev.loc[k, "power"] - exact) < 3 * math.sqrt(exact * (1 - exact) / n_sims)
    assert ev.index.min() == 4  # the smallest valid number of clusters was tried first


def test_sample_size_arguments():
    design = vm.Design(P(), ["cluster_means", "gee"])
    with pytest.raises(ValueError, match="several"):
        vm.sample_size(design, n_sims=2, progress=False)
    with pytest.raises(ValueError, match="integer parameter"):
        vm.sample_size(design, parameter="icc", estimator="gee", n_sims=2, progress=False)
    with pytest.raises(ValueError, match="not reached"):
        vm.sample_size(vm.Design(P(effect=0.01), ["cluster_means"]), low=4, high=6, n_sims=20, progress=False)


def test_pooled_power_is_the_power_of_the_mean_of_k_regions():
    """The formula: averaging k independent normal region estimates, the Wald test's rejection rate
    (simulated, 200,000 studies) equals pooled_power within Monte Carlo error."""
    from scipy.stats import norm

    from verzuimmodel.evaluate.measures import pooled_power

    rng = np.random.default_rng(7)
    m, s, k, n = -0.12, 0.30, 9, 200_000
    pooled = rng.normal(m, s, size=(n, k)).mean(axis=1)
    rejects = np.abs(pooled) / (s / np.sqrt(k)) > norm.ppf(0.975)
    value, mcse = pooled_power(m, s, n_sims=10**9, k=k)       # n_sims huge: the formula's own MCSE ~ 0
    assert abs(rejects.mean() - value) < 4 * np.sqrt(value * (1 - value) / n)
    one, _ = pooled_power(m, s, n_sims=100, k=1)
    assert one < value                                         # more regions, more power
    assert np.isnan(pooled_power(m, 0.0, 100, 4)[0]) and np.isnan(pooled_power(m, s, 1, 4)[0])
    # the delta-method MCSE shrinks as 1/sqrt(n_sims)
    assert pooled_power(m, s, 400, k)[1] == pytest.approx(pooled_power(m, s, 100, k)[1] / 2, rel=0.01)


@pytest.mark.slow
def test_pooled_power_from_one_region_predicts_the_power_of_three():
    """Outside the formula's own model: the real estimator on simulated regions. The power of a
    3-region design (diagnosed whole) against pooled_power from replicates of one of its regions."""
    import dataclasses

    from verzuimmodel.evaluate.measures import pooled_power

    base = vm.Scenario.default()
    p = base.population
    three = dataclasses.replace(base, population=dataclasses.replace(
        p, n_regions=3, n_po_schools=3 * p.n_po_schools, n_vo_schools=3 * p.n_vo_schools))
    n = 150
    whole = vm.diagnose(vm.Design(three, ["vo_episode_rate"]), n_sims=n, seed=21, backend="processes",
                        progress=False).tidy().iloc[0]
    region = vm.diagnose(vm.Design(three.one_region(), ["vo_episode_rate"]), n_sims=n, seed=22,
                         backend="processes", progress=False).tidy().iloc[0]
    value, mcse = pooled_power(region["mean_estimate"], region["emp_se"], n, 3)
    assert abs(value - whole["power"]) < 3 * np.hypot(mcse, whole["power_mcse"])


def test_the_report_diagnoses_a_national_design_on_one_region():
    from verzuimmodel.report.results import REGIONAL_DIAGNOSIS, pool_regions, regional_design

    national = vm.Scenario.national()
    simulated, k = regional_design(national)
    assert k == national.population.n_regions and simulated == national.one_region()
    assert simulated.population.n_po_schools <= REGIONAL_DIAGNOSIS
    default = vm.Scenario.default()
    assert regional_design(default) == (default, 1)
    dg = pd.DataFrame({"estimator": ["a", "b"], "mean_estimate": [-0.16, 0.0], "emp_se": [0.15, 0.2],
                       "n_used": [60, 60], "power": [0.2, 0.05], "power_mcse": [0.05, 0.03]})
    pooled = pool_regions(dg, 39)
    assert list(pooled["power_region"]) == [0.2, 0.05]
    assert pooled["power"].iloc[0] > 0.99 and pooled["power"].iloc[1] == pytest.approx(0.05)
    assert pool_regions(dg, 1) is dg
