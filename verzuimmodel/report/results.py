"""The tidy, publishable results an effect report shows, computed from one cohort.

:func:`collect` runs the analyses (time to return, the PO approach's estimators, the design
diagnosis, calibration, the quarterly monitor) and returns :class:`Results`: tidy tables only,
with disclosure control already applied (:mod:`verzuimmodel.disclosure`), so that the figures
and the text are drawn from tables in which no count or share rests on fewer than 10 pupils.
No table holds a pupil identifier; school identifiers appear only in the optional ``schools``
table, for schools of at least 10 pupils.

Disclosure rules used here (``MIN_COUNT`` = 10):

- counts between 1 and 9 are missing; zero is shown; and further counts are hidden where the
  report's identities (episodes by outcome add up to all episodes, own + other school = back to
  school, events by 3 <= 6 <= 12 months <= all, the same number printed twice) would give a
  hidden count away: the count tables are protected together and audited by linear programming
  (:mod:`verzuimmodel.report.protect`; the monitor table by :func:`verzuimmodel.monitor.tables`);
- a cumulative incidence at 3, 6 or 12 months is missing when the episodes still at risk then,
  or the episodes of that outcome by then, number 1 to 9 (or fewer than 10 are at risk);
  curves are drawn only for outcomes with at least 10 events, only while at least 10
  episodes are at risk, and in steps of at least 10 events each;
- an intervention's hazard ratios are missing when fewer than 10 episodes received it; its
  emulated trial when fewer than 10 started it in the window or followed an arm, and a risk
  difference when the clones of an arm placed by then number 1 to 9 (:mod:`.trials`);
- an estimator's estimate is missing when fewer than 10 pupils were exposed, or unexposed.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..disclosure import MIN_COUNT
from ..schema import RETURN_OUTCOMES

__all__ = ["DEFAULT_N_SIMS", "Results", "collect", "design_scenario", "MONTHS", "PRIMARY_ESTIMATOR",
           "RETURN_TO_SCHOOL", "CAUTIONARY"]

MONTHS = {3: 91, 6: 182, 12: 365}
"""Months after the first day of absence at which the return curves are tabulated, in days."""

RETURN_TO_SCHOOL = "school"
"""Outcome label of the combined return to school (own school, or other school / day programme)."""

PRIMARY_ESTIMATOR = {"parallel": "vo_nb_glmm", "stepped_wedge": "vo_nb_glmm", "staggered": "vo_did",
                     "observational": "vo_did", "none": "vo_nb_glmm"}
"""The estimator whose assumptions fit each adoption design (``verzuimmodel.effects.estimators``)."""

CAUTIONARY = ("po_recorded_naive",)
"""Estimators shown as a warning example, never as evidence of the approach's effect."""

NAIVE_PREFIX = "naive_"
"""Names of the naive ("ever received") in-episode intervention estimators (``verzuimmodel.effects.in_episode``)."""

DEFAULT_N_SIMS = 60
"""Simulated replicates of the design diagnosis: enough for a first view of bias, coverage and power
(Monte Carlo SE of a coverage near 95% about 3 percentage points), small enough that `make demo` takes
under three minutes on two cores (2 min 39 s, most of it the mixed models)."""

MAIN_ESTIMAND = "po_approach_vo_rate_ratio"
MAIN_ESTIMANDS = (MAIN_ESTIMAND, "po_approach_vo_rate_ratio_exposed")
"""The effect on VO unexcused absence: for all pupils (ATE) and for the pupils of adopting schools
(ATT, what ``vo_did`` targets). The primary estimator is one of these; they are one quantity when
the effect is the same for every pupil."""
REGIONAL_DIAGNOSIS = 400
"""A design scenario of more than one region with more PO schools than this (the national one:
6,582 in 39 regions) is diagnosed on replicates of one average region
(:meth:`Scenario.one_region <verzuimmodel.simulate.scenario.Scenario.one_region>`), which take a
39th of a national replicate's time: bias and coverage are those of a region's analysis, and the
power is pooled over the regions (:func:`verzuimmodel.evaluate.measures.pooled_power`): the chance
that the whole design shows the effect."""
APPROACH_PREFIX = "po_approach"
INTERVENTION_PREFIX = "intervention_hr."


