"""Yearly absence by type for every pupil-year, true and as recorded.

For pupil ``i`` in school year ``y`` (grade index ``g``) and measure ``m``::

    log mu_iym = log(rate_m[level]) + slope_m * g_level + loading_m * prop_i + x_i' beta_m
                 + school_iy + w_iy + log(E_iy / school_days) + approach terms
    Y_iym ~ Poisson(mu_iym * G_iym),  G_iym ~ Gamma(theta_m, 1 / theta_m)

with ``prop_i = u_i`` (PO) or ``v_i`` (VO), ``school_iy = a_s`` (PO) or ``b_t + c * a_s`` (VO),
``w_iy ~ N(0, sd_year^2)`` shared by the measures of the pupil-year, and exposure ``E_iy`` the
enrolled school days outside long-term absence episodes. Sick days are built from sick reports
(see :class:`~verzuimmodel.simulate.scenario.Absence`). Recorded PO counts are binomial thinnings
of the true counts (see :class:`~verzuimmodel.simulate.scenario.Recording`); VO is recorded
completely unless the calendar says otherwise. ``school_iy`` uses the PO school attended that
year (pupils may change school). The approach's terms are scaled by the pupil's dose (the
fidelity of the school that had it in time, 0 if none); calendar terms (trends, adopter-specific
trends, a shock year) are added per school year (:class:`~verzuimmodel.simulate.scenario.Calendar`);
M@ZL consults thin later sick reports (:mod:`verzuimmodel.simulate.consult`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from .episodes import EpisodeDraw
from .population import PO_YEARS, Exposure, Pupils, Schools, aug1
from .scenario import Measure, Scenario

UNEXCUSED_MEASURES = ("late_arrivals", "luxury_days", "unexcused_hours")


@dataclass(frozen=True)
class Rows:
    """Pupil-year rows (before dropping rows without enrolment)."""

    pupil: np.ndarray
    grade_index: np.ndarray
    school_year: np.ndarray
    vo: np.ndarray
    enrolled: np.ndarray        # school days enrolled
    long_days: np.ndarray       # school days in an LRV episode
    approach_active: np.ndarray  # PO rows: approach running at the school that year
    po_school: np.ndarray       # PO school attended that year (PO rows; the last PO school on VO rows)


def pupil_years(scen: Scenario, schools: Schools, pupils: Pupils, eps: EpisodeDraw) -> Rows:
    """One row per observed pupil-year with enrolment, with enrolled days and days in long-term episodes."""
    days = scen.absence.school_days
    n_years = pupils.n_years
    first_row = np.concatenate([[0], np.cumsum(n_years)[:-1]])
    pupil = np.repeat(np.arange(pupils.n), n_years)
    grade_index = np.arange(len(pupil)) - first_row[pupil]
    school_year = pupils.cohort[pupil] + grade_index
    year_start = aug1(school_year)
    observed_days = (np.minimum(aug1(school_year + 1), pupils.followup_end[pupil] + 1)
                     - np.maximum(year_start, pupils.observed_from[pupil]))
    enrolled_share = np.clip(observed_days, 0, 365) / 365.0
    # days in episodes, per pupil-year: LRV counts as long-term absence, AV and 5a as not enrolled
    lrv_share = np.zeros(len(pupil))
    out_share = np.zeros(len(pupil))
    for lag in range(pupils.n_grades):
        g = eps.grade + lag
        ok = g < n_years[eps.pupil]
        row = first_row[eps.pupil[ok]] + g[ok]
        ys = year_start[row]
        overlap = np.clip(np.minimum(eps.end[ok], ys + 365) - np.maximum(eps.start[ok], ys), 0, None) / 365.0
        lrv = eps.type[ok] == 0
        lrv_share += np.bincount(row[lrv], overlap[lrv], minlength=len(pupil))
        out_share += np.bincount(row[~lrv], overlap[~lrv], minlength=len(pupil))
    enrolled_share = np.clip(enrolled_share - out_share, 0, None)
    enrolled = np.rint(enrolled_share * days).astype(np.int32)
    long_days = np.minimum(np.rint(np.minimum(lrv_share, enrolled_share) * days).astype(np.int32), enrolled)
    keep = enrolled > 0          # a year spent entirely out of school (AV, 5a) has no absence record
    pupil, grade_index, school_year = pupil[keep], grade_index[keep], school_year[keep]
    vo = grade_index >= PO_YEARS
    po_school = pupils.po_school_at(pupil, grade_index)
    adopt = schools.po_adopt_year[po_school]
    return Rows(pupil=pupil, grade_index=grade_index, school_year=school_year, vo=vo, enrolled=enrolled[keep],
                long_days=long_days[keep], approach_active=~vo & (adopt <= school_year), po_school=po_school)


@dataclass(frozen=True)
class _RowTerms:
    """Per-row parts of the log rate shared by all measures (computed once)."""

    base: np.ndarray          # school effect + pupil-year shock + log(exposure / school days)
    prop: np.ndarray          # u (PO) or v (VO)
    vmbo: np.ndarray          # VO row of a vmbo pupil


def _log_rate(m: Measure, rows: Rows, pupils: Pupils, terms: _RowTerms) -> np.ndarray:
    """``log mu`` of measure ``m`` per row, without approach terms (see the module docstring)."""
    k = np.arange(pupils.n_grades)
    level = np.where(k >= PO_YEARS, np.log(m.vo_rate) + m.grade_slope * (k - PO_YEARS),
                     np.log(m.po_rate) + m.grade_slope * k)
    x = (m.female * pupils.female + m.disadvantaged * pupils.disadvantaged + m.chronic_illness * pupils.chronic
         + m.special_needs * pupils.special)                     # per pupil, then one gather
    eta = level[rows.grade_index]
    eta += x[rows.pupil]
    eta += terms.base
    eta += m.loading * terms.prop
    if m.vmbo:
        eta += m.vmbo * terms.vmbo
    return eta


def draw_absence(scen: Scenario, schools: Schools, pupils: Pupils, rows: Rows, expo: Exposure,
                 rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict]:
    """True and recorded absence per row; also the truths of the approach's VO effects.

    Returns ``(columns, truth)``; see :func:`_vo_rate_ratio_truth` for the rate-ratio truths and
    :mod:`verzuimmodel.simulate.consult` for the M@ZL consult columns (``mazl_signal``,
    ``mazl_consult``; present only when the scenario has consults).
    """
    a, var, ap, cal = scen.absence, scen.variation, scen.approach, scen.calendar
    n = len(rows.pupil)
    p = rows.pupil
    po_eff = schools.po_effect[rows.po_school]
    vo_eff = schools.vo_effect[pupils.vo_school[p]] + var.po_school_carryover * schools.po_effect[pupils.po_school[p]]
    exposure = np.maximum(rows.enrolled - rows.long_days, 0)
    base = np.where(rows.vo, vo_eff, po_eff)
    del po_eff, vo_eff
    base += rng.normal(0.0, var.sd_year, n)
    base += np.log(np.maximum(exposure, 1e-12) / a.school_days)
    terms = _RowTerms(base=base, prop=np.where(rows.vo, pupils.v[p], pupils.u[p]),
                      vmbo=rows.vo & (pupils.track[p] == 0))
    dose = np.where(rows.vo, expo.dose[p], 0.0)
    po_true_rr = np.where(rows.approach_active, np.log(ap.po_true_rate_ratio), 0.0)
    vo_unexcused_effect = np.log(ap.vo_unexcused_rate_ratio) + ap.modifier_disadvantaged * pupils.disadvantaged[p]
    calendar = _calendar_terms(cal, rows, expo.adopter[p])

    true: dict[str, np.ndarray] = {}
    truth: dict = {}
    for name in ("sick_reports", *UNEXCUSED_MEASURES):
        m: Measure = getattr(a, name)
        eta = _log_rate(m, rows, pupils, terms)
        term = calendar["sick" if name == "sick_reports" else "unexcused"]
        if term is not None:
            eta += term
        if name == "unexcused_hours":
            truth.update(_vo_rate_ratio_truth(eta, rows.vo, vo_unexcused_effect, exposure, expo, p))
            eta = eta + vo_unexcused_effect * dose
        if name == "sick_reports":
            eta = eta + np.log(ap.vo_sick_rate_ratio) * dose
        else:
            eta = eta + po_true_rr
        mu = np.exp(eta, out=eta)
        mu[exposure == 0] = 0.0
        mu *= rng.gamma(m.dispersion, 1.0 / m.dispersion, n)
        true[name] = rng.poisson(mu).astype(np.int32)
        del eta, mu
    # sick days from sick reports: long spells (> 6 days) and short ones
    q_long = expit(a.long_spell_logit + a.long_spell_chronic * pupils.chronic[p])
    reports = true["sick_reports"] = np.minimum(true["sick_reports"], exposure).astype(np.int32)
    consult_columns = {}
    if scen.consult.uptake > 0:
        from .consult import draw_consults

        long_sp, consult_columns, consult_truth = draw_consults(scen, schools, pupils, rows, reports, q_long,
                                                                exposure, rng)
        truth.update(consult_truth)
    else:
        long_sp = rng.binomial(reports, q_long).astype(np.int32)
    short_sp = reports - long_sp
    short_extra = rng.poisson(short_sp * (a.short_spell_mean - 1.0)).astype(np.int32)
    long_extra = rng.poisson(long_sp * (a.long_spell_mean - 7.0)).astype(np.int32)
    sick_days = short_sp + short_extra + 7 * long_sp + long_extra
    # a year holds only so many school days: cap sick and luxury days at the exposure
    sick_days = np.minimum(sick_days, exposure)
    true["sick_days"] = sick_days
    true["sick_long_spells"] = long_sp
    true["luxury_days"] = np.minimum(true["luxury_days"], exposure - sick_days)
    true["unexcused_hours"] = np.minimum(true["unexcused_hours"], 8 * (exposure - sick_days - true["luxury_days"]))

    # recording: PO counts thinned with the school's detection probability, VO complete unless the
    # calendar makes it incomplete
    z = schools.po_detection_z[rows.po_school]
    shift = scen.recording.approach_shift * rows.approach_active + scen.recording.sd_school * z
    det_sick = np.where(rows.vo, 1.0, expit(logit(scen.recording.po_detection_sick) + shift))
    det_unexc = np.where(rows.vo, _vo_detection(cal, rows, expo.adopter[p]),
                         expit(logit(scen.recording.po_detection_unexcused) + shift))
    rec_long = rng.binomial(long_sp, det_sick).astype(np.int32)
    rec_short = rng.binomial(short_sp, det_sick).astype(np.int32)
    # a recorded spell brings its days: the extra days of recorded spells, shared out binomially
    rec_short_extra = rng.binomial(short_extra, rec_short / np.maximum(short_sp, 1)).astype(np.int32)
    rec_long_extra = rng.binomial(long_extra, rec_long / np.maximum(long_sp, 1)).astype(np.int32)
    recorded = {
        "sick_days": np.minimum(rec_short + rec_short_extra + 7 * rec_long + rec_long_extra, sick_days),
        "sick_reports": rec_long + rec_short,
        "sick_long_spells": rec_long,
        **{name: rng.binomial(true[name], det_unexc).astype(np.int32) for name in UNEXCUSED_MEASURES},
    }
    columns = {}
    for name in ("sick_days", "sick_reports", "sick_long_spells", "late_arrivals", "luxury_days", "unexcused_hours"):
        dtype = np.float64 if name == "unexcused_hours" else np.int32
        columns[name] = recorded.pop(name).astype(dtype, copy=False)
        columns[name + "_true"] = true.pop(name).astype(dtype, copy=False)
    columns.update(consult_columns)
    truth["po_detection_sick"] = {
        "sick_without_approach": scen.recording.po_detection_sick,
        "unexcused_without_approach": scen.recording.po_detection_unexcused,
        "mean_sick_with_approach_active": float(det_sick[rows.approach_active].mean()) if rows.approach_active.any()
        else None,
        "mean_sick_without_approach": float(det_sick[~rows.vo & ~rows.approach_active].mean())
        if (~rows.vo & ~rows.approach_active).any() else None,
    }
    return columns, truth


def _calendar_terms(cal, rows: Rows, adopter: np.ndarray) -> dict[str, np.ndarray | None]:
    """Additive log-rate terms of calendar time per row (``None`` when there are none); see
    :class:`~verzuimmodel.simulate.scenario.Calendar`."""
    rel = (rows.school_year - cal.reference_year).astype(np.float64)
    shock = rows.school_year == cal.shock_year if cal.shock_year else None
    unexc = sick = None
    if cal.unexcused_trend or cal.adopter_trend or (shock is not None and cal.shock_unexcused_rr != 1):
        unexc = (cal.unexcused_trend + cal.adopter_trend * adopter) * rel
        if shock is not None:
            unexc += np.log(cal.shock_unexcused_rr) * shock
    if cal.sick_trend or (shock is not None and cal.shock_sick_rr != 1):
        sick = cal.sick_trend * rel
        if shock is not None:
            sick += np.log(cal.shock_sick_rr) * shock
    return {"unexcused": unexc, "sick": sick}


def _vo_detection(cal, rows: Rows, adopter: np.ndarray):
    """Probability that VO registers a unit of unexcused absence (1: complete)."""
    if cal.vo_detection >= 1:
        return 1.0
    rel = rows.school_year - cal.reference_year
    return expit(logit(cal.vo_detection) + (cal.vo_detection_trend + cal.adopter_vo_detection_trend * adopter) * rel)


def _vo_rate_ratio_truth(eta, vo, effect, exposure, expo: Exposure, pupil) -> dict[str, float]:
    r"""Marginal rate ratios of VO unexcused hours from potential outcomes (expected values, same exposure).

    With :math:`\mu_{iy}(0)` the expected VO unexcused hours of pupil-year :math:`iy` without the
    approach anywhere and :math:`\beta_i` the pupil's full log effect (with modifiers), over VO
    pupil-years:

    - ``po_approach_vo_rate_ratio`` (ATE, intention to treat): every PO school adopting in time vs
      none, as implemented: :math:`\sum\mu(0)e^{\beta_i f_i} / \sum\mu(0)` with :math:`f_i` the
      fidelity of the school the pupil attended in group ``exposed_from_grade``;
    - ``po_approach_vo_rate_ratio_exposed`` (ATT, intention to treat): among pupils whose recorded
      PO school had adopted in time, the world as it is vs no approach:
      :math:`\sum\mu(0)e^{\beta_i d_i} / \sum\mu(0)` (dose :math:`d_i`: 0 for a pupil who moved in
      from a school without it);
    - ``po_approach_vo_rate_ratio_per_protocol``: every pupil fully exposed (fidelity 1) vs none.

    Without changes of school and with full fidelity the ATE equals the per-protocol ratio.
    """
    mu0 = np.where(exposure > 0, np.exp(eta), 0.0)[vo]
    beta = effect[vo]
    p = pupil[vo]
    total = mu0.sum()
    if total <= 0:
        return {"po_approach_vo_rate_ratio": 1.0, "po_approach_vo_rate_ratio_exposed": 1.0,
                "po_approach_vo_rate_ratio_per_protocol": 1.0}
    ate = float((mu0 * np.exp(beta * expo.full_dose[p])).sum() / total)
    treated = expo.assigned[p]
    att = float((mu0[treated] * np.exp(beta[treated] * expo.dose[p][treated])).sum() / mu0[treated].sum()) \
        if mu0[treated].sum() > 0 else ate
    pp = float((mu0 * np.exp(beta)).sum() / total)
    return {"po_approach_vo_rate_ratio": ate, "po_approach_vo_rate_ratio_exposed": att,
            "po_approach_vo_rate_ratio_per_protocol": pp}
