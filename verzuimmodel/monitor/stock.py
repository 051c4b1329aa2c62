r"""The quarterly thuiszitters monitor: stock and flow of long-term absence per quarter and region.

Regions review every long absence four times a year: how many are running, how long they have
run, how many started and ended, and how the pupils change while the total stays about the same.

An episode is *monitored* from its counting day :math:`a` — the day it becomes a case of its kind:
LRV longer than four weeks from day 28 of absence, LRV longer than three months from day 91, AV
and 5a from their first day — until its end :math:`b` (the day of the outcome; for an episode
whose pupil moved away, the day after the last day observed; an episode still running at the
end of the data never ends). For a quarter :math:`[q_0, q_1)`:

- ``stock_start`` = :math:`\#\{a < q_0 \le b\}` (running on the last day before the quarter),
- ``inflow`` = :math:`\#\{q_0 \le a < q_1,\ a < b\}`,
- ``outflow`` = :math:`\#\{q_0 \le b < q_1,\ a < b\}`, split by outcome,
- ``stock_end`` = :math:`\#\{a < q_1 \le b\}` = ``stock_start + inflow - outflow`` (exactly),
- ``turnover`` = share of ``stock_end`` that was not in ``stock_start`` (new this quarter),
- ``recurrent_inflow`` = inflow of pupils who had an earlier episode,
- ``outcome_within_3m`` = share of the quarter's inflow with an outcome within 91 days of its
  counting day (missing while not every such episode can have been followed 91 days).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..disclosure import AUDIT_COLUMNS, MIN_COUNT, suppress_counts
from ..schema import OUTCOMES
from .protect import protect_levels

__all__ = ["quarterly", "tables", "MonitorTables", "monitored_episodes", "running_durations", "CASE_TYPES", "QUARTERLY_COLUMNS",
           "DURATION_COLUMNS"]

CASE_TYPES = {"LRV": ("LRV", 28), "LRV_3m": ("LRV", 91), "AV": ("AV", 0), "5a": ("5a", 0)}
"""Monitored case type -> (episode type, counting day)."""

DURATION_BANDS = (0, 91, 182, 365, np.inf)
DURATION_LABELS = ("< 3 months", "3-6 months", "6-12 months", "> 1 year")
COUNT_COLUMNS = ["stock_start", "inflow", "outflow", "stock_end", "recurrent_inflow"] + \
    [f"outflow_{o}" for o in OUTCOMES]


def monitored_episodes(cohort: Cohort, by: Literal["region", "school"] | None = "region",
                       data_end: str | pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per (episode, case type) it becomes: counting day ``a``, end ``b``, outcome, group.

    ``data_end`` is the last day the data cover (default: the latest ``followup_end`` of any pupil);
    an episode censored on it is still running.
    """
    e = cohort.episodes
    followup = cohort.pupils.set_index("pupil_id")["followup_end"]
    last = pd.Timestamp(data_end) if data_end is not None else followup.max()
    start = pd.to_datetime(e["start_date"])               # (an empty table may hold no dates at all)
    end_date = pd.to_datetime(e["end_date"]).fillna(followup.reindex(e["pupil_id"]).set_axis(e.index))
    censored = (e["outcome"] == "censored").to_numpy()
    running = censored & (end_date >= last).to_numpy()
    b = np.where(running, np.datetime64("NaT"), np.where(censored, end_date + pd.Timedelta(days=1), end_date))
    order = e.sort_values(["pupil_id", "start_date"]).index
    earlier = pd.Series(e.loc[order, "pupil_id"].duplicated().to_numpy(), index=order).reindex(e.index)
    if by == "region":
        group = cohort.schools.set_index("school_id")["region_id"].reindex(e["school_id"]).to_numpy()
    elif by == "school":
        group = e["school_id"].to_numpy()
    elif by is None:
        group = np.full(len(e), "all", dtype=object)
    else:
        raise ValueError(f"by: got {by!r}; expected 'region', 'school' or None")
    parts = []
    for case, (etype, day) in CASE_TYPES.items():
        m = (e["episode_type"] == etype).to_numpy()
        a = start[m] + pd.Timedelta(days=day)
        bb = pd.to_datetime(b[m])
        keep = bb.isna() | (a.to_numpy() < bb)
        parts.append(pd.DataFrame({
            "episode_id": e["episode_id"].to_numpy()[m][keep], "pupil_id": e["pupil_id"].to_numpy()[m][keep],
            "group": group[m][keep], "case_type": case, "start": start.to_numpy()[m][keep],
            "a": a.to_numpy()[keep], "b": bb[keep], "outcome": e["outcome"].astype(str).to_numpy()[m][keep],
            "recurrent": earlier.to_numpy()[m][keep]}))
    out = pd.concat(parts, ignore_index=True)
    out.attrs["data_end"] = last
    return out