@dataclass
class Results:
    """Everything a report shows, as disclosure-controlled tidy tables (``None``: not computed).

    Attributes
    ----------
    overview : dict
        ``simulated`` (bool), ``scenario`` (name or None), ``seed``, ``design`` (adoption design or
        None), ``first_year``, ``last_year``, ``n_po_schools, n_vo_schools`` and the counts
        ``n_pupils, n_pupils_vo, n_episodes, n_interventions`` (None when between 1 and 9).
    curves : outcome, time, estimate, conf_low, conf_high (for drawing; already truncated).
    curve_points : outcome, months, estimate, conf_low, conf_high, n_events, n_at_risk.
    outcome_counts : outcome, n_episodes.
    collapsed : True when own school and other school are shown only together (``school``), because
        one of them rests on fewer than 10 pupils somewhere.
    effects : intervention, method, estimate, conf_low, conf_high, n_treated, true_value (the
        time-varying Cox model: the secondary analysis of the in-episode interventions).
    trials, trial_notes : the emulated target trial of each intervention, the primary analysis
        (:func:`verzuimmodel.report.trials.collect_trials`; disclosure-controlled there).
    estimates : one row per estimator that fitted (``verzuimmodel.effects`` tidy columns) plus
        n_exposed, n_unexposed, true_value, design (the design it suits), cautionary, primary.
    skipped : estimator, error (estimators that raised, with the exception; error None: the fit gave no
        finite estimate or interval).
    diagnosis : ``Diagnosis.tidy()`` rows of every diagnosed estimator (PO approach and in-episode
        interventions) plus ``cautionary`` (naive estimators), or None with
        ``diagnosis_status`` saying why (``unavailable``, ``no_scenario``, ``fit_failed``, ``failed``,
        ``off``).
    design_scenario, design_source : the Scenario the diagnosis simulated and where it came from:
        ``given`` (the caller's), ``cohort`` (a simulated cohort's own) or ``fitted``
        (:meth:`Scenario.from_cohort <verzuimmodel.simulate.scenario.Scenario.from_cohort>` on the
        cohort: regions like the user's); None when there was no diagnosis to run.
    design_region : the size of the first simulated region of the diagnosis (``n_po_schools``,
        ``n_vo_schools``, and ``n_pupils`` rounded to tens, as it mirrors the data's count), when it ran.
    design_regions : how many such regions the design has (1 unless the design scenario was too
        large to simulate whole: see :data:`REGIONAL_DIAGNOSIS`); above 1, ``diagnosis``'s
        ``power`` is pooled over them and ``power_region`` is the simulated region's own.
    calibration, monitor, schools : see :func:`collect`.
    audit : :func:`verzuimmodel.disclosure.audit` of the hidden counts of overview, outcome counts,
        curve points, effects and estimates (protected together); the monitor's is ``monitor_audit``.
    errors : section -> message of an analysis that could not be run, or a reason for an empty
        section: ``"no_episodes"`` (the cohort has no episodes), ``"no_cases"`` (no episode became
        a monitored case), ``"too_few"`` (fewer than 10 episodes).
    """

    overview: dict
    truth: dict = field(default_factory=dict)
    curves: pd.DataFrame | None = None
    curve_points: pd.DataFrame | None = None
    outcome_counts: pd.DataFrame | None = None
    effects: pd.DataFrame | None = None
    trials: pd.DataFrame | None = None
    trial_notes: dict = field(default_factory=dict)
    estimates: pd.DataFrame | None = None
    skipped: pd.DataFrame | None = None
    primary: str | None = None
    diagnosis: pd.DataFrame | None = None
    diagnosis_status: str = "off"
    diagnosis_error: str | None = None
    design_scenario: Any = None
    design_source: str | None = None
    design_region: dict = field(default_factory=dict)
    design_regions: int = 1
    n_sims: int = 0
    calibration: pd.DataFrame | None = None
    monitor: pd.DataFrame | None = None
    signal: pd.DataFrame | None = None
    schools: pd.DataFrame | None = None
    schools_hidden: int = 0
    schools_rest: dict = field(default_factory=dict)
    collapsed: bool = False
    errors: dict = field(default_factory=dict)
    audit: pd.DataFrame | None = None
    monitor_audit: pd.DataFrame | None = None


