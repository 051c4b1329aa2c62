"""Plots of the signal module; they read tidy tables only (matplotlib and seaborn imported inside)."""

from __future__ import annotations

import pandas as pd

__all__ = ["plot_calibration"]


def plot_calibration(table: pd.DataFrame, *, validation: str | None = None, signals: list[str] | None = None,
                     ax=None):
    """Calibration plot: observed event rate against mean predicted risk, per signal.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`verzuimmodel.signal.calibration_table` output (or ``FittedSignal.calibration``):
        ``validation, signal, mean_predicted, observed, conf_low, conf_high``.
    validation : str, optional
        Which validation scheme to draw (default: the first in the table).
    signals : list of str, optional
        Signals to draw (default: all in the table).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        Points with Wilson intervals per risk bin and the diagonal of perfect calibration.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    need = {"validation", "signal", "mean_predicted", "observed", "conf_low", "conf_high"}
    missing = need - set(table.columns)
    if missing:
        raise ValueError(f"the calibration table lacks column(s) {sorted(missing)}")
    validation = validation or table["validation"].iloc[0]
    t = table[table["validation"] == validation]
    if signals is not None:
        t = t[t["signal"].isin(signals)]
    if t.empty:
        raise ValueError(f"nothing to plot for validation {validation!r} and signals {signals!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    palette = sns.color_palette(n_colors=t["signal"].nunique())
    for colour, (name, g) in zip(palette, t.groupby("signal", sort=False)):
        ax.errorbar(g["mean_predicted"], g["observed"],
                    yerr=[g["observed"] - g["conf_low"], g["conf_high"] - g["observed"]],
                    fmt="o-", color=colour, capsize=2, label=name)
    top = float(max(t["mean_predicted"].max(), t["conf_high"].max())) * 1.05
    ax.plot([0, top], [0, top], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("predicted risk (mean in bin)")
    ax.set_ylabel("observed share with long-term absence in VO")
    ax.set_title(f"Calibration ({validation})")
    ax.legend(frameon=False)
    return ax
