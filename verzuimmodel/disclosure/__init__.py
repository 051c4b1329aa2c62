"""Disclosure control for published tables: nothing may reveal a count of 1 to 9 pupils.

Every output that leaves the analyst — monitor tables and charts, report tables and figures —
goes through this package:

- :mod:`._rules` — the threshold rule for single cells: :data:`MIN_COUNT`,
  :func:`suppress_counts`, :func:`suppress_shares`, :func:`label`;
- :mod:`.cells` — a set of outputs produced together as cells and the linear identities that link
  them (:class:`CellSet`, built with :class:`CellBuilder`);
- :mod:`.suppress` — primary and complementary (secondary) suppression over those identities
  (:func:`protect`);
- :mod:`.audit` — the proof: every hidden cell's interval as an attacker can narrow it, by linear
  programming (:func:`audit`).

Hiding cells one at a time is not enough: when ``stock_end = stock_start + inflow - outflow``
holds and three of the four are shown, the fourth is known. :func:`protect` hides further cells
until :func:`audit` finds no hidden cell the shown ones pin down.

Limits (what per-output suppression cannot do): two outputs on *overlapping data* — a report on
all schools and one on all schools but one, or the same monitor run on data that differ by a
few pupils, or with a different ``data_end`` — can be subtracted cell by cell, and no
suppression pattern chosen for each output alone prevents that. Publish one of them only, or
protect them together (build one :class:`CellSet` over both). The audit knows the identities the
package writes into a :class:`CellSet`; an attacker with outside knowledge (that a pupil was out
of school, say) knows more. Zeros are shown: a zero tells that no pupil of a group had some
outcome (that *all* did the other), which the threshold rule allows.
"""

from ._rules import MIN_COUNT, label, suppress_counts, suppress_shares
from .audit import AUDIT_COLUMNS, AuditError, audit
from .cells import CellBuilder, CellSet
from .suppress import DisclosureWarning, Protection, primary, protect, protect_hierarchy

__all__ = ["MIN_COUNT", "suppress_counts", "suppress_shares", "label", "CellSet", "CellBuilder", "audit",
           "AUDIT_COLUMNS", "AuditError", "protect", "protect_hierarchy", "Protection", "primary",
           "DisclosureWarning", "hide"]


def hide(table, cs: CellSet, hidden, name: str):
    """Copy of ``table`` (the cells of ``cs`` with ``table == name``) with the hidden cells missing.

    Count columns become ``Int64`` and share columns ``Float64``, hidden cells ``<NA>``.
    """
    import numpy as np

    out = table.copy()
    c = cs.cells
    mine = (c["table"] == name).to_numpy() & cs.published
    for column, kind in c.loc[mine, ["column", "kind"]].drop_duplicates().itertuples(index=False):
        sel = mine & (c["column"] == column).to_numpy()
        rows = c.loc[sel & np.asarray(hidden, dtype=bool), "row"].to_numpy()
        col = out[column].astype("Int64" if kind == "count" else "Float64")
        mask = np.zeros(len(out), dtype=bool)
        mask[rows] = True
        out[column] = col.mask(mask)
    return out