def _noop(*_args, **_kwargs) -> None:
    pass


ID_COLUMNS = {"schools": ("school_id",), "pupils": ("pupil_id",), "episodes": ("episode_id",),
              "interventions": ("intervention_id",)}


def _identifiers(cohort: Cohort) -> frozenset[str]:
    """Every identifier of the cohort as text (to keep them out of error messages shown in a report)."""
    ids: set[str] = set()
    for table, columns in ID_COLUMNS.items():
        for c in columns:
            ids.update(getattr(cohort, table)[c].dropna().astype(str))
    return frozenset(ids)


def _message(e: Exception, ids: frozenset[str]) -> str:
    """``Type: message`` on one line, with any token equal to an identifier replaced by an ellipsis."""
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return re.sub(r"[\w.-]+", lambda t: "\u2026" if t.group(0) in ids else t.group(0), text)


def collect(cohort: Cohort, *, sections: Sequence[str], design_scenario: Any = None, n_sims: int = DEFAULT_N_SIMS,
            seed: int = 1, backend: str = "processes", step: Callable[[str], None] = _noop,
            advance: Callable[[float], None] = _noop) -> Results:
    """Run the analyses the ``sections`` need and return their publishable results.

    Parameters
    ----------
    cohort : a validated cohort (simulated or real).
    sections : names of the report sections (see :data:`verzuimmodel.report.SECTIONS`).
    design_scenario : the Scenario to diagnose the design with. Default: ``cohort.scenario`` for a
        simulated cohort, else a scenario fitted to the cohort (:func:`design_scenario`).
    n_sims, seed, backend : the design diagnosis (``n_sims=0`` skips it).
    step : called with the name of each analysis as it starts (progress display).
    advance : called with the number of diagnosis replicates finished (progress display).
    """
    res = Results(overview=_overview(cohort), truth=dict(cohort.truth or {}))
    ids = _identifiers(cohort)
    wanted = set(sections)
    if wanted & {"summary", "return"}:
        step("return")
        _return(cohort, res, ids)
        if res.effects is not None and len(res.effects):
            from .trials import collect_trials

            step("trials")
            res.trials, res.trial_notes = collect_trials(cohort, res.effects["intervention"].unique(),
                                                         lambda e: _message(e, ids))
    if wanted & {"summary", "approach", "quality"}:
        step("approach")
        _estimators(cohort, res, step, ids)
    if wanted & {"summary", "quality"}:
        step("quality")
        if n_sims > 0:
            _design(cohort, design_scenario, res, ids)
        if res.diagnosis_status != "fit_failed":
            _diagnosis(res, res.design_scenario, n_sims, seed, backend, advance)
    if "methods" in wanted and cohort.is_simulated:
        step("calibration")
        _calibration(cohort, res)
    if "monitor" in wanted:
        step("monitor")
        _monitor(cohort, res)
    if "signal" in wanted:
        step("signal")
        _signal(cohort, res)
    if "schools" in wanted:
        step("schools")
        _schools(cohort, res)
    _protect(res)
    return res


def _protect(res: Results) -> None:
    """Primary and secondary suppression over the report's count tables together
    (:mod:`verzuimmodel.report.protect`): no hidden count can be solved from the shown ones."""
    from .protect import protect_results

    (res.overview, res.outcome_counts, res.curve_points, res.effects, res.estimates, res.schools,
     res.audit) = protect_results(res.overview, res.outcome_counts, res.curve_points, res.effects, res.estimates,
                                  RETURN_TO_SCHOOL, res.schools, res.schools_rest)


# -- overview ------------------------------------------------------------------------------------

