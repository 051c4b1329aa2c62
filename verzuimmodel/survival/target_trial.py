r"""Target-trial emulation of an in-episode intervention by clone–censor–weight.

The trial a municipality would have liked to run: for every long-term absence episode (LRV, AV),
from its first day of absence (time 0),

- arm 1, "start intervention :math:`j` on day :math:`d` (``treat_day``, or within the
  ``grace_days`` after it) if the pupil is still out and has not started it before";
- arm 0, "never start :math:`j`";

other interventions as they happen. The outcome is the time :math:`T` to a *suitable place*
(own or other school or day programme, work, specialist care; an exemption is a competing
event that never counts as one), as in ``cohort.truth["intervention_risk"]``.

**Clones and artificial censoring.** Each episode is copied into both arms. A clone is censored
on the day its episode deviates from its arm: in arm 0 on the day :math:`S` that :math:`j`
starts; in arm 1 on :math:`S` if :math:`S < d`, and on day :math:`d + G` (``G`` = ``grace_days``)
if the episode is still out then without having started. Before :math:`d` the arms are
identical.

**Weights.** Deviation depends on the episode's history, so the clones that stay in their arm
are a selected group; inverse probability weights undo the selection. The hazard of starting
:math:`j` and the hazard of loss to follow-up are modelled in discrete time
(:mod:`.discrete`): a pooled logistic regression per interval of days with one intercept per
interval (nonparametric in time) and the measured history :math:`x_i` (pupil covariates, PO/VO,
AV, the intake severity ``episodes.severity_score`` when the registry holds it). With
:math:`h^A_{ik}` and :math:`h^C_{ik}` those hazards in interval :math:`k`, the weight of clone
:math:`i` for an event on day :math:`t` is

.. math:: W_i(t) = \prod_{k < k(t)} \frac{1}{1 - h^C_{ik}}\;\times
          \begin{cases}\prod_{k < k(t)} (1 - h^A_{ik})^{-1} & t \le d + G
          \text{ or arm 0} \\ \big[\prod_{k < k_d}(1 - h^A_{ik})\, h^A_{ik_d}\big]^{-1} &
          \text{arm 1, } t > d + G\end{cases}

where :math:`k(t)` is the interval holding day :math:`t - 1` (a start on day :math:`s` acts on
returns recorded from day :math:`s + 1`) and :math:`k_d` is the grace window
:math:`[d, d + G]`, always an interval of its own. Interval boundaries are the distinct start
days when there are at most ``max_intervals`` of them (exact, e.g. when a kernpartnerteam meets
on fixed days), else quantiles of the start days (hazards then spread evenly over an
interval's days), and every four weeks (the hazard of loss to follow-up changes over time).
Weights can be truncated at a quantile of the clones' weights at their exits (``truncate``).

**Estimates.** Per arm the weighted Aalen–Johansen estimator of the cumulative incidence of a
suitable place, with exemption competing and LRV episodes entering at day 28 (left
truncation): the risks :math:`F_a(h)` by each horizon, their difference and ratio, and the
restricted mean days out of school :math:`\sum_{t < \tau}(1 - F_a(t))` (whole days). Standard
errors and percentile intervals by bootstrap of pupils (or schools): the weight models are
refitted in every replicate.
The hazards and weights depend on an episode only through its covariates, so they are computed
per distinct covariate pattern (found once; a replicate reweights the patterns' cells) and the
Aalen–Johansen sums look them up per clone (:mod:`.weighted_incidence`): with binary covariates
no (episodes x intervals) matrix is built.

Where it holds: referral and loss to follow-up depend on the measured history only (no
unmeasured confounding), every history has a positive chance of each strategy (positivity),
the models of the hazards are right, and the strategies are well defined. In the
``recorded_severity`` world it recovers ``truth["intervention_risk"]`` (``tests/``). Where it
does not: with the severity unmeasured (``confounded_referral``) it is confounded like every
other analysis of these data -- report the E-value (:mod:`verzuimmodel.effects.sensitivity`).
Measured there (200 regions, ``grace_days=6`` as its start days are continuous): the 6-month
risk difference was biased by -0.11 (Monte Carlo SE 0.02) and the log HR by -0.20 (MCSE 0.05).
And in ``recorded_severity`` with the severity *not* recorded (200 regions, ``tests/``; the
same world the emulation recovers when it is recorded): the 3-month risk difference was biased by
-0.060 (MCSE 0.003; truth +0.046, coverage 0.85), the log HR by -0.33 (MCSE 0.02; coverage 0.74);
the marginal structural model and g-computation likewise (log HR -0.40, coverage 0.34; risk
difference -0.064, coverage 0.25). The E-value that moves the mean HR (0.93) back to the truth
(1.29) is 1.8: a hidden severity associated with both referral and return by a risk ratio of 1.8
each explains it.
With start days spread over continuous time and ``grace_days > 0`` it estimates "start within
the grace window when the natural course would", close to but not the same as "start on day d".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from scipy import stats
from scipy.special import expit

from .._blas import single_threaded_blas
from ..cohort import Cohort
from ..errors import ConvergenceError, ExtremeWeightsWarning, StrategyNotFollowedError
from ..schema import INTERVENTION_TYPES
from .discrete import fit_pooled_logistic
from .prepare import PUPIL_COVARIATES, episodes_table
from .strategy_results import _label, bootstrap, contrasts_of, summarise, tidy_contrasts
from .weighted_incidence import weighted_aj

__all__ = ["TargetTrial", "target_trial", "PLACE_OUTCOMES", "trial_data"]

PLACE_OUTCOMES = ("own_school", "other_school", "work", "specialist_care")
"""Outcomes that are a suitable place (an exemption is not)."""

DEFAULT_COVARIATES = (*PUPIL_COVARIATES, "vo", "av")
CENSORING_STEP_DAYS = 28
"""Every four weeks an interval boundary, so that the hazard of loss to follow-up follows time."""


@dataclass(frozen=True)
class TrialData:
    """One row per eligible episode: entry, exit day, status (1 place, 2 exemption, 0 censored),
    start day of the intervention (``inf``: none), covariates, cluster labels."""

    entry: np.ndarray
    exit: np.ndarray
    status: np.ndarray
    start: np.ndarray
    z: np.ndarray
    covariates: tuple[str, ...]
    pupil: np.ndarray
    school: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """One row per episode: ``entry, exit, status, start`` (-1: never started), ``pupil`` and
        the covariates (the table the R references and the benchmark read)."""
        df = pd.DataFrame(self.z, columns=list(self.covariates))
        df.insert(0, "entry", self.entry)
        df.insert(1, "exit", self.exit)
        df.insert(2, "status", self.status)
        df.insert(3, "start", np.where(np.isfinite(self.start), self.start, -1))
        df.insert(4, "pupil", self.pupil)
        return df


def trial_data(cohort: Cohort, intervention: str, covariates: Sequence[str] | None = None,
               episode_types: Sequence[str] = ("LRV", "AV")) -> TrialData:
    """The episodes of a target trial of ``intervention`` (see the module docstring)."""
    if intervention not in INTERVENTION_TYPES:
        raise ValueError(f"intervention: got {intervention!r}; expected one of {', '.join(INTERVENTION_TYPES)}")
    eps = episodes_table(cohort, episode_types)
    if eps.empty:
        raise ValueError(f"target_trial: the cohort has no {'/'.join(episode_types)} episodes")
    covs = list(DEFAULT_COVARIATES if covariates is None else covariates)
    if covariates is None and "severity_score" in cohort.episodes.columns:
        sev = cohort.episodes.set_index("episode_id")["severity_score"].reindex(eps["episode_id"])
        if sev.notna().all():
            eps["severity_score"] = sev.to_numpy(dtype=float)
            covs.append("severity_score")
    missing = [c for c in covs if c not in eps.columns]
    if missing:
        raise ValueError(f"target_trial: unknown covariates {missing}; expected columns of the episodes table "
                         f"({', '.join(eps.columns)})")
    covs = [c for c in covs if eps[c].nunique() > 1]
    iv = cohort.interventions
    iv = iv[(iv["intervention_type"].astype(str) == intervention) & iv["episode_id"].isin(eps["episode_id"])]
    ep_start = cohort.episodes.set_index("episode_id")["start_date"]
    day = (iv["start_date"].to_numpy() - ep_start.reindex(iv["episode_id"]).to_numpy()) / np.timedelta64(1, "D")
    first = pd.Series(day, index=iv["episode_id"].to_numpy()).groupby(level=0).min()
    start = first.reindex(eps["episode_id"]).to_numpy(dtype=float)
    start[np.isnan(start)] = np.inf
    outcome = eps["outcome"].to_numpy()
    status = np.where(np.isin(outcome, PLACE_OUTCOMES), 1, np.where(outcome == "exemption", 2, 0))
    # every recorded episode is followed from its first day of absence: the trial's population is
    # the recorded episodes (an LRV episode lasts at least 28 days by definition; treating its
    # first 28 days as left truncation would estimate a population with LRV episodes that ended sooner)
    return TrialData(entry=np.zeros(len(eps)), exit=np.ceil(eps["duration"].to_numpy(float)),
                     status=status, start=start, z=eps[covs].to_numpy(float), covariates=tuple(covs),
                     pupil=eps["pupil_id"].to_numpy(), school=eps["school_id"].to_numpy())


@dataclass(frozen=True)
class TargetTrial:
    r"""Result of :func:`target_trial`.

    Attributes
    ----------
    risks : DataFrame
        ``arm`` (``"start"``/``"never"``), ``horizon`` (days), ``estimate``, ``std_error``,
        ``conf_low``, ``conf_high``: the risk of a suitable place by the horizon.
    contrasts : DataFrame
        ``term`` (``rd_3m``, ``rr_3m``, ..., ``rmst_out_diff``), ``estimate``, ``std_error``,
        ``conf_low``, ``conf_high`` (bootstrap percentile), ``std_error_log`` (of the log risk
        ratios), ``n_boot``.
    weights : DataFrame
        Diagnostics per arm: clones, clones followed to their end, clones placed (unweighted) by
        each horizon (``n_events_3m``, ...), mean/SD/min/max and the 1%,
        50%, 99% quantiles of the weights at the clones' exits, the effective sample size
        :math:`(\sum W)^2/\sum W^2`, and the number of weights truncated.
    curves : DataFrame
        ``arm, time, cif`` (the weighted cumulative incidence of a place, whole days).
    """

    intervention: str
    treat_day: int
    grace_days: int
    risks: pd.DataFrame
    contrasts: pd.DataFrame
    weights: pd.DataFrame
    curves: pd.DataFrame
    covariates: tuple[str, ...]
    n_episodes: int
    n_started_on_time: int
    notes: dict = field(default_factory=dict)

    def tidy(self) -> pd.DataFrame:
        """The contrasts as the canonical tidy table (:func:`tidy_contrasts`)."""
        return tidy_contrasts(self.contrasts)


def target_trial(cohort: Cohort, intervention: str, *, treat_day: int = 56, grace_days: int = 0,
                 horizons: Sequence[float] = (91, 182, 365), rmst_days: int = 365,
                 covariates: Sequence[str] | None = None, censoring_weights: bool = True,
                 truncate: float | None = None, max_intervals: int = 60, n_boot: int = 200,
                 cluster: Literal["pupil", "school"] = "pupil", seed: int = 0, level: float = 0.95,
                 episode_types: Sequence[str] = ("LRV", "AV")) -> TargetTrial:
    """Emulate the target trial "start ``intervention`` on ``treat_day`` vs never" (module docstring).

    Parameters
    ----------
    cohort : Cohort
    intervention : one of the intervention types (``kernpartnerteam``, ``verzuimcoach``, ``mazl``).
    treat_day : day after the first day of absence on which arm 1 starts the intervention.
    grace_days : arm 1 may start up to this many days after ``treat_day``.
    horizons : days at which the risk of a suitable place is reported (3, 6, 12 months).
    rmst_days : horizon of the restricted mean days out of school.
    covariates : the measured history the weights use (columns of
        :func:`~verzuimmodel.survival.prepare.episodes_table`); default: pupil covariates, PO/VO,
        AV and ``severity_score`` when the episodes table has it.
    censoring_weights : also weight for loss to follow-up (default).
    truncate : truncate the weights at this quantile (e.g. 0.99); ``None``: no truncation.
    max_intervals : at most this many intervals of days in the hazard models.
    n_boot : bootstrap replicates for the standard errors and intervals (0: none).
    cluster : resample pupils (default) or schools.
    seed : seed of the bootstrap.
    level : confidence level.

    Raises
    ------
    ValueError
        Bad arguments; no episode that followed the start strategy, or none that followed "never".

    Warns
    -----
    ExtremeWeightsWarning
        Fewer than 10 episodes followed the start strategy, or an arm's effective sample size is
        below 5% of its clones (a few clones carry it).
    """
    for name, v, lo in (("treat_day", treat_day, 1), ("grace_days", grace_days, 0), ("rmst_days", rmst_days, 1),
                        ("max_intervals", max_intervals, 2), ("n_boot", n_boot, 0)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
            raise ValueError(f"{name}: got {v!r}; expected a whole number >= {lo}")
    hz = np.asarray(horizons, dtype=float)
    if not len(hz) or np.any(hz <= treat_day) or np.any(hz != np.round(hz)):
        raise ValueError(f"horizons: got {list(horizons)!r}; expected whole days after treat_day ({treat_day})")
    if truncate is not None and not 0.5 < truncate < 1:
        raise ValueError(f"truncate: got {truncate!r}; expected a quantile between 0.5 and 1 (e.g. 0.99) or None")
    if cluster not in ("pupil", "school"):
        raise ValueError(f"cluster: got {cluster!r}; expected 'pupil' or 'school'")
    if not 0 < level < 1:
        raise ValueError(f"level: got {level!r}; expected a number between 0 and 1")
    td = trial_data(cohort, intervention, covariates, episode_types)
    t_max = int(max(hz.max(), rmst_days))
    if td.exit.max() <= treat_day + grace_days:
        raise ValueError(f"target_trial: no episode lasts beyond treat_day + grace_days ({treat_day + grace_days} "
                         f"days): the grace period is longer than the follow-up")
    if not (td.status == 1).any():
        raise ValueError("target_trial: no episode ended in a suitable place (all censored or exempted): the "
                         "risks cannot be estimated")
    on_time = (td.start >= treat_day) & (td.start <= treat_day + grace_days) & (td.start < td.exit)
    if not on_time.any():
        raise StrategyNotFollowedError(f"target_trial: no episode started {intervention} on day {treat_day}"
                         + (f" to {treat_day + grace_days}" if grace_days else "")
                         + ": the start strategy was never followed (choose treat_day or grace_days from the "
                           "days on which it starts)")
    grid = _grid(td, treat_day, grace_days, t_max, max_intervals)
    ones = np.ones(len(td.exit))
    patterns = _patterns(td.z)          # found once: the bootstrap's replicates reweight them
    with single_threaded_blas():
        est, diag, curves, (log_hr, hr_se) = _estimate(td, grid, ones, treat_day, grace_days, hz, rmst_days,
                                                       censoring_weights, truncate, with_diagnostics=True,
                                                       patterns=patterns)
        B = bootstrap(td, n_boot, seed, cluster, est.index,
                      lambda f: _estimate(td, grid, f, treat_day, grace_days, hz, rmst_days, censoring_weights,
                                          truncate, patterns=patterns)[0],
                      usable=lambda f: (on_time & (f > 0)).any(), errors=(ConvergenceError,),
                      why="target_trial: {lost} of {n} bootstrap replicates had no episode following the start "
                          "strategy or weight models that could not be fitted; the standard errors rest on the "
                          "others and are unreliable")
    _warn_extreme(diag, int(on_time.sum()), intervention)
    risks, contrasts = summarise(est, B, hz, level)
    q = stats.norm.ppf(0.5 + level / 2)
    hr = pd.DataFrame([{"term": "hr_after_treat_day", "estimate": np.exp(log_hr), "std_error": np.nan,
                        "conf_low": np.exp(log_hr - q * hr_se), "conf_high": np.exp(log_hr + q * hr_se),
                        "std_error_log": hr_se, "n_boot": 0}])
    contrasts = pd.concat([contrasts, hr], ignore_index=True)
    return TargetTrial(intervention=intervention, treat_day=int(treat_day), grace_days=int(grace_days), risks=risks,
                       contrasts=contrasts, weights=diag, curves=curves, covariates=td.covariates,
                       n_episodes=len(td.exit), n_started_on_time=int(on_time.sum()),
                       notes={"intervals": len(grid) - 1, "cluster": cluster})


MIN_FOLLOWED = 10
"""Fewer episodes than this following the start strategy: :class:`ExtremeWeightsWarning`."""
MIN_ESS_SHARE = 0.05
"""An arm's effective sample size below this share of its clones: :class:`ExtremeWeightsWarning`."""


