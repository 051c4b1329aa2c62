r"""Count families of the Poisson and NB2 mixed models, and the checks of a count outcome and its exposure.

A family gives, for every row, the conditional log-likelihood :math:`\ell_i(\eta_i)` in the linear
predictor :math:`\eta = \log\mu`, its derivative :math:`a_i = \ell_i'(\eta_i)` and the observed curvature
:math:`w_i = -\ell_i''(\eta_i)` (Poisson :math:`\mu_i`; NB2 :math:`\theta\mu_i(\theta + y_i)/(\theta+\mu_i)^2`),
and for NB2 their derivatives in :math:`\omega = \log\theta`: everything the Laplace approximation and its
exact gradient (:mod:`~verzuimmodel.mixed.laplace`) need. The model is in :mod:`~verzuimmodel.mixed.glmm`.

``_count_outcome`` and ``_exposure_offset`` check what a count model is given (whole, non-negative counts
that are not all 0; a positive exposure) and raise a :class:`~verzuimmodel.schema.SchemaError` naming
the rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from ..schema import SchemaError
from ._design import ModelFrame

_ETA_MAX = 700.0
_BLOCK = 65536      # rows per block of the NB2 family's arithmetic (its temporaries stay in cache)
ALL_NAMES = ("ll", "a", "w", "w1", "l_om", "a_om", "w_om")


# ----------------------------------------------------------------------------------------------------------------
# families: per-row log-likelihood and its derivatives in eta = log mu (and in omega = log theta)


class _Poisson:
    name = "poisson"
    has_dispersion = False

    def __init__(self, y: np.ndarray):
        self.y = y
        self.lgy1 = special.gammaln(y + 1.0)

    def prepare(self, omega: float | None) -> dict:
        return {}

    def core(self, eta: np.ndarray, prep: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-row log-likelihood, its first derivative and minus its second derivative in eta."""
        mu = np.exp(np.minimum(eta, _ETA_MAX))
        return self.y * eta - mu - self.lgy1, self.y - mu, mu

    def loglik(self, eta: np.ndarray, prep: dict) -> tuple[np.ndarray, np.ndarray, None]:
        """Per-row log-likelihood, its derivative in eta and in log theta (None for Poisson)."""
        ll, a, _ = self.core(eta, prep)
        return ll, a, None

    def all(self, eta: np.ndarray, prep: dict) -> dict:
        """Everything the gradient needs at the mode: ``ll, a, w, w1`` (+ ``l_om, a_om, w_om`` for NB)."""
        ll, a, mu = self.core(eta, prep)
        return {"ll": ll, "a": a, "w": mu, "w1": mu}


