"""Early-warning signals: features and label, rules, validation splits, metrics, the comparison table, model card."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.special import expit, logit
from sklearn.metrics import brier_score_loss, roc_auc_score

import verzuimmodel as vm
from verzuimmodel import signal
from verzuimmodel.signal import metrics
from verzuimmodel.signal.evaluate import PREDICTION_COLUMNS

DESIGN_COLUMNS = ["signal", "metric", "group", "value", "conf_low", "conf_high"]
MODELS = ["logistic_spline", "gradient_boosting"]
RULES = ["mazl", "extensive_sick", "unexcused_16h", "any_rule"]


@pytest.fixture(scope="module")
def cohort():
    return vm.simulate(vm.Scenario.default(), seed=1)


@pytest.fixture(scope="module")
def table(cohort):
    return signal.evaluate(cohort, n_boot=20, seed=1)


@pytest.fixture(scope="module")
def labelled(cohort):
    return signal.labelled_table(cohort, signal.SignalConfig())


# ---------------------------------------------------------------- features and label

def test_label_is_a_vo_lrv_or_av_episode_among_pupils_followed_into_vo_year_2(cohort):
    d = signal.features(cohort)
    assert list(d.columns[:5]) == ["pupil_id", "po_school_id", "cohort", "labelled", "event"]
    assert set(signal.FEATURES) <= set(d.columns)
    vo_schools = set(cohort.schools.loc[cohort.schools["level"] == "vo", "school_id"])
    e = cohort.episodes
    onset = e[e["school_id"].isin(vo_schools) & e["episode_type"].isin(["LRV", "AV"])]
    lab = d[d["labelled"]]
    expected = lab["pupil_id"].isin(onset["pupil_id"]).astype(int).to_numpy()
    np.testing.assert_array_equal(lab["event"].to_numpy(dtype=int), expected)
    assert d.loc[~d["labelled"], "event"].isna().all()
    p = cohort.pupils.set_index("pupil_id").loc[lab["pupil_id"]]
    assert p["vo_school_id"].notna().all()
    vo2_start = pd.to_datetime({"year": p["cohort"].to_numpy() + 7, "month": 8, "day": 1}).to_numpy()
    vo_rows = cohort.absence[(cohort.absence["level"] == "vo") & (cohort.absence["grade"] >= 2)]
    followed = (p["followup_end"].to_numpy() >= vo2_start) | p.index.isin(vo_rows["pupil_id"])
    assert followed.all()
    # pupils who left before VO year 2 are not labelled, whatever their episodes
    unl = cohort.pupils.set_index("pupil_id").loc[d.loc[~d["labelled"], "pupil_id"]]
    assert (unl["followup_end"] < pd.to_datetime({"year": unl["cohort"] + 7, "month": 8, "day": 1}).to_numpy()).all()
    assert 0.02 < lab["event"].astype(int).mean() < 0.06


def test_features_never_read_the_true_values(cohort):
    truth_cols = [c for c in cohort.absence.columns if c.endswith("_true")]
    assert truth_cols
    scrambled = cohort.absence.copy()
    rng = np.random.default_rng(0)
    for c in truth_cols:
        scrambled[c] = rng.permutation(scrambled[c].to_numpy())
    dropped = dataclasses.replace(cohort, absence=cohort.absence.drop(columns=truth_cols))
    base = signal.features(cohort)
    pd.testing.assert_frame_equal(base, signal.features(dataclasses.replace(cohort, absence=scrambled)))
    pd.testing.assert_frame_equal(base, signal.features(dropped))
    with pytest.raises(ValueError, match="recorded counts only"):
        signal.Condition("sick_days_true", 10)
    with pytest.raises(ValueError, match="recorded data only"):
        signal.SignalModel().fit(base.assign(sick_days_true=0))


def test_max_vo_year_narrows_the_label(cohort):
    full = signal.features(cohort)
    short = signal.features(cohort, signal.FeatureConfig(max_vo_year=1))
    lab = full["labelled"].to_numpy()
    assert (short["event"][lab].astype(int) <= full["event"][lab].astype(int)).all()
    assert short["event"][lab].astype(int).sum() < full["event"][lab].astype(int).sum()


# ---------------------------------------------------------------- rules on a hand-made example

def _hand_absence():
    """Six pupils' PO years; comments say which rule each row meets."""
    rows = [
        # pupil, grade, sick_days, sick_reports, sick_long_spells, unexcused_hours
        (1, 5, 3, 13, 0, 0.0),     # 13 reports: not M@ZL; > 4 reports: extensive
        (1, 8, 2, 2, 0, 15.5),     # nothing
        (2, 8, 8, 14, 0, 0.0),     # 14 reports: M@ZL and extensive
        (3, 7, 9, 4, 0, 16.0),     # 9 days and 4 reports: not extensive; 16 h: unexcused
        (4, 6, 10, 1, 1, 0.0),     # a long spell: M@ZL (group 6); 10 days: extensive
        (5, 4, 1, 1, 0, 40.0),     # unexcused, group 4 only
        (6, 8, 0, 0, 0, 0.0),      # nothing
    ]
    df = pd.DataFrame(rows, columns=["pupil_id", "grade", "sick_days", "sick_reports", "sick_long_spells",
                                     "unexcused_hours"])
    df["level"] = "po"
    return df


