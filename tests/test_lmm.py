"""LinearMixed against R lme4::lmer / lmerTest (frozen values in tests/reference/lmm) and against known truth."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from verzuimmodel.errors import ConvergenceWarning
from verzuimmodel.mixed._design import InterceptSystem, model_frame
from verzuimmodel.mixed.lmm import LinearMixed
from verzuimmodel.schema import SchemaError
from verzuimmodel.tidy import TIDY_COLUMNS

REF = Path(__file__).resolve().parent / "reference" / "lmm"
ONE = pd.read_csv(REF / "one_factor.csv")
CROSSED = pd.read_csv(REF / "crossed.csv")
BOUNDARY = pd.read_csv(REF / "boundary.csv")
TRIAL = pd.read_csv(REF / "cluster_trial.csv")
FIXED = pd.read_csv(REF / "lmm_fixed.csv")
VARCOMP = pd.read_csv(REF / "lmm_varcomp.csv")
RANEF = pd.read_csv(REF / "lmm_ranef.csv")

# Tolerances (relative). The fits agree with R to about 1e-7; these are the contract.
RTOL_FIXED = 1e-4       # fixed effects and their standard errors
RTOL_VARIANCE = 1e-3    # variance components, residual variance, BLUPs
RTOL_LOGLIK = 1e-4
RTOL_DF = 1e-3          # Satterthwaite df

# model name in lmm.R -> (data, formula, groups, weights, reml)
CASES = {
    # lmer(y ~ x1 + x2 + treat + (1 | school), one, REML = TRUE)
    "one_reml": (ONE, "y ~ x1 + x2 + treat", "school", None, True),
    # lmer(y ~ x1 + x2 + treat + (1 | school), one, REML = FALSE)
    "one_ml": (ONE, "y ~ x1 + x2 + treat", "school", None, False),
    # lmer(y ~ x1 + x2 + treat + (1 | school), one, REML = TRUE, weights = w)
    "one_weights_reml": (ONE, "y ~ x1 + x2 + treat", "school", "w", True),
    # lmer(y ~ x1 + x2 + treat + (1 | school), one, REML = FALSE, weights = w)
    "one_weights_ml": (ONE, "y ~ x1 + x2 + treat", "school", "w", False),
    # lmer(y ~ x1 + x2 + treat + (1 | po) + (1 | vo), cr, REML = TRUE)
    "crossed_reml": (CROSSED, "y ~ x1 + x2 + treat", ["po", "vo"], None, True),
    # lmer(y ~ x1 + x2 + treat + (1 | po) + (1 | vo), cr, REML = FALSE)
    "crossed_ml": (CROSSED, "y ~ x1 + x2 + treat", ["po", "vo"], None, False),
    # lmer(y ~ x1 + (1 | g), bd, REML = TRUE)          boundary (singular) fit: var(g) = 0
    "boundary_reml": (BOUNDARY, "y ~ x1", "g", None, True),
    # lmer(y ~ x1 + (1 | g), bd, REML = FALSE)
    "boundary_ml": (BOUNDARY, "y ~ x1", "g", None, False),
    # lmer(y ~ treat + x + (1 | school), ct, REML = TRUE)   interior optimum; theta = 0 is a stationary point
    "trial_reml": (TRIAL, "y ~ treat + x", "school", None, True),
}


def fit(name: str) -> LinearMixed:
    data, formula, groups, weights, reml = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)      # the boundary fits warn (tested below)
        return LinearMixed(reml=reml).fit(data, formula, groups, weights=weights)


@pytest.mark.parametrize("name", list(CASES))
def test_matches_r_lmer(name):
    m = fit(name)
    ref = FIXED[FIXED["model"] == name].set_index("term").rename(index={"(Intercept)": "Intercept"})
    vc = VARCOMP[VARCOMP["model"] == name].set_index("factor")["variance"]
    assert m.converged_
    # fixef(fit)
    np.testing.assert_allclose(m.params_[ref.index], ref["estimate"], rtol=RTOL_FIXED)
    # coef(summary(fit))[, "Std. Error"]      (sqrt(diag(vcov(fit))))
    np.testing.assert_allclose(m.standard_errors_[ref.index], ref["se"], rtol=RTOL_FIXED)
    # as.data.frame(VarCorr(fit))$vcov        (variance per grouping factor; "Residual" = sigma(fit)^2)
    np.testing.assert_allclose(m.variance_components_[vc.index], vc, rtol=RTOL_VARIANCE, atol=1e-10)
    # as.numeric(logLik(fit))                 (the REML criterion for REML fits)
    assert m.log_likelihood_ == pytest.approx(ref["loglik"].iloc[0], rel=RTOL_LOGLIK)
    # coef(summary(lmerTest::lmer(...)))[, "df"]   (Satterthwaite)
    np.testing.assert_allclose(m.df_[ref.index], ref["df"], rtol=RTOL_DF)
    # isSingular(fit)
    assert bool(m.boundary_) == bool(ref["singular"].iloc[0])


@pytest.mark.parametrize("name", ["one_reml", "crossed_reml", "crossed_ml"])
def test_ranef_matches_r(name):
    m = fit(name)
    ref = RANEF[RANEF["model"] == name]
    for factor, r in ref.groupby("factor"):
        # ranef(fit)[[factor]][, 1]
        np.testing.assert_allclose(m.ranef_[factor][r["level"]].to_numpy(), r["value"], rtol=RTOL_VARIANCE,
                                   atol=1e-6)


def test_boundary_fit_warns_and_returns_estimates():
    # lmer(y ~ x1 + (1 | g), bd): "boundary (singular) fit: see help('isSingular')"
    with pytest.warns(ConvergenceWarning, match=r"boundary \(singular\) fit.*'g'"):
        m = LinearMixed().fit(BOUNDARY, "y ~ x1", "g")
    assert m.boundary_ == ["g"]
    assert m.variance_components_["g"] == 0.0
    assert np.isfinite(m.params_).all() and np.isfinite(m.standard_errors_).all() and np.isfinite(m.df_).all()
    assert np.isfinite(m.tidy().drop(columns=["term", "exp_estimate", "exp_conf_low", "exp_conf_high"])).all().all()
    assert (m.ranef_["g"] == 0).all()


def test_no_warning_for_an_interior_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = LinearMixed().fit(CROSSED, "y ~ x1 + x2 + treat", ["po", "vo"])
    assert m.boundary_ == []


def test_crossed_factor_order_does_not_matter():
    a = fit("crossed_reml")
    b = LinearMixed().fit(CROSSED, "y ~ x1 + x2 + treat", ["vo", "po"])
    np.testing.assert_allclose(a.params_, b.params_, rtol=1e-7)
    np.testing.assert_allclose(a.variance_components_[["po", "vo", "residual"]],
                               b.variance_components_[["po", "vo", "residual"]], rtol=1e-6)
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, rel=1e-12)
    assert list(b.variance_components_.index) == ["vo", "po", "residual"]


def test_tidy_uses_satterthwaite_t_intervals():
    m = fit("crossed_reml")
    t = m.tidy()
    assert list(t.columns) == TIDY_COLUMNS
    assert list(t["term"]) == ["Intercept", "x1", "x2", "treat"]
    q = stats.t.ppf(0.975, m.df_.to_numpy())
    np.testing.assert_allclose(t["conf_high"], m.params_.to_numpy() + q * m.standard_errors_.to_numpy())
    np.testing.assert_allclose(t["p_value"], 2 * stats.t.sf(np.abs(t["statistic"]), m.df_.to_numpy()))
    assert t["exp_estimate"].isna().all()
    # with ddf=None: normal intervals
    z = LinearMixed(ddf=None).fit(CROSSED, "y ~ x1 + x2 + treat", ["po", "vo"]).tidy()
    np.testing.assert_allclose(z["conf_high"], t["estimate"] + stats.norm.ppf(0.975) * t["std_error"])


def test_predict():
    m = fit("crossed_reml")
    X = np.column_stack([np.ones(len(CROSSED)), CROSSED[["x1", "x2", "treat"]].to_numpy()])
    fixed = X @ m.params_.to_numpy()
    np.testing.assert_allclose(m.predict(CROSSED, include_random=False), fixed)
    full = fixed + m.ranef_["po"][CROSSED["po"]].to_numpy() + m.ranef_["vo"][CROSSED["vo"]].to_numpy()
    np.testing.assert_allclose(m.predict(CROSSED), full)
    # a school not seen in fitting gets the population value (random effect 0)
    new = CROSSED.head(2).assign(po=["new school", "po00"])
    p = m.predict(new)
    assert p[0] == pytest.approx(fixed[0] + m.ranef_["vo"][new["vo"].iloc[0]])
    assert p[1] == pytest.approx(full[1])


def test_fit_returns_self_and_is_repeatable():
    m = LinearMixed()
    assert m.fit(ONE, "y ~ x1 + x2 + treat", "school") is m
    first = m.params_.copy()
    m.fit(ONE, "y ~ x1 + x2 + treat", "school")
    pd.testing.assert_series_equal(first, m.params_)
    assert m.n_obs_ == len(ONE)
    assert m.n_groups_["school"] == ONE["school"].nunique()
    assert m.sigma_ ** 2 == pytest.approx(m.variance_components_["residual"])


def test_categorical_covariates_by_formula():
    d = CROSSED.assign(track=np.where(CROSSED["x1"] > 0.5, "vwo", np.where(CROSSED["x1"] < -0.5, "vmbo", "havo")))
    m = LinearMixed().fit(d, "y ~ C(track) + x2", ["po", "vo"])
    assert list(m.params_.index) == ["Intercept", "C(track)[T.vmbo]", "C(track)[T.vwo]", "x2"]
    assert np.isfinite(m.predict(d.head(3))).all()


# --------------------------------------------------------------------------------------------------------------------
# options and bad input

def test_options_are_checked():
    with pytest.raises(TypeError, match="reml"):
        LinearMixed(reml="yes")
    with pytest.raises(ValueError, match="ddf"):
        LinearMixed(ddf="kenward-roger")
    with pytest.raises(ValueError, match="max_iter"):
        LinearMixed(max_iter=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        LinearMixed().tidy()


def test_bad_input():
    m = LinearMixed()
    with pytest.raises(SchemaError, match="column 'x9'.*not found"):
        m.fit(ONE, "y ~ x1 + x9", "school")
    with pytest.raises(SchemaError, match="column 'klas'.*not found"):
        m.fit(ONE, "y ~ x1", "klas")
    d = ONE.copy()
    d.loc[[2, 6], "x1"] = np.nan
    with pytest.raises(SchemaError, match=r"column 'x1'.*missing.*data row\(s\) 3, 7"):
        m.fit(d, "y ~ x1 + x2", "school")
    d = ONE.copy()
    d.loc[4, "y"] = np.nan
    with pytest.raises(SchemaError, match=r"column 'y'.*data row\(s\) 5"):
        m.fit(d, "y ~ x1", "school")
    d = ONE.copy()
    d.loc[9, "school"] = None
    with pytest.raises(SchemaError, match=r"column 'school'.*missing.*data row\(s\) 10"):
        m.fit(d, "y ~ x1", "school")
    with pytest.raises(SchemaError, match="column 'school'.*only 1 group"):
        m.fit(ONE.assign(school="s01"), "y ~ x1", "school")
    with pytest.raises(SchemaError, match="column 'pupil'.*as many groups"):
        m.fit(ONE.assign(pupil=np.arange(len(ONE))), "y ~ x1", "pupil")
    with pytest.raises(SchemaError, match="column 'y'.*non-numeric"):
        m.fit(ONE.assign(y="a"), "y ~ x1", "school")
    with pytest.raises(SchemaError, match=r"column 'w'.*not positive.*data row\(s\) 1"):
        m.fit(ONE.assign(w=np.r_[0.0, np.ones(len(ONE) - 1)]), "y ~ x1", "school", weights="w")
    with pytest.raises(SchemaError, match="rank deficient"):
        m.fit(ONE.assign(x3=2 * ONE["x1"]), "y ~ x1 + x3", "school")
    with pytest.raises(ValueError, match="groups="):
        m.fit(ONE, "y ~ x1 + (1 | school)", "school")
    with pytest.raises(SchemaError, match="table 'pupils'"):
        m.fit(ONE, "y ~ x9", "school", table="pupils")


# --------------------------------------------------------------------------------------------------------------------
# the shared design module

def test_model_frame_unpacks():
    y, X, names, codes, labels, offset, weights = model_frame(CROSSED, "y ~ x1 + treat", ["po", "vo"])
    assert X.shape == (len(CROSSED), 3) and names == ["Intercept", "x1", "treat"]
    assert [len(lab) for lab in labels] == [CROSSED["po"].nunique(), CROSSED["vo"].nunique()]
    assert (labels[0][codes[0]] == CROSSED["po"].to_numpy()).all()
    assert offset is None and weights is None


def test_intercept_system_matches_dense_algebra():
    """Three crossed factors and weights: the block elimination equals the dense penalised least squares."""
    rng = np.random.default_rng(5)
    n, p = 300, 3
    codes = [rng.integers(0, 25, n), rng.integers(0, 6, n), rng.integers(0, 4, n)]
    levels = [25, 6, 4]
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    y = rng.normal(size=n)
    w = rng.uniform(0.5, 2, n)
    theta = np.array([0.7, 0.0, 1.3])
    sol = InterceptSystem(codes, levels).solve(InterceptSystem(codes, levels).cross_products(X, y, w), theta)
    Z = np.column_stack([np.eye(g)[c] for c, g in zip(codes, levels)])
    lam = np.repeat(theta, levels)
    ZL = Z * lam
    A = ZL.T @ (w[:, None] * ZL) + np.eye(Z.shape[1])
    # joint normal equations of (u, beta)
    W = np.diag(w)
    top = np.hstack([A, ZL.T @ W @ X])
    bottom = np.hstack([X.T @ W @ ZL, X.T @ W @ X])
    rhs = np.concatenate([ZL.T @ (w * y), X.T @ (w * y)])
    sol_dense = np.linalg.solve(np.vstack([top, bottom]), rhs)
    u, beta = sol_dense[:Z.shape[1]], sol_dense[Z.shape[1]:]
    np.testing.assert_allclose(sol.beta, beta, rtol=1e-10)
    np.testing.assert_allclose(np.concatenate(sol.u), u, rtol=1e-8, atol=1e-12)
    assert sol.ldL2 == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-12)
    r = y - X @ beta - ZL @ u
    assert sol.pwrss == pytest.approx(np.sum(w * r ** 2) + u @ u, rel=1e-10)
    RX = X.T @ W @ X - X.T @ W @ ZL @ np.linalg.solve(A, ZL.T @ W @ X)
    np.testing.assert_allclose(sol.RXtRX, RX, rtol=1e-10)
    assert sol.ldRX2 == pytest.approx(np.linalg.slogdet(RX)[1], rel=1e-12)


# --------------------------------------------------------------------------------------------------------------------
# recovery of the truth: a two-arm cluster-randomised trial

ICC, EFFECT, N_CLUSTERS, CLUSTER_SIZE = 0.1, 0.3, 20, 25


def cluster_trial(rng: np.random.Generator) -> pd.DataFrame:
    """y = 0.3 treat + b_school + e with Var(b) = ICC, Var(e) = 1 - ICC; half the schools treated."""
    school = np.repeat(np.arange(N_CLUSTERS), CLUSTER_SIZE)
    treat = rng.permutation(np.arange(N_CLUSTERS) % 2)[school]
    y = (EFFECT * treat + rng.normal(0, np.sqrt(ICC), N_CLUSTERS)[school]
         + rng.normal(0, np.sqrt(1 - ICC), len(school)))
    return pd.DataFrame({"y": y, "treat": treat, "school": school, "x": rng.normal(size=len(school))})


def replicate(seed: int, n_sims: int) -> tuple[np.ndarray, np.ndarray]:
    est, covered = np.empty(n_sims), np.empty(n_sims, dtype=bool)
    for i, ss in enumerate(np.random.SeedSequence(seed).spawn(n_sims)):
        d = cluster_trial(np.random.default_rng(ss))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)     # some replicates estimate the ICC at 0
            row = LinearMixed().fit(d, "y ~ treat + x", "school").tidy().set_index("term").loc["treat"]
        est[i] = row["estimate"]
        covered[i] = row["conf_low"] <= EFFECT <= row["conf_high"]
    return est, covered


def test_recovers_treatment_effect_30_replicates():
    est, covered = replicate(seed=11, n_sims=30)
    mcse = est.std(ddof=1) / np.sqrt(len(est))
    assert abs(est.mean() - EFFECT) < 3 * mcse
    assert 0.90 <= covered.mean() <= 0.99


@pytest.mark.slow
def test_recovers_treatment_effect_1000_replicates():
    # coverage MCSE = sqrt(0.95 * 0.05 / 1000) = 0.0069: [0.93, 0.97] is nearly 3 MCSE either side
    est, covered = replicate(seed=12, n_sims=1000)
    mcse = est.std(ddof=1) / np.sqrt(len(est))
    assert abs(est.mean() - EFFECT) < 3 * mcse
    assert 0.93 <= covered.mean() <= 0.97
