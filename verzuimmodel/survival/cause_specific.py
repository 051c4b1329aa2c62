r"""Cause-specific Cox models of competing outcomes: one Cox model per outcome, the other outcomes censored.

A cause-specific hazard is the rate at which episodes end in one outcome among those still running.
It works with start–stop rows (time-varying in-episode interventions, late entry); for the cumulative
incidence of an outcome see the Fine–Gray model (:mod:`~verzuimmodel.survival.competing`).
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import pandas as pd

from ..errors import ConvergenceError
from ..schema import SchemaError
from ..tidy import tidy_table
from ._data import survival_data
from .formula import dropped_note, model_design, with_n_dropped

__all__ = ["CauseSpecificCox"]


class CauseSpecificCox:
    r"""Cause-specific Cox models: one :class:`~verzuimmodel.survival.CoxPH` per competing outcome.

    For cause :math:`k` the hazard :math:`h_k(t \mid x) = h_{0k}(t)\exp(x'\beta_k)` is fitted with
    the other outcomes treated as censoring at their time — the rate at which episodes end in
    outcome :math:`k` among those still running. Unlike :class:`~verzuimmodel.survival.competing.FineGray`
    this works with start–stop rows (time-varying in-episode interventions, late entry), but a
    cause-specific hazard ratio does not translate one-to-one into a cumulative incidence.

    Parameters are those of :class:`~verzuimmodel.survival.CoxPH`; ``causes`` restricts the causes
    fitted (default: every cause present).

    Attributes (after ``fit``): ``models_`` (cause -> fitted CoxPH), ``causes_``; over the causes fitted
    together, as R's multi-state ``coxph(Surv(time, factor(status)) ~ ...)``: ``log_likelihood_`` (the sum
    of theirs), ``n_events_`` (all their events), ``aic_`` and ``bic_`` (``-2 loglik + 2 p`` and
    ``-2 loglik + p log(n_events_)``, ``p`` all coefficients: R's ``AIC`` and ``BIC``).
    """

    def __init__(self, ties: Literal["efron", "breslow"] = "efron", level: float = 0.95,
                 causes: Sequence[int] | None = None):
        from .cox import CoxPH

        CoxPH(ties=ties, level=level)            # checks the options
        self.ties, self.level = ties, level
        self.causes = None if causes is None else [int(c) for c in causes]

    def fit(self, df: pd.DataFrame, duration: str, event: str, covariates: Sequence[str] | None = None,
            **kwargs) -> "CauseSpecificCox":
        """Fit one Cox model per cause; ``event`` holds 0 (censored) or the cause 1..K.

        Keyword arguments (``entry``, ``strata``, ``weights``, ``cluster``, ``formula``, ``na_action``, ...)
        go to every :meth:`CoxPH.fit <verzuimmodel.survival.CoxPH.fit>`; ``n_dropped_`` counts the rows
        dropped for missing values. Without any event (every row censored) it raises
        :class:`~verzuimmodel.errors.ConvergenceError`; a requested cause without events a
        :class:`~verzuimmodel.schema.SchemaError`.
        """
        from .cox import CoxPH

        des = model_design(df, "CauseSpecificCox", formula=kwargs.get("formula"), covariates=covariates,
                           na_action=kwargs.get("na_action", "raise"), columns=(duration, event, kwargs.get("entry"),
                           kwargs.get("weights"), kwargs.get("offset")),
                           specials={"strata": kwargs.get("strata"), "cluster": kwargs.get("cluster")})
        with des.original_rows():
            d = survival_data(des.data, duration=duration, event=event, covariates=des.covariates, kind="causes")
        present = sorted(int(c) for c in np.unique(d.event) if c > 0)
        if not present:
            raise ConvergenceError(f"CauseSpecificCox: no row of '{event}' ends in an event (all {d.n:,} censored): "
                                   "a cause-specific Cox model needs events of at least one cause")
        causes = present if self.causes is None else self.causes
        missing = [c for c in causes if c not in present]
        if missing:
            raise SchemaError("data", event, f"no events of cause(s) {missing}", expected=f"one of {present}")
        self.models_ = {}
        ev = pd.to_numeric(df[event], errors="coerce")     # missing: dropped again by each fit
        for k in causes:
            one = df.assign(_cause_event=(ev == k).astype(float).where(ev.notna()))
            self.models_[k] = CoxPH(ties=self.ties, level=self.level).fit(
                one, duration=duration, event="_cause_event", covariates=covariates, **kwargs)
        self.causes_, self.n_dropped_ = causes, des.n_dropped
        fits = self.models_.values()
        self.log_likelihood_ = float(sum(m.log_likelihood_ for m in fits))
        self.n_obs_, self.n_events_ = d.n, sum(m.n_events_ for m in fits)
        p = sum(len(m.params_) for m in fits)
        self.aic_ = -2 * self.log_likelihood_ + 2 * p
        self.bic_ = -2 * self.log_likelihood_ + np.log(self.n_events_) * p
        return self

    def tidy(self) -> pd.DataFrame:
        """The tidy tables of the causes, stacked, with a ``cause`` column first."""
        out = pd.concat([m.tidy().assign(cause=k) for k, m in self.models_.items()], ignore_index=True)
        return with_n_dropped(out[["cause", *tidy_table(pd.Series(dtype=float), pd.Series(dtype=float)).columns]], self)

    def __repr__(self) -> str:
        head = f"CauseSpecificCox(ties={self.ties!r})"
        if not hasattr(self, "models_"):
            return head
        return (f"{head}: causes {', '.join(map(str, self.causes_))}, n={self.n_obs_:,}, events={self.n_events_:,}, "
                f"loglik={self.log_likelihood_:.4f}, AIC={self.aic_:.2f}, BIC={self.bic_:.2f}{dropped_note(self)}\n"
                f"{self.tidy().to_string(index=False)}")
