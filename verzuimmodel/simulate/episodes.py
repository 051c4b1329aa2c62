"""Long-term absence episodes, their competing outcomes and in-episode interventions.

See :class:`verzuimmodel.simulate.scenario.Episodes` and
:class:`verzuimmodel.simulate.scenario.Intervention` for the equations. Episodes are drawn
school year by school year (ten iterations), each vectorised over all pupils.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from .population import GRADES, PO_YEARS, Pupils, Schools, aug1
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


def draw_episodes(scen: Scenario, schools: Schools, pupils: Pupils, exposed: np.ndarray,
                  rng: np.random.Generator) -> EpisodeDraw:
    """Draw all episodes of all pupils, year by year.

    ``exposed`` marks pupils whose PO school had the approach in time (their VO onset rate is
    multiplied by ``approach.vo_episode_rate_ratio``).
    """
    e, var = scen.episodes, scen.variation
    n = pupils.n
    busy_until = np.full(n, np.iinfo(np.int64).min // 2)   # first free day after the last episode chain
    had_episode = np.zeros(n, dtype=bool)
    base_x = (e.disadvantaged * pupils.disadvantaged + e.chronic_illness * pupils.chronic
              + e.special_needs * pupils.special)
    log_rr_exposed = np.log(scen.approach.vo_episode_rate_ratio) * exposed
    po_eff = schools.po_effect[pupils.po_school]
    vo_eff = schools.vo_effect[pupils.vo_school] + var.po_school_carryover * po_eff
    parts: list[tuple[_Batch, dict]] = []
    for k in range(GRADES):
        year_start = aug1(pupils.cohort + k)
        obs_end = np.minimum(aug1(pupils.cohort + k + 1), pupils.followup_end + 1)
        free_start = np.maximum(year_start, busy_until)
        window = np.clip(obs_end - free_start, 0, None)
        in_vo = k >= PO_YEARS
        if in_vo:
            log_rate = (np.log(e.onset_vo) + e.grade_slope_vo * (k - PO_YEARS) + e.loading * pupils.v
                        + e.school_loading * vo_eff + log_rr_exposed)
        else:
            log_rate = np.log(e.onset_po) + e.loading * pupils.u + e.school_loading * po_eff
        log_rate = log_rate + base_x + np.log(e.recurrence_rr) * had_episode
        p_onset = -np.expm1(-np.exp(log_rate) * window / 365.0)
        idx = np.flatnonzero(rng.random(n) < p_onset)
        start = free_start[idx] + np.floor(rng.random(len(idx)) * window[idx]).astype(np.int64)
        p5a = expit(e.p5a_logit + e.p5a_chronic * pupils.chronic[idx] + e.p5a_special * pupils.special[idx])
        r = rng.random(len(idx))
        etype = np.where(r < p5a, 2, np.where(r < p5a + (1 - p5a) * e.p_av, 1, 0))
        school = pupils.vo_school[idx] if in_vo else pupils.po_school[idx]
        batch = _Batch(idx, np.full(len(idx), k), np.full(len(idx), in_vo), school, etype, start)
        eps = _durations(scen, schools, pupils, batch, rng)
        parts.append((batch, eps))
        chain_end = eps["end"].copy()
        # an episode ending in an exemption is followed by a 5a episode from that day
        follow = np.flatnonzero(eps["outcome"] == EXEMPTION)
        if len(follow):
            second = _Batch(idx[follow], batch.grade[follow], batch.vo[follow], school[follow],
                            np.full(len(follow), 2), eps["end"][follow])
            eps2 = _durations(scen, schools, pupils, second, rng)
            parts.append((second, eps2))
            chain_end[follow] = eps2["end"]
        had_episode[idx] = True
        busy_until[idx] = chain_end + 1
    return _combine(parts)


def _combine(parts: list[tuple[_Batch, dict]]) -> EpisodeDraw:
    """Concatenate yearly batches, keep observed episodes and renumber the interventions' episodes."""
    offsets = np.cumsum([0] + [len(b.pupil) for b, _ in parts])
    b = _Batch(*(np.concatenate([getattr(bb, f) for bb, _ in parts]) for f in
                 ("pupil", "grade", "vo", "school", "type", "start")))
    eps = {key: np.concatenate([e[key] for _, e in parts]) for key in parts[0][1]}
    eps["iv_episode"] = np.concatenate([e["iv_episode"] + off for (_, e), off in zip(parts, offsets)])
    keep = eps["observed"]
    new_index = np.cumsum(keep) - 1
    iv_keep = keep[eps["iv_episode"]]
    return EpisodeDraw(
        pupil=b.pupil[keep], grade=b.grade[keep], school_vo=b.vo[keep], school=b.school[keep], type=b.type[keep],
        start=b.start[keep], end=eps["end"][keep], outcome=eps["outcome"][keep],
        latent_duration=eps["latent_duration"][keep], latent_cause=eps["latent_cause"][keep],
        iv_episode=new_index[eps["iv_episode"][iv_keep]], iv_type=eps["iv_type"][iv_keep],
        iv_start=eps["iv_start"][iv_keep],
    )