def _warn_extreme(diag: pd.DataFrame, n_on_time: int, intervention: str) -> None:
    """Warn when a few clones carry an arm (see :class:`~verzuimmodel.errors.ExtremeWeightsWarning`)."""
    if n_on_time < MIN_FOLLOWED:
        warnings.warn(f"target_trial: only {n_on_time} episode(s) started {intervention} in the start window; "
                      "after it the start arm rests on their weights alone", ExtremeWeightsWarning, stacklevel=3)
    for r in diag.itertuples():
        if r.ess < MIN_ESS_SHARE * r.n_clones:
            warnings.warn(f"target_trial: the weights of arm '{r.arm}' are extreme: effective sample size {r.ess:.1f} "
                          f"of {r.n_clones} clones, largest weight {r.max:.3g}; consider truncate=0.99 or a longer "
                          "grace period", ExtremeWeightsWarning, stacklevel=3)


def _grid(td: TrialData, d: int, g: int, t_max: int, max_intervals: int) -> np.ndarray:
    """Interval boundaries (days): the distinct start days (or their quantiles) and every
    :data:`CENSORING_STEP_DAYS`, with the grace window ``[d, d + g]`` an interval of its own; the
    last boundary is beyond every exit."""
    s = td.start[np.isfinite(td.start) & (td.start < td.exit)]
    days = np.unique(s)
    if len(days) > max_intervals:
        days = np.unique(np.quantile(s, np.linspace(0, 1, max_intervals + 1)).round())
    top = max(float(td.exit.max()), float(t_max)) + 1
    steps = np.arange(0.0, top, CENSORING_STEP_DAYS)           # loss to follow-up needs intervals throughout
    b = np.unique(np.concatenate([steps, days, [d, d + g + 1, top]]))
    b = b[(b <= d) | (b >= d + g + 1)]          # nothing splits the grace window
    return b


