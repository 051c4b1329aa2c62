r"""Performance measures of an estimator over simulation replicates, each with its Monte Carlo SE.

Formulas from Morris, White & Crowther (2019), "Using simulation studies to evaluate statistical
methods", *Statistics in Medicine* 38:2074-2102, Table 6. With :math:`n` successful replicates,
estimates :math:`\hat\theta_i`, model standard errors :math:`\widehat{SE}_i`, true values
:math:`\theta_i` and :math:`\bar{\hat\theta} = n^{-1}\sum_i\hat\theta_i` (estimate; Monte Carlo SE):

- bias: :math:`n^{-1}\sum(\hat\theta_i-\theta_i)`;
  :math:`\sqrt{\frac{1}{n(n-1)}\sum(d_i-\bar d)^2}` with :math:`d_i=\hat\theta_i-\theta_i`
- empirical SE: :math:`\widehat{EmpSE} = \sqrt{\frac{1}{n-1}\sum(\hat\theta_i-\bar{\hat\theta})^2}`;
  :math:`\widehat{EmpSE}/\sqrt{2(n-1)}`
- MSE: :math:`n^{-1}\sum(\hat\theta_i-\theta_i)^2`;
  :math:`\sqrt{\sum\{(\hat\theta_i-\theta_i)^2-\widehat{MSE}\}^2/\{n(n-1)\}}`
- average model SE: :math:`\widehat{ModSE} = \sqrt{n^{-1}\sum\widehat{SE}_i^2}`;
  :math:`\sqrt{\widehat{Var}(\widehat{SE}^2_i)/(4n\,\widehat{ModSE}^2)}`
- relative error in the model SE, in percent: :math:`100(\widehat{ModSE}/\widehat{EmpSE}-1)`;
  :math:`100\frac{\widehat{ModSE}}{\widehat{EmpSE}}\sqrt{\frac{\widehat{Var}(\widehat{SE}^2_i)}{4n\widehat{ModSE}^4}
  +\frac{1}{2(n-1)}}`
- coverage: :math:`n^{-1}\sum 1(\hat\theta_{low,i}\le\theta_i\le\hat\theta_{upp,i})`;
  :math:`\sqrt{\widehat{Cover}(1-\widehat{Cover})/n}`
- bias-eliminated coverage: as coverage, with :math:`\theta_i + \widehat{bias}` for :math:`\theta_i`
  (:math:`\bar{\hat\theta}` when the truth is fixed)
- power: :math:`n^{-1}\sum 1(p_i\le\alpha)`; :math:`\sqrt{\widehat{Power}(1-\widehat{Power})/n}`

:math:`\widehat{Var}(\widehat{SE}^2_i) = \frac{1}{n-1}\sum(\widehat{SE}^2_i - \widehat{ModSE}^2)^2`.
When the true value is the same in every replicate the bias MCSE is Morris et al.'s
:math:`\sqrt{\frac{1}{n(n-1)}\sum(\hat\theta_i-\bar{\hat\theta})^2}`; when it varies it uses the
spread of the errors :math:`d_i`. RMSE :math:`=\sqrt{MSE}` with MCSE
:math:`MCSE(MSE)/(2\,RMSE)` (delta method).

Type S error (Gelman & Carlin 2014): among replicates that reject :math:`H_0`, the share whose
estimate has the wrong sign, :math:`\hat s = \#\{p_i\le\alpha, \mathrm{sign}\,\hat\theta_i \ne
\mathrm{sign}\,\theta_i\}/\#\{p_i\le\alpha\}` with MCSE :math:`\sqrt{\hat s(1-\hat s)/n_{rej}}`;
missing when nothing rejects or the true value is 0.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MEASURES", "performance", "bias", "empirical_se", "mse", "model_se", "relative_error_model_se",
           "coverage", "power", "type_s", "pooled_power"]

MEASURES = ["true_value", "mean_estimate", "bias", "bias_mcse", "emp_se", "emp_se_mcse", "model_se",
            "model_se_mcse", "rel_error_model_se", "rel_error_model_se_mcse", "mse", "mse_mcse", "rmse",
            "rmse_mcse", "coverage", "coverage_mcse", "be_coverage", "be_coverage_mcse", "power", "power_mcse",
            "type_s", "type_s_mcse"]
"""The measures :func:`performance` returns, in order."""

NAN = float("nan")


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=float).ravel()


def _proportion(hits) -> tuple[float, float]:
    h = np.asarray(hits, dtype=bool)
    n = h.size
    if n == 0:
        return NAN, NAN
    p = float(h.mean())
    return p, math.sqrt(p * (1 - p) / n)


def bias(estimate, true_value) -> tuple[float, float]:
    """Bias and its MCSE."""
    d = _arr(estimate) - np.broadcast_to(_arr(true_value), _arr(estimate).shape)
    n = d.size
    if n < 2:
        return (float(d.mean()) if n else NAN), NAN
    return float(d.mean()), float(np.sqrt(np.sum((d - d.mean()) ** 2) / (n * (n - 1))))


def empirical_se(estimate) -> tuple[float, float]:
    """Empirical SE (SD of the estimates) and its MCSE."""
    e = _arr(estimate)
    n = e.size
    if n < 2:
        return NAN, NAN
    s = float(np.std(e, ddof=1))
    return s, s / math.sqrt(2 * (n - 1))


def mse(estimate, true_value) -> tuple[float, float]:
    """Mean squared error and its MCSE."""
    e = _arr(estimate)
    sq = (e - np.broadcast_to(_arr(true_value), e.shape)) ** 2
    n = sq.size
    if n < 2:
        return (float(sq.mean()) if n else NAN), NAN
    m = float(sq.mean())
    return m, float(np.sqrt(np.sum((sq - m) ** 2) / (n * (n - 1))))


def model_se(std_error) -> tuple[float, float]:
    """Average model SE (root mean of the squared SEs) and its MCSE."""
    v = _arr(std_error) ** 2
    n = v.size
    if n < 2:
        return NAN, NAN
    mod = math.sqrt(v.mean())
    var_v = float(np.var(v, ddof=1))
    return mod, math.sqrt(var_v / (4 * n * mod ** 2)) if mod > 0 else NAN


def relative_error_model_se(estimate, std_error) -> tuple[float, float]:
    """Relative error in the model SE, in percent: ``100 (ModSE / EmpSE - 1)``, and its MCSE."""
    emp, _ = empirical_se(estimate)
    v = _arr(std_error) ** 2
    n = v.size
    if n < 2 or not emp > 0:
        return NAN, NAN
    mod = math.sqrt(v.mean())
    var_v = float(np.var(v, ddof=1))
    ratio = mod / emp
    return 100 * (ratio - 1), 100 * ratio * math.sqrt(var_v / (4 * n * mod ** 4) + 1 / (2 * (n - 1)))


def coverage(conf_low, conf_high, true_value) -> tuple[float, float]:
    """Coverage of the intervals and its MCSE."""
    lo, hi = _arr(conf_low), _arr(conf_high)
    t = np.broadcast_to(_arr(true_value), lo.shape)
    return _proportion((lo <= t) & (t <= hi))


def power(p_value, alpha: float = 0.05) -> tuple[float, float]:
    """Share of replicates rejecting ``H0`` at level ``alpha`` (``p <= alpha``) and its MCSE."""
    return _proportion(_arr(p_value) <= alpha)


def pooled_power(mean_estimate, emp_se, n_sims: int, k: int, alpha: float = 0.05) -> tuple[float, float]:
    r"""Power of a study of ``k`` independent regions like the simulated one, and its MCSE.

    A design too large to simulate whole (the national one: 39 regions) is diagnosed on replicates
    of one average region (:meth:`~verzuimmodel.simulate.scenario.Scenario.one_region`). With the
    regions independent and alike, the estimate from all of them has about the region's mean
    :math:`m` and the standard error :math:`s_k = s/\sqrt{k}` (:math:`s` the region's empirical SE),
    and a two-sided Wald test at level :math:`\alpha` rejects with probability

    .. math:: P_k = \Phi(|m|/s_k - z) + \Phi(-|m|/s_k - z), \qquad z = \Phi^{-1}(1 - \alpha/2).

    MCSE by the delta method from :math:`\operatorname{Var}\hat m = s^2/n` and
    :math:`\operatorname{Var}\hat s \approx s^2/\{2(n-1)\}` over the ``n_sims`` replicates.

    Where it holds: an estimator whose variance falls as one over the number of schools (every
    estimator here compares schools) and whose bias does not depend on the region's size. Where it
    does not: a small-sample bias or a model SE that is off at a region's size but not nationally
    (or the reverse); effects that differ between regions. ``k = 1`` gives the normal
    approximation of the simulated design's own power.
    """
    from scipy.stats import norm

    m, s = float(mean_estimate), float(emp_se)
    if not (np.isfinite(m) and np.isfinite(s) and s > 0 and n_sims >= 2 and k >= 1):
        return NAN, NAN
    z = float(norm.ppf(1 - alpha / 2))
    a = abs(m) * math.sqrt(k) / s
    value = float(norm.cdf(a - z) + norm.cdf(-a - z))
    slope = float(norm.pdf(a - z) - norm.pdf(-a - z))        # dP/da
    da_dm, da_ds = math.sqrt(k) / s, -a / s
    var = slope ** 2 * (da_dm ** 2 * s ** 2 / n_sims + da_ds ** 2 * s ** 2 / (2 * (n_sims - 1)))
    return value, math.sqrt(var)


def type_s(estimate, p_value, true_value, alpha: float = 0.05) -> tuple[float, float]:
    """Type S error among the rejections and its MCSE (missing if none reject or the truth is 0)."""
    e, p = _arr(estimate), _arr(p_value)
    t = np.broadcast_to(_arr(true_value), e.shape)
    rej = (p <= alpha) & (t != 0)
    if not rej.any():
        return NAN, NAN
    return _proportion(np.sign(e[rej]) != np.sign(t[rej]))


def performance(estimate, std_error, true_value, conf_low, conf_high, p_value, alpha: float = 0.05) -> dict:
    """All measures of :data:`MEASURES` for the successful replicates of one estimator.

    Parameters
    ----------
    estimate, std_error, conf_low, conf_high, p_value : array-like
        Per replicate, on the analysis scale (log scale for ratio estimators).
    true_value : float or array-like
        The true value per replicate (or one value for all), on the same scale.
    alpha : float
        Level of the test behind ``power`` and ``type_s``.
    """
    est = _arr(estimate)
    truth = np.broadcast_to(_arr(true_value), est.shape).astype(float)
    out = {"true_value": float(truth.mean()) if truth.size else NAN,
           "mean_estimate": float(est.mean()) if est.size else NAN}
    out["bias"], out["bias_mcse"] = bias(est, truth)
    out["emp_se"], out["emp_se_mcse"] = empirical_se(est)
    out["model_se"], out["model_se_mcse"] = model_se(std_error)
    out["rel_error_model_se"], out["rel_error_model_se_mcse"] = relative_error_model_se(est, std_error)
    out["mse"], out["mse_mcse"] = mse(est, truth)
    out["rmse"] = math.sqrt(out["mse"]) if out["mse"] == out["mse"] else NAN
    out["rmse_mcse"] = out["mse_mcse"] / (2 * out["rmse"]) if out["rmse"] and out["rmse"] > 0 else NAN
    out["coverage"], out["coverage_mcse"] = coverage(conf_low, conf_high, truth)
    if est.size:
        shift = out["bias"]  # bias-eliminated: intervals compared with truth + bias (= the mean estimate)
        out["be_coverage"], out["be_coverage_mcse"] = coverage(_arr(conf_low) - shift, _arr(conf_high) - shift,
                                                               truth)
    else:
        out["be_coverage"] = out["be_coverage_mcse"] = NAN
    out["power"], out["power_mcse"] = power(p_value, alpha)
    out["type_s"], out["type_s_mcse"] = type_s(est, p_value, truth, alpha)
    return {k: out[k] for k in MEASURES}
