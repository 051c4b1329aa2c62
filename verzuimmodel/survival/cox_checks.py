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

:func:`~verzuimmodel.survival.concordance.concordance` (in :mod:`.concordance`) is Harrell's C with R's infinitesimal-jackknife standard error. A pair of
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

__all__ = ["RESIDUAL_TYPES", "TRANSFORMS", "residuals", "cox_zph", "model_data"]

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


def _model_rows(model: CoxPH, df: pd.DataFrame) -> tuple[SurvData, np.ndarray, pd.DataFrame]:
    """Check that ``model`` is fitted and ``df`` is its data; its arrays in ``df``'s row order, the offset
    and the rows of ``df`` the fit used."""
    if not isinstance(model, CoxPH) or not hasattr(model, "params_"):
        raise ValueError("expected a fitted CoxPH: call .fit(df, ...) first")
    spec = model.fit_args_
    df = model.design_.fit_frame(df) if hasattr(model, "design_") else df
    d = survival_data(df, duration=spec["duration"], event=spec["event"], covariates=spec["covariates"],
                      entry=spec["entry"], weights=spec["weights"], strata=spec["strata"], cluster=spec["cluster"])
    if d.n != model.n_obs_ or int(d.event.sum()) != model.n_events_:
        raise ValueError(f"df has {d.n:,} rows and {int(d.event.sum()):,} events; the model was fitted on "
                         f"{model.n_obs_:,} rows and {model.n_events_:,} events: pass the data frame used in fit")
    return d, _offset(df, spec["offset"]), df


def model_data(model: CoxPH, df: pd.DataFrame) -> _ModelData:
    """Check that ``model`` is fitted and ``df`` is its data; return the sorted arrays and linear predictor."""
    d, off, df = _model_rows(model, df)
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


