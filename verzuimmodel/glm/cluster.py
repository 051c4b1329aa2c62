r"""Cluster-robust variances of a :class:`~verzuimmodel.glm.irls.CountFit`, cluster by cluster.

Notation (rows used by the fit): working weights :math:`W_i` (prior weight included), working
residuals :math:`e_i = (y_i - \mu_i)/\mu_i`, demeaned covariates :math:`\tilde x_i` (the absorbed
factors' projection removed), bread :math:`A = (\tilde X'W\tilde X)^{-1}`, clusters :math:`g`.

- ``iid``: :math:`A` (model-based; Poisson with dispersion 1).
- ``CR0``: :math:`A\,(\sum_g u_g u_g')\,A` with :math:`u_g = \sum_{i \in g} \tilde x_i W_i e_i`.
  By Frisch–Waugh–Lovell the rows of :math:`\beta` in :math:`(X_F'WX_F)^{-1}X_F'W`, with
  :math:`X_F = [X, D]` the design with the fixed effects dummy-coded, are those of
  :math:`A\tilde X'W`; so this is the :math:`\beta` block of the dense sandwich, whatever the
  coding of the fixed effects.
- ``CR1``: CR0 times :math:`\frac{G}{G-1}\frac{N-1}{N-K}` (:math:`G` clusters, :math:`N` rows,
  :math:`K` coefficients of the dense model, fixed effects included:
  :attr:`~verzuimmodel.glm.irls.CountFit.n_params`): statsmodels' ``cov_type="cluster"``. For
  Poisson (the canonical log link) the bread is also statsmodels GLM's; for NB2 it is the expected
  information (as GEE and clubSandwich), where statsmodels GLM uses the observed Hessian.
- ``CR3`` (Mancl & DeRouen 2001; Bell & McCaffrey 2002): :math:`u_g = \tilde X_g'W_g(I -
  H_{gg})^{-1}e_g`, :math:`H` the hat matrix of the working regression with the fixed effects
  dummy-coded, no further factor: statsmodels GEE's ``bias_reduced`` (independence working
  correlation) and ``clubSandwich::vcovCR(type = "CR3")``. With prior weights the hat matrix
  carries them, :math:`H = X_F(X_F'WX_F)^{-1}X_F'W`, as clubSandwich (statsmodels GEE leaves the
  weights out of its hat matrix, so it differs when weights are given).

The CR3 hat-matrix block with one absorbed factor. By FWL,
:math:`H = P_D + \tilde X A\tilde X'W` with :math:`P_D = D(D'WD)^{-1}D'W`, whose entries are
:math:`(P_D)_{ij} = 1[l(i) = l(j)]\,W_j/S_{l(i)}`, :math:`S_l = \sum_{k \in l} W_k`. So
:math:`H_{gg} = B_gC_g'` with :math:`B_g = [E_g\,\mathrm{diag}(1/S),\ \tilde X_gA]`,
:math:`C_g = W_g[E_g,\ \tilde X_g]` and :math:`E_g` the indicators of the :math:`m_g` levels met in
cluster :math:`g`: a matrix of rank at most :math:`r = m_g + p`. The push-through identity
:math:`C'(I - BC')^{-1} = (I - C'B)^{-1}C'` gives
:math:`C_g'\tilde e_g = (I_r - Q_gM)^{-1}C_g'e_g` with :math:`Q_g = C_g'W_g^{-1}C_g` (cluster sums
:math:`S_{lg}`, :math:`\sum W\tilde x`, :math:`\tilde X_g'W_g\tilde X_g`) and
:math:`M = \mathrm{diag}(1/S, A) = LL'`; :math:`u_g` is the last :math:`p` entries. With
:math:`T = L'Q_gL` (symmetric, eigenvalues those of :math:`H_{gg}`, in [0, 1]) this is
:math:`A u_g = L_A\,[(I - T)^{-1}L'C_g'e_g]_{p}`, solved by Cholesky. Each cluster costs
:math:`O(n_g p^2 + r^3)` from sums over its rows: no :math:`n_g \times n_g`, :math:`n \times n` or
:math:`n \times` levels matrix is formed. :math:`I - T` is singular when a cluster alone determines
a coefficient or fixed effect (e.g. a level all of whose rows are in one cluster: leaving the
cluster out, the jackknife that CR3 approximates is undefined); that raises ``ValueError``.

CR3 is computed with at most one absorbed factor: put further (small) factors, such as years, in
``X`` as dummies.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from .absorb import jit

__all__ = ["vcov", "KINDS"]

KINDS = ("iid", "CR0", "CR1", "CR3")


def vcov(fit, kind: Literal["iid", "CR0", "CR1", "CR3"] = "CR1", clusters=None) -> pd.DataFrame:
    """The covariance matrix of ``fit.coef`` (see the module docstring).

    ``clusters``: one label per input row of the fit (or per row it used), required for the
    cluster-robust kinds. ``ValueError`` for an unknown kind, missing or misshapen clusters, fewer
    than 2 clusters, CR3 with more than one absorbed factor, or a cluster whose CR3 correction is
    singular.
    """
    names = fit.coef.index
    if kind not in KINDS:
        raise ValueError(f"vcov: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "iid":
        return pd.DataFrame(fit.bread.copy(), index=names, columns=names)
    g, labels = _cluster_codes(fit, clusters)
    n_clusters = len(labels)
    if n_clusters < 2:
        raise ValueError(f"vcov: the {fit.n_obs:,} rows used are in {n_clusters} cluster; a cluster-robust variance "
                         "needs at least 2")
    A = fit.bread
    if kind == "CR3":
        V = _cr3(fit, g, labels)
    else:
        s = fit.weights * fit.resid
        U = np.column_stack([np.bincount(g, weights=fit.Xd[:, j] * s, minlength=n_clusters)
                             for j in range(fit.Xd.shape[1])])
        V = A @ (U.T @ U) @ A
        if kind == "CR1":
            N, K = fit.n_obs, fit.n_params
            V *= n_clusters / (n_clusters - 1) * (N - 1) / (N - K)
    V = (V + V.T) / 2
    return pd.DataFrame(V, index=names, columns=names)


def _cluster_codes(fit, clusters) -> tuple[np.ndarray, np.ndarray]:
    """Cluster codes of the rows used (0, 1, ... in order of appearance) and the cluster labels."""
    if clusters is None:
        raise ValueError("vcov: a cluster-robust variance needs clusters (one label per row)")
    c = clusters.to_numpy() if isinstance(clusters, (pd.Series, pd.Index)) else np.asarray(clusters)
    if c.ndim != 1 or len(c) not in (len(fit.kept), fit.n_obs):
        raise ValueError(f"vcov: clusters has shape {c.shape}; expected one label per input row ({len(fit.kept):,}) "
                         f"or per row used ({fit.n_obs:,})")
    if len(c) == len(fit.kept) and len(c) != fit.n_obs:
        c = c[fit.kept]
    codes, labels = pd.factorize(c)
    if (codes < 0).any():
        row = int(np.flatnonzero(codes < 0)[0])
        raise ValueError(f"vcov: the cluster of row {row} (of the rows used) is missing")
    return codes.astype(np.int64), np.asarray(labels)


def _cr3(fit, g: np.ndarray, labels: np.ndarray) -> np.ndarray:
    f = fit.factors
    if len(f) > 1:
        raise ValueError(f"vcov: CR3 is computed with at most one absorbed factor, not {len(f)} "
                         f"({', '.join(f.names)}); put the small ones in X as dummy columns")
    n, p = fit.Xd.shape
    if len(f) == 1:
        level = f.codes[0]
        S = np.bincount(level, weights=fit.weights, minlength=f.n_levels[0])
    else:
        level, S = np.zeros(n, dtype=np.int64), np.ones(1)
    order = np.lexsort((level, g)).astype(np.int64)
    LA = np.linalg.cholesky(fit.bread)
    Y, bad = jit(_cr3_clusters, _solve_psd)(np.ascontiguousarray(fit.Xd), fit.weights, fit.resid, g, level, order,
                                            S, LA, len(labels), len(f) == 1)
    if bad >= 0:
        label = labels[bad].item() if hasattr(labels[bad], "item") else labels[bad]
        raise ValueError(f"vcov: CR3 is undefined: cluster {label!r} alone determines a coefficient or fixed "
                         "effect (I - H_gg is singular), e.g. every row of some level of the absorbed factor is in it")
    return LA @ (Y.T @ Y) @ LA.T


# -- compiled per-cluster loop ---------------------------------------------------------------------

def _solve_psd(M, b):                                                       # pragma: no cover (numba)
    """``M^{-1} b`` for a symmetric positive definite ``M`` by Cholesky (in place); the smallest
    pivot squared relative to the largest diagonal entry (small: ``M`` nearly singular)."""
    r = M.shape[0]
    big = 0.0
    for k in range(r):
        big = max(big, abs(M[k, k]))
    smallest = np.inf
    for j in range(r):
        d = M[j, j]
        for k in range(j):
            d -= M[j, k] * M[j, k]
        smallest = min(smallest, d / big)
        if d <= 0:
            return b, -1.0
        d = np.sqrt(d)
        M[j, j] = d
        for i in range(j + 1, r):
            s = M[i, j]
            for k in range(j):
                s -= M[i, k] * M[j, k]
            M[i, j] = s / d
    x = b.copy()
    for i in range(r):                      # L y = b
        s = x[i]
        for k in range(i):
            s -= M[i, k] * x[k]
        x[i] = s / M[i, i]
    for i in range(r - 1, -1, -1):          # L' x = y
        s = x[i]
        for k in range(i + 1, r):
            s -= M[k, i] * x[k]
        x[i] = s / M[i, i]
    return x, smallest


def _cr3_clusters(Xd, W, e, g, level, order, S, LA, n_clusters, absorbed):  # pragma: no cover (numba)
    """Per cluster the vector ``y`` with ``A u_g = LA y`` (see the module docstring); rows in ``order``
    (by cluster, then level). Returns ``(Y, bad)``: ``bad`` the first cluster whose ``I - T`` is
    singular, or -1."""
    n, p = Xd.shape
    Y = np.zeros((n_clusters, p))
    i = 0
    while i < n:
        cl = g[order[i]]
        j = i
        while j < n and g[order[j]] == cl:
            j += 1
        # cells of the cluster: one per level met (when a factor is absorbed)
        m = 0
        if absorbed:
            prev = -1
            for k in range(i, j):
                if level[order[k]] != prev:
                    m += 1
                    prev = level[order[k]]
        Sc = np.zeros(m)
        a = np.zeros((m, p))
        b = np.zeros(m)
        lev = np.zeros(m, dtype=np.int64)
        G = np.zeros((p, p))
        c2 = np.zeros(p)
        cell = -1
        prev = -1
        for k in range(i, j):
            row = order[k]
            wi = W[row]
            if absorbed:
                if level[row] != prev:
                    cell += 1
                    prev = level[row]
                    lev[cell] = prev
                Sc[cell] += wi
                b[cell] += wi * e[row]
            for s in range(p):
                xs = wi * Xd[row, s]
                c2[s] += xs * e[row]
                if absorbed:
                    a[cell, s] += xs
                for t in range(s + 1):
                    G[s, t] += xs * Xd[row, t]
        for s in range(p):
            for t in range(s):
                G[t, s] = G[s, t]
        r = m + p
        IT = np.zeros((r, r))
        rhs = np.zeros(r)
        for k in range(m):
            rs = 1.0 / np.sqrt(S[lev[k]])
            IT[k, k] = 1.0 - Sc[k] / S[lev[k]]
            rhs[k] = b[k] * rs
            for t in range(p):                      # T12 = diag(1/sqrt S) a LA
                v = 0.0
                for s in range(t, p):
                    v += a[k, s] * LA[s, t]
                IT[k, m + t] = -v * rs
                IT[m + t, k] = -v * rs
        GL = G @ LA
        for s in range(p):                          # T22 = LA' G LA; rhs2 = LA' c2
            v = 0.0
            for t in range(s, p):
                v += LA[t, s] * c2[t]
            rhs[m + s] = v
            for t in range(p):
                v = 0.0
                for q in range(s, p):
                    v += LA[q, s] * GL[q, t]
                IT[m + s, m + t] = (1.0 if s == t else 0.0) - v
        for s in range(r):                          # symmetric up to rounding
            for t in range(s):
                v = (IT[s, t] + IT[t, s]) / 2
                IT[s, t] = v
                IT[t, s] = v
        x, smallest = _solve_psd(IT, rhs)
        if smallest < 1e-10:
            return Y, cl
        for s in range(p):
            Y[cl, s] = x[m + s]
        i = j
    return Y, -1
