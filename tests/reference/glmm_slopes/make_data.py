"""Seeded dataset for the reference values of the count and logistic mixed models with random slopes.

Run from this folder: ``python make_data.py && Rscript glmm_slopes.R`` (the R script also exports the textbook
data it uses: ``MASS::epil``, ``glmmTMB::Owls``, ``lme4::cbpp`` and ``mlmRev::Contraception``).

``pupil_years.csv``: 2,000 pupil-years (rows) of pupils in 40 PO schools (``school``, 41-59 rows each), each
pupil-year also in one of 8 VO schools (``vo``, crossed with the PO schools), with a count of absence
(unexcused hours) over an exposure of ``days`` enrolled days (120-200):

    log mu = log(days) - 3 + 0.3 x1 + 0.25 x2 + 0.1 x3 - 0.3 treat + b0_s + b1_s x1 + b3_s x3 + v_vo,

``x1`` (prior absence, standardised) and ``x3`` (age in the year, centred) standard normal, ``x2`` 0/1 (low
parental education, 30%), ``treat`` at school level (half of the schools); per school (b0, b1, b3) normal with
SDs 0.5, 0.3, 0.2 and correlations cor(b0, b1) = 0.4, cor(b0, b3) = -0.3, cor(b1, b3) = 0.2; v_vo ~ N(0, 0.25^2).
Two outcomes of the same means: ``y_nb`` negative binomial (NB2, theta = 3) and ``y_pois`` Poisson.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SD = np.array([0.5, 0.3, 0.2])
COR = np.array([[1.0, 0.4, -0.3], [0.4, 1.0, 0.2], [-0.3, 0.2, 1.0]])
BETA = {"Intercept": -3.0, "x1": 0.3, "x2": 0.25, "x3": 0.1, "treat": -0.3}
THETA = 3.0


def pupil_years(rng: np.random.Generator, n_schools: int = 40, n_vo: int = 8, n: int = 2000) -> pd.DataFrame:
    sizes = rng.multinomial(n - 30 * n_schools, np.ones(n_schools) / n_schools) + 30
    sizes = np.minimum(sizes, 70)
    sizes[-1] += n - sizes.sum()
    school = np.repeat(np.arange(n_schools), sizes)
    vo = rng.integers(0, n_vo, n)
    treat = rng.permutation(np.arange(n_schools) % 2)[school]
    x1, x3 = np.round(rng.normal(size=n), 4), np.round(rng.normal(size=n), 4)
    x2 = rng.binomial(1, 0.3, n)
    days = rng.integers(120, 201, n)
    b = rng.multivariate_normal(np.zeros(3), COR * np.outer(SD, SD), size=n_schools)
    eta = (np.log(days) + BETA["Intercept"] + BETA["x1"] * x1 + BETA["x2"] * x2 + BETA["x3"] * x3
           + BETA["treat"] * treat + b[school, 0] + b[school, 1] * x1 + b[school, 2] * x3
           + rng.normal(0, 0.25, n_vo)[vo])
    mu = np.exp(eta)
    y_nb = rng.poisson(rng.gamma(THETA, mu / THETA))
    y_pois = rng.poisson(mu)
    return pd.DataFrame({"school": school + 1, "vo": vo + 1, "x1": x1, "x2": x2, "x3": x3, "treat": treat,
                         "days": days, "y_nb": y_nb, "y_pois": y_pois})


if __name__ == "__main__":
    pupil_years(np.random.default_rng(20261215)).to_csv(HERE / "pupil_years.csv", index=False)
