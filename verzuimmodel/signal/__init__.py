"""Early-warning signals of long-term absence in VO from PO history: models against rules of thumb.

The JGZ action plan asks for early sight of vulnerable pupils. This module asks how well a
pupil's primary-school registry data (recorded absence by type, sick reports, lateness,
covariates) anticipate long-term absence in secondary school (an LRV or AV episode starting at a
VO school), and how statistical models compare with the rules used today:

- rules (:data:`RULES`): the M@ZL criterion, extensive sickness absence, the 16-hours duty to
  report unexcused absence, and any of them, applied to yearly registry counts;
- models (:data:`MODELS`): penalised logistic regression with splines and gradient boosting,
  scikit-learn pipelines validated by cross-validation grouped by PO school and by a temporal
  split (earlier cohorts train, later cohorts test);
- measures: AUC, Brier score, calibration intercept and slope, sensitivity and PPV at a fixed
  alert rate (the top 5% of each cohort by default; a rule at its own rate), overall and by
  group, with percentile bootstrap intervals resampling PO schools.

**Nothing here decides about a pupil.** The results describe how well signals sort groups of
pupils, for research and planning; a risk is not a diagnosis and a flag is not a referral. Each
fitted model comes with a model card (:meth:`FittedSignal.model_card`) that says so.

::

    import verzuimmodel as vm
    cohort = vm.simulate(vm.Scenario.default(), seed=1)
    table = vm.signal.evaluate(cohort, seed=1)   # signal, metric, group, value, conf_low, conf_high, ...
    fitted = vm.signal.fit_model(cohort, "gradient_boosting", seed=1)
    print(fitted.model_card())
    vm.signal.plots.plot_calibration(fitted.calibration)
"""

from . import metrics, plots
from .evaluate import (GROUPS, METRICS, TIDY_COLUMNS, FittedSignal, SignalConfig, calibration_table, evaluate,
                       fit_model, labelled_table, performance, predictions)
from .features import FEATURES, FeatureConfig, features
from .metrics import Alert
from .modelcard import model_card
from .models import MODELS, GradientBoosting, GroupedCV, LogisticSpline, SignalModel, TemporalSplit, cross_predict
from .rules import RULES, Condition, Rule, rule_flags

__all__ = ["Alert", "Condition", "FEATURES", "FeatureConfig", "FittedSignal", "GROUPS", "GradientBoosting",
           "GroupedCV", "LogisticSpline", "METRICS", "MODELS", "RULES", "Rule", "SignalConfig", "SignalModel",
           "TIDY_COLUMNS", "TemporalSplit", "calibration_table", "cross_predict", "evaluate", "features",
           "fit_model", "labelled_table", "metrics", "model_card", "performance", "plots", "predictions",
           "rule_flags"]
