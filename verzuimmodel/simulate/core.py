"""``simulate``: draw a synthetic cohort from a :class:`Scenario`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..schema import CODE_LISTS
from .absence import draw_absence, pupil_years
from .episodes import OUTCOME_CODES, TYPES, EpisodeDraw, draw_episodes
from .population import NEVER, PO_YEARS, VO_ID_OFFSET, Pupils, Schools, draw_pupils, draw_schools, exposure
from .truths import truth
from .scenario import Scenario

__all__ = ["simulate"]

TRACKS = ("vmbo", "havo", "vwo")


def simulate(scenario: Scenario, seed: int | np.random.SeedSequence | np.random.Generator = 0) -> Cohort:
    r"""Draw a synthetic pupil cohort with known true effects.

    The data-generating process (all parameters in ``scenario``; defaults calibrated to the
    published figures in ``data/calibration_targets.csv``):

    1. **Schools.** Regions hold PO and VO schools. PO sizes follow the CBS size bands; a share
       are SBO. PO school effect :math:`a_s \sim N(0, \sigma_{po}^2)`, VO school effect
       :math:`b_t \sim N(0, \sigma_{vo}^2)`, gamma frailties :math:`Z_s, Z_t` (mean 1, variance
       :math:`\theta`) on the return hazard, a detection effect per PO school.
    2. **Pupils.** Grade cohorts of every PO school, followed from group 3 to VO year 4. Sex,
       disadvantage (school-clustered), chronic illness, special needs (all SBO pupils), VO track.
       Latent propensity :math:`u_i \sim N(0,1)` in PO and :math:`v_i = \rho u_i + \sqrt{1-\rho^2}e_i`
       in VO. Each PO school spreads its pupils over its region's VO schools (Dirichlet), so PO and
       VO school effects are cross-classified. Follow-up ends at the study end, after VO year 4, or
       when the pupil moves away (exponential).
    3. **The PO approach.** Adoption years per PO school by design (parallel, stepped wedge,
       staggered, observational with confounding by the school effect :math:`a_s`). A pupil is
       exposed if the school had adopted by group ``exposed_from_grade``.
    4. **Long-term absence episodes** (LRV, AV, 5a): yearly onset
       :math:`\lambda_{iy} = \lambda_{level}\exp(\kappa\,prop_i + x_i'\beta + \text{school} + \log RR_{ep}\,
       \text{exposed}_i)\,\cdot\,RR_{rec}^{[\text{earlier episode}]}`; cause-specific return and
       non-return hazards :math:`h(t) = \lambda \gamma t^{\gamma-1}\ldots` with :math:`\gamma<1`
       (negative duration dependence), school frailty, and in-episode interventions that multiply
       the return hazard by :math:`HR_j` from their start :math:`s_j` (time-varying). Censoring at
       follow-up end. An exemption outcome starts a 5a episode. See
       :class:`~verzuimmodel.simulate.scenario.Episodes`.
    5. **Yearly absence** (sick reports and days, lateness, luxury absence, unexcused hours):
       negative binomial counts with exposure; PO records thinned by a detection probability
       the approach raises. See :mod:`verzuimmodel.simulate.absence`.
    6. **The worlds' ingredients** (all off in ``default``; on in the named worlds): an unmeasured
       episode severity that slows return and can drive referral, its timing and loss to
       follow-up (:class:`~verzuimmodel.simulate.scenario.Severity`); intervention effects that
       differ by pupil and fade with a later start (:class:`~verzuimmodel.simulate.scenario.Intervention`);
       calendar trends, adopter-specific trends, a shock year and VO registration trends
       (:class:`~verzuimmodel.simulate.scenario.Calendar`); changes of PO school and
       implementation fidelity (dose) of the approach; M@ZL consults by the sick-report criterion
       (:mod:`verzuimmodel.simulate.consult`); an open-population region with intake, movers and
       the 16-18-year-olds (``population.mode = "open"``).

    Parameters
    ----------
    scenario : Scenario
    seed : int, SeedSequence or Generator
        The only source of randomness (``np.random.default_rng(seed)``); global state is untouched.

    Returns
    -------
    Cohort
        With ``truth``:

        - ``po_approach_vo_rate_ratio``: marginal rate ratio of VO unexcused hours per school day,
          every PO school adopting in time vs none (ATE, intention to treat, as implemented), from
          potential outcomes (expected values given the drawn latent variables).
          ``..._exposed``: the same among pupils whose recorded PO school adopted in time (ATT);
          ``..._per_protocol``: every pupil fully exposed.
        - ``po_approach_vo_rate_ratio_conditional``: the rate ratio conditional on pupil and school
          effects (for a non-disadvantaged pupil).
        - ``po_approach_vo_episode_rate_ratio``: conditional rate ratio of VO episode onset.
        - ``po_approach_vo_sick_rate_ratio``: rate ratio of VO sick reports, and so of sick days (spell
          lengths do not depend on the approach), the same for every pupil.
        - ``po_approach_po_true_rate_ratio``: effect on true PO unexcused absence while active.
        - ``intervention_hr``: ``{type: HR}``, the hazard ratio of return to school (own or other
          school) from the start of the intervention, conditional on pupil covariates and school
          frailty.
        - ``intervention_risk``: ``{type: {...}}``, the target trial's estimands: the share of LRV
          and AV episodes in a suitable place by 3, 6 and 12 months with the intervention started
          on ``estimands.treat_day`` vs never, their difference and ratio, and the restricted mean
          days out of school (see :mod:`verzuimmodel.simulate.truths`).
        - ``mazl_itt_sick_rate_ratio``, ``mazl_sick_rate_ratio``: M@ZL consult effects (when on).
        - ``return_cif``: cumulative incidence of return to school by 3 and 6 months among LRV
          episodes (from latent, uncensored durations).
        - ``duration_shape``, ``frailty_variance``, ``notes`` (what each entry is conditional on), ...
    """
    return simulate_with_latent(scenario, seed)[0]


def simulate_with_latent(scenario: Scenario, seed: int | np.random.SeedSequence | np.random.Generator = 0
                         ) -> tuple[Cohort, Schools, Pupils]:
    """:func:`simulate`, also returning the drawn schools and pupils with their latent terms (school
    effects, detection, propensities), which no table holds; used to calibrate
    :meth:`Scenario.from_cohort <verzuimmodel.simulate.scenario.Scenario.from_cohort>`."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    schools = draw_schools(scenario, rng)
    pupils = draw_pupils(scenario, schools, rng)
    expo = exposure(scenario, schools, pupils)
    eps = draw_episodes(scenario, schools, pupils, expo.dose, rng)
    pupils = dataclasses.replace(pupils, followup_end=eps.followup_end)   # loss to follow-up in episodes
    rows = pupil_years(scenario, schools, pupils, eps)
    columns, abs_truth = draw_absence(scenario, schools, pupils, rows, expo, rng)
    seed_value = seed if isinstance(seed, (int, np.integer)) else None
    cohort = Cohort(
        schools=_schools_table(scenario, schools),
        pupils=_pupils_table(scenario, pupils),
        absence=_absence_table(scenario, pupils, rows, columns),
        episodes=_episodes_table(eps, pupils, scenario.episodes.severity.recorded),
        interventions=_interventions_table(scenario, eps, pupils),
        truth=truth(scenario, schools, pupils, expo, eps, abs_truth), scenario=scenario, seed=seed_value,
    )
    return cohort, schools, pupils


