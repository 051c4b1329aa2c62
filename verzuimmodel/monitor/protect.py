r"""Disclosure control of the monitor's tables as one set of outputs.

The quarterly table and the running durations at every grouping level are cells of one
:class:`~verzuimmodel.disclosure.CellSet`, with the identities an attacker can use (for every
group :math:`g`, case type :math:`c` and quarter :math:`t`):

.. math::

    \text{stock\_end}_t &= \text{stock\_start}_t + \text{inflow}_t - \text{outflow}_t,
    \qquad \text{stock\_start}_{t+1} = \text{stock\_end}_t,\\
    \text{outflow}_t &= \textstyle\sum_k \text{outflow}_{k,t},
    \qquad \text{inflow}_t = \text{recurrent\_inflow}_t + \text{first}_t,\\
    \text{stock\_end}_t &= \text{new}_t + \text{old}_t,\quad \text{new}_t \le \text{inflow}_t,\quad
    \text{old}_t \le \text{stock\_start}_t,\quad \text{inflow}_t - \text{outflow}_t \le \text{new}_t,\\
    \text{inflow}_t &= \text{within}_t + \text{later}_t,
    \qquad \text{stock\_end}_t = \textstyle\sum_d \text{count}_{d,t}\ \text{(duration bands)},\\
    x_{\text{parent}} &= \textstyle\sum_{g \in \text{parent}} x_g \quad \text{(school} \to
    \text{region} \to \text{all, every column)},\\
    x^{\text{LRV}>3m} &\le x^{\text{LRV}} \quad \text{(stock, outflow by outcome, duration bands)}.

``new`` = ``turnover`` :math:`\times` ``stock_end`` and ``within`` = ``outcome_within_3m``
:math:`\times` ``inflow`` are printed through their shares (hiding the denominator hides the
share); ``first``, ``old`` and ``later`` are implied counts, protected like printed ones.

Levels are protected from the coarsest down (everything together, then regions, then schools),
each with the coarser patterns fixed: the table for everything together is the same whether it
is asked for alone or beside the regions, so two monitor runs with different ``--by`` on the
same data are one protected publication.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..disclosure import CellBuilder, CellSet, hide, protect_hierarchy
from ..schema import OUTCOMES

__all__ = ["protect_levels", "monitor_cells"]

FLOW_COUNTS = ["stock_start", "inflow", "outflow", "stock_end", "recurrent_inflow", *[f"outflow_{o}" for o in OUTCOMES]]
BACKTRACK_LEVELS = 2
"""Levels below this (the regions) widen the coarser ones when they cannot be protected."""
SHARES = {"turnover": ("n_new", "stock_end"), "outcome_within_3m": ("n_within_3m", "inflow")}
"""Published share -> (its numerator column, its denominator column)."""


def _key(t: pd.DataFrame, cols) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(t[cols].astype(str))


def _lookup(keys: pd.MultiIndex, want: pd.MultiIndex, idx: np.ndarray) -> np.ndarray:
    """Cell indices ``idx`` (aligned with ``keys``) for the rows ``want`` (-1 where absent)."""
    pos = keys.get_indexer(want)
    return np.where(pos >= 0, idx[np.maximum(pos, 0)], -1)


def _level_cells(b: CellBuilder, name: str, q: pd.DataFrame, d: pd.DataFrame, level: int) -> dict:
    """Cells and within-level identities of one level's quarterly table ``q`` and durations ``d``."""
    tq, td = f"quarterly/{name}", f"durations/{name}"
    n = len(q)
    rows = np.arange(n)
    # the audit solves programmes over a few consecutive quarters at a time first (every group)
    quarters = pd.Index(np.sort(pd.unique(pd.concat([q["quarter"], d["quarter"]]).astype(str))))
    uq, ud = quarters.get_indexer(q["quarter"].astype(str)), quarters.get_indexer(d["quarter"].astype(str))
    ix = {c: b.cells(tq, rows, c, q[c].to_numpy(), "count", level, unit=uq) for c in FLOW_COUNTS}
    b.identity([(1, ix["stock_end"]), (-1, ix["stock_start"]), (-1, ix["inflow"]), (1, ix["outflow"])])
    b.equal(ix["outflow"], [ix[f"outflow_{o}"] for o in OUTCOMES])
    first = b.cells(tq, rows, "first_inflow", (q["inflow"] - q["recurrent_inflow"]).to_numpy(), "implied", level,
                    unit=uq)
    b.equal(ix["inflow"], [ix["recurrent_inflow"], first])
    for share, (num, den) in SHARES.items():
        has = q[share].notna().to_numpy()
        r = rows[has]
        s = np.full(n, -1)
        s[has] = b.cells(tq, r, share, q.loc[has, num].to_numpy(), "share", level, unit=uq[has])
        rest = b.cells(tq, r, f"{share}_complement", (q.loc[has, den] - q.loc[has, num]).to_numpy(), "implied",
                       level, unit=uq[has])
        b.equal(ix[den][has], [s[has], rest])
        b.link(ix[den][has], s[has])
        if share == "turnover":
            b.at_most(s[has], ix["inflow"][has])
            b.at_most(rest, ix["stock_start"][has])
            b.less_equal([(1, ix["inflow"][has]), (-1, ix["outflow"][has]), (-1, s[has])])
        ix[share] = s
    # a stock at the end of a quarter is the stock at the start of the next
    nxt = (q["group"].shift(-1) == q["group"]) & (q["case_type"].shift(-1) == q["case_type"])
    nxt = nxt.to_numpy()
    b.same(ix["stock_end"][:-1][nxt[:-1]], ix["stock_start"][1:][nxt[:-1]])
    # running durations: the bands add up to the stock at the end of the quarter
    dix = b.cells(td, np.arange(len(d)), "count", d["count"].to_numpy(), "count", level, unit=ud)
    qkey = _key(q, ["quarter", "group", "case_type"])
    dkey = _key(d, ["quarter", "group", "case_type"])
    stock = _lookup(qkey, dkey, ix["stock_end"])
    totals, where = np.unique(stock[stock >= 0], return_inverse=True)
    b.group_sum(totals, dix[stock >= 0], where)
    ix["count"] = dix
    # LRV for more than three months is a subset of LRV for more than four weeks
    for table, cols, keys in ((q, ["stock_end", *[f"outflow_{o}" for o in OUTCOMES]], ["quarter", "group"]),
                              (d, ["count"], ["quarter", "group", "duration"])):
        sub, sup = table["case_type"] == "LRV_3m", table["case_type"] == "LRV"
        k_sup = _key(table[sup], keys)
        k_sub = _key(table[sub], keys)
        for c in cols:
            big = _lookup(k_sup, k_sub, ix[c][sup.to_numpy()])
            small = ix[c][sub.to_numpy()]
            b.at_most(small[big >= 0], big[big >= 0])
    return ix


