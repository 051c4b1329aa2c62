r"""The binomial family (logit link) of the logistic mixed model, its starting values and the checks of a
binary or binomial outcome.

A family gives, for every row, the conditional log-likelihood :math:`\ell_i(\eta_i)` in the linear predictor
:math:`\eta = \operatorname{logit} p`, its derivative :math:`a_i = \ell_i'(\eta_i)`, the observed curvature
:math:`w_i = -\ell_i''(\eta_i)` and :math:`\partial w_i/\partial\eta_i`: everything the Laplace approximation,
the adaptive quadrature and their exact gradients (:mod:`~verzuimmodel.mixed.laplace`) need. For
:math:`y_i` successes out of :math:`m_i` trials (:math:`m_i = 1`: a 0/1 outcome), with
:math:`p_i = 1/(1 + e^{-\eta_i})`,

.. math:: \ell_i = \log\binom{m_i}{y_i} + y_i\eta_i - m_i\log(1 + e^{\eta_i}), \qquad
          a_i = y_i - m_i p_i, \qquad w_i = m_i p_i (1 - p_i), \qquad
          \frac{\partial w_i}{\partial\eta_i} = w_i (1 - 2p_i).

The logit link is canonical, so the observed curvature :math:`w_i` is also the expected one: the Laplace
approximation of glmmTMB (observed) and of ``lme4::glmer`` (PIRLS weights, expected) are the same
function. :math:`\log\binom{m}{y}` is kept, so the log-likelihood is R's ``dbinom`` one (as ``logLik`` of
glmer with ``nAGQ = 1`` and of glmmTMB).

``_binomial_outcome`` checks what the model is given (0/1 outcomes; or whole successes
:math:`0 \le y \le m` out of whole trials :math:`m \ge 1`) and raises a
:class:`~verzuimmodel.schema.SchemaError` naming the table, the column and the rows.
The model is in :mod:`~verzuimmodel.mixed.binomial_mixed`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from ..schema import SchemaError
from ._design import ModelFrame
from .fixed_design import FixedDesign, weighted_least_squares
from .random_intercepts import _Groups

_ETA_MAX = 30.0          # |logit| clipped in the starting values only


class _Binomial:
    """Per-row log-likelihood of :math:`y` successes out of :math:`m` trials, logit link."""

    name = "binomial"
    has_dispersion = False

    def __init__(self, y: np.ndarray, trials: np.ndarray | None = None):
        self.y = np.asarray(y, dtype=float)
        self.m = np.ones_like(self.y) if trials is None else np.asarray(trials, dtype=float)
        self.binary = bool(np.all(self.m == 1.0))
        # log binomial coefficients (0 for a 0/1 outcome)
        self.lchoose = 0.0 if self.binary else (special.gammaln(self.m + 1.0) - special.gammaln(self.y + 1.0)
                                                - special.gammaln(self.m - self.y + 1.0))

    def prepare(self, omega: float | None) -> dict:
        return {}

    def _parts(self, eta):
        p, q = special.expit(eta), special.expit(-eta)        # p and 1 - p, each accurate in its tail
        ll = self.y * eta - self.m * np.logaddexp(0.0, eta) + self.lchoose
        return ll, self.y - self.m * p, self.m * p * q, p, q

    def core(self, eta: np.ndarray, prep: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-row log-likelihood, its first derivative and minus its second derivative in eta."""
        ll, a, w, _, _ = self._parts(eta)
        return ll, a, w

    def loglik(self, eta: np.ndarray, prep: dict) -> tuple[np.ndarray, np.ndarray, None]:
        """Per-row log-likelihood and its derivative in eta (no dispersion parameter: None)."""
        ll, a, _, _, _ = self._parts(eta)
        return ll, a, None

    def all(self, eta: np.ndarray, prep: dict) -> dict:
        """Everything the gradient needs at the mode: ``ll, a, w`` and ``w1 = dw/deta``."""
        ll, a, w, p, q = self._parts(eta)
        return {"ll": ll, "a": a, "w": w, "w1": w * (q - p)}


def _binomial_start(y, X, offset, family: _Binomial, groups: _Groups, design: FixedDesign | None = None) -> np.ndarray:
    """Starting values: the logistic GLM (IRLS, at most 25 steps: under separation it diverges) for beta,
    the spread of the groups' empirical logits around it for the SDs (clipped to [0.1, 2]); ``design``: the
    products with ``X``, if already made."""
    design = FixedDesign(X) if design is None else design
    m = family.m
    eta = special.logit((y + 0.5) / (m + 1.0))
    beta = weighted_least_squares(design, None, eta - offset)
    for _ in range(25):
        eta = np.clip(design.matvec(beta) + offset, -_ETA_MAX, _ETA_MAX)
        mp = m * special.expit(eta)
        w = np.maximum(mp * special.expit(-eta), 1e-10)
        z = eta - offset + (y - mp) / w
        new = weighted_least_squares(design, w, z)
        done = np.max(np.abs(new - beta)) < 1e-8
        beta = new
        if done:
            break
    fitted = m * special.expit(np.clip(design.matvec(beta) + offset, -_ETA_MAX, _ETA_MAX))
    sds = []
    for c, G in zip(groups.codes, groups.sizes):
        oy, ey, mg = np.bincount(c, y, G), np.bincount(c, fitted, G), np.bincount(c, m, G)
        r = special.logit((oy + 0.5) / (mg + 1.0)) - special.logit((ey + 0.5) / (mg + 1.0))
        sds.append(float(np.clip(np.std(r), 0.1, 2.0)))
    return np.concatenate([beta, np.log(sds)])


