"""Survival models of time to return to school.

Kaplan–Meier and Aalen–Johansen curves, Cox regression with time-varying in-episode
interventions, strata, weights and school clusters, Fine–Gray for competing outcomes, a Weibull
PH model for duration dependence, :func:`time_to_return`, the first analysis of a cohort, and
:func:`target_trial`, the clone–censor–weight emulation of "start an intervention on day d vs
never" for observational data, with :func:`marginal_structural_cox` and :func:`g_formula` beside it.
Model checks as R's ``survival``: :func:`residuals`, :func:`cox_zph`, :func:`concordance`,
:func:`logrank_test`; the curves' summaries :func:`km_quantiles`, :func:`km_rmst`,
:func:`rmst_contrast` and :func:`cox_survival_curves`.
"""

from .competing import CauseSpecificCox, FineGray, finegray_expand
from .cox import CoxPH
from .concordance import concordance
from .cox_checks import cox_zph, residuals
from .curve_summaries import cox_survival_curves, km_median, km_quantiles, km_rmst, rmst_contrast
from .frailty import FrailtyCox
from .nonparametric import AalenJohansen, KaplanMeier
from .parametric import WeibullPH
from .prepare import episode_intervals, episodes_table
from .returns import TimeToReturn, time_to_return
from .gformula import GFormula, g_formula
from .logrank import LogRankTest, logrank_test
from .msm import MarginalStructuralCox, marginal_structural_cox
from .target_trial import TargetTrial, target_trial

__all__ = ["AalenJohansen", "CauseSpecificCox", "CoxPH", "FineGray", "FrailtyCox", "GFormula", "KaplanMeier",
           "LogRankTest", "MarginalStructuralCox", "TargetTrial", "TimeToReturn", "WeibullPH", "episode_intervals",
           "episodes_table", "finegray_expand", "g_formula", "logrank_test", "marginal_structural_cox",
           "target_trial", "time_to_return", "residuals", "cox_zph", "concordance", "km_quantiles", "km_median",
           "km_rmst", "rmst_contrast", "cox_survival_curves"]
