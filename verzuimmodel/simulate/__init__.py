"""Synthetic pupil cohorts with known true effects: :class:`Scenario` and :func:`simulate`."""

from .core import simulate
from .scenario import Scenario

__all__ = ["Scenario", "simulate"]
