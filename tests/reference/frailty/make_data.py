"""Seeded datasets for the frailty reference values (run: python make_data.py; then Rscript frailty.R).

``right_censored.csv``: 2,000 pupils in 60 schools ``g`` with gamma frailties (mean 1, variance 0.5),
two covariates, durations in whole weeks (many ties) and uniform censoring:
``h_ij(t) = 0.04 Z_j exp(0.6 x1 - 0.5 x2)``.

``start_stop.csv``: 1,200 episodes in 40 schools (frailty variance 0.8) with late entry, split into
``(start, stop]`` rows at an intervention start (``tv`` switches 0 -> 1) and a pupil covariate ``z``.

``small_groups.csv``: 600 pupils in 5 schools (R's ``frailty()`` then uses the non-sparse, full
information matrix).

``no_frailty.csv``: 800 pupils *without* frailty, dealt to 40 schools in turn in order of their
duration, so that every school has the same mix of durations (less variation between schools than
chance: the variance estimate is on the boundary 0).
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def right_censored(rng: np.random.Generator, n: int = 2000, n_groups: int = 60, theta: float = 0.5) -> pd.DataFrame:
    g = rng.integers(0, n_groups, n)
    z = rng.gamma(1 / theta, theta, n_groups) if theta > 0 else np.ones(n_groups)
    x1 = rng.normal(size=n)
    x2 = rng.integers(0, 2, n)
    rate = 0.04 * z[g] * np.exp(0.6 * x1 - 0.5 * x2)
    t = np.ceil(rng.exponential(1 / rate) / 7)
    c = np.ceil(rng.uniform(1, 30, n))
    w = np.round(rng.uniform(0.5, 2.0, n), 3)
    return pd.DataFrame({"time": np.minimum(t, c), "status": (t <= c).astype(int), "x1": np.round(x1, 6),
                         "x2": x2, "g": g + 1, "w": w})


def start_stop(rng: np.random.Generator, n: int = 1200, n_groups: int = 40, theta: float = 0.8) -> pd.DataFrame:
    g = rng.integers(0, n_groups, n)
    zg = rng.gamma(1 / theta, theta, n_groups)
    z = np.round(rng.normal(size=n), 6)
    entry = rng.integers(0, 5, n).astype(float)
    s = entry + rng.integers(1, 30, n)                # intervention start
    rate = zg[g] * np.exp(0.4 * z) / 20
    t = entry + np.ceil(rng.exponential(1 / rate))
    treated_t = np.where(t > s, s + np.ceil(rng.exponential(1 / (rate * np.exp(0.5)))), t)
    end = np.minimum(treated_t, entry + 60)
    status = (treated_t <= entry + 60).astype(int)
    split = end > s
    first = pd.DataFrame({"id": np.arange(1, n + 1), "start": entry, "stop": np.where(split, s, end),
                          "status": np.where(split, 0, status), "tv": 0, "z": z, "g": g + 1})
    second = pd.DataFrame({"id": np.arange(1, n + 1), "start": s, "stop": end, "status": status, "tv": 1, "z": z,
                           "g": g + 1})[split]
    return pd.concat([first, second]).sort_values(["id", "start"], kind="stable").reset_index(drop=True)


if __name__ == "__main__":
    rng = np.random.default_rng(20261124)
    right_censored(rng).to_csv(HERE / "right_censored.csv", index=False)
    start_stop(rng).to_csv(HERE / "start_stop.csv", index=False)
    right_censored(rng, n=600, n_groups=5, theta=0.5).to_csv(HERE / "small_groups.csv", index=False)
    nf = right_censored(rng, n=800, n_groups=40, theta=0.0)
    nf["g"] = np.argsort(np.lexsort((nf["status"], nf["time"]))) % 40 + 1
    nf.to_csv(HERE / "no_frailty.csv", index=False)
