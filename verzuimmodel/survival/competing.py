r"""Fine & Gray (1999) proportional subdistribution hazards model for competing outcomes.

A long-term absence episode ends in one of several ways (event codes ``1..K``: back to the own
school, another school or day programme, work, specialist care, exemption) or is still running
(``0``, censored). For the outcome of interest (``cause``) the *cumulative incidence* is
:math:`F_1(t \mid x) = P(T \le t, \epsilon = 1 \mid x)` and its *subdistribution hazard*

.. math:: \lambda_1(t \mid x) = -\frac{d}{dt} \log\{1 - F_1(t \mid x)\}
          = \lambda_{1,0}(t) \exp(x'\beta),

so :math:`\exp(\beta_j)` is a subdistribution hazard ratio and
:math:`F_1(t \mid x) = 1 - \exp\{-\Lambda_{1,0}(t)\, e^{x'\beta}\}`.

Estimation (as ``cmprsk::crr``)
-------------------------------
With :math:`G` the Kaplan–Meier estimate of the censoring distribution (censoring as the event;
an event tied with a censoring time counts as still at risk for it), subject :math:`j` enters the
risk set at a cause-1 failure time :math:`u` with weight

.. math:: \omega_j(u) = \begin{cases} 1 & T_j \ge u, \\
          G(u-)/G(T_j-) & T_j < u \text{ and } j \text{ had a competing event}, \\
          0 & \text{otherwise (censored or a cause-1 failure before } u), \end{cases}

(inverse probability of censoring weights, IPCW: those who had a competing event stay in the
subdistribution risk set, weighted by the chance they would still have been uncensored).
:math:`G(t-)` is evaluated as ``crr`` does, at :math:`t(1 - 100\varepsilon)`. With case weights
:math:`w_j`, :math:`S_r(u) = \sum_j w_j\, \omega_j(u)\, e^{x_j'\beta} x_j^{\otimes r}`,
:math:`E = S_1/S_0`, and :math:`d_m` the (weighted) number of cause-1 failures at the distinct
failure time :math:`u_m`, :math:`\beta` maximises the weighted partial log-likelihood (Breslow ties)

.. math:: \ell(\beta) = \sum_{i:\epsilon_i = 1} w_i x_i'\beta - \sum_m d_m \log S_0(u_m)

by Newton–Raphson with step halving from :math:`\beta = 0`; the information is
:math:`I = \sum_m d_m \{S_2/S_0 - E E'\}(u_m)`.

Variance
--------
``naive_var_`` is :math:`I^{-1}` (treats the weights as known). ``variance_`` is the sandwich of
Fine & Gray (1999) as computed by ``crr`` (``fit$var``): :math:`I^{-1} \Sigma I^{-1}` with
:math:`\Sigma = \sum_i w_i (\eta_i + \psi_i)^{\otimes 2}`, where

.. math:: \eta_i = \int \{x_i - E(s)\}\, dM_i^1(s), \qquad
          dM_i^1(s) = dN_i^1(s) - \omega_i(s) e^{x_i'\beta} d\hat\Lambda_{1,0}(s),

is the score contribution and

.. math:: \psi_i = \int \frac{q(s)}{\pi(s)}\, dM_i^c(s), \qquad
          q(s) = \sum_m \frac{d_m}{S_0(u_m)} \sum_{j:\, T_j < s,\ \epsilon_j > 1,\, s \le u_m}
          w_j \omega_j(u_m) e^{x_j'\beta}\{x_j - E(u_m)\},

(:math:`\pi(s)` the weighted number at risk, :math:`M^c` the censoring martingale) accounts for the
estimation of :math:`G`. With ``cluster``, :math:`\Sigma = \sum_g (\sum_{i \in g} w_i(\eta_i +
\psi_i))^{\otimes 2}` (cluster sums of the same influence terms, following the marginal model for
clustered competing-risks data of Zhou et al., 2012; checked for invariances, not against R's ``crrSC``);
without it, case weights act as frequency weights (a row with weight 3 gives the same fit and
variance as three copies of it, exactly as ``crr`` on replicated rows). For sampling or
inverse-probability weights give ``cluster`` (e.g. the pupil or school) for a robust variance.

Baseline and prediction (as ``cmprsk::predict.crr``)
----------------------------------------------------
:math:`d\hat\Lambda_{1,0}(u_m) = d_m / S_0(u_m)` at :math:`\hat\beta` (``fit$bfitj``) and
:math:`\hat F_1(t \mid x) = 1 - \exp\{-e^{x'\hat\beta} \sum_{u_m \le t} d\hat\Lambda_{1,0}(u_m)\}`.

Time-varying covariates and late entry
--------------------------------------
``crr``-style fitting needs one row per episode: after a competing event a subject stays in the
risk set with its covariates *at the competing event*, and the IPCW weights need the whole
follow-up. Start–stop (counting-process) rows are therefore not valid input, and
:meth:`FineGray.fit` refuses ``entry`` with a ``ValueError``. Two valid routes:

- the *cause-specific* Cox model (:class:`~verzuimmodel.survival.cox.CoxPH` with ``entry`` and the
  cause as event, other outcomes censored) — the right model for the effect of an in-episode
  intervention that starts part-way through an episode (time-varying, avoiding immortal time);
- :func:`finegray_expand`, the weighted counting-process representation of Geskus (2011) as R's
  ``survival::finegray()``: it handles late entry and start–stop rows with time-varying covariates
  and gives rows to fit with a weighted Cox model (``weights="fgwt"``, ``entry="fgstart"``,
  ``duration="fgstop"``, ``event="fgstatus"``, ``cluster=<subject id>``). Its robust variance does not
  include the term for the estimated weights (as in R).

``crr``'s ``cov2``/``tf`` (covariates multiplied by fixed functions of time) and censoring groups
(``cengroup``) are not provided; time-by-covariate interactions can be fitted on the expanded data
after splitting it at the event times.

The computation is vectorised: the rows are sorted once by time, and every risk-set sum at all
failure times is a suffix sum (still in follow-up) plus a weighted prefix sum (competing events
before); the sandwich terms are cumulative sums over failure and censoring times. A Newton step
costs :math:`O(n p^2)`.

References
----------
Fine JP, Gray RJ (1999). A proportional hazards model for the subdistribution of a competing
risk. JASA 94:496–509. Geskus RB (2011). Cause-specific cumulative incidence estimation and the
Fine and Gray model under both left truncation and right censoring. Biometrics 67:39–49.
Zhou B, Fine J, Latouche A, Labopin M (2012). Competing risks regression for clustered data.
Biostatistics 13:371–383.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from ..errors import ConvergenceError, ConvergenceWarning
from ..schema import SchemaError
from ..tidy import tidy_table
from ._data import _numeric, survival_data
from .cause_specific import CauseSpecificCox
from .finegray_weights import finegray_expand
from .formula import dropped_note, model_design, with_n_dropped

__all__ = ["CauseSpecificCox", "FineGray", "finegray_expand"]

_EPS = np.finfo(float).eps


# ---------------------------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Options:
    cause: int
    ties: Literal["breslow"]
    level: float
    tol: float
    max_iter: int


_OPTION_RULES = {
    "cause": ("a cause code 1, 2, ... (an integer > 0)",
              lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1),
    "ties": ("'breslow' (the only tie handling of cmprsk::crr)", lambda v: v == "breslow"),
    "level": ("a number between 0 and 1", lambda v: isinstance(v, (int, float)) and 0 < v < 1),
    "tol": ("a positive number", lambda v: isinstance(v, (int, float)) and v > 0),
    "max_iter": ("a positive integer", lambda v: isinstance(v, (int, np.integer)) and v >= 1),
}


# ---------------------------------------------------------------------------------------------
# the subdistribution risk sets
# ---------------------------------------------------------------------------------------------
class _SubdistributionRisk:
    """Coefficient-free structure of the data for one cause: rows sorted by time, IPCW weights.

    Row arrays are in sorted order (``order`` maps back). ``fstart[m]`` is the first sorted row
    at the ``m``-th distinct failure time ``utimes[m]``; ``gminus`` the censoring survival just
    before each row's time, as ``crr``.
    """

    def __init__(self, time: np.ndarray, status: np.ndarray, w: np.ndarray, cause: int):
        order = np.argsort(time, kind="stable")
        self.order = order
        t, ev, w = time[order], status[order], w[order]
        self.t, self.w = t, w
        self.fail = ev == cause
        self.comp = (ev != 0) & (ev != cause)
        self.cens = ev == 0
        n = len(t)
        # Kaplan-Meier of the censoring distribution at every distinct time (crr: survfit(Surv(ftime,
        # cenind)); at a tie, events are still at risk of being censored)
        ut, inv = np.unique(t, return_inverse=True)
        first = np.searchsorted(t, ut, side="left")
        wsuf = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]])
        at_risk = wsuf[first]
        dcens = np.bincount(inv, weights=w * self.cens, minlength=len(ut))
        G = np.cumprod(1.0 - dcens / at_risk)
        # crr: approx(..., xout = ftime * (1 - 100 eps), method = "constant", f = 0, rule = 2)
        k = np.searchsorted(ut, t * (1 - 100 * _EPS), side="right") - 1
        self.gminus = np.where(k >= 0, G[np.maximum(k, 0)], 1.0)
        self.censor_times, self.censor_survival = ut[dcens > 0], G[dcens > 0]
        # distinct failure times of the cause
        self.utimes, finv = np.unique(t[self.fail], return_inverse=True)
        self.M = len(self.utimes)
        self.fstart = np.searchsorted(t, self.utimes, side="left")
        self.d = np.bincount(finv, weights=w[self.fail], minlength=self.M)
        self.fail_rows = np.flatnonzero(self.fail)
        self.fail_group = finv
        self.g_fail = self.gminus[self.fstart]
        # each row: number of failure times <= its time
        self.k_le = np.searchsorted(self.utimes, t, side="right")
        # censoring times (distinct, with censoring): weighted at risk and count
        cmask = dcens > 0
        self.cstart = first[cmask]
        self.c_atrisk = at_risk[cmask]
        self.c_d = dcens[cmask]
        self.c_k_ge = np.searchsorted(self.utimes, ut[cmask], side="left")   # failure times >= c start here
        self.row_c_le = np.searchsorted(ut[cmask], t, side="right")            # censoring times <= t_i
        self.row_c_idx = self.row_c_le - 1
        self.n = n

    def sums(self, V: np.ndarray):
        """Risk-set sums of ``V`` (rows already multiplied by w e^{x'b}) at every failure time.

        Returns ``(S, prefix)``: ``S[m] = sum_j omega_j(u_m) V_j``; ``prefix[k]`` the sum over the
        first ``k`` sorted rows of competing-event rows ``V_j / G(T_j-)``.
        """
        suf = np.zeros((self.n + 1, V.shape[1]))
        suf[:-1] = np.cumsum(V[::-1], axis=0)[::-1]
        pre = np.zeros((self.n + 1, V.shape[1]))
        pre[1:] = np.cumsum(V * (self.comp / self.gminus)[:, None], axis=0)
        S = suf[self.fstart] + self.g_fail[:, None] * pre[self.fstart]
        return S, pre

    def evaluate(self, X: np.ndarray, beta: np.ndarray, *, hessian: bool = True):
        """Log partial likelihood, score and information at ``beta`` (X in sorted order)."""
        p = X.shape[1]
        eta = X @ beta
        shift = float(eta.max()) if len(eta) else 0.0
        e = np.exp(eta - shift)
        we = self.w * e
        iu = np.triu_indices(p)
        cols = [we[:, None], we[:, None] * X]
        if hessian:
            cols.append(we[:, None] * (X[:, iu[0]] * X[:, iu[1]]))
        S, pre = self.sums(np.concatenate(cols, axis=1))
        S0 = S[:, 0]
        if np.any(S0 <= 0) or not np.all(np.isfinite(S)):
            return -np.inf, None, None, None
        E = S[:, 1:1 + p] / S0[:, None]
        wf = self.w[self.fail_rows]
        loglik = float(wf @ eta[self.fail_rows] - self.d @ (np.log(S0) + shift))
        grad = wf @ X[self.fail_rows] - self.d @ E
        info = None
        if hessian:
            info = np.zeros((p, p))
            info[iu] = (self.d / S0) @ S[:, 1 + p:]
            info = info + np.triu(info, 1).T
            info -= (E * self.d[:, None]).T @ E
        state = {"e": e, "shift": shift, "S0": S0, "E": E, "pre": pre}
        return loglik, grad, info, state

    def influence(self, X: np.ndarray, state: dict) -> np.ndarray:
        """Per-row influence ``eta_i + psi_i`` of crr's sandwich (unweighted, sorted order)."""
        p = X.shape[1]
        e, S0, E, pre = state["e"], state["S0"], state["E"], state["pre"]
        a = self.d / S0                          # d Lambda (times e^shift; e carries e^-shift)
        b = a[:, None] * E
        cumA = np.concatenate([[0.0], np.cumsum(a)])
        cumB = np.vstack([np.zeros((1, p)), np.cumsum(b, axis=0)])
        ga, gb = a * self.g_fail, b * self.g_fail[:, None]
        tailGA = np.concatenate([np.cumsum(ga[::-1])[::-1], [0.0]])
        tailGB = np.vstack([np.cumsum(gb[::-1], axis=0)[::-1], np.zeros((1, p))])
        k = self.k_le
        # score part: dN part minus the compensator while in the (subdistribution) risk set
        eta_i = -e[:, None] * (X * cumA[k][:, None] - cumB[k])
        cw = (self.comp * e / self.gminus)[:, None]
        eta_i -= cw * (X * tailGA[k][:, None] - tailGB[k])
        fr = self.fail_rows
        eta_i[fr] += X[fr] - E[self.fail_group]
        # censoring part: q(c) at each censoring time, through the censoring martingale
        A0 = pre[self.cstart, 0]
        A1 = pre[self.cstart, 1:1 + p]
        R0, R1 = tailGA[self.c_k_ge], tailGB[self.c_k_ge]
        q = A1 * R0[:, None] - A0[:, None] * R1
        cum = np.vstack([np.zeros((1, p)), np.cumsum(-(self.c_d / self.c_atrisk**2)[:, None] * q, axis=0)])
        psi = cum[self.row_c_le]
        cr = np.flatnonzero(self.cens)
        ci = self.row_c_idx[cr]
        psi[cr] += q[ci] / self.c_atrisk[ci][:, None]
        return eta_i + psi

    def baseline(self, state: dict) -> np.ndarray:
        """Jumps of the baseline cumulative subdistribution hazard (x = 0) at the failure times."""
        return self.d / state["S0"] * np.exp(-state["shift"])


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------
class FineGray:
    r"""Fine–Gray proportional subdistribution hazards model (see the module docstring).

    Reproduces ``cmprsk::crr(ftime, fstatus, cov1, failcode = cause, cencode = 0)``: coefficients,
    log-likelihood, the sandwich variance ``fit$var`` (``variance_``), the inverse information
    ``fit$invinf`` (``naive_var_``), the baseline jumps ``fit$bfitj`` and ``predict.crr``.

    Parameters
    ----------
    cause : event code of the outcome of interest (``1..K``; ``0`` is censored, any other
        positive code a competing outcome).
    ties : ``"breslow"`` (as ``crr``).
    level : confidence level of the intervals in :meth:`tidy`.
    tol : convergence when the Newton step is below ``tol`` standard errors for every coefficient
        (or the log-likelihood no longer changes).
    max_iter : maximum Newton iterations.

    Attributes (after ``fit``)
    --------------------------
    params_, standard_errors_ : Series (log subdistribution hazard ratios; sandwich SEs).
    variance_, naive_var_ : DataFrame (sandwich; inverse information; ``naive_variance_`` is an alias).
    log_likelihood_, log_likelihood_null_ : log partial likelihood at the estimate and at 0.
    aic_, bic_ : ``-2 loglik + 2 p`` and ``-2 loglik + p log(d)``, ``d`` the number of events of the cause
        (unweighted): ``crr`` has none; these are R's ``AIC``/``BIC`` of ``coxph`` (``nobs.coxph``: events),
        as for the model fitted on ``finegray()`` data.
    converged_, n_iter_, n_obs_, n_events_, n_competing_, n_censored_ : fit summary.
    baseline_cumulative_subdistribution_hazard_ : DataFrame ``time, hazard, cumulative_hazard``.
    censoring_survival_ : DataFrame ``time, survival`` (Kaplan–Meier of censoring, at censoring times).

    Examples
    --------
    >>> fg = FineGray(cause=1).fit(episodes, duration="weeks", event="outcome",
    ...                            covariates=["age", "sbo"])                     # doctest: +SKIP
    >>> fg.tidy()                  # exp_estimate: subdistribution hazard ratios  # doctest: +SKIP
    >>> fg.predict_cumulative_incidence(profiles, times=[13, 26])                 # doctest: +SKIP
    """

    def __init__(self, cause: int = 1, ties: Literal["breslow"] = "breslow", level: float = 0.95,
                 tol: float = 1e-9, max_iter: int = 50):
        values = {"cause": cause, "ties": ties, "level": level, "tol": tol, "max_iter": max_iter}
        for name, (expected, ok) in _OPTION_RULES.items():
            if not ok(values[name]):
                raise ValueError(f"FineGray: {name}={values[name]!r}; expected {expected}")
        self.options = _Options(int(cause), ties, float(level), float(tol), int(max_iter))

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame, duration: str, event: str, covariates: Sequence[str] | None = None,
            weights: str | None = None, cluster: str | None = None, entry: str | None = None, *,
            formula: str | None = None, na_action: str = "raise") -> "FineGray":
        """Fit the model to one row per episode; returns ``self``.

        Parameters
        ----------
        df : one row per episode (subject).
        duration : column with the time to the outcome or censoring (``>= 0``).
        event : column with ``0`` (censored) or the outcome code ``1..K``.
        covariates : numeric columns (fixed at the start of the episode); or
        formula : ``"age + C(sex) + cluster(school)"`` (:mod:`~verzuimmodel.survival.formula`).
        na_action : ``"raise"`` (default) or ``"drop"`` (rows with missing values; ``n_dropped_``).
        weights : optional case weights (> 0). Frequency weights without ``cluster``; with
            ``cluster`` the variance is cluster-robust (use for sampling or IPW weights).
        cluster : optional column of clusters (e.g. school) for the cluster-robust sandwich.
        entry : not supported — raises ``ValueError`` (see the module docstring): use
            :func:`finegray_expand` with a weighted Cox model, or a cause-specific Cox model.
        """
        if entry is not None:
            raise ValueError(
                "FineGray.fit does not accept entry= (start-stop rows or late entry): the Fine-Gray "
                "subdistribution risk set keeps subjects after a competing event with inverse-probability-of-"
                "censoring weights, which needs one row per episode with its whole follow-up, so counting-process "
                "input is not valid here. For time-varying in-episode interventions use the cause-specific Cox "
                "model (CoxPH with entry=, event = 1 for this cause and 0 otherwise); for a Fine-Gray model with "
                "time-varying covariates or late entry expand the data with "
                "verzuimmodel.survival.competing.finegray_expand(df, ..., entry=, id=) and fit "
                "CoxPH(ties='breslow') with entry='fgstart', duration='fgstop', event='fgstatus', weights='fgwt' "
                "and cluster=<subject id>.")
        des = model_design(df, "FineGray", formula=formula, covariates=covariates, na_action=na_action,
                           specials={"cluster": cluster}, columns=(duration, event, weights))
        df, covariates, cluster = des.data, des.covariates, des.specials["cluster"]
        with des.original_rows():
            d = survival_data(df, duration=duration, event=event, covariates=covariates, weights=weights,
                              cluster=cluster, kind="causes")
        cause = self.options.cause
        if not np.any(d.event == cause):
            raise SchemaError("data", event, f"no episodes end in cause {cause}",
                              expected=f"at least one row with {event} == {cause}; codes present: "
                              + ", ".join(map(str, np.unique(d.event))))
        _check_design(d.X, d.covariates, d.weights)
        risk = _SubdistributionRisk(d.exit, d.event, d.weights, cause)
        X = d.X[risk.order]
        names = d.covariates
        beta, loglik, info, state, n_iter, converged = self._newton(risk, X)
        p = len(beta)
        try:
            naive = np.linalg.inv(info) if p else np.zeros((0, 0))
        except np.linalg.LinAlgError:
            raise ConvergenceError("FineGray: the information matrix is singular at the estimate; covariates "
                                   + ", ".join(names) + " may be collinear among the subjects at risk") from None
        self._warn(converged, beta, naive, names)
        if p:
            infl = risk.influence(X, state)
            wi = infl * risk.w[:, None]
            if d.cluster is not None:
                g = d.cluster[risk.order]
                U = np.stack([np.bincount(g, weights=wi[:, j], minlength=len(d.cluster_labels)) for j in range(p)],
                             axis=1)
                meat = U.T @ U
            else:
                meat = infl.T @ wi
            var = naive @ meat @ naive
        else:
            var = np.zeros((0, 0))
        self.params_ = pd.Series(beta, index=names, name="coef", dtype=float)
        self.variance_ = pd.DataFrame(var, index=names, columns=names)
        self.naive_var_ = pd.DataFrame(naive, index=names, columns=names)
        v = np.diag(var)
        self.standard_errors_ = pd.Series(np.where(v > 0, np.sqrt(np.abs(v)), np.inf), index=names, name="se",
                                          dtype=float)
        self.log_likelihood_ = loglik
        self.log_likelihood_null_ = risk.evaluate(X, np.zeros(p), hessian=False)[0]
        self.converged_, self.n_iter_ = converged, n_iter
        self.n_obs_ = d.n
        self.n_events_ = int(risk.fail.sum())
        self.aic_ = -2 * loglik + 2 * p
        self.bic_ = -2 * loglik + np.log(self.n_events_) * p
        self.n_competing_ = int(risk.comp.sum())
        self.n_censored_ = int(risk.cens.sum())
        self.n_clusters_ = len(d.cluster_labels) if d.cluster is not None else None
        self.covariates_ = names
        self.n_dropped_, self.design_ = des.n_dropped, des.spec
        inc = risk.baseline(state)
        self.baseline_cumulative_subdistribution_hazard_ = pd.DataFrame(
            {"time": risk.utimes, "hazard": inc, "cumulative_hazard": np.cumsum(inc)})
        self.censoring_survival_ = pd.DataFrame({"time": risk.censor_times, "survival": risk.censor_survival})
        return self

    def _newton(self, risk: _SubdistributionRisk, X: np.ndarray):
        opt = self.options
        p = X.shape[1]
        beta = np.zeros(p)
        loglik, grad, info, state = risk.evaluate(X, beta)
        if not np.isfinite(loglik):
            raise ConvergenceError("FineGray: an empty risk set at the starting values")
        if p == 0:
            return beta, loglik, info, state, 0, True
        n_iter = 0
        for n_iter in range(1, opt.max_iter + 1):
            try:
                step = np.linalg.solve(info, grad)
            except np.linalg.LinAlgError:
                return beta, loglik, info, state, n_iter, False
            with np.errstate(invalid="ignore"):
                se_units = np.abs(step) * np.sqrt(np.clip(np.diag(info), 0, None))
            if np.all(se_units <= opt.tol):
                return beta, loglik, info, state, n_iter, True
            new = beta + step
            new_ll, new_grad, new_info, new_state = risk.evaluate(X, new)
            halvings = 0
            # Armijo condition with step halving, as crr
            while not np.isfinite(new_ll) or new_ll < loglik + 1e-4 * (step @ grad) - 1e-12 * abs(loglik):
                halvings += 1
                if halvings > 30:
                    return beta, loglik, info, state, n_iter, False
                step = step / 2
                new = beta + step
                new_ll, new_grad, new_info, new_state = risk.evaluate(X, new)
            change = new_ll - loglik
            beta, loglik, grad, info, state = new, new_ll, new_grad, new_info, new_state
            if change <= 1e-15 * max(abs(loglik), 1.0) and halvings == 0:
                return beta, loglik, info, state, n_iter, True      # flat: the log-likelihood no longer moves
        return beta, loglik, info, state, n_iter, False

    def _warn(self, converged: bool, beta: np.ndarray, naive: np.ndarray, names: list[str]) -> None:
        v = np.diag(naive) if len(beta) else np.zeros(0)
        big = [n for n, b, s in zip(names, beta, v) if not s > 0 or (abs(b) > 10 and s > 100 * b * b)
               or abs(b) > 30]
        if not converged:
            large = big or [n for n, b in zip(names, beta) if abs(b) > 5] or names
            warnings.warn(f"FineGray(cause={self.options.cause}) did not converge in {self.options.max_iter} Newton "
                          f"iterations; check the covariate(s) {', '.join(map(repr, large))} (separation: the "
                          "events of this cause occur only at one extreme of a covariate). The estimates are not "
                          "reliable.", ConvergenceWarning, stacklevel=3)
        elif big:
            warnings.warn(f"FineGray(cause={self.options.cause}): the coefficient(s) of "
                          f"{', '.join(map(repr, big))} may be infinite (separation: the events of this cause occur "
                          "only at one extreme of the covariate); estimates and standard errors are not reliable",
                          ConvergenceWarning, stacklevel=3)

    # -- results ------------------------------------------------------------------------------
    @property
    def naive_variance_(self) -> pd.DataFrame:
        """Alias of ``naive_var_`` (the name :class:`~verzuimmodel.survival.cox.CoxPH` uses)."""
        return self.naive_var_

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise RuntimeError("FineGray: call fit() first")

    def tidy(self) -> pd.DataFrame:
        """Coefficients (log subdistribution hazard ratios) with sandwich SEs; ``exp_*`` are SHRs."""
        self._check_fitted()
        return with_n_dropped(tidy_table(self.params_, self.standard_errors_, level=self.options.level), self)

    def predict_cumulative_incidence(self, df: pd.DataFrame, times: Sequence[float] | None = None) -> pd.DataFrame:
        """Cumulative incidence of the cause, ``1 - exp(-Lambda_0(t) exp(x'beta))`` (as ``predict.crr``).

        Returns a DataFrame with a row per time (default: the distinct failure times of the cause)
        and a column per row of ``df`` (which must hold the covariates). Before the first failure
        time the incidence is 0; after the last it stays at its last value.
        """
        self._check_fitted()
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
        bh = self.baseline_cumulative_subdistribution_hazard_
        t0 = bh["time"].to_numpy()
        times = t0 if times is None else np.atleast_1d(np.asarray(times, dtype=float))
        if np.any(~np.isfinite(times)):
            raise ValueError("times must be finite numbers")
        df = self.design_.new_frame(df)
        X = np.column_stack([_numeric(df, c, "newdata", "covariate") for c in self.covariates_]) \
            if self.covariates_ else np.zeros((len(df), 0))
        lp = X @ self.params_.to_numpy()
        i = np.searchsorted(t0, times, side="right")
        H0 = np.where(i > 0, bh["cumulative_hazard"].to_numpy()[np.maximum(i - 1, 0)], 0.0)
        cif = -np.expm1(-H0[:, None] * np.exp(lp)[None, :])
        return pd.DataFrame(cif, index=pd.Index(times, name="time"), columns=df.index)

    def __repr__(self) -> str:
        head = f"FineGray(cause={self.options.cause}, ties={self.options.ties!r})"
        if not hasattr(self, "params_"):
            return head
        return (f"{head}: n={self.n_obs_:,}, events={self.n_events_:,}, competing={self.n_competing_:,}, "
                f"censored={self.n_censored_:,}, loglik={self.log_likelihood_:.4f}, AIC={self.aic_:.2f}, "
                f"BIC={self.bic_:.2f}{dropped_note(self)}\n"
                f"{self.tidy().to_string(index=False)}")


def _check_design(X: np.ndarray, names: list[str], w: np.ndarray) -> None:
    """Covariates must vary and not be collinear (there is no intercept)."""
    if X.shape[1] == 0:
        return
    Xc = X - np.average(X, axis=0, weights=w)
    const = [c for c, s in zip(names, np.abs(Xc).max(axis=0)) if s == 0]
    if const:
        raise ValueError(f"FineGray: covariate(s) {', '.join(map(repr, const))} do not vary (the model has no "
                         "intercept)")
    sub = Xc / np.sqrt((Xc**2).mean(axis=0))
    rank = np.linalg.matrix_rank(sub[:: max(1, len(sub) // 200_000)])
    if rank < X.shape[1]:
        raise ValueError(f"FineGray: covariates {', '.join(map(repr, names))} are collinear "
                         f"(rank {rank} < {X.shape[1]})")
