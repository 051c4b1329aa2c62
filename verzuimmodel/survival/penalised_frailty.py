r"""The fitting core of the gamma-frailty Cox model: the penalised partial likelihood at a given frailty
variance :math:`\theta`, and the I-likelihood of :math:`\theta` with its first two derivatives.

The model, the search for :math:`\hat\theta` and the results are in :mod:`~verzuimmodel.survival.frailty`
(:class:`~verzuimmodel.survival.frailty.FrailtyCox`).

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
within a group. The rows are sorted once by group and, within a group, by the end of their window,
so that each of these is one compiled pass over the rows (:mod:`~verzuimmodel.survival.frailty_kernels`),
as is each product of the information with a vector (two passes). With few groups (R's default:
5 or fewer; ``sparse=False``) the full information matrix is used instead.

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

References: Therneau TM, Grambsch PM, Pankratz VS (2003). Penalized survival models and frailty.
J Comput Graph Stat 12:156–175. R ``survival``: ``frailty.gamma``, ``frailty.controlgam``,
``frailty.gammacon``, ``coxpenal.fit``, ``coxpenal.df``, ``coxfit5.c``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ConvergenceError
from ._data import SurvData
from ._jit import jit
from .frailty_kernels import frailty_hessvec, frailty_point
from .risk_kernels import column_summary, counting_order, linear_predictor
from .risk_sets import RiskSets


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
    """Data of one fit: derivatives of the partial likelihood in (beta, omega) and the gamma constants.

    The rows are held sorted by group and, within a group, by the last event key of their window,
    so that per-group sums run over contiguous rows (:mod:`~verzuimmodel.survival.frailty_kernels`).
    """

    def __init__(self, d: SurvData, group: np.ndarray, n_groups: int, ties: str, sparse: bool):
        self.d = d
        self.G, self.p = n_groups, d.X.shape[1]
        self.sparse = sparse
        rs = RiskSets(d, d.X, ties)
        if rs.K == 0:
            raise ConvergenceError("no events in the data: a frailty Cox model needs events")
        order = jit(counting_order)(rs.row_hi, rs.K + 1)
        order = order[jit(counting_order)(np.ascontiguousarray(group[order]), n_groups)]
        self.rs = rs = rs.take(order)
        self.g = g = np.ascontiguousarray(group[order], dtype=np.int64)
        self.X, self.w = rs.X, rs.w
        self.seg = np.concatenate([[0], np.cumsum(np.bincount(g, minlength=n_groups))]).astype(np.int64)
        if rs.row_lo.any():     # windows starting after key 0 (entry, strata): the group's rows by start too
            by_lo = jit(counting_order)(rs.row_lo, rs.K + 1)
            self.lo_order = by_lo[jit(counting_order)(np.ascontiguousarray(g[by_lo]), n_groups)]
        else:
            self.lo_order = np.zeros(0, dtype=np.int64)
        self.efron = rs.ties == "efron"
        self.delta = rs.event.astype(float)
        self.events = np.bincount(g, weights=self.delta, minlength=n_groups).astype(np.int64)
        d_rep = np.repeat(self.events, self.events)
        self.d_rep = d_rep.astype(float)                                          # d_j, once per event
        self.k_rep = (np.arange(len(d_rep)) - np.repeat(np.cumsum(self.events) - self.events, self.events)
                      ).astype(float)                                             # k = 0..d_j - 1
        if not sparse:                       # full information: the group indicators as extra columns
            ind = np.zeros((d.n, n_groups))
            ind[np.arange(d.n), group] = 1.0
            self.rs_full = RiskSets(d, np.column_stack([d.X, ind]), ties).take(order)
            return
        # R's diagonal frailty information weights the tied deaths of time k by m_k / (their total weight)
        scale = rs.m / rs.dw
        self.slot_scale = None if np.all(np.abs(scale - 1.0) <= 1e-14) else scale

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
        eta = jit(linear_predictor)(self.X, np.asarray(beta, dtype=float), np.ascontiguousarray(omega[self.g]))[0]
        if not self.sparse:
            ll, grad, info, _ = self.rs_full.evaluate(eta)
            if grad is None:
                return None
            p = self.p
            return _Point(beta, omega, ll, grad[:p], grad[p:], info[:p, :p], info[p:, :p], info[p:, p:])
        rs = self.rs
        ll, grad, info, st = rs.evaluate(eta)
        if grad is None:
            return None
        c, S1, D1 = st["c"], st["S1c"], st["D1c"]
        C0, PA = _prefix(c["0"]), _prefix(S1 * c["2"][:, None] - D1 * c["3"][:, None])
        Aown = np.ascontiguousarray(S1 * c["3"][:, None] - D1 * c["4"][:, None])
        cs = {key: v * self.slot_scale for key, v in c.items()} if r_style and self.slot_scale is not None else c
        w, _, lo = rs.kernel_rows()
        E, grad_w, info_wb, info_ww = jit(frailty_point)(
            rs.X, rs.mu, w, st["r"], lo, rs.row_hi, rs.event, self.seg, self.lo_order, C0, c["1"], PA, Aown,
            _prefix(cs["0"]), cs["1"], _prefix(cs["2"]), cs["3"], cs["4"], self.efron)
        st.update(E=E, c_array=np.array([c[str(j)] for j in range(5)]))
        return _Point(beta, omega, ll, grad, grad_w, info, info_wb, info_ww, st)

    def hessvec(self, pt: _Point, vb: np.ndarray, vw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Product of the full information of (beta, omega) with a direction (vb, vw).

        With ``v = X vb + vw[g]``: row ``i`` gets ``w_i [v_i E_i - r_i sum_window phi wbar T_kl / den_kl^2]``,
        ``T_kl`` the risk-set sum of ``w r v`` (minus ``l/m`` of the deaths' sum); then ``X'h`` and group sums.
        """
        rs, st = self.rs, pt.state
        w, sub, lo = rs.kernel_rows()
        return jit(frailty_hessvec)(rs.X, rs.mu, w, st["r"], st["E"], lo, rs.row_hi, rs.add_bin, sub, rs.event,
                                    self.seg, rs.key_stratum, st["c_array"],
                                    np.ascontiguousarray(vb, dtype=float), np.ascontiguousarray(vw, dtype=float),
                                    self.efron)


