r"""The summaries of survival curves a researcher reports, as R's ``survival`` computes them.

Kaplan–Meier quantiles (R ``quantile.survfit``)
    With :math:`y(t) = 1 - \hat S(t)` on the curve's times (and :math:`y = 0` at time 0), the
    :math:`p`-quantile is the smallest time with :math:`y \ge p`. Where the curve is flat at exactly
    :math:`p` (within :math:`\epsilon = \sqrt{\text{machine eps}}`) over :math:`[t_a, t_b)` it is the
    midpoint :math:`(t_a + t_b)/2`, and :math:`(t_a + t_{\max})/2` when the flat part runs to the
    last time :math:`t_{\max}`. Precisely (R's ``findq``): drop repeated values of :math:`y`, sort the
    rest, take :math:`i_\pm` = the time of the smallest value of :math:`y \pm \epsilon` that is
    :math:`\ge p`, and report :math:`(t_{i_+} + t_{i_-})/2`. The confidence limits are the same rule
    applied to the pointwise band (:math:`1 -` lower limit gives the lower quantile limit,
    :math:`1 -` upper the upper one), so they follow the band's ``conf_type`` (``"log"``, R's
    default, ``"log-log"`` or ``"plain"``; see :mod:`~verzuimmodel.survival.nonparametric`). A
    quantile is missing (NaN) when the curve (or band) never reaches :math:`p`: the ``note`` column says which.

Median as ``print(survfit(...))`` shows it (R ``survmean``)
    The first time with :math:`\hat S(t) < 0.5 + \epsilon`; if :math:`\hat S` is there within
    :math:`\epsilon` of 0.5 and falls further later, the midpoint with the first time it falls below
    that value. Limits: the same rule on the lower and upper band. This differs from
    ``quantile(fit, 0.5)`` when the curve stays at 0.5 up to its last time (print: the start of the
    flat part; quantile: the midpoint to the last time) and when a band is not monotone.

Restricted mean survival time (R ``print(survfit(...), rmean = tau)``, survRM2 ``rmst1``)
    With :math:`t_1 < \dots < t_k \le \tau` the curve's times up to :math:`\tau`, :math:`t_0 = 0`,
    :math:`t_{k+1} = \tau` and :math:`A_j` the area under :math:`\hat S` from :math:`t_j` to :math:`\tau`,

    .. math::

        \widehat{\mathrm{RMST}}(\tau) = \sum_{j=0}^{k} (t_{j+1} - t_j)\,\hat S(t_j), \qquad
        \widehat{\operatorname{Var}} = \sum_{j=1}^{k} A_j^2\, \frac{d_j}{n_j (n_j - d_j)}

    (a term is 0 where :math:`n_j = d_j`; weighted counts with case weights). The interval is
    :math:`\widehat{\mathrm{RMST}} \pm z\,\mathrm{se}`, and the restricted mean time lost
    :math:`\mathrm{RMTL} = \tau - \mathrm{RMST}`. Beyond the last time of a curve R's ``print``
    carries the last value forward; here that needs ``extend=True`` unless the curve has reached 0
    (survRM2's rule: :math:`\tau` at most the last time of a group whose curve ends censored).

Two groups (survRM2 ``rmst2``, unadjusted), group 1 against reference group 0
    Difference :math:`R_1 - R_0`, se :math:`\sqrt{V_1 + V_0}`; ratio :math:`R_1 / R_0` on the log
    scale, se :math:`\sqrt{V_1/R_1^2 + V_0/R_0^2}`; RMTL ratio likewise with :math:`L_g = \tau - R_g`.
    Intervals estimate :math:`\pm z\,\mathrm{se}` (exponentiated for ratios); two-sided Wald
    p-value :math:`2\Phi(-|\text{est}|/\mathrm{se})`.

Cox model curves (R ``survfit(coxph_fit, newdata)``, its default ``stype = 2``)
    :math:`\hat S(t \mid x) = \exp\{-\hat\Lambda_0(t) e^{x'\hat\beta}\}` with the Breslow or Efron
    baseline increments :math:`d\hat\Lambda_k`. The variance of :math:`\hat\Lambda(t \mid x)`
    includes the uncertainty in :math:`\hat\beta` (Tsiatis; R's default):

    .. math::

        \widehat{\operatorname{Var}}\{\hat\Lambda(t \mid x)\} = e^{2x'\hat\beta}\Big[\sum_{t_k \le t} v_k
        + q(t)' V q(t)\Big], \qquad q(t) = \sum_{t_k \le t} (x - \bar x_k)\, d\hat\Lambda_{0k},

    :math:`V` the coefficients' variance (the robust one when the fit has it, as R). Breslow:
    :math:`d\hat\Lambda_{0k} = W_k/S_0`, :math:`v_k = W_k/S_0^2`, :math:`\bar x_k = S_1/S_0`. Efron,
    with :math:`m` tied events, :math:`f_l = l/m` and :math:`D_l = S_0 - f_l S_0^D`:
    :math:`d\hat\Lambda_{0k} = \bar w \sum_l 1/D_l`, :math:`v_k = \bar w \sum_l 1/D_l^2`,
    :math:`\bar x_k\,d\hat\Lambda_{0k}` replaced by :math:`\bar w \sum_l (S_1 - f_l S_1^D)/D_l^2`
    (R's ``agsurv``). The standard error of :math:`\log \hat S = -\hat\Lambda` is that of
    :math:`\hat\Lambda`, and the band is R's ``survfit_confint`` on that scale. Everything is stored
    relative to the weighted mean of the covariates, so uncentred covariates lose no precision.

Every sum is a cumulative sum over sorted times; the only loops are over groups or strata.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .nonparametric import ALL, CurveOptions, _conf_int

__all__ = ["km_quantiles", "km_median", "km_rmst", "rmst_contrast", "cox_survival_curves", "cox_curve_terms"]

_TOL = float(np.sqrt(np.finfo(float).eps))
"""R's tolerance in ``quantile.survfit`` and ``survmean``: ``sqrt(.Machine$double.eps)``."""


