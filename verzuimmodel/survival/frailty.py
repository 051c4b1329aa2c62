r"""Cox model with a shared gamma frailty per group (school), fitted as R's ``coxph(... + frailty(g))``.

Model
-----
For row :math:`i` of group :math:`j` (e.g. a pupil's episode in school :math:`j`), at risk on
:math:`(s_{ij}, t_{ij}]` in stratum :math:`g(ij)`:

.. math:: h_{ij}(t) = h_{0,g(ij)}(t)\, Z_j \exp(x_{ij}'\beta), \qquad
          Z_j \sim \text{Gamma}(\text{shape } 1/\theta,\ \text{scale } \theta)
          \quad (E Z_j = 1,\ \operatorname{Var} Z_j = \theta).

:math:`\exp(\beta)` are hazard ratios *conditional* on the frailty (within a school). They differ
from the marginal (population-averaged) hazard ratios a plain Cox model estimates: hazard ratios
are not collapsible, and the marginal one is attenuated towards 1.

Penalised partial likelihood (for a given :math:`\theta`)
---------------------------------------------------------
With :math:`\omega_j = \log Z_j`, :math:`\nu = 1/\theta` and :math:`\ell(\beta, \omega)` the
(weighted; Efron or Breslow) log partial likelihood of the linear predictor
:math:`\eta_{ij} = x_{ij}'\beta + \omega_j` (:mod:`~verzuimmodel.survival.cox`),
:math:`(\hat\beta, \hat\omega)` maximise

.. math:: \ell_p(\beta, \omega; \theta) = \ell(\beta, \omega) - \nu \sum_j \{e^{\omega_j} - \omega_j\},

the log gamma density of the :math:`Z_j` up to constants (R's ``frailty.gamma`` penalty). The
partial likelihood does not change when all :math:`\omega_j` move together, so the maximum has
:math:`\sum_j e^{\hat\omega_j} = G`, the number of groups; after every step the frailties are
recentred to satisfy it (R's ``recenter``).

Newton–Raphson with step halving. The information of the frailty block, :math:`G \times G`, is
never formed. R's *sparse* approximation — keep only its diagonal; the :math:`G \times p` cross
block and the :math:`p \times p` block of the coefficients are exact — is inverted through the
:math:`p \times p` Schur complement

.. math:: S = I_{\beta\beta} - I_{\beta\omega}\, D^{-1} I_{\omega\beta}, \qquad
          D = \operatorname{diag}(I_{\omega\omega}) + \nu\, \operatorname{diag}(e^{\omega}),

and serves as preconditioner of conjugate gradients with exact products of the full information
with a vector (each one risk-set pass over the rows), so each step is an (inexact) Newton step on
the exact penalised likelihood and converges quadratically, where the approximation alone would
converge linearly. Everything per group (score, diagonal and cross information) is a per-group
sum of per-row terms from the same risk-set sums as the Cox engine, except
:math:`\sum_k c_k R_{jk}^2` (with :math:`R_{jk}` the risk-set total of group :math:`j` at event
time :math:`k`), which is summed over the stretches of time between consecutive entries and exits
within a group. No Python loop runs over rows or groups. With few groups (R's default: 5 or fewer;
``sparse=False``) the full information matrix is used instead.

As in R, ``standard_errors_`` are the square roots of the diagonal of :math:`S^{-1}` (R's
``fit$var``, from ``coxpenal.df``), with the sparse approximation in :math:`S` (or the full
information with few groups). With case weights R's diagonal frailty information counts each tied
death once instead of with the deaths' mean weight (``coxfit5.c``: ``fdiag += temp2 * (1 - temp2)``);
this is reproduced, so weighted standard errors are R's (the estimates do not depend on it).

The frailty variance: approximate marginal likelihood (I-likelihood)
---------------------------------------------------------------------
:math:`\theta` maximises R's ``c.loglik``, the marginal likelihood of the gamma frailty with the
baseline hazard profiled out as in the penalised fit (Therneau, Grambsch & Pankratz 2003):

.. math:: L(\theta) = \ell(\hat\beta, \hat\omega) + \nu \sum_j \hat\omega_j
          + \sum_j \Big[\log\Gamma(\nu + d_j) - \log\Gamma(\nu) - d_j \log(\nu + d_j)
          + d_j - \nu \log(1 + d_j/\nu)\Big],

with :math:`d_j` the (unweighted) number of events of group :math:`j`: the partial likelihood plus
:math:`\nu\sum_j\hat\omega_j` (R's "loglik" column of ``fit$history[[1]]$history``, which is
:math:`\ell_p` without its constant :math:`-\nu G`) plus R's ``frailty.gammacon``. By the envelope
theorem its derivative needs no derivative of :math:`(\hat\beta, \hat\omega)`:

.. math:: \frac{dL}{d\nu} = \sum_j (1 + \hat\omega_j - e^{\hat\omega_j})
          + \sum_j \sum_{k=0}^{d_j - 1} \Big[\frac{1}{\nu + k} - \log\Big(1 + \frac{1}{\nu + k}\Big)\Big]

(both sums computed without cancellation). Its second derivative needs the tangent of the path of
fits, :math:`d(\hat\beta, \hat\omega)/d\nu = H^{-1}(0, 1 - e^{\hat\omega})` (:math:`H` the penalised
information; one more conjugate-gradient solve):

.. math:: \frac{d^2L}{d\nu^2} = \sum_j (1 - e^{\hat\omega_j}) \frac{d\hat\omega_j}{d\nu}
          - \sum_j \sum_{k=0}^{d_j - 1} \frac{u_k^3}{1 + u_k}, \qquad u_k = \frac{1}{\nu + k}.

So :math:`\hat\theta` is found by Newton's method on :math:`dL/d\log\theta` (safeguarded by
bisection once bracketed) from a moment estimate, to a relative precision of about ``1e-10`` (R's
own search, ``frailty.controlgam``, creeps towards the maximum and stops far earlier), in a handful
of inner fits, each warm-started along the tangent of the nearest one already done.

At :math:`\theta \to 0` the model is the plain Cox model and :math:`L(0)` its log partial
likelihood. The slope there is :math:`dL/d\theta\,(0) = \tfrac12 \sum_j (U_j^2 - d_j)`, with
:math:`U_j` the group sums of the Cox model's (weighted) martingale residuals. When it is not
positive (or the slope is still negative at :math:`\theta = 10^{-6}`) the estimate is
:math:`\hat\theta = 0`, on the boundary: a :class:`~verzuimmodel.errors.ConvergenceWarning` says so
and the fit is the plain Cox model.

Uncertainty of :math:`\hat\theta`: ``frailty_variance_ci_`` is the profile-likelihood interval
:math:`\{\theta \ge 0: 2\{L(\hat\theta) - L(\theta)\} \le \chi^2_{1, \text{level}}\}`. It is the
one to report: the likelihood of a variance is skewed, and the interval respects
:math:`\theta \ge 0` (its lower end is 0 when :math:`L(0)` is above the cut-off).
``frailty_variance_se_`` is :math:`\{-L''(\hat\theta)\}^{-1/2}` from the curvature (``nan`` on the
boundary, where it has no meaning). The interval's ends are found with second-order steps from the
slope and curvature of each inner fit. ``frailty_lr_statistic_`` :math:`= 2\{L(\hat\theta) - L(0)\}` tests
:math:`\theta = 0`, with its p-value from the :math:`\tfrac12\chi^2_0 + \tfrac12\chi^2_1` mixture
(the null value is on the boundary).

References: Therneau TM, Grambsch PM, Pankratz VS (2003). Penalized survival models and frailty.
J Comput Graph Stat 12:156–175. R ``survival``: ``frailty.gamma``, ``frailty.controlgam``,
``frailty.gammacon``, ``coxpenal.fit``, ``coxpenal.df``, ``coxfit5.c``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ConvergenceError, ConvergenceWarning
from ..tidy import tidy_table
from ._data import SurvData, group_codes, survival_data
from .cox import RiskSets, _check_design

__all__ = ["FrailtyCox"]

_THETA_MIN = 1e-6       # a slope still negative here: the frailty variance is reported as 0 (boundary)
_THETA_MAX = 1e4        # a slope still positive here: not identified


@dataclass(frozen=True)
class _Options:
    distribution: Literal["gamma"]
    theta: float | None
    ties: Literal["efron", "breslow"]
    level: float
    sparse: bool | None
    ci: Literal["profile", "none"]
    tol: float
    max_iter: int


@dataclass
class _Point:
    """Partial likelihood and its derivatives at (beta, omega); per-row terms kept for products."""

    beta: np.ndarray
    omega: np.ndarray
    loglik: float
    grad_b: np.ndarray
    grad_w: np.ndarray          # d loglik / d omega (group sums of weighted martingale residuals)
    info_bb: np.ndarray
    info_wb: np.ndarray         # G x p
    info_ww: np.ndarray         # diagonal (sparse) or G x G (full)
    state: dict | None = None   # RiskSets state, plus per-row r, w r, E


@dataclass
class _Inner:
    """Penalised fit at one theta (theta = 0: the plain Cox model)."""

    theta: float
    beta: np.ndarray
    omega: np.ndarray
    loglik: float            # partial likelihood l(beta, omega)
    iloglik: float           # I-likelihood L(theta)
    slope: float             # dL / dlog(theta)
    curvature: float         # d2L / dlog(theta)^2
    tangent: np.ndarray | None   # d(beta, omega) / dlog(theta)
    dloglik: float           # d loglik / dlog(theta) along the path
    n_iter: int
    converged: bool

    def moved(self, dx: float) -> "_Inner":
        """The fit at theta exp(dx), to first order along the tangent (errors O(dx^2)); for |dx| < 1e-5."""
        p = len(self.beta)
        return _Inner(self.theta * np.exp(dx), self.beta + dx * self.tangent[:p],
                      _recentre(self.omega + dx * self.tangent[p:]), self.loglik + dx * self.dloglik,
                      self.iloglik + dx * self.slope + dx * dx * self.curvature / 2, self.slope + dx * self.curvature,
                      self.curvature, self.tangent, self.dloglik, 0, self.converged)


class _Problem:
    """Data of one fit: derivatives of the partial likelihood in (beta, omega) and the gamma constants."""

    def __init__(self, d: SurvData, group: np.ndarray, n_groups: int, ties: str, sparse: bool):
        self.d, self.X, self.w = d, d.X, d.weights
        self.XT = np.ascontiguousarray(d.X.T)
        self.g, self.G, self.p = group, n_groups, d.X.shape[1]
        self.sparse = sparse
        self.rs = rs = RiskSets(d, d.X, ties)
        if rs.K == 0:
            raise ConvergenceError("no events in the data: a frailty Cox model needs events")
        self.efron = rs.ties == "efron"
        self.lo_zero = not rs.row_lo.any()       # every window starts at the first event time (no entry, no strata)
        self.delta = rs.event.astype(float)
        self.events = np.bincount(group, weights=self.delta, minlength=n_groups).astype(np.int64)
        d_rep = np.repeat(self.events, self.events)
        self.d_rep = d_rep.astype(float)                                          # d_j, once per event
        self.k_rep = (np.arange(len(d_rep)) - np.repeat(np.cumsum(self.events) - self.events, self.events)
                      ).astype(float)                                             # k = 0..d_j - 1
        if not sparse:                       # full information: the group indicators as extra columns
            ind = np.zeros((d.n, n_groups))
            ind[np.arange(d.n), group] = 1.0
            self.rs_full = RiskSets(d, np.column_stack([d.X, ind]), ties)
            return
        # R's diagonal frailty information weights the tied deaths of time k by m_k / (their total weight)
        scale = rs.m / rs.dw
        self.slot_scale = None if np.all(np.abs(scale - 1.0) <= 1e-14) else scale
        self._stretches(group)

    def _stretches(self, group: np.ndarray) -> None:
        """Breakpoints (group, event position) where a group's risk total changes, sorted."""
        rs, G, K = self.rs, self.G, self.rs.K
        if not self.lo_zero:    # + w r at row_lo, - w r at row_hi
            bp_group = np.concatenate([group, group])
            bp_pos = np.concatenate([rs.row_lo, rs.row_hi])
        else:                   # everyone is at risk from the start: one + (the group total) per group
            bp_group = np.concatenate([np.arange(G), group])
            bp_pos = np.concatenate([np.zeros(G, dtype=rs.row_hi.dtype), rs.row_hi])
        order = np.lexsort((bp_pos, bp_group))
        self.bp_order = order
        self.bp_group = bp_group[order]
        pos = bp_pos[order]
        m = len(pos)
        same = np.zeros(m, dtype=bool)
        same[:-1] = self.bp_group[1:] == self.bp_group[:-1]
        nxt = np.where(same, np.append(pos[1:], 0), pos)
        sizes = np.bincount(self.bp_group, minlength=G)
        self.bp_first = np.cumsum(sizes) - sizes                  # index of each group's first breakpoint
        keep = np.flatnonzero(nxt > pos)                          # stretches of positive length
        self.seg, self.seg_group, self.seg_lo, self.seg_hi = keep, self.bp_group[keep], pos[keep], nxt[keep]
        if self.efron:          # (group, event time) pairs with deaths, and the stretch holding them
            ev = rs.ev_rows
            pair_key, self.pair_inv = np.unique(group[ev] * K + rs.ev_group, return_inverse=True)
            self.pair_group, self.pair_time = pair_key // K, pair_key % K
            combined = self.bp_group * (K + 1) + pos
            self.pair_bp = np.searchsorted(combined, self.pair_group * (K + 1) + self.pair_time, side="right") - 1

    # -- the gamma constant of the I-likelihood ------------------------------------------------
    def gammacon(self, nu: float) -> float:
        """R's ``frailty.gammacon(d, nu)``, computed without cancellation for large ``nu``."""
        d = self.events.astype(float)
        term2 = np.log1p((self.k_rep - self.d_rep) / (nu + self.d_rep)).sum()   # log Gamma ratios - d log(nu+d)
        term1 = nu * _u_minus_log1p(d / nu).sum()                                # d - nu log(1 + d/nu)
        return float(term1 + term2)

    def gammacon_dnu(self, nu: float) -> float:
        """d gammacon / d nu = sum_j sum_{k < d_j} [u - log(1 + u)], u = 1 / (nu + k)."""
        return float(_u_minus_log1p(1.0 / (nu + self.k_rep)).sum())

    def gammacon_d2nu(self, nu: float) -> float:
        """d2 gammacon / d nu2 = -sum_j sum_{k < d_j} u^3 / (1 + u), u = 1 / (nu + k)."""
        u = 1.0 / (nu + self.k_rep)
        return float(-(u ** 3 / (1 + u)).sum())

    # -- derivatives -----------------------------------------------------------------------------
    def point(self, beta: np.ndarray, omega: np.ndarray, r_style: bool = False) -> _Point | None:
        """Derivatives at (beta, omega); None if a risk set underflows.

        ``r_style`` gives R's diagonal frailty information with case weights (for the variance).
        """
        eta = self.X @ beta + omega[self.g]
        if not self.sparse:
            ll, grad, info, _ = self.rs_full.evaluate(eta)
            if grad is None:
                return None
            p = self.p
            return _Point(beta, omega, ll, grad[:p], grad[p:], info[:p, :p], info[p:, :p], info[p:, p:])
        rs, g, G, w = self.rs, self.g, self.G, self.w
        ll, grad, info, st = rs.evaluate(eta)
        if grad is None:
            return None
        r, S1, D1, c = st["r"], st["S1"], st["D1"], st["c"]
        wr = w * r
        E = self._window(r, c["0"], c["1"])                 # expected events (unweighted) per row
        wE = w * E
        grad_w = np.bincount(g, w * self.delta - wE, minlength=G)
        # cross information: sum_{i in j} w_i (x_i E_i - Q_i), Q_i = r_i sum_window phi dLambda a
        p = self.p
        info_wb = np.empty((G, p))
        for j in range(p):
            Q = self._window(r, S1[:, j] * c["2"] - D1[:, j] * c["3"], S1[:, j] * c["3"] - D1[:, j] * c["4"])
            info_wb[:, j] = np.bincount(g, wE * self.XT[j] - w * Q, minlength=G)
        if r_style and self.slot_scale is not None:
            c = {key: v * self.slot_scale for key, v in c.items()}
            wE = w * self._window(r, c["0"], c["1"])
        info_ww = np.bincount(g, wE, minlength=G) - self._squares(wr, c)
        st.update(wr=wr, E=E)
        return _Point(beta, omega, ll, grad, grad_w, info, info_wb, info_ww, st)

    def _window(self, r: np.ndarray, per_time: np.ndarray, own: np.ndarray) -> np.ndarray:
        """Per row ``r_i (sum of per_time over the event times of its window - own[k_i] if it dies at k_i)``.

        ``own`` is the Efron correction: a death takes part in its own time's tied steps with weight
        ``1 - l/m``.
        """
        rs = self.rs
        cum = np.concatenate([[0.0], np.cumsum(per_time)])
        out = cum[rs.row_hi]
        if not self.lo_zero:
            out -= cum[rs.row_lo]
        if self.efron:
            out[rs.ev_rows] -= own[rs.ev_group]
        out *= r
        return out

    def _squares(self, wr: np.ndarray, c: dict) -> np.ndarray:
        """Per group ``sum_k [c2 R_jk^2 - 2 c3 R_jk D_jk + c4 D_jk^2]`` (R: risk total, D: deaths' total)."""
        G = self.G
        if not self.lo_zero:
            vals = np.concatenate([wr, -wr])[self.bp_order]
        else:
            vals = np.concatenate([np.bincount(self.g, wr, minlength=G), -wr])[self.bp_order]
        cum = np.cumsum(vals)
        base = cum[self.bp_first] - vals[self.bp_first]
        R = cum - base[self.bp_group]                               # the group's risk total after each breakpoint
        cc2 = np.concatenate([[0.0], np.cumsum(c["2"])])
        Rs = R[self.seg]
        out = np.bincount(self.seg_group, Rs * Rs * (cc2[self.seg_hi] - cc2[self.seg_lo]), minlength=G)
        if self.efron:
            rs = self.rs
            Dp = np.bincount(self.pair_inv, wr[rs.ev_rows], minlength=len(self.pair_group))
            Rp = R[self.pair_bp]
            t = self.pair_time
            out += np.bincount(self.pair_group, Dp * (c["4"][t] * Dp - 2 * c["3"][t] * Rp), minlength=G)
        return out

    def hessvec(self, pt: _Point, vb: np.ndarray, vw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Product of the full information of (beta, omega) with a direction (vb, vw).

        With ``v = X vb + vw[g]``: row ``i`` gets ``w_i [v_i E_i - r_i sum_window phi wbar T_kl / den_kl^2]``,
        ``T_kl`` the risk-set sum of ``w r v`` (minus ``l/m`` of the deaths' sum); then ``X'h`` and group sums.
        """
        rs, st, K = self.rs, pt.state, self.rs.K
        c, r, wr = st["c"], st["r"], st["wr"]
        v = self.X @ vb + vw[self.g]
        y = wr * v
        # at risk at event position k: row_lo <= k < row_hi
        T = _suffix(np.bincount(rs.row_hi, y, minlength=K + 1))[1:]
        if not self.lo_zero:
            T -= _suffix(np.bincount(rs.row_lo, y, minlength=K + 1))[1:]
        if self.efron:
            TD = np.bincount(rs.ev_group, y[rs.ev_rows], minlength=K)
            Q = self._window(r, T * c["2"] - TD * c["3"], T * c["3"] - TD * c["4"])
        else:
            Q = self._window(r, T * c["2"], None)
        h = self.w * (v * st["E"] - Q)
        return self.XT @ h, np.bincount(self.g, h, minlength=self.G)


def _suffix(a: np.ndarray) -> np.ndarray:
    """Sums over positions >= k (exact for the small risk sets at late times)."""
    return np.cumsum(a[::-1])[::-1]


def _u_minus_log1p(u: np.ndarray) -> np.ndarray:
    """``u - log(1 + u)`` for ``u >= 0`` without cancellation for small ``u``."""
    u = np.asarray(u, dtype=float)
    small = u < 1e-2
    us = np.where(small, u, 0.0)
    series = us * us * (1 / 2 - us * (1 / 3 - us * (1 / 4 - us * (1 / 5 - us * (1 / 6 - us / 7)))))
    return np.where(small, series, u - np.log1p(np.where(small, 0.0, u)))


def _one_plus_w_minus_expw(w: np.ndarray) -> np.ndarray:
    """``1 + w - exp(w)`` without cancellation for small ``|w|``."""
    small = np.abs(w) < 1e-2
    ws = np.where(small, w, 0.0)
    series = -ws * ws * (1 / 2 + ws * (1 / 6 + ws * (1 / 24 + ws * (1 / 120 + ws * (1 / 720 + ws / 5040)))))
    return np.where(small, series, 1 + w - np.exp(np.where(small, 0.0, w)))


def _recentre(omega: np.ndarray) -> np.ndarray:
    """Shift so that the mean of exp(omega) is 1 (the partial likelihood does not change)."""
    m = omega.max()
    return omega - (m + np.log(np.mean(np.exp(omega - m))))


def _schur(pt: _Point, pen: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse approximation: ``D`` (diagonal of the frailty block + penalty), ``I_wb / D`` and the Schur complement."""
    D = pt.info_ww + pen
    B = pt.info_wb / D[:, None]
    return D, B, pt.info_bb - pt.info_wb.T @ B


def _solver(prob: _Problem, pt: _Point, nu: float) -> Callable[[np.ndarray, float], np.ndarray]:
    """``solve(rhs, rtol)``: ``H^{-1} rhs`` for the penalised information ``H`` at ``pt``.

    Sparse: preconditioned conjugate gradients with R's sparse approximation (Schur complement) as
    preconditioner and exact products with ``H``; few groups: a dense solve.
    """
    p = prob.p
    pen = nu * np.exp(pt.omega)
    if not prob.sparse:
        H = np.block([[pt.info_bb, pt.info_wb.T], [pt.info_wb, pt.info_ww + np.diag(pen)]])
        return lambda rhs, rtol: np.linalg.solve(H, rhs)
    D, B, S = _schur(pt, pen)
    S_inv = np.linalg.inv(S) if p else np.zeros((0, 0))

    def psolve(x):
        a = x[p:] / D
        db = S_inv @ (x[:p] - pt.info_wb.T @ a)
        return np.concatenate([db, a - B @ db])

    def hmul(x):
        hb, hw = prob.hessvec(pt, x[:p], x[p:])
        return np.concatenate([hb, hw + pen * x[p:]])

    def solve(rhs, rtol):
        x = psolve(rhs)
        res = rhs - hmul(x)
        z = psolve(res)
        rz = res @ z
        target = rtol ** 2 * abs(rhs @ x)
        d = z
        for _ in range(50):
            if not rz > target:
                break
            Hd = hmul(d)
            dHd = d @ Hd
            if not dHd > 0:
                break
            alpha = rz / dHd
            x = x + alpha * d
            res = res - alpha * Hd
            z = psolve(res)
            rz_new = res @ z
            d = z + (rz_new / rz) * d
            rz = rz_new
        return x

    return solve


def _penalised_fit(prob: _Problem, theta: float, beta: np.ndarray, omega: np.ndarray, tol: float,
                   max_iter: int) -> _Inner:
    """Newton–Raphson with step halving for the penalised partial likelihood at ``theta > 0``."""
    nu = 1.0 / theta

    def penalised(pt):
        return pt.loglik - nu * np.sum(np.exp(pt.omega) - pt.omega) if pt is not None else -np.inf

    pt = prob.point(beta, _recentre(omega))
    if pt is None:
        raise ConvergenceError("a risk set is empty at the starting values: check the entry and exit times")
    pll = penalised(pt)
    converged = False
    n_iter = 0
    previous = np.inf
    for n_iter in range(1, max_iter + 1):
        ew = np.exp(pt.omega)
        step = _solver(prob, pt, nu)(np.concatenate([pt.grad_b, pt.grad_w - nu * (ew - 1)]), 1e-4)
        db, dw = step[:prob.p], step[prob.p:]
        size = max(np.abs(db).max(initial=0.0), np.abs(dw - dw.mean()).max(initial=0.0))
        frac = 1.0
        for _ in range(40):
            new = prob.point(pt.beta + frac * db, _recentre(pt.omega + frac * dw))
            new_pll = penalised(new)
            if new_pll >= pll - 1e-13 * abs(pll):
                break
            frac /= 2
        else:
            break
        pt, pll = new, new_pll
        # done when this step, or the next one predicted by (inexact) Newton's quadratic convergence,
        # is below tol: the next step would be ~ max(size^3 / previous^2, 1e-4 size)
        if size * frac <= tol or (frac == 1 and size < 1e-3 and max(size ** 3 / previous ** 2, 1e-4 * size) <= tol):
            converged = True
            break
        previous = size * frac
    omega = pt.omega
    iloglik = pt.loglik + nu * omega.sum() + prob.gammacon(nu)
    L1 = _one_plus_w_minus_expw(omega).sum() + prob.gammacon_dnu(nu)          # dL/dnu
    # tangent of the path: d(beta, omega)/dnu = H^{-1} (0, 1 - exp(omega)); then d2L/dnu2
    rhs = np.concatenate([np.zeros(prob.p), -np.expm1(omega)])
    tangent = _solver(prob, pt, nu)(rhs, 1e-7)
    L2 = float(-np.expm1(omega) @ tangent[prob.p:]) + prob.gammacon_d2nu(nu)
    slope = -nu * L1                                                            # dL/dlog(theta)
    tangent = -nu * tangent                                                     # per log(theta)
    dloglik = float(nu * np.expm1(omega) @ tangent[prob.p:])      # the score of omega is nu (exp(omega) - 1)
    return _Inner(theta, pt.beta, omega, pt.loglik, iloglik, slope, -slope + nu * nu * L2, tangent, dloglik,
                  n_iter, converged)


def _cox_fit(prob: _Problem, tol: float, max_iter: int) -> tuple[_Inner, float, np.ndarray]:
    """The plain Cox model (theta = 0); also dL/dtheta at 0 and the expected events per group."""
    rs, p = prob.rs, prob.p
    beta = np.zeros(p)
    ll, grad, info, _ = rs.evaluate(prob.X @ beta)
    converged = p == 0
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        if p == 0:
            break
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            raise ConvergenceError(
                f"FrailtyCox: the information matrix of the Cox model without frailty is singular after {n_iter - 1} "
                "Newton step(s): a coefficient may be infinite (separation: the events occur only at one extreme of "
                "a covariate) or the covariates are collinear among the episodes at risk") from None
        frac = 1.0
        for _ in range(40):
            nb = beta + frac * step
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):   # a step too far: halved below
                nll, ngrad, ninfo, _ = rs.evaluate(prob.X @ nb)
            if np.isfinite(nll) and nll >= ll - 1e-13 * abs(ll):
                break
            frac /= 2
        beta, ll, grad, info = nb, nll, ngrad, ninfo
        if np.abs(step).max() * frac <= tol:
            converged = True
            break
    omega = np.zeros(prob.G)
    eta = prob.X @ beta
    _, _, _, st = rs.evaluate(eta, need="loglik")
    cum = np.concatenate([[0.0], np.cumsum(st["c"]["0"])])
    E = st["r"] * (cum[rs.row_hi] - cum[rs.row_lo])
    if prob.efron:
        E[rs.ev_rows] -= st["r"][rs.ev_rows] * st["c"]["1"][rs.ev_group]
    U = np.bincount(prob.g, prob.w * (prob.delta - E), minlength=prob.G)
    slope0 = 0.5 * float(np.sum(U ** 2) - prob.events.sum())
    expected = np.bincount(prob.g, prob.w * E, minlength=prob.G)
    return _Inner(0.0, beta, omega, ll, ll, 0.0, np.nan, None, 0.0, n_iter, converged), slope0, expected


class FrailtyCox:
    """Cox model with a shared gamma frailty per group (see the module docstring for the equations).

    Parameters
    ----------
    distribution : ``"gamma"`` (the only one; R's default for ``frailty()``).
    ties : ``"efron"`` (default, as R) or ``"breslow"``.
    theta : ``None`` (default) estimates the frailty variance; a number fixes it (R's
        ``frailty(g, theta = ...)``; 0 is the plain Cox model) and leaves its SE and interval missing.
    level : confidence level of the intervals in :meth:`tidy` and of ``frailty_variance_ci_``.
    sparse : treat the frailty block of the information as diagonal for the variance (R's
        ``sparse``); ``None`` (default) does as R: sparse with more than 5 groups.
    ci : ``"profile"`` (default) computes the profile-likelihood interval of the frailty variance
        (a few more inner fits); ``"none"`` skips it.
    tol : convergence of the inner Newton–Raphson (largest change of a coefficient or log frailty).
    max_iter : maximum Newton iterations per inner fit.

    Attributes (after :meth:`fit`)
    ------------------------------
    params_, standard_errors_ : Series of log hazard ratios (conditional on the frailty) and SEs
        (R's ``sqrt(diag(fit$var))``); ``variance_`` the covariance matrix.
    frailty_variance_ : theta-hat; ``frailty_variance_se_`` (curvature), ``frailty_variance_ci_``
        (profile likelihood; preferred).
    frailties_ : Series of the estimated frailties :math:`\\hat Z_j = e^{\\hat\\omega_j}` by group
        (``log_frailties_`` is R's ``fit$frail``).
    log_likelihood_ : the I-likelihood at theta-hat (R's ``c.loglik``);
        ``partial_log_likelihood_`` the partial likelihood at the fit (R's ``fit$loglik[2]``);
        ``log_likelihood_cox_`` the plain Cox model's (theta = 0).
    frailty_lr_statistic_, frailty_lr_p_value_ : likelihood-ratio test of theta = 0.
    boundary_ : True when theta-hat is 0. ``history_`` : the theta values evaluated, with the
        I-likelihood, its slope and curvature in log(theta), and the Newton steps of each inner fit
        (0 for theta-hat when its last, tiny step was taken along the tangent).

    Examples
    --------
    >>> m = FrailtyCox().fit(df, duration="stop", event="event", covariates=["x1", "x2"],
    ...                      group="school", entry="start")                            # doctest: +SKIP
    >>> m.tidy()                                                                        # doctest: +SKIP
    """

    def __init__(self, distribution: Literal["gamma"] = "gamma", ties: Literal["efron", "breslow"] = "efron",
                 theta: float | None = None, level: float = 0.95, sparse: bool | None = None,
                 ci: Literal["profile", "none"] = "profile", tol: float = 1e-9, max_iter: int = 100):
        if distribution != "gamma":
            raise ValueError(f"distribution: got {distribution!r}; only 'gamma' is implemented")
        if ties not in ("efron", "breslow"):
            raise ValueError(f"ties: got {ties!r}; expected 'efron' or 'breslow'")
        if theta is not None and not (isinstance(theta, (int, float)) and np.isfinite(theta) and theta >= 0):
            raise ValueError(f"theta: got {theta!r}; expected None (estimate it) or a fixed variance >= 0")
        if not 0 < level < 1:
            raise ValueError(f"level: got {level!r}; expected a number between 0 and 1")
        if sparse not in (None, True, False):
            raise ValueError(f"sparse: got {sparse!r}; expected None, True or False")
        if ci not in ("profile", "none"):
            raise ValueError(f"ci: got {ci!r}; expected 'profile' or 'none'")
        if not tol > 0 or not max_iter >= 1:
            raise ValueError(f"tol must be > 0 and max_iter >= 1; got {tol!r}, {max_iter!r}")
        self.options = _Options(distribution, None if theta is None else float(theta), ties, level, sparse, ci,
                                float(tol), int(max_iter))

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame, duration: str, event: str, covariates: Sequence[str], group: str,
            entry: str | None = None, strata: str | Sequence[str] | None = None,
            weights: str | None = None) -> "FrailtyCox":
        """Fit the model; returns ``self``.

        ``group`` names the column of the shared frailty (e.g. ``"school"``). ``entry`` gives
        start–stop rows ``(entry, duration]`` (time-varying covariates, late entry); ``strata``
        separate baseline hazards; ``weights`` case weights (as R, they weight the partial
        likelihood; the event counts :math:`d_j` of the I-likelihood are unweighted).
        Bad input raises :class:`~verzuimmodel.schema.SchemaError` naming the column and rows.
        Degenerate data: no events (every row censored) or a Cox model without frailty whose
        information matrix becomes singular (a coefficient running off to infinity) raise
        :class:`~verzuimmodel.errors.ConvergenceError`; a ``group`` with one level ``ValueError``.
        """
        opt = self.options
        d = survival_data(df, duration=duration, event=event, covariates=covariates, entry=entry, weights=weights,
                          strata=strata)
        codes, labels = group_codes(df, group, "data", "group (frailty)")
        if len(labels) < 2:
            raise ValueError(f"FrailtyCox: group '{group}' has {len(labels)} level(s): a frailty needs at least 2 "
                             "groups")
        _check_design(d)
        sparse = opt.sparse if opt.sparse is not None else len(labels) > 5
        if not sparse and d.n * (d.X.shape[1] + len(labels)) > 2e7:
            raise ValueError(f"sparse=False with {len(labels):,} groups needs a dense {d.n:,} x "
                             f"{d.X.shape[1] + len(labels):,} design of group indicators: use sparse=True (the default "
                             f"with more than 5 groups)")
        prob = _Problem(d, codes, len(labels), opt.ties, sparse)
        cox, slope0, expected = _cox_fit(prob, opt.tol, opt.max_iter)
        fits: dict[float, _Inner] = {0.0: cox}
        at = self._evaluator(prob, fits, expected)
        se, ci, boundary = np.nan, (np.nan, np.nan), False
        if opt.theta is not None:
            best = at(opt.theta) if opt.theta > 0 else cox
        else:
            best, boundary = self._maximise(at, cox, slope0, expected)
            if not boundary:        # at the maximum d2L/dtheta2 = (d2L/dlog(theta)^2) / theta^2
                se = float(best.theta / np.sqrt(-best.curvature)) if best.curvature < 0 else np.inf
            if opt.ci == "profile":
                ci = self._profile_interval(at, best, cox, slope0)
        self._store(prob, d, labels, best, cox, boundary, se, ci, fits, list(covariates))
        return self

    def _evaluator(self, prob: _Problem, fits: dict, expected: np.ndarray) -> Callable[[float], _Inner]:
        """``at(theta)``: the inner fit, cached; warm-started along the tangent of the nearest fit."""
        opt = self.options

        def at(theta: float) -> _Inner:
            theta = float(theta)
            if theta in fits:
                return fits[theta]
            done = [f for t, f in fits.items() if t > 0]
            if done:
                near = min(done, key=lambda f: abs(np.log(f.theta / theta)))
                dx = float(np.clip(np.log(theta / near.theta), -1.0, 1.0))
                beta = near.beta + dx * near.tangent[:prob.p]
                omega = near.omega + dx * near.tangent[prob.p:]
            else:                   # the gamma posterior mode of Z_j given the Cox fit's expected events
                beta = fits[0.0].beta
                omega = np.log((1 / theta + prob.events) / (1 / theta + expected))
            fits[theta] = _penalised_fit(prob, theta, beta, omega, opt.tol, opt.max_iter)
            return fits[theta]

        at.fits = fits
        return at

    @staticmethod
    def _maximise(at, cox: _Inner, slope0: float, expected: np.ndarray) -> tuple[_Inner, bool]:
        """theta-hat: Newton's method on s(x) = dL/dx, x = log(theta), from a moment estimate; or 0.

        The derivative of s comes from the tangent of the path of the inner fits. Steps are kept
        within a bracket once s has changed sign, and to a factor 10 in theta before. A last step
        below 1e-5 is taken along the tangent without another inner fit (errors O(1e-10)).
        """
        if slope0 <= 0:
            return cox, True
        # moment estimate: E[(d_j - E_j)^2 - d_j] = theta E_j^2
        f = at(float(np.clip(2 * slope0 / np.sum(expected ** 2), 1e-3, 1e2)))
        lo, hi = -np.inf, np.inf        # x with s > 0 (below the maximum) and s < 0 (above it)
        for _ in range(100):
            x, s, ds = np.log(f.theta), f.slope, f.curvature
            if s == 0:
                return f, False
            if s > 0:
                lo = max(lo, x)
            else:
                hi = min(hi, x)
            step = -s / ds if ds < 0 else np.sign(s) * np.log(3.0)
            if abs(step) < 1e-5:        # the last Newton step, along the tangent: errors O(step^2)
                final = f.moved(step)
                at.fits.setdefault(final.theta, final)
                return final, False
            new = x + float(np.clip(step, -np.log(10.0), np.log(10.0)))
            if not lo < new < hi:
                new = (lo + hi) / 2 if np.isfinite(lo) and np.isfinite(hi) else x + np.sign(s) * np.log(3.0)
            if hi - lo < 1e-10:
                return f, False
            if new > np.log(_THETA_MAX):
                warnings.warn(f"FrailtyCox: the I-likelihood still increases at a frailty variance of "
                              f"{_THETA_MAX:g}; the variance is not identified (too few events per group?)",
                              ConvergenceWarning, stacklevel=4)
                return f, False
            if new < np.log(_THETA_MIN):
                return cox, True
            f = at(float(np.exp(new)))
        warnings.warn("FrailtyCox: the search for the frailty variance did not converge", ConvergenceWarning,
                      stacklevel=4)
        return f, False

    def _profile_interval(self, at, best: _Inner, cox: _Inner, slope0: float) -> tuple[float, float]:
        """Profile-likelihood interval of theta: where L falls chi2_1(level)/2 below its maximum.

        Second-order (Halley-type) steps in log(theta) on L - cut-off, from the slope and curvature of
        each inner fit, kept inside the bracket once found.
        """
        cut = best.iloglik - stats.chi2.ppf(self.options.level, 1) / 2
        ends = []
        for direction in (-1, 1):
            if direction < 0 and (best.theta == 0 or cox.iloglik >= cut):
                ends.append(0.0)
                continue
            if best.theta > 0:          # quadratic approximation in log(theta) for the first guess
                inside = np.log(best.theta)
                x = inside + direction * min(np.sqrt(2 * (best.iloglik - cut) / max(-best.curvature, 1e-12)),
                                             np.log(10.0))
            else:                       # boundary: L(theta) ~ L(0) + slope0 theta for small theta
                inside = np.log(_THETA_MIN)
                x = np.log(np.clip((best.iloglik - cut) / max(-slope0, 1e-12), 1e-4, 10.0))
            ends.append(self._cross(at, cut, inside, x, direction))
        return ends[0], ends[1]

    @staticmethod
    def _cross(at, cut: float, inside: float, x: float, direction: int) -> float:
        outside = None
        for _ in range(100):
            if x > np.log(_THETA_MAX):
                return np.inf
            if x < np.log(_THETA_MIN):
                return 0.0
            f = at(float(np.exp(x)))
            gap = f.iloglik - cut
            if gap > 0:
                inside = x
            else:
                outside = x
            # next x from the second-order expansion gap + s d + c d^2 / 2 = 0 (the root nearest to x),
            # or Newton's step when it has no real root
            s_, c_ = f.slope, f.curvature
            disc = s_ * s_ - 2 * c_ * gap
            if c_ != 0 and disc >= 0:
                roots = (-s_ + np.array([1.0, -1.0]) * np.sqrt(disc)) / c_
                newton = x + roots[np.argmin(np.abs(roots))]
            else:
                newton = x - gap / s_ if s_ != 0 else np.nan
            if abs(gap) < 1e-9:
                return f.theta
            if np.isfinite(newton) and abs(newton - x) < 1e-5:     # second-order prediction, error O(1e-15)
                return float(np.exp(newton))
            if outside is None:     # move further out, at most a factor 10 in theta
                if not np.isfinite(newton) or (newton - x) * direction <= 0:
                    newton = x + direction * np.log(3.0)
                x = x + direction * min(abs(newton - x), np.log(10.0))
            else:
                lo_x, hi_x = sorted((inside, outside))
                if hi_x - lo_x < 1e-10:
                    return f.theta
                x = newton if np.isfinite(newton) and lo_x < newton < hi_x else (inside + outside) / 2
        return float(np.exp(x))

    def _store(self, prob, d, labels, best, cox, boundary, se, ci, fits, names):
        opt = self.options
        if boundary:
            warnings.warn("FrailtyCox: the frailty variance is on the boundary (estimate 0): the groups vary no more "
                          "than chance, and the fit is the plain Cox model", ConvergenceWarning, stacklevel=3)
        not_conv = [f.theta for f in fits.values() if not f.converged]
        if not_conv:
            warnings.warn(f"FrailtyCox: the penalised fit did not converge in {opt.max_iter} iterations at "
                          f"theta = {', '.join(f'{t:.4g}' for t in not_conv[:3])}", ConvergenceWarning, stacklevel=3)
        # variance as R: inverse of the Schur complement of the (sparse or full) penalised information
        p = prob.p
        pt = prob.point(best.beta, best.omega, r_style=True)
        if best.theta == 0:
            schur = pt.info_bb
        elif prob.sparse:
            schur = _schur(pt, np.exp(best.omega) / best.theta)[2]
        else:
            H = np.block([[pt.info_bb, pt.info_wb.T],
                          [pt.info_wb, pt.info_ww + np.diag(np.exp(best.omega) / best.theta)]])
            schur = np.linalg.inv(np.linalg.inv(H)[:p, :p]) if p else np.zeros((0, 0))
        try:
            var = np.linalg.inv(schur) if p else np.zeros((0, 0))
        except np.linalg.LinAlgError:
            raise ConvergenceError("the information matrix is singular: check for collinear covariates") from None
        self.params_ = pd.Series(best.beta, index=names, name="coef", dtype=float)
        self.variance_ = pd.DataFrame(var, index=names, columns=names)
        v = np.diag(var)
        self.standard_errors_ = pd.Series(np.where(v > 0, np.sqrt(np.abs(v)), np.inf), index=names, name="se",
                                          dtype=float)
        self.frailty_variance_ = float(best.theta)
        self.frailty_variance_se_ = float(se)
        self.frailty_variance_ci_ = (float(ci[0]), float(ci[1]))
        self.log_frailties_ = pd.Series(best.omega, index=labels, name="log_frailty")
        self.frailties_ = pd.Series(np.exp(best.omega), index=labels, name="frailty")
        self.log_likelihood_ = float(best.iloglik)
        self.partial_log_likelihood_ = float(best.loglik)
        self.log_likelihood_cox_ = float(cox.iloglik)
        lr = max(2 * (best.iloglik - cox.iloglik), 0.0)
        self.frailty_lr_statistic_ = float(lr)
        self.frailty_lr_p_value_ = float(0.5 * stats.chi2.sf(lr, 1)) if lr > 0 else 1.0
        self.boundary_ = bool(boundary)
        self.sparse_ = bool(prob.sparse)
        self.converged_ = bool(best.converged)
        self.n_iter_ = int(sum(f.n_iter for f in fits.values()))
        hist = sorted(fits.values(), key=lambda f: f.theta)
        self.history_ = pd.DataFrame({"theta": [f.theta for f in hist], "i_loglik": [f.iloglik for f in hist],
                                      "slope_log_theta": [f.slope for f in hist],
                                      "curvature_log_theta": [f.curvature for f in hist],
                                      "partial_loglik": [f.loglik for f in hist],
                                      "n_iter": [f.n_iter for f in hist]})
        self.n_obs_, self.n_events_, self.n_groups_ = d.n, int(prob.events.sum()), prob.G
        self.covariates_ = names

    # -- results ---------------------------------------------------------------------------------
    def tidy(self, frailty: bool = True) -> pd.DataFrame:
        """Log hazard ratios (conditional on the frailty) with SE, Wald tests, intervals and hazard ratios.

        With ``frailty`` (default) a last row ``term="frailty_variance"`` holds theta-hat with its
        curvature SE and its profile-likelihood interval; its statistic and p-value are those of
        the likelihood-ratio test of theta = 0 (chi-square statistic, boundary-mixture p-value) and
        its ``exp_*`` columns are missing.
        """
        out = tidy_table(self.params_, self.standard_errors_, level=self.options.level)
        if not frailty:
            return out
        row = {"term": "frailty_variance", "estimate": self.frailty_variance_, "std_error": self.frailty_variance_se_,
               "statistic": self.frailty_lr_statistic_, "p_value": self.frailty_lr_p_value_,
               "conf_low": self.frailty_variance_ci_[0], "conf_high": self.frailty_variance_ci_[1],
               "exp_estimate": np.nan, "exp_conf_low": np.nan, "exp_conf_high": np.nan}
        return pd.concat([out, pd.DataFrame([row], columns=out.columns)], ignore_index=True)

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"FrailtyCox(distribution={self.options.distribution!r}, ties={self.options.ties!r})"
        return (f"FrailtyCox(gamma, ties={self.options.ties!r}): n={self.n_obs_:,}, events={self.n_events_:,}, "
                f"groups={self.n_groups_:,}, frailty variance={self.frailty_variance_:.4g}, "
                f"I-likelihood={self.log_likelihood_:.4f}\n{self.tidy().to_string(index=False)}")