def test_rules_on_a_hand_made_example():
    flags = signal.rule_flags(_hand_absence())
    assert flags.index.tolist() == [1, 2, 3, 4, 5, 6]
    assert flags["mazl"].tolist() == [False, True, False, True, False, False]
    assert flags["extensive_sick"].tolist() == [True, True, False, True, False, False]
    assert flags["unexcused_16h"].tolist() == [False, False, True, False, True, False]
    assert flags["any_rule"].tolist() == [True, True, True, True, True, False]
    late = signal.rule_flags(_hand_absence(), window="groups_7_8")
    assert late["mazl"].tolist() == [False, True, False, False, False, False]
    assert late["extensive_sick"].tolist() == [False, True, False, False, False, False]
    assert late["unexcused_16h"].tolist() == [False, False, True, False, False, False]


def test_rule_sensitivity_and_ppv_match_a_direct_count():
    flags = signal.rule_flags(_hand_absence())
    event = np.array([1, 0, 1, 1, 0, 0])     # pupils 1, 3 and 4 later long absent
    # extensive_sick flags 1, 2, 4: 2 of the 3 events (sensitivity 2/3), 2 of 3 flagged (PPV 2/3)
    # mazl flags 2, 4: 1 of 3 events, 1 of 2 flagged; unexcused flags 3, 5: 1/3 and 1/2
    expected = {"extensive_sick": (2 / 3, 2 / 3, 3 / 6), "mazl": (1 / 3, 1 / 2, 2 / 6),
                "unexcused_16h": (1 / 3, 1 / 2, 2 / 6), "any_rule": (3 / 3, 3 / 5, 5 / 6)}
    for name, (sens, ppv, rate) in expected.items():
        f = flags[name].to_numpy().astype(int)
        assert metrics.sensitivity(event, f) == pytest.approx(sens)
        assert metrics.ppv(event, f) == pytest.approx(ppv)
    # the same through the comparison table
    parts = []
    for name in expected:
        f = flags[name].to_numpy().astype(int)
        parts.append(pd.DataFrame({
            "validation": "hand", "signal": name, "kind": "rule", "pupil_id": flags.index, "po_school_id": 1,
            "cohort": 2015, "event": event, "risk": np.where(f == 1, 0.5, 0.2), "flag": f,
            "disadvantaged": 0, "female": [1, 0, 1, 0, 1, 0], "sbo": 0, "special_needs": 0}))
    preds = pd.concat(parts, ignore_index=True)[PREDICTION_COLUMNS]
    t = signal.performance(preds, n_boot=0).set_index(["signal", "metric", "group"])["value"]
    for name, (sens, ppv, rate) in expected.items():
        assert t[name, "sensitivity", "all"] == pytest.approx(sens)
        assert t[name, "ppv", "all"] == pytest.approx(ppv)
        assert t[name, "alert_rate", "all"] == pytest.approx(rate)
        f = flags[name].to_numpy().astype(int)
        assert t[name, "auc", "all"] == pytest.approx(roc_auc_score(event, f))
    # by group: girls are pupils 1, 3, 5 (events 1 and 3); extensive_sick flags pupil 1 among them
    assert t["extensive_sick", "sensitivity", "girls"] == pytest.approx(1 / 2)
    assert t["extensive_sick", "ppv", "girls"] == pytest.approx(1.0)
    assert t["extensive_sick", "alert_rate", "girls"] == pytest.approx(1 / 3)


