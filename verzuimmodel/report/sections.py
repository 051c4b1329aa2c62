"""Turn :class:`~verzuimmodel.report.results.Results` into the template context of each section.

Code here only chooses *which* message to show and formats numbers (:mod:`.text`); every word
comes from the message files (``messages/<lang>.toml``) and the templates. Tables are handed to the
templates as :class:`Table` objects whose cells know their kind: ``count`` cells (pupils or
episodes) carry their value in ``data-value`` and are already disclosure-controlled; a suppressed
cell reads "afgeschermd" and its table gets a legend saying what that means. The summary is built
in :mod:`.summary`, the glossary in :mod:`.glossary`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..disclosure import MIN_COUNT
from ..effects.sensitivity import evalue_sentence, evalue_text
from ..schema import OUTCOMES
from .results import APPROACH_PREFIX, MONTHS, RETURN_TO_SCHOOL, Results
from .summary import summary
from .trial_text import trial_section
from .text import (LANGUAGES, Cell, Fmt, Messages, Table, _count, _est, _missing, _num, _suppressed, _text,
                   messages)
from .words import approach_evalue

__all__ = ["Messages", "messages", "Fmt", "Table", "Cell", "context", "LANGUAGES"]

# =============================================================================================
# the context
# =============================================================================================

def context(res: Results, m: Messages, sections: list[str], figures: dict[str, dict], version: str) -> dict:
    """Everything the templates need: formatted text, tables and figures, section by section."""
    f = Fmt(m)
    ov = res.overview
    meta = m["meta"]
    if ov["simulated"]:
        source = m.fmt("meta.source_simulated", first=f.year(ov["first_year"]), last=f.year(ov["last_year"]))
    else:
        source = m.fmt("meta.source_data", first=f.year(ov["first_year"]), last=f.year(ov["last_year"]))
    ctx: dict[str, Any] = {
        "lang": meta["lang"], "m": m, "title": meta["title"], "subtitle": meta["subtitle"], "source": source,
        "generated": m.fmt("meta.generated", version=version, min=MIN_COUNT),
        "sections": [(name, m["sections"][name]) for name in sections],
        "figures": figures, "msg": m.fmt, "min_count": MIN_COUNT,
    }
    builders = {"summary": summary, "glossary": lambda *_: {}, "return": _return, "approach": _approach,
                "quality": _quality, "methods": _methods, "monitor": _monitor, "signal": _signal,
                "schools": _schools}     # the glossary is filled in by render_html, from the rendered text
    ctx["sec"] = {name: builders[name](res, m, f) for name in sections}
    return ctx


# -- time to return -----------------------------------------------------------------------------

def _return(res: Results, m: Messages, f: Fmt) -> dict:
    r = m["return"]
    out: dict[str, Any] = {"note": ""}
    if "return" in res.errors:
        err = res.errors["return"]
        out["note"] = (m.fmt(f"return.{err}", min=MIN_COUNT) if err in ("too_few", "no_episodes")
                       else m.fmt("return.error", error=err))
    pts = res.curve_points
    outcomes = [RETURN_TO_SCHOOL, *OUTCOMES]
    if pts is not None:
        t = Table(r["table_caption"], [(r["col_outcome"], "text")]
                  + [(m.fmt("return.col_months", months=k), "num") for k in MONTHS],
                  note=m.fmt("return.table_note", min=MIN_COUNT))
        for outcome in outcomes:
            p = pts[pts["outcome"] == outcome].set_index("months")
            if p.empty:
                continue
            t.add([_text(m.label("outcomes", outcome))]
                  + [_est(f, p.loc[k, "estimate"], p.loc[k, "conf_low"], p.loc[k, "conf_high"],
                          suppressed=_missing(p.loc[k, "estimate"]), kind="pct") for k in MONTHS],
                  "total" if outcome == RETURN_TO_SCHOOL else "")
        out["table"] = t
    if res.outcome_counts is not None:
        t = Table(r["counts_caption"], [(r["col_outcome"], "text")]
                  + [(m.fmt("return.col_months", months=k), "count") for k in MONTHS]
                  + [(r["col_n_episodes"], "count")], note=m.fmt("return.counts_note", min=MIN_COUNT))
        counts = res.outcome_counts.set_index("outcome")["n_episodes"]
        for outcome in outcomes:
            if outcome not in counts.index:
                continue
            p = pts[pts["outcome"] == outcome].set_index("months") if pts is not None else pd.DataFrame()
            by = [_count(f, p.loc[k, "n_events"]) if k in p.index else _num(f.missing) for k in MONTHS]
            t.add([_text(m.label("outcomes", outcome)), *by, _count(f, counts[outcome])],
                  "total" if outcome == RETURN_TO_SCHOOL else "")
        out["counts"] = t
    if res.trials is not None or res.trial_notes:
        out["trials"] = trial_section(res, m, f)
    eff = res.effects
    if eff is not None and not eff.empty:
        wide = eff.pivot(index="intervention", columns="method")
        has_truth = eff["true_value"].notna().any()
        cols = [(r["col_intervention"], "text"), (r["col_n_treated"], "count"), (r["col_tv"], "num"),
                (r["col_naive"], "num")]
        if has_truth:
            cols.append((r["col_truth"], "num"))
        t = Table(r["effects_caption"], cols, note=m.fmt("return.effects_note", min=MIN_COUNT))
        for iv in eff["intervention"].unique():
            w = wide.loc[iv]
            small = _missing(w[("n_treated", "time_varying")])
            cells = [_text(m.label("interventions", iv)), _count(f, w[("n_treated", "time_varying")]),
                     _est(f, w[("estimate", "time_varying")], w[("conf_low", "time_varying")],
                          w[("conf_high", "time_varying")], suppressed=small),
                     _est(f, w[("estimate", "naive")], w[("conf_low", "naive")], w[("conf_high", "naive")],
                          suppressed=small)]
            if has_truth:
                cells.append(_num(f.ratio(w[("true_value", "time_varying")])))
            t.add(cells)
        out["effects"] = t
    return out


# -- the PO approach ----------------------------------------------------------------------------

def _approach(res: Results, m: Messages, f: Fmt) -> dict:
    a = m["approach"]
    out: dict[str, Any] = {"note": "", "skipped": []}
    if res.skipped is not None:
        out["skipped"] = [(m.label("estimators", r["estimator"]), r["estimator"],
                           r["error"] if r["error"] else a["not_finite"]) for _, r in res.skipped.iterrows()]
    est = res.estimates
    if est is None:
        out["note"] = m.fmt("approach.none")
        return out
    has_truth = est["true_value"].notna().any()
    known = m.get("estimators", {})
    cols = [(a["col_estimator"], "text"), (a["col_design"], "text"), (a["col_estimate"], "num")]
    if has_truth:
        cols.append((a["col_truth"], "num"))
    cols += [(a["col_evalue"], "num"), (a["col_n_obs"], "count"), (a["col_n_clusters"], "count")]
    t = Table(a["table_caption"], cols, note=m.fmt("approach.table_note", min=MIN_COUNT))
    for _, r in est.iterrows():
        label = m.label("estimators", r["estimator"])
        if r["primary"]:
            label = m.fmt("approach.primary_label", label=label)
        if r["cautionary"]:
            label = m.fmt("approach.cautionary_label", label=label)
        suppressed = _missing(r["estimate"]) and (_missing(r["n_exposed"]) or _missing(r["n_unexposed"]))
        design = known.get(r["estimator"], {}).get("design", a["design_unknown"])
        cells = [_text(label), _text(design),
                 _est(f, r["estimate"], r["conf_low"], r["conf_high"], suppressed=suppressed)]
        if has_truth:
            cells.append(_num(f.ratio(r["true_value"])))
        e = None if r["cautionary"] else approach_evalue(r)
        cells += [_num(f.missing if e is None else f"{evalue_text(e.point, 1, f.decimal)} "
                                                   f"({evalue_text(e.ci, 1, f.decimal)})"),
                  _count(f, r["n_obs"]), _count(f, r["n_clusters"])]
        t.add(cells, "cautionary" if r["cautionary"] else ("primary" if r["primary"] else ""))
    out["table"] = t
    first = est.iloc[0]
    out["exposure"] = m.fmt("approach.exposure", n_exposed=f.count_text(first["n_exposed"]),
                            n_unexposed=f.count_text(first["n_unexposed"]))
    if res.primary is not None:
        out["evalue"] = _approach_sentence(est.set_index("estimator").loc[res.primary], m)
    names = [*est["estimator"], *(res.skipped["estimator"] if res.skipped is not None else [])]
    estimand = dict(zip(est["estimator"], est["estimand"]))
    out["models"] = [(m.label("estimators", n), known[n]["model"] if n in known else a["model_unknown"],
                      m.label("estimands", estimand[n]) if n in estimand else "",
                      known[n]["design"] if n in known else a["design_unknown"]) for n in names]
    out["cautionary"] = bool(est["cautionary"].any())
    out["design"] = m.label("designs", res.overview["design"] or "unknown")
    out["primary"] = m.label("estimators", res.primary) if res.primary else None
    return out


def _approach_sentence(r, m: Messages) -> str:
    """The E-value sentence of the PO approach's primary estimate ("" when it has none)."""
    e = approach_evalue(r)
    if e is None:
        return ""
    a = m["approach"]
    return evalue_sentence(float(e.point), float(e.ci), a["evalue_outcome"], m["meta"]["lang"],
                           exposure_label=a["evalue_exposure"])


