"""Named estimators of an approach's effect, so that a design can refer to them by name.

An estimator is a function ``fn(data, level=0.95) -> Estimate`` registered with the estimand it
targets (a key of the data's ``truth``) and the kind of data it takes (a simulated or real
:class:`~verzuimmodel.Cohort`, or a trial data frame from :mod:`verzuimmodel.evaluate`)::

    @register("vo_nb_glmm", estimand="po_approach_vo_rate_ratio", data="cohort", scale="log")
    def vo_nb_glmm(cohort, level=0.95) -> Estimate: ...

    vm.effects.available()                  # names
    vm.effects.estimate(cohort, "vo_nb_glmm")   # one-row tidy table
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["Estimate", "Estimator", "register", "available", "get", "estimate", "ESTIMATE_COLUMNS"]

ESTIMATE_COLUMNS = ["estimator", "estimand", "estimate", "std_error", "conf_low", "conf_high", "p_value", "scale",
                    "n_obs", "n_clusters"]

Scale = Literal["log", "identity"]


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
class Estimator:
    name: str
    fn: Callable[..., Estimate]
    estimand: str
    data: Literal["cohort", "trial"]
    scale: Scale
    description: str

    def __call__(self, data: Any, level: float = 0.95, **kwargs) -> pd.DataFrame:
        est = self.fn(data, **kwargs)
        return _row(self, est, level)


_REGISTRY: dict[str, Estimator] = {}


def register(name: str, *, estimand: str, data: Literal["cohort", "trial"] = "cohort", scale: Scale = "log",
             description: str | None = None):
    """Decorator registering ``fn`` as estimator ``name`` (a second registration of a name replaces it)."""
    def deco(fn: Callable[..., Estimate]) -> Callable[..., Estimate]:
        doc = description or (fn.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[name] = Estimator(name, fn, estimand, data, scale, doc)
        return fn
    return deco


def available(data: Literal["cohort", "trial"] | None = None) -> list[str]:
    """Names of the registered estimators (for one kind of data, if given)."""
    _load_builtin()
    return sorted(n for n, e in _REGISTRY.items() if data is None or e.data == data)


def get(name: str) -> Estimator:
    _load_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"unknown estimator '{name}'; expected one of {', '.join(available())}")
    return _REGISTRY[name]


def estimate(data: Any, name: str, level: float = 0.95, **kwargs) -> pd.DataFrame:
    """Apply estimator ``name`` to ``data``: a one-row tidy table (:data:`ESTIMATE_COLUMNS`)."""
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
    return pd.DataFrame([{"estimator": e.name, "estimand": e.estimand, "estimate": f(est.coef),
                          "std_error": est.std_error, "conf_low": f(lo), "conf_high": f(hi), "p_value": p,
                          "scale": e.scale, "n_obs": est.n_obs, "n_clusters": est.n_clusters}])[ESTIMATE_COLUMNS]


def _load_builtin() -> None:
    """Import the modules that register the built-in estimators."""
    from . import estimators, in_episode  # noqa: F401
