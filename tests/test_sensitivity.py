"""Sensitivity to unmeasured confounding: E-values, the bias-factor table and the sentence.

E-values are checked against the worked examples of VanderWeele & Ding (2017, Annals of Internal
Medicine 167:268-274) and Ding & VanderWeele (2016, Epidemiology 27:368-377), and against the
closed form on random input, computed here with scalar arithmetic and with the defining property
of the E-value (the bias factor of a confounder of that strength equals the observed ratio).
"""

import math

import numpy as np
import pandas as pd
import pytest

import verzuimmodel as vm
from verzuimmodel import effects
from verzuimmodel.effects import add_evalues, bias_factor, bias_table, evalue, evalue_sentence
from verzuimmodel.tidy import tidy_table


def e_closed(rr: float) -> float:
    """The E-value by hand: RR + sqrt(RR (RR - 1)), with 1/RR below 1."""
    r = rr if rr >= 1 else 1 / rr
    return r + math.sqrt(r * r - r)


def hr_to_rr(hr: float) -> float:
    """Common-outcome conversion of VanderWeele & Ding (2017, Table 2), by hand."""
    return (1 - math.pow(0.5, math.sqrt(hr))) / (1 - math.pow(0.5, math.sqrt(1 / hr)))


# ------------------------------------------------------------------------------------------------
# worked examples
# ------------------------------------------------------------------------------------------------

def test_breastfeeding_and_respiratory_death():
    # VanderWeele & Ding (2017): Victora et al. (1987), formula feeding vs breastfeeding and infant
    # death from respiratory infection, RR 3.9 (1.8 to 8.7): E-value 7.26 (printed 7.2) and 3.0
    # for the lower limit (3.9 + sqrt(3.9 * 2.9) and 1.8 + sqrt(1.8 * 0.8) = 1.8 + 1.2).
    e = evalue(3.9, 1.8, 8.7)
    assert e.point == pytest.approx(7.263, abs=5e-4) and math.floor(10 * e.point) / 10 == 7.2
    assert e.ci == pytest.approx(3.0, abs=1e-12)
    # the same association coded the other way round (protective): the same E-values
    assert evalue(1 / 3.9, 1 / 8.7, 1 / 1.8) == pytest.approx((e.point, e.ci), rel=1e-12)


def test_breastfeeding_and_leukaemia_protective():
    # VanderWeele & Ding (2017): Ip et al. (AHRQ 2007), breastfeeding and childhood leukaemia,
    # RR 0.80 (0.71 to 0.91): E-value 1.81, and 1.43 for the upper limit (the one closest to 1).
    e = evalue(0.80, 0.71, 0.91)
    assert round(e.point, 2) == 1.81 and round(e.ci, 2) == 1.43


def test_smoking_and_lung_cancer():
    # Ding & VanderWeele (2016): Hammond & Horn (1958), smoking and lung cancer, RR 10.73
    # (8.02 to 14.36): E-values 20.95 and 15.52 (as printed in the EValue package's vignette).
    e = evalue(10.73, 8.02, 14.36)
    assert round(e.point, 2) == 20.95 and round(e.ci, 2) == 15.52


def test_non_null_true_value():
    # EValue vignette (Mathur et al. 2018): moving an observed RR of 2.5 to a true RR of 1.5 needs 2.72
    assert round(evalue(2.5, true=1.5).point, 2) == 2.72
    # a limit beyond the true value gives the E-value of limit / true; a limit across it gives 1
    assert evalue(1.3, 1.1, 1.4, true=1.05).ci == pytest.approx(e_closed(1.1 / 1.05), rel=1e-12)
    assert evalue(1.3, 1.1, 1.4, true=1.2).ci == 1.0
    # the true value beyond the estimate: the upper limit is the one closest to it
    assert evalue(1.3, 1.1, 1.4, true=1.5) == pytest.approx((e_closed(1.5 / 1.3), e_closed(1.5 / 1.4)), rel=1e-12)
    assert evalue(0.9, true=0.9).point == 1.0


# ------------------------------------------------------------------------------------------------
# closed form
# ------------------------------------------------------------------------------------------------