def _cat(values, codes: str) -> pd.Categorical:
    return pd.Categorical(values, categories=list(CODE_LISTS[codes]))


def _dates(day_numbers) -> np.ndarray:
    return np.asarray(day_numbers, dtype="int64").astype("datetime64[D]").astype("datetime64[ns]")


def _po_id(index):
    return np.asarray(index, dtype=np.int64) + 1


def _vo_id(index):
    return np.asarray(index, dtype=np.int64) + 1 + VO_ID_OFFSET


def _schools_table(scen: Scenario, s: Schools) -> pd.DataFrame:
    n_po, n_vo = len(s.po_region), len(s.vo_region)
    adopt = pd.array(np.where(s.po_adopt_year == NEVER, 0, s.po_adopt_year), dtype="Int64")
    adopt[s.po_adopt_year == NEVER] = pd.NA
    extra = {"mazl_offered": np.concatenate([s.po_mazl, s.vo_mazl])} if scen.consult.uptake > 0 else {}
    return pd.DataFrame({
        "school_id": np.concatenate([s.po_id, s.vo_id]),
        "region_id": np.concatenate([s.po_region, s.vo_region]).astype(np.int64) + 1,
        "level": _cat(["po"] * n_po + ["vo"] * n_vo, "level"),
        "school_type": _cat(np.concatenate([np.where(s.po_sbo, "sbo", "bo"), np.full(n_vo, "vo")]), "school_type"),
        "approach_start_year": pd.concat([pd.Series(adopt), pd.Series(pd.array([pd.NA] * n_vo, dtype="Int64"))],
                                         ignore_index=True),
        **extra,
    })


