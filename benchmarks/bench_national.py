"""Every registered estimator, the survival curves, the monitor and the report on the national cohort:
wall time and peak memory, each step in a fresh process, beside pyfixest on the same data.

Run: ``python benchmarks/bench_national.py [--cohort DIR | --seed 5] [--only a,b] [--protected-monitor]
[--report] [--json out.json]``

1. The national cohort (``Scenario.national()``, about 1.47 million pupils and 13.6 million
   pupil-years) is simulated once in a child process and written as parquet to a temporary
   directory (or read from ``--cohort DIR``, a cohort written by ``verzuim simulate``). The
   simulation's own time and peak memory are reported as the step ``simulate``.
2. Each step then runs in a fresh Python process that reads the cohort (``vm.read_cohort``), runs
   the step once and reports the step's wall time (reading excluded) and the process's peak
   resident memory (``ru_maxrss``: the kernel's high-water mark, the cohort included; the budget
   of issue 17 is 8 GB per step). A step that fails or runs out of time is reported with its error.
3. Steps: ``time_to_return``; ``monitor.quarterly`` by region without disclosure control
   (``min_count=0``); with ``--protected-monitor`` the protected national monitor by region
   (``monitor.tables``, what ``verzuim monitor`` publishes: several minutes); every estimator of
   ``vm.effects.available("cohort")``; beside them pyfixest's ``fepois`` on the same rows and model
   as the Poisson-family estimators (``vo_nb_glm``: VO pupils, cohort and VO school absorbed;
   ``po_recorded_naive``: PO pupil-years, school year absorbed; ``vo_episode_rate``) and ``feols``
   on the same rows with the rate as outcome (a linear analogue), SE clustered as the package's;
   with ``--report`` the national report (``vm.report.build(scenario="national")``).
4. Prints a table with ratios to pyfixest where there is a pair; ``--json`` writes it.

Every number depends on the machine and its load; the script prints the load average beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

import bench_fixest  # benchmarks/ is on the path: run from the repository root
from bench_fixest import PYFIXEST as FIXEST, _peak_gib

BUDGET_GIB = 8.0


def run_step(name: str, cohort_dir: str) -> dict:
    """Run one step in this (fresh) process; the result as a dict. Estimators and their pyfixest
    peers are run as ``bench_fixest.py`` runs them."""
    import verzuimmodel as vm

    if name in FIXEST or name in vm.effects.available("cohort"):
        return bench_fixest.run_step(name, cohort_dir)

    out: dict = {"step": name}
    t0 = time.perf_counter()
    cohort = vm.read_cohort(cohort_dir)
    out["read_seconds"] = time.perf_counter() - t0
    out["read_peak_gib"] = _peak_gib()
    try:
        t0 = time.perf_counter()
        if name == "time_to_return":
            r = vm.survival.time_to_return(cohort)
            out["result"] = f"{len(r.curves):,} curve rows, {len(r.effects)} effects"
        elif name == "monitor.quarterly(raw)":
            out["result"] = f"{len(vm.monitor.quarterly(cohort, by='region', min_count=0)):,} rows, unprotected"
        elif name == "monitor.tables(protected)":
            t = vm.monitor.tables(cohort, by="region")
            out["result"] = f"{len(t.quarterly):,} rows protected"
        elif name == "report":
            with tempfile.TemporaryDirectory() as tmp:
                vm.report.build(cohort, scenario="national", out=os.path.join(tmp, "report"), progress=False)
                out["result"] = "report.html and report.pdf written"
        else:
            raise ValueError(f"unknown step {name!r}")
        out["seconds"] = time.perf_counter() - t0
    except BaseException as ex:  # noqa: BLE001 - reported, not raised
        out["seconds"] = time.perf_counter() - t0
        out["error"] = " ".join(f"{type(ex).__name__}: {ex}".split())[:300]
        out["traceback"] = traceback.format_exc()[-1200:]
    out["peak_gib"] = _peak_gib()
    return out


def _child(name: str, cohort_dir: str, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--step", name, "--cohort", cohort_dir]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"step": name, "seconds": time.perf_counter() - t0, "error": f"stopped after {timeout:.0f} s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"step": name, "seconds": time.perf_counter() - t0,
                "error": f"exit code {p.returncode}: {p.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def _simulate(seed: int, folder: str) -> dict:
    code = ("import json, resource, time, verzuimmodel as vm\n"
            "t0 = time.perf_counter()\n"
            f"c = vm.simulate(vm.Scenario.national(), seed={seed})\n"
            "s = time.perf_counter() - t0\n"
            f"vm.io.write_cohort(c, {folder!r})\n"
            "print(json.dumps({'step': 'simulate', 'seconds': s, 'result': f'{len(c.pupils):,} pupils, '"
            "f'{len(c.absence):,} pupil-years', "
            "'peak_gib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1024 ** 3}))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"simulating the national cohort failed: {p.stderr.strip()[-500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort", help="a written national cohort (default: simulate one)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--only", help="comma-separated steps to run")
    ap.add_argument("--protected-monitor", action="store_true", help="also the protected monitor (minutes)")
    ap.add_argument("--report", action="store_true", help="also the national report")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds a step may take")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, args.cohort)), flush=True)
        return

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import verzuimmodel as vm

    steps = ["time_to_return", "monitor.quarterly(raw)"] + (["monitor.tables(protected)"] if args.protected_monitor
                                                         else [])
    steps += vm.effects.available("cohort") + list(FIXEST) + (["report"] if args.report else [])
    if args.only:
        steps = [s for s in steps if s in set(args.only.split(","))]
    print(f"load average at the start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cohort_dir = args.cohort
        if cohort_dir is None:
            cohort_dir = os.path.join(tmp, "national")
            rows.append(_simulate(args.seed, cohort_dir))
            _print(rows[-1])
        for s in steps:
            rows.append(_child(s, cohort_dir, args.timeout))
            _print(rows[-1])
    by = {r["step"]: r for r in rows}
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    print("ratios (package / pyfixest on the same rows, model time):")
    for pair in FIXEST:
        est = pair.split(":", 1)[1]
        if est in by and pair in by and "error" not in by[est] and "error" not in by[pair]:
            print(f"  {est:<22} {by[est]['seconds']:7.1f} s / {pair:<26} {by[pair]['model_seconds']:6.1f} s = "
                  f"{by[est]['seconds'] / by[pair]['model_seconds']:5.2f}x")
    over = [r["step"] for r in rows if r.get("peak_gib", 0) > BUDGET_GIB or r.get("seconds", 0) > 120
            or "error" in r]
    print(f"steps over 2 min or {BUDGET_GIB:.0f} GB, or failed: {', '.join(over) if over else 'none'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


def _print(r: dict) -> None:
    what = f"error: {r['error']}" if "error" in r else r.get("result", "")
    peak = f"{r['peak_gib']:5.2f} GiB" if "peak_gib" in r else "    ? GiB"
    print(f"  {r['step']:<28} {r['seconds']:8.1f} s  peak {peak}  {what}", flush=True)


if __name__ == "__main__":
    main()
