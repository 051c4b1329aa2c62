"""``NegativeBinomialMixed`` with a correlated random intercept and slope beside R ``glmmTMB`` on the same data, in
one run.

Run: ``python benchmarks/bench_glmm_slopes.py [--rows 100000] [--groups 500] [--repeat 3]``

Data: ``rows`` pupil-years in ``groups`` schools (equal sizes); a count of absence over ``days`` enrolled days
(120-200) with ``log mu = log(days) - 3 + 0.3 x1 + 0.25 x2 + b0_g + b1_g x1``, ``x1`` standard normal (prior
absence), ``x2`` 0/1 (30%), ``sd(b0) = 0.5``, ``sd(b1) = 0.3``, ``cor(b0, b1) = 0.4``, and NB2 counts with
``theta = 2``.

The model ``y ~ x1 + x2 + offset(log(days)) + (x1 | g)`` (Laplace), timed as the best of ``repeat`` fits of
``NegativeBinomialMixed`` beside one fit of ``glmmTMB(family = nbinom2)`` (its default optimiser and tolerances)
through an Rscript subprocess, timed inside R (reading the CSV is not counted). Without Rscript the R side is
skipped with a message. The largest differences between the estimates are printed beside the time ratio.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from bench_mixed import run_r
from timing import best_of
from verzuimmodel.mixed import NegativeBinomialMixed

FORMULA = "y ~ x1 + x2 + (x1 | g)"
TRUTH = {"Intercept": -3.0, "x1": 0.3, "x2": 0.25}
SD0, SD1, COR, THETA = 0.5, 0.3, 0.4, 2.0

R_SCRIPT = """
suppressPackageStartupMessages(library(glmmTMB))
d <- read.csv(commandArgs(TRUE)[1]); d$g <- factor(d$g)
caught <- 0
t <- system.time(m <- withCallingHandlers(
  glmmTMB(y ~ x1 + x2 + offset(log(days)) + (x1 | g), d, family = nbinom2),
  warning = function(w) { caught <<- caught + 1; invokeRestart("muffleWarning") }))[["elapsed"]]
v <- VarCorr(m)$cond$g
cat(format(c(t, caught, as.numeric(logLik(m)), attr(v, "stddev"), attr(v, "correlation")[2, 1], sigma(m),
             fixef(m)$cond), digits = 15), "\\n")
"""


def make_data(rows: int, n_groups: int, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), -(-rows // n_groups))[:rows]
    cov = [[SD0 ** 2, COR * SD0 * SD1], [COR * SD0 * SD1, SD1 ** 2]]
    b = rng.multivariate_normal([0.0, 0.0], cov, size=n_groups)
    x1, x2 = rng.normal(size=rows), rng.binomial(1, 0.3, rows)
    days = rng.integers(120, 201, rows)
    mu = np.exp(np.log(days) + TRUTH["Intercept"] + TRUTH["x1"] * x1 + TRUTH["x2"] * x2 + b[g, 0] + b[g, 1] * x1)
    y = rng.poisson(rng.gamma(THETA, mu / THETA))
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "days": days, "g": g})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    df = make_data(args.rows, args.groups)
    print(f"== NegativeBinomialMixed {FORMULA} (exposure days) vs glmmTMB(family = nbinom2) ==\n"
          f"{args.rows:,} rows, {args.groups:,} groups, mean count {df['y'].mean():.2f}")
    t_ours, m = best_of(lambda: NegativeBinomialMixed().fit(df, FORMULA, exposure="days"), args.repeat)
    vc = m.varcorr_
    print(f"NegativeBinomialMixed: {t_ours:.2f} s (best of {args.repeat}); converged {m.converged_}")
    print(f"  SDs {vc['sdcor'].iloc[0]:.4f}, {vc['sdcor'].iloc[1]:.4f} (true {SD0}, {SD1}), correlation "
          f"{vc['sdcor'].iloc[2]:.4f} (true {COR}), theta {m.dispersion_:.4f} (true {THETA}); log-likelihood "
          f"{m.log_likelihood_:.4f}")
    vals = run_r("glmmTMB", R_SCRIPT, df)
    if vals is None:
        return
    t_r, n_warn, ll_r = vals[:3]
    sd_r, cor_r, theta_r = np.asarray(vals[3:5]), vals[5], vals[6]
    beta_r = np.asarray(vals[7:])
    print(f"R glmmTMB: {t_r:.2f} s -> NegativeBinomialMixed is {t_r / t_ours:.1f}x faster (time ratio glmmTMB / "
          f"verzuimmodel); glmmTMB warnings: {int(n_warn)}")
    print(f"  max |fixed-effect difference| {np.max(np.abs(beta_r - m.params_.to_numpy())):.1e}; max |SD difference| "
          f"{np.max(np.abs(sd_r - vc['sdcor'].iloc[:2].to_numpy())):.1e}; correlation difference "
          f"{abs(cor_r - vc['sdcor'].iloc[2]):.1e}; theta: glmmTMB {theta_r:.6f}, NegativeBinomialMixed "
          f"{m.dispersion_:.6f}; log-likelihood: glmmTMB {ll_r:.4f}, NegativeBinomialMixed {m.log_likelihood_:.4f}")


if __name__ == "__main__":
    main()
