"""FrailtyCox against R survival::coxph(... + frailty(g)) (frozen values in tests/reference/frailty),
against known truth, on the boundary theta = 0, and on bad input."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from verzuimmodel.errors import ConvergenceWarning
from verzuimmodel.schema import SchemaError
from verzuimmodel.survival.cox import CoxPH
from verzuimmodel.survival.frailty import FrailtyCox

REF = Path(__file__).resolve().parent / "reference" / "frailty"
RC = pd.read_csv(REF / "right_censored.csv")
SS = pd.read_csv(REF / "start_stop.csv")
SG = pd.read_csv(REF / "small_groups.csv")
NF = pd.read_csv(REF / "no_frailty.csv")
R = pd.read_csv(REF / "frailty_reference.csv")
FRAIL = pd.read_csv(REF / "frailty_frail.csv")

# model name in frailty.R -> (data, keyword arguments of FrailtyCox.fit, ties)
# All R fits: control = coxph.control(eps = 1e-12, outer.max = 200, iter.max = 100, toler.chol = 1e-14)
CASES = {
    # coxph(Surv(time, status) ~ x1 + x2 + frailty(g, distribution = "gamma", eps = 1e-14), rc)
    "rc_efron": (RC, {"duration": "time", "covariates": ["x1", "x2"]}, "efron"),
    # coxph(Surv(time, status) ~ x1 + x2 + frailty(g, distribution = "gamma", eps = 1e-14), rc, ties = "breslow")
    "rc_breslow": (RC, {"duration": "time", "covariates": ["x1", "x2"]}, "breslow"),
    # coxph(Surv(time, status) ~ x1 + strata(x2) + frailty(g, distribution = "gamma", eps = 1e-14), rc,
    #       weights = w, robust = FALSE)
    "rc_strata_weights": (RC, {"duration": "time", "covariates": ["x1"], "strata": "x2", "weights": "w"}, "efron"),
    # coxph(Surv(start, stop, status) ~ tv + z + frailty(g, distribution = "gamma", eps = 1e-14), ss)
    "ss_efron": (SS, {"duration": "stop", "covariates": ["tv", "z"], "entry": "start"}, "efron"),
    # coxph(Surv(time, status) ~ x1 + x2 + frailty(g, distribution = "gamma", eps = 1e-14), sg)  (5 groups: not sparse)
    "small_efron": (SG, {"duration": "time", "covariates": ["x1", "x2"]}, "efron"),
}
_FITS: dict = {}


def fit(name: str) -> FrailtyCox:
    if name not in _FITS:
        data, kw, ties = CASES[name]
        _FITS[name] = FrailtyCox(ties=ties).fit(data, event="status", group="g", **kw)
    return _FITS[name]


def ref(name: str, method: str) -> pd.DataFrame:
    return R[(R["model"] == name) & (R["method"] == method)].set_index("term")


def ref_frail(name: str, method: str, theta: float | None = None) -> pd.Series:
    f = FRAIL[(FRAIL["model"] == name) & (FRAIL["method"] == method)]
    if theta is not None:
        f = f[np.isclose(f["theta"], theta)]
    return f.set_index("g")["frail"]


@pytest.mark.parametrize("name", list(CASES))
def test_matches_r_own_fit(name):
    """R's own search for theta (frailty.controlgam with eps = 1e-14); it stops within ~2e-5 of the maximum."""
    m, r = fit(name), ref(name, "em")
    # fit <- coxph(... + frailty(g, distribution = "gamma", eps = 1e-14), ...); coef(fit)
    np.testing.assert_allclose(m.params_[r.index], r["coef"], rtol=1e-4)
    # sqrt(diag(fit$var))
    np.testing.assert_allclose(m.standard_errors_[r.index], r["se"], rtol=1e-4)
    # h <- fit$history[[1]]$history; h[nrow(h), "theta"]
    assert m.frailty_variance_ == pytest.approx(r["theta"].iloc[0], rel=1e-4)
    # h[nrow(h), "c.loglik"]  (the I-likelihood)
    assert m.log_likelihood_ == pytest.approx(r["c_loglik"].iloc[0], rel=1e-9)
    # fit$frail (log frailties; coef(fit)[gamma:*] with 5 groups)
    f = ref_frail(name, "em")
    np.testing.assert_allclose(m.log_frailties_.loc[f.index], f, atol=1e-3)
    assert m.n_events_ == r["nevent"].iloc[0]
    assert m.sparse_ == (name != "small_efron")


