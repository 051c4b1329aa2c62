r"""M@ZL as it works: a JGZ consult for pupils who meet the sick-report criterion.

See :class:`~verzuimmodel.simulate.scenario.Consult` for the model. School years are processed
in grade order (one vectorised step per grade), because a consult in one year changes the sick
reports of the next. The consult acts by binomial thinning of the year's true sick reports
:math:`Y_{iy} \sim Poisson(\mu_{iy} G_{iy})`:

.. math:: Y^{(1)}_{iy} \mid Y^{(0)}_{iy} \sim Binomial(Y^{(0)}_{iy}, \rho)
          \quad\Rightarrow\quad Y^{(1)}_{iy} \sim Poisson(\rho\,\mu_{iy} G_{iy}),

so its rate ratio is exactly :math:`\rho` = ``sick_rate_ratio`` for every pupil, and sick days,
built from reports with spell lengths that do not depend on the consult, have the same ratio.

Truths (intention to treat is the trial's contrast, school offers M@ZL vs not):

- ``mazl_sick_rate_ratio``: :math:`\rho`, sick reports (and days) in the school years after a
  consult, consulted vs not (conditional on everything else; per protocol);
- ``mazl_itt_sick_rate_ratio``: among pupil-years meeting the criterion for the first time, the
  next school year's expected sick reports (and days) if the school of that year offers M@ZL vs
  if it does not: :math:`1 - u(1 - \rho)` with ``uptake`` :math:`u` (no consult happens before
  the first criterion year, and a consult in the next year acts only from the year after).
"""

from __future__ import annotations

import numpy as np

from .population import Pupils, Schools
from .scenario import Scenario

__all__ = ["draw_consults", "window_criterion"]


def draw_consults(scen: Scenario, schools: Schools, pupils: Pupils, rows, reports: np.ndarray, q_long: np.ndarray,
                  exposure: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict, dict]:
    """Thin the sick reports after consults (in place) and draw long spells, year by year.

    Returns ``(long_spells, columns, truth)`` with ``columns["mazl_signal"]`` (criterion met that
    year) and ``columns["mazl_consult"]`` (consult that year), one entry per row.
    """
    co = scen.consult
    p = rows.pupil
    offer = np.where(rows.vo, schools.vo_mazl[pupils.vo_school[p]], schools.po_mazl[rows.po_school])
    consulted = np.zeros(pupils.n, dtype=bool)
    long_sp = np.zeros(len(p), dtype=np.int32)
    signal = np.zeros(len(p), dtype=bool)
    consult = np.zeros(len(p), dtype=bool)
    for k in range(pupils.n_grades):
        idx = np.flatnonzero(rows.grade_index == k)
        pk = p[idx]
        after = idx[consulted[pk]]
        reports[after] = rng.binomial(reports[after], co.sick_rate_ratio)
        long_sp[idx] = rng.binomial(reports[idx], q_long[idx])
        weeks = exposure[idx] / 5.0
        met = (long_sp[idx] > 0) | window_criterion(reports[idx], weeks, co.criterion_reports, co.criterion_weeks,
                                                     rng)
        signal[idx] = met
        take = met & ~consulted[pk] & offer[idx] & (rng.random(len(idx)) < co.uptake)
        consult[idx] = take
        consulted[pk[take]] = True
    truth = {
        "mazl_sick_rate_ratio": co.sick_rate_ratio,
        "mazl_itt_sick_rate_ratio": 1.0 - co.uptake * (1.0 - co.sick_rate_ratio),
        "mazl_signal_share": {"po": float(signal[~rows.vo].mean()) if (~rows.vo).any() else None,
                              "vo": float(signal[rows.vo].mean()) if rows.vo.any() else None},
    }
    return long_sp, {"mazl_signal": signal, "mazl_consult": consult}, truth


def window_criterion(reports: np.ndarray, weeks: np.ndarray, k: int, window: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Whether ``k`` of a year's ``reports`` fall within ``window`` school weeks of each other.

    Report days are uniform over the ``weeks`` enrolled (vectorised over rows: the reports of all
    rows with at least ``k`` are placed, sorted within their row, and each run of ``k``
    consecutive reports is checked).
    """
    hit = np.zeros(len(reports), dtype=bool)
    cand = np.flatnonzero(reports >= k)
    if not len(cand):
        return hit
    owner = np.repeat(np.arange(len(cand)), reports[cand])
    t = rng.random(len(owner)) * weeks[cand][owner]
    order = np.lexsort((t, owner))
    t, owner = t[order], owner[order]
    ok = (owner[k - 1:] == owner[:len(owner) - k + 1]) & (t[k - 1:] - t[:len(t) - k + 1] <= window)
    hit[cand[owner[:len(owner) - k + 1][ok]]] = True
    return hit
