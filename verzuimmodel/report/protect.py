r"""Disclosure control of a report's count tables as one set of outputs.

The counts a report prints are cells of one :class:`~verzuimmodel.disclosure.CellSet` with the
identities a reader can use:

.. math::

    n_\text{episodes} &= \textstyle\sum_k n_k + n_\text{rest} \quad\text{(episodes by outcome, with "still
    running"; the rest, not in the analysis, implied)},
    \qquad n_\text{school} = n_\text{own school} + n_\text{other school},\\
    e_{k,3} + d_{k,3-6} &= e_{k,6},\quad e_{k,6} + d_{k,6-12} = e_{k,12},\quad
    e_{k,12} + d_{k,>12} = n_k \quad\text{(cumulative events: 3, 6, 12 months, total)},\\
    e_{\text{school},t} &= e_{\text{own},t} + e_{\text{other},t},

where the differences :math:`d` (events between two columns) are implied counts, protected like
printed ones. The same number printed in several rows (the episodes at risk at 3 months, in
every outcome's row; the exposed pupils, in every estimator's row; the pupils who received an
intervention, in both of its rows) is one cell. The schools table (on request) adds
:math:`\sum_\text{PO schools} n = n_\text{pupils}`, :math:`\sum_\text{VO schools} n =
n_\text{pupils in VO}` and :math:`\sum_\text{schools} e = n_\text{episodes}`, the unlisted schools
(fewer than 10 pupils) together an implied cell. A cumulative incidence is hidden with its count
of events, an effect with its number of treated pupils.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..disclosure import CellBuilder, CellSet, MIN_COUNT, hide, protect
from ..schema import OUTCOMES, RETURN_OUTCOMES

__all__ = ["protect_results"]

OVERVIEW_COUNTS = ("n_pupils", "n_pupils_vo", "n_episodes", "n_interventions")


def _raw(t: pd.DataFrame | None, column: str) -> np.ndarray:
    return t[column].to_numpy(dtype=np.int64) if t is not None else np.empty(0, dtype=np.int64)


def report_cells(overview: dict, outcome_counts: pd.DataFrame | None, curve_points: pd.DataFrame | None,
                 effects: pd.DataFrame | None, estimates: pd.DataFrame | None, school: str,
                 schools: pd.DataFrame | None = None, schools_rest: dict | None = None) -> CellSet:
    """The :class:`CellSet` of a report's count tables (unsuppressed tables; see the module docstring)."""
    b = CellBuilder()
    ov = {k: b.cells("overview", [i], k, [int(overview[k])]) for i, k in enumerate(OVERVIEW_COUNTS)}
    if outcome_counts is not None:
        oc = outcome_counts.reset_index(drop=True)
        n = b.cells("outcome_counts", np.arange(len(oc)), "n_episodes", _raw(oc, "n_episodes"))
        by = dict(zip(oc["outcome"], n))
        # the outcomes that partition the analysed episodes: own + other school, or back to school
        names = [o for o in OUTCOMES if o in by]
        if school in by and not all(o in by for o in RETURN_OUTCOMES):
            names = [school, *(o for o in names if o not in RETURN_OUTCOMES)]
        parts = [by[o] for o in names]
        if parts:
            # episodes not in the analysis (e.g. of a kind the return curves leave out): implied
            listed = int(oc.loc[oc["outcome"].isin(names), "n_episodes"].sum())
            rest = b.cells("outcome_counts", [-1], "not_analysed", [int(overview["n_episodes"]) - listed], "implied")
            b.equal(ov["n_episodes"], [np.array([p]) for p in parts] + [rest])
        if school in by and all(o in by for o in RETURN_OUTCOMES):
            b.equal(np.array([by[school]]), [np.array([by[o]]) for o in RETURN_OUTCOMES])
        if curve_points is not None and len(curve_points):
            cp = curve_points.reset_index(drop=True)
            ev = b.cells("curve_points", np.arange(len(cp)), "n_events", _raw(cp, "n_events"))
            risk = b.cells("curve_points", np.arange(len(cp)), "n_at_risk", _raw(cp, "n_at_risk"))
            first = cp.groupby("months")["outcome"].transform("first") == cp["outcome"]
            head = dict(zip(cp.loc[first, "months"], risk[first.to_numpy()]))
            others = ~first.to_numpy()
            b.same(np.array([head[m] for m in cp.loc[others, "months"]], dtype=np.int64), risk[others])
            key = {(o, m): i for o, m, i in zip(cp["outcome"], cp["months"], ev)}
            months = sorted(cp["months"].unique())
            for o in cp["outcome"].unique():
                if o not in by:
                    continue
                chain = [key[(o, m)] for m in months if (o, m) in key] + [by[o]]
                vals = [int(cp.loc[(cp["outcome"] == o) & (cp["months"] == m), "n_events"].iloc[0])
                        for m in months if (o, m) in key] + [int(oc.loc[oc["outcome"] == o, "n_episodes"].iloc[0])]
                for (lo, hi), (vlo, vhi) in zip(zip(chain, chain[1:]), zip(vals, vals[1:])):
                    d = b.cells("curve_points", [-1], f"events_between:{o}", [vhi - vlo], "implied")
                    b.equal(np.array([hi]), [np.array([lo]), d])
            if all((o, m) in key for o in (school, *RETURN_OUTCOMES) for m in months):
                for m in months:
                    b.equal(np.array([key[(school, m)]]), [np.array([key[(o, m)]]) for o in RETURN_OUTCOMES])
    if effects is not None and len(effects):
        ef = effects.reset_index(drop=True)
        nt = b.cells("effects", np.arange(len(ef)), "n_treated", _raw(ef, "n_treated"))
        first = ef.groupby("intervention")["n_treated"].transform(lambda s: s.index == s.index[0]).astype(bool)
        head = dict(zip(ef.loc[first, "intervention"], nt[first.to_numpy()]))
        rest = ~first.to_numpy()
        b.same(np.array([head[i] for i in ef.loc[rest, "intervention"]], dtype=np.int64), nt[rest])
    if estimates is not None and len(estimates):
        es = estimates.reset_index(drop=True)
        rows = np.arange(len(es))
        for c in ("n_obs", "n_clusters"):
            if c in es:
                b.cells("estimates", rows, c, es[c].fillna(0).to_numpy(dtype=np.int64))
        for c in ("n_exposed", "n_unexposed"):
            cells = b.cells("estimates", rows, c, _raw(es, c))
            b.same(np.full(len(es) - 1, cells[0]), cells[1:])
    if schools is not None and len(schools):
        sc = schools.reset_index(drop=True)
        rows = np.arange(len(sc))
        pupils = b.cells("schools", rows, "n_pupils", _raw(sc, "n_pupils"))
        episodes = b.cells("schools", rows, "n_episodes", _raw(sc, "n_episodes"))
        rest = schools_rest or {}
        # the schools not listed (fewer than 10 pupils) are implied: total minus the listed ones
        for level, total in (("po", "n_pupils"), ("vo", "n_pupils_vo")):
            hidden = b.cells("schools", [-1], f"unlisted_pupils:{level}", [int(rest.get(level, 0))], "implied")
            parts = np.concatenate([pupils[(sc["level"] == level).to_numpy()], hidden])
            b.group_sum(ov[total], parts, np.zeros(len(parts)))
        hidden = b.cells("schools", [-1], "unlisted_episodes", [int(rest.get("episodes", 0))], "implied")
        b.group_sum(ov["n_episodes"], np.concatenate([episodes, hidden]), np.zeros(len(episodes) + 1))
    return b.build()


