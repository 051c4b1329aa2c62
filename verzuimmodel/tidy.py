"""The one canonical result table: ``tidy()`` of every fitted model builds it here."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["TIDY_COLUMNS", "tidy_table"]

TIDY_COLUMNS = ["term", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high",
                "exp_estimate", "exp_conf_low", "exp_conf_high"]


def tidy_table(estimate: pd.Series, std_error: pd.Series, *, level: float = 0.95, df: float | pd.Series | None = None,
               exponentiate: bool = True) -> pd.DataFrame:
    """Wald table from estimates and standard errors (indexed by term).

    ``statistic = estimate / std_error``; p-values and intervals from the normal distribution, or
    from Student's t with ``df`` degrees of freedom when given (e.g. Satterthwaite). With
    ``exponentiate`` the ``exp_*`` columns hold ``exp(estimate)`` and its interval (hazard or rate
    ratios); otherwise they are missing.
    """
    est = np.asarray(estimate, dtype=float)
    se = np.asarray(std_error, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = est / se
    if df is None:
        p = 2 * stats.norm.sf(np.abs(z))
        q = stats.norm.ppf(0.5 + level / 2)
    else:
        dfa = np.broadcast_to(np.asarray(df, dtype=float), est.shape)
        p = 2 * stats.t.sf(np.abs(z), dfa)
        q = stats.t.ppf(0.5 + level / 2, dfa)
    low, high = est - q * se, est + q * se
    out = pd.DataFrame({"term": list(estimate.index), "estimate": est, "std_error": se, "statistic": z,
                        "p_value": p, "conf_low": low, "conf_high": high})
    if exponentiate:
        with np.errstate(over="ignore"):     # an unbounded interval (a coefficient that may be infinite): inf
            out["exp_estimate"], out["exp_conf_low"], out["exp_conf_high"] = np.exp(est), np.exp(low), np.exp(high)
    else:
        out["exp_estimate"] = out["exp_conf_low"] = out["exp_conf_high"] = np.nan
    return out[TIDY_COLUMNS]
