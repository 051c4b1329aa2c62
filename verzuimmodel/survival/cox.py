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

The log partial likelihood, score and information come from :class:`~verzuimmodel.survival.risk_sets.RiskSets`:
two compiled passes over the rows per Newton step (in any order: the risk-set sums are built per
event time, where each row's window of event times ends and begins; only with many distinct event
times, few ties, are the rows first sorted by event time, so that those sums are read and written
in order) and work per event time proportional to its deaths. The score residuals of the robust
variance are summed by cluster in one more pass, without forming them row by row.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from ..errors import ConvergenceError, ConvergenceWarning
from ..tidy import tidy_table
from ._data import SurvData, survival_data
from ._jit import jit
from .formula import dropped_note, model_design, with_n_dropped
from .risk_kernels import column_summary, counting_order, group_ranges, linear_predictor
from .risk_sets import RiskSets

__all__ = ["CoxPH", "RiskSets"]

_CACHED_BINS = 1 << 18      # event times x (1 + covariates) above this: rows sorted by event time first


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
        rs = RiskSets(d, d.X, self.options.ties)
        if rs.K == 0:
            raise ConvergenceError("no events in the data: a Cox model needs at least one event")
        cluster_codes = d.cluster
        if rs.K * (rs.p + 1) > _CACHED_BINS and np.any(rs.row_hi[1:] < rs.row_hi[:-1]):
            # many event times (few ties): the rows by the end of their window, so that the passes
            # over them read and write their event times' sums in order; nothing reported depends on it
            order = jit(counting_order)(rs.row_hi, rs.K + 1)
            rs, off = rs.take(order), off[order]
            cluster_codes = d.cluster[order] if d.cluster is not None else None
        null = rs.evaluate(off)                     # at beta = 0: the start, and the score test's ingredients
        beta, loglik, grad, info, state, n_iter, converged = _newton(rs, off, self.options, null)
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
        if use_robust:              # each row its own cluster without cluster=
            groups = (cluster_codes, len(d.cluster_labels)) if d.cluster is not None else (np.arange(d.n), d.n)
            U = rs.score_sums(state, *groups)
            rvar = var @ (U.T @ U) @ var
            self.variance_ = pd.DataFrame(rvar, index=names, columns=names)
        else:
            self.variance_ = self.naive_variance_
        v = np.diag(self.variance_.to_numpy())
        self.standard_errors_ = pd.Series(np.where(v > 0, np.sqrt(np.abs(v)), np.inf), index=names, name="se")
        self.robust_ = use_robust
        self.log_likelihood_ = loglik
        ll0, g0, i0, _ = null
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
    X = np.ascontiguousarray(d.X, dtype=float)
    if X.shape[1] == 0:
        return
    lo, hi, _, cov = jit(column_summary)(X)
    const = [c for c, a, b in zip(d.covariates, lo, hi) if a == b]
    if const:
        raise ValueError(f"covariate(s) {', '.join(map(repr, const))} do not vary: a Cox model has no intercept")
    if d.strata is not None:
        # a covariate constant within every stratum is absorbed by the strata's baselines (R: NA)
        lo, hi = jit(group_ranges)(X, np.ascontiguousarray(d.strata, dtype=np.int64), int(d.strata.max()) + 1)
        within = [c for c, varies in zip(d.covariates, (hi > lo).any(axis=0)) if not varies]
        if within:
            raise ValueError(f"covariate(s) {', '.join(map(repr, within))} do not vary within any stratum: their "
                             "effect is absorbed by the strata's baseline hazards and cannot be estimated (R reports "
                             "NA); leave them out or do not stratify by them")
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


def _newton(rs: RiskSets, offset: np.ndarray, opt: _Options, start: tuple):
    """Newton–Raphson with step halving from beta = 0, where ``start`` is ``rs.evaluate(offset)``."""
    X, p = rs.X, rs.p
    offset = np.ascontiguousarray(offset, dtype=float)
    beta = np.zeros(p)
    loglik, grad, info, state = start
    if not np.isfinite(loglik):
        raise ConvergenceError("a risk set is empty at the starting values: check the entry and exit times")
    converged = p == 0
    n_iter = 0
    lp = jit(linear_predictor)
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
            new_ll, new_grad, new_info, new_state = rs.evaluate(lp(X, new, offset)[0])
            halvings = 0
            while not np.isfinite(new_ll) or new_ll < loglik - 1e-12 * abs(loglik):
                halvings += 1
                if halvings > 30:
                    return beta, loglik, grad, info, state, n_iter, False
                new = (beta + new) / 2
                new_ll, new_grad, new_info, new_state = rs.evaluate(lp(X, new, offset)[0])
        change = abs(new_ll - loglik)
        beta, loglik, grad, info, state = new, new_ll, new_grad, new_info, new_state
        if change <= opt.tol * max(abs(loglik), 1.0):
            converged = True
            break
    return beta, loglik, grad, info, state, n_iter, converged


def _step(x: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Right-continuous step function through (x, y), 0 before the first x."""
    i = np.searchsorted(x, at, side="right")
    return np.where(i > 0, y[np.maximum(i - 1, 0)], 0.0)
