"""Regenerate the paper's simulation study: tables, figures and the numbers quoted in paper.md.

Run: ``python paper/build.py`` (or ``make paper-study``; about 40 minutes on two cores, most of it the
1,000-replicate cells of the factorial study and the mixed models). Writes ``paper/results/*.csv``,
``paper/results/values.json``, ``paper/figures/*.png`` and renders ``paper/paper.md`` from
``paper/paper.template.md`` (every ``{{ name }}`` is a value from ``values.json``), so the text
can only quote what the study produced. ``--render-only`` (``make paper``) re-renders from the
stored results in seconds; ``--only worlds`` reruns one study, ``--only worlds --aims mazl`` only
the cells of one aim of the factorial study (the stored rows of the others are kept).

Everything is seeded; the numbers depend on the package, not on the machine or the backend.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from worlds import N_KEY, cells, study_worlds, verdicts  # noqa: E402  (the factorial study, beside this file)

RESULTS = HERE / "results"
FIGURES = HERE / "figures"
SEED = 20261123

N_SIMS_APPROACH = 150
N_SIMS_TRIALS = 1000


def region(n_regions: int, **approach):
    import verzuimmodel as vm

    s = vm.Scenario.default()
    return dataclasses.replace(
        s, name=f"{n_regions}-regions",
        population=dataclasses.replace(s.population, n_regions=n_regions, n_po_schools=40 * n_regions,
                                       n_vo_schools=8 * n_regions),
        approach=dataclasses.replace(s.approach, **approach))


# Aim 2: per adoption design (label: approach settings), the estimators meant for it and the naive ones; each
# estimator is scored against the estimand it declares
APPROACH_STUDY = {
    "parallel": ({"design": "parallel"}, ["vo_nb_glm", "vo_nb_glmm", "vo_did", "vo_ipw", "vo_nb_glmm_sick",
                                          "vo_episode_rate", "po_recorded_naive"]),
    "stepped_wedge": ({"design": "stepped_wedge"}, ["vo_nb_glm", "vo_nb_glmm", "vo_did", "vo_episode_rate"]),
    "staggered": ({"design": "staggered"}, ["vo_nb_glm", "vo_nb_glmm", "vo_did"]),
    # schools with more (latent) absence adopt more often
    "observational": ({"design": "observational"}, ["vo_nb_glm", "vo_did", "vo_ipw"]),
    # schools with more disadvantaged pupils adopt more often (measured: selection on observables)
    "observational_measured": ({"design": "observational", "adoption_driver": "disadvantaged",
                                "confounding": 1.5}, ["vo_did", "vo_ipw"]),
}


# the estimators each design is meant for (the others are shown as the bias to avoid)
MEANT_FOR = {
    "parallel": ["vo_nb_glm", "vo_nb_glmm", "vo_did", "vo_ipw", "vo_nb_glmm_sick", "vo_episode_rate"],
    "stepped_wedge": ["vo_nb_glm", "vo_nb_glmm", "vo_did", "vo_episode_rate"],
    "staggered": ["vo_nb_glm", "vo_nb_glmm", "vo_did"],
    "observational": ["vo_did"],
    "observational_measured": ["vo_did", "vo_ipw"],
}


def study_approach(backend: str) -> pd.DataFrame:
    """Aim 2: estimators of the PO approach's effect under five adoption designs (2-region cohorts)."""
    import verzuimmodel as vm

    rows = []
    for label, (approach, estimators) in APPROACH_STUDY.items():
        d = vm.Design(region(2, share_treated=0.5, **approach), estimators=estimators, name=label)
        t = vm.diagnose(d, n_sims=N_SIMS_APPROACH, seed=SEED, backend=backend, progress=True).tidy()
        rows.append(t.assign(design=label))
    return pd.concat(rows, ignore_index=True)


