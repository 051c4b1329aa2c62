"""What two strategies' estimates become: bootstrap replicates, risks per arm, contrasts, tidy table.

Shared by the target-trial emulation (:mod:`.target_trial`) and g-computation (:mod:`.gformula`),
which answer the same question -- "start the intervention on day d" vs "never" -- from different
models.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ConvergenceError, ConvergenceWarning, DegenerateDataWarning

if TYPE_CHECKING:
    from .target_trial import TrialData

__all__ = ["bootstrap", "contrasts_of", "summarise", "tidy_contrasts"]


def tidy_contrasts(contrasts: pd.DataFrame) -> pd.DataFrame:
    """Contrasts of two strategies as the canonical tidy table.

    Risk differences and restricted means as they are; risk ratios as ``log_rr_*`` on the log
    scale with the ratio and its interval in ``exp_*``. ``std_error`` is the bootstrap SD,
    ``statistic``/``p_value`` the Wald test of no difference with it, ``conf_low``/``conf_high``
    the bootstrap percentile interval.
    """
    from ..tidy import TIDY_COLUMNS

    c = contrasts.copy()
    ratio = c["term"].str.startswith(("rr_", "hr_")).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.where(ratio, np.log(c["estimate"]), c["estimate"])
        se = np.where(ratio, c["std_error_log"], c["std_error"])
        lo = np.where(ratio, np.log(c["conf_low"]), c["conf_low"])
        hi = np.where(ratio, np.log(c["conf_high"]), c["conf_high"])
        z = est / se
    null = c["term"].isin(["rmst_out_start", "rmst_out_never"]).to_numpy()    # levels, not contrasts
    out = pd.DataFrame({"term": np.where(ratio, "log_" + c["term"], c["term"]), "estimate": est,
                        "std_error": se, "statistic": np.where(null, np.nan, z),
                        "p_value": np.where(null, np.nan, 2 * stats.norm.sf(np.abs(z))),
                        "conf_low": lo, "conf_high": hi})
    out["exp_estimate"] = np.where(ratio, c["estimate"], np.nan)
    out["exp_conf_low"] = np.where(ratio, c["conf_low"], np.nan)
    out["exp_conf_high"] = np.where(ratio, c["conf_high"], np.nan)
    return out[TIDY_COLUMNS]


def _label(h: float) -> str:
    return f"{round(h / 30.4)}m"


def bootstrap(td: TrialData, n_boot: int, seed: int, cluster: str, columns: pd.Index, estimate, *, usable=None,
              errors: tuple = (ConvergenceError,), why: str) -> pd.DataFrame | None:
    """``n_boot`` estimates on resamples of pupils (or schools) with replacement, one row each.

    ``estimate(f)`` computes a replicate from the episodes' frequencies ``f``; a resample for
    which ``usable(f)`` is false, or whose estimate raises one of ``errors``, is skipped. When
    more than a tenth are skipped, a :class:`~verzuimmodel.errors.DegenerateDataWarning` says so
    (``why``, formatted with ``lost`` and ``n``). ``None`` without replicates.
    """
    boots = []
    if n_boot:
        rng = np.random.default_rng(seed)
        labels = td.pupil if cluster == "pupil" else td.school
        codes, inverse = np.unique(labels, return_inverse=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for _ in range(n_boot):
                f = rng.multinomial(len(codes), np.full(len(codes), 1.0 / len(codes)))[inverse].astype(float)
                if usable is not None and not usable(f):
                    continue
                try:
                    boots.append(estimate(f))
                except errors:
                    continue
    if n_boot and len(boots) < 0.9 * n_boot:
        warnings.warn(why.format(lost=n_boot - len(boots), n=n_boot), DegenerateDataWarning, stacklevel=3)
    return pd.DataFrame(boots, columns=columns) if boots else None


def summarise(est: pd.Series, B: pd.DataFrame | None, hz: np.ndarray, level: float
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The risks per arm and the contrasts, with bootstrap SDs and percentile intervals (``B``:
    one row per bootstrap replicate; missing without two finite replicates)."""
    alpha = (1 - level) / 2

    def row(term):
        b = np.zeros(0) if B is None else B[term].to_numpy()
        b = b[np.isfinite(b)]
        if len(b) < 2:
            return est[term], np.nan, np.nan, np.nan
        return est[term], float(np.std(b, ddof=1)), float(np.quantile(b, alpha)), float(np.quantile(b, 1 - alpha))

    risks = pd.DataFrame([(arm, h, *row(f"risk_{arm}_{_label(h)}")) for arm in ("start", "never") for h in hz],
                         columns=["arm", "horizon", "estimate", "std_error", "conf_low", "conf_high"])
    terms = [t for h in hz for t in (f"rd_{_label(h)}", f"rr_{_label(h)}")] + \
        ["rmst_out_start", "rmst_out_never", "rmst_out_diff"]
    contrasts = pd.DataFrame([(t, *row(t)) for t in terms],
                             columns=["term", "estimate", "std_error", "conf_low", "conf_high"])
    contrasts["std_error_log"] = [_sd_log(B[t].to_numpy()) if B is not None and t.startswith("rr_") else np.nan
                                  for t in terms]
    contrasts["n_boot"] = 0 if B is None else len(B)
    return risks, contrasts


def contrasts_of(out: dict, hz: np.ndarray) -> pd.Series:
    """Add the risk differences and ratios and the difference in restricted means to the arms'
    ``risk_<arm>_<h>`` and ``rmst_out_<arm>``."""
    for h in hz:
        lab = _label(h)
        r1, r0 = out[f"risk_start_{lab}"], out[f"risk_never_{lab}"]
        out[f"rd_{lab}"] = r1 - r0
        out[f"rr_{lab}"] = r1 / r0 if r0 > 0 else np.nan
    out["rmst_out_diff"] = out["rmst_out_start"] - out["rmst_out_never"]
    return pd.Series(out)


def _sd_log(b: np.ndarray) -> float:
    """Bootstrap SD of the log of positive finite ratios (missing with fewer than two)."""
    b = b[np.isfinite(b) & (b > 0)]
    return float(np.std(np.log(b), ddof=1)) if len(b) > 1 else float("nan")
