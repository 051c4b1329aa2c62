"""Seeded dataset for the Kaplan-Meier and Aalen-Johansen reference values.

Run from this folder: ``python make_data.py`` then ``Rscript nonparametric.R``.

One table of 320 episodes in two groups (``a``, ``b``) with durations in whole days (many ties,
censorings tied with events), three competing causes (``cause`` 0 = censored, 1..3), a late-entry
time ``entry`` (0 for most rows, later for about 40%) and non-integer case weights ``w``. A second
small table (``edge.csv``) ends with every row at risk having the event, so that the survival curve
reaches 0.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def episodes(rng: np.random.Generator, n: int = 320) -> pd.DataFrame:
    group = np.repeat(["a", "b"], n // 2)
    b = group == "b"
    # latent durations: Weibull with shape 0.8 (falling hazard), longer in group b
    t = np.ceil(rng.weibull(0.8, n) * np.where(b, 60.0, 40.0))
    probs = np.where(b[:, None], [0.5, 0.3, 0.2], [0.6, 0.15, 0.25])
    cause = 1 + (rng.uniform(size=(n, 1)) > np.cumsum(probs, axis=1)).sum(axis=1)
    c = np.ceil(rng.uniform(5, 150, n))
    time = np.minimum(t, c)
    status = (t <= c).astype(int)
    late = rng.uniform(size=n) < 0.4
    entry = np.where(late, np.floor(rng.uniform(0, 1, n) * time), 0.0)
    return pd.DataFrame({"id": np.arange(1, n + 1), "group": group, "entry": entry, "time": time,
                         "status": status, "cause": status * cause, "w": np.round(rng.uniform(0.5, 2.0, n), 3)})


def edge() -> pd.DataFrame:
    """Twelve rows where everyone still at risk at the last event time has the event (S drops to 0),
    with tied events and censorings, late entry, and one row entering after an event of its group."""
    return pd.DataFrame({
        "id": np.arange(1, 13),
        "entry": [0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0],
        "time": [1, 2, 2, 2, 3, 3, 4, 5, 5, 6, 6, 6],
        "status": [1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1],
        "cause": [1, 2, 0, 1, 0, 2, 1, 0, 2, 1, 2, 2],
        "w": [1.0, 0.5, 1.5, 2.0, 1.0, 0.75, 1.25, 1.0, 0.5, 1.0, 2.0, 1.5],
    })


if __name__ == "__main__":
    episodes(np.random.default_rng(20260415)).to_csv(HERE / "episodes.csv", index=False)
    edge().to_csv(HERE / "edge.csv", index=False)
