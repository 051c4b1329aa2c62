r"""Checking a fitted :class:`~verzuimmodel.survival.CoxPH`: residuals, the proportional-hazards test, concordance.

All match R's ``survival`` (>= 3.0): :func:`residuals` is ``residuals.coxph``, :func:`cox_zph` is
``cox.zph`` and :func:`concordance` is ``concordance(fit)``, with Efron or Breslow ties, strata,
start–stop rows with late entry, case weights (and clusters for the concordance's variance).
Notation as in :mod:`~verzuimmodel.survival.cox`: event time :math:`t_k` of a stratum with deaths
:math:`D_k` (:math:`m_k` of them, weight :math:`W_k`), risk set :math:`R_k`, :math:`r_i = \exp(\eta_i)`;
Efron's steps :math:`l = 0..m_k-1` have fraction :math:`f_l = l/m_k`, denominator
:math:`S_{0,kl} = \sum_{R_k} w_i r_i - f_l \sum_{D_k} w_i r_i`, mean
:math:`a_{kl} = (\sum_{R_k} w_i r_i x_i - f_l \sum_{D_k} w_i r_i x_i)/S_{0,kl}` and hazard
increment :math:`d\Lambda_{kl} = \bar w_k / S_{0,kl}` (Breslow: one step with :math:`f = 0`).

- Martingale: :math:`M_i = \delta_i - r_i \sum_{k: s_i < t_k \le t_i}\sum_l c_{ikl}\, d\Lambda_{kl}`,
  :math:`c_{ikl} = 1 - f_l` for a death at :math:`t_k`, else 1 (R's ``coxmart``).
- Deviance: :math:`\operatorname{sign}(M_i)\sqrt{-2\{M_i + \delta_i \log(\delta_i - M_i)\}}`.
- Score: the row's contribution to the score at :math:`\hat\beta` (``RiskSets.score_residuals``).
- Schoenfeld: for each death :math:`x_i - \bar a_k`, :math:`\bar a_k = m_k^{-1}\sum_l a_{kl}`, one row
  per death ordered by stratum, time and row, indexed by the event time (R's rownames).
- Scaled Schoenfeld: :math:`d\, V \rho_i + \hat\beta`, :math:`V` the model-based variance and
  :math:`d` the number of deaths (R's ``"scaledsch"``; ``cox.zph`` scales differently).
- dfbeta: :math:`w_i U_i V`, dfbetas: that divided by :math:`\sqrt{\operatorname{diag} V}`.

:func:`cox_zph` is the score test of :math:`\gamma = 0` in :math:`\beta_j(t) = \beta_j + \gamma_j g(t)`,
at :math:`(\hat\beta, 0)`, with :math:`g` the transformed time centred at its mean over the deaths:
:math:`U_\gamma = \sum_k g_k \sum_{D_k} w_i (x_i - \bar a_k)` and information
:math:`\begin{pmatrix} \sum_k I_k & \sum_k g_k I_k\\ \sum_k g_k I_k & \sum_k g_k^2 I_k\end{pmatrix}`,
:math:`I_k` the contribution of time :math:`t_k` to the Cox information. The statistic of covariate
:math:`j` uses the rows and columns of :math:`\beta` and :math:`\gamma_j` (1 df); GLOBAL uses all
(:math:`p` df). ``transform="km"`` is :math:`g(t) = 1 - \hat S(t-)`, the left-continuous
Kaplan–Meier of all rows pooled (no strata, no weights), as R.

Residuals and test are computed from the risk-set sums of the fit (one pass over the rows), with
no loop over rows or event times.

:func:`concordance` is Harrell's C with R's infinitesimal-jackknife standard error. A pair of
rows :math:`(i, j)` in one stratum is comparable when :math:`i` has an event at :math:`t_i` and
:math:`j` is at risk after it: :math:`s_j < t_i` and :math:`t_j > t_i`, or :math:`t_j = t_i` with
:math:`j` censored (R's ``timewt = "n"``). With the risk score :math:`\eta = x'\hat\beta` and the
weighted counts of comparable pairs

.. math:: N_c = \sum w_i w_j [\eta_i > \eta_j],\quad N_d = \sum w_i w_j [\eta_i < \eta_j],\quad
          N_t = \sum w_i w_j [\eta_i = \eta_j],

the concordance is :math:`(N_c + N_t/2)/N`, :math:`N = N_c + N_d + N_t`: the shorter time has the
higher risk. Deaths tied in time are not comparable (``tied_y``; ``tied_xy`` when tied in
:math:`\eta` too). With Somers' :math:`d = (N_c - N_d)/N` and :math:`c_i, d_i, t_i` the weighted
counts of the comparable pairs row :math:`i` is part of,
:math:`\mathrm{dfbeta}_i = w_i\{c_i - d_i - d\,(c_i + d_i + t_i)\}/N` (summed within clusters when
the fit has ``cluster``) and :math:`\widehat{\operatorname{var}}(C) = \sum_i \mathrm{dfbeta}_i^2 / 4`.
The counts are weighted sums over two-dimensional ranges (time keys in an interval, risk scores
below or equal to a row's), computed offline after one sort: a few passes over the rows per bit of
the risk rank, no loop over rows.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ._data import SurvData, survival_data
from .cox import CoxPH, RiskSets, _offset, _sorted

__all__ = ["RESIDUAL_TYPES", "TRANSFORMS", "residuals", "cox_zph", "concordance", "concordance_index"]

RESIDUAL_TYPES = ("martingale", "deviance", "score", "schoenfeld", "scaled_schoenfeld", "dfbeta", "dfbetas")
TRANSFORMS = ("km", "rank", "identity", "log")
_ALIASES = {"scaledsch": "scaled_schoenfeld"}          # R's spelling


@dataclasses.dataclass
class _ModelData:
    """The fit's data rebuilt from ``df``: rows sorted by (stratum, exit) as in the fit, ``order`` their
    positions in ``df``, ``eta`` the linear predictor at the estimates (offset included)."""

    d: SurvData
    order: np.ndarray
    eta: np.ndarray
    frame: pd.DataFrame          # the rows of df the fit used, with its design columns (formula)


def model_data(model: CoxPH, df: pd.DataFrame) -> _ModelData:
    """Check that ``model`` is fitted and ``df`` is its data; return the sorted arrays and linear predictor."""
    if not isinstance(model, CoxPH) or not hasattr(model, "params_"):
        raise ValueError("expected a fitted CoxPH: call .fit(df, ...) first")
    spec = model.fit_args_
    df = model.design_.fit_frame(df) if hasattr(model, "design_") else df
    d = survival_data(df, duration=spec["duration"], event=spec["event"], covariates=spec["covariates"],
                      entry=spec["entry"], weights=spec["weights"], strata=spec["strata"], cluster=spec["cluster"])
    if d.n != model.n_obs_ or int(d.event.sum()) != model.n_events_:
        raise ValueError(f"df has {d.n:,} rows and {int(d.event.sum()):,} events; the model was fitted on "
                         f"{model.n_obs_:,} rows and {model.n_events_:,} events: pass the data frame used in fit")
    off = _offset(df, spec["offset"])
    d, off = _sorted(dataclasses.replace(d, index=pd.RangeIndex(d.n)), off)
    beta = model.params_.to_numpy()
    eta = off.copy()
    for j in range(len(beta)):            # column by column: rows with equal covariates get equal eta
        eta += d.X[:, j] * beta[j]
    return _ModelData(d, d.index.to_numpy(), eta, df)


def _risk_sets(model: CoxPH, md: _ModelData, need: Literal["gradient", "hessian"]):
    """Risk sets of the centred design (as R, for accuracy) evaluated at the estimates."""
    X = md.d.X - md.d.X.mean(axis=0)
    rs = RiskSets(md.d, X, model.options.ties)
    loglik, _, info, state = rs.evaluate(md.eta, need=need)
    if not np.isclose(loglik, model.log_likelihood_, rtol=1e-8, atol=1e-8):
        raise ValueError("df gives a different log partial likelihood at the estimates than the fit did: pass the "
                         "data frame used in fit, unchanged")
    return rs, state, info


def _abar(rs: RiskSets, state: dict) -> np.ndarray:
    """Mean covariate at each event time (K x p): Efron's average of the step means ``a_kl``."""
    c = state["c"]
    return (state["S1"] * c["0"][:, None] - state["D1"] * c["1"][:, None]) / rs.dw[:, None]


