"""Survival models of time to return to school.

Kaplan–Meier and Aalen–Johansen curves, Cox regression with time-varying in-episode
interventions, strata, weights and school clusters, Fine–Gray for competing outcomes, a Weibull
PH model for duration dependence, and :func:`time_to_return`, the first analysis of a cohort.
"""

from .competing import CauseSpecificCox, FineGray, finegray_expand
from .cox import CoxPH
from .frailty import FrailtyCox
from .nonparametric import AalenJohansen, KaplanMeier
from .parametric import WeibullPH
from .prepare import episode_intervals, episodes_table
from .returns import TimeToReturn, time_to_return

__all__ = ["AalenJohansen", "CauseSpecificCox", "CoxPH", "FineGray", "FrailtyCox", "KaplanMeier", "TimeToReturn", "WeibullPH", "episode_intervals",
           "episodes_table", "finegray_expand", "time_to_return"]
