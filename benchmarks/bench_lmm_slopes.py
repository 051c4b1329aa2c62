"""``LinearMixed`` with a correlated random intercept and slope beside R ``lme4::lmer`` on the same data, in one run.

Run: ``python benchmarks/bench_lmm_slopes.py [--rows 200000] [--groups 2000] [--repeat 3]``

Data: ``rows`` observations in ``groups`` groups (pupils, schools) of equal size;
``y = 1 + 0.5 x1 - 0.3 x2 + b0_g + b1_g x1 + e`` with ``x1``, ``x2`` standard normal,
``sd(b0) = 0.6``, ``sd(b1) = 0.3``, ``cor(b0, b1) = 0.3``, ``sd(e) = 1``.

The model ``y ~ x1 + x2 + (x1 | g)`` by REML, timed two ways beside R (an Rscript subprocess on the same data,
timed inside R, reading the CSV not counted; lme4's default optimiser and tolerances):

* ``LinearMixed(ddf=None)`` (estimates only) beside ``lme4::lmer``;
* ``LinearMixed()`` (with lmerTest's Satterthwaite df) beside ``lmerTest::lmer`` and ``summary()`` (its df).

verzuimmodel is the best of ``repeat`` fits, R one fit each. The target: at least as fast as lme4. Without
Rscript the R side is skipped with a message. The largest differences between the estimates are printed.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from bench_mixed import run_r
from timing import best_of
from verzuimmodel.mixed import LinearMixed

FORMULA = "y ~ x1 + x2 + (x1 | g)"
TRUTH = {"Intercept": 1.0, "x1": 0.5, "x2": -0.3}
SD0, SD1, COR = 0.6, 0.3, 0.3

R_SCRIPT = """
suppressPackageStartupMessages(library(lmerTest))
d <- read.csv(commandArgs(TRUE)[1]); d$g <- factor(d$g)
f <- y ~ x1 + x2 + (x1 | g)
t1 <- system.time(m1 <- lme4::lmer(f, d))[["elapsed"]]
t2 <- system.time({m2 <- lmerTest::lmer(f, d); s <- coef(summary(m2))})[["elapsed"]]
cat(format(c(t1, t2, as.numeric(logLik(m1)), getME(m1, "theta"), sigma(m1), fixef(m1), s[, "df"]),
           digits = 15), "\\n")
"""


def make_data(rows: int, n_groups: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), -(-rows // n_groups))[:rows]
    cov = [[SD0 ** 2, COR * SD0 * SD1], [COR * SD0 * SD1, SD1 ** 2]]
    b = rng.multivariate_normal([0.0, 0.0], cov, size=n_groups)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    y = (TRUTH["Intercept"] + TRUTH["x1"] * x1 + TRUTH["x2"] * x2 + b[g, 0] + b[g, 1] * x1
         + rng.normal(size=rows))
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": g})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--groups", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    df = make_data(args.rows, args.groups)
    print(f"== LinearMixed {FORMULA} (REML) vs lme4::lmer ==\n{args.rows:,} rows, {args.groups:,} groups")
    t_est, m = best_of(lambda: LinearMixed(ddf=None).fit(df, FORMULA), args.repeat)
    t_df, m_df = best_of(lambda: LinearMixed().fit(df, FORMULA), args.repeat)
    vc = m.varcorr_
    print(f"LinearMixed, estimates only: {t_est:.2f} s; with Satterthwaite df: {t_df:.2f} s (best of {args.repeat}); "
          f"converged {m.converged_}")
    print(f"  SDs {vc['sdcor'].iloc[0]:.4f}, {vc['sdcor'].iloc[1]:.4f} (true {SD0}, {SD1}), correlation "
          f"{vc['sdcor'].iloc[2]:.4f} (true {COR}), residual SD {m.sigma_:.4f} (true 1); REML criterion "
          f"{m.deviance_:.4f}")
    vals = run_r("lme4", R_SCRIPT, df)
    if vals is None:
        return
    p, k = len(m.params_), len(m.theta_)
    t_lme4, t_lt, ll = vals[:3]
    theta_r, sigma_r = np.asarray(vals[3:3 + k]), vals[3 + k]
    beta_r, df_r = np.asarray(vals[4 + k:4 + k + p]), np.asarray(vals[4 + k + p:])
    r1, r2 = t_lme4 / t_est, t_lt / t_df
    print(f"R lme4::lmer: {t_lme4:.2f} s -> LinearMixed (estimates) is {r1:.1f}x faster (target >= 1x: "
          f"{'met' if r1 >= 1 else 'NOT met'})")
    print(f"R lmerTest::lmer + summary (Satterthwaite df): {t_lt:.2f} s -> LinearMixed (with df) is {r2:.1f}x faster")
    print(f"  max |fixed-effect difference| {np.max(np.abs(beta_r - m.params_.to_numpy())):.1e}; "
          f"max |theta difference| {np.max(np.abs(theta_r - m.theta_.to_numpy())):.1e}; residual SD: lme4 {sigma_r:.6f}, LinearMixed "
          f"{m.sigma_:.6f}; REML logLik: lme4 {ll:.4f}, LinearMixed {m.log_likelihood_:.4f}; max relative df "
          f"difference {np.max(np.abs(df_r / m_df.df_.to_numpy() - 1)):.1e}")


if __name__ == "__main__":
    main()
