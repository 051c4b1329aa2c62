"""Seeded datasets for the BinomialMixed reference values (run: python make_data.py; then Rscript binomial_mixed.R,
which also exports ``lme4::cbpp`` to ``cbpp.csv``).

* ``binary_crossed.csv``: a 0/1 outcome per pupil (e.g. long-term absence in the first VO year) of 3,000
  pupils in 150 PO classes nested in 50 PO schools (3 classes each; class labels unique across schools),
  the PO schools crossed with 12 VO schools (each PO school sends its pupils to 2-5 nearby VO schools).
  Conditional on the random intercepts,

      logit p = -1.2 + 0.5 x1 + 0.6 x2 - 0.4 treat + u_po + u_class + u_vo,

  ``x1`` standard normal (prior absence, standardised), ``x2`` 0/1 (low parental education, 30%),
  ``treat`` at PO-school level (half of the schools), u_po ~ N(0, 0.3), u_class ~ N(0, 0.2),
  u_vo ~ N(0, 0.25): two crossed factors (PO x VO school) and a nested one (class in PO school).
* ``binary_small_groups.csv``: 120 groups of 2-5 pupils, logit p = -0.5 + 0.5 x1 + 0.6 x2 - 0.4 treat + u,
  u ~ N(0, 1.5): the Laplace approximation is visibly biased here and adaptive quadrature matters.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
BETA = np.array([0.5, 0.6, -0.4])


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def crossed_data(rng: np.random.Generator, n_po: int = 50, classes: int = 3, n_vo: int = 12, n: int = 3000,
                 s2_po: float = 0.3, s2_class: float = 0.2, s2_vo: float = 0.25, b0: float = -1.2) -> pd.DataFrame:
    klas = rng.integers(0, n_po * classes, n)          # class k belongs to PO school k // classes
    po = klas // classes
    home = rng.integers(0, n_vo, n_po)
    spread = rng.integers(2, 6, n_po)
    vo = (home[po] + rng.integers(0, spread[po])) % n_vo
    treat = (rng.permutation(n_po) < n_po // 2).astype(int)[po]
    x1 = np.round(rng.normal(size=n), 4)
    x2 = rng.binomial(1, 0.3, n)
    eta = (b0 + np.column_stack([x1, x2, treat]) @ BETA + rng.normal(0, np.sqrt(s2_po), n_po)[po]
           + rng.normal(0, np.sqrt(s2_class), n_po * classes)[klas] + rng.normal(0, np.sqrt(s2_vo), n_vo)[vo])
    y = rng.binomial(1, _expit(eta))
    return pd.DataFrame({"po": po + 1, "klas": klas + 1, "vo": vo + 1, "x1": x1, "x2": x2, "treat": treat, "y": y})


def small_groups(rng: np.random.Generator, n_groups: int = 120, sigma2: float = 1.5, b0: float = -0.5) -> pd.DataFrame:
    sizes = rng.integers(2, 6, n_groups)
    school = np.repeat(np.arange(n_groups), sizes)
    n = len(school)
    treat = (rng.permutation(n_groups) < n_groups // 2).astype(int)[school]
    x1 = np.round(rng.normal(size=n), 4)
    x2 = rng.binomial(1, 0.3, n)
    eta = b0 + np.column_stack([x1, x2, treat]) @ BETA + rng.normal(0, np.sqrt(sigma2), n_groups)[school]
    y = rng.binomial(1, _expit(eta))
    return pd.DataFrame({"school": school + 1, "x1": x1, "x2": x2, "treat": treat, "y": y})


if __name__ == "__main__":
    rng = np.random.default_rng(20261201)
    crossed_data(rng).to_csv(HERE / "binary_crossed.csv", index=False)
    small_groups(rng).to_csv(HERE / "binary_small_groups.csv", index=False)
