r"""The Laplace approximation (and adaptive quadrature) of the count and logistic mixed models, its exact
gradient and the outer optimisation, as glmmTMB / TMB.

The models are in :mod:`~verzuimmodel.mixed.glmm` and :mod:`~verzuimmodel.mixed.binomial_mixed`, the per-row
likelihoods in :mod:`~verzuimmodel.mixed.count_families` and :mod:`~verzuimmodel.mixed.binomial_family`, the
factorisation of :math:`H` in :mod:`~verzuimmodel.mixed.random_intercepts`. This module is the random intercepts'
objective; with random slopes the objective (lme4's spherical random effects and relative covariance factors) is
:mod:`~verzuimmodel.mixed.slope_laplace`'s, and the outer optimisation (:func:`_optimise`) is shared.

Laplace approximation (as glmmTMB / TMB)
----------------------------------------
With :math:`\ell_i(\eta_i)` the conditional log-likelihood of row :math:`i`, :math:`u` all random
effects (:math:`q` of them), :math:`Z` their indicator matrix and
:math:`P = \operatorname{diag}(\sigma_k^{-2})` their prior precision, the joint negative log density is

.. math:: f(u) = -\sum_i \ell_i(\eta_i) + \tfrac12 u'Pu + \sum_k G_k \log\sigma_k + \tfrac q2 \log 2\pi,

and the marginal log-likelihood is approximated at the conditional mode :math:`\hat u = \arg\min f`:

.. math:: \log L(\beta, \sigma, \theta) \approx \sum_i \ell_i(\hat\eta_i) - \tfrac12 \hat u'P\hat u
          - \sum_k G_k \log\sigma_k - \tfrac12 \log|H|, \qquad H = Z'WZ + P,

with :math:`W = \operatorname{diag}(w_i)`, :math:`w_i = -\ell_i''(\hat\eta_i)` the *observed* curvature
(Poisson :math:`\mu_i`; NB2 :math:`\theta\mu_i(\theta + y_i)/(\theta+\mu_i)^2`; binomial
:math:`m_i p_i(1 - p_i)`). :math:`\hat u` comes
from an inner Newton iteration with step halving (:math:`f` is strictly convex in :math:`u`), warm-started
from the previous mode. The outer problem maximises :math:`\log L` over
:math:`\phi = (\beta, \log\sigma_k, \log\theta)`, as glmmTMB does (:math:`\beta` is not integrated out).

Exact gradient. With :math:`h_i = z_i' H^{-1} z_i`, :math:`r_i = \tfrac12 h_i\, \partial w_i/\partial\eta_i`,
:math:`s = H^{-1} Z' r` and :math:`a_i = \ell_i'(\hat\eta_i)`, the implicit function theorem (the mode
moves with :math:`\phi`: :math:`d\hat u/d\phi = -H^{-1}\partial^2 f/\partial u\,\partial\phi`) gives, for
:math:`F = -\log L`,

.. math:: \frac{\partial F}{\partial\beta} = X'(r - a - W Z s), \qquad
          \frac{\partial F}{\partial \log\sigma_k} = G_k - \frac{\|\hat u_k\|^2 + \operatorname{tr}_k H^{-1}
          - 2 s_k'\hat u_k}{\sigma_k^2},

.. math:: \frac{\partial F}{\partial\log\theta} = -\sum_i \frac{\partial\ell_i}{\partial\log\theta}
          + \tfrac12 \sum_i h_i \frac{\partial w_i}{\partial\log\theta}
          + \sum_i (Zs)_i \frac{\partial a_i}{\partial\log\theta}

(the structure TMB exploits; Kristensen et al. 2016). The outer optimiser is L-BFGS-B on Jacobi-scaled
parameters from Poisson/NB GLM starting values, polished by Newton steps with the Hessian from central
differences of this gradient (as TMB's ``sdreport`` / ``optimHess``). That Hessian is the observed
information of the Laplace likelihood; ``standard_errors_`` are the square roots of the diagonal of the
fixed-effects block of its inverse (``vcov()`` of glmmTMB). The scaling of the fixed effects is the diagonal of
the penalised information :math:`X'WX - X'WZH^{-1}Z'WX` at the start (:meth:`_Objective.hessian_diagonal`: a
solve per coefficient), that of the variances and :math:`\theta` forward differences of the gradient; the
scaling only conditions the search, the optimum and its Hessian do not depend on it.

Cost with millions of rows: every evaluation passes over the rows a few times per inner Newton step (the
linear predictor, the family's derivatives, the sums into :math:`H`); these passes are compiled
(:mod:`~verzuimmodel.mixed.row_passes`), write into arrays kept between evaluations, and the products with
:math:`X` use its distinct rows (:class:`~verzuimmodel.mixed.fixed_design.FixedDesign`). An NB2 fit of a tenth
of the national cohort's pupils (0.51 million VO pupil-years, 17 fixed effects, pupil, PO and VO school
intercepts) took 77 evaluations (95 with forward differences for every scale), 42 of them for the final Hessian.

Adaptive Gauss–Hermite quadrature (one grouping factor)
-------------------------------------------------------
With one factor the integral factorises over groups :math:`j`; with
:math:`s_j = H_{jj}^{-1/2}` and the :math:`Q` Gauss–Hermite nodes :math:`z_m` and weights
:math:`\omega_m` of the standard normal (``n_agq=Q``),

.. math:: \log L_j \approx \log s_j + \tfrac12\log 2\pi + \log \sum_{m=1}^{Q} \omega_m\,
          e^{z_m^2/2}\, e^{g_j(\hat u_j + s_j z_m)}, \qquad
          g_j(u) = \sum_{i \in j}\ell_i(\eta_i^0 + u) + \log\varphi_{\sigma}(u),

as ``lme4::glmer(nAGQ = Q)``; :math:`Q = 1` is the Laplace approximation. Its gradient is exact too
(differentiating through :math:`\hat u_j` and :math:`s_j`). With small groups (a few rows, low
counts) the Laplace approximation underestimates the variance; quadrature reduces that error.

References: Kristensen K, Nielsen A, Berg CW, Skaug H, Bell BM (2016). TMB: Automatic differentiation
and Laplace approximation. J Stat Softw 70(5). Bates D, Mächler M, Bolker B, Walker S (2015). Fitting
linear mixed-effects models using lme4. J Stat Softw 67(1) (``glmerAGQ``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize, special

from ..errors import ConvergenceError
from .count_families import ALL_NAMES
from .fixed_design import FixedDesign, weighted_least_squares
from .random_intercepts import _Groups

BOUNDARY_VARIANCE = 1e-6       # a variance below this is tested against the fit without its factor
THETA_MAX = 1e6                # a dispersion above this is reported as "no overdispersion"
_LOG_SIGMA_BOUNDS = (np.log(1e-5), np.log(1e2))
_LOG_THETA_BOUNDS = (np.log(1e-4), np.log(1e8))


# ----------------------------------------------------------------------------------------------------------------
# the objective: minus the (Laplace or AGQ) log-likelihood and its gradient in phi = (beta, log sigma, log theta)


@dataclass(frozen=True, eq=False)
class LaplaceInputs:
    """What the objective of a fit is built from, kept on the fitted model for its likelihood profile
    (:mod:`~verzuimmodel.mixed.glmm_profile`): the outcome, the fixed-effects design, the offset, the family and,
    with random slopes, each grouping factor's random-effects columns (n x q_b, as given)."""

    y: np.ndarray
    X: np.ndarray
    offset: np.ndarray
    family: object
    slope_columns: tuple[np.ndarray, ...] | None = None