def _prefix(a: np.ndarray) -> np.ndarray:
    """Sums over the positions before each position (from 0; one more row than ``a``)."""
    out = np.zeros((len(a) + 1,) + a.shape[1:])
    np.cumsum(a, axis=0, out=out[1:])
    return out


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


def effective_df(pt: _Point, pen: np.ndarray, sparse: bool) -> np.ndarray:
    """Degrees of freedom of each covariate and of the frailty term, as R's ``coxpenal.df`` (``fit$df``).

    With ``H`` the penalised information (frailty block diagonal when ``sparse``, as R), ``P`` the
    penalty's second derivative ``pen`` on the log frailties and ``V = H^{-1}``: the frailty term has
    ``G - sum_j P_j V_jj`` (sparse) or ``tr(V_ww^{-1} (V I V)_ww)`` with ``I = H - P`` (full), and a
    covariate ``(V I V)_kk / V_kk``, its share of the penalised information that is not penalty.
    """
    p, G = len(pt.beta), len(pen)
    if sparse:
        D, B, S = _schur(pt, pen)
        Vbb = np.linalg.inv(S) if p else np.zeros((0, 0))
        Vwb = -B @ Vbb                                        # frailty-covariate block of V
        Vww_diag = 1 / D + np.einsum("gk,gk->g", B @ Vbb, B)
        sandwich_bb = Vbb - Vwb.T @ (pen[:, None] * Vwb)      # (V I V)_bb
        return np.append(np.diag(sandwich_bb) / np.diag(Vbb), G - float(np.sum(pen * Vww_diag)))
    H = np.block([[pt.info_bb, pt.info_wb.T], [pt.info_wb, pt.info_ww + np.diag(pen)]])
    V = np.linalg.inv(H)
    VIV = V - V[:, p:] @ (pen[:, None] * V[p:, :])
    frail = float(np.trace(np.linalg.solve(V[p:, p:], VIV[p:, p:])))
    return np.append(np.diag(VIV)[:p] / np.diag(V)[:p], frail)


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
        try:
            step = _solver(prob, pt, nu)(np.concatenate([pt.grad_b, pt.grad_w - nu * (ew - 1)]), 1e-4)
        except np.linalg.LinAlgError:
            if not prob.p:
                raise ConvergenceError(f"FrailtyCox: the penalised information is singular at theta={theta:.3g}") \
                    from None
            raise _separation(prob, pt.info_bb, f"the penalised information is singular at theta={theta:.3g} after "
                                                f"{n_iter - 1} Newton step(s)") from None
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


