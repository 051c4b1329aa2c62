"""confint() of PoissonMixed / NegativeBinomialMixed / BinomialMixed: profile-likelihood intervals against R (lme4's
confint(glmer(...), method = "profile") and glmmTMB's for NB2; frozen values in tests/reference/glmm_profile, made by
glmm_profile.R from the data of tests/reference/glmm, binomial_mixed and glmm_slopes), Wald intervals, the shape of
the profile of a variance, boundaries and input errors."""

import json
import re
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from verzuimmodel.errors import ConvergenceWarning
from verzuimmodel.mixed import BinomialMixed, NegativeBinomialMixed, PoissonMixed

REF_DIR = Path(__file__).resolve().parent / "reference" / "glmm_profile"
REF = json.loads((REF_DIR / "glmm_profile_reference.json").read_text())
MODELS = REF["models"]
CLASSES = {"poisson": PoissonMixed, "binomial": BinomialMixed, "nb": NegativeBinomialMixed}
Z = stats.norm.ppf(0.975)

# Tolerances (relative). The "tight" references are roots of R's own profile deviance (glmm_profile.R); ours agree
# with them to about 1e-7. R's confint(method = "profile") reads the limits off a spline (and lme4 evaluates its
# deviance with PIRLS at tolerance 1e-7): it is off by up to ~4e-3 (the epil correlation, whose spline R replaces by
# linear interpolation), ~2e-3 elsewhere.
RTOL = 1e-4
RTOL_SPLINE = 5e-3
RTOL_WALD_TMB = 1e-4        # Wald limits vs glmmTMB's (both from the observed information of the Laplace likelihood)


def r_name(name: str) -> str:
    """Our parameter name as R's: ``sd_Intercept|herd`` -> ``sd_(Intercept)|herd``, ``period[T.2]`` -> ``period2``."""
    return re.sub(r"\[T\.([^\]]+)\]", r"\1", name.replace("Intercept", "(Intercept)"))


def load(name: str) -> pd.DataFrame:
    """The data of reference model ``name``, with the columns its R formula derives."""
    d = pd.read_csv(REF_DIR / MODELS[name]["data"])
    if "epil" in MODELS[name]["data"]:
        d["Visit"] = (d["period"] - 2.5) / 5
    if "cbpp" in MODELS[name]["data"]:
        d["period"] = d["period"].astype(str)       # a factor, as in R
        d["obs"] = np.arange(len(d))
    if name == "pois_boundary":                     # four copies, one batch each (glmm_profile.R)
        d = pd.concat([d.assign(batch=b) for b in range(4)], ignore_index=True)
    return d


@lru_cache(maxsize=None)
def fitted(name: str):
    r = MODELS[name]
    kw = {k: r[k] for k in ("trials", "exposure") if r.get(k)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)     # the boundary model warns, as lme4
        return CLASSES[r["kind"]](n_agq=r.get("n_agq", 1)).fit(load(name), r["formula"], groups=r["groups"], **kw)


@lru_cache(maxsize=None)
def profile_of(name: str):
    return fitted(name).profile()


@lru_cache(maxsize=None)
def intervals(name: str) -> pd.DataFrame:
    m = fitted(name)
    which = {row["parameter"] for row in MODELS[name]["tight"]}
    names = [p for p in profile_of(name).names if r_name(p) in which]
    ci = profile_of(name).table(names, 0.95)
    ci.index = [r_name(p) for p in ci.index]
    assert len(ci) == len(which) and m.converged_
    return ci


def r_limits(rows) -> pd.DataFrame:
    return pd.DataFrame({"conf_low": [r["low"] for r in rows], "conf_high": [r["high"] for r in rows]},
                        index=[r["parameter"] for r in rows])


# ---------------------------------------------------------------------------------------------------------------
# against R


def test_r_references_converged():
    singular = "boundary (singular) fit: see help('isSingular')"
    for name, r in MODELS.items():
        cv = r["conv"]
        assert cv["code"] == 0 and cv["warnings"] == [], name
        if r["engine"] == "glmmTMB":
            assert cv["pdHess"] and r["max_grad"] < 1e-8, name
        elif name == "pois_boundary":
            assert cv["singular"] and cv["lme4"] == singular and cv["messages"] == singular
        else:
            assert not cv["singular"] and not cv["lme4"] and cv["messages"] == [], name     # R's NULL: null
        # the profile's optimum is the fit's (R's fit stops within 2e-5 of it in deviance)
        assert r["base_deviance"] <= r["base_deviance_reported"] + 1e-7, name
        assert r["base_deviance"] == pytest.approx(r["base_deviance_reported"], abs=1e-4), name


