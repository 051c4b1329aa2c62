"""The summary of a report: one plain answer per question first, then the detail.

The three questions: how fast thuiszitters return to school; what helps during the episode; does
the PO approach lower later VO absence. Each answer is one sentence without technical words; the
details give the numbers, every ratio in words ("ongeveer 15% minder") with the ratio and its
interval beside it (:mod:`.words`), and every "niet aangetoond" with the design's power in the
same sentence. Code here only picks messages (``[summary]`` in ``messages/<lang>.toml``) and
fills in numbers.
"""

from __future__ import annotations

import numpy as np

from ..disclosure import MIN_COUNT
from ..effects.sensitivity import evalue_text
from .results import INTERVENTION_PREFIX, RETURN_TO_SCHOOL, Results, same_quantity
from .text import Fmt, Messages, _direction, _missing
from .trial_text import headline_rows, short_label, trial_findings
from .words import HIGH_POWER, approach_evalue, not_shown, power_of, ratio_words

__all__ = ["summary", "intervention_estimator"]


def summary(res: Results, m: Messages, f: Fmt) -> dict:
    """The summary's context: ``questions`` (question, answer, details) and the can / cannot lists."""
    s = m["summary"]
    questions = [("return", *_return(res, m, f)), ("interventions", *_interventions(res, m, f)),
                 ("approach", *_approach(res, m, f))]
    return {"questions": [{"id": key, "question": s[f"q_{key}"], "answer": answer,
                           "details": [" ".join(p) for p in details if p]}        # paragraphs of sentences
                          for key, answer, details in questions],
            "can": list(s["can"]), "cannot": _cannot(res, m, f)}


# -- 1. how fast thuiszitters return ------------------------------------------------------------

def _return(res: Results, m: Messages, f: Fmt) -> tuple[str, list[list[str]]]:
    pts = res.curve_points
    if pts is None:
        key = "return.no_episodes" if res.errors.get("return") == "no_episodes" else "summary.return_none"
        return m.fmt(key), []
    p = pts[pts["outcome"] == RETURN_TO_SCHOOL].set_index("months")
    if p.empty or _missing(p.loc[3, "estimate"]) or _missing(p.loc[6, "estimate"]):
        return m.fmt("summary.return_none"), []
    ci = m["meta"]["ci"]
    at = {k: dict(n=f.per100(p.loc[k, "estimate"]), lo=f.per100(p.loc[k, "conf_low"]),
                  hi=f.per100(p.loc[k, "conf_high"])) for k in (3, 6, 12) if k in p.index}
    year = 12 in at and not _missing(p.loc[12, "estimate"])
    answer = (m.fmt("summary.return_answer", n3=at[3]["n"], n12=at[12]["n"]) if year
              else m.fmt("summary.return_answer_6m", n3=at[3]["n"], n6=at[6]["n"]))
    flat = {f"{k}{n}": v for n, d in at.items() for k, v in d.items()}
    return answer, [[m.fmt("summary.return_who"),
                     m.fmt("summary.return_detail" if year else "summary.return_detail_6m", ci=ci, **flat)]]


# -- 2. what helps during the episode -----------------------------------------------------------

def intervention_estimator(res: Results, intervention: str) -> str | None:
    """The diagnosed time-varying (not naive) estimator of ``intervention``'s hazard ratio, if any."""
    dg = res.diagnosis
    if dg is None:
        return None
    rows = dg[(dg["estimand"] == f"{INTERVENTION_PREFIX}{intervention}") & ~dg["cautionary"]]
    return rows["estimator"].iloc[0] if len(rows) else None


def _hazard_verdicts(res: Results) -> dict[str, str]:
    """Per intervention: ``helps``, ``harms`` or ``unclear`` by the time-varying hazard ratio (shown ones only)."""
    if res.effects is None:
        return {}
    tv = res.effects[(res.effects["method"] == "time_varying") & res.effects["estimate"].notna()]
    return {iv: {"up": "helps", "down": "harms"}.get(_direction(lo, hi), "unclear")
            for iv, lo, hi in zip(tv["intervention"], tv["conf_low"], tv["conf_high"])}


