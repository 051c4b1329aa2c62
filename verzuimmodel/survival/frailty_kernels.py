r"""Compiled passes over the rows for the gamma-frailty Cox model (numba, compiled on first use by
:func:`._jit.jit`), used by :class:`~verzuimmodel.survival.penalised_frailty._Problem`, where the equations are.

The rows come sorted by group and, within a group, by the end of their window of event keys
(``hi``), so every per-group sum is a sum over a contiguous segment of rows and the sweep over a
group's risk total :math:`R_{jk}` reads only that segment. Row :math:`i` is at risk at the keys
:math:`lo_i \le k < hi_i`; per key the Cox engine's coefficients :math:`c_0..c_4` enter through their
prefix sums (``C0[k]`` is the sum of ``c0`` over the keys before ``k``). Covariates enter centred.
"""

from __future__ import annotations

import numpy as np

__all__ = ["frailty_point", "frailty_hessvec"]


def frailty_point(X, mu, w, r, lo, hi, event, seg, lo_order, C0, c1, PA, Aown, C0s, c1s, C2s, c3s, c4s,
                  efron):                                                  # pragma: no cover (numba)
    """Per row the expected events ``E`` and per group the frailties' score, cross and diagonal information.

    ``E_i = r_i (C0[hi] - C0[lo] - [death] c1[k_i])``; group ``j`` gets ``sum w (delta - E)`` (score),
    ``sum w (z E - Q)`` with ``Q_i = r_i (PA[hi] - PA[lo] - [death] Aown[k_i])`` (cross information) and
    ``sum w E' - sum_k [c2' R_jk^2 - 2 c3' R_jk D_jk + c4' D_jk^2]`` (diagonal information; the primed
    coefficients are R's, which differ with case weights), ``R_jk`` the group's risk total ``sum w r``
    at key ``k`` and ``D_jk`` its deaths' total there, by a sweep down the keys over the group's rows.
    ``lo_order`` lists each group's rows by ``lo``; it, ``lo`` and ``w`` are empty when trivial (every
    window starting at key 0, unit weights).
    """
    n, p = X.shape
    G = len(seg) - 1
    E = np.empty(n)
    grad_w = np.zeros(G)
    info_wb = np.zeros((G, p))
    info_ww = np.zeros(G)
    K = len(c1)
    weighted = len(w) == n
    starts = len(lo) == n
    leaves = len(lo_order) == n
    cross = np.zeros(p)
    for j in range(G):
        a, b = seg[j], seg[j + 1]
        sg = 0.0
        sd = 0.0
        for q in range(p):
            cross[q] = 0.0
        for i in range(a, b):
            h = hi[i]
            lw = lo[i] if starts else 0
            wi = w[i] if weighted else 1.0
            if event[i]:
                sg += wi
            if h <= lw:
                E[i] = 0.0
                continue
            ri = r[i]
            own = efron and event[i]
            e = C0[h] - C0[lw]
            es = C0s[h] - C0s[lw]
            if own:
                e -= c1[h - 1]
                es -= c1s[h - 1]
            Ei = ri * e
            E[i] = Ei
            sg -= wi * Ei
            sd += wi * ri * es
            for q in range(p):
                Q = PA[h, q] - PA[lw, q]
                if own:
                    Q -= Aown[h - 1, q]
                cross[q] += wi * ((X[i, q] - mu[q]) * Ei - ri * Q)
        grad_w[j] = sg
        for q in range(p):
            info_wb[j, q] = cross[q]
        # sweep down the keys: joins at hi - 1 (rows by hi, from the last), leaves at lo - 1
        R = 0.0
        sq = 0.0
        top = K
        ia = b - 1
        ir = b - 1
        while True:
            while ia >= a and hi[ia] <= (lo[ia] if starts else 0):
                ia -= 1
            if leaves:
                while ir >= a and (lo[lo_order[ir]] == 0 or hi[lo_order[ir]] <= lo[lo_order[ir]]):
                    ir -= 1
            nxt = -1
            if ia >= a:
                nxt = hi[ia] - 1
            if leaves and ir >= a:
                nxt = max(nxt, lo[lo_order[ir]] - 1)
            sq += R * R * (C2s[top] - C2s[nxt + 1])
            if nxt < 0:
                break
            D = 0.0
            while ia >= a and hi[ia] - 1 == nxt:
                if hi[ia] > (lo[ia] if starts else 0):
                    wr = r[ia] * (w[ia] if weighted else 1.0)
                    R += wr
                    if event[ia]:
                        D += wr
                ia -= 1
            if leaves:
                while ir >= a and lo[lo_order[ir]] - 1 == nxt:
                    i = lo_order[ir]
                    if hi[i] > lo[i]:
                        R -= r[i] * (w[i] if weighted else 1.0)
                    ir -= 1
            if efron and D != 0.0:
                sq += D * (c4s[nxt] * D - 2.0 * c3s[nxt] * R)
            top = nxt + 1
        info_ww[j] = sd - sq
    return E, grad_w, info_wb, info_ww


