r"""A :class:`~verzuimmodel.simulate.scenario.Scenario` fitted to an observed cohort (``Scenario.from_cohort``).

The design check of one's own data asks what a study design could detect in regions *like this
one*: as many schools and pupils, the same absence and long-term absence, the same roll-out of the
approach. :func:`from_cohort` estimates those parameters of the data-generating process from the
five tables by the method of moments (with maximum likelihood for the episode durations and the
interventions' timing, whose score equations are moment equations of the same kind), and keeps
the defaults of :meth:`Scenario.default` for the rest, above all the **true effects**: the check
asks what the design could detect if the effects were those of the scenario, not what the data show.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.optimize import brentq

from ._cohort_arrays import CohortArrays, cohort_arrays, school_year_of
from ._fit_absence import calibrate_rates, fit_absence
from ._fit_episodes import fit_episodes
from .population import PO_YEARS, aug1
from .scenario import Approach, Population, Scenario

__all__ = ["from_cohort", "MOVE_MARGIN_DAYS"]

MOVE_MARGIN_DAYS = 45
"""A pupil whose follow-up ends within this many days of the end of the study (or of VO) has not moved:
registries close the school year on different days in July."""
MOVE_IN_DAYS = 31
"""In an open region, a pupil first observed more than this many days after the start of the window
(or of group 3) moved in."""
SIZE_BANDS = 5


def from_cohort(cohort, *, name: str = "own data", base: Scenario | None = None) -> Scenario:
    r"""Fit a scenario to an observed cohort by the method of moments.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort (:func:`verzuimmodel.read_cohort`), real or simulated (its ``truth`` and
        ``scenario`` are not used).
    name : str
        The scenario's name.
    base : Scenario, optional
        Where the parameters that are not estimated come from (default :meth:`Scenario.default`).

    Returns
    -------
    Scenario
        ``base`` with the parameters below replaced by their estimates.

    Notes
    -----
    Sums run over the data's rows; :math:`\hat{}` marks an estimate. Unless said otherwise a
    parameter is kept when the data hold nothing to estimate it from (no VO rows, no episodes).

    **Population** (counts and shares; exact or nearly so):

    - ``n_regions``: regions with both PO and VO schools (at least 1); ``n_po_schools``,
      ``n_vo_schools``: the schools of each level; ``sbo_share``: SBO schools / PO schools.
    - ``first_cohort``, ``n_cohorts``: the first and the number of distinct grade cohorts.
      ``followup_end``: the last follow-up day. ``vo_years``: the highest VO year in ``absence`` (4-6).
    - ``n_po_pupils`` :math:`= 8\,N/n_{cohorts}` (a cohort is one eighth of a school);
      school sizes :math:`8\,N_s/n_{cohorts}` per PO school give ``po_size_band_edges`` (the
      quantiles of the mainstream sizes, up to five bands) with ``po_size_band_weights`` (schools
      per band), and ``sbo_mean_size`` (mean SBO size). The simulator rescales the sizes to
      ``n_po_pupils``, so a simulated region has as many pupils as the data.
    - ``move_rate``: moves / years at risk, the exponential rate's estimate (a follow-up ending
      more than :data:`MOVE_MARGIN_DAYS` before the study end or the end of VO is a move; the last
      days are not at risk).
    - ``p_female``, ``p_disadvantaged``, ``p_chronic_illness``: shares of pupils;
      ``p_special_needs``: the share among pupils never at an SBO school (all SBO pupils have
      special needs); ``vmbo_share``, ``havo_share``: shares among pupils with a VO track.
    - ``po_switch_rate``: first changes of PO school / PO year transitions at risk, divided by
      :math:`1 - 1/n_{region}` (a change to a random school of the region may pick the same one).
    - ``feeder_concentration`` :math:`\alpha`: with :math:`n_{sk}` pupils of PO school :math:`s` in
      VO school :math:`k` of the :math:`K_s` in its region, a Dirichlet(:math:`\alpha`) share vector
      has :math:`E\sum_k p_k^2 = (1 - 1/K)/(K\alpha + 1) + 1/K`, estimated without the multinomial noise
      by :math:`\sum_s\sum_k n_{sk}(n_{sk} - 1) / \sum_s n_s(n_s - 1)`; solved for :math:`\alpha`.
    - ``mode``: ``open`` when ``pupils.followup_start`` shows pupils observed from after group 3
      (then ``first_cohort`` is the first observed school year and only pupils present from their
      window's start count for the sizes), else ``cohorts``.

    **Approach** (adoption pattern, from ``schools.approach_start_year`` of the PO schools):
    ``none`` if no school adopts; ``stepped_wedge`` with ``n_steps`` = the distinct start years if
    every school does; otherwise ``staggered`` with ``start_year`` the first year,
    ``pilot_schools`` the schools starting then, ``wave_size`` the mean number per later year and
    ``share_treated`` the share that ever adopts. Adoption is simulated at random: whether schools
    chose to adopt because of their absence cannot be told apart from chance in one region, so
    ``confounding`` and ``adoption_driver`` (used only by ``observational``) are kept.

    **Absence** (:mod:`._fit_absence`, the moment equations in its docstring), per measure (sick
    reports, late arrivals, luxury days, unexcused hours):

    - ``po_rate``, ``vo_rate``, ``grade_slope``: the Poisson score equations
      :math:`\sum_i (Y_i - \mu_i)\,x_i = 0`, :math:`x = (1\{PO\}, 1\{VO\}, \text{grade index})`, with
      :math:`\mu_i` holding the exposure (``enrolled_days - long_absence_days``), the kept covariate
      effects, PO detection and true effects, the lognormal means
      :math:`e^{(\ell^2 + \sigma^2 + \sigma_y^2)/2}` of the latent terms and the shift of the propensity
      given the VO track. Then the rates are divided by :math:`\sum Y / \sum E[Y \mid \text{schools}]` on a
      cohort simulated from the fitted scenario (:func:`~._fit_absence.calibrate_rates`): the
      simulator caps luxury days and unexcused hours by the school days left, and pupils with a high
      propensity spend more time in long-term episodes, outside the absence records; together about
      6% of VO unexcused hours in the default region, which no closed form has.
    - ``loading`` :math:`\ell` and ``dispersion`` :math:`\theta` (VO years, complete records): the share
      of low counts :math:`1\{Y \le k\}` and of pairs of a pupil's years that are both low, equal to
      their expectations under the model, integrated over the pupils' latent terms by Monte Carlo
      with fixed draws, the schools' effects held at what the data show. Product moments
      :math:`\sum Y_iY_j` were tried first: the counts' lognormal tails make them far too noisy
      (unexcused hours' loading 1.12 for 1.30).
    - ``school_days``: the most frequent ``enrolled_days``. ``long_spell_logit``,
      ``long_spell_chronic``: the logits of the long share of sick reports without and with a
      chronic illness. ``short_spell_mean``, ``long_spell_mean``: sick days regressed on short and
      long spells through the origin (years far from the exposure cap).

    **Variation**: ``tracking_rho`` :math:`\rho` from a pupil's PO and VO years that are both low
    (all measures together). ``loading``, ``dispersion`` and ``tracking_rho`` need at least 50 pupils
    with two VO years, else they are kept. Kept: ``sd_po_school`` and ``sd_vo_school``: the moment
    estimator from pairs of pupils of one school, :math:`\sum Y_iY_j / \sum E[Y_i]E[Y_j] = e^{\sigma^2}`,
    averaged 0.23 (SD 0.16) for a true 0.35 over ten default regions of 40 PO schools, dominated by
    the pupils' heavy-tailed counts, and a region holds too few schools for better; the defaults are
    calibrated to the published share of variance between schools. Also kept:
    ``po_school_carryover`` (weakly identified next to :math:`\sigma_{vo}`), ``sd_year`` (only
    :math:`(1 + 1/\theta)e^{\sigma_y^2}` is identified, so it is held and :math:`\theta` estimated) and
    ``school_sampling``.

    **Episodes** (:mod:`._fit_episodes`): ``onset_po``, ``onset_vo``, ``grade_slope_vo`` from first
    episodes per pupil-year at risk (Poisson score equations); ``p5a_logit`` and ``p_av`` from the
    types of the onsets; ``ret_scale``, ``non_scale``, ``shape`` and the type multipliers
    ``av_return_mult``, ``fiveA_return_mult``, ``fiveA_nonreturn_mult`` by maximum likelihood with
    the school frailty integrated out and the interventions' kept hazard ratios applied from their
    recorded starts; ``own_school_share`` and ``nonreturn_shares`` from the outcomes. Kept:
    ``recurrence_rr`` (the rate after a first episode mixes recurrence with selection on the latent
    propensity), ``loading``, ``school_loading``, the covariate effects on onset, type and return,
    ``frailty_variance`` (a handful of schools cannot separate it from the shape), ``lrv_min_days``
    (a definition) and ``severity``.

    **Interventions**: per type, ``uptake`` and ``delay_mean`` by maximum likelihood (a start on
    day :math:`d` or none before the episode ended, the kept ``delay_shape`` and uptake covariate
    effects); a type the data never record gets ``uptake = 0``.

    **Kept, not identifiable from the five tables**: every true effect (``approach`` rate ratios,
    ``po_true_rate_ratio``, ``modifier_disadvantaged``, the interventions' ``hr`` and their
    heterogeneity, ``consult``), ``recording`` (PO detection: the tables hold the recorded counts
    only), ``calendar`` (trends are confounded with the grade slopes in a cohort panel),
    ``approach.exposed_from_grade`` and fidelity, and ``estimands``.

    With true effects other than ``base``'s, the base rates absorb the difference (the first
    moments still match: a simulated region has the data's mean absence).

    The estimates' sampling error and bias over replicate cohorts of a region of 24 PO and 6 VO
    schools are measured by ``benchmarks/from_cohort_recovery.py``; ``tests/test_from_cohort.py``
    holds the tolerances derived from them.
    """
    base = Scenario.default() if base is None else base
    d = cohort_arrays(cohort)
    population = fit_population(d, base.population)
    scen = replace(base, name=name, population=population, approach=fit_approach(d, base.approach))
    absence, variation = fit_absence(d, scen)
    scen = replace(scen, absence=absence, variation=variation)
    c = variation.po_school_carryover
    episodes, interventions = fit_episodes(d, scen, variation.sd_po_school**2,
                                           variation.sd_vo_school**2 + c * c * variation.sd_po_school**2)
    scen = replace(scen, episodes=episodes, interventions=interventions)
    if absence is not base.absence:                 # absence was fitted: its first moments by simulation
        scen = replace(scen, absence=calibrate_rates(scen, d.n_pupils))
    return scen


def _iso(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def fit_population(d: CohortArrays, base: Population) -> Population:
    """The fitted :class:`Population` (see :func:`from_cohort`)."""
    po = d.s_po
    n_po, n_vo = int(po.sum()), int((~po).sum())
    if not n_po:
        raise ValueError("from_cohort: the cohort has no PO schools (schools.level 'po')")
    regions = min(len(np.unique(d.s_region[po])), len(np.unique(d.s_region[~po]))) if n_vo else 1
    n_regions = max(regions, 1)
    study_end = int(d.p_end.max())
    vo_rows = d.a_vo
    vo_years = int(np.clip(d.a_grade[vo_rows].max(), 4, 6)) if vo_rows.any() else base.vo_years
    grades = PO_YEARS + vo_years
    open_mode = d.has_followup_start and bool((d.p_start > aug1(d.p_cohort) + MOVE_IN_DAYS).any())
    values: dict = {"n_regions": n_regions, "n_po_schools": n_po, "n_vo_schools": max(n_vo, n_regions),
                    "sbo_share": float(d.s_sbo[po].mean()), "followup_end": _iso(study_end), "vo_years": vo_years,
                    "mode": "open" if open_mode else "cohorts"}
    if open_mode:
        first = int(school_year_of(np.array([d.p_start.min()]))[0])
        window = np.maximum(aug1(d.p_cohort), aug1(first))
        intake = d.p_start <= window + MOVE_IN_DAYS
        values["first_cohort"] = first
    else:
        intake = np.ones(d.n_pupils, dtype=bool)
        values["first_cohort"] = int(d.p_cohort.min())
        values["n_cohorts"] = int(len(np.unique(d.p_cohort)))
    n_cohorts = len(np.unique(d.p_cohort[intake]))
    po_index = np.flatnonzero(po)
    size = 8.0 * np.bincount(d.p_po_school[intake], minlength=d.n_schools)[po_index] / n_cohorts
    values["n_po_pupils"] = max(int(round(size.sum())), n_po)
    sbo = d.s_sbo[po_index]
    if (sbo & (size > 0)).any():
        values["sbo_mean_size"] = float(size[sbo & (size > 0)].mean())
    bo_sizes = size[~sbo & (size > 0)]
    if len(bo_sizes):
        values.update(_size_bands(bo_sizes))
    # moves: the exponential rate from the pupils' follow-up
    potential = np.minimum(study_end, aug1(d.p_cohort + grades) - 1) - MOVE_MARGIN_DAYS
    moved = d.p_end < potential
    years = np.clip(np.minimum(d.p_end, potential) - d.p_start + 1, 0, None).sum() / 365.0
    if years > 0:
        values["move_rate"] = float(min(moved.sum() / years, 1.0))
    values["p_female"] = float(d.p_female.mean())
    values["p_disadvantaged"] = float(d.p_dis.mean())
    values["p_chronic_illness"] = float(d.p_chronic.mean())
    po_rows = ~d.a_vo
    ever_sbo = np.bincount(d.a_pupil[po_rows], d.s_sbo[d.a_school[po_rows]], minlength=d.n_pupils) > 0
    mainstream = ~d.s_sbo[d.p_po_school] & ~ever_sbo
    if mainstream.any():
        values["p_special_needs"] = float(d.p_special[mainstream].mean())
    tracked = d.p_track >= 0
    if tracked.any():
        values["vmbo_share"] = float((d.p_track[tracked] == 0).mean())
        values["havo_share"] = float((d.p_track[tracked] == 1).mean())
    switch = _switch_rate(d)
    if switch is not None:
        values["po_switch_rate"] = switch
    alpha = _feeder_concentration(d)
    if alpha is not None:
        values["feeder_concentration"] = alpha
    return replace(base, **values)


def _size_bands(sizes: np.ndarray) -> dict:
    """Size bands at the quantiles of the mainstream school sizes, weighted by the schools in each."""
    k = int(min(SIZE_BANDS, max(1, len(sizes) // 4)))
    edges = np.unique(np.quantile(sizes, np.linspace(0, 1, k + 1)))
    if len(edges) < 2:
        edges = np.array([0.9, 1.1]) * sizes[0]
    edges[0] = max(edges[0], 1.0)
    edges[-1] = max(edges[-1], edges[0] + 1.0)
    weights, _ = np.histogram(np.clip(sizes, edges[0], edges[-1]), bins=edges)
    return {"po_size_band_edges": tuple(float(e) for e in edges),
            "po_size_band_weights": tuple(float(w) for w in weights)}


def _switch_rate(d: CohortArrays) -> float | None:
    """First changes of PO school per PO year transition at risk, corrected for changes to the same school."""
    po = ~d.a_vo
    order = np.lexsort((d.a_grade[po], d.a_pupil[po]))
    pupil, grade, school = d.a_pupil[po][order], d.a_grade[po][order], d.a_school[po][order]
    if len(pupil) < 2:
        return None
    step = (pupil[1:] == pupil[:-1]) & (grade[1:] == grade[:-1] + 1)
    changed = step & (school[1:] != school[:-1])
    # changes before each transition, within the pupil
    before = np.cumsum(changed) - changed
    start = np.searchsorted(pupil[1:], pupil[1:], side="left")
    prior = before - before[start]
    at_risk = step & (prior == 0)
    if not at_risk.any():
        return None
    per_region = np.bincount(d.s_region[d.s_po], minlength=d.s_region.max() + 1)
    n_region = per_region[d.s_region[school[1:][at_risk]]]
    same_school = np.mean(np.where(n_region > 0, 1.0 / np.maximum(n_region, 1), 0.0))
    rate = (changed & (prior == 0)).sum() / at_risk.sum() / max(1.0 - same_school, 1e-9)
    return float(min(rate, 1.0))


def _feeder_concentration(d: CohortArrays) -> float | None:
    """The Dirichlet concentration of the PO -> VO feeding (moment equation in :func:`from_cohort`)."""
    in_vo = d.p_vo_school >= 0
    if not in_vo.any():
        return None
    po, vo = d.p_po_school[in_vo], d.p_vo_school[in_vo]
    _, cell = np.unique(po * d.n_schools + vo, return_inverse=True)
    n_cell = np.bincount(cell)
    cell_po = np.zeros(len(n_cell), dtype=np.int64)
    cell_po[cell] = po
    n_school = np.bincount(po, minlength=d.n_schools)
    vo_per_region = np.bincount(d.s_region[~d.s_po], minlength=d.s_region.max() + 1)
    K = vo_per_region[d.s_region]                      # VO schools in each school's region
    num = np.bincount(cell_po, n_cell * (n_cell - 1.0), minlength=d.n_schools)
    weight = n_school * (n_school - 1.0)
    use = (K >= 2) & (n_school >= 2) & d.s_po
    if not use.any() or weight[use].sum() <= 0:
        return None
    H = num[use].sum() / weight[use].sum()
    w, k = weight[use], K[use].astype(float)

    def gap(log_alpha):
        alpha = np.exp(log_alpha)
        return (w * ((1 - 1 / k) / (k * alpha + 1) + 1 / k)).sum() / w.sum() - H

    lo, hi = np.log(0.01), np.log(100.0)
    if gap(lo) <= 0:
        return 0.01
    if gap(hi) >= 0:
        return 100.0
    return float(np.exp(brentq(gap, lo, hi, xtol=1e-8)))


def fit_approach(d: CohortArrays, base: Approach) -> Approach:
    """The adoption pattern of the PO approach (see :func:`from_cohort`)."""
    years = d.s_start[d.s_po]
    adopted = np.isfinite(years)
    if not adopted.any():
        return replace(base, design="none")
    first = int(years[adopted].min())
    if adopted.all():
        return replace(base, design="stepped_wedge", start_year=first, n_steps=int(len(np.unique(years))))
    counts = np.bincount((years[adopted] - first).astype(np.int64))
    later = counts[1:]
    wave = int(max(round(float(later.mean())), 1)) if len(later) else base.wave_size
    return replace(base, design="staggered", start_year=first, pilot_schools=int(counts[0]), wave_size=wave,
                   share_treated=float(adopted.mean()))
