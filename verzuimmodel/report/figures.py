"""Figures of a report, drawn by :mod:`verzuimmodel.plotting` from the (disclosure-controlled) tidy
results and embedded as ``data:image/png;base64`` URIs, so the HTML needs no other file.

Every label comes from the message catalogue; each function returns ``{"src", "alt", "caption"}``
or None when there is nothing to draw.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from ..disclosure import MIN_COUNT
from .results import RETURN_TO_SCHOOL, Results
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


def _figure(fig, m: Messages, key: str, **values) -> dict[str, str]:
    values.setdefault("min", MIN_COUNT)
    return {"src": png_data_uri(fig), "alt": m.fmt(f"figures.{key}_alt", **values),
            "caption": m.fmt(f"figures.{key}_caption", **values)}


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


def return_curves(res: Results, m: Messages):
    """Cumulative incidence of each outcome (outcomes with fewer than 10 events are not drawn)."""
    from .. import plotting

    c = res.curves
    if c is None or c.empty:
        return None
    if (c["outcome"] != RETURN_TO_SCHOOL).any() and not res.collapsed:
        c = c[c["outcome"] != RETURN_TO_SCHOOL]          # its parts are drawn instead
    labels = {o: m.label("outcomes", o) for o in c["outcome"].unique()}
    fig = plotting.cumulative_incidence(c, labels=labels)
    ax = fig.axes[0]
    ax.set_xlabel(m["figures"]["return_xlabel"])
    ax.set_ylabel(m["figures"]["return_ylabel"])
    for months, day in ((3, 91), (6, 182), (12, 365)):
        ax.axvline(day, color="grey", lw=0.6, ls=":")
    ax.set_xlim(left=0)
    return _figure(fig, m, "return")


def interventions(res: Results, m: Messages):
    """Hazard ratios of each intervention: time-varying (right) next to naive (the immortal-time trap)."""
    from .. import plotting

    e = res.effects
    if e is None or e.empty:
        return None
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
    _ratio_axis(ax, Fmt(m))
    _legend_below(fig, ax)
    return _figure(fig, m, "interventions")


def estimators(res: Results, m: Messages):
    """The PO approach's estimators side by side (forest plot), the cautionary one in red."""
    from .. import plotting

    est = res.estimates
    if est is None or est.empty:
        return None
    est = est.dropna(subset=["estimate", "conf_low", "conf_high"]).reset_index(drop=True)
    if est.empty:
        return None
    f = Fmt(m)
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
    return _figure(fig, m, "estimators", design=m.label("designs", res.overview["design"] or "unknown"),
                   n=len(est), value=f.ratio(1.0))


def stock_flow(res: Results, m: Messages, case_type: str = "LRV"):
    """Stock and flow of long-term absence per quarter (suppressed counts are gaps)."""
    from .. import plotting

    t = res.monitor
    if t is None or t.empty or not (t["case_type"] == case_type).any():
        return None
    fig = plotting.stock_flow(t, case_type, title=m.fmt("figures.stock_flow_title",
                                                         case=m.label("case_types", case_type)))
    ax = fig.axes[0]
    ax.set_ylabel(m["figures"]["stock_flow_ylabel"])
    # relabel the legend: the two bar series (inflow, outflow, in drawing order) and the stock line
    bars = list(ax.containers)
    handles = [*bars[:2], *ax.lines[:1]]
    names = [m["figures"]["stock_flow_inflow"], m["figures"]["stock_flow_outflow"], m["figures"]["stock_flow_stock"]]
    ax.legend(handles, names[:len(handles)], frameon=False)
    return _figure(fig, m, "stock_flow", case=m.label("case_types", case_type))