def _estimate(td: TrialData, grid: np.ndarray, f: np.ndarray, d: int, g: int, hz: np.ndarray, tau: int,
              cens: bool, truncate: float | None, with_diagnostics: bool = False,
              patterns: tuple[np.ndarray, np.ndarray] | None = None):
    """Risks and contrasts (a Series), with weight diagnostics and curves when asked.

    The hazards and weights depend on an episode through its covariates only: they are computed
    per covariate pattern (``patterns``: :func:`_patterns` of ``td.z``, found here if not given)
    and looked up per clone."""
    zu, pat = _patterns(td.z) if patterns is None else patterns
    if not np.all(f > 0):        # episodes outside a bootstrap sample carry no weight anywhere: leave them out
        keep = f > 0
        td = TrialData(entry=td.entry[keep], exit=td.exit[keep], status=td.status[keep], start=td.start[keep],
                       z=td.z[keep], covariates=td.covariates, pupil=td.pupil[keep], school=td.school[keep])
        f, pat = f[keep], pat[keep]
    t_max = int(max(hz.max(), tau))
    started = np.isfinite(td.start) & (td.start < td.exit)
    days = np.arange(t_max + 1)
    k_day = np.clip(np.searchsorted(grid, days - 1, side="right") - 1, 0, len(grid) - 2)   # interval of day t-1
    # the models use every interval; the weights only those up to day t_max
    K_use = int(k_day.max()) + 1
    # starting: at risk on days t < min(start + 1, exit); the start falls in the interval holding it
    kd = int(np.searchsorted(grid, d, side="right") - 1)
    # (patterns x intervals) from here on; pat[i] is clone i's row
    hA = _hazards(td, grid, f, td.start, np.minimum(td.start + 1, td.exit), started,
                  "the model of starting the intervention", own=kd, columns=K_use, patterns=(zu, pat))
    surv_a = _survival(hA)                                           # column k: P(no start in intervals < k)
    if cens:                                                         # loss: at risk through the exit day
        hC = _hazards(td, grid, f, td.exit, td.exit + 1, td.status == 0, "the model of loss to follow-up",
                      columns=K_use, patterns=(zu, pat))
        surv_c = _survival(hC)
    else:
        surv_c = np.ones((len(zu), K_use + 1))
    out, diag, curves, hr_rows = {}, [], [], []
    for arm in ("start", "never"):
        x, st = _clone(td, arm, d, g)
        W, col = _clone_weights(arm, surv_a, surv_c, hA, kd, k_day, d + g)
        n_trunc = 0
        at_exit = W[pat, col[np.clip(x.astype(np.int64), 0, t_max)]]
        if truncate is not None:                 # at the quantile of the clones' weights at their exits
            cap = np.quantile(at_exit[f > 0], truncate)
            n_trunc = int((at_exit[f > 0] > cap).sum())
            W = np.minimum(W, cap)
            at_exit = np.minimum(at_exit, cap)
        cif = weighted_aj(td.entry, x, st, W, col, pat, f)
        for h in hz:
            out[f"risk_{arm}_{_label(h)}"] = cif[int(h)]
        out[f"rmst_out_{arm}"] = float(np.sum(1 - cif[:tau]))
        if with_diagnostics:
            w = at_exit[f > 0]
            diag.append({"arm": arm, "n_clones": int((f > 0).sum()), "n_followed": int((x == td.exit)[f > 0].sum()),
                         **{f"n_events_{_label(h)}": int(((st == 1) & (x <= h)).sum()) for h in hz},
                         "mean": float(w.mean()), "sd": float(w.std()), "min": float(w.min()),
                         "q01": float(np.quantile(w, 0.01)), "median": float(np.median(w)),
                         "q99": float(np.quantile(w, 0.99)), "max": float(w.max()),
                         "ess": float(w.sum() ** 2 / np.sum(w ** 2)), "n_truncated": n_trunc})
            curves.append(pd.DataFrame({"arm": arm, "time": days, "cif": cif}))
            hr_rows.append(_rows_after(x, st, W[pat] * f[:, None], col, d, int(hz.max()), arm == "start"))
    s = contrasts_of(out, hz)
    if with_diagnostics:
        return s, pd.DataFrame(diag), pd.concat(curves, ignore_index=True), _hazard_ratio(pd.concat(hr_rows))
    return s, None, None, None


