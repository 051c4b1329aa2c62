r"""Effects in words: ratios as "about 15% less", and "not shown" tied to the design's power.

A ratio :math:`r` (rate ratio of absence, or hazard ratio of returning to school) is told as the
change it stands for, :math:`100\,|r - 1|` percent rounded half up to a whole percentage:

- :math:`r < 1`: "ongeveer 15% minder" (rate) / "ongeveer 15% lager" (hazard);
- :math:`r > 1`: "ongeveer 46% meer" / "ongeveer 46% hoger";
- a change that rounds to at most :data:`SAME_PCT` percent: "ongeveer even veel" / "even groot";
- :math:`r \ge` :data:`TIMES_FROM`: "ongeveer 2,5 keer zoveel" (a change of 150% reads badly).

The ratio and its interval stay beside the words in every sentence. A ratio says how a rate or a
daily chance compares between groups on average; it is not a change for one pupil.

"Niet aangetoond" (an interval containing 1) is always said together with the chance the design
had of showing an effect of the size the design check simulated (its power, from the diagnosis
of :mod:`verzuimmodel.evaluate`): below :data:`HIGH_POWER` the study was too small to see such
an effect reliably; from it on, the data argue against an effect of that size; without a design
check the chance is unknown and the sentence says why. The power holds for the simulated effect
size and design (for one's own data: regions like the user's with the default true effects),
not for any other size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..effects.sensitivity import evalue
from .results import Results
from .text import Fmt, _missing, _percent_change

__all__ = ["SAME_PCT", "TIMES_FROM", "HIGH_POWER", "Power", "ratio_words", "power_of", "not_shown",
           "approach_evalue"]

SAME_PCT = 1
"""A ratio whose change rounds to at most this many percent reads "about the same"."""
TIMES_FROM = 2.0
"""From this ratio on, a change reads "about 2.5 times as much" instead of a percentage above 100."""
HIGH_POWER = 0.80
"""Power from which a study counts as large enough to see an effect of the simulated size."""


def ratio_words(f: Fmt, r, kind: str = "rate", style: str = "about") -> str:
    """The ratio ``r`` in words: ``kind`` ``"rate"`` (absence) or ``"hazard"`` (daily chance of
    return); ``style`` ``"about"`` ("ongeveer 15% minder"), ``"short"`` ("15% minder", for ranges)
    or ``"size"`` (the size of a simulated effect, "een effect van 15% minder verzuim")."""
    if _missing(r) or not float(r) > 0:
        return f.missing
    r = float(r)
    pct = _percent_change(r)
    if r >= TIMES_FROM:
        key, value = "times", f.number(r, 1 if r < 10 else 0)
    elif pct <= SAME_PCT:
        key, value = "same", ""
    else:
        key, value = ("up" if r > 1 else "down"), f.fixed(pct, 0)
    return f.m.fmt(f"words.{kind}_{style}_{key}", pct=value, times=value)


@dataclass(frozen=True)
class Power:
    """The design check's chance of showing an effect of the simulated size.

    ``value`` is the power (share of simulated studies whose interval excluded 1) with
    ``true_ratio`` the simulated effect (a ratio); when there is none, ``reason`` names why
    (a key of ``[power_reasons]`` in the messages).
    """

    value: float | None = None
    true_ratio: float | None = None
    reason: str | None = None


def power_of(res: Results, estimator: str | None) -> Power:
    """The power of ``estimator`` in the report's design check (or why there is none)."""
    dg = res.diagnosis
    if dg is None:
        return Power(reason=res.diagnosis_status if res.diagnosis_status != "done" else "not_covered")
    rows = dg[dg["estimator"] == estimator] if estimator is not None else dg.iloc[:0]
    if rows.empty:
        return Power(reason="not_covered")
    r = rows.iloc[0]
    if _missing(r["power"]) or _missing(r["true_value"]):
        return Power(reason="failed")
    truth = float(np.exp(r["true_value"])) if r["scale"] == "log" else float(r["true_value"])
    if _percent_change(truth) <= SAME_PCT:
        return Power(reason="no_effect")        # no effect simulated: its "power" is the false-positive rate
    return Power(value=float(r["power"]), true_ratio=truth)


def not_shown(f: Fmt, what: str, power: Power, kind: str = "rate") -> str:
    """One sentence: an effect ``what`` was not shown, and the chance the study had to show it.

    ``what`` completes "Een effect ..." ("van de aanpak", "van een verzuimcoach"); ``kind`` is
    the scale of the simulated effect (``"rate"`` or ``"hazard"``).
    """
    m = f.m
    if power.value is None:
        return m.fmt("power.unknown", what=what, reason=m.fmt(f"power_reasons.{power.reason}"))
    size = ratio_words(f, power.true_ratio, kind, "size")
    key = "power.high" if power.value >= HIGH_POWER else "power.low"
    return m.fmt(key, what=what, size=size, power=f.pct(power.value))


def approach_evalue(r):
    """The E-values of a shown rate ratio of the PO approach (estimate and interval), or None."""
    if any(_missing(r[k]) for k in ("estimate", "conf_low", "conf_high")) or r["estimate"] <= 0 or \
            r.get("scale", "log") != "log":
        return None
    return evalue(r["estimate"], r["conf_low"], r["conf_high"], measure="rate")