def _pupils_table(scen: Scenario, p: Pupils) -> pd.DataFrame:
    in_vo = p.n_years > PO_YEARS
    vo_id = pd.array(_vo_id(p.vo_school), dtype="Int64")
    vo_id[~in_vo] = pd.NA
    track = np.asarray(TRACKS, dtype=object)[p.track]
    track[~in_vo] = None
    return pd.DataFrame({
        "pupil_id": np.arange(1, p.n + 1, dtype=np.int64),
        "po_school_id": _po_id(p.recorded_po_school),
        "vo_school_id": vo_id,
        "cohort": p.cohort.astype(np.int64),
        "sex": _cat(np.where(p.female, "F", "M"), "sex"),
        "disadvantaged": p.disadvantaged,
        "chronic_illness": p.chronic,
        "special_needs": p.special,
        "vo_track": _cat(track, "vo_track"),
        "followup_end": _dates(p.followup_end),
        **({"followup_start": _dates(p.observed_from)} if scen.population.mode == "open" else {}),
    })


def _absence_table(scen: Scenario, p: Pupils, rows, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    vo = rows.vo
    gi = rows.grade_index
    ordered = ["sick_days", "sick_reports", "sick_long_spells", "late_arrivals", "luxury_days", "unexcused_hours"]
    return pd.DataFrame({
        "pupil_id": rows.pupil.astype(np.int64) + 1,
        "school_id": np.where(vo, _vo_id(p.vo_school[rows.pupil]), _po_id(rows.po_school)),
        "school_year": rows.school_year.astype(np.int32),
        "level": pd.Categorical.from_codes(vo.astype(np.int8), categories=list(CODE_LISTS["level"])),
        "grade": np.where(vo, gi - PO_YEARS + 1, gi + 3).astype(np.int8),
        "enrolled_days": rows.enrolled,
        **{k: columns.pop(k) for k in ordered},
        "long_absence_days": rows.long_days,
        **{k + "_true": columns.pop(k + "_true") for k in ordered},
        **columns,                                   # M@ZL signal and consult, when simulated
    }, copy=False)


def _episodes_table(e: EpisodeDraw, p: Pupils, recorded: bool = False) -> pd.DataFrame:
    severity = {"severity_score": np.round(e.hazard["severity"], 2)} if recorded else {}
    return pd.DataFrame({
        "episode_id": np.arange(1, e.n + 1, dtype=np.int64),
        "pupil_id": e.pupil.astype(np.int64) + 1,
        "school_id": np.where(e.school_vo, _vo_id(e.school), _po_id(e.school)),
        "episode_type": _cat(np.asarray(TYPES, dtype=object)[e.type], "episode_type"),
        "start_date": _dates(e.start),
        "end_date": _dates(e.end),
        "outcome": _cat(np.asarray(OUTCOME_CODES, dtype=object)[e.outcome], "outcome"),
        **severity,
    })


def _interventions_table(scen: Scenario, e: EpisodeDraw, p: Pupils) -> pd.DataFrame:
    names = np.asarray(list(scen.interventions), dtype=object)
    return pd.DataFrame({
        "intervention_id": np.arange(1, len(e.iv_episode) + 1, dtype=np.int64),
        "pupil_id": e.pupil[e.iv_episode].astype(np.int64) + 1,
        "episode_id": e.iv_episode.astype(np.int64) + 1,
        "intervention_type": _cat(names[e.iv_type] if len(names) else [], "intervention_type"),
        "start_date": _dates(e.iv_start),
    })
