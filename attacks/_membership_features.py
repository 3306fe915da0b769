"""Helpers of the membership attack: ROC statistics with a stratified bootstrap (the AUC and the
excess exposure at a low false-positive rate), the numeric encoding and kernel densities of the
DOMIAS attacker, and the order-free features of the shadow-model attacker. Pure functions and
small classes; sklearn is imported inside them."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
import pandas as pd

from suite.encoding import as_float, fit_codes
from suite.neighbors import Encoded, nearest
from suite.stats import bootstrap_weights

#: Downsampled ROC curves keep at most this many points (log-spaced at low FPR, then linear).
ROC_GRID = np.unique(np.concatenate([[0.0], np.logspace(-3, 0, 50), np.linspace(0.0, 1.0, 51)]))
_BOOT_CELLS = 1_000_000  # resamples x candidates held at once by the bootstrap

# --------------------------------------------------------------------------- empirical epsilon

#: False-positive rates whose non-member quantiles are the thresholds searched for the epsilon bound
#: (0: above every non-member of the selection half).
EPSILON_RATES = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def clopper_pearson(successes: int, trials: int, confidence: float) -> tuple[float, float]:
    """Two-sided exact (Clopper-Pearson) interval of a binomial rate; each end a one-sided bound
    at level (1 + confidence) / 2."""
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def break_ties(scores: np.ndarray, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Distinct scores (ranks) in the order of `scores`, ties ordered at random (`rng`; a fixed one when None), and
    the original scores where there were ties to break (else None: the scores are returned as they are)."""
    scores = np.asarray(scores, dtype=float)
    if len(np.unique(scores)) == len(scores):
        return scores, None
    generator = np.random.default_rng(0) if rng is None else rng
    order = np.lexsort((generator.random(len(scores)), scores))
    ranks = np.empty(len(order))
    ranks[order] = np.arange(len(order), dtype=float)
    return ranks, scores


def tail_excess(
    scores: np.ndarray,
    labels: np.ndarray,
    fpr: float,
    confidence: float,
    rng: np.random.Generator | None = None,
    *,
    tied_at: np.ndarray | None = None,
) -> dict:
    """The excess exposure TPR - FPR at the threshold of the non-members' k-th highest score, k = max(1,
    floor(fpr x (n + 1))) of n non-members, with bounds that need no bootstrap of the tail, so a rate
    can be read where too few non-members sit above it for a bootstrap quantile (10 above it, 1,000 at 1%).

    The false-positive rate of the k-th highest of n exchangeable non-member scores is distributed
    Beta(k, n - k + 1), whatever the scores' distribution; the members above that threshold are
    binomial given it (Clopper-Pearson). Each bound of the interval (two-sided at `confidence`) is
    one-sided at (1 + confidence) / 2, split over the two rates (Bonferroni): upper = TPR_hi -
    FPR_lo, lower = TPR_lo - FPR_hi. Tied scores are ordered at random (`rng`; a fixed one when None)
    before anything is counted, so the scores are continuous as the theory asks: a table whose people
    share their exact rows puts many members and non-members at one score (distance 0 to a synthetic
    row), and the threshold then takes the tied group's members in the non-members' proportion, as a
    random tie-break on the ROC curve does. Scores already untied by `break_ties` pass the original ones as
    `tied_at`, so several rates read one tie-break."""
    from scipy.stats import beta

    if tied_at is None:  # rank with a random tie-break: distinct, exchangeable scores
        scores, tied_at = break_ties(scores, rng)
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels).astype(bool)
    by_score = np.argsort(-scores[~labels], kind="stable")  # the non-members, highest first
    pos, neg = scores[labels], scores[~labels][by_score]
    m, n = len(pos), len(neg)
    if not m or not n:
        raise ValueError(f"the attack needs members and non-members, got {m} and {n}")
    k = max(1, int(math.floor(fpr * (n + 1))))
    k = min(k, n)
    above = int((pos > neg[k - 1]).sum())  # the scores are distinct: no member ties the threshold
    tied = 0  # members that shared the threshold's own score before the tie-break
    if tied_at is not None:
        tied = int((tied_at[labels] == tied_at[~labels][by_score[k - 1]]).sum())  # the ranking keeps the order
    level = 1.0 - (1.0 - confidence) / 2.0  # two-sided `confidence` -> each end one-sided at this level
    # each rate's bound one-sided at 1 - (1 - level) / 2: Clopper-Pearson's two-sided interval at `level`
    tpr_lo, tpr_hi = clopper_pearson(above, m, level)
    tail = (1.0 - level) / 2.0
    fpr_lo, fpr_hi = (float(beta.ppf(q, k, n - k + 1)) for q in (tail, 1.0 - tail))
    tpr = above / m
    expected_fpr = k / (n + 1)
    return {
        "value": tpr - expected_fpr,
        "ci": (tpr_lo - fpr_hi, tpr_hi - fpr_lo),
        "tpr": tpr,
        "tpr_ci": [tpr_lo, tpr_hi],
        "fpr": expected_fpr,
        "fpr_ci": [fpr_lo, fpr_hi],
        "rank": k,
        "members_above": above,
        "members_tied": tied,
        "ties": "broken at random" if tied_at is not None else "none",
    }


