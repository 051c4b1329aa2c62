r"""Fast cluster-trial generators and the true values of their estimands.

A trial generator is a frozen dataclass with ``simulate(seed) -> TrialData``; it can be the data
model of a :class:`~verzuimmodel.evaluate.Design` instead of a :class:`~verzuimmodel.Scenario`.
``TrialData.data`` is a long table with one row per pupil (columns ``cluster``, ``period``,
``treat``, ``y``) and ``TrialData.truth`` holds the true values of the estimands.

The model (cluster :math:`i`, period :math:`j`, pupil :math:`k`; :math:`X_{ij}` = 1 if cluster
:math:`i` has the intervention in period :math:`j`; :math:`u_i \sim N(0, \tau^2)`):

- ``continuous``: :math:`y_{ijk} = \mu + \gamma j + \delta X_{ij} + u_i + e_{ijk}`,
  :math:`e_{ijk} \sim N(0, \sigma^2)`, with :math:`\tau^2 = \rho\,s^2` and
  :math:`\sigma^2 = (1-\rho)\,s^2` (``icc`` :math:`\rho`, total SD ``sd`` :math:`s`).
  Estimand ``effect`` = :math:`\delta`, the mean difference (conditional = marginal).
- ``binary``: :math:`\mathrm{logit}\,P(y_{ijk}=1 \mid u_i) = \beta_0 + \gamma j + \delta X_{ij} + u_i`
  with :math:`\tau^2 = \rho/(1-\rho)\cdot\pi^2/3` (``icc`` on the latent logistic scale) and
  :math:`\beta_0` chosen so that the *marginal* risk of a control cluster in period 0 is
  ``control_risk``. Estimands: ``odds_ratio`` = :math:`e^\delta`, **conditional** on the cluster
  effect (what a random-intercept logistic model estimates); ``marginal_odds_ratio`` and
  ``marginal_risk_ratio``, population-averaged over :math:`u` in period 0 (what GEE estimates;
  closer to 1 than the conditional odds ratio, because odds ratios are not collapsible).
- ``count``: :math:`y_{ijk} \mid u_i \sim NB(\mu_{ijk}, \theta)` (``Var = mu + mu^2/theta``,
  ``dispersion`` :math:`\theta`), :math:`\log\mu_{ijk} = \log\lambda + \gamma j + \delta X_{ij} + u_i`,
  with :math:`\tau^2` and :math:`\lambda` chosen so that the control arm in period 0 has marginal
  mean ``control_rate`` and an intraclass correlation of the counts themselves equal to ``icc``:
  :math:`e^{\tau^2} = \{(1-\rho) + \rho/m\}/(1 - \rho - \rho/\theta)`. Estimand ``rate_ratio`` =
  :math:`e^\delta`, both conditional on :math:`u_i` and marginal (a log link with a random
  intercept is collapsible).

Designs: :class:`ParallelTrial` (one period; a fixed number ``round(n_clusters * treated_share)``
of randomly chosen clusters treated) and :class:`SteppedWedgeTrial` (cross-sectional: new pupils
every period; all clusters start in control and cross over in ``n_periods - 1`` randomly
allocated sequences, one per period after the first; Hussey & Hughes 2007).

The trial estimators registered for these generators (``lmm``, ``cluster_means``, ``gee``,
``gee_logit``, ``gee_poisson``) are in :mod:`.trial_estimators`, with their estimands and their
checks of degenerate data; they are re-exported here.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, special

# The trial estimators: importing them here registers them and keeps their import path.
from .trial_estimators import (SEPARATION_LOG_OR, TRIAL_ESTIMATOR_OUTCOMES, _check_trial,  # noqa: F401
                               _codes, _design_matrix, _estimate, _gee, _no_residual_variance,  # noqa: F401
                               _trial_frame, cluster_means, gee, gee_logit, gee_poisson, lmm)  # noqa: F401

__all__ = ["ParallelTrial", "SteppedWedgeTrial", "TrialData", "TRIAL_TYPES", "TRIAL_ESTIMATOR_OUTCOMES"]

Outcome = Literal["continuous", "binary", "count"]

_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite.hermgauss(60)


@dataclass(frozen=True)
class TrialData:
    """One simulated trial: ``data`` (cluster, period, treat, y), ``truth`` and the generator."""

    data: pd.DataFrame
    truth: dict[str, Any]
    trial: Any = field(repr=False, default=None)


class _Trial:
    """Shared machinery of the trial generators (validation, outcome model, truth)."""

    outcome: str
    icc: float
    effect: float
    n_clusters: int

    def _check_common(self) -> None:
        _require(self.outcome in ("continuous", "binary", "count"), "outcome",
                 "one of continuous, binary, count", self.outcome)
        _require(0 <= self.icc < 1, "icc", "an intraclass correlation in [0, 1)", self.icc)
        _require(math.isfinite(self.effect), "effect", "a finite number", self.effect)
        _require(self.sd > 0, "sd", "a positive standard deviation", self.sd)
        _require(0 < self.control_risk < 1, "control_risk", "a risk in (0, 1)", self.control_risk)
        _require(self.control_rate > 0, "control_rate", "a positive mean count", self.control_rate)
        _require(self.dispersion > 0, "dispersion", "a positive NB theta", self.dispersion)
        if self.outcome == "count":
            _require(self.icc < self.dispersion / (1 + self.dispersion), "icc",
                     f"below dispersion / (1 + dispersion) = {self.dispersion / (1 + self.dispersion):.3g} "
                     "for counts", self.icc)

    # -- outcome model --------------------------------------------------------------------------
    def cluster_variance(self) -> float:
        """:math:`\\tau^2`, the variance of the cluster random intercept (linear-predictor scale)."""
        rho = self.icc
        if self.outcome == "continuous":
            return rho * self.sd ** 2
        if self.outcome == "binary":
            return rho / (1 - rho) * math.pi ** 2 / 3
        a = ((1 - rho) + rho / self.control_rate) / (1 - rho - rho / self.dispersion)
        return math.log(a)

    def _intercept(self) -> float:
        """Linear-predictor intercept for a control cluster with u = 0 in period 0."""
        tau2 = self.cluster_variance()
        if self.outcome == "continuous":
            return self.control_mean
        if self.outcome == "count":
            return math.log(self.control_rate) - tau2 / 2
        target = self.control_risk
        if tau2 == 0:
            return float(special.logit(target))
        return float(optimize.brentq(lambda b: _marginal_risk(b, tau2) - target, -40, 40, xtol=1e-13))

    def true_values(self) -> dict[str, Any]:
        """The true values of the estimands (deterministic: they do not depend on the draw)."""
        out = _true_values(self)
        return {**out, "notes": dict(out["notes"])}

    def _true_values(self) -> dict[str, Any]:
        tau2 = self.cluster_variance()
        notes = {"cluster_variance": "variance of the cluster random intercept on the linear-predictor scale"}
        if self.outcome == "continuous":
            out: dict[str, Any] = {"effect": self.effect}
            notes["effect"] = "mean difference, treated vs control (conditional = marginal)"
        elif self.outcome == "binary":
            b0 = self._intercept()
            p0, p1 = _marginal_risk(b0, tau2), _marginal_risk(b0 + self.effect, tau2)
            out = {"odds_ratio": math.exp(self.effect),
                   "marginal_odds_ratio": (p1 / (1 - p1)) / (p0 / (1 - p0)),
                   "marginal_risk_ratio": p1 / p0,
                   "control_risk": p0, "treated_risk": p1}
            notes["odds_ratio"] = "conditional on the cluster effect (random-intercept logistic model)"
            notes["marginal_odds_ratio"] = "population-averaged over clusters, period 0"
            notes["marginal_risk_ratio"] = "population-averaged over clusters, period 0"
        else:
            out = {"rate_ratio": math.exp(self.effect)}
            notes["rate_ratio"] = "conditional on the cluster effect and marginal (log link: collapsible)"
        out["cluster_variance"] = tau2
        out["icc"] = self.icc
        out["notes"] = notes
        return out

    def _outcome(self, rng: np.random.Generator, cluster: np.ndarray, period: np.ndarray,
                 treat: np.ndarray) -> np.ndarray:
        tau2 = self.cluster_variance()
        u = rng.normal(0.0, math.sqrt(tau2), self.n_clusters)
        eta = _intercept(self) + getattr(self, "time_trend", 0.0) * period + self.effect * treat + u[cluster]
        n = cluster.size
        if self.outcome == "continuous":
            return eta + rng.normal(0.0, self.sd * math.sqrt(1 - self.icc), n)
        if self.outcome == "binary":
            return (rng.random(n) < special.expit(eta)).astype(np.int64)
        theta = self.dispersion
        return rng.poisson(np.exp(eta) * rng.gamma(theta, 1 / theta, n)).astype(np.int64)

    def _frame(self, cluster, period, treat, y) -> pd.DataFrame:
        return pd.DataFrame({"cluster": cluster, "period": period, "treat": treat, "y": y}, copy=False)

    @classmethod
    def from_dict(cls, data: dict, where: str | None = None) -> "_Trial":
        """Build from a dict (as read from TOML); unknown or mistyped keys raise ``ValueError``
        (naming ``design key '<where>.<key>'`` when ``where`` is given, else ``trial key '<key>'``)."""
        return _build_trial(cls, data, where)

    def to_dict(self) -> dict:
        """All parameters as a dict (TOML-ready), with ``type`` naming the generator."""
        return {"type": self.type, **{f.name: getattr(self, f.name) for f in fields(self)}}


@dataclass(frozen=True)
class ParallelTrial(_Trial):
    """A parallel cluster-randomised trial (one period), e.g. schools randomised to an approach.

    Parameters
    ----------
    n_clusters : int
        Number of clusters (at least 2 per arm).
    cluster_size : int
        Pupils per cluster :math:`m`.
    icc : float
        Intraclass correlation :math:`\\rho` (see the module docstring for its scale per outcome).
        For a continuous outcome the variance of a difference in means is that of an individually
        randomised trial times the design effect :math:`DE = 1 + (m - 1)\\rho`.
    effect : float
        :math:`\\delta`: mean difference (continuous), conditional log odds ratio (binary), log
        rate ratio (count).
    outcome : {"continuous", "binary", "count"}
    treated_share : float
        Share of clusters treated; ``round(n_clusters * treated_share)`` are.
    sd, control_mean : float
        Continuous outcome: total SD and control mean.
    control_risk : float
        Binary outcome: marginal risk in the control arm.
    control_rate, dispersion : float
        Count outcome: marginal control mean and NB theta.

    ``simulate(seed).truth``: see :meth:`true_values`.
    """

    n_clusters: int = 10
    cluster_size: int = 20
    icc: float = 0.05
    effect: float = 0.3
    outcome: Outcome = "continuous"
    treated_share: float = 0.5
    sd: float = 1.0
    control_mean: float = 0.0
    control_risk: float = 0.3
    control_rate: float = 2.0
    dispersion: float = 2.0

    type = "parallel"

    def __post_init__(self):
        _require(_is_int(self.n_clusters) and self.n_clusters >= 4, "n_clusters", "an integer >= 4", self.n_clusters)
        _require(_is_int(self.cluster_size) and self.cluster_size >= 1, "cluster_size", "an integer >= 1",
                 self.cluster_size)
        _require(0 < self.treated_share < 1, "treated_share", "a share in (0, 1)", self.treated_share)
        k1 = self.n_treated
        _require(2 <= k1 <= self.n_clusters - 2, "treated_share",
                 "at least 2 treated and 2 control clusters", self.treated_share)
        self._check_common()

    @property
    def n_treated(self) -> int:
        """Number of treated clusters."""
        return int(round(self.n_clusters * self.treated_share))

    def simulate(self, seed: int | np.random.SeedSequence | np.random.Generator = 0) -> TrialData:
        """Draw one trial. ``seed`` is the only source of randomness."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        k, m = self.n_clusters, self.cluster_size
        arm = np.zeros(k, dtype=np.int64)
        arm[rng.permutation(k)[: self.n_treated]] = 1
        cluster = np.repeat(np.arange(k, dtype=np.int64), m)
        period = np.zeros(k * m, dtype=np.int64)
        treat = arm[cluster]
        y = self._outcome(rng, cluster, period, treat)
        return TrialData(self._frame(cluster, period, treat, y), self.true_values(), self)