def _separation(prob: _Problem, info: np.ndarray, what: str) -> ConvergenceError:
    """The error for a singular information matrix, naming the covariate that dominates its flat
    direction (the eigenvector of the smallest eigenvalue of the coefficients' block)."""
    flat = np.linalg.eigh(np.where(np.isfinite(info), info, 0.0))[1][:, 0]
    worst = prob.d.covariates[int(np.argmax(np.abs(flat)))]
    return ConvergenceError(f"FrailtyCox: {what}: the coefficient of '{worst}' may be infinite (separation: the "
                            "events occur only at one extreme of that covariate) or the covariates are collinear "
                            "among the episodes at risk")


def _flat(info: np.ndarray) -> bool:
    """Numerically singular: the information of the covariates scaled to unit spread has a smallest eigenvalue
    below 1e-15 of its largest, the level of its rounding error. As a coefficient runs off to infinity
    (separation) its information decays to that level in a few dozen steps; nearly collinear covariates
    (age, log(age) and age^2 in the tests) stay near 1e-13."""
    ev = np.linalg.eigvalsh(np.where(np.isfinite(info), info, 0.0))
    return not ev[0] > 1e-15 * ev[-1]


def _cox_fit(prob: _Problem, tol: float, max_iter: int) -> tuple[_Inner, float, np.ndarray]:
    """The plain Cox model (theta = 0); also dL/dtheta at 0 and the expected events per group."""
    rs, p = prob.rs, prob.p
    beta = np.zeros(p)
    lp, none = jit(linear_predictor), np.zeros(rs.n)
    ll, grad, info, st = rs.evaluate(none)
    converged = p == 0
    n_iter = 0
    sd = np.sqrt(np.diag(jit(column_summary)(prob.X)[3]))
    for n_iter in range(1, max_iter + 1):
        if p == 0:
            break
        try:
            if _flat(info * np.outer(sd, sd)):
                raise np.linalg.LinAlgError
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            raise _separation(prob, info, f"the information matrix of the Cox model without frailty is singular "
                                          f"after {n_iter - 1} Newton step(s)") from None
        frac = 1.0
        for _ in range(40):
            nb = beta + frac * step
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):   # a step too far: halved below
                nll, ngrad, ninfo, nst = rs.evaluate(lp(prob.X, nb, none)[0])
            if np.isfinite(nll) and nll >= ll - 1e-13 * abs(ll):
                break
            frac /= 2
        beta, ll, grad, info, st = nb, nll, ngrad, ninfo, nst
        if np.abs(step).max() * frac <= tol:
            converged = True
            break
    omega = np.zeros(prob.G)
    cum = np.concatenate([[0.0], np.cumsum(st["c"]["0"])])
    E = st["r"] * (cum[rs.row_hi] - cum[rs.row_lo])
    if prob.efron:
        E[rs.ev_rows] -= st["r"][rs.ev_rows] * st["c"]["1"][rs.ev_group]
    U = np.bincount(prob.g, prob.w * (prob.delta - E), minlength=prob.G)
    slope0 = 0.5 * float(np.sum(U ** 2) - prob.events.sum())
    expected = np.bincount(prob.g, prob.w * E, minlength=prob.G)
    return _Inner(0.0, beta, omega, ll, ll, 0.0, np.nan, None, 0.0, n_iter, converged), slope0, expected
