r"""Likelihood-ratio comparison of nested mixed models, as R's ``anova(m0, m1)`` for ``lmer``, ``glmer`` and
``glmmTMB`` fits.

For fits :math:`m_0 \subset m_1` of the same data, with maximised log-likelihoods :math:`\ell_0 \le \ell_1` and
:math:`k_0 < k_1` parameters,

.. math:: \chi^2 = 2\,\max(0, \ell_1 - \ell_0), \qquad \mathrm{df} = k_1 - k_0, \qquad
          p = \Pr(\chi^2_{\mathrm{df}} > \chi^2),

and, per model, :math:`\mathrm{AIC} = -2\ell + 2k`, :math:`\mathrm{BIC} = -2\ell + k\log n`. With more than two
models they are ordered by :math:`k` and each is tested against the one before (as R).

:class:`~verzuimmodel.mixed.lmm.LinearMixed` fits by REML are refitted by ML first (REML criteria of models
with different fixed effects are not comparable), with lme4's message "refitting model(s) with ML (instead of
REML)" as a :class:`RefitWarning`; ``refit=False`` compares REML criteria, allowed only when the fixed effects
are the same (a comparison of random-effects structures). For
:class:`~verzuimmodel.mixed.glmm.PoissonMixed`, :class:`~verzuimmodel.mixed.glmm.NegativeBinomialMixed` and
:class:`~verzuimmodel.mixed.binomial_mixed.BinomialMixed` the (Laplace or quadrature) log-likelihoods are
compared; a Poisson fit is nested in the negative binomial one (:math:`\theta \to \infty`).

A variance whose null value is on its boundary (0) makes the :math:`\chi^2` reference distribution conservative
(the p-value is about twice too large for one variance; Self & Liang 1987), as in R.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["LikelihoodRatioTest", "RefitWarning", "anova", "lr_test"]


class RefitWarning(UserWarning):
    """REML fits were refitted by maximum likelihood before a likelihood-ratio comparison (lme4's message)."""


@dataclass(frozen=True)
class LikelihoodRatioTest:
    """Result of :func:`lr_test`: ``statistic`` (:math:`\\chi^2`), ``df``, ``p_value``, the :func:`anova` table and
    whether REML fits were refitted by ML (``refitted``)."""

    statistic: float
    df: int
    p_value: float
    table: pd.DataFrame = field(repr=False)
    refitted: bool = False

    def tidy(self) -> pd.DataFrame:
        """One row: ``statistic, df, p_value``."""
        return pd.DataFrame([{"statistic": self.statistic, "df": self.df, "p_value": self.p_value}])


def _kind(m) -> str:
    from .binomial_mixed import BinomialMixed
    from .glmm import NegativeBinomialMixed, PoissonMixed
    from .lmm import LinearMixed
    for cls, kind in ((LinearMixed, "linear"), (PoissonMixed, "count"), (NegativeBinomialMixed, "count"),
                      (BinomialMixed, "binomial")):
        if isinstance(m, cls):
            if not hasattr(m, "params_"):
                raise RuntimeError(f"{type(m).__name__} is not fitted yet: call fit() first")
            return kind
    raise TypeError(f"anova compares fitted LinearMixed, PoissonMixed, NegativeBinomialMixed or BinomialMixed "
                    f"models, got {type(m).__name__}")


def _same_data(models, names) -> None:
    n = [m.n_obs_ for m in models]
    if len(set(n)) > 1:
        raise ValueError(f"the models were not fitted to the same data: {dict(zip(names, n))} observations")
    y0 = models[0]._mf.y
    for m, nm in zip(models[1:], names[1:]):
        if not np.array_equal(m._mf.y, y0):
            raise ValueError(f"the models were not fitted to the same data: the outcome of {nm!r} differs from "
                             f"that of {names[0]!r}")
    w0 = getattr(models[0]._mf, "weights", None)
    for m, nm in zip(models[1:], names[1:]):
        w = getattr(m._mf, "weights", None)
        if (w is None) != (w0 is None) or (w is not None and not np.array_equal(w, w0)):
            raise ValueError(f"the models were not fitted with the same weights ({nm!r} and {names[0]!r})")


def anova(*models, names: Sequence[str] | None = None, refit: bool = True) -> pd.DataFrame:
    """Likelihood-ratio table of nested mixed models (module docstring), as R's ``anova(m0, m1, ...)``.

    Parameters
    ----------
    *models : two or more fitted models of one kind: all :class:`~verzuimmodel.mixed.lmm.LinearMixed`, all
        count models (Poisson or negative binomial) or all :class:`~verzuimmodel.mixed.binomial_mixed.BinomialMixed`.
    names : a label per model (default ``"m1"``, ``"m2"``, ... in the order given).
    refit : refit REML fits of LinearMixed by ML first (default, as lme4).

    Returns
    -------
    DataFrame indexed by model (ordered by number of parameters) with ``npar, aic, bic, log_likelihood,
    deviance, statistic, df, p_value`` (R's ``npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq)``).

    Raises
    ------
    TypeError, ValueError
        Fewer than two models; models of different kinds or not fitted to the same data; REML fits with
        different fixed effects and ``refit=False``.
    """
    return _compare(models, names, refit)[0]


def _compare(models, names, refit) -> tuple[pd.DataFrame, bool]:
    if len(models) < 2:
        raise ValueError("anova needs at least two fitted models")
    names = [f"m{i + 1}" for i in range(len(models))] if names is None else [str(n) for n in names]
    if len(names) != len(models) or len(set(names)) != len(names):
        raise ValueError(f"names must give one distinct label per model, got {names!r}")
    kinds = {_kind(m) for m in models}
    if len(kinds) > 1:
        raise TypeError("anova compares models of one kind (linear, count or binomial mixed models), got "
                        + ", ".join(type(m).__name__ for m in models))
    _same_data(models, names)
    refitted = False
    if kinds == {"linear"}:
        reml = [m.reml for m in models]
        if any(reml) and refit:
            warnings.warn("refitting model(s) with ML (instead of REML)", RefitWarning, stacklevel=3)
            models = [m._refit_ml() for m in models]
            refitted = True
        elif any(reml):
            if not all(reml):
                raise ValueError("refit=False compares REML criteria: every model must then be a REML fit")
            fixed = {tuple(m.params_.index) for m in models}
            if len(fixed) > 1:
                raise ValueError("refit=False: the REML criteria of models with different fixed effects are not "
                                 "comparable; use refit=True (ML)")
    ll = np.array([m.log_likelihood_ for m in models], dtype=float)
    k = np.array([m.n_parameters_ for m in models], dtype=int)
    n = models[0].n_obs_
    order = np.argsort(k, kind="stable")
    ll, k = ll[order], k[order]
    chisq = np.r_[np.nan, 2.0 * np.maximum(0.0, np.diff(ll))]
    df = np.r_[np.nan, np.diff(k)].astype(float)
    with np.errstate(invalid="ignore"):
        p = np.where(df > 0, stats.chi2.sf(chisq, np.where(df > 0, df, 1)), np.nan)
    p[0] = np.nan
    table = pd.DataFrame({"npar": k, "aic": -2 * ll + 2 * k, "bic": -2 * ll + np.log(n) * k, "log_likelihood": ll,
                          "deviance": -2 * ll, "statistic": chisq, "df": df, "p_value": p},
                         index=pd.Index([names[i] for i in order], name="model"))
    return table, refitted


def lr_test(m0, m1, refit: bool = True) -> LikelihoodRatioTest:
    """Likelihood-ratio test of the nested fits ``m0`` (fewer parameters) and ``m1`` of the same data.

    As ``anova(m0, m1)`` in R (REML fits of LinearMixed refitted by ML unless ``refit=False``); see
    :func:`anova` for what is checked. Returns a :class:`LikelihoodRatioTest`.
    """
    table, refitted = _compare((m0, m1), ["m0", "m1"], refit)
    row = table.iloc[1]
    if not row["df"] > 0:
        raise ValueError(f"the models have the same number of parameters ({int(row['npar'])}): they are not nested")
    return LikelihoodRatioTest(statistic=float(row["statistic"]), df=int(row["df"]), p_value=float(row["p_value"]),
                               table=table, refitted=refitted)