@dataclass
class _State:
    """Everything at the conditional mode for one phi."""

    phi: np.ndarray
    loglik: float
    grad: np.ndarray             # gradient of minus the log-likelihood
    u: np.ndarray
    inner_converged: bool


class _Objective:
    def __init__(self, y, X, offset, groups: _Groups, family, n_agq: int = 1, inner_tol: float = 1e-10,
                 inner_max_iter: int = 100):
        self.y, self.X, self.offset, self.groups, self.family = y, X, offset, groups, family
        self.n, self.p = X.shape
        self.K = groups.K
        self.m = self.p + self.K + int(family.has_dispersion)
        self.n_agq = n_agq
        self.inner_tol, self.inner_max_iter = inner_tol, inner_max_iter
        self.u = np.zeros(groups.q)
        self._buffers: dict[str, np.ndarray] = {}
        self.design = FixedDesign(X)
        if n_agq > 1:
            if self.K != 1:
                raise ValueError("adaptive Gauss-Hermite quadrature (n_agq > 1) needs exactly one grouping factor")
            z, wts = np.polynomial.hermite_e.hermegauss(n_agq)
            self.nodes = z
            self.log_node_weights = np.log(wts / np.sqrt(2 * np.pi)) + z ** 2 / 2

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Box of the outer optimisation: the log SDs within ``_LOG_SIGMA_BOUNDS``, log theta within
        ``_LOG_THETA_BOUNDS``, the fixed effects free."""
        p, K, m = self.p, self.K, self.m
        lower = np.full(m, -np.inf)
        upper = np.full(m, np.inf)
        lower[p:p + K], upper[p:p + K] = _LOG_SIGMA_BOUNDS
        if self.family.has_dispersion:
            lower[-1], upper[-1] = _LOG_THETA_BOUNDS
        return lower, upper

    def flat(self, phi: np.ndarray) -> np.ndarray:
        """Directions the Newton polish holds fixed: a variance that vanishes (checked against the fit without
        its factor afterwards) and a dispersion that is infinite in effect."""
        p, K = self.p, self.K
        out = np.zeros(self.m, dtype=bool)
        out[p:p + K] = np.exp(2 * phi[p:p + K]) < BOUNDARY_VARIANCE
        if self.family.has_dispersion:
            out[-1] = np.exp(phi[-1]) > THETA_MAX
        return out

    def unpack(self, phi):
        p, K = self.p, self.K
        beta, tau = phi[:p], phi[p:p + K]
        omega = float(phi[p + K]) if self.family.has_dispersion else None
        return beta, tau, omega

    def prec_vector(self, tau):
        return np.repeat(np.exp(-2.0 * tau), self.groups.sizes)

    # -- inner problem ---------------------------------------------------------------------------------------------
    def _buffer(self, name: str, size: int | None = None) -> np.ndarray:
        """An array kept between evaluations for a row-sized temporary (a fresh one of millions of rows costs
        page faults every time): ``mode``'s current and candidate rows, the family's derivatives at the mode and
        the sums over rows behind a factorisation. Each is overwritten by the next evaluation."""
        size = self.n if size is None else size
        buf = self._buffers.get(name)
        if buf is None or len(buf) != size:
            buf = self._buffers[name] = np.empty(size)
        return buf

    def _rows(self, tag: str) -> dict | None:
        """Buffers for the family's per-row values (None when the family makes its own arrays)."""
        if not getattr(self.family, "writes_into", False):
            return None
        return {k: self._buffer(f"{tag}_{k}") for k in ("ll", "a", "w")}

    def mode(self, eta0, prec, prep):
        """Conditional mode of u (Newton with step halving); returns (u, eta, ll, a, w, converged). The row
        arrays returned are buffers of this objective, valid until its next evaluation."""
        g, fam = self.groups, self.family
        u = self.u.copy()
        if g.q == 0:
            ll, a, w = fam.core(eta0, prep)
            return u, eta0, ll, a, w, True
        if not np.all(np.isfinite(u)):
            u = np.zeros(g.q)
        cur, new = "mode_a", "mode_b"                  # the current rows and a candidate's, swapped on a step
        sums = self._buffer("sums", g.size) if g.K >= 2 else None

        def rows(v, tag):
            eta = g.Zu(v, eta0, out=self._buffer(f"{tag}_eta"))
            out = self._rows(tag)
            return (eta, *(fam.core(eta, prep) if out is None else fam.core(eta, prep, out=out)))

        eta, ll, a, w = rows(u, cur)
        f = -ll.sum() + 0.5 * np.dot(prec * u, u)
        converged = False
        for _ in range(self.inner_max_iter):
            fac, za = g.factorize_with_score(w, a, prec, out=sums)
            grad = -za + prec * u
            step = -fac.solve(grad)
            size = np.abs(step).max(initial=0.0)
            t = 1.0
            for _ in range(60):
                un = u + t * step
                etan, lln, an, wn = rows(un, new)
                fn = -lln.sum() + 0.5 * np.dot(prec * un, un)
                if fn <= f + 1e-12 * (1.0 + abs(f)):
                    break
                t /= 2
            else:
                break
            u, eta, ll, a, w, f = un, etan, lln, an, wn, fn
            cur, new = new, cur
            if size * t <= self.inner_tol:
                converged = True
                break
        return u, eta, ll, a, w, converged

    def hessian_diagonal(self, phi) -> np.ndarray:
        r"""An approximation of the diagonal of the Hessian of :math:`-\log L` in the fixed effects (NaN for the
        other parameters), for the optimiser's scaling: that of the penalised log-likelihood with the random
        effects profiled out at their mode (which ``evaluate(phi)`` has just found),
        :math:`\operatorname{diag}(X'WX - X'WZH^{-1}Z'WX)` -- the Laplace approximation's log-determinant term
        left out. One solve with :math:`H` per fixed effect instead of one evaluation of the likelihood."""
        out = np.full(self.m, np.nan)
        if self.n_agq > 1 or self.groups.q == 0 or self.p == 0:
            return out
        g, fam = self.groups, self.family
        beta, tau, omega = self.unpack(phi)
        prep = fam.prepare(omega)
        prec = self.prec_vector(tau)
        w = fam.core(g.Zu(self.u, self.design.matvec(beta) + self.offset), prep)[2]
        fac = g.factorize(w, prec)
        for j in range(self.p):
            xj = self.X[:, j]
            v = g.Ztv(w * xj)
            out[j] = np.dot(w, xj * xj) - np.dot(v, fac.solve(v))
        return out

    # -- Laplace ---------------------------------------------------------------------------------------------------
    def evaluate(self, phi) -> _State:
        if self.n_agq > 1:
            return self._agq(phi)
        return self._laplace(phi)

    def _laplace(self, phi) -> _State:
        g, fam, design = self.groups, self.family, self.design
        beta, tau, omega = self.unpack(phi)
        prep = fam.prepare(omega)
        prec = self.prec_vector(tau)
        eta0 = design.matvec(beta) + self.offset
        u, eta, _, _, _, conv = self.mode(eta0, prec, prep)
        self.u = u
        if getattr(fam, "writes_into", False):
            ex = fam.all(eta, prep, out={k: self._buffer(f"all_{k}") for k in ALL_NAMES})
        else:
            ex = fam.all(eta, prep)
        ll, a, w = ex["ll"], ex["a"], ex["w"]
        if g.q == 0:
            loglik = float(ll.sum())
            grad = [-design.rmatvec(a)]
            if fam.has_dispersion:
                grad.append([-ex["l_om"].sum()])
            return _State(np.array(phi, dtype=float), loglik, np.concatenate(grad), u, conv)
        fac = g.factorize(w, prec, out=self._buffer("sums", g.size) if g.K >= 2 else None)
        loglik = float(ll.sum() - 0.5 * np.dot(prec * u, u) - np.dot(g.sizes, tau) - 0.5 * fac.logdet)
        h = fac.leverage()
        r = 0.5 * h * ex["w1"]
        s = fac.solve(g.Ztv(r))
        Zs = g.Zu(s, out=self._buffer("Zs"))
        grad_beta = design.rmatvec(r - a - w * Zs)
        dinv = fac.diag_inv()
        grad_tau = np.empty(self.K)
        for k in range(self.K):                      # loop over the (few) factors
            uk, sk, dk = g.block(u, k), g.block(s, k), g.block(dinv, k)
            pk = np.exp(-2.0 * tau[k])
            grad_tau[k] = g.sizes[k] - pk * (uk @ uk + dk.sum() - 2.0 * sk @ uk)
        grad = [grad_beta, grad_tau]
        if fam.has_dispersion:
            grad.append([-ex["l_om"].sum() + 0.5 * np.dot(h, ex["w_om"]) + np.dot(Zs, ex["a_om"])])
        return _State(np.array(phi, dtype=float), loglik, np.concatenate(grad), u, conv)

    # -- adaptive Gauss-Hermite quadrature (one factor) ------------------------------------------------------------
    def _agq(self, phi) -> _State:
        g, fam, X = self.groups, self.family, self.X
        beta, tau, omega = self.unpack(phi)
        prep = fam.prepare(omega)
        code, q = g.codes[0], g.q
        pk = float(np.exp(-2.0 * tau[0]))
        prec = np.full(q, pk)
        eta0 = X @ beta + self.offset
        u, eta, _, _, _, conv = self.mode(eta0, prec, prep)
        self.u = u
        ex = fam.all(eta, prep)
        w = ex["w"]
        H = g.Ztv(w) + pk
        s = 1.0 / np.sqrt(H)
        Qn = self.n_agq
        A = np.empty((Qn, q))
        Gp = np.empty((Qn, q))                      # g_j'(u) at each node
        Unode = np.empty((Qn, q))
        a_nodes = np.empty((Qn, self.n))
        lom_nodes = np.empty((Qn, self.n)) if fam.has_dispersion else None
        for m_, z in enumerate(self.nodes):          # loop over quadrature nodes
            um = u + s * z
            ll, a, l_om = fam.loglik(eta0 + um[code], prep)
            A[m_] = self.log_node_weights[m_] + g.Ztv(ll) - 0.5 * pk * um * um
            Gp[m_] = g.Ztv(a) - pk * um
            Unode[m_] = um
            a_nodes[m_] = a
            if lom_nodes is not None:
                lom_nodes[m_] = l_om
        lse = special.logsumexp(A, axis=0)
        loglik = float(np.sum(np.log(s) + lse) - q * tau[0])
        pi = np.exp(A - lse)                         # (Q, q) posterior node weights per group
        c1 = (pi * Gp).sum(0)
        c2 = (pi * Gp * self.nodes[:, None]).sum(0)
        bw1 = g.Ztv(ex["w1"])
        s3 = s ** 3

        def total(dH, du):                            # -1/2 dH/H + c1 du + c2 ds (per group)
            return -0.5 * dH / H + c1 * du - 0.5 * c2 * s3 * dH

        # beta
        ZwX = g.ZtM(w[:, None] * X)
        Zw1X = g.ZtM(ex["w1"][:, None] * X)
        du_b = -ZwX / H[:, None]
        dH_b = Zw1X + bw1[:, None] * du_b
        abar = (pi[:, code] * a_nodes).sum(0)
        d_beta = X.T @ abar + (-0.5 * dH_b / H[:, None] + c1[:, None] * du_b
                               - 0.5 * (c2 * s3)[:, None] * dH_b).sum(0)
        # log sigma
        du_t = 2.0 * pk * u / H
        dH_t = bw1 * du_t - 2.0 * pk
        d_tau = float(np.sum(total(dH_t, du_t)) + np.sum(pi * pk * Unode ** 2) - q)
        grad = [-d_beta, [-d_tau]]
        if fam.has_dispersion:
            du_o = g.Ztv(ex["a_om"]) / H
            dH_o = bw1 * du_o + g.Ztv(ex["w_om"])
            lbar = (pi[:, code] * lom_nodes).sum()
            grad.append([-(lbar + np.sum(total(dH_o, du_o)))])
        return _State(np.array(phi, dtype=float), loglik, np.concatenate([np.ravel(x) for x in grad]), u, conv)


