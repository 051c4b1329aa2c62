r"""Marginal structural Cox model of an in-episode intervention, with stabilised inverse probability weights.

The model for the hazard of a suitable place at day :math:`t` of an episode, had the
intervention history been :math:`\bar a(t)` (Hernán, Brumback & Robins 2000):

.. math:: \lambda_{\bar a}(t) = \lambda_0(t)\exp\{\gamma\,a(t)\},

:math:`a(t) = 1` from the day the intervention starts (it is never stopped), so
:math:`\exp(\gamma)` is the *marginal* hazard ratio of being treated vs not -- over the
population, not conditional on covariates, school or severity as the time-varying Cox model of
:func:`~verzuimmodel.survival.time_to_return` is. It is estimated by a Cox model of the observed
start–stop data weighted by the stabilised weights

.. math:: SW_i(t) = \prod_{k \le k(t-1)} \frac{P(A_{ik} \mid \bar A_{i,k-1})}
          {P(A_{ik} \mid \bar A_{i,k-1}, x_i)} \times \prod_{k < k(t-1)}
          \frac{1 - h^{C}_{k}}{1 - h^{C}_{k}(x_i)},

where :math:`A_{ik}` is "starts in interval :math:`k`" (only while not started; after the start
the factor is 1), the numerator models are the marginal discrete hazards per interval and the
denominators the pooled logistic models of :mod:`.target_trial` (measured history :math:`x_i`,
including ``episodes.severity_score`` when recorded). Robust (sandwich) standard errors
clustered by pupil; they ignore the estimation of the weights and are conservative (Robins,
Hernán & Brumback 2000).

Exemption competes: it censors in this cause-specific model. Follow-up is from the first day of
absence to the last horizon (12 months).

Where it holds: no unmeasured confounding of the start, positivity, right weight models, and
an effect that is the same whenever the intervention starts (the MSM pools all start days into
one :math:`\gamma`). Then it estimates the marginal HR, which is smaller than the conditional HR
of the time-varying Cox model when return times vary between pupils and schools
(non-collapsibility). Compared in tests with ``truth["intervention_risk"][type]["hr_after_treat_day"]``
(the marginal HR of "start on day 56" vs "never" from day 56): the two coincide only
approximately, because the MSM averages over the observed start days. Where it does not: an
unmeasured confounder (``confounded_referral``), or an effect that fades with a later start.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..errors import ExtremeWeightsWarning
from ..tidy import tidy_table
from .target_trial import MIN_ESS_SHARE, MIN_FOLLOWED, _grid, _hazards, trial_data

__all__ = ["MarginalStructuralCox", "marginal_structural_cox"]


@dataclass(frozen=True)
class MarginalStructuralCox:
    """Result of :func:`marginal_structural_cox`.

    Attributes
    ----------
    log_hr, std_error : the marginal log hazard ratio and its robust SE (clustered by pupil).
    weights : DataFrame
        Diagnostics of the stabilised weights: their mean over person-days (near 1 when the
        models are right); SD, min, 1%/50%/99% quantiles, max and effective sample size over the
        start–stop rows; number truncated.
    n_episodes, n_events : int
    model : the fitted :class:`~verzuimmodel.survival.CoxPH`.
    """

    intervention: str
    log_hr: float
    std_error: float
    level: float
    weights: pd.DataFrame
    n_episodes: int
    n_events: int
    covariates: tuple[str, ...]
    model: object

    def tidy(self) -> pd.DataFrame:
        """The canonical tidy table: one row, term ``<intervention>`` (log HR, robust SE, HR)."""
        return tidy_table(pd.Series([self.log_hr], index=[self.intervention]), pd.Series([self.std_error]),
                          level=self.level)


def marginal_structural_cox(cohort: Cohort, intervention: str, *, covariates: Sequence[str] | None = None,
                            censoring_weights: bool = True, truncate: float | None = None, horizon: int = 365,
                            max_intervals: int = 60, level: float = 0.95,
                            episode_types: Sequence[str] = ("LRV", "AV")) -> MarginalStructuralCox:
    """Fit the marginal structural Cox model (see the module docstring).

    Parameters
    ----------
    cohort : Cohort
    intervention : one of the intervention types.
    covariates : the measured history of the weight models (default as
        :func:`~verzuimmodel.survival.target_trial`).
    censoring_weights : also weight for loss to follow-up (default).
    truncate : truncate the stabilised weights at this quantile and at 1 minus it (e.g. 0.99).
    horizon : follow-up in days from the first day of absence.
    max_intervals, level, episode_types : as :func:`~verzuimmodel.survival.target_trial`.

    Raises
    ------
    ValueError
        Bad arguments, or no episode that received the intervention while out.

    Warns
    -----
    ExtremeWeightsWarning
        Fewer than 10 treated episodes, or an effective sample size of the weights below 5% of the
        rows.
    """
    if not isinstance(horizon, (int, np.integer)) or horizon < 2:
        raise ValueError(f"horizon: got {horizon!r}; expected whole days >= 2")
    if truncate is not None and not 0.5 < truncate < 1:
        raise ValueError(f"truncate: got {truncate!r}; expected a quantile between 0.5 and 1 (e.g. 0.99) or None")
    td = trial_data(cohort, intervention, covariates, episode_types)
    if not (np.isfinite(td.start) & (td.start < td.exit)).any():
        raise ValueError(f"marginal_structural_cox: no episode received {intervention} while out")
    grid = _grid(td, horizon, 0, horizon, max_intervals)
    m, diag = _fit(td, grid, horizon, censoring_weights, truncate, level)
    n_treated = int((np.isfinite(td.start) & (td.start < td.exit)).sum())
    if n_treated < MIN_FOLLOWED:
        warnings.warn(f"marginal_structural_cox: only {n_treated} episode(s) received {intervention} while out: the "
                      "treated person-time rests on their weights alone", ExtremeWeightsWarning, stacklevel=2)
    d = diag.iloc[0]
    if d["ess"] < MIN_ESS_SHARE * d["n_rows"]:
        warnings.warn(f"marginal_structural_cox: the stabilised weights are extreme: effective sample size "
                      f"{d['ess']:.1f} of {int(d['n_rows'])} rows, largest weight {d['max']:.3g}; consider "
                      "truncate=0.99", ExtremeWeightsWarning, stacklevel=2)
    return MarginalStructuralCox(intervention=intervention, log_hr=float(m.params_["a"]),
                                 std_error=float(m.standard_errors_["a"]), level=level, weights=diag,
                                 n_episodes=len(td.exit), n_events=int(m.n_events_), covariates=td.covariates,
                                 model=m)


def _fit(td, grid: np.ndarray, horizon: int, censoring_weights: bool, truncate: float | None, level: float):
    """The weighted Cox model of the start–stop rows and the weights' diagnostics."""
    from .cox import CoxPH

    n = len(td.exit)
    started = np.isfinite(td.start) & (td.start < td.exit)
    f = np.ones(n)
    none = np.zeros((n, 0))
    end_a = np.minimum(td.start + 1, td.exit)
    name = "the model of starting the intervention"
    h_den = _hazards(td, grid, f, td.start, end_a, started, name)
    h_num = _hazards(td, grid, f, td.start, end_a, started, name + " (numerator)", z=none)
    K = len(grid) - 1
    ratio_untreated = np.cumprod((1 - h_num) / (1 - h_den), axis=1)           # through interval k, inclusive
    k_start = np.clip(np.searchsorted(grid, np.where(started, td.start, 0), side="right") - 1, 0, K - 1)
    before = np.c_[np.ones(n), ratio_untreated][np.arange(n), k_start]        # intervals < k_start
    at_start = before * h_num[np.arange(n), k_start] / np.maximum(h_den[np.arange(n), k_start], 1e-12)
    sw_c = np.ones((n, K))
    if censoring_weights:
        lost = td.status == 0
        c_den = _hazards(td, grid, f, td.exit, td.exit + 1, lost, "the model of loss to follow-up")
        c_num = _hazards(td, grid, f, td.exit, td.exit + 1, lost, "the model of loss to follow-up (numerator)",
                         z=none)
        sw_c = np.c_[np.ones(n), np.cumprod((1 - c_num) / (1 - c_den), axis=1)][:, :K]  # intervals < k
    rows = _rows(td, grid, horizon, started)
    i, k, a = rows["episode"].to_numpy(), rows["k"].to_numpy(), rows["a"].to_numpy()
    sw = np.where(a == 1, at_start[i], ratio_untreated[i, k]) * sw_c[i, k]
    n_trunc = 0
    if truncate is not None:
        lo, hi = np.quantile(sw, [1 - truncate, truncate])
        n_trunc = int(((sw < lo) | (sw > hi)).sum())
        sw = np.clip(sw, lo, hi)
    rows["sw"] = sw
    rows["pupil"] = td.pupil[i]
    m = CoxPH(level=level).fit(rows, duration="stop", event="event", entry="start", covariates=["a"], weights="sw",
                               cluster="pupil")
    days = (rows["stop"] - rows["start"]).to_numpy()
    diag = pd.DataFrame([{"n_rows": len(sw), "mean": float(np.average(sw, weights=days)), "sd": float(sw.std()),
                          "min": float(sw.min()), "q01": float(np.quantile(sw, 0.01)), "median": float(np.median(sw)),
                          "q99": float(np.quantile(sw, 0.99)), "max": float(sw.max()),
                          "ess": float(sw.sum() ** 2 / np.sum(sw ** 2)), "n_truncated": n_trunc}])
    return m, diag