# ---------------------------------------------------------------- validation splits

def test_grouped_cv_never_puts_a_school_in_train_and_test(labelled):
    seen = np.zeros(len(labelled), dtype=int)
    folds = list(signal.GroupedCV(n_splits=5).split(labelled))
    assert len(folds) == 5
    school = labelled["po_school_id"].to_numpy()
    for train, test in folds:
        assert not set(school[train]) & set(school[test])
        assert len(np.intersect1d(train, test)) == 0
        seen[test] += 1
    assert (seen == 1).all()


def test_temporal_split_never_trains_on_a_later_cohort_than_it_tests(labelled):
    c = labelled["cohort"].to_numpy()
    for split in (signal.TemporalSplit(), signal.TemporalSplit(n_test_cohorts=1),
                  signal.TemporalSplit(first_test_cohort=2013)):
        (train, test), = list(split.split(labelled))
        assert c[train].max() < c[test].min()
        assert len(train) + len(test) == len(labelled)
    (train, test), = list(signal.TemporalSplit(n_test_cohorts=3).split(labelled))
    assert sorted(set(c[test])) == sorted(set(c))[-3:]
    with pytest.raises(ValueError, match="no training or no test"):
        list(signal.TemporalSplit(first_test_cohort=2000).split(labelled))


def test_predictions_score_each_test_pupil_once_per_signal(cohort, labelled):
    preds = signal.predictions(cohort, seed=1, models=(signal.LogisticSpline(),),
                               validations=(signal.GroupedCV(), signal.TemporalSplit()))
    counts = preds.groupby(["validation", "signal"]).size()
    assert (counts.loc["grouped_cv"] == len(labelled)).all()
    n_test = int((labelled["cohort"] >= sorted(labelled["cohort"].unique())[-3]).sum())
    assert (counts.loc["temporal"] == n_test).all()
    assert preds["risk"].between(0, 1).all()
    # a model's alert: the top 5% of each cohort
    m = preds[(preds["signal"] == "logistic_spline") & (preds["validation"] == "grouped_cv")]
    per_cohort = m.groupby("cohort").agg(n=("flag", "size"), flagged=("flag", "sum"))
    np.testing.assert_array_equal(per_cohort["flagged"], np.floor(0.05 * per_cohort["n"] + 0.5))


# ---------------------------------------------------------------- metrics against references

@pytest.fixture(scope="module")
def fixed():
    rng = np.random.default_rng(20240601)
    n = 400
    y = rng.binomial(1, 0.3, n)
    score = np.round(rng.normal(y * 0.8, 1.0), 1)     # rounded: many ties
    weight = rng.integers(0, 4, n).astype(float)
    return y, score, weight


def test_auc_matches_scikit_learn(fixed):
    y, score, weight = fixed
    assert metrics.auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert metrics.auc(y, score, weight) == pytest.approx(roc_auc_score(y, score, sample_weight=weight), abs=1e-12)
    flag = (score > 0.5).astype(int)
    assert metrics.auc(y, flag) == pytest.approx(roc_auc_score(y, flag), abs=1e-12)
    assert np.isnan(metrics.auc(np.zeros(5), np.arange(5.0)))


def test_brier_matches_scikit_learn(fixed):
    y, score, weight = fixed
    p = expit(score - 1)
    assert metrics.brier(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert metrics.brier(y, p, weight) == pytest.approx(brier_score_loss(y, p, sample_weight=weight), abs=1e-12)


def test_recalibration_matches_a_logistic_glm(fixed):
    y, score, weight = fixed
    p = expit(0.7 * score - 1.2)
    lp = logit(p)
    rec = metrics.recalibration(y, p, weight)
    # statsmodels: glm(y ~ lp, binomial, freq_weights) and glm(y ~ 1, offset = lp)
    slope = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial(), freq_weights=weight).fit()
    inter = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=lp, freq_weights=weight).fit()
    assert rec["slope"] == pytest.approx(slope.params[1], abs=1e-7)
    assert rec["slope_se"] == pytest.approx(slope.bse[1], rel=1e-6)
    assert rec["intercept"] == pytest.approx(inter.params[0], abs=1e-7)
    assert rec["intercept_se"] == pytest.approx(inter.bse[0], rel=1e-6)