def protect_results(overview: dict, outcome_counts, curve_points, effects, estimates, school: str,
                    schools: pd.DataFrame | None = None, schools_rest: dict | None = None,
                    min_count: int = MIN_COUNT):
    """The report's count tables with primary and secondary suppression applied together.

    Returns ``(overview, outcome_counts, curve_points, effects, estimates, schools, audit)``:
    hidden counts missing (``None`` in ``overview``); a cumulative incidence whose count of events
    is hidden, and an effect whose number of treated pupils is hidden, are missing too.
    ``schools``: the listed schools (``level``, ``n_pupils``, ``n_episodes``); ``schools_rest``:
    the pupils of the unlisted PO and VO schools and their episodes (``po``, ``vo``,
    ``episodes``), implied by the overview's totals.
    """
    cs = report_cells(overview, outcome_counts, curve_points, effects, estimates, school, schools, schools_rest)
    prot = protect(cs, min_count)
    h = prot.hidden
    c = cs.cells
    ov = dict(overview)
    for k in OVERVIEW_COUNTS:
        i = np.flatnonzero(((c["table"] == "overview") & (c["column"] == k)).to_numpy())[0]
        ov[k] = None if h[i] else int(overview[k])
    out = [ov]
    for name, t in (("outcome_counts", outcome_counts), ("curve_points", curve_points), ("effects", effects),
                    ("estimates", estimates), ("schools", schools)):
        out.append(None if t is None else hide(t.reset_index(drop=True), cs, h, name))
    _, oc, cp, ef, es, _ = out
    if cp is not None:
        cp.loc[cp["n_events"].isna(), ["estimate", "conf_low", "conf_high"]] = np.nan
    if ef is not None:
        ef.loc[ef["n_treated"].isna(), ["estimate", "conf_low", "conf_high"]] = np.nan
    return (*out, prot.audit)
