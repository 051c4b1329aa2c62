r"""Built-in estimators of the PO approach's effect on later VO absence (registered on import).

Each takes a :class:`~verzuimmodel.Cohort` (simulated or real) and returns an
:class:`~verzuimmodel.effects.Estimate` on the log scale (a rate ratio). Which design each suits:

============================  =======================================================  =====================
estimator                     model                                                    design it suits
============================  =======================================================  =====================
``vo_nb_glm``                 NB regression of each pupil's VO unexcused hours,        randomised (parallel,
                              offset log days, cohort and VO school effects,           stepped wedge),
                              covariates; CR3 SE clustered by PO school, t(G - 1)      staggered
``vo_nb_glmm``                NB mixed model of VO pupil-years: pupil, PO school and   randomised, staggered
                              VO school random intercepts, cohort and VO-year effects
``vo_nb_glmm_sick``           the same for VO sick reports                             randomised
``vo_did``                    Callaway–Sant'Anna group-time ATT, not-yet-treated       any, incl. adoption by
                              controls, school-cohort rates; school bootstrap SE       the schools' absence
``vo_ipw``                    inverse probability of adoption weighting (school-level  randomised; adoption
                              propensity from pre-period data), weighted Poisson;      on measured school
                              SE clustered by PO school                                characteristics
``vo_episode_rate``           Poisson model of VO long-term absence onsets per VO      randomised
                              year (a constant hazard per year: the survival model
                              of recurrent onsets); SE clustered by PO school
``po_recorded_naive``         recorded PO unexcused hours, approach active vs not      none: shows the bias
                                                                                       of better recording
============================  =======================================================  =====================

Measured (``python paper/build.py``: 150 two-region cohorts per design, 80 PO and 16 VO schools;
``paper/results/approach.csv``): under the designs they suit every estimator is unbiased within
three Monte Carlo SE and its 95% intervals cover 0.91-0.99 (``vo_nb_glmm`` 0.93-0.94, ``vo_nb_glm``
0.93-0.96, ``vo_did`` 0.91-0.99, ``vo_ipw`` 0.93-0.99, ``vo_nb_glmm_sick`` 0.92, ``vo_episode_rate``
0.93). ``vo_nb_glmm`` is the most precise (empirical SE 0.043 against 0.062 for ``vo_nb_glm`` and
0.14 for ``vo_did`` under parallel randomisation). Two modelling choices carry the coverage: the
pupil intercept (an NB mixed model of each pupil's VO total with PO and VO school intercepts only
had an empirical SE of 0.053 against a model-based 0.039 and covered 0.88 over 100 parallel
cohorts) and, for the regression, the VO school effects (PO-clustered SEs cannot see residuals
shared through VO schools). ``vo_did`` (bootstrap bias corrected) is within three Monte Carlo SE
of its ATT under every design. Under adoption by the schools' latent absence level ``vo_ipw`` keeps
a bias of 0.027 (Monte Carlo SE 0.006) and ``vo_nb_glm`` one of 0.14; ``vo_did`` is unbiased.

Where they fail (the worlds of ``paper/worlds.py``, ``paper/results/worlds.csv``): under the
``null`` world every estimator rejects 5-7% of 1,000 regions. Under ``heterogeneous`` effects with
adoption driven by disadvantage ``vo_did`` covers its ATT (0.947) while ``vo_ipw`` and
``vo_nb_glm`` keep small biases against the ATE (+0.020 and +0.008 on the log scale, 7 and 4
Monte Carlo SE). Under ``trend`` (absence rising faster at adopting schools) ``vo_did`` is biased
(mean rate ratio 0.96 against 0.85, coverage 0.86) and ``vo_nb_glm`` more so (1.01, coverage
0.44). In the 12-school pilot with adoption by absence ``vo_episode_rate`` is biased towards no
effect (0.93 against 0.80, coverage 0.82; it has no pre-period) and has 8% power.

Each estimator declares its estimand (:class:`~verzuimmodel.effects.Target`: truth key, ATE or
ATT, marginal or conditional, intention to treat) and is diagnosed against it. ``vo_ipw``
targets the marginal ATE ``truth["po_approach_vo_rate_ratio"]``: every PO school adopting in time
vs none. ``vo_nb_glm`` and ``vo_nb_glmm`` estimate a rate ratio conditional on covariates and
school (and pupil) effects and are compared with the same marginal key: the two are equal when
the effect is the same for every pupil (a log link with additive random intercepts is
collapsible), and differ when it is not (the ``heterogeneous`` world). ``vo_did`` targets the ATT,
``truth["po_approach_vo_rate_ratio_exposed"]``: the marginal rate ratio among the pupils of the
schools that adopted, which differs from the ATE when the effect is heterogeneous and adoption
follows who benefits. All are intention to treat: exposure is the adoption of the PO school
attended in group ``exposed_from_grade``, as implemented. ``vo_nb_glmm_sick`` targets
``truth["po_approach_vo_sick_rate_ratio"]``, ``vo_episode_rate``
``truth["po_approach_vo_episode_rate_ratio"]``; ``po_recorded_naive`` targets the true effect
on PO absence, ``truth["po_approach_po_true_rate_ratio"]``, and misses it because the approach also
improves registration.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from .. import glm
from ..cohort import Cohort
from ..errors import ConvergenceError
from ..glm.absorb import demean, factorize
from .data import COVARIATES, school_cohorts, vo_pupil_years, vo_pupils
from .registry import Estimate, register

__all__: list[str] = []


def _design(d: pd.DataFrame, covariates=COVARIATES, periods: tuple[str, ...] = ("cohort",)) -> pd.DataFrame:
    """``const`` + ``exposed`` + varying covariates + dummies of each period column (first level left
    out; named ``period_level``), as one float block."""
    cols = ["exposed"] + [c for c in covariates if d[c].nunique() > 1]
    parts, names = [np.ones((len(d), 1)), d[cols].to_numpy(dtype=float)], ["const"] + cols
    for period in periods:
        codes, levels = pd.factorize(d[period], sort=True)
        if len(levels) > 1:
            parts.append((codes[:, None] == np.arange(1, len(levels))[None, :]).astype(float))
            names += [f"{period}_{level}" for level in levels[1:]]
    return pd.DataFrame(np.hstack(parts), columns=names, index=d.index)


def _poisson_exposed(y: pd.Series, X: pd.DataFrame, exposure: pd.Series, clusters: pd.Series,
                     var_weights: np.ndarray | None = None, name: str = "Poisson regression",
                     absorb: pd.DataFrame | None = None) -> Estimate:
    """Poisson (quasi-likelihood) regression with offset log ``exposure`` and SE clustered by ``clusters``
    (CR1 with statsmodels' small-sample factor, t reference with clusters - 1 df): the coefficient of
    ``exposed``. The factors ``absorb`` (e.g. years) have fixed effects absorbed rather than
    dummy-coded (the same estimate and SE; see :mod:`verzuimmodel.glm`), ``X`` then has no constant.
    ``name`` (the estimator) is named in the ``ValueError`` of data the fit cannot use and in the
    :class:`~verzuimmodel.errors.ConvergenceError` raised when the fit gives no finite estimate or no
    positive standard error."""
    try:
        fit = glm.poisson(y.to_numpy(dtype=float), X, absorb=absorb, offset=np.log(exposure.to_numpy(dtype=float)),
                          weights=var_weights)
        se = float(np.sqrt(fit.vcov("CR1", clusters).loc["exposed", "exposed"]))
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    except ConvergenceError as e:
        raise ConvergenceError(f"{name}: {e}") from None
    n_clusters = int(pd.unique(np.asarray(clusters)[fit.kept]).size)
    return _finite(name, Estimate(float(fit.coef["exposed"]), se, df=float(n_clusters - 1), n_obs=fit.n_obs,
                                  n_clusters=n_clusters))


def _finite(name: str, est: Estimate) -> Estimate:
    """``est``, or :class:`~verzuimmodel.errors.ConvergenceError` naming estimator ``name`` when its
    coefficient is not finite or its standard error not finite and positive."""
    if not (np.isfinite(est.coef) and np.isfinite(est.std_error) and est.std_error > 0):
        raise ConvergenceError(f"{name}: the fit gave no usable estimate (log ratio {est.coef:.4g}, standard error "
                               f"{est.std_error:.4g}): the data do not identify the effect")
    return est


def _check_contrast(name: str, d: pd.DataFrame, outcome: str, cluster: str, rows: str,
                    exposed: str = "exposed", treated: str = "exposed") -> None:
    """``ValueError`` naming estimator ``name`` when ``d`` cannot give a rate ratio of ``exposed`` (0/1)
    for ``outcome``: no rows; no contrast (every row exposed, or none); fewer than 2 schools in
    ``cluster`` (exposure is compared between schools, with an SE clustered by school or a school
    intercept); every ``outcome`` 0, or 0 in one arm (a rate ratio of 0 or infinity). ``rows`` names
    what a row is, ``treated`` what exposure is."""
    if d.empty:
        raise ValueError(f"{name}: no {rows} to analyse")
    x = d[exposed].to_numpy(dtype=float)
    n1 = int((x == 1).sum())
    if n1 == 0 or n1 == len(d):
        raise ValueError(f"{name}: no contrast: {'none' if n1 == 0 else 'all'} of the {len(d):,} {rows} are "
                         f"{treated}")
    g = int(d[cluster].nunique())
    if g < 2:
        raise ValueError(f"{name}: the {len(d):,} {rows} come from {g} school ('{cluster}'): a comparison "
                         "between schools needs at least 2")
    y = d[outcome].to_numpy(dtype=float)
    if not (y > 0).any():
        raise ValueError(f"{name}: '{outcome}' is 0 for every one of the {len(d):,} {rows}: there is no rate to "
                         "compare")
    for arm, label, ratio in ((x == 1, treated, "0"), (x == 0, f"not {treated}", "infinite")):
        if not (y[arm] > 0).any():
            raise ValueError(f"{name}: '{outcome}' is 0 for every one of the {int(arm.sum()):,} {rows} {label}: "
                             f"the rate ratio would be {ratio}")


EXPOSED = "exposed (PO school had adopted the approach in time)"


def _check_identified(name: str, X: pd.DataFrame, others: str, absorb: pd.DataFrame | None = None) -> None:
    """``ValueError`` naming estimator ``name`` when the column ``exposed`` of the design ``X`` is a
    linear combination of its other columns and the fixed effects of the factors ``absorb`` (``others``
    says what they are): e.g. every PO school adopted in the same year, so that exposure is a matter of
    cohort alone. The factors are removed by demeaning (no dummies are formed)."""
    x = X["exposed"].to_numpy(dtype=float)
    Z = X.drop(columns="exposed").to_numpy(dtype=float)
    scale = max(float(np.sum((x - x.mean()) ** 2)), 1.0)
    if absorb is not None:
        factors = factorize(absorb, len(x), name)
        w = np.ones(len(x))
        x = demean(x, w, factors)
        Z = demean(Z, w, factors) if Z.shape[1] else Z
    rss = float(x @ x)
    if Z.shape[1]:      # the residual sum of squares of x on Z: by the normal equations, by the rows near 0
        b = Z.T @ x
        rss -= float(b @ np.linalg.lstsq(Z.T @ Z, b, rcond=None)[0])
        if rss <= 1e-6 * scale:
            rss = float(np.sum((x - Z @ np.linalg.lstsq(Z, x, rcond=None)[0]) ** 2))
    if rss <= 1e-9 * scale:
        raise ValueError(f"{name}: exposure is a combination of the {others} (e.g. every PO school adopted in the "
                         "same year, so that exposure follows the cohort): the design does not identify the effect")


@register("vo_nb_glm", estimand="po_approach_vo_rate_ratio", population="ATE", scope="conditional", contrast="ITT",
          estimand_description="rate ratio of VO unexcused hours given covariates, cohort and VO school, "
                               "PO school adopted in time vs not; equals the marginal ATE when the effect "
                               "is the same for every pupil")
def vo_nb_glm(cohort: Cohort, exposed_from_grade: int = 7) -> Estimate:
    r"""NB regression of VO unexcused hours on PO exposure, covariates, cohort and VO school; SE clustered
    by PO school with the Mancl–DeRouen small-sample correction and a t reference with :math:`G - 1` df.

    :math:`\log E[Y_i] = \log d_i + \alpha_{c(i)} + \nu_{t(i)} + x_i'\beta + \gamma A_i`, one row per VO
    pupil (hours and days summed over the VO years), :math:`\nu_t` VO school fixed effects,
    :math:`\operatorname{Var} Y_i = \mu_i + \kappa\mu_i^2`, :math:`\exp(\gamma)` the rate ratio.
    Pupils of one PO school go to several VO schools, so without :math:`\nu_t` the VO school effects
    would correlate the residuals of different PO schools, which a PO-clustered SE cannot see (it
    assumes the VO school a pupil goes to does not depend on the approach). :math:`\kappa` is the NB
    maximum likelihood estimate; the variance is the cluster sandwich with each PO school's residuals
    scaled by :math:`(I - H_{gg})^{-1}` (CR3; Mancl & DeRouen 2001), which corrects the sandwich's
    downward bias with few or unequal clusters (see :func:`nb_cluster_cr3`).

    The VO school effects are absorbed, not dummy-coded (:mod:`verzuimmodel.glm`; the cohort effects
    are dummies): the estimate, :math:`\kappa` and the CR3 variance are those of the model with VO
    school dummies (``statsmodels`` ``NegativeBinomial`` and GEE ``bias_reduced``, to 1e-8;
    ``tests/test_fixed_effects.py``), in memory that grows with the pupils, not pupils x schools. A
    VO school with one pupil is left out (its effect fits that pupil exactly; it adds nothing to
    :math:`\gamma`), as is one whose pupils all have 0 hours (its effect is :math:`-\infty`). On the
    national cohort (1,347,765 VO pupils, 1,454 VO schools, 6,582 PO schools) it took 3.2-5.2 s over
    three runs, building its rows included, with a peak of 3.4 GiB, the cohort's 3.1-3.5 GiB
    included (``benchmarks/bench_fixest.py --repeat 3``; pyfixest's ``fepois`` of the Poisson
    analogue: 3.7-4.1 s for the fit alone); with the VO schools dummy-coded it ran out of 24 GB.

    Degenerate data raise ``ValueError`` naming the estimator (see :func:`_check_contrast`): no
    exposed or no unexposed pupil, pupils of one PO school, every pupil's hours 0 (or all those of
    one arm), exposure a combination of cohort and VO school effects (every PO school adopting in
    the same year; see :func:`_check_identified`); a fit without a finite estimate and positive SE
    raises :class:`~verzuimmodel.errors.ConvergenceError`. With one VO school there are no VO school
    effects.
    """
    d = vo_pupils(cohort, exposed_from_grade)
    _check_contrast("vo_nb_glm", d, "unexcused_hours", "po_school_id", "VO pupils", treated=EXPOSED)
    X = _design(d)
    absorb = None
    if d["vo_school_id"].nunique() > 1:
        X, absorb = X.drop(columns="const"), d[["vo_school_id"]]
    _check_identified("vo_nb_glm", X, "covariates, cohort and VO school effects", absorb)
    try:
        params, se, _, fit = _nb_cr3(d["unexcused_hours"].to_numpy(dtype=float), X, np.log(d["days"].to_numpy()),
                                     d["po_school_id"].to_numpy(), absorb)
    except ValueError as e:
        raise ValueError(f"vo_nb_glm: {e}") from None
    except ConvergenceError as e:
        raise ConvergenceError(f"vo_nb_glm: {e}") from None
    n_clusters = int(pd.unique(d["po_school_id"].to_numpy()[fit.kept]).size)
    return _finite("vo_nb_glm", Estimate(float(params["exposed"]), float(se["exposed"]), df=float(n_clusters - 1),
                                         n_obs=fit.n_obs, n_clusters=n_clusters))


def nb_cluster_cr3(y: np.ndarray, X: pd.DataFrame, offset: np.ndarray, clusters,
                   absorb: pd.DataFrame | None = None) -> tuple[pd.Series, pd.Series, float]:
    r"""NB2 regression by maximum likelihood with the CR3 (Mancl–DeRouen) cluster-robust SE.

    Returns ``(coefficients, standard errors, kappa)`` with :math:`\operatorname{Var} Y = \mu + \kappa\mu^2`;
    the same as R ``MASS::glm.nb`` with ``clubSandwich::vcovCR(fit, cluster, type = "CR3")``
    (``tests/reference/robust/``). The factors ``absorb`` (at most one) have their fixed effects
    absorbed (``X`` then without a constant): the same as with them dummy-coded
    (:func:`verzuimmodel.glm.negbin`, :func:`verzuimmodel.glm.vcov`).
    """
    params, se, kappa, _ = _nb_cr3(np.asarray(y, dtype=float), X, np.asarray(offset, dtype=float), clusters, absorb)
    return params, se, kappa


def _nb_cr3(y, X, offset, clusters, absorb):
    fit = glm.negbin(y, X, absorb=absorb, offset=offset)
    V = fit.vcov("CR3", clusters)
    return fit.coef, pd.Series(np.sqrt(np.diag(V)), index=V.index), fit.kappa, fit


@register("vo_nb_glmm", estimand="po_approach_vo_rate_ratio", population="ATE", scope="conditional", contrast="ITT",
          estimand_description="rate ratio of VO unexcused hours given the pupil, PO and VO school intercepts, "
                               "PO school adopted in time vs not; equals the marginal ATE when the effect "
                               "is the same for every pupil")
def vo_nb_glmm(cohort: Cohort, exposed_from_grade: int = 7, outcome: str = "unexcused_hours") -> Estimate:
    r"""NB mixed model of VO pupil-years with random intercepts for pupil, PO school and VO school.

    For pupil :math:`i` in VO year :math:`j` (grade :math:`g`), cohort :math:`c`, PO school
    :math:`s` and VO school :math:`t`:

    .. math:: \log E[Y_{ij} \mid u] = \log d_{ij} + \alpha_{c} + \delta_{g} + x_i'\beta + \gamma A_i
              + u_i + u^{PO}_{s} + u^{VO}_{t}, \qquad Y_{ij} \mid u \sim \mathrm{NB2},

    with :math:`u_i, u^{PO}_s, u^{VO}_t` independent normal intercepts (the pupil's lasting absence
    propensity, nested in the crossed schools). :math:`\exp(\gamma)` is the rate ratio conditional on
    pupil and schools, equal to the marginal one when the effect is the same for every pupil. The
    pupil intercept is what makes the model-based SE valid: a pupil-level NB model of VO totals fits
    the dispersion to the bulk of pupils, misses the long tail of persistent absentees and
    underestimates the SE by a third (see the module docstring). ``outcome``: ``unexcused_hours`` or
    ``sick_reports`` (registered as ``vo_nb_glmm_sick``).

    Degenerate data raise ``ValueError`` naming the estimator (see :func:`_check_contrast`): no
    exposed or no unexposed pupil-year, pupils of one PO school, every count 0 (or all those of one
    arm), exposure a combination of cohort and VO-year effects (every PO school adopting in the
    same year); a fit without a finite estimate and positive SE (e.g. a Hessian that is not positive
    definite, after the model's :class:`~verzuimmodel.errors.ConvergenceWarning`) raises
    :class:`~verzuimmodel.errors.ConvergenceError`. With one VO school the model has no VO school
    intercept (as ``vo_nb_glm`` then has no VO school effects).
    """
    from ..mixed.glmm import NegativeBinomialMixed

    estimator = "vo_nb_glmm_sick" if outcome == "sick_reports" else "vo_nb_glmm"
    d = vo_pupil_years(cohort, exposed_from_grade)
    _check_contrast(estimator, d, outcome, "po_school_id", "VO pupil-years", treated=EXPOSED)
    X = _design(d, periods=("cohort", "grade"))
    _check_identified(estimator, X, "covariates, cohort and VO-year effects")
    X = X.drop(columns="const")
    d = pd.concat([d[[outcome, "days", "pupil_id", "po_school_id", "vo_school_id"]], X], axis=1)
    d["log_days"] = np.log(d["days"])
    formula = f"{outcome} ~ " + " + ".join(f"Q('{c}')" for c in X.columns)
    groups = ["pupil_id", "po_school_id"] + (["vo_school_id"] if d["vo_school_id"].nunique() > 1 else [])
    m = NegativeBinomialMixed().fit(d, formula=formula, groups=groups, offset="log_days")
    name = next(i for i in m.params_.index if "exposed" in i)
    return _finite(estimator, Estimate(float(m.params_[name]), float(m.standard_errors_[name]), n_obs=len(d),
                                       n_clusters=int(d["po_school_id"].nunique())))


@register("vo_nb_glmm_sick", estimand="po_approach_vo_sick_rate_ratio", population="ATE", scope="conditional",
          contrast="ITT", estimand_description="rate ratio of VO sick reports given the pupil, PO and VO "
                                               "school intercepts, PO school adopted in time vs not")
def vo_nb_glmm_sick(cohort: Cohort, exposed_from_grade: int = 7) -> Estimate:
    """NB mixed model of VO sick reports (ziekmeldingen) per pupil-year, as ``vo_nb_glmm``.

    Sickness absence is counted in reports, not days: days come in spells of several days, a
    clumping a count model of days does not describe (its SE is then too small). The rate ratio of
    reports is that of sick days when the approach does not change how long a spell lasts.
    """
    return vo_nb_glmm(cohort, exposed_from_grade, outcome="sick_reports")


@register("vo_did", estimand="po_approach_vo_rate_ratio_exposed", population="ATT", scope="marginal", contrast="ITT",
          estimand_description="rate ratio of VO unexcused hours among the pupils of PO schools that adopted "
                               "in time, the approach as implemented vs none")
def vo_did(cohort: Cohort, exposed_from_grade: int = 7, n_boot: int = 199, seed: int = 0,
           bias_correct: bool = True) -> Estimate:
    r"""Staggered difference-in-differences (Callaway & Sant'Anna 2021) on PO school x cohort rates.

    Units are PO schools, time :math:`t` the school year a cohort is in group 7, groups :math:`g`
    the adoption year. For each :math:`g` and :math:`t \ge g`:
    :math:`ATT(g,t) = \bar\Delta_{g} - \bar\Delta_{C_t}` with :math:`\Delta_s = Y_{s,t} - Y_{s,g-1}`
    (the rate of VO unexcused hours per school day) and controls :math:`C_t` the schools not yet
    treated at :math:`t`. The ATTs are averaged with weights by group size and turned into a rate
    ratio :math:`\bar Y^1 / (\bar Y^1 - ATT)` over the treated cells. SE: bootstrap over PO schools
    (``n_boot`` Poisson-weight replicates with a fixed ``seed``).

    The log of that ratio is biased upwards by about half the variance of the log of the estimated
    counterfactual :math:`\hat Y^0 = \bar Y^1 - ATT` (Jensen: :math:`E[-\log\hat Y^0] > -\log Y^0`;
    about 0.02 for one region of 40 PO schools, where the empirical SE is 0.19, and it vanishes as
    :math:`1/G`). This is the positive bias of +0.014 to +0.053 seen across designs before it was
    removed: the estimate is bootstrap bias corrected, :math:`2\hat\theta - \bar\theta^*`
    (``bias_correct=False`` gives the plain estimate). It targets the ATT, the effect among the
    pupils of adopting schools (``truth["po_approach_vo_rate_ratio_exposed"]``); it holds under
    any adoption that leaves the untreated schools' trend a valid counterfactual, including
    adoption driven by the schools' (stable) absence level, and fails when adopters' absence
    trends differ from the others' (the ``trend`` world).

    Degenerate data raise ``ValueError`` naming the estimator: no exposed or no unexposed pupil,
    pupils of one PO school, every pupil's hours 0 (or all those of one arm; see
    :func:`_check_contrast`), no adoption cohort with a pre-period and not-yet-treated controls. A
    rate ratio that is not finite (a counterfactual rate :math:`\bar Y^1 - ATT \le 0`) or fewer
    than two finite bootstrap replicates raise :class:`~verzuimmodel.errors.ConvergenceError`.
    """
    d = vo_pupils(cohort, exposed_from_grade)
    _check_contrast("vo_did", d, "unexcused_hours", "po_school_id", "VO pupils", treated=EXPOSED)
    cells = school_cohorts(d)
    log_rr, boot = did_rate_ratio(cells, n_boot=n_boot, seed=seed)
    if not np.isfinite(log_rr):
        raise ConvergenceError("vo_did: the rate ratio is not finite: the counterfactual rate of the treated "
                               "cells (their rate minus the ATT) is not positive")
    boot = boot[np.isfinite(boot)]
    if len(boot) < 2:
        raise ConvergenceError(f"vo_did: {len(boot)} of {n_boot} school-bootstrap replicates give a finite rate "
                               "ratio: no standard error")
    if bias_correct:
        log_rr = 2 * log_rr - float(np.mean(boot))
    return _finite("vo_did", Estimate(log_rr, float(np.std(boot, ddof=1)), n_obs=int(cells["n"].sum()),
                                      n_clusters=int(cells["po_school_id"].nunique())))


def did_rate_ratio(cells: pd.DataFrame, n_boot: int = 199, seed: int = 0) -> tuple[float, np.ndarray]:
    """Log rate ratio from group-time ATTs on ``cells`` (``po_school_id, t, rate, adopt_year``; see
    ``vo_did``) and its ``n_boot`` school-bootstrap replicates (NaN where a replicate drops a group)."""
    R = cells.pivot(index="po_school_id", columns="t", values="rate")
    adopt = cells.groupby("po_school_id")["adopt_year"].first().reindex(R.index).fillna(np.inf).to_numpy()
    times = R.columns.to_numpy()
    Y = R.to_numpy()
    rng = np.random.default_rng(seed)
    W = np.vstack([np.ones(len(R)), rng.poisson(1.0, (n_boot, len(R)))]).astype(float)   # row 0: the estimate
    att_sum, y1_sum, weight = np.zeros(len(W)), np.zeros(len(W)), np.zeros(len(W))
    with np.errstate(invalid="ignore", divide="ignore"):
        for g in np.unique(adopt[np.isfinite(adopt)]):
            if g - 1 not in times:
                continue
            base = Y[:, np.searchsorted(times, g - 1)]
            treated = adopt == g
            for t in times[times >= g]:
                y = Y[:, np.searchsorted(times, t)]
                ok = np.isfinite(y) & np.isfinite(base)
                tr, co = ok & treated, ok & (adopt > t)
                if not tr.any() or not co.any():
                    continue
                diff = np.where(ok, y - base, 0.0)
                wt, wc = W[:, tr].sum(1), W[:, co].sum(1)
                att = W[:, tr] @ diff[tr] / wt - W[:, co] @ diff[co] / wc
                y1 = W[:, tr] @ y[tr] / wt
                valid = (wt > 0) & (wc > 0)
                att_sum += np.where(valid, wt * att, np.nan)
                y1_sum += np.where(valid, wt * y1, np.nan)
                weight += wt
        if weight[0] == 0:
            raise ValueError("vo_did: no adoption cohort has a pre-period and not-yet-treated controls")
        att, y1 = att_sum / weight, y1_sum / weight
        log_rr = np.log(y1 / (y1 - att))
    return float(log_rr[0]), log_rr[1:]


@register("vo_ipw", estimand="po_approach_vo_rate_ratio", population="ATE", scope="marginal", contrast="ITT",
          estimand_description="rate ratio of VO unexcused hours of all pupils, every PO school adopting in "
                               "time vs none")
def vo_ipw(cohort: Cohort, exposed_from_grade: int = 7) -> Estimate:
    r"""Inverse probability of adoption weighting with a school-level propensity model (scikit-learn).

    Cohorts from the first adoption year on. The propensity :math:`e_s` of a PO school adopting is
    a logistic regression on pre-period school data (log rates of recorded PO sick days and
    unexcused hours before the first adoption year, log rate of VO unexcused hours of earlier
    cohorts, share disadvantaged, log size, SBO); exposed pupils get weight :math:`1/e_s`, others
    :math:`1/(1-e_s)` (the average effect over all pupils). Weighted Poisson regression of VO
    unexcused hours with offset log days; SE clustered by PO school, t reference with :math:`G - 1`
    df (the propensity model's estimation is not propagated: slightly conservative).

    It removes confounding by what the pre-period data measure. When schools adopt because of their
    (latent) absence level, the pre-period rates measure it with error (recording differs between
    schools; a school has few pupils per cohort), and part of the bias remains: use ``vo_did``.

    Degenerate data raise ``ValueError`` naming the estimator: no exposed or no unexposed pupil (from
    the first adoption year on), pupils of one PO school, every pupil's hours 0 (or all those of one
    arm; see :func:`_check_contrast`), or no PO school that never adopted (no propensity model). A
    fit without a finite estimate and positive SE raises :class:`~verzuimmodel.errors.ConvergenceError`.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    d = vo_pupils(cohort, exposed_from_grade)
    _check_contrast("vo_ipw", d, "unexcused_hours", "po_school_id", "VO pupils", treated=EXPOSED)
    first = d.loc[d["exposed"] == 1, "t"].min()
    feats = _school_features(cohort, d, int(first))
    post = d[d["t"] >= first].copy()
    _check_contrast("vo_ipw", post, "unexcused_hours", "po_school_id", f"VO pupils in group 7 from {int(first)} on",
                    treated=EXPOSED)
    feats = feats.reindex(post["po_school_id"].unique())
    adopted = np.isfinite(post.groupby("po_school_id")["adopt_year"].first().reindex(feats.index).to_numpy())
    if adopted.all():
        raise ValueError(f"vo_ipw: every one of the {len(adopted)} PO schools adopted the approach (some later): "
                         "the propensity of adoption needs PO schools that did not")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1e4, max_iter=1000))
    model.fit(feats.to_numpy(), adopted)
    e = pd.Series(np.clip(model.predict_proba(feats.to_numpy())[:, 1], 0.01, 0.99), index=feats.index)
    es = e.reindex(post["po_school_id"]).to_numpy()
    w = np.where(post["exposed"] == 1, 1 / es, 1 / (1 - es))
    X = sm.add_constant(post[["exposed"]].astype(float))
    return _poisson_exposed(post["unexcused_hours"], X, post["days"], post["po_school_id"], var_weights=w,
                            name="vo_ipw")