def _overview(cohort: Cohort) -> dict:
    s = cohort.schools
    years = cohort.absence["school_year"] if len(cohort.absence) else pd.Series(dtype=float)
    scenario = cohort.scenario
    design = getattr(getattr(scenario, "approach", None), "design", None)
    return {
        "simulated": cohort.is_simulated,
        "scenario": getattr(scenario, "name", None),
        "seed": cohort.seed,
        "design": design or cohort.truth.get("design"),
        "first_year": int(years.min()) if len(years) else None,
        "last_year": int(years.max()) if len(years) else None,
        "n_po_schools": int((s["level"] == "po").sum()),     # schools, not pupils: not suppressed
        "n_vo_schools": int((s["level"] == "vo").sum()),
        "n_pupils": len(cohort.pupils),                      # counts: suppressed in _protect
        "n_pupils_vo": int(cohort.pupils["vo_school_id"].notna().sum()),
        "n_episodes": len(cohort.episodes),
        "n_interventions": len(cohort.interventions),
    }


# -- time to return ------------------------------------------------------------------------------

def _return(cohort: Cohort, res: Results, ids: frozenset[str]) -> None:
    from ..survival import time_to_return
    from ..survival.nonparametric import AalenJohansen
    from ..survival.prepare import CAUSE_CODES, episodes_table

    if cohort.episodes.empty:         # nothing to describe: a note, not empty tables or an error
        res.errors["return"] = "no_episodes"
        return
    eps = episodes_table(cohort)
    counts = eps["outcome"].value_counts()
    counts[RETURN_TO_SCHOOL] = int(eps["returned"].sum())
    # own school + other school = back to school, for counts and shares alike: when either part is
    # suppressed anywhere, only their sum is shown (otherwise the difference would disclose the part)
    parts = list(RETURN_OUTCOMES)
    part_counts = counts.reindex(parts).fillna(0)
    if ((part_counts > 0) & (part_counts < MIN_COUNT)).any():
        counts = counts.drop(parts, errors="ignore")
        res.collapsed = True
    res.outcome_counts = counts.rename_axis("outcome").rename("n_episodes").reset_index()
    if len(eps) < MIN_COUNT:
        res.errors["return"] = "too_few"
        return
    try:
        ttr = time_to_return(cohort)
    except Exception as e:  # e.g. no events at all, or a model that does not converge
        res.errors["return"] = _message(e, ids)
        return
    # the combined return to school: own school or other school / day programme
    combined = eps.assign(c=np.where(eps["returned"] == 1, 1, np.where(eps["cause"] > 0, 2, 0)))
    aj = AalenJohansen().fit(combined, duration="duration", event="c", entry="entry").tidy()
    school = aj[aj["cause"] == 1].assign(outcome=RETURN_TO_SCHOOL)
    cols = ["outcome", "time", "estimate", "conf_low", "conf_high"]
    curves = pd.concat([ttr.curves[cols], school[cols]], ignore_index=True)
    codes = {v: k for k, v in CAUSE_CODES.items()}
    event_outcome = np.where(eps["cause"] > 0, eps["cause"].map(codes), None)
    # publishable points at 3, 6, 12 months
    points = []
    for outcome, c in curves.groupby("outcome", sort=False):
        is_event = (eps["returned"] == 1) if outcome == RETURN_TO_SCHOOL else pd.Series(event_outcome == outcome)
        for months, day in MONTHS.items():
            at = c[c["time"] <= day]
            last = at.iloc[-1] if len(at) else None
            n_risk = int(((eps["entry"] < day) & (eps["duration"] >= day)).sum())
            n_events = int((is_event.to_numpy() & (eps["duration"] <= day).to_numpy()).sum())
            ok = n_risk >= MIN_COUNT and not 0 < n_events < MIN_COUNT
            points.append({"outcome": outcome, "months": months,
                           "estimate": (last["estimate"] if last is not None else 0.0) if ok else np.nan,
                           "conf_low": (last["conf_low"] if last is not None else 0.0) if ok else np.nan,
                           "conf_high": (last["conf_high"] if last is not None else 0.0) if ok else np.nan,
                           "n_events": n_events, "n_at_risk": n_risk})
    points = pd.DataFrame(points)
    if res.collapsed or points.loc[points["outcome"].isin(parts), "estimate"].isna().any():
        points = points[~points["outcome"].isin(parts)]
        curves = curves[~curves["outcome"].isin(parts)]
        res.outcome_counts = res.outcome_counts[~res.outcome_counts["outcome"].isin(parts)].reset_index(drop=True)
        res.collapsed = True
    res.curve_points = points.reset_index(drop=True)     # counts suppressed together in _protect
    # curves to draw: outcomes with at least MIN_COUNT events, while at least MIN_COUNT are at risk
    times = np.sort(eps["duration"].to_numpy())
    entries = np.sort(eps["entry"].to_numpy())

    def at_risk(t):
        return np.searchsorted(entries, t, side="left") - np.searchsorted(times, t, side="left")

    keep = []
    for outcome, c in curves.groupby("outcome", sort=False):
        is_event = (eps["returned"] == 1).to_numpy() if outcome == RETURN_TO_SCHOOL else event_outcome == outcome
        if is_event.sum() < MIN_COUNT:
            continue
        c = c[at_risk(c["time"].to_numpy()) >= MIN_COUNT]
        keep.append(_steps_of_at_least(c, np.sort(eps["duration"].to_numpy()[is_event])))
    res.curves = pd.concat(keep, ignore_index=True) if keep else pd.DataFrame(columns=cols)
    # intervention effects, with the number of analysed episodes that received each intervention
    iv = cohort.interventions
    treated = iv[iv["episode_id"].isin(eps["episode_id"])].groupby("intervention_type", observed=True)[
        "episode_id"].nunique()
    eff = ttr.effects[["intervention", "method", "estimate", "conf_low", "conf_high"]].copy()
    eff["n_treated"] = eff["intervention"].map(treated).fillna(0).astype(int)
    small = eff["n_treated"] < MIN_COUNT
    eff.loc[small, ["estimate", "conf_low", "conf_high"]] = np.nan
    truth = (cohort.truth or {}).get("intervention_hr", {})
    eff["true_value"] = eff["intervention"].map(lambda t: truth.get(t, np.nan)).astype(float)
    res.effects = eff