def test_calibration_of_perfectly_calibrated_risks():
    rng = np.random.default_rng(7)
    n = 20_000
    p = expit(rng.normal(-2.5, 1.0, n))
    y = rng.binomial(1, p)
    rec = metrics.recalibration(y, p)
    # within 4 Monte Carlo standard errors of the ideal values
    assert abs(rec["slope"] - 1) < 4 * rec["slope_se"]
    assert abs(rec["intercept"]) < 4 * rec["intercept_se"]
    assert rec["slope_se"] < 0.05
    # risks twice as extreme on the logit scale: slope 1/2
    too_extreme = expit(2 * logit(p))
    rec2 = metrics.recalibration(y, too_extreme)
    assert abs(rec2["slope"] - 0.5) < 4 * rec2["slope_se"]


def test_weighted_metrics_equal_metrics_on_repeated_rows(fixed):
    y, score, weight = fixed
    cohort = np.repeat([2014, 2015], len(y) // 2)
    rep = np.repeat(np.arange(len(y)), weight.astype(int))
    alert = metrics.Alert("share", 0.1)
    share = metrics.alert_flags(score, cohort, alert, weight)
    flags_rep = metrics.alert_flags(score[rep], cohort[rep], alert)
    for per_cohort in (2014, 2015):
        assert np.sum((share * weight)[cohort == per_cohort]) == pytest.approx(
            np.floor(0.1 * weight[cohort == per_cohort].sum() + 0.5))
    assert metrics.sensitivity(y, share, weight) == pytest.approx(metrics.sensitivity(y[rep], flags_rep))
    assert metrics.ppv(y, share, weight) == pytest.approx(metrics.ppv(y[rep], flags_rep))
    p = expit(score - 1)
    assert metrics.brier(y, p, weight) == pytest.approx(metrics.brier(y[rep], p[rep]))
    assert metrics.auc(y, score, weight) == pytest.approx(metrics.auc(y[rep], score[rep]))


def test_alert_count_flags_that_many_pupils_per_cohort():
    score = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.2])
    cohort = np.array([1, 1, 1, 1, 2, 2, 2])
    flags = metrics.alert_flags(score, cohort, metrics.Alert("count", 2))
    np.testing.assert_array_equal(flags, [1, 0, 0, 1, 1, 1, 0])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        metrics.Alert("share", 1.5)
    with pytest.raises(ValueError, match="whole number"):
        metrics.Alert("count", 2.5)


# ---------------------------------------------------------------- the comparison on the default scenario

def test_table_structure(table):
    assert list(table.columns[:6]) == DESIGN_COLUMNS
    assert list(table.columns) == signal.TIDY_COLUMNS
    assert set(table["signal"]) == set(MODELS + RULES)
    assert set(table["metric"]) == set(signal.METRICS)
    assert set(table["group"]) == set(signal.GROUPS)
    assert set(table["validation"]) == {"grouped_cv", "temporal"}
    assert not table.duplicated(["validation", "signal", "metric", "group"]).any()
    assert len(table) == 2 * 6 * len(signal.METRICS) * len(signal.GROUPS)
    assert (table.loc[table["signal"].isin(MODELS), "kind"] == "model").all()
    assert (table.loc[table["signal"].isin(RULES), "kind"] == "rule").all()
    # groups with few events (two SBO schools; special needs in the later cohorts) may leave a measure undefined
    main = table[table["n_events"] >= 20]
    assert set(main["group"]) >= {"all", "girls", "boys", "disadvantaged", "not_disadvantaged"}
    assert main[["value", "conf_low", "conf_high"]].notna().all().all()
    assert (main["conf_low"] <= main["conf_high"]).all()


