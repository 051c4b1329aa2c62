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
    frames = [pd.read_csv(PAPER / "results" / f"{n}.csv") for n in ("episodes", "approach", "power")]
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


def test_template_quotes_known_values_only():
    b = build_module()
    with pytest.raises(KeyError, match="does not produce"):
        b.render({}, {})


@pytest.mark.slow
def test_make_paper_regenerates_the_same_numbers(tmp_path, monkeypatch):
    """Rerun the whole study (several minutes) and compare with the committed values."""
    b = build_module()
    committed = json.loads((PAPER / "results" / "values.json").read_text())
    e = b.study_episodes("processes")
    a = b.study_approach("processes")
    p = b.study_power("processes")
    for name, df in (("episodes", e), ("approach", a), ("power", p)):
        df.to_csv(tmp_path / f"{name}.csv", index=False, float_format="%.10g")
    import pandas as pd

    fresh = b.values(*(pd.read_csv(tmp_path / f"{n}.csv") for n in ("episodes", "approach", "power")))
    assert fresh == committed
