r"""Cox proportional hazards regression, fast, for start–stop data with ties, strata, weights and clusters.

The model for row :math:`i` at risk on :math:`(s_i, t_i]` in stratum :math:`g(i)`:

.. math:: h_i(t) = h_{0,g(i)}(t)\,\exp(x_i'\beta).

:math:`\beta` maximises the weighted partial likelihood. With :math:`D_k` the events at the
:math:`k`-th distinct event time of a stratum, :math:`R_k` its risk set (:math:`s_i < t_k \le t_i`),
:math:`r_i = \exp(x_i'\beta)`, :math:`S_0 = \sum_{R_k} w_i r_i` and :math:`S_0^D = \sum_{D_k} w_i r_i`:

- Breslow: :math:`\ell = \sum_k \big[\sum_{D_k} w_i x_i'\beta - W_k \log S_0\big]`,
  :math:`W_k = \sum_{D_k} w_i`.
- Efron: :math:`\ell = \sum_k \big[\sum_{D_k} w_i x_i'\beta - \bar w_k \sum_{l=0}^{m_k-1}
  \log(S_0 - \tfrac{l}{m_k} S_0^D)\big]`, :math:`m_k = |D_k|`, :math:`\bar w_k = W_k/m_k` (as R's ``coxph``).

Newton–Raphson with step halving from :math:`\beta = 0`. The model-based variance is the inverse
information; with ``cluster`` the robust sandwich :math:`I^{-1}(\sum_g U_g U_g')I^{-1}` with
:math:`U_g` the sum of the weighted score residuals of cluster :math:`g` (R's ``cluster()``).

Risk-set sums at all event times come from suffix sums over rows sorted once by (stratum, time):
one pass of cumulative sums per Newton step, no loop over rows or event times.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from ..errors import ConvergenceError, ConvergenceWarning
from ..tidy import tidy_table
from ._data import SurvData, survival_data

__all__ = ["CoxPH", "RiskSets"]


class RiskSets:
    """Precomputed risk-set structure of survival data (independent of the coefficients).

    ``evaluate(eta, X)`` returns the log partial likelihood and its gradient and information
    with respect to the coefficients of the columns of ``X``, for linear predictor ``eta``.
    Reused by the frailty and competing-risks models.
    """

    def __init__(self, d: SurvData, ties: Literal["efron", "breslow"] = "efron"):
        self.ties = ties
        self.w = d.weights
        n = d.n
        finite_entry = np.isfinite(d.entry)
        uniq = np.unique(np.concatenate([d.exit, d.entry[finite_entry]]))
        exit_r = np.searchsorted(uniq, d.exit) + 1
        entry_r = np.where(finite_entry, np.searchsorted(uniq, np.where(finite_entry, d.entry, 0.0)) + 1, 0)
        M = len(uniq) + 2
        s = d.strata if d.strata is not None else np.zeros(n, dtype=np.int64)
        self.stratum = s
        key_exit = s * M + exit_r
        key_entry = s * M + entry_r
        ev = d.event == 1
        self.event = ev
        # distinct event keys (stratum, time), ascending
        self.keys, ev_group, m = np.unique(key_exit[ev], return_inverse=True, return_counts=True)
        self.ev_rows = np.flatnonzero(ev)
        self.ev_group = ev_group
        self.m = m
        self.K = len(self.keys)
        self.dw = np.bincount(ev_group, weights=self.w[ev], minlength=self.K)
        self.times = uniq[(self.keys % M) - 1]
        self.key_stratum = self.keys // M
        stratum_end = (self.key_stratum + 1) * M
        # rows sorted by exit key / entry key (ascending): risk sums are suffix-sum differences
        self.order_exit = np.argsort(key_exit, kind="stable")
        sx = key_exit[self.order_exit]
        self.ex_a, self.ex_b = np.searchsorted(sx, self.keys), np.searchsorted(sx, stratum_end)
        self.has_entry = bool(finite_entry.any())
        if self.has_entry:
            self.order_entry = np.argsort(key_entry, kind="stable")
            se = key_entry[self.order_entry]
            self.en_a, self.en_b = np.searchsorted(se, self.keys), np.searchsorted(se, stratum_end)
        # each row's window of event keys: (key_entry, key_exit] -> positions [lo, hi)
        self.row_lo = np.searchsorted(self.keys, key_entry, side="right")
        self.row_hi = np.searchsorted(self.keys, key_exit, side="right")
        # Efron: one entry per (event time, l) with fraction l/m; Breslow: one per event time
        if ties == "efron":
            self.sub_k = np.repeat(np.arange(self.K), m)
            self.sub_f = (np.arange(len(self.sub_k)) - np.repeat(np.cumsum(m) - m, m)) / np.repeat(m, m)
            self.sub_w = (self.dw / m)[self.sub_k]
        else:
            self.sub_k = np.arange(self.K)
            self.sub_f = np.zeros(self.K)
            self.sub_w = self.dw
        self.n = n

    # -- risk-set sums --------------------------------------------------------------------------
    def _risk_sums(self, v: np.ndarray) -> np.ndarray:
        """Sum of rows of ``v`` (n x q) over each event time's risk set (K x q)."""
        out = _suffix_diff(v[self.order_exit], self.ex_a, self.ex_b)
        if self.has_entry:
            out -= _suffix_diff(v[self.order_entry], self.en_a, self.en_b)
        return out

    def _event_sums(self, v: np.ndarray) -> np.ndarray:
        """Sum of rows of ``v`` over each event time's events (K x q)."""
        ve = v[self.ev_rows]
        return np.stack([np.bincount(self.ev_group, weights=ve[:, j], minlength=self.K) for j in range(v.shape[1])],
                        axis=1)

    def evaluate(self, eta: np.ndarray, X: np.ndarray, *, need_hessian: bool = True):
        """Log partial likelihood, gradient and information at linear predictor ``eta``.

        Returns ``(loglik, gradient, information, state)``; ``state`` feeds :meth:`score_residuals`
        and :meth:`baseline_hazard`.
        """
        p = X.shape[1]
        shift = eta.max() if len(eta) else 0.0
        r = np.exp(eta - shift)
        wr = self.w * r
        iu = np.triu_indices(p)
        cols = [wr[:, None], wr[:, None] * X]
        if need_hessian:
            cols.append(wr[:, None] * (X[:, iu[0]] * X[:, iu[1]]))
        V = np.concatenate(cols, axis=1)
        R = self._risk_sums(V)
        k, f = self.sub_k, self.sub_f
        den = R[k, 0]
        num1 = R[k, 1:1 + p]
        if self.ties == "efron":
            D = self._event_sums(V)
            den = den - f * D[k, 0]
            num1 = num1 - f[:, None] * D[k, 1:1 + p]
        else:
            D = None
        if np.any(den <= 0):     # a risk set underflowed: only possible far from the optimum
            return -np.inf, None, None, None
        a = num1 / den[:, None]
        wsub = self.sub_w
        ev = self.ev_rows
        wev = self.w[ev]
        loglik = float(wev @ eta[ev] - (wsub * (np.log(den) + shift)).sum())
        grad = wev @ X[ev] - wsub @ a
        info = None
        if need_hessian:
            num2 = R[k, 1 + p:]
            if D is not None:
                num2 = num2 - f[:, None] * D[k, 1 + p:]
            s2 = (wsub / den) @ num2
            info = np.zeros((p, p))
            info[iu] = s2
            info = info + np.triu(info, 1).T
            info -= (a * wsub[:, None]).T @ a
        state = {"r": r, "shift": shift, "den": den, "a": a}
        return loglik, grad, info, state

    def score_residuals(self, X: np.ndarray, state: dict) -> np.ndarray:
        """Score residuals per row (unweighted), as R's ``residuals(fit, type="score")``."""
        p = X.shape[1]
        r, den, a = state["r"], state["den"], state["a"]
        k, f, wsub = self.sub_k, self.sub_f, self.sub_w
        dlam = wsub / den
        H = np.bincount(k, dlam, minlength=self.K)
        A = np.stack([np.bincount(k, a[:, j] * dlam, minlength=self.K) for j in range(p)], axis=1) \
            if p else np.zeros((self.K, 0))
        cumH = np.concatenate([[0.0], np.cumsum(H)])
        cumA = np.vstack([np.zeros((1, p)), np.cumsum(A, axis=0)])
        lo, hi = self.row_lo, self.row_hi
        res = -r[:, None] * (X * (cumH[hi] - cumH[lo])[:, None] - (cumA[hi] - cumA[lo]))
        ev, g = self.ev_rows, self.ev_group
        if self.ties == "efron":
            Hd = np.bincount(k, (1 - f) * dlam, minlength=self.K)
            Ad = np.stack([np.bincount(k, (1 - f) * a[:, j] * dlam, minlength=self.K) for j in range(p)], axis=1) \
                if p else np.zeros((self.K, 0))
            # a death is at risk with weight (1 - l/m) in the l-th Efron step of its own time
            res[ev] += r[ev, None] * (X[ev] * (H - Hd)[g][:, None] - (A - Ad)[g])
            abar = np.stack([np.bincount(k, a[:, j], minlength=self.K) for j in range(p)], axis=1) / self.m[:, None] \
                if p else np.zeros((self.K, 0))
        else:
            abar = a
        res[ev] += X[ev] - abar[g]
        return res

    def baseline_hazard(self, state: dict) -> np.ndarray:
        """Increments of the baseline cumulative hazard (at x = 0) at each event time (Breslow or Efron)."""
        dlam = self.sub_w / state["den"]
        return np.bincount(self.sub_k, dlam, minlength=self.K) * np.exp(-state["shift"])


