"""The emulated trial of the in-episode interventions in words and a table (:mod:`.trials`)."""

from __future__ import annotations

from ..disclosure import MIN_COUNT
from ..effects.sensitivity import evalue_sentence, evalue_text
from .results import Results
from .text import Fmt, Messages, Table, _est, _missing, _num, _suppressed, _text
from .trials import HEADLINE, TRIAL_DAY, TRIAL_GRACE
from .words import Power, not_shown

__all__ = ["trial_findings", "trial_section", "headline_rows", "short_label"]


def _rows(res: Results):
    """intervention -> {term: row} of the shown trials, in the order of the effects table."""
    t = res.trials
    if t is None or t.empty:
        return {}
    return {iv: {r["term"]: r for _, r in g.iterrows()} for iv, g in t.groupby("intervention", sort=False)}


def _interventions(res: Results) -> list[str]:
    """The interventions of the effects table, then any other with a trial or a note."""
    seen = list(res.effects["intervention"].unique()) if res.effects is not None else []
    more = list(res.trials["intervention"].unique()) if res.trials is not None else []
    return list(dict.fromkeys(seen + more + list(res.trial_notes)))


def _evalue(res_row, m: Messages) -> str:
    if _missing(res_row["evalue"]):
        return ""
    return evalue_sentence(float(res_row["evalue"]), float(res_row["evalue_ci"]), m["trials"]["outcome"],
                           m["meta"]["lang"])


def short_label(m: Messages, iv: str) -> str:
    """The short name of an intervention for the summary's sentences ("een verzuimcoach"), else its label."""
    return m.get("interventions_short", {}).get(iv) or m.label("interventions", iv)


def _note(iv: str, res: Results, m: Messages, name: str | None = None) -> str | None:
    note = res.trial_notes.get(iv)
    name = name or m.label("interventions", iv)
    if note == "too_few":
        return m.fmt("trials.small", name=name, min=MIN_COUNT)
    if note not in (None, "unstable", "weights"):
        return m.fmt("trials.failed", name=name, error=note)
    return None


def headline_rows(res: Results) -> dict:
    """intervention -> the shown trial row of the summary's horizon (a place within 3 months)."""
    return {iv: r[f"rd_{HEADLINE}"] for iv, r in _rows(res).items() if f"rd_{HEADLINE}" in r}


def trial_findings(res: Results, m: Messages, f: Fmt) -> list[str]:
    """The summary's sentences: per intervention the 3-month risk difference of the emulated trial
    (with a short E-value sentence when the effect is clear), one sentence saying that the unclear
    ones were not shown and why the chance to show them is unknown (the design check does not
    simulate the trial), and once why the trial is the primary analysis."""
    rows, out, unclear = _rows(res), [], []
    ci = m["meta"]["ci"]
    for iv in _interventions(res):
        name = short_label(m, iv)
        note = _note(iv, res, m, name)
        if note:
            out.append(note)
            continue
        r = rows.get(iv, {}).get(f"rd_{HEADLINE}")
        if r is None or _missing(r["estimate"]):
            out.append(m.fmt("trials.small", name=name, min=MIN_COUNT))
            continue
        d = "more" if r["conf_low"] > 0 else "fewer" if r["conf_high"] < 0 else "unclear"
        out.append(m.fmt(f"trials.{d}", name=name, n=f.per100(abs(r["estimate"])), diff=f.points(r["estimate"]),
                         lo=f.points(r["conf_low"]), hi=f.points(r["conf_high"]), ci=ci))
        if d == "unclear":
            unclear.append(name)
        elif not _missing(r["evalue"]):
            out.append(m.fmt("trials.evalue_short", x=evalue_text(float(r["evalue"]), 1, f.decimal)))
        if res.trial_notes.get(iv) in ("unstable", "weights"):
            out.append(m.fmt(f"trials.{res.trial_notes[iv]}", name=name))
    if unclear:           # one sentence for all: the design check does not simulate the trial
        out.append(not_shown(f, m.fmt("power.what_intervention", name=f.names(unclear, "or")), Power(reason="trial")))
    if rows:
        out.append(m.fmt("trials.why"))
    return out


def trial_section(res: Results, m: Messages, f: Fmt) -> dict:
    """The return section's trial table, its notes and one E-value sentence per intervention."""
    t = m["trials"]
    out = {"intro": m.fmt("trials.intro", first=TRIAL_DAY, last=TRIAL_DAY + TRIAL_GRACE), "notes": [],
           "sentences": [], "table": None}
    rows = _rows(res)
    months = (3, 6, 12)
    end = TRIAL_DAY + TRIAL_GRACE
    table = Table(t["caption"], [(m["return"]["col_intervention"], "text")]
                  + [(m.fmt("trials.col_months", months=k), "num") for k in months]
                  + [(m.fmt("trials.col_hr", day=end), "num"), (t["col_evalue"], "num")],
                  note=m.fmt("trials.note", min=MIN_COUNT))
    for iv in _interventions(res):
        name = m.label("interventions", iv)
        note = _note(iv, res, m)
        if note:
            out["notes"].append(note)
        r = rows.get(iv)
        if r is None:        # too few started it (hidden), or the trial could not be emulated (no value)
            hidden = res.trial_notes.get(iv) in (None, "too_few")
            table.add([_text(name)] + [_suppressed(f) if hidden else _num(f.missing) for _ in range(len(months) + 2)])
            continue
        cells = [_text(name)]
        for k in months:
            row = r.get(f"rd_{k}m")
            cells.append(_points(f, t["to"], row))
        hr = r.get("hr")
        hidden = hr is None or _missing(hr["estimate"])
        cells.append(_est(f, *([None] * 3 if hidden else hr[["estimate", "conf_low", "conf_high"]]), suppressed=hidden))
        head = r.get(f"rd_{HEADLINE}")
        cells.append(_num(f.missing) if head is None or _missing(head["evalue"]) else
                     _num(f"{evalue_text(head['evalue'], 1, f.decimal)} "
                          f"({evalue_text(head['evalue_ci'], 1, f.decimal)})"))
        table.add(cells)
        if head is not None and not _missing(head["evalue"]):
            out["sentences"].append(f"{name}: {_evalue(head, m)}")
        if res.trial_notes.get(iv) in ("unstable", "weights"):
            out["notes"].append(m.fmt(f"trials.{res.trial_notes[iv]}", name=name))
    out["table"] = table if table.rows else None
    return out


def _points(f: Fmt, to: str, row):
    if row is None or _missing(row["estimate"]):
        return _suppressed(f)
    return _num(f"{f.points(row['estimate'])} ({f.points(row['conf_low'])} {to} {f.points(row['conf_high'])})")