def test_closed_form_on_random_input():
    rng = np.random.default_rng(13)
    rr = np.exp(rng.uniform(-2.5, 2.5, 400))
    se = rng.uniform(0.01, 0.8, 400)
    lo, hi = rr * np.exp(-1.96 * se), rr * np.exp(1.96 * se)
    e = evalue(rr, lo, hi)
    assert e.point.shape == (400,) and e.ci.shape == (400,)
    for i in range(400):
        assert e.point[i] == pytest.approx(e_closed(rr[i]), rel=1e-12)
        near = lo[i] if rr[i] > 1 else hi[i]
        crosses = lo[i] <= 1 <= hi[i]
        assert e.ci[i] == (1.0 if crosses else pytest.approx(e_closed(near), rel=1e-12))
    # the defining property: a confounder of strength E with both exposure and outcome has bias
    # factor E^2 / (2E - 1) equal to the observed ratio, and a slightly weaker one has less
    r = np.where(rr >= 1, rr, 1 / rr)
    assert e.point ** 2 / (2 * e.point - 1) == pytest.approx(r, rel=1e-10)
    assert np.all(bias_factor(e.point * (1 - 1e-6), e.point * (1 - 1e-6)) < r)
    assert np.all(e.point >= 1) and np.all(e.ci <= e.point)


def test_hazard_and_odds_ratios():
    rng = np.random.default_rng(7)
    hr = np.exp(rng.uniform(-1.5, 1.5, 50))
    lo, hi = hr * 0.8, hr * 1.25
    # rare outcome: used as a risk ratio
    assert evalue(hr, lo, hi, measure="HR", outcome_common=False).point == pytest.approx(evalue(hr).point, rel=1e-12)
    # common outcome: the square-root transform, by hand
    e = evalue(hr, lo, hi, measure="HR", outcome_common=True)
    for i in range(50):
        assert e.point[i] == pytest.approx(e_closed(hr_to_rr(hr[i])), rel=1e-12)
        r_lo, r_hi = hr_to_rr(lo[i]), hr_to_rr(hi[i])
        near = r_lo if hr[i] > 1 else r_hi
        assert e.ci[i] == (1.0 if r_lo <= 1 <= r_hi else pytest.approx(e_closed(near), rel=1e-12))
    # the transform maps 1/HR to 1/RR, so the E-value is the same for an HR and its inverse
    assert evalue(1 / hr, measure="HR", outcome_common=True).point == pytest.approx(e.point, rel=1e-12)
    assert evalue(1.0, 0.8, 1.25, measure="HR", outcome_common=True) == (1.0, 1.0)
    # a common-outcome HR is further from the null than its RR: a smaller E-value than if rare
    assert np.all(e.point[hr > 1.01] < evalue(hr[hr > 1.01]).point)
    # odds ratios: sqrt(OR) for a common outcome (EValue docs: OR 3, common -> RR 1.732, E 2.86)
    assert round(evalue(3.0, measure="OR", outcome_common=True).point, 2) == 2.86
    assert evalue(5.0, 3.0, 8.0, measure="OR", outcome_common=True) == pytest.approx(
        (e_closed(math.sqrt(5)), e_closed(math.sqrt(3))), rel=1e-12)
    assert evalue(5.0, measure="OR", outcome_common=False).point == pytest.approx(5 + math.sqrt(20), rel=1e-12)
    # per-element flags
    mixed = evalue([2.0, 2.0], measure="HR", outcome_common=np.array([True, False])).point
    assert mixed == pytest.approx([e_closed(hr_to_rr(2.0)), e_closed(2.0)], rel=1e-12)


def test_rate_ratio_is_a_risk_ratio():
    assert evalue(1.35, 1.1, 1.6, measure="rate") == pytest.approx(evalue(1.35, 1.1, 1.6), rel=1e-15)