def frailty_hessvec(X, mu, w, r, E, lo, hi, add_bin, sub_bin, event, seg, key_stratum, c, vb, vw,
                    efron):                                                # pragma: no cover (numba)
    """The product of the information of (beta, omega) with the direction (vb, vw).

    With ``v_i = z_i'vb + vw[g_i]`` and ``y = w r v``: ``T_k`` the risk-set sums of ``y`` (and ``TD_k`` the
    deaths'), row ``i`` gets ``h_i = w_i (v_i E_i - Q_i)``, ``Q_i = r_i (sum over its window of
    T c2 - TD c3, minus T c3 - TD c4 at its own death)``; returns ``(sum h z, group sums of h)``.
    Centred covariates change ``v`` by a constant, which the information does not see. ``w``, ``lo`` and
    ``sub_bin`` are empty when trivial (unit weights, windows from key 0, no late entry).
    """
    n, p = X.shape
    G = len(seg) - 1
    K = c.shape[1]
    weighted = len(w) == n
    starts = len(lo) == n
    late = len(sub_bin) == n
    B = np.zeros(K)
    TD = np.zeros(K)
    for j in range(G):
        for i in range(seg[j], seg[j + 1]):
            a = add_bin[i]
            if a < 0:
                continue
            v = vw[j]
            for q in range(p):
                v += (X[i, q] - mu[q]) * vb[q]
            y = r[i] * v
            if weighted:
                y *= w[i]
            B[a] += y
            if late:
                s = sub_bin[i]
                if s >= 0:
                    B[s] -= y
            if efron and event[i]:
                TD[a] += y
    PT = np.zeros(K + 1)      # prefix sums of T c2 - TD c3
    own = np.zeros(K)
    acc = 0.0
    T = np.empty(K)
    for k in range(K - 1, -1, -1):
        if k < K - 1 and key_stratum[k] != key_stratum[k + 1]:
            acc = 0.0
        acc += B[k]
        T[k] = acc
    for k in range(K):
        PT[k + 1] = PT[k] + T[k] * c[2, k] - TD[k] * c[3, k]
        own[k] = T[k] * c[3, k] - TD[k] * c[4, k]
    out_b = np.zeros(p)
    out_w = np.zeros(G)
    for j in range(G):
        sw = 0.0
        for i in range(seg[j], seg[j + 1]):
            h = hi[i]
            lw = lo[i] if starts else 0
            if h <= lw:
                continue
            v = vw[j]
            for q in range(p):
                v += (X[i, q] - mu[q]) * vb[q]
            Q = PT[h] - PT[lw]
            if efron and event[i]:
                Q -= own[h - 1]
            hval = v * E[i] - r[i] * Q
            if weighted:
                hval *= w[i]
            sw += hval
            for q in range(p):
                out_b[q] += hval * (X[i, q] - mu[q])
        out_w[j] = sw
    return out_b, out_w