@pytest.mark.parametrize("name", list(MODELS))
def test_profile_intervals_match_r(name):
    ours = intervals(name)
    ref = r_limits(MODELS[name]["tight"]).loc[ours.index]
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=RTOL, atol=0)
    # the same likelihood: the deviance at the optimum (lme4's nAGQ > 1 deviance omits the saturated part)
    if MODELS[name].get("n_agq", 1) == 1:
        assert profile_of(name).base_deviance == pytest.approx(MODELS[name]["base_deviance"], rel=1e-9)


@pytest.mark.parametrize("name", [m for m in MODELS if MODELS[m]["profile"]])
def test_profile_intervals_are_r_confint_to_its_spline_accuracy(name):
    # R's own confint(method = "profile"): the same intervals, read off its spline
    ref = r_limits(MODELS[name]["profile"])
    ours = intervals(name).loc[ref.index]
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=RTOL_SPLINE, atol=0)


@pytest.mark.parametrize("name", ["epil_slope", "nb_ri", "cbpp_olre"])
def test_zeta_at_r_limits_is_the_cutoff(name):
    # the signed root of the profile deviance itself, at R's limits (one parameter of each kind)
    prof = profile_of(name)
    ref = r_limits(MODELS[name]["tight"])
    ours = {r_name(p): p for p in prof.names}
    for parm, (low, high) in ref.iterrows():
        if low > 0 or not parm.startswith("sd_"):
            assert prof.zeta(ours[parm], low) == pytest.approx(-Z, abs=2e-5), parm
        assert prof.zeta(ours[parm], high) == pytest.approx(Z, abs=2e-5), parm
        assert prof.zeta(ours[parm], prof.estimate[ours[parm]]) == pytest.approx(0.0, abs=1e-3), parm


@pytest.mark.parametrize("name", ["epil_slope", "nb_ri", "cbpp_olre", "pois_boundary"])
def test_profile_deviance_is_the_fit_likelihood(name):
    # -2 log L at the fit's estimates, through the profile's parametrisation (SDs, correlations, theta, beta; the
    # boundary model's batch SD at exactly 0 is the fit without it)
    m, prof = fitted(name), profile_of(name)
    assert prof.deviance(prof.estimate.to_numpy()) == pytest.approx(-2 * m.log_likelihood_, rel=1e-10)
    assert prof.base_deviance <= -2 * m.log_likelihood_ + 1e-8


# ---------------------------------------------------------------------------------------------------------------
# Wald


@pytest.mark.parametrize("name", ["cbpp_ri", "nb_ri", "epil_slope"])
def test_wald_intervals_are_estimate_plus_minus_z_se(name):
    m = fitted(name)
    ci = m.confint(method="Wald", level=0.9)
    z = stats.norm.ppf(0.95)
    fixed = list(m.params_.index)
    np.testing.assert_allclose(ci.loc[fixed, "conf_low"], m.params_ - z * m.standard_errors_, rtol=1e-12)
    np.testing.assert_allclose(ci.loc[fixed, "conf_high"], m.params_ + z * m.standard_errors_, rtol=1e-12)
    variance = [p for p in ci.index if p not in fixed]
    assert variance and ci.loc[variance].isna().all().all()          # as lme4: no Wald interval for them
    assert list(ci.index) == variance + fixed and list(ci.columns) == ["conf_low", "conf_high"]


def test_wald_intervals_match_glmmtmb():
    ci = fitted("nb_ri").confint("beta_", method="Wald")
    ci.index = [r_name(p) for p in ci.index]
    ref = r_limits(MODELS["nb_ri"]["wald"])
    np.testing.assert_allclose(ci.loc[ref.index].to_numpy(), ref.to_numpy(), rtol=RTOL_WALD_TMB)


# ---------------------------------------------------------------------------------------------------------------
# the shape of the profile of a variance, and boundaries


@pytest.mark.parametrize("name, parm", [("pois_ri", "sd_Intercept|school"), ("cbpp_ri", "sd_Intercept|herd")])
def test_sd_interval_is_wider_above(name, parm):
    # a small-sample SD: its likelihood is skewed to the right, the profile interval is longer above the estimate
    # than below (the Wald interval on the SD scale would be symmetric)
    m = fitted(name)
    est = float(np.sqrt(m.variance_components_[parm.split("|")[1]]))
    low, high = m.confint(parm).loc[parm]
    assert 0 < low < est < high
    assert high - est > 1.2 * (est - low)