# -- quality of the evidence --------------------------------------------------------------------

def _quality(res: Results, m: Messages, f: Fmt) -> dict:
    q = m["quality"]
    out: dict[str, Any] = {"status": res.diagnosis_status, "note": "", "tables": [], "failed": []}
    if res.diagnosis is None:
        out["note"] = m.fmt(f"quality.status_{res.diagnosis_status}", error=res.diagnosis_error or "")
        return out
    dg = res.diagnosis
    approach = dg["estimand"].astype(str).str.startswith(APPROACH_PREFIX)
    for part, rows in (("approach", dg[approach]), ("interventions", dg[~approach])):
        if rows.empty:
            continue
        cols = [(q["col_estimator"], "text"), (q["col_true"], "num"), (q["col_mean"], "num"),
                (q["col_bias"], "num"), (q["col_coverage"], "num"), (q["col_power"], "num"), (q["col_rmse"], "num")]
        regional = res.design_regions > 1 and "power_region" in rows.columns     # power pooled over the regions
        if regional:
            cols.append((q["col_power_region"], "num"))
        t = Table(m.fmt(f"quality.table_caption_{part}", n_sims=f.count(res.n_sims)), cols, note=q["table_note"])
        for _, r in rows.iterrows():
            back = np.exp if r["scale"] == "log" else (lambda x: x)
            name = r["estimator"]
            label = m.label("estimators", name)
            if name == res.primary:
                label = m.fmt("approach.primary_label", label=label)
            t.add([_text(label), _num(f.ratio(back(r["true_value"]))), _num(f.ratio(back(r["mean_estimate"]))),
                   _num(f"{f.signed(r['bias'])} (±{f.number(r['bias_mcse'], 3)})"),
                   _num(f"{f.pct(r['coverage'])} (±{f.pct_number(r['coverage_mcse'])})"),
                   _num(f"{f.pct(r['power'])} (±{f.pct_number(r['power_mcse'])})"),
                   _num(f.number(r["rmse"], 3)),
                   *([_num(f"{f.pct(r['power_region'])} (±{f.pct_number(r['power_region_mcse'])})")] if regional
                     else [])], "cautionary" if r["cautionary"] else "")
            if r["n_failed"]:
                out["failed"].append(m.fmt("quality.failed", estimator=m.label("estimators", name),
                                           failed=f.count(int(r["n_failed"])), n=f.count(int(r["n_sims"]))))
        out["tables"].append(t)
    design = m.label("designs", res.overview["design"] or "unknown")
    if res.design_regions > 1:                   # one average region of a national design, power pooled
        region = res.design_scenario.one_region().population
        out["intro"] = m.fmt("quality.intro_regional", n_sims=f.count(res.n_sims), design=design,
                             n_po=f.count(region.n_po_schools), n_vo=f.count(region.n_vo_schools),
                             k=f.count(res.design_regions))
    elif res.design_source == "fitted":            # regions like the user's: as many schools (not pupils: a count)
        scen = res.design_scenario
        design = m.label("designs", res.overview["design"] or scen.approach.design)     # the roll-out it found
        out["intro"] = m.fmt("quality.intro_fitted", n_sims=f.count(res.n_sims), design=design,
                             n_po=f.count(scen.population.n_po_schools), n_vo=f.count(scen.population.n_vo_schools))
    else:
        out["intro"] = m.fmt("quality.intro_done", n_sims=f.count(res.n_sims), design=design)
    return out