def _separation_direction(X: np.ndarray, y: np.ndarray, m: np.ndarray) -> np.ndarray | None:
    r"""A direction :math:`d` in which the likelihood rises without bound, or None (no separation).

    (Quasi-)complete separation (Albert & Anderson 1984; the linear programme of Konis 2007, as R's
    ``detectseparation``): a :math:`d \ne 0` with :math:`x_i'd \ge 0` where every trial succeeded,
    :math:`x_i'd \le 0` where none did and :math:`x_i'd = 0` in the other rows. Along :math:`\beta + t d` the
    likelihood of every row is then non-decreasing; bounded random effects cannot stop it, so the maximum is
    at infinity in the coefficients with :math:`d_j \ne 0` (they are returned non-zero; columns scaled to
    :math:`|x| \le 1`, :math:`|d_j| \le 1`).
    """
    from scipy import optimize

    scale = np.abs(X).max(axis=0)
    scale[scale == 0] = 1.0
    Xs = X / scale
    sign = np.where(y >= m, 1.0, np.where(y <= 0, -1.0, 0.0))
    ends = sign != 0
    A_ub = -sign[ends, None] * Xs[ends]
    A_eq = Xs[~ends] if (~ends).any() else None
    res = optimize.linprog(A_ub.sum(axis=0), A_ub=A_ub, b_ub=np.zeros(len(A_ub)), A_eq=A_eq,
                           b_eq=None if A_eq is None else np.zeros(len(A_eq)), bounds=(-1.0, 1.0), method="highs")
    if res.status != 0 or -res.fun <= 1e-7 * max(1, ends.sum()) ** 0.5:
        return None
    d = res.x.copy()
    d[np.abs(d) < 1e-6] = 0.0
    return d if d.any() else None


# ----------------------------------------------------------------------------------------------------------------
# the outcome: 0/1, or successes out of trials


def _rows(mask: np.ndarray) -> list[int]:
    return (np.flatnonzero(mask)[:5] + 1).tolist()


def _binomial_outcome(df: pd.DataFrame, mf: ModelFrame, trials: str | None, table: str) -> np.ndarray | None:
    """Check the outcome (and the trials column); return the trials (None for a 0/1 outcome)."""
    y, name = mf.y, mf.outcome
    if trials is None:
        bad = (y != 0) & (y != 1)
        if bad.any():
            raise SchemaError(table, name, "outcome not 0/1", _rows(bad),
                              "0 or 1 (or give trials= for successes out of trials)", n_rows=int(bad.sum()))
        m = None
    else:
        if not isinstance(trials, str):
            raise TypeError(f"trials must be a column name, got {trials!r}")
        if trials not in df.columns:
            raise SchemaError(table, trials, "column not found (the number of trials)",
                              expected="one of the columns: " + ", ".join(map(str, df.columns[:20])))
        s = df[trials]
        m = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(m)
        if bad.any():
            raise SchemaError(table, trials, "missing or non-numeric number of trials", _rows(bad),
                              "whole numbers of trials >= 1", n_rows=int(bad.sum()))
        bad = (m != np.round(m)) | (m < 1)
        if bad.any():
            raise SchemaError(table, trials, "number of trials not a whole number >= 1", _rows(bad),
                              "whole numbers of trials >= 1 (drop rows with 0 trials: they carry no information)",
                              n_rows=int(bad.sum()))
        bad = (y < 0) | (y != np.round(y))
        if bad.any():
            raise SchemaError(table, name, "successes not a whole number >= 0", _rows(bad),
                              f"whole numbers of successes 0, 1, ..., {trials} (proportions? give the number of "
                              "successes)", n_rows=int(bad.sum()))
        bad = y > m
        if bad.any():
            raise SchemaError(table, name, f"more successes than trials ('{trials}')", _rows(bad),
                              f"0 <= {name} <= {trials}", n_rows=int(bad.sum()))
    total = np.ones_like(y) if m is None else m
    if not y.any():
        raise SchemaError(table, name, "every outcome is 0 (no successes)", expected="some successes and failures")
    if np.all(y == total):
        raise SchemaError(table, name, "every outcome is a success", expected="some successes and failures")
    return m
