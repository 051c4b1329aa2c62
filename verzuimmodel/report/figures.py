"""Figures of a report, drawn by :mod:`verzuimmodel.plotting` from the (disclosure-controlled) tidy
results and embedded as ``data:image/png;base64`` URIs, so the HTML needs no other file.

Every label comes from the message catalogue; each function returns ``{"src", "alt", "caption"}``
or None when there is nothing to draw. The alt text says what the figure actually shows, built
from the data it is drawn from (or read back from what was drawn): which lines, points or bars,
their values in the report's number style, and what was left out because it rests on fewer than
10 pupils; a suppressed outcome or estimate is never named as drawn.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from ..disclosure import MIN_COUNT
from ..schema import OUTCOMES, RETURN_OUTCOMES
from .results import MONTHS, RETURN_TO_SCHOOL, Results
from .text import Fmt, Messages

__all__ = ["figures", "png_data_uri"]

DPI = 110
CAUTION = "#c44e52"
PRIMARY = "#1f5f99"


def png_data_uri(fig) -> str:
    """The figure as a PNG data URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white",
                    metadata={"Software": None})
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


RATIO_TICKS = (0.1, 0.2, 0.25, 0.33, 0.5, 0.67, 0.75, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 10.0)


def _ratio_axis(ax, f: Fmt) -> None:
    """Ticks of a log-scale ratio axis as plain numbers in the report's language (0,50 1,00 2,00)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lo, hi = ax.get_xlim()
    gap = np.log(hi / lo) / 5          # at most about six labels, evenly spread on the log axis
    ticks = [1.0] if lo <= 1.0 <= hi else []
    for side in ([t for t in RATIO_TICKS if 1.0 < t <= hi], [t for t in reversed(RATIO_TICKS) if lo <= t < 1.0]):
        last = 1.0
        for t in side:
            if abs(np.log(t / last)) >= gap:
                ticks.append(t)
                last = t
    ax.xaxis.set_major_locator(FixedLocator(sorted(ticks)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f.ratio(x)))


def _legend_below(fig, ax) -> None:
    """The legend under the plot, where it hides no estimate."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", frameon=False, ncol=len(handles))


def _figure(fig, m: Messages, key: str, alt: str, **values) -> dict[str, str]:
    values.setdefault("min", MIN_COUNT)
    return {"src": png_data_uri(fig), "alt": alt, "caption": m.fmt(f"figures.{key}_caption", **values)}


def figures(res: Results, m: Messages, sections: list[str]) -> dict[str, dict[str, str]]:
    """All figures the sections show, by name."""
    import matplotlib

    out: dict[str, Any] = {}
    with matplotlib.rc_context({"font.size": 10, "axes.spines.top": False, "axes.spines.right": False}):
        if "return" in sections:
            out["return_curves"] = return_curves(res, m)
            out["interventions"] = interventions(res, m)
        if "approach" in sections:
            out["estimators"] = estimators(res, m)
        if "monitor" in sections:
            out["stock_flow"] = stock_flow(res, m)
    return {k: v for k, v in out.items() if v is not None}


def _left_out(m: Messages, f: Fmt, key: str, names: list[str]) -> str:
    """" Niet getekend ...: a, b." for what the figure leaves out (suppressed), or ""."""
    return " " + m.fmt(f"figures.{key}", names=f.names(names), min=MIN_COUNT) if names else ""


# -- return to school ---------------------------------------------------------------------------

def return_curves(res: Results, m: Messages):
    """Cumulative incidence of each outcome (outcomes with fewer than 10 events are not drawn)."""
    from matplotlib.ticker import FuncFormatter

    from .. import plotting

    c = res.curves
    if c is None or c.empty:
        return None
    f = Fmt(m)
    if (c["outcome"] != RETURN_TO_SCHOOL).any() and not res.collapsed:
        c = c[c["outcome"] != RETURN_TO_SCHOOL]          # its parts are drawn instead
    labels = {o: m.label("outcomes", o) for o in c["outcome"].unique()}
    fig = plotting.cumulative_incidence(c, labels=labels)
    ax = fig.axes[0]
    ax.set_xlabel(m["figures"]["return_xlabel"])
    ax.set_ylabel(m["figures"]["return_ylabel"])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f.pct(y)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f.fixed(x, 0)))
    for months, day in MONTHS.items():
        ax.axvline(day, color="grey", lw=0.6, ls=":")
    ax.set_xlim(left=0)
    return _figure(fig, m, "return", return_alt(c, res, m, f))


