r"""The trial estimators registered for the cluster-trial generators of :mod:`.trials`.

Importing this module registers them with :mod:`verzuimmodel.effects.registry`; :mod:`.trials`
re-exports them, so importing :mod:`verzuimmodel.evaluate` registers them.

Trial estimators (``data="trial"``; each takes a :class:`~verzuimmodel.evaluate.trials.TrialData`
or its data frame, with columns ``cluster``, ``period``, ``treat``, ``y``):

========================  ==========  ========================  =========================================
name                      outcome     estimand                  method
========================  ==========  ========================  =========================================
``lmm``                   continuous  ``effect``                ``y ~ treat (+ period) + (1|cluster)``, REML,
                                                                Satterthwaite df (:mod:`verzuimmodel.mixed.lmm`)
``cluster_means``         continuous  ``effect``                t-test on cluster means (parallel; exact);
                                                                cluster-period means with cluster and period
                                                                fixed effects (stepped wedge; exact t)
``gee``                   continuous  ``effect``                GEE, Gaussian, exchangeable, Mancl-DeRouen SE,
                                                                t with K - 2 df
``gee_logit``             binary      ``marginal_odds_ratio``   GEE, logit link, exchangeable, as ``gee``
``gee_poisson``           count       ``rate_ratio``            GEE, Poisson log link, exchangeable, as ``gee``
========================  ==========  ========================  =========================================

Every trial estimator targets an intention-to-treat effect over all clusters (``"ATE"``,
``"ITT"``: the randomised assignment); ``lmm`` is conditional on the cluster effect, which for a
continuous outcome equals the marginal mean difference; the others are marginal.

On degenerate data (no contrast between clusters, too few clusters, an outcome that does not vary
or, for counts, is 0 throughout an arm) each trial estimator raises a one-line ``ValueError``
starting with its name before fitting anything; a fit without a finite estimate and a positive
standard error raises :class:`~verzuimmodel.errors.ConvergenceError`, and a separated ``gee_logit``
fit warns with :class:`~verzuimmodel.errors.ConvergenceWarning` (see each estimator's docstring).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from ..effects.registry import Estimate, register
from ..errors import ConvergenceError, ConvergenceWarning

__all__ = ["TRIAL_ESTIMATOR_OUTCOMES", "SEPARATION_LOG_OR", "cluster_means", "gee", "gee_logit", "gee_poisson",
           "lmm"]

TRIAL_ESTIMATOR_OUTCOMES: dict[str, tuple[str, ...]] = {
    "lmm": ("continuous",),
    "cluster_means": ("continuous",),
    "gee": ("continuous",),
    "gee_logit": ("binary",),
    "gee_poisson": ("count",),
}
"""The outcome types each trial estimator registered here can analyse (checked by ``Design``)."""


def _trial_frame(data) -> pd.DataFrame:
    df = getattr(data, "data", data)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a TrialData or a DataFrame, got {type(data).__name__}")
    missing = [c for c in ("cluster", "period", "treat", "y") if c not in df.columns]
    if missing:
        raise ValueError(f"trial data: missing column(s) {', '.join(missing)}; expected cluster, period, treat, y")
    return df


def _codes(values) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(np.asarray(values), sort=True)
    return codes.astype(np.int64), len(uniques)


def _design_matrix(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """Intercept, treat and period dummies (first period the reference); cluster codes; K."""
    treat = df["treat"].to_numpy(dtype=float)
    period, n_periods = _codes(df["period"])
    cols = [np.ones_like(treat), treat]
    cols += [(period == j).astype(float) for j in range(1, n_periods)]
    cluster, k = _codes(df["cluster"])
    return np.column_stack(cols), cluster, k


SEPARATION_LOG_OR = 10.0
"""A GEE log odds ratio beyond this (an odds ratio above 22,000) is taken as separation: the
estimate is where the iterations stopped, not a finite maximum (the sandwich SE stays small)."""


def _check_trial(name: str, df: pd.DataFrame, outcome: str, *, min_clusters: int,
                 per_arm: int = 1) -> tuple[int, bool]:
    """Refuse the degenerate trials estimator ``name`` cannot analyse, with a one-line ``ValueError``
    starting with ``name``: ``treat`` not 0/1 or not varying between clusters within any period,
    fewer than ``min_clusters`` clusters (or, when no cluster changes arm, fewer than ``per_arm``
    per arm), a missing or constant outcome, a binary outcome that is not 0/1, counts that are not
    counts or are all 0 in an arm, and a continuous outcome fitted exactly by treat and period.

    Returns the number of clusters and whether every cluster stays in one arm (a parallel layout).
    """
    if len(df) == 0:
        raise ValueError(f"{name}: the trial data have no rows")
    treat = df["treat"].to_numpy(dtype=float)
    if not np.isin(treat, (0, 1)).all():
        raise ValueError(f"{name}: column 'treat' must be 0/1 (assigned to the intervention or not)")
    if not treat.any() or treat.all():
        which = "every cluster" if treat[0] else "no cluster"
        raise ValueError(f"{name}: {which} is treated ('treat' is {treat[0]:g} in every row), so there is no "
                         "contrast to estimate")
    period, n_periods = _codes(df["period"])
    rows = np.bincount(period, minlength=n_periods)
    treated = np.bincount(period, weights=treat, minlength=n_periods)
    if not ((treated > 0) & (treated < rows)).any():
        raise ValueError(f"{name}: 'treat' does not vary between clusters within any period, so the effect cannot be "
                         "told apart from the period effects")
    cluster, k = _codes(df["cluster"])
    if k < min_clusters:
        raise ValueError(f"{name}: needs at least {min_clusters} clusters, got {k}")
    size = np.bincount(cluster, minlength=k)
    treated_rows = np.bincount(cluster, weights=treat, minlength=k)
    parallel = bool(((treated_rows == 0) | (treated_rows == size)).all())
    if parallel and per_arm > 1:
        k1 = int((treated_rows == size).sum())
        if min(k1, k - k1) < per_arm:
            raise ValueError(f"{name}: needs at least {per_arm} clusters per arm, got {k1} treated and "
                             f"{k - k1} control")
    y = df["y"].to_numpy(dtype=float)
    if not np.isfinite(y).all():
        raise ValueError(f"{name}: column 'y' has missing or non-finite values")
    if outcome == "binary" and not np.isin(y, (0, 1)).all():
        raise ValueError(f"{name}: column 'y' must be 0/1 (a binary outcome)")
    if outcome == "count" and ((y < 0) | (y != np.round(y))).any():
        raise ValueError(f"{name}: column 'y' must hold non-negative counts (a count outcome)")
    if (y == y[0]).all():
        need = {"binary": "; a binary outcome needs both 0 and 1", "count": "; counts need some above 0 in each arm"}
        raise ValueError(f"{name}: the outcome does not vary (every value of 'y' is {y[0]:g}){need.get(outcome, '')}")
    if outcome == "count":
        for arm, in_arm in (("treated", treat == 1), ("control", treat == 0)):
            if (y[in_arm] == 0).all():
                raise ValueError(f"{name}: every count in the {arm} arm is 0, so the log rate ratio is infinite "
                                 "(not identified); counts need some above 0 in each arm")
    if outcome == "continuous":
        x = _design_matrix(df)[0]
        if _no_residual_variance(y - x @ np.linalg.lstsq(x, y, rcond=None)[0], y):
            raise ValueError(f"{name}: the outcome is fitted exactly by treat and period, so there is no residual "
                             "variation to estimate a standard error from")
    return k, parallel


def _estimate(name: str, coef: float, se: float, **kwargs) -> Estimate:
    """The estimate, or a :class:`~verzuimmodel.errors.ConvergenceError` naming ``name`` when the
    fit gave no finite estimate with a positive standard error."""
    if not (math.isfinite(coef) and math.isfinite(se) and se > 0):
        raise ConvergenceError(f"{name}: the fit gave no finite estimate with a positive standard error "
                               f"(estimate {coef!r}, standard error {se!r})")
    return Estimate(coef, se, **kwargs)


def _no_residual_variance(resid: np.ndarray, values: np.ndarray) -> bool:
    """The residuals of ``values`` are zero up to rounding (relative to their spread)."""
    return float(resid @ resid) <= 1e-20 * float(np.sum((values - values.mean()) ** 2))


@register("cluster_means", estimand="effect", data="trial", scale="identity", population="ATE", scope="marginal",
          contrast="ITT", estimand_description="mean difference, clusters assigned to the intervention vs not")
def cluster_means(data) -> Estimate:
    """Cluster-level analysis: t-test on cluster means (one period) or, with several periods,
    OLS of cluster-period means on treat with cluster and period fixed effects.

    With equal cluster (-period) sizes and a normal outcome both tests are exact: the t reference
    distribution has ``K - 2`` (parallel) or ``KT - K - T`` (stepped wedge) degrees of freedom.
    The stepped-wedge version uses within-cluster comparisons only (the ``tau -> infinity``
    limit of Hussey & Hughes' GLS).

    Degenerate data raise a one-line ``ValueError`` starting with ``cluster_means:``: ``treat``
    not varying between clusters within any period (e.g. no cluster or every cluster treated),
    fewer than 2 clusters (one period: fewer than 2 per arm), a cluster without pupils in some
    period, ``treat`` varying within a cluster-period, an outcome that is missing, does not vary
    or is fitted exactly by treat and period, and cluster(-period) means without residual
    variation (a standard error of 0). With several periods, an effect not identified from the
    within-cluster comparisons (e.g. no cluster changes arm) raises as well.
    """
    name = "cluster_means"
    df = _trial_frame(data)
    cl_codes, k = _codes(df["cluster"])
    pe_codes, t = _codes(df["period"])
    _check_trial(name, df, "continuous", min_clusters=2, per_arm=2 if t == 1 else 1)
    cell = cl_codes * t + pe_codes
    count = np.bincount(cell, minlength=k * t)
    if (count == 0).any():
        raise ValueError(f"{name}: every cluster needs pupils in every period")
    cell_y = np.bincount(cell, weights=df["y"].to_numpy(float), minlength=k * t) / count
    treated = np.bincount(cell, weights=df["treat"].to_numpy(float), minlength=k * t)
    if ((treated != 0) & (treated != count)).any():
        raise ValueError(f"{name}: 'treat' varies within a cluster-period; a cluster trial assigns whole clusters")
    cell_x = (treated > 0).astype(float)
    cluster, period = np.repeat(np.arange(k), t), np.tile(np.arange(t), k)
    n_obs = len(df)
    if t == 1:
        y1, y0 = cell_y[cell_x == 1], cell_y[cell_x == 0]
        k1, k0 = len(y1), len(y0)
        dof = k1 + k0 - 2
        resid = np.concatenate([y1 - y1.mean(), y0 - y0.mean()])
        if _no_residual_variance(resid, cell_y):
            raise ValueError(f"{name}: the cluster means do not vary within the arms, so the standard error would be 0")
        s2 = resid @ resid / dof
        return _estimate(name, float(y1.mean() - y0.mean()), math.sqrt(s2 * (1 / k1 + 1 / k0)), df=float(dof),
                         n_obs=n_obs, n_clusters=k)
    x = np.column_stack([cell_x, *(cluster == c for c in range(k)), *(period == j for j in range(1, t))]).astype(float)
    coef, _, rank, _ = np.linalg.lstsq(x, cell_y, rcond=None)
    dof = len(cell_y) - rank
    if rank < x.shape[1] or dof < 1:
        raise ValueError(f"{name}: treatment effect not identified from the cluster-period means")
    resid = cell_y - x @ coef
    if _no_residual_variance(resid, cell_y):
        raise ValueError(f"{name}: the cluster-period means are fitted exactly by treat, cluster and period, so the "
                         "standard error would be 0")
    s2 = resid @ resid / dof
    xtx_inv = np.linalg.inv(x.T @ x)
    return _estimate(name, float(coef[0]), math.sqrt(s2 * xtx_inv[0, 0]), df=float(dof), n_obs=n_obs, n_clusters=k)


def _gee(data, name: str, outcome: str) -> Estimate:
    """GEE of ``y`` on treat (+ period dummies), exchangeable working correlation, Mancl-DeRouen SE."""
    import statsmodels.api as sm
    from statsmodels.genmod.cov_struct import Exchangeable
    from statsmodels.tools.sm_exceptions import ModelWarning

    df = _trial_frame(data)
    _check_trial(name, df, outcome, min_clusters=3, per_arm=2)
    x, cluster, k = _design_matrix(df)
    y = df["y"].to_numpy(float)
    family = {"continuous": sm.families.Gaussian, "binary": sm.families.Binomial, "count": sm.families.Poisson}
    order = np.argsort(cluster, kind="stable")
    model = sm.GEE(y[order], x[order], groups=cluster[order], family=family[outcome](), cov_struct=Exchangeable())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = model.fit(cov_type="bias_reduced")
        except (ArithmeticError, ValueError) as e:   # numpy's LinAlgError is a ValueError
            raise ConvergenceError(f"{name}: the GEE fit failed ({type(e).__name__}: {e})") from e
        coef, se = float(res.params[1]), float(res.bse[1])      # bse is computed (and may warn) here
    separated = False
    if outcome == "binary":
        treat = x[:, 1]
        arms = (("treated", treat == 1), ("control", treat == 0))
        why = [f"every outcome in the {arm} arm is {v}" for arm, in_arm in arms for v in (0, 1)
               if (y[in_arm] == v).all()]
        if not why and abs(coef) > SEPARATION_LOG_OR:
            why = [f"the log odds ratio is {coef:.3g}"]
        if why:
            separated = True
            warnings.warn(f"{name}: the log odds ratio may be infinite (separation): {why[0]}; the estimate "
                          f"({coef:.3g}, SE {se:.3g}) is where the iterations stopped and its interval is not valid",
                          ConvergenceWarning, stacklevel=3)
    relayed = set()     # statsmodels' and numpy's warnings, once each; a separated fit's are its symptoms
    for w in caught:
        if not issubclass(w.category, (ModelWarning, RuntimeWarning)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif not separated and str(w.message) not in relayed:
            relayed.add(str(w.message))
            warnings.warn(f"{name}: statsmodels GEE warned: {' '.join(str(w.message).split())}", ConvergenceWarning,
                          stacklevel=3)
    if not res.converged:
        raise ConvergenceError(f"{name}: the GEE iterations did not converge")
    return _estimate(name, coef, se, df=float(k - 2), n_obs=len(y), n_clusters=k)


@register("gee", estimand="effect", data="trial", scale="identity", population="ATE", scope="marginal", contrast="ITT",
          estimand_description="mean difference, clusters assigned to the intervention vs not")
def gee(data) -> Estimate:
    """GEE (statsmodels), Gaussian, exchangeable working correlation, ``y ~ treat (+ period)``;
    Mancl-DeRouen bias-reduced sandwich SE and a t reference with ``K - 2`` df.

    Degenerate data raise a one-line ``ValueError`` starting with ``gee:``: ``treat`` not varying
    between clusters within any period (e.g. no cluster or every cluster treated), fewer than 3
    clusters (when no cluster changes arm: fewer than 2 per arm, which the bias-reduced sandwich
    needs), and an outcome that is missing, does not vary or is fitted exactly by treat and period.
    A fit that fails, does not converge or gives no finite estimate with a positive SE raises
    :class:`~verzuimmodel.errors.ConvergenceError`; statsmodels' warnings are passed on as
    :class:`~verzuimmodel.errors.ConvergenceWarning` naming ``gee``.
    """
    return _gee(data, "gee", "continuous")


@register("gee_logit", estimand="marginal_odds_ratio", data="trial", scale="log", population="ATE", scope="marginal",
          contrast="ITT", estimand_description="population-averaged odds ratio, assigned vs not")
def gee_logit(data) -> Estimate:
    """GEE (statsmodels), logit link, exchangeable: the population-averaged odds ratio;
    Mancl-DeRouen SE and a t reference with ``K - 2`` df.

    Degenerate data raise a one-line ``ValueError`` starting with ``gee_logit:``: ``treat`` not
    varying between clusters within any period (e.g. no cluster or every cluster treated), fewer
    than 3 clusters (when no cluster changes arm: fewer than 2 per arm, which the bias-reduced
    sandwich needs), and an outcome that is missing, not 0/1, or all 0 or all 1.
    A fit that fails, does not converge or gives no finite estimate with a positive SE raises
    :class:`~verzuimmodel.errors.ConvergenceError`; statsmodels' warnings are passed on as
    :class:`~verzuimmodel.errors.ConvergenceWarning` naming ``gee_logit``.

    Separation (an arm whose outcomes are all 0 or all 1, or a log odds ratio beyond
    :data:`SEPARATION_LOG_OR`) returns the estimate where the iterations stopped (a log odds
    ratio near +-22, often with a small sandwich SE) with a
    :class:`~verzuimmodel.errors.ConvergenceWarning` ``"gee_logit: the log odds ratio may be
    infinite (separation): ..."`` (in place of statsmodels' warnings, which are its symptoms): its
    interval is not valid.
    """
    return _gee(data, "gee_logit", "binary")


@register("gee_poisson", estimand="rate_ratio", data="trial", scale="log", population="ATE", scope="marginal",
          contrast="ITT", estimand_description="rate ratio, assigned vs not (marginal = conditional: log link)")
def gee_poisson(data) -> Estimate:
    """GEE (statsmodels), Poisson log link, exchangeable: the rate ratio (robust to
    overdispersion); Mancl-DeRouen SE and a t reference with ``K - 2`` df.

    Degenerate data raise a one-line ``ValueError`` starting with ``gee_poisson:``: ``treat`` not
    varying between clusters within any period (e.g. no cluster or every cluster treated), fewer
    than 3 clusters (when no cluster changes arm: fewer than 2 per arm, which the bias-reduced
    sandwich needs), and an outcome that is missing, not non-negative counts, or all 0 in an arm
    (an infinite log rate ratio).
    A fit that fails, does not converge or gives no finite estimate with a positive SE raises
    :class:`~verzuimmodel.errors.ConvergenceError`; statsmodels' warnings are passed on as
    :class:`~verzuimmodel.errors.ConvergenceWarning` naming ``gee_poisson``.
    """
    return _gee(data, "gee_poisson", "count")


@register("lmm", estimand="effect", data="trial", scale="identity", population="ATE", scope="conditional",
          contrast="ITT", estimand_description="mean difference given the cluster effect (= marginal: "
                                               "identity link), assigned vs not")
def lmm(data) -> Estimate:
    """Linear mixed model ``y ~ treat (+ period dummies) + (1 | cluster)`` by REML
    (:class:`verzuimmodel.mixed.LinearMixed`), with Satterthwaite df when it reports them.

    Degenerate data raise a one-line ``ValueError`` starting with ``lmm:``: ``treat`` not varying
    between clusters within any period (e.g. no cluster or every cluster treated), fewer than 2
    clusters (fewer than 3 when no cluster changes arm: the effect is then compared with the
    variance between clusters, which needs a cluster more than the two arms), an outcome that is
    missing, does not vary or is fitted exactly by treat and period, and any other data
    :class:`~verzuimmodel.mixed.LinearMixed` refuses (its message follows ``lmm:``). A fit
    without a finite estimate and a positive SE raises :class:`~verzuimmodel.errors.ConvergenceError`.
    LinearMixed's own :class:`~verzuimmodel.errors.ConvergenceWarning` (e.g. a cluster variance
    estimated at 0) passes through.
    """
    from ..mixed.lmm import LinearMixed  # ImportError until the module exists: a configuration error
    from ..schema import SchemaError

    df = _trial_frame(data)
    k, parallel = _check_trial("lmm", df, "continuous", min_clusters=2)
    if parallel and k < 3:
        raise ValueError(f"lmm: needs at least 3 clusters when no cluster changes arm, got {k}")
    period, t = _codes(df["period"])
    frame = pd.DataFrame({"y": df["y"].to_numpy(float), "treat": df["treat"].to_numpy(float),
                          "cluster": df["cluster"].to_numpy()})
    terms = ["treat"]
    for j in range(1, t):
        frame[f"period_{j}"] = (period == j).astype(float)
        terms.append(f"period_{j}")
    try:
        fit = LinearMixed(reml=True).fit(frame, formula="y ~ " + " + ".join(terms), groups="cluster")
    except SchemaError as e:
        raise ValueError("lmm: " + " ".join(str(e).split())) from e
    coef, se = float(fit.params_["treat"]), float(fit.standard_errors_["treat"])
    dof = None
    ddf = getattr(fit, "df_", None)  # Satterthwaite df per term
    if ddf is not None and "treat" in ddf.index and np.isfinite(float(ddf["treat"])):
        dof = float(ddf["treat"])
    return _estimate("lmm", coef, se, df=dof, n_obs=len(frame), n_clusters=k)
