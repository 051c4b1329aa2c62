"""The count-regression estimators of the PO approach beside pyfixest on the same rows: wall time and peak memory.

Run: ``python benchmarks/bench_fixest.py [--cohort DIR | --scenario national --seed 5] [--only a,b]
[--repeat 1] [--json out.json]`` (the national cohort needs about 6 GB per step; run one such job at a time).

1. The cohort is read from ``--cohort DIR`` (written by ``verzuim simulate``), or simulated from
   ``--scenario`` (default ``national``: about 1.47 million pupils, 13.6 million pupil-years) with
   ``--seed`` in a child process and written as parquet to a temporary directory.
2. Each step runs in a fresh Python process that reads the cohort (``vm.read_cohort``; not timed),
   then runs the step once. Reported: the step's wall time and the process's peak resident memory
   (``ru_maxrss``: the kernel's high-water mark, the cohort included; issue 17's budget is 8 GB and 2
   minutes per estimator).
3. Steps: the estimators ``vo_nb_glm`` (NB2, VO school effects absorbed, CR3 by PO school),
   ``po_recorded_naive`` (Poisson, school-year effects absorbed, CR1 by school), ``vo_episode_rate``
   (Poisson, cohort effects absorbed, CR1) and ``vo_ipw`` (weighted Poisson, CR1), each called as the
   registry calls it (its analysis table built from the cohort, then the fit); and pyfixest's
   ``fepois`` on the same rows and model as each Poisson-family estimator (Poisson, not NB2, for
   ``vo_nb_glm``: pyfixest has no NB regression; its cohort and VO school effects both absorbed) with
   CRV1 by the same clusters, and ``feols`` of the rate on the rows and effects of ``vo_nb_glm`` (a
   linear analogue). For pyfixest the time to build the rows with the package's own table builders and the
   model time are reported apart.
4. ``--repeat K`` runs the list of steps K times in turn (each time in fresh processes), so that a
   change of the machine's load touches every step alike, and keeps each step's fastest run.
5. Prints a table and, for each pair, the ratio of the estimator's time to pyfixest's model time and
   to its rows-plus-model time.

Every number depends on the machine and its load; the script prints the load average beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback

GIB = 1024 ** 3
ESTIMATORS = ("vo_nb_glm", "po_recorded_naive", "vo_episode_rate", "vo_ipw")
# pyfixest beside an estimator: (rows, formula, offset column, cluster column)
PYFIXEST = {
    "fepois:vo_nb_glm": ("vo_pupils", "unexcused_hours ~ exposed + {cov} | cohort + vo_school_id", "log_days",
                         "po_school_id"),
    "feols:vo_nb_glm": ("vo_pupils", "rate ~ exposed + {cov} | cohort + vo_school_id", None, "po_school_id"),
    "fepois:po_recorded_naive": ("po_pupil_years", "unexcused_hours ~ exposed | school_year", "log_days",
                                 "school_id"),
    "fepois:vo_episode_rate": ("vo_pupils", "vo_episodes ~ exposed + {cov} | cohort", "log_vo_years",
                               "po_school_id"),
}


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def _rows(cohort, kind: str):
    """The rows an estimator fits, built by the package's own table builders, and the varying covariates."""
    import numpy as np

    from verzuimmodel.effects.data import COVARIATES, vo_pupils
    from verzuimmodel.effects.estimators import _po_pupil_years

    if kind == "vo_pupils":
        d = vo_pupils(cohort)
        d = d.assign(log_days=np.log(d["days"]), log_vo_years=np.log(d["vo_years"]),
                     rate=d["unexcused_hours"] / d["days"])
        return d, [c for c in COVARIATES if d[c].nunique() > 1]
    d = _po_pupil_years(cohort)
    return d.assign(log_days=np.log(d["days"])), []


