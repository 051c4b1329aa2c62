"""Sensitivity of an effect to unmeasured confounding: E-values and a bias-factor table.

An observational estimate of an intervention's effect (a kernpartnerteam, a verzuimcoach, a
school's preventive approach) can be confounded by something nobody measured. Two tools say how
strong that confounding would have to be:

- the **E-value** (VanderWeele & Ding 2017): the minimum strength of association, on the risk
  ratio scale, that an unmeasured confounder :math:`U` would need with both the exposure
  :math:`E` and the outcome :math:`D`, conditional on the measured covariates, to explain the
  observed association away entirely; reported for the estimate and for the confidence limit
  closest to the null (:func:`evalue`, :func:`add_evalues`);
- the **bias factor** of Ding & VanderWeele (2016): for a confounder of given strengths
  :math:`RR_{EU}` and :math:`RR_{UD}`, how far it can move the estimate and its interval
  (:func:`bias_table`).

:func:`evalue_sentence` says the result in one plain sentence (Dutch by default)::

    from verzuimmodel import effects
    row = effects.estimate(cohort, "vo_nb_glmm")              # a rate ratio with its interval
    tab = effects.add_evalues(row, measure="rate")            # + evalue, evalue_ci
    effects.evalue_sentence(tab["evalue"].iloc[0], tab["evalue_ci"].iloc[0], "ongeoorloofd verzuim")
    effects.bias_table(0.80, 0.71, 0.91)                      # how a confounder moves it

References
----------
Ding P, VanderWeele TJ (2016). Sensitivity analysis without assumptions. *Epidemiology* 27(3):368–377.
VanderWeele TJ, Ding P (2017). Sensitivity analysis in observational research: introducing the
E-value. *Annals of Internal Medicine* 167(4):268–274.
VanderWeele TJ (2017). On a square-root transformation of the odds ratio for a common outcome.
*Epidemiology* 28(6):e58–e60.
Mathur MB, Ding P, Riddell CA, VanderWeele TJ (2018). Web site and R package for computing
E-values. *Epidemiology* 29(5):e45–e47.
VanderWeele TJ, Ding P, Mathur M (2019). Technical considerations in the use of the E-value.
*Journal of Causal Inference* 7(2):20180007.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple, get_args

import numpy as np
import pandas as pd

__all__ = ["EValue", "MEASURES", "evalue", "bias_factor", "bias_table", "add_evalues", "evalue_sentence",
           "evalue_text"]

Measure = Literal["RR", "rate", "HR", "OR", "RD", "MD", "SMD"]
MEASURES: tuple[str, ...] = get_args(Measure)
_RATIOS = ("RR", "rate", "HR", "OR")
_COMMON = ("HR", "OR")                # measures that need to know whether the outcome is common

#: Default grid of confounder strengths for :func:`bias_table`.
STRENGTHS = (1.25, 1.5, 2.0, 3.0, 5.0)


class EValue(NamedTuple):
    """E-value of the point estimate and of the confidence limit closest to the null (``nan``
    when no interval was given); floats for scalar input, arrays otherwise."""

    point: float | np.ndarray
    ci: float | np.ndarray


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------

def _show(x) -> str:
    """A value for a one-line message: its repr, or the size of an array."""
    return repr(x) if np.ndim(x) == 0 else f"{np.size(x)} values"


def _array(x, name: str) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number or an array of numbers, got {_show(x)}") from None
    if np.isnan(a).any():
        raise ValueError(f"{name}: expected numbers, got NaN{_where(np.isnan(a))}")
    return a


def _where(bad: np.ndarray) -> str:
    if bad.ndim == 0:
        return ""
    idx = np.flatnonzero(bad)
    more = f" and {idx.size - 3} more" if idx.size > 3 else ""
    return f" at position {', '.join(map(str, idx[:3]))}{more}"


def _require(ok: np.ndarray, msg: str) -> None:
    bad = ~np.asarray(ok, dtype=bool)
    if bad.any():
        raise ValueError(msg + _where(bad))


def _measure(measure) -> str:
    if measure not in MEASURES:
        raise ValueError(f"measure: got {measure!r}; expected one of {', '.join(MEASURES)}")
    return measure


# --------------------------------------------------------------------------------------------
# conversion to the risk-ratio scale
# --------------------------------------------------------------------------------------------

def _hr_common(hr: np.ndarray) -> np.ndarray:
    """RR ≈ (1 − 0.5^√HR) / (1 − 0.5^√(1/HR)) (VanderWeele & Ding 2017, Table 2); 1 at HR = 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rr = (1.0 - 0.5 ** np.sqrt(hr)) / (1.0 - 0.5 ** np.sqrt(1.0 / hr))
    return np.where(hr == 1.0, 1.0, rr)


