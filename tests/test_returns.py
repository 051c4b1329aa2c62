"""time_to_return and the start-stop preparation it rests on."""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

import verzuimmodel as vm
from verzuimmodel.survival.prepare import episode_intervals, episodes_table
from verzuimmodel.survival.returns import time_to_return

TYPES = ["kernpartnerteam", "verzuimcoach", "mazl"]


@pytest.fixture(scope="module")
def cohort():
    return vm.simulate(vm.Scenario.default(), seed=1)


def test_intervals_rebuild_the_episodes(cohort):
    eps = episodes_table(cohort).set_index("episode_id")
    iv = episode_intervals(cohort)
    g = iv.groupby("episode_id")
    # contiguous segments from entry (28 for LRV) to the end of the episode, event only on the last
    assert (iv["stop"] > iv["start"]).all()
    np.testing.assert_array_equal(g["start"].min().to_numpy(), eps.loc[g["start"].min().index, "entry"])
    np.testing.assert_array_equal(g["stop"].max().to_numpy(), eps.loc[g["stop"].max().index, "duration"])
    nxt = iv.groupby("episode_id")["start"].shift(-1)
    assert (nxt.dropna() == iv.loc[nxt.notna(), "stop"]).all()
    assert (g["event"].sum() == eps.loc[g["event"].sum().index, "returned"]).all()
    assert (iv.groupby("episode_id").tail(1)["event"] == eps.loc[iv.groupby("episode_id").tail(1)["episode_id"],
                                                                 "returned"].to_numpy()).all()
    # an intervention indicator switches on at its start and stays on
    starts = cohort.interventions.merge(cohort.episodes[["episode_id", "start_date"]], on="episode_id",
                                        suffixes=("", "_ep"))
    starts["day"] = (starts["start_date"] - starts["start_date_ep"]).dt.days
    for t in TYPES:
        s = starts[starts["intervention_type"] == t].set_index("episode_id")["day"]
        rows = iv[iv["episode_id"].isin(s.index)]
        day = s.reindex(rows["episode_id"]).to_numpy()
        assert (rows[t].to_numpy() == (day <= rows["start"].to_numpy())).all()
        assert (rows[f"ever_{t}"] == 1).all()
        assert (iv.loc[~iv["episode_id"].isin(s.index), t] == 0).all()


def test_lrv_enters_at_four_weeks(cohort):
    eps = episodes_table(cohort)
    assert (eps.loc[eps["episode_type"] == "LRV", "entry"] == 28).all()
    assert (eps.loc[eps["episode_type"] == "AV", "entry"] == 0).all()
    assert set(eps["cause"]) <= {0, 1, 2, 3, 4, 5}
    assert ((eps["cause"] == 0) == (eps["outcome"] == "censored")).all()


def test_time_to_return_tables(cohort):
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # no separation or convergence warnings on the default cohort
        r = time_to_return(cohort)
    e = r.effects
    assert list(e.columns[:6]) == ["intervention", "method", "estimate", "std_error", "conf_low", "conf_high"]
    assert set(e["method"]) == {"time_varying", "naive"} and set(e["intervention"]) == set(TYPES)
    assert (e["conf_low"] < e["estimate"]).all() and (e["estimate"] < e["conf_high"]).all()
    tv = e[e["method"] == "time_varying"].set_index("intervention")["estimate"]
    naive = e[e["method"] == "naive"].set_index("intervention")["estimate"]
    assert (naive < tv).all()          # immortal time pulls the naive estimate towards harm
    assert "vo" not in r.models["time_varying"].params_.index   # school level: absorbed by the school strata
    c = r.curves
    assert set(c["outcome"]) == {"own_school", "other_school", "work", "specialist_care", "exemption"}
    final = c.groupby("outcome")["estimate"].last()
    assert 0.5 < final.sum() <= 1.0 + 1e-12


def test_return_curve_matches_truth(cohort):
    """LRV only: CIF of return (own + other school) by 91 and 182 days vs the simulator's latent truth."""
    from verzuimmodel.survival.returns import return_curves

    c = return_curves(cohort, ("LRV",))
    back = c[c["outcome"].isin(["own_school", "other_school"])]
    n = (cohort.episodes["episode_type"] == "LRV").sum()
    for months, days in (("3m", 91), ("6m", 182)):
        est = back[back["time"] <= days].groupby("outcome")["estimate"].last().sum()
        truth = cohort.truth["return_cif"][months]
        se = np.sqrt(truth * (1 - truth) / n)
        assert abs(est - truth) < 3.5 * se, (months, est, truth)


@pytest.mark.slow
def test_time_varying_recovers_truth_naive_is_biased():
    """20 cohorts of 5 default regions: mean log HR within 3 Monte Carlo SE of the truth (time-varying)."""
    scen = vm.Scenario.default()
    scen = dataclasses.replace(scen, population=dataclasses.replace(scen.population, n_regions=5, n_po_schools=200,
                                                                    n_vo_schools=40))
    rows = []
    for seed in range(20):
        cohort = vm.simulate(scen, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows.append(time_to_return(cohort).effects)
    e = pd.concat(rows)
    e["log"] = np.log(e["estimate"])
    truth = np.log(pd.Series(cohort.truth["intervention_hr"]))
    g = e.groupby(["method", "intervention"])["log"]
    bias = g.mean() - truth.reindex(g.mean().index.get_level_values(1)).to_numpy()
    mcse = g.std() / np.sqrt(g.count())
    assert (bias["time_varying"].abs() < 3 * mcse["time_varying"]).all(), bias
    assert (bias["naive"] < -5 * mcse["naive"]).all(), bias
