r"""Estimators of the long-term absence episodes and in-episode interventions for
:func:`~verzuimmodel.simulate.from_cohort.from_cohort`.

- **Onset** (:class:`~verzuimmodel.simulate.scenario.Episodes`): first episodes per pupil-year at
  risk. With :math:`w_i` the share of the year observed before a pupil's first episode,

  .. math:: E[N_i] \approx w_i\,\lambda_{L}\,e^{\beta_{vo}(k_i - 6)\,1\{VO\}}\,e^{x_i'\beta}\,
            RR_{ep}^{\,exposed_i}\,e^{(\kappa^2 + \sigma_L^2)/2},

  solved by the Poisson score equations for :math:`\lambda_{PO}, \lambda_{VO}, \beta_{vo}` (``onset_po``,
  ``onset_vo``, ``grade_slope_vo``) with the covariate effects :math:`\beta`, the loading
  :math:`\kappa`, the school variance :math:`\sigma_L^2` and the approach's true effect held.
  Later episodes are left out: a pupil with an episode has a higher latent propensity, so the
  rate after it mixes ``recurrence_rr`` with selection.
- **Type**: :math:`\sum_i \text{expit}(\gamma_{5a} + x_i'\beta_{5a}) = N_{5a}` for ``p5a_logit``;
  ``p_av`` = AV / (AV + LRV) among the other onsets (onsets at least ``lrv_min_days`` before the end
  of follow-up, so that every LRV episode would have been recorded).
- **Durations**: maximum likelihood of the two competing Weibull-type hazards with the school gamma
  frailty integrated out (its variance held):

  .. math:: \ell = \sum_{i: ret} \log h_{r,i}(t_i) + \sum_{i: non} \log h_{n,i}(t_i)
            - \sum_i H_{n,i}(t_i) + \sum_s \log\frac{\Gamma(1/v + d_s)\,v^{d_s}}
            {\Gamma(1/v)\,(1 + v \sum_{i \in s} H_{r,i}(t_i))^{1/v + d_s}},

  :math:`H(t) = \lambda\,m_i\sum_k M_k\,[(t \wedge K_{k+1})^\gamma - K_k^\gamma]_+` from the entry
  :math:`K_0 = t_0` (28 days for LRV), with the interventions' hazard ratios :math:`M_k` from their
  recorded start days. For a given shape :math:`\gamma` the score equation of each scale is
  "observed events = expected cumulative hazard". Events at day :math:`T` are taken at :math:`T - 1/2`.
- **Outcomes**: ``own_school_share`` and ``nonreturn_shares`` are the shares among returns and
  among non-returns.
- **Interventions**: per type, maximum likelihood of uptake and mean delay from the LRV and AV
  episodes: a start on day :math:`d` has likelihood :math:`p_i\,P(D = d)`, no start
  :math:`1 - p_i\,P(D < T_i)` (it would have happened after the episode ended), with
  :math:`D = \max(\lceil G \rceil, 1)`, :math:`G \sim \text{Gamma}(k, \bar d / k)` and
  :math:`p_i = \text{expit}(\text{logit}(u) + x_i'\beta_{up})`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.optimize import brentq, minimize
from scipy.special import expit, gammaln, logit
from scipy.stats import gamma as gamma_dist

from ._cohort_arrays import CohortArrays, school_year_of
from ._fit_absence import poisson_moments
from .episodes import EXEMPTION
from .population import PO_YEARS, aug1
from .scenario import Episodes, Intervention, Scenario

__all__ = ["fit_episodes", "MIN_EVENTS"]

FAR = 1e9
MIN_EVENTS = 3
"""A type multiplier or rate is estimated only from at least this many events; else it is kept."""
MIN_SLOPE_EVENTS = 10
"""``grade_slope_vo`` is estimated only from at least this many first VO episodes."""
RETURN = (0, 1)
NONRETURN = (2, 3, 4)


def fit_episodes(d: CohortArrays, scen: Scenario, sig_po2: float, sig_v2: float
                 ) -> tuple[Episodes, dict[str, Intervention]]:
    """The fitted :class:`Episodes` and interventions (see the module docstring)."""
    e0 = scen.episodes
    if not len(d.e_pupil):
        return e0, dict(scen.interventions)
    follow = _follow_on(d)
    onsets = ~follow & (d.e_start >= d.p_start[d.e_pupil])
    values = {**_onset(d, scen, onsets, sig_po2, sig_v2), **_types(d, e0, onsets), **_durations(d, scen),
              **_outcomes(d, e0)}
    return replace(e0, **values), _interventions(d, scen)


def _follow_on(d: CohortArrays) -> np.ndarray:
    """Episodes that are the 5a exemption following an episode that ended in an exemption that day."""
    ended = d.e_outcome == EXEMPTION
    key = d.e_pupil * 1_000_000 + d.e_start
    return (d.e_type == 2) & np.isin(key, d.e_pupil[ended] * 1_000_000 + d.e_end[ended])


def _exposed(d: CohortArrays, scen: Scenario) -> np.ndarray:
    """Per pupil: the recorded PO school had the approach by group ``exposed_from_grade``."""
    deadline = d.p_cohort + scen.approach.exposed_from_grade - 3
    return d.s_start[d.p_po_school] <= deadline


def _onset(d: CohortArrays, scen: Scenario, onsets: np.ndarray, sig_po2: float, sig_v2: float) -> dict:
    e0, pop = scen.episodes, scen.population
    grades = PO_YEARS + pop.vo_years
    n = d.n_pupils
    n_years = np.clip((d.p_end - aug1(d.p_cohort)) // 365 + 1, 0, grades)
    first_row = np.concatenate([[0], np.cumsum(n_years)[:-1]])
    pupil = np.repeat(np.arange(n), n_years)
    k = np.arange(len(pupil)) - first_row[pupil]
    year = d.p_cohort[pupil] + k
    lo = np.maximum(aug1(year), d.p_start[pupil])
    hi = np.minimum(aug1(year + 1), d.p_end[pupil] + 1)
    w = np.clip(hi - lo, 0, None) / 365.0
    first_day = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_day, d.e_pupil[onsets], d.e_start[onsets])
    has = first_day < np.iinfo(np.int64).max
    first_k = np.full(n, grades + 1)
    first_k[has] = school_year_of(first_day[has]) - d.p_cohort[has]
    keep = (k <= first_k[pupil]) & (w > 0)
    pupil, k, w = pupil[keep], k[keep], w[keep]
    event = (k == first_k[pupil]).astype(float)
    vo = k >= PO_YEARS
    exposed = _exposed(d, scen)[pupil] & vo
    offset = (np.log(w) + e0.disadvantaged * d.p_dis[pupil] + e0.chronic_illness * d.p_chronic[pupil]
              + e0.special_needs * d.p_special[pupil] + np.log(scen.approach.vo_episode_rate_ratio) * exposed
              + np.where(vo, e0.loading**2 + e0.school_loading**2 * sig_v2,
                         e0.loading**2 + e0.school_loading**2 * sig_po2) / 2)
    fixed = {"onset_po": e0.onset_po, "onset_vo": e0.onset_vo, "grade_slope_vo": e0.grade_slope_vo}
    columns = {"onset_po": (~vo).astype(float), "onset_vo": vo.astype(float),
               "grade_slope_vo": np.where(vo, k - PO_YEARS, 0).astype(float)}
    free = [name for name, ok in (("onset_po", event[~vo].sum() >= 1), ("onset_vo", event[vo].sum() >= 1),
                                  ("grade_slope_vo", event[vo].sum() >= MIN_SLOPE_EVENTS
                                   and len(np.unique(k[vo & (event > 0)])) >= 2)) if ok]
    if not free or not event.sum():
        return {}
    held = offset.copy()
    for name in set(fixed) - set(free):
        value = np.log(fixed[name]) if name.startswith("onset") else fixed[name]
        held += value * columns[name]
    if "grade_slope_vo" in free and "onset_vo" not in free:
        free.remove("grade_slope_vo")
        held += fixed["grade_slope_vo"] * columns["grade_slope_vo"]
    beta = poisson_moments(event, np.column_stack([columns[f] for f in free]), held)
    return {f: float(np.exp(b)) if f.startswith("onset") else float(b) for f, b in zip(free, beta)}


def _types(d: CohortArrays, e0: Episodes, onsets: np.ndarray) -> dict:
    seen = onsets & (d.e_start <= d.p_end[d.e_pupil] - e0.lrv_min_days)
    p = d.e_pupil[seen]
    kind = d.e_type[seen]
    out = {}
    n5a = int((kind == 2).sum())
    if 0 < n5a < len(kind):
        x = e0.p5a_chronic * d.p_chronic[p] + e0.p5a_special * d.p_special[p]
        out["p5a_logit"] = float(brentq(lambda b: expit(b + x).sum() - n5a, -40.0, 40.0))
    n_av, n_lrv = int((kind == 1).sum()), int((kind == 0).sum())
    if n_av + n_lrv > 0:
        out["p_av"] = n_av / (n_av + n_lrv)
    return out


def _outcomes(d: CohortArrays, e0: Episodes) -> dict:
    out = {}
    counts = np.bincount(d.e_outcome[d.e_outcome >= 0], minlength=6)
    if counts[0] + counts[1] > 0:
        out["own_school_share"] = float(counts[0] / (counts[0] + counts[1]))
    non = counts[2:5].astype(float)
    if non.sum() > 0:
        out["nonreturn_shares"] = tuple(float(v) for v in non / non.sum())
    return out


def _intervention_starts(d: CohortArrays, scen: Scenario) -> tuple[list[str], np.ndarray]:
    """The scenario's intervention types and, per episode, the first start of each (days after the
    episode's start; ``FAR`` if none)."""
    names = list(scen.interventions)
    starts = np.full((len(d.e_pupil), len(names)), FAR)
    for j, name in enumerate(names):
        sel = d.i_type == name
        ep = d.i_episode[sel]
        offset = np.maximum(d.i_start[sel] - d.e_start[ep], 1).astype(float)
        np.minimum.at(starts[:, j], ep, offset)
    return names, starts