@pytest.mark.parametrize("name", list(CASES))
def test_matches_r_exact_maximum(name):
    """The exact maximiser of R's I-likelihood (optimize() over fits at fixed theta, see frailty.R)."""
    m, r = fit(name), ref(name, "opt")
    # optimize(function(th) coxph(... + frailty(g, theta = th))$history[[1]]$c.loglik, ..., maximum = TRUE)$maximum
    # (R's c.loglik is flat to ~1e-8 there, so optimize() pins theta only to ~1e-5)
    assert m.frailty_variance_ == pytest.approx(r["theta"].iloc[0], rel=1e-4)
    # fx <- coxph(... + frailty(g, distribution = "gamma", theta = <maximum>)); coef(fx); sqrt(diag(fx$var))
    np.testing.assert_allclose(m.params_[r.index], r["coef"], rtol=1e-6)
    np.testing.assert_allclose(m.standard_errors_[r.index], r["se"], rtol=1e-6)
    # fx$history[[1]]$c.loglik
    assert m.log_likelihood_ == pytest.approx(r["c_loglik"].iloc[0], rel=1e-12, abs=1e-8)
    # fx$frail
    f = ref_frail(name, "opt")
    np.testing.assert_allclose(m.log_frailties_.loc[f.index], f, atol=1e-5)
    np.testing.assert_allclose(m.frailties_.loc[f.index], np.exp(f), rtol=1e-5)


@pytest.mark.parametrize("theta", [0.1, 0.5, 1.5])
def test_fixed_theta_matches_r(theta):
    """Fixed theta: the penalised fit itself and the I-likelihood (which loglik enters c.loglik).

    R's inner Newton (sparse approximation, stopped on a relative change of 1e-12 in the penalised
    likelihood) converges linearly and stops ~1e-7 from the maximum: hence rtol 1e-6.
    """
    m = FrailtyCox(theta=theta).fit(RC, "time", "status", ["x1", "x2"], group="g")
    r = ref("rc_efron", "fixed")
    r = r[np.isclose(r["theta"], theta)]
    # fx <- coxph(Surv(time, status) ~ x1 + x2 + frailty(g, distribution = "gamma", theta = th), rc); coef(fx)
    np.testing.assert_allclose(m.params_[r.index], r["coef"], rtol=1e-6)
    # sqrt(diag(fx$var))
    np.testing.assert_allclose(m.standard_errors_[r.index], r["se"], rtol=1e-6)
    # fx$history[[1]]$c.loglik
    assert m.log_likelihood_ == pytest.approx(r["c_loglik"].iloc[0], rel=1e-12)
    # fx$loglik[2]  (the partial likelihood without the penalty; not at its own maximum, so first-order
    # sensitive to R's stopping error: d loglik / d omega_j = nu (exp(omega_j) - 1))
    assert m.partial_log_likelihood_ == pytest.approx(r["loglik"].iloc[0], rel=1e-7)
    # fx$frail
    f = ref_frail("rc_efron", "fixed", theta)
    np.testing.assert_allclose(m.log_frailties_.loc[f.index], f, atol=1e-6)
    assert np.isnan(m.frailty_variance_se_)


@pytest.mark.parametrize("name, theta", [(name, None) for name in CASES] + [("rc_efron", t) for t in (0.1, 0.5, 1.5)])
def test_effective_df_aic_and_bic_match_r(name, theta):
    """R's AIC(fit) and BIC(fit): the partial likelihood fit$loglik[2] with sum(fit$df), the effective degrees
    of freedom of coxpenal.df (sparse frailty information with many groups, the full one with 5), BIC's n the
    events. theta-hat against the fit at R's exact maximum; a fixed theta against R's fit at it."""
    if theta is None:
        m, r = fit(name), ref(name, "opt")
    else:
        data, kw, ties = CASES[name]
        m = FrailtyCox(theta=theta).fit(data, event="status", group="g", **kw)
        r = ref(name, "fixed")
        r = r[np.isclose(r["theta"], theta)]
    # sum(fx$df); fx$df[length(fx$df)] (the frailty term)
    assert m.df_.sum() == pytest.approx(r["df"].iloc[0], rel=1e-6)
    assert m.df_["frailty"] == pytest.approx(r["df_frailty"].iloc[0], rel=1e-6)
    assert ((m.df_.iloc[:-1] > 0.98) & (m.df_.iloc[:-1] < 1)).all()       # a covariate: a little under 1
    # AIC(fx), BIC(fx)
    assert m.aic_ == pytest.approx(r["aic"].iloc[0], rel=1e-8)
    assert m.bic_ == pytest.approx(r["bic"].iloc[0], rel=1e-8)
    assert f"AIC={m.aic_:.2f}, BIC={m.bic_:.2f}" in repr(m)