def epsilon_lower_bound(tp: int, n_pos: int, fp: int, n_neg: int, confidence: float) -> float:
    """Empirical epsilon lower bound of one threshold (Kairouz et al. 2015):
    max(log(TPR_lo / FPR_hi), log((1 - FPR_hi) / (1 - TPR_lo)), 0), TPR_lo the lower
    Clopper-Pearson bound of `tp` of `n_pos` members and FPR_hi the upper one of `fp` of `n_neg`
    non-members above the threshold."""
    tpr_lo = clopper_pearson(tp, n_pos, confidence)[0]
    fpr_hi = clopper_pearson(fp, n_neg, confidence)[1]
    with np.errstate(divide="ignore"):
        terms = (np.log(tpr_lo) - np.log(fpr_hi), np.log1p(-fpr_hi) - np.log1p(-tpr_lo))
    return float(max(0.0, *terms))


def one_run_epsilon(canaries: int, guesses: int, correct: int, delta: float, confidence: float) -> float:
    """Empirical epsilon lower bound of a one-run audit (Steinke, Nasr and Jagielski, NeurIPS 2023, Theorem 3):
    `canaries` records each put into one fit with probability 1/2, an attacker guessing in or out for
    `guesses` of them, `correct` right. Under (epsilon, delta)-DP, P[correct >= v] is at most
    P[Binomial(r, q) >= v] + 2 m delta max_i P[v > Binomial(r, q) >= v - i] / i, q = e^eps / (1 + e^eps);
    the bound is the largest epsilon this rejects at one-sided level (1 + confidence) / 2. With delta = 0
    it is the log-odds of the lower Clopper-Pearson bound of the accuracy (`clopper_pearson`)."""
    from scipy.optimize import brentq
    from scipy.stats import binom

    if guesses < 1 or correct < 1:
        return 0.0
    if delta == 0:
        low = clopper_pearson(correct, guesses, confidence)[0]
        return float(max(0.0, math.log(low) - math.log1p(-low)))
    level = (1.0 - confidence) / 2.0
    below = np.arange(correct - 1, -1, -1)  # v - i for i = 1..v

    def p_value(eps: float) -> float:
        q = 1.0 / (1.0 + math.exp(-eps))
        tail = float(binom.sf(correct - 1, guesses, q))
        inner = np.cumsum(binom.pmf(below, guesses, q)) / np.arange(1, correct + 1)
        return min(1.0, tail + 2.0 * canaries * delta * float(inner.max()))

    if p_value(0.0) >= level:
        return 0.0
    high = 1.0
    while p_value(high) < level:
        high *= 2.0
        if high > 1e3:  # pragma: no cover - every guess right on millions of canaries
            return high
    return float(brentq(lambda e: p_value(e) - level, 0.0, high, xtol=1e-6))


