"""Long-term absence episodes, their competing outcomes and in-episode interventions.

See :class:`verzuimmodel.simulate.scenario.Episodes` and
:class:`verzuimmodel.simulate.scenario.Intervention` for the equations. Episodes are drawn
school year by school year (one iteration per grade followed), each vectorised over all pupils.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from .population import PO_YEARS, Pupils, Schools, aug1
from .scenario import Scenario

TYPES = ("LRV", "AV", "5a")
OUTCOME_CODES = ("own_school", "other_school", "work", "specialist_care", "exemption", "censored")
CENSORED = 5
EXEMPTION = 4
FAR = 1e9
"""Breakpoint of an intervention that never starts (days)."""


@dataclass(frozen=True)
class EpisodeDraw:
    """Episodes and interventions as arrays (one entry per episode / intervention)."""

    pupil: np.ndarray        # pupil index
    grade: np.ndarray        # grade index (0-9) of the school year the episode started in
    school_vo: np.ndarray    # True if it started in VO
    school: np.ndarray       # index into PO or VO schools
    type: np.ndarray         # index into TYPES
    start: np.ndarray        # day number
    end: np.ndarray          # day number (censoring day if censored)
    outcome: np.ndarray      # index into OUTCOME_CODES
    latent_duration: np.ndarray  # days to the outcome had there been no censoring
    latent_cause: np.ndarray     # outcome index had there been no censoring
    iv_episode: np.ndarray   # episode index of each intervention
    iv_type: np.ndarray      # index into the scenario's interventions
    iv_start: np.ndarray     # day number
    hazard: dict             # per episode: lam_ret, lam_non, t0, severity, log_hr (m x J) ... (see _durations)
    potential: dict          # per episode: outcomes under "start j on treat_day" vs "never j" (see _durations)
    followup_end: np.ndarray  # pupils' follow-up end after loss to follow-up during episodes

    @property
    def n(self) -> int:
        return len(self.pupil)


@dataclass
class _Batch:
    pupil: np.ndarray
    grade: np.ndarray
    vo: np.ndarray
    school: np.ndarray
    type: np.ndarray
    start: np.ndarray


def draw_episodes(scen: Scenario, schools: Schools, pupils: Pupils, dose: np.ndarray,
                  rng: np.random.Generator) -> EpisodeDraw:
    """Draw all episodes of all pupils, year by year.

    ``dose`` is each pupil's exposure to the PO approach (0, or the fidelity of the school that
    had it in time): the VO onset rate is multiplied by ``approach.vo_episode_rate_ratio ** dose``.
    Calendar terms (:class:`~verzuimmodel.simulate.scenario.Calendar`) multiply the onset rate of
    school year ``y`` by ``exp(episode_trend * (y - y0))`` and, in the shock year, ``shock_episode_rr``.
    Only episodes still running on or starting after a pupil's ``observed_from`` day are kept.
    """
    e, var, cal = scen.episodes, scen.variation, scen.calendar
    n = pupils.n
    fu_end = pupils.followup_end.copy()
    busy_until = np.full(n, np.iinfo(np.int64).min // 2)   # first free day after the last episode chain
    had_episode = np.zeros(n, dtype=bool)
    base_x = (e.disadvantaged * pupils.disadvantaged + e.chronic_illness * pupils.chronic
              + e.special_needs * pupils.special)
    log_rr_exposed = np.log(scen.approach.vo_episode_rate_ratio) * dose
    all_pupils = np.arange(n)
    vo_eff = schools.vo_effect[pupils.vo_school] + var.po_school_carryover * schools.po_effect[pupils.po_school]
    parts: list[tuple[_Batch, dict]] = []
    for k in range(pupils.n_grades):
        po_school = pupils.po_school_at(all_pupils, k)
        po_eff = schools.po_effect[po_school]
        year_start = aug1(pupils.cohort + k)
        obs_end = np.minimum(aug1(pupils.cohort + k + 1), fu_end + 1)
        free_start = np.maximum(year_start, busy_until)
        window = np.clip(obs_end - free_start, 0, None)
        in_vo = k >= PO_YEARS
        if in_vo:
            log_rate = (np.log(e.onset_vo) + e.grade_slope_vo * (k - PO_YEARS) + e.loading * pupils.v
                        + e.school_loading * vo_eff + log_rr_exposed)
        else:
            log_rate = np.log(e.onset_po) + e.loading * pupils.u + e.school_loading * po_eff
        log_rate = log_rate + base_x + np.log(e.recurrence_rr) * had_episode
        if cal.episode_trend or (cal.shock_year and cal.shock_episode_rr != 1):
            year = pupils.cohort + k
            log_rate = (log_rate + cal.episode_trend * (year - cal.reference_year)
                        + np.log(cal.shock_episode_rr) * (year == cal.shock_year))
        p_onset = -np.expm1(-np.exp(log_rate) * window / 365.0)
        idx = np.flatnonzero(rng.random(n) < p_onset)
        start = free_start[idx] + np.floor(rng.random(len(idx)) * window[idx]).astype(np.int64)
        p5a = expit(e.p5a_logit + e.p5a_chronic * pupils.chronic[idx] + e.p5a_special * pupils.special[idx])
        r = rng.random(len(idx))
        etype = np.where(r < p5a, 2, np.where(r < p5a + (1 - p5a) * e.p_av, 1, 0))
        school = pupils.vo_school[idx] if in_vo else po_school[idx]
        batch = _Batch(idx, np.full(len(idx), k), np.full(len(idx), in_vo), school, etype, start)
        eps = _durations(scen, schools, pupils, fu_end, batch, rng)
        parts.append((batch, eps))
        chain_end = eps["end"].copy()
        # an episode ending in an exemption is followed by a 5a episode from that day
        follow = np.flatnonzero(eps["outcome"] == EXEMPTION)
        if len(follow):
            second = _Batch(idx[follow], batch.grade[follow], batch.vo[follow], school[follow],
                            np.full(len(follow), 2), eps["end"][follow])
            eps2 = _durations(scen, schools, pupils, fu_end, second, rng)
            parts.append((second, eps2))
            chain_end[follow] = eps2["end"]
        had_episode[idx] = True
        busy_until[idx] = chain_end + 1
    return _combine(parts, pupils.observed_from, fu_end)


def _combine(parts: list[tuple[_Batch, dict]], observed_from: np.ndarray, followup_end: np.ndarray) -> EpisodeDraw:
    """Concatenate yearly batches, keep observed episodes and renumber the interventions' episodes."""
    offsets = np.cumsum([0] + [len(b.pupil) for b, _ in parts])
    b = _Batch(*(np.concatenate([getattr(bb, f) for bb, _ in parts]) for f in
                 ("pupil", "grade", "vo", "school", "type", "start")))
    eps = {key: _concat([e[key] for _, e in parts]) for key in parts[0][1]}
    eps["iv_episode"] = np.concatenate([e["iv_episode"] + off for (_, e), off in zip(parts, offsets)])
    keep = eps["observed"] & (eps["end"] >= observed_from[b.pupil])
    new_index = np.cumsum(keep) - 1
    iv_keep = keep[eps["iv_episode"]]
    return EpisodeDraw(
        pupil=b.pupil[keep], grade=b.grade[keep], school_vo=b.vo[keep], school=b.school[keep], type=b.type[keep],
        start=b.start[keep], end=eps["end"][keep], outcome=eps["outcome"][keep],
        latent_duration=eps["latent_duration"][keep], latent_cause=eps["latent_cause"][keep],
        iv_episode=new_index[eps["iv_episode"][iv_keep]], iv_type=eps["iv_type"][iv_keep],
        iv_start=eps["iv_start"][iv_keep],
        hazard={k: v[keep] for k, v in eps["hazard"].items()},
        potential={k: v[keep] for k, v in eps["potential"].items()},
        followup_end=followup_end,
    )