class _NB2:
    name = "nbinom2"
    has_dispersion = True
    writes_into = True          # core and all take out= (arrays kept between evaluations)

    def __init__(self, y: np.ndarray):
        self.y = y
        # the gamma functions depend on y only through its (few) distinct values
        self.y_unique, self.y_index = np.unique(y, return_inverse=True)
        self.lgy1 = special.gammaln(self.y_unique + 1.0)

    def prepare(self, omega: float) -> dict:
        theta = float(np.exp(omega))
        yu = self.y_unique
        const = special.gammaln(yu + theta) - special.gammaln(theta) - self.lgy1
        return {"omega": omega, "theta": theta, "const": const[self.y_index]}

    def _digamma(self, prep):
        if "dig" not in prep:
            theta = prep["theta"]
            prep["dig"] = (special.digamma(self.y_unique + theta) - special.digamma(theta))[self.y_index]
        return prep["dig"]

    @staticmethod
    def _pq(eta, prep):
        """p = theta/(theta+mu), q = mu/(theta+mu) and their logs, without overflow."""
        d = np.clip(eta - prep["omega"], -_ETA_MAX, _ETA_MAX)     # log(mu / theta)
        ed = np.exp(-d)
        opd = 1.0 + ed
        q = 1.0 / opd
        logq = -np.log(opd)
        return ed * q, q, logq - d, logq

    def _blocks(self, eta, prep, names, fn, out=None):
        """``fn(block slice, p, q, logp, logq) -> dict`` evaluated block by block (rows in blocks of ``_BLOCK``:
        the temporaries stay in cache), gathered into arrays ``names`` (those of ``out`` if given)."""
        n = len(eta)
        out = {k: np.empty(n) for k in names} if out is None else out
        for start in range(0, n, _BLOCK):
            b = slice(start, start + _BLOCK)
            for k, v in fn(b, *self._pq(eta[b], prep)).items():
                out[k][b] = v
        return out

    def core(self, eta, prep, out=None):
        """As :meth:`_Poisson.core`; ``out``, a dict of arrays ``ll``, ``a``, ``w``, receives them if given."""
        y, theta, const = self.y, prep["theta"], prep["const"]

        def block(b, p, q, logp, logq):
            yb = y[b]
            return {"ll": const[b] + theta * logp + yb * logq,
                    "a": yb * p - theta * q,                           # (y - mu) p, as mu p = theta q
                    "w": (theta + yb) * p * q}

        out = self._blocks(eta, prep, ("ll", "a", "w"), block, out)
        return out["ll"], out["a"], out["w"]

    def loglik(self, eta, prep):
        y, theta, const, dig = self.y, prep["theta"], prep["const"], self._digamma(prep)

        def block(b, p, q, logp, logq):
            yb = y[b]
            a = yb * p - theta * q
            return {"ll": const[b] + theta * logp + yb * logq, "a": a,
                    "l_om": theta * (dig[b] + logp) - a}               # d loglik / d log theta

        out = self._blocks(eta, prep, ("ll", "a", "l_om"), block)
        return out["ll"], out["a"], out["l_om"]

    def all(self, eta, prep, out=None):
        """As :meth:`_Poisson.all`; ``out``, a dict of the seven arrays, receives them if given."""
        y, theta, const, dig = self.y, prep["theta"], prep["const"], self._digamma(prep)

        def block(b, p, q, logp, logq):
            yb = y[b]
            pq = p * q
            a = yb * p - theta * q
            return {"ll": const[b] + theta * logp + yb * logq, "a": a, "w": (theta + yb) * pq,
                    "w1": (theta + yb) * pq * (p - q),                   # dw / deta
                    "l_om": theta * (dig[b] + logp) - a,                # d loglik / d log theta
                    "a_om": yb * pq - theta * q * q,                    # da / d log theta = (y - mu) p q
                    "w_om": pq * (2 * theta * q + yb * (q - p))}         # dw / d log theta

        return self._blocks(eta, prep, ALL_NAMES, block, out)


# ----------------------------------------------------------------------------------------------------------------
# the count outcome and its exposure


def _count_outcome(mf: ModelFrame, table: str) -> None:
    y, name = mf.y, mf.outcome
    bad = y < 0
    if bad.any():
        raise SchemaError(table, name, "negative counts in the outcome", (np.flatnonzero(bad)[:5] + 1).tolist(),
                          "counts 0, 1, 2, ...", n_rows=int(bad.sum()))
    bad = y != np.round(y)
    if bad.any():
        raise SchemaError(table, name, "non-integer counts in the outcome", (np.flatnonzero(bad)[:5] + 1).tolist(),
                          "whole counts 0, 1, 2, ... (hours? round them or model them with LinearMixed)",
                          n_rows=int(bad.sum()))
    if y.sum() == 0:
        raise SchemaError(table, name, "every count is 0", expected="some positive counts")


def _exposure_offset(df: pd.DataFrame, offset: str | None, exposure: str | None, table: str) -> np.ndarray | None:
    if offset is not None and exposure is not None:
        raise ValueError("give offset= (log exposure) or exposure= (exposure, logged here), not both")
    if exposure is None:
        return None
    if exposure not in df.columns:
        raise SchemaError(table, exposure, "column not found (the exposure)",
                          expected="one of the columns: " + ", ".join(map(str, df.columns[:20])))
    s = df[exposure]
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(x) | (x <= 0)
    if bad.any():
        raise SchemaError(table, exposure, "missing, non-numeric or non-positive exposure",
                          (np.flatnonzero(bad)[:5] + 1).tolist(), "exposure > 0 (e.g. enrolled days)",
                          n_rows=int(bad.sum()))
    return np.log(x)