def split_epsilon(scores: np.ndarray, labels: np.ndarray, rng: np.random.Generator, confidence: float) -> dict:
    """The epsilon lower bound of a membership score, its threshold chosen on one random half of the
    members and of the non-members (the highest bound over the non-members' quantiles at
    EPSILON_RATES) and the bound computed on the other half, so the search does not inflate it."""
    labels = np.asarray(labels).astype(bool)
    halves = []
    for side in (np.flatnonzero(labels), np.flatnonzero(~labels)):
        side = rng.permutation(side)
        halves.append((side[: len(side) // 2], side[len(side) // 2 :]))
    (pos_a, pos_b), (neg_a, neg_b) = halves
    if min(len(pos_a), len(pos_b), len(neg_a), len(neg_b)) < 1:
        return {"value": 0.0, "note": "fewer than 2 members or non-members: nothing can be shown"}

    def counts(pos: np.ndarray, neg: np.ndarray, t: float) -> tuple[int, int]:
        return int((scores[pos] > t).sum()), int((scores[neg] > t).sum())

    rates = [r for r in EPSILON_RATES if r == 0.0 or r * len(neg_a) >= 1.0]
    thresholds = np.quantile(scores[neg_a], [1.0 - r for r in rates], method="higher")
    picked = []
    for t in thresholds:
        tp_a, fp_a = counts(pos_a, neg_a, t)
        picked.append(epsilon_lower_bound(tp_a, len(pos_a), fp_a, len(neg_a), confidence))
    best = int(np.argmax(picked))
    tp, fp = counts(pos_b, neg_b, thresholds[best])
    value = epsilon_lower_bound(tp, len(pos_b), fp, len(neg_b), confidence)
    return {
        "value": value,
        "selection_fpr": rates[best],
        "selection_bound": picked[best],
        "members_above": tp,
        "members": int(len(pos_b)),
        "non_members_above": fp,
        "non_members": int(len(neg_b)),
        "tpr": tp / len(pos_b),
        "fpr": fp / len(neg_b),
        "selection_half": {"members": int(len(pos_a)), "non_members": int(len(neg_a))},
    }


# --------------------------------------------------------------------------- ROC statistics


def roc_curves(
    order: np.ndarray, ends: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ROC curves (fpr, tpr), shape (b, groups + 1), of b weightings of the same candidates.

    `order` sorts the candidates by descending score and `ends` marks the last position of
    every group of tied scores in that order: one ROC point per distinct score, so ties form
    diagonal segments (a random tie-break), as in the Mann-Whitney AUC.
    """
    tp = np.cumsum(w_pos[:, order], axis=1)[:, ends]
    fp = np.cumsum(w_neg[:, order], axis=1)[:, ends]
    zeros = np.zeros((len(tp), 1))
    tpr = np.hstack([zeros, tp / np.maximum(tp[:, -1:], 1e-300)])
    fpr = np.hstack([zeros, fp / np.maximum(fp[:, -1:], 1e-300)])
    return fpr, tpr


def auc(fpr: np.ndarray, tpr: np.ndarray) -> np.ndarray:
    """Area under each row's ROC curve (trapezoids; equals the Mann-Whitney AUC with ties as 1/2)."""
    return np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2.0, axis=1)


def tpr_at(fpr: np.ndarray, tpr: np.ndarray, alpha: float) -> np.ndarray:
    """Each row's TPR at FPR `alpha`, read off the ROC curve by linear interpolation.

    Where the curve is vertical at `alpha` the highest TPR reached there counts; a diagonal
    (tied) segment gives the TPR of a random tie-break.
    """
    b, g = fpr.shape
    rows = np.arange(b)
    k = (fpr <= alpha + 1e-12).sum(axis=1) - 1  # last point with fpr <= alpha (fpr[:, 0] == 0)
    k1 = np.minimum(k + 1, g - 1)
    f0, f1, t0, t1 = fpr[rows, k], fpr[rows, k1], tpr[rows, k], tpr[rows, k1]
    span = f1 - f0
    frac = np.where(span > 0, (alpha - f0) / np.where(span > 0, span, 1.0), 0.0)
    return t0 + np.clip(frac, 0.0, 1.0) * (t1 - t0)


def resampled_roc(
    order: np.ndarray,
    ends: np.ndarray,
    labels: np.ndarray,
    counts_pos: np.ndarray,
    counts_neg: np.ndarray,
    alphas: tuple[float, ...],
    backend: Literal["auto", "numba", "numpy"] = "auto",
    slot: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """AUC (b,) and TPR at each of `alphas` (b, len(alphas)) of b resamples of the candidates ranked by
    `order` / `ends` (`_ranking`): `counts_pos` (b, members) and `counts_neg` (b, non-members) weight the
    members and non-members in the order `labels` lists them. The compiled pass (`suite.attacks._roc_numba`,
    the default when numba imports) and the numpy path (`roc_curves`, `auc`, `tpr_at`: the reference) give
    the same numbers (AUCs to about 1e-15: the numpy sum is pairwise). `slot` (`label_slots(labels)`) may be
    passed by a caller that calls this once per resample."""
    labels = np.asarray(labels).astype(bool)
    kernel = _roc_kernel() if backend in ("auto", "numba") else None
    if kernel is not None:
        return kernel.roc_stats(
            np.ascontiguousarray(order, dtype=np.int64),
            np.ascontiguousarray(ends, dtype=np.int64),
            label_slots(labels) if slot is None else slot,
            labels,
            np.ascontiguousarray(counts_pos, dtype=float),
            np.ascontiguousarray(counts_neg, dtype=float),
            np.asarray(alphas, dtype=float),
        )
    if backend == "numba":
        raise ImportError("backend='numba' needs numba, which failed to import")
    b, n = len(counts_pos), len(labels)
    wp, wn = np.zeros((b, n)), np.zeros((b, n))
    wp[:, labels], wn[:, ~labels] = counts_pos, counts_neg
    fpr, tpr = roc_curves(order, ends, wp, wn)
    return auc(fpr, tpr), np.stack([tpr_at(fpr, tpr, a) for a in alphas], axis=1).reshape(b, len(alphas))


def label_slots(labels: np.ndarray) -> np.ndarray:
    """Each candidate's position among the members (label True) or among the non-members."""
    slot = np.empty(len(labels), dtype=np.int64)
    slot[labels] = np.arange(int(labels.sum()))
    slot[~labels] = np.arange(int((~labels).sum()))
    return slot


def _roc_kernel() -> Any:
    """The compiled ROC pass's module, or None when numba cannot be imported (the numpy path runs)."""
    try:
        return importlib.import_module("suite.attacks._roc_numba")
    except Exception:  # noqa: BLE001  (any import failure: fall back to the reference path)
        return None


def _ranking(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order of descending scores and the last position of each group of tied scores in it (the order
    within a group is arbitrary: a group is one ROC point)."""
    order = np.argsort(-scores)
    s = scores[order]
    return order, np.flatnonzero(np.r_[s[1:] != s[:-1], True])


def delong_auc(scores: np.ndarray, labels: np.ndarray, confidence: float) -> tuple[float, tuple[float, float]]:
    """The Mann-Whitney AUC (ties count 1/2) and its interval from DeLong's variance, two-sided at `confidence`.

    Each member's share of non-members ranked below it, and each non-member's share of members ranked above
    it, are the AUC's structural components; its variance is var(members' components) / members +
    var(non-members') / non-members. Both sides are samples, so the interval holds the variance of the
    members and of the non-members (the control), as a bootstrap resampling both jointly does, in one
    sort (DeLong, DeLong and Clarke-Pearson 1988)."""
    from scipy.stats import norm, rankdata

    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels).astype(bool)
    pos, neg = scores[labels], scores[~labels]
    m, n = len(pos), len(neg)
    if not m or not n:
        raise ValueError(f"the attack needs members and non-members, got {m} and {n}")
    ranks = rankdata(scores)  # midranks: a tie counts half
    below = (ranks[labels] - rankdata(pos)) / n  # per member: non-members ranked below it
    above = 1.0 - (ranks[~labels] - rankdata(neg)) / m  # per non-member: members ranked above it
    value = float(below.mean())
    var = (below.var(ddof=1) / m if m > 1 else 0.25) + (above.var(ddof=1) / n if n > 1 else 0.25)
    half = float(norm.ppf(0.5 + confidence / 2.0)) * math.sqrt(var)
    return value, (max(0.0, value - half), min(1.0, value + half))


def auc_summary(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    rng: np.random.Generator,
    confidence: float,
    n_boot: int,
    rescore: Callable[[np.ndarray], np.ndarray] | None = None,
    backend: Literal["auto", "reference"] = "auto",
) -> dict:
    """An attacker's AUC with its interval, and its ROC curve on ROC_GRID: DeLong's interval (`delong_auc`) for
    scores fixed before any resample, the joint bootstrap (`roc_summary`) for scores that depend on the
    non-members themselves (`rescore`), which no closed form covers."""
    if rescore is not None:
        summary = roc_summary(
            scores, labels, alphas=(), rng=rng, confidence=confidence, n_boot=n_boot, rescore=rescore, backend=backend
        )
        return {**summary, "interval": f"percentile bootstrap, {n_boot} joint resamples, each rescored"}
    value, ci = delong_auc(scores, labels, confidence)
    return {"point": {"auc": value}, "ci": {"auc": ci}, "roc": point_roc(scores, labels), "interval": "DeLong"}


def point_roc(scores: np.ndarray, labels: np.ndarray) -> dict:
    """The ROC curve of the scores, read at the false-positive rates of ROC_GRID."""
    labels = np.asarray(labels).astype(bool)
    order, ends = _ranking(np.asarray(scores, dtype=float))
    return _on_grid(*roc_curves(order, ends, labels[None, :].astype(float), (~labels)[None, :].astype(float)))


def _on_grid(fpr: np.ndarray, tpr: np.ndarray) -> dict:
    """One ROC curve (the first row of `roc_curves`' output) read at the false-positive rates of ROC_GRID."""
    return {"fpr": ROC_GRID.tolist(), "tpr": [float(tpr_at(fpr, tpr, a)[0]) for a in ROC_GRID]}


def roc_summary(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    alphas: tuple[float, ...],
    rng: np.random.Generator,
    confidence: float,
    n_boot: int,
    rescore: Callable[[np.ndarray], np.ndarray] | None = None,
    backend: Literal["auto", "reference"] = "auto",
) -> dict:
    """AUC and TPR at each FPR in `alphas`, with stratified percentile-bootstrap intervals.

    The TPR at FPR a is the share of members above the non-members' (1 - a) quantile, ties at
    the quantile broken at random so the FPR is exactly a (read off the ROC curve). Members
    (label 1) and non-members (label 0) are resampled jointly, each side to its own size, so
    the threshold is re-estimated from every non-member resample and an interval covers both
    the members' rate and the quantile's error. Each candidate is one unit (a person when the
    scores are per entity). An interval is widened to hold its point estimate when the
    percentile interval misses it (the statistic is skewed near 0 or 1), which only makes the
    gate more cautious.

    A score that depends on the non-members themselves (the local attacker compares each candidate
    with its nearest control record, and the non-members are that control) passes `rescore`: given a
    batch of non-member resample counts (b, non-members), it returns every candidate's score in each
    resample (b, candidates), so the interval also holds the variance of the real side. A `rescore` that
    also offers `roc(batches, alphas)` (the local attacker's `Rescorer`: given the batches of (member,
    non-member) counts, the same resamples' AUCs and TPRs, in order, without ranking each one's scores)
    has it run when `backend` is "auto" and numba imports; "reference" ranks every resample's scores
    (`_ranking`, `resampled_roc`). Both give the same numbers (the AUCs up to the
    order of a sum, ~1e-15) from the same random draws.
    """
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels).astype(bool)
    n = len(scores)
    pos, neg = np.flatnonzero(labels), np.flatnonzero(~labels)
    if not len(pos) or not len(neg):
        raise ValueError(f"the attack needs members and non-members, got {len(pos)} and {len(neg)}")
    order, ends = _ranking(scores)

    w_pos, w_neg = labels[None, :].astype(float), (~labels)[None, :].astype(float)
    fpr, tpr = roc_curves(order, ends, w_pos, w_neg)
    point = {"auc": float(auc(fpr, tpr)[0]), **{a: float(tpr_at(fpr, tpr, a)[0]) for a in alphas}}

    boot = {"auc": np.empty(n_boot), **{a: np.empty(n_boot) for a in alphas}}
    batch = max(1, min(n_boot, _BOOT_CELLS // max(n, 1)))
    slot = label_slots(labels)  # once, not once per resample of the rescored path
    batches = bootstrap_weights(np.arange(len(pos)), np.arange(len(neg)), rng=rng, n_boot=n_boot, batch=batch)

    def each_batch() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for _, (counts_pos, counts_neg) in batches:
            if rescore is None:
                yield resampled_roc(order, ends, labels, counts_pos, counts_neg, alphas)
                continue
            # each resample ranks its own scores: one curve each (their numbers of points differ)
            stats = [
                resampled_roc(*_ranking(row), labels, counts_pos[i : i + 1], counts_neg[i : i + 1], alphas, slot=slot)
                for i, row in enumerate(rescore(counts_neg))
            ]
            yield np.concatenate([a for a, _ in stats]), np.concatenate([t for _, t in stats])

    compiled = backend == "auto" and callable(getattr(rescore, "roc", None)) and _roc_kernel() is not None
    # the same statistics straight from the scores' precomputed values (no sort per resample)
    results = rescore.roc((w for _, w in batches), alphas) if compiled else each_batch()
    start = 0
    for aucs, tprs in results:
        b = len(aucs)
        boot["auc"][start : start + b] = aucs
        for j, a in enumerate(alphas):
            boot[a][start : start + b] = tprs[:, j]
        start += b
    tail = (1.0 - confidence) / 2.0
    cis = {}
    for key, values in boot.items():
        low, high = np.quantile(values, [tail, 1.0 - tail])
        cis[key] = (float(min(low, point[key])), float(max(high, point[key])))
    return {"point": point, "ci": cis, "roc": _on_grid(fpr, tpr)}  # the point curve above, not a second sort


# --------------------------------------------------------------------------- DOMIAS encoding


class DensityEncoding:
    """Mixed-type rows as points in a small Euclidean space for the density attacker.

    Fitted on real rows only. Numbers and dates are standardised (mean and standard deviation
    of the real data) and clipped at +-`clip` standard deviations, with a missing indicator per
    column (missing -> 0). Categories are one-hot over the `max_levels` most frequent real
    levels, plus one column for missing and one for any other level. The result is projected
    on at most `max_dims` principal components of the real data and whitened (unit variance),
    so a kernel bandwidth is in units of the real data's spread.
    """

    def __init__(
        self,
        *,
        numerical: list[str],
        categorical: list[str],
        max_levels: int = 20,
        max_dims: int = 20,
        clip: float = 5.0,
    ) -> None:
        self.numerical = numerical
        self.categorical = categorical
        self.max_levels = max_levels
        self.max_dims = max_dims
        self.clip = clip

    def fit(self, real: pd.DataFrame) -> DensityEncoding:
        numbers = self._numbers(real)
        self.mean_ = np.nan_to_num(np.nanmean(numbers, axis=0)) if numbers.size else np.zeros(numbers.shape[1])
        std = np.nan_to_num(np.nanstd(numbers, axis=0)) if numbers.size else np.ones(numbers.shape[1])
        self.std_ = np.where(std > 0, std, 1.0)
        self.codes_ = {col: fit_codes(real[col], False, max_levels=self.max_levels) for col in self.categorical}
        raw = self._raw(real)
        center = raw.mean(axis=0)
        centred = raw - center
        # principal axes of the real data (exact SVD: deterministic; a few dozen columns at most)
        _, sing, vt = np.linalg.svd(centred, full_matrices=False)
        var = sing**2 / max(len(raw) - 1, 1)
        keep = np.flatnonzero(var > max(var.max(initial=0.0), 1e-300) * 1e-9)[: self.max_dims]
        if not len(keep):
            raise ValueError("the real data has no variation the density attacker could use")
        self.center_ = center
        self.axes_ = vt[keep].T / np.sqrt(var[keep])
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return (self._raw(frame) - self.center_) @ self.axes_

    def _numbers(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.numerical:
            return np.empty((len(frame), 0))
        return np.column_stack([as_float(frame[c], c) for c in self.numerical])

    def _raw(self, frame: pd.DataFrame) -> np.ndarray:
        numbers = self._numbers(frame)
        missing = np.isnan(numbers)
        z = np.clip((numbers - self.mean_) / self.std_, -self.clip, self.clip)
        z[missing] = 0.0
        parts = [z, missing.astype(float)]
        for col in self.categorical:
            coding = self.codes_[col]
            onehot = np.zeros((len(frame), coding.n_codes))
            onehot[np.arange(len(frame)), coding.transform(frame[col])] = 1.0
            onehot[:, -2:] = onehot[:, [-1, -2]]  # missing before other: the axes stay those it was calibrated on
            parts.append(onehot)
        return np.hstack(parts)


def kde_log_density(points: np.ndarray, query: np.ndarray, bandwidth: float) -> np.ndarray:
    """Log density of a Gaussian kernel density estimate on `points`, at every `query` row.

    sklearn's tree-based estimator keeps memory bounded (no query x points matrix). A query
    so far from every point that its density underflows gets the lowest finite value seen.
    """
    from sklearn.neighbors import KernelDensity

    kde = KernelDensity(kernel="gaussian", bandwidth=float(bandwidth), rtol=1e-4).fit(points)
    out = kde.score_samples(query)
    finite = np.isfinite(out)
    if not finite.all():
        floor = out[finite].min() - 1.0 if finite.any() else 0.0
        out = np.where(finite, out, floor)
    return out


# --------------------------------------------------------------------------- shadow features


class ShadowFeatures:
    """Order-free features of one synthetic table, as seen from each of some target records.

    Gower distances (suite.neighbors) from a target to its 1..5 nearest synthetic rows, the
    shares of synthetic rows within half and within one of the target's isolation distance
    (counted among its nearest `max_count` rows), then the mean and standard deviation of every
    Gower-scaled numerical column and the frequency of the `levels` most common real
    categories of every categorical column (Stadler et al.'s naive and histogram features).
    """

    def __init__(self, *, codes: dict[int, np.ndarray], k: int = 5, max_count: int = 50) -> None:
        self.codes = codes  # categorical column position -> the level codes whose frequency is a feature
        self.k = k
        self.max_count = max_count

    def __call__(self, targets: Encoded, synthetic: Encoded, radii: np.ndarray, memory_mb: float) -> np.ndarray:
        """One row of features per target (`radii`: each target's isolation distance)."""
        m = len(synthetic)
        kk = min(self.max_count, m)
        dist = nearest(targets, synthetic, k=kk, memory_mb=memory_mb)[0]
        near = np.repeat(dist[:, -1:], self.k, axis=1)
        near[:, : min(self.k, kk)] = dist[:, : self.k]
        radii = np.asarray(radii, dtype=float)[:, None]
        within = np.stack([(dist <= radii / 2.0).sum(axis=1), (dist <= radii).sum(axis=1)], axis=1) / m
        num = synthetic.numerical
        with np.errstate(all="ignore"):
            means = np.nan_to_num(np.nanmean(num, axis=0)) if num.shape[1] else np.empty(0)
            stds = np.nan_to_num(np.nanstd(num, axis=0)) if num.shape[1] else np.empty(0)
        freqs = [
            (synthetic.categorical[:, j][:, None] == levels[None, :]).mean(axis=0) for j, levels in self.codes.items()
        ]
        shared = np.concatenate([means, stds, *freqs])
        return np.hstack([near, within, np.repeat(shared[None, :], len(dist), axis=0)])


def frequent_codes(encoded: Encoded, levels: int = 10) -> dict[int, np.ndarray]:
    """For every categorical column, the codes of its `levels` most frequent values in `encoded`."""
    out = {}
    for j in range(encoded.categorical.shape[1]):
        codes, counts = np.unique(encoded.categorical[:, j], return_counts=True)
        top = codes[np.argsort(-counts, kind="stable")[:levels]]
        out[j] = np.sort(top)
    return out
