"""Warnings and errors raised by model fitting (input errors are :class:`~verzuimmodel.schema.SchemaError`)."""

__all__ = ["ConvergenceWarning", "ConvergenceError", "DegenerateDataWarning", "ExtremeWeightsWarning",
           "StrategyNotFollowedError"]


class ConvergenceWarning(UserWarning):
    """A fit stopped without converging, or an estimate is on its boundary or may be infinite."""


class ConvergenceError(RuntimeError):
    """A fit could not produce estimates at all (e.g. a singular information matrix)."""


class DegenerateDataWarning(UserWarning):
    """The data hold no information on part of what is estimated (e.g. no episode ends in an event):
    the result is what the estimator's docstring documents for that case (e.g. an empty table)."""


class ExtremeWeightsWarning(UserWarning):
    r"""Inverse probability weights let a few units carry an estimate: fewer than 10 episodes
    followed a strategy, or the effective sample size :math:`(\sum w)^2/\sum w^2` is below 5% of
    the units. The estimate is returned; it is unstable (consider ``truncate`` or a longer grace
    period)."""


class StrategyNotFollowedError(ValueError):
    """No unit followed a strategy of an emulated trial (e.g. no episode started the intervention
    in the grace window): the trial cannot be emulated on these data."""
