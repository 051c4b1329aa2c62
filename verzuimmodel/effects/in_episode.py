"""Estimators of in-episode interventions' effects on return to school (registered on import).

For each intervention type two estimators: ``tv_cox_<type>`` (time-varying Cox, the
``time_varying`` method of :func:`~verzuimmodel.survival.time_to_return`) and ``naive_cox_<type>``
(time-fixed "ever received"), both targeting ``truth["intervention_hr"][type]``: a hazard ratio
conditional on covariates, school frailty and severity (``scope="conditional"``), over all
episodes (``"ATE"``), of the intervention as received from the day it starts
(``"per_protocol"``). So a design can diagnose the immortal-time bias of the naive analysis.
"""

from __future__ import annotations

import weakref

import numpy as np

from ..cohort import Cohort
from ..schema import INTERVENTION_TYPES
from .registry import Estimate, register

_CACHE: dict[int, tuple[weakref.ref, object]] = {}


def _result(cohort: Cohort):
    """``time_to_return(cohort)``, computed once per cohort object (all six estimators share it)."""
    import warnings

    from ..survival import time_to_return

    hit = _CACHE.get(id(cohort))
    if hit is not None and hit[0]() is cohort:
        return hit[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = time_to_return(cohort)
    _CACHE.clear()                       # one cohort at a time: replicates are processed in turn
    _CACHE[id(cohort)] = (weakref.ref(cohort), result)
    return result


def _make(kind: str, method: str, name: str):
    def estimator(cohort: Cohort) -> Estimate:
        e = _result(cohort).effects
        row = e[(e["intervention"] == kind) & (e["method"] == method)]
        if row.empty:
            raise ValueError(f"{name}: no episode in the cohort received {kind}")
        r = row.iloc[0]
        return Estimate(float(np.log(r["estimate"])), float(r["std_error"]), n_obs=int(r["n_episodes"]))
    estimator.__doc__ = (f"{'Time-varying' if method == 'time_varying' else 'Naive (ever received)'} Cox "
                         f"estimate of the hazard ratio of return to school for {kind}.")
    estimator.__name__ = name
    return estimator


for _kind in INTERVENTION_TYPES:
    for _method, _prefix in (("time_varying", "tv_cox"), ("naive", "naive_cox")):
        _name = f"{_prefix}_{_kind}"
        register(_name, estimand=f"intervention_hr.{_kind}", population="ATE", scope="conditional",
                 contrast="per_protocol",
                 estimand_description=f"hazard ratio of return to school with {_kind} as received (from its "
                                      f"start) vs without, conditional on covariates, school and severity")(
            _make(_kind, _method, _name))
