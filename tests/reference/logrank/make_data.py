"""Seeded data for the log-rank reference values (run: python make_data.py; then Rscript logrank.R)."""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    rng = np.random.default_rng(20261129)
    n = 400
    group = rng.choice(["a", "b", "c"], n)
    stratum = rng.integers(0, 2, n)
    rate = 0.04 * np.exp(np.select([group == "b", group == "c"], [0.3, -0.2], 0.0) + 0.4 * stratum)
    t = np.ceil(rng.exponential(1 / rate))                 # whole days: many ties
    c = np.ceil(rng.uniform(5, 80, n))
    pd.DataFrame({"time": np.minimum(t, c), "status": (t <= c).astype(int), "group": group,
                  "stratum": stratum}).to_csv(HERE / "logrank.csv", index=False)
