"""Seeded dataset for the reference values of the NB mixed model with more than 8,000 levels beside its largest
factor (run: python make_data.py; then Rscript glmm_sparse.R). tests/test_glmm_sparse.py regenerates the same
data with :func:`pupil_years` and checks it against the fingerprint stored with the reference values.

Pupil-years of 24,000 pupils (1-3 years each) from 6,000 PO schools feeding 2,500 VO schools: each PO school sends
its pupils to 2-6 "nearby" VO schools (consecutive numbers around a home VO school), so the PO x VO
cross-tabulation is sparse, as in the national cohort. Per pupil a covariate ``x1`` (standard normal, 4
decimals) and an indicator ``x2`` (probability 0.3); ``treat`` is a PO-school indicator (half of the schools);
``days`` enrolled (120-190) is the exposure. Conditional on the random intercepts

    log mu = log(days) + log(8/160) + 0.25 x1 + 0.4 x2 - 0.3 treat + e_pupil + u_po + v_vo,

e ~ N(0, 0.5), u ~ N(0, 0.1), v ~ N(0, 0.15), y ~ NB2(mu, theta = 2) (Var = mu + mu^2 / theta). The factors
beside the largest (pupil, 24,000 levels) have 6,000 + 2,500 = 8,500 levels together.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SEED = 20270117
BETA = np.array([0.25, 0.4, -0.3])


def pupil_years(seed: int = SEED, n_po: int = 6000, n_vo: int = 2500, n_pupils: int = 24000,
                s2_pupil: float = 0.5, s2_po: float = 0.1, s2_vo: float = 0.15, theta: float = 2.0) -> pd.DataFrame:
    """The dataset (see the module docstring); the same for the same arguments."""
    rng = np.random.default_rng(seed)
    po = np.sort(rng.integers(0, n_po, n_pupils))
    home = rng.integers(0, n_vo, n_po)
    spread = rng.integers(2, 7, n_po)
    vo = (home[po] + rng.integers(0, spread[po])) % n_vo
    x1 = np.round(rng.normal(size=n_pupils), 4)
    x2 = rng.binomial(1, 0.3, n_pupils)
    treat = (rng.permutation(n_po) < n_po // 2).astype(np.int64)[po]
    years = rng.integers(1, 4, n_pupils)
    pupil = np.repeat(np.arange(n_pupils), years)
    days = rng.integers(120, 191, len(pupil))
    e = rng.normal(0.0, np.sqrt(s2_pupil), n_pupils)
    u = rng.normal(0.0, np.sqrt(s2_po), n_po)
    v = rng.normal(0.0, np.sqrt(s2_vo), n_vo)
    eta = (np.log(days) + np.log(8 / 160) + np.column_stack([x1, x2, treat])[pupil] @ BETA
           + e[pupil] + u[po[pupil]] + v[vo[pupil]])
    mu = np.exp(eta)
    y = rng.poisson(rng.gamma(theta, mu / theta))
    return pd.DataFrame({"pupil": pupil + 1, "po": po[pupil] + 1, "vo": vo[pupil] + 1, "x1": x1[pupil],
                         "x2": x2[pupil], "treat": treat[pupil], "days": days, "y": y})


def fingerprint(df: pd.DataFrame) -> dict:
    """What identifies the dataset (stored with the reference values): its size, the levels of each factor
    and sums of its columns."""
    return {"rows": int(len(df)), "levels": {k: int(df[k].nunique()) for k in ("pupil", "po", "vo")},
            "sum_y": int(df["y"].sum()), "sum_days": int(df["days"].sum()),
            "sum_x1": round(float(df["x1"].sum()), 4), "sum_vo": int(df["vo"].sum())}


if __name__ == "__main__":
    data = pupil_years()
    data.to_csv(HERE / "pupil_years.csv", index=False)
    print(fingerprint(data))