def study_power(backend: str) -> pd.DataFrame:
    """Aim 3: power of a 12-school pilot, a 12-school stepped wedge and a 40-school trial."""
    import verzuimmodel as vm
    from verzuimmodel.evaluate import ParallelTrial, SteppedWedgeTrial, formula_power

    trials = {
        "pilot_12_parallel": ParallelTrial(n_clusters=12, cluster_size=25, icc=0.05, effect=0.25),
        "stepped_wedge_12": SteppedWedgeTrial(n_clusters=12, n_periods=5, cluster_period_size=25, icc=0.05,
                                              effect=0.25),
        "parallel_40": ParallelTrial(n_clusters=40, cluster_size=25, icc=0.05, effect=0.25),
    }
    rows = []
    for name, trial in trials.items():
        t = vm.diagnose(vm.Design(trial, estimators=["cluster_means"], name=name), n_sims=N_SIMS_TRIALS, seed=SEED,
                        backend=backend, progress=True).tidy()
        rows.append(t.assign(trial=name, formula_power=formula_power(trial, reference="t")))
    return pd.concat(rows, ignore_index=True)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def values(worlds: pd.DataFrame, approach: pd.DataFrame, power: pd.DataFrame) -> dict:
    """The numbers quoted in the text, rounded as printed."""
    v: dict[str, str] = {"n_sims_key": str(N_KEY), "n_sims_approach": str(N_SIMS_APPROACH),
                         "n_sims_trials": str(N_SIMS_TRIALS)}
    for _, r in worlds.iterrows():
        key = f"w_{slug(r['cell'])}_{r['estimator']}"
        v[f"{key}_n"] = f"{r['n_sims']:,}"
        v[f"{key}_bias"] = f"{r['bias']:.3f}"
        v[f"{key}_bias_mcse"] = f"{r['bias_mcse']:.3f}"
        v[f"{key}_coverage"] = f"{r['coverage']:.3f}"
        v[f"{key}_coverage_mcse"] = f"{r['coverage_mcse']:.3f}"
        v[f"{key}_power"] = f"{r['power']:.3f}"
        v[f"{key}_power_mcse"] = f"{r['power_mcse']:.3f}"
        v[f"{key}_mean"] = f"{np.exp(r['mean_estimate']):.2f}"
        v[f"{key}_true"] = f"{np.exp(r['true_value']):.2f}"
        v[f"{key}_emp_se"] = f"{r['emp_se']:.3f}"
    for _, r in approach.iterrows():
        key = f"{r['design']}_{r['estimator']}"
        v[f"{key}_emp_se"] = f"{r['emp_se']:.3f}"
        v[f"{key}_power"] = f"{r['power']:.2f}"
        v[f"{key}_bias"] = f"{r['bias']:.3f}"
        v[f"{key}_bias_mcse"] = f"{r['bias_mcse']:.3f}"
        v[f"{key}_coverage"] = f"{r['coverage']:.2f}"
        v[f"{key}_mean_rr"] = f"{np.exp(r['mean_estimate']):.2f}"
        v[f"{key}_true_rr"] = f"{np.exp(r['true_value']):.2f}"
    for _, r in power.iterrows():
        v[f"{r['trial']}_power"] = f"{r['power']:.2f}"
        v[f"{r['trial']}_power_mcse"] = f"{r['power_mcse']:.3f}"
        v[f"{r['trial']}_formula_power"] = f"{r['formula_power']:.2f}"
    return v


def table_markdown(df: pd.DataFrame, cols: list[str]) -> str:
    def fmt(x):
        return f"{x:.3f}" if isinstance(x, (float, np.floating)) else str(x)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for _, r in df.iterrows()]
    return "\n".join(lines)


def render(v: dict, tables: dict[str, str]) -> str:
    text = (HERE / "paper.template.md").read_text(encoding="utf-8")
    names = set(re.findall(r"\{\{\s*([\w]+)\s*\}\}", text))
    missing = names - set(v) - set(tables)
    if missing:
        raise KeyError(f"paper.template.md quotes values the study does not produce: {sorted(missing)}")
    return re.sub(r"\{\{\s*([\w]+)\s*\}\}", lambda m: {**v, **tables}[m.group(1)], text)