def _concat(values: list):
    """Concatenate arrays, or dicts of arrays key by key."""
    if isinstance(values[0], dict):
        return {k: np.concatenate([v[k] for v in values]) for k in values[0]}
    return np.concatenate(values)


def _uses_severity(scen: Scenario) -> bool:
    sev = scen.episodes.severity
    return bool(sev.sd > 0 or sev.loss_rate > 0 or any(iv.uptake_severity or iv.timing_severity
                                                          for iv in scen.interventions.values()))


def _durations(scen: Scenario, schools: Schools, pupils: Pupils, fu_end: np.ndarray, b: _Batch,
               rng) -> dict:
    """Latent durations, outcomes, censoring and interventions for a batch of episodes.

    Also the potential outcomes of the target-trial estimands (``scenario.estimands``): for each
    intervention ``j``, with the same random numbers, the latent return time if ``j`` starts on
    ``treat_day`` (when the episode is still running) and if it never starts, the other
    interventions as they happen. Loss to follow-up (:class:`Severity`) shortens ``fu_end`` in place.
    """
    e = scen.episodes
    sev = e.severity
    m = len(b.pupil)
    p = b.pupil
    gamma = e.shape
    severity = rng.standard_normal(m) if _uses_severity(scen) else np.zeros(m)
    t0 = np.where(b.type == 0, float(e.lrv_min_days), 0.0)
    frailty = np.where(b.vo, schools.vo_frailty[np.where(b.vo, b.school, 0)],
                       schools.po_frailty[np.where(b.vo, 0, b.school)])
    xb = (e.ret_disadvantaged * pupils.disadvantaged[p] + e.ret_chronic_illness * pupils.chronic[p]
          + e.ret_special_needs * pupils.special[p] + e.ret_vo * b.vo)
    if sev.sd > 0:
        xb = xb - sev.sd * severity - sev.sd**2 / 2
    ret_mult = np.array([1.0, e.av_return_mult, e.fiveA_return_mult])[b.type]
    non_mult = np.array([1.0, 1.0, e.fiveA_nonreturn_mult])[b.type]
    lam_ret = e.ret_scale * np.exp(xb) * frailty * ret_mult
    lam_non = e.non_scale * non_mult
    # potential intervention starts (days since the first day of absence), LRV and AV only
    ivs = list(scen.interventions.values())
    starts = np.full((m, len(ivs)), FAR)
    eligible = b.type < 2
    for j, iv in enumerate(ivs):
        p_up = expit(logit(min(max(iv.uptake, 1e-9), 1 - 1e-9)) + iv.uptake_disadvantaged * pupils.disadvantaged[p]
                     + iv.uptake_chronic * pupils.chronic[p] + iv.uptake_severity * severity)
        offered = eligible & (rng.random(m) < p_up)
        delay = rng.gamma(iv.delay_shape, iv.delay_mean / iv.delay_shape, m)
        delay = np.ceil(delay * np.exp(-iv.timing_severity * severity) if iv.timing_severity else delay)
        if iv.review_days:
            delay = np.ceil(delay / iv.review_days) * iv.review_days
        starts[offered, j] = np.maximum(delay[offered], 1.0)
    log_hr = np.column_stack([np.log(iv.hr) + iv.hr_disadvantaged * pupils.disadvantaged[p]
                              + iv.hr_chronic * pupils.chronic[p] for iv in ivs]) if ivs else np.zeros((m, 0))
    E = rng.exponential(size=m)
    t_ret = invert_piecewise_weibull(E, lam_ret, gamma, t0, starts, hr_at(scen, log_hr, starts))
    with np.errstate(divide="ignore"):
        t_non = np.where(lam_non > 0, (t0**gamma + rng.exponential(size=m) / np.where(lam_non > 0, lam_non, 1.0))
                         ** (1 / gamma), np.inf)
    latent = np.minimum(t_ret, t_non)
    r = rng.random(m)
    nonret = np.asarray(e.nonreturn_shares)
    nonret_cause = 2 + np.searchsorted(np.cumsum(nonret)[:-1], r, side="right")
    cause = np.where(t_ret <= t_non, np.where(r < e.own_school_share, 0, 1), nonret_cause)
    latent_days = np.ceil(np.minimum(latent, 1e6)).astype(np.int64)
    censor_day = fu_end[p].copy()
    if sev.loss_rate > 0:
        # loss to follow-up from the day the episode is known; the pupil leaves the data then
        loss = b.start + np.ceil(t0 + rng.exponential(365.0 / (sev.loss_rate * np.exp(sev.loss * severity)))
                                 ).astype(np.int64)
        lost = (loss < b.start + latent_days) & (loss < censor_day)
        censor_day = np.where(lost, loss, censor_day)
        fu_end[p[lost]] = loss[lost]
    end = b.start + latent_days
    censored = end > censor_day
    end = np.where(censored, censor_day, end)
    outcome = np.where(censored, CENSORED, cause)
    observed = (censor_day - b.start) >= t0   # an LRV episode is known only once it lasted lrv_min_days
    observed &= b.start <= censor_day
    # interventions that started while the episode ran (strictly before its end)
    iv_ep, iv_j = np.nonzero(starts < (end - b.start)[:, None])
    return {"end": end, "outcome": outcome, "latent_duration": latent, "latent_cause": cause,
            "observed": observed, "iv_episode": iv_ep, "iv_type": iv_j,
            "iv_start": b.start[iv_ep] + starts[iv_ep, iv_j].astype(np.int64),
            "hazard": {"lam_ret": lam_ret, "lam_non": lam_non, "t0": t0, "severity": severity,
                       "log_hr": log_hr, "starts": starts, "nonreturn_cause": nonret_cause},
            "potential": _potential(scen, E, lam_ret, t0, starts, log_hr, t_non, nonret_cause)}


