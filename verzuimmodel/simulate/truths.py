r"""``cohort.truth``: the true parameters and the estimands computed from potential outcomes.

Every estimand is computed on the same draw as the cohort (common random numbers), from latent,
uncensored outcomes; ``truth["notes"]`` says for each what it is conditional on and what kind of
contrast it is. The in-episode estimands of the target trial (``intervention_risk``) compare,
for every observed LRV or AV episode, the time to a *suitable place* -- back to the own or another
school or a day programme, work, or specialist care; an exemption is not one -- under two
strategies for intervention :math:`j`, the others as they happen:

- arm 1, "start :math:`j` on day ``treat_day`` after the first day of absence if still out";
- arm 0, "never start :math:`j`".

With :math:`T_i(a)` the time to a place in arm :math:`a` (:math:`\infty` if never placed) and
horizon :math:`h`: :math:`risk_a(h) = n^{-1}\sum_i 1[T_i(a) \le h]`, the risk difference
:math:`risk_1 - risk_0`, the risk ratio :math:`risk_1/risk_0`, and the restricted mean time out
of school :math:`n^{-1}\sum_i \min(T_i(a), \tau)` for :math:`\tau` = ``rmst_days``. These are
marginal (over the episodes' covariates, school frailties and severities) intention-to-treat
contrasts of the strategies: what a target-trial emulation estimates. ``hr_after_treat_day`` is
the marginal cause-specific hazard ratio of a place between the arms from ``treat_day`` to the
last horizon, from a Cox model fitted to both potential outcomes of every episode still out on
``treat_day`` (the arms do not differ before it).
"""

from __future__ import annotations

import numpy as np

from ..schema import RETURN_OUTCOMES
from .episodes import OUTCOME_CODES, EpisodeDraw
from .population import NEVER, Exposure, Pupils, Schools
from .scenario import Scenario

__all__ = ["truth", "intervention_risk"]


def intervention_risk(scen: Scenario, e: EpisodeDraw) -> dict[str, dict[str, float]]:
    """Absolute risks of a suitable place by each horizon and restricted mean time out, per
    intervention, for "start on ``treat_day``" vs "never" (see the module docstring)."""
    est = scen.estimands
    eligible = e.type < 2
    time = e.potential["time_to_place"][eligible]        # (n, J, 2)
    exempt = e.potential["time_to_exemption"][eligible]
    out: dict[str, dict[str, float]] = {}
    if not len(time):
        return out
    for j, name in enumerate(scen.interventions):
        row: dict[str, float] = {"treat_day": float(est.treat_day), "n_episodes": int(len(time))}
        for h in est.horizons_days:
            label = f"{round(h / 30.4)}m"
            r1, r0 = float(np.mean(time[:, j, 1] <= h)), float(np.mean(time[:, j, 0] <= h))
            row.update({f"risk_treated_{label}": r1, f"risk_untreated_{label}": r0, f"rd_{label}": r1 - r0,
                        f"rr_{label}": r1 / r0 if r0 > 0 else float("nan")})
        tau = float(est.rmst_days)
        m1, m0 = (float(np.mean(np.minimum(time[:, j, a], tau))) for a in (1, 0))
        row.update({"rmst_out_treated": m1, "rmst_out_untreated": m0, "rmst_out_diff": m1 - m0})
        row["hr_after_treat_day"] = _strategy_hr(time[:, j], exempt[:, j], float(est.treat_day),
                                                 float(max(est.horizons_days)))
        out[name] = row
    return out


def _strategy_hr(place: np.ndarray, exempt: np.ndarray, d: float, horizon: float) -> float:
    """The marginal cause-specific hazard ratio of a suitable place, arm 1 vs arm 0, from day ``d``
    to ``horizon``: a Cox model (Efron ties) fitted to both potential outcomes of every episode
    still out on day ``d`` (exemption censors). ``place``/``exempt``: (n, 2) times, arm 0 and 1."""
    import pandas as pd

    from ..survival.cox import CoxPH

    end = np.minimum(place, exempt)
    out = end[:, 0] > d                          # before d the arms are the same episode
    if out.sum() < 2:
        return float("nan")
    rows = pd.DataFrame({"start": d, "stop": np.minimum(end[out], horizon).ravel(order="F"),
                         "event": ((place[out] <= horizon) & (place[out] < np.inf)).ravel(order="F").astype(int),
                         "arm": np.repeat([0.0, 1.0], out.sum())})
    if rows["event"].sum() == 0:
        return float("nan")
    fit = CoxPH().fit(rows, duration="stop", event="event", entry="start", covariates=["arm"])
    return float(np.exp(fit.params_["arm"]))