def _steps_of_at_least(c: pd.DataFrame, event_times: np.ndarray, n: int = MIN_COUNT) -> pd.DataFrame:
    """The rows of curve ``c`` (sorted by time) at which the events since the previous kept row
    reach ``n``: every step drawn holds at least ``n`` events, so no step gives a count of 1 to 9
    away (the rows before the first event are kept: the curve's start at 0)."""
    events = np.searchsorted(event_times, c["time"].to_numpy(), side="right")     # events by each time
    rows = [0] if len(events) and events[0] == 0 else []
    last = 0
    while True:         # one pass per drawn step (at most events / n), not per row
        i = int(np.searchsorted(events, last + n, side="left"))
        if i >= len(events):
            break
        rows.append(i)
        last = events[i]
    return c.iloc[rows]


# -- the PO approach's estimators ---------------------------------------------------------------

def _estimators(cohort: Cohort, res: Results, step: Callable[[str], None], ids: frozenset[str]) -> None:
    from ..effects import estimate, get
    from ..effects.data import vo_pupils

    try:
        vo = vo_pupils(cohort)
        n_exposed, n_unexposed = int(vo["exposed"].sum()), int((vo["exposed"] == 0).sum())
    except Exception:  # a cohort without VO data: every estimator will say why below
        n_exposed = n_unexposed = 0
    design = res.overview["design"]
    rows, skipped = [], []
    for name in approach_estimators():
        step(f"estimator:{name}")
        try:
            row = estimate(cohort, name)
        except Exception as e:  # an estimator that does not fit these data is listed, not fatal
            skipped.append({"estimator": name, "error": _message(e, ids)})
            continue
        if not np.isfinite(row[["estimate", "conf_low", "conf_high"]].to_numpy(dtype=float)).all():
            skipped.append({"estimator": name, "error": None})      # no finite estimate or interval
            continue
        est = get(name)
        row["n_exposed"], row["n_unexposed"] = n_exposed, n_unexposed
        row["true_value"] = _truth_value(cohort.truth, est.estimand)
        rows.append(row)
    res.skipped = pd.DataFrame(skipped, columns=["estimator", "error"])
    if not rows:
        res.estimates = None
        return
    t = pd.concat(rows, ignore_index=True)
    t["cautionary"] = t["estimator"].isin(CAUTIONARY)
    small = (t["n_exposed"] < MIN_COUNT) | (t["n_unexposed"] < MIN_COUNT)
    t.loc[small, ["estimate", "std_error", "conf_low", "conf_high", "p_value"]] = np.nan
    primary = PRIMARY_ESTIMATOR.get(design or "observational", "vo_ipw")
    ok = t.loc[~small & ~t["cautionary"] & t["estimand"].isin(MAIN_ESTIMANDS), "estimator"].tolist()
    res.primary = primary if primary in ok else (ok[0] if ok else None)
    t["primary"] = t["estimator"] == res.primary
    # order: the estimator that suits the design, the others of its quantity, other estimands, the warning last
    main = MAIN_ESTIMAND if res.primary is None else t.loc[t["primary"], "estimand"].iloc[0]
    rank = np.where(t["primary"], 0, np.where(t["cautionary"], 3, np.where(same_quantity(t["estimand"], main), 1, 2)))
    t = t.assign(_rank=rank).sort_values(["_rank", "estimator"], kind="stable").drop(columns="_rank")
    res.estimates = t.reset_index(drop=True)


