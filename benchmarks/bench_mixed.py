"""Mixed models beside statsmodels on the same data, in one run.

Run: ``python benchmarks/bench_mixed.py [--rows 200000] [--po 1000] [--vo 150] [--repeat 3] [--peers statsmodels]
[--glmm-rows 100000] [--glmm-schools 500]``
(``--peers statsmodels,lme4,glmmTMB`` adds the R peers; they need Rscript.)

Data: ``rows`` pupils in ``po`` PO schools; each PO school sends its pupils to 2-4 of ``vo`` VO schools
(cross-classified, not nested); three covariates, a PO-school treatment, PO and VO random intercepts.
One function per model; each prints wall times (best of ``repeat`` for verzuimmodel, peers once),
ratios and the largest difference between the estimates.

``linear_mixed``: ``LinearMixed`` (REML, Satterthwaite df) with crossed PO x VO intercepts must
finish in under 10 s on 200,000 rows (1,000 PO x 150 VO schools). statsmodels' ``MixedLM`` fits one
grouping factor well, so it is timed with the PO intercept only, beside ``LinearMixed`` with the same
single factor (the like-for-like ratio).

``negative_binomial_mixed``: ``NegativeBinomialMixed`` (Laplace, as glmmTMB) with a school intercept must
finish in under 10 s on 100,000 pupil-years in 500 schools (``--glmm-rows``, ``--glmm-schools``).
statsmodels has no frequentist NB mixed model; its NB GLM without random effects on the same data is
the floor it is timed beside.

``pupil_year_mixed``: the same pupil-years grouped into pupils (four years each) with pupil, school and VO
school intercepts, the model ``vo_nb_glmm`` fits; beside R glmmTMB when ``--peers`` includes ``glmmTMB``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from timing import best_of
from verzuimmodel.mixed.lmm import LinearMixed

FORMULA = "y ~ x1 + x2 + x3 + treat"


def make_data(rows: int, n_po: int, n_vo: int, seed: int = 1) -> pd.DataFrame:
    """Crossed PO x VO data: y = 1 + 0.3 x1 - 0.2 x2 + 0.1 x3 - 0.25 treat + b_po + b_vo + e."""
    rng = np.random.default_rng(seed)
    po = rng.integers(0, n_po, rows)
    k = rng.integers(2, 5, n_po)                                   # VO schools fed by each PO school
    feeds = (rng.integers(0, n_vo, n_po)[:, None] + np.arange(4) * rng.integers(1, 7, n_po)[:, None]) % n_vo
    vo = feeds[po, (rng.random(rows) * k[po]).astype(int)]
    X = rng.normal(size=(rows, 3))
    treat = rng.permutation(np.arange(n_po) % 2)[po]
    y = (1 + X @ [0.3, -0.2, 0.1] - 0.25 * treat + rng.normal(0, 0.4, n_po)[po] + rng.normal(0, 0.3, n_vo)[vo]
         + rng.normal(size=rows))
    return pd.DataFrame({"y": y, "x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "treat": treat,
                         "po_school": po, "vo_school": vo})


def linear_mixed(df: pd.DataFrame, repeat: int, peers: list[str]) -> None:
    print("\n== LinearMixed (REML, Satterthwaite df) ==")
    t_cr, cr = best_of(lambda: LinearMixed().fit(df, FORMULA, groups=["po_school", "vo_school"]), repeat)
    vc = ", ".join(f"{k} {v:.4f}" for k, v in cr.variance_components_.items())
    print(f"crossed PO x VO intercepts: {t_cr:.2f} s (target < 10 s: {'met' if t_cr < 10 else 'NOT met'}); "
          f"variances: {vc}")
    t_one, one = best_of(lambda: LinearMixed().fit(df, FORMULA, groups="po_school"), repeat)
    print(f"PO intercept only:          {t_one:.2f} s")
    t_nodf, _ = best_of(lambda: LinearMixed(ddf=None).fit(df, FORMULA, groups="po_school"), repeat)
    print(f"PO intercept only, no Satterthwaite df: {t_nodf:.2f} s")
    if "lme4" in peers:
        lme4_crossed(df, t_cr, cr)
    if "statsmodels" in peers:
        import statsmodels.formula.api as smf

        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sm = smf.mixedlm(FORMULA, df, groups=df["po_school"]).fit(reml=True)
        t_sm = time.perf_counter() - t0
        diff_b = np.max(np.abs(sm.fe_params.to_numpy() - one.params_.to_numpy()))
        v_sm, v_ours = float(sm.cov_re.iloc[0, 0]), one.variance_components_["po_school"]
        print(f"statsmodels MixedLM (PO intercept only, REML): {t_sm:.2f} s -> LinearMixed is {t_sm / t_one:.1f}x "
              f"faster (like for like; {t_sm / t_nodf:.1f}x without the df); crossed fit vs MixedLM: "
              f"{t_sm / t_cr:.1f}x")
        print(f"  max |fixed-effect difference| {diff_b:.1e}; PO variance: MixedLM {v_sm:.5f}, LinearMixed "
              f"{v_ours:.5f}; REML log-likelihood: MixedLM {sm.llf:.3f}, LinearMixed {one.log_likelihood_:.3f} "
              f"(converged: MixedLM {sm.converged}, LinearMixed {one.converged_})")


R_SCRIPT = """
suppressPackageStartupMessages(library(lmerTest))
d <- read.csv(commandArgs(TRUE)[1])
f <- y ~ x1 + x2 + x3 + treat + (1 | po_school) + (1 | vo_school)
t1 <- system.time(m1 <- lme4::lmer(f, d))[["elapsed"]]
t2 <- system.time(m2 <- lmerTest::lmer(f, d))[["elapsed"]]
cat(format(c(t1, t2, as.numeric(logLik(m1)), fixef(m1)), digits = 15), "\n")
"""


def run_r(peer: str, script: str, df: pd.DataFrame) -> list[float] | None:
    """Run an R ``script`` on ``df`` (its first argument: a CSV file); the numbers it prints, or None
    (and a line saying why) when Rscript is missing or R fails."""
    if shutil.which("Rscript") is None:
        print(f"{peer}: Rscript not found, skipped")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        df.to_csv(path, index=False)
        file = Path(tmp) / "fit.R"
        file.write_text(script)
        out = subprocess.run(["Rscript", str(file), str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"{peer}: R failed: {out.stderr.strip()[-300:]}")
        return None
    return [float(v) for v in out.stdout.split()]


def lme4_crossed(df: pd.DataFrame, t_ours: float, ours: LinearMixed) -> None:
    vals = run_r("lme4", R_SCRIPT, df)
    if vals is None:
        return
    t_lme4, t_lt, ll = vals[:3]
    diff_b = np.max(np.abs(np.asarray(vals[3:]) - ours.params_.to_numpy()))
    print(f"R lme4::lmer (crossed, REML): {t_lme4:.2f} s -> LinearMixed is {t_lme4 / t_ours:.1f}x faster; "
          f"lmerTest::lmer: {t_lt:.2f} s -> {t_lt / t_ours:.1f}x")
    print(f"  max |fixed-effect difference| {diff_b:.1e}; REML criterion: lme4 {ll:.4f}, LinearMixed "
          f"{ours.log_likelihood_:.4f}")


# --------------------------------------------------------------------------------------------------------------------
# negative binomial mixed model (PoissonMixed / NegativeBinomialMixed, glmm.py)

COUNT_FORMULA = "y ~ x1 + x2 + treat"


def make_count_data(rows: int, n_schools: int, n_vo: int = 60, seed: int = 2) -> pd.DataFrame:
    """Pupil-years of yearly unexcused absence: NB2 counts with theta = 1.5 over 120-190 enrolled days,
    log mu = log(days) + log(8/160) + 0.25 x1 + 0.4 x2 - 0.3 treat + u_school (+ v_vo),
    u ~ N(0, 0.1), v ~ N(0, 0.05); ``treat`` at school level (half of the schools); each school's
    pupils go to 2-4 of ``n_vo`` VO schools (used by the crossed fit only)."""
    rng = np.random.default_rng(seed)
    school = rng.integers(0, n_schools, rows)
    treat = rng.permutation(np.arange(n_schools) % 2)[school]
    x1, x2 = rng.normal(size=rows), rng.binomial(1, 0.3, rows)
    days = rng.integers(120, 191, rows)
    feeds = (rng.integers(0, n_vo, n_schools)[:, None] + np.arange(4)) % n_vo
    vo = feeds[school, rng.integers(0, 4, rows) % rng.integers(2, 5, n_schools)[school]]
    mu = days * np.exp(np.log(8 / 160) + 0.25 * x1 + 0.4 * x2 - 0.3 * treat
                       + rng.normal(0, np.sqrt(0.1), n_schools)[school] + rng.normal(0, np.sqrt(0.05), n_vo)[vo])
    y = rng.poisson(rng.gamma(1.5, mu / 1.5))
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "treat": treat, "days": days, "school": school,
                         "vo_school": vo})


def negative_binomial_mixed(rows: int, n_schools: int, repeat: int, peers: list[str]) -> None:
    """``NegativeBinomialMixed`` (Laplace, as glmmTMB) with a school intercept on ``rows`` pupil-years must
    finish in under 10 s for 100,000 rows and 500 schools. statsmodels has no frequentist NB mixed model:
    its NB GLM without random effects (the floor: same data, no integral over schools) is timed beside it,
    with theta fixed at our estimate (``GLM``) and estimated (``NegativeBinomial``, NB2)."""
    from verzuimmodel.mixed.glmm import NegativeBinomialMixed, PoissonMixed

    df = make_count_data(rows, n_schools)
    print(f"\n== NegativeBinomialMixed (Laplace) ==\n{rows:,} pupil-years, {n_schools} schools, "
          f"mean count {df['y'].mean():.1f}, variance {df['y'].var():.1f}")
    fit = lambda: NegativeBinomialMixed().fit(df, COUNT_FORMULA, groups="school", exposure="days")  # noqa: E731
    t_nb, nb = best_of(fit, repeat)
    print(f"school intercept: {t_nb:.2f} s (target < 10 s: {'met' if t_nb < 10 else 'NOT met'}); variance "
          f"{nb.variance_components_['school']:.4f} (true 0.1), theta {nb.dispersion_:.3f} (true 1.5), "
          f"treat rate ratio {np.exp(nb.params_['treat']):.3f} (true {np.exp(-0.3):.3f})")
    t_cr, cr = best_of(lambda: NegativeBinomialMixed().fit(df, COUNT_FORMULA, groups=["school", "vo_school"],
                                                           exposure="days"), repeat)
    print(f"crossed school x VO intercepts ({df['vo_school'].nunique()} VO schools): {t_cr:.2f} s")
    t_po, _ = best_of(lambda: PoissonMixed().fit(df, COUNT_FORMULA, groups="school", exposure="days"), repeat)
    print(f"PoissonMixed, school intercept: {t_po:.2f} s")
    if "statsmodels" in peers:
        import statsmodels.api as sm
        import statsmodels.formula.api as smf

        off = np.log(df["days"].to_numpy(float))
        t0 = time.perf_counter()
        glm = smf.glm(COUNT_FORMULA, df, offset=off,
                      family=sm.families.NegativeBinomial(alpha=1 / nb.dispersion_)).fit()
        t_glm = time.perf_counter() - t0
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb2 = smf.negativebinomial(COUNT_FORMULA, df, offset=off, loglike_method="nb2").fit(disp=0, maxiter=200)
        t_nb2 = time.perf_counter() - t0
        print(f"statsmodels GLM NegativeBinomial (no random effects, theta fixed): {t_glm:.2f} s -> "
              f"NegativeBinomialMixed takes {t_nb / t_glm:.1f}x as long")
        print(f"statsmodels NegativeBinomial (NB2, no random effects, theta estimated): {t_nb2:.2f} s -> "
              f"NegativeBinomialMixed takes {t_nb / t_nb2:.1f}x as long")
        print(f"  marginal (GLM) vs conditional (mixed) treat log rate ratio: {glm.params['treat']:.4f} vs "
              f"{nb.params_['treat']:.4f} (they estimate different things); GLM theta {1 / nb2.params['alpha']:.3f}")


def make_pupil_year_data(rows: int, n_schools: int, seed: int = 3) -> pd.DataFrame:
    """``make_count_data``'s design with the rows of each school grouped into pupils of four years and
    counts redrawn with pupil (variance 0.5), school (0.1) and VO school (0.05) intercepts: pupil-years
    nested in pupils, pupils in crossed schools."""
    df = make_count_data(rows, n_schools).sort_values("school", kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    df["pupil"] = pd.factorize(df.groupby("school").cumcount() // 4 + 4 * rows * df["school"])[0]
    u = (rng.normal(0, np.sqrt(0.5), df["pupil"].max() + 1)[df["pupil"]]
         + rng.normal(0, np.sqrt(0.1), n_schools)[df["school"]]
         + rng.normal(0, np.sqrt(0.05), df["vo_school"].max() + 1)[df["vo_school"]])
    mu = df["days"] * np.exp(np.log(8 / 160) + 0.25 * df["x1"] + 0.4 * df["x2"] - 0.3 * df["treat"] + u)
    df["y"] = rng.poisson(rng.gamma(1.5, mu / 1.5))
    return df


GLMMTMB_SCRIPT = """
suppressPackageStartupMessages(library(glmmTMB))
d <- read.csv(commandArgs(TRUE)[1])
d$pupil <- factor(d$pupil); d$school <- factor(d$school); d$vo_school <- factor(d$vo_school)
t <- system.time(m <- glmmTMB(y ~ x1 + x2 + treat + offset(log(days)) + (1 | pupil) + (1 | school) + (1 | vo_school),
                              d, family = nbinom2))[["elapsed"]]
