"""CoxPH against R survival::coxph (frozen values in tests/reference/cox) and against known truth."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from verzuimmodel.errors import ConvergenceWarning
from verzuimmodel.schema import SchemaError
from verzuimmodel.survival.cox import CoxPH

REF = Path(__file__).resolve().parent / "reference" / "cox"
RC = pd.read_csv(REF / "right_censored.csv")
SS = pd.read_csv(REF / "start_stop.csv")
R = pd.read_csv(REF / "cox_reference.csv")
BASEHAZ = pd.read_csv(REF / "cox_basehaz.csv")
RTOL = 1e-6

# model name in cox.R -> (data, keyword arguments of CoxPH.fit, ties)
CASES = {
    # coxph(Surv(time, status) ~ x1 + x2 + x3, rc, ties = "breslow")
    "breslow": (RC, {}, "breslow"),
    # coxph(Surv(time, status) ~ x1 + x2 + x3, rc, ties = "efron")
    "efron": (RC, {}, "efron"),
    # coxph(Surv(time, status) ~ x1 + x2 + x3 + strata(st), rc)
    "efron_strata": (RC, {"strata": "st"}, "efron"),
    "breslow_strata": (RC, {"strata": "st"}, "breslow"),
    # coxph(..., weights = w)
    "efron_weights": (RC, {"weights": "w"}, "efron"),
    # coxph(..., cluster = cl)
    "efron_cluster": (RC, {"cluster": "cl"}, "efron"),
    "breslow_cluster": (RC, {"cluster": "cl"}, "breslow"),
    # coxph(Surv(time, status) ~ x1 + x2 + x3 + strata(st), rc, weights = w, cluster = cl)
    "efron_weights_cluster_strata": (RC, {"strata": "st", "weights": "w", "cluster": "cl"}, "efron"),
    # coxph(Surv(start, stop, status) ~ tv + z, ss)
    "ss_efron": (SS, {"entry": "start"}, "efron"),
    "ss_breslow": (SS, {"entry": "start"}, "breslow"),
    # coxph(Surv(start, stop, status) ~ tv + z, ss, cluster = cl)
    "ss_efron_cluster": (SS, {"entry": "start", "cluster": "cl"}, "efron"),
}


def fit(name):
    data, kw, ties = CASES[name]
    covs = ["tv", "z"] if data is SS else ["x1", "x2", "x3"]
    duration = "stop" if data is SS else "time"
    return CoxPH(ties=ties).fit(data, duration=duration, event="status", covariates=covs, **kw)


@pytest.mark.parametrize("name", list(CASES))
def test_matches_r_coxph(name):
    m = fit(name)
    ref = R[R["model"] == name].set_index("term")
    np.testing.assert_allclose(m.params_[ref.index], ref["coef"], rtol=RTOL)
    np.testing.assert_allclose(m.naive_variance_.to_numpy().diagonal() ** 0.5, ref["se"], rtol=RTOL)
    if ref["robust_se"].notna().all():
        np.testing.assert_allclose(m.standard_errors_[ref.index], ref["robust_se"], rtol=RTOL)
    assert m.log_likelihood_ == pytest.approx(ref["loglik"].iloc[0], rel=1e-9)
    assert m.log_likelihood_null_ == pytest.approx(ref["loglik_null"].iloc[0], rel=1e-9)
    assert m.n_events_ == ref["nevent"].iloc[0]


@pytest.mark.parametrize("name", ["efron", "breslow", "ss_efron"])
def test_baseline_hazard_matches_r_basehaz(name):
    # basehaz(fit, centered = FALSE)
    m = fit(name)
    ref = BASEHAZ[BASEHAZ["model"] == name]
    bh = m.baseline_cumulative_hazard_
    # R reports every distinct time (censoring times too): evaluate our step function there
    at = np.searchsorted(bh["time"].to_numpy(), ref["time"].to_numpy(), side="right") - 1
    ours = np.where(at >= 0, bh["cumulative_hazard"].to_numpy()[np.maximum(at, 0)], 0.0)
    np.testing.assert_allclose(ours, ref["hazard"], rtol=RTOL)


def test_tidy_and_predict():
    m = fit("efron")
    t = m.tidy()
    assert list(t["term"]) == ["x1", "x2", "x3"]
    np.testing.assert_allclose(t["exp_estimate"], np.exp(m.params_))
    np.testing.assert_allclose(t["conf_high"] - t["estimate"], 1.959963984540054 * m.standard_errors_.to_numpy())
    s = m.predict_survival(RC.iloc[:3], [0.0, 5.0, 10.0, 1e6])
    bh = m.baseline_cumulative_hazard_.set_index("time")["cumulative_hazard"]
    lp = RC.iloc[:3][["x1", "x2", "x3"]].to_numpy() @ m.params_.to_numpy()
    np.testing.assert_allclose(s.loc[5.0].to_numpy(), np.exp(-bh.loc[5.0] * np.exp(lp)))
    assert (s.loc[0.0] == 1).all() and (s.loc[1e6] < 1e-3).all()


def test_recovers_known_hazard_ratio():
    """Exponential data with log HR 0.7 and -0.5; 20 seeded replicates, bias within 3 Monte Carlo SE."""
    est = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        n = 3000
        x = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n)])
        t = rng.exponential(1 / np.exp(x @ [0.7, -0.5]))
        c = rng.exponential(2.0, n)
        df = pd.DataFrame({"t": np.minimum(t, c), "e": (t <= c).astype(int), "a": x[:, 0], "b": x[:, 1]})
        est.append(CoxPH().fit(df, "t", "e", ["a", "b"]).params_.to_numpy())
    est = np.array(est)
    mcse = est.std(axis=0, ddof=1) / np.sqrt(len(est))
    assert np.all(np.abs(est.mean(axis=0) - [0.7, -0.5]) < 3 * mcse + 1e-3)


def test_separation_is_reported():
    rng = np.random.default_rng(3)
    n = 200
    x = rng.normal(size=n)
    g = (np.arange(n) < 100).astype(float)       # events only in group g = 1 -> infinite coefficient
    df = pd.DataFrame({"t": rng.exponential(1, n), "e": g.astype(int), "g": g, "x": x})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = CoxPH().fit(df, "t", "e", ["g", "x"])
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert any("'g' may be infinite" in msg for msg in messages)
    assert not any("'x' may be infinite" in msg for msg in messages)
    assert m.params_["g"] > 5 and abs(m.params_["x"]) < 1


def test_bad_input_names_table_column_rows():
    bad = RC.copy()
    bad.loc[4, "status"] = 2
    with pytest.raises(SchemaError, match=r"column 'status'.*data row\(s\) 5"):
        CoxPH().fit(bad, "time", "status", ["x1"])
    bad = SS.copy()
    bad.loc[2, "stop"] = bad.loc[2, "start"]
    with pytest.raises(SchemaError, match=r"column 'stop'.*stop time not after start"):
        CoxPH().fit(bad, "stop", "status", ["z"], entry="start")
    with pytest.raises(SchemaError, match="column 'nope'"):
        CoxPH().fit(RC, "time", "status", ["nope"])
    with pytest.raises(ValueError, match="collinear"):
        CoxPH().fit(RC.assign(x4=2 * RC["x1"]), "time", "status", ["x1", "x4"])
    with pytest.raises(ValueError, match="do not vary"):
        CoxPH().fit(RC.assign(k=1.0), "time", "status", ["x1", "k"])
    with pytest.raises(ValueError, match="ties"):
        CoxPH(ties="exact")


def test_predicted_survival_is_one_in_a_stratum_without_events():
    """D1: R's survfit.coxph gives S = 1 for a stratum whose episodes are all censored."""
    import numpy as np
    import pandas as pd

    from verzuimmodel.survival import CoxPH

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"t": rng.integers(1, 50, 200).astype(float), "x": rng.normal(size=200),
                       "s": np.repeat(["a", "b"], 100)})
    df["e"] = np.where(df["s"] == "a", rng.integers(0, 2, 200), 0)
    m = CoxPH().fit(df, duration="t", event="e", covariates=["x"], strata="s")
    pred = m.predict_survival(df.iloc[[0, 150]], times=[5.0, 40.0])
    assert (pred.iloc[:, 1] == 1.0).all() and (pred.iloc[:, 0] < 1).all()