def test_boundary_no_frailty():
    """Schools dealt durations in turn (less variation than chance): theta-hat = 0, the plain Cox model."""
    with pytest.warns(ConvergenceWarning, match="frailty variance is on the boundary"):
        m = FrailtyCox().fit(NF, "time", "status", ["x1", "x2"], group="g")
    assert m.frailty_variance_ == 0.0 and m.boundary_
    # cx <- coxph(Surv(time, status) ~ x1 + x2, nf); coef(cx); sqrt(diag(cx$var)); cx$loglik[2]
    r = ref("no_frailty", "cox")
    np.testing.assert_allclose(m.params_[r.index], r["coef"], rtol=1e-7)
    np.testing.assert_allclose(m.standard_errors_[r.index], r["se"], rtol=1e-7)
    assert m.log_likelihood_ == pytest.approx(r["loglik"].iloc[0], rel=1e-12)
    # AIC(cx), BIC(cx): the plain Cox model's, with its p degrees of freedom and none for the frailty
    assert m.df_.tolist() == [1.0, 1.0, 0.0]
    assert (m.aic_, m.bic_) == (pytest.approx(r["aic"].iloc[0], rel=1e-10), pytest.approx(r["bic"].iloc[0], rel=1e-10))
    # R's own search: coxph(... + frailty(g, distribution = "gamma", eps = 1e-14), nf) ends at theta ~ 5e-9
    em = ref("no_frailty", "em")
    assert m.frailty_variance_ == pytest.approx(em["theta"].iloc[0], abs=1e-6)
    np.testing.assert_allclose(m.params_[em.index], em["coef"], rtol=1e-4)
    np.testing.assert_allclose(m.standard_errors_[em.index], em["se"], rtol=1e-4)
    # reported, never NaN: frailties all 1, a profile interval [0, upper], LR test 0 with p = 1
    assert (m.frailties_ == 1).all() and m.params_.notna().all() and m.standard_errors_.notna().all()
    low, high = m.frailty_variance_ci_
    assert low == 0 and 0 < high < 0.1
    assert m.frailty_lr_statistic_ == 0 and m.frailty_lr_p_value_ == 1
    t = m.tidy().set_index("term")
    assert t.loc["frailty_variance", "estimate"] == 0 and t.loc["frailty_variance", "conf_high"] == high
    # the upper end is where the I-likelihood falls chi2_1(0.95)/2 below L(0)
    at_high = FrailtyCox(theta=high).fit(NF, "time", "status", ["x1", "x2"], group="g")
    assert at_high.log_likelihood_ == pytest.approx(m.log_likelihood_ - stats.chi2.ppf(0.95, 1) / 2, abs=1e-6)


def test_frailty_variance_uncertainty():
    m = fit("rc_efron")
    low, high = m.frailty_variance_ci_
    assert low < m.frailty_variance_ < high
    cut = m.log_likelihood_ - stats.chi2.ppf(0.95, 1) / 2
    for end in (low, high):
        at = FrailtyCox(theta=end).fit(RC, "time", "status", ["x1", "x2"], group="g")
        assert at.log_likelihood_ == pytest.approx(cut, abs=1e-6)
    # curvature SE against a central second difference of the I-likelihood (R: c.loglik at theta * (1 +- h))
    h = 1e-3 * m.frailty_variance_
    L = [FrailtyCox(theta=m.frailty_variance_ + k * h).fit(RC, "time", "status", ["x1", "x2"], group="g")
         .log_likelihood_ for k in (-1, 0, 1)]
    curv = (L[0] - 2 * L[1] + L[2]) / h ** 2
    assert m.frailty_variance_se_ == pytest.approx(1 / np.sqrt(-curv), rel=1e-3)
    assert m.frailty_lr_statistic_ > 100 and m.frailty_lr_p_value_ < 1e-20


