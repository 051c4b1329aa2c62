"""Diagnose overhead and parallel speed-up, in one run.

Run: ``python benchmarks/bench_evaluate.py [--sims 200] [--estimator gee] [--workers 2] [--dask]``

Design: a stepped-wedge trial (12 clusters, 5 periods, 20 pupils per cluster-period, continuous
outcome) with one estimator (default ``gee``: statsmodels GEE, exchangeable, Mancl-DeRouen SE).

Prints

- the per-replicate overhead of ``diagnose`` (serial): its wall time minus the summed time of the
  estimator fits themselves, as a share of the wall time (everything that is not fitting:
  simulating the trial, seeding, building and summarising the tables). Target: under 10%.
- the speed-up of ``backend="processes"`` with 2 workers over ``serial`` on the same replicates
  (and that both give identical replicate tables). Target: at least 1.7x on 2 cores.
- optionally (``--dask``) the same for a local dask cluster of 2 worker processes.

A speed-up needs two free cores: the script first times a fixed CPU-bound task once alone and
twice side by side in two processes and prints the speed-up the machine offers at that moment
(about 2 on an idle 2-core machine; less when other work shares the cores).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

import verzuimmodel as vm


def _burn(n: int = 6000) -> float:
    """A fixed CPU-bound task (small dense solves on one BLAS thread); returns its wall time."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).random((60, 60)) + 60 * np.eye(60)
    with threadpool_limits(limits=1):
        t0 = time.perf_counter()
        for i in range(n):
            np.linalg.solve(a + i * 1e-9, a)
        return time.perf_counter() - t0


def machine_speedup(workers: int) -> float:
    """``workers`` x (one task alone) / (``workers`` tasks side by side): the parallel capacity now."""
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pool.submit(_burn, 10).result()
        alone = pool.submit(_burn).result()
        t0 = time.perf_counter()
        list(pool.map(_burn, [6000] * workers))
        together = time.perf_counter() - t0
    return workers * alone / together


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--estimator", default="gee")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dask", action="store_true", help="also time a local dask cluster")
    args = ap.parse_args()

    capacity = machine_speedup(args.workers)
    print(f"machine: {args.workers} copies of a CPU-bound task run {capacity:.2f}x faster side by side than "
          f"one after the other (the most any backend can gain now)")

    trial = vm.evaluate.SteppedWedgeTrial(n_clusters=12, n_periods=5, cluster_period_size=20, icc=0.05, effect=0.3)
    design = vm.Design(trial, [args.estimator], name="bench")
    vm.diagnose(design, n_sims=2, seed=args.seed + 1, progress=False)  # imports and first-call costs

    serial = vm.diagnose(design, n_sims=args.sims, seed=args.seed, progress=False)
    fit = serial.timings["fit_seconds"].sum()
    sim = serial.timings.drop_duplicates("replicate")["simulate_seconds"].sum()
    overhead = (serial.wall_seconds - fit) / serial.wall_seconds
    print(f"diagnose(SteppedWedgeTrial 12x5x20, ['{args.estimator}'], n_sims={args.sims}), serial: "
          f"wall {serial.wall_seconds:.2f} s, estimator fits {fit:.2f} s "
          f"({1e3 * fit / args.sims:.1f} ms per replicate), simulating {sim:.2f} s")
    print(f"per-replicate overhead (wall - fits) / wall: {100 * overhead:.1f}% "
          f"({1e3 * (serial.wall_seconds - fit) / args.sims:.2f} ms per replicate; target < 10%)"
          f" -> {'OK' if overhead < 0.10 else 'MISSED'}")

    procs = vm.diagnose(design, n_sims=args.sims, seed=args.seed, backend="processes", workers=args.workers,
                        progress=False)
    pd.testing.assert_frame_equal(procs.replicates, serial.replicates)
    speedup = serial.wall_seconds / procs.wall_seconds
    print(f"processes, {args.workers} workers: wall {procs.wall_seconds:.2f} s, {speedup:.2f}x serial "
          f"(target >= 1.7x) -> {'OK' if speedup >= 1.7 else 'MISSED'}; replicates identical to serial")
    busy = procs.timings["fit_seconds"].sum() + procs.timings.drop_duplicates("replicate")["simulate_seconds"].sum()
    print(f"  workers busy simulating and fitting {100 * busy / (args.workers * procs.wall_seconds):.0f}% of the "
          f"wall time; a fit took {procs.timings['fit_seconds'].sum() / fit:.2f}x as long as in the serial run "
          "(> 1: the workers competed for cores)")

    if args.dask:
        t0 = time.perf_counter()
        dk = vm.diagnose(design, n_sims=args.sims, seed=args.seed, backend="dask", workers=args.workers,
                         progress=False)
        total = time.perf_counter() - t0
        pd.testing.assert_frame_equal(dk.replicates, serial.replicates)
        print(f"dask LocalCluster, {args.workers} worker processes: wall {dk.wall_seconds:.2f} s including "
              f"cluster start-up ({total:.2f} s in all), {serial.wall_seconds / dk.wall_seconds:.2f}x serial; "
              "replicates identical to serial")


if __name__ == "__main__":
    main()