# -- the curves of a fitted KaplanMeier -----------------------------------------------------------


def _fitted(km) -> pd.DataFrame:
    if not hasattr(km, "survival_"):
        raise ValueError("the KaplanMeier curve is not fitted: call fit(...) first")
    return km.survival_


def _group_curves(km, level: float | None = None, conf_type: str | None = None) -> list[tuple]:
    """Per group: label and the arrays ``time, surv, low, high, n_risk, n_event`` at every distinct time.

    The band is the fit's own one, or recomputed from the standard error of :math:`\\hat S` for
    another ``level`` or ``conf_type`` (as refitting in R with ``conf.int`` / ``conf.type``).
    """
    s = _fitted(km)
    opt = km.options
    new = CurveOptions(opt.conf_type if conf_type is None else conf_type, opt.level if level is None else level)
    if (new.conf_type, new.level) == (opt.conf_type, opt.level):
        low, high = s["conf_low"].to_numpy(), s["conf_high"].to_numpy()
    else:
        low, high = _conf_int(s["survival"].to_numpy(), s["std_error"].to_numpy(), new.conf_type, new.level)
    if km.by_ is None:
        times, masks = s.index.to_numpy(dtype=float), [np.ones(len(s), dtype=bool)]
    else:
        times = s.index.get_level_values("time").to_numpy(dtype=float)
        labels = s.index.get_level_values("group")
        masks = [np.asarray(labels == g) for g in km.groups_]
    cols = [s[c].to_numpy(dtype=float) for c in ("survival", "n_risk", "n_event")]
    return [(g, times[m], cols[0][m], low[m], high[m], cols[1][m], cols[2][m]) for g, m in zip(km.groups_, masks)]


def _group_labels(km) -> list:
    return [ALL] if km.by_ is None else list(km.groups_)