def test_tidy_and_attributes():
    m = fit("rc_efron")
    t = m.tidy()
    assert list(t["term"]) == ["x1", "x2", "frailty_variance"]
    np.testing.assert_allclose(t["exp_estimate"].iloc[:2], np.exp(m.params_))
    np.testing.assert_allclose(t["conf_high"].iloc[:2] - t["estimate"].iloc[:2],
                               1.959963984540054 * m.standard_errors_.to_numpy())
    row = t.iloc[2]
    assert row["estimate"] == m.frailty_variance_ and (row["conf_low"], row["conf_high"]) == m.frailty_variance_ci_
    assert np.isnan(row["exp_estimate"])
    assert list(m.tidy(frailty=False)["term"]) == ["x1", "x2"]
    assert m.frailties_.index.tolist() == sorted(RC["g"].unique())
    assert np.mean(m.frailties_) == pytest.approx(1.0, rel=1e-12)      # R's recentring: mean of exp(omega) is 1
    assert m.history_["theta"].is_monotonic_increasing and m.converged_
    assert "frailty variance" in repr(m)


def test_recovers_known_parameters():
    """20 seeded replicates, 200 schools x 40 pupils, theta = 0.5, log HRs 0.6 and -0.5: the mean
    estimates are within 3 Monte Carlo SE of the truth.

    (The I-likelihood estimate of theta, like other ML variance estimates, is biased by O(theta / G):
    about -0.008 here, well below the Monte Carlo SE of 0.01; with 80 schools it is -0.016.)
    """
    truth = np.array([0.6, -0.5, 0.5])
    est = []
    for seed in range(20):
        df = _simulate(np.random.default_rng(seed), n_groups=200, per_group=40, theta=0.5, beta=truth[:2])
        m = FrailtyCox(ci="none").fit(df, "time", "event", ["x1", "x2"], group="school")
        est.append([*m.params_, m.frailty_variance_])
    est = np.array(est)
    mcse = est.std(axis=0, ddof=1) / np.sqrt(len(est))
    assert np.all(np.abs(est.mean(axis=0) - truth) < 3 * mcse), (est.mean(axis=0), mcse)


def test_plain_cox_attenuates_frailty_cox_recovers():
    """Non-collapsibility: with a school frailty (theta = 1) the plain Cox model estimates the
    marginal log HR, attenuated towards 0; FrailtyCox recovers the conditional one (0.7)."""
    df = _simulate(np.random.default_rng(2026), n_groups=200, per_group=50, theta=1.0, beta=np.array([0.7, 0.0]),
                   censor_rate=0.02)
    fr = FrailtyCox(ci="none").fit(df, "time", "event", ["x1"], group="school")
    cox = CoxPH().fit(df, "time", "event", ["x1"])
    b, se = fr.params_["x1"], fr.standard_errors_["x1"]
    assert abs(b - 0.7) < 3 * se
    assert 0.7 - cox.params_["x1"] > 3 * cox.standard_errors_["x1"]
    assert cox.params_["x1"] < b - 3 * se
    assert abs(fr.frailty_variance_ - 1.0) < 3 * fr.frailty_variance_se_


def test_start_stop_equals_unsplit():
    """Splitting every row at half its duration (constant covariates, counting-process form) changes nothing."""
    m1 = FrailtyCox(ci="none").fit(RC, "time", "status", ["x1", "x2"], group="g")
    half = np.floor(RC["time"] / 2)
    first = RC.assign(start=0.0, stop=half, status=0)[half > 0]
    second = RC.assign(start=half, stop=RC["time"])
    split = pd.concat([first, second], ignore_index=True)
    m2 = FrailtyCox(ci="none").fit(split, "stop", "status", ["x1", "x2"], group="g", entry="start")
    np.testing.assert_allclose(m2.params_, m1.params_, rtol=1e-7)
    np.testing.assert_allclose(m2.standard_errors_, m1.standard_errors_, rtol=1e-7)
    assert m2.frailty_variance_ == pytest.approx(m1.frailty_variance_, rel=1e-7)
    assert m2.log_likelihood_ == pytest.approx(m1.log_likelihood_, rel=1e-12)


