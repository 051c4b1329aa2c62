r"""The profile-likelihood machinery shared by the intervals of the linear and the generalised linear mixed models
(:mod:`~verzuimmodel.mixed.lmm_profile`, :mod:`~verzuimmodel.mixed.glmm_profile`): the signed root of the profile,
the search for where it crosses the cut-off, the choice of parameters and the table ``confint`` returns.

For a parameter :math:`\psi_k` with estimate :math:`\hat\psi_k` and a model-specific minimum
:math:`d_k(x) = \min_{\psi:\,\psi_k = x} d(\psi)` of the deviance over the other parameters,

.. math:: \zeta_k(x) = \operatorname{sign}(x - \hat\psi_k)\sqrt{d_k(x) - d(\hat\psi)}

(lme4's ``.zeta``; a difference below 0 from rounding counts as 0), and the interval at level :math:`1 - \alpha` is
:math:`\{x : |\zeta_k(x)| \le z_{1-\alpha/2}\}`. Its ends are the roots of :math:`\zeta_k(x) = \pm z_{1-\alpha/2}`
(:func:`find_end`): secant steps from the quadratic guess :math:`\hat\psi_k \pm z\,\mathrm{SE}_k`, going further out
until the root is bracketed, then kept inside the bracket (bisection when a step would leave it). An end beyond a
bound of the parameter (an SD whose profile stays below the cut-off down to 0, a correlation up to :math:`\pm 1`) is
the bound, as lme4.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .._blas import single_threaded_blas

__all__ = ["ProfileBase", "check_confint_args", "find_end", "select_parameters", "wald_table"]

METHODS = ("profile", "Wald")


def check_confint_args(method, level) -> float:
    """``ValueError`` unless ``method`` is ``"profile"`` or ``"Wald"`` and ``level`` a number in (0, 1); returns
    :math:`z_{(1+\\mathrm{level})/2}`."""
    if method not in METHODS:
        raise ValueError(f"method must be 'profile' or 'Wald', got {method!r}")
    if isinstance(level, (bool, np.bool_)) or not (isinstance(level, (float, int, np.floating, np.integer))
                                                     and 0 < level < 1):
        raise ValueError(f"level must be a number between 0 and 1, got {level!r}")
    return float(stats.norm.ppf(0.5 + float(level) / 2))


def select_parameters(names_var: list[str], names_fixed: list[str], parm) -> list[str]:
    """The parameters ``parm`` names: None (all), a name, a list of names, ``"theta_"`` (the variance parameters)
    or ``"beta_"`` (the fixed effects); ``ValueError`` naming an unknown one and listing the others."""
    every = names_var + names_fixed
    if parm is None:
        return every
    if isinstance(parm, str):
        if parm == "theta_":
            return list(names_var)
        if parm == "beta_":
            return list(names_fixed)
        parm = [parm]
    out = list(parm)
    for p in out:
        if p not in every:
            raise ValueError(f"unknown parameter {p!r}; the parameters are: {', '.join(every)} "
                             "(or 'theta_', 'beta_')")
    return out


def empty_table(chosen: list[str]) -> pd.DataFrame:
    return pd.DataFrame(np.nan, index=pd.Index(chosen, name="parameter"), columns=["conf_low", "conf_high"])


def wald_table(chosen: list[str], params: pd.Series, se: pd.Series, z: float) -> pd.DataFrame:
    """:math:`\\hat\\beta_j \\pm z\\,\\mathrm{SE}_j` for the fixed effects among ``chosen``; NaN for the others
    (the variance parameters, as lme4)."""
    out = empty_table(chosen)
    for p in chosen:
        if p in params.index:
            out.loc[p] = [params[p] - z * se[p], params[p] + z * se[p]]
    return out


def find_end(g: Callable[[float], float], est: float, se: float, lo: float, hi: float, side: int,
             target: float) -> float:
    r"""The end on ``side`` (-1 low, +1 high) of :math:`\{x: |\zeta(x)| \le z\}`: the root of
    :math:`g(x) = \mathrm{side}\cdot\zeta(x) - z` (``g`` is given; :math:`g(\hat x) = -z`) within the bounds
    ``lo``, ``hi``, by secant steps from the quadratic guess, kept inside the bracket once there is one (bisection
    otherwise); the bound when :math:`g < 0` there; NaN when 100 steps do not find it."""
    bound = lo if side < 0 else hi
    if est == bound:
        return bound
    tol = 1e-9 * max(abs(est), se)
    inner, outer = (est, -target), None             # the bracket: g < 0 inside, g >= 0 outside
    prev = inner
    x = min(max(est + side * target * se, lo), hi)
    for _ in range(100):
        gx = g(x)
        if abs(gx) < 1e-10:
            return x
        if gx < 0:
            if x == bound:
                return bound                        # the profile stays below the cut-off up to the bound
            inner = (x, gx)
        else:
            outer = (x, gx)
        if outer is not None and abs(outer[0] - inner[0]) < tol:
            break
        new = x - gx * (x - prev[0]) / (gx - prev[1]) if gx != prev[1] else np.nan
        prev = (x, gx)
        if outer is None:                           # no bracket yet: go further out, at least 1.5 times
            step = new - est if np.isfinite(new) else 0.0
            new = est + side * max(side * step, 1.5 * abs(x - est))
        elif not (np.isfinite(new) and min(inner[0], outer[0]) < new < max(inner[0], outer[0])):
            new = 0.5 * (inner[0] + outer[0])
        x = min(max(new, lo), hi)
    else:
        return np.nan
    (x0, g0), (x1, g1) = inner, outer
    return float(x0 - g0 * (x1 - x0) / (g1 - g0))


class ProfileBase:
    """What every likelihood profile shares: the parameters (``names``, ``estimate``), ``base_deviance``, the
    signed root :meth:`zeta` and the interval :meth:`interval`; a model supplies ``_min_deviance(k, x)`` (the
    deviance minimised over the other parameters with parameter ``k`` at ``x``) and sets ``_lower``, ``_upper``
    (bounds) and ``_se`` (approximate standard errors, to start the search)."""

    names: list[str]
    estimate: pd.Series
    base_deviance: float
    _lower: np.ndarray
    _upper: np.ndarray
    _se: np.ndarray

    def __init__(self):
        self._cache: dict[int, list[tuple[float, np.ndarray]]] = {}

    def _min_deviance(self, k: int, x: float) -> float:        # pragma: no cover - supplied by each model
        raise NotImplementedError

    def _index(self, parm: str) -> int:
        if parm not in self.names:
            raise ValueError(f"unknown parameter {parm!r}; the parameters are: {', '.join(self.names)}")
        return self.names.index(parm)

    def _start(self, k: int, x: float) -> np.ndarray | None:
        """The other parameters at the profiled value nearest ``x`` (a warm start), or None."""
        pts = self._cache.get(k)
        if not pts:
            return None
        return min(pts, key=lambda p: abs(p[0] - x))[1]

    def _remember(self, k: int, x: float, others: np.ndarray) -> None:
        self._cache.setdefault(k, []).append((x, np.array(others, dtype=float)))

    def zeta(self, parm: str, x: float) -> float:
        """The signed square root of the profile deviance of ``parm`` at ``x`` (lme4's ``.zeta``)."""
        k = self._index(parm)
        with single_threaded_blas():
            return self._zeta(k, float(x))

    def _zeta(self, k: int, x: float) -> float:
        dev = self._min_deviance(k, x)
        return float(np.sign(x - self.estimate.iloc[k]) * np.sqrt(max(dev - self.base_deviance, 0.0)))

    def interval(self, parm: str, level: float = 0.95) -> tuple[float, float]:
        """The profile interval of ``parm``: where :math:`|\\zeta| \\le z_{(1+level)/2}` (bounds included)."""
        k = self._index(parm)
        target = float(stats.norm.ppf(0.5 + level / 2))
        with single_threaded_blas():
            return float(self._end(k, -1, target)), float(self._end(k, +1, target))

    def _end(self, k: int, side: int, target: float) -> float:
        est = float(self.estimate.iloc[k])
        return find_end(lambda x: side * self._zeta(k, x) - target, est, self._se[k], self._lower[k],
                        self._upper[k], side, target)

    def table(self, chosen: Sequence[str], level: float) -> pd.DataFrame:
        """``conf_low``, ``conf_high`` of the parameters ``chosen``."""
        out = empty_table(list(chosen))
        for p in chosen:
            out.loc[p] = self.interval(p, level)
        return out