def test_a_covariate_constant_within_every_stratum_is_refused_by_name():
    """D3: R reports NA; an arbitrary coefficient with SE 1e7 and no warning was returned before."""
    import numpy as np
    import pandas as pd
    import pytest

    from verzuimmodel.survival import CoxPH

    rng = np.random.default_rng(4)
    df = pd.DataFrame({"t": rng.integers(1, 50, 300).astype(float), "e": rng.integers(0, 2, 300),
                       "x": rng.normal(size=300), "s": np.repeat([0, 1, 2], 100)})
    df["level"] = (df["s"] == 2).astype(float)              # the same within each stratum
    with pytest.raises(ValueError, match="'level' do not vary within any stratum"):
        CoxPH().fit(df, duration="t", event="e", covariates=["x", "level"], strata="s")
    CoxPH().fit(df, duration="t", event="e", covariates=["x", "level"])          # fine without strata


@pytest.mark.parametrize("name", ["efron", "breslow_strata", "efron_cluster", "ss_efron", "efron_weights"])
def test_global_tests_and_aic_match_r_summary(name):
    """Likelihood-ratio, Wald (robust with clusters or non-integer weights) and score tests, as summary(coxph);
    AIC and BIC as R's AIC(fit) and BIC(fit) (n: the number of events, unweighted)."""
    ref = pd.read_csv(REF / "cox_tests.csv").set_index("model").loc[name]
    m = fit(name)
    t = m.global_tests().set_index("test")
    assert t.loc["likelihood_ratio", "statistic"] == pytest.approx(ref["lr"], rel=1e-8)
    assert t.loc["wald", "statistic"] == pytest.approx(ref["wald"], rel=1e-6)
    assert t.loc["score", "statistic"] == pytest.approx(ref["score"], rel=1e-8)
    assert (t["df"] == ref["df"]).all()
    assert m.aic_ == pytest.approx(ref["aic"], rel=1e-10)
    assert m.bic_ == pytest.approx(ref["bic"], rel=1e-10)
    assert m.n_events_ == ref["nobs"]
    assert f"AIC={ref['aic']:.2f}, BIC={ref['bic']:.2f}" in repr(m)


