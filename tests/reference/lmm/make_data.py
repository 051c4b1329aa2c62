"""Seeded datasets for the LinearMixed reference values (run: python make_data.py; then Rscript lmm.R)."""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def one_factor(rng: np.random.Generator, n_schools: int = 40) -> pd.DataFrame:
    """40 schools of unbalanced size (4 to 80 pupils), two pupil covariates, a school-level treatment,
    and precision weights. y = 1 + 0.5 x1 - 0.3 x2 + 0.4 treat + b_school + e, sd(b) = 0.5, sd(e) = 1."""
    sizes = rng.integers(4, 81, n_schools)
    school = np.repeat(np.arange(1, n_schools + 1), sizes)
    treat_s = rng.permutation(np.arange(n_schools) % 2)
    b = rng.normal(0, 0.5, n_schools)
    n = len(school)
    x1 = rng.normal(size=n)
    x2 = rng.integers(0, 2, n)
    treat = treat_s[school - 1]
    w = np.round(rng.uniform(0.5, 2.0, n), 3)
    y = 1 + 0.5 * x1 - 0.3 * x2 + 0.4 * treat + b[school - 1] + rng.normal(size=n) / np.sqrt(w)
    return pd.DataFrame({"y": np.round(y, 6), "x1": np.round(x1, 6), "x2": x2, "treat": treat,
                         "school": [f"s{s:02d}" for s in school], "w": w})


def crossed(rng: np.random.Generator, n_po: int = 60, n_vo: int = 12) -> pd.DataFrame:
    """60 PO schools feeding 12 VO schools: each PO school sends its pupils to 2-4 VO schools (crossed,
    not nested); about 3,000 pupils. y = 2 + 0.3 x1 + 0.2 x2 - 0.25 treat + b_po + b_vo + e with
    sd(b_po) = 0.4, sd(b_vo) = 0.3, sd(e) = 1; treat at PO-school level."""
    sizes = rng.integers(25, 76, n_po)
    po = np.repeat(np.arange(n_po), sizes)
    n = len(po)
    k = rng.integers(2, 5, n_po)                               # number of VO schools per PO school
    feeds = [rng.choice(n_vo, size=kk, replace=False) for kk in k]
    share = [rng.dirichlet(np.ones(kk)) for kk in k]
    vo = np.empty(n, dtype=int)
    start = np.concatenate([[0], np.cumsum(sizes)])
    for j in range(n_po):                                     # small reference data: clarity over speed
        vo[start[j]:start[j + 1]] = rng.choice(feeds[j], size=sizes[j], p=share[j])
    treat = rng.permutation(np.arange(n_po) % 2)[po]
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    y = (2 + 0.3 * x1 + 0.2 * x2 - 0.25 * treat + rng.normal(0, 0.4, n_po)[po] + rng.normal(0, 0.3, n_vo)[vo]
         + rng.normal(size=n))
    return pd.DataFrame({"y": np.round(y, 6), "x1": np.round(x1, 6), "x2": np.round(x2, 6), "treat": treat,
                         "po": [f"po{j:02d}" for j in po], "vo": [f"vo{v:02d}" for v in vo]})


def boundary(rng: np.random.Generator, n_groups: int = 20, size: int = 12) -> pd.DataFrame:
    """No group effect, and the group means of the noise shrunk towards 0 (under-dispersed between
    groups), so the REML and ML estimates of the group variance are 0 (a boundary fit)."""
    g = np.repeat(np.arange(n_groups), size)
    e = rng.normal(size=len(g))
    means = np.bincount(g, weights=e) / size
    x1 = rng.normal(size=len(g))
    y = 0.5 + 0.3 * x1 + e - 0.8 * means[g]
    return pd.DataFrame({"y": np.round(y, 6), "x1": np.round(x1, 6), "g": g + 1})


def cluster_trial(rng: np.random.Generator, n_clusters: int = 20, size: int = 25) -> pd.DataFrame:
    """A two-arm cluster trial (ICC 0.1, effect 0.3) whose REML criterion has its minimum inside, while
    a gradient method on theta can stop at theta = 0 (the slope in theta is 0 there by symmetry):
    the first replicate of the recovery simulation in tests/test_lmm.py."""
    school = np.repeat(np.arange(n_clusters), size)
    treat = rng.permutation(np.arange(n_clusters) % 2)[school]
    y = 0.3 * treat + rng.normal(0, np.sqrt(0.1), n_clusters)[school] + rng.normal(0, np.sqrt(0.9), len(school))
    return pd.DataFrame({"y": y, "treat": treat, "school": school, "x": rng.normal(size=len(school))})


if __name__ == "__main__":
    rng = np.random.default_rng(20260315)
    one_factor(rng).to_csv(HERE / "one_factor.csv", index=False)
    crossed(rng).to_csv(HERE / "crossed.csv", index=False)
    boundary(rng).to_csv(HERE / "boundary.csv", index=False)
    trial_rng = np.random.default_rng(np.random.SeedSequence(12).spawn(1)[0])
    cluster_trial(trial_rng).to_csv(HERE / "cluster_trial.csv", index=False, float_format="%.10g")
