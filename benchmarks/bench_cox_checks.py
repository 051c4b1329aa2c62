"""cox_zph (and concordance) beside R's survival::cox.zph (and concordance) on the same data, in one run.

Run: ``python benchmarks/bench_cox_checks.py [--rows 1000000] [--repeat 3]``

Data: as ``bench_survival.py`` (``rows`` episodes, 5 covariates, durations in whole days: about 300
distinct times, heavily tied). CoxPH (Efron) is fitted once; then ``cox_zph(transform="km")`` and
``concordance`` are timed (best of ``repeat``). The same numbers go to R as a binary file (exact
doubles), where ``coxph`` (Efron) is fitted and ``cox.zph(fit)`` and ``concordance(fit)`` are timed
with ``system.time`` (best of ``repeat``; reading the data and the fit are not timed on either
side). Prints the wall times, the ratios and the largest relative difference between the
chi-square statistics and the concordances. Without ``Rscript`` (or its survival and jsonlite
packages) only verzuimmodel is timed, with a message.

Both sides start from the fit and the data: ``cox.zph`` rebuilds the covariates from the data
(``coxph.getdata``) and ``cox_zph`` rebuilds the rows from the data frame. The split of each time
is printed too: that rebuilding (``coxph.getdata``; reading and checking the rows) and the rest;
for R also its C routine alone (``Czph1``), as ``cox.zph`` spends time in R code as well: the
Kaplan-Meier transform, and the scaled Schoenfeld residuals it returns for its plot (``cox_zph``
returns the test only). The compiled kernels' first call (numba compiling them, or loading them
from its cache) is printed apart; the best-of times exclude it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from bench_survival import COVARIATES, make_data
from timing import best_of
from verzuimmodel.survival import CoxPH
from verzuimmodel.survival.concordance import concordance
from verzuimmodel.survival.cox_checks import _model_rows, cox_zph

R_SCRIPT = r"""
suppressPackageStartupMessages({library(survival); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
n <- as.integer(args[2]); k <- as.integer(args[3]); rep <- as.integer(args[4])
d <- as.data.frame(matrix(readBin(args[1], "double", n * k), ncol = k))
names(d) <- strsplit(args[5], ",")[[1]]
form <- as.formula(paste("Surv(time, event) ~", paste(setdiff(names(d), c("time", "event")), collapse = " + ")))
fit <- coxph(form, d, control = coxph.control(eps = 1e-12, iter.max = 100))
t_zph <- min(vapply(seq_len(rep), function(i) system.time(z <<- cox.zph(fit))[["elapsed"]], 0))
t_conc <- min(vapply(seq_len(rep), function(i) system.time(cc <<- concordance(fit))[["elapsed"]], 0))
# the split of cox.zph: rebuilding the data, and its C routine on them (as cox.zph calls it)
t_get <- min(vapply(seq_len(rep), function(i) system.time(
  cget <<- survival:::coxph.getdata(fit, y = TRUE, x = TRUE, stratax = TRUE, weights = TRUE))[["elapsed"]], 0))
y <- cget$y
km <- survival:::survfitKM(factor(rep(1L, nrow(y))), y, se.fit = FALSE)
g <- 1 - c(1, km$surv)[findInterval(y[, 2], km$time, left.open = TRUE) + 1]
g <- g - mean(g[y[, 2] == 1])
st <- rep(0L, nrow(y))
ord <- order(st, y[, 1]) - 1L
t_c <- tryCatch(min(vapply(seq_len(rep), function(i) system.time(.Call(survival:::Czph1, g, y, cget$x,
  fit$linear.predictors, cget$weights, st, fit$method == "efron", ord))[["elapsed"]], 0)),
  error = function(e) NA)
cat(toJSON(list(zph = t_zph, concordance = t_conc, getdata = t_get, czph1 = t_c, chisq = unname(z$table[, "chisq"]),
                terms = rownames(z$table), c = cc$concordance, se = sqrt(cc$var)), digits = NA, auto_unbox = TRUE))
"""


def run_r(df, repeat: int) -> dict | None:
    """Time cox.zph and concordance in R on ``df``; None (with a message) when R cannot run."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        print("\nRscript not found: R's cox.zph is not timed (install R with the survival and jsonlite packages)")
        return None
    cols = ["time", "event", *COVARIATES]
    with tempfile.TemporaryDirectory() as tmp:
        data, script = Path(tmp) / "data.bin", Path(tmp) / "zph.R"
        np.asfortranarray(df[cols].to_numpy(dtype=float)).ravel(order="F").tofile(data)
        script.write_text(R_SCRIPT)
        proc = subprocess.run([rscript, str(script), str(data), str(len(df)), str(len(cols)), str(repeat),
                               ",".join(cols)], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"\nR failed, so it is not timed:\n{proc.stderr.strip()[-800:]}")
        return None
    return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    df = make_data(args.rows)
    print(f"{args.rows:,} rows x {len(COVARIATES)} covariates, {df['time'].nunique()} distinct times, "
          f"{int(df['event'].sum()):,} events")
    model = CoxPH().fit(df, "time", "event", COVARIATES)
    first_zph, _ = best_of(lambda: cox_zph(model, df), 1)
    first_conc, _ = best_of(lambda: concordance(model, df), 1)
    t_zph, zph = best_of(lambda: cox_zph(model, df), args.repeat)
    t_conc, conc = best_of(lambda: concordance(model, df), args.repeat)
    t_rows, _ = best_of(lambda: _model_rows(model, df, columns=True), args.repeat)
    print(f"verzuimmodel cox_zph (km): {t_zph:.3f} s (rows from df {t_rows:.3f} s, the rest {t_zph - t_rows:.3f} s); "
          f"concordance: {t_conc:.3f} s")
    print(f"  first calls, with compiling or loading the kernels: cox_zph {first_zph:.2f} s, "
          f"concordance {first_conc:.2f} s")
    r = run_r(df, args.repeat)
    if r is None:
        return
    assert r["terms"] == [*COVARIATES, "GLOBAL"]
    chisq_diff = np.max(np.abs(zph["statistic"].to_numpy() / np.asarray(r["chisq"]) - 1))
    c_diff = abs(conc["concordance"].iloc[0] / r["c"] - 1)
    se_diff = abs(conc["std_error"].iloc[0] / r["se"] - 1)
    print(f"R survival cox.zph: {r['zph']:.2f} s -> verzuimmodel is {r['zph'] / t_zph:.1f}x faster; "
          f"max relative chi-square difference {chisq_diff:.1e}")
    czph1 = f"{r['czph1']:.3f} s" if isinstance(r.get("czph1"), (int, float)) else "not timed"
    print(f"  R's split: coxph.getdata {r['getdata']:.3f} s, the rest {r['zph'] - r['getdata']:.3f} s, "
          f"of which its C routine Czph1 {czph1}")
    print(f"R survival concordance: {r['concordance']:.2f} s -> ratio R / verzuimmodel "
          f"{r['concordance'] / t_conc:.2f}; relative difference C {c_diff:.1e}, SE {se_diff:.1e}")


if __name__ == "__main__":
    main()
