"""The compiled top-k kernel of :mod:`suite.neighbors` (numba; imported only when that backend runs).

Same arithmetic, in the same order, as ``_Kernel.tile`` / ``_Kernel.pairs`` of the numpy path, so
the float64 distances are bit for bit those of :func:`suite.neighbors.distance_matrix`: categorical
mismatches first (doubled for the euclidean metric), then the missing-value indicators, then every
numerical column in order (a missing pair adds nothing), then the division by the usable columns
(Gower).  Threads take blocks of query rows (``prange``); every block scans the reference in blocks
that stay in the core's cache, columns contiguous so that the inner loops run on the vector units.
Ties go to the lower reference index (the reference is scanned in order and a candidate must be
strictly smaller than the current k-th value to enter).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_CACHE = True
_QUERY_BLOCK = 16  # query rows per thread task
_REF_BLOCK = 2048  # reference rows per cache block (about 20 columns x 2048 x 8 bytes = 320 kB)


@njit(cache=True, nogil=True, inline="always")
def _insert(best_d: np.ndarray, best_i: np.ndarray, row: int, k: int, d: float, j: int) -> None:
    pos = k - 1
    while pos > 0 and best_d[row, pos - 1] > d:
        best_d[row, pos] = best_d[row, pos - 1]
        best_i[row, pos] = best_i[row, pos - 1]
        pos -= 1
    best_d[row, pos] = d
    best_i[row, pos] = j


@njit(cache=True, nogil=True, inline="always")
def _insert_sum(
    best_d: np.ndarray, best_i: np.ndarray, best_a: np.ndarray, row: int, k: int, d: float, j: int, a: float
) -> None:
    """`_insert`, also keeping each kept pair's undivided sum (`best_a`), which the pruned path compares."""
    pos = k - 1
    while pos > 0 and best_d[row, pos - 1] > d:
        best_d[row, pos] = best_d[row, pos - 1]
        best_i[row, pos] = best_i[row, pos - 1]
        best_a[row, pos] = best_a[row, pos - 1]
        pos -= 1
    best_d[row, pos] = d
    best_i[row, pos] = j
    best_a[row, pos] = a


