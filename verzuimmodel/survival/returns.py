r"""``time_to_return``: the analysis a researcher runs first on thuiszit episodes.

For long-term absence episodes (LRV and AV by default) it estimates

- **curves**: the cumulative incidence of each outcome (back to own school, other school or day
  programme, work, specialist care, exemption) by time since the first day of absence
  (Aalen–Johansen, with LRV episodes entering at day 28);
- **effects** of each in-episode intervention on the hazard of return to school (own or other
  school), two ways side by side:

  - ``time_varying``: Cox model on start–stop rows split at each intervention's start, the
    intervention a 0/1 covariate from its start on, stratified by school (each school its own
    baseline hazard, so the estimate is conditional on the school, like the simulator's truth)
    with model-based (information) standard errors: what the schools share is in their
    baselines. Measured under the ``null`` world (5,000 regions, ``paper/``; kernpartnerteam,
    verzuimcoach, M@ZL): a true null was rejected in 4.9%, 5.5% and 5.5% of regions (Monte Carlo
    SE 0.3 points); for the rare M@ZL (about 38 treated episodes a region) the first 1,000 of
    them rejected 7.2%, and the likelihood-ratio and score tests rejected as often on those
    regions (7.0%, 7.3%): the Wald test is not the weak point. Robust sandwiches
    were too small: clustered by the schools that are also the strata they rejected 11.7%, 8.0%
    and 12.7% (300 regions), clustered by pupil 6.0%, 8.4% and 6.4% (the sandwich's small-sample
    bias is largest for a rare intervention). Without school strata the SE is the sandwich
    clustered by school;
  - ``naive``: the same model with time-fixed "ever received" indicators. Only episodes still
    running can receive an intervention, so the ever-treated group is credited with the time
    before the intervention during which it could not have returned (immortal time): the naive
    hazard ratio is biased towards harm.

The model for the return hazard of episode :math:`i` at school :math:`s` and day :math:`t`:

.. math:: h_i(t) = h_{0s}(t)\exp\big(x_i'\beta + \textstyle\sum_j \gamma_j A_{ij}(t)\big),

with :math:`A_{ij}(t) = 1` from the start of intervention :math:`j`; :math:`\exp(\gamma_j)` is the
hazard ratio compared with ``cohort.truth["intervention_hr"]``. Other outcomes are competing
events, censored in this cause-specific model.

Where it holds and where it does not (measured on the named worlds, ``tests/test_worlds.py`` and
``paper/``): with referral that depends only on what the registry measures (``default``,
``null``) the time-varying estimate is unbiased and its intervals cover. When an unmeasured
severity slows return *and* drives referral (``confounded_referral``, the situation of every
municipality that refers its hardest cases first) it is confounded: over 500 regions the
kernpartnerteam HR averaged 0.83 against the true 1.5 (coverage 0.10; ``paper/``), i.e. a
working intervention looks harmful. Under effect heterogeneity (``heterogeneous``) it estimates
a weighted average of the pupils' hazard ratios that is none of the simulator's estimands. Use the
target-trial estimands (``truth["intervention_risk"]``) for policy questions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from ..cohort import Cohort
from ..errors import DegenerateDataWarning
from ..schema import INTERVENTION_TYPES, OUTCOMES
from .cox import CoxPH
from .prepare import CAUSE_CODES, PUPIL_COVARIATES, episode_intervals, episodes_table

__all__ = ["TimeToReturn", "time_to_return"]

DEFAULT_COVARIATES = (*PUPIL_COVARIATES, "vo", "av")
EFFECT_COLUMNS = ["intervention", "method", "estimate", "std_error", "conf_low", "conf_high", "p_value", "n_episodes",
                  "n_events"]


@dataclass(frozen=True)
class TimeToReturn:
    """Result of :func:`time_to_return`.

    Attributes
    ----------
    curves : DataFrame
        Cumulative incidence by outcome: ``outcome, time, estimate, std_error, conf_low, conf_high``.
    effects : DataFrame
        One row per intervention and method: ``intervention, method, estimate`` (hazard ratio),
        ``std_error`` (of the log HR), ``conf_low, conf_high`` (HR), ``p_value, n_episodes, n_events``;
        without rows (and a :class:`~verzuimmodel.errors.DegenerateDataWarning`) when no episode
        received an intervention.
    models : dict
        The fitted models by method (``time_varying``, ``naive``).
    """

    curves: pd.DataFrame
    effects: pd.DataFrame
    models: dict


def time_to_return(cohort: Cohort, *, episode_types: Sequence[str] = ("LRV", "AV"),
                   covariates: Sequence[str] = DEFAULT_COVARIATES, stratify_by_school: bool = True,
                   level: float = 0.95) -> TimeToReturn:
    """Curves by outcome and the effect of each in-episode intervention (see the module docstring).

    Parameters
    ----------
    cohort : Cohort
    episode_types : episode types analysed (default LRV and AV).
    covariates : adjustment covariates (columns of :func:`~verzuimmodel.survival.prepare.episodes_table`);
        covariates that do not vary are dropped (with school strata: that do not vary within any
        school, such as the school level ``vo``, whose effect the school baselines absorb).
    stratify_by_school : a baseline hazard per school (default) or one common baseline.
    level : confidence level.
    """
    intervals = episode_intervals(cohort, episode_types)
    if intervals.empty:
        raise ValueError(f"time_to_return: the cohort has no {'/'.join(episode_types)} episodes")
    types = [t for t in INTERVENTION_TYPES if intervals[t].any()]
    strata = "school_id" if stratify_by_school else None
    cluster = None if stratify_by_school else "school_id"
    # a covariate must vary (within schools, when each school has its own baseline)
    within = intervals.groupby("school_id")[list(covariates)].nunique().max() if strata else \
        intervals[list(covariates)].nunique()
    covs = [c for c in covariates if within[c] > 1]
    rows = []
    models = {}
    tv = CoxPH(level=level).fit(intervals, duration="stop", event="event", entry="start", covariates=covs + types,
                                strata=strata, cluster=cluster)
    models["time_varying"] = tv
    episodes = intervals.groupby("episode_id", sort=False).agg(
        start=("start", "min"), stop=("stop", "max"), event=("event", "max"), school_id=("school_id", "first"),
        pupil_id=("pupil_id", "first"),
        **{c: (c, "first") for c in covs}, **{f"ever_{t}": (f"ever_{t}", "first") for t in types}).reset_index()
    naive = CoxPH(level=level).fit(episodes, duration="stop", event="event", entry="start",
                                   covariates=covs + [f"ever_{t}" for t in types], strata=strata, cluster=cluster)
    models["naive"] = naive
    n_episodes = intervals["episode_id"].nunique()
    for method, model, names in (("time_varying", tv, types), ("naive", naive, [f"ever_{t}" for t in types])):
        tidy = model.tidy().set_index("term")
        for t, name in zip(types, names):
            row = tidy.loc[name]
            rows.append({"intervention": t, "method": method, "estimate": row["exp_estimate"],
                         "std_error": row["std_error"], "conf_low": row["exp_conf_low"],
                         "conf_high": row["exp_conf_high"], "p_value": row["p_value"], "n_episodes": n_episodes,
                         "n_events": model.n_events_})
    effects = pd.DataFrame(rows, columns=EFFECT_COLUMNS)
    if not types:
        warnings.warn("time_to_return: no episode received an intervention; the effects table is empty",
                      DegenerateDataWarning, stacklevel=2)
    return TimeToReturn(curves=return_curves(cohort, episode_types, level=level), effects=effects, models=models)


def return_curves(cohort: Cohort, episode_types: Sequence[str] = ("LRV", "AV"), level: float = 0.95) -> pd.DataFrame:
    """Cumulative incidence of each outcome by days since the first day of absence (Aalen–Johansen)."""
    from .nonparametric import AalenJohansen

    eps = episodes_table(cohort, episode_types)
    aj = AalenJohansen(level=level).fit(eps, duration="duration", event="cause", entry="entry")
    tidy = aj.tidy()
    names = {v: k for k, v in CAUSE_CODES.items()}
    tidy["outcome"] = tidy["cause"].map(lambda c: names.get(int(c), str(c)))
    cols = ["outcome", "time", "estimate", "std_error", "conf_low", "conf_high"]
    order = {o: i for i, o in enumerate(OUTCOMES)}
    return tidy[cols].sort_values(["outcome", "time"], key=lambda s: s.map(order) if s.name == "outcome" else s) \
        .reset_index(drop=True)