def _to_rr(x: np.ndarray, measure: str, common, p0, sd) -> np.ndarray:
    """Map a value on the measure's own scale to the (approximate) risk-ratio scale; ``common``
    (HR and OR) may hold one flag per element."""
    if measure in ("RR", "rate"):
        return x
    if measure == "HR":
        return np.where(common, _hr_common(x), x)
    if measure == "OR":
        return np.where(common, np.sqrt(x), x)
    if measure == "RD":
        return np.maximum(p0 + x, 0.0) / p0
    d = x if measure == "SMD" else x / sd
    return np.exp(0.91 * d)


def _null(measure: str) -> float:
    """The null of a measure: 1 for ratios, 0 for differences."""
    return 1.0 if measure in _RATIOS else 0.0


def _e(rr: np.ndarray) -> np.ndarray:
    """E = RR + √(RR (RR − 1)) for RR ≥ 1; E(1/RR) for RR < 1."""
    r = np.where(rr >= 1.0, rr, 1.0 / rr)
    return r + np.sqrt(r * (r - 1.0))


def _prepare(estimate, conf_low, conf_high, measure, outcome_common, risk_unexposed, sd, true):
    """Validate the input on the measure's scale; return ``(rr, lo, hi, rr_true)`` on the
    risk-ratio scale (``lo`` and ``hi`` are ``None`` without an interval)."""
    measure = _measure(measure)
    est = _array(estimate, "estimate")
    if (conf_low is None) != (conf_high is None):
        raise ValueError("conf_low, conf_high: give both confidence limits or neither")
    lo = hi = None
    if conf_low is not None:
        lo, hi = _array(conf_low, "conf_low"), _array(conf_high, "conf_high")
    t = _array(_null(measure) if true is None else true, "true")
    if measure in _COMMON:
        if outcome_common is None:
            raise ValueError(f"outcome_common: for a {measure}, say whether the outcome is common (True: 15% or more "
                             "by the end of follow-up) or rare (False)")
        common = np.asarray(outcome_common)
        if common.dtype != bool:
            raise ValueError(f"outcome_common: expected True or False, got {_show(outcome_common)}"
                             + ("" if common.ndim == 0 else f" of type {common.dtype}"))
    elif outcome_common is not None:
        raise ValueError(f"outcome_common: only for HR and OR; a {measure} needs no rare-outcome assumption")
    else:
        common = None
    if risk_unexposed is not None and measure != "RD":
        raise ValueError(f"risk_unexposed: only for measure='RD', not {measure!r}")
    if sd is not None and measure != "MD":
        raise ValueError(f"sd: only for measure='MD' (a mean difference), not {measure!r}")
    p0 = s = None
    if measure in _RATIOS:
        _require(np.isfinite(est) & (est > 0), f"estimate: expected a positive, finite {measure}")
        _require(np.isfinite(t) & (t > 0), f"true: expected a positive, finite {measure}")
        if lo is not None:
            _require(lo > 0, "conf_low: expected a positive ratio")
            _require(hi > 0, "conf_high: expected a positive ratio")
    elif measure == "RD":
        if risk_unexposed is None:
            raise ValueError("risk_unexposed: for a risk difference, give the outcome's risk in the comparison arm")
        p0 = _array(risk_unexposed, "risk_unexposed")
        _require((p0 > 0) & (p0 < 1), "risk_unexposed: expected a risk strictly between 0 and 1")
        _require(np.isfinite(est) & (p0 + est > 0) & (p0 + est <= 1),
                 "estimate: expected a risk difference with risk_unexposed + estimate in (0, 1]")
        _require(p0 + t > 0, "true: expected a risk difference with risk_unexposed + true > 0")
    else:
        _require(np.isfinite(est), "estimate: expected a finite mean difference")
        _require(np.isfinite(t), "true: expected a finite mean difference")
        if measure == "MD":
            if sd is None:
                raise ValueError("sd: for a mean difference, give the standard deviation of the outcome")
            s = _array(sd, "sd")
            _require(np.isfinite(s) & (s > 0), "sd: expected a positive, finite standard deviation")
    if lo is not None:
        _require(lo <= est, "conf_low: expected a lower limit at or below the estimate")
        _require(est <= hi, "conf_high: expected an upper limit at or above the estimate")
    conv = lambda x: _to_rr(x, measure, common, p0, s)   # noqa: E731
    rr, rr_true = conv(est), conv(t)
    return rr, (None if lo is None else conv(lo)), (None if hi is None else conv(hi)), rr_true


