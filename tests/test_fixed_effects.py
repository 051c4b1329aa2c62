"""Poisson and NB2 regressions with absorbed fixed effects (verzuimmodel.glm) against the dense fits.

On a simulated two-region cohort (16,953 VO pupils, 16 VO schools, 80 PO schools) the fits with the VO
school effects absorbed must equal statsmodels' fits with the VO schools dummy-coded: coefficients,
kappa and the whole covariance matrix of the other coefficients (CR1 as statsmodels' ``cluster``, CR3 as
GEE's ``bias_reduced``), to 1e-8 relative. The dense fits are converged to 1e-13, so what is left is
rounding (observed: 1e-10 and below). The prior weights are whole numbers, so that the dense reference
of a weighted fit is also the unweighted fit of the rows repeated (the only one statsmodels'
NegativeBinomial and GEE's CR3 give); on the R data, with weights 0.5-2, the fits are checked against
glm.nb and clubSandwich (``reference/robust/cr3_absorbed.R``).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.sandwich_covariance import cov_cluster

import verzuimmodel as vm
from verzuimmodel import effects, glm
from verzuimmodel.effects.data import vo_pupils
from verzuimmodel.glm.absorb import demean, factorize

REF = Path(__file__).resolve().parent / "reference"
RTOL = 1e-8
COVS = ["exposed", "female", "disadvantaged", "chronic_illness", "special_needs", "vmbo"]


def scenario(regions=2):
    s = vm.Scenario.default()
    return dataclasses.replace(s, population=dataclasses.replace(s.population, n_regions=regions,
                                                                 n_po_schools=40 * regions, n_vo_schools=8 * regions))


@pytest.fixture(scope="module")
def cohort():
    return vm.simulate(scenario(), seed=1)


@pytest.fixture(scope="module")
def pupils(cohort):
    d = vo_pupils(cohort)
    d["w"] = 1.0 + np.arange(len(d)) % 3                 # prior weights 1, 2, 3, 1, ...: whole numbers, so that
    return d                                             # a weighted fit is the unweighted fit of repeated rows


def repeated(d: pd.DataFrame) -> pd.DataFrame:
    """Each row ``w`` times: its likelihood is the weighted one; cluster score sums, the bread and the CR3
    adjusted residuals (equal for the copies of a row) are the weighted fit's."""
    return d.loc[d.index.repeat(d["w"].astype(int))].reset_index(drop=True)


@pytest.fixture(scope="module")
def dense_nb(pupils):
    """statsmodels NegativeBinomial (joint maximum likelihood, Newton to 1e-14) with the VO school
    dummies, on the pupils and on the pupils repeated by their weights."""
    out = {}
    for key, d in (("unweighted", pupils), ("weighted", repeated(pupils))):
        _, dense = design(d)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = sm.NegativeBinomial(d["unexcused_hours"].to_numpy(), dense, offset=np.log(d["days"].to_numpy()))
            fit = model.fit(start_params=model.fit(disp=0, maxiter=500).params, method="newton", tol=1e-14,
                            maxiter=100, disp=0)
        assert fit.mle_retvals["converged"]
        out[key] = fit.params
    return out