def _direct(df, covs, beta, ties, entry=None, strata=None, weights=None, offset=None):
    """Log partial likelihood, score and information by a loop over the (stratum, event time) keys and,
    with Efron, over the tied deaths' steps: the textbook sums, for :class:`RiskSets` to be checked against."""
    X = df[covs].to_numpy(float)
    t, dead_all = df["stop"].to_numpy(float), df["status"].to_numpy() == 1
    start = df[entry].to_numpy(float) if entry else np.full(len(df), -np.inf)
    st = df[strata].to_numpy() if strata else np.zeros(len(df))
    w = df[weights].to_numpy(float) if weights else np.ones(len(df))
    eta = X @ beta + (df[offset].to_numpy(float) if offset else 0.0)
    r = w * np.exp(eta)
    p = len(covs)
    ll, U, info = 0.0, np.zeros(p), np.zeros((p, p))
    for g in np.unique(st):
        for time in np.unique(t[dead_all & (st == g)]):
            dead = dead_all & (st == g) & (t == time)
            risk = (st == g) & (start < time) & (t >= time)
            m, W = dead.sum(), w[dead].sum()
            ll += (w * eta)[dead].sum()
            U += w[dead] @ X[dead]
            for f, wt in ([(l / m, W / m) for l in range(m)] if ties == "efron" else [(0.0, W)]):
                a0 = r[risk].sum() - f * r[dead].sum()
                a1 = r[risk] @ X[risk] - f * r[dead] @ X[dead]
                a2 = (X[risk].T * r[risk]) @ X[risk] - f * (X[dead].T * r[dead]) @ X[dead]
                ll -= wt * np.log(a0)
                U -= wt * a1 / a0
                info += wt * (a2 / a0 - np.outer(a1, a1) / a0 ** 2)
    return ll, U, info