# --------------------------------------------------------------------------------------------
# E-values
# --------------------------------------------------------------------------------------------

def evalue(estimate, conf_low=None, conf_high=None, *, measure: Measure = "RR", outcome_common: bool | None = None,
           risk_unexposed=None, sd=None, true=None) -> EValue:
    r"""E-value of an estimate and of its confidence limit closest to the null.

    The E-value is the minimum strength of association, on the risk ratio scale, that an
    unmeasured confounder would need with both the exposure and the outcome, conditional on the
    measured covariates, to explain the observed association away (VanderWeele & Ding 2017). For
    an observed risk ratio :math:`RR`:

    .. math::

        E(RR) = RR + \sqrt{RR\,(RR - 1)} \quad (RR \ge 1), \qquad E(RR) = E(1/RR) \quad (RR < 1).

    It is the common value :math:`RR_{EU} = RR_{UD} = E` at which the bias factor of Ding &
    VanderWeele (2016), :math:`B = RR_{EU} RR_{UD} / (RR_{EU} + RR_{UD} - 1)`, equals the
    observed :math:`RR`: :math:`E^2 / (2E - 1) = RR`.

    For the interval, the limit closest to the null is used: the lower limit :math:`L` for
    :math:`RR > 1`, the upper limit :math:`U` for :math:`RR < 1`; the E-value is 1 when the
    interval contains the null (nothing needs explaining away to make it not significant).
    With ``true`` :math:`\ne 1` the E-value moves the estimate to ``true`` instead of the null:
    :math:`E(RR / RR_{true})` (VanderWeele, Ding & Mathur 2019), and likewise for the limit closest
    to ``true``.

    Other measures are first put on the risk-ratio scale (VanderWeele & Ding 2017, Table 2):

    - ``"RR"`` and ``"rate"`` (a rate ratio, e.g. of absence hours per enrolled day) are used as
      they are (Mathur et al. 2018 list rate ratios with risk ratios);
    - ``"HR"`` and ``"OR"`` with a rare outcome (``outcome_common=False``: under 15% by the end of
      follow-up) are used as risk ratios; with a common outcome (``outcome_common=True``)
      :math:`RR \approx (1 - 0.5^{\sqrt{HR}}) / (1 - 0.5^{\sqrt{1/HR}})` and
      :math:`RR \approx \sqrt{OR}` (VanderWeele 2017). Return to school after a long absence is
      common: its hazard ratios need ``outcome_common=True``;
    - ``"RD"``: a risk difference :math:`p_1 - p_0` with the comparison arm's risk
      ``risk_unexposed`` :math:`= p_0`; the two arm risks give :math:`RR = p_1 / p_0 = (p_0 + RD)/p_0`,
      and each confidence limit of the RD is mapped the same way with :math:`p_0` held fixed (an
      approximation that ignores the uncertainty in :math:`p_0`; a limit at or below
      :math:`-p_0` maps to 0). This is the E-value of the causal risk ratio, which is 1 exactly
      when the causal risk difference is 0. (Ding & VanderWeele 2016 also give a bound for the
      population-standardised risk difference, which needs the exposure prevalence; it is not
      used here.);
    - ``"SMD"`` (a standardised mean difference :math:`d`) and ``"MD"`` (a mean difference, with
      the outcome's standard deviation ``sd``: :math:`d = MD / sd`):
      :math:`RR \approx \exp(0.91\,d)`, each limit likewise, which at the 95% level is
      :math:`\exp(0.91\,d \pm 1.78\,s_d)` of VanderWeele & Ding (2017); ``sd`` is treated as known.

    Parameters
    ----------
    estimate : float or array_like
        Point estimate(s) on the measure's own scale (ratios, not log ratios).
    conf_low, conf_high : float or array_like, optional
        The confidence limits, on the same scale; both or neither. ``conf_high`` may be ``inf``.
    measure : {"RR", "rate", "HR", "OR", "RD", "MD", "SMD"}
    outcome_common : bool or array of bool, optional
        Required for ``"HR"`` and ``"OR"`` (whether the outcome occurs in 15% or more by the end of
        follow-up), not allowed for the other measures.
    risk_unexposed : float or array_like, optional
        For ``"RD"`` only: the risk in the comparison arm, in (0, 1).
    sd : float or array_like, optional
        For ``"MD"`` only: the standard deviation of the outcome.
    true : float or array_like, optional
        The value to move the estimate to, on the measure's scale; by default the null (1 for the
        ratios, 0 for RD, MD and SMD).

    Returns
    -------
    EValue
        ``(point, ci)``: E-values (each at least 1) of the estimate and of the confidence limit
        closest to ``true``; ``ci`` is ``nan`` without an interval. Floats for scalar input,
        arrays (broadcast) otherwise.

    Raises
    ------
    ValueError
        One line naming the argument: an unknown measure, NaN, a ratio that is not positive, an
        interval that does not contain the estimate, a risk outside (0, 1), a missing
        ``outcome_common``, ``risk_unexposed`` or ``sd``, or one given where it has no use.

    Examples
    --------
    Breastfeeding and infant death from respiratory infection, RR 3.9 (1.8 to 8.7) (VanderWeele &
    Ding 2017): E-values 7.26 and 3.0.

    >>> e = evalue(3.9, 1.8, 8.7)
    >>> round(e.point, 2), round(e.ci, 2)
    (7.26, 3.0)
    """
    rr, lo, hi, rt = _prepare(estimate, conf_low, conf_high, measure, outcome_common, risk_unexposed, sd, true)
    rr, rt = np.broadcast_arrays(rr, rt)
    with np.errstate(divide="ignore", invalid="ignore"):
        point = np.where(rr == rt, 1.0, _e(rr / rt))
        if lo is None:
            ci = np.full(rr.shape, np.nan)
        else:
            lo, hi = np.broadcast_to(lo, rr.shape), np.broadcast_to(hi, rr.shape)
            up = rr > rt                               # the limit closest to `true`: lower if above it
            limit = np.where(up, lo, hi)
            beyond = np.where(up, limit > rt, limit < rt)
            ci = np.where(beyond & (rr != rt), _e(limit / rt), 1.0)
    if point.ndim == 0:
        return EValue(float(point), float(ci))
    return EValue(point, ci)


