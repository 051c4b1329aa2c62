"""LinearMixed with random slopes and correlated random effects against R lme4 / lmerTest (frozen values in
tests/reference/lmm_slopes, made by lmm_slopes.R), likelihood-ratio comparisons (anova) of LinearMixed and the
GLMMs, confidence intervals as confint.merMod, and recovery of known truth by simulation."""

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import linalg

import verzuimmodel as vm
from verzuimmodel.errors import ConvergenceWarning
from verzuimmodel.mixed import (BinomialMixed, LinearMixed, NegativeBinomialMixed, PoissonMixed, RefitWarning,
                                anova, lr_test)
from verzuimmodel.mixed.random_slopes import SlopeSystem
from verzuimmodel.mixed.random_terms import RandomStructure, parse_random
from verzuimmodel.schema import SchemaError

HERE = Path(__file__).resolve().parent / "reference"
REF_DIR = HERE / "lmm_slopes"
REF = json.loads((REF_DIR / "lmm_slopes_reference.json").read_text())
MODELS, TESTS, INTERVALS = REF["models"], REF["tests"], REF["intervals"]
DATA = {name: pd.read_csv(REF_DIR / name) for name in ["sleepstudy.csv", "crossed_slopes.csv", "singular_slopes.csv",
                                                        "../lmm/crossed.csv"]}
SLEEP = DATA["sleepstudy.csv"]
CBPP = pd.read_csv(HERE / "binomial_mixed" / "cbpp.csv")
NB_CROSSED = pd.read_csv(HERE / "glmm" / "nb_crossed.csv")

# Tolerances (relative). The fits agree with R to about 1e-7 (R run with bobyqa, rhoend = 1e-12).
RTOL = 1e-4             # fixed effects, SEs, Satterthwaite df, theta, sigma, VarCorr, BLUPs, logLik, AIC, BIC
RTOL_PROFILE = 1e-4     # profile intervals against R's spline on its default grid (R is off by up to ~5e-5)
RTOL_DENSE = 1e-5       # ... against R's spline on a grid 8 times finer
WEIGHTS = {"cs_weights_reml": "w"}


def r_name(name: str) -> str:
    return name.replace("(Intercept)", "Intercept")


def fit(name: str, ddf="satterthwaite") -> LinearMixed:
    """The fit of reference model ``name`` (see its ``call`` in the JSON)."""
    ref = MODELS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)          # the singular fit warns (tested below)
        return LinearMixed(reml=ref["reml"], ddf=ddf).fit(DATA[ref["data"]], ref["formula"],
                                                          weights=WEIGHTS.get(name))


@pytest.fixture(scope="module")
def fits():
    return {name: fit(name) for name in MODELS}


def test_r_references_converged():
    # every lmer fit ended normally ("Normal exit from bobyqa"); only the singular fit has lme4's message
    for name, ref in MODELS.items():
        conv = ref["conv"]
        assert conv["opt"] == 0 and conv["warnings"] == [], name
        expected = ["boundary (singular) fit: see help('isSingular')"] if name == "sg_reml" else []
        assert (conv["lme4"] or []) in (expected, expected[0] if expected else []), name
    assert REF["default_theta_rel_diff"] < 1e-4       # lmer's default optimiser is within 1e-4 of the tight one