@njit(cache=_CACHE, parallel=True, nogil=True)
def topk(
    q_num: np.ndarray,  # (n, p_num) float64, missing -> 0 (Gower) or imputed (euclidean)
    q_nan: np.ndarray,  # (n, p_num) bool, Gower missing numbers
    q_cat: np.ndarray,  # (n, p_cat) compact codes
    q_ind: np.ndarray,  # (n, p_ind) uint8 euclidean missing indicators
    r_num: np.ndarray,  # (p_num, m) float64
    r_nan: np.ndarray,  # (p_num, m) bool
    r_cat: np.ndarray,  # (p_cat, m) compact codes
    r_ind: np.ndarray,  # (p_ind, m) uint8
    r_col_nan: np.ndarray,  # (p_num,) bool: the reference column has a missing value
    r_miss: np.ndarray,  # (m,) float64 missing numbers per reference row
    euclidean: bool,
    k: int,
    out_d: np.ndarray,  # (n, k) float64
    out_i: np.ndarray,  # (n, k) int64
) -> None:
    n, p_num = q_num.shape
    p_cat = q_cat.shape[1]
    p_ind = q_ind.shape[1]
    m = r_num.shape[1] if p_num else r_cat.shape[1] if p_cat else r_miss.shape[0]
    p = p_num + p_cat
    any_nan = False
    for j in range(p_num):
        if r_col_nan[j]:
            any_nan = True
    n_blocks = (n + _QUERY_BLOCK - 1) // _QUERY_BLOCK
    for b in prange(n_blocks):
        i0 = b * _QUERY_BLOCK
        i1 = min(n, i0 + _QUERY_BLOCK)
        nb = i1 - i0
        best_d = np.full((nb, k), np.inf)
        best_i = np.full((nb, k), -1, dtype=np.int64)
        best_a = np.full((nb, k), np.inf)  # the pruned path: undivided sums of the kept pairs
        sel = np.empty(_REF_BLOCK, dtype=np.int64)
        acc = np.empty(_REF_BLOCK)
        cnt = np.empty(_REF_BLOCK, dtype=np.uint8)
        den = np.empty(_REF_BLOCK)
        q_miss = np.zeros(nb)
        q_any = False
        for ii in range(nb):
            for j in range(p_num):
                if q_nan[i0 + ii, j]:
                    q_miss[ii] += 1.0
                    q_any = True
        # Gower without missing numbers: a pair's undivided sum is its mismatches plus terms >= 0, so a pair
        # whose mismatches already exceed the k-th kept sum cannot enter; only the others get their numbers
        # (added in the same order, so the same sums bit for bit) and the division (monotone, so comparing
        # sums first changes no decision: a sum equal after division to the k-th loses the tie anyway)
        prune = not euclidean and p > 0 and p_cat < 255 and p_ind == 0 and not any_nan and not q_any
        fp = float(p)
        for j0 in range(0, m, _REF_BLOCK):
            w = min(m, j0 + _REF_BLOCK) - j0
            for ii in range(nb):
                i = i0 + ii
                # categorical mismatches counted in uint8 (64 lanes per vector), then one conversion
                for t in range(w):
                    cnt[t] = 0
                if prune:
                    for c in range(p_cat):
                        qv = q_cat[i, c]
                        rc = r_cat[c, j0 : j0 + w]
                        for t in range(w):
                            cnt[t] += np.uint8(rc[t] != qv)
                    kth = best_a[ii, k - 1]
                    ns = 0
                    for t in range(w):
                        sel[ns] = t
                        ns += 1 if cnt[t] <= kth else 0
                    for u in range(ns):
                        acc[u] = cnt[sel[u]]
                    for c in range(p_num):
                        qv = q_num[i, c]
                        rv = r_num[c, j0 : j0 + w]
                        for u in range(ns):
                            acc[u] += abs(qv - rv[sel[u]])
                    for u in range(ns):
                        a = acc[u]
                        if a <= best_a[ii, k - 1]:
                            d = a / fp
                            if d < best_d[ii, k - 1]:
                                _insert_sum(best_d, best_i, best_a, ii, k, d, j0 + sel[u], a)
                    continue
                if p_cat >= 255:
                    for t in range(w):
                        acc[t] = 0.0
                for c in range(p_cat):
                    qv = q_cat[i, c]
                    rc = r_cat[c, j0 : j0 + w]
                    for t in range(w):
                        cnt[t] += np.uint8(rc[t] != qv)
                    if c % 255 == 254:  # uint8 is full: flush into acc (exact small integers)
                        for t in range(w):
                            acc[t] += cnt[t]
                            cnt[t] = 0
                if p_cat < 255:
                    for t in range(w):
                        acc[t] = cnt[t]
                else:
                    for t in range(w):
                        acc[t] += cnt[t]
                if euclidean:
                    for t in range(w):
                        acc[t] += acc[t]
                for c in range(p_ind):
                    qv = q_ind[i, c]
                    rc = r_ind[c, j0 : j0 + w]
                    for t in range(w):
                        acc[t] += 1.0 if rc[t] != qv else 0.0
                c = 0
                while c < p_num:
                    if q_nan[i, c]:
                        c += 1
                        continue  # adds 0 to every pair
                    qv = q_num[i, c]
                    rv = r_num[c, j0 : j0 + w]
                    if euclidean:
                        for t in range(w):
                            x = qv - rv[t]
                            acc[t] += x * x
                        c += 1
                    elif r_col_nan[c]:
                        rn = r_nan[c, j0 : j0 + w]
                        for t in range(w):
                            x = abs(qv - rv[t])
                            acc[t] += 0.0 if rn[t] else x
                        c += 1
                    else:
                        # up to 4 consecutive plain columns in one pass (the same additions, in order)
                        g = 1
                        while g < 4 and c + g < p_num and not q_nan[i, c + g] and not r_col_nan[c + g]:
                            g += 1
                        if g == 4:
                            q1, q2, q3 = q_num[i, c + 1], q_num[i, c + 2], q_num[i, c + 3]
                            r1, r2, r3 = r_num[c + 1, j0 : j0 + w], r_num[c + 2, j0 : j0 + w], r_num[c + 3, j0 : j0 + w]
                            for t in range(w):
                                acc[t] = (((acc[t] + abs(qv - rv[t])) + abs(q1 - r1[t])) + abs(q2 - r2[t])) + abs(
                                    q3 - r3[t]
                                )
                        elif g >= 2:
                            g = 2
                            q1 = q_num[i, c + 1]
                            r1 = r_num[c + 1, j0 : j0 + w]
                            for t in range(w):
                                acc[t] = (acc[t] + abs(qv - rv[t])) + abs(q1 - r1[t])
                        else:
                            for t in range(w):
                                acc[t] += abs(qv - rv[t])
                        c += g
                if not euclidean:
                    if p == 0:
                        for t in range(w):
                            acc[t] = 1.0
                    elif not any_nan and not q_any:
                        fp = float(p)
                        for t in range(w):
                            acc[t] = acc[t] / fp
                    else:
                        base = p - q_miss[ii]
                        for t in range(w):
                            den[t] = base - r_miss[j0 + t]
                        for c in range(p_num):
                            if q_nan[i, c] and r_col_nan[c]:  # missing on both sides: counted twice
                                rn = r_nan[c, j0 : j0 + w]
                                for t in range(w):
                                    den[t] += 1.0 if rn[t] else 0.0
                        for t in range(w):
                            acc[t] = acc[t] / den[t]
                        if p_cat == 0:
                            for t in range(w):
                                if den[t] == 0.0:
                                    acc[t] = 1.0
                worst = best_d[ii, k - 1]
                for t in range(w):
                    if acc[t] < worst:
                        _insert(best_d, best_i, ii, k, acc[t], j0 + t)
                        worst = best_d[ii, k - 1]
        for ii in range(nb):
            for t in range(k):
                out_d[i0 + ii, t] = best_d[ii, t]
                out_i[i0 + ii, t] = best_i[ii, t]


@njit(cache=_CACHE, parallel=True, nogil=True)
def first_present(dist: np.ndarray, owner: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Per resample b and query row r, the distance to r's first kept neighbour whose owner is present.

    ``dist`` (n, k) ascending and ``owner`` (n, k) (-1: never usable, e.g. the query's own record) are a
    search's kept neighbours; ``present`` (b, owners) says who a resample holds. Where none of the k is
    usable the k-th distance stands in. The numpy path beside it is ``suite.neighbors.first_present``.
    """
    b_n, (n, k) = present.shape[0], dist.shape
    out = np.empty((b_n, n))
    for b in prange(b_n):
        for r in range(n):
            out[b, r] = dist[r, k - 1]
            for j in range(k):
                o = owner[r, j]
                if o >= 0 and present[b, o]:
                    out[b, r] = dist[r, j]
                    break
    return out
