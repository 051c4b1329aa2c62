r"""Moment estimators of the yearly absence model for :func:`~verzuimmodel.simulate.from_cohort.from_cohort`.

The model (:mod:`verzuimmodel.simulate.absence`): for pupil-year :math:`i` of pupil :math:`p` and measure
:math:`m`, given the latent terms, :math:`Y_i \sim \text{NB}(\lambda_i, \theta)` with
:math:`\lambda_i = \eta_i\,e^{X_i}`, :math:`\eta_i` the known part (rate by level, grade slope,
covariates, exposure, the approach; times the detection probability :math:`d_i` in PO) and
:math:`X_i = \ell v_p + s_i + \sigma_y w_i` (:math:`v_p` the pupil's propensity, :math:`u_p` in PO;
:math:`s_i` the school effect, :math:`a_s` in PO and :math:`b_t + c\,a_s` in VO). The VO track is drawn from
a score that loads on :math:`u`, so given the track the propensity is shifted:
:math:`T_p(t) = E[e^{t u_p} \mid \text{track}_p]\,e^{-t^2/2}` (:func:`track_tilt`).

1. **Rates** (first moments): :math:`E[Y_i] = \eta_i\,e^{(\ell^2 + \sigma_L^2 + \sigma_y^2)/2}\,T_p` with
   :math:`T_p = T_p(\ell\rho)` in VO and :math:`T_p(\ell)` in PO, :math:`\sigma_L^2 = \sigma_{po}^2` (PO) or
   :math:`\sigma_{vo}^2 + c^2\sigma_{po}^2` (VO). The Poisson score equations
   :math:`\sum_i (Y_i - E[Y_i])\,(1\{PO\}, 1\{VO\}, g_i) = 0` give ``po_rate``, ``vo_rate`` and ``grade_slope``;
   they hold whatever the overdispersion.
2. **Loading and dispersion** (per measure, VO rows): two bounded moments, the share of low
   counts and the pairs of a pupil's VO years that are both low,

   .. math:: \sum_i 1\{Y_i \le k\} = \sum_i E[F_i],\qquad
             \sum_p \sum_{i \ne j \in p} 1\{Y_i \le k\}1\{Y_j \le k\} = \sum_p \sum_{i \ne j \in p} E[F_iF_j],

   :math:`F_i = P(Y_i \le k \mid \lambda_i)` the NB distribution function and :math:`k` the smallest count
   with at least a quarter of the rows at or below it. The expectations over the pupils' latent
   terms (:math:`v_p`, :math:`w_i`) are Monte Carlo integrals with fixed draws (simulated method of
   moments; the propensity drawn exactly from its distribution given the track, :func:`latent_draws`),
   so the equations are smooth in :math:`(\ell, \theta)` and are solved together. The schools' effects
   are held at what the data show, not integrated over: a school's realised effect (and PO detection)
   is :math:`\phi = \sum Y / \sum E[Y \mid \text{school}]` over its rows, the PO school's carried into VO
   with weight :math:`c` (:class:`_Level`); a region's rates take in its schools' effects, so
   integrating over new ones would misstate the spread left within the region.
   Product moments :math:`\sum Y_iY_j` would do without simulation, but the counts' lognormal
   tails make them far too noisy (for unexcused hours, :math:`\ell = 1.3`, their typical value is about
   half their expectation even in a region of 50,000 pupils).
3. **Tracking** :math:`\rho`: the pairs of a PO year (at the recorded PO school) and a VO year of one
   pupil that are both low, summed over the measures, solved for :math:`\rho` with the same integrals.
4. **Calibration by simulation** (:func:`calibrate_rates`, after the episodes are fitted): the rates
   are divided by the ratio of simulated counts to their expectation given the simulated schools
   (the closed form of step 1 leaves out the simulator's caps on luxury days and unexcused hours,
   and that pupils with a high propensity spend more time in long-term episodes).

Steps 2 and 3 alternate until :math:`\rho` settles, the rates refitted after each round. The school
variances are kept (see :func:`~verzuimmodel.simulate.from_cohort.from_cohort`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.optimize import brentq, least_squares
from scipy.special import expit, logit, ndtr, ndtri

from ._cohort_arrays import CohortArrays
from .population import TRACK_SCORE
from .scenario import Absence, Scenario, Variation

__all__ = ["fit_absence", "poisson_moments", "track_tilt", "latent_draws", "MEASURES", "MIN_PAIRS", "DRAWS",
           "MAX_PUPILS"]

MEASURES = ("sick_reports", "late_arrivals", "luxury_days", "unexcused_hours")
MIN_PAIRS = 50
"""Loading, dispersion and tracking are estimated only from at least this many pupils with two VO years."""
DRAWS = 8
"""Monte Carlo draws of the latent terms per pupil."""
MAX_PUPILS = 20_000
"""At most this many pupils (a fixed random subset) enter the simulated moments: enough for a
Monte Carlo error well below the sampling error, and a bounded time for a national cohort."""
LOW_SHARE = 0.25
ROUNDS = 3
_NODES, _WEIGHTS = hermegauss(40)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def poisson_moments(y: np.ndarray, X: np.ndarray, offset: np.ndarray, iterations: int = 100) -> np.ndarray:
    r"""Solve the Poisson score equations :math:`\sum_i (y_i - e^{o_i + x_i'\beta}) x_i = 0` (Newton).

    These are moment equations for the mean :math:`E[y \mid x] = e^{o + x'\beta}`: they hold for any
    variance, so :math:`\beta` is consistent for overdispersed counts too.
    """
    X = np.asarray(X, dtype=float)
    beta = np.zeros(X.shape[1])
    base = np.exp(offset)
    for j in range(X.shape[1]):                  # start: each indicator column's own ratio of sums
        col = X[:, j]
        if np.isin(col, (0.0, 1.0)).all() and (col * base).sum() > 0 and (col * y).sum() > 0:
            beta[j] = np.log((col * y).sum() / (col * base).sum())
    for _ in range(iterations):
        mu = np.exp(np.clip(offset + X @ beta, -700, 700))
        grad = X.T @ (y - mu)
        hess = X.T @ (X * mu[:, None])
        step = np.clip(np.linalg.lstsq(hess, grad, rcond=None)[0], -3.0, 3.0)
        beta = beta + step
        if np.abs(step).max() < 1e-10:
            break
    return beta


def _interval(a: np.ndarray, track: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound of :math:`W = \\varepsilon - b u` for each pupil's track (``a``: n x 2)."""
    inf = np.full(len(track), np.inf)
    lower = np.where(track == 0, -inf, np.where(track == 1, a[:, 0], a[:, 1]))
    upper = np.where(track == 0, a[:, 0], np.where(track == 1, a[:, 1], inf))
    return lower, upper


