r"""Nonparametric survival curves: Kaplan–Meier and Aalen–Johansen (competing causes).

Both estimators work on rows at risk on :math:`(s_i, t_i]` (late entry: :math:`s_i` is the
entry time, :math:`-\infty` without it) with case weights :math:`w_i`. At the distinct exit times
:math:`t_1 < \dots < t_T` of a group

.. math::

    n_j = \sum_i w_i\,[s_i < t_j \le t_i], \qquad
    d_{kj} = \sum_i w_i\,[t_i = t_j,\ \text{cause}_i = k], \qquad d_j = \sum_k d_{kj}.

Exact ties are handled together, and a row censored at :math:`t_j` is still at risk at
:math:`t_j` (R's ``survfit`` convention).

Kaplan–Meier (product limit) and Greenwood:

.. math::

    \hat S(t) = \prod_{t_j \le t} \Big(1 - \frac{d_j}{n_j}\Big), \qquad
    \widehat{\operatorname{Var}}\{\log \hat S(t)\} = \sum_{t_j \le t} \frac{d_j}{n_j (n_j - d_j)}.

Aalen–Johansen cumulative incidence of cause :math:`k` (all rows start in the event-free state):

.. math:: \hat F_k(t) = \sum_{t_j \le t} \hat S(t_{j-1})\, \frac{d_{kj}}{n_j}.

Infinitesimal-jackknife (IJ) variance, as R ``survfit`` for multi-state curves (and for
Kaplan–Meier with ``robust=TRUE``): with :math:`U_i(t) = \partial \hat F(t) / \partial w_i`,

.. math:: \widehat{\operatorname{Var}}\{\hat F(t)\} = \sum_i \{w_i\, U_i(t)\}^2 .

The derivatives follow from :math:`\partial (d_{kj}/n_j)/\partial w_i = (N_{ikj} - Y_{ij} d_{kj}/n_j)/n_j`
(:math:`N_{ikj}` an event of cause :math:`k` of row :math:`i` at :math:`t_j`, :math:`Y_{ij}` row
:math:`i` at risk) and the product rule. For a row, :math:`U_i(t)` is affine in
:math:`\hat F_k(t)` with row-specific coefficients, separately before entry (zero), while at risk and
after exit; so :math:`\sum_i w_i^2 U_i(t)^2` at every time comes from cumulative sums over rows
sorted by entry and exit time, without the :math:`n \times T` influence matrix.

Confidence intervals (R ``survfit_confint``; :math:`z` the normal quantile, :math:`se` on the
probability scale, :math:`p` the estimate: :math:`S` or :math:`F_k`):

- ``"log"`` (R's default): :math:`p \exp(\mp z\, se/p)`, upper limit at most 1;
- ``"log-log"``: :math:`\exp\{-\exp(\log(-\log p) \mp z\, se/(p \log p))\}`;
- ``"plain"``: :math:`p \mp z\, se`, clipped to :math:`[0, 1]`.

Limits are missing where R gives ``NA`` (:math:`p = 0`; for log-log also :math:`p = 1`).

All sums are cumulative sums over sorted times; the only loop is over groups (``by``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import DegenerateDataWarning
from ._data import SurvData, group_codes, survival_data

__all__ = ["KaplanMeier", "AalenJohansen"]

ConfType = Literal["log", "log-log", "plain"]
_CONF_TYPES = ("log", "log-log", "plain")
_FULL = 1e-12
"""Relative tolerance below which n_j - d_j counts as zero (everyone at risk has the event)."""
ALL = "all"
"""Group label when no ``by`` column is given."""


# -- options --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurveOptions:
    """Options of :class:`AalenJohansen` (and the interval options of :class:`KaplanMeier`), checked on construction.

    Parameters
    ----------
    conf_type : scale of the confidence intervals: ``"log"`` (default, as R), ``"log-log"`` or ``"plain"``.
    level : confidence level.
    """

    conf_type: ConfType = "log"
    level: float = 0.95

    def __post_init__(self):
        if self.conf_type not in _CONF_TYPES:
            raise ValueError(f"conf_type: got {self.conf_type!r}; expected one of {', '.join(_CONF_TYPES)}")
        if isinstance(self.level, bool) or not isinstance(self.level, (int, float)) or not 0 < self.level < 1:
            raise ValueError(f"level: got {self.level!r}; expected a number between 0 and 1")


@dataclass(frozen=True)
class KaplanMeierOptions(CurveOptions):
    """Options of :class:`KaplanMeier`: those of :class:`CurveOptions` and

    Parameters
    ----------
    variance : ``"greenwood"``, ``"ij"`` (infinitesimal jackknife, R's ``robust=TRUE``) or None for
        IJ with non-integer weights and Greenwood otherwise.
    """

    variance: Literal["greenwood", "ij"] | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.variance not in (None, "greenwood", "ij"):
            raise ValueError(f"variance: got {self.variance!r}; expected 'greenwood', 'ij' or None")


# -- the risk table of one group ------------------------------------------------------------------


def _suffix(v: np.ndarray) -> np.ndarray:
    """``out[j] = sum(v[j:])`` along the first axis."""
    return np.cumsum(v[::-1], axis=0)[::-1]


def _bincount(idx: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Sums of ``values`` (n or n x m) by ``idx`` into ``size`` bins."""
    if values.ndim == 1:
        return np.bincount(idx, weights=values, minlength=size)
    if values.shape[1] == 0:
        return np.zeros((size, 0))
    return np.stack([np.bincount(idx, weights=values[:, j], minlength=size) for j in range(values.shape[1])],
                    axis=1).reshape(size, values.shape[1])


@dataclass(frozen=True)
class _Curve:
    """Product-limit quantities of one group at its distinct exit times."""

    times: np.ndarray          # T distinct exit times
    n_risk: np.ndarray         # T
    n_event: np.ndarray        # T x K weighted events by cause
    n_censor: np.ndarray       # T
    surv: np.ndarray           # T, S(t_j)
    surv_prev: np.ndarray      # T, S(t_{j-1})
    full: np.ndarray           # T, bool: n_j == d_j
    exit_pos: np.ndarray       # n rows: index of the row's exit time
    entry_pos: np.ndarray      # n rows: index of the first time after entry

    @property
    def n_event_total(self) -> np.ndarray:
        return self.n_event.sum(axis=1)

    def cumulative_incidence(self) -> np.ndarray:
        """``F_k(t_j)`` (T x K)."""
        return np.cumsum(self.surv_prev[:, None] * self.n_event / self.n_risk[:, None], axis=0)

    def greenwood(self) -> np.ndarray:
        """Greenwood variance of ``log S(t_j)``; infinite from a time where everyone at risk has the event."""
        d = self.n_event_total
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(self.full, np.inf, d / (self.n_risk * (self.n_risk - d)))
        return np.cumsum(np.where(d > 0, term, 0.0))


def _curve(entry: np.ndarray, exit_: np.ndarray, cause: np.ndarray, w: np.ndarray, K: int) -> _Curve:
    """Risk table of one group; ``cause`` is -1 (censored) or 0..K-1."""
    times, X = np.unique(exit_, return_inverse=True)
    T = len(times)
    L = np.searchsorted(times, entry, side="right")       # first time after entry (0 without late entry)
    ev = cause >= 0
    d = np.bincount(X[ev] * K + cause[ev], weights=w[ev], minlength=T * K).astype(float).reshape(T, K)
    cens = np.bincount(X[~ev], weights=w[~ev], minlength=T).astype(float)
    # at risk at t_j: exit >= t_j minus (entry >= t_j, i.e. first time after entry > j); suffix sums
    n = _suffix(np.bincount(X, weights=w, minlength=T)) - _suffix(np.bincount(L, weights=w, minlength=T + 1))[1:]
    dt = d.sum(axis=1)
    full = (dt > 0) & (n - dt <= _FULL * n)
    q = np.where(full, 0.0, 1.0 - dt / n)
    surv = np.cumprod(q)
    surv_prev = np.concatenate([[1.0], surv[:-1]])
    return _Curve(times, n, d, cens, surv, surv_prev, full, X, L)


def _ij_variance(c: _Curve, cause: np.ndarray, w: np.ndarray) -> np.ndarray:
    r"""IJ variance :math:`\sum_i \{w_i \partial F_k(t_j)/\partial w_i\}^2` of every cause (T x K).

    With :math:`a_j = d_j/n_j`, :math:`b_j = a_j/(n_j - d_j)` (0 where :math:`n_j = d_j`),
    :math:`B_j = \sum_{l \le j} b_l`, :math:`c_{kl} = S(t_{l-1}) d_{kl}/n_l` (so :math:`F_k = \sum c`),
    :math:`\alpha_k(j) = \sum_{l \le j} c_{kl}(B_{l-1} - 1/n_l)` and :math:`g_j = S(t_{j-1})/n_j`, a row
    entering before :math:`t_{L}` (first time after entry) and leaving at :math:`t_X` has

    - :math:`U_{ik}(j) = 0` for :math:`j < L`;
    - :math:`U_{ik}(j) = \alpha_k(j) + u_{ik} + v_i F_k(t_j)` while at risk (:math:`L \le j < X`), with
      :math:`v_i = -B_{L-1}` and :math:`u_{ik} = -\alpha_k(L-1) + B_{L-1} F_k(t_{L-1})`;
    - the same plus :math:`g_X` at :math:`j = X` for an event of cause :math:`k`;
    - :math:`U_{ik}(j) = A_{ik} - H_i F_k(t_j)` after exit, with :math:`H_i = \delta_i/(n_X - d_X)
      - (B_X - B_{L-1})` (0 for the first term where :math:`n_X = d_X`) and
      :math:`A_{ik} = U_{ik}(X) + H_i F_k(t_X)`.

    The sums of squares over the rows in each phase are cumulative sums by entry and exit time.
    """
    T, K = c.n_event.shape
    n, dt = c.n_risk, c.n_event_total
    X, L = c.exit_pos, c.entry_pos
    nd = n - dt
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(c.full | (dt == 0), 0.0, dt / n / nd)
        inv_nd = np.where(c.full, 0.0, 1.0 / nd)
    Bp = np.concatenate([[0.0], np.cumsum(b)])                              # B_{j-1} at index j
    inc = c.surv_prev[:, None] * c.n_event / n[:, None]                    # c_kl
    Cp = np.vstack([np.zeros(K), np.cumsum(inc, axis=0)])                  # F_k(t_{j-1}) at index j
    alpha_p = np.vstack([np.zeros(K), np.cumsum(inc * (Bp[:-1, None] - 1.0 / n[:, None]), axis=0)])
    g = c.surv_prev / n
    ev = cause >= 0
    onehot = np.zeros((len(X), K))
    onehot[np.flatnonzero(ev), cause[ev]] = 1.0
    # row coefficients
    v = -Bp[L]
    u = -alpha_p[L] + Bp[L][:, None] * Cp[L]
    H = ev * inv_nd[X] - (Bp[X + 1] - Bp[L])
    U_exit = alpha_p[X + 1] + u + v[:, None] * Cp[X + 1] + g[X][:, None] * onehot
    A = U_exit + H[:, None] * Cp[X + 1]
    w2 = w * w
    alpha, F = alpha_p[1:], Cp[1:]

    def at_risk(f):   # sum of f over rows with L <= j <= X
        return _suffix(_bincount(X, f, T)) - _suffix(_bincount(L, f, T + 1))[1:]

    def before(f):    # sum of f over rows with X < j
        s = np.cumsum(_bincount(X, f, T), axis=0)
        return np.concatenate([np.zeros((1,) + s.shape[1:]), s[:-1]])

    wu, wv = w2[:, None] * u, w2 * v
    var = (alpha**2 * at_risk(w2)[:, None] + 2 * alpha * (at_risk(wu) + F * at_risk(wv)[:, None])
           + at_risk(wu * u) + 2 * F * at_risk(wu * v[:, None]) + F**2 * at_risk(wv * v)[:, None])
    # rows with an event of cause k at t_j: the extra g_j
    ex = w2[:, None] * onehot
    var += 2 * g[:, None] * (alpha * _bincount(X, ex, T) + _bincount(X, ex * u, T)
                             + F * _bincount(X, ex * v[:, None], T)) + g[:, None] ** 2 * _bincount(X, ex, T)
    # rows that left before t_j
    wA = w2[:, None] * A
    var += before(wA * A) - 2 * F * before(wA * H[:, None]) + F**2 * before(w2 * H * H)[:, None]
    return np.maximum(var, 0.0)


def _ij_variance_survival(c: _Curve, cause: np.ndarray, w: np.ndarray) -> np.ndarray:
    r"""IJ variance of the Kaplan–Meier :math:`\hat S(t_j)` (T).

    :math:`\partial \hat S(t_j)/\partial w_i = -\hat S(t_j)\, h_i(j)` with
    :math:`h_i(j) = -(B_j - B_{L-1})` while row :math:`i` is at risk and has not left
    (:math:`L \le j < X`) and :math:`h_i(j) = H_i` (see :func:`_ij_variance`) from its exit on, so

    .. math:: \widehat{\operatorname{Var}}\{\hat S(t_j)\} = \hat S(t_j)^2 \Big[\sum_{L_i \le j < X_i}
        w_i^2 (B_j - B_{L_i - 1})^2 + \sum_{X_i \le j} w_i^2 H_i^2\Big].
    """
    T = len(c.times)
    n, dt = c.n_risk, c.n_event_total
    X, L = c.exit_pos, c.entry_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(c.full | (dt == 0), 0.0, dt / n / (n - dt))
        inv_nd = np.where(c.full, 0.0, 1.0 / (n - dt))
    Bp = np.concatenate([[0.0], np.cumsum(b)])
    beta = Bp[L]
    H = (cause >= 0) * inv_nd[X] - (Bp[X + 1] - beta)
    w2 = w * w

    def still_in(f):  # sum over rows with L <= j < X: (X > j) minus (L > j), as L > j implies X > j
        after_exit = np.concatenate([_suffix(np.bincount(X, weights=f, minlength=T))[1:], [0.0]])
        return after_exit - _suffix(np.bincount(L, weights=f, minlength=T + 1))[1:]

    B = Bp[1:]
    inside = B**2 * still_in(w2) - 2 * B * still_in(w2 * beta) + still_in(w2 * beta**2)
    left = np.cumsum(np.bincount(X, weights=w2 * H * H, minlength=T))
    return c.surv**2 * np.maximum(inside + left, 0.0)


def _conf_int(p: np.ndarray, se: np.ndarray, conf_type: ConfType, level: float) -> tuple[np.ndarray, np.ndarray]:
    """R ``survfit_confint`` with the standard error ``se`` on the probability scale."""
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            return np.maximum(p - z * se, 0.0), np.minimum(p + z * se, 1.0)     # NaN stays NaN, as pmax/pmin
        se_log = np.where(se == 0, 0.0, se / p)
        if conf_type == "log":
            xx = np.where(p == 0, np.nan, p)
            return np.exp(np.log(xx) - z * se_log), np.minimum(np.exp(np.log(xx) + z * se_log), 1.0)
        xx = np.where((p == 0) | (p == 1), np.nan, p)
        s2 = z * se_log / np.log(xx)
        return np.exp(-np.exp(np.log(-np.log(xx)) - s2)), np.exp(-np.exp(np.log(-np.log(xx)) + s2))


def r_quantile(times: np.ndarray, surv: np.ndarray, p: float = 0.5, tol: float = np.sqrt(np.finfo(float).eps)) -> float:
    """Time by which a fraction ``p`` has had the event, as R ``quantile.survfit``.

    The smallest time with :math:`1 - S(t) \\ge p`; where the curve is flat at exactly
    :math:`1 - p` (within ``tol``) the midpoint of the flat stretch (to the last time if it is the
    end of the curve); missing if the curve never reaches it.
    """
    x = np.concatenate([[0.0], np.asarray(times, dtype=float)])
    y = np.concatenate([[0.0], 1.0 - np.asarray(surv, dtype=float)])
    if not len(times) or np.nanmax(y) < p:
        return np.nan
    xmax = x[-1]
    keep = np.concatenate([[True], y[1:] != y[:-1]])
    x, y = x[keep], y[keep]
    i1 = np.searchsorted(y + tol, p, side="left")
    i2 = np.searchsorted(y - tol, p, side="left")
    if i1 >= len(y):
        return np.nan
    if abs(p - y[-1]) < tol:
        return (x[i1] + xmax) / 2
    if i2 >= len(y):
        return np.nan
    return (x[i1] + x[i2]) / 2


# -- shared fitting -------------------------------------------------------------------------------


def _check_by(df: pd.DataFrame, by) -> None:
    if by is None:
        return
    if not isinstance(by, str):
        raise TypeError(f"by: expected the name of one column, got {by!r}")
    if isinstance(df, pd.DataFrame):
        group_codes(df, by, "data", "groups ('by')")


def _groups(d: SurvData) -> tuple[list, list[np.ndarray]]:
    """Group labels and the row positions of each group."""
    if d.strata is None:
        return [ALL], [np.arange(d.n)]
    order = np.argsort(d.strata, kind="stable")
    bounds = np.searchsorted(d.strata[order], np.arange(len(d.strata_labels) + 1))
    return list(d.strata_labels), [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _check_times(times) -> np.ndarray:
    t = np.atleast_1d(np.asarray(times, dtype=float))
    if t.ndim != 1 or not np.isfinite(t).all():
        raise ValueError("times: expected finite numbers")
    return t


def _index(groups: list, times_per_group: list[np.ndarray], by: str | None) -> pd.Index:
    if by is None:
        return pd.Index(times_per_group[0], name="time")
    return pd.MultiIndex.from_arrays(
        [np.repeat(np.asarray(groups, dtype=object), [len(t) for t in times_per_group]),
         np.concatenate(times_per_group)], names=["group", "time"])


class KaplanMeier:
    r"""Kaplan–Meier (product-limit) survival curve with Greenwood or IJ standard errors.

    See the module docstring for the estimator, the variance and the confidence intervals. The
    numbers equal R's ``survfit(Surv(time, status) ~ group, weights = w)`` (or
    ``Surv(entry, time, status)`` with late entry).

    Parameters
    ----------
    conf_type : ``"log"`` (default, as R), ``"log-log"`` or ``"plain"``.
    level : confidence level.
    variance : ``"greenwood"``, ``"ij"`` (infinitesimal jackknife: R's ``robust = TRUE``), or None
        for R's default: IJ when the case weights are not all integers, Greenwood otherwise. (With
        late entry R falls back to Greenwood unless given an ``id``; here every row is its own
        subject, so the IJ variance is well defined and used.)

    Attributes
    ----------
    survival_ : DataFrame indexed by ``time`` (``group``, ``time`` with ``by``) at every distinct exit
        time, with columns ``survival``, ``std_error`` (of :math:`\hat S`, not of its log),
        ``conf_low``, ``conf_high``, ``n_risk``, ``n_event``, ``n_censor`` (weighted counts).
    median_ : median survival time (R's definition, see :func:`r_quantile`): a float, or a Series by
        group with ``by``. Missing when the curve does not reach 0.5. :meth:`quantile`, :meth:`median`
        (with limits, as ``print(survfit)``) and :meth:`rmst` summarise the curves (:mod:`.curve_summaries`).
    variance_ : the variance used (``"greenwood"`` or ``"ij"``).

    Examples
    --------
    >>> km = KaplanMeier().fit(episodes, duration="days", event="returned", by="episode_type")  # doctest: +SKIP
    >>> km.tidy(); km.predict([30, 90])                                                         # doctest: +SKIP
    """

    def __init__(self, conf_type: ConfType = "log", level: float = 0.95,
                 variance: Literal["greenwood", "ij"] | None = None):
        self.options = KaplanMeierOptions(conf_type, level, variance)

    def fit(self, df: pd.DataFrame, duration: str, event: str, entry: str | None = None, weights: str | None = None,
            by: str | None = None) -> "KaplanMeier":
        """Fit the curve(s); returns ``self``.

        ``event`` is 1 for an event, 0 for censoring. ``entry`` gives late entry: rows are at risk
        on ``(entry, duration]``. ``weights`` names case weights (> 0). ``by`` names a column; one
        curve per value. Without events (every row censored) the curve is 1 with standard error 0
        and no median, as R's.
        """
        _check_by(df, by)
        d = survival_data(df, duration=duration, event=event, entry=entry, weights=weights, strata=by)
        variance = self.options.variance
        if variance is None:
            variance = "ij" if not np.array_equal(d.weights, np.round(d.weights)) else "greenwood"
        groups, rows = _groups(d)
        frames, curves = [], []
        for r in rows:
            cause = d.event[r] - 1                       # 0 event, -1 censored
            c = _curve(d.entry[r], d.exit[r], cause, d.weights[r], 1)
            if variance == "greenwood":
                with np.errstate(invalid="ignore"):
                    se = c.surv * np.sqrt(c.greenwood())     # 0 * inf = nan where S = 0, as R
            else:
                se = np.sqrt(_ij_variance_survival(c, cause, d.weights[r]))
            low, high = _conf_int(c.surv, se, self.options.conf_type, self.options.level)
            frames.append(pd.DataFrame({"survival": c.surv, "std_error": se, "conf_low": low, "conf_high": high,
                                        "n_risk": c.n_risk, "n_event": c.n_event_total, "n_censor": c.n_censor}))
            curves.append(c)
        out = pd.concat(frames, ignore_index=True)
        out.index = _index(groups, [c.times for c in curves], by)
        self.survival_ = out
        medians = [r_quantile(c.times, c.surv, 0.5) for c in curves]
        self.median_ = medians[0] if by is None else pd.Series(medians, index=pd.Index(groups, name="group"),
                                                               name="median")
        self.variance_ = variance
        self.by_ = by
        self.groups_ = groups
        self.n_obs_ = d.n
        return self

    def tidy(self) -> pd.DataFrame:
        """Long table: group, time, estimate (survival), std_error, conf_low, conf_high, n_risk, n_event, n_censor.

        ``group`` is ``"all"`` without ``by``.
        """
        s = self.survival_.reset_index()
        if "group" not in s:
            s.insert(0, "group", ALL)
        return s.rename(columns={"survival": "estimate"})[
            ["group", "time", "estimate", "std_error", "conf_low", "conf_high", "n_risk", "n_event", "n_censor"]]

    def predict(self, times) -> pd.Series:
        """Survival at ``times`` (a right-continuous step function; 1 before the first time, the last value after).

        A Series indexed by time, or by (group, time) with ``by``.
        """
        t = _check_times(times)
        vals, groups = [], []
        for g in self.groups_:
            s = self.survival_["survival"] if self.by_ is None else self.survival_["survival"].xs(g, level="group")
            i = np.searchsorted(s.index.to_numpy(), t, side="right")
            vals.append(np.concatenate([[1.0], s.to_numpy()])[i])
            groups.append(g)
        return pd.Series(np.concatenate(vals), index=_index(groups, [t] * len(groups), self.by_), name="survival")

    def quantile(self, probs=(0.25, 0.5, 0.75), level: float | None = None) -> pd.DataFrame:
        """Quantiles with limits as R's ``quantile(fit, probs, conf.int = TRUE)``; see :mod:`.curve_summaries`."""
        from .curve_summaries import km_quantiles
        return km_quantiles(self, probs, level=level)

    def median(self, level: float | None = None) -> pd.DataFrame:
        """Median with confidence limits as ``print(survfit(...))`` shows them; see :mod:`.curve_summaries`."""
        from .curve_summaries import km_median
        return km_median(self, level=level)

    def rmst(self, tau: float, level: float | None = None, extend: bool = False) -> pd.DataFrame:
        """Restricted mean survival time up to ``tau`` with R's standard error; see :mod:`.curve_summaries`."""
        from .curve_summaries import km_rmst
        return km_rmst(self, tau, level=level, extend=extend)

    def plot(self, ax=None, **kwargs):
        """Curves with the band and a number-at-risk table (:func:`~verzuimmodel.survival_plots.plot_curves`)."""
        from ..survival_plots import plot_curves
        return plot_curves(self, ax=ax, **kwargs)

    def __repr__(self) -> str:
        o = self.options
        head = f"KaplanMeier(conf_type={o.conf_type!r}, level={o.level}, variance={o.variance!r})"
        if not hasattr(self, "survival_"):
            return head
        return f"{head}: n={self.n_obs_:,}, groups={len(self.groups_)}, median={self.median_}"


class AalenJohansen:
    r"""Aalen–Johansen cumulative incidence of competing causes, with IJ standard errors.

    ``event`` is 0 for censoring and 1, 2, ... for the cause. See the module docstring for the
    estimator, its infinitesimal-jackknife variance and the confidence intervals; the numbers
    equal R's ``survfit(Surv(time, factor(event)) ~ group, weights = w)`` (``pstate``, ``std.err``,
    ``lower``, ``upper``; with late entry ``Surv(entry, time, factor(event))`` and ``id``).

    Parameters
    ----------
    conf_type : ``"log"`` (default, as R), ``"log-log"`` or ``"plain"``.
    level : confidence level.

    Attributes
    ----------
    causes_ : the cause codes (columns of the tables below).
    cumulative_incidence_ : DataFrame indexed by ``time`` (``group``, ``time`` with ``by``) at every
        distinct exit time, one column per cause.
    cumulative_incidence_se_ : its standard errors (same shape).
    survival_ : probability of no event of any cause (Kaplan–Meier), same index.

    Notes
    -----
    ``n_risk`` and ``n_event`` in :meth:`tidy` are weighted (as in R's Kaplan–Meier output); R's
    multi-state ``survfit`` reports unweighted counts there. Every row is its own subject (R's ``id``).

    Examples
    --------
    >>> aj = AalenJohansen().fit(episodes, duration="days", event="outcome_code")  # doctest: +SKIP
    >>> aj.predict([91, 182])                                                      # doctest: +SKIP
    """

    def __init__(self, conf_type: ConfType = "log", level: float = 0.95):
        self.options = CurveOptions(conf_type, level)

    def fit(self, df: pd.DataFrame, duration: str, event: str, entry: str | None = None, weights: str | None = None,
            by: str | None = None) -> "AalenJohansen":
        """Fit the cumulative incidence curves; returns ``self``.

        ``event``: 0 censored, 1..K the cause. ``entry``: late entry, rows at risk on
        ``(entry, duration]``. ``weights``: case weights (> 0). ``by``: one set of curves per value.

        With no events at all (every row censored) there is no cause: ``causes_`` is empty,
        ``cumulative_incidence_`` has no columns, :meth:`tidy` has no rows and ``survival_`` is 1,
        and a :class:`~verzuimmodel.errors.DegenerateDataWarning` says so. A group of ``by``
        without events gets cumulative incidences of 0.
        """
        _check_by(df, by)
        d = survival_data(df, duration=duration, event=event, entry=entry, weights=weights, strata=by, kind="causes")
        causes = np.unique(d.event[d.event > 0])
        K = len(causes)
        if K == 0:
            warnings.warn(f"AalenJohansen: no row of '{event}' ends in an event (all {d.n:,} censored): there is no "
                          "cause to estimate; cumulative_incidence_ has no columns and tidy() no rows",
                          DegenerateDataWarning, stacklevel=2)
        code = np.searchsorted(causes, d.event)
        cause_all = np.where(d.event > 0, code, -1)
        groups, rows = _groups(d)
        est, ses, surv, long, curves = [], [], [], [], []
        for g, r in zip(groups, rows):
            cause = cause_all[r]
            c = _curve(d.entry[r], d.exit[r], cause, d.weights[r], K)
            F = c.cumulative_incidence()
            se = np.sqrt(_ij_variance(c, cause, d.weights[r]))
            low, high = _conf_int(F, se, self.options.conf_type, self.options.level)
            est.append(F)
            ses.append(se)
            surv.append(c.surv)
            curves.append(c)
            T = len(c.times)
            long.append(pd.DataFrame({    # cause by cause, each in time order
                "group": np.full(T * K, g, dtype=object), "cause": np.repeat(causes, T),
                "time": np.tile(c.times, K), "estimate": F.T.ravel(), "std_error": se.T.ravel(),
                "conf_low": low.T.ravel(), "conf_high": high.T.ravel(), "n_risk": np.tile(c.n_risk, K),
                "n_event": c.n_event.T.ravel()}))
        index = _index(groups, [c.times for c in curves], by)
        cols = pd.Index(causes, name="cause")
        self.causes_ = causes.tolist()
        self.cumulative_incidence_ = pd.DataFrame(np.vstack(est), index=index, columns=cols)
        self.cumulative_incidence_se_ = pd.DataFrame(np.vstack(ses), index=index, columns=cols)
        self.survival_ = pd.Series(np.concatenate(surv), index=index, name="survival")
        self._tidy = pd.concat(long, ignore_index=True)
        self.by_ = by
        self.groups_ = groups
        self.n_obs_ = d.n
        return self

    def tidy(self) -> pd.DataFrame:
        """Long table: group, cause, time, estimate, std_error, conf_low, conf_high, n_risk, n_event.

        ``group`` is ``"all"`` without ``by``; ``n_risk`` is the number at risk (event-free) and
        ``n_event`` the events of that cause at that time (both weighted).
        """
        return self._tidy.copy()

    def predict(self, times) -> pd.DataFrame:
        """Cumulative incidence at ``times`` (step functions; 0 before the first time, the last value after).

        A DataFrame indexed by time (by group and time with ``by``), one column per cause.
        """
        t = _check_times(times)
        blocks = []
        for g in self.groups_:
            ci = self.cumulative_incidence_ if self.by_ is None else self.cumulative_incidence_.xs(g, level="group")
            i = np.searchsorted(ci.index.to_numpy(), t, side="right")
            blocks.append(np.vstack([np.zeros((1, ci.shape[1])), ci.to_numpy()])[i])
        return pd.DataFrame(np.vstack(blocks), index=_index(self.groups_, [t] * len(self.groups_), self.by_),
                            columns=self.cumulative_incidence_.columns)

    def plot(self, ax=None, **kwargs):
        """Curves with the band and a number-at-risk table (:func:`~verzuimmodel.survival_plots.plot_curves`)."""
        from ..survival_plots import plot_curves
        return plot_curves(self, ax=ax, **kwargs)

    def __repr__(self) -> str:
        o = self.options
        head = f"AalenJohansen(conf_type={o.conf_type!r}, level={o.level})"
        if not hasattr(self, "cumulative_incidence_"):
            return head
        return f"{head}: n={self.n_obs_:,}, causes={self.causes_}, groups={len(self.groups_)}"
