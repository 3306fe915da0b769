"""The compiled ROC statistics of the membership bootstrap (numba; imported only when it imports).

One pass per resample over the candidates in score order, with the arithmetic of the numpy path
(:func:`suite.attacks._membership_features.roc_curves`, ``auc`` and ``tpr_at``) in the same order:
cumulative weights read at the end of every group of tied scores, divided by the totals, trapezoids,
and the TPR at each FPR interpolated on the segment that holds it. The numpy path sums the trapezoids
pairwise and this one in order, so the AUCs agree to about 1e-15; the TPRs are the same numbers.
Resamples run in parallel threads (``prange``); no (resamples x candidates) array is built.

``rescored_roc_stats`` does the same for the local attackers' rescored bootstrap, whose scores change with
every resample: each record's score is one of the few its kept control neighbours give, so all of them are
sorted once and every resample reads its own in that order (the reference ranks each resample's scores).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True, parallel=True)
def roc_stats(
    order: np.ndarray,
    ends: np.ndarray,
    slot: np.ndarray,
    is_pos: np.ndarray,
    counts_pos: np.ndarray,
    counts_neg: np.ndarray,
    alphas: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """AUC (b,) and TPR at each of `alphas` (b, len(alphas)) of b resamples.

    `order` sorts the candidates by descending score, `ends` marks the last position of each group of
    tied scores in it; candidate u is member `slot[u]` when `is_pos[u]`, else non-member `slot[u]`;
    `counts_pos` (b, members) and `counts_neg` (b, non-members) are each resample's weights.
    """
    b = counts_pos.shape[0]
    n_groups = len(ends)
    n_alpha = len(alphas)
    auc_out = np.empty(b)
    tpr_out = np.empty((b, n_alpha))
    for r in prange(b):
        total_p = 0.0
        total_n = 0.0
        for s in range(counts_pos.shape[1]):
            total_p += counts_pos[r, s]
        for s in range(counts_neg.shape[1]):
            total_n += counts_neg[r, s]
        # the curve's points: (0, 0), then one per group of tied scores
        fpr = np.empty(n_groups + 1)
        tpr = np.empty(n_groups + 1)
        fpr[0] = 0.0
        tpr[0] = 0.0
        tp = 0.0
        fp = 0.0
        g = 0
        for j in range(len(order)):
            u = order[j]
            if is_pos[u]:
                tp += counts_pos[r, slot[u]]
            else:
                fp += counts_neg[r, slot[u]]
            if j == ends[g]:
                g += 1
                tpr[g] = tp / max(total_p, 1e-300)
                fpr[g] = fp / max(total_n, 1e-300)
        area = 0.0
        for g in range(n_groups):
            area += (fpr[g + 1] - fpr[g]) * (tpr[g + 1] + tpr[g]) / 2.0
        auc_out[r] = area
        for a in range(n_alpha):
            alpha = alphas[a]
            k = -1
            for g in range(n_groups + 1):
                if fpr[g] <= alpha + 1e-12:
                    k += 1
            k1 = min(k + 1, n_groups)
            f0, f1, t0, t1 = fpr[k], fpr[k1], tpr[k], tpr[k1]
            span = f1 - f0
            frac = (alpha - f0) / span if span > 0 else 0.0
            frac = min(max(frac, 0.0), 1.0)
            tpr_out[r, a] = t0 + frac * (t1 - t0)
    return auc_out, tpr_out


@njit(cache=True, nogil=True)
def choosable(owner: np.ndarray) -> np.ndarray:
    """Which kept neighbours (n, k) a resample can ever pick (`rescored_roc_stats`): the k-th (it stands in
    when none is present), and every other whose owner is usable (>= 0) and not that of a nearer one (were that
    owner present, the nearer neighbour would be picked)."""
    n, k = owner.shape
    out = np.zeros((n, k), dtype=np.bool_)
    for i in range(n):
        out[i, k - 1] = True
        for j in range(k - 1):
            o = owner[i, j]
            ok = o >= 0
            for jj in range(j):
                if owner[i, jj] == o:
                    ok = False
                    break
            out[i, j] = ok
    return out


_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_BIT = np.zeros(64, dtype=np.int64)  # (lowest set bit x _DEBRUIJN) >> 58 -> that bit's index
for _b in range(64):
    _DEBRUIJN_BIT[(((1 << _b) * 0x03F79D71B4CB0A89) & 0xFFFFFFFFFFFFFFFF) >> 58] = _b
#: Resamples a thread rescores at once: one bit each in a 64-bit word.
LANES = 64


@njit(cache=True, nogil=True, parallel=True)
def rescored_roc_stats(
    rank: np.ndarray,
    entry_unit: np.ndarray,
    entry_col: np.ndarray,
    entry_pos: np.ndarray,
    entry_group: np.ndarray,
    owner: np.ndarray,
    owner_src: np.ndarray,
    counts: np.ndarray,
    drawn: np.ndarray,
    n_pos: int,
    n_units: int,
    one_row_each: bool,
    alphas: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """`roc_stats` of b resamples whose scores are rescored in each: record i scores `values[i, j]` for j its first
    kept neighbour whose owner (`owner` (n, k), -1 never) resample r holds, the k-th when none is; a candidate
    scores its records' highest. `counts` (b, members + non-members) are the resamples' weights, members first
    (whole numbers); owner o is held when `counts[r, owner_src[o]]` > 0 (a non-member's column), or when
    `drawn[r, owner_src[o] - columns]` (an owner outside the candidates), never when `owner_src[o]` is past both.
    Every (i, j) a resample can pick is listed once, by descending value: `rank[i, j]` is its position in that
    list (-1: never picked); each position's candidate (`entry_unit`, of `n_units`), that candidate's column in
    `counts` (`entry_col`), whether a member (`entry_pos`), and its group of equal values (`entry_group`).

    A thread takes LANES resamples at once, one bit each: per record, the resamples still without a neighbour
    present are matched against each neighbour's owner (a word per owner), and the picked list position gets the
    resamples that pick it (a word per position). The list is then read in order, each resample counting a
    candidate at its first position (its score; every record is its own candidate when `one_row_each`): the
    candidates in the order of their rescored scores, one ROC point per group of equal values that holds any.
    So the curve, the trapezoids (summed in the same order) and the TPRs are those `roc_stats` gives on the
    rescored scores, with no sort and no (resamples x records) scores.
    """
    b = counts.shape[0]
    n, k = owner.shape
    n_entries = len(entry_unit)
    n_owners = len(owner_src)
    n_cols = counts.shape[1]
    n_drawn = drawn.shape[1]
    n_alpha = len(alphas)
    auc_out = np.empty(b)
    tpr_out = np.empty((b, n_alpha))
    one = np.uint64(1)
    for c in prange((b + LANES - 1) // LANES):
        r0 = c * LANES
        nr = min(b, r0 + LANES) - r0
        # the chunk's resamples as bits (who is held), and each candidate's weights side by side, a block at a time
        held = np.zeros(n_owners, dtype=np.uint64)
        for o0 in range(0, n_owners, 1024):
            o1 = min(n_owners, o0 + 1024)
            for rr in range(nr):
                shift = np.uint64(rr)
                for o in range(o0, o1):
                    src = owner_src[o]
                    if src < n_cols:
                        held[o] |= np.uint64(counts[r0 + rr, src] > 0) << shift
                    elif src < n_cols + n_drawn:
                        held[o] |= np.uint64(drawn[r0 + rr, src - n_cols]) << shift
        weights = np.empty((n_cols, nr), dtype=counts.dtype)
        for s0 in range(0, n_cols, 256):
            s1 = min(n_cols, s0 + 256)
            for rr in range(nr):
                for s in range(s0, s1):
                    weights[s, rr] = counts[r0 + rr, s]
        total_p = np.zeros(nr)
        total_n = np.zeros(nr)
        for s in range(n_pos):
            for rr in range(nr):
                total_p[rr] += weights[s, rr]
        for s in range(n_pos, n_cols):
            for rr in range(nr):
                total_n[rr] += weights[s, rr]
        # which resamples pick each list position
        all_lanes = (one << np.uint64(nr)) - one if nr < 64 else ~np.uint64(0)
        picked = np.zeros(n_entries, dtype=np.uint64)
        for i in range(n):
            left = all_lanes
            for j in range(k - 1):
                o = owner[i, j]
                if o >= 0:
                    hit = left & held[o]
                    if hit:
                        picked[rank[i, j]] |= hit
                        left &= ~hit
                        if not left:
                            break
            if left:  # the k-th: present, or standing in
                picked[rank[i, k - 1]] |= left
        # the curve's points, from (0, 0): the area as roc_stats sums it, and per rate the last point at or
        # below it (lo) and the one after (hi), which roc_stats interpolates between
        seen = np.zeros(0 if one_row_each else n_units, dtype=np.uint64)
        lo_f = np.zeros((nr, n_alpha))
        lo_t = np.zeros((nr, n_alpha))
        hi_f = np.zeros((nr, n_alpha))
        hi_t = np.zeros((nr, n_alpha))
        has_hi = np.zeros((nr, n_alpha), dtype=np.bool_)
        prev_f = np.zeros(nr)
        prev_t = np.zeros(nr)
        area = np.zeros(nr)
        tp = np.zeros(nr)
        fp = np.zeros(nr)
        group = np.full(nr, -1, dtype=np.int64)
        for p in range(n_entries + 1):
            if p < n_entries:
                x = picked[p]
                if not x:
                    continue
                if not one_row_each:  # a candidate counts at its first position only
                    u = entry_unit[p]
                    x &= ~seen[u]
                    seen[u] |= x
                g = entry_group[p]
                col = entry_col[p]
                pos = entry_pos[p]
            else:  # past the end: every resample's last point
                x = all_lanes
                g = -1
                col = 0
                pos = False
            while x:
                low = x & (~x + one)
                x ^= low
                rr = _DEBRUIJN_BIT[(low * _DEBRUIJN) >> np.uint64(58)]
                if g != group[rr]:
                    if group[rr] >= 0:  # its previous group is complete: that group's point
                        t = tp[rr] / max(total_p[rr], 1e-300)
                        f = fp[rr] / max(total_n[rr], 1e-300)
                        area[rr] += (f - prev_f[rr]) * (t + prev_t[rr]) / 2.0
                        prev_f[rr] = f
                        prev_t[rr] = t
                        for a in range(n_alpha):
                            if f <= alphas[a] + 1e-12:
                                lo_f[rr, a] = f
                                lo_t[rr, a] = t
                            elif not has_hi[rr, a]:
                                hi_f[rr, a] = f
                                hi_t[rr, a] = t
                                has_hi[rr, a] = True
                    group[rr] = g
                if g >= 0:
                    if pos:
                        tp[rr] += weights[col, rr]
                    else:
                        fp[rr] += weights[col, rr]
        for rr in range(nr):
            auc_out[r0 + rr] = area[rr]
            for a in range(n_alpha):
                f0, t0 = lo_f[rr, a], lo_t[rr, a]
                f1, t1 = (hi_f[rr, a], hi_t[rr, a]) if has_hi[rr, a] else (f0, t0)
                span = f1 - f0
                frac = (alphas[a] - f0) / span if span > 0 else 0.0
                frac = min(max(frac, 0.0), 1.0)
                tpr_out[r0 + rr, a] = t0 + frac * (t1 - t0)
    return auc_out, tpr_out