def _durations(scen: Scenario, schools: Schools, pupils: Pupils, b: _Batch, rng) -> dict[str, np.ndarray]:
    """Latent durations, outcomes, censoring and interventions for a batch of episodes."""
    e = scen.episodes
    m = len(b.pupil)
    p = b.pupil
    gamma = e.shape
    t0 = np.where(b.type == 0, float(e.lrv_min_days), 0.0)
    frailty = np.where(b.vo, schools.vo_frailty[np.where(b.vo, b.school, 0)],
                       schools.po_frailty[np.where(b.vo, 0, b.school)])
    xb = (e.ret_disadvantaged * pupils.disadvantaged[p] + e.ret_chronic_illness * pupils.chronic[p]
          + e.ret_special_needs * pupils.special[p] + e.ret_vo * b.vo)
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
                     + iv.uptake_chronic * pupils.chronic[p])
        offered = eligible & (rng.random(m) < p_up)
        delay = np.ceil(rng.gamma(iv.delay_shape, iv.delay_mean / iv.delay_shape, m))
        starts[offered, j] = np.maximum(delay[offered], 1.0)
    hrs = np.array([iv.hr for iv in ivs])
    t_ret = invert_piecewise_weibull(rng.exponential(size=m), lam_ret, gamma, t0, starts, hrs)
    with np.errstate(divide="ignore"):
        t_non = np.where(lam_non > 0, (t0**gamma + rng.exponential(size=m) / np.where(lam_non > 0, lam_non, 1.0))
                         ** (1 / gamma), np.inf)
    latent = np.minimum(t_ret, t_non)
    r = rng.random(m)
    nonret = np.asarray(e.nonreturn_shares)
    cause = np.where(t_ret <= t_non, np.where(r < e.own_school_share, 0, 1),
                     2 + np.searchsorted(np.cumsum(nonret)[:-1], r, side="right"))
    latent_days = np.ceil(np.minimum(latent, 1e6)).astype(np.int64)
    censor_day = pupils.followup_end[p]
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
            "iv_start": b.start[iv_ep] + starts[iv_ep, iv_j].astype(np.int64)}


def invert_piecewise_weibull(E: np.ndarray, lam: np.ndarray, gamma: float, t0: np.ndarray,
                             breaks: np.ndarray, hrs: np.ndarray) -> np.ndarray:
    """Solve ``H(T) = E`` for a Weibull-type hazard multiplied by ``hrs[j]`` from ``breaks[:, j]`` on.

    ``H(t) = lam * sum_k M_k * ((min(t, K_{k+1}))^gamma - K_k^gamma)_+`` over knots ``K_0 = t0 <
    K_1 <= ... `` (the sorted breakpoints, clipped below at ``t0``) with cumulative multipliers
    ``M_k``; the at-risk time starts at ``t0`` (left truncation). Vectorised over rows.
    """
    m, J = breaks.shape
    order = np.argsort(breaks, axis=1)
    b_sorted = np.maximum(np.take_along_axis(breaks, order, axis=1), t0[:, None])
    mult = np.cumprod(np.concatenate([np.ones((m, 1)), hrs[order]], axis=1), axis=1)
    knots = np.concatenate([t0[:, None], b_sorted], axis=1)           # m x (J+1)
    kg = knots**gamma
    seg = lam[:, None] * mult[:, :-1] * np.diff(kg, axis=1)            # hazard in finite segments
    cum = np.concatenate([np.zeros((m, 1)), np.cumsum(seg, axis=1)], axis=1)
    k = (cum[:, 1:] <= E[:, None]).sum(axis=1)                         # segment holding E
    rows = np.arange(m)
    base = kg[rows, k] + (E - cum[rows, k]) / (lam * mult[rows, k])
    return base ** (1.0 / gamma)