def _check_probs(probs) -> np.ndarray:
    p = np.atleast_1d(np.asarray(probs, dtype=float))
    if p.ndim != 1 or len(p) == 0 or not np.all((p > 0) & (p < 1)):
        raise ValueError(f"probs: got {probs!r}; expected probabilities strictly between 0 and 1 (the p-quantile is "
                         "the time by which a fraction p has had the event)")
    return p


def _check_tau(tau) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.integer, np.floating)) \
            or not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau: got {tau!r}; expected a finite time > 0 (the upper limit of the restricted mean)")
    return float(tau)


# -- quantiles --------------------------------------------------------------------------------------


def _approx_index(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``approx(y, seq_along(y), p, method = "constant", f = 1)$y`` (0-based, -1 for NA).

    R sorts the non-missing ``y`` and returns, for each ``p``, the position of the smallest value
    ``>= p``; NA below the smallest and above the largest value.
    """
    ok = np.flatnonzero(~np.isnan(y))
    order = ok[np.argsort(y[ok], kind="stable")]
    ys = y[order]
    k = np.searchsorted(ys, p, side="left")
    found = (k < len(ys)) & (p >= ys[0])
    return np.where(found, order[np.minimum(k, len(ys) - 1)], -1)


def _findq(time: np.ndarray, surv: np.ndarray, p: np.ndarray) -> np.ndarray:
    """R's ``survival:::findq`` on the curve (or band) ``surv``: the quantiles ``p``, NaN where not reached."""
    x = np.concatenate([[0.0], time])
    y = np.concatenate([[0.0], 1.0 - surv])
    out = np.full(len(p), np.nan)
    if np.all(np.isnan(y)) or np.nanmax(y) < p.min():
        return out
    xmax = x[-1]
    # duplicated(y): keep the first occurrence of every value (NA counting as one value)
    _, first = np.unique(np.where(np.isnan(y), np.inf, y), return_index=True)
    keep = np.sort(first)
    x, y = x[keep], y[keep]
    i1, i2 = _approx_index(y + _TOL, p), _approx_index(y - _TOL, p)
    both = (i1 >= 0) & (i2 >= 0)
    out[both] = (x[i1[both]] + x[i2[both]]) / 2
    if not np.isnan(y[-1]):                      # flat at p up to the last time: midpoint to the end
        last = (np.abs(p - y[-1]) < _TOL) & (i1 >= 0)
        out[last] = (x[i1[last]] + xmax) / 2
        out[(np.abs(p - y[-1]) < _TOL) & (i1 < 0)] = np.nan
    return out


def _note(estimate: float, low: float, high: float, level: float) -> str:
    """Which values are missing (R's NA) and why; empty when all are defined."""
    parts = [f"{name} not reached: the {curve} does not fall to {level:g}"
             for name, curve, v in (("estimate", "curve", estimate), ("lower limit", "lower band", low),
                                    ("upper limit", "upper band", high)) if np.isnan(v)]
    return "; ".join(parts) + " (R: NA)" if parts else ""


def km_quantiles(km, probs: Sequence[float] = (0.25, 0.5, 0.75), level: float | None = None,
                 conf_type: str | None = None) -> pd.DataFrame:
    """Quantiles of Kaplan–Meier curves with confidence limits, as R's ``quantile(fit, probs, conf.int = TRUE)``.

    Parameters
    ----------
    km : a fitted :class:`~verzuimmodel.survival.KaplanMeier` (one curve per group with ``by``).
    probs : fractions :math:`p` in (0, 1): the :math:`p`-quantile is the time by which a fraction
        :math:`p` has had the event (0.5 the median).
    level, conf_type : the band the limits come from; by default the fit's (R: the ``conf.int`` and
        ``conf.type`` of ``survfit``).

    Returns
    -------
    DataFrame with one row per group and probability: ``group`` (``"all"`` without ``by``),
    ``prob``, ``quantile``, ``conf_low``, ``conf_high`` and ``note``. A value the curve (or its band)
    never reaches is NaN (R's NA), and ``note`` says which; the upper limit often is, as the
    upper band stays high. See the module docstring for R's rule, the midpoint on flat parts included.
    """
    p = _check_probs(probs)
    rows = []
    for g, t, s, low, high, _, _ in _group_curves(km, level, conf_type):
        q, ql, qh = _findq(t, s, p), _findq(t, low, p), _findq(t, high, p)
        rows.append(pd.DataFrame({"group": g, "prob": p, "quantile": q, "conf_low": ql, "conf_high": qh,
                                  "note": [_note(*v, 1 - pp) for pp, v in zip(p, zip(q, ql, qh))]}))
    out = pd.concat(rows, ignore_index=True)
    if km.by_ is None:
        out["group"] = ALL
    return out


# -- the print(survfit) table: median and restricted mean -----------------------------------------


def _minmin(surv: np.ndarray, time: np.ndarray) -> float:
    """R ``survmean``'s median rule on a curve or band (see the module docstring)."""
    keep = ~np.isnan(surv) & (surv < 0.5 + _TOL)
    if not keep.any():
        return np.nan
    x, y = time[keep], surv[keep]
    lower = y < y[0]
    if abs(y[0] - 0.5) < _TOL and lower.any():
        return (x[0] + x[np.argmax(lower)]) / 2
    return float(x[0])


def km_median(km, level: float | None = None, conf_type: str | None = None) -> pd.DataFrame:
    """Median survival with confidence limits as ``print(survfit(...))`` shows them (R ``survmean``).

    Returns a DataFrame with one row per group: ``group``, ``n_max`` (largest number at risk),
    ``n_start`` (number at risk at the first time), ``events`` (weighted counts), ``median``,
    ``conf_low``, ``conf_high`` and ``note`` (which value is not reached, R's NA). The rule differs
    from :func:`km_quantiles` (and ``KaplanMeier.median_``) at 0.5 only where the curve stays at
    exactly 0.5 to its end or a band is not monotone; see the module docstring.
    """
    rows = []
    for g, t, s, low, high, n, d in _group_curves(km, level, conf_type):
        m, ml, mh = _minmin(s, t), _minmin(low, t), _minmin(high, t)
        rows.append({"group": g, "n_max": n.max(), "n_start": n[0], "events": d.sum(), "median": m,
                     "conf_low": ml, "conf_high": mh, "note": _note(m, ml, mh, 0.5)})
    out = pd.DataFrame(rows)
    if km.by_ is None:
        out["group"] = ALL
    return out


def _rmst_one(time: np.ndarray, surv: np.ndarray, n: np.ndarray, d: np.ndarray, tau: float,
              start: float) -> tuple[float, float]:
    """R ``survmean``: restricted mean up to ``tau`` and its variance (module docstring)."""
    keep = time <= tau
    k = int(keep.sum())                          # times are sorted: the first k
    if k == 0:
        return tau, 0.0
    nd = n[:k] - d[:k]
    with np.errstate(divide="ignore", invalid="ignore"):
        hh = np.where(nd <= 1e-12 * n[:k], 0.0, d[:k] / (n[:k] * nd))
    grid = np.concatenate([[start], time[:k], [tau]])
    rect = np.diff(grid) * np.concatenate([[1.0], surv[:k]])
    area_after = np.cumsum(rect[::-1])[::-1][1:]  # A_j: area from t_j to tau, j = 1..k
    return float(rect.sum() + start), float(np.sum(area_after**2 * hh))


def _rmst_table(km, tau: float, extend: bool) -> list[tuple]:
    """Per group: label, RMST, its variance and the curve's last time (checked against ``tau``)."""
    curves = _group_curves(km)
    start = min(0.0, min(float(c[1].min()) for c in curves))      # R: min(0, x$time)
    if not extend:
        beyond = [str(c[0]) for c in curves if tau > c[1][-1] and c[2][-1] > 0]
        if beyond:
            raise ValueError(
                f"tau={tau:g} is beyond the last time of group(s) {', '.join(beyond)}, whose curve ends censored "
                "(above 0): the curve is unknown there. survRM2::rmst2 refuses such a tau; R's print(survfit, "
                "rmean = tau) carries the last value forward: pass extend=True for that")
    return [(c[0], *_rmst_one(c[1], c[2], c[5], c[6], tau, start)) for c in curves]


def km_rmst(km, tau: float, level: float | None = None, extend: bool = False) -> pd.DataFrame:
    """Restricted mean survival time up to ``tau`` with R's standard error (``print(fit, rmean = tau)``).

    Parameters
    ----------
    km : a fitted :class:`~verzuimmodel.survival.KaplanMeier`.
    tau : upper limit of the restricted mean (> 0). Below the first time the mean is ``tau`` with
        standard error 0 (R's ``survmean``; ``print`` itself refuses such a ``tau``).
    level : confidence level of ``rmst +- z se`` (survRM2's interval); by default the fit's.
    extend : beyond the last time of a curve that ends censored, carry its last value forward (R's
        ``print``); without it such a ``tau`` raises a ValueError (survRM2's rule). A curve that
        has reached 0 is 0 beyond its last time either way.

    Returns
    -------
    DataFrame, one row per group: ``group``, ``tau``, ``rmst``, ``std_error``, ``conf_low``,
    ``conf_high``, ``rmtl`` (restricted mean time lost, ``tau - rmst``). The standard error is R's
    Greenwood-type one (module docstring), also where the curve's own band uses the IJ variance.
    """
    tau = _check_tau(tau)
    z = stats.norm.ppf(0.5 + CurveOptions(km.options.conf_type, km.options.level if level is None else level).level / 2)
    rows = [(g, r, np.sqrt(v)) for g, r, v in _rmst_table(km, tau, extend)]
    out = pd.DataFrame({"group": [r[0] for r in rows], "tau": tau, "rmst": [r[1] for r in rows],
                        "std_error": [r[2] for r in rows]})
    out["conf_low"], out["conf_high"] = out["rmst"] - z * out["std_error"], out["rmst"] + z * out["std_error"]
    out["rmtl"] = tau - out["rmst"]
    if km.by_ is None:
        out["group"] = ALL
    return out


def rmst_contrast(km, tau: float, groups: tuple | None = None, level: float | None = None,
                  extend: bool = False) -> pd.DataFrame:
    """Difference and ratio of restricted means of two groups, as survRM2's ``rmst2`` (unadjusted).

    Parameters
    ----------
    km : a :class:`~verzuimmodel.survival.KaplanMeier` fitted with ``by``.
    tau, extend : as :func:`km_rmst`.
    groups : ``(group_1, group_0)``: the group compared and the reference (survRM2's arm 1 and arm
        0). By default, with exactly two groups, the second against the first.
    level : confidence level (survRM2's ``1 - alpha``); by default the fit's.

    Returns
    -------
    DataFrame with rows ``rmst_difference`` (:math:`R_1 - R_0`), ``rmst_ratio`` (:math:`R_1/R_0`)
    and ``rmtl_ratio`` (:math:`L_1/L_0`, restricted mean time lost) and columns ``measure``,
    ``group``, ``reference``, ``tau``, ``estimate``, ``std_error`` (of the difference, of the log
    ratio for the ratios), ``conf_low``, ``conf_high`` and ``p_value`` (two-sided Wald test of no
    difference); formulas in the module docstring.
    """
    tau = _check_tau(tau)
    _fitted(km)
    if groups is None:
        if len(km.groups_) != 2:
            raise ValueError(f"groups: the fit has {len(km.groups_)} group(s) ({', '.join(map(str, km.groups_))}); "
                             "name the two to compare as groups=(group_1, reference)")
        groups = (km.groups_[1], km.groups_[0])
    if len(groups) != 2 or groups[0] == groups[1] or any(g not in list(km.groups_) for g in groups):
        raise ValueError(f"groups: got {groups!r}; expected two different groups of the fit: "
                         f"{', '.join(map(str, km.groups_))}")
    table = {g: (r, v) for g, r, v in _rmst_table(km, tau, extend)}
    (r1, v1), (r0, v0) = table[groups[0]], table[groups[1]]
    z = stats.norm.ppf(0.5 + CurveOptions(km.options.conf_type, km.options.level if level is None else level).level / 2)
    l1, l0 = tau - r1, tau - r0
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.array([r1 - r0, np.log(r1) - np.log(r0), np.log(l1) - np.log(l0)])
        se = np.sqrt([v1 + v0, v1 / r1**2 + v0 / r0**2, v1 / l1**2 + v0 / l0**2])
        p = 2 * stats.norm.sf(np.abs(est) / se)
    lo, hi = est - z * se, est + z * se
    ratio = np.array([False, True, True])
    return pd.DataFrame({"measure": ["rmst_difference", "rmst_ratio", "rmtl_ratio"], "group": groups[0],
                         "reference": groups[1], "tau": tau, "estimate": np.where(ratio, np.exp(est), est),
                         "std_error": se, "conf_low": np.where(ratio, np.exp(lo), lo),
                         "conf_high": np.where(ratio, np.exp(hi), hi), "p_value": p})


# -- Cox model curves -------------------------------------------------------------------------------


def cox_curve_terms(rs, state: dict, beta: np.ndarray) -> dict:
    """Per event time of a fitted Cox model: what the curves' variance needs (called by ``CoxPH.fit``).

    ``rs`` and ``state`` are the :class:`~verzuimmodel.survival.cox.RiskSets` and the state of
    its ``evaluate`` at ``beta``. Returns the weighted covariate mean ``center`` (m) and, per
    (stratum, event time) key, ``hazard`` :math:`d\\Lambda_k`, ``var_hazard`` :math:`v_k` and
    ``xbar`` :math:`(\\bar x_k - m)\\,d\\Lambda_k`, all for the reference profile ``x = m`` (see the
    module docstring; Breslow's terms are Efron's with no tied fractions).
    """
    c = state["c"]
    center = rs.weighted_mean() if rs.p else np.zeros(0)
    # a coefficient running off to infinity (separation, warned by the fit) makes these NaN/inf:
    # the curves then say so, the fit itself does not warn twice
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(center @ beta - state["shift"])             # from the shifted risks to x = center
        hazard = c["0"] * e
        xsum = (state["S1"] * c["2"][:, None] - state["D1"] * c["3"][:, None]) * e
        xbar = xsum - center[None, :] * hazard[:, None]
    return {"center": center, "beta": np.asarray(beta, dtype=float).copy(), "stratum": rs.key_stratum.copy(),
            "time": rs.times.copy(), "hazard": hazard, "var_hazard": c["2"] * e * e,
            "xbar": xbar}


def _newdata_strata(model, newdata: pd.DataFrame) -> np.ndarray:
    """Stratum code of every row of ``newdata`` (0 without strata)."""
    if model.strata_ is None:
        return np.zeros(len(newdata), dtype=np.int64)
    cols = [model.strata_] if isinstance(model.strata_, str) else list(model.strata_)
    missing = [c for c in cols if c not in newdata.columns]
    if missing:
        raise ValueError(f"newdata: the model is stratified by {', '.join(cols)}; column(s) {', '.join(missing)} "
                         "not found (each row needs its stratum's baseline)")
    key = newdata[cols[0]] if len(cols) == 1 else pd.MultiIndex.from_frame(newdata[cols])
    codes = model._strata_labels.get_indexer(key)
    if (codes < 0).any():
        bad = pd.Index(key)[codes < 0].unique()[:5]
        raise ValueError(f"newdata: strata {', '.join(map(str, bad))} are not in the fitted data (R: 'New data set "
                         "has strata levels not found in the original')")
    return codes.astype(np.int64)


def cox_survival_curves(model, newdata: pd.DataFrame, times: Sequence[float] | None = None,
                        conf_type: str = "log", level: float | None = None) -> pd.DataFrame:
    """Survival curves of the rows of ``newdata`` with standard errors and bands, as R's ``survfit(fit, newdata)``.

    Parameters
    ----------
    model : a fitted :class:`~verzuimmodel.survival.CoxPH`.
    newdata : covariate profiles (the model's covariates, and its strata columns when stratified).
    times : where to evaluate the curves (step functions: 1 before the first event time); by default
        the event times of each row's stratum.
    conf_type : ``"log"`` (R's default), ``"log-log"`` or ``"plain"``.
    level : confidence level; by default the model's.

    Returns
    -------
    Long DataFrame, ordered by row of ``newdata`` then time: ``row`` (the index label of
    ``newdata``), ``time``, ``survival``, ``std_error`` (of :math:`\\hat S`), ``cumulative_hazard``,
    ``std_error_cumhaz`` (of :math:`\\hat\\Lambda`, R's ``std.err``), ``conf_low``, ``conf_high``.
    The variance includes the uncertainty in :math:`\\hat\\beta` (module docstring). As
    :meth:`~verzuimmodel.survival.CoxPH.predict_survival`, an ``offset`` of the fit is not added.
    """
    if not hasattr(model, "_curve_terms"):
        raise ValueError("the CoxPH model is not fitted: call fit(...) first")
    if not isinstance(newdata, pd.DataFrame) or len(newdata) == 0:
        raise ValueError("newdata: expected a DataFrame with at least one row")
    opt = CurveOptions(conf_type, model.options.level if level is None else level)
    terms = model._curve_terms
    newdata = model.design_.new_frame(newdata)
    missing = [c for c in model.covariates_ if c not in newdata.columns]
    if missing:
        raise ValueError(f"newdata: covariate column(s) {', '.join(missing)} not found")
    X = newdata[model.covariates_].to_numpy(dtype=float).reshape(len(newdata), -1)
    if not np.isfinite(X).all():
        raise ValueError("newdata: missing or infinite covariate values")
    if times is not None:
        times = np.atleast_1d(np.asarray(times, dtype=float))
        if times.ndim != 1 or not np.isfinite(times).all():
            raise ValueError("times: expected finite numbers")
    codes = _newdata_strata(model, newdata)
    V = model.variance_.to_numpy()
    beta, m = terms["beta"], terms["center"]
    Xc = X - m
    r = np.exp(Xc @ beta)
    q = np.einsum("ij,jk,ik->i", Xc, V, Xc)
    blocks = []
    for g in np.unique(codes):
        rows = np.flatnonzero(codes == g)
        k = terms["stratum"] == g
        tg = terms["time"][k]
        cum = [np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(a[k], axis=0)])
               for a in (terms["hazard"], terms["var_hazard"], terms["xbar"])]
        t = tg if times is None else times
        j = np.searchsorted(tg, t, side="right")           # 0: before the first event time
        L, Vh, Q = cum[0][j], cum[1][j], cum[2][j]           # T, T, T x p
        QV = Q @ V
        quad = L[:, None] ** 2 * q[rows] - 2 * L[:, None] * (QV @ Xc[rows].T) + np.sum(QV * Q, axis=1)[:, None]
        var = np.maximum(Vh[:, None] + quad, 0.0) * r[rows] ** 2
        H = L[:, None] * r[rows]
        blocks.append((np.repeat(rows, len(t)), np.tile(t, len(rows)), H.T.ravel(), np.sqrt(var).T.ravel()))
    pos, time, H, se_h = (np.concatenate(b) for b in zip(*blocks))
    order = np.lexsort((time, pos))
    pos, time, H, se_h = pos[order], time[order], H[order], se_h[order]
    S = np.exp(-H)
    low, high = _conf_int(S, S * se_h, opt.conf_type, opt.level)
    return pd.DataFrame({"row": newdata.index.to_numpy()[pos], "time": time, "survival": S, "std_error": S * se_h,
                         "cumulative_hazard": H, "std_error_cumhaz": se_h, "conf_low": low, "conf_high": high})