def _rank_codes(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of ``a`` and each element's position among them (``np.unique(a,
    return_inverse=True)`` by hashing: no sort of the rows)."""
    codes, uniq = pd.factorize(a)
    order = np.argsort(uniq, kind="stable")
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return np.asarray(uniq)[order], rank[codes]


def _suffix(a: np.ndarray) -> np.ndarray:
    """Sums over positions ``>= i`` along the first axis (one more, zero, row at the end)."""
    out = np.zeros((a.shape[0] + 1,) + a.shape[1:])
    out[:-1] = np.cumsum(a[::-1], axis=0)[::-1]
    return out


class _EventTimeSums:
    """The data reduced once to its event times, for :func:`cox_zph`: per (stratum, event time) key
    the risk-set and death sums of ``w r [1, x, x x']`` (``x`` centred), the deaths' count, weight
    and weighted covariate sum, and Efron's per-time coefficients ``c0..c4`` (as ``RiskSets.evaluate``).

    Rows are not sorted: each row's cell (its distinct exit key and event status) is found by
    hashing, the per-cell sums are weighted ``bincount`` passes over the rows, and the risk sets are
    suffix sums over the (few) keys, per stratum, less the rows entering at or after the time.
    """

    def __init__(self, d: SurvData, off: np.ndarray, beta: np.ndarray, ties: str):
        n, p = d.X.shape
        ev = d.event == 1
        w = d.weights
        XT = np.ascontiguousarray(d.X.T)             # one covariate per row: contiguous passes
        mu = XT.mean(axis=1)
        eta = beta @ XT + off
        XT -= mu[:, None]                            # centred, as R (and RiskSets), for accuracy
        fin = np.isfinite(d.entry)
        has_entry = bool(fin.any())
        if has_entry:
            uniq, inv = np.unique(np.concatenate([d.exit, d.entry[fin]]), return_inverse=True)
            er, nr = inv[:n], inv[n:]
        else:
            uniq, er = _rank_codes(d.exit)
        T = len(uniq)
        if d.strata is None:
            ukey, j = np.arange(T), er
        else:
            ukey, j = _rank_codes(d.strata * T + er)
        J = len(ukey)
        key_s, key_t = ukey // T, ukey % T
        cell = j * 2
        cell += ev
        nc = 2 * J
        cnt = np.bincount(cell, minlength=nc).reshape(J, 2)
        m_all = cnt[:, 1]
        evj = np.flatnonzero(m_all > 0)               # event keys, sorted by (stratum, time)
        K = len(evj)
        self.K, self.p = K, p
        self.m = m_all[evj].astype(float)
        shift = eta.max()
        wr = np.subtract(eta, shift, out=eta)         # eta is not needed any more
        np.exp(wr, out=wr)
        unit = bool(np.all(w == 1.0))
        if not unit:
            wr *= w
        q = p + 1
        ya, buf = np.empty(n), np.empty(n)            # work space: no row-sized temporaries in the loops

        def moments(idx, size):
            """Per value of ``idx``: sums of wr z z' for z = (1, x), a (size x q x q) array."""
            out = np.empty((size, q, q))
            out[:, 0, 0] = np.bincount(idx, wr, minlength=size)
            for a in range(p):
                np.multiply(XT[a], wr, out=ya)
                out[:, 0, a + 1] = out[:, a + 1, 0] = np.bincount(idx, ya, minlength=size)
                for b in range(a, p):
                    out[:, a + 1, b + 1] = out[:, b + 1, a + 1] = np.bincount(
                        idx, np.multiply(ya, XT[b], out=buf), minlength=size)
            return out

        C = moments(cell, nc).reshape(J, 2, q, q)
        # deaths' weight and weighted covariate sums (the Schoenfeld residuals' sums)
        SW = np.empty((K, q))
        SW[:, 0] = self.m if unit else np.bincount(cell, w, minlength=nc)[2 * evj + 1]
        for a in range(p):
            SW[:, a + 1] = np.bincount(cell, XT[a] if unit else np.multiply(w, XT[a], out=buf),
                                       minlength=nc)[2 * evj + 1]
        self.dw, self.SW1 = SW[:, 0], SW[:, 1:]
        # sum of w * eta over the deaths, from the sums above (eta = x'beta + offset)
        sw_eta = float(beta @ (self.SW1.sum(axis=0) + self.dw.sum() * mu))
        if np.any(off):
            sw_eta += float(off @ (w * ev))
        # risk sets at the event keys: rows of the key's stratum leaving at or after it ...
        A = C.sum(axis=1)
        s_k = key_s[evj]
        end = np.searchsorted(key_s, s_k, side="right")
        sufA = _suffix(A)
        R = sufA[evj] - sufA[end]
        if has_entry:                                 # ... less those entering at or after it
            ekey = d.strata[fin] * T + nr if d.strata is not None else nr
            uek, e = _rank_codes(ekey)
            E = len(uek)
            eidx = np.full(n, E)
            eidx[fin] = e
            sufB = _suffix(moments(eidx, E + 1)[:E])
            ks = s_k if d.strata is not None else np.zeros(K, dtype=np.int64)
            lo = np.searchsorted(uek, ks * T + key_t[evj], side="left")
            hi = np.searchsorted(uek, (ks + 1) * T, side="left") if d.strata is not None else np.full(K, E)
            R = R - (sufB[lo] - sufB[hi])
        D = C[evj, 1]
        self.times_rank, self.key_stratum = key_t[evj], s_k
        # Efron: steps l = 0..m-1 of each event time with fraction f = l/m (Breslow: one step, f = 0);
        # the sums over the steps of each time are sums over contiguous runs
        m = m_all[evj]
        if ties == "efron":
            starts = np.cumsum(m) - m
            sub_k = np.repeat(np.arange(K), m)
            f = np.arange(len(sub_k), dtype=float)
            f -= starts[sub_k]
            f /= m[sub_k]
            wsub = (self.dw / m)[sub_k]
        else:
            starts, sub_k, f, wsub = np.arange(K), np.arange(K), np.zeros(K), self.dw
        den = D[:, 0, 0][sub_k]
        den *= -f
        den += R[sub_k, 0, 0]
        if np.any(den <= 0):                          # a risk set underflowed: not the fit's data
            den = np.ones_like(den)
            shift = np.inf
        inv = wsub / den
        inv2 = inv / den
        per = lambda v: np.add.reduceat(v, starts) if K else np.zeros(0)      # noqa: E731
        t = inv * f
        c1 = per(t)
        np.multiply(inv2, f, out=t)
        c3 = per(t)
        t *= f
        self.c = {"0": per(inv), "1": c1, "2": per(inv2), "3": c3, "4": per(t)}
        with np.errstate(divide="ignore", invalid="ignore"):
            np.log(den, out=den)
        den += shift
        self.loglik = sw_eta - float(wsub @ den)
        self.S1, self.D1 = R[:, 0, 1:], D[:, 0, 1:]
        self.S2, self.D2 = R[:, 1:, 1:], D[:, 1:, 1:]
        # for the time transforms: per distinct time, rows leaving, deaths and rows entering
        self.uniq = uniq
        self.n_exit = np.bincount(key_t, cnt.sum(axis=1), minlength=T)
        self.n_death = np.bincount(key_t, m_all, minlength=T)
        self.n_entry = np.bincount(nr, minlength=T) if has_entry else np.zeros(T)
        self.exit_rank = er

    def abar(self) -> np.ndarray:
        c = self.c
        return (self.S1 * c["0"][:, None] - self.D1 * c["1"][:, None]) / self.dw[:, None]

    def information(self, v: np.ndarray) -> np.ndarray:
        """``sum_k v_k I_k``, ``I_k`` the contribution of event time ``k`` to the Cox information."""
        c = {j: self.c[j] * v for j in "01234"}
        S1, D1 = self.S1, self.D1
        info = np.einsum("k,kab->ab", c["0"], self.S2) - np.einsum("k,kab->ab", c["1"], self.D2)
        cross = (S1 * c["3"][:, None]).T @ D1
        info -= (S1 * c["2"][:, None]).T @ S1 - cross - cross.T + (D1 * c["4"][:, None]).T @ D1
        return info


def _key_transform(es: _EventTimeSums, d: SurvData, transform) -> np.ndarray:
    """The transformed time ``g`` at each distinct time (as :func:`_time_transform` of the rows)."""
    times = es.uniq
    if callable(transform):
        g = np.asarray(transform(d.exit), dtype=float)
        if g.shape != d.exit.shape or not np.isfinite(g).all():
            raise ValueError("transform: the function must return a finite number for every time")
        gt = np.zeros(len(times))
        gt[es.exit_rank] = g
        return gt
    if transform == "km":
        at_risk = _suffix(es.n_exit)[:-1] - _suffix(es.n_entry)[:-1]       # exit >= t, minus entry >= t
        dt = es.n_death > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            surv = np.concatenate([[1.0], np.cumprod(1.0 - es.n_death[dt] / at_risk[dt])])
        return 1.0 - surv[np.cumsum(dt) - dt]                                 # S(t-): event times before t
    if transform == "rank":
        return np.cumsum(es.n_exit) - es.n_exit + (es.n_exit + 1) / 2
    if transform == "identity":
        return times.astype(float)
    if transform == "log":
        if (d.exit <= 0).any():
            raise ValueError("transform='log' needs positive times")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(times)
    raise ValueError(f"transform: got {transform!r}; expected one of {', '.join(map(repr, TRANSFORMS))} or a function "
                     "of time")


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
    d, off, _ = _model_rows(model, df)
    es = _EventTimeSums(d, off, model.params_.to_numpy(), model.options.ties)
    if not np.isclose(es.loglik, model.log_likelihood_, rtol=1e-8, atol=1e-8):
        raise ValueError("df gives a different log partial likelihood at the estimates than the fit did: pass the "
                         "data frame used in fit, unchanged")
    gk = _key_transform(es, d, transform)[es.times_rank]      # one value per event time
    gk = gk - (es.m @ gk) / es.m.sum()                         # centred at its mean over the deaths
    p = es.p
    u = np.concatenate([np.zeros(p), gk @ (es.SW1 - es.dw[:, None] * es.abar())])
    H1, H2, H3 = es.information(np.ones(es.K)), es.information(gk), es.information(gk * gk)
    H = np.block([[H1, H2], [H2.T, H3]])
    rows = []
    for j, term in enumerate(model.covariates_):          # one small solve per covariate
        kk = np.r_[np.arange(p), p + j]
        rows.append((term, float(u[kk] @ np.linalg.solve(H[np.ix_(kk, kk)], u[kk])), 1))
    rows.append(("GLOBAL", float(u @ np.linalg.solve(H, u)), p))
    out = pd.DataFrame(rows, columns=["term", "statistic", "df"])
    out["p_value"] = stats.chi2.sf(out["statistic"], out["df"])
    return out