def _martingale(rs: RiskSets, state: dict) -> np.ndarray:
    c0, c1 = state["c"]["0"], state["c"]["1"]
    cum = np.concatenate([[0.0], np.cumsum(c0)])
    expected = state["r"] * (cum[rs.row_hi] - cum[rs.row_lo])
    expected[rs.ev_rows] -= state["r"][rs.ev_rows] * c1[rs.ev_group]      # Efron: a death's own steps count 1 - f
    return rs.event.astype(float) - expected


def _deviance(mart: np.ndarray, status: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        log_term = np.where(status == 0, 0.0, status * np.log(np.where(status == 0, 1.0, status - mart)))
    return np.sign(mart) * np.sqrt(np.maximum(-2 * (mart + log_term), 0.0))


def residuals(model: CoxPH, df: pd.DataFrame, type: str = "martingale", *, weighted: bool | None = None,
              collapse: str | np.ndarray | pd.Series | None = None) -> pd.Series | pd.DataFrame:
    """Residuals of a fitted Cox model, as R's ``residuals(fit, type)`` (definitions in the module docstring).

    Parameters
    ----------
    model : a fitted :class:`~verzuimmodel.survival.CoxPH`.
    df : the data frame the model was fitted on.
    type : one of ``"martingale"`` (default), ``"deviance"``, ``"score"``, ``"schoenfeld"``,
        ``"scaled_schoenfeld"`` (R's ``"scaledsch"`` is accepted too), ``"dfbeta"``, ``"dfbetas"``.
    weighted : multiply by the case weights; as R, the default is True for dfbeta(s), else False.
        A Schoenfeld residual gets the weight of its own death (R's ``weighted = TRUE`` takes the
        weights in data order for residuals in time order: the same only for data sorted by time).
    collapse : a column of ``df`` (or an array, one value per row), e.g. a subject id with start–stop
        rows: residuals are summed within its values (R's ``collapse``; not for Schoenfeld residuals).

    Returns
    -------
    Martingale and deviance: a Series on ``df``'s index. Score, dfbeta, dfbetas: a DataFrame with a
    column per covariate. Schoenfeld: a DataFrame with a row per death, indexed by the event time
    (with strata: by stratum and time). With ``collapse``: indexed by its sorted values.
    """
    kind = _ALIASES.get(type, type)
    if kind not in RESIDUAL_TYPES:
        raise ValueError(f"type: got {type!r}; expected one of {', '.join(map(repr, RESIDUAL_TYPES))}")
    if weighted is None:
        weighted = kind in ("dfbeta", "dfbetas")
    md = model_data(model, df)
    d, df = md.d, md.frame
    rs, state, _ = _risk_sets(model, md, "gradient")
    names = model.covariates_
    V = model.naive_variance_.to_numpy()
    if kind in ("schoenfeld", "scaled_schoenfeld"):
        if collapse is not None:
            raise ValueError("collapse: Schoenfeld residuals belong to event times, not rows; they cannot be collapsed")
        ev = rs.ev_rows
        rr = rs.X[ev] - _abar(rs, state)[rs.ev_group]
        if weighted:
            rr *= d.weights[ev, None]
        if kind == "scaled_schoenfeld":
            rr = len(ev) * rr @ V + model.params_.to_numpy()
        time = pd.Index(d.exit[ev], name="time")
        index = time if d.strata is None else pd.MultiIndex.from_arrays(
            [d.strata_labels[d.strata[ev]], time], names=["stratum", "time"])
        return pd.DataFrame(rr, index=index, columns=names)
    status = d.event.astype(float)
    if kind in ("martingale", "deviance"):
        rr = _martingale(rs, state)
    else:
        rr = rs.score_residuals(state)
        if kind == "dfbeta":
            rr = rr @ V
        elif kind == "dfbetas":
            rr = rr @ V / np.sqrt(np.diag(V))
    if weighted:
        rr = rr * (d.weights if rr.ndim == 1 else d.weights[:, None])
    # back to df's row order
    out = np.empty_like(rr)
    out[md.order] = rr
    stat = np.empty_like(status)
    stat[md.order] = status
    index = df.index
    if collapse is not None:
        key = df[collapse].to_numpy() if isinstance(collapse, str) else np.asarray(collapse)
        if len(key) != len(df):
            raise ValueError(f"collapse: got {len(key):,} values for {len(df):,} rows; expected one per row")
        grouped = pd.DataFrame(np.column_stack([out.reshape(len(df), -1), stat])).groupby(key, sort=True).sum()
        index, out, stat = grouped.index, grouped.to_numpy()[:, :-1], grouped.to_numpy()[:, -1]
        if rr.ndim == 1:
            out = out[:, 0]
    if kind == "deviance":
        out = _deviance(out, stat)
    if out.ndim == 1:
        return pd.Series(out, index=index, name=kind)
    return pd.DataFrame(out, index=index, columns=names)


def _km_transform(d: SurvData) -> np.ndarray:
    """``1 - S(t-)`` at each row's exit time, ``S`` the Kaplan–Meier of all rows pooled (unweighted)."""
    ev = d.event == 1
    etimes, n_event = np.unique(d.exit[ev], return_counts=True)
    at_risk = len(d.exit) - np.searchsorted(np.sort(d.exit), etimes, side="left")     # exit >= t
    if d.has_entry:
        at_risk -= len(d.entry) - np.searchsorted(np.sort(d.entry), etimes, side="left")   # minus entry >= t
    surv = np.concatenate([[1.0], np.cumprod(1.0 - n_event / at_risk)])
    return 1.0 - surv[np.searchsorted(etimes, d.exit, side="left")]


def _time_transform(d: SurvData, transform) -> np.ndarray:
    times = d.exit
    if callable(transform):
        g = np.asarray(transform(times), dtype=float)
        if g.shape != times.shape or not np.isfinite(g).all():
            raise ValueError("transform: the function must return a finite number for every time")
        return g
    if transform == "km":
        return _km_transform(d)
    if transform == "rank":
        return stats.rankdata(times)
    if transform == "identity":
        return times.astype(float)
    if transform == "log":
        if (times <= 0).any():
            raise ValueError("transform='log' needs positive times")
        return np.log(times)
    raise ValueError(f"transform: got {transform!r}; expected one of {', '.join(map(repr, TRANSFORMS))} or a function "
                     "of time")


def _weighted_information(rs: RiskSets, state: dict, v: np.ndarray) -> np.ndarray:
    """``sum_k v_k I_k``: the Cox information with event time ``k``'s contribution weighted by ``v_k``
    (the formula of ``RiskSets.evaluate`` with every per-time coefficient scaled by ``v``)."""
    c = {j: state["c"][j] * v for j in "01234"}
    S1, D1, X = state["S1"], state["D1"], rs.X
    wr = rs.w * state["r"]
    cum0 = np.concatenate([[0.0], np.cumsum(c["0"])])
    u = wr * (cum0[rs.row_hi] - cum0[rs.row_lo])
    u[rs.ev_rows] -= wr[rs.ev_rows] * c["1"][rs.ev_group]
    info = X.T @ (X * u[:, None])
    cross = (S1 * c["3"][:, None]).T @ D1
    info -= (S1 * c["2"][:, None]).T @ S1 - cross - cross.T + (D1 * c["4"][:, None]).T @ D1
    return info


def cox_zph(model: CoxPH, df: pd.DataFrame, transform: str | Callable[[np.ndarray], np.ndarray] = "km") -> pd.DataFrame:
    """Test of proportional hazards, as R's ``cox.zph(fit, transform)`` (survival >= 3.0).

    Parameters
    ----------
    model : a fitted :class:`~verzuimmodel.survival.CoxPH`.
    df : the data frame the model was fitted on.
    transform : the function of time :math:`g` the coefficients may vary with: ``"km"`` (default, as R:
        one minus the left-continuous Kaplan–Meier), ``"rank"``, ``"identity"``, ``"log"``, or a
        function taking the array of exit times and returning :math:`g` for each.

    Returns
    -------
    DataFrame with columns ``term, statistic, df, p_value``: a score test (chi-square) per covariate
    and a ``"GLOBAL"`` row for all together. A small p-value says the covariate's hazard ratio
    changes with :math:`g(t)`: its effect is not proportional.
    """
    md = model_data(model, df)
    g = _time_transform(md.d, transform)
    g = g - g[md.d.event == 1].mean()
    rs, state, H1 = _risk_sets(model, md, "hessian")
    gk = np.zeros(rs.K)
    gk[rs.ev_group] = g[rs.ev_rows]                  # one value per event time (g is a function of time)
    ev = rs.ev_rows
    schoen = rs.X[ev] - _abar(rs, state)[rs.ev_group]
    u = np.concatenate([np.zeros(rs.p), (rs.w[ev] * g[ev]) @ schoen])
    H2, H3 = _weighted_information(rs, state, gk), _weighted_information(rs, state, gk * gk)
    H = np.block([[H1, H2], [H2.T, H3]])
    p = rs.p
    rows = []
    for j, term in enumerate(model.covariates_):          # one small solve per covariate
        kk = np.r_[np.arange(p), p + j]
        rows.append((term, float(u[kk] @ np.linalg.solve(H[np.ix_(kk, kk)], u[kk])), 1))
    rows.append(("GLOBAL", float(u @ np.linalg.solve(H, u)), p))
    out = pd.DataFrame(rows, columns=["term", "statistic", "df"])
    out["p_value"] = stats.chi2.sf(out["statistic"], out["df"])
    return out


def concordance(model: CoxPH, df: pd.DataFrame) -> pd.DataFrame:
    """Harrell's C of a fitted Cox model on its data, as R's ``concordance(fit)``.

    Parameters
    ----------
    model : a fitted :class:`~verzuimmodel.survival.CoxPH` (its strata, weights and clusters are used).
    df : the data frame the model was fitted on.

    Returns
    -------
    One-row DataFrame: ``concordance``, ``std_error`` (infinitesimal jackknife), the weighted pair
    counts ``concordant, discordant, tied_x, tied_y, tied_xy`` and ``n`` (rows).
    """
    md = model_data(model, df)
    d = md.d
    return concordance_index(d.exit, d.event, md.eta, entry=d.entry if d.has_entry else None, strata=d.strata,
                             weights=d.weights, cluster=d.cluster)


def concordance_index(time, event, risk, *, entry=None, strata=None, weights=None, cluster=None) -> pd.DataFrame:
    """Harrell's C of ``risk`` (higher risk, shorter time) for ``(entry, time]`` survival data; see the module
    docstring. Arrays of one value per row; ``strata`` and ``cluster`` integer codes or labels."""
    time = np.asarray(time, dtype=float)
    n = len(time)
    dead = np.asarray(event) == 1
    risk = np.asarray(risk, dtype=float)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    s = np.zeros(n, dtype=np.int64) if strata is None else pd.factorize(np.asarray(strata), sort=True)[0]
    entry = None if entry is None else np.asarray(entry, dtype=float)
    for name, v in (("event", dead), ("risk", risk), ("weights", w), ("strata", s), ("entry", entry)):
        if v is not None and len(v) != n:
            raise ValueError(f"{name}: got {len(v):,} values for {n:,} times; expected one per row")
    late = np.isfinite(entry) if entry is not None else np.zeros(n, dtype=bool)
    has_entry = bool(late.any())
    # time keys: within a stratum a death at t has key 2u(t), a row leaving at t key 2u(t) + (1 - event), a row
    # entering at t key 2u(t) + 1 (u: the rank of t); "at risk after a death" is then a key above the death's
    utimes = np.unique(np.concatenate([time, entry[late]]) if has_entry else time)
    span = 2 * len(utimes) + 2
    base = s * span
    E = base + 2 * np.searchsorted(utimes, time) + (~dead)
    F = base - 1                                   # no late entry: at risk from the stratum's start
    if has_entry:
        F[late] += 2 + 2 * np.searchsorted(utimes, entry[late])
    top = base + span
    xr = np.unique(risk, return_inverse=True)[1].astype(np.int64)
    nbits = int(xr.max()).bit_length() if n else 0
    sr = (s << nbits) | xr                         # stratum above the risk rank: comparisons stay within strata
    Dk, xd, wd = E[dead], xr[dead], w[dead]
    # a death's comparable rows: exit key in (D, end of stratum), less those entering at or after it
    less_f, eq_f, tot_f = _range_rank_sums(E, sr, w, sr[dead], nbits, lo=Dk)
    if has_entry:
        lf, ef, tf = _range_rank_sums(F[late], sr[late], w[late], sr[dead], nbits, lo=Dk)
        less_f, eq_f, tot_f = less_f - lf, eq_f - ef, tot_f - tf
    # a row's deaths: those with key in (F, E)
    less_r, eq_r, tot_r = _range_rank_sums(Dk, sr[dead], wd, sr, nbits, lo=F if has_entry else None, hi=E)
    # per row, weighted counts of its comparable pairs: concordant (the death has the higher risk), etc.
    conc_i = tot_r - less_r - eq_r                 # as the later row: deaths with a higher risk than its own
    disc_i = less_r
    tied_i = eq_r
    conc_i[dead] += less_f                         # as the death: later rows with a lower risk than its own
    disc_i[dead] += tot_f - less_f - eq_f
    tied_i[dead] += eq_f
    n_c, n_d, n_t = float(wd @ less_f), float(wd @ (tot_f - less_f - eq_f)), float(wd @ eq_f)
    tied_y = _tied_pairs(Dk, wd)
    tied_xy = _tied_pairs(np.unique(Dk, return_inverse=True)[1] * (xr.max() + 1) + xd, wd)
    npair = n_c + n_d + n_t
    with np.errstate(invalid="ignore", divide="ignore"):
        somers = (n_c - n_d) / npair
        dfbeta = w * (conc_i - disc_i - somers * (conc_i + disc_i + tied_i)) / npair
    if cluster is not None:
        dfbeta = np.bincount(pd.factorize(np.asarray(cluster), sort=True)[0], weights=dfbeta)
    return pd.DataFrame([{"concordance": (somers + 1) / 2, "std_error": np.sqrt(float(dfbeta @ dfbeta) / 4),
                          "concordant": n_c, "discordant": n_d, "tied_x": n_t, "tied_y": tied_y - tied_xy,
                          "tied_xy": tied_xy, "n": n}])


def _tied_pairs(key: np.ndarray, w: np.ndarray) -> float:
    """Sum of ``w_i w_j`` over unordered pairs with equal ``key``."""
    if len(key) == 0:
        return 0.0
    inv = np.unique(key, return_inverse=True)[1]
    tot = np.bincount(inv, weights=w)
    return float((tot @ tot - w @ w) / 2)


def _range_rank_sums(pkey, prank, pw, qrank, nbits, lo=None, hi=None):
    """For each query: sums of the points' weights over the points of its group with ``lo < pkey < hi``
    and, among those, ``prank < qrank`` and ``prank == qrank``; returns ``(less, equal, total)``.

    A rank is the group (stratum) above ``nbits`` bits of risk rank; keys sort by group first. A bound
    left out is the group's start (``lo``) or end (``hi``). Points and the bounds are sorted once by
    (key, ``hi`` before and ``lo`` after points with equal key); a query's sum is then the point weight
    between its bounds within the group. The less-than sums split the rank comparison at the highest
    differing bit ``b``: point and query agree above ``b`` and the point has 0, the query 1 at ``b``.
    From the top bit down, the order is kept sorted by (rank >> (b + 1), key) by a stable partition of
    each group on bit ``b`` (prefix sums, no sort), so a bit costs a few passes over the arrays.
    """
    nq, npt = len(qrank), len(pkey)
    if npt == 0 or nq == 0:
        return np.zeros(nq), np.zeros(nq), np.zeros(nq)
    bounds = [(b, kind) for b, kind in ((hi, 0), (lo, 2)) if b is not None]
    key = np.concatenate([pkey] + [b for b, _ in bounds]).astype(np.int64)
    kind = np.concatenate([np.ones(npt, np.int64)] + [np.full(nq, k, np.int64) for _, k in bounds])
    n = len(key)
    rank = np.concatenate([prank] + [qrank] * len(bounds))
    it = np.int32 if max(n, int(rank.max())) < 2**31 else np.int64     # half the memory traffic when it fits
    order = np.argsort(key * 3 + kind)
    rank = rank.astype(it)[order]
    w = np.concatenate([pw, np.zeros(len(bounds) * nq)])[order]       # bounds weigh nothing
    pos = np.arange(n, dtype=it)
    at = np.empty(n, it)
    at[order] = pos                                  # position of each point and bound
    hpos = at[npt:npt + nq] if hi is not None else None
    lpos = at[n - nq:] if lo is not None else None

    def between(gs, ge, weights):
        """Per query: the weight between its bounds within the bounds' group."""
        cs = np.concatenate([[0.0], np.cumsum(weights)])
        if hpos is None:
            return cs[ge[lpos]] - cs[lpos]
        out = cs[hpos] - cs[gs[hpos]]
        return out if lpos is None else out - (cs[lpos] - cs[gs[lpos]])

    gs, ge = _runs(rank >> nbits)
    total = between(gs, ge, w)
    less = np.zeros(nq)
    for b in range(nbits - 1, -1, -1):
        low = (rank >> b) & 1 == 0
        less += ((qrank >> b) & 1) * between(gs, ge, w * low)
        # stable partition of each group on the bit: the order becomes (rank >> b, key, kind)
        cz = np.concatenate([np.zeros(1, it), np.cumsum(low, dtype=it)])
        before = cz[:-1] - cz[gs]
        new = gs + np.where(low, before, cz[ge] - cz[gs] + (pos - gs) - before)
        inv = np.empty(n, it)
        inv[new] = pos
        rank, w = rank[inv], w[inv]
        hpos = new[hpos] if hpos is not None else None
        lpos = new[lpos] if lpos is not None else None
        gs, ge = _runs(rank >> b)
    equal = between(gs, ge, w)
    return less, equal, total


def _runs(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per position of the sorted array ``g``: the first and one-past-last position of its run of equal values."""
    first = np.empty(len(g), dtype=bool)
    first[:1] = True
    np.not_equal(g[1:], g[:-1], out=first[1:])
    starts = np.flatnonzero(first).astype(g.dtype)
    run = np.cumsum(first, dtype=g.dtype) - 1
    return starts[run], np.append(starts[1:], len(g)).astype(g.dtype)[run]
