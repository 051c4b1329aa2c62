"""``BinomialMixed`` beside R ``lme4::glmer`` on the same data, in one run.

Run: ``python benchmarks/bench_binomial_mixed.py [--rows 100000] [--schools 500] [--repeat 3] [--agq]``

Data: ``rows`` pupils in ``schools`` schools; a 0/1 outcome (e.g. long-term absence) with
``logit p = -1.5 + 0.4 x1 + 0.5 x2 - 0.2 x3 - 0.3 treat + u_school``, ``x1``, ``x3`` standard normal,
``x2`` 0/1 (30%), ``treat`` at school level (half of the schools), ``u ~ N(0, 0.4)``.

``BinomialMixed`` (Laplace) is timed as the best of ``repeat`` fits; ``glmer(y ~ x1 + x2 + x3 + treat +
(1 | school), family = binomial)`` (Laplace, lme4's default optimisers and tolerances) once, through an
Rscript subprocess, timed inside R (reading the CSV is not counted). The target: ``BinomialMixed`` at least
10x faster than glmer. ``--agq`` adds both with 10 quadrature points (``nAGQ = 10``). Without Rscript
the R side is skipped with a message.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from bench_mixed import run_r
from timing import best_of
from verzuimmodel.mixed import BinomialMixed

FORMULA = "y ~ x1 + x2 + x3 + treat"
TRUTH = {"Intercept": -1.5, "x1": 0.4, "x2": 0.5, "x3": -0.2, "treat": -0.3}
TRUE_VAR = 0.4

R_SCRIPT = """
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(TRUE)
d <- read.csv(args[1]); d$school <- factor(d$school)
caught <- 0
t <- system.time(m <- withCallingHandlers(
  glmer(y ~ x1 + x2 + x3 + treat + (1 | school), d, family = binomial, nAGQ = as.integer(args[2])),
  warning = function(w) { caught <<- caught + 1; invokeRestart("muffleWarning") }))[["elapsed"]]
cat(format(c(t, caught, as.numeric(logLik(m)), VarCorr(m)$school[1, 1], fixef(m)), digits = 15), "\\n")
"""


def make_data(rows: int, n_schools: int, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    school = rng.integers(0, n_schools, rows)
    treat = rng.permutation(np.arange(n_schools) % 2)[school]
    x1, x3 = rng.normal(size=rows), rng.normal(size=rows)
    x2 = rng.binomial(1, 0.3, rows)
    eta = (TRUTH["Intercept"] + TRUTH["x1"] * x1 + TRUTH["x2"] * x2 + TRUTH["x3"] * x3 + TRUTH["treat"] * treat
           + rng.normal(0, np.sqrt(TRUE_VAR), n_schools)[school])
    y = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "x3": x3, "treat": treat, "school": school})


def compare(df: pd.DataFrame, n_agq: int, repeat: int) -> None:
    label = "Laplace" if n_agq == 1 else f"adaptive quadrature, {n_agq} points"
    print(f"\n== BinomialMixed ({label}) vs glmer(nAGQ = {n_agq}) ==")
    t_ours, m = best_of(lambda: BinomialMixed(n_agq=n_agq).fit(df, FORMULA, groups="school"), repeat)
    print(f"BinomialMixed: {t_ours:.2f} s (best of {repeat}); school variance {m.variance_components_['school']:.4f} "
          f"(true {TRUE_VAR}), treat odds ratio {np.exp(m.params_['treat']):.3f} (true {np.exp(TRUTH['treat']):.3f}), "
          f"log-likelihood {m.log_likelihood_:.4f}, converged {m.converged_}")
    vals = run_r("glmer", R_SCRIPT.replace("args[2]", f'"{n_agq}"'), df)
    if vals is None:
        return
    t_r, n_warn, ll_r, var_r = vals[:4]
    diff_b = np.max(np.abs(np.asarray(vals[4:]) - m.params_.to_numpy()))
    ratio = t_r / t_ours
    print(f"R glmer: {t_r:.2f} s -> BinomialMixed is {ratio:.1f}x faster (target >= 10x: "
          f"{'met' if ratio >= 10 else 'NOT met'})")
    shift = "" if n_agq == 1 else " (glmer's nAGQ > 1 logLik omits the saturated log-likelihood, 0 for 0/1 data)"
    print(f"  max |fixed-effect difference| {diff_b:.1e}; school variance: glmer {var_r:.5f}, BinomialMixed "
          f"{m.variance_components_['school']:.5f}; log-likelihood: glmer {ll_r:.4f}, BinomialMixed "
          f"{m.log_likelihood_:.4f}{shift}; glmer warnings: {int(n_warn)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--schools", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--agq", action="store_true", help="also compare 10-point adaptive quadrature")
    args = ap.parse_args()
    df = make_data(args.rows, args.schools)
    print(f"{args.rows:,} pupils, {args.schools} schools, share with outcome 1: {df['y'].mean():.3f}")
    compare(df, 1, args.repeat)
    if args.agq:
        compare(df, 10, args.repeat)


if __name__ == "__main__":
    main()
