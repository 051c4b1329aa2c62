"""Target-trial estimators of in-episode interventions (registered on import).

For each intervention type, the clone–censor–weight emulation of the trial "start it on day 56
of the episode if the pupil is still out" vs "never" (:func:`verzuimmodel.survival.target_trial`):

- ``tte_rd3m_<type>``: the risk difference of a suitable place (school, day programme, work,
  care) within 3 months of the first day of absence;
- ``tte_rr3m_<type>``: the risk ratio (log scale);
- ``tte_rmst_<type>``: the difference in restricted mean days out of school within 12 months;
- ``tte_hr_<type>``: the hazard ratio of a place between the arms from day 56 to 12 months
  (weighted Cox model of the clones, robust SE clustered by episode; log scale).

and ``msm_hr_<type>``, the marginal structural Cox model's hazard ratio
(:func:`verzuimmodel.survival.marginal_structural_cox`), scored against the same
``hr_after_treat_day`` (it pools all start days; see its docstring).

``gcomp_rd3m_<type>`` answers the same 3-month question by g-computation from outcome models
(:func:`verzuimmodel.survival.g_formula`).

Each targets ``truth["intervention_risk"][type]``: a marginal effect over all LRV/AV episodes of
the strategies as followed (per protocol), computed by the simulator from potential outcomes.
Standard errors are bootstrap SDs (200 replicates, pupils resampled), except for the hazard
ratio. Where they hold and where not: see :mod:`verzuimmodel.survival.target_trial`.

Degenerate data (no LRV/AV episodes, an intervention never started on the treatment day or never
received, weight models that cannot be fitted) raise the ``ValueError`` or
:class:`~verzuimmodel.errors.ConvergenceError` of the emulation with the estimator's name in front.
"""

from __future__ import annotations

import weakref

import numpy as np

from ..cohort import Cohort
from ..errors import ConvergenceError
from ..schema import INTERVENTION_TYPES, SchemaError
from .registry import Estimate, register

N_BOOT = 200
GRACE_DAYS = 0
"""Arm "start" starts on day 56 itself, the simulator's strategy: these estimators need episodes
that start the intervention on that day (a kernpartnerteam meeting every four weeks). With start
days spread over continuous time call :func:`~verzuimmodel.survival.target_trial` with a grace
period (e.g. ``grace_days=6``: "within the week"), a slightly different strategy: events in the
grace window count in both arms."""

_CACHE: dict[tuple[int, str], tuple[weakref.ref, object]] = {}


def _result(cohort: Cohort, kind: str):
    """``target_trial(cohort, kind)``, computed once per cohort object (the three estimators share it)."""
    from ..survival.target_trial import target_trial

    hit = _CACHE.get((id(cohort), kind))
    if hit is not None and hit[0]() is cohort:
        return hit[1]
    result = target_trial(cohort, kind, n_boot=N_BOOT, grace_days=GRACE_DAYS)
    if not any(k[0] == id(cohort) for k in _CACHE):
        _CACHE.clear()                   # one cohort at a time: replicates are processed in turn
    _CACHE[(id(cohort), kind)] = (weakref.ref(cohort), result)
    return result


def _named(name: str, fn, *args, **kwargs):
    """``fn(*args)``, its ``ValueError`` (not a ``SchemaError``) or ``ConvergenceError`` (the data cannot give the
    estimate) raised again with the estimator's ``name`` in front: the emulation is shared by the
    estimators of a type, and a diagnosis runs many."""
    try:
        return fn(*args, **kwargs)
    except ConvergenceError as e:
        raise ConvergenceError(f"{name}: {e}") from e
    except ValueError as e:
        if isinstance(e, SchemaError):      # names its table and column already
            raise
        raise type(e)(f"{name}: {e}") from e    # also StrategyNotFollowedError, keeping its type


def _make(kind: str, term: str, name: str, log: bool):
    def estimator(cohort: Cohort) -> Estimate:
        r = _named(name, _result, cohort, kind)
        row = r.contrasts.set_index("term").loc[term]
        coef = float(np.log(row["estimate"])) if log else float(row["estimate"])
        se = float(row["std_error_log"] if log else row["std_error"])
        return Estimate(coef, se, n_obs=r.n_episodes)
    what = {"rd_3m": "risk difference of a suitable place within 3 months",
            "rr_3m": "risk ratio of a suitable place within 3 months",
            "rmst_out_diff": "difference in restricted mean days out of school within 12 months",
            "hr_after_treat_day": "hazard ratio of a suitable place from day 56 to 12 months"}[term]
    estimator.__doc__ = f"Target-trial emulation (clone-censor-weight) of {kind} started on day 56 vs never: {what}."
    estimator.__name__ = name
    return estimator


for _kind in INTERVENTION_TYPES:
    for _term, _key, _prefix, _log in (("rd_3m", "rd_3m", "tte_rd3m", False), ("rr_3m", "rr_3m", "tte_rr3m", True),
                                       ("rmst_out_diff", "rmst_out_diff", "tte_rmst", False),
                                       ("hr_after_treat_day", "hr_after_treat_day", "tte_hr", True)):
        _name = f"{_prefix}_{_kind}"
        register(_name, estimand=f"intervention_risk.{_kind}.{_key}", population="ATE", scope="marginal",
                 contrast="per_protocol", scale="log" if _log else "identity",
                 estimand_description=f"{_term} of a suitable place, {_kind} started on day 56 if still out vs "
                                      "never (marginal, over LRV/AV episodes)")(_make(_kind, _term, _name, _log))


def _make_msm(kind: str, name: str):
    def estimator(cohort: Cohort) -> Estimate:
        from ..survival.msm import marginal_structural_cox

        r = _named(name, marginal_structural_cox, cohort, kind)
        return Estimate(r.log_hr, r.std_error, n_obs=r.n_episodes)
    estimator.__doc__ = (f"Marginal structural Cox model (stabilised inverse probability weights) of {kind}: "
                         "marginal hazard ratio of a suitable place, treated vs not.")
    estimator.__name__ = name
    return estimator


for _kind in INTERVENTION_TYPES:
    register(f"msm_hr_{_kind}", estimand=f"intervention_risk.{_kind}.hr_after_treat_day", population="ATE",
             scope="marginal", contrast="per_protocol", scale="log",
             estimand_description=f"marginal hazard ratio of a suitable place, {_kind} from its start vs never")(
        _make_msm(_kind, f"msm_hr_{_kind}"))


def _make_gcomp(kind: str, name: str):
    def estimator(cohort: Cohort) -> Estimate:
        from ..survival.gformula import g_formula

        r = _named(name, g_formula, cohort, kind, n_boot=N_BOOT)
        row = r.contrasts.set_index("term").loc["rd_3m"]
        return Estimate(float(row["estimate"]), float(row["std_error"]), n_obs=r.n_episodes)
    estimator.__doc__ = (f"g-computation (cause-specific Cox outcome models, standardised) of {kind} started on "
                         "day 56 vs never: risk difference of a suitable place within 3 months.")
    estimator.__name__ = name
    return estimator


for _kind in INTERVENTION_TYPES:
    register(f"gcomp_rd3m_{_kind}", estimand=f"intervention_risk.{_kind}.rd_3m", population="ATE", scope="marginal",
             contrast="per_protocol", scale="identity",
             estimand_description=f"rd_3m of a suitable place, {_kind} started on day 56 if still out vs never "
                                  "(marginal, over LRV/AV episodes)")(_make_gcomp(_kind, f"gcomp_rd3m_{_kind}"))
