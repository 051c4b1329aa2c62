r"""Compiled passes over the rows for the Cox partial likelihood (numba, compiled on first use by :func:`._jit.jit`).

Used by :class:`~verzuimmodel.survival.risk_sets.RiskSets`, where the equations are. The rows need
no order: row :math:`i` is at risk at the event keys :math:`lo_i \le k < hi_i` (positions among the
sorted distinct (stratum, event time) keys of the data), and its sums go to the bins of the keys
where its window ends (``add_bin = hi - 1``) and, with late entry inside its stratum, where it
begins (``sub_bin = lo - 1``, subtracted). Sums over the bins from the last key of a stratum down to
key :math:`k` are then the risk-set sums at :math:`k`. With ties the bins are few (one per event
time) and stay in the cache whatever the row order; with many distinct event times
:class:`~verzuimmodel.survival.CoxPH` first sorts the rows by event time. Covariates enter centred
(``x - mu``, as R's ``coxph``), which keeps the second moments accurate when a covariate's mean is
large beside its spread.

Sums of all rows into one total (the means, the deaths' covariate sum, the information's weighted
Gram matrix) are taken in blocks of 1,024 rows added to the total, so their rounding error grows
with the number of blocks plus the block size, not with the number of rows; a key's bin adds its
rows one after the other.
"""

from __future__ import annotations

import numpy as np

__all__ = ["windows", "counting_order", "linear_predictor", "first_moments", "per_key", "weighted_gram", "score_rows",
           "column_summary", "column_means", "group_ranges", "event_sums"]

_BLOCK = 1023          # rows per block of a long sum, minus one (a mask)


def windows(pair_exit, pair_entry, pair_stratum, event, w):              # pragma: no cover (numba)
    """Event keys and each row's window of them, from the rows' (stratum, time) pairs.

    ``pair_exit`` (and ``pair_entry``, -1 for none; empty without entry times) are positions among
    the sorted distinct (stratum, time) pairs, of stratum ``pair_stratum``. The event keys are the
    pairs with a death. Returns ``(codes: the event keys' pairs, hi, lo, add_bin, sub_bin, m, dw)``:
    row ``i`` is at risk at keys ``lo_i <= k < hi_i``, its sums go to ``add_bin`` (``hi - 1``) and,
    entering after its stratum's first key, from ``sub_bin`` (``lo - 1``); -1 for none. ``m`` and
    ``dw`` are the number and weight of the deaths per key.
    """
    n = len(pair_exit)
    P = len(pair_stratum)
    mark = np.zeros(P, dtype=np.bool_)
    for i in range(n):
        if event[i]:
            mark[pair_exit[i]] = True
    count = np.empty(P, dtype=np.int64)      # event keys at or before each pair
    first = np.empty(P, dtype=np.int64)      # event keys before each pair's stratum
    c = 0
    f = 0
    for j in range(P):
        if j == 0 or pair_stratum[j] != pair_stratum[j - 1]:
            f = c
        first[j] = f
        if mark[j]:
            c += 1
        count[j] = c
    codes = np.empty(c, dtype=np.int64)
    k = 0
    for j in range(P):
        if mark[j]:
            codes[k] = j
            k += 1
    hi = np.empty(n, dtype=np.int64)
    lo = np.empty(n, dtype=np.int64)
    add_bin = np.empty(n, dtype=np.int64)
    sub_bin = np.empty(n, dtype=np.int64)
    m = np.zeros(c, dtype=np.int64)
    dw = np.zeros(c)
    has_entry = len(pair_entry) == n
    for i in range(n):
        je = pair_exit[i]
        h = count[je]
        f = first[je]
        lw = f
        if has_entry and pair_entry[i] >= 0:
            lw = count[pair_entry[i]]
        hi[i] = h
        lo[i] = lw
        add_bin[i] = h - 1 if h > lw else -1
        sub_bin[i] = lw - 1 if h > lw and lw > f else -1
        if event[i]:
            m[h - 1] += 1
            dw[h - 1] += w[i]
    return codes, hi, lo, add_bin, sub_bin, m, dw


def counting_order(key, n_keys):                                          # pragma: no cover (numba)
    """The stable order of the rows by ``key`` (integers ``0 <= key < n_keys``), by counting."""
    n = len(key)
    start = np.zeros(n_keys + 1, dtype=np.int64)
    for i in range(n):
        start[key[i] + 1] += 1
    for k in range(n_keys):
        start[k + 1] += start[k]
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        k = key[i]
        order[start[k]] = i
        start[k] += 1
    return order


def linear_predictor(X, beta, off):                                        # pragma: no cover (numba)
    """``eta = X beta + off`` row by row (the same order of terms for every row: equal rows, equal eta)
    and its maximum."""
    n, p = X.shape
    eta = np.empty(n)
    top = -np.inf
    for i in range(n):
        e = off[i]
        for j in range(p):
            e += X[i, j] * beta[j]
        eta[i] = e
        if e > top:
            top = e
    return eta, top if n > 0 else 0.0


