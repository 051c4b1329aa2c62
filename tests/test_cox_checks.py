"""Cox model checks against R's survival (frozen values in tests/reference/cox_checks, made by cox_checks.R):
residuals.coxph, cox.zph and concordance(fit); and the PH test's behaviour on simulated data."""

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from verzuimmodel.schema import SchemaError
from verzuimmodel.survival.cox import CoxPH
from verzuimmodel.survival.concordance import concordance, concordance_index
from verzuimmodel.survival.cox_checks import cox_zph, residuals

REF = Path(__file__).resolve().parent / "reference" / "cox_checks"
R = json.loads((REF / "cox_checks_reference.json").read_text())
RTOL = 1e-6

LUNG = dict(data="lung", duration="time", event="status", covariates=["age", "sex", "ph.ecog"])
VET = dict(data="veteran", duration="time", event="status", covariates=["trt", "karno", "age"], strata="celltype")
HEART = dict(data="heart", duration="stop", event="event", entry="start",
             covariates=["age", "year", "surgery", "transplant"])
SS = dict(data="start_stop_strata", duration="stop", event="status", entry="start", covariates=["tv", "z", "g"],
          strata="region")
# model name in cox_checks.R -> (CoxPH.fit arguments, ties)
CASES = {
    # coxph(Surv(time, status) ~ age + sex + ph.ecog, lung)
    "lung_efron": (LUNG, "efron"),
    "lung_breslow": (LUNG, "breslow"),
    # ~ sex + ph.ecog: few distinct risk scores
    "lung_discrete": ({**LUNG, "covariates": ["sex", "ph.ecog"]}, "efron"),
    # cluster = inst (only the concordance's variance changes)
    "lung_cluster": ({**LUNG, "cluster": "inst"}, "efron"),
    # ~ trt + karno + age + cell_smallcell + cell_adeno + cell_large, veteran
    "veteran_dummies": ({**VET, "covariates": ["trt", "karno", "age", "cell_smallcell", "cell_adeno", "cell_large"],
                         "strata": None}, "efron"),
    # ~ trt + karno + age + strata(celltype)
    "veteran_strata": (VET, "efron"),
    "veteran_strata_breslow": (VET, "breslow"),
    # coxph(Surv(futime, fustat) ~ age + ecog.ps + rx, ovarian, weights = w): non-integer weights
    "ovarian_weights": (dict(data="ovarian", duration="futime", event="fustat", covariates=["age", "ecog.ps", "rx"],
                             weights="w"), "efron"),
    # coxph(Surv(start, stop, event) ~ age + year + surgery + transplant, heart)
    "heart_efron": (HEART, "efron"),
    "heart_breslow": (HEART, "breslow"),
    # coxph(Surv(start, stop, status) ~ tv + z + g + strata(region), ss, weights = w)
    "ss_strata_weights": ({**SS, "weights": "w"}, "efron"),
    # ties = "breslow", cluster = school
    "ss_strata_breslow": ({**SS, "cluster": "school"}, "breslow"),
    # ~ tv + g + strata(region), weights = w: scores tied, also with times tied, and late entry
    "ss_discrete": ({**SS, "covariates": ["tv", "g"], "weights": "w"}, "efron"),
}
WITH_RESIDUALS = [name for name in CASES if "score" in R[name]]