def test_no_covariates_and_dense_option():
    m = FrailtyCox(ci="none").fit(RC, "time", "status", [], group="g")
    assert len(m.params_) == 0 and m.frailty_variance_ > 0
    dense = FrailtyCox(ci="none", sparse=False).fit(RC, "time", "status", ["x1", "x2"], group="g")
    sparse = fit("rc_efron")
    np.testing.assert_allclose(dense.params_, sparse.params_, rtol=1e-7)   # same maximum, other variance
    assert dense.frailty_variance_ == pytest.approx(sparse.frailty_variance_, rel=1e-7)
    assert not dense.sparse_ and np.all(dense.standard_errors_ > 0)


def test_bad_input():
    bad = RC.copy()
    bad.loc[4, "status"] = 2
    with pytest.raises(SchemaError, match=r"column 'status'.*data row\(s\) 5"):
        FrailtyCox().fit(bad, "time", "status", ["x1"], group="g")
    bad = RC.astype({"g": float})
    bad.loc[[2, 7], "g"] = np.nan
    with pytest.raises(SchemaError, match=r"column 'g'.*missing values.*data row\(s\) 3, 8"):
        FrailtyCox().fit(bad, "time", "status", ["x1"], group="g")
    with pytest.raises(SchemaError, match="column 'school'.*not found"):
        FrailtyCox().fit(RC, "time", "status", ["x1"], group="school")
    bad = SS.copy()
    bad.loc[2, "stop"] = bad.loc[2, "start"]
    with pytest.raises(SchemaError, match=r"column 'stop'.*stop time not after start"):
        FrailtyCox().fit(bad, "stop", "status", ["z"], group="g", entry="start")
    with pytest.raises(SchemaError, match=r"column 'w'.*not positive"):
        FrailtyCox().fit(RC.assign(w=-1.0), "time", "status", ["x1"], group="g", weights="w")
    with pytest.raises(ValueError, match="at least 2 groups"):
        FrailtyCox().fit(RC.assign(g=1), "time", "status", ["x1"], group="g")
    with pytest.raises(ValueError, match="collinear"):
        FrailtyCox().fit(RC.assign(x3=2 * RC["x1"]), "time", "status", ["x1", "x3"], group="g")
    with pytest.raises(ValueError, match="distribution"):
        FrailtyCox(distribution="lognormal")
    with pytest.raises(ValueError, match="ties"):
        FrailtyCox(ties="exact")
    with pytest.raises(ValueError, match="theta"):
        FrailtyCox(theta=-0.1)
    with pytest.raises(TypeError, match="DataFrame"):
        FrailtyCox().fit(RC.to_numpy(), "time", "status", ["x1"], group="g")


def _simulate(rng: np.random.Generator, n_groups: int, per_group: int, theta: float, beta: np.ndarray,
              censor_rate: float = 0.05) -> pd.DataFrame:
    """``h_ij(t) = 0.1 Z_j exp(beta_1 x1 + beta_2 x2)``: x1 standard normal, x2 binary,
    ``Z_j ~ Gamma(mean 1, variance theta)`` per school, exponential censoring at ``censor_rate``;
    times rounded up to sevenths (ties)."""
    n = n_groups * per_group
    school = np.repeat(np.arange(n_groups), per_group)
    z = rng.gamma(1 / theta, theta, n_groups) if theta > 0 else np.ones(n_groups)
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n)])
    t = rng.exponential(1 / (0.1 * z[school] * np.exp(x @ beta)))
    c = rng.exponential(1 / censor_rate, n)
    return pd.DataFrame({"time": np.ceil(np.minimum(t, c) * 7) / 7, "event": (t <= c).astype(int), "x1": x[:, 0],
                         "x2": x[:, 1], "school": school})


@pytest.mark.slow
def test_large_fit_recovers_truth():
    """200,000 rows in 2,000 schools (the benchmark's size; timing is in benchmarks/bench_frailty.py)."""
    df = _simulate(np.random.default_rng(7), n_groups=2000, per_group=100, theta=0.5, beta=np.array([0.5, -0.4]))
    m = FrailtyCox().fit(df, "time", "event", ["x1", "x2"], group="school")
    assert np.all(np.abs(m.params_ - [0.5, -0.4]) < 4 * m.standard_errors_)
    assert abs(m.frailty_variance_ - 0.5) < 4 * m.frailty_variance_se_
    low, high = m.frailty_variance_ci_
    assert low < m.frailty_variance_ < high