def event_sums(X, mu, w, event):                                           # pragma: no cover (numba)
    """``sum over deaths of w (x - mu)`` (the data's part of the score)."""
    n, p = X.shape
    out = np.zeros(p)
    blk = np.zeros(p)
    for i in range(n):
        if event[i]:
            for j in range(p):
                blk[j] += w[i] * (X[i, j] - mu[j])
        if (i & _BLOCK) == _BLOCK:
            out += blk
            blk[:] = 0.0
    return out + blk


def first_moments(X, mu, eta, r, w, add_bin, sub_bin, event, K, efron):   # pragma: no cover (numba)
    """One pass over the rows: per key bin, the sums of ``w r (1, x - mu)`` (rows' window ends added, late
    entries subtracted: ``B``) and of the deaths (``D``, Efron only), with ``r = exp(eta - shift)``
    given (numpy's vectorised exp is faster than one per row here).

    ``w`` is empty for unit weights and ``sub_bin`` empty when no row enters late (nothing to read).
    Returns ``(B (K x (1+p)), D (K x (1+p)), sum over deaths of w eta)``.
    """
    n, p = X.shape
    q = p + 1
    weighted = len(w) == n
    late = len(sub_bin) == n
    B = np.zeros((K, q))
    D = np.zeros((K, q))
    z = np.empty(p)
    ev_eta = 0.0
    for i in range(n):
        a = add_bin[i]
        if a < 0:
            continue
        wi = w[i] if weighted else 1.0
        wr = wi * r[i]
        for j in range(p):
            z[j] = wr * (X[i, j] - mu[j])
        B[a, 0] += wr
        for j in range(p):
            B[a, 1 + j] += z[j]
        if late:
            s = sub_bin[i]
            if s >= 0:
                B[s, 0] -= wr
                for j in range(p):
                    B[s, 1 + j] -= z[j]
        if event[i]:
            ev_eta += wi * eta[i]
            if efron:
                D[a, 0] += wr
                for j in range(p):
                    D[a, 1 + j] += z[j]
    return B, D, ev_eta


def per_key(B, D, m, dw, key_stratum, efron, shift, want_info):           # pragma: no cover (numba)
    """Risk-set sums by suffix sums of the bins within each stratum; Efron's (or Breslow's) terms per key.

    Returns ``(S (K x (1+p)) risk-set sums of w r (1, x - mu), c (5 x K) the coefficients c0..c4,
    -sum_k sum_l wbar (log den_kl + shift), the risk sets' part of the score, of the information
    (lower triangle; zero unless ``want_info``), ok)``; ``ok`` is False when a risk set underflows
    (``den <= 0``), and the rest is then incomplete.
    """
    K, q = B.shape
    p = q - 1
    S = np.empty((K, q))
    acc = np.zeros(q)
    for k in range(K - 1, -1, -1):
        if k < K - 1 and key_stratum[k] != key_stratum[k + 1]:
            acc[:] = 0.0
        for j in range(q):
            acc[j] += B[k, j]
            S[k, j] = acc[j]
    c = np.zeros((5, K))
    ll = 0.0
    grad = np.zeros(p)
    info = np.zeros((p, p))
    for k in range(K):
        S0 = S[k, 0]
        D0 = D[k, 0]
        mk = m[k]
        W = dw[k]
        c0 = c1 = c2 = c3 = c4 = 0.0
        if efron and mk > 1:
            wbar = W / mk
            logs = 0.0
            for l in range(mk):
                f = l / mk
                den = S0 - f * D0
                if not den > 0:
                    return S, c, -np.inf, grad, info, False
                inv = wbar / den
                c0 += inv
                c1 += inv * f
                inv2 = inv / den
                c2 += inv2
                c3 += inv2 * f
                c4 += inv2 * f * f
                logs += np.log(den)
            ll -= wbar * logs + W * shift
        else:
            if not S0 > 0:
                return S, c, -np.inf, grad, info, False
            c0 = W / S0
            c2 = c0 / S0
            ll -= W * (np.log(S0) + shift)
        c[0, k] = c0
        c[1, k] = c1
        c[2, k] = c2
        c[3, k] = c3
        c[4, k] = c4
        for j in range(p):
            grad[j] -= c0 * S[k, 1 + j] - c1 * D[k, 1 + j]
        if want_info:
            for a in range(p):
                sa = S[k, 1 + a]
                da = D[k, 1 + a]
                for b in range(a + 1):
                    sb = S[k, 1 + b]
                    db = D[k, 1 + b]
                    info[a, b] -= c2 * sa * sb - c3 * (sa * db + da * sb) + c4 * da * db
    return S, c, ll, grad, info, True


