"""Named estimators of an approach's effect, so that a design can refer to them by name.

An estimator is a function ``fn(data, level=0.95) -> Estimate`` registered with the estimand it
targets and the kind of data it takes (a simulated or real :class:`~verzuimmodel.Cohort`, or a
trial data frame from :mod:`verzuimmodel.evaluate`)::

    @register("vo_did", estimand="po_approach_vo_rate_ratio_exposed", population="ATT", scope="marginal",
              contrast="ITT", data="cohort", scale="log")
    def vo_did(cohort) -> Estimate: ...

    vm.effects.available()                      # names
    vm.effects.get("vo_did").target             # Target(key=..., population="ATT", ...)
    vm.effects.estimate(cohort, "vo_nb_glmm")   # one-row tidy table

The estimand an estimator declares (its :class:`Target`) says what it is, beside where its true
value is found:

- ``key``: the entry of the data's ``truth`` (dotted for nested entries, such as
  ``"intervention_hr.kernpartnerteam"``) that the estimate is compared with;
- ``population``: ``"ATE"``, the effect over the whole population the data describe, or
  ``"ATT"``, the effect among the treated (the pupils of schools that adopted the approach);
- ``scope``: ``"marginal"`` (population-averaged) or ``"conditional"`` (given covariates, school
  or pupil effects, as a regression or mixed model's coefficient). A conditional estimator is
  compared with a marginal key where the two are equal when the effect is the same for everyone
  (rate ratios under a log link); under heterogeneous effects that comparison shows the gap;
- ``contrast``: ``"ITT"``, intention to treat (the assignment or adoption of the school, the
  approach as implemented) or ``"per_protocol"``, as received (e.g. an intervention from the day
  it starts);
- ``description``: one line in words.

:func:`verzuimmodel.diagnose` scores each estimator against its own target (see
:class:`verzuimmodel.evaluate.Design`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, get_args

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["Estimate", "Estimator", "Target", "register", "available", "get", "estimate", "ESTIMATE_COLUMNS"]

ESTIMATE_COLUMNS = ["estimator", "estimand", "estimate", "std_error", "conf_low", "conf_high", "p_value", "scale",
                    "n_obs", "n_clusters"]

Scale = Literal["log", "identity"]
Population = Literal["ATE", "ATT"]
Scope = Literal["marginal", "conditional"]
Contrast = Literal["ITT", "per_protocol"]


@dataclass(frozen=True)
class Estimate:
    """One estimate. For ``scale="log"`` (ratios) ``coef`` and ``std_error`` are on the log scale and
    the reported estimate and interval are exponentiated; for ``"identity"`` they are as is.
    ``df`` (optional) gives t-based intervals; ``n_obs``/``n_clusters`` what it rests on."""

    coef: float
    std_error: float
    df: float | None = None
    n_obs: int | None = None
    n_clusters: int | None = None


@dataclass(frozen=True)
class Target:
    """The estimand an estimator targets: where its true value is and what kind of effect it is.

    Parameters
    ----------
    key : str
        The entry of a replicate's ``truth`` holding the true value (dotted for nested entries,
        e.g. ``"intervention_hr.mazl"``).
    population : {"ATE", "ATT"}
        The whole population, or the treated (exposed) only.
    scope : {"marginal", "conditional"}
        Population-averaged, or conditional on covariates / school or pupil effects.
    contrast : {"ITT", "per_protocol"}
        Intention to treat (assignment or adoption of the school, as implemented) or per protocol
        (as received).
    description : str
        A short description in words.

    Raises
    ------
    ValueError
        An empty key or a value outside the options.
    """

    key: str
    population: Population = "ATE"
    scope: Scope = "marginal"
    contrast: Contrast = "ITT"
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"estimand key: expected a key of the truth (a non-empty string), got {self.key!r}")
        for name, options in (("population", Population), ("scope", Scope), ("contrast", Contrast)):
            value = getattr(self, name)
            if value not in get_args(options):
                raise ValueError(f"estimand {name}: got {value!r}; expected one of {', '.join(get_args(options))}")
        if not isinstance(self.description, str):
            raise ValueError(f"estimand description: expected a string, got {self.description!r}")

    @property
    def kind(self) -> str:
        """``"ATT, marginal, ITT"`` and the like."""
        return f"{self.population}, {self.scope}, {self.contrast}"


@dataclass(frozen=True)
class Estimator:
    """A registered estimator: ``fn``, the :class:`Target` it estimates, its kind of data and scale.

    ``estimand`` is the target's truth key (``target.key``). Calling it on data returns the one-row
    tidy table of :func:`estimate`.
    """

    name: str
    fn: Callable[..., Estimate]
    target: Target
    data: Literal["cohort", "trial"]
    scale: Scale
    description: str

    def __post_init__(self):
        if isinstance(self.target, str):
            object.__setattr__(self, "target", Target(self.target))
        elif not isinstance(self.target, Target):
            raise ValueError(f"estimator '{self.name}': expected a Target or a truth key, got {self.target!r}")

    @property
    def estimand(self) -> str:
        """The truth key of the target (``target.key``)."""
        return self.target.key

    def __call__(self, data: Any, level: float = 0.95, **kwargs) -> pd.DataFrame:
        est = self.fn(data, **kwargs)
        return _row(self, est, level)


_REGISTRY: dict[str, Estimator] = {}


def register(name: str, *, estimand: str | Target, data: Literal["cohort", "trial"] = "cohort",
             scale: Scale = "log", description: str | None = None, population: Population | None = None,
             scope: Scope | None = None, contrast: Contrast | None = None, estimand_description: str | None = None):
    """Decorator registering ``fn`` as estimator ``name`` (a second registration of a name replaces it).

    Parameters
    ----------
    name : str
    estimand : str or Target
        The truth key the estimator targets, or a whole :class:`Target`.
    data : {"cohort", "trial"}
    scale : {"log", "identity"}
        ``"log"`` for ratios (coefficient and SE on the log scale).
    description : str, optional
        Of the estimator (default: the first line of ``fn``'s docstring).
    population, scope, contrast : str, optional
        The kind of estimand (see :class:`Target`) with a key; defaults ``"ATE"``, ``"marginal"``,
        ``"ITT"``. Not with a ``Target``.
    estimand_description : str, optional
        The target's description in words, with a key.
    """
    kind = {"population": population, "scope": scope, "contrast": contrast, "description": estimand_description}
    given = {k: v for k, v in kind.items() if v is not None}
    if isinstance(estimand, Target):
        if given:
            raise ValueError(f"register '{name}': {', '.join(given)} given beside a Target; put them in the Target")
        target = estimand
    else:
        target = Target(estimand, **given)

    def deco(fn: Callable[..., Estimate]) -> Callable[..., Estimate]:
        doc = description or (fn.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[name] = Estimator(name, fn, target, data, scale, doc)
        return fn
    return deco


def available(data: Literal["cohort", "trial"] | None = None) -> list[str]:
    """Names of the registered estimators (for one kind of data, if given)."""
    _load_builtin()
    return sorted(n for n, e in _REGISTRY.items() if data is None or e.data == data)


def get(name: str) -> Estimator:
    """The registered :class:`Estimator` ``name`` (``ValueError`` naming the known ones if unknown)."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"unknown estimator '{name}'; expected one of {', '.join(available())}")
    return _REGISTRY[name]


def estimate(data: Any, name: str, level: float = 0.95, **kwargs) -> pd.DataFrame:
    """Apply estimator ``name`` to ``data``: a one-row tidy table (:data:`ESTIMATE_COLUMNS`; its
    ``estimand`` is the target's truth key, the kind is in ``get(name).target``)."""
    return get(name)(data, level=level, **kwargs)


def _row(e: Estimator, est: Estimate, level: float) -> pd.DataFrame:
    if est.df is not None and np.isfinite(est.df):
        q = stats.t.ppf(0.5 + level / 2, est.df)
        p = 2 * stats.t.sf(abs(est.coef / est.std_error), est.df)
    else:
        q = stats.norm.ppf(0.5 + level / 2)
        p = 2 * stats.norm.sf(abs(est.coef / est.std_error))
    lo, hi = est.coef - q * est.std_error, est.coef + q * est.std_error
    f = np.exp if e.scale == "log" else (lambda x: x)
    with np.errstate(over="ignore"):             # a huge interval (a warned fit) is inf, not an error
        estimate, lo, hi = f(np.float64(est.coef)), f(np.float64(lo)), f(np.float64(hi))
    return pd.DataFrame([{"estimator": e.name, "estimand": e.estimand, "estimate": estimate,
                          "std_error": est.std_error, "conf_low": lo, "conf_high": hi, "p_value": p,
                          "scale": e.scale, "n_obs": est.n_obs, "n_clusters": est.n_clusters}])[ESTIMATE_COLUMNS]


def _load_builtin() -> None:
    """Import the modules that register the built-in estimators (the trial estimators register
    with :mod:`verzuimmodel.evaluate`)."""
    from . import consult, estimators, in_episode, target_trial  # noqa: F401
