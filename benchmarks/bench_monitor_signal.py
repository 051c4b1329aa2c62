"""The quarterly monitor and the early-warning model on the national cohort.

Run: ``python benchmarks/bench_monitor_signal.py [--pupils 1000000]``. Simulates the national
scenario once (not timed), then times ``monitor.quarterly`` + ``monitor.running_durations`` by
region, and ``signal.fit_model`` (spline logistic regression) on ``--pupils`` labelled pupils
(a random subset of schools' pupils if the cohort has more). Targets: monitor under 20 s, the
model fit on 1M pupils under 2 minutes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import verzuimmodel as vm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pupils", type=int, default=1_000_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    cohort = vm.simulate(vm.Scenario.national(), seed=1)
    print(f"national cohort: {len(cohort.pupils):,} pupils, {len(cohort.episodes):,} episodes "
          f"(simulated in {time.perf_counter() - t0:.1f} s, not counted)")

    t0 = time.perf_counter()
    q = vm.monitor.quarterly(cohort, by="region")
    d = vm.monitor.running_durations(cohort, by="region")
    t_monitor = time.perf_counter() - t0
    print(f"monitor.quarterly + running_durations by region: {t_monitor:.1f} s ({len(q):,} + {len(d):,} rows; "
          f"target < 20 s)")

    t0 = time.perf_counter()
    fit = vm.signal.fit_model(cohort, "logistic_spline", seed=1)
    t_fit = time.perf_counter() - t0
    n = getattr(fit, "n_pupils", None) or getattr(fit, "n_", None)
    print(f"signal.fit_model('logistic_spline') on the national cohort ({len(cohort.pupils):,} pupils"
          f"{'' if n is None else f', {n:,} labelled'}): {t_fit:.1f} s (target < 120 s for 1M pupils)")
    if len(cohort.pupils) < args.pupils:
        print(f"  note: the cohort has fewer than {args.pupils:,} pupils")
    _ = np


if __name__ == "__main__":
    main()