@pytest.mark.parametrize("name", list(MODELS))
def test_matches_r_lmer(fits, name):
    m, ref = fits[name], MODELS[name]
    terms = [r_name(t) for t in ref["fixed"]]
    # fixef(fit); coef(summary(fit)) of lmerTest: Std. Error, df (Satterthwaite)
    np.testing.assert_allclose(m.params_[terms], list(ref["fixed"].values()), rtol=RTOL)
    np.testing.assert_allclose(m.standard_errors_[terms], list(ref["std_error"].values()), rtol=RTOL)
    np.testing.assert_allclose(m.df_[terms], list(ref["df"].values()), rtol=RTOL)
    # logLik(fit) (the REML criterion of REML fits), AIC(fit), BIC(fit), attr(logLik(fit), "df")
    assert m.log_likelihood_ == pytest.approx(ref["loglik"], rel=RTOL)
    assert m.aic_ == pytest.approx(ref["aic"], rel=RTOL)
    assert m.bic_ == pytest.approx(ref["bic"], rel=RTOL)
    assert m.n_parameters_ == ref["npar"]
    # getME(fit, "theta"), sigma(fit)
    theta = {}
    for k, v in ref["theta"].items():
        k = r_name(k)
        theta[k if k in m.theta_.index else k.removesuffix(".Intercept")] = v
    np.testing.assert_allclose(m.theta_[list(theta)], list(theta.values()), rtol=RTOL, atol=1e-5)
    assert m.sigma_ == pytest.approx(ref["sigma"], rel=RTOL)
    # as.data.frame(VarCorr(fit)): variances, covariances, SDs and correlations
    ours = {(r.grp, r.var1, r.var2): (r.vcov, r.sdcor) for r in m.varcorr_.itertuples()}
    assert len(ours) == len(ref["varcorr"])
    for row in ref["varcorr"]:
        key = (row["grp"], r_name(row["var1"]) if row["var1"] else None, r_name(row["var2"]) if row["var2"] else None)
        np.testing.assert_allclose(ours[key], [row["vcov"], row["sdcor"]], rtol=RTOL, atol=1e-5, err_msg=str(key))
    # ranef(fit): every column of every factor
    for factor, cols in ref["ranef"].items():
        ranef = m.ranef_[factor]
        frame = ranef.to_frame("Intercept") if isinstance(ranef, pd.Series) else ranef
        frame.index = frame.index.astype(str)
        for col, values in cols.items():
            np.testing.assert_allclose(frame.loc[list(values), r_name(col)], list(values.values()), rtol=RTOL,
                                       atol=1e-5 * max(1.0, ref["sigma"]))
    # isSingular(fit)
    assert bool(m.boundary_) == ref["singular"]
    assert m.converged_


def test_singular_slope_fit_warns_like_lme4():
    # lmer(y ~ x + (x | g), sg): "boundary (singular) fit: see help('isSingular')"
    with pytest.warns(ConvergenceWarning, match=r"boundary \(singular\) fit.*'g\.x'"):
        m = LinearMixed().fit(DATA["singular_slopes.csv"], "y ~ x", groups="(x | g)")
    assert m.boundary_ == ["g.x"] and m.theta_["g.x"] == 0.0
    assert np.isfinite(m.df_).all() and np.isfinite(m.standard_errors_).all()


# --------------------------------------------------------------------------------------------------------------------
# the ways to give the random effects

def test_groups_and_formula_terms_are_the_same_model():
    a = LinearMixed().fit(SLEEP, "Reaction ~ Days + (Days | Subject)")
    b = LinearMixed().fit(SLEEP, "Reaction ~ Days", groups="(Days | Subject)")
    c = LinearMixed().fit(SLEEP, "Reaction ~ Days", groups=["(Days | Subject)"])
    d = LinearMixed().fit(SLEEP, "Reaction ~ Days", groups="Days | Subject")
    for other in (b, c, d):
        pd.testing.assert_series_equal(a.params_, other.params_)
        pd.testing.assert_series_equal(a.theta_, other.theta_)
    assert a.random_terms_ == ["(Days | Subject)"]


def test_double_bar_is_intercept_plus_slope():
    a = LinearMixed().fit(SLEEP, "Reaction ~ Days", groups="(Days || Subject)")
    b = LinearMixed().fit(SLEEP, "Reaction ~ Days", groups=["(1 | Subject)", "(0 + Days | Subject)"])
    assert a.random_terms_ == ["(1 | Subject)", "(0 + Days | Subject)"]
    np.testing.assert_allclose(a.theta_, b.theta_, rtol=1e-12)
    assert list(a.variance_components_.index) == ["Subject.Intercept", "Subject.Days", "residual"]
    assert list(a.ranef_["Subject"].columns) == ["Intercept", "Days"]