# ----------------------------------------------------------------------------------------------------------------
# outer optimisation


def _glm_start(y, X, offset, family, groups: _Groups, design: FixedDesign | None = None) -> np.ndarray:
    """Starting values: Poisson GLM (IRLS) for beta, moments for theta and the group SDs (``design``: the
    products with ``X``, if already made)."""
    design = FixedDesign(X) if design is None else design
    eta = np.log(y + 0.5)
    beta = weighted_least_squares(design, None, eta - offset)
    for _ in range(50):
        eta = np.clip(design.matvec(beta) + offset, -50, 50)
        mu = np.exp(eta)
        z = eta - offset + (y - mu) / mu
        new = weighted_least_squares(design, mu, z)
        if np.max(np.abs(new - beta)) < 1e-8:
            beta = new
            break
        beta = new
    mu = np.exp(np.clip(design.matvec(beta) + offset, -50, 50))
    phi = [beta]
    sds = []
    for c, G in zip(groups.codes, groups.sizes):
        oy, em = np.bincount(c, y, G), np.bincount(c, mu, G)
        r = np.log((oy + 0.5) / (em + 0.5))
        sds.append(float(np.clip(np.std(r), 0.1, 2.0)))
    phi.append(np.log(sds))
    if family.has_dispersion:
        extra = np.sum((y - mu) ** 2 - mu)
        theta = np.sum(mu ** 2) / extra if extra > 0 else 100.0
        phi.append([np.log(np.clip(theta, 0.05, 1e4))])
    return np.concatenate([np.ravel(x) for x in phi])


