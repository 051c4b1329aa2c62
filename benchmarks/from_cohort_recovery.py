"""Sampling error of ``Scenario.from_cohort``: the tolerances of ``tests/test_from_cohort.py``.

Fits ``from_cohort`` to replicate cohorts of the known scenario (``tests/from_cohort_cases.py``,
seeds 1..N, none of them the test's seed) and prints, per parameter, the mean error (bias), its
standard deviation over the replicates and the tolerance ``|bias| + 4 SD`` (rounded up), on the
scale the test compares (``abs`` or ``log``). The round trip (cohorts simulated from each fitted
scenario against the original, ``round_trip``) is measured the same way: the log ratios of pupils
and schools, and of the absence per enrolled day by measure and level.

Run: ``python -u benchmarks/from_cohort_recovery.py [N]`` (about 2 s per replicate on one core).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import verzuimmodel as vm  # noqa: E402
from from_cohort_cases import PARAMETERS, error, known_scenario, round_trip  # noqa: E402


def round_up(x: float) -> float:
    """Up to two significant digits."""
    if x <= 0 or not np.isfinite(x):
        return x
    scale = 10 ** (math.floor(math.log10(x)) - 1)
    return math.ceil(x / scale) * scale


def main(n: int) -> None:
    truth = known_scenario()
    errors, trips = [], []
    start = time.time()
    for seed in range(1, n + 1):
        cohort = vm.simulate(truth, seed=seed)
        fitted = vm.Scenario.from_cohort(cohort)
        errors.append({path: error(fitted, truth, path) for path in PARAMETERS})
        trips.append(round_trip(fitted, cohort))
        print(f"replicate {seed}/{n} ({time.time() - start:.0f} s)", file=sys.stderr)
    for title, rows in (("parameters", errors), ("round trip (log ratio simulated / original)", trips)):
        df = pd.DataFrame(rows)
        table = pd.DataFrame({"kind": [PARAMETERS.get(c, "log") for c in df.columns], "bias": df.mean(),
                              "sd": df.std(), "max_abs": df.abs().max()})
        table["z_bias"] = table["bias"] / (table["sd"] / np.sqrt(len(df)))
        table["tolerance"] = [round_up(abs(b) + 4 * s) for b, s in zip(table["bias"], table["sd"])]
        print(f"\n{title}, {len(df)} replicates")
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
