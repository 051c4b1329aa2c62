"""Validation of cohort tables against their declarations in :mod:`verzuimmodel.schema`.

``validate_table`` (:mod:`~verzuimmodel.table_checks`) converts every declared column to its canonical
dtype (:mod:`~verzuimmodel.column_types`), then checks missing values, bounds, the primary key and the
row rules of the table. ``validate_cohort`` (:mod:`~verzuimmodel.cohort_rules`) adds the rules between
tables. Everything works on whole columns: a failure is a boolean mask over the rows, turned into a
:class:`~verzuimmodel.schema.SchemaError`.
"""

from __future__ import annotations

from .cohort_rules import validate_cohort
from .table_checks import validate_table

__all__ = ["validate_table", "validate_cohort"]