def _ends(ep: pd.DataFrame) -> np.ndarray:
    """End ``b`` of each monitored episode, a far future date for one still running."""
    b = ep["b"].to_numpy()
    return np.where(pd.isna(b), np.datetime64("2262-01-01"), b).astype("datetime64[ns]")


def _quarters(first: pd.Timestamp, last: pd.Timestamp) -> pd.DatetimeIndex:
    """Whole quarters from the one holding ``first`` to the last one ending by ``last``."""
    q = pd.date_range(first.to_period("Q").start_time, last, freq="QS")
    return q[(q + pd.offsets.QuarterBegin(startingMonth=1)) <= last + pd.Timedelta(days=1)]


QUARTERLY_COLUMNS = ["quarter", "group", "case_type", "stock_start", "inflow", "outflow", "stock_end", "turnover",
                     "recurrent_inflow", "outcome_within_3m", *[f"outflow_{o}" for o in OUTCOMES]]
"""Columns of :func:`quarterly`."""

DURATION_COLUMNS = ["quarter", "group", "case_type", "duration", "count"]
"""Columns of :func:`running_durations`."""


def _empty(columns: list[str], counts: list[str]) -> pd.DataFrame:
    """A table without rows: text columns, whole-number ``counts`` and shares (floats)."""
    kinds = {c: "int64" if c in counts else "float64" if c in ("turnover", "outcome_within_3m") else object
             for c in columns}
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in kinds.items()})


HIDDEN_CODE = "x"
"""How ``verzuim monitor`` writes a hidden cell in its CSV files (an empty cell: does not apply)."""