def _verdicts(res: Results) -> dict[str, str]:
    """Per intervention: ``helps``, ``harms``, ``unclear`` or ``unknown`` by the emulated trial (the
    primary analysis; a place within 3 months), else by the time-varying hazard ratio."""
    out: dict[str, str] = {}
    trial, hazard = headline_rows(res), _hazard_verdicts(res)
    names = [*(res.effects["intervention"].unique() if res.effects is not None else []), *trial]
    for iv in dict.fromkeys(names):
        r = trial.get(iv)
        if r is not None and not _missing(r["estimate"]):
            out[iv] = "helps" if r["conf_low"] > 0 else "harms" if r["conf_high"] < 0 else "unclear"
        else:
            out[iv] = hazard.get(iv, "unknown")
    return out


def _interventions(res: Results, m: Messages, f: Fmt) -> tuple[str, list[list[str]]]:
    verdicts = _verdicts(res)
    if not verdicts:
        return m.fmt("summary.interventions_none"), []
    by = {v: [short_label(m, iv) for iv, x in verdicts.items() if x == v]
          for v in ("helps", "harms", "unclear", "unknown")}
    parts = []
    if by["helps"]:
        parts.append(m.fmt("summary.interventions_help", names=f.names(by["helps"])))
    if by["harms"]:
        parts.append(m.fmt("summary.interventions_harm", names=f.names(by["harms"])))
    if by["unclear"]:
        key = "summary.interventions_unclear_rest" if parts else "summary.interventions_unclear_all"
        parts.append(m.fmt(key, names=f.names(by["unclear"])))
    if not parts:
        parts.append(m.fmt("summary.interventions_unknown_all", min=MIN_COUNT))
    hint = [short_label(m, iv) for iv, x in _hazard_verdicts(res).items()
            if x == "helps" and verdicts.get(iv) != "helps"]
    if hint and not by["helps"]:
        parts.append(m.fmt("summary.interventions_secondary_hint", names=f.names(hint)))
    return " ".join(parts), [trial_findings(res, m, f), _hazard_details(res, m, f)]


def _hazard_details(res: Results, m: Messages, f: Fmt) -> list[str]:
    """The secondary analysis (time-varying Cox model): each hazard ratio in words, and the naive contrast."""
    eff = res.effects
    if eff is None or eff.empty:
        return []
    ci = m["meta"]["ci"]
    tv = eff[eff["method"] == "time_varying"].set_index("intervention")
    naive = eff[eff["method"] == "naive"].set_index("intervention")
    out = [m.fmt("summary.hazard_intro")]
    for iv, r in tv.iterrows():
        name = short_label(m, iv)
        if _missing(r["estimate"]):
            out.append(m.fmt("summary.intervention_small", name=name, min=MIN_COUNT))
            continue
        out.append(m.fmt("summary.intervention_hr", name=name, words=ratio_words(f, r["estimate"], "hazard"),
                         hr=f.ratio(r["estimate"]), lo=f.ratio(r["conf_low"]), hi=f.ratio(r["conf_high"]), ci=ci))
        if _direction(r["conf_low"], r["conf_high"]) == "unclear":
            out.append(not_shown(f, m.fmt("power.what_intervention", name=name),
                                 power_of(res, intervention_estimator(res, iv)), "hazard"))
    shown = tv[tv["estimate"].notna()]
    if not shown.empty:
        gap = (np.log(shown["estimate"]) - np.log(naive["estimate"].reindex(shown.index))).abs()
        if gap.notna().any():
            iv = gap.idxmax()
            out.append(m.fmt("summary.intervention_naive", name=m.label("interventions", iv),
                             naive=f.ratio(naive.loc[iv, "estimate"]), hr=f.ratio(tv.loc[iv, "estimate"])))
    return out


# -- 3. the PO approach -------------------------------------------------------------------------