@pytest.mark.slow
def test_coverage_of_intervals():
    """1,000 replicates (100 schools x 15 pupils, theta = 0.5): the 95% Wald intervals of the log HRs
    and the profile-likelihood interval of theta cover the truth 93-97% of the time, and the mean
    estimates are within 3 Monte Carlo SE of the truth."""
    beta, theta = np.array([0.6, -0.5]), 0.5
    covered, est = [], []
    for seq in np.random.SeedSequence(99).spawn(1000):
        df = _simulate(np.random.default_rng(seq), n_groups=100, per_group=15, theta=theta, beta=beta)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)       # the odd replicate on the boundary
            m = FrailtyCox().fit(df, "time", "event", ["x1", "x2"], group="school")
        t = m.tidy().set_index("term")
        low = np.r_[t["conf_low"].iloc[:2], m.frailty_variance_ci_[0]]
        high = np.r_[t["conf_high"].iloc[:2], m.frailty_variance_ci_[1]]
        truth = np.r_[beta, theta]
        covered.append((low <= truth) & (truth <= high))
        est.append([*m.params_, m.frailty_variance_])
    coverage = np.mean(covered, axis=0)
    assert np.all((coverage >= 0.93) & (coverage <= 0.97)), coverage
    est = np.array(est)
    mcse = est.std(axis=0, ddof=1) / np.sqrt(len(est))
    assert np.all(np.abs(est.mean(axis=0) - np.r_[beta, theta]) < 3 * mcse)


def test_separation_in_the_frailty_model_names_the_covariate():
    """D2: a covariate whose events all come first (separation) gave a bare LinAlgError; now a
    ConvergenceError names it (R's coxph returns an estimate near infinity with a warning)."""
    from verzuimmodel.errors import ConvergenceError

    rng = np.random.default_rng(1)
    n = 300
    sep = (rng.random(n) < 0.3).astype(float)
    t = rng.exponential(1, n)
    df = pd.DataFrame({"time": np.where(sep == 1, t * 0.001, t + 10), "event": 1, "x": rng.normal(size=n),
                       "sep": sep, "g": rng.integers(0, 20, n)})
    with pytest.raises(ConvergenceError, match="the coefficient of 'sep' may be infinite"):
        FrailtyCox().fit(df, duration="time", event="event", covariates=["x", "sep"], group="g")


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_sparse_kernels_match_the_full_information(ties):
    """The compiled per-group passes (rows sorted by group, a sweep down the event times for each group's
    risk totals) give the score, cross information, diagonal of the frailty block and products with the
    information that the generic Cox engine gives with the groups as indicator columns; with strata, late
    entry (before and after a stratum's first death), case weights and tied deaths; to rounding error."""
    from verzuimmodel.survival._data import survival_data
    from verzuimmodel.survival.penalised_frailty import _Problem

    rng = np.random.default_rng(11)
    n, G = 500, 12
    start = np.where(rng.random(n) < 0.4, rng.integers(0, 12, n), 0).astype(float)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": 20 + rng.normal(size=n), "start": start,
                       "stop": start + rng.integers(1, 25, n), "status": (rng.random(n) < 0.6).astype(int),
                       "s": rng.integers(0, 2, n), "w": rng.uniform(0.5, 2.0, n)})
    g = rng.integers(0, G, n)
    d = survival_data(df, duration="stop", event="status", covariates=["x", "z"], entry="start", weights="w",
                      strata="s")
    sparse, full = _Problem(d, g, G, ties, True), _Problem(d, g, G, ties, False)
    beta, omega = np.array([0.3, -0.1]), 0.4 * rng.normal(size=G)
    ps, pf = sparse.point(beta, omega), full.point(beta, omega)
    assert ps.loglik == pytest.approx(pf.loglik, rel=1e-12)
    np.testing.assert_allclose(ps.grad_w, pf.grad_w, atol=1e-10 * np.abs(pf.grad_w).max())
    np.testing.assert_allclose(ps.info_wb, pf.info_wb, rtol=1e-9, atol=1e-10 * np.abs(pf.info_wb).max())
    np.testing.assert_allclose(ps.info_ww, np.diag(pf.info_ww), rtol=1e-10)
    H = np.block([[pf.info_bb, pf.info_wb.T], [pf.info_wb, pf.info_ww]])
    v = rng.normal(size=2 + G)
    hb, hw = sparse.hessvec(ps, v[:2], v[2:])
    Hv = H @ v
    np.testing.assert_allclose(np.concatenate([hb, hw]), Hv, rtol=1e-9, atol=1e-10 * np.abs(Hv).max())
