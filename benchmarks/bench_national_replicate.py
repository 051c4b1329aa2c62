"""What one replicate of the national scenario costs with the effect report's analysis, and 1,000 of them.

Run: ``python benchmarks/bench_national_replicate.py [--seed 1] [--workers 2] [--check 20] [--json out.json]``

A replicate of a design diagnosis (``vm.diagnose``) draws a cohort and fits every estimator of the
design on it. Here the design is ``Scenario.national()`` (about 1.47 million PO pupils) with the
estimators the effect report diagnoses: its estimators of the PO approach's effect
(``report.results.approach_estimators``) and the time-varying and naive Cox models of each
in-episode intervention in the cohort (``report.results.intervention_estimators``).

1. Draws replicate 0 of that design (``design.draw(replicate_seed(seed, 0))``, as ``diagnose``
   does) in a child process and times it.
2. Fits each estimator on that cohort in its own forked child, one after the other, with an
   address-space limit (``--memory-limit-gib`` above the cohort's, default 8 GiB) and a time limit
   (``--fit-timeout``): an estimator that would exhaust the machine's memory fails with
   ``MemoryError`` instead of taking the machine down. Prints each fit's time, the peak resident
   memory of the process during it (the cohort included), and its estimate or error.
3. The per-replicate cost ``c`` = draw + the fits of the estimators that ran. With one replicate at
   a time per worker process, ``n`` replicates on ``N`` worker processes take about
   ``ceil(n / N) * c`` if every worker has a core of its own (and its memory: the peak of a
   replicate per worker). Prints that for 1,000 replicates and several ``N``.
4. ``--check K``: runs ``vm.diagnose`` of ``K`` replicates of the design restricted to the
   estimators that ran, on ``backend="processes"`` with ``--workers`` workers, and compares its
   wall time with the projection ``ceil(K / N) * c`` (and with the projection from the draw and
   fit times that run itself measured, which include the slowdown of replicates running side by
   side). This takes long: about ``K / N`` times the per-replicate cost.

Every number depends on the machine and its load; the script prints the load average beside them.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import resource
import sys
import time
import traceback

from timing import PeakRss, rss  # benchmarks/ is on the path: run from the repository root

GIB = 1024 ** 3


def _vms() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _fit_child(conn, est, data, limit_bytes: int) -> None:
    """In a forked child: fit ``est`` on ``data`` under an address-space limit; send the outcome."""
    import warnings

    from threadpoolctl import threadpool_limits

    resource.setrlimit(resource.RLIMIT_AS, (_vms() + limit_bytes, resource.RLIM_INFINITY))
    out = {"name": est.name}
    try:
        with threadpool_limits(limits=1), PeakRss() as peak, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            e = est.fn(data)
            out["seconds"] = time.perf_counter() - t0
        out.update(coef=float(e.coef), std_error=float(e.std_error), n_obs=e.n_obs,
                   warnings=sorted({w.category.__name__ for w in caught}))
    except BaseException as ex:  # noqa: BLE001 - reported, not raised
        out["seconds"] = time.perf_counter() - t0 if "t0" in locals() else 0.0
        out["error"] = " ".join(f"{type(ex).__name__}: {ex}".split())[:300]
        if not isinstance(ex, (MemoryError, ValueError)):
            out["traceback"] = traceback.format_exc()[-1500:]
    out["peak_rss_gib"] = peak.peak / GIB if "peak" in locals() else float("nan")
    conn.send(out)
    conn.close()


def _measure_child(conn, seed: int, limit_gib: float, fit_timeout: float, only: list[str] | None) -> None:
    """In a child: draw replicate 0, then fit every estimator in a forked grandchild."""
    import verzuimmodel as vm
    from verzuimmodel.evaluate.diagnose import replicate_seed
    from verzuimmodel.report.results import approach_estimators, intervention_estimators

    scenario = vm.Scenario.national()
    with PeakRss() as peak:
        t0 = time.perf_counter()
        cohort = vm.simulate(scenario, seed=replicate_seed(seed, 0))
        draw_s = time.perf_counter() - t0
    types = sorted(cohort.interventions["intervention_type"].astype(str).unique())
    names = approach_estimators() + intervention_estimators(types)
    if only:
        names = [n for n in names if n in only]
    result = {"draw_seconds": draw_s, "draw_peak_rss_gib": peak.peak / GIB, "cohort_rss_gib": rss() / GIB,
              "pupils": len(cohort.pupils), "pupil_years": len(cohort.absence), "episodes": len(cohort.episodes),
              "interventions": len(cohort.interventions), "estimators": names, "fits": []}
    conn.send(("draw", result))
    fork = mp.get_context("fork")
    for name in names:
        est = vm.effects.get(name)
        parent, child = fork.Pipe(duplex=False)
        p = fork.Process(target=_fit_child, args=(child, est, cohort, int(limit_gib * GIB)))
        t0 = time.perf_counter()
        p.start()
        child.close()
        fit = None
        if parent.poll(fit_timeout):
            try:
                fit = parent.recv()
            except EOFError:
                fit = None
        p.join(5 if fit is not None else 0)
        if p.is_alive():
            p.kill()
            p.join()
        if fit is None:
            fit = {"name": name, "seconds": time.perf_counter() - t0, "peak_rss_gib": float("nan"),
                   "error": (f"stopped after {fit_timeout:.0f} s" if p.exitcode == -9 else
                             f"the fitting process ended with exit code {p.exitcode}")}
        result["fits"].append(fit)
        conn.send(("fit", fit))
    conn.send(("done", result))
    conn.close()


def measure(seed: int, limit_gib: float, fit_timeout: float, only: list[str] | None = None) -> dict:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_measure_child, args=(child, seed, limit_gib, fit_timeout, only))
    p.start()
    child.close()
    result = None
    while True:
        try:
            kind, payload = parent.recv()
        except EOFError:
            break
        if kind == "draw":
            print(f"draw of replicate 0 of Scenario.national(): {payload['pupils']:,} pupils, "
                  f"{payload['pupil_years']:,} pupil-years, {payload['episodes']:,} episodes, "
                  f"{payload['interventions']:,} interventions: {payload['draw_seconds']:.1f} s, "
                  f"peak {payload['draw_peak_rss_gib']:.2f} GiB (cohort held: {payload['cohort_rss_gib']:.2f} GiB)",
                  flush=True)
            print(f"estimators of the report's diagnosis: {', '.join(payload['estimators'])}", flush=True)
        elif kind == "fit":
            what = (f"error: {payload['error']}" if "error" in payload else
                    f"estimate {payload['coef']:.4f} (SE {payload['std_error']:.4f}), n_obs {payload['n_obs']}"
                    + (f", warned: {', '.join(payload['warnings'])}" if payload["warnings"] else ""))
            print(f"  {payload['name']:<28} {payload['seconds']:8.1f} s  peak {payload['peak_rss_gib']:5.2f} GiB  "
                  f"{what}", flush=True)
            if "traceback" in payload:
                print(payload["traceback"], flush=True)
        else:
            result = payload
            break
    p.join()
    if result is None:
        sys.exit(f"the measuring process ended with exit code {p.exitcode}")
    return result


def check(seed: int, names: list[str], n_sims: int, workers: int) -> dict:
    import verzuimmodel as vm

    design = vm.Design(vm.Scenario.national(), names, name="national, report estimators that run")
    t0 = time.perf_counter()
    done = []

    def report(frame):
        done.extend(frame["replicate"].unique().tolist())
        print(f"  {len(done)}/{n_sims} replicates after {time.perf_counter() - t0:.0f} s "
              f"(load average {os.getloadavg()[0]:.1f})", flush=True)

    diag = vm.diagnose(design, n_sims=n_sims, seed=seed, backend="processes", workers=workers, progress=False,
                       on_chunk=report)
    t = diag.timings
    per_rep = t.groupby("replicate").agg(simulate=("simulate_seconds", "first"), fits=("fit_seconds", "sum"))
    tidy = diag.tidy()
    return {"wall_seconds": diag.wall_seconds, "mean_replicate_seconds": float(per_rep.sum(axis=1).mean()),
            "mean_simulate_seconds": float(per_rep["simulate"].mean()),
            "mean_fit_seconds": t.groupby("estimator")["fit_seconds"].mean().to_dict(),
            "n_failed": tidy.set_index("estimator")["n_failed"].to_dict(),
            "n_warned": tidy.set_index("estimator")["n_warned"].to_dict()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="worker processes of the --check run")
    ap.add_argument("--check", type=int, default=0, metavar="K", help="also run K replicates on processes")
    ap.add_argument("--memory-limit-gib", type=float, default=8.0,
                    help="address space an estimator's fit may add to the cohort's")
    ap.add_argument("--fit-timeout", type=float, default=1800.0, help="seconds a fit may take")
    ap.add_argument("--only", help="comma-separated estimators: measure these only (e.g. with a larger memory limit)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()

    print(f"load average at the start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)", flush=True)
    m = measure(args.seed, args.memory_limit_gib, args.fit_timeout, args.only.split(",") if args.only else None)
    ran = [f for f in m["fits"] if "error" not in f]
    left_out = [f for f in m["fits"] if "error" in f]
    fits_s = sum(f["seconds"] for f in ran)
    cost = m["draw_seconds"] + fits_s
    peak = max([m["draw_peak_rss_gib"], *(f["peak_rss_gib"] for f in ran)])
    print(f"per-replicate cost: draw {m['draw_seconds']:.1f} s + {len(ran)} fits {fits_s:.1f} s = {cost:.1f} s "
          f"({cost / 60:.2f} min); peak memory of a replicate {peak:.2f} GiB")
    for f in left_out:
        print(f"  left out: {f['name']}: {f['error']}")
    print("projected wall time of 1,000 replicates, one replicate at a time per worker process, a core and "
          f"{peak:.1f} GiB per worker:")
    for n in (1, 2, 8, 32, 64, 128):
        wall = math.ceil(1000 / n) * cost
        print(f"  N = {n:>3}: {wall / 3600:7.2f} h  (memory {n * peak:6.1f} GiB in all)")
    out = {"measure": m, "cost_seconds": cost, "peak_gib": peak, "ran": [f["name"] for f in ran],
           "left_out": {f["name"]: f["error"] for f in left_out}}
    if args.check:
        k, n = args.check, args.workers
        projected = math.ceil(k / n) * cost
        print(f"check: vm.diagnose of {k} replicates on backend='processes' with {n} workers "
              f"(projected {projected / 60:.1f} min) ...", flush=True)
        c = check(args.seed, [f["name"] for f in ran], k, n)
        in_run = math.ceil(k / n) * c["mean_replicate_seconds"]
        print(f"measured wall time {c['wall_seconds'] / 60:.1f} min = {c['wall_seconds'] / projected:.2f} x the "
              f"projection from the single replicate ({projected / 60:.1f} min); a replicate took "
              f"{c['mean_replicate_seconds']:.1f} s in this run (draw {c['mean_simulate_seconds']:.1f} s) against "
              f"{cost:.1f} s alone, and ceil(K/N) x that = {in_run / 60:.1f} min "
              f"({c['wall_seconds'] / in_run:.2f} x)")
        print(f"  n_failed {c['n_failed']}; n_warned {c['n_warned']}")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        out["check"] = {**c, "n_sims": k, "workers": n, "projected_seconds": projected}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2, default=str)


if __name__ == "__main__":
    main()