def run_step(name: str, cohort_dir: str) -> dict:
    """Run one step in this (fresh) process; the result as a dict."""
    import verzuimmodel as vm

    out: dict = {"step": name}
    if name in PYFIXEST:
        import pyfixest  # noqa: F401 - imported before the clock starts, as verzuimmodel is
    t0 = time.perf_counter()
    cohort = vm.read_cohort(cohort_dir)
    out["read_seconds"] = time.perf_counter() - t0
    out["read_peak_gib"] = _peak_gib()
    try:
        t0 = time.perf_counter()
        if name in PYFIXEST:
            import pyfixest as pf

            kind, formula, offset, cluster = PYFIXEST[name]
            d, cov = _rows(cohort, kind)
            formula = formula.format(cov=" + ".join(cov)) if cov else formula.replace(" + {cov}", "")
            out["rows_seconds"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            fit = (pf.fepois(formula, data=d, offset=offset, vcov={"CRV1": cluster}) if name.startswith("fepois")
                   else pf.feols(formula, data=d, vcov={"CRV1": cluster}))
            out["model_seconds"] = time.perf_counter() - t1
            out["result"] = f"coef {float(fit.coef()['exposed']):.5f} (SE {float(fit.se()['exposed']):.5f}), " \
                            f"{len(d):,} rows"
        else:
            e = vm.effects.get(name).fn(cohort)
            out["result"] = f"coef {e.coef:.5f} (SE {e.std_error:.5f}), {e.n_obs:,} rows"
        out["seconds"] = time.perf_counter() - t0
    except BaseException as ex:  # noqa: BLE001 - reported, not raised
        out["seconds"] = time.perf_counter() - t0
        out["error"] = " ".join(f"{type(ex).__name__}: {ex}".split())[:300]
        out["traceback"] = traceback.format_exc()[-1200:]
    out["peak_gib"] = _peak_gib()
    return out


def _child(name: str, cohort_dir: str, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--step", name, "--cohort", cohort_dir]
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


def _simulate(scenario: str, seed: int, folder: str) -> dict:
    code = ("import json, resource, time, verzuimmodel as vm\n"
            "t0 = time.perf_counter()\n"
            f"c = vm.simulate(vm.Scenario.load({scenario!r}), seed={seed})\n"
            "s = time.perf_counter() - t0\n"
            f"vm.io.write_cohort(c, {folder!r})\n"
            "print(json.dumps({'step': 'simulate', 'seconds': s, 'result': f'{len(c.pupils):,} pupils, '"
            "f'{len(c.absence):,} pupil-years', "
            "'peak_gib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1024 ** 3}))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"simulating the cohort failed: {p.stderr.strip()[-500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _print(r: dict) -> None:
    what = f"error: {r['error']}" if "error" in r else r.get("result", "")
    peak = f"{r['peak_gib']:5.2f} GiB" if "peak_gib" in r else "    ? GiB"
    model = f" (rows {r['rows_seconds']:5.1f} s + model {r['model_seconds']:5.1f} s)" if "model_seconds" in r else ""
    print(f"  {r['step']:<26} {r['seconds']:7.1f} s{model:<36} peak {peak}  {what}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort", help="a written cohort (default: simulate --scenario)")
    ap.add_argument("--scenario", default="national", help="shipped scenario name or TOML path (default national)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--only", help="comma-separated steps to run")
    ap.add_argument("--repeat", type=int, default=1, help="run the steps this many times; keep each one's fastest")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds a step may take")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, args.cohort)), flush=True)
        return

    steps = list(ESTIMATORS) + list(PYFIXEST)
    if args.only:
        steps = [s for s in steps if s in set(args.only.split(","))]
    print(f"load average at the start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cohort_dir = args.cohort
        if cohort_dir is None:
            cohort_dir = os.path.join(tmp, "cohort")
            rows.append(_simulate(args.scenario, args.seed, cohort_dir))
            _print(rows[-1])
        runs: dict[str, list[dict]] = {s: [] for s in steps}
        for k in range(args.repeat):
            if args.repeat > 1:
                print(f"round {k + 1} of {args.repeat} (load average {os.getloadavg()[0]:.1f})", flush=True)
            for s in steps:
                runs[s].append(_child(s, cohort_dir, args.timeout))
                _print(runs[s][-1])
    if args.repeat > 1:
        print("fastest of each step:")
    for s in steps:
        ok = [r for r in runs[s] if "error" not in r]
        rows.append(min(ok, key=lambda r: r["seconds"]) if ok else runs[s][-1])
        if args.repeat > 1:
            _print(rows[-1])
    by = {r["step"]: r for r in rows}
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    print("ratios (estimator's time / pyfixest's, same rows):")
    for pair in PYFIXEST:
        est = pair.split(":", 1)[1]
        if est in by and pair in by and "error" not in by[est] and "error" not in by[pair]:
            e, p = by[est], by[pair]
            print(f"  {est:<18} / {pair:<25} model {e['seconds'] / p['model_seconds']:5.2f}x, rows + model "
                  f"{e['seconds'] / p['seconds']:5.2f}x; peak memory {e['peak_gib'] / p['peak_gib']:4.2f}x")
    over = [r["step"] for r in rows if r["step"] in ESTIMATORS
            and (r.get("peak_gib", 0) > 8.0 or r.get("seconds", 0) > 120 or "error" in r)]
    print(f"estimators over 2 min or 8 GiB, or failed: {', '.join(over) if over else 'none'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