def _suffix_diff(v: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum(v[a:b])`` for each pair, from suffix sums (accurate for the small late risk sets)."""
    suffix = np.zeros((len(v) + 1, v.shape[1]))
    suffix[:-1] = np.cumsum(v[::-1], axis=0)[::-1]
    return suffix[a] - suffix[b]


@dataclass(frozen=True)
class _Options:
    ties: Literal["efron", "breslow"]
    level: float
    tol: float
    max_iter: int


class CoxPH:
    """Cox proportional hazards model (see the module docstring for the equations).

    Parameters
    ----------
    ties : ``"efron"`` (default, as R) or ``"breslow"``.
    level : confidence level of the intervals in :meth:`tidy`.
    tol : convergence: relative change in the log partial likelihood and maximum Newton step.
    max_iter : maximum Newton iterations.

    Examples
    --------
    >>> m = CoxPH().fit(df, duration="stop", event="event", covariates=["x1", "x2"], entry="start",
    ...                 cluster="school")                                            # doctest: +SKIP
    >>> m.tidy()                                                                     # doctest: +SKIP
    """

    def __init__(self, ties: Literal["efron", "breslow"] = "efron", level: float = 0.95, tol: float = 1e-10,
                 max_iter: int = 50):
        if ties not in ("efron", "breslow"):
            raise ValueError(f"ties: got {ties!r}; expected 'efron' or 'breslow'")
        if not 0 < level < 1:
            raise ValueError(f"level: got {level!r}; expected a number between 0 and 1")
        self.options = _Options(ties, level, tol, max_iter)

    def fit(self, df: pd.DataFrame, duration: str, event: str, covariates: Sequence[str], entry: str | None = None,
            strata: str | Sequence[str] | None = None, weights: str | None = None, cluster: str | None = None,
            robust: bool | None = None, offset: str | None = None) -> "CoxPH":
        """Fit the model; returns ``self``.

        ``entry`` gives start–stop (counting-process) rows ``(entry, duration]`` for time-varying
        covariates and late entry. ``cluster`` gives the robust sandwich variance with clusters
        (e.g. school); ``robust=True`` without ``cluster`` treats each row as its own cluster. As in
        R, the robust variance is the default when ``cluster`` is given or the weights are not
        integers (sampling or inverse-probability weights); ``robust=False`` turns it off.
        ``offset`` names a column added to the linear predictor with coefficient 1.
        """
        d = survival_data(df, duration=duration, event=event, covariates=covariates, entry=entry, weights=weights,
                          strata=strata, cluster=cluster)
        off = _offset(df, offset)
        _check_design(d)
        rs = RiskSets(d, self.options.ties)
        if rs.K == 0:
            raise ConvergenceError("no events in the data: a Cox model needs at least one event")
        beta, loglik, info, state, n_iter, converged = _newton(rs, d.X, off, self.options)
        try:
            var = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            raise ConvergenceError("the information matrix is singular: check for collinear covariates") from None
        names = d.covariates
        self._check_infinite(rs, d, off, beta, var, names)
        if not converged:
            warnings.warn(f"CoxPH did not converge in {self.options.max_iter} iterations", ConvergenceWarning,
                          stacklevel=2)
        self.params_ = pd.Series(beta, index=names, name="coef")
        self.naive_variance_ = pd.DataFrame(var, index=names, columns=names)
        # as R: robust by default with clusters or non-integer (sampling / IPW) weights
        use_robust = robust if robust is not None else (
            cluster is not None or not np.array_equal(d.weights, np.round(d.weights)))
        if use_robust:
            resid = rs.score_residuals(d.X, state) * d.weights[:, None]
            if d.cluster is not None:
                resid = _group_sum(resid, d.cluster)
            rvar = var @ (resid.T @ resid) @ var
            self.variance_ = pd.DataFrame(rvar, index=names, columns=names)
        else:
            self.variance_ = self.naive_variance_
        v = np.diag(self.variance_.to_numpy())
        self.standard_errors_ = pd.Series(np.where(v > 0, np.sqrt(np.abs(v)), np.inf), index=names, name="se")
        self.robust_ = use_robust
        self.log_likelihood_ = loglik
        self.log_likelihood_null_ = rs.evaluate(off, d.X[:, :0], need_hessian=False)[0]
        self.n_iter_, self.converged_ = n_iter, converged
        self.n_obs_, self.n_events_ = d.n, int(rs.event.sum())
        self.n_clusters_ = len(d.cluster_labels) if d.cluster is not None else None
        self.covariates_ = names
        self.strata_ = strata
        self._strata_labels = d.strata_labels
        inc = rs.baseline_hazard(state)
        bh = pd.DataFrame({"stratum": rs.key_stratum, "time": rs.times, "hazard": inc})
        bh["cumulative_hazard"] = bh.groupby("stratum")["hazard"].cumsum()
        if d.strata_labels is not None:
            bh["stratum"] = d.strata_labels[bh["stratum"].to_numpy()]
        self.baseline_cumulative_hazard_ = bh
        return self

    def _check_infinite(self, rs, d, off, beta, var, names):
        """Warn (as R) when one more Newton step would still move a coefficient a lot: it may be infinite."""
        _, grad, _, _ = rs.evaluate(d.X @ beta + off, d.X, need_hessian=False)
        step = np.abs(var @ grad) if grad is not None else np.full(len(beta), np.inf)
        tol = np.sqrt(self.options.tol) * 100
        bad = [n for n, s, b in zip(names, step, beta) if s > tol and s > tol * abs(b)]
        big = [n for n, b, v in zip(names, beta, np.diag(var)) if not v > 0 or (abs(b) > 10 and v > 100 * b * b)]
        for n in dict.fromkeys(bad + big):
            warnings.warn(f"CoxPH: the coefficient of '{n}' may be infinite (separation: the events occur only "
                          "at one extreme of this covariate); its estimate and standard error are not reliable",
                          ConvergenceWarning, stacklevel=3)

    # -- results --------------------------------------------------------------------------------
    def tidy(self) -> pd.DataFrame:
        """Coefficients (log hazard ratios) with SE, Wald statistics, intervals and hazard ratios."""
        return tidy_table(self.params_, self.standard_errors_, level=self.options.level)

    def predict_log_partial_hazard(self, df: pd.DataFrame) -> pd.Series:
        """Linear predictor ``x'beta`` (not centred)."""
        X = df[self.covariates_].to_numpy(dtype=float)
        return pd.Series(X @ self.params_.to_numpy(), index=df.index)

    def predict_survival(self, df: pd.DataFrame, times: Sequence[float]) -> pd.DataFrame:
        """Survival ``exp(-Lambda_0(t) exp(x'beta))`` of each row of ``df`` (columns) at ``times`` (rows).

        With strata, each row uses its own stratum's baseline (``df`` must hold the strata column).
        """
        times = np.asarray(times, dtype=float)
        lp = self.predict_log_partial_hazard(df).to_numpy()
        bh = self.baseline_cumulative_hazard_
        if self.strata_ is None:
            H = _step(bh["time"].to_numpy(), bh["cumulative_hazard"].to_numpy(), times)[:, None] * np.exp(lp)[None, :]
        else:
            cols = [self.strata_] if isinstance(self.strata_, str) else list(self.strata_)
            key = df[cols[0]] if len(cols) == 1 else pd.MultiIndex.from_frame(df[cols])
            H = np.empty((len(times), len(df)))
            for label, idx in pd.Series(np.arange(len(df))).groupby(np.asarray(key)).groups.items():
                b = bh[bh["stratum"] == label]
                H[:, idx] = _step(b["time"].to_numpy(), b["cumulative_hazard"].to_numpy(), times)[:, None] \
                    * np.exp(lp[idx])[None, :]
        return pd.DataFrame(np.exp(-H), index=pd.Index(times, name="time"), columns=df.index)

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"CoxPH(ties={self.options.ties!r})"
        return (f"CoxPH(ties={self.options.ties!r}): n={self.n_obs_:,}, events={self.n_events_:,}, "
                f"loglik={self.log_likelihood_:.4f}\n{self.tidy().to_string(index=False)}")


def _offset(df: pd.DataFrame, offset: str | None) -> np.ndarray:
    if offset is None:
        return np.zeros(len(df))
    from ._data import _numeric
    return _numeric(df, offset, "data", "offset")


def _check_design(d: SurvData) -> None:
    """Covariates must vary and not be collinear (checked on the centred design)."""
    if d.X.shape[1] == 0:
        return
    Xc = d.X - np.average(d.X, axis=0, weights=d.weights)
    const = [c for c, s in zip(d.covariates, np.abs(Xc).max(axis=0)) if s == 0]
    if const:
        raise ValueError(f"covariate(s) {', '.join(map(repr, const))} do not vary: a Cox model has no intercept")
    scale = np.sqrt((Xc**2).mean(axis=0))
    sub = Xc[:: max(1, len(Xc) // 200_000)] / scale
    rank = np.linalg.matrix_rank(sub)
    if rank < d.X.shape[1]:
        raise ValueError(f"covariates {', '.join(d.covariates)} are collinear (rank {rank} < {d.X.shape[1]})")


def _newton(rs: RiskSets, X: np.ndarray, offset: np.ndarray, opt: _Options, beta0: np.ndarray | None = None):
    p = X.shape[1]
    beta = np.zeros(p) if beta0 is None else beta0.copy()
    loglik, grad, info, state = rs.evaluate(X @ beta + offset, X)
    if not np.isfinite(loglik):
        raise ConvergenceError("a risk set is empty at the starting values: check the entry and exit times")
    converged = p == 0
    n_iter = 0
    for n_iter in range(1, opt.max_iter + 1):
        if p == 0:
            break
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            raise ConvergenceError("the information matrix is singular: check for collinear covariates") from None
        new = beta + step
        new_ll, new_grad, new_info, new_state = rs.evaluate(X @ new + offset, X)
        halvings = 0
        while not np.isfinite(new_ll) or new_ll < loglik - 1e-12 * abs(loglik):
            halvings += 1
            if halvings > 30:
                return beta, loglik, info, state, n_iter, False
            new = (beta + new) / 2
            new_ll, new_grad, new_info, new_state = rs.evaluate(X @ new + offset, X)
        change = abs(new_ll - loglik)
        beta, loglik, grad, info, state = new, new_ll, new_grad, new_info, new_state
        if change <= opt.tol * max(abs(loglik), 1.0):
            converged = True
            break
    return beta, loglik, info, state, n_iter, converged


def _group_sum(v: np.ndarray, groups: np.ndarray) -> np.ndarray:
    out = np.zeros((groups.max() + 1, v.shape[1]))
    for j in range(v.shape[1]):
        out[:, j] = np.bincount(groups, weights=v[:, j], minlength=out.shape[0])
    return out


def _step(x: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Right-continuous step function through (x, y), 0 before the first x."""
    i = np.searchsorted(x, at, side="right")
    return np.where(i > 0, y[np.maximum(i - 1, 0)], 0.0)