def _rows_after(x: np.ndarray, st: np.ndarray, W: np.ndarray, col: np.ndarray, d: int, horizon: int,
                arm: bool) -> pd.DataFrame:
    """Start-stop rows of the clones still at risk after day ``d``, up to ``horizon``: one row per
    clone and run of days with the same weight column (``(a, b]``, weight, place as the event)."""
    days = np.arange(d + 1, horizon + 1)
    c = col[days]
    change = np.flatnonzero(np.diff(c)) + 1
    first = np.r_[0, change]
    last = np.r_[change - 1, len(days) - 1]
    a, b, cc = days[first] - 1, days[last], c[first]                 # runs (a, b] with column cc
    i, r = np.nonzero(x[:, None] > a[None, :])                        # clone i at risk in run r
    stop = np.minimum(b[r], x[i])
    event = (st[i] == 1) & (x[i] <= b[r]) & (x[i] <= horizon)
    return pd.DataFrame({"episode": i, "start": a[r].astype(float), "stop": stop.astype(float),
                         "event": event.astype(int), "arm": float(arm), "w": W[i, cc[r]]})


def _hazard_ratio(rows: pd.DataFrame) -> tuple[float, float]:
    """log HR of a place, arm "start" vs "never", from day ``d`` on: weighted Cox model of the
    clones' rows, robust SE clustered by episode (both clones of an episode in one cluster)."""
    from .cox import CoxPH

    rows = rows[rows["w"] > 0]
    if rows["event"].sum() == 0 or rows["arm"].nunique() < 2:
        return float("nan"), float("nan")
    m = CoxPH().fit(rows, duration="stop", event="event", entry="start", covariates=["arm"], weights="w",
                    cluster="episode")
    return float(m.params_["arm"]), float(m.standard_errors_["arm"])