# --------------------------------------------------------------------------------------------
# bias factor
# --------------------------------------------------------------------------------------------

def bias_factor(rr_eu, rr_ud) -> float | np.ndarray:
    r"""Bounding factor of Ding & VanderWeele (2016, *Epidemiology*):

    .. math:: B = \frac{RR_{EU}\,RR_{UD}}{RR_{EU} + RR_{UD} - 1},

    the largest factor by which a confounder with these strengths can move a risk ratio:
    :math:`RR_{EU}`, the largest ratio of the confounder's prevalence between exposed and
    unexposed, and :math:`RR_{UD}`, the largest risk ratio of the outcome between its levels (both
    at least 1). Vectorised (broadcasting)."""
    eu, ud = _array(rr_eu, "rr_eu"), _array(rr_ud, "rr_ud")
    _require(np.isfinite(eu) & (eu >= 1), "rr_eu: expected confounder strengths of at least 1")
    _require(np.isfinite(ud) & (ud >= 1), "rr_ud: expected confounder strengths of at least 1")
    b = eu * ud / (eu + ud - 1.0)
    return float(b) if b.ndim == 0 else b


def bias_table(estimate: float, conf_low: float, conf_high: float, rr_eu=STRENGTHS, rr_ud=STRENGTHS, *,
               measure: Measure = "RR", outcome_common: bool | None = None, risk_unexposed: float | None = None,
               sd: float | None = None) -> pd.DataFrame:
    r"""How an estimate and its interval move under an unmeasured confounder of given strengths.

    For every pair of strengths :math:`(RR_{EU}, RR_{UD})` of the grid, the bias factor
    :math:`B` (:func:`bias_factor`) bounds the confounding (Ding & VanderWeele 2016): the true risk
    ratio is at least :math:`RR_{obs} / B` when :math:`RR_{obs} \ge 1` and at most
    :math:`RR_{obs} \times B` when :math:`RR_{obs} < 1`. The estimate and both limits are moved that
    way, towards the null (and past it when :math:`B` exceeds the estimate's distance from it).

    Parameters
    ----------
    estimate, conf_low, conf_high : float
        One estimate and its interval, on the measure's scale (as in :func:`evalue`).
    rr_eu, rr_ud : sequence of float
        The confounder's strengths of association with the exposure and with the outcome (each
        at least 1); every combination is a row.
    measure, outcome_common, risk_unexposed, sd
        As in :func:`evalue`: the estimate is first put on the risk-ratio scale.

    Returns
    -------
    DataFrame
        One row per pair: ``rr_eu``, ``rr_ud``, ``bias_factor``; ``estimate``, ``conf_low``,
        ``conf_high`` after the worst-case shift; ``ci_excludes_null`` (the moved interval still
        excludes 1); ``explained_away`` (the moved estimate reaches or crosses 1); ``scale``:
        ``"RR"`` when the numbers are the input's own ratios (RR, rate ratio, rare-outcome HR or OR),
        ``"approx_RR"`` when converted (common-outcome HR or OR, RD, MD, SMD).
        The row with ``rr_eu == rr_ud ==`` :func:`evalue` of the estimate is where it is just
        explained away.
    """
    for name, v in (("estimate", estimate), ("conf_low", conf_low), ("conf_high", conf_high)):
        if np.ndim(v) != 0:
            raise ValueError(f"{name}: expected one number (one effect per table), got {_show(v)}")
    rr, lo, hi, _ = _prepare(estimate, conf_low, conf_high, measure, outcome_common, risk_unexposed, sd, None)
    eu, ud = (np.asarray(g, dtype=float).ravel() for g in (rr_eu, rr_ud))
    if eu.size == 0 or ud.size == 0:
        raise ValueError("rr_eu, rr_ud: expected at least one confounder strength each")
    EU, UD = (m.ravel() for m in np.meshgrid(eu, ud, indexing="ij"))
    b = np.asarray(bias_factor(EU, UD), dtype=float)
    harmful = float(rr) >= 1.0
    move = (lambda x: x / b) if harmful else (lambda x: x * b)
    est, low, high = move(float(rr)), move(float(lo)), move(float(hi))
    converted = measure in ("RD", "MD", "SMD") or (measure in _COMMON and bool(outcome_common))
    return pd.DataFrame({
        "rr_eu": EU, "rr_ud": UD, "bias_factor": b, "estimate": est, "conf_low": low, "conf_high": high,
        "ci_excludes_null": (low > 1.0) if harmful else (high < 1.0),
        "explained_away": (est <= 1.0) if harmful else (est >= 1.0),
        "scale": "approx_RR" if converted else "RR"})


