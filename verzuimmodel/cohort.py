"""The ``Cohort``: the five tables of a pupil cohort, plus the truth when simulated."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .schema import TABLES

__all__ = ["Cohort"]


@dataclass(frozen=True)
class Cohort:
    """A pupil cohort: ``schools``, ``pupils``, ``absence``, ``episodes`` and ``interventions``.

    Real cohorts come from :func:`verzuimmodel.read_cohort`; simulated ones from
    :func:`verzuimmodel.simulate`, which also fills ``truth`` (true parameters and
    estimands computed from potential outcomes) and ``scenario``.

    Attributes
    ----------
    schools, pupils, absence, episodes, interventions : pandas.DataFrame
        The tables declared in :data:`verzuimmodel.schema.TABLES`.
    truth : dict
        Empty for real data. For simulated data, see :func:`verzuimmodel.simulate`.
    scenario : Scenario or None
        The scenario a simulated cohort was drawn from.
    seed : int or None
        The seed a simulated cohort was drawn with.
    """

    schools: pd.DataFrame
    pupils: pd.DataFrame
    absence: pd.DataFrame
    episodes: pd.DataFrame
    interventions: pd.DataFrame
    truth: dict[str, Any] = field(default_factory=dict)
    scenario: Any = None
    seed: int | None = None

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The five tables by name, in dependency order."""
        return {name: getattr(self, name) for name in TABLES}

    @property
    def is_simulated(self) -> bool:
        return bool(self.truth)

    def to_parquet(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write every table (and ``truth.json`` / ``scenario.toml`` when simulated) to directory ``path``.

        Written atomically: files go to a temporary directory beside ``path`` that then takes its
        place, so an interrupted write leaves either the old directory or the new one. ``path``
        must be new or empty; an earlier output of the package is replaced only with
        ``overwrite=True``, and a directory the package did not write never (see
        :func:`verzuimmodel.io.write_cohort`).
        """
        from .io import write_cohort

        return write_cohort(self, path, fmt="parquet", overwrite=overwrite)

    def to_csv(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write every table as CSV to directory ``path`` (atomically, as :meth:`to_parquet`; text
        cells a spreadsheet would run as a formula are escaped, and read back exactly by
        :func:`verzuimmodel.read_cohort`)."""
        from .io import write_cohort

        return write_cohort(self, path, fmt="csv", overwrite=overwrite)

    def summary(self) -> pd.DataFrame:
        """Row counts per table."""
        return pd.DataFrame({"table": list(self.tables), "rows": [len(t) for t in self.tables.values()]})

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={len(v):,}" for k, v in self.tables.items())
        kind = "simulated" if self.is_simulated else "observed"
        return f"Cohort({kind}: {counts})"
