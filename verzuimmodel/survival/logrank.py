r"""The log-rank test and its :math:`G^\rho` family, as R's ``survival::survdiff``.

For groups :math:`g = 1..K` and the distinct event times :math:`t` of a stratum, with
:math:`n_{gt}` at risk and :math:`d_{gt}` events in group :math:`g`, :math:`n_t = \sum_g n_{gt}`,
:math:`d_t = \sum_g d_{gt}` and the weight :math:`w_t = \hat S(t-)^\rho` (the Kaplan–Meier
estimate of the pooled stratum just before :math:`t`; :math:`\rho = 0` is the log-rank test,
:math:`\rho = 1` the Peto & Peto modification of the Gehan–Wilcoxon test):

.. math:: O_g - E_g = \sum_t w_t\Big(d_{gt} - d_t\frac{n_{gt}}{n_t}\Big), \qquad
          V_{gh} = \sum_t w_t^2\, d_t\,\frac{n_t - d_t}{n_t - 1}\,\frac{n_{gt}}{n_t}
          \Big(\delta_{gh} - \frac{n_{ht}}{n_t}\Big),

summed over strata. The statistic :math:`(O - E)'V^{-}(O - E)` (any :math:`K - 1` groups) is
:math:`\chi^2` with :math:`K - 1` degrees of freedom under the null of equal hazards in every
stratum. ``observed`` and ``expected`` are the weighted sums :math:`\sum_t w_t d_{gt}` and
:math:`\sum_t w_t d_t n_{gt}/n_t` (counts for :math:`\rho = 0`), as R prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["LogRankTest", "logrank_test"]


@dataclass(frozen=True)
class LogRankTest:
    """Result of :func:`logrank_test`.

    Attributes
    ----------
    table : DataFrame
        Per group: ``group, n, observed, expected, o_minus_e`` (weighted for :math:`\\rho \\ne 0`),
        ``(o-e)^2/e`` and ``(o-e)^2/v`` as R's ``print.survdiff``.
    statistic, df, p_value : the chi-square test.
    variance : (K, K) variance matrix of ``o_minus_e``.
    rho : the weight exponent.
    """

    table: pd.DataFrame
    statistic: float
    df: int
    p_value: float
    variance: np.ndarray
    rho: float

    def tidy(self) -> pd.DataFrame:
        """One row: ``statistic, df, p_value, rho``."""
        return pd.DataFrame([{"statistic": self.statistic, "df": self.df, "p_value": self.p_value, "rho": self.rho}])


def logrank_test(df: pd.DataFrame, duration: str, event: str, group: str, strata: str | Sequence[str] | None = None,
                 rho: float = 0.0) -> LogRankTest:
    """Test equal survival (or hazards of an event) between the groups of ``group`` (module docstring).

    Parameters
    ----------
    df : one row per unit (right-censored data).
    duration, event : time and 0/1 event columns.
    group : the column whose values are the groups (two or more).
    strata : column(s) whose levels are tested within and summed over, as ``strata()`` in survdiff.
    rho : weight exponent of the :math:`G^\\rho` family (0: log-rank).

    Raises
    ------
    ValueError
        Missing columns or values, negative times, events not 0/1, fewer than two groups.
    """
    extra = [] if strata is None else [strata] if isinstance(strata, str) else list(strata)
    cols = [duration, event, group, *extra]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"logrank_test: column(s) {missing} not in the data; expected {', '.join(df.columns)}")
    bad = df[cols].isna().any(axis=1)
    if bad.any():
        raise ValueError(f"logrank_test: row {df.index[np.flatnonzero(bad.to_numpy())[0]]!r} has a missing value in "
                         f"{', '.join(cols)}")
    t = pd.to_numeric(df[duration], errors="coerce").to_numpy(float)
    e = pd.to_numeric(df[event], errors="coerce").to_numpy(float)
    if np.any(~np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"logrank_test: column '{duration}' must hold finite times >= 0")
    if not np.isin(e, (0, 1)).all():
        raise ValueError(f"logrank_test: column '{event}' must hold 0 (censored) or 1 (event)")
    if not np.isfinite(rho):
        raise ValueError(f"rho: got {rho!r}; expected a finite number (0: log-rank)")
    labels, g = np.unique(df[group].to_numpy(), return_inverse=True)
    K = len(labels)
    if K < 2:
        raise ValueError(f"logrank_test: column '{group}' has {K} group; expected two or more")
    s = pd.MultiIndex.from_frame(df[cols[3:]]).factorize()[0] if len(cols) > 3 else np.zeros(len(df), np.int64)
    V = np.zeros((K, K))
    observed = np.zeros(K)
    expected = np.zeros(K)
    for stratum in np.unique(s):
        m = s == stratum
        ob, ex, v = _stratum(t[m], e[m], g[m], K, rho)
        observed += ob
        expected += ex
        V += v
    o_e = observed - expected
    keep = np.arange(K) < K - 1                   # any K - 1 groups carry the information
    Vk = V[np.ix_(keep, keep)]
    stat = float(o_e[keep] @ np.linalg.pinv(Vk) @ o_e[keep])
    df_test = int(np.linalg.matrix_rank(Vk))
    table = pd.DataFrame({"group": labels, "n": np.bincount(g, minlength=K), "observed": observed,
                          "expected": expected, "o_minus_e": o_e})
    with np.errstate(divide="ignore", invalid="ignore"):
        table["(o-e)^2/e"] = (observed - expected) ** 2 / expected
        table["(o-e)^2/v"] = o_e ** 2 / np.diag(V)
    return LogRankTest(table=table, statistic=stat, df=df_test, p_value=float(stats.chi2.sf(stat, df_test)),
                       variance=V, rho=float(rho))


def _stratum(t: np.ndarray, e: np.ndarray, g: np.ndarray, K: int, rho: float):
    """Weighted observed and expected events per group and the variance of their difference, in
    one stratum."""
    times = np.unique(t[e == 1])
    if not len(times):
        return np.zeros(K), np.zeros(K), np.zeros((K, K))
    # at risk at each event time: units with t >= time, per group (counts from the sorted times)
    n_gt = np.column_stack([len(t[g == k]) - np.searchsorted(np.sort(t[g == k]), times, side="left")
                            for k in range(K)]).astype(float)
    idx = np.searchsorted(times, t[e == 1])
    d_gt = np.zeros((len(times), K))
    np.add.at(d_gt, (idx, g[e == 1]), 1.0)
    n_t, d_t = n_gt.sum(axis=1), d_gt.sum(axis=1)
    km = np.cumprod(1 - d_t / n_t)
    w = np.r_[1.0, km[:-1]] ** rho                 # S(t-) of the pooled stratum
    share = n_gt / n_t[:, None]
    observed = (w[:, None] * d_gt).sum(axis=0)
    expected = (w[:, None] * d_t[:, None] * share).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(n_t > 1, d_t * (n_t - d_t) / (n_t - 1), 0.0) * w ** 2
    V = np.einsum("t,tg,th->gh", c, share, -share)
    V[np.diag_indices(K)] += (c[:, None] * share).sum(axis=0)
    return observed, expected, V
