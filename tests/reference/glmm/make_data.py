"""Seeded datasets for the GLMM reference values (run: python make_data.py; then Rscript glmm.R).

Each dataset mimics yearly absence counts per pupil: a count ``y`` over ``days`` enrolled school
days (the exposure; the models use the offset ``log(days)``), a pupil-level covariate ``x1``
(standard normal), a pupil-level indicator ``x2`` (e.g. low parental education) and a school-level
treatment ``treat`` (half of the schools). Conditional on the school effects,

    log mu = log(days) + b0 + 0.25 x1 + 0.4 x2 - 0.3 treat + u_school  [+ u_vo],

with ``u ~ N(0, sigma^2)`` per school and ``y ~ NB2(mu, theta)`` (Var = mu + mu^2/theta) or
Poisson(mu).

* ``nb_school.csv``: 50 schools of 10-70 pupils, theta = 1.5, sigma^2 = 0.12, about 8 per pupil-year
  (like yearly hours of unexcused absence).
* ``poisson_school.csv``: the same design, Poisson, sigma^2 = 0.12.
* ``nb_crossed.csv``: 80 PO schools feeding 15 VO schools (each PO school sends its pupils to 2-6
  VO schools), 4,000 pupils, NB theta = 1.5, sigma^2_po = 0.08, sigma^2_vo = 0.15.
* ``nb_pupil_years.csv``: pupil-years (1-4 per pupil) of 1,500 pupils from 60 PO schools feeding 12 VO
  schools: random intercepts for pupil (sigma^2 = 0.6: the pupil's absence propensity), PO school (0.08) and
  VO school (0.15), NB theta = 2; three factors, the pupil nested in both schools.
* ``poisson_small_groups.csv``: 80 groups of 2-4 rows, low counts (mean about 1), sigma^2 = 1:
  the Laplace approximation is visibly biased here and adaptive Gauss-Hermite quadrature matters.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
BETA = np.array([0.25, 0.4, -0.3])


def _pupils(rng: np.random.Generator, school: np.ndarray, n_schools: int) -> pd.DataFrame:
    n = len(school)
    treat = (rng.permutation(n_schools) < n_schools // 2).astype(int)
    return pd.DataFrame({"school": school + 1, "x1": np.round(rng.normal(size=n), 4),
                         "x2": rng.binomial(1, 0.3, n), "treat": treat[school],
                         "days": rng.integers(120, 191, n)})


def _nb(rng: np.random.Generator, mu: np.ndarray, theta: float) -> np.ndarray:
    return rng.poisson(rng.gamma(theta, mu / theta))


def school_data(rng: np.random.Generator, family: str, n_schools: int = 50, sigma2: float = 0.12,
                theta: float = 1.5, b0: float = np.log(8 / 160)) -> pd.DataFrame:
    sizes = rng.integers(10, 71, n_schools)
    school = np.repeat(np.arange(n_schools), sizes)
    df = _pupils(rng, school, n_schools)
    u = rng.normal(0, np.sqrt(sigma2), n_schools)
    mu = df["days"] * np.exp(b0 + df[["x1", "x2", "treat"]].to_numpy() @ BETA + u[school])
    df["y"] = _nb(rng, mu, theta) if family == "nb" else rng.poisson(mu)
    return df


def crossed_data(rng: np.random.Generator, n_po: int = 80, n_vo: int = 15, n: int = 4000, s2_po: float = 0.08,
                 s2_vo: float = 0.15, theta: float = 1.5, b0: float = np.log(8 / 160)) -> pd.DataFrame:
    po = rng.integers(0, n_po, n)
    # each PO school feeds 2-6 VO schools ("nearby": consecutive numbers around a home VO school)
    home = rng.integers(0, n_vo, n_po)
    spread = rng.integers(2, 7, n_po)
    vo = (home[po] + rng.integers(0, spread[po])) % n_vo
    df = _pupils(rng, po, n_po).rename(columns={"school": "po"})
    df["vo"] = vo + 1
    u = rng.normal(0, np.sqrt(s2_po), n_po)
    v = rng.normal(0, np.sqrt(s2_vo), n_vo)
    mu = df["days"] * np.exp(b0 + df[["x1", "x2", "treat"]].to_numpy() @ BETA + u[po] + v[vo])
    df["y"] = _nb(rng, mu, theta)
    return df[["po", "vo", "x1", "x2", "treat", "days", "y"]]


def pupil_year_data(rng: np.random.Generator, n_po: int = 60, n_vo: int = 12, n: int = 1500, s2_pupil: float = 0.6,
                    s2_po: float = 0.08, s2_vo: float = 0.15, theta: float = 2.0,
                    b0: float = np.log(8 / 160)) -> pd.DataFrame:
    pupils = crossed_data(rng, n_po=n_po, n_vo=n_vo, n=n)[["po", "vo", "x1", "x2", "treat"]]
    pupils["pupil"] = np.arange(1, n + 1)
    years = rng.integers(1, 5, n)
    df = pupils.loc[pupils.index.repeat(years)].reset_index(drop=True)
    df["year"] = df.groupby("pupil").cumcount() + 1
    df["days"] = rng.integers(120, 191, len(df))
    po, vo, pupil = df["po"].to_numpy() - 1, df["vo"].to_numpy() - 1, df["pupil"].to_numpy() - 1
    u, v = rng.normal(0, np.sqrt(s2_po), n_po), rng.normal(0, np.sqrt(s2_vo), n_vo)
    e = rng.normal(0, np.sqrt(s2_pupil), n)
    mu = df["days"] * np.exp(b0 + df[["x1", "x2", "treat"]].to_numpy() @ BETA + u[po] + v[vo] + e[pupil])
    df["y"] = _nb(rng, mu.to_numpy(), theta)
    return df[["pupil", "year", "po", "vo", "x1", "x2", "treat", "days", "y"]]


def small_groups(rng: np.random.Generator, n_groups: int = 80, sigma2: float = 1.0) -> pd.DataFrame:
    sizes = rng.integers(2, 5, n_groups)
    school = np.repeat(np.arange(n_groups), sizes)
    df = _pupils(rng, school, n_groups)
    u = rng.normal(0, np.sqrt(sigma2), n_groups)
    mu = df["days"] * np.exp(np.log(1 / 160) + df[["x1", "x2", "treat"]].to_numpy() @ BETA + u[school])
    df["y"] = rng.poisson(mu)
    return df


if __name__ == "__main__":
    rng = np.random.default_rng(20261124)
    school_data(rng, "nb").to_csv(HERE / "nb_school.csv", index=False)
    school_data(rng, "poisson").to_csv(HERE / "poisson_school.csv", index=False)
    crossed_data(rng).to_csv(HERE / "nb_crossed.csv", index=False)
    small_groups(rng).to_csv(HERE / "poisson_small_groups.csv", index=False)
    pupil_year_data(rng).to_csv(HERE / "nb_pupil_years.csv", index=False)
