r"""Compiled passes over the rows for the IRLS steps of :mod:`verzuimmodel.glm.irls` (numba).

Each function does in one pass what would take numpy several passes and temporaries of length
:math:`n`; :math:`\eta` is the whole linear predictor (offset included), :math:`\mu = e^\eta`,
:math:`t = 1/\kappa` (:math:`\kappa = 0`: Poisson) and ``ylogy`` is :math:`y\log y` (0 at 0).
"""

from __future__ import annotations

import numpy as np

from .absorb import jit

__all__ = ["working", "advance", "deviance", "theta_sums"]


def working(eta, off, y, mu, w, kappa, Z, col, W) -> None:
    r"""Newton's working weights into ``W`` and working response into ``Z[:, col]``:
    :math:`W = w\mu(1 + \kappa y)/(1 + \kappa\mu)^2`, :math:`z = \eta - o + (y - \mu)(1 + \kappa\mu) /
    (\mu(1 + \kappa y))`."""
    jit(_working)(eta, off, y, mu, w, kappa, Z, col, W)


def advance(eta, eta_old, y, w, kappa, ylogy, mu) -> tuple[float, float, bool]:
    """``mu = exp(eta)`` (written to ``mu``), the deviance there, the largest change of eta from
    ``eta_old``, and whether every eta is finite and below 700 (``exp`` then overflows)."""
    return jit(_advance, _row_deviance)(eta, eta_old, y, w, kappa, ylogy, mu)


def deviance(eta, mu, y, w, kappa, ylogy) -> float:
    r""":math:`2\sum_i w_i[y_i\log(y_i/\mu_i) - (y_i - \mu_i)]` (Poisson) or
    :math:`2\sum_i w_i[y_i\log(y_i/\mu_i) - (y_i + t)\log((y_i + t)/(\mu_i + t))]` (NB2)."""
    return jit(_deviance, _row_deviance)(eta, mu, y, w, kappa, ylogy)


def theta_sums(y, mu, w, t) -> tuple[float, float]:
    r"""The parts of the NB2 score and second derivative in :math:`\theta` that involve :math:`\mu`:
    :math:`\sum_i w_i[\log(t/(t + \mu_i)) + 1 - (y_i + t)/(\mu_i + t)]` and
    :math:`\sum_i w_i[1/t - 2/(\mu_i + t) + (y_i + t)/(\mu_i + t)^2]`."""
    return jit(_theta_sums)(y, mu, w, t)


def _working(eta, off, y, mu, w, kappa, Z, col, W):                       # pragma: no cover (numba)
    for i in range(len(y)):
        a = 1.0 + kappa * mu[i]
        h = mu[i] * (1.0 + kappa * y[i]) / a
        W[i] = w[i] * h / a
        Z[i, col] = eta[i] - off[i] + (y[i] - mu[i]) / h


def _row_deviance(e, m, yi, ylogy, kappa):                                  # pragma: no cover (numba)
    if kappa == 0.0:
        return ylogy - yi * e - (yi - m)
    t = 1.0 / kappa
    return ylogy - yi * e - (yi + t) * (np.log(yi + t) - np.log(m + t))


def _advance(eta, eta_old, y, w, kappa, ylogy, mu):                        # pragma: no cover (numba)
    dev = 0.0
    change = 0.0
    for i in range(len(y)):
        e = eta[i]
        if not (e < 700.0) or not np.isfinite(e):
            return np.inf, np.inf, False
        m = np.exp(e)
        mu[i] = m
        d = abs(e - eta_old[i])
        if d > change:
            change = d
        dev += w[i] * _row_deviance(e, m, y[i], ylogy[i], kappa)
    return 2.0 * dev, change, True


def _deviance(eta, mu, y, w, kappa, ylogy):                                # pragma: no cover (numba)
    dev = 0.0
    for i in range(len(y)):
        dev += w[i] * _row_deviance(eta[i], mu[i], y[i], ylogy[i], kappa)
    return 2.0 * dev


def _theta_sums(y, mu, w, t):                                              # pragma: no cover (numba)
    s = 0.0
    h = 0.0
    for i in range(len(y)):
        a = mu[i] + t
        s += w[i] * (np.log(t / a) + 1.0 - (y[i] + t) / a)
        h += w[i] * (1.0 / t - 2.0 / a + (y[i] + t) / (a * a))
    return s, h