def weighted_gram(X, mu, w, r, lo, hi, event, C0, c1, efron):              # pragma: no cover (numba)
    """``sum_i u_i (x_i - mu)(x_i - mu)'`` (lower triangle), ``u_i = w_i r_i (C0[hi_i] - C0[lo_i])`` minus
    ``w_i r_i c1[k_i]`` for a death at key ``k_i`` (Efron; ``C0`` the prefix sums of c0, from 0). ``w`` is
    empty for unit weights, ``lo`` empty when every window starts at key 0. By blocks of rows: the
    weights ``u`` of a block first, then each pair of columns over the block (its sum in a register)."""
    n, p = X.shape
    weighted = len(w) == n
    starts = len(lo) == n
    out = np.zeros((p, p))
    u = np.empty(_BLOCK + 1)
    for i0 in range(0, n, _BLOCK + 1):
        i1 = min(n, i0 + _BLOCK + 1)
        for i in range(i0, i1):
            h = hi[i]
            v = C0[h] - C0[lo[i]] if starts else C0[h]
            if efron and event[i]:
                v -= c1[h - 1]
            u[i - i0] = v * r[i] * (w[i] if weighted else 1.0)
        for a in range(p):
            ma = mu[a]
            for b in range(a + 1):
                mb = mu[b]
                acc = 0.0
                for i in range(i0, i1):
                    acc += u[i - i0] * (X[i, a] - ma) * (X[i, b] - mb)
                out[a, b] += acc
    return out


def score_rows(X, mu, r, w, lo, hi, event, cumH, cumA, abar, c1, Ef, cluster, G):   # pragma: no cover (numba)
    """Score residuals (in centred covariates; they do not depend on the centring).

    Row ``i``: ``r_i (cumA[hi] - cumA[lo] - z_i (cumH[hi] - cumH[lo]))`` plus, for a death at key ``k``,
    ``z_i - abar_k + r_i (z_i c1_k - Ef_k)``. With ``G > 0`` returns the sums of ``w_i`` times them by
    ``cluster`` (G x p); else the rows' residuals, unweighted (n x p). ``w`` is empty for unit weights,
    ``lo`` empty when every window starts at key 0.
    """
    n, p = X.shape
    weighted = len(w) == n
    starts = len(lo) == n
    out = np.zeros((G if G > 0 else n, p))
    res = np.empty(p)
    for i in range(n):
        h = hi[i]
        lw = lo[i] if starts else 0
        ri = r[i]
        if h > lw:
            dH = cumH[h] - cumH[lw]
            for j in range(p):
                res[j] = ri * (cumA[h, j] - cumA[lw, j] - (X[i, j] - mu[j]) * dH)
        else:
            res[:] = 0.0
        if event[i]:
            k = h - 1
            for j in range(p):
                zj = X[i, j] - mu[j]
                res[j] += zj - abar[k, j] + ri * (zj * c1[k] - Ef[k, j])
        if G > 0:
            g = cluster[i]
            wi = w[i] if weighted else 1.0
            for j in range(p):
                out[g, j] += wi * res[j]
        else:
            for j in range(p):
                out[i, j] = res[j]
    return out


def column_summary(X):                                                     # pragma: no cover (numba)
    """Per column the minimum, maximum and mean, and the covariance matrix (divisor n), in two passes over
    blocks of rows (a column of a block at a time: its sums stay in registers)."""
    n, p = X.shape
    lo = np.full(p, np.inf)
    hi = np.full(p, -np.inf)
    tot = np.zeros(p)
    for i0 in range(0, n, _BLOCK + 1):
        i1 = min(n, i0 + _BLOCK + 1)
        for j in range(p):
            a = lo[j]
            b = hi[j]
            s = 0.0
            for i in range(i0, i1):
                x = X[i, j]
                a = min(a, x)
                b = max(b, x)
                s += x
            lo[j] = a
            hi[j] = b
            tot[j] += s
    mean = tot / max(n, 1)
    cov = np.zeros((p, p))
    for i0 in range(0, n, _BLOCK + 1):
        i1 = min(n, i0 + _BLOCK + 1)
        for a in range(p):
            ma = mean[a]
            for b in range(a + 1):
                mb = mean[b]
                s = 0.0
                for i in range(i0, i1):
                    s += (X[i, a] - ma) * (X[i, b] - mb)
                cov[a, b] += s
    for a in range(p):
        for b in range(a):
            cov[b, a] = cov[a, b]
    return lo, hi, mean, cov / max(n, 1)


def column_means(X, w):                                                   # pragma: no cover (numba)
    """Per column the mean, weighted by ``w`` (empty: unweighted), summed by blocks of rows."""
    n, p = X.shape
    weighted = len(w) == n
    tot = np.zeros(p)
    wsum = 0.0
    for i0 in range(0, n, _BLOCK + 1):
        i1 = min(n, i0 + _BLOCK + 1)
        for j in range(p):
            s = 0.0
            for i in range(i0, i1):
                s += X[i, j] * w[i] if weighted else X[i, j]
            tot[j] += s
        if weighted:
            s = 0.0
            for i in range(i0, i1):
                s += w[i]
            wsum += s
    return tot / (wsum if weighted else max(n, 1))


def group_ranges(X, group, G):                                             # pragma: no cover (numba)
    """Per group (rows) and column the minimum and maximum of ``X``."""
    n, p = X.shape
    lo = np.full((G, p), np.inf)
    hi = np.full((G, p), -np.inf)
    for i in range(n):
        g = group[i]
        for j in range(p):
            x = X[i, j]
            if x < lo[g, j]:
                lo[g, j] = x
            if x > hi[g, j]:
                hi[g, j] = x
    return lo, hi
