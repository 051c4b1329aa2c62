r"""Numeric derivatives of the (RE)ML criterion of :class:`~verzuimmodel.mixed.lmm.LinearMixed` and its profiles:
central differences with Richardson extrapolation (by default steps :math:`10^{-3}\max(|x|, 10^{-2})` and half of
it; the Satterthwaite degrees of freedom use numDeriv's steps and four levels, as lmerTest)."""

from __future__ import annotations

import numpy as np

__all__ = ["_grad_hess", "_jacobian", "numderiv_steps"]


def _steps(x: np.ndarray) -> np.ndarray:
    return 1e-3 * np.maximum(np.abs(x), 1e-2)


def numderiv_steps(x: np.ndarray, d: float) -> np.ndarray:
    r"""numDeriv's first steps: :math:`|d\,x|`, or :math:`10^{-4}` where :math:`x` is (nearly) 0."""
    x = np.abs(np.asarray(x, dtype=float))
    return d * x + 1e-4 * (x < np.sqrt(np.finfo(float).eps / 7e-7))


def _richardson(values: list) -> np.ndarray:
    """Richardson extrapolation of central differences at steps h, h/2, h/4, ... (even error expansion)."""
    a = [np.asarray(v, dtype=float) for v in values]
    for m in range(1, len(a)):
        a = [(4 ** m * a[k + 1] - a[k]) / (4 ** m - 1) for k in range(len(a) - 1)]
    return a[0]


def _grad_hess(f, x: np.ndarray, steps: np.ndarray | None = None, levels: int = 2) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradient and Hessian of scalar ``f`` at ``x`` (``f`` must be defined around ``x``): central differences
    at ``steps`` (default :math:`10^{-3}\max(|x|, 10^{-2})`) and ``levels - 1`` halvings, extrapolated."""
    x = np.asarray(x, dtype=float)

    def at(h):
        k = len(x)
        f0 = f(x)
        g = np.empty(k)
        H = np.empty((k, k))
        fp, fm = np.empty(k), np.empty(k)
        for i in range(k):
            e = np.zeros(k)
            e[i] = h[i]
            fp[i], fm[i] = f(x + e), f(x - e)
            g[i] = (fp[i] - fm[i]) / (2 * h[i])
            H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h[i] ** 2
        for i in range(k):
            for j in range(i):
                ei = np.zeros(k)
                ej = np.zeros(k)
                ei[i], ej[j] = h[i], h[j]
                H[i, j] = H[j, i] = ((f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej))
                                     / (4 * h[i] * h[j]))
        return g, H

    h = _steps(x) if steps is None else np.asarray(steps, dtype=float)
    res = [at(h / 2 ** k) for k in range(levels)]
    return _richardson([r[0] for r in res]), _richardson([r[1] for r in res])


def _jacobian(f, x: np.ndarray, steps: np.ndarray | None = None, levels: int = 2) -> np.ndarray:
    """Jacobian of vector ``f`` at ``x`` by central differences, extrapolated as :func:`_grad_hess`."""
    x = np.asarray(x, dtype=float)

    def at(h):
        cols = []
        for i in range(len(x)):
            e = np.zeros(len(x))
            e[i] = h[i]
            cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h[i]))
        return np.column_stack(cols)

    h = _steps(x) if steps is None else np.asarray(steps, dtype=float)
    return _richardson([at(h / 2 ** k) for k in range(levels)])