def test_risk_difference_through_the_arm_risks():
    # p0 = 0.2, p1 = 0.3: RR 1.5; the lower limit 0.02 gives p1 = 0.22, RR 1.1
    e = evalue(0.1, 0.02, 0.18, measure="RD", risk_unexposed=0.2)
    assert e == pytest.approx((1.5 + math.sqrt(0.75), e_closed(1.1)), rel=1e-12)
    assert evalue(0.1, -0.01, 0.21, measure="RD", risk_unexposed=0.2).ci == 1.0
    # a protective difference; the lower limit below -p0 is of no use and does not break anything
    e = evalue(-0.05, -0.12, -0.01, measure="RD", risk_unexposed=0.1)
    assert e == pytest.approx((e_closed(0.5), e_closed(0.9)), rel=1e-12)
    assert evalue(-0.05, -0.12, 0.01, measure="RD", risk_unexposed=0.1).ci == 1.0
    assert evalue(0.0, -0.1, 0.1, measure="RD", risk_unexposed=0.3) == (1.0, 1.0)


def test_mean_differences():
    # VanderWeele & Ding (2017): RR ~ exp(0.91 d), interval exp(0.91 d -/+ 1.78 s_d)
    md, sd, se = 3.0, 6.0, 0.9
    d, s_d = md / sd, se / sd
    lo, hi = md - 1.959964 * se, md + 1.959964 * se
    e = evalue(md, lo, hi, measure="MD", sd=sd)
    assert e.point == pytest.approx(e_closed(math.exp(0.91 * d)), rel=1e-12)
    assert e.ci == pytest.approx(e_closed(math.exp(0.91 * d - 1.78 * s_d)), rel=2e-3)
    assert evalue(d, lo / sd, hi / sd, measure="SMD") == pytest.approx(e, rel=1e-12)
    assert evalue(-d, -hi / sd, -lo / sd, measure="SMD") == pytest.approx(e, rel=1e-12)
    assert evalue(0.2, -0.1, 0.5, measure="SMD").ci == 1.0


def test_infinite_upper_limit():
    assert evalue(2.0, 1.5, np.inf) == pytest.approx((e_closed(2.0), e_closed(1.5)), rel=1e-12)
    assert evalue(0.5, 0.2, np.inf).ci == 1.0