@functools.cache
def data(name: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{name}.csv")


@functools.cache
def fitted(name: str) -> tuple[CoxPH, pd.DataFrame]:
    spec, ties = CASES[name]
    kw = {k: v for k, v in spec.items() if k != "data" and v is not None}
    df = data(spec["data"])
    return CoxPH(ties=ties).fit(df, **kw), df


def close(ours, ref, rtol=RTOL):
    """Relative tolerance; entries near zero are compared on the scale of the largest |value| (atol)."""
    ref = np.asarray(ref, dtype=float)
    np.testing.assert_allclose(np.asarray(ours, dtype=float), ref, rtol=rtol, atol=1e-9 * np.abs(ref).max())


@pytest.mark.parametrize("name", list(CASES))
def test_same_fit_as_r(name):
    m, _ = fitted(name)
    assert list(m.params_.index) == R[name]["terms"]
    close(m.params_, R[name]["coef"], rtol=1e-8)


@pytest.mark.parametrize("kind", ["martingale", "deviance", "score", "dfbeta", "dfbetas"])
@pytest.mark.parametrize("name", WITH_RESIDUALS)
def test_row_residuals_match_r(name, kind):
    m, df = fitted(name)
    res = residuals(m, df, kind)
    assert res.index.equals(df.index)
    close(res, R[name][kind])


@pytest.mark.parametrize("kind, key, kw", [("schoenfeld", "schoenfeld", {}),
                                           ("scaled_schoenfeld", "scaledsch", {}),
                                           ("schoenfeld", "schoenfeld_weighted", {"weighted": True})])
@pytest.mark.parametrize("name", WITH_RESIDUALS)
def test_schoenfeld_residuals_match_r(name, kind, key, kw):
    """One row per death in R's order (stratum, time, row), indexed by the event time as R's rownames."""
    m, df = fitted(name)
    res = residuals(m, df, kind, **kw)
    assert len(res) == m.n_events_ and list(res.columns) == m.covariates_
    np.testing.assert_array_equal(res.index.get_level_values("time"), R[name][key]["time"])
    if m.strata_ is not None:
        assert res.index.names == ["stratum", "time"] and res.index.get_level_values("stratum").is_monotonic_increasing
    close(res, R[name][key]["values"])


def test_dfbeta_uses_the_model_based_variance_with_clusters():
    """As R (naive.var): cluster = inst changes the variance of the fit, not its dfbeta residuals."""
    m, df = fitted("lung_cluster")
    assert m.robust_
    close(residuals(m, df, "dfbeta"), R["lung_efron"]["dfbeta"])
    close(residuals(m, df, "scaled_schoenfeld"), R["lung_efron"]["scaledsch"]["values"])


@pytest.mark.parametrize("kind", ["dfbeta", "martingale", "deviance"])
def test_collapsed_residuals_match_r(kind):
    """residuals(fit, type, collapse = heart$id): summed over each patient's start-stop rows."""
    m, df = fitted("heart_efron")
    res = residuals(m, df, kind, collapse="id")
    assert list(res.index) == sorted(df["id"].unique())
    close(res, R["heart_efron"]["collapsed"][kind])


@pytest.mark.parametrize("transform", ["km", "rank", "identity", "log", "sqrt"])
@pytest.mark.parametrize("name", WITH_RESIDUALS)
def test_cox_zph_matches_r(name, transform):
    m, df = fitted(name)
    z = cox_zph(m, df, np.sqrt if transform == "sqrt" else transform)
    ref = R[name]["zph"][transform]
    assert list(z.columns) == ["term", "statistic", "df", "p_value"]
    assert list(z["term"]) == ref["term"] and list(z["df"]) == ref["df"]
    close(z["statistic"], ref["chisq"])
    np.testing.assert_allclose(z["p_value"], ref["p"], rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_concordance_matches_r(name):
    m, df = fitted(name)
    c = concordance(m, df).iloc[0]
    ref = R[name]["concordance"]
    assert c["concordance"] == pytest.approx(ref["concordance"][0], rel=1e-10)
    assert c["std_error"] == pytest.approx(np.sqrt(ref["var"][0]), rel=RTOL)
    for ours, theirs in [("concordant", "concordant"), ("discordant", "discordant"), ("tied_x", "tied.x"),
                         ("tied_y", "tied.y"), ("tied_xy", "tied.xy")]:
        assert c[ours] == pytest.approx(ref["count"][theirs][0], rel=1e-12, abs=1e-9), ours
    assert c["n"] == len(df)


def _pairwise_concordance(time, event, risk, entry, strata, w, cluster):
    """Harrell's C and its standard error by looking at every pair of rows (the module docstring's definitions)."""
    n = len(time)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")        # i the death, j the later row
    comparable = ((event[i] == 1) & (strata[i] == strata[j]) & (entry[j] < time[i])
                  & ((time[j] > time[i]) | ((time[j] == time[i]) & (event[j] == 0))))
    ww = np.where(comparable, w[i] * w[j], 0.0)
    conc, disc, tied = ww * (risk[i] > risk[j]), ww * (risk[i] < risk[j]), ww * (risk[i] == risk[j])
    # per row, its comparable pairs' partner weights, as the death (rows) and as the later row (columns)
    c_i = (conc.sum(axis=1) + conc.sum(axis=0)) / w
    d_i = (disc.sum(axis=1) + disc.sum(axis=0)) / w
    t_i = (tied.sum(axis=1) + tied.sum(axis=0)) / w
    n_c, n_d, n_t = conc.sum(), disc.sum(), tied.sum()
    somers = (n_c - n_d) / (n_c + n_d + n_t)
    dfbeta = pd.Series(w * (c_i - d_i - somers * (c_i + d_i + t_i)) / (n_c + n_d + n_t)).groupby(cluster).sum()
    deaths_tied = (event[i] == 1) & (event[j] == 1) & (i < j) & (strata[i] == strata[j]) & (time[i] == time[j])
    tied_y = (w[i] * w[j])[deaths_tied].sum()
    tied_xy = (w[i] * w[j])[deaths_tied & (risk[i] == risk[j])].sum()
    return {"concordance": (somers + 1) / 2, "std_error": np.sqrt((dfbeta ** 2).sum() / 4), "concordant": n_c,
            "discordant": n_d, "tied_x": n_t, "tied_y": tied_y - tied_xy, "tied_xy": tied_xy}


@pytest.mark.parametrize("seed", range(6))
def test_concordance_index_counts_the_same_pairs_as_a_pair_by_pair_count(seed):
    """Late entry, strata (few, or many small ones with many distinct scores, so the sweeps empty their tree
    both ways), ties in time, in the risk score and between entry and exit times, weights and clusters:
    every count and the SE."""
    rng = np.random.default_rng(seed)
    n = 150
    entry = np.where(rng.random(n) < 0.5, rng.integers(0, 5, n).astype(float), -np.inf)
    time = np.maximum(entry, 0) + rng.integers(1, 8, n)
    event = (rng.random(n) < 0.6).astype(int)
    risk = rng.integers(0, 6, n) * 0.25 if seed < 3 else np.round(rng.normal(size=n), 2)
    strata = rng.integers(0, 2 if seed % 2 else 40, n)
    w = rng.choice([0.5, 1.0, 2.5], n) if seed % 3 else np.ones(n)
    cluster = rng.integers(0, 30, n)
    ours = concordance_index(time, event, risk, entry=entry, strata=strata, weights=w, cluster=cluster).iloc[0]
    for key, value in _pairwise_concordance(time, event, risk, entry, strata, w, cluster).items():
        assert ours[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_cox_zph_ignores_rows_never_at_risk_at_an_event():
    """Rows of a stratum without events, and rows leaving before their stratum's first event, add nothing: the
    fit and the test (a transform of time that does not pool the rows) are unchanged."""
    df = data("start_stop_strata")
    kw = dict(duration="stop", event="status", entry="start", covariates=["tv", "z", "g"], strata="region",
              weights="w")
    assert df.loc[df["status"] == 1, "stop"].min() == 1
    early = df.sample(50, random_state=3).assign(start=-2.0, stop=0.5, status=0)      # before the first event
    rng = np.random.default_rng(1)
    quiet = df.sample(60, random_state=1).assign(region="west", status=0, z=rng.normal(size=60))
    more = pd.concat([df, early, quiet], ignore_index=True).sample(frac=1.0, random_state=2)
    m, m2 = CoxPH().fit(df, **kw), CoxPH().fit(more, **kw)
    close(m2.params_, m.params_, rtol=1e-9)
    for transform in ("identity", "log", np.sqrt):
        close(cox_zph(m2, more, transform)["statistic"], cox_zph(m, df, transform)["statistic"], rtol=1e-9)


def test_concordance_of_a_perfect_score_and_its_reverse():
    time = np.arange(1.0, 11.0)
    event = np.ones(10)
    assert concordance_index(time, event, -time)["concordance"].iloc[0] == 1.0
    assert concordance_index(time, event, time)["concordance"].iloc[0] == 0.0
    assert concordance_index(time, event, np.zeros(10))["concordance"].iloc[0] == 0.5


def test_methods_on_coxph_delegate():
    m, df = fitted("veteran_strata")
    pd.testing.assert_series_equal(m.residuals(df), residuals(m, df, "martingale"))
    pd.testing.assert_frame_equal(m.residuals(df, "dfbeta", weighted=False), residuals(m, df, "dfbeta", weighted=False))
    pd.testing.assert_frame_equal(m.cox_zph(df, transform="rank"), cox_zph(m, df, "rank"))
    pd.testing.assert_frame_equal(m.concordance(df), concordance(m, df))


def test_residuals_follow_the_rows_of_a_shuffled_frame():
    """The fit sorts rows by time internally; residuals come back on the caller's index."""
    m, df = fitted("heart_efron")
    shuffled = df.sample(frac=1.0, random_state=3)
    spec, ties = CASES["heart_efron"]
    m2 = CoxPH(ties=ties).fit(shuffled, **{k: v for k, v in spec.items() if k != "data"})
    for kind in ("martingale", "dfbeta"):
        pd.testing.assert_frame_equal(pd.DataFrame(residuals(m2, shuffled, kind)).loc[df.index],
                                      pd.DataFrame(residuals(m, df, kind)), rtol=1e-9)


def test_bad_input_is_refused_with_a_clear_message():
    m, df = fitted("lung_efron")
    with pytest.raises(ValueError, match="type: got 'pearson'; expected one of 'martingale', 'deviance'.*'dfbetas'"):
        residuals(m, df, "pearson")
    with pytest.raises(ValueError, match="'scaled_schoenfeld'"):
        m.residuals(df, "scaled")
    with pytest.raises(ValueError, match="transform: got 'loglog'; expected one of 'km', 'rank', 'identity', 'log'"):
        cox_zph(m, df, "loglog")
    with pytest.raises(ValueError, match="transform: the function must return a finite number for every time"):
        cox_zph(m, df, lambda t: t[:3])
    with pytest.raises(ValueError, match="fitted CoxPH"):
        residuals(CoxPH(), df)
    with pytest.raises(ValueError, match="pass the data frame used in fit"):
        residuals(m, df.iloc[:-5])
    changed = df.assign(age=df["age"][::-1].to_numpy())
    with pytest.raises(ValueError, match="different log partial likelihood"):
        cox_zph(m, changed)
    with pytest.raises(SchemaError, match="column 'ph.ecog'"):
        residuals(m, df.drop(columns="ph.ecog"))
    with pytest.raises(ValueError, match="cannot be collapsed"):
        residuals(m, df, "schoenfeld", collapse="inst")
    with pytest.raises(ValueError, match="collapse: got 3 values"):
        residuals(m, df, "score", collapse=[1, 2, 3])


def _piecewise(seed: int, n: int, early: float, late: float) -> pd.DataFrame:
    """Binary x with log hazard ratio ``early`` before t = 0.5 and ``late`` after; z proportional (0.5)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, n).astype(float)
    z = rng.normal(size=n)
    r1, r2 = np.exp(early * x + 0.5 * z), np.exp(late * x + 0.5 * z)
    e = rng.exponential(size=n)                     # unit-rate cumulative hazard, inverted piece by piece
    t = np.where(e < 0.5 * r1, e / r1, 0.5 + (e - 0.5 * r1) / r2)
    c = rng.uniform(0, 2.5, n)
    return pd.DataFrame({"time": np.minimum(t, c), "status": (t <= c).astype(int), "x": x, "z": z})


@pytest.mark.parametrize("seed", range(5))
def test_ph_test_rejects_a_hazard_ratio_that_changes_sign(seed):
    df = _piecewise(seed, 1000, early=1.0, late=-0.5)
    m = CoxPH().fit(df, "time", "status", ["x", "z"])
    z = cox_zph(m, df).set_index("term")
    assert z.loc["x", "p_value"] < 1e-3 and z.loc["GLOBAL", "p_value"] < 1e-3


def test_ph_test_holds_its_level_under_proportional_hazards():
    """200 seeded data sets with proportional hazards: about 5% rejections at 5%, p-values centred on 1/2."""
    p = []
    for seed in range(100, 300):
        df = _piecewise(seed, 200, early=0.5, late=0.5)
        p.append(cox_zph(CoxPH().fit(df, "time", "status", ["x", "z"]), df)["p_value"].to_numpy())
    p = np.array(p)                                    # columns x, z, GLOBAL
    rejected = (p < 0.05).mean(axis=0)
    assert np.all(rejected <= 0.10), rejected          # binomial(200, 0.05): 0.10 is 3.2 SE above
    assert np.all(np.abs(p.mean(axis=0) - 0.5) < 0.07), p.mean(axis=0)
