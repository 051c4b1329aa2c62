"""Warnings and errors raised by model fitting (input errors are :class:`~verzuimmodel.schema.SchemaError`)."""

__all__ = ["ConvergenceWarning", "ConvergenceError"]


class ConvergenceWarning(UserWarning):
    """A fit stopped without converging, or an estimate is on its boundary or may be infinite."""


class ConvergenceError(RuntimeError):
    """A fit could not produce estimates at all (e.g. a singular information matrix)."""