def test_intercept_terms_reproduce_the_intercept_fits():
    """'(1 | po) + (1 | vo)' is the crossed-intercepts model of groups=['po', 'vo'] (same names, same numbers)."""
    data = DATA["../lmm/crossed.csv"]
    a = LinearMixed().fit(data, "y ~ x1 + x2 + treat", ["po", "vo"])
    b = LinearMixed().fit(data, "y ~ x1 + x2 + treat + (1 | po) + (1 | vo)")
    pd.testing.assert_series_equal(a.variance_components_, b.variance_components_)
    pd.testing.assert_series_equal(a.ranef_["po"], b.ranef_["po"])
    assert list(a.theta_.index) == ["po", "vo"]


def test_nested_and_interaction_factors():
    d = DATA["crossed_slopes.csv"].assign(klas=lambda x: np.arange(len(x)) % 3)
    a = LinearMixed().fit(d, "y ~ x1", groups="(1 | po/klas)")
    assert a.random_terms_ == ["(1 | po)", "(1 | po:klas)"]
    assert a.n_groups_["po:klas"] == d.groupby(["po", "klas"]).ngroups
    d2 = d.assign(po_klas=d["po"] + ":" + d["klas"].astype(str))
    b = LinearMixed().fit(d2, "y ~ x1", groups=["po", "po_klas"])
    np.testing.assert_allclose(a.theta_.to_numpy(), b.theta_.to_numpy(), rtol=1e-10)


def test_predict_with_random_slopes():
    m = LinearMixed().fit(SLEEP, "Reaction ~ Days + (Days | Subject)")
    re = m.ranef_["Subject"].loc[SLEEP["Subject"]].to_numpy()
    fixed = m.params_["Intercept"] + m.params_["Days"] * SLEEP["Days"].to_numpy()
    np.testing.assert_allclose(m.predict(SLEEP, include_random=False), fixed)
    np.testing.assert_allclose(m.predict(SLEEP), fixed + re[:, 0] + re[:, 1] * SLEEP["Days"].to_numpy())
    new = pd.DataFrame({"Days": [3.0], "Subject": [999]})      # a subject not seen: the population line
    assert m.predict(new)[0] == pytest.approx(m.params_["Intercept"] + 3 * m.params_["Days"])


def test_repr_shows_the_fit():
    m = LinearMixed().fit(SLEEP, "Reaction ~ Days + (Days | Subject)")
    text = repr(m)
    for part in ["Reaction ~ Days + (Days | Subject)", "REML criterion", "AIC", "n = 180", "Subject 18",
                 "Residual", "Intercept", "Days", f"{m.sigma_:.6g}"]:
        assert part in text
    assert repr(LinearMixed()) == "LinearMixed(reml=True, ddf='satterthwaite', max_iter=1000)"


# --------------------------------------------------------------------------------------------------------------------
# anova / lr_test

@pytest.mark.parametrize("name", ["ss_fixed", "ss_cor", "cs_cor"])
def test_anova_matches_lme4(fits, name):
    ref = TESTS[name]
    m0, m1 = (fits[k] for k in ref["models"])
    # anova(m0, m1): lme4 refits the REML fits by ML, with a message
    message = ref["messages"] if isinstance(ref["messages"], str) else ref["messages"][0]
    assert message == "refitting model(s) with ML (instead of REML)"
    with pytest.warns(RefitWarning, match=re.escape(message)):
        table = anova(m0, m1, names=["m0", "m1"])
    check_table(table, ref)
    with pytest.warns(RefitWarning):
        t = lr_test(m0, m1)
    assert t.refitted and t.df == ref["df"]
    assert t.statistic == pytest.approx(ref["chisq"], rel=RTOL)
    assert t.p_value == pytest.approx(ref["p"], rel=RTOL)


def check_table(table: pd.DataFrame, ref: dict) -> None:
    assert list(table.columns) == ["npar", "aic", "bic", "log_likelihood", "deviance", "statistic", "df", "p_value"]
    assert table["npar"].tolist() == ref["npar"]
    for ours, theirs in [("aic", "aic"), ("bic", "bic"), ("log_likelihood", "loglik"), ("deviance", "deviance")]:
        np.testing.assert_allclose(table[ours], ref[theirs], rtol=RTOL)
    row = table.iloc[1]
    assert row["statistic"] == pytest.approx(ref["chisq"], rel=RTOL)
    assert row["df"] == ref["df"]
    assert row["p_value"] == pytest.approx(ref["p"], rel=RTOL, abs=1e-300)
    assert np.isnan(table.iloc[0][["statistic", "df", "p_value"]].astype(float)).all()