def truth(scen: Scenario, schools: Schools, pupils: Pupils, expo: Exposure, e: EpisodeDraw, abs_truth: dict) -> dict:
    """Assemble ``cohort.truth`` (see :func:`verzuimmodel.simulate` for the keys)."""
    ap, ep = scen.approach, scen.episodes
    lrv = e.type == 0
    ret = np.isin(np.asarray(OUTCOME_CODES)[e.latent_cause], RETURN_OUTCOMES)
    cif = {f"{m}m": float(np.mean(ret[lrv] & (e.latent_duration[lrv] <= days))) if lrv.any() else None
           for m, days in ((3, 91), (6, 182))}
    heterogeneous = {name: bool(iv.hr_disadvantaged or iv.hr_chronic or iv.effect_halflife_days)
                     for name, iv in scen.interventions.items()}
    return {
        **abs_truth,
        "po_approach_vo_rate_ratio_conditional": ap.vo_unexcused_rate_ratio,
        "po_approach_vo_episode_rate_ratio": ap.vo_episode_rate_ratio,
        "po_approach_vo_sick_rate_ratio": ap.vo_sick_rate_ratio,
        "po_approach_po_true_rate_ratio": ap.po_true_rate_ratio,
        "intervention_hr": {name: iv.hr for name, iv in scen.interventions.items()},
        "intervention_risk": intervention_risk(scen, e),
        "return_cif": cif,
        "duration_shape": ep.shape,
        "frailty_variance": ep.frailty_variance,
        "severity_sd": ep.severity.sd,
        "design": ap.design,
        "n_po_schools_adopting": int((schools.po_adopt_year != NEVER).sum()),
        "share_pupils_exposed": float((expo.dose > 0).mean()),
        "share_pupils_assigned": float(expo.assigned.mean()),
        "notes": {
            "po_approach_vo_rate_ratio": "ATE, marginal, intention to treat: expected VO unexcused hours of all "
                                         "pupils with every PO school adopting in time (as implemented: fidelity, "
                                         "the school attended in group exposed_from_grade) / with none",
            "po_approach_vo_rate_ratio_exposed": "ATT, marginal, intention to treat: the same among pupils whose "
                                                 "recorded PO school had adopted in time, the world as it is vs "
                                                 "no approach",
            "po_approach_vo_rate_ratio_per_protocol": "marginal, per protocol: every pupil fully exposed "
                                                      "(fidelity 1) vs none",
            "po_approach_vo_rate_ratio_conditional": "conditional on pupil propensity, covariates and school "
                                                     "effects, full dose, for a pupil without modifiers",
            "po_approach_vo_episode_rate_ratio": "conditional rate ratio of VO episode onset at full dose",
            "po_approach_vo_sick_rate_ratio": "rate ratio of VO sick reports and sick days at full dose, the same "
                                              "for every pupil",
            "intervention_hr": "cause-specific HR of return to school (own or other), conditional on pupil "
                               "covariates, school frailty and episode severity; time-varying from the "
                               "intervention's start; for a pupil without effect modifiers starting on day "
                               "delay_mean" + (" (the HR varies: "
                                               + ", ".join(k for k, v in heterogeneous.items() if v) + ")"
                                               if any(heterogeneous.values()) else ""),
            "intervention_risk": "marginal, intention to treat of the strategy: share of LRV/AV episodes in a "
                                 "suitable place (school, day programme, work, care) by each horizon, "
                                 "intervention started on treat_day if still out vs never; restricted mean "
                                 "days out of school within rmst_days",
            "return_cif": "share of LRV episodes ending in a return to school within 3 / 6 months of the first "
                          "absence day, without censoring",
            "mazl_itt_sick_rate_ratio": "ATE among pupil-years meeting the M@ZL criterion for the first time, "
                                        "intention to treat: next school year's sick reports (and days), school "
                                        "offers M@ZL vs not",
            "mazl_sick_rate_ratio": "conditional, per protocol: sick reports in the years after a consult",
        },
    }
