r"""Fast cluster-trial generators and the trial estimators registered for them.

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

Trial estimators (``data="trial"``; each takes a :class:`TrialData` or its data frame):

========================  ==========  ========================  =========================================
name                      outcome     estimand                  method
========================  ==========  ========================  =========================================
``lmm``                   continuous  ``effect``                ``y ~ treat (+ period) + (1|cluster)``, REML,
                                                                Satterthwaite df (:mod:`verzuimmodel.mixed.lmm`)
``cluster_means``         continuous  ``effect``                t-test on cluster means (parallel; exact);
                                                                cluster-period means with cluster and period
                                                                fixed effects (stepped wedge; exact t)
``gee``                   continuous  ``effect``                GEE, Gaussian, exchangeable, Mancl-DeRouen SE,
                                                                t with K - 2 df
``gee_logit``             binary      ``marginal_odds_ratio``   GEE, logit link, exchangeable, as ``gee``
``gee_poisson``           count       ``rate_ratio``            GEE, Poisson log link, exchangeable, as ``gee``
========================  ==========  ========================  =========================================

Every trial estimator targets an intention-to-treat effect over all clusters (``"ATE"``,
``"ITT"``: the randomised assignment); ``lmm`` is conditional on the cluster effect, which for a
continuous outcome equals the marginal mean difference; the others are marginal.

On degenerate data (no contrast between clusters, too few clusters, an outcome that does not vary
or, for counts, is 0 throughout an arm) each trial estimator raises a one-line ``ValueError``
starting with its name before fitting anything; a fit without a finite estimate and a positive
standard error raises :class:`~verzuimmodel.errors.ConvergenceError`, and a separated ``gee_logit``
fit warns with :class:`~verzuimmodel.errors.ConvergenceWarning` (see each estimator's docstring).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, special

from ..effects.registry import Estimate, register
from ..errors import ConvergenceError, ConvergenceWarning

__all__ = ["ParallelTrial", "SteppedWedgeTrial", "TrialData", "TRIAL_TYPES", "TRIAL_ESTIMATOR_OUTCOMES"]

Outcome = Literal["continuous", "binary", "count"]

TRIAL_ESTIMATOR_OUTCOMES: dict[str, tuple[str, ...]] = {
    "lmm": ("continuous",),
    "cluster_means": ("continuous",),
    "gee": ("continuous",),
    "gee_logit": ("binary",),
    "gee_poisson": ("count",),
}
"""The outcome types each trial estimator registered here can analyse (checked by ``Design``)."""

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


# -- trial estimators -------------------------------------------------------------------------

def _trial_frame(data) -> pd.DataFrame:
    df = getattr(data, "data", data)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a TrialData or a DataFrame, got {type(data).__name__}")
    missing = [c for c in ("cluster", "period", "treat", "y") if c not in df.columns]
    if missing:
        raise ValueError(f"trial data: missing column(s) {', '.join(missing)}; expected cluster, period, treat, y")
    return df


def _codes(values) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(np.asarray(values), sort=True)
    return codes.astype(np.int64), len(uniques)


def _design_matrix(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """Intercept, treat and period dummies (first period the reference); cluster codes; K."""
    treat = df["treat"].to_numpy(dtype=float)
    period, n_periods = _codes(df["period"])
    cols = [np.ones_like(treat), treat]
    cols += [(period == j).astype(float) for j in range(1, n_periods)]
    cluster, k = _codes(df["cluster"])
    return np.column_stack(cols), cluster, k


SEPARATION_LOG_OR = 10.0
"""A GEE log odds ratio beyond this (an odds ratio above 22,000) is taken as separation: the
estimate is where the iterations stopped, not a finite maximum (the sandwich SE stays small)."""


def _check_trial(name: str, df: pd.DataFrame, outcome: str, *, min_clusters: int,
                 per_arm: int = 1) -> tuple[int, bool]:
    """Refuse the degenerate trials estimator ``name`` cannot analyse, with a one-line ``ValueError``
    starting with ``name``: ``treat`` not 0/1 or not varying between clusters within any period,
    fewer than ``min_clusters`` clusters (or, when no cluster changes arm, fewer than ``per_arm``
    per arm), a missing or constant outcome, a binary outcome that is not 0/1, counts that are not
    counts or are all 0 in an arm, and a continuous outcome fitted exactly by treat and period.

    Returns the number of clusters and whether every cluster stays in one arm (a parallel layout).
    """
    if len(df) == 0:
        raise ValueError(f"{name}: the trial data have no rows")
    treat = df["treat"].to_numpy(dtype=float)
    if not np.isin(treat, (0, 1)).all():
        raise ValueError(f"{name}: column 'treat' must be 0/1 (assigned to the intervention or not)")
    if not treat.any() or treat.all():
        which = "every cluster" if treat[0] else "no cluster"
        raise ValueError(f"{name}: {which} is treated ('treat' is {treat[0]:g} in every row), so there is no "
                         "contrast to estimate")
    period, n_periods = _codes(df["period"])
    rows = np.bincount(period, minlength=n_periods)
    treated = np.bincount(period, weights=treat, minlength=n_periods)
    if not ((treated > 0) & (treated < rows)).any():
        raise ValueError(f"{name}: 'treat' does not vary between clusters within any period, so the effect cannot be "
                         "told apart from the period effects")
    cluster, k = _codes(df["cluster"])
    if k < min_clusters:
        raise ValueError(f"{name}: needs at least {min_clusters} clusters, got {k}")
    size = np.bincount(cluster, minlength=k)
    treated_rows = np.bincount(cluster, weights=treat, minlength=k)
    parallel = bool(((treated_rows == 0) | (treated_rows == size)).all())
    if parallel and per_arm > 1:
        k1 = int((treated_rows == size).sum())
        if min(k1, k - k1) < per_arm:
            raise ValueError(f"{name}: needs at least {per_arm} clusters per arm, got {k1} treated and "
                             f"{k - k1} control")
    y = df["y"].to_numpy(dtype=float)
    if not np.isfinite(y).all():
        raise ValueError(f"{name}: column 'y' has missing or non-finite values")
    if outcome == "binary" and not np.isin(y, (0, 1)).all():
        raise ValueError(f"{name}: column 'y' must be 0/1 (a binary outcome)")
    if outcome == "count" and ((y < 0) | (y != np.round(y))).any():
        raise ValueError(f"{name}: column 'y' must hold non-negative counts (a count outcome)")
    if (y == y[0]).all():
        need = {"binary": "; a binary outcome needs both 0 and 1", "count": "; counts need some above 0 in each arm"}
        raise ValueError(f"{name}: the outcome does not vary (every value of 'y' is {y[0]:g}){need.get(outcome, '')}")
    if outcome == "count":
        for arm, in_arm in (("treated", treat == 1), ("control", treat == 0)):
            if (y[in_arm] == 0).all():
                raise ValueError(f"{name}: every count in the {arm} arm is 0, so the log rate ratio is infinite "
                                 "(not identified); counts need some above 0 in each arm")
    if outcome == "continuous":
        x = _design_matrix(df)[0]
        if _no_residual_variance(y - x @ np.linalg.lstsq(x, y, rcond=None)[0], y):
            raise ValueError(f"{name}: the outcome is fitted exactly by treat and period, so there is no residual "
                             "variation to estimate a standard error from")
    return k, parallel


def _estimate(name: str, coef: float, se: float, **kwargs) -> Estimate:
    """The estimate, or a :class:`~verzuimmodel.errors.ConvergenceError` naming ``name`` when the
    fit gave no finite estimate with a positive standard error."""
    if not (math.isfinite(coef) and math.isfinite(se) and se > 0):
        raise ConvergenceError(f"{name}: the fit gave no finite estimate with a positive standard error "
                               f"(estimate {coef!r}, standard error {se!r})")
    return Estimate(coef, se, **kwargs)


def _no_residual_variance(resid: np.ndarray, values: np.ndarray) -> bool:
    """The residuals of ``values`` are zero up to rounding (relative to their spread)."""
    return float(resid @ resid) <= 1e-20 * float(np.sum((values - values.mean()) ** 2))


@register("cluster_means", estimand="effect", data="trial", scale="identity", population="ATE", scope="marginal",
          contrast="ITT", estimand_description="mean difference, clusters assigned to the intervention vs not")
def cluster_means(data) -> Estimate:
    """Cluster-level analysis: t-test on cluster means (one period) or, with several periods,
    OLS of cluster-period means on treat with cluster and period fixed effects.

    With equal cluster (-period) sizes and a normal outcome both tests are exact: the t reference
    distribution has ``K - 2`` (parallel) or ``KT - K - T`` (stepped wedge) degrees of freedom.
    The stepped-wedge version uses within-cluster comparisons only (the ``tau -> infinity``
    limit of Hussey & Hughes' GLS).

    Degenerate data raise a one-line ``ValueError`` starting with ``cluster_means:``: ``treat``
    not varying between clusters within any period (e.g. no cluster or every cluster treated),
    fewer than 2 clusters (one period: fewer than 2 per arm), a cluster without pupils in some
    period, ``treat`` varying within a cluster-period, an outcome that is missing, does not vary
    or is fitted exactly by treat and period, and cluster(-period) means without residual
    variation (a standard error of 0). With several periods, an effect not identified from the
    within-cluster comparisons (e.g. no cluster changes arm) raises as well.
    """
    name = "cluster_means"
    df = _trial_frame(data)
    cl_codes, k = _codes(df["cluster"])
    pe_codes, t = _codes(df["period"])
    _check_trial(name, df, "continuous", min_clusters=2, per_arm=2 if t == 1 else 1)
    cell = cl_codes * t + pe_codes
    count = np.bincount(cell, minlength=k * t)
    if (count == 0).any():
        raise ValueError(f"{name}: every cluster needs pupils in every period")
    cell_y = np.bincount(cell, weights=df["y"].to_numpy(float), minlength=k * t) / count
    treated = np.bincount(cell, weights=df["treat"].to_numpy(float), minlength=k * t)
    if ((treated != 0) & (treated != count)).any():
        raise ValueError(f"{name}: 'treat' varies within a cluster-period; a cluster trial assigns whole clusters")
    cell_x = (treated > 0).astype(float)
    cluster, period = np.repeat(np.arange(k), t), np.tile(np.arange(t), k)
    n_obs = len(df)
    if t == 1:
        y1, y0 = cell_y[cell_x == 1], cell_y[cell_x == 0]
        k1, k0 = len(y1), len(y0)
        dof = k1 + k0 - 2
        resid = np.concatenate([y1 - y1.mean(), y0 - y0.mean()])
        if _no_residual_variance(resid, cell_y):
            raise ValueError(f"{name}: the cluster means do not vary within the arms, so the standard error would be 0")
        s2 = resid @ resid / dof
        return _estimate(name, float(y1.mean() - y0.mean()), math.sqrt(s2 * (1 / k1 + 1 / k0)), df=float(dof),
                         n_obs=n_obs, n_clusters=k)
    x = np.column_stack([cell_x, *(cluster == c for c in range(k)), *(period == j for j in range(1, t))]).astype(float)
    coef, _, rank, _ = np.linalg.lstsq(x, cell_y, rcond=None)
    dof = len(cell_y) - rank
    if rank < x.shape[1] or dof < 1:
        raise ValueError(f"{name}: treatment effect not identified from the cluster-period means")
    resid = cell_y - x @ coef
    if _no_residual_variance(resid, cell_y):
        raise ValueError(f"{name}: the cluster-period means are fitted exactly by treat, cluster and period, so the "
                         "standard error would be 0")
    s2 = resid @ resid / dof
    xtx_inv = np.linalg.inv(x.T @ x)
    return _estimate(name, float(coef[0]), math.sqrt(s2 * xtx_inv[0, 0]), df=float(dof), n_obs=n_obs, n_clusters=k)


def _gee(data, name: str, outcome: str) -> Estimate:
    """GEE of ``y`` on treat (+ period dummies), exchangeable working correlation, Mancl-DeRouen SE."""
    import statsmodels.api as sm
    from statsmodels.genmod.cov_struct import Exchangeable
    from statsmodels.tools.sm_exceptions import ModelWarning

    df = _trial_frame(data)
    _check_trial(name, df, outcome, min_clusters=3, per_arm=2)
    x, cluster, k = _design_matrix(df)
    y = df["y"].to_numpy(float)
    family = {"continuous": sm.families.Gaussian, "binary": sm.families.Binomial, "count": sm.families.Poisson}
    order = np.argsort(cluster, kind="stable")
    model = sm.GEE(y[order], x[order], groups=cluster[order], family=family[outcome](), cov_struct=Exchangeable())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = model.fit(cov_type="bias_reduced")
        except (ArithmeticError, ValueError) as e:   # numpy's LinAlgError is a ValueError
            raise ConvergenceError(f"{name}: the GEE fit failed ({type(e).__name__}: {e})") from e
        coef, se = float(res.params[1]), float(res.bse[1])      # bse is computed (and may warn) here
    separated = False
    if outcome == "binary":
        treat = x[:, 1]
        arms = (("treated", treat == 1), ("control", treat == 0))
        why = [f"every outcome in the {arm} arm is {v}" for arm, in_arm in arms for v in (0, 1)
               if (y[in_arm] == v).all()]
        if not why and abs(coef) > SEPARATION_LOG_OR:
            why = [f"the log odds ratio is {coef:.3g}"]
        if why:
            separated = True
            warnings.warn(f"{name}: the log odds ratio may be infinite (separation): {why[0]}; the estimate "
                          f"({coef:.3g}, SE {se:.3g}) is where the iterations stopped and its interval is not valid",
                          ConvergenceWarning, stacklevel=3)
    relayed = set()     # statsmodels' and numpy's warnings, once each; a separated fit's are its symptoms
    for w in caught:
        if not issubclass(w.category, (ModelWarning, RuntimeWarning)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif not separated and str(w.message) not in relayed:
            relayed.add(str(w.message))
            warnings.warn(f"{name}: statsmodels GEE warned: {' '.join(str(w.message).split())}", ConvergenceWarning,
                          stacklevel=3)
    if not res.converged:
        raise ConvergenceError(f"{name}: the GEE iterations did not converge")
    return _estimate(name, coef, se, df=float(k - 2), n_obs=len(y), n_clusters=k)


@register("gee", estimand="effect", data="trial", scale="identity", population="ATE", scope="marginal", contrast="ITT",
          estimand_description="mean difference, clusters assigned to the intervention vs not")
def gee(data) -> Estimate:
    """GEE (statsmodels), Gaussian, exchangeable working correlation, ``y ~ treat (+ period)``;
    Mancl-DeRouen bias-reduced sandwich SE and a t reference with ``K - 2`` df.

    Degenerate data raise a one-line ``ValueError`` starting with ``gee:``: ``treat`` not varying
    between clusters within any period (e.g. no cluster or every cluster treated), fewer than 3
    clusters (when no cluster changes arm: fewer than 2 per arm, which the bias-reduced sandwich
    needs), and an outcome that is missing, does not vary or is fitted exactly by treat and period.
    A fit that fails, does not converge or gives no finite estimate with a positive SE raises
    :class:`~verzuimmodel.errors.ConvergenceError`; statsmodels' warnings are passed on as
    :class:`~verzuimmodel.errors.ConvergenceWarning` naming ``gee``.
    """
    return _gee(data, "gee", "continuous")


@register("gee_logit", estimand="marginal_odds_ratio", data="trial", scale="log", population="ATE", scope="marginal",
          contrast="ITT", estimand_description="population-averaged odds ratio, assigned vs not")
def gee_logit(data) -> Estimate:
    """GEE (statsmodels), logit link, exchangeable: the population-averaged odds ratio;
    Mancl-DeRouen SE and a t reference with ``K - 2`` df.

    Degenerate data raise a one-line ``ValueError`` starting with ``gee_logit:``: ``treat`` not
    varying between clusters within any period (e.g. no cluster or every cluster treated), fewer
    than 3 clusters (when no cluster changes arm: fewer than 2 per arm, which the bias-reduced
    sandwich needs), and an outcome that is missing, not 0/1, or all 0 or all 1.
    A fit that fails, does not converge or gives no finite estimate with a positive SE raises
    :class:`~verzuimmodel.errors.ConvergenceError`; statsmodels' warnings are passed on as
    :class:`~verzuimmodel.errors.ConvergenceWarning` naming ``gee_logit``.

    Separation (an arm whose outcomes are all 0 or all 1, or a log odds ratio beyond
    :data:`SEPARATION_LOG_OR`) returns the estimate where the iterations stopped (a log odds
    ratio near +-22, often with a small sandwich SE) with a
    :class:`~verzuimmodel.errors.ConvergenceWarning` ``"gee_logit: the log odds ratio may be
    infinite (separation): ..."`` (in place of statsmodels' warnings, which are its symptoms): its
    interval is not valid.
    """
    return _gee(data, "gee_logit", "binary")


@register("gee_poisson", estimand="rate_ratio", data="trial", scale="log", population="ATE", scope="marginal",
          contrast="ITT", estimand_description="rate ratio, assigned vs not (marginal = conditional: log link)")
def gee_poisson(data) -> Estimate:
    """GEE (statsmodels), Poisson log link, exchangeable: the rate ratio (robust to
    overdispersion); Mancl-DeRouen SE and a t reference with ``K - 2`` df.

    Degenerate data raise a one-line ``ValueError`` starting with ``gee_poisson:``: ``treat`` not
    varying between clusters within any period (e.g. no cluster or every cluster treated), fewer
    than 3 clusters (when no cluster changes arm: fewer than 2 per arm, which the bias-reduced
    sandwich needs), and an outcome that is missing, not non-negative counts, or all 0 in an arm
    (an infinite log rate ratio).
    A fit that fails, does not converge or gives no finite estimate with a positive SE raises
    :class:`~verzuimmodel.errors.ConvergenceError`; statsmodels' warnings are passed on as
    :class:`~verzuimmodel.errors.ConvergenceWarning` naming ``gee_poisson``.
    """
    return _gee(data, "gee_poisson", "count")


@register("lmm", estimand="effect", data="trial", scale="identity", population="ATE", scope="conditional",
          contrast="ITT", estimand_description="mean difference given the cluster effect (= marginal: "
                                               "identity link), assigned vs not")
def lmm(data) -> Estimate:
    """Linear mixed model ``y ~ treat (+ period dummies) + (1 | cluster)`` by REML
    (:class:`verzuimmodel.mixed.LinearMixed`), with Satterthwaite df when it reports them.

    Degenerate data raise a one-line ``ValueError`` starting with ``lmm:``: ``treat`` not varying
    between clusters within any period (e.g. no cluster or every cluster treated), fewer than 2
    clusters (fewer than 3 when no cluster changes arm: the effect is then compared with the
    variance between clusters, which needs a cluster more than the two arms), an outcome that is
    missing, does not vary or is fitted exactly by treat and period, and any other data
    :class:`~verzuimmodel.mixed.LinearMixed` refuses (its message follows ``lmm:``). A fit
    without a finite estimate and a positive SE raises :class:`~verzuimmodel.errors.ConvergenceError`.
    LinearMixed's own :class:`~verzuimmodel.errors.ConvergenceWarning` (e.g. a cluster variance
    estimated at 0) passes through.
    """
    from ..mixed.lmm import LinearMixed  # ImportError until the module exists: a configuration error
    from ..schema import SchemaError

    df = _trial_frame(data)
    k, parallel = _check_trial("lmm", df, "continuous", min_clusters=2)
    if parallel and k < 3:
        raise ValueError(f"lmm: needs at least 3 clusters when no cluster changes arm, got {k}")
    period, t = _codes(df["period"])
    frame = pd.DataFrame({"y": df["y"].to_numpy(float), "treat": df["treat"].to_numpy(float),
                          "cluster": df["cluster"].to_numpy()})
    terms = ["treat"]
    for j in range(1, t):
        frame[f"period_{j}"] = (period == j).astype(float)
        terms.append(f"period_{j}")
    try:
        fit = LinearMixed(reml=True).fit(frame, formula="y ~ " + " + ".join(terms), groups="cluster")
    except SchemaError as e:
        raise ValueError("lmm: " + " ".join(str(e).split())) from e
    coef, se = float(fit.params_["treat"]), float(fit.standard_errors_["treat"])
    dof = None
    ddf = getattr(fit, "df_", None)  # Satterthwaite df per term
    if ddf is not None and "treat" in ddf.index and np.isfinite(float(ddf["treat"])):
        dof = float(ddf["treat"])
    return _estimate("lmm", coef, se, df=dof, n_obs=len(frame), n_clusters=k)
