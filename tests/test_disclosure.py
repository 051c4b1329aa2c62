"""Disclosure control against differencing: the attacker, the audit and secondary suppression.

The attacker solves the published identities for the hidden cells (linear programming over the
shown values, the identities and non-negativity: the tightest interval of each hidden cell). The
tests show that primary suppression alone gives hidden counts away — on a hand-built table and on
the monitor and report of simulated cohorts — and that no hidden cell of any output the package
writes can be narrowed below the suppression threshold after secondary suppression.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

import verzuimmodel as vm
from verzuimmodel.disclosure import (MIN_COUNT, CellBuilder, DisclosureWarning, audit, hide, label, primary, protect,
                                     protect_hierarchy, suppress_counts, suppress_shares)
from verzuimmodel.monitor import quarterly, running_durations, tables
from verzuimmodel.monitor.protect import monitor_cells
from verzuimmodel.monitor.stock import _parents, _raw_durations, _raw_quarterly, monitored_episodes
from verzuimmodel.schema import OUTCOMES

WIDTH = MIN_COUNT - 2
"""A hidden cell must not be narrowed below the width of 1..9."""


# -- the attacker --------------------------------------------------------------------------------

def attack(table: pd.DataFrame) -> dict[tuple[int, str], int]:
    """Hidden cells of a published monitor table that its identities give away exactly.

    Uses only what is printed: stock_end = stock_start + inflow - outflow, outflow = sum of the
    outflow by outcome, and stock_start of a quarter = stock_end of the one before. Repeats until
    nothing new is found.
    """
    t = table.reset_index(drop=True)
    known = {(i, c): int(v) for i, row in t.iterrows() for c, v in row.items()
             if c in ("stock_start", "inflow", "outflow", "stock_end", *[f"outflow_{o}" for o in OUTCOMES])
             and not pd.isna(v)}
    rules = []
    for i in range(len(t)):
        rules.append([(1, (i, "stock_end")), (-1, (i, "stock_start")), (-1, (i, "inflow")), (1, (i, "outflow"))])
        rules.append([(1, (i, "outflow")), *[(-1, (i, f"outflow_{o}")) for o in OUTCOMES]])
        if i + 1 < len(t) and t.loc[i + 1, "group"] == t.loc[i, "group"] \
                and t.loc[i + 1, "case_type"] == t.loc[i, "case_type"]:
            rules.append([(1, (i, "stock_end")), (-1, (i + 1, "stock_start"))])
    found = {}
    changed = True
    while changed:
        changed = False
        for rule in rules:
            unknown = [(a, k) for a, k in rule if k not in known]
            if len(unknown) == 1:
                a, k = unknown[0]
                known[k] = -sum(b * known[j] for b, j in rule if j != k) // a
                found[k] = known[k]
                changed = True
    return found


def small_table() -> CellBuilder:
    """One quarter published as in the issue: 16, < 10, 0, 17 (inflow = 1)."""
    b = CellBuilder()
    s0, i, o, s1 = (b.cells("q", [0], c, [v]) for c, v in
                    (("stock_start", 16), ("inflow", 1), ("outflow", 0), ("stock_end", 17)))
    b.identity([(1, s1), (-1, s0), (-1, i), (1, o)])
    return b


def test_primary_suppression_alone_is_broken_and_secondary_repairs_it():
    cs = small_table().build()
    a = audit(cs, primary(cs), exact=True)
    assert a[["column", "lower", "upper", "safe"]].values.tolist() == [["inflow", 1, 1, False]]
    p = protect(cs)
    assert p.safe and p.hidden.sum() == 2 and p.secondary.sum() == 1
    exact = audit(cs, p.hidden, exact=True)
    assert exact["safe"].all() and (exact["upper"] - exact["lower"] >= WIDTH).all()


def test_audit_bounds_match_a_hand_solved_table():
    # total 30 = a + b + c with a = 3, b = 12 hidden and c = 15 shown: a + b = 15
    b = CellBuilder()
    tot = b.cells("t", [0], "total", [30])
    parts = [b.cells("t", [0], c, [v]) for c, v in (("a", 3), ("b", 12), ("c", 15))]
    b.equal(tot, parts)
    cs = b.build()
    hidden = np.array([False, True, True, False])
    a = audit(cs, hidden, exact=True).set_index("column")
    assert a.loc["a", ["lower", "upper"]].tolist() == [0, 15]      # what the outputs say: >= 0
    strict = audit(cs, hidden, exact=True, knows_status=True).set_index("column")
    assert strict.loc["a", ["lower", "upper"]].tolist() == [1, 9]   # an attacker who knows a < 10
    assert strict.loc["b", ["lower", "upper"]].tolist() == [6, 14]


def _two_level_set():
    """A total T = 13 = A + B (level 0: T, and U = 11, V = 10 shown) with region cells A = 2 and
    B = 11 (level 1), where V <= B <= U (B's pupils include V's and are among U's). With T shown,
    A = T - B lies in [2, 3] whatever level 1 hides: only hiding T protects A."""
    b = CellBuilder()
    t, u, v = (b.cells("all", [0], c, [x], level=0) for c, x in (("T", 13), ("U", 11), ("V", 10)))
    a, bb = (b.cells("region", [0], c, [x], level=1) for c, x in (("A", 2), ("B", 11)))
    b.equal(t, [a, bb])
    b.at_most(bb, u)
    b.at_most(v, bb)
    return b.build()


def test_a_region_that_cannot_be_protected_widens_the_total():
    cs = _two_level_set()
    with pytest.warns(DisclosureWarning):                       # without backtracking: A is pinned to 2..4
        hidden, prot = protect_hierarchy(cs, backtrack_levels=1)
    assert not hidden[0] and not prot.safe
    bad = prot.audit[~prot.audit["safe"]].set_index("column")
    assert bad.loc["A", ["lower", "upper"]].tolist() == [2, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hidden, prot = protect_hierarchy(cs)
    assert prot.safe and hidden[0] and hidden[3]                 # T hidden at level 0 (and A)
    assert audit(cs, hidden)["safe"].all()


def test_cumulative_columns_protect_the_difference():
    # events by 12 months 27, in total 28: one event after 12 months (an implied count)
    b = CellBuilder()
    e12 = b.cells("t", [0], "by_12m", [27])
    tot = b.cells("t", [0], "total", [28])
    d = b.cells("t", [0], "after_12m", [1], "implied")
    b.equal(tot, [e12, d])
    cs = b.build()
    assert not primary(cs).any()
    bad = audit(cs, primary(cs))
    assert bad["column"].tolist() == ["after_12m"] and not bad["safe"].any()
    p = protect(cs)
    assert p.safe and p.hidden.sum() == 1


def test_cellset_rejects_identities_the_values_break():
    b = small_table()
    b.equal(b.cells("q", [1], "x", [3]), [b.cells("q", [1], "y", [4])])
    with pytest.raises(ValueError, match="break 1 identities"):
        b.build()


def test_single_cell_rules_still_work():
    t = pd.DataFrame({"n": [0, 3, 12], "share": [0.1, 0.5, 0.25]})
    out = suppress_shares(suppress_counts(t, ["n"]), "share", "n")
    assert out["n"].isna().tolist() == [False, True, False]
    assert out["share"].isna().tolist() == [True, True, False]
    assert label(None) == f"< {MIN_COUNT}" and label(12) == "12"


def test_hide_sets_hidden_cells_missing_never_zero():
    b = small_table()
    cs = b.build()
    t = pd.DataFrame({"stock_start": [16], "inflow": [1], "outflow": [0], "stock_end": [17]})
    out = hide(t, cs, protect(cs).hidden, "q")
    # the cheapest protection hides the zero beside the 1: both missing, the stocks shown
    assert out["inflow"].isna().all() and out["outflow"].isna().all()
    assert str(out["inflow"].dtype) == "Int64" and out[["stock_start", "stock_end"]].values.tolist() == [[16, 17]]


# -- the monitor ---------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=[1, 2, 3])
def cohort(request):
    """A region of 12 PO and 3 VO schools over 4 cohorts: small enough for the school level."""
    scen = vm.Scenario.default()
    scen = dataclasses.replace(scen, population=dataclasses.replace(scen.population, n_po_schools=12,
                                                                    n_vo_schools=3, n_cohorts=4))
    return vm.simulate(scen, seed=request.param)


@pytest.fixture(scope="module", params=[1, 2, 3])
def region(request):
    """The calibrated region (about 40 PO and 8 VO schools)."""
    return vm.simulate(vm.Scenario.default(), seed=request.param)


def test_primary_only_monitor_tables_are_attacked(region):
    cohort = region
    raw = quarterly(cohort, by=None, min_count=0)
    primary_only = suppress_counts(raw, ["stock_start", "inflow", "outflow", "stock_end",
                                         *[f"outflow_{o}" for o in OUTCOMES]])
    found = attack(primary_only)
    assert found                                                 # cells recovered exactly ...
    for (i, c), v in found.items():
        assert raw.loc[i, c] == v and 0 <= v                     # ... and they are the true values
    assert any(0 < v < MIN_COUNT for v in found.values())
    # protected: no hidden count recovered (a hidden zero may come out as 0: zeros are shown anyway)
    assert not any(attack(quarterly(cohort, by=None)).values())
    mt = tables(cohort, "region")
    assert not any(attack(mt.quarterly).values()) and mt.audit["safe"].all()


@pytest.mark.parametrize("by", [None, "region", "school"])
def test_every_monitor_output_passes_the_audit(cohort, by):
    with warnings.catch_warnings():
        warnings.simplefilter("error")                           # a DisclosureWarning fails the test
        mt = tables(cohort, by)
    a = mt.audit
    assert len(a) and a["safe"].all()
    assert (a["upper"] - a["lower"] >= WIDTH).all()
    # the outputs of separate runs (this ``by`` and every coarser one) audited together, from
    # what they print only: nothing narrower than the threshold
    levels = [None, "region", "school"][: [None, "region", "school"].index(by) + 1]
    raw = []
    for level in levels:
        ep = monitored_episodes(cohort, level)
        raw.append((str(level or "all"), _raw_quarterly(ep, None), _raw_durations(ep)))
    cs = monitor_cells(raw, [None] + [_parents(cohort, lv) for lv in levels[1:]])
    recheck = audit(cs, _printed_hidden(cohort, cs, levels))
    assert recheck["safe"].all() and len(recheck) >= len(a[a["table"].str.endswith(str(by or "all"))])
    q = mt.quarterly
    # hidden counts are missing, never 0; shown counts are 0 or at least MIN_COUNT
    counts = q[["stock_start", "inflow", "outflow", "stock_end"]].stack()
    assert not ((counts > 0) & (counts < MIN_COUNT)).any()
    assert q["stock_end"].isna().sum() + (q["stock_end"] >= 0).sum() == len(q)


def test_programmes_over_groups_of_quarters_prove_the_same(region, monkeypatch):
    """The audit of a large set solves programmes over a few quarters at a time first: what they
    prove safe is safe, and with every cell proved (the default) the audit is the same."""
    import importlib

    solver = importlib.import_module("verzuimmodel.disclosure._solver")
    raw = [("all", _raw_quarterly(monitored_episodes(region, None), None),
            _raw_durations(monitored_episodes(region, None)))]
    cs = monitor_cells(raw, [None])
    hidden = primary(cs)                            # primary suppression only: many cells unsafe
    whole = audit(cs, hidden)
    monkeypatch.setattr(solver, "GROUPS_FROM", 0)
    grouped = audit(cs, hidden)
    pd.testing.assert_series_equal(grouped["safe"], whole["safe"])
    quick = audit(cs, hidden, prove_unsafe=0)       # the search's mode: what is left counts as unsafe
    assert (whole["safe"] | ~quick["safe"]).all() and quick["safe"].sum() > 0.5 * whole["safe"].sum()
    assert 0 < (~whole["safe"]).sum() < len(whole)


def _printed_hidden(cohort, cs, levels) -> np.ndarray:
    """The cells printed missing by separate monitor runs, one per level."""
    hidden = np.zeros(cs.n, dtype=bool)
    for level in levels:
        mt = tables(cohort, level)
        name = str(level or "all")
        for table, t in ((f"quarterly/{name}", mt.quarterly), (f"durations/{name}", mt.durations)):
            sel = (cs.cells["table"] == table).to_numpy() & cs.published
            rows, cols = cs.cells.loc[sel, "row"].to_numpy(), cs.cells.loc[sel, "column"].to_numpy()
            hidden[np.flatnonzero(sel)] = [pd.isna(t.iloc[r][c]) for r, c in zip(rows, cols)]
    return hidden


def test_region_and_total_runs_are_one_publication(cohort):
    """``--by region`` and ``--by all`` on the same data: the totals agree cell for cell with the
    region rows, so differencing the two runs gives nothing away."""
    total = quarterly(cohort, by=None).set_index(["quarter", "case_type"])
    region = quarterly(cohort, by="region")
    assert region["group"].nunique() == 1
    region = region.set_index(["quarter", "case_type"]).drop(columns="group")
    pd.testing.assert_frame_equal(total.drop(columns="group"), region, check_dtype=False)


def test_shares_are_hidden_with_their_numerator(cohort):
    raw = quarterly(cohort, by=None, min_count=0)
    q = quarterly(cohort, by=None)
    shown = q["turnover"].notna() & q["stock_end"].notna()
    new = (raw.loc[shown, "turnover"] * raw.loc[shown, "stock_end"]).round()
    old = raw.loc[shown, "stock_end"] - new
    assert not ((new > 0) & (new < MIN_COUNT)).any() and not ((old > 0) & (old < MIN_COUNT)).any()
    assert q.loc[q["stock_end"].isna(), "turnover"].isna().all()
    within = raw["outcome_within_3m"] * raw["inflow"]
    ok = q["outcome_within_3m"].notna()
    assert not ((within[ok].round() > 0) & (within[ok].round() < MIN_COUNT)).any()
    assert q.loc[q["inflow"].isna(), "outcome_within_3m"].isna().all()


def test_durations_and_stock_hidden_together(cohort):
    q = quarterly(cohort, by=None).set_index(["quarter", "case_type"])["stock_end"]
    d = running_durations(cohort, by=None)
    sums = d.groupby(["quarter", "case_type"])["count"]
    one_hidden = sums.apply(lambda s: s.isna().sum() == 1)
    # a stock shown with exactly one band hidden would give that band away
    common = one_hidden.index.intersection(q.index)
    assert not (one_hidden[common] & q[common].notna()).any()


def test_monitor_plot_marks_hidden_cells(cohort):
    import matplotlib

    matplotlib.use("Agg")
    from verzuimmodel import plotting

    q = quarterly(cohort, by="school")
    fig = plotting.stock_flow(q, "LRV")
    marks = [c for c in fig.axes[0].collections if c.get_label() == "afgeschermd"]
    assert marks and len(marks[0].get_offsets()) > 0
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert all(np.isnan(h) or h == 0 or h >= MIN_COUNT for h in heights)


# -- the report ----------------------------------------------------------------------------------

def test_report_tables_pass_the_audit(cohort):
    from verzuimmodel.report.results import collect

    res = collect(cohort, sections=["return", "approach", "monitor", "schools"], n_sims=0)
    assert res.audit is not None and len(res.audit) and res.audit["safe"].all()
    assert res.schools is not None and len(res.schools)          # the schools table is in the audited set
    assert (res.audit["upper"] - res.audit["lower"] >= WIDTH).all()
    if res.monitor_audit is not None and len(res.monitor_audit):
        assert res.monitor_audit["safe"].all()
    oc = res.outcome_counts.set_index("outcome")["n_episodes"]
    cp = res.curve_points
    for o, n in oc.items():        # cumulative columns: no shown pair differs by 1..9
        vals = [*cp.loc[cp["outcome"] == o].sort_values("months")["n_events"], n]
        for a, b in zip(vals, vals[1:]):
            if not (pd.isna(a) or pd.isna(b)):
                assert not 0 < b - a < MIN_COUNT
    assert cp.loc[cp["n_events"].isna(), "estimate"].isna().all()


def test_report_schools_table_protects_the_unlisted_schools():
    """Before: with one school unlisted (fewer than 10 pupils), the overview's total minus the listed
    schools gives its pupils and its episodes away. After: further cells are hidden until no
    hidden or implied count can be narrowed below 1..9."""
    from verzuimmodel.report.protect import protect_results, report_cells

    overview = {"n_pupils": 206, "n_pupils_vo": 120, "n_episodes": 37, "n_interventions": 15}
    schools = pd.DataFrame({"school_id": ["a", "b", "c", "d"], "level": ["po", "po", "po", "vo"],
                            "n_pupils": [80, 70, 50, 120], "n_episodes": [12, 10, 11, 0]})
    rest = {"po": 6, "vo": 0, "episodes": 4}            # one unlisted PO school: 6 pupils, 4 episodes
    cs = report_cells(overview, None, None, None, None, "school", schools, rest)
    before = audit(cs, primary(cs))
    unsafe = before[~before["safe"]]
    assert set(unsafe["column"]) >= {"unlisted_pupils:po", "unlisted_episodes"}
    *_, shown, result = protect_results(overview, None, None, None, None, "school", schools, rest)
    assert result["safe"].all() and (result["upper"] - result["lower"] >= WIDTH).all()
    assert shown["n_pupils"].isna().any() and shown["n_episodes"].isna().any()


def test_report_primary_only_would_be_attacked(monkeypatch):
    """Before: the report's count tables with primary suppression only give hidden or implied
    counts away (a cumulative column against the total, outcomes against all episodes)."""
    from verzuimmodel.report import results
    from verzuimmodel.report.protect import report_cells

    monkeypatch.setattr(results, "_protect", lambda res: None)
    res = results.collect(vm.simulate(vm.Scenario.default(), seed=1), sections=["return", "approach"], n_sims=0)
    cs = report_cells(res.overview, res.outcome_counts, res.curve_points, res.effects, res.estimates,
                      results.RETURN_TO_SCHOOL)
    before = audit(cs, primary(cs))
    assert (~before["safe"]).any()
    after = protect(cs)
    assert after.safe and audit(cs, after.hidden)["safe"].all()