def _rows(td, grid: np.ndarray, horizon: int, started: np.ndarray) -> pd.DataFrame:
    """Start–stop rows ``(start, stop]`` in days: each episode from day 0 to its exit (at most
    ``horizon``), split where the weight interval of day ``t - 1`` changes and at the start of
    the intervention (``a`` = 1 on days ``t > start``). ``k`` is the weight interval."""
    n, K = len(td.exit), len(grid) - 1
    x = np.minimum(td.exit, horizon)
    # cut at every interval boundary (from day g + 1 on, day t - 1 lies in the interval opening at g)
    # and at the start day
    cuts = np.c_[np.broadcast_to(grid[1:K], (n, K - 1)), np.where(started, td.start, np.nan)]
    cuts = np.where((cuts > 0) & (cuts < x[:, None]), cuts, np.nan)
    cuts = np.sort(cuts, axis=1)
    b = np.c_[np.zeros(n), cuts, x]
    b = np.where(np.isnan(b), np.inf, b)
    b.sort(axis=1)
    lo, hi = b[:, :-1], b[:, 1:]
    ok = np.isfinite(hi) & (hi > lo)
    i, j = np.nonzero(ok)
    start, stop = lo[i, j], hi[i, j]
    k = np.clip(np.searchsorted(grid, stop - 1, side="right") - 1, 0, K - 1)    # interval of day stop - 1
    a = (started[i] & (start >= td.start[i])).astype(float)
    event = ((stop == td.exit[i]) & (td.status[i] == 1) & (td.exit[i] <= horizon)).astype(int)
    return pd.DataFrame({"episode": i, "start": start, "stop": stop, "k": k, "a": a, "event": event})
