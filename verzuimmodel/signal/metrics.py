"""Performance measures of a risk score or a binary signal, with optional case weights.

Every function takes a 0/1 outcome ``y``, a score and optional non-negative weights ``weight``
(a bootstrap replicate's multiplicities: a pupil drawn twice has weight 2, so a weighted
measure equals the measure on the replicate with the rows repeated). Measures that are
undefined (no events, no non-events, nothing flagged, a constant risk) are NaN.

``auc``
    Area under the ROC curve: the probability that a random event scores above a random
    non-event, ties counting one half (Mann-Whitney). Defined for a binary signal too.
``brier``
    Mean squared difference between the predicted risk and the outcome.
``recalibration``
    Logistic recalibration on the logit of the risk: the *calibration slope* ``b`` from
    ``logit P(y = 1) = a + b logit(p)`` and the *calibration intercept* (calibration-in-the-large)
    ``a`` from ``logit P(y = 1) = a + logit(p)`` (slope fixed at 1). A well-calibrated risk has
    intercept 0 and slope 1; a slope below 1 means the risks are too extreme (overfitting).
``alert_flags``
    Flag the highest scores: the top share (or number) of pupils in each cohort, see
    :class:`Alert`.
``sensitivity``, ``ppv``
    Share of events flagged and share of flagged pupils with an event.
``calibration_curve``
    Observed event rate against mean predicted risk in bins of the risk (for the plot).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, logit

__all__ = ["Alert", "auc", "brier", "recalibration", "calibration_intercept", "calibration_slope",
           "alert_flags", "sensitivity", "ppv", "calibration_curve"]

EPS = 1e-6
"""Risks are clipped to ``[EPS, 1 - EPS]`` before taking logits."""


@dataclass(frozen=True)
class Alert:
    """Which pupils a risk model flags: the highest risks in each cohort.

    Parameters
    ----------
    kind : {"share", "count"}
        ``"share"``: the top ``value`` share of each cohort (default 5%); ``"count"``: the top
        ``value`` pupils of each cohort (e.g. the number a JGZ nurse can see in a year).
    value : float
        The share (between 0 and 1) or the number of pupils.

    Notes
    -----
    In a cohort of ``n`` pupils the top ``round(value * n)`` (share) or ``min(value, n)`` (count)
    are flagged. Equal risks at the cut-off are taken in row order (stable sort).
    """

    kind: Literal["share", "count"] = "share"
    value: float = 0.05

    def __post_init__(self):
        if self.kind == "share":
            if not 0 < self.value < 1:
                raise ValueError(f"an alert share must lie strictly between 0 and 1, got {self.value}")
        elif self.kind == "count":
            if self.value < 1 or float(self.value) != int(self.value):
                raise ValueError(f"an alert count must be a whole number of pupils >= 1, got {self.value}")
        else:
            raise ValueError(f"alert kind must be 'share' or 'count', got {self.kind!r}")

    def describe(self) -> str:
        """Plain-language description, e.g. ``"top 5% of each cohort"``."""
        if self.kind == "share":
            return f"top {100 * self.value:g}% of each cohort"
        return f"top {int(self.value)} pupils of each cohort"


def _arrays(y, score, weight):
    y = np.asarray(y, dtype=float)
    s = np.asarray(score, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"y and the score must be 1-d arrays of the same length, got {y.shape} and {s.shape}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must hold 0/1 outcomes")
    w = np.ones_like(y) if weight is None else np.asarray(weight, dtype=float)
    if w.shape != y.shape or (w < 0).any():
        raise ValueError("weight must be non-negative and as long as y")
    return y, s, w


def auc(y, score, weight=None, *, ranks: np.ndarray | None = None) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half).

    Parameters
    ----------
    y : array of 0/1
    score : array of float
        Higher means more at risk; a 0/1 signal is allowed.
    weight : array of float, optional
        Case weights (bootstrap multiplicities).
    ranks : array of int, optional
        Dense ranks of ``score`` (``np.unique(score, return_inverse=True)[1]``), to skip the sort
        when the same scores are evaluated many times.

    Returns
    -------
    float
        NaN without events or without non-events.
    """
    y, s, w = _arrays(y, score, weight)
    if ranks is None:
        ranks = np.unique(s, return_inverse=True)[1]
    size = int(ranks.max()) + 1 if len(ranks) else 0
    pos = np.bincount(ranks, w * y, minlength=size)
    neg = np.bincount(ranks, w * (1.0 - y), minlength=size)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos <= 0 or n_neg <= 0:
        return np.nan
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + 0.5 * neg)) / (n_pos * n_neg))