@dataclass(frozen=True)
class MonitorTables:
    """The monitor's published tables of one grouping level, protected together.

    Attributes
    ----------
    quarterly : :func:`quarterly`'s table (hidden cells and cells that do not apply are missing).
    durations : :func:`running_durations`' table.
    hidden, durations_hidden : which missing cells are hidden (True) rather than not applicable:
        a bool frame of ``quarterly``'s shape and a bool Series over ``durations``' rows.
    audit : :func:`verzuimmodel.disclosure.audit` of every hidden cell of this level and the coarser
        ones (empty without disclosure control).
    """

    quarterly: pd.DataFrame
    durations: pd.DataFrame
    audit: pd.DataFrame
    hidden: pd.DataFrame | None = None
    durations_hidden: pd.Series | None = None

    def coded(self, code: str = HIDDEN_CODE) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The two tables with every hidden cell written as ``code`` ("x", as Statistics
        Netherlands marks a confidential cell) and only cells that do not apply (a share of
        nothing) left empty: what ``verzuim monitor`` writes to its CSV files."""
        q = self.quarterly.astype(object)
        d = self.durations.astype(object)
        if self.hidden is not None:
            q = q.mask(self.hidden.reindex(columns=q.columns, fill_value=False).to_numpy(), code)
        if self.durations_hidden is not None:
            d.loc[self.durations_hidden.to_numpy(), "count"] = code
        return q, d


LEVELS = {None: (None, "region"), "region": (None, "region"), "school": (None, "region", "school")}
"""The grouping levels protected together with each ``by``, coarsest first: the regions always,
because a region that cannot be protected widens the pattern of the total
(:func:`~verzuimmodel.monitor.protect.protect_levels`)."""


def tables(cohort: Cohort, by: Literal["region", "school"] | None = "region", *, start=None, end=None,
           data_end=None, min_count: int = MIN_COUNT, knows_status: bool = False) -> MonitorTables:
    """The quarterly table and the running durations, with disclosure control over both.

    Counts from 1 to ``min_count - 1`` are hidden, and so are further cells (secondary
    suppression) until no hidden count can be solved from the shown ones through the monitor's
    identities (stock and flow, outcome sums, duration bands, groups adding up to their region and
    to the total, shares with their denominators): :mod:`verzuimmodel.monitor.protect`. The
    total and the regions are protected whatever ``by`` (the schools too for ``by="school"``), the
    coarser levels first and kept, so the tables of every ``by`` on the same data can be published
    side by side.
    ``min_count=0`` gives raw counts. Arguments as :func:`quarterly`; ``knows_status`` as
    :func:`verzuimmodel.disclosure.audit`.
    """
    if by not in LEVELS:
        raise ValueError(f"by: got {by!r}; expected 'region', 'school' or None")
    levels = LEVELS[by] if min_count else (by,)
    raw = []
    for level in levels:
        ep = monitored_episodes(cohort, level, data_end)
        raw.append((str(level or "all"), _raw_quarterly(ep, start), _raw_durations(ep)))
    _, q, d = raw[levels.index(by)]
    audit = pd.DataFrame(columns=AUDIT_COLUMNS)
    if min_count and len(q):
        parents = [None] + [_parents(cohort, level) for level in levels[1:]]
        q, d, audit = protect_levels(raw, parents, min_count, knows_status, out=levels.index(by))
    elif min_count:
        q, d = suppress_counts(q, COUNT_COLUMNS, min_count), suppress_counts(d, ["count"], min_count)
    q = _within(q, start, end)[QUARTERLY_COLUMNS]
    if not min_count:
        return MonitorTables(q, d, audit)
    # hidden: missing here, known in the raw table (a share of nothing is missing in both)
    _, raw_q, raw_d = raw[levels.index(by)]
    raw_q = _within(raw_q, start, end)[QUARTERLY_COLUMNS]
    hidden = q.isna() & raw_q.notna().to_numpy()
    return MonitorTables(q, d, audit, hidden, d["count"].isna() & raw_d["count"].notna().to_numpy())


def _parents(cohort: Cohort, level: str) -> dict:
    """Each group of ``level`` -> its group one level up."""
    if level == "region":
        return {r: "all" for r in cohort.schools["region_id"].unique()} | {"all": "all"}
    return cohort.schools.set_index("school_id")["region_id"].to_dict()


def _raw_quarterly(ep: pd.DataFrame, start) -> pd.DataFrame:
    """Unsuppressed quarterly rows over every quarter with data (and from ``start`` if earlier)."""
    if ep.empty:
        return _empty(QUARTERLY_COLUMNS + ["n_new", "n_within_3m"], COUNT_COLUMNS + ["n_new", "n_within_3m"])
    early = start is not None and pd.Timestamp(start) < ep["a"].min()
    return _flows(ep, start if early else None, None)


def _within(q: pd.DataFrame, start, end) -> pd.DataFrame:
    """Rows of quarters from the one holding ``start`` to the last one ending by ``end``."""
    if not len(q) or (start is None and end is None):
        return q.reset_index(drop=True)
    per = pd.PeriodIndex(q["quarter"], freq="Q")
    keep = np.ones(len(q), dtype=bool)
    if start is not None:
        keep &= per >= pd.Timestamp(start).to_period("Q")
    if end is not None:
        keep &= per.end_time.normalize() <= pd.Timestamp(end)
    return q[keep].reset_index(drop=True)


def quarterly(cohort: Cohort, by: Literal["region", "school"] | None = "region", *, start=None, end=None,
              data_end=None, min_count: int = MIN_COUNT) -> pd.DataFrame:
    """Quarterly stock and flow per group and case type (see the module docstring).

    Parameters
    ----------
    by : ``"region"`` (default), ``"school"`` or None (everything together).
    start, end : first and last quarter to report (default: all quarters with data).
    data_end : last day covered by the data (default: the latest follow-up of any pupil).
    min_count : disclosure control; counts from 1 to ``min_count - 1`` are shown as missing and
        shares over fewer than ``min_count`` episodes too, and further cells are hidden where the
        table's identities would give a hidden count away (:func:`tables`; protected together with
        :func:`running_durations` and the coarser levels). ``min_count=0`` gives raw counts.

    Returns
    -------
    DataFrame: ``quarter, group, case_type, stock_start, inflow, outflow, stock_end, turnover,
    recurrent_inflow, outcome_within_3m, outflow_<outcome>...`` (:data:`QUARTERLY_COLUMNS`).
    Without any monitored episode (a cohort without episodes, or whose episodes never become a
    case) the table has these columns and no rows.
    """
    return tables(cohort, by, start=start, end=end, data_end=data_end, min_count=min_count).quarterly


def _flows(ep: pd.DataFrame, start, end) -> pd.DataFrame:
    """The unsuppressed rows of :func:`quarterly` from the monitored episodes ``ep`` (at least one),
    with the shares' numerators ``n_new`` (of ``turnover``) and ``n_within_3m`` (0 where the share
    is missing)."""
    last = ep.attrs["data_end"]
    q0 = pd.Timestamp(start) if start is not None else ep["a"].min()
    quarters = _quarters(q0, pd.Timestamp(end) if end is not None else last)
    edges = np.concatenate([quarters.to_numpy(), [(quarters[-1] + pd.offsets.QuarterBegin(startingMonth=1))
                                                 .to_datetime64()]])
    a = ep["a"].to_numpy()
    b_inf = _ends(ep)
    qa = np.searchsorted(edges, a, side="right") - 1          # quarter index of a (-1: before the first)
    qb = np.searchsorted(edges, b_inf, side="right") - 1
    rows = []
    nq = len(quarters)
    for (g, c), idx in ep.groupby(["group", "case_type"]).groups.items():
        ia, ib = qa[idx], qb[idx]
        aa, bb = a[idx], b_inf[idx]
        # a < b always, so #{a < q0 <= b} = #{a < q0} - #{b < q0}
        stock_start = np.searchsorted(np.sort(aa), edges[:-1]) - np.searchsorted(np.sort(bb), edges[:-1])
        counts = {
            "stock_start": stock_start,
            "inflow": np.bincount(ia[(ia >= 0) & (ia < nq)], minlength=nq),
            "outflow": np.bincount(ib[(ib >= 0) & (ib < nq)], minlength=nq),
            "recurrent_inflow": np.bincount(ia[(ia >= 0) & (ia < nq) & ep["recurrent"].to_numpy()[idx]],
                                            minlength=nq),
        }
        counts["stock_end"] = counts["stock_start"] + counts["inflow"] - counts["outflow"]
        new = np.bincount(ia[(ia >= 0) & (ia < nq) & (ib > ia)], minlength=nq)
        outcome = ep["outcome"].to_numpy()[idx]
        for o in OUTCOMES:
            sel = (outcome == o) & (ib >= 0) & (ib < nq)
            counts[f"outflow_{o}"] = np.bincount(ib[sel], minlength=nq)
        within = (bb - aa <= np.timedelta64(91, "D")) & (outcome != "censored")
        followed = edges[1:] + np.timedelta64(91, "D") <= np.datetime64(last) + np.timedelta64(1, "D")
        w = np.bincount(ia[(ia >= 0) & (ia < nq) & within], minlength=nq)
        with np.errstate(invalid="ignore", divide="ignore"):
            share3 = np.where(followed & (counts["inflow"] > 0), w / counts["inflow"], np.nan)
            turnover = np.where(counts["stock_end"] > 0, new / counts["stock_end"], np.nan)
        rows.append(pd.DataFrame({"quarter": quarters.to_period("Q").astype(str), "group": g, "case_type": c,
                                  **counts, "turnover": turnover, "outcome_within_3m": share3,
                                  "n_new": new, "n_within_3m": np.where(np.isnan(share3), 0, w)}))
    out = pd.concat(rows, ignore_index=True)
    order = {c: i for i, c in enumerate(CASE_TYPES)}
    return out.sort_values(["group", "case_type", "quarter"], key=lambda s: s.map(order) if s.name == "case_type"
                           else s).reset_index(drop=True)


def running_durations(cohort: Cohort, by: Literal["region", "school"] | None = "region", *, data_end=None,
                      min_count: int = MIN_COUNT) -> pd.DataFrame:
    """How long the running cases have lasted at the end of each quarter: counts per duration band.

    Columns: ``quarter, group, case_type, duration`` (band since the first day of absence), ``count``
    (:data:`DURATION_COLUMNS`); no rows without any monitored episode. Disclosure control as
    :func:`quarterly`, together with it (the bands add up to ``stock_end``).
    """
    return tables(cohort, by, data_end=data_end, min_count=min_count).durations


def _raw_durations(ep: pd.DataFrame) -> pd.DataFrame:
    """Unsuppressed :func:`running_durations` rows of the monitored episodes ``ep``."""
    if ep.empty:
        out = _empty(DURATION_COLUMNS, ["count"])
        out["duration"] = pd.Categorical([], categories=DURATION_LABELS, ordered=True)
        return out
    last = ep.attrs["data_end"]
    quarters = _quarters(ep["a"].min(), last)
    rows = []
    b_inf = _ends(ep)
    for q in quarters:
        q1 = (q + pd.offsets.QuarterBegin(startingMonth=1)).to_datetime64()
        run = (ep["a"].to_numpy() < q1) & (b_inf >= q1)
        days = (q1 - ep["start"].to_numpy()[run]) / np.timedelta64(1, "D")
        band = pd.cut(days, DURATION_BANDS, labels=DURATION_LABELS, right=False)
        t = pd.DataFrame({"group": ep["group"].to_numpy()[run], "case_type": ep["case_type"].to_numpy()[run],
                          "duration": band})
        c = t.groupby(["group", "case_type", "duration"], observed=False).size().rename("count").reset_index()
        c.insert(0, "quarter", str(q.to_period("Q")))
        rows.append(c)
    return pd.concat(rows, ignore_index=True)
