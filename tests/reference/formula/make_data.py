"""Seeded episodes for the formula reference values (run: python make_data.py; then Rscript formula.R).

``formula.R`` exports R's ``lung`` beside this file. ``episodes.csv``: 600 episodes with a string
factor of four regions, a two-level string factor, a numeric age, a 0/1 column, 30 schools,
non-integer case weights and a competing outcome (``cause``: 0 censored, 1 return, 2 other); about
3% of ``age`` and 2% of ``region`` are missing, so the fits (R's default ``na.omit``, here
``na_action="drop"``) use the complete cases. Durations from a Weibull PH model (shape 0.8), three
decimals.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def episodes(rng: np.random.Generator, n: int = 600) -> pd.DataFrame:
    region = rng.choice(["noord", "oost", "west", "zuid"], n)
    sex = rng.choice(["F", "M"], n)
    age = np.round(rng.uniform(6, 18, n), 2)
    sbo = rng.integers(0, 2, n)
    eta = (np.select([region == "oost", region == "west", region == "zuid"], [0.3, -0.2, 0.5], 0.0)
           + 0.05 * (age - 12) + 0.3 * (sex == "M") - 0.4 * sbo + 0.06 * (region == "zuid") * (age - 12))
    t = (rng.exponential(size=n) / (0.05 * np.exp(eta))) ** (1 / 0.8)
    c = rng.uniform(5, 120, n)
    time = np.ceil(np.minimum(t, c) * 1000) / 1000
    status = (t <= c).astype(int)
    cause = status * np.where(rng.uniform(size=n) < 0.65 + 0.1 * (sex == "M"), 1, 2)
    out = pd.DataFrame({"id": np.arange(1, n + 1), "time": time, "status": status, "cause": cause, "age": age,
                        "sex": sex, "region": region, "sbo": sbo, "school": rng.integers(1, 31, n),
                        "w": np.round(rng.uniform(0.5, 2.0, n), 3)})
    out.loc[rng.uniform(size=n) < 0.03, "age"] = np.nan
    out.loc[rng.uniform(size=n) < 0.02, "region"] = None
    return out


if __name__ == "__main__":
    episodes(np.random.default_rng(20260520)).to_csv(HERE / "episodes.csv", index=False)