# -- data and methods ---------------------------------------------------------------------------

def _methods(res: Results, m: Messages, f: Fmt) -> dict:
    ov = res.overview
    data = m.fmt("methods.data", n_po=f.count(ov["n_po_schools"]), n_vo=f.count(ov["n_vo_schools"]),
                 n_pupils=f.count_text(ov["n_pupils"]), n_pupils_vo=f.count_text(ov["n_pupils_vo"]),
                 n_episodes=f.count_text(ov["n_episodes"]), n_interventions=f.count_text(ov["n_interventions"]),
                 first=f.year(ov["first_year"]), last=f.year(ov["last_year"]))
    if ov["simulated"]:          # the technical source: here, not in the summary or the header
        data += " " + m.fmt("methods.data_simulated", scenario=ov["scenario"] or "", seed=ov["seed"])
    out: dict[str, Any] = {"data": data, "simulated": ov["simulated"]}
    cal = res.calibration
    if cal is not None and not cal.empty:
        c = m["methods"]
        t = Table(c["calibration_caption"], [(c["col_target"], "text"), (c["col_published"], "num"),
                                             (c["col_range"], "num"), (c["col_simulated"], "num"),
                                             (c["col_within"], "text"), (c["col_use"], "text")],
                  note=c["calibration_note"])
        for _, r in cal.iterrows():
            within = r["within_range"]
            t.add([_text(m.get("targets", {}).get(r["target_id"], r["target_id"])), _num(f.plain(r["target"])),
                   _num(f.interval(r["low"], r["high"], "plain") if not _missing(r["low"]) else f.missing),
                   _num(f.plain(r["simulated"])),
                   _text(f.missing if within is pd.NA or _missing(within) else
                         (m["meta"]["yes"] if within else m["meta"]["no"])),
                   _text(m.label("target_use", r["use"]))])
        out["calibration"] = t
    if "calibration" in res.errors:
        out["calibration_error"] = res.errors["calibration"]
    return out