cat(format(c(t, as.numeric(logLik(m)), fixef(m)$cond), digits = 15), "\n")
"""


def pupil_year_mixed(rows: int, n_schools: int, repeat: int, peers: list[str]) -> None:
    """``NegativeBinomialMixed`` with pupil, school and VO school intercepts (the model ``vo_nb_glmm`` fits),
    beside R glmmTMB on the same data (peer ``glmmTMB``, needs Rscript) and statsmodels' NB2 GLM floor."""
    from verzuimmodel.mixed.glmm import NegativeBinomialMixed

    df = make_pupil_year_data(rows, n_schools)
    print(f"\n== NegativeBinomialMixed, pupil + school + VO school intercepts ==\n{rows:,} pupil-years, "
          f"{df['pupil'].nunique():,} pupils, {n_schools} schools, {df['vo_school'].nunique()} VO schools")
    groups = ["pupil", "school", "vo_school"]
    t_ours, m = best_of(lambda: NegativeBinomialMixed().fit(df, COUNT_FORMULA, groups=groups, exposure="days"),
                        repeat)
    vc = ", ".join(f"{k} {v:.4f}" for k, v in m.variance_components_.items())
    print(f"three factors: {t_ours:.2f} s; variances {vc} (true 0.5, 0.1, 0.05), theta {m.dispersion_:.3f} (true 1.5)")
    vals = run_r("glmmTMB", GLMMTMB_SCRIPT, df) if "glmmTMB" in peers else None
    if vals is not None:
        diff_b = np.max(np.abs(np.asarray(vals[2:]) - m.params_.to_numpy()))
        print(f"R glmmTMB (same model): {vals[0]:.2f} s -> NegativeBinomialMixed is {vals[0] / t_ours:.1f}x faster; "
              f"max |fixed-effect difference| {diff_b:.1e}; log-likelihood: glmmTMB {vals[1]:.3f}, "
              f"NegativeBinomialMixed {m.log_likelihood_:.3f}")
    if "statsmodels" in peers:
        import statsmodels.formula.api as smf

        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            smf.negativebinomial(COUNT_FORMULA, df, offset=np.log(df["days"].to_numpy(float)),
                                 loglike_method="nb2").fit(disp=0, maxiter=200)
        t_nb2 = time.perf_counter() - t0
        print(f"statsmodels NegativeBinomial (NB2, no random effects): {t_nb2:.2f} s -> NegativeBinomialMixed takes "
              f"{t_ours / t_nb2:.1f}x as long")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--po", type=int, default=1000)
    ap.add_argument("--vo", type=int, default=150)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peers", default="statsmodels")
    ap.add_argument("--glmm-rows", type=int, default=100_000, help="pupil-years of the NB mixed model benchmark")
    ap.add_argument("--glmm-schools", type=int, default=500)
    args = ap.parse_args()
    peers = args.peers.split(",") if args.peers else []
    df = make_data(args.rows, args.po, args.vo)
    pairs = df.groupby("po_school")["vo_school"].nunique()
    print(f"{args.rows:,} rows, {df['po_school'].nunique():,} PO x {df['vo_school'].nunique()} VO schools "
          f"(each PO school feeds {pairs.min()}-{pairs.max()} VO schools)")
    linear_mixed(df, args.repeat, peers)
    negative_binomial_mixed(args.glmm_rows, args.glmm_schools, args.repeat, peers)
    pupil_year_mixed(args.glmm_rows, args.glmm_schools, args.repeat, peers)


if __name__ == "__main__":
    main()