def return_alt(drawn, res: Results, m: Messages, f: Fmt) -> str:
    """The alt text of the return curves from the curves drawn (``drawn``): each line with its level at
    12 months (or where it stops), and the outcomes left out because fewer than 10 pupils had them."""
    year = MONTHS[12]
    lines = []
    for outcome, c in drawn.groupby("outcome", sort=False):          # the order plotting draws them in
        label = m.label("outcomes", outcome)
        upto = c[c["time"] <= year]
        if c["time"].max() >= year:
            lines.append(m.fmt("figures.return_alt_line", outcome=label, pct=f.pct(upto["estimate"].iloc[-1])))
        else:
            lines.append(m.fmt("figures.return_alt_line_stops", outcome=label, pct=f.pct(c["estimate"].iloc[-1]),
                               day=f.fixed(c["time"].iloc[-1], 0)))
    parts = [RETURN_TO_SCHOOL] if res.collapsed else list(RETURN_OUTCOMES)
    expected = parts + [o for o in OUTCOMES if o not in RETURN_OUTCOMES and o != "censored"]
    present = set(res.outcome_counts["outcome"]) if res.outcome_counts is not None else set()
    left = [m.label("outcomes", o) for o in expected if o in present and o not in set(drawn["outcome"])]
    return m.fmt("figures.return_alt", lines="; ".join(lines)) + _left_out(m, f, "return_alt_left_out", left)


# -- in-episode interventions -------------------------------------------------------------------

def interventions(res: Results, m: Messages):
    """Hazard ratios of each intervention: time-varying (right) next to naive (the immortal-time trap)."""
    from .. import plotting

    e = res.effects
    if e is None or e.empty:
        return None
    f = Fmt(m)
    left = [m.label("interventions", iv) for iv, g in e.groupby("intervention", sort=False)
            if g[["estimate", "conf_low", "conf_high"]].isna().any(axis=None)]
    e = e.dropna(subset=["estimate", "conf_low", "conf_high"])
    if e.empty:
        return None
    e = e.assign(label=[f"{m.label('interventions', i)} \u2014 {m.label('effect_methods', k)}"
                        for i, k in zip(e["intervention"], e["method"])])
    fig = plotting.forest(e.reset_index(drop=True), label="label", xlabel=m["figures"]["hr_xlabel"])
    ax = fig.axes[0]
    for tick, method in zip(ax.get_yticklabels(), e["method"]):
        if method == "naive":
            tick.set_color(CAUTION)
    truth = e["true_value"].to_numpy(dtype=float)
    if np.isfinite(truth).any():
        y = np.arange(len(e))[::-1]
        ax.scatter(truth, y, marker="D", s=28, color=PRIMARY, zorder=3, label=m["figures"]["truth_legend"])
    _ratio_axis(ax, f)
    _legend_below(fig, ax)
    items = [f"{label} {f.ratio(x)}" for label, x in zip(e["label"], e["estimate"])]
    alt = m.fmt("figures.interventions_alt", items="; ".join(items))
    wide = e.pivot(index="intervention", columns="method", values="estimate")
    if {"naive", "time_varying"} <= set(wide.columns):
        both = wide.dropna(subset=["naive", "time_varying"])
        if len(both) and (both["naive"] < both["time_varying"]).all():
            alt += " " + m["figures"]["interventions_alt_naive_lower"]
    if np.isfinite(truth).any():
        alt += " " + m["figures"]["alt_truth"]
    return _figure(fig, m, "interventions", alt + _left_out(m, f, "interventions_alt_left_out", left))


# -- the PO approach ----------------------------------------------------------------------------

