"""Plots of diagnoses and power curves; they read only the tidy tables (matplotlib imported inside).

::

    fig = plot_power_curve(vm.power_curve(design, vary={"n_clusters": [6, 8, 10]}))
    fig = plot_diagnosis(vm.diagnose(design, n_sims=500).tidy())
"""

from __future__ import annotations

import pandas as pd

__all__ = ["plot_power_curve", "plot_diagnosis"]

_Z = 1.959963984540054


def plot_power_curve(table: pd.DataFrame, parameter: str | None = None, target_power: float | None = 0.8,
                     ax=None):
    """Simulated power (with 95% Monte Carlo intervals) against one varied parameter, a line per
    estimator; the closed-form power (``formula_power``) dashed where the table has it.

    Parameters
    ----------
    table : DataFrame
        From :func:`~verzuimmodel.evaluate.power_curve`.
    parameter : str, optional
        The x axis; by default the first column (the first varied parameter). Other varied
        parameters, if any, split the lines.
    target_power : float, optional
        Drawn as a horizontal line.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    parameter = parameter or table.columns[0]
    if parameter not in table.columns:
        raise ValueError(f"parameter '{parameter}' is not a column of the table")
    varied = list(table.columns[: list(table.columns).index("estimator")])
    others = [c for c in varied if c != parameter]
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    keys = ["estimator", *others]
    for key, g in table.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        g = g.sort_values(parameter)
        label = ", ".join([str(key[0])] + [f"{c}={v}" for c, v in zip(others, key[1:])])
        ax.errorbar(g[parameter], g["power"], yerr=_Z * g["power_mcse"], marker="o", capsize=3, label=label)
    if "formula_power" in table.columns and table["formula_power"].notna().any():
        f = table.drop_duplicates([parameter, *others]).sort_values(parameter)
        for _, g in f.groupby(others, sort=False) if others else [(None, f)]:
            ax.plot(g[parameter], g["formula_power"], ls="--", color="grey", lw=1)
        ax.plot([], [], ls="--", color="grey", lw=1, label="closed form (normal)")
    if target_power is not None:
        ax.axhline(target_power, color="black", lw=0.8, ls=":")
    ax.set_xlabel(parameter)
    ax.set_ylabel("power")
    ax.set_ylim(0, 1.02)
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def plot_diagnosis(tidy: pd.DataFrame, level: float = 0.95, axes=None):
    """Bias, coverage and power per estimator, each with a 95% Monte Carlo interval.

    Parameters
    ----------
    tidy : DataFrame
        :meth:`~verzuimmodel.evaluate.Diagnosis.tidy`.
    level : float
        The intervals' nominal level (``1 - design.alpha``), drawn as the coverage reference.
    axes : sequence of three matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(10, 0.6 * len(tidy) + 1.8), sharey=True)
    else:
        fig = axes[0].figure
    y = range(len(tidy))
    panels = [("bias", "bias_mcse", 0.0, "bias (analysis scale)"),
              ("coverage", "coverage_mcse", level, "coverage"),
              ("power", "power_mcse", None, "power")]
    for ax, (col, mcse, ref, title) in zip(axes, panels):
        ax.errorbar(tidy[col], y, xerr=_Z * tidy[mcse], fmt="o", capsize=3)
        if ref is not None:
            ax.axvline(ref, color="grey", lw=0.8, ls="--")
        ax.set_title(title)
    axes[0].set_yticks(list(y))
    axes[0].set_yticklabels(tidy["estimator"])
    axes[0].set_ylim(len(tidy) - 0.5, -0.5)  # first estimator on top
    fig.tight_layout()
    return fig
