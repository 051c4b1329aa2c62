"""The quarterly monitor and the early-warning model on the national cohort.

Run: ``python benchmarks/bench_monitor_signal.py [--pupils 1000000] [--protected]``. Simulates the national
scenario once (not timed), then times ``monitor.quarterly`` + ``monitor.running_durations`` by
region with raw counts (and, with ``--protected``, the tables with disclosure control), and the
fit of the spline logistic early-warning model on ``--pupils`` labelled pupils (a random subset if
the cohort has more). Targets: monitor under 20 s, the model fit on 1M pupils
under 2 minutes (the validation and bootstrap of ``signal.evaluate`` come on top).
"""

from __future__ import annotations

import argparse
import time

import verzuimmodel as vm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pupils", type=int, default=1_000_000)
    ap.add_argument("--protected", action="store_true",
                    help="also time vm.monitor.tables(cohort, by='region'): the audited disclosure control "
                         "(minutes on the national cohort)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    cohort = vm.simulate(vm.Scenario.national(), seed=1)
    print(f"national cohort: {len(cohort.pupils):,} pupils, {len(cohort.episodes):,} episodes "
          f"(simulated in {time.perf_counter() - t0:.1f} s, not counted)")

    t0 = time.perf_counter()
    q = vm.monitor.quarterly(cohort, by="region", min_count=0)
    d = vm.monitor.running_durations(cohort, by="region", min_count=0)
    t_monitor = time.perf_counter() - t0
    print(f"monitor.quarterly + running_durations by region, raw counts (min_count=0): {t_monitor:.1f} s "
          f"({len(q):,} + {len(d):,} rows; target < 20 s)")

    if args.protected:
        import warnings

        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", vm.disclosure.DisclosureWarning)
            mt = vm.monitor.tables(cohort, by="region")
        n_hidden = int(mt.hidden.to_numpy().sum() + mt.durations_hidden.to_numpy().sum())
        print(f"monitor.tables by region with disclosure control: {time.perf_counter() - t0:.0f} s; "
              f"{n_hidden:,} region cells hidden; {int((~mt.audit['safe']).sum())} unsafe in the audit of "
              f"{len(mt.audit):,} cells; {len(caught)} disclosure warnings")

    from verzuimmodel.signal import SignalConfig, SignalModel
    from verzuimmodel.signal.evaluate import labelled_table

    t0 = time.perf_counter()
    lab = labelled_table(cohort, SignalConfig())
    t_table = time.perf_counter() - t0
    if len(lab) > args.pupils:
        lab = lab.sample(n=args.pupils, random_state=1).reset_index(drop=True)
    t0 = time.perf_counter()
    SignalModel("logistic_spline").fit(lab)
    t_fit = time.perf_counter() - t0
    print(f"signal features and labels for the national cohort: {t_table:.1f} s")
    print(f"SignalModel('logistic_spline').fit on {len(lab):,} labelled pupils ({int(lab['event'].sum()):,} events): "
          f"{t_fit:.1f} s (target < 120 s for 1M pupils)")


if __name__ == "__main__":
    main()
