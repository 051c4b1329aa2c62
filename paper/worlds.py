"""The factorial part of the paper's simulation study: which estimator holds in which world.

Each cell is one world (a named scenario, possibly with one factor changed), the estimators run in
it, grouped by the estimand each targets, and the number of replicates. The key cells (nulls,
heterogeneity, the pilot) have 1,000 replicates, so the Monte Carlo SE of a coverage near 0.95 is
at most 0.007. ``study_worlds`` runs every cell with :func:`verzuimmodel.diagnose`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

N_KEY = 1000
N_OTHER = 500
# The in-episode null cell: the type I error of the rare M@ZL (about 38 treated episodes a region)
# needs a Monte Carlo SE near 0.003 to tell a test at 5% from one at 6%. The cell had 1,000
# replicates until its first 1,000 rejected 7.2%; both are reported (the first 1,000 as a cell of
# their own: the replicates of a seed do not depend on how many are run).
N_NULL_EPISODES = 5000

def _world(name: str, **changes):
    """A named scenario with sections replaced: ``population={...}``, ``approach={...}``, ..."""
    import verzuimmodel as vm

    s = vm.Scenario.load(name)
    for section, values in changes.items():
        if section == "interventions":
            ivs = {k: dataclasses.replace(v, **values.get(k, {})) for k, v in s.interventions.items()}
            s = dataclasses.replace(s, interventions=ivs)
        else:
            s = dataclasses.replace(s, **{section: dataclasses.replace(getattr(s, section), **values)})
    return s


def _schools(n_po: int) -> dict:
    return {"n_po_schools": n_po, "n_vo_schools": max(2, n_po // 5)}


def cells() -> list[tuple[str, str, object, list[str], int]]:
    """``(aim, cell label, scenario, estimators, n_sims)`` for every cell of the study; each estimator
    is scored against the estimand it declares (its ``Target``)."""
    severity = {"kernpartnerteam": {"uptake_severity": 0.5}, "verzuimcoach": {"uptake_severity": 0.5}}
    return [
        # in-episode interventions: null, referral on what is measured, confounding by indication (two strengths)
        ("episodes", "null world", _world("null"),
         ["tv_cox_kernpartnerteam", "naive_cox_kernpartnerteam", "tv_cox_verzuimcoach", "tv_cox_mazl"],
         N_NULL_EPISODES),
        ("episodes", "measured referral", _world("default"),
         ["tv_cox_kernpartnerteam", "naive_cox_kernpartnerteam", "tv_cox_mazl"], N_KEY),
        ("episodes", "confounded referral (0.5)", _world("confounded_referral", interventions=severity),
         ["tv_cox_kernpartnerteam", "tv_cox_verzuimcoach"], N_OTHER),
        ("episodes", "confounded referral (1.0)", _world("confounded_referral"),
         ["tv_cox_kernpartnerteam", "tv_cox_verzuimcoach"], N_OTHER),
        # M@ZL consults: offered at random by school (as in the trial) or by schools with more absence
        ("mazl", "M@ZL offered at random", _world("mazl_consult"), ["mazl_itt_sick"], N_OTHER),
        ("mazl", "M@ZL offered by school absence", _world("mazl_consult", consult={"offer_confounding": 1.0}),
         ["mazl_itt_sick"], N_OTHER),
        # the PO approach: null, heterogeneity with adoption by disadvantage, trends, number of schools, the pilot
        ("approach", "null world", _world("null"),
         ["vo_nb_glm", "vo_ipw", "vo_did", "vo_episode_rate", "po_recorded_naive"], N_KEY),
        ("approach", "null world, mixed models", _world("null"), ["vo_nb_glmm", "vo_nb_glmm_sick"], 300),
        ("approach", "heterogeneous", _world("heterogeneous"), ["vo_did", "vo_ipw", "vo_nb_glm"], N_KEY),
        ("approach", "trend", _world("trend"), ["vo_did", "vo_nb_glm"], N_OTHER),
        *[("approach", f"{n} PO schools, parallel", _world("default", population=_schools(n),
                                                           approach={"design": "parallel"}),
           ["vo_nb_glm", "vo_did"], N_OTHER) for n in (12, 40, 80)],
        ("approach", "pilot: 12 of 40 schools, adoption by absence", _world(
            "default", approach={"design": "observational", "share_treated": 0.3, "confounding": 1.0}),
         ["vo_episode_rate", "vo_did"], N_KEY),
    ]


def study_worlds(backend: str, seed: int, n_scale: float = 1.0, aims: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Run every cell (of ``aims``, if given; ``n_scale`` < 1 for a quick look); one tidy row per cell
    and estimator. Each cell's numbers depend only on its own settings and ``seed``."""
    import verzuimmodel as vm

    rows = []
    for aim, label, scen, estimators, n in cells():
        if aims is not None and aim not in aims:
            continue
        d = vm.Design(scen, estimators=estimators, name=label)
        diag = vm.diagnose(d, n_sims=max(2, int(n * n_scale)), seed=seed, backend=backend, progress=True)
        rows.append(diag.tidy().assign(aim=aim, cell=label))
        first = int(N_KEY * n_scale)
        if diag.n_sims > first >= 2:       # the first N_KEY replicates as a cell of their own
            sub = dataclasses.replace(diag, n_sims=first, replicates=diag.replicates[diag.replicates["replicate"] < first])
            rows.append(sub.tidy().assign(aim=aim, cell=f"{label}, first {N_KEY:,}"))
    out = pd.concat(rows, ignore_index=True)
    z = np.sqrt(0.95 * 0.05 / out["n_sims"])
    out["holds"] = (out["bias"].abs() < 3 * out["bias_mcse"]) & ((out["coverage"] - 0.95).abs() < 3 * z)
    return out


def verdicts(worlds: pd.DataFrame) -> pd.DataFrame:
    """Which estimator holds in which cell: a wide table of 'yes' / 'no (bias)' / 'no (coverage)'."""
    z = np.sqrt(0.95 * 0.05 / worlds["n_sims"])
    biased = worlds["bias"].abs() >= 3 * worlds["bias_mcse"]
    word = np.where(~biased & ((worlds["coverage"] - 0.95).abs() < 3 * z), "yes",
                    np.where(biased, "no (bias)", "no (coverage)"))
    t = worlds.assign(verdict=word)
    return t.pivot_table(index="estimator", columns="cell", values="verdict", aggfunc="first", sort=False)
