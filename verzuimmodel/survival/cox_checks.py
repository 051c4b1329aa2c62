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

The residuals are computed from the risk-set sums of the fit (vectorised passes over the rows).
The test needs only per-event-time sums: the rows are not sorted, each row's exit bin comes from
hashing its time, and one compiled pass over the rows (numba, :func:`jit`) adds its moments
:math:`w_i r_i z_i z_i'`, :math:`z_i = (1, x_i - \bar x)`, to its bin; the risk sets are suffix
sums over the bins.

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
The counts come from two compiled sweeps over the rows sorted by time, with a Fenwick tree over
the ranks of the risk score (as R's balanced tree): :math:`O(n \log n)`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ._data import SurvData, _numeric, survival_data
from ._jit import jit
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


def _model_rows(model: CoxPH, df: pd.DataFrame, *, columns: bool = False):
    """Check that ``model`` is fitted and ``df`` is its data; its arrays in ``df``'s row order, the offset
    and the rows of ``df`` the fit used.

    With ``columns``: ``(d, XT, offset)``, ``d`` without covariates and ``XT`` the covariates as the rows
    of one ``(p, n)`` array, each read once from ``df`` (checked as :func:`.survival_data` does: a
    column that is not finite and numeric goes through its checks, and their error).
    """
    if not isinstance(model, CoxPH) or not hasattr(model, "params_"):
        raise ValueError("expected a fitted CoxPH: call .fit(df, ...) first")
    spec = model.fit_args_
    df = model.design_.fit_frame(df) if hasattr(model, "design_") else df
    d = survival_data(df, duration=spec["duration"], event=spec["event"],
                      covariates=[] if columns else spec["covariates"], entry=spec["entry"], weights=spec["weights"],
                      strata=spec["strata"], cluster=spec["cluster"])
    if d.n != model.n_obs_ or int(d.event.sum()) != model.n_events_:
        raise ValueError(f"df has {d.n:,} rows and {int(d.event.sum()):,} events; the model was fitted on "
                         f"{model.n_obs_:,} rows and {model.n_events_:,} events: pass the data frame used in fit")
    if not columns:
        return d, _offset(df, spec["offset"]), df
    XT = np.empty((len(spec["covariates"]), d.n))
    for a, c in enumerate(spec["covariates"]):
        s = df[c] if c in df.columns else None
        if s is not None and isinstance(s.dtype, np.dtype) and s.dtype.kind in "fiu":
            XT[a] = s.to_numpy()
            if np.isfinite(XT[a]).all():
                continue
        XT[a] = _numeric(df, c, "data", "covariate")          # raises survival_data's error, or converts
    return d, XT, _offset(df, spec["offset"])


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


def _linear_predictor(XT, beta, off):                                     # pragma: no cover (numba)
    """``eta = x'beta + off`` per row from the covariates as rows of ``XT``, summed covariate by covariate
    (the same order for every row: equal rows, equal eta), and its maximum."""
    p, n = XT.shape
    eta = off.copy()
    for a in range(p):
        x = XT[a]
        b = beta[a]
        for i in range(n):
            eta[i] += x[i] * b
    return eta, eta.max() if n > 0 else 0.0


def _row_sums(XT, mu, wr, w, eta, event, row_key, key_bin, entry_bin, K):   # pragma: no cover (numba)
    """The rows' sums for :class:`_EventTimeSums` in one pass over the rows (compiled by :func:`jit`).

    With ``z = (1, x - mu)``, row ``i`` adds ``wr z z'`` to cell ``2 b + event`` of its exit bin
    ``b = key_bin[row_key[i]]`` and to its entry bin ``entry_bin[i]`` (none when negative, or without
    entry bins); a death also adds ``w z`` to its event key ``b - 1``. Returns ``(cells (2K+2, q, q),
    entry bins (K+1, q, q), deaths' w z (K, q), sum of w eta over the deaths)``.
    """
    p, n = XT.shape
    q = p + 1
    has_entry = len(entry_bin) == n
    cells = np.zeros((2 * K + 2, q, q))
    en = np.zeros((K + 1 if has_entry else 0, q, q))
    dz = np.zeros((K, q))
    z = np.ones(q)
    sw_eta = 0.0
    for i in range(n):
        hb = key_bin[row_key[i]]
        lb = entry_bin[i] if has_entry else -1
        if hb < 0 and lb < 0:                       # at risk at no event time (a death always is)
            continue
        for a in range(p):
            z[a + 1] = XT[a, i] - mu[a]
        if hb >= 0:
            c = 2 * hb + event[i]
            for a in range(q):
                za = wr[i] * z[a]
                for b in range(q):
                    cells[c, a, b] += za * z[b]
        if lb >= 0:
            for a in range(q):
                za = wr[i] * z[a]
                for b in range(q):
                    en[lb, a, b] += za * z[b]
        if event[i] == 1:
            sw_eta += w[i] * eta[i]
            for a in range(q):
                dz[hb - 1, a] += w[i] * z[a]
    return cells, en, dz, sw_eta


def _bins(evkey: np.ndarray, keys: np.ndarray, T: int) -> np.ndarray:
    """Per (stratum, time) key ``s T + t``: the number of event keys up to it (sorted by stratum and time), or
    -1 when that includes none of its stratum's."""
    b = np.searchsorted(evkey, keys, side="right")
    b[b == np.searchsorted(evkey, keys - keys % T, side="left")] = -1
    return b


class _EventTimeSums:
    """The data reduced once to its event times, for :func:`cox_zph`: per (stratum, event time) key
    the risk-set and death sums of ``w r [1, x, x x']`` (``x`` centred), the deaths' count, weight
    and weighted covariate sum, and Efron's per-time coefficients ``c0..c4`` (as ``RiskSets.evaluate``).

    Rows are not sorted. Each row's distinct (stratum, exit) key is found by hashing and gives its
    exit bin, the number of event keys of its stratum up to its exit (so the row is at risk at the
    event keys below the bin); one compiled pass (:func:`_row_sums`) adds the row's moments to its
    bin. The risk set of an event key is then a suffix sum over the bins of its stratum, less the
    same over the entry bins of the rows entering at or after the time.
    """

    def __init__(self, d: SurvData, XT: np.ndarray, off: np.ndarray, beta: np.ndarray, ties: str):
        p, n = XT.shape
        fin = np.isfinite(d.entry)
        has_entry = bool(fin.any())
        uniq, er = _rank_codes(d.exit)
        if has_entry:                                 # distinct times of exits and entries together
            ue, nr = _rank_codes(d.entry[fin])
            both = np.union1d(uniq, ue)
            er, nr = np.searchsorted(both, uniq)[er], np.searchsorted(both, ue)[nr]
            uniq = both
        T = len(uniq)
        if d.strata is None:
            ukey, j = np.arange(T), er
        else:
            ukey, j = _rank_codes(d.strata * T + er)
        cnt = np.bincount(2 * j + d.event, minlength=2 * len(ukey)).reshape(-1, 2)     # rows leaving, deaths
        m_all = cnt[:, 1]
        evj = np.flatnonzero(m_all)                   # event keys, sorted by (stratum, time)
        evkey = ukey[evj]
        K = len(evj)
        self.K, self.p = K, p
        key_bin = _bins(evkey, ukey, T)
        entry_bin = np.zeros(0, dtype=np.int64)
        if has_entry:
            ekey = d.strata[fin] * T + nr if d.strata is not None else nr
            uek, e = _rank_codes(ekey)
            entry_bin = np.full(n, -1, dtype=np.int64)
            entry_bin[fin] = _bins(evkey, uek, T)[e]
        eta, shift = jit(_linear_predictor)(XT, np.asarray(beta, dtype=float), np.asarray(off, dtype=float))
        mu = XT.mean(axis=1)                          # centred, as R (and RiskSets), for accuracy
        w = np.asarray(d.weights, dtype=float)
        wr = np.exp(eta - shift)
        wr *= w
        cells, en, SW, sw_eta = jit(_row_sums)(XT, mu, wr, w, eta, np.asarray(d.event, dtype=np.int64),
                                               np.asarray(j, dtype=np.int64), key_bin, entry_bin, K)
        ex = cells[0::2] + cells[1::2]                # per exit bin, all rows
        D = cells[3::2]                               # per event key (exit bin less one), the deaths
        m = m_all[evj]
        self.m = m.astype(float)
        self.dw, self.SW1 = SW[:, 0], SW[:, 1:]
        # risk sets at the event keys: rows of the key's stratum at risk after it, less those entering at or after it
        s_k = evkey // T
        end = np.searchsorted(s_k, s_k, side="right") + 1
        suf = _suffix(ex)
        R = suf[1:K + 1] - suf[end]
        if has_entry:
            suf = _suffix(en)
            R -= suf[1:K + 1] - suf[end]
        self.times_rank, self.key_stratum = evkey % T, s_k
        # Efron: steps l = 0..m-1 of each event time with fraction f = l/m (Breslow: one step, f = 0);
        # the sums over the steps of each time are sums over contiguous runs
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
        self.loglik = sw_eta - float(np.sum(wsub * den))      # not a BLAS dot: no threads woken for it
        self.S1, self.D1 = R[:, 0, 1:], D[:, 0, 1:]
        self.S2, self.D2 = R[:, 1:, 1:], D[:, 1:, 1:]
        # for the time transforms: per distinct time, rows leaving, deaths and rows entering
        self.uniq = uniq
        self.n_exit = np.bincount(ukey % T, cnt.sum(axis=1), minlength=T)
        self.n_death = np.bincount(self.times_rank, m, minlength=T)
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
    d, XT, off = _model_rows(model, df, columns=True)
    es = _EventTimeSums(d, XT, off, model.params_.to_numpy(), model.options.ties)
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
