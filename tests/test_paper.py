"""The paper quotes only what its simulation study produced."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

PAPER = Path(__file__).resolve().parent.parent / "paper"


def build_module():
    spec = importlib.util.spec_from_file_location("paper_build", PAPER / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paper_md_is_rendered_from_the_stored_results():
    import pandas as pd

    b = build_module()
    frames = [pd.read_csv(PAPER / "results" / f"{n}.csv") for n in ("worlds", "approach", "power")]
    values = b.values(*frames)
    assert values == json.loads((PAPER / "results" / "values.json").read_text())
    rendered = b.render(values, b.tables_from(*frames))
    assert rendered == (PAPER / "paper.md").read_text(), "run `make paper` (or python paper/build.py --render-only)"
    assert not re.search(r"\{\{.*?\}\}", rendered)


def test_committed_study_recovers_the_truth_where_each_estimator_is_meant_for():
    """Aim 2 (150 cohorts per design): each estimator under a design it is meant for is unbiased and its 95%
    intervals cover, within 3 Monte Carlo SE; the naive estimators are biased."""
    import numpy as np
    import pandas as pd

    b = build_module()
    a = pd.read_csv(PAPER / "results" / "approach.csv").set_index(["design", "estimator"])
    for design, names in b.MEANT_FOR.items():
        for name in names:
            r = a.loc[(design, name)]
            assert r["n_failed"] == 0 and r["n_sims"] == b.N_SIMS_APPROACH
            assert abs(r["bias"]) < 3 * r["bias_mcse"], (design, name, r["bias"], r["bias_mcse"])
            assert abs(r["coverage"] - 0.95) < 3 * np.sqrt(0.95 * 0.05 / r["n_sims"]), (design, name, r["coverage"])
    for design, name in (("observational", "vo_nb_glm"), ("parallel", "po_recorded_naive")):
        r = a.loc[(design, name)]
        assert r["bias"] > 3 * r["bias_mcse"], (design, name)


def test_committed_worlds_study_says_which_estimator_holds_where():
    """The factorial study (paper/worlds.py): in the null worlds every estimator but the naive foils
    rejects a true null within 3 Monte Carlo SE of 5%; confounding by indication biases the
    time-varying Cox estimate beyond 5 Monte Carlo SE; under heterogeneous effects the
    difference-in-differences estimator, scored against the ATT it targets, covers within 3 Monte
    Carlo SE of 0.95; the key cells have 1,000 replicates (coverage MCSE at most 0.007); the M@ZL
    consult estimator holds with offers randomised and is biased when schools choose by absence."""
    import numpy as np
    import pandas as pd

    w = pd.read_csv(PAPER / "results" / "worlds.csv")
    key = w[w["n_sims"] >= 1000]
    assert (key["n_failed"] == 0).all()          # (with 12 schools a few DiD fits find no not-yet-treated controls)
    assert set(key["cell"]) >= {"null world", "heterogeneous", "measured referral",
                                "pilot: 12 of 40 schools, adoption by absence"}
    assert (np.sqrt(0.95 * 0.05 / key["n_sims"]) <= 0.007).all()      # MCSE of a coverage near 0.95
    near = key[(key["coverage"] - 0.95).abs() <= 0.01]
    assert len(near) >= 6 and (near["coverage_mcse"] <= 0.0076).all()
    # every null cell, the first 1,000 of the in-episode null world excepted: they are kept in the
    # results because the cell was enlarged to 5,000 after they rejected 7.2% for the rare M@ZL
    nulls = w[w["cell"].str.startswith("null world") & ~w["cell"].str.contains("first")
              & ~w["estimator"].str.startswith("naive_")]
    assert len(nulls) >= 10
    for _, r in nulls.iterrows():
        mcse = np.sqrt(0.05 * 0.95 / r["n_sims"])
        assert abs(r["power"] - 0.05) < 3 * mcse, (r["cell"], r["estimator"], r["power"])
    rare = w[(w["cell"] == "null world") & (w["estimator"] == "tv_cox_mazl")].iloc[0]
    assert rare["n_sims"] >= 5000                    # MCSE 0.003: a test at 6% would be caught
    mazl = w[w["estimator"] == "mazl_itt_sick"].set_index("cell")
    assert abs(mazl.loc["M@ZL offered at random", "bias"]) < 3 * mazl.loc["M@ZL offered at random", "bias_mcse"]
    assert mazl.loc["M@ZL offered by school absence", "bias"] > 5 * mazl.loc["M@ZL offered by school absence",
                                                                              "bias_mcse"]
    naive = w[(w["cell"] == "null world") & (w["estimator"] == "naive_cox_kernpartnerteam")].iloc[0]
    assert naive["power"] > 0.5                      # immortal time: the foil finds an effect that is not there
    conf = w[(w["cell"] == "confounded referral (1.0)") & (w["estimator"] == "tv_cox_kernpartnerteam")].iloc[0]
    assert conf["bias"] < -5 * conf["bias_mcse"]
    did = w[(w["cell"] == "heterogeneous") & (w["estimator"] == "vo_did")].iloc[0]
    assert did["estimand"] == "po_approach_vo_rate_ratio_exposed" and did["n_sims"] >= 1000
    assert abs(did["coverage"] - 0.95) < 3 * did["coverage_mcse"]
    assert abs(did["bias"]) < 3 * did["bias_mcse"]


def test_template_quotes_known_values_only():
    b = build_module()
    with pytest.raises(KeyError, match="does not produce"):
        b.render({}, {})


@pytest.mark.slow
def test_make_paper_regenerates_the_same_numbers(tmp_path, monkeypatch):
    """Rerun the whole study (about 40 minutes on two cores) and compare with the committed values."""
    import pandas as pd

    b = build_module()
    committed = json.loads((PAPER / "results" / "values.json").read_text())
    frames = {"worlds": b.study_worlds("processes", b.SEED), "approach": b.study_approach("processes"),
              "power": b.study_power("processes")}
    for name, df in frames.items():
        df.to_csv(tmp_path / f"{name}.csv", index=False, float_format="%.10g")
    fresh = b.values(*(pd.read_csv(tmp_path / f"{n}.csv") for n in frames))
    assert fresh == committed