def _durations(d: CohortArrays, scen: Scenario) -> dict:
    e0 = scen.episodes
    names, starts = _intervention_starts(d, scen)
    hr = np.array([scen.interventions[name].hr for name in names])
    t0 = np.where(d.e_type == 0, float(e0.lrv_min_days), 0.0)
    span = (d.e_end - d.e_start).astype(float)
    event = np.where(np.isin(d.e_outcome, RETURN), 1, np.where(np.isin(d.e_outcome, NONRETURN), 2, 0))
    t = np.where(event > 0, span - 0.5, span)
    keep = (t > t0) & (d.e_type >= 0)
    if keep.sum() < MIN_EVENTS or (event[keep] == 1).sum() < MIN_EVENTS:
        return {}
    t, t0, event, kind, group = t[keep], t0[keep], event[keep], d.e_type[keep], d.e_school[keep]
    p = d.e_pupil[keep]
    x_ret = (e0.ret_disadvantaged * d.p_dis[p] + e0.ret_chronic_illness * d.p_chronic[p]
             + e0.ret_special_needs * d.p_special[p] + e0.ret_vo * ~d.s_po[group])
    s = starts[keep] if len(names) else np.zeros((len(t), 0))
    order = np.argsort(s, axis=1)
    knots = np.concatenate([t0[:, None], np.maximum(np.take_along_axis(s, order, axis=1), t0[:, None])], axis=1)
    nxt = np.concatenate([knots[:, 1:], np.full((len(t), 1), np.inf)], axis=1)
    mult = np.cumprod(np.concatenate([np.ones((len(t), 1)), np.broadcast_to(hr, s.shape)[
        np.arange(len(t))[:, None], order]], axis=1), axis=1)
    upper = np.minimum(np.maximum(t[:, None], knots), nxt)
    log_m_event = (np.log(hr)[None, :] * (s <= t[:, None])).sum(axis=1) if len(names) else np.zeros(len(t))
    _, group = np.unique(group, return_inverse=True)
    d_s = np.bincount(group, event == 1)
    v = e0.frailty_variance

    names_free = ["ret_scale", "non_scale", "shape"]
    defaults = {"ret_scale": e0.ret_scale, "non_scale": e0.non_scale, "shape": e0.shape,
                "av_return_mult": e0.av_return_mult, "fiveA_return_mult": e0.fiveA_return_mult,
                "fiveA_nonreturn_mult": e0.fiveA_nonreturn_mult}
    if (event == 2).sum() < 1:
        names_free.remove("non_scale")
    if ((kind == 1) & (event == 1)).sum() >= MIN_EVENTS:
        names_free.append("av_return_mult")
    if ((kind == 2) & (event == 1)).sum() >= MIN_EVENTS:
        names_free.append("fiveA_return_mult")
    if ((kind == 2) & (event == 2)).sum() >= 1:
        names_free.append("fiveA_nonreturn_mult")

    def unpack(x):
        values = dict(defaults)
        values.update({name: float(np.exp(xi)) for name, xi in zip(names_free, x)})
        return values

    def nll(x):
        q = unpack(x)
        g = q["shape"]
        ret_mult = np.array([1.0, q["av_return_mult"], q["fiveA_return_mult"]])[kind]
        non_mult = np.array([1.0, 1.0, q["fiveA_nonreturn_mult"]])[kind]
        kg = knots**g
        cum = (mult * (upper**g - kg)).sum(axis=1)
        h_r = q["ret_scale"] * np.exp(x_ret) * ret_mult * cum
        h_n = q["non_scale"] * non_mult * (t**g - t0**g)
        log_t = np.log(t)
        ev_r, ev_n = event == 1, event == 2
        ll = (np.log(q["ret_scale"] * g) + (g - 1) * log_t[ev_r] + x_ret[ev_r] + np.log(ret_mult[ev_r])
              + log_m_event[ev_r]).sum()
        with np.errstate(divide="ignore"):
            ll += (np.log(q["non_scale"] * g * non_mult[ev_n]) + (g - 1) * log_t[ev_n]).sum() - h_n.sum()
        h_s = np.bincount(group, h_r)
        if v > 0:
            ll += (gammaln(1 / v + d_s) - gammaln(1 / v) + d_s * np.log(v) - (1 / v + d_s) * np.log1p(v * h_s)).sum()
        else:
            ll -= h_s.sum()
        return -ll if np.isfinite(ll) else 1e300

    x0 = np.log([max(defaults[name], 1e-6) for name in names_free])
    bounds = [(np.log(0.1), np.log(5.0)) if name == "shape" else (np.log(1e-8), np.log(50.0)) for name in names_free]
    fit = minimize(nll, x0, method="L-BFGS-B", bounds=bounds)
    fit = minimize(nll, fit.x, method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 4000})
    values = unpack(fit.x)
    return {name: values[name] for name in names_free}


