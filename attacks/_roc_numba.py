"""The compiled ROC statistics of the membership bootstrap (numba; imported only when it imports).

One pass per resample over the candidates in score order, with the arithmetic of the numpy path
(:func:`suite.attacks._membership_features.roc_curves`, ``auc`` and ``tpr_at``) in the same order:
cumulative weights read at the end of every group of tied scores, divided by the totals, trapezoids,
and the TPR at each FPR interpolated on the segment that holds it. The numpy path sums the trapezoids
pairwise and this one in order, so the AUCs agree to about 1e-15; the TPRs are the same numbers.
Resamples run in parallel threads (``prange``); no (resamples x candidates) array is built.
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