def design(d: pd.DataFrame, absorbed=("vo_school_id",)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(X for the absorbed fit, the dense X): covariates and cohort dummies; the dense one adds a constant
    and the dummies of the absorbed factors (first level dropped)."""
    X = d[COVS].astype(float)
    if "cohort" not in absorbed:
        X = X.join(pd.get_dummies(d["cohort"], prefix="cohort", drop_first=True, dtype=float))
    dense = sm.add_constant(X)
    for f in absorbed:
        dense = dense.join(pd.get_dummies(d[f], prefix=f, drop_first=True, dtype=float))
    return X, dense


def groups(values) -> np.ndarray:
    return pd.factorize(np.asarray(values))[0]


def assert_matrix(actual: pd.DataFrame, expected: pd.DataFrame, rtol: float = RTOL) -> None:
    """Every entry within ``rtol`` of the largest, the diagonal within ``rtol`` relative."""
    a, e = actual.to_numpy(), expected.loc[actual.index, actual.columns].to_numpy()
    assert np.max(np.abs(a - e)) <= rtol * np.max(np.abs(e)), np.max(np.abs(a - e)) / np.max(np.abs(e))
    np.testing.assert_allclose(np.diag(a), np.diag(e), rtol=rtol)


def dense_glm(y, X, off, family, weights=None, groups_=None, tol=1e-13):
    """statsmodels GLM, IRLS until no coefficient moves by ``tol``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # statsmodels: "cov_type not fully supported with var_weights"
        kw = {} if groups_ is None else {"cov_type": "cluster", "cov_kwds": {"groups": groups_}}
        return sm.GLM(y, X, family=family, offset=off, var_weights=weights).fit(tol=tol, tol_criterion="params",
                                                                                maxiter=200, **kw)


def cr1_expected(y, X, off, family, beta, g, weights=None) -> pd.DataFrame:
    """statsmodels' CR1 cluster sandwich (its small-sample factor) with the expected information as bread
    (GLM's cov_type="cluster" uses the observed Hessian, which differs for NB2's non-canonical log link)."""
    m = sm.GLM(y, X, family=family, offset=off, var_weights=weights)
    V = cov_cluster((m.score_obs(beta), np.linalg.inv(m.information(beta))), g)
    return pd.DataFrame(V, index=X.columns, columns=X.columns)


def gee_cr3(y, X, off, family, g, start):
    """statsmodels GEE, independence, bias_reduced (Mancl-DeRouen) covariance."""
    order = np.argsort(g, kind="stable")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.GEE(y[order], X.iloc[order], groups=g[order], offset=off[order], family=family,
                     cov_struct=sm.cov_struct.Independence()).fit(cov_type="bias_reduced", start_params=start,
                                                                  ctol=1e-10, maxiter=20)
    return fit.cov_params()


# -- Poisson ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("weighted", [False, True])
def test_poisson_absorbed_equals_dense(pupils, weighted):
    """Coefficients and CR1 as statsmodels GLM (var_weights) with the dummies and cov_type="cluster"; CR3 as
    GEE bias_reduced (with weights: GEE on the rows repeated, as GEE leaves the weights out of its hat
    matrix, which clubSandwich and the definition keep)."""
    d = pupils
    y, off, g = d["unexcused_hours"].to_numpy(), np.log(d["days"].to_numpy()), groups(d["po_school_id"])
    w = d["w"].to_numpy() if weighted else None
    X, dense = design(d)
    fit = glm.poisson(y, X, absorb=d[["vo_school_id"]], offset=off, weights=w)
    ref = dense_glm(y, dense, off, sm.families.Poisson(), w, g)
    assert fit.converged and fit.n_obs == len(d) and fit.n_params == dense.shape[1]
    np.testing.assert_allclose(fit.coef, ref.params[X.columns], rtol=RTOL)
    assert_matrix(fit.vcov("CR1", d["po_school_id"]), ref.cov_params())
    r = repeated(d) if weighted else d
    _, rdense = design(r)
    cr3 = gee_cr3(r["unexcused_hours"].to_numpy(), rdense, np.log(r["days"].to_numpy()), sm.families.Poisson(),
                  groups(r["po_school_id"]), ref.params.to_numpy())
    assert_matrix(fit.vcov("CR3", d["po_school_id"]), cr3)


@pytest.mark.parametrize("weighted", [False, True])
def test_negbin_absorbed_equals_dense(pupils, dense_nb, weighted):
    """kappa and coefficients as statsmodels' NegativeBinomial (joint maximum likelihood) with the VO
    school dummies (with weights: on the rows repeated); CR1 as statsmodels' cluster sandwich with the
    expected information as bread; CR3 as GEE bias_reduced at that kappa."""
    d = pupils
    y, off, g = d["unexcused_hours"].to_numpy(), np.log(d["days"].to_numpy()), groups(d["po_school_id"])
    w = d["w"].to_numpy() if weighted else None
    X, dense = design(d)
    fit = glm.negbin(y, X, absorb=d[["vo_school_id"]], offset=off, weights=w)
    ref = dense_nb["weighted" if weighted else "unweighted"]
    assert fit.converged
    assert fit.kappa == pytest.approx(ref["alpha"], rel=RTOL)
    np.testing.assert_allclose(fit.coef, ref[X.columns], rtol=RTOL)
    beta = ref[dense.columns].to_numpy()
    cr1 = cr1_expected(y, dense, off, sm.families.NegativeBinomial(alpha=fit.kappa), beta, g, w)
    assert_matrix(fit.vcov("CR1", d["po_school_id"]), cr1)
    r = repeated(d) if weighted else d
    _, rdense = design(r)
    cr3 = gee_cr3(r["unexcused_hours"].to_numpy(), rdense, np.log(r["days"].to_numpy()),
                  sm.families.NegativeBinomial(alpha=fit.kappa), groups(r["po_school_id"]), beta)
    assert_matrix(fit.vcov("CR3", d["po_school_id"]), cr3)


@pytest.mark.parametrize("key", ["poisson", "poisson_weighted", "negbin", "negbin_weighted"])
def test_matches_clubsandwich(key):
    """R: glm / MASS::glm.nb with factor(vo) dummies (weights 0.5-2 in the weighted fits) and
    clubSandwich::vcovCR(cluster = po, type = "CR0" / "CR3"); reference/robust/cr3_absorbed.R. R's fits
    converge to a deviance change of 1e-14 (theta.ml to its own tolerance): 1e-7 relative."""
    ref = json.loads((REF / "robust" / "cr3_absorbed.json").read_text())
    r = ref[key]
    d = pd.read_csv(REF / "glmm" / "nb_crossed.csv")
    w = 0.5 + (np.arange(len(d)) % 4) / 2 if key.endswith("weighted") else None
    family = glm.negbin if key.startswith("negbin") else glm.poisson
    fit = family(d["y"], d[ref["terms"]].astype(float), absorb=d[["vo"]], offset=np.log(d["days"]), weights=w)
    np.testing.assert_allclose(fit.coef, r["estimate"], rtol=1e-7)
    for kind in ("CR0", "CR3"):
        np.testing.assert_allclose(fit.vcov(kind, d["po"]).to_numpy(), np.array(r[kind.lower()]), rtol=1e-7)
    if "theta" in r:
        assert 1 / fit.kappa == pytest.approx(r["theta"], rel=1e-7)


# -- several factors, fixed effects, the within transformation ---------------------------------------

def test_two_absorbed_factors_equal_dense(pupils):
    """Cohort and VO school both absorbed (alternating projections): coefficients and CR1 as the dense
    fit with both sets of dummies; CR3 is refused (put the small factor in X)."""
    d = pupils
    y, off, g = d["unexcused_hours"].to_numpy(), np.log(d["days"].to_numpy()), groups(d["po_school_id"])
    X, dense = design(d, absorbed=("cohort", "vo_school_id"))
    fit = glm.poisson(y, X, absorb=d[["cohort", "vo_school_id"]], offset=off)
    ref = dense_glm(y, dense, off, sm.families.Poisson(), None, g)
    assert fit.n_params == dense.shape[1]            # K of the CR1 factor: rank of [1, cohort, VO school]
    np.testing.assert_allclose(fit.coef, ref.params[X.columns], rtol=RTOL)
    assert_matrix(fit.vcov("CR1", d["po_school_id"]), ref.cov_params())
    with pytest.raises(ValueError, match="CR3 is computed with at most one absorbed factor"):
        fit.vcov("CR3", d["po_school_id"])
    fe = fit.fixef()
    eta = ref.fittedvalues.to_numpy()
    np.testing.assert_allclose(fe[0].loc[d["cohort"]].to_numpy() + fe[1].loc[d["vo_school_id"]].to_numpy(),
                               np.log(eta) - off - X.to_numpy() @ fit.coef.to_numpy(), rtol=1e-8, atol=1e-8)


def test_fixed_effects_recovered(pupils):
    """One factor: the VO school effects are the dense fit's constant plus each school's dummy."""
    d = pupils
    y, off = d["unexcused_hours"].to_numpy(), np.log(d["days"].to_numpy())
    X, dense = design(d)
    fit = glm.poisson(y, X, absorb=d[["vo_school_id"]], offset=off)
    ref = dense_glm(y, dense, off, sm.families.Poisson())
    fe = fit.fixef()[0]
    first = sorted(d["vo_school_id"].unique())[0]                 # the level get_dummies drops
    expected = pd.Series({s: ref.params["const"] + (0.0 if s == first else ref.params[f"vo_school_id_{s}"])
                          for s in fe.index})
    np.testing.assert_allclose(fe.to_numpy(), expected.loc[fe.index].to_numpy(), rtol=RTOL)


def test_demean_is_the_weighted_projection():
    """Demeaning by two factors equals X - D(D'WD)^-D'WX computed by least squares with the dummies."""
    rng = np.random.default_rng(3)
    n = 3000
    f1, f2 = rng.integers(0, 40, n), rng.integers(0, 7, n)
    X = rng.normal(size=(n, 3)) + f2[:, None] * 0.3
    w = rng.uniform(0.2, 3.0, n)
    factors = factorize([f1, f2], n)
    D = np.column_stack([np.eye(40)[f1], np.eye(7)[f2][:, 1:]])
    sw = np.sqrt(w)[:, None]
    coef = np.linalg.lstsq(D * sw, X * sw, rcond=None)[0]
    np.testing.assert_allclose(demean(X, w, factors), X - D @ coef, rtol=0, atol=1e-10)
    one = demean(X, w, factorize([f1], n))          # one factor: exact, the weighted level means removed
    means = pd.DataFrame(X * w[:, None]).groupby(f1).sum().to_numpy() / np.bincount(f1, w)[:, None]
    np.testing.assert_allclose(one, X - means[f1], rtol=0, atol=1e-12)


def test_without_factors_and_with_kappa_fixed():
    """No absorbed factor (a constant in X, as vo_ipw): statsmodels GLM with weights; NB2 at a given kappa:
    GLM's NegativeBinomial(alpha=kappa); data less dispersed than Poisson: kappa at its floor, with a
    named warning."""
    y, X, f, g = _small()
    X = sm.add_constant(X)
    w = 1.0 + np.arange(len(y)) % 3
    fit = glm.poisson(y, X, weights=w)
    ref = dense_glm(y, X, None, sm.families.Poisson(), w, g)
    np.testing.assert_allclose(fit.coef, ref.params, rtol=RTOL)
    assert fit.n_params == 3 and fit.factors.rank() == 0
    assert_matrix(fit.vcov("CR1", g), ref.cov_params())
    fit = glm.negbin(y, X, kappa=0.5)
    np.testing.assert_allclose(fit.coef, dense_glm(y, X, None, sm.families.NegativeBinomial(alpha=0.5)).params,
                               rtol=RTOL)
    assert fit.kappa == 0.5
    with pytest.warns(vm.errors.ConvergenceWarning, match="no overdispersion"):
        fit = glm.negbin(np.round(np.exp(1 + 0.3 * X["x"])), X)
    assert fit.kappa == glm.irls.KAPPA_FLOOR


# -- rows without information --------------------------------------------------------------------

def test_singleton_and_all_zero_levels_are_dropped(pupils):
    """A VO school with one pupil and one whose pupils all have 0 hours carry no information on the
    coefficients: the rows are dropped (counted in n_singleton and n_all_zero); the fit equals the dense
    fit without them, and the dense fit with them (its all-zero school effect running off below -20,
    where IRLS stops) within 1e-6."""
    d = pupils.copy()
    zero = d["vo_school_id"] == d["vo_school_id"].iloc[0]
    d.loc[zero, "unexcused_hours"] = 0.0
    d.loc[d.index[-1], "vo_school_id"] = -1                  # a school with one pupil
    y, off = d["unexcused_hours"].to_numpy(), np.log(d["days"].to_numpy())
    X, dense = design(d)
    for kind in (glm.poisson, glm.negbin):
        fit = kind(y, X, absorb=d[["vo_school_id"]], offset=off)
        assert fit.n_singleton == 1 and fit.n_all_zero == int(zero.sum())
        kept = fit.kept
        assert kept.sum() == len(d) - 1 - zero.sum() and not kept[zero].any() and not kept[-1]
        family = (sm.families.Poisson() if kind is glm.poisson       # kappa: checked in the tests above
                  else sm.families.NegativeBinomial(alpha=fit.kappa))
        _, kept_dense = design(d[kept])
        g = groups(d["po_school_id"][kept])
        ref = dense_glm(y[kept], kept_dense, off[kept], family)
        np.testing.assert_allclose(fit.coef, ref.params[X.columns], rtol=RTOL)
        assert_matrix(fit.vcov("CR1", d["po_school_id"]),
                      cr1_expected(y[kept], kept_dense, off[kept], family, ref.params.to_numpy(), g))
        full = sm.GLM(y, dense, family=family, offset=off).fit()     # IRLS until the deviance changes < 1e-8
        assert full.params.min() < -20                           # the all-zero school's effect
        np.testing.assert_allclose(fit.coef, full.params[X.columns], rtol=1e-6)


# -- estimators ------------------------------------------------------------------------------------

def test_vo_nb_glm_equals_the_dense_model(cohort, pupils, dense_nb):
    """vo_nb_glm = NegativeBinomial with VO school dummies, then GEE bias_reduced (its former code)."""
    d = pupils
    y, off, g = d["unexcused_hours"].to_numpy(), np.log(d["days"].to_numpy()), groups(d["po_school_id"])
    _, dense = design(d)
    est = effects.get("vo_nb_glm").fn(cohort)
    nb = dense_nb["unweighted"]
    cr3 = gee_cr3(y, dense, off, sm.families.NegativeBinomial(alpha=nb["alpha"]), g, nb.to_numpy()[:-1])
    assert est.coef == pytest.approx(nb["exposed"], rel=RTOL)
    assert est.std_error == pytest.approx(np.sqrt(cr3.loc["exposed", "exposed"]), rel=RTOL)
    assert est.n_obs == len(d) and est.n_clusters == d["po_school_id"].nunique() and est.df == est.n_clusters - 1


def test_poisson_estimators_equal_the_dense_models(cohort, pupils):
    """po_recorded_naive (school-year effects absorbed) and vo_episode_rate (cohort effects absorbed)
    against statsmodels GLM with the dummies and cov_type="cluster"."""
    a = cohort.absence
    po = a[a["level"] == "po"].copy()
    start = cohort.schools.set_index("school_id")["approach_start_year"]
    s = start.reindex(po["school_id"]).to_numpy(dtype=float, na_value=np.inf)
    po["exposed"] = (s <= po["school_year"].to_numpy()).astype(float)
    po["days"] = (po["enrolled_days"] - po["long_absence_days"]).clip(lower=0)
    po = po[po["days"] > 0]
    X = sm.add_constant(po[["exposed"]]).join(pd.get_dummies(po["school_year"], prefix="y", drop_first=True,
                                                              dtype=float))
    ref = dense_glm(po["unexcused_hours"].to_numpy(), X, np.log(po["days"].to_numpy()), sm.families.Poisson(),
                    groups_=groups(po["school_id"]))
    est = effects.get("po_recorded_naive").fn(cohort)
    assert est.coef == pytest.approx(ref.params["exposed"], rel=RTOL)
    assert est.std_error == pytest.approx(ref.bse["exposed"], rel=RTOL)
    assert est.n_obs == len(po)

    d = pupils
    X = sm.add_constant(d[COVS].astype(float)).join(pd.get_dummies(d["cohort"], prefix="c", drop_first=True,
                                                                   dtype=float))
    ref = dense_glm(d["vo_episodes"].to_numpy(), X, np.log(d["vo_years"].to_numpy()), sm.families.Poisson(),
                    groups_=groups(d["po_school_id"]))
    est = effects.get("vo_episode_rate").fn(cohort)
    assert est.coef == pytest.approx(ref.params["exposed"], rel=RTOL)
    assert est.std_error == pytest.approx(ref.bse["exposed"], rel=RTOL)


# -- bad input -------------------------------------------------------------------------------------

def _small():
    rng = np.random.default_rng(5)
    n = 400
    f, g = rng.integers(0, 8, n), rng.integers(0, 20, n)
    x = rng.normal(size=n)
    y = rng.poisson(np.exp(0.5 + 0.3 * x + 0.2 * (f % 3))).astype(float)
    return y, pd.DataFrame({"x": x, "z": rng.normal(size=n)}), f, g


@pytest.mark.parametrize("change, message", [
    (lambda y, X, f: (np.where(np.arange(len(y)) == 7, -1.0, y), X, f), "y is -1.0 at row 7"),
    (lambda y, X, f: (y, X.assign(x=np.where(np.arange(len(y)) == 3, np.nan, X["x"])), f),
     "X column 'x' is nan at row 3"),
    (lambda y, X, f: (y[:-1], X, f), "expected 399 rows"),
    (lambda y, X, f: (y, X, f[:-1]), "factor 'fe1' has 399 values"),
    (lambda y, X, f: (y, X, np.where(np.arange(len(y)) == 5, np.nan, f)), "factor 'fe1' is missing at row 5"),
    (lambda y, X, f: (y * 0, X, f), "y is 0 in every one"),
    (lambda y, X, f: (y, X.assign(z=f % 3), f), "'z' is constant within the levels of fe1"),
    (lambda y, X, f: (y, X.assign(z=2 * X["x"]), f), "columns 'x', 'z' are collinear"),
])
def test_bad_input_is_named(change, message):
    y, X, f, _ = _small()
    y, X, f = change(y, X, f)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        glm.poisson(y, X, absorb=[f])


def test_bad_weights_offset_and_clusters():
    y, X, f, g = _small()
    with pytest.raises(ValueError, match="weights is 0.0 at row 2; expected positive"):
        glm.negbin(y, X, absorb=[f], weights=np.where(np.arange(len(y)) == 2, 0.0, 1.0))
    with pytest.raises(ValueError, match="offset is inf at row 0"):
        glm.poisson(y, X, absorb=[f], offset=np.r_[np.inf, np.zeros(len(y) - 1)])
    with pytest.raises(ValueError, match="kappa must be positive"):
        glm.negbin(y, X, absorb=[f], kappa=-1.0)
    fit = glm.poisson(y, X, absorb=[f])
    with pytest.raises(ValueError, match="kind must be one of"):
        fit.vcov("HC1", g)
    with pytest.raises(ValueError, match="needs clusters"):
        fit.vcov("CR1")
    with pytest.raises(ValueError, match="clusters has shape"):
        fit.vcov("CR1", g[:10])
    with pytest.raises(ValueError, match="in 1 cluster"):
        fit.vcov("CR1", np.zeros(len(y)))
    # a level of the absorbed factor all of whose rows are in one cluster: CR3 (a jackknife) is undefined
    with pytest.raises(ValueError, match="CR3 is undefined"):
        fit.vcov("CR3", f % 4)