def _mass(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """:math:`\\Phi(upper) - \\Phi(lower)`, accurate in either tail."""
    upper_tail = lower > 0
    return np.where(upper_tail, ndtr(-lower) - ndtr(-upper), ndtr(upper) - ndtr(lower))


def track_tilt(t, a: np.ndarray, track: np.ndarray) -> np.ndarray:
    r""":math:`T(t) = E[e^{t u} \mid \text{track}]\,e^{-t^2/2}` per pupil.

    The simulator ranks pupils by a score :math:`c_d\,dis + c_s\,special + c_u u + \varepsilon`
    (:data:`~verzuimmodel.simulate.population.TRACK_SCORE`): vmbo below the threshold :math:`q_1`, havo
    up to :math:`q_2`, vwo above. With :math:`A_j = q_j - c_d\,dis - c_s\,special` (``a``, n x 2),
    :math:`b = -c_u` and :math:`s = \sqrt{1 + b^2}`, track :math:`k` is :math:`A_k \le \varepsilon - bu < A_{k+1}`
    (:math:`A_0 = -\infty`, :math:`A_3 = \infty`), so
    :math:`E[e^{tu}\,1\{k\}] = e^{t^2/2}\,[\Phi((A_{k+1} + bt)/s) - \Phi((A_k + bt)/s)]` and
    :math:`T(t) = [\Phi((A_{k+1} + bt)/s) - \Phi((A_k + bt)/s)] / [\Phi(A_{k+1}/s) - \Phi(A_k/s)]`;
    1 without a track.
    """
    b = -TRACK_SCORE[2]
    s = np.sqrt(1.0 + b * b)
    t = np.broadcast_to(np.asarray(t, dtype=float), np.shape(track))
    lower, upper = _interval(a, track)
    shifted = _mass((lower + b * t) / s, (upper + b * t) / s)
    return np.where(track >= 0, shifted / np.maximum(_mass(lower / s, upper / s), 1e-300), 1.0)


def track_threshold(d: CohortArrays, vmbo_share: float, havo_share: float) -> np.ndarray:
    """``a`` of :func:`track_tilt` per pupil (n x 2): the thresholds solve mean P(vmbo | dis, special) =
    ``vmbo_share`` and mean P(vmbo or havo | dis, special) = ``vmbo_share + havo_share``."""
    c_dis, c_special, c_u = TRACK_SCORE
    shift = -(c_dis * d.p_dis + c_special * d.p_special)
    s = np.sqrt(1.0 + c_u * c_u)
    out = []
    for share in (vmbo_share, vmbo_share + havo_share):
        share = min(max(share, 1e-6), 1 - 1e-6)
        out.append(brentq(lambda q, share=share: ndtr((q + shift) / s).mean() - share, -30.0, 30.0) + shift)
    return np.column_stack(out)


def latent_draws(a: np.ndarray, track: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    r"""``n_draws`` draws of the PO propensity :math:`u` per pupil from its distribution given the track.

    :math:`W = \varepsilon - b u \sim N(0, s^2)` lies in the track's interval (:func:`track_tilt`): draw it
    from the truncated normal by inversion, then :math:`u \mid W \sim N(-bW/s^2,\ 1 - b^2/s^2)`. Pupils
    without a track: :math:`N(0, 1)`.
    """
    b = -TRACK_SCORE[2]
    s = np.sqrt(1.0 + b * b)
    n = len(track)
    v = rng.random((n, n_draws))
    x = rng.standard_normal((n, n_draws))
    lower, upper = _interval(a, track)
    lo, hi = ndtr(lower / s)[:, None], ndtr(upper / s)[:, None]
    w = s * ndtri(np.clip(lo + v * (hi - lo), 1e-15, 1 - 1e-15))
    u = -b * w / s**2 + np.sqrt(1 - b * b / s**2) * x
    return np.where((track >= 0)[:, None], u, rng.standard_normal((n, n_draws)))


def detection_moments(base: float, sd: float, shift: float = 0.0) -> float:
    """``E[d]`` of ``d = expit(logit(base) + sd * z + shift)``, ``z ~ N(0, 1)``."""
    if base >= 1:
        return 1.0
    return float(_WEIGHTS @ expit(logit(max(base, 1e-9)) + sd * _NODES + shift))


class _Rows:
    """The absence rows with exposure, as the estimators need them (built once)."""

    def __init__(self, d: CohortArrays, scen: Scenario, school_days: float):
        a = d.a_counts
        keep = (d.a_enrolled - d.a_long > 0) & np.all([np.isfinite(a[m]) for m in MEASURES], axis=0)
        self.pupil = d.a_pupil[keep]
        self.school = d.a_school[keep]
        self.vo = d.a_vo[keep]
        grade = d.a_grade[keep]
        self.g = np.where(self.vo, grade - 1, grade - 3).astype(float)
        self.w = (d.a_enrolled - d.a_long)[keep] / school_days
        self.y = {m: a[m][keep] for m in MEASURES}
        p = self.pupil
        self.female, self.dis = d.p_female[p], d.p_dis[p]
        self.chronic, self.special = d.p_chronic[p], d.p_special[p]
        self.vmbo = self.vo & (d.p_track[p] == 0)
        self.track = d.p_track[p]
        start = d.s_start[self.school]
        self.active = ~self.vo & (start <= d.a_year[keep])
        recorded = d.p_po_school[p]
        deadline = d.p_cohort[p] + scen.approach.exposed_from_grade - 3
        self.exposed = self.vo & (d.s_start[recorded] <= deadline)
        self.po_same_school = ~self.vo & (self.school == recorded)
        self.recorded_po = recorded


def _log_eta(m: str, meas, r: _Rows, scen: Scenario) -> np.ndarray:
    """log of the known part of the mean: covariates, exposure, the approach (rates and slope excluded)."""
    ap = scen.approach
    out = (np.log(np.maximum(r.w, 1e-12)) + meas.female * r.female + meas.disadvantaged * r.dis
           + meas.chronic_illness * r.chronic + meas.special_needs * r.special + meas.vmbo * r.vmbo)
    if m == "unexcused_hours":
        out = out + (np.log(ap.vo_unexcused_rate_ratio) + ap.modifier_disadvantaged * r.dis) * r.exposed
    if m == "sick_reports":
        out = out + np.log(ap.vo_sick_rate_ratio) * r.exposed
    else:
        out = out + np.log(ap.po_true_rate_ratio) * r.active
    return out


def _low(y: np.ndarray) -> int:
    """The smallest whole count ``k`` with at least :data:`LOW_SHARE` of ``y`` at or below it."""
    k = int(np.floor(np.quantile(y, LOW_SHARE))) if len(y) else 0
    return min(max(k, 0), 30)


def _nb_cdf(k: int, lam: np.ndarray, theta: float) -> np.ndarray:
    """P(Y <= k) for Y ~ NB(mean ``lam``, size ``theta``), by the pmf's recursion."""
    p = theta / (theta + lam)
    pmf = np.exp(theta * np.log(p))
    out = pmf.copy()
    q = 1.0 - p
    for j in range(k):
        pmf = pmf * ((theta + j) / (j + 1)) * q
        out += pmf
    return out


class _Model:
    """Rates, loadings and dispersions of the four measures, with what the estimating equations need."""

    def __init__(self, d: CohortArrays, r: _Rows, scen: Scenario, tilt_a: np.ndarray):
        self.r, self.scen = r, scen
        var, rec = scen.variation, scen.recording
        self.sig_po2, self.sig_vo2 = var.sd_po_school**2, var.sd_vo_school**2
        self.c, self.sy2 = var.po_school_carryover, var.sd_year**2
        self.rho = var.tracking_rho
        self.tilt_a = tilt_a
        self.loading = {m: getattr(scen.absence, m).loading for m in MEASURES}
        self.theta = {m: getattr(scen.absence, m).dispersion for m in MEASURES}
        self.rates = {m: (getattr(scen.absence, m).po_rate, getattr(scen.absence, m).vo_rate,
                          getattr(scen.absence, m).grade_slope) for m in MEASURES}
        self.log_known, self.log_det = {}, {}
        for m in MEASURES:
            base = rec.po_detection_sick if m == "sick_reports" else rec.po_detection_unexcused
            e_d = np.where(r.active, detection_moments(base, rec.sd_school, rec.approach_shift),
                           detection_moments(base, rec.sd_school))
            self.log_known[m] = _log_eta(m, getattr(scen.absence, m), r, scen)
            self.log_det[m] = np.where(r.vo, 0.0, np.log(e_d))
        self.X = np.column_stack([~r.vo, r.vo, r.g]).astype(float)
        self.cols = [j for j in range(3) if self.X[:, j].any()]

    def offset(self, m: str, ell: float, rho: float) -> np.ndarray:
        """log E[Y] per row without the rates and slope: known part, detection, latent means, track."""
        r = self.r
        sig_v2 = self.sig_vo2 + self.c**2 * self.sig_po2
        lognormal = np.where(r.vo, (ell**2 + sig_v2 + self.sy2) / 2, (ell**2 + self.sig_po2 + self.sy2) / 2)
        tilt = np.where(r.vo, track_tilt(ell * rho, self.tilt_a, r.track), track_tilt(ell, self.tilt_a, r.track))
        return self.log_known[m] + self.log_det[m] + lognormal + np.log(tilt)

    def expected(self, m: str) -> np.ndarray:
        """E[Y] per row at the current parameters (the closed form of the first moment)."""
        po_rate, vo_rate, slope = self.rates[m]
        level = np.where(self.r.vo, np.log(vo_rate), np.log(po_rate)) + slope * self.r.g
        return np.exp(self.offset(m, self.loading[m], self.rho) + level)

    def fit_rates(self, m: str, ell: float, rho: float) -> tuple[float, float, float]:
        """Rates and grade slope of measure ``m`` from the first moments, given loading and tracking."""
        beta = np.zeros(3)
        beta[self.cols] = poisson_moments(self.r.y[m], self.X[:, self.cols], self.offset(m, ell, rho))
        old = self.rates[m]
        return (float(np.exp(beta[0])) if 0 in self.cols else old[0], float(np.exp(beta[1])) if 1 in self.cols
                else old[1], float(beta[2]) if 2 in self.cols else old[2])


@dataclass
class _Sim:
    """Fixed draws of the pupil-level latent terms for the simulated moments (a subset of pupils)."""

    rows: np.ndarray        # row indices (into _Rows) of the sampled pupils' rows
    pupil: np.ndarray       # per row: index 0..n-1 of its pupil in the sample
    u: np.ndarray           # (n, R) PO propensity given the track
    e: np.ndarray           # (n, R) the VO propensity's own part
    w: np.ndarray           # (rows, R) standard normal pupil-year shock
    n: int


def _sample(r: _Rows, n_pupils: int, rng: np.random.Generator, tilt_a_pupil: np.ndarray,
            track_pupil: np.ndarray) -> _Sim | None:
    """Latent draws for up to :data:`MAX_PUPILS` pupils with a VO year (all their rows)."""
    in_vo = np.unique(r.pupil[r.vo])
    if not len(in_vo):
        return None
    chosen = np.sort(rng.choice(in_vo, MAX_PUPILS, replace=False)) if len(in_vo) > MAX_PUPILS else in_vo
    position = np.full(n_pupils, -1)
    position[chosen] = np.arange(len(chosen))
    rows = np.flatnonzero(position[r.pupil] >= 0)
    u = latent_draws(tilt_a_pupil[chosen], track_pupil[chosen], DRAWS, rng)
    return _Sim(rows=rows, pupil=position[r.pupil[rows]], u=u, e=rng.standard_normal(u.shape),
                w=rng.standard_normal((len(rows), DRAWS)), n=len(chosen))


def _per_pupil(values: np.ndarray, pupil: np.ndarray, n: int) -> np.ndarray:
    """Sums of ``values`` (rows x R) per pupil: (n x R)."""
    return np.column_stack([np.bincount(pupil, values[:, j], minlength=n) for j in range(values.shape[1])])


def _pairs(values: np.ndarray, pupil: np.ndarray, n: int) -> float:
    """Sum over ordered pairs of different rows of one pupil of the product of ``values`` (mean over draws)."""
    if values.ndim == 1:
        values = values[:, None]
    totals = _per_pupil(values, pupil, n)
    return float(((totals**2).sum(axis=0) - (values**2).sum(axis=0)).mean())


def _school_effects(model: _Model) -> np.ndarray:
    """Per school: the log ratio of observed to expected PO counts (years without the approach, all
    measures), centred: a proxy of its realised effect :math:`a_s`, carried into VO with weight :math:`c`."""
    r = model.r
    size = int(max(r.school.max(), r.recorded_po.max())) + 1
    out = np.zeros(size)
    rows = ~r.vo & ~r.active
    if not rows.any():
        return out
    observed, expected = np.zeros(size), np.zeros(size)
    for m in MEASURES:
        ell, rates = model.loading[m], model.rates[m]
        mean = np.exp(model.log_known[m][rows] + model.log_det[m][rows] + np.log(rates[0]) + rates[2] * r.g[rows]
                      + (ell**2 + model.sy2) / 2) * track_tilt(ell, model.tilt_a[rows], r.track[rows])
        observed += np.bincount(r.school[rows], r.y[m][rows], minlength=size)
        expected += np.bincount(r.school[rows], mean, minlength=size)
    ok = (observed > 0) & (expected > 0)
    out[ok] = np.log(observed[ok] / expected[ok])
    out[ok] -= np.average(out[ok], weights=expected[ok])
    return out


class _Level:
    """One level's rows of the sampled pupils for one measure: the counts, their low indicator and the
    realised school effects, held fixed (VO: the VO school's, and ``c`` times the PO school's)."""

    def __init__(self, model: _Model, sim: _Sim, m: str, vo: bool, school_a: np.ndarray):
        r = model.r
        sel = (r.vo if vo else r.po_same_school)[sim.rows]
        self.rows, self.pupil, self.w = sim.rows[sel], sim.pupil[sel], sim.w[sel]
        self.m, self.vo, self.model, self.sim = m, vo, model, sim
        self.y = r.y[m][self.rows]
        self.k = _low(self.y)
        self.low = (self.y <= self.k).astype(float)
        cell = r.school[self.rows] * 2 + (0 if vo else r.active[self.rows])   # PO: school x approach running
        _, self.cell = np.unique(cell, return_inverse=True)
        carry = model.c * school_a[r.recorded_po[self.rows]] if vo else 0.0
        self.known = (model.log_known[m][self.rows] + model.log_det[m][self.rows]
                      + model.rates[m][2] * r.g[self.rows] + carry)

    def cdf(self, ell: float, theta: float, rho: float) -> np.ndarray:
        r"""P(Y <= k) per row and draw: (rows x R). The NB mean is :math:`e^{\text{known}}\,\phi_{cell}\,
        e^{\ell v + \sigma_y w}` with :math:`\phi_{cell} = \sum Y / \sum E[Y \mid \text{school}]` over the
        cell's rows, so the school effects are those the data show, not new draws."""
        model, sim, r = self.model, self.sim, self.model.r
        tilt = track_tilt(ell * rho if self.vo else ell, model.tilt_a[self.rows], r.track[self.rows])
        expected = np.exp(self.known + (ell**2 + model.sy2) / 2) * tilt
        phi = np.bincount(self.cell, self.y) / np.maximum(np.bincount(self.cell, expected), 1e-300)
        base = self.known + np.log(np.maximum(phi[self.cell], 1e-300))
        prop = sim.u[self.pupil]
        if self.vo:
            prop = rho * prop + np.sqrt(max(1 - rho * rho, 0.0)) * sim.e[self.pupil]
        return _nb_cdf(self.k, np.exp(base[:, None] + ell * prop + np.sqrt(model.sy2) * self.w), theta)


def _loading_dispersion(model: _Model, lv: _Level) -> tuple[float, float]:
    """Loading and dispersion of a measure from the low-count moments of its VO rows (module docstring)."""
    m = lv.m
    observed = np.array([lv.low.sum(), _pairs(lv.low, lv.pupil, lv.sim.n)])
    if observed.min() <= 0 or observed[0] >= len(lv.low):
        return model.loading[m], model.theta[m]

    def residual(x):
        f = lv.cdf(x[0], np.exp(x[1]), model.rho)
        return np.array([f.mean(axis=1).sum(), _pairs(f, lv.pupil, lv.sim.n)]) / observed - 1.0

    fit = least_squares(residual, x0=[min(max(model.loading[m], 0.05), 2.9), np.log(model.theta[m])],
                        bounds=([0.0, np.log(0.05)], [3.0, np.log(1000.0)]), xtol=1e-8, ftol=1e-10,
                        diff_step=1e-4)
    return float(fit.x[0]), float(np.exp(fit.x[1]))


def _tracking(model: _Model, levels: dict) -> float:
    r""":math:`\rho` from the PO-VO pairs of a pupil that are both low, summed over the measures."""
    parts = []
    for m in MEASURES:
        po, vo = levels[m]
        if not len(po.rows) or not len(vo.rows):
            continue
        n = po.sim.n
        low_po, low_vo = np.bincount(po.pupil, po.low, minlength=n), np.bincount(vo.pupil, vo.low, minlength=n)
        observed = float((low_po * low_vo).sum())
        f_po = _per_pupil(po.cdf(model.loading[m], model.theta[m], model.rho), po.pupil, n)
        parts.append((m, observed, f_po, vo))
    observed = sum(part[1] for part in parts)
    if observed <= 0:
        return model.rho

    def gap(rho):
        total = 0.0
        for m, _, f_po, vo in parts:
            f_vo = _per_pupil(vo.cdf(model.loading[m], model.theta[m], rho), vo.pupil, vo.sim.n)
            total += float((f_vo * f_po).mean(axis=1).sum())
        return np.log(total) - np.log(observed)

    lo, hi = -0.9, 0.999
    g_lo, g_hi = gap(lo), gap(hi)
    if g_lo * g_hi > 0:
        return lo if abs(g_lo) < abs(g_hi) else hi
    return float(brentq(gap, lo, hi, xtol=1e-5))


def fit_absence(d: CohortArrays, scen: Scenario) -> tuple[Absence, Variation]:
    """The fitted :class:`Absence` and :class:`Variation` (see the module docstring and
    :func:`~verzuimmodel.simulate.from_cohort.from_cohort`)."""
    a0, var0 = scen.absence, scen.variation
    if not len(d.a_pupil) or not all(m in d.a_counts for m in MEASURES):
        return a0, var0
    enrolled = d.a_enrolled[d.a_enrolled > 0]
    values, counts = np.unique(enrolled, return_counts=True)
    school_days = int(values[np.argmax(counts)]) if len(values) else a0.school_days
    r = _Rows(d, scen, school_days)
    if not len(r.pupil):
        return a0, var0
    tilt_pupil = track_threshold(d, scen.population.vmbo_share, scen.population.havo_share)
    model = _Model(d, r, scen, tilt_pupil[r.pupil])
    for m in MEASURES:
        model.rates[m] = model.fit_rates(m, model.loading[m], model.rho)
    rng = np.random.default_rng(20240614)           # fixed draws: the same data give the same scenario
    enough = (np.bincount(r.pupil[r.vo], minlength=d.n_pupils) >= 2).sum() >= MIN_PAIRS
    sim = _sample(r, d.n_pupils, rng, tilt_pupil, d.p_track) if enough else None
    if sim is not None:
        for _ in range(ROUNDS):
            school_a = _school_effects(model)
            levels = {m: (_Level(model, sim, m, False, school_a), _Level(model, sim, m, True, school_a))
                      for m in MEASURES}
            for m in MEASURES:
                model.loading[m], model.theta[m] = _loading_dispersion(model, levels[m][1])
            rho = _tracking(model, levels)
            moved = abs(rho - model.rho)
            model.rho = rho
            for m in MEASURES:
                model.rates[m] = model.fit_rates(m, model.loading[m], model.rho)
            if moved < 1e-3:
                break
    measures = {m: replace(getattr(a0, m), po_rate=model.rates[m][0], vo_rate=model.rates[m][1],
                           grade_slope=model.rates[m][2], loading=model.loading[m], dispersion=model.theta[m])
                for m in MEASURES}
    absence = replace(a0, school_days=school_days, **measures, **_sick_spells(d))
    return absence, replace(var0, tracking_rho=float(model.rho))


def _sick_spells(d: CohortArrays) -> dict:
    r"""Sick spells from reports, long spells and days (recording thins long and short spells alike).

    ``long_spell_logit``, ``long_spell_chronic``: the logits of the long share of sick reports
    without and with a chronic illness, :math:`\sum L / \sum R`. ``short_spell_mean``,
    ``long_spell_mean``: :math:`E[\text{days} \mid S, L] = \bar s\,S + \bar l\,L` (short spells ``S``,
    long ``L``), solved by the normal equations of least squares through the origin, over the years in
    which :math:`2(S + 12L)` is below the exposure: a year holds only so many school days, and the
    simulator caps sick days there (a selection on the regressors, so the fit stays unbiased).
    """
    need = ("sick_days", "sick_reports", "sick_long_spells")
    if not all(k in d.a_counts for k in need):
        return {}
    days, reports, long_ = (d.a_counts[k] for k in need)
    ok = np.isfinite(days) & np.isfinite(reports) & np.isfinite(long_) & (reports >= long_)
    days, reports, long_ = days[ok], reports[ok], long_[ok]
    chronic = d.p_chronic[d.a_pupil[ok]]
    room = (d.a_enrolled - d.a_long)[ok]
    out = {}
    shares = [long_[chronic == k].sum() / reports[chronic == k].sum() if reports[chronic == k].sum() > 0 else np.nan
              for k in (False, True)]
    if 0 < shares[0] < 1:
        out["long_spell_logit"] = float(logit(shares[0]))
        if 0 < shares[1] < 1:
            out["long_spell_chronic"] = float(logit(shares[1]) - logit(shares[0]))
    far = 2 * (reports - long_ + 12 * long_) < room
    days, long_, short = days[far], long_[far], (reports - long_)[far]
    A = np.array([[(short * short).sum(), (short * long_).sum()], [(short * long_).sum(), (long_ * long_).sum()]])
    b = np.array([(short * days).sum(), (long_ * days).sum()])
    if np.linalg.matrix_rank(A) == 2:
        s_mean, l_mean = np.linalg.solve(A, b)
        out["short_spell_mean"] = float(max(s_mean, 1.0))
        out["long_spell_mean"] = float(max(l_mean, 7.0))
    elif A[0, 0] > 0:
        out["short_spell_mean"] = float(max(b[0] / A[0, 0], 1.0))
    return out


CALIBRATION_PUPILS = 60_000
"""The region simulated to calibrate the first moments is scaled up to hold at least this many pupils
(at most :data:`MAX_SCALE` times the data's size), so its Monte Carlo error is small."""
MAX_SCALE = 16
CALIBRATION_SEED = 20240615


def _scaled(scen: Scenario, k: int) -> Scenario:
    """The same region ``k`` times larger: ``k`` times the schools and pupils, the same shares."""
    p, ap = scen.population, scen.approach
    pop = replace(p, n_po_schools=p.n_po_schools * k, n_vo_schools=p.n_vo_schools * k,
                  n_po_pupils=None if p.n_po_pupils is None else p.n_po_pupils * k)
    return replace(scen, population=pop, approach=replace(ap, pilot_schools=ap.pilot_schools * k,
                                                          wave_size=ap.wave_size * k))


def calibrate_rates(scen: Scenario, n_pupils: int) -> Absence:
    r"""The first moments by simulation: ``po_rate`` and ``vo_rate`` of each measure divided by
    :math:`\sum Y / \sum E[Y \mid \text{schools}]` over a cohort simulated from ``scen``.

    The closed-form first moment (:meth:`_Model.fit_rates`) leaves out two things the simulator does:
    it caps a year's luxury days and unexcused hours by the school days left (lowest for pupils with
    many sick days, who share the same high propensity), and pupils with a high propensity spend more
    time in long-term episodes, outside the absence records, so the observed pupil-years lean towards
    the others. In the default region the two remove about 6% of VO unexcused hours. On a cohort
    simulated from the fitted scenario (scaled up to at least :data:`CALIBRATION_PUPILS` pupils,
    fixed seed), the ratio of the counts to their closed-form expectation *given the drawn school
    effects and detection* measures that loss per level: holding the schools as drawn takes away the
    region-to-region noise of the simulated ratio (about 5% for a region's schools; the pupils' own
    draws leave about 1%). Dividing the rates by it makes the simulated mean the data's.
    """
    from ._cohort_arrays import cohort_arrays
    from .core import simulate_with_latent

    k = int(np.clip(np.ceil(CALIBRATION_PUPILS / max(n_pupils, 1)), 1, MAX_SCALE))
    big = _scaled(scen, k)
    cohort, schools, pupils = simulate_with_latent(big, seed=CALIBRATION_SEED)
    d = cohort_arrays(cohort)
    r = _Rows(d, big, big.absence.school_days)
    n_po = len(schools.po_region)
    p, var, rec, pop = r.pupil, big.variation, big.recording, big.population
    school = np.where(r.vo, schools.vo_effect[np.maximum(r.school - n_po, 0)]
                      + var.po_school_carryover * schools.po_effect[pupils.po_school[p]],
                      schools.po_effect[np.minimum(r.school, n_po - 1)])
    z = schools.po_detection_z[np.minimum(r.school, n_po - 1)]
    tilt_a = track_threshold(d, pop.vmbo_share, pop.havo_share)[p]
    new = {}
    for m in MEASURES:
        meas = getattr(big.absence, m)
        base = rec.po_detection_sick if m == "sick_reports" else rec.po_detection_unexcused
        det = np.where(r.vo, 1.0, expit(logit(min(max(base, 1e-9), 1 - 1e-9)) + rec.sd_school * z
                                        + rec.approach_shift * r.active))
        ell = meas.loading
        tilt = np.where(r.vo, track_tilt(ell * var.tracking_rho, tilt_a, r.track), track_tilt(ell, tilt_a, r.track))
        level = np.where(r.vo, np.log(meas.vo_rate), np.log(meas.po_rate)) + meas.grade_slope * r.g
        expected = det * tilt * np.exp(_log_eta(m, meas, r, big) + level + school + (ell**2 + var.sd_year**2) / 2)
        y = r.y[m]
        ratio = [y[rows].sum() / expected[rows].sum() if expected[rows].sum() > 0 and y[rows].sum() > 0 else 1.0
                 for rows in (~r.vo, r.vo)]
        new[m] = replace(meas, po_rate=meas.po_rate / ratio[0], vo_rate=meas.vo_rate / ratio[1])
    return replace(scen.absence, **new)
