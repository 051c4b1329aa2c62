"""Target-trial emulation on the national cohort beside a vectorised R version of it, in one run.

Run: ``python benchmarks/bench_target_trial.py [--seed 1] [--n-boot 200] [--r-replicates 1] [--grace-days 0]
[--peers R]``

1. Simulates ``Scenario.national()`` (not timed).
2. Times ``vm.survival.target_trial(cohort, "kernpartnerteam", n_boot=200)`` (the trial "start the
   kernpartnerteam on day 56 vs never", ``grace_days`` 0 unless ``--grace-days``): wall time and the
   peak resident memory of this process during the call (sampled every 20 ms; the cohort included),
   and the same call with ``n_boot=0`` (the point estimate alone), so that the time per bootstrap
   replicate is their difference / ``n_boot``.
3. Peer ``R`` (needs Rscript with survival and jsonlite): writes the trial's episodes
   (``trial_data``) and the interval grid of the weight models to CSV/JSON, frees the cohort, and
   runs ``benchmarks/target_trial_bench.R``: per estimate person-interval rows, ``glm(binomial)`` of
   starting the intervention and of loss to follow-up, the clones' weights, ``survfit`` (weighted
   Aalen-Johansen) for the risks and ``coxph(weights, cluster)`` for the hazard ratio; first on all
   episodes (the point estimate, compared with Python's), then ``--r-replicates`` bootstrap
   replicates (pupils resampled). R's time for ``n_boot`` replicates is extrapolated linearly:
   point estimate + ``n_boot`` x the mean time of a replicate.

Prints the times, the ratio, the largest differences between R's and Python's point estimates,
and whether the targets are met: at least 10x faster than R (weights + coxph per replicate) and
under 5 minutes on the 2-core machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import verzuimmodel as vm
from verzuimmodel.survival.target_trial import _grid, trial_data
from timing import PeakRss  # noqa: E402  (benchmarks/ is on the path: run from the repository root)

GIB = 1024 ** 3
HERE = Path(__file__).resolve().parent
INTERVENTION, TREAT_DAY, HORIZONS, TAU, MAX_INTERVALS = "kernpartnerteam", 56, (91, 182, 365), 365, 60


def python_estimates(res) -> dict:
    """The point estimates R reproduces, from a ``TargetTrial``."""
    rk = res.risks.set_index(["arm", "horizon"])["estimate"]
    c = res.contrasts.set_index("term")
    return {"risk_start": [rk[("start", float(h))] for h in HORIZONS],
            "risk_never": [rk[("never", float(h))] for h in HORIZONS],
            "rmst_start": c.loc["rmst_out_start", "estimate"], "rmst_never": c.loc["rmst_out_never", "estimate"],
            "log_hr": float(np.log(c.loc["hr_after_treat_day", "estimate"])),
            "log_hr_robust_se": c.loc["hr_after_treat_day", "std_error_log"]}


def export_trial(cohort, grace_days: int, folder: Path) -> int:
    """The trial's episodes and the weight models' interval grid, as target_trial builds them."""
    td = trial_data(cohort, INTERVENTION)
    df = td.to_frame()
    df.to_csv(folder / "trial.csv", index=False, float_format="%.17g")
    grid = _grid(td, TREAT_DAY, grace_days, max(max(HORIZONS), TAU), MAX_INTERVALS)
    params = {"grid": grid.tolist(), "treat_day": TREAT_DAY, "grace_days": grace_days, "horizons": list(HORIZONS),
              "tau": TAU, "covariates": list(td.covariates)}
    (folder / "params.json").write_text(json.dumps(params))
    return len(df)


def run_r(folder: Path, replicates: int, seed: int) -> dict | None:
    if shutil.which("Rscript") is None:
        print("R: Rscript not found, skipped")
        return None
    out = folder / "r.json"
    t0 = time.perf_counter()
    proc = subprocess.run(["Rscript", str(HERE / "target_trial_bench.R"), str(folder / "trial.csv"),
                           str(folder / "params.json"), str(replicates), str(seed), str(out)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"R failed: {proc.stderr.strip()[-600:]}")
        return None
    for line in proc.stderr.splitlines():
        if line.startswith("R "):
            print(f"  {line}")
    r = json.loads(out.read_text())
    r["wall_s"] = wall
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1, help="seed of the national cohort")
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--grace-days", type=int, default=0)
    ap.add_argument("--r-replicates", type=int, default=1, help="bootstrap replicates R runs (then extrapolated)")
    ap.add_argument("--peers", default="R")
    args = ap.parse_args()
    load = os.getloadavg()
    t0 = time.perf_counter()
    cohort = vm.simulate(vm.Scenario.national(), seed=args.seed)
    print(f"national cohort (seed {args.seed}): {len(cohort.pupils):,} pupils, {len(cohort.episodes):,} episodes, "
          f"{len(cohort.interventions):,} interventions (simulated in {time.perf_counter() - t0:.1f} s, not counted); "
          f"load average {load[0]:.1f}")

    call = dict(grace_days=args.grace_days)
    t0 = time.perf_counter()
    vm.survival.target_trial(cohort, INTERVENTION, n_boot=0, **call)
    t_point = time.perf_counter() - t0
    with PeakRss() as mem:
        t0 = time.perf_counter()
        res = vm.survival.target_trial(cohort, INTERVENTION, n_boot=args.n_boot, **call)
        t_py = time.perf_counter() - t0
    per_rep = (t_py - t_point) / max(args.n_boot, 1)
    py = python_estimates(res)
    rd = res.contrasts.set_index("term").loc["rd_6m"]
    print(f"\ntarget_trial(cohort, {INTERVENTION!r}, n_boot={args.n_boot}, grace_days={args.grace_days}): "
          f"{res.n_episodes:,} episodes, {res.n_started_on_time} started on day {TREAT_DAY}"
          + (f"-{TREAT_DAY + args.grace_days}" if args.grace_days else "")
          + f", {res.notes['intervals']} intervals, {int(res.contrasts['n_boot'].iloc[0])} replicates used")
    print(f"  wall time {t_py:.1f} s (target < 300 s: {'met' if t_py < 300 else 'NOT met'}); point estimate alone "
          f"{t_point:.1f} s, {per_rep:.2f} s per bootstrap replicate")
    print(f"  peak memory during the call {mem.peak / GIB:.2f} GiB (cohort held before it {mem.start / GIB:.2f} GiB, "
          f"+{(mem.peak - mem.start) / GIB:.2f} GiB)")
    print(f"  6-month risk difference {rd['estimate']:.4f} (95% CI {rd['conf_low']:.4f} to {rd['conf_high']:.4f}); "
          f"HR after day {TREAT_DAY} {np.exp(py['log_hr']):.3f}")

    if "R" not in (args.peers.split(",") if args.peers else []):
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        n = export_trial(cohort, args.grace_days, folder)
        del cohort, res
        gc.collect()
        print(f"\nR ({n:,} episodes; point estimate on all of them, then {args.r_replicates} bootstrap "
              f"replicate(s)):")
        r = run_r(folder, args.r_replicates, args.seed)
    if r is None:
        return
    point = r["point"]
    d_risk = max(abs(a - b) for k in ("risk_start", "risk_never") for a, b in zip(np.atleast_1d(point[k]), py[k]))
    d_rmst = max(abs(float(np.atleast_1d(point[k])[0]) - py[k]) for k in ("rmst_start", "rmst_never"))
    d_hr = abs(float(np.atleast_1d(point["log_hr"])[0]) - py["log_hr"])
    d_se = abs(float(np.atleast_1d(point["log_hr_robust_se"])[0]) - py["log_hr_robust_se"])
    print(f"  same point estimates: max |risk difference| {d_risk:.1e}, restricted means {d_rmst:.1e} days, "
          f"log HR {d_hr:.1e}, its robust SE {d_se:.1e}")
    reps = r["replicates"]
    if not reps:
        return
    sec = pd.DataFrame([rep["seconds"] for rep in reps])
    t_r_point = point["seconds"]["total"]
    r_rep, r_rep_cox = sec["total"].mean(), sec["cox"].mean()
    r_all = t_r_point + args.n_boot * r_rep
    r_like = t_r_point + args.n_boot * (r_rep - r_rep_cox)
    print(f"  R point estimate {t_r_point:.1f} s (glm {point['seconds']['glm']:.1f}, weights "
          f"{point['seconds']['weights']:.1f}, survfit {point['seconds']['survfit']:.1f}, coxph "
          f"{point['seconds']['cox']:.1f}); a replicate {r_rep:.1f} s (mean of {len(reps)}; glm "
          f"{sec['glm'].mean():.1f}, weights {sec['weights'].mean():.1f}, survfit {sec['survfit'].mean():.1f}, "
          f"coxph {r_rep_cox:.1f}); peak memory {r['peak_gib']:.2f} GiB; Rscript wall {r['wall_s']:.1f} s")
    print(f"  R for {args.n_boot} replicates, extrapolated (point + {args.n_boot} x replicate): {r_all:.0f} s "
          f"({r_all / 3600:.2f} h) with coxph per replicate; {r_like:.0f} s without it (as Python's replicates)")
    ratio, ratio_like = r_all / t_py, r_like / t_py
    print(f"  -> verzuimmodel is {ratio:.0f}x faster (target >= 10x: {'met' if ratio >= 10 else 'NOT met'}); "
          f"{ratio_like:.0f}x against R without coxph per replicate; per replicate {r_rep / per_rep:.0f}x "
          f"({(r_rep - r_rep_cox) / per_rep:.0f}x without coxph)")


if __name__ == "__main__":
    main()