def test_anova_without_refit_compares_reml_criteria(fits):
    # anova(m0, m1, refit = FALSE): same fixed effects, REML criteria, no message
    ref = TESTS["ss_cor_reml"]
    m0, m1 = (fits[k] for k in ref["models"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = anova(m0, m1, refit=False)
    check_table(table, ref)


@pytest.mark.parametrize("name", ["cbpp_period", "nb_treat", "poisson_vs_nb"])
def test_glmm_anova_matches_r(name):
    ref = TESTS[name]
    if name == "cbpp_period":
        # glmer(cbind(incidence, size - incidence) ~ [1 | period] + (1 | herd), cbpp, family = binomial)
        m0 = BinomialMixed().fit(CBPP, "incidence ~ 1", groups="herd", trials="size")
        m1 = BinomialMixed().fit(CBPP, "incidence ~ C(period)", groups="herd", trials="size")
    else:
        # glmmTMB(y ~ x1 + x2 [+ treat] + offset(log(days)) + (1 | po) + (1 | vo), cr, family = nbinom2 / poisson)
        full = "y ~ x1 + x2 + treat"
        m1 = NegativeBinomialMixed().fit(NB_CROSSED, full, groups=["po", "vo"], exposure="days")
        m0 = (NegativeBinomialMixed().fit(NB_CROSSED, "y ~ x1 + x2", groups=["po", "vo"], exposure="days")
              if name == "nb_treat" else PoissonMixed().fit(NB_CROSSED, full, groups=["po", "vo"], exposure="days"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                # no refit, no message for GLMMs
        table = vm.mixed.anova(m1, m0)                # ordered by the number of parameters, as R
    assert table.index.tolist() == ["m2", "m1"]
    check_table(table, ref)
    t = lr_test(m0, m1)
    assert not t.refitted and t.statistic == pytest.approx(ref["chisq"], rel=RTOL)


def test_comparisons_refuse_what_is_not_comparable(fits):
    m = fits["ss_reml"]
    other = LinearMixed().fit(SLEEP.assign(Reaction=SLEEP["Reaction"] * 2), "Reaction ~ Days + (Days | Subject)")
    with pytest.raises(ValueError, match="same data"):
        anova(m, other)
    with pytest.raises(ValueError, match="same data"):
        anova(m, fits["cs_reml"])
    nb = NegativeBinomialMixed().fit(NB_CROSSED, "y ~ x1", groups="po", exposure="days")
    with pytest.raises(TypeError, match="one kind"):
        anova(m, nb)
    with pytest.raises(ValueError, match="not nested"):
        with pytest.warns(RefitWarning):
            lr_test(m, fits["ss_reml"])
    with pytest.raises(ValueError, match="different fixed effects"):
        anova(fits["ss_null_reml"], m, refit=False)
    with pytest.raises(ValueError, match="at least two"):
        anova(m)
    with pytest.raises(TypeError, match="LinearMixed"):
        anova(m, "m1")


# --------------------------------------------------------------------------------------------------------------------
# confint

def r_intervals(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({"conf_low": [r["low"] for r in rows], "conf_high": [r["high"] for r in rows]},
                        index=[r_name(r["parameter"]) for r in rows])


@pytest.fixture(scope="module")
def profiles(fits):
    return {name: fits[name].confint(method="profile") for name in INTERVALS}


@pytest.mark.parametrize("name", list(INTERVALS))
def test_profile_intervals_match_lme4(profiles, name):
    # confint(fit, method = "profile", oldNames = FALSE): SDs, correlations, sigma, fixed effects
    ref = r_intervals(INTERVALS[name]["profile"])
    ours = profiles[name]
    assert list(ours.index) == list(ref.index)
    # relative, or (an end near 0, such as x1's in cr_int_reml) 1e-4 of the interval's width
    width = (ref["conf_high"] - ref["conf_low"]).to_numpy()[:, None]
    assert_close(ours.to_numpy(), ref.to_numpy(), RTOL_PROFILE, RTOL_PROFILE * width)
    assert INTERVALS[name]["profile_warnings"] == []
    if "profile_dense" in INTERVALS[name]:         # R's spline through a grid 8 times finer: closer still
        assert_close(ours.to_numpy(), r_intervals(INTERVALS[name]["profile_dense"]).to_numpy(), RTOL_DENSE,
                     RTOL_DENSE * width)


def assert_close(actual: np.ndarray, desired: np.ndarray, rtol: float, atol: np.ndarray) -> None:
    """Each element within ``rtol`` relative or its own ``atol``."""
    ok = np.abs(actual - desired) <= np.maximum(rtol * np.abs(desired), atol)
    assert ok.all(), f"not within rtol={rtol}:\n{actual[~ok]}\n{desired[~ok]}"


def test_profile_matches_lme4_point_by_point(fits):
    # as.data.frame(profile(fit, signames = FALSE)): zeta at each of R's parameter values
    prof = fits["ss_reml"].profile()
    pts = REF["profile_points"]["ss_reml"]
    inside = [all(abs(v) < 1 for k, v in p["at"].items() if k.startswith("cor_")) for p in pts]
    ours = np.array([prof.zeta(r_name(p["parameter"]), p["value"]) for p in pts])
    theirs = np.array([p["zeta"] for p in pts])
    assert sum(inside) >= 100
    np.testing.assert_allclose(ours[inside], theirs[inside], rtol=RTOL, atol=1e-5)
    # where R's profile puts the correlation at +-1, lme4's Sv_to_Cv drops the slope variance (see lmm_slopes.R),
    # so its deviance is too large there: ours is lower (a better minimum), never higher
    out = ~np.array(inside)
    assert out.any() and np.all(np.abs(ours[out]) <= np.abs(theirs[out]) + 1e-6)


@pytest.mark.parametrize("name", list(INTERVALS))
def test_wald_intervals_match_lme4(fits, name):
    # confint(fit, method = "Wald"): fixed effects +- z SE; NA for the variance parameters
    ref = r_intervals(INTERVALS[name]["wald"])
    ours = fits[name].confint(method="Wald")
    assert list(ours.index) == list(ref.index)
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=RTOL)


def test_confint_selects_parameters(fits):
    m = fits["ss_uncor_reml"]
    assert list(m.confint("beta_", method="Wald").index) == ["Intercept", "Days"]
    assert list(m.confint("theta_", method="Wald").index) == ["sd_Intercept|Subject", "sd_Days|Subject", "sigma"]
    one = m.confint("sd_Days|Subject", level=0.9)
    assert one.index.tolist() == ["sd_Days|Subject"]
    wide = m.confint("sd_Days|Subject")
    assert wide["conf_low"].iloc[0] < one["conf_low"].iloc[0] < one["conf_high"].iloc[0] < wide["conf_high"].iloc[0]
    with pytest.raises(ValueError, match="unknown parameter 'sd_Nights'"):
        m.confint("sd_Nights")
    with pytest.raises(ValueError, match="method"):
        m.confint(method="boot")


def test_profile_interval_of_a_zero_variance_starts_at_zero():
    # a boundary fit: the SD of g is 0, and its interval runs from 0 (lme4: NA -> the lower bound)
    bd = pd.read_csv(HERE / "lmm" / "boundary.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = LinearMixed().fit(bd, "y ~ x1", "g")
    ci = m.confint("sd_Intercept|g")
    assert ci["conf_low"].iloc[0] == 0.0 and 0 < ci["conf_high"].iloc[0] < np.inf


# --------------------------------------------------------------------------------------------------------------------
# bad input

@pytest.mark.parametrize("groups, bad", [
    ("(Days ||| Subject)", "(Days ||| Subject)"),
    ("(Days | Subject) + Days", "Days"),
    ("diag(Days | Subject)", "diag(Days | Subject)"),
    ("( | Subject)", "( | Subject)"),
    ("(Days)", "(Days)"),
    (["Subject", "(Days | Subject) + us(1 | Subject)"], "us(1 | Subject)"),
])
def test_unknown_term_syntax_is_named(groups, bad):
    with pytest.raises(ValueError, match=r"unknown random-effects term " + re.escape(repr(bad))):
        LinearMixed().fit(SLEEP, "Reaction ~ Days", groups=groups)


def test_bad_random_effects():
    m = LinearMixed()
    with pytest.raises(ValueError, match=r"unknown random-effects term 'diag\(Days \| Subject\)'"):
        m.fit(SLEEP, "Reaction ~ Days + diag(Days | Subject)")
    with pytest.raises(ValueError, match="grouping factor 'Subject \\+ Days'"):
        m.fit(SLEEP, "Reaction ~ Days", groups="(1 | Subject + Days)")
    with pytest.raises(SchemaError, match="column 'Dayz'.*random-effects term \\(Dayz \\| Subject\\)"):
        m.fit(SLEEP, "Reaction ~ Days", groups="(Dayz | Subject)")
    with pytest.raises(SchemaError, match="column 'Subjekt'"):
        m.fit(SLEEP, "Reaction ~ Days", groups="(Days | Subjekt)")
    with pytest.raises(SchemaError, match="repeat the column\\(s\\) Intercept"):
        m.fit(SLEEP, "Reaction ~ Days", groups="(1 | Subject) + (Days | Subject)")
    with pytest.raises(ValueError, match="given twice"):
        m.fit(SLEEP, "Reaction ~ Days", groups=["(Days | Subject)", "(Days | Subject)"])
    with pytest.raises(ValueError, match="not both"):
        m.fit(SLEEP, "Reaction ~ Days + (Days | Subject)", groups="Subject")
    with pytest.raises(ValueError, match="no random effects"):
        m.fit(SLEEP, "Reaction ~ Days")
    small = SLEEP[SLEEP["Days"] < 2]                           # 36 rows, 18 subjects x 2 random effects
    with pytest.raises(SchemaError, match="column 'Subject'.*36 random effects for 36 rows"):
        m.fit(small, "Reaction ~ Days", groups="(Days | Subject)")
    with pytest.raises(ValueError, match="n_agq > 1.*random slopes"):   # the GLMMs' slopes: Laplace only, as glmer
        PoissonMixed(n_agq=5).fit(NB_CROSSED, "y ~ x1", groups="(x1 | po)")
    d = SLEEP.copy()
    d.loc[[4, 9], "Days"] = np.nan
    with pytest.raises(SchemaError, match=r"column 'Days'.*missing.*data row\(s\) 5, 10"):
        m.fit(d, "Reaction ~ 1", groups="(Days | Subject)")


# --------------------------------------------------------------------------------------------------------------------
# the algebra

def test_slope_system_matches_dense_algebra():
    """Correlated slopes on a factor, an uncorrelated pair on a crossed one, an intercept on a third, weights:
    the block elimination equals the dense penalised least squares."""
    rng = np.random.default_rng(3)
    n = 500
    df = pd.DataFrame({"g": rng.integers(0, 40, n), "h": rng.integers(0, 9, n), "k": rng.integers(0, 5, n),
                       "x": rng.normal(size=n), "z": rng.normal(size=n)})
    terms = parse_random("(x | g) + (z || h) + (1 | k)")
    levels = {f: df[f].nunique() for f in ["g", "h", "k"]}
    s, blocks = RandomStructure.build(terms, df, levels)
    codes = [pd.factorize(df[f], sort=True)[0] for f in s.factors]
    system = SlopeSystem(s, codes, [levels[f] for f in s.factors], blocks)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y, w = rng.normal(size=n), rng.uniform(0.5, 2, n)
    theta = np.array([0.8, -0.4, 0.5, 1.2, 0.3, 0.6])
    sol = system.solve(system.cross_products(X, y, w), theta)
    T = s.block_factors(theta)
    Z = np.hstack([np.einsum("ij,ig->igj", B, np.eye(levels[f])[c]).reshape(n, -1)
                   for B, f, c in zip(blocks, s.factors, codes)])
    ZL = Z @ linalg.block_diag(*[np.kron(np.eye(levels[f]), T[b]) for b, f in enumerate(s.factors)])
    A = ZL.T @ (w[:, None] * ZL) + np.eye(Z.shape[1])
    lhs = np.block([[A, ZL.T @ (w[:, None] * X)], [X.T @ (w[:, None] * ZL), X.T @ (w[:, None] * X)]])
    sol_dense = np.linalg.solve(lhs, np.concatenate([ZL.T @ (w * y), X.T @ (w * y)]))
    u, beta = sol_dense[:Z.shape[1]], sol_dense[Z.shape[1]:]
    np.testing.assert_allclose(sol.beta, beta, rtol=1e-10)
    np.testing.assert_allclose(np.concatenate([x.ravel() for x in sol.u]), u, rtol=1e-8, atol=1e-12)
    assert sol.ldL2 == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-12)
    r = y - X @ beta - ZL @ u
    assert sol.pwrss == pytest.approx(np.sum(w * r ** 2) + u @ u, rel=1e-10)
    # SDs and correlations <-> theta (lme4's Cv_to_Sv / Sv_to_Cv)
    np.testing.assert_allclose(s.theta_from_sdcor(s.sdcor(theta, 1.7), 1.7), theta, rtol=1e-12)


# --------------------------------------------------------------------------------------------------------------------
# recovery of the truth: correlated random intercepts and slopes

TRUTH = {"beta": (1.0, 0.5), "sd0": 0.8, "sd1": 0.3, "cor": 0.4, "sigma": 1.0}
N_GROUPS, N_TIMES = 60, 10


def growth_data(rng: np.random.Generator) -> pd.DataFrame:
    """y = 1 + 0.5 t + b0_g + b1_g t + e, t = -2..2 (10 times), (b0, b1) ~ N(0, [[0.64, 0.096], [0.096, 0.09]])."""
    t = np.tile(np.linspace(-2, 2, N_TIMES), N_GROUPS)
    g = np.repeat(np.arange(N_GROUPS), N_TIMES)
    c = TRUTH["cor"] * TRUTH["sd0"] * TRUTH["sd1"]
    b = rng.multivariate_normal([0, 0], [[TRUTH["sd0"] ** 2, c], [c, TRUTH["sd1"] ** 2]], size=N_GROUPS)
    y = TRUTH["beta"][0] + TRUTH["beta"][1] * t + b[g, 0] + b[g, 1] * t + rng.normal(0, TRUTH["sigma"], len(t))
    return pd.DataFrame({"y": y, "t": t, "g": g})


def replicate(seed: int, n_sims: int) -> pd.DataFrame:
    rows = []
    for ss in np.random.SeedSequence(seed).spawn(n_sims):
        m = LinearMixed().fit(growth_data(np.random.default_rng(ss)), "y ~ t + (t | g)")
        vc = m.varcorr_.set_index(["grp", "var1", "var2"], drop=True)["vcov"]
        row = m.tidy().set_index("term").loc["t"]
        rows.append({"slope": m.params_["t"], "covered": row["conf_low"] <= TRUTH["beta"][1] <= row["conf_high"],
                     "var0": m.variance_components_["g.Intercept"], "var1": m.variance_components_["g.t"],
                     "cov": vc[("g", "Intercept", "t")], "sigma2": m.sigma_ ** 2})
    return pd.DataFrame(rows)


def check_recovery(res: pd.DataFrame, coverage_low: float) -> None:
    c = TRUTH["cor"] * TRUTH["sd0"] * TRUTH["sd1"]
    truth = {"slope": TRUTH["beta"][1], "var0": TRUTH["sd0"] ** 2, "var1": TRUTH["sd1"] ** 2, "cov": c,
             "sigma2": TRUTH["sigma"] ** 2}
    for k, v in truth.items():          # REML: (nearly) unbiased for the variances of this balanced design
        mcse = res[k].std(ddof=1) / np.sqrt(len(res))
        assert abs(res[k].mean() - v) < 3.5 * mcse, (k, res[k].mean(), v, mcse)
    assert coverage_low <= res["covered"].mean() <= 1.0


def test_recovers_slopes_and_their_covariance_40_replicates():
    check_recovery(replicate(seed=21, n_sims=40), coverage_low=0.85)


@pytest.mark.slow
def test_recovers_slopes_and_their_covariance_500_replicates():
    # coverage MCSE = sqrt(0.95 * 0.05 / 500) = 0.0097: 0.92 is 3 MCSE below 0.95
    check_recovery(replicate(seed=22, n_sims=500), coverage_low=0.92)
