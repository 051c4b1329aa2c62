"""Plots of tidy results. Plotting only: every function reads a tidy table and draws it.

matplotlib and seaborn are imported inside the functions, so importing verzuimmodel never needs
a display or a plotting backend. Each function takes an optional ``ax`` and returns the
``matplotlib.figure.Figure``.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["stock_flow", "running_durations", "cumulative_incidence", "forest"]

OUTCOME_LABELS = {"own_school": "eigen school", "other_school": "andere school / dagbesteding", "work": "werk",
                  "specialist_care": "specialistische zorg", "exemption": "vrijstelling"}


def _axes(ax, figsize=(8, 4.5)):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax.figure, ax


def _hidden_marks(ax, points) -> None:
    """A grey "x" on the axis at every hidden value of ``points`` ((x, value) pairs)."""
    xs = [x for x, v in points if v is None or v is pd.NA or pd.isna(v)]
    if xs:
        ax.scatter(xs, [0] * len(xs), marker="x", color="grey", zorder=4, clip_on=False,
                   label="afgeschermd")


def stock_flow(table: pd.DataFrame, case_type: str = "LRV", group=None, ax=None, title: str | None = None):
    """Stock at the end of each quarter (line) with inflow and outflow (bars) from :func:`monitor.quarterly`.

    Hidden cells (disclosure control) are never drawn as numbers, nor as zero: a hidden bar or
    point is a grey "x" on the axis. Without ``group``, groups are added up per quarter and a sum
    with a hidden part is hidden (a partial sum would be a number that is not the total).
    """
    fig, ax = _axes(ax)
    t = table[table["case_type"] == case_type]
    if group is not None:
        t = t[t["group"] == group]
    cols = ["stock_end", "inflow", "outflow"]
    hidden = t[cols].isna().groupby(t["quarter"], sort=True).any()
    t = t.groupby("quarter", sort=True)[cols].sum(min_count=1).astype(float).where(~hidden)
    x = range(len(t))
    ax.bar([i - 0.2 for i in x], t["inflow"].astype(float), width=0.4, label="instroom", color="#4c72b0")
    ax.bar([i + 0.2 for i in x], t["outflow"].astype(float), width=0.4, label="uitstroom", color="#dd8452")
    ax.plot(list(x), t["stock_end"].astype(float), color="black", marker="o", label="lopend (einde kwartaal)")
    _hidden_marks(ax, [(i + dx, v) for dx, col in ((-0.2, "inflow"), (0.2, "outflow"), (0.0, "stock_end"))
                       for i, v in zip(x, t[col])])
    step = max(1, len(t) // 12)
    ax.set_xticks(list(x)[::step], t.index[::step], rotation=45, ha="right")
    ax.set_ylabel("aantal")
    ax.set_title(title or f"Voorraad en stroom: {case_type}")
    ax.legend(frameon=False)
    return fig


def running_durations(table: pd.DataFrame, case_type: str = "LRV", quarter: str | None = None, ax=None):
    """Running cases by how long they have lasted, at the end of a quarter (default: the last)."""
    fig, ax = _axes(ax, (6, 4))
    t = table[table["case_type"] == case_type]
    quarter = quarter or t["quarter"].max()
    t = t[t["quarter"] == quarter]
    hidden = t["count"].isna().groupby(t["duration"], observed=False).any()
    t = t.groupby("duration", observed=False)["count"].sum(min_count=1).astype(float).where(~hidden)
    ax.bar(t.index.astype(str), t.astype(float), color="#55a868")
    _hidden_marks(ax, list(enumerate(t)))
    ax.set_ylabel("lopende gevallen")
    ax.set_title(f"Duur lopende gevallen ({case_type}, {quarter})")
    return fig


def cumulative_incidence(curves: pd.DataFrame, ax=None, labels: dict | None = None):
    """Cumulative incidence of each outcome by days since the first day of absence (with 95% bands)."""
    fig, ax = _axes(ax)
    labels = labels or OUTCOME_LABELS
    for outcome, c in curves.groupby("outcome", sort=False):
        line = ax.step(c["time"], c["estimate"], where="post", label=labels.get(outcome, outcome))[0]
        ax.fill_between(c["time"], c["conf_low"], c["conf_high"], step="post", alpha=0.15,
                        color=line.get_color())
    ax.set_xlabel("dagen sinds eerste verzuimdag")
    ax.set_ylabel("cumulatieve incidentie")
    ax.set_ylim(0, 1)
    ax.legend(frameon=False)
    return fig


def forest(effects: pd.DataFrame, label: str = "estimator", ax=None, reference: float | None = 1.0,
           truth: float | None = None, xlabel: str = "rate ratio"):
    """Estimates with intervals side by side (log axis), e.g. the effect estimators of an approach."""
    fig, ax = _axes(ax, (7, 0.5 * len(effects) + 1.5))
    y = list(range(len(effects)))[::-1]
    ax.errorbar(effects["estimate"], y, xerr=[effects["estimate"] - effects["conf_low"],
                                             effects["conf_high"] - effects["estimate"]],
                fmt="o", color="black", capsize=3)
    ax.set_yticks(y, effects[label].astype(str))
    ax.set_xscale("log")
    if reference is not None:
        ax.axvline(reference, color="grey", lw=1)
    if truth is not None:
        ax.axvline(truth, color="#c44e52", ls="--", lw=1, label="true value")
        ax.legend(frameon=False)
    ax.set_xlabel(xlabel)
    return fig