def _mixed_rows(seed=5, n=600):
    """Unsorted start-stop rows with strata, late entry (some before, some after the stratum's first death),
    case weights, an offset, clusters and heavy ties; a covariate with a large mean beside its spread."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n), 50 + 3 * rng.normal(size=n)])
    start = np.where(rng.random(n) < 0.4, rng.integers(0, 15, n), 0).astype(float)
    stop = start + rng.integers(1, 30, n)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "age": x[:, 2], "start": start, "stop": stop,
                         "status": (rng.random(n) < 0.6).astype(int), "s": rng.integers(0, 3, n),
                         "w": rng.uniform(0.5, 2.0, n), "off": 0.2 * rng.normal(size=n),
                         "cl": rng.integers(0, 40, n)})


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_risk_sets_match_the_direct_sums_over_event_times(ties):
    """The compiled passes of RiskSets (rows in any order, risk sets from bins per event time, centred
    covariates) give the textbook log partial likelihood, score and information with strata, late entry,
    case weights, an offset and ties; to rounding error (relative 1e-10)."""
    from verzuimmodel.survival._data import survival_data
    from verzuimmodel.survival.risk_sets import RiskSets

    df = _mixed_rows()
    covs, beta = ["a", "b", "age"], np.array([0.4, -0.3, 0.05])
    d = survival_data(df, duration="stop", event="status", covariates=covs, entry="start", weights="w", strata="s")
    rs = RiskSets(d, d.X, ties)
    ll, grad, info, _ = rs.evaluate(d.X @ beta + df["off"].to_numpy())
    ll0, grad0, info0 = _direct(df, covs, beta, ties, entry="start", strata="s", weights="w", offset="off")
    assert ll == pytest.approx(ll0, rel=1e-12)
    np.testing.assert_allclose(grad, grad0, rtol=1e-10, atol=1e-10 * np.abs(grad0).max())
    np.testing.assert_allclose(info, info0, rtol=1e-10)


def test_row_order_offset_and_robust_without_clusters():
    """The fit does not depend on the row order; an offset c * x moves that coefficient by -c exactly;
    robust=True without clusters is the sandwich with every row its own cluster."""
    df = _mixed_rows()
    kw = dict(duration="stop", event="status", covariates=["a", "b", "age"], entry="start", strata="s",
              weights="w", cluster="cl")
    m = CoxPH().fit(df, **kw)
    shuffled = CoxPH().fit(df.sample(frac=1.0, random_state=1), **kw)
    np.testing.assert_allclose(shuffled.params_, m.params_, rtol=1e-10)
    np.testing.assert_allclose(shuffled.variance_, m.variance_, rtol=1e-9)
    np.testing.assert_allclose(shuffled.naive_variance_, m.naive_variance_, rtol=1e-9)
    assert shuffled.log_likelihood_ == pytest.approx(m.log_likelihood_, rel=1e-13)
    np.testing.assert_allclose(shuffled.baseline_cumulative_hazard_["cumulative_hazard"],
                               m.baseline_cumulative_hazard_["cumulative_hazard"], rtol=1e-10)
    shifted = CoxPH().fit(df.assign(o=0.3 * df["a"]), offset="o", **kw)
    assert shifted.params_["a"] == pytest.approx(m.params_["a"] - 0.3, abs=1e-9)
    np.testing.assert_allclose(shifted.params_[["b", "age"]], m.params_[["b", "age"]], rtol=1e-8)
    own = CoxPH().fit(df.assign(row=np.arange(len(df))), **{**kw, "cluster": "row"})
    plain = CoxPH().fit(df, **{**kw, "cluster": None}, robust=True)
    np.testing.assert_allclose(plain.variance_, own.variance_, rtol=1e-10)
    assert not np.allclose(plain.variance_, plain.naive_variance_, rtol=1e-3)


def test_many_event_times_sorted_first_give_the_same_fit(monkeypatch):
    """With more distinct event times than fit in the cache the rows are first sorted by event time
    (cox._CACHED_BINS); the fit, robust variance (clusters and offset permuted along) and baseline hazard
    are those of the unsorted passes."""
    import verzuimmodel.survival.cox as cox

    rng = np.random.default_rng(2)
    n = 4000
    x = rng.normal(size=n)
    t = rng.exponential(np.exp(-0.5 * x))
    df = pd.DataFrame({"t": np.minimum(t, 2.0), "e": (t <= 2.0).astype(int), "x": x, "z": rng.normal(size=n),
                       "cl": rng.integers(0, 50, n), "off": 0.1 * rng.normal(size=n)})
    kw = dict(duration="t", event="e", covariates=["x", "z"], cluster="cl", offset="off")
    monkeypatch.setattr(cox, "_CACHED_BINS", 100)
    sorted_first = CoxPH().fit(df, **kw)
    monkeypatch.setattr(cox, "_CACHED_BINS", np.inf)
    in_place = CoxPH().fit(df, **kw)
    np.testing.assert_allclose(sorted_first.params_, in_place.params_, rtol=1e-10)
    np.testing.assert_allclose(sorted_first.variance_, in_place.variance_, rtol=1e-9)
    np.testing.assert_allclose(sorted_first.baseline_cumulative_hazard_["cumulative_hazard"],
                               in_place.baseline_cumulative_hazard_["cumulative_hazard"], rtol=1e-10)
    assert sorted_first.log_likelihood_null_ == pytest.approx(in_place.log_likelihood_null_, rel=1e-13)