def _school_features(cohort: Cohort, d: pd.DataFrame, first: int) -> pd.DataFrame:
    """Pre-period features per PO school (before the first adoption year): log rates of recorded PO
    sick days and unexcused hours, log rate of VO unexcused hours of earlier cohorts, share
    disadvantaged, log size, SBO."""
    a = cohort.absence
    po = a[(a["level"] == "po") & (a["school_year"] < first)].groupby("school_id")
    days = po["enrolled_days"].sum()
    pre = d[d["t"] < first].groupby("po_school_id")
    schools = cohort.schools.set_index("school_id")
    po_ids = schools.index[schools["level"] == "po"]
    pupils = cohort.pupils.groupby("po_school_id")

    def log_rate(num, den):
        return np.log((num.reindex(po_ids) + 0.5) / den.reindex(po_ids))

    f = pd.DataFrame({
        "po_sick": log_rate(po["sick_days"].sum(), days),
        "po_unexcused": log_rate(po["unexcused_hours"].sum(), days),
        "vo_unexcused": log_rate(pre["unexcused_hours"].sum(), pre["days"].sum()),
        "disadvantaged": pupils["disadvantaged"].mean().reindex(po_ids),
        "log_size": np.log(pupils.size().reindex(po_ids).astype(float)),
        "sbo": (schools.loc[po_ids, "school_type"].astype(str) == "sbo").astype(float),
    })
    return f.fillna(f.mean()).fillna(0.0)


