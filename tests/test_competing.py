"""FineGray (Fine & Gray 1999) and finegray_expand, against R cmprsk::crr / survival::finegray.

Reference values: tests/reference/finegray/ (make_data.py -> competing*.csv; finegray.R -> crr_*.csv,
finegray_*.csv). R 4.x, cmprsk 2.2-11, survival 3.5-3. CI does not need R.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from verzuimmodel.errors import ConvergenceWarning
from verzuimmodel.schema import SchemaError
from verzuimmodel.survival.competing import FineGray, finegray_expand
from verzuimmodel.tidy import TIDY_COLUMNS

REF = Path(__file__).parent / "reference" / "finegray"
COVS = ["x1", "x2", "x3"]
RTOL = 1e-4          # the project's definition of done for R reference values


@pytest.fixture(scope="module")
def cc() -> pd.DataFrame:
    return pd.read_csv(REF / "competing.csv")


@pytest.fixture(scope="module")
def crr_ref() -> pd.DataFrame:
    return pd.read_csv(REF / "crr_reference.csv")


def _fit(cc, cause, **kw):
    return FineGray(cause=cause).fit(cc, duration="time", event="status", covariates=COVS, **kw)


# ---------------------------------------------------------------------------------------------
# against cmprsk::crr
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model,cause", [("cause1", 1), ("cause2", 2), ("cause3", 3)])
def test_crr_coefficients_and_standard_errors(cc, crr_ref, model, cause):
    m = _fit(cc, cause)
    ref = crr_ref[crr_ref["model"] == model].set_index("term").loc[COVS]
    assert m.converged_
    # R: fit <- crr(cc$time, cc$status, cov1, failcode = <cause>, cencode = 0); fit$coef
    np.testing.assert_allclose(m.params_.to_numpy(), ref["coef"], rtol=RTOL)
    # R: sqrt(diag(fit$var))      (sandwich, accounts for the estimated censoring weights)
    np.testing.assert_allclose(m.standard_errors_.to_numpy(), ref["se"], rtol=RTOL)
    # R: sqrt(diag(fit$invinf))   (naive, inverse information)
    np.testing.assert_allclose(np.sqrt(np.diag(m.naive_var_)), ref["naive_se"], rtol=RTOL)
    # R: fit$loglik, fit$loglik.null   (rtol 1e-6: the log-likelihood is flat at the optimum)
    np.testing.assert_allclose(m.log_likelihood_, ref["loglik"].iloc[0], rtol=1e-6)
    np.testing.assert_allclose(m.log_likelihood_null_, ref["loglik_null"].iloc[0], rtol=1e-6)
    assert m.n_obs_ == ref["n"].iloc[0]


@pytest.mark.parametrize("model,cause", [("cause1", 1), ("cause2", 2), ("cause3", 3)])
def test_aic_and_bic_as_r_for_a_cox_model(cc, model, cause):
    """crr has no AIC/BIC: R's coxph definitions on crr's log-likelihood (BIC's n: the events of the cause)."""
    ref = pd.read_csv(REF / "crr_ic.csv").set_index("model").loc[model]
    m = _fit(cc, cause)
    assert m.n_events_ == ref["nevent"] and len(m.params_) == ref["df"]
    # R: -2 * fit$loglik + 2 * p, -2 * fit$loglik + log(sum(status == cause)) * p
    np.testing.assert_allclose([m.aic_, m.bic_], [ref["aic"], ref["bic"]], rtol=1e-8)
    assert f"AIC={m.aic_:.2f}, BIC={m.bic_:.2f}" in repr(m)


def test_cause_specific_aic_and_bic_match_r_multi_state_coxph(cc):
    """The causes together as R's coxph(Surv(time, factor(status)) ~ x1 + x2 + x3, cc, id = id): log partial
    likelihood summed over the causes, AIC(fit) and BIC(fit) with all events as n."""
    from verzuimmodel.survival import CauseSpecificCox

    ref = pd.read_csv(REF / "cause_specific_ic.csv").iloc[0]
    cs = CauseSpecificCox().fit(cc, "time", "status", COVS)
    assert cs.n_events_ == ref["nobs"] and sum(len(m.params_) for m in cs.models_.values()) == ref["df"]
    np.testing.assert_allclose(cs.log_likelihood_, ref["loglik"], rtol=1e-10)
    np.testing.assert_allclose([cs.aic_, cs.bic_], [ref["aic"], ref["bic"]], rtol=1e-10)
    assert f"AIC={ref['aic']:.2f}, BIC={ref['bic']:.2f}" in repr(cs) and "causes 1, 2, 3" in repr(cs)


@pytest.mark.parametrize("model,cause", [("cause1", 1), ("cause2", 2)])
def test_crr_full_variance_matrices(cc, model, cause):
    m = _fit(cc, cause)
    ref = pd.read_csv(REF / "crr_variance.csv")
    ref = ref[ref["model"] == model]
    for matrix, ours in [("var", m.variance_), ("invinf", m.naive_var_)]:
        r = ref[ref["matrix"] == matrix].pivot(index="row", columns="col", values="value").loc[COVS, COVS]
        # R: fit$var, fit$invinf   (off-diagonal elements near 0: atol 1e-4 of the smallest variance)
        np.testing.assert_allclose(ours.loc[COVS, COVS].to_numpy(), r.to_numpy(), rtol=RTOL,
                                   atol=RTOL * np.diag(r).min())


def test_crr_frequency_weights_equal_replicated_rows(cc, crr_ref):
    m = _fit(cc, 1, weights="fw")
    ref = crr_ref[crr_ref["model"] == "cause1_fw"].set_index("term").loc[COVS]
    # R: rep_rows <- rep(seq_len(nrow(cc)), cc$fw)
    #    crr(cc$time[rep_rows], cc$status[rep_rows], cov1[rep_rows, ], failcode = 1, cencode = 0)
    np.testing.assert_allclose(m.params_.to_numpy(), ref["coef"], rtol=RTOL)
    np.testing.assert_allclose(m.standard_errors_.to_numpy(), ref["se"], rtol=RTOL)
    np.testing.assert_allclose(np.sqrt(np.diag(m.naive_var_)), ref["naive_se"], rtol=RTOL)
    np.testing.assert_allclose(m.log_likelihood_, ref["loglik"].iloc[0], rtol=1e-6)


@pytest.mark.parametrize("model,cause", [("cause1", 1), ("cause3", 3)])
def test_crr_baseline_jumps(cc, model, cause):
    m = _fit(cc, cause)
    ref = pd.read_csv(REF / "crr_baseline.csv")
    ref = ref[ref["model"] == model]
    bh = m.baseline_cumulative_subdistribution_hazard_
    # R: fit$uftime (exact), fit$bfitj
    np.testing.assert_array_equal(bh["time"].to_numpy(), ref["time"].to_numpy())
    np.testing.assert_allclose(bh["hazard"].to_numpy(), ref["bfitj"].to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(bh["cumulative_hazard"].to_numpy(), np.cumsum(ref["bfitj"].to_numpy()), rtol=RTOL)


@pytest.mark.parametrize("model,cause", [("cause1", 1), ("cause2", 2), ("cause3", 3), ("cause1_fw", 1)])
def test_predict_crr_cumulative_incidence(cc, model, cause):
    m = _fit(cc, cause, weights="fw" if model.endswith("fw") else None)
    ref = pd.read_csv(REF / "crr_predict.csv")
    ref = ref[ref["model"] == model]
    for _, g in ref.groupby("profile"):
        cif = m.predict_cumulative_incidence(g.iloc[[0]][COVS], times=g["time"].to_numpy())
        # R: p <- predict(fit, as.matrix(profiles[, c("x1", "x2", "x3")]))
        #    p[findInterval(times, p[, 1]), profile + 1]       (0 before the first failure time)
        np.testing.assert_allclose(cif.iloc[:, 0].to_numpy(), g["cif"].to_numpy(), rtol=RTOL)


# ---------------------------------------------------------------------------------------------
# weights, clusters, invariances, output contract
# ---------------------------------------------------------------------------------------------
def test_weights_are_frequency_weights_and_clusters_sum_influence(cc):
    rep = cc.loc[cc.index.repeat(cc["fw"])].reset_index(drop=True)
    a = _fit(cc, 2, weights="fw")
    b = _fit(rep, 2)
    np.testing.assert_allclose(a.params_, b.params_, rtol=1e-8)
    np.testing.assert_allclose(a.variance_, b.variance_, rtol=1e-8)
    # a cluster per row with unit weights is crr's variance
    one = cc.assign(row=np.arange(len(cc)))
    np.testing.assert_allclose(_fit(one, 2, cluster="row").variance_, _fit(cc, 2).variance_, rtol=1e-10)
    # clustering by school changes the SEs, not the estimates; row order does not matter
    c = _fit(cc, 2, cluster="cl")
    np.testing.assert_allclose(c.params_, _fit(cc, 2).params_, rtol=1e-12)
    assert not np.allclose(c.standard_errors_, _fit(cc, 2).standard_errors_, rtol=1e-3)
    assert c.n_clusters_ == cc["cl"].nunique()
    shuffled = cc.sample(frac=1.0, random_state=np.random.default_rng(3))
    s = _fit(shuffled, 2, cluster="cl")
    np.testing.assert_allclose(s.params_, c.params_, rtol=1e-10)
    np.testing.assert_allclose(s.variance_, c.variance_, rtol=1e-8)


def test_fit_contract_tidy_and_prediction(cc):
    fg = FineGray(cause=1)
    assert fg.fit(cc, duration="time", event="status", covariates=COVS) is fg
    t = fg.tidy()
    assert list(t.columns) == TIDY_COLUMNS and list(t["term"]) == COVS
    np.testing.assert_allclose(t["exp_estimate"], np.exp(fg.params_.to_numpy()))
    np.testing.assert_allclose(t["std_error"], fg.standard_errors_.to_numpy())
    assert fg.n_events_ + fg.n_competing_ + fg.n_censored_ == len(cc)
    cif = fg.predict_cumulative_incidence(cc.head(4), times=[0.0, 1.0, 30.0, 1e6])
    assert cif.shape == (4, 4) and list(cif.columns) == list(cc.index[:4])
    assert (cif.iloc[0] == 0).all() and (cif.diff().iloc[1:] >= 0).all().all() and (cif < 1).all().all()
    assert len(fg.predict_cumulative_incidence(cc.head(2))) == len(fg.baseline_cumulative_subdistribution_hazard_)
    assert "FineGray(cause=1" in repr(fg) and "x2" in repr(fg)


def test_large_data_fit_is_vectorised():
    rng = np.random.default_rng(11)
    n = 40_000
    df = pd.DataFrame({"time": np.ceil(rng.exponential(20, n)), "status": rng.integers(0, 4, n),
                       "x1": rng.normal(size=n), "x2": rng.integers(0, 2, n), "cl": rng.integers(0, 300, n)})
    m = FineGray(cause=2).fit(df, duration="time", event="status", covariates=["x1", "x2"], cluster="cl")
    assert m.converged_ and np.isfinite(m.standard_errors_).all()


# ---------------------------------------------------------------------------------------------
# bad input, unsupported input, convergence problems
# ---------------------------------------------------------------------------------------------
def test_bad_input_raises_schema_error(cc):
    fg = FineGray(cause=1)
    with pytest.raises(SchemaError, match="column 'nope'"):
        fg.fit(cc, duration="nope", event="status", covariates=COVS)
    bad = cc.copy()
    bad.loc[4, "time"] = -1.0
    with pytest.raises(SchemaError, match=r"column 'time'.*negative durations at data row\(s\) 5"):
        fg.fit(bad, duration="time", event="status", covariates=COVS)
    bad = cc.assign(status=cc["status"].astype(float))
    bad.loc[[2, 9], "status"] = 1.5
    with pytest.raises(SchemaError, match=r"column 'status'.*data row\(s\) 3, 10"):
        fg.fit(bad, duration="time", event="status", covariates=COVS)
    bad = cc.copy()
    bad.loc[7, "x1"] = np.nan
    with pytest.raises(SchemaError, match=r"column 'x1'.*missing.*data row\(s\) 8"):
        fg.fit(bad, duration="time", event="status", covariates=COVS)
    with pytest.raises(SchemaError, match="no episodes end in cause 7"):
        FineGray(cause=7).fit(cc, duration="time", event="status", covariates=COVS)
    with pytest.raises(SchemaError, match="column 'fw'"):
        fg.fit(cc.assign(fw=0), duration="time", event="status", covariates=COVS, weights="fw")
    with pytest.raises(ValueError, match="'const' do not vary"):
        fg.fit(cc.assign(const=1.0), duration="time", event="status", covariates=["x1", "const"])
    with pytest.raises(ValueError, match="collinear"):
        fg.fit(cc.assign(x4=2 * cc["x1"] - cc["x3"]), duration="time", event="status",
               covariates=["x1", "x3", "x4"])
    fg.fit(cc, duration="time", event="status", covariates=COVS)
    with pytest.raises(SchemaError, match="table 'newdata', column 'x2'"):
        fg.predict_cumulative_incidence(cc[["x1", "x3"]], times=[5])


@pytest.mark.parametrize("kwargs", [{"cause": 0}, {"cause": 1.5}, {"cause": True}, {"ties": "efron"},
                                    {"level": 1.2}, {"tol": 0}, {"max_iter": 0}])
def test_options_are_checked(kwargs):
    with pytest.raises(ValueError, match="FineGray: " + next(iter(kwargs))):
        FineGray(**kwargs)


def test_entry_is_refused_with_a_clear_error(cc):
    with pytest.raises(ValueError, match="does not accept entry=") as err:
        FineGray().fit(cc.assign(start=0.0), duration="time", event="status", covariates=COVS, entry="start")
    msg = str(err.value)
    assert "cause-specific Cox" in msg and "finegray_expand" in msg and "fgwt" in msg


def test_non_convergence_warns_and_names_covariates(cc):
    with pytest.warns(ConvergenceWarning, match=r"did not converge in 1 Newton.*'x1'"):
        m = FineGray(max_iter=1).fit(cc, duration="time", event="status", covariates=COVS)
    assert not m.converged_


def test_separation_warns_and_names_the_covariate(cc):
    # 'sep' is 1 for every episode that does not end in cause 1: the cause-1 coefficient is -infinity
    df = cc.assign(sep=(cc["status"] != 1).astype(float))
    with pytest.warns(ConvergenceWarning, match=r"'sep' may be infinite"):
        m = FineGray(cause=1).fit(df, duration="time", event="status", covariates=["x1", "sep"])
    assert np.isfinite(m.params_).all() and m.params_["sep"] < -10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FineGray(cause=1).fit(cc, duration="time", event="status", covariates=COVS)   # no warning when fine


def test_no_covariates_product_limit_is_aalen_johansen():
    # Without covariates and without ties, 1 - prod(1 - dLambda) of the IPCW risk sets is exactly the
    # Aalen-Johansen cumulative incidence (the weights rebuild the subdistribution risk set).
    df = fine_gray_1999(np.random.default_rng(7), 300)
    m = FineGray(cause=1).fit(df, duration="time", event="status")
    assert m.params_.empty and m.tidy().empty
    bh = m.baseline_cumulative_subdistribution_hazard_
    d = df.sort_values("time")
    at_risk = len(d) - np.arange(len(d))
    surv = np.cumprod(1 - (d["status"].to_numpy() > 0) / at_risk)
    s_minus = np.r_[1.0, surv[:-1]]
    aj = np.cumsum(s_minus * (d["status"].to_numpy() == 1) / at_risk)[d["status"].to_numpy() == 1]
    np.testing.assert_allclose(1 - np.cumprod(1 - bh["hazard"].to_numpy()), aj, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# against survival::finegray
# ---------------------------------------------------------------------------------------------
def _compare_expand(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    assert len(ours) == len(ref)
    for col in ref.columns:
        # exact for ids, intervals and status; weights rtol 1e-10 (ratios of Kaplan-Meier products)
        np.testing.assert_allclose(ours[col].to_numpy(float), ref[col].to_numpy(float), rtol=1e-10, atol=0,
                                   err_msg=col)


def test_finegray_expand_right_censored(cc):
    # R: finegray(Surv(time, factor(status)) ~ id + x1 + x2 + x3, data = cc, etype = "1")
    _compare_expand(finegray_expand(cc, duration="time", event="status", cause=1),
                    pd.read_csv(REF / "finegray_right.csv"))
    # R: finegray(Surv(time, factor(status)) ~ id + x1 + x2 + x3, data = cc, etype = "2", weights = fw)
    _compare_expand(finegray_expand(cc, duration="time", event="status", cause=2, weights="fw"),
                    pd.read_csv(REF / "finegray_right_cause2_weights.csv"))
    # R: finegray(Surv(time, factor(status)) ~ id + x1 + x2 + x3 + strata(x2), data = cc, etype = "3")
    _compare_expand(finegray_expand(cc, duration="time", event="status", cause=3, strata="x2"),
                    pd.read_csv(REF / "finegray_right_cause3_strata.csv"))


def test_finegray_expand_start_stop_with_late_entry():
    ss = pd.read_csv(REF / "competing_start_stop.csv")
    assert (ss.groupby("id")["start"].min() > ss["stop"].min()).any()     # late entry: Geskus weights G*H
    out = finegray_expand(ss, duration="stop", event="status", cause=1, entry="start", id="id")
    # R: finegray(Surv(start, stop, factor(status)) ~ id + tv + z, data = ss, id = id, etype = "1")
    _compare_expand(out, pd.read_csv(REF / "finegray_start_stop.csv"))
    assert {"fgstart", "fgstop", "fgstatus", "fgwt", "z"} <= set(out.columns)


def test_weighted_cox_on_expanded_data_is_fine_gray_without_ties():
    # Geskus (2011): without ties between outcomes and censoring times the weighted counting-process Cox
    # fit on finegray_expand() rows has the same estimates, information and log-likelihood as crr
    from verzuimmodel.survival.cox import CoxPH

    df = fine_gray_1999(np.random.default_rng(3), 800).assign(id=np.arange(800))
    fg = FineGray(cause=1).fit(df, duration="time", event="status", covariates=["x1", "x2"])
    ex = finegray_expand(df, duration="time", event="status", cause=1, id="id")
    cx = CoxPH(ties="breslow").fit(ex, duration="fgstop", entry="fgstart", event="fgstatus", covariates=["x1", "x2"],
                                   weights="fgwt", cluster="id")
    np.testing.assert_allclose(cx.params_.to_numpy(), fg.params_.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(cx.naive_variance_.to_numpy(), fg.naive_var_.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(cx.log_likelihood_, fg.log_likelihood_, rtol=1e-10)


def test_finegray_expand_bad_input():
    ss = pd.read_csv(REF / "competing_start_stop.csv")
    with pytest.raises(ValueError, match="need id="):
        finegray_expand(ss, duration="stop", event="status", entry="start")
    two = ss[ss["id"].duplicated(keep=False)].index[0]          # first row of a subject with two rows
    bad = ss.copy()
    bad.loc[two, "status"] = 2
    with pytest.raises(SchemaError, match=rf"outcome before its last row at data row\(s\) {two + 1}"):
        finegray_expand(bad, duration="stop", event="status", entry="start", id="id")
    bad = ss.copy()
    bad.loc[two + 1, "start"] += 0.5
    with pytest.raises(SchemaError, match="gaps"):
        finegray_expand(bad, duration="stop", event="status", entry="start", id="id")
    bad = ss.copy()
    bad.loc[3, "stop"] = bad.loc[3, "start"]
    with pytest.raises(SchemaError, match=r"stop time not after start time.*data row\(s\) 4"):
        finegray_expand(bad, duration="stop", event="status", entry="start", id="id")


# ---------------------------------------------------------------------------------------------
# recovery of a known subdistribution model (Fine & Gray 1999, section 5)
# ---------------------------------------------------------------------------------------------
BETA1 = np.array([0.5, -0.4])     # true log subdistribution hazard ratios of cause 1
BETA2 = np.array([-0.3, 0.5])     # cause 2: exponential given cause 2, rate exp(x'BETA2)
P1 = 0.6                          # F1(inf | x = 0)


def fine_gray_1999(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Fine & Gray (1999) design: F1(t | x) = 1 - [1 - P1 (1 - e^{-t})]^{exp(x'BETA1)}.

    Cause 1 with probability F1(inf | x) = 1 - (1 - P1)^{exp(x'BETA1)} and then T from F1 by
    inversion; otherwise cause 2 with T ~ Exp(exp(x'BETA2)). Censoring ~ U(0, 3). x1 ~ N(0, 1),
    x2 ~ Bernoulli(1/2). The true subdistribution hazard ratios are exp(BETA1).
    """
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n)])
    e1 = np.exp(x @ BETA1)
    v = rng.uniform(size=n)
    is1 = v < 1 - (1 - P1) ** e1
    t = rng.exponential(1 / np.exp(x @ BETA2))
    t[is1] = -np.log1p(-(1 - (1 - v[is1]) ** (1 / e1[is1])) / P1)
    c = rng.uniform(0, 3, n)
    return pd.DataFrame({"time": np.minimum(t, c), "status": np.where(t <= c, np.where(is1, 1, 2), 0),
                         "x1": x[:, 0], "x2": x[:, 1]})


def test_recovers_known_subdistribution_hazard_ratios():
    df = fine_gray_1999(np.random.default_rng(20261124), 20_000)
    m = FineGray(cause=1).fit(df, duration="time", event="status", covariates=["x1", "x2"])
    # one large sample: each estimate within 4 (sandwich) standard errors of the truth
    z = (m.params_.to_numpy() - BETA1) / m.standard_errors_.to_numpy()
    assert np.all(np.abs(z) < 4), z


@pytest.mark.slow
def test_bias_and_coverage_over_replicates():
    n_sims, n = 1000, 500
    est, se, cif = np.empty((n_sims, 2)), np.empty((n_sims, 2)), np.empty(n_sims)
    x0 = pd.DataFrame({"x1": [0.0], "x2": [0.0]})
    for r, s in enumerate(np.random.SeedSequence(1999).spawn(n_sims)):
        m = FineGray(cause=1).fit(fine_gray_1999(np.random.default_rng(s), n), duration="time", event="status",
                                  covariates=["x1", "x2"])
        est[r], se[r] = m.params_.to_numpy(), m.standard_errors_.to_numpy()
        cif[r] = m.predict_cumulative_incidence(x0, times=[1.0]).iloc[0, 0]
    # bias within 4 Monte Carlo SEs
    mcse = est.std(axis=0, ddof=1) / np.sqrt(n_sims)
    assert np.all(np.abs(est.mean(axis=0) - BETA1) < 4 * mcse), (est.mean(axis=0) - BETA1) / mcse
    true_cif = P1 * (1 - np.exp(-1.0))
    assert abs(cif.mean() - true_cif) < 4 * cif.std(ddof=1) / np.sqrt(n_sims)
    # coverage of the 95% sandwich intervals in [0.93, 0.97] (MCSE about 0.007)
    coverage = (np.abs(est - BETA1) < 1.959964 * se).mean(axis=0)
    assert np.all((coverage >= 0.93) & (coverage <= 0.97)), coverage


def test_cause_specific_cox_equals_one_cox_per_cause():
    """CauseSpecificCox(cause k) is CoxPH with the other causes as censoring."""
    from verzuimmodel.survival import CauseSpecificCox, CoxPH

    df = pd.read_csv(REF / "competing.csv")
    cs = CauseSpecificCox().fit(df, "time", "status", ["x1", "x2", "x3"], cluster="cl")
    assert cs.causes_ == [1, 2, 3]
    for k in (1, 2, 3):
        m = CoxPH().fit(df.assign(e=(df["status"] == k).astype(int)), "time", "e", ["x1", "x2", "x3"], cluster="cl")
        pd.testing.assert_series_equal(cs.models_[k].params_, m.params_)
        pd.testing.assert_series_equal(cs.models_[k].standard_errors_, m.standard_errors_)
    t = cs.tidy()
    assert list(t["cause"]) == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    with pytest.raises(SchemaError, match=r"no events of cause\(s\) \[7\]"):
        CauseSpecificCox(causes=[7]).fit(df, "time", "status", ["x1"])