# --------------------------------------------------------------------------------------------
# tidy tables
# --------------------------------------------------------------------------------------------

def _per_row(x, df: pd.DataFrame, name: str):
    """A scalar, a column name, or one value per row."""
    if x is None:
        return None
    if isinstance(x, str):
        if x not in df.columns:
            raise ValueError(f"{name}: no column {x!r} in the table")
        return df[x].to_numpy()
    a = np.asarray(x)
    if a.ndim == 0:
        return np.full(len(df), a.item())
    if a.shape != (len(df),):
        raise ValueError(f"{name}: expected one value or one per row ({len(df)}), got {a.shape[0]} values")
    return a


def add_evalues(tidy: pd.DataFrame, *, measure: Measure | None = None, outcome_common=None, risk_unexposed=None,
                sd=None, columns: tuple[str, str, str] | None = None) -> pd.DataFrame:
    """A copy of a tidy effects table with the E-values of each row: ``evalue`` (of the estimate)
    and ``evalue_ci`` (of the confidence limit closest to the null), from :func:`evalue`.

    Works on the one-row table of :func:`~verzuimmodel.effects.estimate` (ratios already
    exponentiated for ``scale="log"`` estimators), on ``time_to_return(cohort).effects``
    (hazard ratios) and on a model's ``tidy()`` (see ``columns``).

    Parameters
    ----------
    tidy : DataFrame
    measure : str or sequence of str, optional
        The measure of all rows (see :func:`evalue`) or one per row; by default the table's
        ``measure`` column. A table with a ``scale`` column (from ``effects.estimate``) is checked
        against it: ``"log"`` rows must be ratios (RR, rate, HR, OR), ``"identity"`` rows
        differences (RD, MD, SMD).
    outcome_common : bool, sequence of bool or column name, optional
        For HR and OR rows (required there, see :func:`evalue`); other rows do not use it.
    risk_unexposed, sd : float, sequence or column name, optional
        For RD rows and MD rows respectively.
    columns : (estimate, conf_low, conf_high), optional
        The columns to read. Default: ``("exp_estimate", "exp_conf_low", "exp_conf_high")`` for ratio
        rows of a model's ``tidy()`` table (log-scale ``estimate`` beside ``exp_*`` columns),
        otherwise ``("estimate", "conf_low", "conf_high")``.

    Returns
    -------
    DataFrame
        ``tidy`` with ``evalue`` and ``evalue_ci`` appended (``nan`` in ``evalue_ci`` where the
        table has no interval columns).

    Raises
    ------
    ValueError
        No measure, a measure that does not fit a row's ``scale``, or a bad row (the message names
        the row's position).
    """
    if not isinstance(tidy, pd.DataFrame):
        raise ValueError(f"tidy: expected a DataFrame, got {type(tidy).__name__}")
    n = len(tidy)
    if measure is None:
        if "measure" not in tidy.columns:
            raise ValueError("measure: give the measure of the estimates (e.g. 'HR', 'rate') or a 'measure' column")
        measures = tidy["measure"].to_numpy()
    elif isinstance(measure, str):
        measures = np.full(n, _measure(measure), dtype=object)
    else:
        measures = np.asarray(list(measure), dtype=object)
        if measures.shape != (n,):
            raise ValueError(f"measure: expected one measure or one per row ({n}), got {measures.size}")
    for m in pd.unique(measures):
        _measure(m)
    if "scale" in tidy.columns:
        scale = tidy["scale"].to_numpy()
        ratio = np.isin(measures, _RATIOS)
        bad = ((scale == "log") & ~ratio) | ((scale == "identity") & ratio)
        _require(~bad, "measure: does not fit the table's scale (ratios for 'log' rows, differences for 'identity')")
    common, p0, s = (_per_row(x, tidy, nm) for x, nm in ((outcome_common, "outcome_common"),
                                                         (risk_unexposed, "risk_unexposed"), (sd, "sd")))
    point, ci = np.full(n, np.nan), np.full(n, np.nan)
    for m in pd.unique(measures):
        rows = np.flatnonzero(measures == m)
        cols = columns
        if cols is None:
            tidy_layout = m in _RATIOS and "exp_estimate" in tidy.columns
            cols = ("exp_estimate", "exp_conf_low", "exp_conf_high") if tidy_layout else \
                ("estimate", "conf_low", "conf_high")
        missing = [c for c in (cols if columns is not None else cols[:1]) if c not in tidy.columns]
        if missing:
            raise ValueError(f"columns: no column {missing[0]!r} in the table")
        has_ci = cols[1] in tidy.columns and cols[2] in tidy.columns
        sub = tidy.iloc[rows]
        kw = {"measure": m,
              "outcome_common": None if m not in _COMMON or common is None else np.asarray(common[rows].tolist()),
              "risk_unexposed": None if m != "RD" or p0 is None else p0[rows].astype(float),
              "sd": None if m != "MD" or s is None else s[rows].astype(float)}
        try:
            e = evalue(sub[cols[0]].to_numpy(float), sub[cols[1]].to_numpy(float) if has_ci else None,
                       sub[cols[2]].to_numpy(float) if has_ci else None, **kw)
        except ValueError as err:
            raise ValueError(f"{err} (rows of measure {m!r}: positions {', '.join(map(str, rows[:5]))}"
                             f"{'...' if rows.size > 5 else ''})") from None
        point[rows], ci[rows] = e.point, e.ci
    out = tidy.copy()
    out["evalue"], out["evalue_ci"] = point, ci
    return out


