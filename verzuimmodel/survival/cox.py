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

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import ConvergenceError, ConvergenceWarning
from ..tidy import tidy_table
from ._data import SurvData, survival_data
from .formula import dropped_note, model_design, with_n_dropped

__all__ = ["CoxPH", "RiskSets"]


class RiskSets:
    """Precomputed risk-set structure of survival data and a design ``X`` (independent of the coefficients).

    ``evaluate(eta)`` returns the log partial likelihood and its gradient and information with
    respect to the coefficients of the columns of ``X``, at linear predictor ``eta``. Rows are
    aggregated by distinct (stratum, time) with sparse indicator matrices, so a Newton step costs
    one pass over the rows whatever the number of ties. Reused by the frailty model.
    """

    def __init__(self, d: SurvData, X: np.ndarray, ties: Literal["efron", "breslow"] = "efron"):
        self.ties = ties
        self.w = d.weights
        self.X = X
        n, p = X.shape
        self.n, self.p = n, p
        finite_entry = np.isfinite(d.entry)
        uniq = _unique(np.concatenate([d.exit, d.entry[finite_entry]]) if finite_entry.any() else d.exit)[0]
        exit_r = np.searchsorted(uniq, d.exit) + 1
        entry_r = np.where(finite_entry, np.searchsorted(uniq, np.where(finite_entry, d.entry, 0.0)) + 1, 0)
        M = len(uniq) + 2
        s = d.strata if d.strata is not None else np.zeros(n, dtype=np.int64)
        key_exit = s * M + exit_r
        key_entry = s * M + entry_r
        ev = d.event == 1
        self.event = ev
        # distinct event keys (stratum, time), ascending
        self.keys, ev_group = _unique(key_exit[ev])
        m = np.bincount(ev_group, minlength=len(self.keys))
        self.ev_rows = np.flatnonzero(ev)
        self.ev_group = ev_group
        self.m = m
        self.K = len(self.keys)
        self.dw = np.bincount(ev_group, weights=self.w[ev], minlength=self.K)
        self.times = uniq[(self.keys % M) - 1]
        self.key_stratum = self.keys // M
        stratum_end = (self.key_stratum + 1) * M
        # columns summed over risk sets: 1 and x (second moments come from one weighted Gram matrix)
        Z1 = np.column_stack([np.ones(n), X])
        # risk set at key K: rows of the stratum with exit key >= K, minus those with entry key >= K
        self._exit = _KeySums(key_exit, np.arange(n), self.keys, stratum_end, Z1)
        self.has_entry = bool(finite_entry.any())
        self._entry = _KeySums(key_entry[finite_entry], np.flatnonzero(finite_entry), self.keys, stratum_end, Z1) \
            if self.has_entry else None
        self._events = _KeySums(key_exit[ev], self.ev_rows, self.keys, None, Z1)
        # each row's window of event keys: (key_entry, key_exit] -> positions [lo, hi)
        self.ev_wx = self.w[ev] @ X[ev]
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

    def _sums(self, wr: np.ndarray, cols: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Risk-set sums (K x cols) and, for Efron, event sums (K x cols) of ``wr * [1, X]``."""
        risk = self._exit.risk_sums(wr, cols)
        if self._entry is not None:
            risk -= self._entry.risk_sums(wr, cols)
        events = self._events.key_sums(wr, cols) if self.ties == "efron" else None
        return risk, events

    def evaluate(self, eta: np.ndarray, *, need: Literal["loglik", "gradient", "hessian"] = "hessian"):
        """Log partial likelihood, gradient and information at linear predictor ``eta``.

        Returns ``(loglik, gradient, information, state)`` (``None`` for what was not asked);
        ``loglik`` is ``-inf`` if a risk set underflows. ``state`` feeds :meth:`score_residuals`
        and :meth:`baseline_hazard`.

        Second moments never need per-row outer products: ``sum_k c_k sum_{R_k} w r x x'`` is
        ``X' diag(u) X`` with ``u_i = w_i r_i sum_{k in window(i)} c_k``. Efron's sums over the tied events ``l = 0..m-1`` of an event time only involve the scalars
        ``c_j = sum_l wbar f_l^j / den_l`` and ``sum_l wbar f_l^j / den_l^2`` (``f_l = l/m``,
        ``den_l = S0 - f_l S0^D``), so everything else is computed once per event time.
        """
        p = self.p if need != "loglik" else 0
        shift = eta.max() if len(eta) else 0.0
        r = np.exp(eta - shift)
        wr = self.w * r
        R, D = self._sums(wr, 1 + p)
        k, f, wsub = self.sub_k, self.sub_f, self.sub_w
        den = R[k, 0] - f * D[k, 0] if D is not None else R[:, 0]
        if np.any(den <= 0):     # a risk set underflowed: only possible far from the optimum
            return -np.inf, None, None, None
        K = self.K

        def per_time(values):
            return np.bincount(k, values, minlength=K)

        inv = wsub / den
        c = {"0": per_time(inv), "1": per_time(inv * f)}
        loglik = float(self.w[self.ev_rows] @ eta[self.ev_rows] - (wsub * (np.log(den) + shift)).sum())
        S1 = R[:, 1:1 + p]
        D1 = D[:, 1:1 + p] if D is not None else np.zeros_like(S1)
        inv2 = inv / den
        c.update({"2": per_time(inv2), "3": per_time(inv2 * f), "4": per_time(inv2 * f * f)})
        state = {"r": r, "shift": shift, "S1": S1, "D1": D1, "c": c}
        if need == "loglik":
            return loglik, None, None, state
        grad = self.ev_wx - (c["0"] @ S1 - c["1"] @ D1)
        info = None
        if need == "hessian":
            # sum_k (c0_k S2_k - c1_k D2_k) = X' diag(u) X: row i collects c0 over the event times
            # in its window and, if it is an event, -c1 of its own time
            cum0 = np.concatenate([[0.0], np.cumsum(c["0"])])
            u = wr * (cum0[self.row_hi] - cum0[self.row_lo])
            if D is not None:
                u[self.ev_rows] -= wr[self.ev_rows] * c["1"][self.ev_group]
            info = self.X.T @ (self.X * u[:, None])
            # minus sum_l wbar a_l a_l', a_l = (S1 - f_l D1) / den_l
            cross = (S1 * c["3"][:, None]).T @ D1
            info -= (S1 * c["2"][:, None]).T @ S1 - cross - cross.T + (D1 * c["4"][:, None]).T @ D1
        return loglik, grad, info, state

    def score_residuals(self, state: dict) -> np.ndarray:
        """Score residuals per row (unweighted), as R's ``residuals(fit, type="score")``.

        Row ``i``: ``delta_i (x_i - abar_k) - r_i sum_k sum_l (x_i - a_kl) dLambda_kl`` over the event
        times in its window; with Efron a death takes part in its own time's steps with weight
        ``1 - l/m``, and ``abar_k`` is the mean of the ``a_kl``.
        """
        X, p = self.X, self.p
        r, S1, D1, c = state["r"], state["S1"], state["D1"], state["c"]
        H = c["0"]                                          # sum_l dLambda_l
        A = S1 * c["2"][:, None] - D1 * c["3"][:, None]     # sum_l a_l dLambda_l
        cumH = np.concatenate([[0.0], np.cumsum(H)])
        cumA = np.vstack([np.zeros((1, p)), np.cumsum(A, axis=0)])
        lo, hi = self.row_lo, self.row_hi
        res = cumA[hi]
        res -= cumA[lo]
        res -= X * (cumH[hi] - cumH[lo])[:, None]
        res *= r[:, None]
        ev, g = self.ev_rows, self.ev_group
        wbar = self.dw / self.m
        with np.errstate(invalid="ignore", divide="ignore"):
            abar = (S1 * c["0"][:, None] - D1 * c["1"][:, None]) / (wbar * self.m)[:, None]
        Xe = X[ev]
        corr = Xe - abar[g]
        if self.ties == "efron":
            # a death is at risk with weight (1 - l/m) in the l-th step of its own time: give back
            # sum_l (l/m) dLambda_l (x_i - a_l)
            Ad = S1 * (c["2"] - c["3"])[:, None] - D1 * (c["3"] - c["4"])[:, None]
            corr += r[ev, None] * (Xe * c["1"][g][:, None] - (A - Ad)[g])
        res[ev] += corr
        return res

    def baseline_hazard(self, state: dict) -> np.ndarray:
        """Increments of the baseline cumulative hazard (at x = 0) at each event time (Breslow or Efron)."""
        return state["c"]["0"] * np.exp(-state["shift"])


class _KeySums:
    """Sums of ``wr * Z`` over rows grouped by key, and over all keys >= an event key in its stratum.

    Rows are sorted by key once (with their columns ``Z``), so each sum is one cache-friendly
    sparse product over the sorted rows.
    """

    def __init__(self, keys: np.ndarray, rows: np.ndarray, event_keys: np.ndarray,
                 stratum_end: np.ndarray | None, Z: np.ndarray):
        if _is_sorted(keys):          # the usual case: CoxPH fits rows sorted by time
            sorted_keys, self.rows = keys, rows
        else:
            order = np.argsort(keys, kind="stable")
            sorted_keys, self.rows = keys[order], rows[order]
        in_place = len(rows) == len(Z) and _is_sorted(self.rows) and (len(rows) == 0 or self.rows[-1] == len(Z) - 1)
        self.Zs = np.ascontiguousarray(Z) if in_place else np.ascontiguousarray(Z[self.rows])
        uk, inv = _unique(sorted_keys)
        self.G = _indicator(inv, np.arange(len(rows)), len(uk), len(rows))
        self.key_pos = np.searchsorted(uk, event_keys)
        self.b = np.searchsorted(uk, stratum_end) if stratum_end is not None else None

    def key_sums(self, wr: np.ndarray, cols: int) -> np.ndarray:
        """Sums per distinct key (for keys that are event keys: row k of the result is event key k)."""
        self.G.data = wr[self.rows]
        return self.G @ (self.Zs if cols == self.Zs.shape[1] else self.Zs[:, :cols])

    def risk_sums(self, wr: np.ndarray, cols: int) -> np.ndarray:
        per_key = self.key_sums(wr, cols)
        # suffix sums over keys: accurate for the small risk sets at late times
        suffix = np.zeros((per_key.shape[0] + 1, per_key.shape[1]))
        suffix[:-1] = np.cumsum(per_key[::-1], axis=0)[::-1]
        return suffix[self.key_pos] - suffix[self.b]


def _is_sorted(a: np.ndarray) -> bool:
    return bool(len(a) < 2 or np.all(a[1:] >= a[:-1]))


def _unique(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(a, return_inverse=True)``, without sorting when ``a`` is already sorted."""
    if not _is_sorted(a):
        return np.unique(a, return_inverse=True)
    first = np.empty(len(a), dtype=bool)
    first[:1] = True
    np.not_equal(a[1:], a[:-1], out=first[1:])
    return a[first], np.cumsum(first) - 1


def _indicator(group: np.ndarray, rows: np.ndarray, n_groups: int, n_rows: int) -> sparse.csr_matrix:
    """Sparse (n_groups x n_rows) matrix with a 1 at (group[i], rows[i])."""
    return sparse.csr_matrix((np.ones(len(rows)), (group, rows)), shape=(n_groups, n_rows))


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

    Attributes (after ``fit``, besides the estimates)
    -------------------------------------------------
    aic_, bic_ : ``-2 loglik + 2 p`` and ``-2 loglik + p log(d)``, ``d`` the number of events (unweighted), as
        R's ``AIC(fit)`` and ``BIC(fit)`` (``nobs.coxph`` is the number of events).

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

    def fit(self, df: pd.DataFrame, duration: str, event: str, covariates: Sequence[str] | None = None,
            entry: str | None = None, strata: str | Sequence[str] | None = None, weights: str | None = None,
            cluster: str | None = None, robust: bool | None = None, offset: str | None = None, *,
            formula: str | None = None, na_action: str = "raise") -> "CoxPH":
        """Fit the model; returns ``self``.

        ``covariates`` (numeric columns) or ``formula`` (``"age + C(sex) + strata(region) + cluster(school)"``)
        give the covariates; ``na_action="drop"`` drops rows with missing values (``n_dropped_``), see
        :mod:`~verzuimmodel.survival.formula`.

        ``entry`` gives start–stop (counting-process) rows ``(entry, duration]`` for time-varying
        covariates and late entry. ``cluster`` gives the robust sandwich variance with clusters
        (e.g. school); ``robust=True`` without ``cluster`` treats each row as its own cluster. As in
        R, the robust variance is the default when ``cluster`` is given or the weights are not
        integers (sampling or inverse-probability weights); ``robust=False`` turns it off.
        ``offset`` names a column added to the linear predictor with coefficient 1.
        """
        des = model_design(df, "CoxPH", formula=formula, covariates=covariates, na_action=na_action,
                           specials={"strata": strata, "cluster": cluster},
                           columns=(duration, event, entry, weights, offset))
        df, covariates, strata, cluster = des.data, des.covariates, des.specials["strata"], des.specials["cluster"]
        with des.original_rows():
            d = survival_data(df, duration=duration, event=event, covariates=covariates, entry=entry, weights=weights,
                              strata=strata, cluster=cluster)
            off = _offset(df, offset)
        _check_design(d)
        # rows sorted by (stratum, exit time): every risk-set pass then reads memory in order;
        # nothing reported depends on the row order
        d, off = _sorted(d, off)
        rs = RiskSets(d, d.X, self.options.ties)
        if rs.K == 0:
            raise ConvergenceError("no events in the data: a Cox model needs at least one event")
        beta, loglik, grad, info, state, n_iter, converged = _newton(rs, d.X, off, self.options)
        try:
            var = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            raise ConvergenceError("the information matrix is singular: check for collinear covariates") from None
        names = d.covariates
        self._check_infinite(grad, beta, var, names)
        if not converged:
            warnings.warn(f"CoxPH did not converge in {self.options.max_iter} iterations", ConvergenceWarning,
                          stacklevel=2)
        self.params_ = pd.Series(beta, index=names, name="coef")
        self.naive_variance_ = pd.DataFrame(var, index=names, columns=names)
        # as R: robust by default with clusters or non-integer (sampling / IPW) weights
        use_robust = robust if robust is not None else (
            cluster is not None or not np.array_equal(d.weights, np.round(d.weights)))
        if use_robust:
            resid = rs.score_residuals(state) * d.weights[:, None]
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
        ll0, g0, i0, _ = rs.evaluate(off)           # at beta = 0: the score test's ingredients
        self.log_likelihood_null_ = ll0
        try:
            self._score_statistic = float(g0 @ np.linalg.solve(i0, g0)) if len(g0) else 0.0
        except np.linalg.LinAlgError:
            self._score_statistic = float("nan")
        self.n_iter_, self.converged_ = n_iter, converged
        self.n_obs_, self.n_events_ = d.n, int(rs.event.sum())
        # as R's AIC(fit), BIC(fit): n is the number of events (nobs.coxph), unweighted
        self.aic_ = -2 * loglik + 2 * len(beta)
        self.bic_ = -2 * loglik + np.log(self.n_events_) * len(beta)
        self.n_clusters_ = len(d.cluster_labels) if d.cluster is not None else None
        self.covariates_ = names
        self.strata_ = strata
        self.n_dropped_, self.design_ = des.n_dropped, des.spec
        self.fit_args_ = dict(duration=duration, event=event, covariates=list(names), entry=entry, strata=strata,
                              weights=weights, cluster=cluster, offset=offset)   # to rebuild the data (cox_checks)
        self._strata_labels = d.strata_labels
        inc = rs.baseline_hazard(state)
        bh = pd.DataFrame({"stratum": rs.key_stratum, "time": rs.times, "hazard": inc})
        bh["cumulative_hazard"] = bh.groupby("stratum")["hazard"].cumsum()
        if d.strata_labels is not None:
            bh["stratum"] = d.strata_labels[bh["stratum"].to_numpy()]
        self.baseline_cumulative_hazard_ = bh
        from .curve_summaries import cox_curve_terms
        self._curve_terms = cox_curve_terms(rs, state, beta)       # for survival_curves
        return self

    def _check_infinite(self, grad, beta, var, names):
        """Warn (as R) when one more Newton step would still move a coefficient a lot: it may be infinite."""
        step = np.abs(var @ grad)
        tol = np.sqrt(self.options.tol) * 100
        bad = [n for n, s, b in zip(names, step, beta) if s > tol and s > tol * abs(b)]
        big = [n for n, b, v in zip(names, beta, np.diag(var)) if not v > 0 or (abs(b) > 10 and v > 100 * b * b)]
        for n in dict.fromkeys(bad + big):
            warnings.warn(f"CoxPH: the coefficient of '{n}' may be infinite (separation: the events occur only "
                          "at one extreme of this covariate); its estimate and standard error are not reliable",
                          ConvergenceWarning, stacklevel=3)

    # -- results --------------------------------------------------------------------------------
    def global_tests(self) -> pd.DataFrame:
        r"""The three tests of all coefficients being 0, as R's ``summary(coxph)``: likelihood ratio
        :math:`2(\ell(\hat\beta) - \ell(0))`, Wald :math:`\hat\beta' V^{-1}\hat\beta` (with the
        robust variance when the fit has one) and score :math:`U(0)' I(0)^{-1} U(0)`; each
        :math:`\chi^2` with ``p`` degrees of freedom. Columns ``test, statistic, df, p_value``."""
        from scipy import stats

        b = self.params_.to_numpy()
        p = len(b)
        try:
            wald = float(b @ np.linalg.solve(self.variance_.to_numpy(), b)) if p else 0.0
        except np.linalg.LinAlgError:
            wald = float("nan")
        rows = [("likelihood_ratio", 2 * (self.log_likelihood_ - self.log_likelihood_null_)),
                ("wald", wald), ("score", self._score_statistic)]
        return pd.DataFrame([{"test": t, "statistic": v, "df": p, "p_value": float(stats.chi2.sf(v, p))}
                             for t, v in rows])

    def tidy(self) -> pd.DataFrame:
        """Coefficients (log hazard ratios) with SE, Wald statistics, intervals and hazard ratios."""
        return with_n_dropped(tidy_table(self.params_, self.standard_errors_, level=self.options.level), self)

    def predict_log_partial_hazard(self, df: pd.DataFrame) -> pd.Series:
        """Linear predictor ``x'beta`` (not centred)."""
        X = self.design_.new_frame(df)[self.covariates_].to_numpy(dtype=float)
        return pd.Series(X @ self.params_.to_numpy(), index=df.index)

    def predict_survival(self, df: pd.DataFrame, times: Sequence[float]) -> pd.DataFrame:
        """Survival ``exp(-Lambda_0(t) exp(x'beta))`` of each row of ``df`` (columns) at ``times`` (rows).

        With strata, each row uses its own stratum's baseline (``df`` must hold the strata column); a
        stratum without events has survival 1 throughout, as R's ``survfit.coxph``.
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
                if b.empty:                 # a stratum without events: no hazard, S = 1 (as R)
                    H[:, idx] = 0.0
                    continue
                H[:, idx] = _step(b["time"].to_numpy(), b["cumulative_hazard"].to_numpy(), times)[:, None] \
                    * np.exp(lp[idx])[None, :]
        return pd.DataFrame(np.exp(-H), index=pd.Index(times, name="time"), columns=df.index)

    def residuals(self, df: pd.DataFrame, type: str = "martingale", **kwargs):
        """Residuals as R's ``residuals(fit, type)`` on ``df``, the data of the fit (:func:`.cox_checks.residuals`)."""
        from .cox_checks import residuals
        return residuals(self, df, type, **kwargs)

    def cox_zph(self, df: pd.DataFrame, transform="km") -> pd.DataFrame:
        """Proportional-hazards test as R's ``cox.zph`` on ``df``, the data of the fit (:func:`.cox_checks.cox_zph`)."""
        from .cox_checks import cox_zph
        return cox_zph(self, df, transform)

    def concordance(self, df: pd.DataFrame) -> pd.DataFrame:
        """Harrell's C and its standard error as R's ``concordance(fit)`` (:func:`.concordance.concordance`)."""
        from .concordance import concordance
        return concordance(self, df)

    def survival_curves(self, newdata: pd.DataFrame, times: Sequence[float] | None = None,
                        conf_type: Literal["log", "log-log", "plain"] = "log",
                        level: float | None = None) -> pd.DataFrame:
        """Curves of the rows of ``newdata`` with standard errors and pointwise bands, as R's
        ``survfit(fit, newdata)`` (the variance including the uncertainty in beta); a long table, see
        :func:`~verzuimmodel.survival.curve_summaries.cox_survival_curves`."""
        from .curve_summaries import cox_survival_curves
        return cox_survival_curves(self, newdata, times, conf_type=conf_type, level=level)

    def plot(self, ax=None, exp: bool = True, **kwargs):
        """Forest plot of :meth:`tidy` (hazard ratios on a log axis; ``exp=False``: log hazard ratios), see
        :func:`verzuimmodel.survival_plots.forest_plot`; residual plots: ``survival_plots.plot_residuals``."""
        if not hasattr(self, "params_"):
            raise ValueError("CoxPH.plot: the model is not fitted: call .fit(df, ...) first")
        from ..survival_plots import forest_plot
        kwargs.setdefault("xlabel", "hazard ratio" if exp else "log hazard ratio")
        return forest_plot(self.tidy(), exp=exp, ax=ax, **kwargs)

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"CoxPH(ties={self.options.ties!r})"
        return (f"CoxPH(ties={self.options.ties!r}): n={self.n_obs_:,}, events={self.n_events_:,}, "
                f"loglik={self.log_likelihood_:.4f}, AIC={self.aic_:.2f}, BIC={self.bic_:.2f}{dropped_note(self)}\n"
                f"{self.tidy().to_string(index=False)}")


def _offset(df: pd.DataFrame, offset: str | None) -> np.ndarray:
    if offset is None:
        return np.zeros(len(df))
    from ._data import _numeric
    return _numeric(df, offset, "data", "offset")


def _check_design(d: SurvData) -> None:
    """Covariates must vary and not be collinear (eigenvalues of their correlation matrix)."""
    X = d.X
    if X.shape[1] == 0:
        return
    const = [c for c, lo, hi in zip(d.covariates, X.min(axis=0), X.max(axis=0)) if lo == hi]
    if const:
        raise ValueError(f"covariate(s) {', '.join(map(repr, const))} do not vary: a Cox model has no intercept")
    if d.strata is not None:
        # a covariate constant within every stratum is absorbed by the strata's baselines (R: NA)
        G = int(d.strata.max()) + 1
        lo = np.full((G, X.shape[1]), np.inf)
        hi = np.full((G, X.shape[1]), -np.inf)
        np.minimum.at(lo, d.strata, X)
        np.maximum.at(hi, d.strata, X)
        within = [c for c, varies in zip(d.covariates, (hi > lo).any(axis=0)) if not varies]
        if within:
            raise ValueError(f"covariate(s) {', '.join(map(repr, within))} do not vary within any stratum: their "
                             "effect is absorbed by the strata's baseline hazards and cannot be estimated (R reports "
                             "NA); leave them out or do not stratify by them")
    mean = X.mean(axis=0)
    cov = X.T @ X / len(X) - np.outer(mean, mean)
    sd = np.sqrt(np.maximum(np.diag(cov), 1e-300))
    eig = np.linalg.eigvalsh(cov / np.outer(sd, sd))
    if eig.min() < 1e-10 * X.shape[1]:
        raise ValueError(f"covariates {', '.join(d.covariates)} are collinear: one is a linear combination of the "
                         "others")


def _sorted(d: SurvData, offset: np.ndarray) -> tuple[SurvData, np.ndarray]:
    order = np.argsort(d.exit, kind="stable") if d.strata is None else np.lexsort((d.exit, d.strata))
    take = {f: getattr(d, f)[order] for f in ("entry", "exit", "event", "X", "weights")}
    for f in ("strata", "cluster"):
        v = getattr(d, f)
        take[f] = v[order] if v is not None else None
    return dataclasses.replace(d, index=d.index[order], **take), offset[order]


def _newton(rs: RiskSets, X: np.ndarray, offset: np.ndarray, opt: _Options, beta0: np.ndarray | None = None):
    p = X.shape[1]
    beta = np.zeros(p) if beta0 is None else beta0.copy()
    loglik, grad, info, state = rs.evaluate(X @ beta + offset)
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
        # a trial step may overflow (a coefficient running off to infinity): halved until the
        # likelihood is finite and does not fall, so its floating-point warnings are not news
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            new_ll, new_grad, new_info, new_state = rs.evaluate(X @ new + offset)
            halvings = 0
            while not np.isfinite(new_ll) or new_ll < loglik - 1e-12 * abs(loglik):
                halvings += 1
                if halvings > 30:
                    return beta, loglik, grad, info, state, n_iter, False
                new = (beta + new) / 2
                new_ll, new_grad, new_info, new_state = rs.evaluate(X @ new + offset)
        change = abs(new_ll - loglik)
        beta, loglik, grad, info, state = new, new_ll, new_grad, new_info, new_state
        if change <= opt.tol * max(abs(loglik), 1.0):
            converged = True
            break
    return beta, loglik, grad, info, state, n_iter, converged


def _group_sum(v: np.ndarray, groups: np.ndarray) -> np.ndarray:
    out = np.zeros((groups.max() + 1, v.shape[1]))
    for j in range(v.shape[1]):
        out[:, j] = np.bincount(groups, weights=v[:, j], minlength=out.shape[0])
    return out


def _step(x: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Right-continuous step function through (x, y), 0 before the first x."""
    i = np.searchsorted(x, at, side="right")
    return np.where(i > 0, y[np.maximum(i - 1, 0)], 0.0)
