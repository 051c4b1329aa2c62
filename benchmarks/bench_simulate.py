"""Time ``simulate(Scenario.national(), seed=1)``: wall time and peak memory.

Run: ``python benchmarks/bench_simulate.py [--scenario national] [--seed 1]``.

Peak memory is the maximum resident set size of a fresh child process that only imports the
package and simulates, so the figure is not inflated by this script. Targets (2-core machine):
under 30 s and under 6 GB for the national scenario.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, time
import verzuimmodel as vm
scen = vm.Scenario.named({scenario!r})
t0 = time.perf_counter()
cohort = vm.simulate(scen, seed={seed})
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2   # KiB -> GiB
print(json.dumps({{"wall_s": wall, "peak_gib": peak, "pupils": len(cohort.pupils),
                   "pupil_years": len(cohort.absence), "episodes": len(cohort.episodes),
                   "interventions": len(cohort.interventions)}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="national")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    runs = []
    for _ in range(args.repeat):
        out = subprocess.run([sys.executable, "-c", CHILD.format(scenario=args.scenario, seed=args.seed)],
                             check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["wall_s"])
    print(f"simulate(Scenario.{args.scenario}(), seed={args.seed}): {best['pupils']:,} pupils, "
          f"{best['pupil_years']:,} pupil-years, {best['episodes']:,} episodes, "
          f"{best['interventions']:,} interventions")
    print(f"wall time {best['wall_s']:.1f} s (best of {args.repeat}; target < 30 s); "
          f"peak memory {max(r['peak_gib'] for r in runs):.2f} GiB (target < 6 GB)")


if __name__ == "__main__":
    main()
