"""Turn :class:`~verzuimmodel.report.results.Results` into the template context of each section.

Code here only chooses *which* message to show and formats numbers (:mod:`.text`); every word
comes from the message files (``messages/<lang>.toml``) and the templates. Tables are handed to the templates as
:class:`Table` objects whose cells know their kind: ``count`` cells (pupils or episodes) carry
their value in ``data-value`` and are already disclosure-controlled ("< 10").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..disclosure import MIN_COUNT
from ..effects.sensitivity import evalue, evalue_sentence, evalue_text
from ..schema import OUTCOMES
from .results import APPROACH_PREFIX, MONTHS, RETURN_TO_SCHOOL, Results, same_quantity
from .trial_text import trial_findings, trial_section
from .text import (LANGUAGES, Cell, Fmt, Messages, Table, _count, _direction, _est, _missing, _num, _text,
                   messages)

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
        source = m.fmt("meta.source_simulated", scenario=ov["scenario"] or "", seed=ov["seed"],
                       first=f.year(ov["first_year"]), last=f.year(ov["last_year"]))
    else:
        source = m.fmt("meta.source_data", first=f.year(ov["first_year"]), last=f.year(ov["last_year"]))
    ctx: dict[str, Any] = {
        "lang": meta["lang"], "m": m, "title": meta["title"], "subtitle": meta["subtitle"], "source": source,
        "generated": m.fmt("meta.generated", version=version, min=MIN_COUNT),
        "sections": [(name, m["sections"][name]) for name in sections],
        "figures": figures, "msg": m.fmt, "min_count": MIN_COUNT,
    }
    builders = {"summary": _summary, "return": _return, "approach": _approach, "quality": _quality,
                "methods": _methods, "monitor": _monitor, "signal": _signal, "schools": _schools}
    ctx["sec"] = {name: builders[name](res, m, f) for name in sections}
    return ctx


# -- summary ------------------------------------------------------------------------------------

def _summary(res: Results, m: Messages, f: Fmt) -> dict:
    findings: list[str] = []
    ci = m["meta"]["ci"]
    # 1. return to school
    pts = res.curve_points
    if pts is not None:
        p = pts[pts["outcome"] == RETURN_TO_SCHOOL].set_index("months")
        if not p.empty and not _missing(p.loc[3, "estimate"]) and not _missing(p.loc[6, "estimate"]):
            text = m.fmt("summary.return", n3=f.per100(p.loc[3, "estimate"]), lo3=f.per100(p.loc[3, "conf_low"]),
                         hi3=f.per100(p.loc[3, "conf_high"]), n6=f.per100(p.loc[6, "estimate"]),
                         lo6=f.per100(p.loc[6, "conf_low"]), hi6=f.per100(p.loc[6, "conf_high"]), ci=ci)
            if not _missing(p.loc[12, "estimate"]):
                text += " " + m.fmt("summary.return_12m", n12=f.per100(p.loc[12, "estimate"]),
                                    lo12=f.per100(p.loc[12, "conf_low"]), hi12=f.per100(p.loc[12, "conf_high"]), ci=ci)
            findings.append(text)
        else:
            findings.append(m.fmt("summary.return_none"))
    elif "return" in res.errors:
        findings.append(m.fmt("return.no_episodes") if res.errors["return"] == "no_episodes"
                        else m.fmt("summary.return_none"))
    # 2. in-episode interventions: the emulated trial (primary), the time-varying Cox model
    # (secondary) with the naive contrast
    findings.extend(trial_findings(res, m, f))
    eff = res.effects
    if eff is not None and not eff.empty:
        tv = eff[eff["method"] == "time_varying"].set_index("intervention")
        naive = eff[eff["method"] == "naive"].set_index("intervention")
        parts = [m["trials"]["secondary"]]
        for iv, r in tv.iterrows():
            name = m.label("interventions", iv)
            if _missing(r["estimate"]):
                parts.append(m.fmt("summary.intervention_small", name=name, min=MIN_COUNT))
                continue
            d = _direction(r["conf_low"], r["conf_high"])
            parts.append(m.fmt(f"summary.intervention_{d}", name=name, pct=f.change(r["estimate"]),
                               hr=f.ratio(r["estimate"]), lo=f.ratio(r["conf_low"]), hi=f.ratio(r["conf_high"]), ci=ci))
        shown = tv[tv["estimate"].notna()]
        if not shown.empty:
            gap = (np.log(shown["estimate"]) - np.log(naive["estimate"].reindex(shown.index))).abs()
            if gap.notna().any():
                iv = gap.idxmax()
                parts.append(m.fmt("summary.intervention_naive", name=m.label("interventions", iv),
                                   naive=f.ratio(naive.loc[iv, "estimate"]), hr=f.ratio(tv.loc[iv, "estimate"])))
        findings.append(" ".join(parts))
    # 3. the PO approach (the estimator that suits the design) and 4. recorded PO absence
    est = res.estimates
    if est is not None and res.primary is not None:
        r = est.set_index("estimator").loc[res.primary]
        d = _direction(r["conf_low"], r["conf_high"])
        text = m.fmt(f"summary.approach_{d}", pct=f.change(r["estimate"]), rr=f.ratio(r["estimate"]),
                     lo=f.ratio(r["conf_low"]), hi=f.ratio(r["conf_high"]), ci=ci,
                     estimator=m.label("estimators", res.primary),
                     design=m.label("designs", res.overview["design"] or "unknown"))
        others = est[(est["estimator"] != res.primary) & ~est["cautionary"] & est["estimate"].notna()
                     & same_quantity(est["estimand"], r["estimand"])]
        if len(others):
            text += " " + m.fmt("summary.approach_range", low=f.ratio(others["estimate"].min()),
                                high=f.ratio(others["estimate"].max()), n=len(others))
        findings.append(f"{text} {_approach_sentence(r, m)}".strip())
    else:
        findings.append(m.fmt("summary.approach_none"))
    if est is not None and (est["cautionary"]).any():
        r = est[est["cautionary"]].iloc[0]
        if not _missing(r["estimate"]):
            d = _direction(r["conf_low"], r["conf_high"])
            text = m.fmt(f"summary.recorded_{d}", pct=f.change(r["estimate"]), rr=f.ratio(r["estimate"]),
                         lo=f.ratio(r["conf_low"]), hi=f.ratio(r["conf_high"]), ci=ci)
            if not _missing(r["true_value"]):
                text += " " + m.fmt("summary.recorded_truth", true=f.ratio(r["true_value"]))
            findings.append(text)
    # 5. quality of the evidence
    dg = res.diagnosis
    if dg is not None and res.primary is not None and res.primary in set(dg["estimator"]):
        r = dg.set_index("estimator").loc[res.primary]
        # bias on the log scale, told as a percentage: exp(mean log estimate - log truth) - 1
        bias = np.exp(r["bias"]) - 1 if r["scale"] == "log" else r["bias"]
        key = "summary.quality_fitted" if res.design_source == "fitted" else "summary.quality"
        findings.append(m.fmt(key, n_sims=int(r["n_sims"]), estimator=m.label("estimators", res.primary),
                              bias=f.signed_pct(bias), coverage=f.pct(r["coverage"]), power=f.pct(r["power"])))
    else:
        findings.append(m.fmt(f"summary.quality_{res.diagnosis_status}" if f"quality_{res.diagnosis_status}"
                              in m["summary"] else "summary.quality_none"))
    cannot = []
    if res.overview["simulated"]:
        cannot.append(m.fmt("summary.cannot_simulated"))
    design = res.overview["design"]
    if design in (None, "observational", "staggered"):
        cannot.append(m.fmt("summary.cannot_observational"))
    cannot.append(m.fmt("summary.cannot_recorded"))
    cannot.append(m.fmt("summary.cannot_causal_interventions"))
    cannot.append(m.fmt("summary.cannot_disclosure", min=MIN_COUNT))
    return {"findings": findings, "can": list(m["summary"]["can"]), "cannot": cannot}


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
        e = None if r["cautionary"] else _approach_evalue(r)
        cells += [_num(f.missing if e is None else f"{evalue_text(e.point, 1, f.decimal)} "
                                                   f"({evalue_text(e.ci, 1, f.decimal)})"),
                  _count(f, r["n_obs"]), _count(f, r["n_clusters"])]
        t.add(cells, "cautionary" if r["cautionary"] else ("primary" if r["primary"] else ""))
    out["table"] = t
    first = est.iloc[0]
    out["exposure"] = m.fmt("approach.exposure", n_exposed=f.count(first["n_exposed"]),
                            n_unexposed=f.count(first["n_unexposed"]))
    names = [*est["estimator"], *(res.skipped["estimator"] if res.skipped is not None else [])]
    estimand = dict(zip(est["estimator"], est["estimand"]))
    out["models"] = [(m.label("estimators", n), known[n]["model"] if n in known else a["model_unknown"],
                      m.label("estimands", estimand[n]) if n in estimand else "",
                      known[n]["design"] if n in known else a["design_unknown"]) for n in names]
    out["cautionary"] = bool(est["cautionary"].any())
    out["design"] = m.label("designs", res.overview["design"] or "unknown")
    out["primary"] = m.label("estimators", res.primary) if res.primary else None
    return out


def _approach_evalue(r):
    """The E-values of a shown rate ratio (estimate and interval), or None."""
    if any(_missing(r[k]) for k in ("estimate", "conf_low", "conf_high")) or r["estimate"] <= 0 or \
            r.get("scale", "log") != "log":
        return None
    return evalue(r["estimate"], r["conf_low"], r["conf_high"], measure="rate")


def _approach_sentence(r, m: Messages) -> str:
    """The summary's E-value sentence of the PO approach's primary estimate ("" when it has none)."""
    e = _approach_evalue(r)
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
        t = Table(m.fmt(f"quality.table_caption_{part}", n_sims=res.n_sims), cols, note=q["table_note"])
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
                   _num(f.number(r["rmse"], 3))], "cautionary" if r["cautionary"] else "")
            if r["n_failed"]:
                out["failed"].append(m.fmt("quality.failed", estimator=m.label("estimators", name),
                                           failed=int(r["n_failed"]), n=int(r["n_sims"])))
        out["tables"].append(t)
    design = m.label("designs", res.overview["design"] or "unknown")
    if res.design_source == "fitted":            # regions like the user's: as many schools (not pupils: a count)
        scen = res.design_scenario
        design = m.label("designs", res.overview["design"] or scen.approach.design)     # the roll-out it found
        out["intro"] = m.fmt("quality.intro_fitted", n_sims=res.n_sims, design=design,
                             n_po=scen.population.n_po_schools, n_vo=scen.population.n_vo_schools)
    else:
        out["intro"] = m.fmt("quality.intro_done", n_sims=res.n_sims, design=design)
    return out


# -- data and methods ---------------------------------------------------------------------------

def _methods(res: Results, m: Messages, f: Fmt) -> dict:
    ov = res.overview
    data = m.fmt("methods.data", n_po=ov["n_po_schools"], n_vo=ov["n_vo_schools"], n_pupils=f.count(ov["n_pupils"]),
                 n_pupils_vo=f.count(ov["n_pupils_vo"]), n_episodes=f.count(ov["n_episodes"]),
                 n_interventions=f.count(ov["n_interventions"]), first=f.year(ov["first_year"]),
                 last=f.year(ov["last_year"]))
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
                   _num(f.pct(r["turnover"])) if not _missing(r["turnover"]) else Cell(f.suppressed, "num", "", True)])
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
                cells.append(Cell(f.suppressed, "num", "", True))
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
    out: dict[str, Any] = {"hidden": m.fmt("schools.hidden", n=res.schools_hidden, min=MIN_COUNT)
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
