r"""The report's primary analysis of the in-episode interventions: an emulated target trial.

Why not the time-varying Cox model? Interventions are not allotted by lot: the thuiszitters with
the worst prospects are referred first, for reasons the registry holds only in part. The
time-varying Cox model compares, on each day, pupils who have started an intervention with pupils
who have not; referral by prognosis biases that comparison, and a hazard ratio is easily misread.
The emulated trial (:func:`verzuimmodel.survival.target_trial`, clone–censor–weight) asks the
question a municipality would have put to a trial --

    for every long-term absence episode (LRV, AV): "start the intervention in the second month of
    absence (day :data:`TRIAL_DAY` to :data:`TRIAL_DAY` + :data:`TRIAL_GRACE`) if the pupil is
    still out" against "never start it",

corrects for the referral that the recorded history explains (inverse probability weights), and
answers in absolute terms: how many more of every 100 thuiszitters have a suitable place (school,
day programme, work, care) 3, 6 and 12 months after the first day of absence. The time-varying Cox
model stays in the report as the secondary analysis.

Where it holds: referral depends only on what the registry records. Where it does not: with an
unrecorded severity behind both referral and return (the ``confounded_referral`` world), it is
biased like every analysis of these data; the E-value of every effect (:mod:`verzuimmodel.effects.
sensitivity`) says how strong such a hidden difference would have to be to explain the effect away.

Disclosure: an intervention's trial is shown only when at least ``MIN_COUNT`` episodes started it
in the window and at least ``MIN_COUNT`` clones of each arm were followed to their end; a
horizon's risk difference and ratio are hidden (NaN) when the clones of an arm placed by then
number 1 to 9. The table holds no counts.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..disclosure import MIN_COUNT
from ..effects.sensitivity import add_evalues
from ..errors import DegenerateDataWarning, ExtremeWeightsWarning, StrategyNotFollowedError

__all__ = ["TRIAL_DAY", "TRIAL_GRACE", "TRIAL_N_BOOT", "TRIAL_COLUMNS", "HEADLINE", "collect_trials", "small_events"]

TRIAL_DAY = 28
"""First day of the start window: the day an LRV episode becomes long-term (and is registered)."""
TRIAL_GRACE = 27
"""The window lasts four weeks: day 28 to 55, the second month of absence."""
TRIAL_N_BOOT = 200
"""Bootstrap replicates (pupils resampled) of the intervals."""
HEADLINE = "3m"
"""The horizon of the summary's sentence: a suitable place within 3 months."""

TRIAL_COLUMNS = ["intervention", "term", "estimate", "conf_low", "conf_high", "evalue", "evalue_ci"]
"""Terms: ``rd_3m, rd_6m, rd_12m`` (risk differences of a suitable place), ``rr_*`` (risk ratios),
``hr`` (hazard ratio from the end of the window); ``evalue``/``evalue_ci``: the E-value of the
risk ratio (also on the risk difference of the same horizon) or of the hazard ratio."""


def collect_trials(cohort: Cohort, types, message) -> tuple[pd.DataFrame, dict[str, str]]:
    """The emulated trial of each intervention in ``types``, disclosure-controlled.

    Returns
    -------
    trials : DataFrame of :data:`TRIAL_COLUMNS`.
    notes : intervention -> ``"too_few"`` (fewer than ``MIN_COUNT`` started in the window or
        followed an arm), ``"weights"`` (a few clones carry an arm's weights:
        :class:`~verzuimmodel.errors.ExtremeWeightsWarning`; shown, with that warning),
        ``"unstable"`` (more than a tenth of the bootstrap replicates could not be computed:
        shown, with that warning), or the error (``message(exception)``) when
        the trial could not be emulated.
    """
    from ..survival.target_trial import target_trial

    rows, notes = [], {}
    for iv in types:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DegenerateDataWarning)
                warnings.simplefilter("always", ExtremeWeightsWarning)
                r = target_trial(cohort, iv, treat_day=TRIAL_DAY, grace_days=TRIAL_GRACE, n_boot=TRIAL_N_BOOT)
        except StrategyNotFollowedError:       # no episode started in the window
            notes[iv] = "too_few"
            continue
        except Exception as e:  # said in the report, not fatal
            notes[iv] = message(e)
            continue
        followed = r.weights.set_index("arm")
        if r.n_started_on_time < MIN_COUNT or (followed["n_followed"] < MIN_COUNT).any():
            notes[iv] = "too_few"
            continue
        if any(issubclass(w.category, ExtremeWeightsWarning) for w in caught):
            notes[iv] = "weights"
        elif any(issubclass(w.category, DegenerateDataWarning) for w in caught):
            notes[iv] = "unstable"
        c = r.contrasts.set_index("term")
        for term in c.index:
            if not term.startswith(("rd_", "rr_", "hr_")):
                continue
            label = "hr" if term.startswith("hr_") else term
            hidden = label != "hr" and small_events(followed[f"n_events_{term[3:]}"])
            row = c.loc[term]
            rows.append({"intervention": iv, "term": label,
                         **{k: np.nan if hidden else float(row[k]) for k in ("estimate", "conf_low", "conf_high")}})
    trials = pd.DataFrame(rows, columns=TRIAL_COLUMNS[:5])
    return _with_evalues(trials), notes


def small_events(n_events: pd.Series) -> bool:
    """Whether the clones of an arm placed by a horizon (one count per arm) number 1 to 9 in some arm."""
    return bool(((n_events > 0) & (n_events < MIN_COUNT)).any())


def _with_evalues(t: pd.DataFrame) -> pd.DataFrame:
    """E-values of the risk ratios (copied to the risk differences of the same horizon) and of
    the hazard ratios (a place is a common outcome: the square-root conversion)."""
    t = t.assign(evalue=np.nan, evalue_ci=np.nan)
    ratio = t["term"].str.startswith("rr_") | (t["term"] == "hr")
    shown = ratio & t[["estimate", "conf_low", "conf_high"]].notna().all(axis=1) & (t["estimate"] > 0)
    if shown.any():
        sub = t[shown]
        e = add_evalues(sub, measure=np.where(sub["term"] == "hr", "HR", "RR"), outcome_common=True,
                        columns=("estimate", "conf_low", "conf_high"))
        t.loc[shown, ["evalue", "evalue_ci"]] = e[["evalue", "evalue_ci"]].to_numpy()
    # a risk difference has the E-value of the risk ratio of its horizon
    key = t["intervention"] + "|" + t["term"].str.replace("rd_", "rr_", regex=False)
    ev = t[t["term"].str.startswith("rr_")].assign(key=key).set_index("key")[["evalue", "evalue_ci"]]
    rd = t["term"].str.startswith("rd_")
    t.loc[rd, ["evalue", "evalue_ci"]] = ev.reindex(key[rd]).to_numpy()
    return t[TRIAL_COLUMNS].reset_index(drop=True)