def monitor_cells(levels: list[tuple[str, pd.DataFrame, pd.DataFrame]], parents: list[dict | None]) -> CellSet:
    """The :class:`CellSet` of the monitor tables at several grouping levels, coarsest first.

    ``levels``: (name, quarterly table with ``n_new, n_within_3m``, durations table) per level;
    ``parents[k]``: for level ``k`` > 0, a dict mapping each group to its group one level up.
    """
    b = CellBuilder()
    ixs = []
    for k, (name, q, d) in enumerate(levels):
        ix = _level_cells(b, name, q, d, k)
        if k:
            _, pq, pd_ = levels[k - 1]
            parent = parents[k]
            for table, ptable, cols, keys in ((q, pq, [*FLOW_COUNTS, *SHARES], ["quarter", "group", "case_type"]),
                                              (d, pd_, ["count"], ["quarter", "group", "case_type", "duration"])):
                up = table.assign(group=table["group"].map(parent))
                pkey, ckey = _key(ptable, keys), _key(up, keys)
                for c in cols:
                    pidx = _lookup(pkey, ckey, ixs[-1][c])
                    child = ix[c]
                    ok = (pidx >= 0) & (child >= 0)
                    totals, where = np.unique(pidx[ok], return_inverse=True)
                    # parents whose children are all absent (zero) stay out: no identity to write
                    b.group_sum(totals, child[ok], where)
        ixs.append(ix)
    return b.build()


def protect_levels(levels: list[tuple[str, pd.DataFrame, pd.DataFrame]], parents: list[dict | None],
                   min_count: int, knows_status: bool = False, out: int = -1):
    """Protect the levels from the coarsest down; return level ``out``'s tables and the audit.

    Returns ``(quarterly, durations, audit)`` of level ``out`` (default the finest), hidden cells
    missing; the audit covers that level and the coarser ones (as published beside it).

    The levels are protected by :func:`verzuimmodel.disclosure.protect_hierarchy`: a region that
    cannot be protected widens the pattern of the total (backtracking); a school that cannot does
    not (:data:`BACKTRACK_LEVELS`). Every ``by`` protects the total and the regions, so the tables
    of every ``by`` stay parts of one publication.
    """
    cs = monitor_cells(levels, parents)
    hidden, prot = protect_hierarchy(cs, min_count, knows_status=knows_status, backtrack_levels=BACKTRACK_LEVELS)
    out %= len(levels)
    name, q, d = levels[out]
    q = hide(q, cs, hidden, f"quarterly/{name}")
    d = hide(d, cs, hidden, f"durations/{name}")
    published = {f"{t}/{lv[0]}" for lv in levels[:out + 1] for t in ("quarterly", "durations")}
    return q, d, prot.audit[prot.audit["table"].isin(published)].reset_index(drop=True)