def _hazards(td: TrialData, grid: np.ndarray, f: np.ndarray, event_day: np.ndarray, end: np.ndarray,
             event: np.ndarray, name: str, own: int | None = None, z: np.ndarray | None = None,
             columns: int | None = None, patterns: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(n, K) discrete hazards from a pooled logistic model: unit ``i`` is at risk in interval
    ``k`` while ``grid[k] < end_i``; its event falls in the interval holding ``event_day``.
    Covariate effects: ``z``, ``z * log(day)`` (centred) and, for interval ``own`` (the grace
    window of the start model, on which the start arm's weights rest), ``z`` once more. ``z``:
    the covariates (default ``td.z``; no columns: the marginal hazard per interval).
    ``columns``: return the first this many intervals only (the model is fitted on all).
    ``patterns``: ``(zu, pat)``, the distinct rows of ``z`` and each unit's row (:func:`_patterns`;
    found here if not given); when given, the hazards are returned per pattern, (P, K)."""
    z = td.z if z is None else z
    K = len(grid) - 1
    q = z.shape[1]
    n_rows = np.clip(np.searchsorted(grid, end, side="left"), 0, K)      # intervals k with grid[k] < end
    ev_k = np.where(event, np.searchsorted(grid, np.where(event, event_day, 0), side="right") - 1, -1)
    ev = event & (ev_k >= 0) & (ev_k < n_rows)
    # the rows of units with the same covariates in the same interval differ only in y: the model
    # is fitted on their sums per (covariate pattern, interval) cell, the same weighted likelihood
    # without a row per unit and interval
    zu, pat = _patterns(z) if patterns is None else patterns
    P = len(zu)
    ending = np.bincount(pat * (K + 1) + n_rows, weights=f, minlength=P * (K + 1)).reshape(P, K + 1)
    w_cell = np.cumsum(ending[:, ::-1], axis=1)[:, ::-1][:, 1:].ravel()   # weight of units with n_rows > k
    wy_cell = np.bincount(pat[ev] * K + ev_k[ev], weights=f[ev], minlength=P * K)
    cells = np.flatnonzero(w_cell > 0)
    pc, kc = np.divmod(cells, K)
    w, y = w_cell[cells], wy_cell[cells] / w_cell[cells]
    # the covariates' effects may change with time: z and z * log(day) (centred)
    tau = np.log1p((grid[:-1] + grid[1:]) / 2)
    tau = tau - tau.mean()

    def design(kk, zz):
        parts = [zz, zz * tau[kk][:, None]]
        if own is not None:
            parts.append(zz * (kk == own)[:, None])
        return np.concatenate(parts, axis=1)

    model = fit_pooled_logistic(kc, design(kc, zu[pc]), y, w, n_intervals=K, name=name)
    # every unit's hazard in every interval (the weights need them beyond a unit's own rows too),
    # per covariate pattern: alpha_k + z'b + tau_k z'g (+ z'c in interval ``own``)
    b = model.beta
    eta = model.alpha[None, :] + (zu @ b[:q])[:, None] + tau[None, :] * (zu @ b[q:2 * q])[:, None]
    if own is not None:
        eta[:, own] += zu @ b[2 * q:3 * q]
    h = np.where(np.isfinite(model.alpha)[None, :], expit(eta), 0.0)
    h = np.minimum(h, 1 - 1e-9)[:, :columns]
    return h if patterns is not None else h[pat]


def _patterns(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``z`` (sorted) and the row of each unit (one pattern without columns)."""
    if not z.shape[1]:
        return np.zeros((1, 0)), np.zeros(len(z), dtype=np.int64)
    zu, pat = np.unique(z, axis=0, return_inverse=True)
    return zu, pat.reshape(-1)


def _survival(h: np.ndarray) -> np.ndarray:
    """(n, K + 1): column ``k`` the product of ``1 - h`` over the intervals before ``k``."""
    out = np.empty((h.shape[0], h.shape[1] + 1))
    out[:, 0] = 1.0
    np.cumprod(1 - h, axis=1, out=out[:, 1:])
    return out


def _clone(td: TrialData, arm: str, d: int, g: int) -> tuple[np.ndarray, np.ndarray]:
    """Exit day and status of each episode's clone in ``arm`` (status 0 = censored, natural or
    artificial)."""
    x, st = td.exit.copy(), td.status.copy()
    started = td.start < td.exit
    if arm == "never":
        x[started], st[started] = td.start[started], 0
        return x, st
    early = started & (td.start < d)
    x[early], st[early] = td.start[early], 0
    late = ~early & ~(started & (td.start <= d + g)) & (td.exit > d + g)
    x[late], st[late] = d + g, 0
    return x, st


def _clone_weights(arm: str, surv_a: np.ndarray, surv_c: np.ndarray, hA: np.ndarray, kd: int, k_day: np.ndarray,
                   window_end: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse probability weights of the clones, ``W`` (n x columns), and the column of ``W``
    for each day (see the module docstring).

    Column ``k`` (interval ``k`` holding day ``t - 1``): not started through interval ``k``,
    not lost before it. In arm "start", days after the grace window use the probability of
    starting in it instead (an extra column for the day after the window, whose day ``t - 1``
    still lies in it).
    """
    K = hA.shape[1]
    W = np.empty((len(hA), K + 1 if arm == "start" else K))
    W[:, :K] = 1.0 / (surv_a[:, 1:] * surv_c[:, :-1])
    col = k_day.copy()
    if arm == "start":
        # a start probability of 0 gives an infinite weight to clones that never follow the arm
        # after the window (they are censored then): 0 instead, they carry no weight
        p_start = surv_a[:, [kd]] * hA[:, [kd]]
        inv = np.divide(1.0, p_start, out=np.zeros_like(p_start), where=p_start > 0)
        W[:, kd] = 1.0 / (surv_a[:, kd] * surv_c[:, kd])
        W[:, kd + 1:K] = inv / surv_c[:, kd + 1:K]
        W[:, K] = inv[:, 0] / surv_c[:, kd]
        col[window_end + 1:window_end + 2] = K            # day d + g + 1: started in the window
    return W, col