@register("po_recorded_naive", estimand="po_approach_po_true_rate_ratio", population="ATE", scope="conditional",
          contrast="ITT", estimand_description="rate ratio of true PO unexcused hours, approach running vs "
                                               "not (the estimator sees recorded hours and misses it)")
def po_recorded_naive(cohort: Cohort) -> Estimate:
    """Recorded PO unexcused hours per day with vs without the approach running (Poisson, school-year
    effects, SE clustered by school). Biased: the approach also makes schools record more absence.

    The school-year effects are absorbed (:mod:`verzuimmodel.glm`): the estimate and SE of the model
    with year dummies, in memory that grows with the pupil-years alone (national cohort, 8,523,484 PO
    pupil-years: 4.7-10.5 s over three runs, peak 3.8 GiB with the cohort; pyfixest's ``fepois``
    12.0-14.1 s for the fit; ``benchmarks/bench_fixest.py --repeat 3``).

    Degenerate data raise ``ValueError`` naming the estimator: no PO pupil-year with the approach
    running or none without it, one PO school, every recorded hour 0 (or all those of one arm; see
    :func:`_check_contrast`), exposure a combination of the school-year effects (every school
    starting in the same year); a fit without a finite estimate and positive SE raises
    :class:`~verzuimmodel.errors.ConvergenceError`."""
    po = _po_pupil_years(cohort)
    _check_contrast("po_recorded_naive", po, "unexcused_hours", "school_id", "PO pupil-years",
                    treated="in a school running the approach")
    X = po[["exposed"]].astype(float)
    absorb = None
    if po["school_year"].nunique() > 1:
        absorb = po[["school_year"]]
    else:
        X.insert(0, "const", 1.0)
    _check_identified("po_recorded_naive", X, "school-year effects", absorb)
    return _poisson_exposed(po["unexcused_hours"], X, po["days"], po["school_id"], name="po_recorded_naive",
                            absorb=absorb)