# -- optional sections --------------------------------------------------------------------------

MONITOR_QUARTERS = 4


def _monitor(res: Results, m: Messages, f: Fmt) -> dict:
    q = m["monitor"]
    out: dict[str, Any] = {"note": ""}
    if res.monitor is None or res.monitor.empty:
        err = res.errors.get("monitor", "")
        known = err in ("no_episodes", "no_cases")
        out["note"] = m.fmt(f"monitor.{err}") if known else m.fmt("monitor.none", error=err)
        return out
    t = res.monitor
    last = sorted(t["quarter"].unique())[-MONITOR_QUARTERS:]
    t = t[t["quarter"].isin(last)]
    table = Table(q["table_caption"], [(q["col_quarter"], "text"), (q["col_case"], "text"),
                                       (q["col_stock_start"], "count"), (q["col_inflow"], "count"),
                                       (q["col_outflow"], "count"), (q["col_stock_end"], "count"),
                                       (q["col_turnover"], "num")], note=m.fmt("monitor.table_note", min=MIN_COUNT))
    for _, r in t.iterrows():
        table.add([_text(r["quarter"]), _text(m.label("case_types", r["case_type"])),
                   _count(f, r["stock_start"]), _count(f, r["inflow"]), _count(f, r["outflow"]),
                   _count(f, r["stock_end"]),
                   _num(f.pct(r["turnover"])) if not _missing(r["turnover"]) else _suppressed(f)])
    out["table"] = table
    return out


SIGNAL_METRICS = ("auc", "alert_rate", "sensitivity", "ppv")


def _signal(res: Results, m: Messages, f: Fmt) -> dict:
    q = m["signal"]
    out: dict[str, Any] = {"note": ""}
    if res.signal is None or res.signal.empty:
        out["note"] = m.fmt("signal.none", error=res.errors.get("signal", ""))
        return out
    t = res.signal.set_index(["signal", "metric"])
    table = Table(q["table_caption"], [(q["col_signal"], "text"), *[(q[f"col_{k}"], "num") for k in SIGNAL_METRICS]],
                  note=q["table_note"])
    for name in dict.fromkeys(res.signal["signal"]):
        cells = [_text(m.label("signals", name))]
        for k in SIGNAL_METRICS:
            if (name, k) not in t.index:
                cells.append(_suppressed(f))
                continue
            r = t.loc[(name, k)]
            value = f.number(r["value"]) if k == "auc" else f.pct(r["value"])
            ci = f.interval(r["conf_low"], r["conf_high"], kind="number" if k == "auc" else "pct")
            cells.append(_num(f"{value} ({ci})" if not _missing(r["conf_low"]) else value))
        table.add(cells)
    out["table"] = table
    return out


def _schools(res: Results, m: Messages, f: Fmt) -> dict:
    s = m["schools"]
    out: dict[str, Any] = {"hidden": m.fmt("schools.hidden", n=f.count(res.schools_hidden), min=MIN_COUNT)
                           if res.schools_hidden else ""}
    if res.schools is None or res.schools.empty:
        return out
    t = Table(s["table_caption"], [(s["col_school"], "text"), (s["col_level"], "text"),
                                   (s["col_start"], "text"), (s["col_pupils"], "count"),
                                   (s["col_episodes"], "count")], note=m.fmt("schools.table_note", min=MIN_COUNT))
    for _, r in res.schools.iterrows():
        t.add([_text(r["school_id"]), _text(m.label("levels", r["level"])),
               _text(f.year(r["approach_start_year"]) if not _missing(r["approach_start_year"]) else f.missing),
               _count(f, r["n_pupils"]), _count(f, r["n_episodes"])])
    out["table"] = t
    return out
