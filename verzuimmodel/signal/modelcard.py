"""The model card of a fitted signal model (Markdown).

Written with every model :func:`~verzuimmodel.signal.fit_model` fits: what it was fitted on, what
it is for and not for, how it performs overall and by group next to the rule-based signals, and
its limits. It reads the fitted model's tidy performance table only, and holds aggregate figures
only (no pupil-level data).

Nothing in the model decides about a pupil, and the card says so first.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .evaluate import GROUPS
from .features import FEATURES

__all__ = ["model_card", "write_text_atomic", "NOT_A_DECISION"]

NOT_A_DECISION = (
    "**Nothing in this model decides about a pupil.** It estimates, from primary-school registry data, how likely "
    "long-term absence in secondary school is, to help plan where early attention is spent and to compare with the "
    "rules of thumb used today. A risk is not a diagnosis and a flag is not a referral: any contact with a pupil or "
    "family rests on the judgement of the JGZ nurse or doctor, the school and the family, never on this score alone."
)

_METRIC_LABELS = {
    "auc": "AUC",
    "brier": "Brier",
    "calibration_intercept": "calibration intercept",
    "calibration_slope": "calibration slope",
    "alert_rate": "alert rate",
    "sensitivity": "sensitivity",
    "ppv": "PPV",
}

_GROUP_PAIRS = (("girls", "boys"), ("disadvantaged", "not_disadvantaged"), ("special_needs", "no_special_needs"))
_GROUP_LABELS = {"girls": "girls", "boys": "boys", "disadvantaged": "disadvantaged pupils",
                 "not_disadvantaged": "other pupils", "special_needs": "pupils with special needs",
                 "no_special_needs": "pupils without special needs"}
_WINDOWS = {"all_po": "every PO year", "groups_7_8": "groups 7-8"}


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _cell(row: pd.Series, digits: int = 3) -> str:
    if row is None:
        return "–"
    text = _fmt(row["value"], digits)
    if np.isfinite(row["conf_low"]) and np.isfinite(row["conf_high"]):
        text += f" ({_fmt(row['conf_low'], digits)} to {_fmt(row['conf_high'], digits)})"
    return text


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _lookup(perf: pd.DataFrame) -> dict:
    return {(r.validation, r.signal, r.metric, r.group): r for r in perf.itertuples(index=False)}


def _row(index: dict, *key) -> pd.Series | None:
    r = index.get(key)
    return None if r is None else pd.Series(r._asdict())


def model_card(fitted) -> str:
    """The Markdown model card of a :class:`~verzuimmodel.signal.evaluate.FittedSignal`.

    Parameters
    ----------
    fitted : FittedSignal

    Returns
    -------
    str
        Markdown: the statement that nothing here decides about a pupil, model details, intended
        use, data, performance compared with the rules (overall and by group, with bootstrap
        intervals), calibration, limits and privacy.
    """
    from .. import __version__

    cfg, d, perf, name = fitted.config, fitted.data, fitted.performance, fitted.name
    spec = cfg.models[0]
    idx = _lookup(perf)
    validations = list(dict.fromkeys(perf["validation"]))
    signals = list(dict.fromkeys(perf["signal"]))
    rules = [s for s in signals if s != name]
    label_types = " or ".join(cfg.features.label_types)
    source = (f"a simulated cohort (scenario `{d['scenario']}`, seed {d['cohort_seed']})" if d["simulated"]
              else "a registry cohort")
    out = [f"# Model card: `{name}` — early signal of long-term absence in secondary school", "",
           f"> {NOT_A_DECISION}", ""]

    out += ["## Model details", "",
            f"- **Model**: {spec.describe()}.",
            f"- **Predicts**: the probability that a pupil has a long-term absence episode ({label_types}) that "
            "starts at a VO school, from what is known at the end of primary school (group 8).",
            f"- **Fitted on** {d['n_labelled']:,} labelled pupils with {d['n_events']:,} events from {source}; "
            f"seed {fitted.seed}; verzuimmodel {__version__}.",
            "- **Inputs** (recorded PO registry data only): " + ", ".join(f"`{f}`" for f in FEATURES) + ". "
            "Rates are per full school year of enrolled days, over all PO years and over groups 7-8.",
            "- **Not used**: the simulator's true values behind the recorded counts (`*_true`), any VO data, the VO "
            "track.", ""]

    out += ["## Intended use", "",
            "- **For**: researchers, JGZ, municipalities and samenwerkingsverbanden who want to know how well PO "
            "registry data anticipate long-term absence in VO, and how a statistical signal compares with the "
            "rules of thumb (M@ZL criterion, extensive sickness absence, 16 hours unexcused absence): for planning "
            "(how many pupils a signal would bring to the JGZ, how many of them would later be long absent) and for "
            "research into early sight of vulnerable pupils.",
            "- **Not for**: any decision about an individual pupil or family (referral, sanction, enrolment, "
            "placement), ranking or judging schools, or labelling pupils. A risk score in a pupil file is out of "
            "scope. If a signal is ever used to offer care, the offer is voluntary, made by a professional after "
            "their own assessment, and open to every pupil regardless of the score.", ""]

    out += ["## Data", "",
            f"- **Source**: {source}: {d['n_pupils']:,} pupils with PO records, {d['n_labelled']:,} labelled, "
            f"{d['n_events']:,} with long-term absence in VO ({100 * d['n_events'] / d['n_labelled']:.1f}%), "
            f"cohorts {d['cohorts'][0]}-{d['cohorts'][1]} (school year in group 3), {d['n_po_schools']} PO schools.",
            f"- **Label**: an episode of type {label_types} whose school is a VO school"
            + (f", starting by VO year {cfg.features.max_vo_year}" if cfg.features.max_vo_year else "")
            + ". Episodes in PO are inputs, not outcomes.",
            f"- **Labelled pupils**: those followed into VO year {cfg.features.min_vo_year} (a VO school and a VO "
            "record of that year or later, or follow-up reaching its start). Pupils who moved away earlier are left "
            "out: their outcome is unknown. Later cohorts are followed for fewer VO years, so their event rate is "
            "lower.", ""]
    ebc = d["events_by_cohort"]
    out += [_table(["cohort", "labelled pupils", "events"],
                   [[str(r.cohort), f"{r.n:,}", f"{r.events:,}"] for r in ebc.itertuples(index=False)]), ""]

    out += ["## Evaluation", ""]
    for v in validations:
        out.append(f"- `{v}`: {d['validation_descriptions'].get(v, v)}.")
    out += [f"- **Alert**: the model flags the {cfg.alert.describe()}; a rule flags whom it flags (its own alert "
            "rate). Sensitivity is the share of later long-absent pupils flagged, PPV the share of flagged pupils "
            "who are later long absent.",
            "- **Rules as risk scores** (for Brier and calibration): the event rate among flagged and unflagged "
            "pupils in the training part.",
            f"- **Intervals**: {100 * cfg.level:g}% percentile bootstrap over {cfg.n_boot} replicates resampling "
            f"{'PO schools' if cfg.bootstrap == 'school' else 'pupils'}; they cover the variation of the test "
            "pupils, not of refitting the model.",
            f"- **Rules** (applied to {_WINDOWS.get(cfg.rule_window, cfg.rule_window)}): "
            + "; ".join(f"`{r.name}`: {r.source}" for r in cfg.rules) + ".", ""]

    metrics = list(_METRIC_LABELS)
    for v in validations:
        out += [f"### Compared with the rules (`{v}`)", ""]
        rows = [[f"`{s}`"] + [_cell(_row(idx, v, s, m, "all")) for m in metrics] for s in signals]
        out += [_table(["signal"] + [_METRIC_LABELS[m] for m in metrics], rows), ""]
        out += _findings(idx, v, name, rules)

    for v in validations:
        out += [f"### `{name}` by group (`{v}`)", ""]
        rows = []
        for g in GROUPS:
            first = _row(idx, v, name, "auc", g)
            if first is None:
                continue
            rows.append([g, f"{int(first['n']):,}", f"{int(first['n_events']):,}"]
                        + [_cell(_row(idx, v, name, m, g)) for m in metrics])
        out += [_table(["group", "pupils", "events"] + [_METRIC_LABELS[m] for m in metrics], rows), ""]
        out += ["Alert rate (sensitivity) of every signal by group:", ""]
        groups = [g for g in GROUPS if _row(idx, v, name, "auc", g) is not None]
        rows = []
        for s in signals:
            cells = []
            for g in groups:
                a, se = _row(idx, v, s, "alert_rate", g), _row(idx, v, s, "sensitivity", g)
                cells.append(f"{_fmt(a['value'] if a is not None else np.nan, 2)} "
                             f"({_fmt(se['value'] if se is not None else np.nan, 2)})")
            rows.append([f"`{s}`"] + cells)
        out += [_table(["signal"] + groups, rows), ""]
        out += _group_findings(idx, v, signals)

    out += ["## Calibration", ""]
    for v in validations:
        a, b = _row(idx, v, name, "calibration_intercept", "all"), _row(idx, v, name, "calibration_slope", "all")
        out.append(f"- `{v}`: calibration intercept {_cell(a)}, slope {_cell(b)} (ideal 0 and 1; a slope below 1 "
                   "means the risks are too spread out, above 1 too compressed).")
    out += ["- Plot: `verzuimmodel.signal.plots.plot_calibration(fitted.calibration)`.", ""]

    out += ["## Limits", ""]
    if d["simulated"]:
        out.append("- **Simulated data.** The figures show how the method behaves on a synthetic cohort; they are "
                   "not an estimate of how well PO data predict long-term absence in any real region.")
    out += [
        "- **Recorded absence depends on registration.** PO absence is recorded incompletely and the recording "
        "differs between schools; a preventive approach raises recorded absence. Where registration changes, the "
        "risks shift although the pupils do not. The model sees the years the school ran the approach, which "
        "accounts for part of this only.",
        "- **Few events.** Long-term absence is rare; intervals are wide, most of all in small groups (SBO).",
        "- **Follow-up.** The label counts episodes observed; later cohorts are followed for fewer VO years and "
        "pupils who moved away are left out.",
        "- **Rules on yearly counts.** The registry holds yearly counts, not dates: the M@ZL 12-week window and the "
        "16-hours-in-4-weeks duty are approximated per year (see the rules above), so the rules' figures are "
        "those of these approximations.",
        "- **Not causal.** A high risk says nothing about what causes absence or what would help; the score "
        "reproduces the patterns of the data, including differences between groups (see the tables by group), "
        "and should not be read as a property of a pupil.",
        "- **Transport and drift.** Performance measured on other schools (grouped CV) and later cohorts "
        "(temporal split) may still not hold in another region or period; check calibration before any use.",
        "",
        "## Privacy", "",
        "This card holds aggregate figures only. Do not publish results for groups so small that pupils could be "
        "recognised.", ""]
    return "\n".join(out)


def _findings(idx: dict, v: str, name: str, rules: list[str]) -> list[str]:
    """Plain-language comparison of the model's AUC and PPV with the best rule."""
    m_auc = _row(idx, v, name, "auc", "all")
    if m_auc is None or not rules:
        return []
    rule_auc = {r: _row(idx, v, r, "auc", "all") for r in rules}
    best = max(rule_auc, key=lambda r: rule_auc[r]["value"] if np.isfinite(rule_auc[r]["value"]) else -1)
    lines = [f"- AUC of `{name}`: {_cell(m_auc)}; the best rule, `{best}`: {_cell(rule_auc[best])}."]
    m_ppv = _row(idx, v, name, "ppv", "all")
    m_sens = _row(idx, v, name, "sensitivity", "all")
    lines.append(f"- Flagging {_fmt(100 * _row(idx, v, name, 'alert_rate', 'all')['value'], 1)}% of pupils, "
                 f"`{name}` finds {_fmt(100 * m_sens['value'], 1)}% of the later long-absent pupils, and "
                 f"{_fmt(100 * m_ppv['value'], 1)}% of those it flags are later long absent.")
    for r in rules:
        a, s, p = (_row(idx, v, r, k, "all") for k in ("alert_rate", "sensitivity", "ppv"))
        lines.append(f"- `{r}` flags {_fmt(100 * a['value'], 1)}% of pupils, finds {_fmt(100 * s['value'], 1)}% "
                     f"of the later long-absent pupils; PPV {_fmt(100 * p['value'], 1)}%.")
    return lines + [""]


def _group_findings(idx: dict, v: str, signals: list[str]) -> list[str]:
    """Where a signal flags one group much more often than its complement (ratio of alert rates >= 1.5)."""
    lines = []
    for s in signals:
        for g1, g2 in _GROUP_PAIRS:
            a1, a2 = _row(idx, v, s, "alert_rate", g1), _row(idx, v, s, "alert_rate", g2)
            if a1 is None or a2 is None or not (a1["value"] > 0 and a2["value"] > 0):
                continue
            ratio = a1["value"] / a2["value"]
            if ratio >= 1.5 or ratio <= 1 / 1.5:
                hi, lo = (g1, g2) if ratio > 1 else (g2, g1)
                lines.append(f"- `{s}` flags {_GROUP_LABELS[hi]} {max(ratio, 1 / ratio):.1f} times as often as "
                             f"{_GROUP_LABELS[lo]}.")
    if lines:
        lines.insert(0, "Groups a signal flags at clearly different rates (which may reflect different risk, "
                        "different recording, or both):")
        lines.insert(1, "")
    return lines + ([""] if lines else [])


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same directory, renamed into place."""
    target = Path(path)
    if not target.parent.exists():
        raise FileNotFoundError(f"directory {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
