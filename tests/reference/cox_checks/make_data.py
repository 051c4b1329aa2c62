"""Seeded data for the Cox model-checking reference values (run: python make_data.py; then Rscript cox_checks.R).

``cox_checks.R`` exports R's own datasets (lung, veteran, ovarian, heart) beside this one.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def start_stop_strata(rng: np.random.Generator, n: int = 500) -> pd.DataFrame:
    """Episodes split at an intervention start (tv 0 -> 1), late entry, times in whole weeks (many tied
    events and tied entry/exit times), three regions as strata, integer case weights 1-3, 40 schools."""
    z = rng.normal(size=n)
    g = rng.integers(0, 2, n)
    region = rng.choice(["noord", "midden", "zuid"], n)
    base = np.select([region == "noord", region == "zuid"], [1.3, 0.8], 1.0)
    entry = rng.integers(0, 4, n).astype(float)
    s = entry + rng.integers(1, 12, n)                                       # intervention start
    t = entry + np.ceil(rng.exponential(8 * base * np.exp(-0.4 * z + 0.3 * g)))
    treated_t = np.where(t > s, s + np.ceil(rng.exponential(5 * base * np.exp(-0.4 * z + 0.3 * g))), t)
    end = np.minimum(treated_t, entry + 26)
    status = (treated_t <= entry + 26).astype(int)
    split = end > s
    first = pd.DataFrame({"id": np.arange(1, n + 1), "start": entry, "stop": np.where(split, s, end),
                          "status": np.where(split, 0, status), "tv": 0})
    second = pd.DataFrame({"id": np.arange(1, n + 1), "start": s, "stop": end, "status": status, "tv": 1})[split]
    df = pd.concat([first, second]).sort_values(["id", "start"], kind="stable").reset_index(drop=True)
    idx = df["id"].to_numpy() - 1
    df["z"], df["g"], df["region"] = z[idx], g[idx], region[idx]
    df["w"] = rng.integers(1, 4, n)[idx]
    df["school"] = (df["id"] % 40) + 1
    return df


if __name__ == "__main__":
    rng = np.random.default_rng(20261201)
    start_stop_strata(rng).to_csv(HERE / "start_stop_strata.csv", index=False)
