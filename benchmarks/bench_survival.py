"""CoxPH beside lifelines and scikit-survival on the same data, in one run.

Run: ``python benchmarks/bench_survival.py [--rows 1000000] [--repeat 3] [--peers lifelines,sksurv]``

Data: ``rows`` episodes, 5 covariates, durations in whole days (about 300 distinct times, so
heavily tied), 7,000 schools for the clustered fit. Prints wall times (best of ``repeat`` for
verzuimmodel; peers run once: they take much longer), the ratios, and the largest difference
between the coefficients. Targets: CoxPH at least 20x faster than lifelines' CoxPHFitter with the
same coefficients to 1e-6; ``cluster=`` at most 50% more time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from timing import best_of
from verzuimmodel.survival import CoxPH

COVARIATES = [f"x{i}" for i in range(5)]


def make_data(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 5))
    t = np.ceil(rng.exponential(100 * np.exp(-(X @ [0.3, -0.2, 0.1, 0.0, 0.25]))))
    c = np.ceil(rng.uniform(0, 300, rows))
    df = pd.DataFrame(X, columns=COVARIATES)
    df["time"] = np.minimum(t, c)
    df["event"] = (t <= c).astype(int)
    df["school"] = rng.integers(0, 7000, rows)
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peers", default="lifelines,sksurv")
    args = ap.parse_args()
    df = make_data(args.rows)
    print(f"{args.rows:,} rows x {len(COVARIATES)} covariates, {df['time'].nunique()} distinct times, "
          f"{int(df['event'].sum()):,} events")

    for ties in ("efron", "breslow"):
        t_ours, ours = best_of(lambda: CoxPH(ties=ties).fit(df, "time", "event", COVARIATES), args.repeat)
        print(f"\nties={ties}: verzuimmodel CoxPH {t_ours:.2f} s")
        if ties == "efron":
            t_cl, _ = best_of(lambda: CoxPH().fit(df, "time", "event", COVARIATES, cluster="school"), args.repeat)
            print(f"  with cluster= (7,000 schools): {t_cl:.2f} s ({100 * (t_cl / t_ours - 1):+.0f}%)")
        peers = args.peers.split(",") if args.peers else []
        if ties == "efron" and "lifelines" in peers:
            from lifelines import CoxPHFitter

            t0 = time.perf_counter()
            ll = CoxPHFitter().fit(df[COVARIATES + ["time", "event"]], "time", "event")
            t_ll = time.perf_counter() - t0
            diff = np.max(np.abs(ll.params_[COVARIATES].to_numpy() - ours.params_.to_numpy()))
            print(f"  lifelines CoxPHFitter (Efron): {t_ll:.2f} s -> verzuimmodel is {t_ll / t_ours:.1f}x faster; "
                  f"max |coef difference| {diff:.1e}")
        if ties == "breslow" and "sksurv" in peers:
            from sksurv.linear_model import CoxPHSurvivalAnalysis
            from sksurv.util import Surv

            y = Surv.from_arrays(df["event"].astype(bool).to_numpy(), df["time"].to_numpy())
            t0 = time.perf_counter()
            sk = CoxPHSurvivalAnalysis(ties="breslow", tol=1e-12).fit(df[COVARIATES].to_numpy(), y)
            t_sk = time.perf_counter() - t0
            diff = np.max(np.abs(sk.coef_ - ours.params_.to_numpy()))
            print(f"  scikit-survival CoxPHSurvivalAnalysis (Breslow): {t_sk:.2f} s -> verzuimmodel is "
                  f"{t_sk / t_ours:.1f}x faster; max |coef difference| {diff:.1e}")


if __name__ == "__main__":
    main()