def same_quantity(estimands: pd.Series, key: str) -> pd.Series:
    """Whether each estimand is the same quantity as ``key``: the same key, or both an effect on VO
    unexcused absence (:data:`MAIN_ESTIMANDS`, ATE and ATT)."""
    return estimands.isin(MAIN_ESTIMANDS) if key in MAIN_ESTIMANDS else estimands == key


def approach_estimators() -> list[str]:
    """Registered cohort estimators of the PO approach's effect (estimand ``po_approach_*``)."""
    from ..effects import available, get

    return [n for n in available("cohort") if get(n).estimand.startswith(APPROACH_PREFIX)]


def intervention_estimators(types) -> list[str]:
    """Registered cohort estimators of the effect of the in-episode interventions ``types``."""
    from ..effects import available, get

    order = {f"{INTERVENTION_PREFIX}{t}": i for i, t in enumerate(types)}
    names = [n for n in available("cohort") if get(n).estimand in order]
    # by intervention, the time-varying estimator before the naive one
    return sorted(names, key=lambda n: (order[get(n).estimand], n.startswith(NAIVE_PREFIX)))


def _truth_value(truth: dict, key: str) -> float:
    v = (truth or {}).get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan


# -- design diagnosis ----------------------------------------------------------------------------

def design_scenario(cohort: Cohort, scenario: Any = None) -> tuple[Any, str | None]:
    """The scenario a report's design diagnosis simulates, and where it comes from.

    ``scenario`` when given (``"given"``); else a simulated cohort's own scenario (``"cohort"``);
    else a scenario fitted to the cohort by :meth:`Scenario.from_cohort
    <verzuimmodel.simulate.scenario.Scenario.from_cohort>` (``"fitted"``): regions like the user's,
    with as many schools and pupils, the same absence and roll-out, and the default true effects.
    """
    if scenario is not None:
        return scenario, "given"
    if cohort.scenario is not None:
        return cohort.scenario, "cohort"
    from ..simulate import Scenario

    return Scenario.from_cohort(cohort), "fitted"


def _design(cohort: Cohort, scenario: Any, res: Results, ids: frozenset[str]) -> None:
    try:
        res.design_scenario, res.design_source = design_scenario(cohort, scenario)
    except Exception as e:  # the report still shows what the data say; the section says why
        res.diagnosis_status = "fit_failed"
        res.diagnosis_error = _message(e, ids)


