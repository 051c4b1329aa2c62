"""Seeded dataset for the Weibull PH reference values.

Run from this folder: ``python make_data.py`` then ``Rscript weibull.R``.

400 episodes from the proportional-hazards Weibull model ``h(t|x) = lambda rho t^(rho-1) exp(x'beta)``
with ``lambda = 0.08``, ``rho = 0.7`` (falling hazard), ``beta = (0.5, -0.4)`` for ``x1`` ~ N(0, 1)
and ``x2`` ~ Bernoulli(0.4). About 40% of the rows enter late (``entry`` > 0): their durations are
drawn given survival to ``entry`` (left truncation). Censoring ``entry + U(2, 60)``. Non-integer
case weights ``w`` and 30 clusters ``cl``. Times have three decimals (entry rounded down,
exit rounded up, so exit > entry).
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
LAMBDA, RHO, BETA = 0.08, 0.7, np.array([0.5, -0.4])


def episodes(rng: np.random.Generator, n: int = 400) -> pd.DataFrame:
    x = np.column_stack([rng.normal(size=n), (rng.uniform(size=n) < 0.4).astype(float)])
    entry = np.where(rng.uniform(size=n) < 0.4, np.floor(rng.uniform(0, 8, n) * 1000) / 1000, 0.0)
    rate = LAMBDA * np.exp(x @ BETA)
    # H(T) = H(entry) + E with E ~ Exp(1): T given T > entry
    t = ((rate * entry**RHO + rng.exponential(size=n)) / rate) ** (1 / RHO)
    c = entry + rng.uniform(2, 60, n)
    time = np.ceil(np.minimum(t, c) * 1000) / 1000
    return pd.DataFrame({"id": np.arange(1, n + 1), "entry": entry, "time": time, "status": (t <= c).astype(int),
                         "x1": np.round(x[:, 0], 4), "x2": x[:, 1].astype(int),
                         "w": np.round(rng.uniform(0.5, 2.0, n), 3), "cl": rng.integers(1, 31, n)})


if __name__ == "__main__":
    episodes(np.random.default_rng(20260416)).to_csv(HERE / "episodes.csv", index=False)