def hr_at(scen: Scenario, log_hr: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Hazard ratios of interventions starting on ``starts`` (days): ``exp(log_hr * 2^(-(s - delay_mean)/h))``."""
    ivs = list(scen.interventions.values())
    if not any(iv.effect_halflife_days or iv.hr_disadvantaged or iv.hr_chronic for iv in ivs):
        return np.array([iv.hr for iv in ivs])              # the same for every episode and start day
    decay = np.ones_like(starts)
    for j, iv in enumerate(ivs):
        if iv.effect_halflife_days > 0:
            decay[:, j] = np.exp2(-np.minimum(starts[:, j] - iv.delay_mean, 1e4) / iv.effect_halflife_days)
    return np.exp(log_hr * decay)


def _potential(scen: Scenario, E, lam_ret, t0, starts, log_hr, t_non, nonret_cause) -> dict[str, np.ndarray]:
    """Per episode and intervention ``j``: time to a suitable place (school, day programme, work or
    care; never after an exemption) if ``j`` starts on ``treat_day`` (arm 1) or never (arm 0).

    Returns ``{"time_to_place": (m, J, 2) days, "time_to_exemption": (m, J, 2)}`` (``inf``: never
    placed / never exempted; at most one of the two is finite).
    """
    m, J = starts.shape
    out = np.full((m, J, 2), np.inf)
    exempt = np.full((m, J, 2), np.inf)
    is_exemption = nonret_cause == 4
    placed_non = np.where(is_exemption, np.inf, t_non)     # exemption is not a suitable place
    for j in range(J):
        for arm in (0, 1):
            s = starts.copy()
            s[:, j] = float(scen.estimands.treat_day) if arm else FAR
            t_ret = invert_piecewise_weibull(E, lam_ret, scen.episodes.shape, t0, s, hr_at(scen, log_hr, s))
            out[:, j, arm] = np.where(t_ret <= t_non, t_ret, placed_non)
            exempt[:, j, arm] = np.where((t_ret > t_non) & is_exemption, t_non, np.inf)
    return {"time_to_place": out, "time_to_exemption": exempt}


def invert_piecewise_weibull(E: np.ndarray, lam: np.ndarray, gamma: float, t0: np.ndarray,
                             breaks: np.ndarray, hrs: np.ndarray) -> np.ndarray:
    """Solve ``H(T) = E`` for a Weibull-type hazard multiplied by ``hrs[:, j]`` from ``breaks[:, j]`` on.

    ``H(t) = lam * sum_k M_k * ((min(t, K_{k+1}))^gamma - K_k^gamma)_+`` over knots ``K_0 = t0 <
    K_1 <= ... `` (the sorted breakpoints, clipped below at ``t0``) with cumulative multipliers
    ``M_k``; the at-risk time starts at ``t0`` (left truncation). Vectorised over rows.
    """
    m, J = breaks.shape
    order = np.argsort(breaks, axis=1)
    b_sorted = np.maximum(np.take_along_axis(breaks, order, axis=1), t0[:, None])
    hr_sorted = np.take_along_axis(np.broadcast_to(hrs, (m, J)), order, axis=1)
    mult = np.cumprod(np.concatenate([np.ones((m, 1)), hr_sorted], axis=1), axis=1)
    knots = np.concatenate([t0[:, None], b_sorted], axis=1)           # m x (J+1)
    kg = knots**gamma
    seg = lam[:, None] * mult[:, :-1] * np.diff(kg, axis=1)            # hazard in finite segments
    cum = np.concatenate([np.zeros((m, 1)), np.cumsum(seg, axis=1)], axis=1)
    k = (cum[:, 1:] <= E[:, None]).sum(axis=1)                         # segment holding E
    rows = np.arange(m)
    base = kg[rows, k] + (E - cum[rows, k]) / (lam * mult[rows, k])
    return base ** (1.0 / gamma)
