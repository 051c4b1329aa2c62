"""Estimators of in-episode interventions' effects on return to school (registered on import).

For each intervention type two estimators: ``tv_cox_<type>`` (time-varying Cox, the
``time_varying`` method of :func:`~verzuimmodel.survival.time_to_return`) and ``naive_cox_<type>``
(time-fixed "ever received"), both targeting ``truth["intervention_hr"][type]``: a hazard ratio
conditional on covariates, school frailty and severity (``scope="conditional"``), over all
episodes (``"ATE"``), of the intervention as received from the day it starts
(``"per_protocol"``). So a design can diagnose the immortal-time bias of the naive analysis.

Degenerate data: no episode received the type, or no LRV/AV episodes, raise ``ValueError`` naming
the estimator; the Cox model's warnings about the estimator's coefficient (e.g. an infinite one:
no return among the treated) are raised again with its name; a fit without a finite estimate
and standard error raises :class:`~verzuimmodel.errors.ConvergenceError`.
"""

from __future__ import annotations

import weakref

import numpy as np

from ..cohort import Cohort
from ..errors import ConvergenceError, ConvergenceWarning
from ..schema import INTERVENTION_TYPES
from .registry import Estimate, register

_CACHE: dict[int, tuple[weakref.ref, object]] = {}


def _result(cohort: Cohort):
    """``time_to_return(cohort)`` and the warnings it raised, computed once per cohort object (all
    six estimators share it)."""
    import warnings

    from ..survival import time_to_return

    hit = _CACHE.get(id(cohort))
    if hit is not None and hit[0]() is cohort:
        return hit[1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = time_to_return(cohort)
    _CACHE.clear()                       # one cohort at a time: replicates are processed in turn
    _CACHE[id(cohort)] = (weakref.ref(cohort), (result, list(caught)))
    return result, list(caught)


def _make(kind: str, method: str, name: str):
    def estimator(cohort: Cohort) -> Estimate:
        import warnings

        received = cohort.interventions["intervention_type"].astype(str) == kind
        if not received.any():
            raise ValueError(f"{name}: no episode in the cohort received {kind}")
        try:
            result, caught = _result(cohort)
        except (ValueError, ConvergenceError) as e:
            if type(e) not in (ValueError, ConvergenceError):
                raise
            raise type(e)(f"{name}: {e}") from e
        e = result.effects
        row = e[(e["intervention"] == kind) & (e["method"] == method)]
        if row.empty:
            raise ValueError(f"{name}: no {'/'.join(('LRV', 'AV'))} episode in the cohort received {kind}")
        term = kind if method == "time_varying" else f"ever_{kind}"
        for w in caught:                 # the fit's warnings about this estimator's term
            text = str(w.message)
            if issubclass(w.category, ConvergenceWarning) and (f"'{term}'" in text or "did not converge" in text):
                warnings.warn(f"{name}: {text}", w.category, stacklevel=2)
        r = row.iloc[0]
        coef, se = float(np.log(r["estimate"])), float(r["std_error"])
        if not (np.isfinite(coef) and np.isfinite(se) and se > 0):
            raise ConvergenceError(f"{name}: the hazard ratio of {kind} has no finite estimate and standard error "
                                   f"(log HR {coef!r}, SE {se!r})")
        return Estimate(coef, se, n_obs=int(r["n_episodes"]))
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