def _region(res: Results, design: Any, seed: int) -> None:
    """The size of the diagnosis's first simulated region (replicate 0: the same draw)."""
    from ..evaluate.diagnose import replicate_seed

    region = design.draw(replicate_seed(int(seed), 0))
    schools = region.schools
    res.design_region = {"n_po_schools": int((schools["level"] == "po").sum()),
                         "n_vo_schools": int((schools["level"] == "vo").sum()),
                         "n_pupils": int(round(len(region.pupils), -1))}


def _diagnosis(res: Results, scenario: Any, n_sims: int, seed: int, backend: str,
               advance: Callable[[float], None]) -> None:
    res.n_sims = int(n_sims)
    if n_sims <= 0:
        res.diagnosis_status = "off"
        return
    try:
        from ..evaluate import Design, diagnose
        from ..simulate import Scenario
    except ImportError:
        res.diagnosis_status = "unavailable"
        return
    if scenario is None:
        res.diagnosis_status = "no_scenario"
        return
    names = [] if res.estimates is None else list(res.estimates["estimator"])
    if res.effects is not None:       # the in-episode interventions' time-varying and naive Cox estimators
        names += intervention_estimators(res.effects["intervention"].unique())
    if not names:
        res.diagnosis_status = "no_estimators"
        return
    # one design: each estimator is compared with the estimand it declares, on the same replicates
    accepts = set(inspect.signature(diagnose).parameters)
    try:
        kwargs: dict[str, Any] = {"n_sims": int(n_sims), "seed": int(seed), "backend": backend}
        if "progress" in accepts:
            kwargs["progress"] = False
        if "on_chunk" in accepts:
            kwargs["on_chunk"] = lambda frame: advance(frame["replicate"].nunique())
        simulated, k = regional_design(scenario)
        design = Design(scenario=simulated, estimators=list(names))
        diag = diagnose(design, **kwargs)
        if "on_chunk" not in accepts:
            advance(n_sims)
        dg = pool_regions(diag.tidy(), k)
    except Exception as e:  # the report still shows what the data say; the section says why it is missing
        res.diagnosis_status = "failed"
        res.diagnosis_error = _message(e, frozenset())      # simulated replicates: no real identifiers
        return
    dg["cautionary"] = dg["estimator"].isin(CAUTIONARY) | dg["estimator"].str.startswith(NAIVE_PREFIX)
    res.diagnosis = dg
    res.diagnosis_status = "done"
    res.design_regions = k
    if isinstance(scenario, Scenario):
        _region(res, design, seed)


def regional_design(scenario: Any) -> tuple[Any, int]:
    """The scenario a design diagnosis simulates and how many of its regions the design holds:
    ``(scenario, 1)``, or ``(scenario.one_region(), n_regions)`` above :data:`REGIONAL_DIAGNOSIS`."""
    p = getattr(scenario, "population", None)
    if p is None or p.n_regions <= 1 or p.n_po_schools <= REGIONAL_DIAGNOSIS:
        return scenario, 1
    return scenario.one_region(), int(p.n_regions)


def pool_regions(dg: pd.DataFrame, k: int) -> pd.DataFrame:
    """``Diagnosis.tidy()`` rows of a one-region diagnosis with ``power`` (and its MCSE) pooled over
    ``k`` regions (:func:`~verzuimmodel.evaluate.measures.pooled_power`); the region's own in
    ``power_region``. Unchanged when ``k`` is 1."""
    if k <= 1 or dg.empty:
        return dg
    from ..evaluate.measures import pooled_power

    dg = dg.copy()
    dg["power_region"], dg["power_region_mcse"] = dg["power"], dg["power_mcse"]
    pooled = [pooled_power(m, s, int(n), k) for m, s, n in zip(dg["mean_estimate"], dg["emp_se"], dg["n_used"])]
    dg["power"] = [v for v, _ in pooled]
    dg["power_mcse"] = [e for _, e in pooled]
    return dg


# -- calibration, monitor, schools ---------------------------------------------------------------

def _calibration(cohort: Cohort, res: Results) -> None:
    from ..calibration import compare

    try:
        t = compare(cohort)
    except Exception as e:
        res.errors["calibration"] = _message(e, _identifiers(cohort))
        return
    res.calibration = t[t["use"].isin(["solid", "prior"])].reset_index(drop=True)


