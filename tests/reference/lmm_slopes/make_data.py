"""Seeded datasets for the random-slope LinearMixed reference values.

Run from this folder: ``python make_data.py && Rscript lmm_slopes.R`` (the R script also exports lme4's
``sleepstudy`` to sleepstudy.csv). lmm_slopes.R also reads ../lmm/crossed.csv (the intervals of a model with
random intercepts only) and the data of ../glmm and ../binomial_mixed (the likelihood-ratio tests of the GLMMs).
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def crossed_slopes(rng: np.random.Generator, n_po: int = 60, n_vo: int = 12) -> pd.DataFrame:
    """60 PO schools feeding 12 VO schools (each PO school sends its pupils to 2-4 VO schools: crossed), about
    3,000 pupils, with a random intercept and a random slope of x1 per PO school (correlated) and a VO-school
    intercept:

    y = 2 + 0.3 x1 + 0.2 x2 - 0.25 treat + b0_po + b1_po x1 + b_vo + e,
    sd(b0_po) = 0.5, sd(b1_po) = 0.25, cor(b0_po, b1_po) = 0.4, sd(b_vo) = 0.3, sd(e) = 1 / sqrt(w);
    treat at PO-school level; precision weights w in [0.5, 2] (used by one reference fit only, the others
    unweighted)."""
    sizes = rng.integers(25, 76, n_po)
    po = np.repeat(np.arange(n_po), sizes)
    n = len(po)
    k = rng.integers(2, 5, n_po)
    feeds = [rng.choice(n_vo, size=kk, replace=False) for kk in k]
    share = [rng.dirichlet(np.ones(kk)) for kk in k]
    vo = np.empty(n, dtype=int)
    start = np.concatenate([[0], np.cumsum(sizes)])
    for j in range(n_po):                                     # small reference data: clarity over speed
        vo[start[j]:start[j + 1]] = rng.choice(feeds[j], size=sizes[j], p=share[j])
    treat = rng.permutation(np.arange(n_po) % 2)[po]
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    cov = np.array([[0.5 ** 2, 0.4 * 0.5 * 0.25], [0.4 * 0.5 * 0.25, 0.25 ** 2]])
    b = rng.multivariate_normal(np.zeros(2), cov, size=n_po)
    w = np.round(rng.uniform(0.5, 2.0, n), 3)
    y = (2 + 0.3 * x1 + 0.2 * x2 - 0.25 * treat + b[po, 0] + b[po, 1] * x1 + rng.normal(0, 0.3, n_vo)[vo]
         + rng.normal(size=n))
    return pd.DataFrame({"y": np.round(y, 6), "x1": np.round(x1, 6), "x2": np.round(x2, 6), "treat": treat,
                         "po": [f"po{j:02d}" for j in po], "vo": [f"vo{v:02d}" for v in vo], "w": w})


def singular_slopes(rng: np.random.Generator, n_groups: int = 30, size: int = 8) -> pd.DataFrame:
    """A random intercept (sd 0.7) but no random slope, and the groups' own slopes of the noise on x shrunk
    towards the common one (under-dispersed), so the slope variance of ``(x | g)`` is estimated at 0: a
    boundary (singular) fit."""
    g = np.repeat(np.arange(n_groups), size)
    x = np.tile(np.linspace(-1.5, 1.5, size), n_groups) + rng.normal(0, 0.1, len(g))
    e = rng.normal(size=len(g))
    xc = x - (np.bincount(g, weights=x) / size)[g]
    slope = np.bincount(g, weights=xc * e) / np.bincount(g, weights=xc * xc)
    e = e - 0.9 * (slope - slope.mean())[g] * xc
    y = 1 + 0.5 * x + rng.normal(0, 0.7, n_groups)[g] + e
    return pd.DataFrame({"y": np.round(y, 6), "x": np.round(x, 6), "g": [f"g{j:02d}" for j in g]})


if __name__ == "__main__":
    rng = np.random.default_rng(20260421)
    crossed_slopes(rng).to_csv(HERE / "crossed_slopes.csv", index=False)
    singular_slopes(rng).to_csv(HERE / "singular_slopes.csv", index=False)