@dataclass(frozen=True)
class SteppedWedgeTrial(_Trial):
    """A cross-sectional stepped-wedge cluster trial (Hussey & Hughes 2007).

    All clusters are in control in period 0; clusters are randomly allocated to
    ``n_periods - 1`` sequences (sizes differ by at most one) and sequence :math:`s` has the
    intervention from period :math:`s` on. Every cluster-period holds ``cluster_period_size``
    new pupils. Periods have fixed effects :math:`\\gamma j` (``time_trend``).

    Parameters
    ----------
    n_clusters : int
        At least ``n_periods - 1`` (one per sequence).
    n_periods : int
        At least 2.
    cluster_period_size : int
        Pupils per cluster and period.
    icc, effect, outcome, sd, control_mean, control_risk, control_rate, dispersion
        As in :class:`ParallelTrial`.
    time_trend : float
        Change of the linear predictor per period (absorbed by period fixed effects).
    """

    n_clusters: int = 12
    n_periods: int = 5
    cluster_period_size: int = 20
    icc: float = 0.05
    effect: float = 0.3
    outcome: Outcome = "continuous"
    time_trend: float = 0.0
    sd: float = 1.0
    control_mean: float = 0.0
    control_risk: float = 0.3
    control_rate: float = 2.0
    dispersion: float = 2.0

    type = "stepped_wedge"

    def __post_init__(self):
        _require(_is_int(self.n_periods) and self.n_periods >= 2, "n_periods", "an integer >= 2", self.n_periods)
        _require(_is_int(self.n_clusters) and self.n_clusters >= max(2, self.n_periods - 1), "n_clusters",
                 f"an integer >= n_periods - 1 = {self.n_periods - 1} (and >= 2)", self.n_clusters)
        _require(_is_int(self.cluster_period_size) and self.cluster_period_size >= 1, "cluster_period_size",
                 "an integer >= 1", self.cluster_period_size)
        _require(math.isfinite(self.time_trend), "time_trend", "a finite number", self.time_trend)
        self._check_common()

    def sequence_sizes(self) -> np.ndarray:
        """Number of clusters per sequence (crossing over in period 1, 2, ...)."""
        s = self.n_periods - 1
        return np.array([self.n_clusters // s + (j < self.n_clusters % s) for j in range(s)])

    def treatment_matrix(self) -> np.ndarray:
        """The ``n_clusters x n_periods`` 0/1 matrix :math:`X` (clusters in sequence order)."""
        start = np.repeat(np.arange(1, self.n_periods), self.sequence_sizes())
        return (np.arange(self.n_periods)[None, :] >= start[:, None]).astype(np.int64)

    def simulate(self, seed: int | np.random.SeedSequence | np.random.Generator = 0) -> TrialData:
        """Draw one trial. ``seed`` is the only source of randomness."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        k, t, m = self.n_clusters, self.n_periods, self.cluster_period_size
        x = self.treatment_matrix()[rng.permutation(k)]
        cluster = np.repeat(np.arange(k, dtype=np.int64), t * m)
        period = np.tile(np.repeat(np.arange(t, dtype=np.int64), m), k)
        treat = x[cluster, period]
        y = self._outcome(rng, cluster, period, treat)
        return TrialData(self._frame(cluster, period, treat, y), self.true_values(), self)


@functools.lru_cache(maxsize=64)
def _true_values(trial: _Trial) -> dict[str, Any]:
    """Cached per (frozen, hashable) trial: computed once per diagnosis, not once per replicate."""
    return trial._true_values()


@functools.lru_cache(maxsize=64)
def _intercept(trial: _Trial) -> float:
    return trial._intercept()


TRIAL_TYPES: dict[str, type] = {"parallel": ParallelTrial, "stepped_wedge": SteppedWedgeTrial}
"""Trial generators by their ``type`` in a design file's ``[trial]`` table."""


def _marginal_risk(b: float, tau2: float) -> float:
    """:math:`E\\,\\mathrm{expit}(b + u)`, :math:`u \\sim N(0, \\tau^2)` (Gauss-Hermite, 60 nodes)."""
    if tau2 == 0:
        return float(special.expit(b))
    return float(np.sum(_GH_WEIGHTS * special.expit(b + math.sqrt(2 * tau2) * _GH_NODES)) / math.sqrt(math.pi))


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _require(ok: bool, key: str, expected: str, value) -> None:
    if not ok:
        raise ValueError(f"trial key '{key}': got {value!r}; expected {expected}")


def _build_trial(cls, data: dict, where: str | None):
    """Build a trial generator from a dict, checking names and types. Errors name the key as
    ``design key '<where>.<key>'`` (a design file) or, without ``where``, ``trial key '<key>'``."""
    import typing

    def key_name(key: str) -> str:
        return f"design key '{where}.{key}'" if where else f"trial key '{key}'"

    if not isinstance(data, dict):
        raise ValueError(f"design key '{where}': expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{key_name(unknown[0])}: unknown key; expected one of {', '.join(sorted(known))}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if hint is int:
            if not _is_int(value):
                raise ValueError(f"{key_name(key)}: expected an integer, got {value!r}")
        elif hint is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key_name(key)}: expected a number, got {value!r}")
            value = float(value)
        elif typing.get_origin(hint) is Literal:
            if value not in typing.get_args(hint):
                raise ValueError(f"{key_name(key)}: got {value!r}; expected one of {', '.join(typing.get_args(hint))}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ValueError as e:
        if not where:
            raise
        raise ValueError(str(e).replace("trial key '", f"design key '{where}.")) from None