def _interventions(d: CohortArrays, scen: Scenario) -> dict[str, Intervention]:
    names, starts = _intervention_starts(d, scen)
    eligible = d.e_type < 2                                  # LRV and AV
    span = (d.e_end - d.e_start)[eligible].astype(float)
    p = d.e_pupil[eligible]
    out = dict(scen.interventions)
    for j, name in enumerate(names):
        iv = scen.interventions[name]
        offset = starts[eligible, j]
        treated = offset < FAR
        if not eligible.any():
            continue
        if not treated.any():
            out[name] = replace(iv, uptake=0.0)
            continue
        x = iv.uptake_disadvantaged * d.p_dis[p] + iv.uptake_chronic * d.p_chronic[p]
        k = iv.delay_shape
        day = offset[treated]
        room = np.maximum(span[~treated] - 1.0, 0.0)       # a start on day D happens only if D < T

        def nll(z, x=x, k=k, day=day, room=room, treated=treated):
            up = expit(z[0] + x)
            scale = np.exp(z[1]) / k
            p_day = gamma_dist.cdf(day, k, scale=scale) - np.where(day > 1, gamma_dist.cdf(day - 1, k, scale=scale), 0)
            p_room = np.where(room >= 1, gamma_dist.cdf(room, k, scale=scale), 0.0)
            with np.errstate(divide="ignore"):
                ll = np.log(up[treated]).sum() + np.log(p_day).sum() + np.log1p(-up[~treated] * p_room).sum()
            return -ll if np.isfinite(ll) else 1e300

        z0 = [logit(min(max(iv.uptake, 0.01), 0.99)), np.log(max(float(np.mean(day)), 1.0))]
        fit = minimize(nll, z0, method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 2000})
        out[name] = replace(iv, uptake=float(expit(fit.x[0])), delay_mean=float(np.exp(fit.x[1])))
    return out