class _Fit:
    """Result of optimising one objective."""

    def __init__(self, obj: _Objective, state: _State, hessian: np.ndarray, free: np.ndarray, converged: bool,
                 message: str):
        self.obj, self.state, self.hessian, self.free = obj, state, hessian, free
        self.converged, self.message = converged, message


def _fd_hessian(obj: _Objective, phi: np.ndarray, free: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Central differences of the exact gradient (as TMB's ``optimHess``), symmetrised."""
    m = len(phi)
    H = np.zeros((m, m))
    u0 = obj.u.copy()
    for i in np.flatnonzero(free):
        e = np.zeros(m)
        e[i] = steps[i]
        obj.u = u0
        gp = obj.evaluate(phi + e).grad
        obj.u = u0
        gm = obj.evaluate(phi - e).grad
        H[:, i] = (gp - gm) / (2 * steps[i])
    obj.u = u0
    H = 0.5 * (H + H.T)
    H[~free, :] = 0.0
    H[:, ~free] = 0.0
    return H


def _optimise(obj: _Objective, phi0: np.ndarray, max_iter: int) -> _Fit:
    """Maximise ``obj`` from ``phi0``: any objective with ``m``, ``u``, ``evaluate``, ``bounds`` and ``flat``
    (the random intercepts' :class:`_Objective`, or the random slopes' one of
    :mod:`~verzuimmodel.mixed.slope_laplace`)."""
    m = obj.m
    lower, upper = obj.bounds()
    phi0 = np.clip(phi0, lower, upper)
    cache: dict = {}

    def state(phi):
        key = phi.tobytes()
        if key not in cache:
            if len(cache) > 8:
                cache.clear()
            cache[key] = obj.evaluate(phi)
        return cache[key]

    # Jacobi scaling from forward differences of the gradient at the start (those diagonal elements of the
    # Hessian the objective does not approximate itself)
    s0 = state(phi0)
    if not np.isfinite(s0.loglik):
        raise ConvergenceError("the log-likelihood is not finite at the starting values")
    scale = np.ones(m)
    u0 = obj.u.copy()
    approx = obj.hessian_diagonal(phi0) if hasattr(obj, "hessian_diagonal") else np.full(m, np.nan)
    for i in range(m):
        if np.isfinite(approx[i]):
            scale[i] = np.sqrt(approx[i]) if approx[i] > 1e-8 else 1.0
            continue
        h = 1e-4 * max(1.0, abs(phi0[i]))
        e = np.zeros(m)
        e[i] = h
        obj.u = u0
        hii = (obj.evaluate(phi0 + e).grad[i] - s0.grad[i]) / h
        scale[i] = np.sqrt(hii) if np.isfinite(hii) and hii > 1e-8 else 1.0
    obj.u = u0

    def fun(x):
        phi = phi0 + x / scale
        st = state(phi)
        if not np.isfinite(st.loglik):
            return 1e300, np.zeros(m)
        return -st.loglik, st.grad / scale

    bounds = list(zip((lower - phi0) * scale, (upper - phi0) * scale))
    res = optimize.minimize(fun, np.zeros(m), jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 20})
    phi = np.clip(phi0 + res.x / scale, lower, upper)
    message = f"L-BFGS-B: {res.message}"
    # Newton polish on the parameters not at a bound
    steps = 1e-4 / scale
    at_bound = np.zeros(m, dtype=bool)
    H, H_free = None, None
    decrement = np.inf
    for it in range(8):
        st = state(phi)
        # flat directions are held fixed: a parameter at its bound, a variance that vanishes (checked
        # against the fit without its factor afterwards), a dispersion that is infinite in effect
        at_bound = (phi <= lower + 1e-6) | (phi >= upper - 1e-6) | obj.flat(phi)
        free = ~at_bound
        if H is None or decrement > 1e-6 or not np.array_equal(free, H_free):
            # after a tiny step (decrement below 1e-6: a move of 1e-3 standard errors) the Hessian is kept
            H, H_free = _fd_hessian(obj, phi, free, steps), free
        Hf = H[np.ix_(free, free)]
        try:
            cf = linalg.cho_factor(Hf, check_finite=True)
        except (linalg.LinAlgError, ValueError):
            message += "; the Hessian is not positive definite"
            decrement = np.inf
            break
        d = np.zeros(m)
        d[free] = -linalg.cho_solve(cf, st.grad[free])
        decrement = float(-np.dot(st.grad, d))
        if decrement < 1e-12:
            break
        t = 1.0
        improved = False
        for _ in range(30):
            cand = np.clip(phi + t * d, lower, upper)
            sc = state(cand)
            if np.isfinite(sc.loglik) and -sc.loglik <= -st.loglik + 1e-4 * t * np.dot(st.grad, d) + 1e-10:
                phi, improved = cand, True
                break
            t /= 2
        if not improved:
            break
    st = state(phi)
    obj.u = st.u
    converged = bool(decrement < 1e-6 and st.inner_converged)
    if decrement >= 1e-6 and np.isfinite(decrement):
        message += f"; Newton decrement {decrement:.1e} at the last iterate"
    if not st.inner_converged:
        message += "; the conditional modes of the random effects did not converge at the estimates"
    return _Fit(obj, st, H, ~at_bound, converged, message)


def _inverse_hessian(fit: "_Fit") -> tuple[np.ndarray, bool]:
    """The covariance of the free parameters (the inverse of the Hessian of the minus log-likelihood
    over them; NaN elsewhere) and whether that Hessian is positive definite."""
    cov = np.full((fit.obj.m, fit.obj.m), np.nan)
    if fit.hessian is None:
        return cov, False
    free = fit.free
    Hf = fit.hessian[np.ix_(free, free)]
    try:
        linalg.cho_factor(Hf)
    except (linalg.LinAlgError, ValueError):
        return cov, False
    cov[np.ix_(free, free)] = linalg.inv(Hf)
    return cov, True
