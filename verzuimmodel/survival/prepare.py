"""From a cohort's episodes and interventions to survival-analysis rows.

``episode_intervals`` gives one row per episode segment, split at every intervention start, so
in-episode interventions enter a Cox model as time-varying covariates (counting-process form
``(start, stop]``). Time is counted in days since the first day of absence. An LRV episode is
recorded only once it has lasted four weeks, so it enters the risk set at day 28 (left
truncation): without that, the weeks every LRV episode is known to have survived would bias the
comparison with AV episodes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..schema import INTERVENTION_TYPES, OUTCOMES, RETURN_OUTCOMES

__all__ = ["episode_intervals", "episodes_table", "LRV_MIN_DAYS", "CAUSE_CODES"]

LRV_MIN_DAYS = 28
"""An LRV episode is known from its 28th day (unexcused absence longer than four weeks)."""

CAUSE_CODES = {code: i + 1 for i, code in enumerate(c for c in OUTCOMES if c != "censored")}
"""Outcome code -> cause number (1..5) for competing-risks models; 0 is censored."""

PUPIL_COVARIATES = ("female", "disadvantaged", "chronic_illness", "special_needs")


def episodes_table(cohort: Cohort, episode_types: Sequence[str] = ("LRV", "AV")) -> pd.DataFrame:
    """One row per episode of the given types, with duration, outcome codes and pupil covariates.

    Columns: ``episode_id, pupil_id, school_id, episode_type, entry, duration, outcome, cause,
    returned, vo, av`` and the pupil covariates (``female, disadvantaged, chronic_illness,
    special_needs`` as 0/1). ``entry`` is 28 for LRV and 0 otherwise; ``duration`` counts days from
    the first day of absence to the end (or to the last day observed, for a running episode);
    ``cause`` numbers the outcome (:data:`CAUSE_CODES`, 0 = censored); ``returned`` is 1 for a
    return to school (own or other school).
    """
    e = cohort.episodes
    e = e[e["episode_type"].isin(list(episode_types))]
    p = cohort.pupils.set_index("pupil_id")
    followup = p["followup_end"].reindex(e["pupil_id"]).to_numpy()
    end = e["end_date"].to_numpy().copy()
    end[pd.isna(end)] = followup[pd.isna(end)]
    duration = (end - e["start_date"].to_numpy()) / np.timedelta64(1, "D")
    outcome = e["outcome"].astype(str).to_numpy()
    levels = cohort.schools.set_index("school_id")["level"].reindex(e["school_id"]).astype(str).to_numpy()
    out = pd.DataFrame({
        "episode_id": e["episode_id"].to_numpy(),
        "pupil_id": e["pupil_id"].to_numpy(),
        "school_id": e["school_id"].to_numpy(),
        "episode_type": e["episode_type"].astype(str).to_numpy(),
        "entry": np.where(e["episode_type"].to_numpy() == "LRV", float(LRV_MIN_DAYS), 0.0),
        "duration": duration,
        "outcome": outcome,
        "cause": np.array([CAUSE_CODES.get(o, 0) for o in OUTCOMES])[_code_index(outcome)],
        "returned": np.isin(outcome, RETURN_OUTCOMES).astype(int),
        "vo": (levels == "vo").astype(int),
        "av": (e["episode_type"].to_numpy() == "AV").astype(int),
    })
    pupils = p.reindex(out["pupil_id"])
    out["female"] = (pupils["sex"].astype(str).to_numpy() == "F").astype(int)
    for c in PUPIL_COVARIATES[1:]:
        out[c] = pupils[c].to_numpy().astype(int)
    # an episode cannot be left-truncated beyond its end (an LRV episode censored before day 28 is never known)
    return out[out["duration"] > out["entry"]].reset_index(drop=True)


def _code_index(outcome: np.ndarray) -> np.ndarray:
    codes = list(OUTCOMES)
    lookup = {c: i for i, c in enumerate(codes)}
    return np.array([lookup[o] for o in outcome], dtype=np.int64) if len(outcome) else np.zeros(0, np.int64)


def episode_intervals(cohort: Cohort, episode_types: Sequence[str] = ("LRV", "AV"),
                      interventions: Sequence[str] | None = None) -> pd.DataFrame:
    """Start–stop rows: each episode split at the start of each of its interventions.

    Returns the columns of :func:`episodes_table` (``entry`` and ``duration`` replaced by
    ``start`` and ``stop``; ``event``/``cause`` only on the last segment of an episode) plus, per
    intervention type, a 0/1 column that is 1 from the day the intervention started and an
    ``ever_<type>`` column (1 on every row of an episode that ever received it: the time-fixed
    indicator of a naive analysis). An intervention starting before the episode's entry (day 28
    for LRV) is active from entry.
    """
    eps = episodes_table(cohort, episode_types)
    types = list(interventions) if interventions is not None else list(INTERVENTION_TYPES)
    iv = cohort.interventions
    iv = iv[iv["episode_id"].isin(eps["episode_id"]) & iv["intervention_type"].isin(types)]
    ep_start = cohort.episodes.set_index("episode_id")["start_date"]
    day = ((iv["start_date"].to_numpy() - ep_start.reindex(iv["episode_id"]).to_numpy())
           / np.timedelta64(1, "D"))
    # intervention start day per (episode, type); NaN if none
    starts = pd.DataFrame({"episode_id": iv["episode_id"].to_numpy(), "type": iv["intervention_type"].astype(str),
                           "day": day}).pivot_table(index="episode_id", columns="type", values="day", aggfunc="min")
    starts = starts.reindex(index=eps["episode_id"], columns=types)
    S = starts.to_numpy(dtype=float)                              # episodes x types
    entry = eps["entry"].to_numpy()[:, None]
    stop = eps["duration"].to_numpy()[:, None]
    # cut points strictly inside (entry, stop); a start at or before entry is active from entry
    cuts = np.where((S > entry) & (S < stop), S, np.nan)
    cuts = np.sort(cuts, axis=1)                                  # NaN last
    cuts[:, 1:][cuts[:, 1:] == cuts[:, :-1]] = np.nan             # two starting on the same day: one cut
    cuts = np.sort(cuts, axis=1)
    n_cuts = (~np.isnan(cuts)).sum(axis=1)
    n_rows = n_cuts + 1
    rep = np.repeat(np.arange(len(eps)), n_rows)
    seg = np.arange(n_rows.sum()) - np.repeat(np.cumsum(n_rows) - n_rows, n_rows)
    bounds = np.concatenate([entry, cuts, stop], axis=1)          # episodes x (types + 2), NaN in the middle
    # per episode, the finite boundaries in order: entry, the cuts, stop
    finite = np.where(np.isnan(bounds), np.inf, bounds)
    finite.sort(axis=1)
    start_t = finite[rep, seg]
    stop_t = np.where(seg == n_cuts[rep], stop[rep, 0], finite[rep, seg + 1])
    out = eps.drop(columns=["entry", "duration"]).iloc[rep].reset_index(drop=True)
    out.insert(4, "start", start_t)
    out.insert(5, "stop", stop_t)
    last = seg == n_cuts[rep]
    out["event"] = np.where(last, out["returned"].to_numpy(), 0)
    out["cause"] = np.where(last, out["cause"].to_numpy(), 0)
    for j, t in enumerate(types):
        s = S[rep, j]
        out[t] = (s <= start_t).astype(int)                        # NaN compares False: never started
        out[f"ever_{t}"] = (~np.isnan(S[rep, j]) & (S[rep, j] < stop[rep, 0])).astype(int)
    return out
