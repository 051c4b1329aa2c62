"""Plots of fitted survival models: curves with a number-at-risk table, forest plots, Cox residuals.

Plotting only: every function reads a fitted model (or a tidy table) and draws it; nothing here
fits. matplotlib (and statsmodels' lowess) are imported inside the functions, so importing
verzuimmodel never needs a plotting backend, and the fitting modules import this module only
inside their ``.plot()`` methods. Each function takes an optional ``ax`` and returns the
``matplotlib.figure.Figure``. Labels are English. Only aggregates are drawn (curves, counts at
risk, coefficients, residual points): never a row's identifier.

- :func:`plot_curves`: Kaplan–Meier survival or Aalen–Johansen cumulative incidence as step
  curves per group, with the pointwise band, censoring ticks and a number-at-risk table under the
  axis (R's ``plot(survfit)``, survminer's ``ggsurvplot(risk.table = TRUE)``).
- :func:`forest_plot`: estimates with intervals per term of any tidy table.
- :func:`plot_residuals`: martingale or deviance residuals of a Cox model against the linear
  predictor or a covariate, or scaled Schoenfeld residuals against transformed time per term
  (R's ``plot(cox.zph(fit))``), each with a lowess smooth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["plot_curves", "forest_plot", "plot_residuals", "numbers_at_risk", "risk_table_axes", "RISK_TABLE_LABEL"]

RISK_TABLE_LABEL = "risk table"
"""Label of the axes holding the number-at-risk table (see :func:`risk_table_axes`)."""
PLOT_RESIDUAL_TYPES = ("martingale", "deviance", "scaled_schoenfeld")


def _axes(ax, figsize=(7, 4.5)):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax.figure, ax


def risk_table_axes(fig):
    """The number-at-risk axes drawn by :func:`plot_curves` on ``fig`` (None if there is none)."""
    for a in fig.axes:
        for b in [a, *a.child_axes]:
            if b.get_label() == RISK_TABLE_LABEL:
                return b
    return None


# -- survival and cumulative incidence curves -----------------------------------------------------


def _curve_frames(fit):
    """(label, group, tidy rows of one curve) per curve, the kind ("km"/"aj") and the risk-set rows per group."""
    from .survival.nonparametric import AalenJohansen, KaplanMeier

    if isinstance(fit, KaplanMeier):
        if not hasattr(fit, "survival_"):
            raise ValueError("plot_curves: the KaplanMeier is not fitted: call .fit(df, ...) first")
        kind = "km"
    elif isinstance(fit, AalenJohansen):
        if not hasattr(fit, "cumulative_incidence_"):
            raise ValueError("plot_curves: the AalenJohansen is not fitted: call .fit(df, ...) first")
        kind = "aj"
    else:
        raise TypeError(f"plot_curves: expected a fitted KaplanMeier or AalenJohansen, got {type(fit).__name__}")
    t = fit.tidy()
    curves, risk = [], {}
    for g in fit.groups_:
        tg = t[t["group"] == g]
        if kind == "km":
            curves.append((str(g), g, tg))
            risk[g] = tg[["time", "n_risk"]]
        else:
            for cause, tc in tg.groupby("cause", sort=True):
                head = f"cause {cause}"
                curves.append((head if fit.by_ is None else f"{g}: {head}", g, tc))
            risk[g] = tg.drop_duplicates("time")[["time", "n_risk"]] if len(tg) else \
                pd.DataFrame({"time": [], "n_risk": []})
    return kind, curves, risk


def numbers_at_risk(times_, n_risk, at) -> np.ndarray:
    """Number at risk at times ``at`` from a curve's exit times and numbers at risk there.

    The number at risk at the first exit time on or after ``t`` (0 after the last), as R's
    ``summary(survfit, times)``: exact without late entry; with late entry rows entering between
    ``t`` and that exit time are counted too.
    """
    times_, n_risk = np.asarray(times_, dtype=float), np.asarray(n_risk, dtype=float)
    i = np.searchsorted(times_, np.asarray(at, dtype=float), side="left")
    return np.concatenate([n_risk, [0.0]])[i]


def _format_count(v: float, weighted: bool) -> str:
    return f"{v:,.1f}" if weighted else f"{v:,.0f}"


def plot_curves(fit, ax=None, ci: bool = True, risk_table: bool = True, times=None, censor: bool = True,
                xlabel: str = "time", ylabel: str | None = None, title: str | None = None):
    """Step curves per group of a fitted :class:`~verzuimmodel.survival.KaplanMeier` (survival) or
    :class:`~verzuimmodel.survival.AalenJohansen` (cumulative incidence, one curve per cause and group).

    Parameters
    ----------
    fit : the fitted estimator.
    ax : axes to draw on; by default a new figure with the curves above and the risk table below.
        With ``ax`` given the table is an inset under it (leave room: it hangs below the axis).
    ci : draw the pointwise confidence band (``conf_low``, ``conf_high`` of ``tidy()``).
    risk_table : draw the numbers at risk per group at ``times`` (see :func:`numbers_at_risk`).
    times : times of the risk table (and the x ticks); default: the axis' ticks from 0 to the last time.
    censor : Kaplan–Meier only: a "|" on the curve at every time with censored rows.

    Curves start at time 0 (or the first exit time if earlier) at 1 (survival) or 0 (incidence).
    Weighted counts in the table are shown with one decimal.
    """
    kind, curves, risk = _curve_frames(fit)
    with_table = risk_table and len(risk) > 0
    if ax is None:
        import matplotlib.pyplot as plt

        if with_table:
            fig, (ax, tab) = plt.subplots(2, 1, sharex=True, figsize=(7, 5 + 0.25 * len(risk)), layout="constrained",
                                          height_ratios=[4, 0.6 + 0.3 * len(risk)])
        else:
            fig, ax = _axes(None)
    else:
        tab = None
    fig = ax.figure
    start_y = 1.0 if kind == "km" else 0.0
    all_times = np.concatenate([c["time"].to_numpy(dtype=float) for _, _, c in curves] or [np.zeros(0)])
    t0 = min(0.0, all_times.min()) if len(all_times) else 0.0
    for label, _, c in curves:
        x = np.concatenate([[t0], c["time"].to_numpy(dtype=float)])
        y = np.concatenate([[start_y], c["estimate"].to_numpy(dtype=float)])
        line = ax.step(x, y, where="post", label=label)[0]
        line.set_gid(f"curve:{label}")
        if ci:
            lo = np.concatenate([[start_y], c["conf_low"].to_numpy(dtype=float)])
            hi = np.concatenate([[start_y], c["conf_high"].to_numpy(dtype=float)])
            band = ax.fill_between(x, lo, hi, step="post", alpha=0.2, color=line.get_color(), linewidth=0)
            band.set_gid(f"band:{label}")
        if censor and kind == "km":
            cens = c[c["n_censor"] > 0]
            mark = ax.plot(cens["time"], cens["estimate"], ls="none", marker="|", ms=8, color=line.get_color())[0]
            mark.set_gid(f"censor:{label}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(ylabel or ("survival probability" if kind == "km" else "cumulative incidence"))
    if title:
        ax.set_title(title)
    if len(curves) > 1:
        ax.legend(frameon=False)
    t_end = all_times.max() if len(all_times) else 1.0
    if times is None:
        times = ax.xaxis.get_major_locator().tick_values(t0, t_end)
        times = times[(times >= t0) & (times <= t_end)]
    times = np.atleast_1d(np.asarray(times, dtype=float))
    if times.ndim != 1 or not np.isfinite(times).all():
        raise ValueError("times: expected finite numbers")
    ax.set_xticks(times)
    left = min(t0, times.min()) if len(times) else t0
    right = max(t_end, times.max()) if len(times) else t_end
    pad = 0.04 * (right - left) if right > left else 1.0      # room for the table's first and last numbers
    ax.set_xlim(left - pad, right + pad)
    if not with_table:
        ax.set_xlabel(xlabel)
        return fig
    if tab is None:
        tab = ax.inset_axes([0.0, -0.22 - 0.09 * len(risk), 1.0, 0.07 * len(risk) + 0.04], sharex=ax)
        tab.tick_params(axis="x", bottom=False, labelbottom=False)
        tab.spines["bottom"].set_visible(False)
        ax.set_xlabel(xlabel)
    else:
        tab.set_xlabel(xlabel)
    tab.set_label(RISK_TABLE_LABEL)
    weighted = not all(np.allclose(r["n_risk"], np.round(r["n_risk"])) for r in risk.values())
    groups = list(risk)
    for row, g in enumerate(groups):
        y = len(groups) - 1 - row
        n = numbers_at_risk(risk[g]["time"], risk[g]["n_risk"], times)
        for t, v in zip(times, n):
            tab.text(t, y, _format_count(v, weighted), ha="center", va="center", fontsize=8)
    tab.set_ylim(-0.5, len(groups) - 0.5)
    tab.set_yticks(range(len(groups))[::-1], [str(g) for g in groups], fontsize=8)
    tab.tick_params(axis="y", length=0)
    if kind == "km":        # group names in their curve's colour
        for tick, line in zip(tab.get_yticklabels(), [ln for ln in ax.get_lines() if ln.get_gid() and
                                                      ln.get_gid().startswith("curve:")]):
            tick.set_color(line.get_color())
    for side in ("top", "right", "left"):
        tab.spines[side].set_visible(False)
    tab.set_title("number at risk", fontsize=9, loc="left")
    return fig


# -- forest plot ----------------------------------------------------------------------------------


def forest_plot(tidy_df: pd.DataFrame, exp: bool = True, ax=None, label: str = "term", xlabel: str | None = None,
                reference: float | None = None, title: str | None = None):
    """Forest plot of a tidy table: a point per term at its estimate, a whisker over its interval.

    ``exp=True`` draws ``exp_estimate``, ``exp_conf_low``, ``exp_conf_high`` (hazard or rate ratios)
    on a log axis with a reference line at 1; ``exp=False`` draws ``estimate``, ``conf_low``,
    ``conf_high`` with a reference line at 0 (or at ``reference`` when given). Terms run top to bottom in table order. Non-finite limits (an unbounded interval) are
    drawn to the edge of the axis.
    """
    cols = ["exp_estimate", "exp_conf_low", "exp_conf_high"] if exp else ["estimate", "conf_low", "conf_high"]
    if not isinstance(tidy_df, pd.DataFrame):
        raise TypeError(f"forest_plot: expected a tidy DataFrame, got {type(tidy_df).__name__}")
    missing = [c for c in [label, *cols] if c not in tidy_df.columns]
    if missing:
        raise ValueError(f"forest_plot: the table has no column(s) {', '.join(map(repr, missing))}")
    if len(tidy_df) == 0:
        raise ValueError("forest_plot: the table has no rows")
    est, lo, hi = (tidy_df[c].to_numpy(dtype=float) for c in cols)
    if exp and np.isnan(est).all():
        raise ValueError("forest_plot: exp_estimate is missing for every term (a model without exponentiated "
                         "estimates): use exp=False")
    fig, ax = _axes(ax, (7, 0.4 * len(tidy_df) + 1.5))
    y = np.arange(len(tidy_df))[::-1].astype(float)
    vals = np.concatenate([est, lo, hi])
    vals = vals[np.isfinite(vals) & ((vals > 0) if exp else True)]
    edge_lo, edge_hi = (vals.min(), vals.max()) if len(vals) else ((0.5, 2.0) if exp else (-1.0, 1.0))
    lo_d = np.where(np.isfinite(lo) & ((lo > 0) if exp else True), lo, edge_lo)
    hi_d = np.where(np.isfinite(hi), hi, edge_hi)
    ok = np.isfinite(est) & ((est > 0) if exp else True)
    container = ax.errorbar(est[ok], y[ok], xerr=[est[ok] - lo_d[ok], hi_d[ok] - est[ok]], fmt="o",
                            color="black", capsize=3)
    container.lines[0].set_gid("forest")
    ax.set_yticks(y, tidy_df[label].astype(str))
    ref = reference if reference is not None else (1.0 if exp else 0.0)
    ax.axvline(ref, color="grey", lw=1, ls="--", gid="reference")
    if exp:
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: _log_minor_label(ax, v)))
    ax.set_xlabel(xlabel or ("exp(estimate)" if exp else "estimate"))
    ax.set_ylim(-0.7, len(tidy_df) - 0.3)
    if title:
        ax.set_title(title)
    return fig


def _log_minor_label(ax, v: float) -> str:
    """Minor ticks of a log axis in plain numbers: all of them over a narrow range, 2 and 5 over a wider one."""
    lo, hi = ax.get_xlim()
    mantissa = round(v / 10 ** np.floor(np.log10(v)), 6)
    return f"{v:g}" if hi / lo < 4 or (hi / lo < 200 and mantissa in (2.0, 5.0)) else ""


# -- Cox residuals --------------------------------------------------------------------------------


def _smooth(ax, x, y, frac: float, color="#c44e52"):
    from statsmodels.nonparametric.smoothers_lowess import lowess

    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0:
        return None
    fitted = lowess(y[ok], x[ok], frac=frac, return_sorted=True)
    return ax.plot(fitted[:, 0], fitted[:, 1], color=color, lw=2, gid="lowess")[0]


def plot_residuals(cox, df: pd.DataFrame, type: str = "martingale", covariate: str | None = None, ax=None,
                   transform="km", frac: float = 2 / 3):
    """Residual plots of a fitted :class:`~verzuimmodel.survival.CoxPH` with a lowess smooth (statsmodels).

    Parameters
    ----------
    cox : the fitted model; ``df`` the data frame it was fitted on.
    type : ``"martingale"`` or ``"deviance"``: :meth:`CoxPH.residuals` per row against the linear
        predictor ``x'beta`` (or the column ``covariate`` of ``df``: a functional-form check), with a
        reference line at 0. ``"scaled_schoenfeld"`` (R's ``"scaledsch"``): one point per death against
        transformed time (``transform`` as :func:`~verzuimmodel.survival.cox_zph`: ``"km"``, ``"rank"``,
        ``"identity"``, ``"log"`` or a function), one panel per term (only ``covariate`` with a
        name), the smooth estimating :math:`\\beta_j(t)` and a dashed line at :math:`\\hat\\beta_j`: a
        flat smooth supports proportional hazards (as R's ``plot(cox.zph(fit))``; the residuals are
        R's ``residuals(fit, "scaledsch")``).
    ax : axes (one panel only); by default a new figure.
    frac : the lowess span.
    """
    from .survival.cox import CoxPH

    kind = {"scaledsch": "scaled_schoenfeld"}.get(type, type)
    if kind not in PLOT_RESIDUAL_TYPES:
        raise ValueError(f"plot_residuals: type: got {type!r}; expected one of "
                         f"{', '.join(map(repr, PLOT_RESIDUAL_TYPES))}")
    if not isinstance(cox, CoxPH):
        raise TypeError(f"plot_residuals: expected a fitted CoxPH, got {cox.__class__.__name__}")
    if not hasattr(cox, "params_"):
        raise ValueError("plot_residuals: the CoxPH is not fitted: call .fit(df, ...) first")
    if kind == "scaled_schoenfeld":
        return _plot_schoenfeld(cox, df, covariate, ax, transform, frac)
    r = cox.residuals(df, kind)
    if covariate is None:
        x = cox.predict_log_partial_hazard(df.loc[r.index]).to_numpy(dtype=float)
        xlabel = "linear predictor"
    else:
        if covariate not in df.columns:
            raise ValueError(f"plot_residuals: covariate {covariate!r} is not a column of df")
        x = pd.to_numeric(df.loc[r.index, covariate], errors="coerce").to_numpy(dtype=float)
        if np.isnan(x).all():
            raise ValueError(f"plot_residuals: covariate {covariate!r} is not numeric")
        xlabel = covariate
    y = r.to_numpy(dtype=float)
    fig, ax = _axes(ax)
    ax.scatter(x, y, s=8, alpha=0.4, color="#4c72b0", gid="residuals", rasterized=len(y) > 5000)
    _smooth(ax, x, y, frac)
    ax.axhline(0.0, color="grey", lw=1, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{kind} residual")
    return fig


def _plot_schoenfeld(cox, df, covariate, ax, transform, frac):
    from .survival.cox_checks import _time_transform, model_data

    terms = list(cox.covariates_)
    if covariate is not None:
        if covariate not in terms:
            raise ValueError(f"plot_residuals: covariate {covariate!r} is not a term of the model; terms: "
                             f"{', '.join(terms)}")
        terms = [covariate]
    if ax is not None and len(terms) > 1:
        raise ValueError("plot_residuals: the model has several terms: pass covariate= to draw one of them on ax")
    r = cox.residuals(df, "scaled_schoenfeld")
    md = model_data(cox, df)
    ev = md.d.event == 1
    g = _time_transform(md.d, transform)[ev]
    if not np.allclose(r.index.get_level_values("time"), md.d.exit[ev]):     # same deaths, same order
        raise RuntimeError("plot_residuals: the residuals and event times are not aligned")
    if ax is None:
        import matplotlib.pyplot as plt

        ncol = min(len(terms), 3)
        nrow = -(-len(terms) // ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(4.5 * ncol, 3.5 * nrow), layout="constrained", squeeze=False)
        axes = axes.ravel()
        for extra in axes[len(terms):]:
            extra.set_visible(False)
    else:
        fig, axes = ax.figure, [ax]
    tname = transform if isinstance(transform, str) else "transformed"
    for a, term in zip(axes, terms):
        y = r[term].to_numpy(dtype=float)
        a.scatter(g, y, s=8, alpha=0.4, color="#4c72b0", gid=f"residuals:{term}", rasterized=len(y) > 5000)
        _smooth(a, g, y, frac)
        a.axhline(float(cox.params_[term]), color="grey", lw=1, ls="--", gid="coefficient")
        a.set_xlabel("time" if tname == "identity" else f"time ({tname} scale)")
        a.set_ylabel(f"beta(t) for {term}")
    return fig