def test_sd_estimated_at_zero_has_lower_limit_zero():
    m = fitted("pois_boundary")
    assert m.variance_components_["batch"] == 0.0 and m.boundary_ == ["batch"]
    ci = m.confint("theta_")
    assert ci.loc["sd_Intercept|batch", "conf_low"] == 0.0
    high = ci.loc["sd_Intercept|batch", "conf_high"]
    assert high > 0 and profile_of("pois_boundary").zeta("sd_Intercept|batch", high) == pytest.approx(Z, abs=1e-6)
    narrower = m.confint("sd_Intercept|batch", level=0.5).loc["sd_Intercept|batch"]
    assert narrower["conf_low"] == 0.0 and 0 < narrower["conf_high"] < high


def test_sd_whose_profile_stays_below_the_cutoff_has_lower_limit_zero():
    # cbpp with an observation-level effect: the herd SD is estimated above 0, but 0 is inside the interval
    m, prof = fitted("cbpp_olre"), profile_of("cbpp_olre")
    assert m.variance_components_["herd"] > 0.01
    assert -Z < prof.zeta("sd_Intercept|herd", 0.0) < 0
    assert m.confint("sd_Intercept|herd").loc["sd_Intercept|herd", "conf_low"] == 0.0
    assert m.confint("sd_Intercept|obs").loc["sd_Intercept|obs", "conf_low"] > 0


def test_dispersion_without_overdispersion_has_no_upper_limit():
    # Poisson counts fitted by NB2: theta runs off to infinity, and so does its upper limit (glmmTMB's log theta)
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(30), 20)
    x = rng.normal(size=len(g))
    df = pd.DataFrame({"g": g, "x": x, "y": rng.poisson(np.exp(0.5 + 0.3 * x + rng.normal(0, 0.4, 30)[g]))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = NegativeBinomialMixed().fit(df, "y ~ x", groups="g")
    low, high = m.confint("dispersion").loc["dispersion"]
    assert np.isinf(high) and 0 < low < np.inf
    assert m.profile().zeta("dispersion", low) == pytest.approx(-Z, abs=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# arguments


def test_parameters_are_chosen_by_name_or_group():
    m = fitted("epil_slope")
    assert list(m.confint("theta_", method="Wald").index) == [
        "sd_Intercept|subject", "cor_Visit.Intercept|subject", "sd_Visit|subject"]
    assert list(m.confint("beta_", method="Wald").index) == list(m.params_.index)
    assert list(fitted("nb_ri").confint("theta_", method="Wald").index) == ["sd_Intercept|school", "dispersion"]
    two = m.confint(["Visit", "sd_Visit|subject"])
    assert list(two.index) == ["Visit", "sd_Visit|subject"] and two.index.name == "parameter"
    np.testing.assert_allclose(two.to_numpy(), intervals("epil_slope").loc[["Visit", "sd_Visit|subject"]].to_numpy(),
                               rtol=1e-7)


def test_level_changes_the_profile_interval():
    m = fitted("cbpp_ri")
    wide, narrow = m.confint("sd_Intercept|herd", level=0.99), m.confint("sd_Intercept|herd", level=0.8)
    assert wide.iloc[0, 0] < narrow.iloc[0, 0] < narrow.iloc[0, 1] < wide.iloc[0, 1]
    prof = profile_of("cbpp_ri")
    assert prof.zeta("sd_Intercept|herd", wide.iloc[0, 1]) == pytest.approx(stats.norm.ppf(0.995), abs=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"parm": "sd_Intercept|school"}, r"unknown parameter 'sd_Intercept\|school'; the parameters are: "
                                      r"sd_Intercept\|herd, Intercept, period\[T.2\]"),
    ({"parm": ["Intercept", "period2"]}, "unknown parameter 'period2'"),
    ({"level": 0}, "level must be a number between 0 and 1, got 0"),
    ({"level": 1.0}, "level must be a number between 0 and 1"),
    ({"level": 95}, "level must be a number between 0 and 1, got 95"),
    ({"level": "0.95"}, "level must be a number between 0 and 1, got '0.95'"),
    ({"level": True}, "level must be a number between 0 and 1"),
    ({"method": "wald"}, "method must be 'profile' or 'Wald', got 'wald'"),
    ({"method": "boot"}, "method must be 'profile' or 'Wald', got 'boot'"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fitted("cbpp_ri").confint(**kwargs)


def test_unfitted_model_is_a_clear_error():
    for cls in CLASSES.values():
        with pytest.raises(RuntimeError, match="not fitted yet"):
            cls().confint()
