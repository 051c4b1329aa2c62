"""Survival models of time to return to school: Cox (time-varying, strata, clusters), frailty, competing risks."""

from .cox import CoxPH

__all__ = ["CoxPH"]