def brier(y, risk, weight=None) -> float:
    """Brier score: weighted mean of ``(risk - y)^2``."""
    y, p, w = _arrays(y, risk, weight)
    total = w.sum()
    return float(np.sum(w * (p - y) ** 2) / total) if total > 0 else np.nan


def _logistic(x: np.ndarray | None, y: np.ndarray, w: np.ndarray, offset: np.ndarray,
              start: tuple[float, ...] | None = None, max_iter: int = 100, tol: float = 1e-8):
    """Weighted logistic regression of ``y`` on ``[1, x]`` (or ``1`` if ``x`` is None) with ``offset``.

    Newton-Raphson with step halving on the log-likelihood, written out for one or two
    coefficients. Returns ``(coef, cov)`` (``cov`` the inverse observed information) or ``None``
    when the fit is undefined (no events or no non-events, a constant ``x``, no convergence, as
    under complete separation).
    """
    ny = float(np.dot(w, y))
    nn = float(w.sum()) - ny
    if ny <= 0 or nn <= 0:
        return None
    keep = w > 0
    if not keep.all():
        y, w, offset = y[keep], w[keep], offset[keep]
        x = None if x is None else x[keep]
    two = x is not None
    if two and np.ptp(x) == 0:
        return None
    if start is None:
        a0 = np.log(ny / nn) - np.average(offset, weights=w)
        start = (a0, 0.0) if two else (a0,)
    beta = np.asarray(start, dtype=float)

    def linear(b):
        return b[0] + offset + (b[1] * x if two else 0.0)

    def loglik(eta):
        return float(np.sum(w * (y * eta - np.logaddexp(0.0, eta))))

    def information(eta):
        mu = expit(eta)
        v = w * mu * (1.0 - mu)
        if not two:
            return mu, np.array([[v.sum()]])
        vx = v * x
        s1 = vx.sum()
        return mu, np.array([[v.sum(), s1], [s1, float(vx @ x)]])

    eta = linear(beta)
    ll = loglik(eta)
    for _ in range(max_iter):
        mu, info = information(eta)
        r = w * (y - mu)
        grad = np.array([r.sum(), float(r @ x)]) if two else np.array([r.sum()])
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            return None
        t = 1.0
        while True:
            new = beta + t * step
            eta_new = linear(new)
            ll_new = loglik(eta_new)
            if ll_new >= ll - 1e-12 * (1.0 + abs(ll)) or t < 1e-8:
                break
            t /= 2
        beta, eta, ll = new, eta_new, ll_new
        if np.max(np.abs(t * step)) < tol:
            try:
                return beta, np.linalg.inv(information(eta)[1])
            except np.linalg.LinAlgError:
                return None
    return None


def recalibration(y, risk, weight=None) -> dict[str, float]:
    """Calibration intercept and slope by logistic recalibration.

    Parameters
    ----------
    y : array of 0/1
    risk : array of float
        Predicted probabilities, clipped to ``[1e-6, 1 - 1e-6]``.
    weight : array of float, optional

    Returns
    -------
    dict
        ``intercept`` (calibration-in-the-large: ``a`` in ``logit P = a + logit(p)``) and
        ``intercept_se``; ``slope`` (``b`` in ``logit P = a + b logit(p)``) and ``slope_se``
        (model-based standard errors). NaN where undefined.
    """
    y, p, w = _arrays(y, risk, weight)
    lp = logit(np.clip(p, EPS, 1 - EPS))
    out = {"intercept": np.nan, "intercept_se": np.nan, "slope": np.nan, "slope_se": np.nan}
    fit = _logistic(None, y, w, lp)
    if fit is not None:
        out["intercept"], out["intercept_se"] = float(fit[0][0]), float(np.sqrt(fit[1][0, 0]))
    fit = _logistic(lp, y, w, np.zeros_like(lp), start=(0.0, 1.0))
    if fit is not None:
        out["slope"], out["slope_se"] = float(fit[0][1]), float(np.sqrt(fit[1][1, 1]))
    return out


