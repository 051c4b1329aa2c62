"""Named estimators of the effect of a PO preventive approach (and of trial interventions).

``available()`` lists them, ``estimate(data, name)`` applies one and returns a one-row tidy
table; :class:`~verzuimmodel.evaluate.Design` refers to them by name. :mod:`.sensitivity` adds
E-values and a bias-factor table for unmeasured confounding (``add_evalues``, ``bias_table``).
"""

from .registry import ESTIMATE_COLUMNS, Estimate, Estimator, Target, available, estimate, get, register
from .sensitivity import EValue, add_evalues, bias_factor, bias_table, evalue, evalue_sentence, evalue_text

__all__ = ["ESTIMATE_COLUMNS", "EValue", "Estimate", "Estimator", "Target", "add_evalues", "available", "bias_factor",
           "bias_table", "estimate", "evalue", "evalue_sentence", "evalue_text", "get",
           "register"]