def test_models_beat_chance_and_the_table_matches_direct_counts(table, labelled):
    t = table.set_index(["validation", "signal", "metric", "group"])
    for v in ("grouped_cv", "temporal"):
        for m in MODELS:
            auc = t.loc[(v, m, "auc", "all")]
            assert auc["value"] > 0.5 and auc["conf_low"] > 0.5, (v, m)
            assert t.loc[(v, m, "alert_rate", "all"), "value"] == pytest.approx(0.05, abs=0.002)
    cv = table[(table["validation"] == "grouped_cv") & (table["group"] == "all")]
    assert (cv["n"] == len(labelled)).all() and (cv["n_events"] == labelled["event"].sum()).all()
    y = labelled["event"].to_numpy()
    for r in RULES:
        f = labelled[f"rule_{r}"].to_numpy()
        assert t.loc[("grouped_cv", r, "alert_rate", "all"), "value"] == pytest.approx(f.mean())
        assert t.loc[("grouped_cv", r, "sensitivity", "all"), "value"] == pytest.approx(f[y == 1].mean())
        assert t.loc[("grouped_cv", r, "ppv", "all"), "value"] == pytest.approx(y[f == 1].mean())
        assert t.loc[("grouped_cv", r, "auc", "all"), "value"] == pytest.approx(roc_auc_score(y, f))
    # at a 5% alert rate the models find fewer pupils than the broad rules but a larger share of those flagged
    for m in MODELS:
        assert t.loc[("grouped_cv", m, "ppv", "all"), "value"] > max(
            t.loc[("grouped_cv", r, "ppv", "all"), "value"] for r in RULES)


def test_bootstrap_is_seeded_and_resamples_schools(cohort, labelled):
    config = signal.SignalConfig(models=(signal.LogisticSpline(),), validations=(signal.TemporalSplit(),))
    preds = signal.predictions(cohort, config, seed=3, data=labelled)
    a = signal.performance(preds, config, seed=3, n_boot=8)
    b = signal.performance(preds, config, seed=3, n_boot=8)
    pd.testing.assert_frame_equal(a, b)
    c = signal.performance(preds, config, seed=4, n_boot=8)
    assert not np.allclose(a["conf_low"], c["conf_low"], equal_nan=True)
    pupils = signal.performance(preds, config, seed=3, n_boot=8, bootstrap="pupil")
    np.testing.assert_allclose(pupils["value"], a["value"])
    with pytest.raises(TypeError):
        signal.evaluate(cohort, no_such_option=1)
    with pytest.raises(ValueError, match="unknown group"):
        signal.SignalConfig(groups=("all", "left_handed"))


# ---------------------------------------------------------------- model card and plot

def test_model_card(cohort, tmp_path):
    fitted = signal.fit_model(cohort, "gradient_boosting", seed=1, n_boot=5, validations=(signal.TemporalSplit(),),
                              model_card_path=tmp_path / "written.md")
    assert fitted.model.pipeline_ is not None and fitted.name == "gradient_boosting"
    assert set(fitted.tidy()["signal"]) == {"gradient_boosting", *RULES}
    card = fitted.model_card()
    assert "Nothing in this model decides about a pupil" in card
    for section in ("## Model details", "## Intended use", "## Data", "## Evaluation", "## Limits",
                    "by group", "Simulated data"):
        assert section in card
    assert "| `gradient_boosting` |" in card and "| `mazl` |" in card
    assert "disadvantaged" in card and "special_needs" in card
    assert (tmp_path / "written.md").read_text(encoding="utf-8") == card
    path = fitted.write_model_card(tmp_path / "card.md")
    assert path.read_text(encoding="utf-8") == card
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.md", "written.md"]     # no temporary files left
    risk = fitted.predict_risk(signal.features(cohort).head(50))
    assert risk.shape == (50,) and ((risk > 0) & (risk < 1)).all()


def test_calibration_plot(cohort, labelled):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    preds = signal.predictions(cohort, seed=1, data=labelled, models=(signal.LogisticSpline(),), rules=(),
                               validations=(signal.TemporalSplit(),))
    curve = signal.calibration_table(preds, n_bins=5)
    assert list(curve.columns[:3]) == ["validation", "signal", "kind"] and len(curve) == 5
    assert curve["n"].sum() == len(preds)
    ax = signal.plots.plot_calibration(curve)
    assert ax.get_xlabel().startswith("predicted risk")
    plt.close(ax.figure)


def test_too_small_a_cohort_says_so():
    import dataclasses

    import verzuimmodel as vm

    s = vm.Scenario.default()
    s = dataclasses.replace(s, population=dataclasses.replace(s.population, n_po_schools=8, n_vo_schools=2,
                                                              n_cohorts=3))
    with pytest.raises(ValueError, match="cohort too small for a stable model"):
        vm.signal.evaluate(vm.simulate(s, seed=1), n_boot=5)
