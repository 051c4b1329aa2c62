"""PoissonMixed / NegativeBinomialMixed / BinomialMixed with random slopes and correlated random effects against R
glmmTMB and lme4::glmer (frozen values in tests/reference/glmm_slopes, made by make_data.py + glmm_slopes.R), the
exact gradient and the algebra of the Laplace approximation, the boundary fits, and a simulation in which the slope
varies between groups."""

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
from verzuimmodel.mixed import BinomialMixed, NegativeBinomialMixed, PoissonMixed, lr_test
from verzuimmodel.mixed._design import model_frame
from verzuimmodel.mixed.binomial_family import _Binomial
from verzuimmodel.mixed.count_families import _NB2, _Poisson
from verzuimmodel.mixed.random_terms import RandomStructure, parse_random
from verzuimmodel.mixed.slope_laplace import SlopeGroups, SlopeObjective
from verzuimmodel.schema import SchemaError

REF_DIR = Path(__file__).resolve().parent / "reference" / "glmm_slopes"
REF = json.loads((REF_DIR / "glmm_slopes_reference.json").read_text())["models"]
BOUNDARY = ["epil_nb_tmb"]                    # glmmTMB's fit is singular there: a boundary case, not a reference
MODELS = [m for m in REF if m not in BOUNDARY]
TMB = [m for m in MODELS if REF[m]["engine"] == "glmmTMB"]
CLASSES = {"nb": NegativeBinomialMixed, "poisson": PoissonMixed, "binomial": BinomialMixed}

# Tolerances (relative). Against glmmTMB (polished to a gradient below 1e-12 on TMB's own objective, see
# glmm_slopes.R) the fits agree to about 1e-7, against glmer (tight tolerances) to about 1e-6.
RTOL = 1e-4             # fixed effects, SEs (glmmTMB), SDs, correlations, NB theta, lme4's theta, modes, intervals
ATOL_COR = 1e-5         # ... correlations and off-diagonal elements of theta near 0 (glmer's stopping point)
RTOL_SE_GLMER = 2e-3    # glmer's vcov: lme4's finite-difference Hessian of its deviance (the glmmTMB twins: RTOL)
RTOL_LOGLIK = 1e-8      # the maximum is second-order insensitive to the parameter error above


def load(name: str) -> pd.DataFrame:
    """A reference data set with the columns its R formula derives."""
    d = pd.read_csv(REF_DIR / name)
    if name == "epil.csv":
        d["Visit"] = (d["period"] - 2.5) / 5
    elif name == "owls.csv":
        d["at"] = d["ArrivalTime"] - 24
        d["log_brood"] = np.log(d["BroodSize"])
    elif name == "cbpp.csv":
        d["period_numeric"] = d["period"].astype(float)
    elif name == "contraception.csv":
        d["use01"] = (d["use"] == "Y").astype(int)
        d["age10"] = d["age"] / 10
    return d


DATA = {name: load(name) for name in {REF[m]["data"] for m in REF}}
PY = DATA["pupil_years.csv"]


def r_name(name: str) -> str:
    """patsy's column name as R's: ``Intercept`` -> ``(Intercept)``, ``urban[T.Y]`` -> ``urbanY``."""
    if name == "Intercept":
        return "(Intercept)"
    return re.sub(r"\[T\.([^\]]+)\]", r"\1", name).replace(" ** ", "^")


def lme4_theta_names(m) -> list[str]:
    """lme4's names of the elements of ``theta_`` (``school.(Intercept)``, ``school.x1.(Intercept)``,
    ``school.x1``), from the fitted terms."""
    s = m._slopes.structure
    return [f"{s.terms[k].factor}.{r_name(s.columns[k][i])}" + ("" if i == j else f".{r_name(s.columns[k][j])}")
            for k, i, j in s.theta_index]


def as_list(value) -> list:
    """A JSON field of R strings as a list (jsonlite writes a single string unboxed, none as [] or null)."""
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def fit_kwargs(ref: dict) -> dict:
    return {k: ref[k] for k in ("exposure", "offset", "trials") if ref[k]}