# --------------------------------------------------------------------------------------------
# plain language
# --------------------------------------------------------------------------------------------

_TEXT = {
    "nl": {
        "exposure": "de interventie",
        "none": "Deze schatting wijst niet op een effect; er valt dus niets weg te verklaren.",
        "main": ("Een onbekend verschil tussen de groepen zou de kans op {outcome} én de kans op {exposure} "
                 "elk met minstens een factor {x} moeten veranderen om dit effect helemaal te verklaren"),
        "ci": "; om het niet meer aantoonbaar te maken is al een factor {y} genoeg.",
        "ci_null": "; aantoonbaar is het nu al niet, want de onzekerheidsmarge omvat ook 'geen effect'.",
        "end": ".",
    },
    "en": {
        "exposure": "receiving the intervention",
        "none": "This estimate shows no effect, so there is nothing to explain away.",
        "main": ("An unknown difference between the groups would have to change both the chance of {outcome} and "
                 "the chance of {exposure} by a factor of at least {x} each to explain this effect away entirely"),
        "ci": "; a factor of {y} would already be enough to make it no longer statistically demonstrable.",
        "ci_null": "; it is already not statistically demonstrable, as its uncertainty margin includes 'no effect'.",
        "end": ".",
    },
}


def evalue_text(e: float, digits: int = 1, decimal: str = ".") -> str:
    """An E-value rounded *down* (never overstating robustness) to ``digits`` decimals, or to one
    more while that would show 1 (1.04 -> "1.04", not "1.0"); exactly 1 (an interval that holds
    the null) reads "1"."""
    if e <= 1.0:
        return "1"
    d = digits
    while True:
        v = math.floor(e * 10 ** d + 1e-9) / 10 ** d
        if v > 1.0 or d >= digits + 2:
            break
        d += 1
    return f"{v:.{d}f}".replace(".", decimal)