@pytest.mark.parametrize("args, kwargs, message", [
    ((-1.2,), {}, "estimate: expected a positive, finite RR"),
    ((0.0,), {"measure": "HR", "outcome_common": True}, "estimate: expected a positive, finite HR"),
    (([1.2, np.nan],), {}, "estimate: expected numbers, got NaN at position 1"),
    ((1.2, 1.3, 1.4), {}, "conf_low: expected a lower limit at or below the estimate"),
    ((1.5, 1.3, 1.4), {}, "conf_high: expected an upper limit at or above the estimate"),
    ((1.2, 0.0, 1.4), {}, "conf_low: expected a positive ratio"),
    ((1.2, np.nan, 1.4), {}, "conf_low: expected numbers, got NaN"),
    ((1.2, 1.1, None), {}, "conf_low, conf_high: give both"),
    ((1.2,), {"measure": "HR"}, "outcome_common: for a HR, say whether the outcome is common"),
    ((1.2,), {"measure": "OR", "outcome_common": 1}, "outcome_common: expected True or False"),
    ((1.2,), {"outcome_common": True}, "outcome_common: only for HR and OR"),
    ((1.2,), {"measure": "IRR"}, "measure: got 'IRR'; expected one of RR, rate, HR, OR, RD, MD, SMD"),
    ((0.1,), {"measure": "RD"}, "risk_unexposed: for a risk difference"),
    ((0.1,), {"measure": "RD", "risk_unexposed": 1.2}, "risk_unexposed: expected a risk strictly between 0 and 1"),
    ((-0.3,), {"measure": "RD", "risk_unexposed": 0.2}, "estimate: expected a risk difference"),
    ((1.2,), {"risk_unexposed": 0.2}, "risk_unexposed: only for measure='RD'"),
    ((1.0,), {"measure": "MD"}, "sd: for a mean difference"),
    ((1.0,), {"measure": "MD", "sd": 0.0}, "sd: expected a positive, finite standard deviation"),
    ((1.0,), {"sd": 2.0}, "sd: only for measure='MD'"),
    ((1.2,), {"true": -1.0}, "true: expected a positive, finite RR"),
    (("a",), {}, "estimate: expected a number or an array of numbers"),
])
def test_bad_input(args, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        evalue(*args, **kwargs)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------------
# bias table
# ------------------------------------------------------------------------------------------------

def test_bias_table_harmful():
    t = bias_table(3.9, 1.8, 8.7, rr_eu=[1.5, 2.0, 4.0], rr_ud=[1.25, 3.0])
    assert list(t.columns) == ["rr_eu", "rr_ud", "bias_factor", "estimate", "conf_low", "conf_high",
                               "ci_excludes_null", "explained_away", "scale"]
    assert len(t) == 6 and set(zip(t["rr_eu"], t["rr_ud"])) == {(a, b) for a in (1.5, 2, 4) for b in (1.25, 3)}
    for r in t.itertuples():
        b = r.rr_eu * r.rr_ud / (r.rr_eu + r.rr_ud - 1)
        assert r.bias_factor == pytest.approx(b, rel=1e-12)
        assert (r.estimate, r.conf_low, r.conf_high) == pytest.approx((3.9 / b, 1.8 / b, 8.7 / b), rel=1e-12)
        assert r.ci_excludes_null == (1.8 / b > 1) and r.explained_away == (3.9 / b <= 1)
    row = t[(t["rr_eu"] == 4.0) & (t["rr_ud"] == 3.0)].iloc[0]      # B = 2: the lower limit reaches 0.9
    assert row["conf_low"] == pytest.approx(0.9) and not row["ci_excludes_null"] and not row["explained_away"]
    assert (t["scale"] == "RR").all()


def test_bias_table_protective_moves_up_to_the_null():
    t = bias_table(0.80, 0.71, 0.91, rr_eu=[1.2], rr_ud=[1.5, 2.0])
    for r in t.itertuples():
        b = 1.2 * r.rr_ud / (1.2 + r.rr_ud - 1)
        assert (r.estimate, r.conf_low, r.conf_high) == pytest.approx((0.8 * b, 0.71 * b, 0.91 * b), rel=1e-12)
        assert r.ci_excludes_null == (0.91 * b < 1)
    assert t["estimate"].gt(0.8).all()


def test_bias_table_at_the_evalue_explains_the_estimate_away():
    for est, lo, hi in [(3.9, 1.8, 8.7), (0.8, 0.71, 0.91)]:
        e = evalue(est, lo, hi)
        at = bias_table(est, lo, hi, rr_eu=[e.point], rr_ud=[e.point]).iloc[0]
        assert at["estimate"] == pytest.approx(1.0, rel=1e-12)
        just_below = bias_table(est, lo, hi, rr_eu=[e.point * 0.999], rr_ud=[e.point * 0.999]).iloc[0]
        assert not just_below["explained_away"]
        at_ci = bias_table(est, lo, hi, rr_eu=[e.ci * 1.001], rr_ud=[e.ci * 1.001]).iloc[0]
        assert not at_ci["ci_excludes_null"]
        below_ci = bias_table(est, lo, hi, rr_eu=[e.ci * 0.999], rr_ud=[e.ci * 0.999]).iloc[0]
        assert below_ci["ci_excludes_null"]


def test_bias_table_converts_common_hazard_ratios():
    t = bias_table(1.6, 1.2, 2.1, rr_eu=[1.5], rr_ud=[2.0], measure="HR", outcome_common=True)
    b = 1.5 * 2.0 / 2.5
    assert t["estimate"].iloc[0] == pytest.approx(hr_to_rr(1.6) / b, rel=1e-12)
    assert t["scale"].iloc[0] == "approx_RR"
    assert bias_table(1.6, 1.2, 2.1, measure="HR", outcome_common=False)["scale"].eq("RR").all()
    assert len(bias_table(1.6, 1.2, 2.1)) == 25                      # the default 5 x 5 grid


def test_bias_table_bad_input():
    with pytest.raises(ValueError, match="rr_eu: expected confounder strengths of at least 1"):
        bias_table(2.0, 1.5, 2.5, rr_eu=[0.8])
    with pytest.raises(ValueError, match="rr_ud: expected numbers, got NaN"):
        bias_table(2.0, 1.5, 2.5, rr_ud=[np.nan])
    with pytest.raises(ValueError, match="estimate: expected one number"):
        bias_table([2.0, 3.0], 1.5, 2.5)
    with pytest.raises(ValueError, match="conf_high: expected an upper limit at or above the estimate"):
        bias_table(2.0, 1.5, 1.9)


# ------------------------------------------------------------------------------------------------
# tidy tables
# ------------------------------------------------------------------------------------------------

def test_add_evalues_on_an_estimator_row():
    # a registry row: the rate ratio and its interval are exponentiated for scale="log"
    trial = vm.evaluate.ParallelTrial(outcome="count", effect=0.5).simulate(seed=1)
    row = effects.estimate(trial, "gee_poisson")
    out = add_evalues(row, measure="rate")
    r = out.iloc[0]
    assert r["estimate"] > 1 and r["conf_low"] > 1                 # a clear effect in this draw
    assert r["evalue"] == pytest.approx(e_closed(r["estimate"]), rel=1e-12)
    assert r["evalue_ci"] == pytest.approx(e_closed(r["conf_low"]), rel=1e-12)
    assert list(out.columns) == list(row.columns) + ["evalue", "evalue_ci"] and "evalue" not in row.columns
    # an identity-scale estimator is a mean difference, not a ratio
    lmm = effects.estimate(vm.evaluate.ParallelTrial(outcome="continuous").simulate(seed=1), "lmm")
    with pytest.raises(ValueError, match="measure: does not fit the table's scale"):
        add_evalues(lmm, measure="RR")
    e = add_evalues(lmm, measure="MD", sd=1.0).iloc[0]
    assert e["evalue"] == pytest.approx(e_closed(math.exp(0.91 * lmm["estimate"].iloc[0])), rel=1e-12)


def test_add_evalues_mixed_table():
    tab = pd.DataFrame({"intervention": ["kernpartnerteam", "verzuimcoach", "mazl", "aanpak"],
                        "measure": ["HR", "HR", "HR", "RD"],
                        "estimate": [1.4, 0.9, 1.2, 0.06], "conf_low": [1.1, 0.7, 1.05, 0.01],
                        "conf_high": [1.8, 1.15, 1.37, 0.11], "p0": [np.nan, np.nan, np.nan, 0.3]})
    out = add_evalues(tab, outcome_common=True, risk_unexposed="p0")
    expected_point = [e_closed(hr_to_rr(1.4)), e_closed(hr_to_rr(0.9)), e_closed(hr_to_rr(1.2)), e_closed(0.36 / 0.3)]
    expected_ci = [e_closed(hr_to_rr(1.1)), 1.0, e_closed(hr_to_rr(1.05)), e_closed(0.31 / 0.3)]
    assert out["evalue"].to_numpy() == pytest.approx(expected_point, rel=1e-12)
    assert out["evalue_ci"].to_numpy() == pytest.approx(expected_ci, rel=1e-12)
    # one measure for all rows, outcome_common per row
    hr = tab.iloc[:3]
    per_row = add_evalues(hr, measure="HR", outcome_common=[True, False, True])
    assert per_row["evalue"].iloc[1] == pytest.approx(e_closed(1 / 0.9), rel=1e-12)
    with pytest.raises(ValueError, match="outcome_common: for a HR"):
        add_evalues(hr, measure="HR")
    with pytest.raises(ValueError, match="outcome_common: expected one value or one per row"):
        add_evalues(hr, measure="HR", outcome_common=[True, False])
    bad = hr.assign(estimate=[1.4, np.nan, 1.2])
    with pytest.raises(ValueError, match=r"estimate: expected numbers, got NaN at position 1 .*measure 'HR'"):
        add_evalues(bad, measure="HR", outcome_common=True)
    with pytest.raises(ValueError, match="measure: give the measure"):
        add_evalues(tab.drop(columns="measure"))


def test_add_evalues_reads_the_exponentiated_columns_of_a_model_table():
    # a model's tidy(): log-scale estimate beside exp_* columns; log(1.5) = 0.405 read as a ratio
    # would be a protective effect
    t = tidy_table(pd.Series([math.log(1.5), math.log(0.7)], index=["verzuimcoach", "x"]),
                   pd.Series([0.1, 0.3], index=["verzuimcoach", "x"]))
    out = add_evalues(t, measure="HR", outcome_common=False)
    assert out["evalue"].to_numpy() == pytest.approx([e_closed(1.5), e_closed(0.7)], rel=1e-12)
    lo = math.exp(math.log(1.5) - 1.959963984540054 * 0.1)
    assert out["evalue_ci"].iloc[0] == pytest.approx(e_closed(lo), rel=1e-9)
    assert out["evalue_ci"].iloc[1] == 1.0                           # 0.7 with SE 0.3 crosses 1
    with pytest.raises(ValueError, match="columns: no column 'est'"):
        add_evalues(t, measure="HR", outcome_common=False, columns=("est", "lo", "hi"))
    # without interval columns: the E-value of the estimate only
    only = add_evalues(pd.DataFrame({"estimate": [2.0]}), measure="RR")
    assert only["evalue"].iloc[0] == pytest.approx(e_closed(2.0)) and np.isnan(only["evalue_ci"].iloc[0])


# ------------------------------------------------------------------------------------------------
# the sentence
# ------------------------------------------------------------------------------------------------

def test_sentence_dutch():
    e = evalue(0.80, 0.71, 0.91)                                     # 1.809 and 1.4286
    assert evalue_sentence(e.point, e.ci, "terugkeer naar school") == (
        "Een onbekend verschil tussen de groepen zou de kans op terugkeer naar school én de kans op de interventie "
        "elk met minstens een factor 1,8 moeten veranderen om dit effect helemaal te verklaren; om het niet meer "
        "aantoonbaar te maken is al een factor 1,4 genoeg.")
    # rounded down, never up: 2.99 -> 2,9; a factor that would read 1,0 gets another decimal
    s = evalue_sentence(2.99, 1.04, "verzuim", exposure_label="de aanpak op school")
    assert "factor 2,9 moeten" in s and "factor 1,04 genoeg" in s and "de kans op de aanpak op school" in s
    assert evalue_sentence(2.99, 1.04, "verzuim", digits=2).count("2,99") == 1


def test_sentence_english_and_special_cases():
    s = evalue_sentence(7.263, 3.0, "infant death", lang="en")
    assert s == ("An unknown difference between the groups would have to change both the chance of infant death "
                 "and the chance of receiving the intervention by a factor of at least 7.2 each to explain this "
                 "effect away entirely; a factor of 3.0 would already be enough to make it no longer statistically "
                 "demonstrable.")
    assert "onzekerheidsmarge omvat ook 'geen effect'" in evalue_sentence(1.69, 1.0, "verzuim")
    assert "uncertainty margin includes 'no effect'" in evalue_sentence(1.69, 1.0, "absence", lang="en")
    no_ci = evalue_sentence(1.69, None, "verzuim")
    assert no_ci.endswith("helemaal te verklaren.") and evalue_sentence(1.69, float("nan"), "verzuim") == no_ci
    assert evalue_sentence(1.0, 1.0, "verzuim") == ("Deze schatting wijst niet op een effect; er valt dus niets weg "
                                                    "te verklaren.")


def test_evalue_text_rounds_down_and_reads_1_at_the_null():
    from verzuimmodel.effects import evalue_text

    assert evalue_text(1.0) == "1" and evalue_text(1.0, 1, ",") == "1"
    assert evalue_text(2.99) == "2.9" and evalue_text(1.049, 1, ",") == "1,04"
    assert evalue_text(1.0004) == "1.000"                 # never "1.0" for an E-value above 1


@pytest.mark.parametrize("args, kwargs, message", [
    ((0.8, None, "x"), {}, "evalue: expected an E-value of at least 1"),
    ((2.0, 2.5, "x"), {}, r"evalue_ci: expected an E-value between 1 and evalue \(2\)"),
    ((2.0, 1.5, ""), {}, "outcome_label: expected a non-empty text"),
    ((2.0, 1.5, "x"), {"lang": "de"}, "lang: got 'de'; expected one of nl, en"),
    ((2.0, 1.5, "x"), {"digits": -1}, "digits: expected a whole number"),
])
def test_sentence_bad_input(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        evalue_sentence(*args, **kwargs)
