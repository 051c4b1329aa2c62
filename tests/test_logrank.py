"""The log-rank test against R's survival::survdiff (tests/reference/logrank/logrank.R)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from verzuimmodel.survival import logrank_test

REF = Path(__file__).parent / "reference" / "logrank"


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(REF / "logrank.csv"), json.loads((REF / "logrank_reference.json").read_text())


@pytest.mark.parametrize("case, kwargs, subset", [
    ("logrank", {}, None),
    ("peto", {"rho": 1.0}, None),
    ("strata", {"strata": "stratum"}, None),
    ("two", {}, ["a", "b"]),
])
def test_matches_survdiff(data, case, kwargs, subset):
    d, ref = data
    if subset:
        d = d[d["group"].isin(subset)]
    r = logrank_test(d, "time", "status", "group", **kwargs)
    want = ref[case]
    assert r.statistic == pytest.approx(want["chisq"][0], rel=1e-10)
    np.testing.assert_allclose(r.table["observed"], want["obs"], rtol=1e-10)
    np.testing.assert_allclose(r.table["expected"], want["exp"], rtol=1e-10)
    K = len(r.table)
    np.testing.assert_allclose(r.variance, np.reshape(want["var"], (K, K)), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(r.table["n"], want["n"])
    assert r.df == K - 1 and 0 < r.p_value < 1


def test_equal_groups_do_not_reject_and_bad_input_is_named():
    rng = np.random.default_rng(1)
    rejections = 0
    for _ in range(200):
        d = pd.DataFrame({"t": rng.exponential(10, 100), "e": rng.integers(0, 2, 100), "g": rng.integers(0, 2, 100)})
        rejections += logrank_test(d, "t", "e", "g").p_value < 0.05
    assert rejections < 200 * 0.05 + 3 * np.sqrt(200 * 0.05 * 0.95)        # the null holds at its level
    d = pd.DataFrame({"t": [1.0, 2.0], "e": [1, 2], "g": ["a", "b"]})
    with pytest.raises(ValueError, match="'e' must hold 0"):
        logrank_test(d, "t", "e", "g")
    with pytest.raises(ValueError, match="one group|1 group"):
        logrank_test(d.assign(e=1, g="a"), "t", "e", "g")