def _approach(res: Results, m: Messages, f: Fmt) -> tuple[str, list[list[str]]]:
    est = res.estimates
    if est is None or res.primary is None:
        return m.fmt("summary.approach_none"), [_check(res, m, f, None, shown=False)]
    ci = m["meta"]["ci"]
    r = est.set_index("estimator").loc[res.primary]
    d = _direction(r["conf_low"], r["conf_high"])
    words = ratio_words(f, r["estimate"])
    power = power_of(res, res.primary)
    if d == "unclear":
        high = power.value is not None and power.value >= HIGH_POWER
        answer = m.fmt("summary.approach_answer_unclear_high" if high else "summary.approach_answer_unclear",
                       words=words)
    else:
        answer = m.fmt(f"summary.approach_answer_{d}", words=words)
    details = [m.fmt("summary.approach_estimate", words=words, rr=f.ratio(r["estimate"]), lo=f.ratio(r["conf_low"]),
                     hi=f.ratio(r["conf_high"]), ci=ci)]
    if d == "unclear":
        details.append(not_shown(f, m.fmt("power.what_approach"), power))
    plain = m.get("estimators", {}).get(res.primary, {}).get("plain", m["summary"]["plain_unknown"])
    design = _design(res)
    details.append(m.fmt("summary.approach_method" if design else "summary.approach_method_unknown",
                         design=m.label("designs", design), plain=plain).strip())
    others = est[(est["estimator"] != res.primary) & ~est["cautionary"] & est["estimate"].notna()
                 & same_quantity(est["estimand"], r["estimand"])]
    if len(others):
        lo, hi = others["estimate"].min(), others["estimate"].max()
        details.append(m.fmt("summary.approach_range", low_words=ratio_words(f, lo, style="short"),
                             high_words=ratio_words(f, hi, style="short"), low=f.ratio(lo), high=f.ratio(hi)))
    e = approach_evalue(r) if d != "unclear" else None
    if e is not None:
        details.append(m.fmt("summary.approach_evalue", x=evalue_text(float(e.point), 1, f.decimal)))
    return answer, [details, _recorded(res, m, f), _check(res, m, f, power, shown=d != "unclear")]


def _design(res: Results) -> str | None:
    """The adoption design: the data's own, else the one the design check found in them (fitted)."""
    found = getattr(getattr(res.design_scenario, "approach", None), "design", None)
    return res.overview["design"] or (found if res.design_source == "fitted" else None)


def _recorded(res: Results, m: Messages, f: Fmt) -> list[str]:
    """The cautionary example: recorded PO absence, which the approach itself changes."""
    est = res.estimates
    if est is None or not est["cautionary"].any():
        return []
    r = est[est["cautionary"]].iloc[0]
    if _missing(r["estimate"]):
        return []
    d = _direction(r["conf_low"], r["conf_high"])
    out = [m.fmt("summary.recorded", words=ratio_words(f, r["estimate"]), rr=f.ratio(r["estimate"]),
                 lo=f.ratio(r["conf_low"]), hi=f.ratio(r["conf_high"]), ci=m["meta"]["ci"]),
           m.fmt(f"summary.recorded_why_{d}"), m.fmt("summary.recorded_advice")]
    if not _missing(r["true_value"]):
        out.append(m.fmt("summary.recorded_truth", words=ratio_words(f, r["true_value"]),
                         true=f.ratio(r["true_value"])))
    return out


def _check(res: Results, m: Messages, f: Fmt, power, shown: bool) -> list[str]:
    """The design check in plain words: how often the method hit the simulated truth."""
    dg = res.diagnosis
    if dg is None or res.primary is None or res.primary not in set(dg["estimator"]):
        status = res.diagnosis_status if res.diagnosis_status != "done" else "none"
        return [m.fmt(f"summary.check_{status}")]
    r = dg.set_index("estimator").loc[res.primary]
    n = f.count(int(r["n_sims"]))
    if res.design_regions > 1:
        out = [m.fmt("summary.check_regional", n_sims=n, k=f.count(res.design_regions))]
    else:
        out = [m.fmt("summary.check_fitted" if res.design_source == "fitted" else "summary.check_done", n_sims=n)]
    # bias on the log scale, told as a percentage: exp(mean log estimate - log truth) - 1
    bias = float(np.exp(r["bias"]) - 1) if r["scale"] == "log" else float(r["bias"])
    pct = f.fixed(abs(100 * bias), 0)
    out.append(m.fmt("summary.check_bias_none" if pct == "0" else
                     "summary.check_bias_low" if bias < 0 else "summary.check_bias_high", pct=pct))
    out.append(m.fmt("summary.check_coverage", coverage=f.pct(r["coverage"])))
    if shown and power is not None and power.value is not None:
        out.append(m.fmt("summary.check_power", size=ratio_words(f, power.true_ratio, style="size"),
                         power=f.pct(power.value)))
    return out


# -- what the evidence cannot say ---------------------------------------------------------------

def _cannot(res: Results, m: Messages, f: Fmt) -> list[str]:
    cannot = []
    if res.overview["simulated"]:
        cannot.append(m.fmt("summary.cannot_simulated"))
    if res.overview["design"] in (None, "observational", "staggered"):
        cannot.append(m.fmt("summary.cannot_observational"))
    cannot.append(m.fmt("summary.cannot_recorded"))
    cannot.append(m.fmt("summary.cannot_causal_interventions"))
    cannot.append(m.fmt("summary.cannot_disclosure", min=MIN_COUNT))
    return cannot
