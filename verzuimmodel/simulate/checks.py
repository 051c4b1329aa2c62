"""Range checks of a :class:`~verzuimmodel.simulate.scenario.Scenario`: one-line errors naming the key."""

from __future__ import annotations

import numpy as np

__all__ = ["check_scenario"]


def _require(ok: bool, key: str, expected: str, value) -> None:
    if not ok:
        raise ValueError(f"scenario key '{key}': got {value!r}; expected {expected}")


def check_scenario(s) -> None:
    """Raise ``ValueError`` naming the first scenario key whose value is out of range."""
    p = s.population
    _require(p.n_regions >= 1, "population.n_regions", "at least 1", p.n_regions)
    _require(p.n_po_schools >= p.n_regions, "population.n_po_schools", "at least one per region", p.n_po_schools)
    _require(p.n_vo_schools >= p.n_regions, "population.n_vo_schools", "at least one per region", p.n_vo_schools)
    _require(p.n_cohorts >= 1, "population.n_cohorts", "at least 1", p.n_cohorts)
    _require(p.n_po_pupils is None or p.n_po_pupils >= p.n_po_schools, "population.n_po_pupils",
             "at least one pupil per school", p.n_po_pupils)
    _require(len(p.po_size_band_edges) == len(p.po_size_band_weights) + 1, "population.po_size_band_edges",
             "one more edge than po_size_band_weights", p.po_size_band_edges)
    _require(all(a < b for a, b in zip(p.po_size_band_edges, p.po_size_band_edges[1:])) and
             p.po_size_band_edges[0] > 0, "population.po_size_band_edges", "increasing positive sizes",
             p.po_size_band_edges)
    for name in ("sbo_share", "move_rate", "p_female", "p_disadvantaged", "p_chronic_illness", "p_special_needs",
                 "vmbo_share", "havo_share"):
        v = getattr(p, name)
        _require(0 <= v <= 1, f"population.{name}", "a probability in [0, 1]", v)
    _require(p.vmbo_share + p.havo_share <= 1, "population.havo_share", "vmbo_share + havo_share <= 1", p.havo_share)
    try:
        np.datetime64(p.followup_end, "D")
    except ValueError:
        _require(False, "population.followup_end", "a date YYYY-MM-DD", p.followup_end)
    v = s.variation
    _require(-1 <= v.tracking_rho <= 1, "variation.tracking_rho", "a correlation in [-1, 1]", v.tracking_rho)
    for name in ("sd_po_school", "sd_vo_school", "sd_year"):
        _require(getattr(v, name) >= 0, f"variation.{name}", "a standard deviation >= 0", getattr(v, name))
    a = s.absence
    _require(a.school_days > 0, "absence.school_days", "a positive number of days", a.school_days)
    for name in ("sick_reports", "late_arrivals", "luxury_days", "unexcused_hours"):
        m = getattr(a, name)
        _require(m.po_rate > 0 and m.vo_rate > 0, f"absence.{name}.po_rate", "positive rates", (m.po_rate, m.vo_rate))
        _require(m.dispersion > 0, f"absence.{name}.dispersion", "a positive NB theta", m.dispersion)
    _require(a.short_spell_mean >= 1, "absence.short_spell_mean", ">= 1 day", a.short_spell_mean)
    _require(a.long_spell_mean >= 7, "absence.long_spell_mean", ">= 7 days", a.long_spell_mean)
    r = s.recording
    for name in ("po_detection_sick", "po_detection_unexcused"):
        _require(0 < getattr(r, name) <= 1, f"recording.{name}", "a probability in (0, 1]", getattr(r, name))
    e = s.episodes
    _require(0 < e.shape, "episodes.shape", "a positive Weibull shape", e.shape)
    _require(e.ret_scale > 0 and e.non_scale >= 0, "episodes.ret_scale", "positive hazard scales",
             (e.ret_scale, e.non_scale))
    _require(e.frailty_variance >= 0, "episodes.frailty_variance", ">= 0", e.frailty_variance)
    _require(len(e.nonreturn_shares) == 3 and abs(sum(e.nonreturn_shares) - 1) < 1e-9 and
             min(e.nonreturn_shares) >= 0, "episodes.nonreturn_shares",
             "three shares (work, specialist_care, exemption) summing to 1", e.nonreturn_shares)
    for name in ("own_school_share", "p_av"):
        _require(0 <= getattr(e, name) <= 1, f"episodes.{name}", "a probability in [0, 1]", getattr(e, name))
    from ..schema import INTERVENTION_TYPES
    for name, iv in s.interventions.items():
        _require(name in INTERVENTION_TYPES, f"interventions.{name}",
                 "an intervention type: " + ", ".join(INTERVENTION_TYPES), name)
        _require(0 <= iv.uptake <= 1, f"interventions.{name}.uptake", "a probability in [0, 1]", iv.uptake)
        _require(iv.hr > 0, f"interventions.{name}.hr", "a positive hazard ratio", iv.hr)
        _require(isinstance(iv.review_days, (int, np.integer)) and 0 <= iv.review_days <= 365,
                 f"interventions.{name}.review_days", "whole days in 0-365 (0: any day)", iv.review_days)
        _require(iv.delay_mean > 0 and iv.delay_shape > 0, f"interventions.{name}.delay_mean",
                 "positive delay mean and shape", (iv.delay_mean, iv.delay_shape))
    ap = s.approach
    _require(0 <= ap.share_treated <= 1, "approach.share_treated", "a share in [0, 1]", ap.share_treated)
    _require(ap.n_steps >= 1, "approach.n_steps", "at least 1", ap.n_steps)
    _require(3 <= ap.exposed_from_grade <= 8, "approach.exposed_from_grade", "a PO group 3-8", ap.exposed_from_grade)
    for name in ("vo_unexcused_rate_ratio", "vo_sick_rate_ratio", "vo_episode_rate_ratio", "po_true_rate_ratio"):
        _require(getattr(ap, name) > 0, f"approach.{name}", "a positive rate ratio", getattr(ap, name))

    _require(p.vo_years in (4, 5, 6), "population.vo_years", "4, 5 or 6 VO years", p.vo_years)
    _require(0 <= p.po_switch_rate <= 1, "population.po_switch_rate", "a probability in [0, 1]", p.po_switch_rate)
    sev = e.severity
    _require(sev.sd >= 0, "episodes.severity.sd", "a standard deviation >= 0", sev.sd)
    _require(isinstance(sev.recorded, (bool, np.bool_)), "episodes.severity.recorded", "true or false", sev.recorded)
    _require(sev.loss_rate >= 0, "episodes.severity.loss_rate", "a rate per year >= 0", sev.loss_rate)
    for name, iv in s.interventions.items():
        _require(iv.effect_halflife_days >= 0, f"interventions.{name}.effect_halflife_days",
                 "a half-life in days >= 0 (0: no dependence on the start day)", iv.effect_halflife_days)
    _require(0 < ap.fidelity_mean <= 1, "approach.fidelity_mean", "a share in (0, 1]", ap.fidelity_mean)
    _require(ap.fidelity_concentration > 0, "approach.fidelity_concentration", "a positive number",
             ap.fidelity_concentration)
    cal = s.calendar
    for name in ("shock_unexcused_rr", "shock_sick_rr", "shock_episode_rr"):
        _require(getattr(cal, name) > 0, f"calendar.{name}", "a positive rate ratio", getattr(cal, name))
    _require(cal.shock_year == 0 or 1990 <= cal.shock_year <= 2100, "calendar.shock_year",
             "0 (none) or a school year 1990-2100", cal.shock_year)
    _require(0 < cal.vo_detection <= 1, "calendar.vo_detection", "a probability in (0, 1]", cal.vo_detection)
    _require(cal.vo_detection < 1 or (cal.vo_detection_trend == 0 and cal.adopter_vo_detection_trend == 0),
             "calendar.vo_detection", "below 1 when VO registration has a trend", cal.vo_detection)
    co = s.consult
    _require(0 <= co.uptake <= 1, "consult.uptake", "a probability in [0, 1]", co.uptake)
    _require(0 <= co.school_share <= 1, "consult.school_share", "a share in [0, 1]", co.school_share)
    _require(0 < co.sick_rate_ratio <= 1, "consult.sick_rate_ratio", "a rate ratio in (0, 1] (a consult does not "
             "raise sick absence)", co.sick_rate_ratio)
    _require(bool(np.isfinite(co.offer_confounding)) and abs(co.offer_confounding) <= 5, "consult.offer_confounding",
             "a log odds ratio per SD of school absence between -5 and 5", co.offer_confounding)
    _require(co.criterion_reports >= 2, "consult.criterion_reports", "at least 2 reports", co.criterion_reports)
    _require(1 <= co.criterion_weeks <= 40, "consult.criterion_weeks", "1-40 school weeks", co.criterion_weeks)
    es = s.estimands
    _require(es.treat_day >= 0, "estimands.treat_day", "a day >= 0", es.treat_day)
    _require(len(es.horizons_days) >= 1 and all(h > 0 for h in es.horizons_days), "estimands.horizons_days",
             "positive horizons in days", es.horizons_days)
    _require(es.rmst_days > 0, "estimands.rmst_days", "a positive horizon in days", es.rmst_days)