def estimators(res: Results, m: Messages):
    """The PO approach's estimators side by side (forest plot), the cautionary one in red."""
    from .. import plotting

    est = res.estimates
    if est is None or est.empty:
        return None
    f = Fmt(m)
    left = [m.label("estimators", n) for n in est.loc[est[["estimate", "conf_low", "conf_high"]].isna().any(axis=1),
                                                       "estimator"]]
    est = est.dropna(subset=["estimate", "conf_low", "conf_high"]).reset_index(drop=True)
    if est.empty:
        return None
    est = est.assign(label=[m.label("estimators", n) for n in est["estimator"]])
    fig = plotting.forest(est, label="label", xlabel=m["figures"]["rr_xlabel"])
    ax = fig.axes[0]
    y = np.arange(len(est))[::-1]
    for tick, caution, primary in zip(ax.get_yticklabels(), est["cautionary"], est["primary"]):
        if caution:
            tick.set_color(CAUTION)
        elif primary:
            tick.set_fontweight("bold")
    caution = est["cautionary"].to_numpy()
    if caution.any():
        ax.scatter(est.loc[caution, "estimate"], y[caution], color=CAUTION, zorder=3, s=30)
    truth = est["true_value"].to_numpy(dtype=float)
    if np.isfinite(truth).any():
        ax.scatter(truth, y, marker="D", s=28, color=PRIMARY, zorder=3, label=m["figures"]["truth_legend"])
    _ratio_axis(ax, f)
    _legend_below(fig, ax)
    items = []
    for label, x, primary, caution_ in zip(est["label"], est["estimate"], est["primary"], est["cautionary"]):
        mark = m["figures"]["estimators_alt_primary"] if primary else \
            m["figures"]["estimators_alt_cautionary"] if caution_ else ""
        items.append(f"{label} {f.ratio(x)}{mark}")
    alt = m.fmt("figures.estimators_alt", n=f.count(len(est)), items="; ".join(items))
    if np.isfinite(truth).any():
        alt += " " + m["figures"]["alt_truth"]
    return _figure(fig, m, "estimators", alt + _left_out(m, f, "estimators_alt_left_out", left),
                   design=m.label("designs", res.overview["design"] or "unknown"), value=f.ratio(1.0))


# -- the quarterly monitor ----------------------------------------------------------------------

def stock_flow(res: Results, m: Messages, case_type: str = "LRV"):
    """Stock and flow of long-term absence per quarter (a suppressed value is a grey cross, never a bar)."""
    from matplotlib.ticker import FuncFormatter

    from .. import plotting

    t = res.monitor
    if t is None or t.empty or not (t["case_type"] == case_type).any():
        return None
    f = Fmt(m)
    case = m.label("case_types", case_type)
    fig = plotting.stock_flow(t, case_type, title=m.fmt("figures.stock_flow_title", case=case))
    ax = fig.axes[0]
    ax.set_ylabel(m["figures"]["stock_flow_ylabel"])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f.fixed(v, 0)))
    # relabel the legend: the two bar series (inflow, outflow, in drawing order), the stock line, the hidden marks
    bars = list(ax.containers)
    handles = [*bars[:2], *ax.lines[:1]]
    names = [m["figures"]["stock_flow_inflow"], m["figures"]["stock_flow_outflow"], m["figures"]["stock_flow_stock"]]
    names = names[:len(handles)]
    hidden_marks = [c for c in ax.collections if c.get_label() and not c.get_label().startswith("_")]
    if hidden_marks:
        handles.append(hidden_marks[0])
        names.append(m["meta"]["suppressed"])
    ax.legend(handles, names, frameon=False)
    return _figure(fig, m, "stock_flow", stock_flow_alt(t, case_type, ax, m, f), case=case)


def stock_flow_alt(t, case_type: str, ax, m: Messages, f: Fmt) -> str:
    """The alt text of the stock-and-flow chart, read from what it draws: the quarters, the range of
    the stock line, and how many quarters have a suppressed value (drawn as a grey cross)."""
    quarters = sorted(t.loc[t["case_type"] == case_type, "quarter"].unique())
    stock = np.asarray(ax.lines[0].get_ydata(), dtype=float)
    inflow = np.array([b.get_height() for b in ax.containers[0]], dtype=float)
    outflow = np.array([b.get_height() for b in ax.containers[1]], dtype=float)
    hidden = int((np.isnan(stock) | np.isnan(inflow) | np.isnan(outflow)).sum())
    shown = stock[np.isfinite(stock)]
    alt = m.fmt("figures.stock_flow_alt", case=m.label("case_types", case_type), first=quarters[0],
                last=quarters[-1], n=f.count(len(quarters)))
    if len(shown):
        alt += " " + m.fmt("figures.stock_flow_alt_range", low=f.count(shown.min()), high=f.count(shown.max()))
    if hidden:
        alt += " " + m.fmt("figures.stock_flow_alt_hidden", n=f.count(hidden))
    return alt