def _monitor(cohort: Cohort, res: Results) -> None:
    from ..monitor import tables

    try:
        mt = tables(cohort, by=None)               # primary and secondary suppression applied
        res.monitor, res.monitor_audit = mt.quarterly, mt.audit
    except Exception as e:
        res.errors["monitor"] = _message(e, _identifiers(cohort))
        return
    if res.monitor.empty:                          # the section says why, in words
        res.errors["monitor"] = "no_episodes" if cohort.episodes.empty else "no_cases"


SIGNAL_BOOTSTRAP = 100


def _signal(cohort: Cohort, res: Results) -> None:
    """Early-warning models vs the rule-of-thumb signals, all pupils, validated by PO school (grouped CV)."""
    from ..signal import evaluate

    try:
        t = evaluate(cohort, n_boot=SIGNAL_BOOTSTRAP)
    except Exception as e:
        res.errors["signal"] = _message(e, _identifiers(cohort))
        return
    t = t[(t["group"] == "all") & (t["validation"] == "grouped_cv")]
    # a measure resting on fewer than MIN_COUNT pupils or events is not shown
    t = t[(t["n"] >= MIN_COUNT) & (t["n_events"] >= MIN_COUNT)]
    res.signal = t[~_small_confusion(t)].reset_index(drop=True)


FLAG_METRICS = ("sensitivity", "ppv", "alert_rate")
"""A flag's measures: together with the numbers of pupils and events they give its 2 x 2 table."""


def _small_confusion(t: pd.DataFrame) -> pd.Series:
    """Rows of a signal's flag measures (:data:`FLAG_METRICS`) whose 2 x 2 table (flagged or not
    by later long-term absence or not) has a cell of 1 to 9 pupils: sensitivity x events and alert
    rate x pupils would give it away, so all three are hidden."""
    wide = t.pivot_table(index="signal", columns="metric", values="value", aggfunc="first")
    n = t.groupby("signal")["n"].first()
    events = t.groupby("signal")["n_events"].first()
    if not set(FLAG_METRICS) <= set(wide.columns):
        return pd.Series(False, index=t.index)
    tp = (wide["sensitivity"] * events).round()
    alerts = (wide["alert_rate"] * n).round()
    cells = pd.concat([tp, alerts - tp, events - tp, n - alerts - (events - tp)], axis=1)
    small = ((cells > 0) & (cells < MIN_COUNT)).any(axis=1)
    return t["metric"].isin(FLAG_METRICS) & t["signal"].map(small).fillna(False).astype(bool)


def _schools(cohort: Cohort, res: Results) -> None:
    """Per school with at least ``MIN_COUNT`` pupils: level, pupils, long-term absence episodes."""
    s = cohort.schools.set_index("school_id")
    p = cohort.pupils
    pupils = pd.concat([p["po_school_id"].value_counts(), p["vo_school_id"].dropna().value_counts()])
    pupils = pupils.groupby(level=0).sum().reindex(s.index).fillna(0).astype(int)
    episodes = cohort.episodes.groupby("school_id").size().reindex(s.index).fillna(0).astype(int)
    t = pd.DataFrame({"school_id": s.index.astype(str), "level": s["level"].astype(str).to_numpy(),
                      "approach_start_year": s["approach_start_year"].to_numpy(dtype=float, na_value=np.nan),
                      "n_pupils": pupils.to_numpy(), "n_episodes": episodes.to_numpy()})
    shown = t["n_pupils"] >= MIN_COUNT
    res.schools_hidden = int((~shown).sum())
    res.schools = t[shown].sort_values(["level", "school_id"]).reset_index(drop=True)   # protected in _protect
    # what the listed schools leave of the overview's totals (unlisted schools, or no school): implied
    listed = res.schools
    res.schools_rest = {"po": len(p) - int(listed.loc[listed["level"] == "po", "n_pupils"].sum()),
                        "vo": int(p["vo_school_id"].notna().sum())
                        - int(listed.loc[listed["level"] == "vo", "n_pupils"].sum()),
                        "episodes": len(cohort.episodes) - int(listed["n_episodes"].sum())}
