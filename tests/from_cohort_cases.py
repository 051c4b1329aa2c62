"""A known scenario for the recovery checks of ``Scenario.from_cohort`` and the parameters they compare.

``known_scenario()`` is the default region changed in size, composition, rates and the approach's
roll-out, so that a fit that returned defaults would fail; its true effects are the defaults, which
``from_cohort`` keeps (with other true effects the base rates absorb the difference: see
``changed_effects()``). ``PARAMETERS`` maps
each estimated parameter (dotted path) to how its error is measured: ``exact`` (a count or a code),
``abs`` (estimate - truth) or ``log`` (log estimate - log truth). ``benchmarks/from_cohort_recovery.py``
measures the errors over replicate cohorts; ``tests/test_from_cohort.py`` holds the tolerances.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

import verzuimmodel as vm

KNOWN_SEED = 2024
"""The seed of the cohort the test fits (not one of the benchmark's replicate seeds)."""
ROUND_TRIP_SEEDS = (7, 8, 9, 10)
"""Regions simulated from a fitted scenario for the round trip. A region's realised school effects move
all its absence means together (their SD is about 6% for one region), so the means are compared
averaged over these four."""
MEASURES = ("sick_reports", "late_arrivals", "luxury_days", "unexcused_hours")


def known_scenario() -> vm.Scenario:
    s = vm.Scenario.default()
    a, e, ivs = s.absence, s.episodes, s.interventions
    return replace(
        s, name="known",
        population=replace(s.population, n_po_schools=24, n_vo_schools=6, n_cohorts=6, first_cohort=2011,
                           n_po_pupils=4800, sbo_share=0.1, move_rate=0.03, p_female=0.52, p_disadvantaged=0.2, p_chronic_illness=0.15,
                           p_special_needs=0.05, vmbo_share=0.45, havo_share=0.3, feeder_concentration=0.8,
                           po_switch_rate=0.03),
        variation=replace(s.variation, tracking_rho=0.8),
        absence=replace(a, sick_reports=replace(a.sick_reports, po_rate=1.4, vo_rate=1.0, dispersion=5.0),
                        late_arrivals=replace(a.late_arrivals, grade_slope=0.08, loading=0.8),
                        unexcused_hours=replace(a.unexcused_hours, po_rate=2.0, vo_rate=4.0, loading=1.1,
                                                dispersion=0.6),
                        short_spell_mean=2.2, long_spell_mean=12.0, long_spell_logit=-3.2),
        episodes=replace(e, onset_po=0.0008, onset_vo=0.007, ret_scale=0.05, shape=0.8, p_av=0.3,
                         own_school_share=0.5),
        interventions={**ivs, "kernpartnerteam": replace(ivs["kernpartnerteam"], uptake=0.6, delay_mean=45.0)},
        approach=replace(s.approach, start_year=2015, pilot_schools=6, wave_size=3, share_treated=0.625),
    )


def changed_effects(scen: vm.Scenario) -> vm.Scenario:
    """``scen`` with other true effects than the default's (of the approach and an intervention)."""
    ivs = scen.interventions
    return replace(scen, approach=replace(scen.approach, vo_unexcused_rate_ratio=0.7, vo_episode_rate_ratio=0.6,
                                          po_true_rate_ratio=0.8),
                   interventions={**ivs, "kernpartnerteam": replace(ivs["kernpartnerteam"], hr=2.0)})


def _measures() -> dict[str, str]:
    out = {}
    for m in MEASURES:
        out.update({f"absence.{m}.po_rate": "log", f"absence.{m}.vo_rate": "log", f"absence.{m}.grade_slope": "abs",
                    f"absence.{m}.loading": "abs", f"absence.{m}.dispersion": "log"})
    return out


PARAMETERS: dict[str, str] = {
    "population.n_regions": "exact", "population.n_po_schools": "exact", "population.n_vo_schools": "exact",
    "population.n_cohorts": "exact", "population.first_cohort": "exact", "population.followup_end": "exact",
    "population.vo_years": "exact", "population.mode": "exact",
    "population.sbo_share": "abs", "population.n_po_pupils": "log",
    "population.move_rate": "log", "population.p_female": "abs", "population.p_disadvantaged": "abs",
    "population.p_chronic_illness": "abs", "population.p_special_needs": "abs", "population.vmbo_share": "abs",
    "population.havo_share": "abs", "population.feeder_concentration": "log", "population.po_switch_rate": "log",
    "variation.tracking_rho": "abs",
    **_measures(),
    "absence.school_days": "exact", "absence.short_spell_mean": "log", "absence.long_spell_mean": "log",
    "absence.long_spell_logit": "abs", "absence.long_spell_chronic": "abs",
    "episodes.onset_po": "log", "episodes.onset_vo": "log", "episodes.grade_slope_vo": "abs",
    "episodes.p5a_logit": "abs", "episodes.p_av": "abs", "episodes.shape": "abs", "episodes.ret_scale": "log",
    "episodes.non_scale": "log", "episodes.own_school_share": "abs", "episodes.nonreturn_shares.0": "abs",
    "episodes.nonreturn_shares.1": "abs", "episodes.nonreturn_shares.2": "abs",
    "episodes.av_return_mult": "log", "episodes.fiveA_return_mult": "log",
    **{f"interventions.{name}.{key}": kind for name in ("kernpartnerteam", "verzuimcoach", "mazl")
       for key, kind in (("uptake", "abs"), ("delay_mean", "log"))},
    "approach.design": "exact", "approach.start_year": "exact", "approach.pilot_schools": "exact",
    "approach.wave_size": "exact", "approach.share_treated": "abs",
}


def value(scen: vm.Scenario, path: str):
    """The parameter at a dotted path (dict keys and tuple positions too)."""
    obj = scen
    for part in path.split("."):
        if isinstance(obj, dict):
            obj = obj[part]
        elif isinstance(obj, tuple):
            obj = obj[int(part)]
        else:
            obj = getattr(obj, part)
    return obj


def error(fitted: vm.Scenario, truth: vm.Scenario, path: str) -> float:
    """The estimation error of one parameter, as its kind says (``exact``: 0 if equal, else inf)."""
    est, true, kind = value(fitted, path), value(truth, path), PARAMETERS[path]
    if kind == "exact":
        return 0.0 if est == true else np.inf
    if kind == "log":
        with np.errstate(divide="ignore"):                # a rate of 0 (the default's switch rate): -inf
            return float(np.log(est) - np.log(true))
    return float(est - true)


def cohort_means(cohort: vm.Cohort) -> dict[str, float]:
    """Pupils, schools, pupils per mainstream and per SBO school, and recorded absence per enrolled
    day by measure and level."""
    a, s = cohort.absence, cohort.schools
    kind = s.set_index("school_id")["school_type"].astype(str).reindex(cohort.pupils["po_school_id"]).to_numpy()
    out = {"pupils": float(len(cohort.pupils)),
           "po_schools": float((s["level"] == "po").sum()),
           "vo_schools": float((s["level"] == "vo").sum()),
           "pupils_per_bo_school": float((kind == "bo").sum() / (s["school_type"] == "bo").sum())}
    for level in ("po", "vo"):
        rows = a[a["level"] == level]
        for m in ("sick_days", *MEASURES):
            out[f"{m}.{level}"] = float(rows[m].sum() / rows["enrolled_days"].sum())
    return out


def round_trip(fitted: vm.Scenario, original: vm.Cohort) -> dict[str, float]:
    """Log ratios, simulated from ``fitted`` over ``original``: pupils, schools and pupils per mainstream
    school of the first simulated region (``*.first``), and the absence means averaged over the
    regions of :data:`ROUND_TRIP_SEEDS`."""
    a = cohort_means(original)
    sims = [cohort_means(vm.simulate(fitted, seed=seed)) for seed in ROUND_TRIP_SEEDS]
    out = {f"{k}.first": float(np.log(sims[0][k] / a[k]))
           for k in ("pupils", "po_schools", "vo_schools", "pupils_per_bo_school")}
    for k in a:
        if "." in k:
            out[k] = float(np.log(np.mean([s[k] for s in sims]) / a[k]))
    return out
