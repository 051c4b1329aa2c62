"""Seeded datasets for the Fine–Gray reference values (run: python make_data.py; then Rscript finegray.R).

``competing.csv``: 500 long-absence episodes, durations in whole weeks (many ties, also between
censoring and events), outcome 0 = still running (censored), 1 = back to own school,
2 = other school / day programme, 3 = specialist care; covariates x1 (normal), x2 (binary),
x3 (uniform); ``fw`` integer frequency weights 1..3; ``cl`` one of 40 clusters (schools).

``competing_start_stop.csv``: 150 episodes in start–stop rows (split at an intervention start,
time-varying ``tv`` 0 -> 1), some with late entry, ending in 0..3 on the last row.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def competing(rng: np.random.Generator, n: int = 500) -> pd.DataFrame:
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n), rng.uniform(-1, 1, n)])
    # cause-specific weekly hazards (exponential), each with its own covariate effects
    rates = np.column_stack([0.040 * np.exp(x @ [0.5, -0.5, 0.3]),
                             0.020 * np.exp(x @ [-0.3, 0.4, 0.0]),
                             0.012 * np.exp(x @ [0.2, 0.6, -0.4])])
    total = rates.sum(axis=1)
    t = np.ceil(rng.exponential(1 / total))
    cause = 1 + (rng.uniform(size=n)[:, None] > np.cumsum(rates / total[:, None], axis=1)).sum(axis=1)
    c = np.ceil(rng.uniform(0, 70, n))
    status = np.where(t <= c, cause, 0)
    return pd.DataFrame({"id": np.arange(1, n + 1), "time": np.minimum(t, c), "status": status,
                         "x1": np.round(x[:, 0], 4), "x2": x[:, 1].astype(int), "x3": np.round(x[:, 2], 4),
                         "fw": rng.integers(1, 4, n), "cl": rng.integers(1, 41, n)})


def competing_start_stop(rng: np.random.Generator, n: int = 150) -> pd.DataFrame:
    z = np.round(rng.normal(size=n), 4)
    entry = np.where(rng.uniform(size=n) < 0.3, rng.integers(1, 6, n), 0).astype(float)
    s = entry + rng.integers(1, 25, n)                      # intervention start
    total = 0.06 * np.exp(0.3 * z)
    t = entry + np.ceil(rng.exponential(1 / total))
    cause = 1 + (rng.uniform(size=n)[:, None] > np.array([0.55, 0.8])).sum(axis=1)
    c = entry + np.ceil(rng.uniform(5, 50, n))
    end = np.minimum(t, c)
    status = np.where(t <= c, cause, 0)
    rows = []
    for i in range(n):          # small reference data: clarity over speed
        if end[i] > s[i]:
            rows.append((i + 1, entry[i], s[i], 0, 0, z[i]))
            rows.append((i + 1, s[i], end[i], status[i], 1, z[i]))
        else:
            rows.append((i + 1, entry[i], end[i], status[i], 0, z[i]))
    return pd.DataFrame(rows, columns=["id", "start", "stop", "status", "tv", "z"])


if __name__ == "__main__":
    rng = np.random.default_rng(20261124)
    competing(rng).to_csv(HERE / "competing.csv", index=False)
    competing_start_stop(rng).to_csv(HERE / "competing_start_stop.csv", index=False)