def _po_pupil_years(cohort: Cohort) -> pd.DataFrame:
    """PO pupil-years with school days outside long-term episodes: ``school_id, school_year,
    unexcused_hours, days, exposed`` (the school runs the approach that year)."""
    a = cohort.absence
    rows = np.flatnonzero((a["level"] == "po").to_numpy())
    days = (a["enrolled_days"].to_numpy()[rows] - a["long_absence_days"].to_numpy()[rows]).clip(min=0)
    rows = rows[days > 0]
    school = a["school_id"].to_numpy()[rows]
    year = a["school_year"].to_numpy()[rows]
    start = cohort.schools.set_index("school_id")["approach_start_year"]
    at = start.index.get_indexer(school)                 # -1: a school not in the schools table (never adopted)
    s = np.where(at >= 0, start.to_numpy(dtype=float, na_value=np.inf)[at], np.inf)
    return pd.DataFrame({"school_id": school, "school_year": year,
                         "unexcused_hours": a["unexcused_hours"].to_numpy()[rows], "days": days[days > 0],
                         "exposed": (s <= year).astype(int)})


@register("vo_episode_rate", estimand="po_approach_vo_episode_rate_ratio", population="ATE", scope="conditional",
          contrast="ITT", estimand_description="rate ratio of VO long-term absence onsets given covariates "
                                               "and cohort, PO school adopted in time vs not")
def vo_episode_rate(cohort: Cohort, exposed_from_grade: int = 7) -> Estimate:
    """Poisson regression of VO long-term absence onsets per VO year on exposure, covariates and
    cohort; SE clustered by PO school (targets the onset rate ratio).

    Degenerate data raise ``ValueError`` naming the estimator: no exposed or no unexposed pupil,
    pupils of one PO school, no VO onset at all (no episodes) or none in one arm (see
    :func:`_check_contrast`), exposure a combination of cohort effects (every PO school adopting in
    the same year); a fit without a finite estimate and positive SE raises
    :class:`~verzuimmodel.errors.ConvergenceError`."""
    d = vo_pupils(cohort, exposed_from_grade)
    _check_contrast("vo_episode_rate", d, "vo_episodes", "po_school_id", "VO pupils", treated=EXPOSED)
    X = _design(d, periods=())
    absorb = None
    if d["cohort"].nunique() > 1:
        X, absorb = X.drop(columns="const"), d[["cohort"]]
    _check_identified("vo_episode_rate", X, "covariates and cohort effects", absorb)
    return _poisson_exposed(d["vo_episodes"], X, d["vo_years"], d["po_school_id"], name="vo_episode_rate",
                            absorb=absorb)
