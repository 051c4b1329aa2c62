"""Seeded datasets for the survival-curve summary reference values.

Run from this folder: ``python make_data.py`` then ``Rscript curve_summaries.R`` (which also writes
R's own ``lung``, ``aml`` and ``veteran`` datasets to CSV, and the frozen JSON outputs).

- ``episodes.csv``: 300 episodes in three groups (``a``, ``b``, ``c``) with durations in whole days
  (many ties, censorings tied with events), late entry for about 30% of the rows and non-integer
  case weights.
- ``flat.csv``: small curves built to sit exactly on a quantile over an interval (R's midpoint
  rule), to stay flat at 0.5 up to the end (where ``quantile.survfit`` and ``print.survfit`` differ),
  never to reach 0.5, and to reach 0.
- ``cox.csv``: 400 rows for ``survfit.coxph``: durations in whole weeks, a continuous, a binary and
  an uncentred (age-like) covariate, two strata, non-integer weights and 20 clusters.
- ``cox_start_stop.csv``: episodes split at an intervention start (time-varying 0 -> 1), late entry.
- ``cox_newdata.csv``: the covariate profiles whose curves are compared.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def episodes(rng: np.random.Generator, n: int = 300) -> pd.DataFrame:
    group = np.repeat(["a", "b", "c"], n // 3)
    scale = np.select([group == "a", group == "b"], [35.0, 60.0], 90.0)
    t = np.ceil(rng.weibull(0.9, n) * scale)
    c = np.ceil(rng.uniform(10, 160, n))
    time = np.minimum(t, c)
    late = rng.uniform(size=n) < 0.3
    entry = np.where(late, np.floor(rng.uniform(0, 1, n) * time), 0.0)
    return pd.DataFrame({"id": np.arange(1, n + 1), "group": group, "entry": entry, "time": time,
                         "status": (t <= c).astype(int), "w": np.round(rng.uniform(0.5, 2.0, n), 3)})


def flat() -> pd.DataFrame:
    """Hand-made curves (no randomness).

    - ``mid``: eight events at 1..8, so 1 - S = k/8: the 0.25, 0.5 and 0.75 quantiles lie on flat
      stretches (midpoints 2.5, 4.5, 6.5).
    - ``midcens``: events at 1, 2, 3, a censoring at 4, events at 5, 6: S is 0.5 on [3, 5).
    - ``end``: events at 1, 2, censorings at 3, 4: S stays 0.5 to the end of the curve.
    - ``never``: one event in six rows: S never reaches 0.5.
    - ``zero``: events at 1, 2 and two at 3: S reaches 0 (the log interval is missing there).
    - ``band``: eleven rows whose upper log band rises again at the end (a small risk set): R takes
      the time of the smallest value of 1 - upper that reaches p (13 for p = 0.1), not the first
      time it does (8).
    """
    parts = {
        "mid": ([1, 2, 3, 4, 5, 6, 7, 8], [1] * 8),
        "midcens": ([1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 1, 1]),
        "end": ([1, 2, 3, 4], [1, 1, 0, 0]),
        "never": ([1, 2, 3, 4, 5, 6], [0, 1, 0, 0, 0, 0]),
        "zero": ([1, 2, 3, 3], [1, 1, 1, 1]),
        "band": ([1, 4, 7, 8, 8, 8, 8, 9, 11, 13, 13], [1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 1]),
    }
    return pd.DataFrame([{"group": g, "time": float(t), "status": s}
                         for g, (ts, ss) in parts.items() for t, s in zip(ts, ss)])


def cox(rng: np.random.Generator, n: int = 400) -> pd.DataFrame:
    x1 = rng.normal(size=n)
    x2 = rng.integers(0, 2, n)
    x3 = rng.uniform(20, 60, n)                 # uncentred, as age: tests the centring of the variance
    st = np.where(rng.uniform(size=n) < 0.45, "noord", "zuid")
    rate = 0.04 * np.exp(0.5 * x1 - 0.4 * x2 + 0.02 * (x3 - 40) + 0.3 * (st == "zuid"))
    t = np.ceil(rng.exponential(1 / rate) / 7)
    c = np.ceil(rng.uniform(0, 50, n))
    return pd.DataFrame({"time": np.minimum(t, c), "status": (t <= c).astype(int), "x1": x1, "x2": x2, "x3": x3,
                         "st": st, "w": np.round(rng.uniform(0.5, 2.0, n), 3), "cl": rng.integers(1, 21, n)})


def start_stop(rng: np.random.Generator, n: int = 250) -> pd.DataFrame:
    """One or two rows per episode: (entry, s] untreated and (s, end] treated when the episode lasts past s."""
    z = rng.normal(size=n)
    entry = rng.integers(0, 5, n).astype(float)
    s = entry + rng.integers(1, 30, n)
    t = entry + np.ceil(rng.exponential(20 * np.exp(-0.3 * z)))
    treated_t = np.where(t > s, s + np.ceil(rng.exponential(12 * np.exp(-0.3 * z))), t)
    end = np.minimum(treated_t, entry + 60)
    status = (treated_t <= entry + 60).astype(int)
    split = end > s
    first = pd.DataFrame({"id": np.arange(1, n + 1), "start": entry, "stop": np.where(split, s, end),
                          "status": np.where(split, 0, status), "tv": 0, "z": z})
    second = pd.DataFrame({"id": np.arange(1, n + 1), "start": s, "stop": end, "status": status, "tv": 1,
                           "z": z})[split]
    return pd.concat([first, second]).sort_values(["id", "start"], kind="stable").reset_index(drop=True)


def newdata() -> pd.DataFrame:
    return pd.DataFrame({"x1": [0.0, 1.5, -1.0, 0.3], "x2": [0, 1, 1, 0], "x3": [40.0, 25.0, 58.0, 33.0],
                         "st": ["noord", "zuid", "noord", "zuid"], "tv": [0, 1, 1, 0], "z": [0.0, 1.0, -0.5, 2.0]})


if __name__ == "__main__":
    rng = np.random.default_rng(20260512)
    episodes(rng).to_csv(HERE / "episodes.csv", index=False)
    flat().to_csv(HERE / "flat.csv", index=False)
    cox(rng).to_csv(HERE / "cox.csv", index=False)
    start_stop(rng).to_csv(HERE / "cox_start_stop.csv", index=False)
    newdata().to_csv(HERE / "cox_newdata.csv", index=False)
