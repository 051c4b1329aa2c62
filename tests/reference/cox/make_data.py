"""Seeded datasets for the Cox reference values (run: python make_data.py; then Rscript cox.R)."""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def right_censored(rng: np.random.Generator, n: int = 600) -> pd.DataFrame:
    """Durations in whole weeks (many ties), three covariates, weights, 30 clusters, 2 strata."""
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n), rng.uniform(-1, 1, n)])
    stratum = rng.integers(0, 2, n)
    rate = 0.05 * np.exp(x @ [0.5, -0.4, 0.3] + 0.3 * stratum)
    t = np.ceil(rng.exponential(1 / rate) / 7)
    c = np.ceil(rng.uniform(0, 60, n))
    return pd.DataFrame({"time": np.minimum(t, c), "status": (t <= c).astype(int), "x1": x[:, 0], "x2": x[:, 1],
                         "x3": x[:, 2], "w": np.round(rng.uniform(0.5, 2.0, n), 3), "cl": rng.integers(1, 31, n),
                         "st": stratum})


def start_stop(rng: np.random.Generator, n: int = 400) -> pd.DataFrame:
    """Episodes split at an intervention start (time-varying 0 -> 1), late entry, ties, 25 clusters."""
    z = rng.normal(size=n)
    entry = rng.integers(0, 5, n).astype(float)
    s = entry + rng.integers(1, 30, n)                # intervention start
    t = entry + np.ceil(rng.exponential(20 * np.exp(-0.3 * z)))
    treated_t = np.where(t > s, s + np.ceil(rng.exponential(12 * np.exp(-0.3 * z))), t)
    end = np.minimum(treated_t, entry + 60)
    status = (treated_t <= entry + 60).astype(int)
    rows = []
    for i in range(n):          # small reference data: clarity over speed
        if end[i] > s[i]:
            rows.append((i + 1, entry[i], s[i], 0, 0, z[i]))
            rows.append((i + 1, s[i], end[i], status[i], 1, z[i]))
        else:
            rows.append((i + 1, entry[i], end[i], status[i], 0, z[i]))
    df = pd.DataFrame(rows, columns=["id", "start", "stop", "status", "tv", "z"])
    df["cl"] = (df["id"] % 25) + 1
    return df


if __name__ == "__main__":
    rng = np.random.default_rng(20261123)
    right_censored(rng).to_csv(HERE / "right_censored.csv", index=False)
    start_stop(rng).to_csv(HERE / "start_stop.csv", index=False)
