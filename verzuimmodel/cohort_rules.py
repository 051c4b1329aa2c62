"""Rules between the tables of a cohort: foreign keys, the levels of schools, interventions within
their episode, and follow-up that covers the pupil's episodes and interventions (``validate_cohort``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .column_types import _missing
from .i18n import Message
from .schema import LEVELS, TABLES, SchemaError
from .table_checks import _check, _table, validate_table

__all__ = ["validate_cohort"]


def _positions(child: pd.Series, parent: pd.Series) -> np.ndarray:
    """For each value of ``child``, its row position in the key column ``parent``.

    -1 where ``child`` is missing or its value does not occur in ``parent``. Integer and text
    identifiers are compared as text when the two columns differ in kind.
    """
    present = ~_missing(child)
    values = child[present] if not present.all() else child
    if (values.dtype == object) != (parent.dtype == object):
        values, parent = values.astype(str), parent.astype(str)
    elif values.dtype != object:
        values = values.to_numpy(dtype=np.int64)
    pos = np.full(len(child), -1, dtype=np.intp)
    pos[present] = pd.Index(parent).get_indexer(values)
    return pos


def _foreign_keys(tables: dict[str, pd.DataFrame]) -> dict[tuple[str, str], np.ndarray]:
    """Check every foreign key; return the referenced row positions per (table, column)."""
    links = {}
    for name, table in TABLES.items():
        for column, (ref_table, ref_column) in table.foreign_keys.items():
            child = tables[name][column]
            pos = _positions(child, tables[ref_table][ref_column])
            _check(~_missing(child) & (pos < 0), name, column,
                   Message("schema.not_in_reference", ref_table=ref_table, ref_column=ref_column),
                   Message("expected.reference_values", ref_table=ref_table, ref_column=ref_column), child)
            links[name, column] = pos
    return links


def _level_codes(tables: dict[str, pd.DataFrame], pos: np.ndarray) -> np.ndarray:
    """The level code (index into LEVELS) of the schools at row positions ``pos``."""
    return tables["schools"]["level"].cat.codes.to_numpy()[pos]


def _school_levels(tables: dict[str, pd.DataFrame], links: dict) -> None:
    absence = tables["absence"]
    school_level = _level_codes(tables, links["absence", "school_id"])
    _check(school_level != absence["level"].cat.codes.to_numpy(), "absence", "level",
           Message("schema.level_differs"), Message("expected.school_level"), absence, ["school_id", "level"])
    for column, level in (("po_school_id", "po"), ("vo_school_id", "vo")):
        pos = links["pupils", column]
        bad = (pos >= 0) & (_level_codes(tables, pos) != list(LEVELS).index(level))
        _check(bad, "pupils", column, Message("schema.wrong_level", level=level.upper()),
               Message("expected.level", level=level), tables["pupils"][column])


def _interventions_in_episodes(tables: dict[str, pd.DataFrame], links: dict) -> None:
    interventions, episodes = tables["interventions"], tables["episodes"]
    episode = links["interventions", "episode_id"]
    episode_pupil = links["episodes", "pupil_id"][episode]
    _check(links["interventions", "pupil_id"] != episode_pupil, "interventions", "pupil_id",
           Message("schema.pupil_differs"), Message("expected.episode_pupil"), interventions,
           ["pupil_id", "episode_id"])
    start = interventions["start_date"].to_numpy()
    episode_start = episodes["start_date"].to_numpy()[episode]
    episode_end = episodes["end_date"].to_numpy()[episode]
    outside = (start < episode_start) | (start > episode_end)  # comparisons with NaT are False
    _check(outside, "interventions", "start_date", Message("schema.outside_episode"),
           Message("expected.within_episode"), interventions["start_date"])


def _followup_covers_episodes(tables: dict[str, pd.DataFrame], links: dict) -> None:
    pupils, episodes = tables["pupils"], tables["episodes"]
    pupil = links["episodes", "pupil_id"]
    early = episodes["start_date"].to_numpy() > pupils["followup_end"].to_numpy()[pupil]
    bad = np.zeros(len(pupils), dtype=bool)
    bad[pupil[early]] = True
    _check(bad, "pupils", "followup_end", Message("schema.followup_before_episode"),
           Message("expected.followup_after_episodes"), pupils["followup_end"])
    _after_followup(tables, links, "episodes", "end_date", Message("expected.end_within_followup"))


def _followup_covers_interventions(tables: dict[str, pd.DataFrame], links: dict) -> None:
    _after_followup(tables, links, "interventions", "start_date", Message("expected.start_within_followup"))


def _after_followup(tables: dict[str, pd.DataFrame], links: dict, table: str, column: str,
                    expected: Message) -> None:
    """Refuse dates in ``table.column`` after the followup_end of the row's pupil."""
    df = tables[table]
    followup_end = tables["pupils"]["followup_end"].to_numpy()[links[table, "pupil_id"]]
    late = df[column].to_numpy() > followup_end  # comparisons with NaT are False
    if late.any():
        shown = pd.DataFrame({"pupil_id": df["pupil_id"], column: df[column], "followup_end": followup_end})
        _check(late, table, column, Message("schema.after_followup", column=column), expected, shown)


_COHORT_RULES = (_school_levels, _interventions_in_episodes, _followup_covers_episodes,
                 _followup_covers_interventions)
"""Rules between tables, run after the foreign keys are valid."""


def validate_cohort(tables: dict[str, pd.DataFrame], *, copy: bool = True) -> dict[str, pd.DataFrame]:
    """Validate the five tables of a cohort and the rules between them.

    Parameters
    ----------
    tables : mapping from table name to DataFrame; all five tables of :data:`TABLES` (an empty
        table may come from :func:`empty_table`).
    copy : passed to :func:`validate_table`.

    Returns
    -------
    dict
        The normalised tables (see :func:`validate_table`), in the order of :data:`TABLES`.

    Raises
    ------
    SchemaError
        On the first problem: a table missing or unknown; any problem of :func:`validate_table`;
        a foreign key value without its referenced row (missing values of nullable foreign keys
        are skipped); an absence row whose ``level`` differs from its school's level; a pupil whose
        ``po_school_id`` is not a PO school or ``vo_school_id`` not a VO school; an intervention whose
        pupil differs from its episode's pupil or that starts outside its episode (an episode
        without ``end_date`` is open); a pupil whose ``followup_end`` is before the start of one of
        their episodes; an episode whose ``end_date``, or an intervention whose ``start_date``, is
        after the pupil's ``followup_end`` (an episode still running when follow-up ends is
        censored then). Rows are reported in the table named by the error.

    Notes
    -----
    Only rules that hold for every correct registration are checked. For example a pupil may
    have more sick reports than sick days (half days, or a sick report in the previous school
    year), so that is not checked.
    """
    for name in tables:
        _table(name)
    for name in TABLES:
        if name not in tables:
            raise SchemaError(name, None, Message("schema.table_missing"),
                              expected=Message("expected.all_of", tables=", ".join(TABLES)))
    out = {name: validate_table(name, tables[name], copy=copy) for name in TABLES}
    links = _foreign_keys(out)
    for rule in _COHORT_RULES:
        rule(out, links)
    return out