def calibration_intercept(y, risk, weight=None) -> float:
    """Calibration-in-the-large (see :func:`recalibration`)."""
    return recalibration(y, risk, weight)["intercept"]


def calibration_slope(y, risk, weight=None) -> float:
    """Calibration slope (see :func:`recalibration`)."""
    return recalibration(y, risk, weight)["slope"]


def alert_order(score, cohort) -> np.ndarray:
    """Row order by cohort, then decreasing score, then row number (the order :func:`alert_flags` flags in)."""
    score = np.asarray(score, dtype=float)
    cohort = np.asarray(cohort)
    return np.lexsort((np.arange(len(score)), -score, cohort))


def alert_flags(score, cohort, alert: Alert = Alert(), weight=None, *, order: np.ndarray | None = None) -> np.ndarray:
    """Flag the highest scores in each cohort.

    Parameters
    ----------
    score : array of float
    cohort : array
        Cohort of each row; each cohort gets its own top share or count.
    alert : Alert
    weight : array of float, optional
        Case weights; a row of weight ``w`` stands for ``w`` pupils, of whom part may fall
        within the cut-off.
    order : array of int, optional
        :func:`alert_order` of ``score`` and ``cohort``, to skip the sort.

    Returns
    -------
    numpy.ndarray of float
        The flagged share of each row: 0 or 1, or a fraction for a row of weight above 1 that
        straddles the cut-off (0 for rows of weight 0).
    """
    score = np.asarray(score, dtype=float)
    cohort = np.asarray(cohort)
    w = np.ones(len(score)) if weight is None else np.asarray(weight, dtype=float)
    if order is None:
        order = alert_order(score, cohort)
    c = cohort[order]
    wo = w[order]
    start = np.r_[True, c[1:] != c[:-1]]
    block = np.cumsum(start) - 1
    block_total = np.bincount(block, wo)
    cum = np.cumsum(wo)
    block_first_cum = (cum - wo)[start]
    before = cum - wo - block_first_cum[block]
    if alert.kind == "share":
        k = np.floor(alert.value * block_total + 0.5)
    else:
        k = np.minimum(float(alert.value), block_total)
    flagged = np.clip(k[block] - before, 0.0, wo)
    out = np.empty(len(score))
    out[order] = np.divide(flagged, wo, out=np.zeros_like(wo), where=wo > 0)
    return out


def sensitivity(y, flagged, weight=None) -> float:
    """Share of events flagged. ``flagged`` is 0/1 or the flagged share of each row (see :func:`alert_flags`)."""
    y, f, w = _arrays(y, flagged, weight)
    fw = f * w
    events = np.sum(w * y)
    return float(np.sum(fw * y) / events) if events > 0 else np.nan


def ppv(y, flagged, weight=None) -> float:
    """Positive predictive value: share of flagged pupils with an event (NaN if nobody is flagged)."""
    y, f, w = _arrays(y, flagged, weight)
    fw = f * w
    n = fw.sum()
    return float(np.sum(fw * y) / n) if n > 0 else np.nan


def calibration_curve(y, risk, n_bins: int = 10, level: float = 0.95) -> pd.DataFrame:
    """Observed event rate against mean predicted risk in quantile bins of the risk.

    Parameters
    ----------
    y : array of 0/1
    risk : array of float
    n_bins : int
        Number of bins (equal numbers of pupils; fewer when risks are tied).
    level : float
        Level of the Wilson interval of the observed rate.

    Returns
    -------
    pandas.DataFrame
        ``bin, n, n_events, mean_predicted, observed, conf_low, conf_high``.
    """
    y, p, _ = _arrays(y, risk, None)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    b = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    size = int(b.max()) + 1 if len(b) else 0
    n = np.bincount(b, minlength=size).astype(float)
    keep = n > 0
    events = np.bincount(b, y, minlength=size)[keep]
    mean_p = np.bincount(b, p, minlength=size)[keep] / n[keep]
    n = n[keep]
    obs = events / n
    z = stats.norm.ppf(0.5 + level / 2)
    centre = (obs + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(obs * (1 - obs) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return pd.DataFrame({"bin": np.arange(len(n)), "n": n.astype(int), "n_events": events.astype(int),
                         "mean_predicted": mean_p, "observed": obs,
                         "conf_low": np.clip(centre - half, 0, 1), "conf_high": np.clip(centre + half, 0, 1)})