def evalue_sentence(evalue: float, evalue_ci: float | None, outcome_label: str, lang: Literal["nl", "en"] = "nl",
                    *, exposure_label: str | None = None, digits: int = 1) -> str:
    """One plain sentence saying what an effect's E-values mean (Dutch by default).

    Dutch, with ``evalue=2.3``, ``evalue_ci=1.4`` and ``outcome_label="terugkeer naar school"``:
    "Een onbekend verschil tussen de groepen zou de kans op terugkeer naar school én de kans op de
    interventie elk met minstens een factor 2,3 moeten veranderen om dit effect helemaal te
    verklaren; om het niet meer aantoonbaar te maken is al een factor 1,4 genoeg." When the
    interval already contains the null (``evalue_ci == 1``) the second half says so; without an
    interval (``None`` or NaN) it is left out; an estimate at the null (``evalue == 1``) gets a
    sentence of its own. The factor is the E-value's strength of association on the risk-ratio
    scale with both exposure and outcome (VanderWeele & Ding 2017).

    Parameters
    ----------
    evalue, evalue_ci : float
        From :func:`evalue` or :func:`add_evalues` (at least 1; ``evalue_ci`` not above ``evalue``).
    outcome_label : str
        The outcome after "de kans op" / "the chance of", e.g. "terugkeer naar school".
    lang : {"nl", "en"}
        Dutch numbers have a decimal comma.
    exposure_label : str, optional
        The exposure after the second "de kans op" / "the chance of" (default "de interventie" /
        "receiving the intervention"), e.g. "de aanpak op school".
    digits : int
        Decimals of the factors, which are rounded down so that the sentence never overstates
        robustness (one more decimal while the rounded factor would read 1).
    """
    if lang not in _TEXT:
        raise ValueError(f"lang: got {lang!r}; expected one of {', '.join(_TEXT)}")
    if not isinstance(outcome_label, str) or not outcome_label.strip():
        raise ValueError(f"outcome_label: expected a non-empty text, got {outcome_label!r}")
    if exposure_label is not None and (not isinstance(exposure_label, str) or not exposure_label.strip()):
        raise ValueError(f"exposure_label: expected a non-empty text, got {exposure_label!r}")
    if not isinstance(digits, (int, np.integer)) or isinstance(digits, bool) or digits < 0:
        raise ValueError(f"digits: expected a whole number of at least 0, got {digits!r}")
    e = float(evalue)
    if not e >= 1.0:
        raise ValueError(f"evalue: expected an E-value of at least 1, got {evalue!r}")
    no_ci = evalue_ci is None or (isinstance(evalue_ci, (float, np.floating)) and math.isnan(evalue_ci))
    if not no_ci:
        eci = float(evalue_ci)
        if not 1.0 <= eci <= e:
            raise ValueError(f"evalue_ci: expected an E-value between 1 and evalue ({e:g}), got {evalue_ci!r}")
    t = _TEXT[lang]
    if e == 1.0:
        return t["none"]
    decimal = "," if lang == "nl" else "."
    text = t["main"].format(outcome=outcome_label.strip(), exposure=(exposure_label or t["exposure"]).strip(),
                            x=evalue_text(e, digits, decimal))
    if no_ci:
        return text + t["end"]
    if eci == 1.0:
        return text + t["ci_null"]
    return text + t["ci"].format(y=evalue_text(eci, digits, decimal))
