"""Named estimators of the effect of a PO preventive approach (and of trial interventions).

``available()`` lists them, ``estimate(data, name)`` applies one and returns a one-row tidy
table; :class:`~verzuimmodel.evaluate.Design` refers to them by name.
"""

from .registry import ESTIMATE_COLUMNS, Estimate, Estimator, Target, available, estimate, get, register

__all__ = ["ESTIMATE_COLUMNS", "Estimate", "Estimator", "Target", "available", "estimate", "get", "register"]