def tables_from(worlds, approach, power) -> dict[str, str]:
    cols = ["estimator", "n_sims", "n_failed", "bias", "bias_mcse", "emp_se", "model_se", "coverage",
            "coverage_mcse", "power"]
    wide = verdicts(worlds).reset_index()
    return {
        "table_worlds": table_markdown(worlds, ["aim", "cell", "estimator", "estimand", "n_sims", "bias", "bias_mcse",
                                                "emp_se", "model_se", "coverage", "coverage_mcse", "power"]),
        "table_verdicts": table_markdown(wide.fillna(""), list(wide.columns)),
        "table_approach": table_markdown(
            approach.assign(meant_for=[("yes" if e in MEANT_FOR.get(d, ()) else "no")
                                       for d, e in zip(approach["design"], approach["estimator"])]),
            ["design", "meant_for"] + cols),
        "table_power": table_markdown(power, ["trial", "n_sims", "power", "power_mcse", "formula_power"]),
    }


def figures(approach: pd.DataFrame) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(exist_ok=True)
    d = approach[approach["estimand"] == "po_approach_vo_rate_ratio"].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(d) + 1.2), layout="constrained")
    y = np.arange(len(d))[::-1]
    for design, rows in d.groupby("design", sort=False):
        ax.errorbar(rows["bias"], y[rows.index], xerr=1.96 * rows["bias_mcse"], fmt="o", label=design)
    ax.set_yticks(y, d["estimator"])
    ax.axvline(0, color="grey", lw=1)
    ax.set_xlabel("bias of the log rate ratio of VO unexcused absence (95% Monte Carlo interval)")
    ax.legend(frameon=False, fontsize="small")
    fig.savefig(FIGURES / "approach_bias.png", dpi=120)
    plt.close(fig)


def rerun_worlds(backend: str, aims: list[str] | None) -> pd.DataFrame:
    """The factorial study, or only the cells of ``aims`` merged into the stored results (in the
    order of :func:`worlds.cells`)."""
    if not aims:
        return study_worlds(backend, SEED)
    new = study_worlds(backend, SEED, aims=tuple(aims))
    old = pd.read_csv(RESULTS / "worlds.csv")
    order = {aim: i for i, aim in enumerate(dict.fromkeys(c[0] for c in cells()))}
    merged = pd.concat([old[~old["aim"].isin(aims)], new], ignore_index=True)
    return merged.sort_values("aim", key=lambda a: a.map(order), kind="stable").reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="processes")
    ap.add_argument("--render-only", action="store_true", help="render paper.md from the stored results (seconds)")
    ap.add_argument("--only", nargs="+", choices=["worlds", "approach", "power"],
                    help="rerun only these studies; the others are read from the stored results")
    ap.add_argument("--aims", nargs="+", choices=sorted({c[0] for c in cells()}),
                    help="with worlds: rerun only the cells of these aims; the stored rows of the others are kept")
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    studies = {"worlds": lambda: rerun_worlds(args.backend, args.aims), "approach": lambda: study_approach(args.backend),
               "power": lambda: study_power(args.backend)}
    if not args.render_only:
        for name, run in studies.items():
            if args.only and name not in args.only:
                continue
            run().to_csv(RESULTS / f"{name}.csv", index=False, float_format="%.10g")
    # read back so rendering from the stored files gives byte-identical text
    worlds, approach, power = (pd.read_csv(RESULTS / f"{n}.csv") for n in studies)
    if not args.render_only:
        figures(approach)
    v = values(worlds, approach, power)
    (RESULTS / "values.json").write_text(json.dumps(v, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    (HERE / "paper.md").write_text(render(v, tables_from(worlds, approach, power)), encoding="utf-8")
    print("paper/paper.md rendered", file=sys.stderr)


if __name__ == "__main__":
    main()
