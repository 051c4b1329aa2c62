r"""Study planning: simulated power curves and sample sizes, and the closed-form power of
continuous-outcome cluster trials to check them against.

::

    curve = vm.power_curve(design, vary={"n_clusters": [6, 8, 10, 12]}, n_sims=500, seed=1)
    vm.evaluate.plots.plot_power_curve(curve)
    ss = vm.sample_size(design, parameter="n_clusters", target_power=0.8, n_sims=500, seed=1)
    ss.value, ss.power, ss.power_mcse

Closed forms (continuous outcome, total variance :math:`s^2`, ICC :math:`\rho`, :math:`m` pupils per
cluster or cluster-period, :math:`\tau^2 = \rho s^2`, :math:`\sigma^2 = (1-\rho)s^2`):

- parallel: :math:`Var(\hat\delta) = \frac{s^2}{m}\,DE\,(1/k_1 + 1/k_0)` with the design effect
  :math:`DE = 1 + (m-1)\rho`;
- stepped wedge (Hussey & Hughes 2007, eq. 8), with :math:`\sigma_m^2 = \sigma^2/m`, :math:`I`
  clusters, :math:`T` periods and the 0/1 treatment matrix :math:`X`:
  :math:`U = \sum_{ij}X_{ij}`, :math:`W = \sum_j(\sum_i X_{ij})^2`, :math:`V = \sum_i(\sum_j X_{ij})^2`,

  .. math:: Var(\hat\delta) = \frac{I\sigma_m^2(\sigma_m^2 + T\tau^2)}
            {(IU - W)\sigma_m^2 + (U^2 + ITU - TW - IV)\tau^2};

  as :math:`\tau^2\to\infty` this is the variance of the within-cluster (cluster fixed effects)
  estimator, :math:`IT\sigma_m^2/(U^2 + ITU - TW - IV)`.

Power of the two-sided level-:math:`\alpha` test of :math:`\delta = 0`: with a normal reference
(``df=None``, as in Hussey & Hughes) :math:`\Phi(|\delta|/SE - z_{1-\alpha/2}) + \Phi(-|\delta|/SE - z_{1-\alpha/2})`;
with a t reference on ``df`` degrees of freedom the exact power of the t-test,
:math:`P(|T'| > t_{df,1-\alpha/2})` with :math:`T'` noncentral t (noncentrality :math:`\delta/SE`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..outputs import run_directory
from .design import Design
from .diagnose import diagnose
from .trials import ParallelTrial, SteppedWedgeTrial

__all__ = ["power_curve", "sample_size", "SampleSize", "design_effect", "parallel_variance",
           "hussey_hughes_variance", "wald_power", "formula_power"]


# -- closed forms -------------------------------------------------------------------------------

def design_effect(cluster_size: float, icc: float) -> float:
    """:math:`DE = 1 + (m - 1)\\rho`."""
    return 1 + (cluster_size - 1) * icc


def parallel_variance(n_treated: int, n_control: int, cluster_size: int, icc: float, sd: float = 1.0) -> float:
    """Variance of the difference in means of a parallel cluster trial: ``sd^2 / m * DE * (1/k1 + 1/k0)``."""
    return sd ** 2 / cluster_size * design_effect(cluster_size, icc) * (1 / n_treated + 1 / n_control)


def hussey_hughes_variance(x: np.ndarray, tau2: float, sigma2: float) -> float:
    """Hussey & Hughes (2007) variance of the GLS treatment effect for treatment matrix ``x``
    (clusters x periods), cluster variance ``tau2`` (``math.inf``: within-cluster estimator) and
    cluster-period-mean residual variance ``sigma2`` (``sigma_e^2 / m``)."""
    x = np.asarray(x, dtype=float)
    n_cl, t = x.shape
    u = x.sum()
    w = (x.sum(axis=0) ** 2).sum()
    v = (x.sum(axis=1) ** 2).sum()
    b = u ** 2 + n_cl * t * u - t * w - n_cl * v
    if math.isinf(tau2):
        return n_cl * t * sigma2 / b
    return n_cl * sigma2 * (sigma2 + t * tau2) / ((n_cl * u - w) * sigma2 + b * tau2)


def wald_power(effect: float, se: float, alpha: float = 0.05, df: float | None = None) -> float:
    """Power of the two-sided test of no effect: normal reference, or exact t-test power with ``df``."""
    ncp = abs(effect) / se
    if df is None:
        z = stats.norm.ppf(1 - alpha / 2)
        return float(stats.norm.cdf(ncp - z) + stats.norm.cdf(-ncp - z))
    q = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(q, df, ncp) + stats.nct.cdf(-q, df, ncp))


def formula_power(trial: Any, alpha: float = 0.05, reference: str = "z") -> float:
    """Closed-form power of a continuous-outcome trial generator (``nan`` for other data models).

    ``reference="z"``: the design-effect formula (parallel) or Hussey & Hughes (stepped wedge,
    GLS with known variance components), normal reference. ``reference="t"``: the exact power of
    the ``cluster_means`` analysis (t-test on cluster means with ``K - 2`` df, or within-cluster
    analysis of cluster-period means with ``KT - K - T`` df).
    """
    if reference not in ("z", "t"):
        raise ValueError(f"reference: got {reference!r}; expected 'z' or 't'")
    if getattr(trial, "outcome", None) != "continuous":
        return math.nan
    if isinstance(trial, ParallelTrial):
        k1 = trial.n_treated
        k0 = trial.n_clusters - k1
        se = math.sqrt(parallel_variance(k1, k0, trial.cluster_size, trial.icc, trial.sd))
        return wald_power(trial.effect, se, alpha, None if reference == "z" else k1 + k0 - 2)
    if isinstance(trial, SteppedWedgeTrial):
        s2 = trial.sd ** 2
        sigma2 = (1 - trial.icc) * s2 / trial.cluster_period_size
        x = trial.treatment_matrix()
        if reference == "z":
            return wald_power(trial.effect, math.sqrt(hussey_hughes_variance(x, trial.icc * s2, sigma2)), alpha)
        k, t = trial.n_clusters, trial.n_periods
        return wald_power(trial.effect, math.sqrt(hussey_hughes_variance(x, math.inf, sigma2)), alpha, k * t - k - t)
    return math.nan


# -- simulated power ------------------------------------------------------------------------------

def power_curve(design: Design, vary: dict[str, Sequence], n_sims: int = 500, seed: int = 1,
                path: str | os.PathLike | None = None, overwrite: bool = False, **diagnose_kwargs) -> pd.DataFrame:
    """Simulated power (and every other performance measure) over a grid of data-model parameters.

    Parameters
    ----------
    design : Design
    vary : dict
        Parameter (dotted name, e.g. ``"n_clusters"`` for a trial or ``"population.n_po_schools"``
        or ``"approach.vo_unexcused_rate_ratio"`` for a Scenario) -> values. Several parameters
        give the full grid.
    n_sims, seed : int
        Per grid point. Every point uses the same seed (common random numbers), which makes the
        curve smoother than independent draws would.
    path : path, optional
        Keep each point's replicates under ``path / "<param>=<value>,..."`` (resumable). ``path``
        must be new, empty or such a directory; it is locked while the curve runs
        (:func:`verzuimmodel.outputs.run_directory`).
    overwrite : bool
        Discard what ``path`` holds and start afresh (never a directory verzuimmodel did not write).
    **diagnose_kwargs
        ``backend``, ``workers``, ``scheduler``, ``progress``, ... passed to :func:`diagnose`.

    Returns
    -------
    DataFrame
        One row per grid point and estimator: the varied parameters, then the columns of
        :meth:`Diagnosis.tidy`, then ``formula_power`` (the closed-form power with a normal
        reference for continuous-outcome trials, see :func:`formula_power`; missing otherwise).
    """
    if not isinstance(vary, dict) or not vary:
        raise ValueError("vary: expected a dict of parameter name -> list of values")
    names = list(vary)
    grids = []
    for name in names:
        values = vary[name]
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not len(values):
            raise ValueError(f"vary['{name}']: expected a non-empty list of values, got {values!r}")
        grids.append(list(values))
    designs = []
    for combo in itertools.product(*grids):
        point = dict(zip(names, combo))
        designs.append((point, design.with_parameters(point)))  # validate every point before running any
    rows = []
    opened = nullcontext() if path is None else run_directory(
        path, overwrite, names=("*=*",), legacy=lambda p: any((q / "diagnose.json").is_file() for q in p.iterdir()))
    with opened:
        for point, d in designs:
            label = ",".join(f"{k}={v}" for k, v in point.items())
            sub = None if path is None else Path(path) / label
            diag = diagnose(d, n_sims=n_sims, seed=seed, path=sub, label=label, **diagnose_kwargs)
            tidy = diag.tidy()
            for k in reversed(names):
                tidy.insert(0, k, point[k])
            tidy["formula_power"] = formula_power(d.scenario, d.alpha)
            rows.append(tidy)
    return pd.concat(rows, ignore_index=True)


@dataclass(frozen=True)
class SampleSize:
    """The result of :func:`sample_size`.

    ``value`` is the smallest value of ``parameter`` whose simulated power reached
    ``target_power`` (``power`` with Monte Carlo SE ``power_mcse``); ``evaluated`` holds every
    value tried (``parameter``, ``power``, ``power_mcse``, ``n_failed``).
    """

    parameter: str
    value: int
    power: float
    power_mcse: float
    target_power: float
    estimator: str
    evaluated: pd.DataFrame = field(repr=False)


def sample_size(design: Design, parameter: str = "n_clusters", target_power: float = 0.8,
                estimator: str | None = None, n_sims: int = 500, seed: int = 1, low: int | None = None,
                high: int | None = None, max_value: int = 10_000, **diagnose_kwargs) -> SampleSize:
    """The smallest integer value of ``parameter`` at which the simulated power reaches ``target_power``.

    A bisection over integers, assuming power increases with the parameter: the bracket
    ``[low, high]`` is found first (``low`` defaults to the smallest value the data model accepts,
    ``high`` is doubled until the target is reached, up to ``max_value``). Each value is diagnosed
    with the same ``n_sims`` and ``seed`` (common random numbers). The power at the answer has
    Monte Carlo SE ``power_mcse``; near the target, values within about 2 MCSE of it are not
    distinguishable with this ``n_sims``.

    Parameters
    ----------
    design : Design
    parameter : str
        An integer data-model parameter (dotted name), e.g. ``"n_clusters"``,
        ``"cluster_size"`` or ``"population.n_po_schools"``.
    target_power : float
    estimator : str, optional
        Whose power counts; required when the design has several estimators.
    n_sims, seed : int
    low, high : int, optional
    max_value : int
    **diagnose_kwargs
        Passed to :func:`diagnose` (``backend``, ``workers``, ``progress``, ...).
    """
    if not 0 < target_power < 1:
        raise ValueError(f"target_power: got {target_power!r}; expected a power in (0, 1)")
    if estimator is None:
        if len(design.estimators) > 1:
            raise ValueError(f"estimator: the design has several ({', '.join(design.estimators)}); name one")
        estimator = design.estimators[0]
    elif estimator not in design.estimators:
        raise ValueError(f"estimator: '{estimator}' is not in the design ({', '.join(design.estimators)})")
    design = dataclasses.replace(design, estimators=(estimator,))
    current = design.parameter(parameter)
    if not isinstance(current, (int, np.integer)) or isinstance(current, bool):
        raise ValueError(f"parameter '{parameter}': expected an integer parameter, got {current!r}")
    cache: dict[int, dict] = {}

    def evaluate(v: int) -> float:
        if v not in cache:
            d = design.with_parameters({parameter: v})
            row = diagnose(d, n_sims=n_sims, seed=seed, label=f"{parameter}={v}", **diagnose_kwargs).tidy().iloc[0]
            cache[v] = {parameter: v, "power": float(row["power"]), "power_mcse": float(row["power_mcse"]),
                        "n_failed": int(row["n_failed"])}
        return cache[v]["power"]

    if low is None:
        low = _smallest_valid(design, parameter, max_value)
    else:
        design.with_parameters({parameter: low})  # ValueError if invalid
    if evaluate(low) >= target_power:
        answer = low
    else:
        lo = low
        hi = high if high is not None else max(2 * low, int(current), low + 1)
        while evaluate(hi) < target_power:
            if high is not None or hi >= max_value:
                raise ValueError(f"target power {target_power} not reached at {parameter}={hi} "
                                 f"(power {cache[hi]['power']:.3f}); raise 'high' / 'max_value'")
            lo, hi = hi, min(2 * hi, max_value)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if evaluate(mid) >= target_power:
                hi = mid
            else:
                lo = mid
        answer = hi
    table = pd.DataFrame(sorted(cache.values(), key=lambda r: r[parameter]))
    best = cache[answer]
    return SampleSize(parameter=parameter, value=int(answer), power=best["power"], power_mcse=best["power_mcse"],
                      target_power=target_power, estimator=estimator, evaluated=table)


def _smallest_valid(design: Design, parameter: str, max_value: int) -> int:
    for v in range(1, max_value + 1):
        try:
            design.with_parameters({parameter: v})
            return v
        except ValueError:
            continue
    raise ValueError(f"parameter '{parameter}': no valid value up to {max_value}")