@lru_cache(maxsize=None)
def fitted(name: str):
    """Our fit of reference model ``name`` and the warnings it gave."""
    ref = REF[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = CLASSES[ref["kind"]]().fit(DATA[ref["data"]], ref["formula"], groups=ref["groups"], **fit_kwargs(ref))
    return m, [str(w.message) for w in caught]


def our_sdcor(m) -> tuple[dict, dict]:
    """SDs by (factor, R column) and correlations by (factor, R column, R column)."""
    vc = m.varcorr_
    sd = {(r.grp, r_name(r.var1)): r.sdcor for r in vc.itertuples() if r.var2 is None or pd.isna(r.var2)}
    cor = {}
    for r in vc.itertuples():
        if r.var2 is not None and not pd.isna(r.var2):
            cor[(r.grp, r_name(r.var1), r_name(r.var2))] = cor[(r.grp, r_name(r.var2), r_name(r.var1))] = r.sdcor
    return sd, cor


# --------------------------------------------------------------------------------------------------------------------
# against R


def test_r_references_converged():
    for name, ref in REF.items():
        conv = ref["conv"]
        if name in BOUNDARY:
            assert any("singular convergence" in w for w in as_list(conv["warnings"]))
            continue
        assert as_list(conv["warnings"]) == [] and as_list(conv["messages"]) == [], name
        if ref["engine"] == "glmer":
            assert conv["code"] == 0 and as_list(conv["lme4"]) == [] and not conv["singular"], name
        else:
            assert conv["code"] == 0 and conv["pdHess"], name
            # the Newton polish of glmmTMB's optimum: a gradient at rounding level, the log-likelihood unmoved
            assert ref["max_grad"] < 1e-9, name
            assert abs(ref["loglik"] - ref["reported"]["loglik"]) < 1e-6, name


@pytest.mark.parametrize("name", MODELS)
def test_matches_r(name):
    ref = REF[name]
    m, caught = fitted(name)
    assert caught == [] and m.converged_ and m.boundary_ == []
    b = m.params_.rename(r_name)
    se = m.standard_errors_.rename(r_name)
    fixed, se_r = pd.Series(ref["fixed"]), pd.Series(ref["std_error"])
    assert set(b.index) == set(fixed.index)
    np.testing.assert_allclose(b[fixed.index], fixed, rtol=RTOL)
    np.testing.assert_allclose(se[se_r.index], se_r, rtol=RTOL if ref["engine"] == "glmmTMB" else RTOL_SE_GLMER)
    sd, cor = our_sdcor(m)
    for grp, v in ref["varcorr"].items():
        factor = re.sub(r"\.\d+$", "", grp)            # glmer names the second term of (x || g) "g.1"
        cols = list(v["sd"])
        for col, value in v["sd"].items():
            assert sd[(factor, col)] == pytest.approx(value, rel=RTOL)
        for i, row in enumerate(v["cor"] or []):
            for j, value in enumerate(row.values()):
                if j < i:   # glmmTMB's diag() reports its zero correlations; (x || g) has none
                    ours = cor.get((factor, cols[i], cols[j]), 0.0)
                    assert ours == pytest.approx(value, rel=RTOL, abs=ATOL_COR)
    assert m.log_likelihood_ == pytest.approx(ref["loglik"], rel=RTOL_LOGLIK)
    assert m.n_parameters_ == ref["npar"]
    assert m.aic_ == pytest.approx(ref["aic"], rel=RTOL_LOGLIK)
    assert m.bic_ == pytest.approx(ref["bic"], rel=RTOL_LOGLIK)
    if ref["kind"] == "nb":
        assert m.dispersion_ == pytest.approx(ref["dispersion"], rel=RTOL)
    if ref["engine"] == "glmer":                      # getME(fit, "theta"): the Cholesky factors' elements
        ours = pd.Series(m.theta_.to_numpy(), index=lme4_theta_names(m))
        theta = pd.Series(ref["theta_lme4"])
        assert set(ours.index) == set(theta.index)
        np.testing.assert_allclose(ours[theta.index], theta, rtol=RTOL, atol=ATOL_COR * theta.abs().max())


@pytest.mark.parametrize("name", MODELS)
def test_conditional_modes_match_r(name):
    m, _ = fitted(name)
    for factor, columns in REF[name]["ranef"].items():
        ours = m.ranef_[factor]
        ours = ours.to_frame("(Intercept)") if isinstance(ours, pd.Series) else ours.rename(columns=r_name)
        ours.index = ours.index.astype(str)
        for col, values in columns.items():
            r = pd.Series(values)
            scale = r.abs().max()
            np.testing.assert_allclose(ours.loc[r.index, col], r, rtol=RTOL, atol=1e-5 * scale)


@pytest.mark.parametrize("name", TMB)
def test_variance_parameter_intervals_match_glmmtmb(name):
    """SDs: Wald intervals on the log scale and SE(log SD) as confint(fit, "theta_") / sdreport of glmmTMB;
    correlations of a 2 x 2 term: the delta-method SE (glmmTMB's parameter is rho / sqrt(1 - rho^2))."""
    ref = REF[name]
    m, _ = fitted(name)
    t = m.tidy(effects="ran_pars").set_index("term")
    z = stats.norm.ppf(0.975)
    pv = m.parameter_vcov_
    n_checked = 0
    for row, theta, se_theta in zip(ref["confint_theta"], ref["theta_tmb"], ref["se_theta_tmb"]):
        kind = "sd" if row["name"].startswith("Std.Dev.") else "cor"
        cols, factor = row["name"].split(".", 2 if kind == "sd" else 1)[-1].rsplit("|", 1)
        if kind == "sd":
            ours = f"sd_{'Intercept' if cols == '(Intercept)' else cols}|{factor}"
            if ours not in t.index:                    # patsy's name of a factor's column (urban[T.Y])
                ours = next(i for i in t.index if i.endswith(f"|{factor}") and i.startswith("sd_")
                            and r_name(i[3:].rsplit("|", 1)[0]) == cols)
            assert t.loc[ours, "estimate"] == pytest.approx(row["estimate"], rel=RTOL)
            assert t.loc[ours, "conf_low"] == pytest.approx(row["low"], rel=RTOL)
            assert t.loc[ours, "conf_high"] == pytest.approx(row["high"], rel=RTOL)
            assert np.sqrt(pv.loc["log_" + ours, "log_" + ours]) == pytest.approx(se_theta, rel=RTOL)
            # the interval is the back-transformed Wald interval of log SD
            assert t.loc[ours, "conf_high"] == pytest.approx(np.exp(np.log(t.loc[ours, "estimate"]) + z * se_theta),
                                                             rel=RTOL)
            n_checked += 1
        elif sum(r["name"].startswith("Cor.") and r["name"].endswith(f"|{factor}") for r in ref["confint_theta"]) == 1:
            ours = next(i for i in t.index if i.startswith("cor_") and i.endswith(f"|{factor}"))
            rho = theta / np.sqrt(1 + theta ** 2)
            assert t.loc[ours, "estimate"] == pytest.approx(rho, rel=RTOL, abs=ATOL_COR)
            assert t.loc[ours, "std_error"] == pytest.approx(se_theta / (1 + theta ** 2) ** 1.5, rel=RTOL)
            lo, hi = np.tanh(np.arctanh(rho) + np.array([-z, z]) * se_theta / (1 + theta ** 2) ** 1.5 / (1 - rho ** 2))
            assert (t.loc[ours, "conf_low"], t.loc[ours, "conf_high"]) == pytest.approx((lo, hi), rel=RTOL)
            n_checked += 1
    assert n_checked >= 2
    if ref["kind"] == "nb":
        lo, hi = t.loc["dispersion", ["conf_low", "conf_high"]]
        assert np.sqrt(lo * hi) == pytest.approx(m.dispersion_, rel=1e-10)     # symmetric on the log scale


def test_correlation_likelihood_ratio_test_matches_r():
    # anova(glmmTMB(... + diag(1 + x1 | school)), glmmTMB(... + (x1 | school))): one correlation parameter
    a, _ = fitted("nb_uncor_tmb")
    b, _ = fitted("nb_tmb")
    t = lr_test(a, b)
    assert t.df == 1
    assert t.statistic == pytest.approx(2 * (REF["nb_tmb"]["loglik"] - REF["nb_uncor_tmb"]["loglik"]), rel=1e-6)


# --------------------------------------------------------------------------------------------------------------------
# boundary fits


def test_correlation_at_one_is_a_named_boundary_warning():
    """MASS::epil with NB2: glmmTMB ends in 'singular convergence' with the slope SD near 0 and a correlation of
    -0.998; the boundary fit (the second column of T at 0) is at least as good and is warned."""
    ref = REF["epil_nb_tmb"]
    with pytest.warns(ConvergenceWarning, match=r"boundary \(singular\) fit of \(Visit \| subject\).*correlation is "
                                                r"estimated at \+-1") as w:
        m = NegativeBinomialMixed().fit(DATA["epil.csv"], ref["formula"], groups=ref["groups"])
    assert w[0].filename == __file__                    # the warning points at the caller's line
    assert m.boundary_ == ["subject.Visit"]
    assert m.varcorr_["sdcor"].iloc[2] == -1.0
    assert m.log_likelihood_ >= ref["loglik"] - 1e-9
    assert m.log_likelihood_ == pytest.approx(ref["loglik"], rel=1e-8)
    np.testing.assert_allclose(m.params_.rename(r_name)[list(ref["fixed"])], list(ref["fixed"].values()), rtol=RTOL)
    assert m.dispersion_ == pytest.approx(ref["dispersion"], rel=RTOL)
    t = m.tidy(effects="ran_pars").set_index("term")
    assert t.loc[["sd_Intercept|subject", "cor_Visit.Intercept|subject"], "std_error"].isna().all()
    assert np.isfinite(m.standard_errors_).all() and m.converged_


def _no_slope_data(seed: int = 2) -> pd.DataFrame:
    """Poisson counts with a random intercept and no random slope (this seed: the slope variance goes to 0)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(30), 20)
    x = rng.normal(size=len(g))
    y = rng.poisson(np.exp(0.3 + 0.2 * x + rng.normal(0, 0.5, 30)[g]))
    return pd.DataFrame({"y": y, "x": x, "g": g})


def test_slope_variance_at_zero_is_the_random_intercept_fit():
    d = _no_slope_data()
    with pytest.warns(ConvergenceWarning, match=r"boundary \(singular\) fit of \(1 \| g\) \+ \(0 \+ x \| g\): the "
                                                r"variance of 'x' is estimated at 0") as w:
        m = PoissonMixed().fit(d, "y ~ x", groups="(x || g)")
    assert w[0].filename == __file__
    assert m.boundary_ == ["g.x"] and m.variance_components_["g.x"] == 0.0
    assert (m.ranef_["g"]["x"] == 0).all()
    ref = PoissonMixed().fit(d, "y ~ x", groups="g")
    assert m.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-10)
    np.testing.assert_allclose(m.params_, ref.params_, rtol=1e-6)
    np.testing.assert_allclose(m.standard_errors_, ref.standard_errors_, rtol=1e-4)
    assert m.variance_components_["g.Intercept"] == pytest.approx(ref.variance_components_["g"], rel=1e-5)
    assert m.n_parameters_ == ref.n_parameters_ + 1       # the slope variance counts, as in R


def test_hessian_that_is_not_positive_definite_is_warned(monkeypatch):
    from verzuimmodel.mixed import laplace
    real = laplace._fd_hessian

    def broken(obj, phi, free, steps):
        H = real(obj, phi, free, steps)
        k = obj.p + 1                                  # the off-diagonal element of T: the correlation direction
        H[k, :] = H[:, k] = 0.0
        H[k, k] = -1.0
        return H

    monkeypatch.setattr(laplace, "_fd_hessian", broken)
    ref = REF["epil_tmb"]
    with pytest.warns(ConvergenceWarning, match=r"not positive definite \(parameters covariance parameter "
                                                r"'subject\.Visit\.Intercept'\)") as w:
        m = PoissonMixed().fit(DATA["epil.csv"], ref["formula"], groups=ref["groups"])
    assert w[0].filename == __file__
    assert not m.converged_ and m.standard_errors_.isna().all()
    assert m.tidy(effects="ran_pars")["std_error"].isna().all()


def test_non_convergence_is_warned(monkeypatch):
    from verzuimmodel.mixed import glmm_slopes
    real = glmm_slopes._optimise

    def cut_short(obj, phi0, max_iter):
        fit = real(obj, phi0, max_iter)
        fit.converged, fit.message = False, "stopped for the test"
        return fit

    monkeypatch.setattr(glmm_slopes, "_optimise", cut_short)
    ref = REF["cbpp_glmer"]
    with pytest.warns(ConvergenceWarning, match=r"did not converge \(stopped for the test\).*gradient is in the "
                                                r"(coefficient|covariance parameter)"):
        m = BinomialMixed().fit(DATA["cbpp.csv"], ref["formula"], groups=ref["groups"], trials="size")
    assert not m.converged_ and "not converged: stopped for the test" in m.summary()


# --------------------------------------------------------------------------------------------------------------------
# the exact gradient and the algebra


def _objective(groups: str, family, outcome: str):
    rng = np.random.default_rng(11)
    n = 500
    g, h = rng.integers(0, 25, n), rng.integers(0, 7, n)
    x, x2 = rng.normal(size=n), 2.0 * rng.normal(size=n)
    eta = -0.3 + 0.3 * x + rng.normal(0, 0.5, 25)[g] + rng.normal(0, 0.3, 25)[g] * x + rng.normal(0, 0.3, 7)[h]
    d = pd.DataFrame({"y": rng.poisson(np.exp(eta + 1.0)), "yb": rng.binomial(1, 1 / (1 + np.exp(-eta))),
                      "x": x, "x2": x2, "g": g, "h": h})
    terms = parse_random(groups)
    factors = list(dict.fromkeys(t.factor for t in terms))
    mf = model_frame(d, f"{outcome} ~ x + x2", factors)
    s, blocks = RandomStructure.build(terms, d, dict(zip(factors, mf.n_levels)))
    sg = SlopeGroups(s, mf.group_codes, mf.n_levels, blocks)
    obj = SlopeObjective(mf.y, mf.X, np.zeros(n), sg, family(mf.y))
    tau = np.where(obj.is_diag, -0.7, 0.2) + 0.1 * rng.normal(size=obj.K)
    phi = np.concatenate([[0.1, 0.2, -0.05], tau] + ([[1.0]] if family is _NB2 else []))
    return obj, phi


@pytest.mark.parametrize("groups", ["(x | g)", "(x + x2 | g)", "(x || g)", "(x | g) + (1 | h)", "(1 | g) + (x | h)",
                                    "(x | g) + (x2 | h)"])
@pytest.mark.parametrize("family, outcome", [(_Poisson, "y"), (_NB2, "y"), (_Binomial, "yb")])
def test_gradient_matches_finite_differences(groups, family, outcome):
    obj, phi = _objective(groups, family, outcome)
    st = obj.evaluate(phi)
    assert st.inner_converged
    fd = np.empty_like(phi)
    for i in range(len(phi)):
        e = np.zeros_like(phi)
        e[i] = 1e-5
        obj.u = st.u.copy()
        up = obj.evaluate(phi + e).loglik
        obj.u = st.u.copy()
        fd[i] = -(up - obj.evaluate(phi - e).loglik) / 2e-5
    # central differences of a log-likelihood of size ~1e3: truncation + rounding error ~1e-7
    np.testing.assert_allclose(st.grad, fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("groups", ["(x + x2 | g)", "(x | g) + (x2 | h)", "(1 | g) + (x | h)"])
def test_factorisation_matches_dense_algebra(groups):
    """log|A|, A^{-1} r, the leverages z'A^{-1}z and the trace terms against dense matrices."""
    obj, phi = _objective(groups, _Poisson, "y")
    sg = obj.groups
    T = obj.factors(phi[obj.p:obj.p + obj.K])
    rng = np.random.default_rng(3)
    w = rng.uniform(0.2, 3.0, sg.n)
    Z = np.zeros((sg.n, sg.q))                                 # dense Z Lambda
    for b in range(sg.B):
        zl = sg.Z[b] @ T[b]
        for c in range(sg.q_b[b]):
            Z[np.arange(sg.n), sg.starts[b] + sg.codes[b] * sg.q_b[b] + c] = zl[:, c]
    A = Z.T @ (w[:, None] * Z) + np.eye(sg.q)
    fac = sg.factorize(w, T)
    assert fac.logdet == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-12)
    r = rng.normal(size=sg.q)
    np.testing.assert_allclose(fac.solve(r), np.linalg.solve(A, r), rtol=1e-9, atol=1e-12)
    Ainv = np.linalg.inv(A)
    h, Q = fac.leverage_and_traces()
    np.testing.assert_allclose(h, np.einsum("ij,jk,ik->i", Z, Ainv, Z), rtol=1e-9)
    Y = Z @ Ainv                                               # row i: (A^{-1} Lambda' z_i)'
    for b in range(sg.B):
        cols = sg.starts[b] + sg.codes[b][:, None] * sg.q_b[b] + np.arange(sg.q_b[b])
        yb = np.take_along_axis(Y, cols, axis=1)
        np.testing.assert_allclose(Q[b], (sg.Z[b] * w[:, None]).T @ yb, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------------------------------------
# the ways to give the random effects; what a fit reports


def test_terms_in_formula_or_groups_are_the_same_model():
    a = NegativeBinomialMixed().fit(PY, "y_nb ~ x1 + x2 + treat + (x1 | school)", exposure="days")
    b = NegativeBinomialMixed().fit(PY, "y_nb ~ x1 + x2 + treat", groups="(x1 | school)", exposure="days")
    c = NegativeBinomialMixed().fit(PY, "y_nb ~ x1 + x2 + treat", groups=["x1 | school"], exposure="days")
    for other in (b, c):
        pd.testing.assert_series_equal(a.params_, other.params_)
        pd.testing.assert_series_equal(a.theta_, other.theta_)
    assert a.random_terms_ == ["(x1 | school)"] and a.formula_ == "y_nb ~ x1 + x2 + treat + (x1 | school)"


def test_double_bar_is_intercept_plus_slope():
    a, _ = fitted("pois_uncor_glmer")
    b = PoissonMixed().fit(PY, "y_pois ~ x1 + x2 + treat", groups=["(1 | school)", "(0 + x1 | school)"],
                           exposure="days")
    assert a.random_terms_ == ["(1 | school)", "(0 + x1 | school)"]
    np.testing.assert_allclose(a.theta_, b.theta_, rtol=1e-10)
    assert list(a.variance_components_.index) == ["school.Intercept", "school.x1"]
    assert list(a.ranef_["school"].columns) == ["Intercept", "x1"]
    assert "cor" not in " ".join(a.tidy(effects="ran_pars")["term"])


@pytest.mark.parametrize("cls, data, formula, kwargs", [
    (NegativeBinomialMixed, PY, "y_nb ~ x1 + x2 + treat", {"exposure": "days"}),
    (BinomialMixed, DATA["cbpp.csv"], "incidence ~ period_numeric", {"trials": "size"}),
])
def test_random_intercept_terms_are_the_random_intercept_fit(cls, data, formula, kwargs):
    """'(1 | school) + (1 | vo)' goes to the random-intercept models: the same numbers, bit for bit."""
    groups = ["school", "vo"] if cls is NegativeBinomialMixed else ["herd"]
    a = cls().fit(data, formula, groups=groups, **kwargs)
    b = cls().fit(data, formula + " + " + " + ".join(f"(1 | {g})" for g in groups), **kwargs)
    assert a.params_.equals(b.params_) and a.standard_errors_.equals(b.standard_errors_)
    assert a.variance_components_.equals(b.variance_components_) and a.log_likelihood_ == b.log_likelihood_
    assert not hasattr(b, "theta_") and b._slopes is None
    c = cls().fit(data, formula + f" + (1 | {groups[0]}) + (0 + x1 | {groups[0]})" if cls is NegativeBinomialMixed
                  else formula + " + (period_numeric | herd)", **kwargs)
    assert hasattr(c, "theta_")
    c.fit(data, formula, groups=groups, **kwargs)                  # refitted with intercepts: no slope state left
    assert not hasattr(c, "theta_") and c._slopes is None and c.log_likelihood_ == a.log_likelihood_


def test_nested_terms():
    d = PY.assign(klas=np.arange(len(PY)) % 3)
    a = PoissonMixed().fit(d, "y_pois ~ x1", groups="(1 | school/klas)", exposure="days")
    assert list(a.n_groups_.index) == ["school", "school:klas"]
    b = PoissonMixed().fit(d.assign(sk=d["school"].astype(str) + ":" + d["klas"].astype(str)), "y_pois ~ x1",
                           groups=["school", "sk"], exposure="days")
    np.testing.assert_allclose(a.variance_components_.to_numpy(), b.variance_components_.to_numpy(), rtol=1e-12)


def test_predict_with_random_slopes():
    m, _ = fitted("nb_crossed_tmb")
    new = PY.iloc[:8]
    b = m.params_
    lp = b["Intercept"] + new[["x1", "x2", "treat"]].to_numpy() @ b[["x1", "x2", "treat"]].to_numpy()
    re_s = m.ranef_["school"].loc[new["school"]].to_numpy()
    re = re_s[:, 0] + re_s[:, 1] * new["x1"].to_numpy() + m.ranef_["vo"].loc[new["vo"]].to_numpy()
    np.testing.assert_allclose(m.predict(new), new["days"] * np.exp(lp + re))
    np.testing.assert_allclose(m.predict(new, include_random=False, kind="link"), lp + np.log(new["days"]))
    unseen = new.assign(school=999, vo=999)
    np.testing.assert_allclose(m.predict(unseen), new["days"] * np.exp(lp))
    cb, _ = fitted("cbpp_glmer")                      # probabilities per trial
    row = DATA["cbpp.csv"].iloc[[0, 5]]
    u = cb.ranef_["herd"].loc[row["herd"]].to_numpy()
    eta = cb.params_["Intercept"] + cb.params_["period_numeric"] * row["period_numeric"].to_numpy()
    np.testing.assert_allclose(cb.predict(row), 1 / (1 + np.exp(-(eta + u[:, 0] + u[:, 1] * row["period_numeric"]))))


def test_tidy_summary_and_repr():
    m, _ = fitted("nb_tmb")
    t = m.tidy(effects="all")
    assert list(t["term"]) == ["Intercept", "x1", "x2", "treat", "sd_Intercept|school", "cor_x1.Intercept|school",
                               "sd_x1|school", "dispersion"]
    fixed = m.tidy()
    pd.testing.assert_frame_equal(t.iloc[:4].reset_index(drop=True), fixed)
    rp = m.tidy(effects="ran_pars").set_index("term")
    sd = np.sqrt(m.variance_components_.to_numpy())
    np.testing.assert_allclose(rp.loc[["sd_Intercept|school", "sd_x1|school"], "estimate"], sd)
    assert rp["statistic"].isna().all() and rp["exp_estimate"].isna().all()
    assert (rp["conf_low"] < rp["estimate"]).all() and (rp["estimate"] < rp["conf_high"]).all()
    assert -1 < rp.loc["cor_x1.Intercept|school", "conf_low"] and rp.loc["cor_x1.Intercept|school", "conf_high"] < 1
    assert m.tidy(level=0.5, effects="ran_pars")["conf_low"].iloc[0] > rp["conf_low"].iloc[0]
    text = repr(m)
    assert text.startswith("NegativeBinomialMixed(n_agq=1, level=0.95, max_iter=500)\n")
    for part in ["(x1 | school)", "nbinom2 (Laplace)", f"{m.log_likelihood_:.4f}", f"AIC {m.aic_:.4f}", "n = 2,000",
                 "school 40", "Intercept", f"{sd[1]:.6g}", f"{m.varcorr_['sdcor'].iloc[2]:.3f}",
                 f"dispersion theta (NB2): {m.dispersion_:.6g}"]:
        assert part in text, part
    assert m.summary() in text
    with pytest.raises(ValueError, match="effects"):
        m.tidy(effects="random")


def test_variance_rows_of_random_intercept_fits():
    """tidy(effects="ran_pars") of a random-intercept fit: the SD with its interval from the log-SD covariance."""
    m = NegativeBinomialMixed().fit(PY, "y_nb ~ x1", groups=["school", "vo"], exposure="days")
    t = m.tidy(effects="ran_pars").set_index("term")
    assert list(t.index) == ["sd_Intercept|school", "sd_Intercept|vo", "dispersion"]
    se_log = np.sqrt(m.parameter_vcov_.loc["log_sd_vo", "log_sd_vo"])
    sd = np.sqrt(m.variance_components_["vo"])
    z = stats.norm.ppf(0.975)
    assert t.loc["sd_Intercept|vo", "std_error"] == pytest.approx(sd * se_log)
    assert t.loc["sd_Intercept|vo", "conf_high"] == pytest.approx(sd * np.exp(z * se_log))
    assert "random effects:" in m.summary() and "vo" in repr(m)
    assert list(m.tidy()["term"]) == ["Intercept", "x1"]


def test_bad_random_effects():
    with pytest.raises(ValueError, match="n_agq > 1.*random slopes"):
        PoissonMixed(n_agq=5).fit(PY, "y_pois ~ x1", groups="(x1 | school)")
    with pytest.raises(ValueError, match="not both"):
        PoissonMixed().fit(PY, "y_pois ~ x1 + (x1 | school)", groups="school")
    with pytest.raises(ValueError, match="no random effects"):
        BinomialMixed().fit(DATA["cbpp.csv"], "incidence ~ period_numeric", trials="size")
    with pytest.raises(ValueError, match=r"term '\(x1 \| \)'.*the grouping factor '' must be a column name"):
        NegativeBinomialMixed().fit(PY, "y_nb ~ x1", groups="(x1 | ) + (1 | vo)")
    with pytest.raises(ValueError, match=r"unknown random-effects term 'x1 \| school \| vo'"):
        NegativeBinomialMixed().fit(PY, "y_nb ~ x1", groups="x1 | school | vo")
    with pytest.raises(SchemaError, match="column 'x9'.*random-effects term"):
        NegativeBinomialMixed().fit(PY, "y_nb ~ x1", groups="(x9 | school)")
    bad = PY.astype({"x3": float})
    bad.loc[6, "x3"] = np.nan
    with pytest.raises(SchemaError, match=r"column 'x3'.*data row\(s\) 7"):
        PoissonMixed().fit(bad, "y_pois ~ x1", groups="(x3 | school)")
    with pytest.raises(SchemaError, match="negative counts"):
        PoissonMixed().fit(PY.assign(y_pois=-1), "y_pois ~ x1", groups="(x1 | school)")


# --------------------------------------------------------------------------------------------------------------------
# a world outside the model: the slope varies between schools


SIM_BETA, SIM_SD0, SIM_SD1 = (-0.5, 0.2), 0.5, 0.3


def _simulated(rng: np.random.Generator, n_groups: int = 40, size: int = 25) -> pd.DataFrame:
    g = np.repeat(np.arange(n_groups), size)
    x = rng.normal(size=len(g))
    b0, b1 = rng.normal(0, SIM_SD0, n_groups), rng.normal(0, SIM_SD1, n_groups)
    y = rng.poisson(np.exp(SIM_BETA[0] + SIM_BETA[1] * x + b0[g] + b1[g] * x))
    return pd.DataFrame({"y": y, "x": x, "g": g})


def test_slope_model_widens_the_interval_of_a_varying_slope():
    """Poisson counts whose slope in x varies between 40 groups (SD 0.3). The random-intercept model treats the
    rows of a group as exchangeable around one slope: its SE of the x coefficient is too small and its interval
    misses the truth often. The slope model's SE is larger in every replicate and its 95% interval covers the truth
    at the nominal rate: 400 replicates, so the tolerance is 3 Monte Carlo SEs of a 95% coverage (0.033)."""
    n_rep = 400
    z = stats.norm.ppf(0.975)
    res = np.empty((n_rep, 4))
    for k, seed in enumerate(np.random.SeedSequence(20261215).spawn(n_rep)):
        d = _simulated(np.random.default_rng(seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)     # an occasional boundary fit counts as it is
            a = PoissonMixed().fit(d, "y ~ x", groups="g")
            b = PoissonMixed().fit(d, "y ~ x", groups="(x | g)")
        res[k] = a.params_["x"], a.standard_errors_["x"], b.params_["x"], b.standard_errors_["x"]
    assert (res[:, 3] > res[:, 1]).all()
    mcse = np.sqrt(0.95 * 0.05 / n_rep)
    cover_slope = np.mean(np.abs(res[:, 2] - SIM_BETA[1]) <= z * res[:, 3])
    cover_intercept = np.mean(np.abs(res[:, 0] - SIM_BETA[1]) <= z * res[:, 1])
    assert abs(cover_slope - 0.95) <= 3 * mcse, cover_slope
    assert cover_intercept < 0.95 - 3 * mcse, cover_intercept


BIN_BETA, BIN_SD0, BIN_SD1 = (-0.3, 0.4), 0.5, 0.6


def test_binomial_slope_model_covers_where_the_intercept_model_does_not():
    """The same world for a binary outcome (back at school within 3 months, say): the effect of x varies between
    40 groups of 25 (SD 0.6 on the logit scale). The random-intercept logistic model is both too sure and
    attenuated towards 0 (measured once with 400 replicates: coverage 0.72, bias -0.052); the slope model covers
    the conditional truth at the nominal rate (0.94). 200 replicates: tolerance 3 Monte Carlo SEs of a 95%
    coverage (0.046)."""
    n_rep = 200
    z = stats.norm.ppf(0.975)
    res = np.empty((n_rep, 4))
    for k, seed in enumerate(np.random.SeedSequence(20261129).spawn(n_rep)):
        rng = np.random.default_rng(seed)
        g = np.repeat(np.arange(40), 25)
        x = rng.normal(size=len(g))
        b0, b1 = rng.normal(0, BIN_SD0, 40), rng.normal(0, BIN_SD1, 40)
        eta = BIN_BETA[0] + BIN_BETA[1] * x + b0[g] + b1[g] * x
        d = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x, "g": g})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)     # an occasional boundary fit counts as it is
            a = BinomialMixed().fit(d, "y ~ x", groups="g")
            b = BinomialMixed().fit(d, "y ~ x", groups="(x | g)")
        res[k] = a.params_["x"], a.standard_errors_["x"], b.params_["x"], b.standard_errors_["x"]
    mcse = np.sqrt(0.95 * 0.05 / n_rep)
    cover_slope = np.mean(np.abs(res[:, 2] - BIN_BETA[1]) <= z * res[:, 3])
    cover_intercept = np.mean(np.abs(res[:, 0] - BIN_BETA[1]) <= z * res[:, 1])
    assert abs(cover_slope - 0.95) <= 3 * mcse, cover_slope
    assert cover_intercept < 0.95 - 3 * mcse, cover_intercept
    # attenuation: the intercept model's mean estimate lies below the conditional truth by more than its MCSE
    assert BIN_BETA[1] - res[:, 0].mean() > 3 * res[:, 0].std(ddof=1) / np.sqrt(n_rep)
