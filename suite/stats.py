"""Shared statistics: bootstrap (plain and clustered, joint over samples), Wilson and Newcombe intervals, and the
difference of two groups' means adjusted for a covariate (`adjusted_difference`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _st

#: Bootstrap resamples for every interval the suite reports.
N_BOOTSTRAP = 1000


def bootstrap_ci(
    columns: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    rng: np.random.Generator,
    confidence: float = 0.95,
    n_boot: int = N_BOOTSTRAP,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over the rows of `columns`.

    `columns` is (n, k): each row is one unit (a synthetic record); `statistic` maps an
    array of shape (b, n, k) of resampled rows to b values, so resamples run vectorised.
    """
    data = np.asarray(columns, dtype=float)
    if data.ndim == 1:
        data = data[:, None]
    n = len(data)
    if n == 0:
        return (float("nan"), float("nan"))
    values = np.empty(n_boot)
    batch = max(1, min(n_boot, int(4e6 // max(n * data.shape[1], 1))))
    for start in range(0, n_boot, batch):
        stop = min(n_boot, start + batch)
        idx = rng.integers(0, n, size=(stop - start, n))
        values[start:stop] = statistic(data[idx])
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def wilson_ci(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    if trials == 0:
        return (float("nan"), float("nan"))
    z = float(_st.norm.ppf(0.5 + confidence / 2.0))
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def newcombe_difference_ci(x1: float, n1: float, x2: float, n2: float, confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 - p2 of two independent proportions.

    Method 10 of Newcombe (1998), Statistics in Medicine 17:873-890: the Wilson interval of
    each proportion, (l1, u1) and (l2, u2), combined as
    low = d - sqrt((p1 - l1)^2 + (u2 - p2)^2), high = d + sqrt((u1 - p1)^2 + (p2 - l2)^2),
    with d = p1 - p2. It keeps its coverage near the nominal level for small samples and
    for proportions near 0 or 1, where the Wald interval does not.
    """
    if n1 <= 0 or n2 <= 0:
        return (float("nan"), float("nan"))
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_ci(x1, n1, confidence)
    l2, u2 = wilson_ci(x2, n2, confidence)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return float(max(-1.0, low)), float(min(1.0, high))


#: The fewest people and clusters on each side for `adjusted_difference`'s normal interval; below it the caller
#: keeps its small-sample interval.
MIN_ADJUSTED = 30


@dataclass(frozen=True)
class AdjustedDifference:
    """`adjusted_difference`'s answer: the adjusted difference, its interval, the covariate's slope `theta`."""

    value: float
    ci: tuple[float, float]
    theta: float
    se: float
    clusters: int


def adjusted_difference(
    y: tuple[np.ndarray, np.ndarray],
    x: tuple[np.ndarray, np.ndarray],
    clusters: tuple[np.ndarray, np.ndarray],
    confidence: float = 0.95,
) -> AdjustedDifference | None:
    """mean(y_t) - mean(y_c), adjusted for a covariate x: minus theta * (mean(x_t) - mean(x_c)).

    Where the two groups are a random split of one population and x is computed without knowing the
    split, x's difference has mean 0, so the adjusted difference estimates the same quantity with less
    variance (regression adjustment of a randomised comparison, Lin 2013, Annals of Applied Statistics
    7:295-318; CUPED). theta is the within-group least-squares slope of y on x. The interval is normal
    with a cluster-robust standard error (units of one cluster share their noise, e.g. people of one
    quasi-identifier tuple; codes in one space across the two sides, as `cluster_codes` gives), never
    narrower than z^2 * sqrt(1/n_t^2 + 1/n_c^2) (Wilson's half-width at a share of 0: no spread in a
    sample is no evidence of no spread). None when either side has fewer than `MIN_ADJUSTED` units or
    clusters, x does not vary within the groups, or a value is not finite: the caller keeps its unadjusted
    interval.
    """
    y_t, y_c = (np.asarray(v, dtype=float) for v in y)
    x_t, x_c = (np.asarray(v, dtype=float) for v in x)
    c_t, c_c = (np.asarray(v) for v in clusters)
    n_t, n_c = len(y_t), len(y_c)
    if not all(np.isfinite(v).all() for v in (y_t, y_c, x_t, x_c)):
        return None
    if min(n_t, n_c) < MIN_ADJUSTED or min(len(np.unique(c_t)), len(np.unique(c_c))) < MIN_ADJUSTED:
        return None
    dx = np.concatenate([x_t - x_t.mean(), x_c - x_c.mean()])
    ssx = float(dx @ dx)
    if ssx <= 1e-12 * len(dx):
        return None
    dy = np.concatenate([y_t - y_t.mean(), y_c - y_c.mean()])
    theta = float(dx @ dy) / ssx
    r_t, r_c = y_t - theta * x_t, y_c - theta * x_c
    value = float(r_t.mean() - r_c.mean())
    # each unit's share of the estimate's error, summed per cluster (CR1: times G / (G - 1))
    share = np.concatenate([(r_t - r_t.mean()) / n_t, -(r_c - r_c.mean()) / n_c])
    codes = cluster_codes(np.concatenate([c_t, c_c]), n_t + n_c)
    per_cluster = np.bincount(codes, share)
    g = int(per_cluster.size)
    z = float(_st.norm.ppf(0.5 + confidence / 2.0))
    se = math.sqrt(float(per_cluster @ per_cluster) * g / max(g - 1, 1))
    half = max(z * se, z * z * math.sqrt(1.0 / n_t**2 + 1.0 / n_c**2))
    return AdjustedDifference(value, (max(-1.0, value - half), min(1.0, value + half)), theta, se, g)


def cluster_codes(labels: object | None, n: int) -> np.ndarray:
    """One cluster index per unit: units with equal `labels` (a patient id, a content hash) share one.

    `labels=None` makes every unit its own cluster.
    """
    if labels is None:
        return np.arange(n)
    codes = pd.factorize(np.asarray(labels, dtype=object), use_na_sentinel=False)[0]
    if len(codes) != n:
        raise ValueError(f"{len(codes)} cluster labels for {n} units")
    return codes


def bootstrap_weights(
    *clusters: np.ndarray, rng: np.random.Generator, n_boot: int = N_BOOTSTRAP, batch: int = N_BOOTSTRAP
) -> Iterator[tuple[int, list[np.ndarray]]]:
    """A joint cluster bootstrap's resamples, `batch` at a time: (index of the first, one (b, n_s) array per sample).

    For each sample independently (`clusters[s]`: the cluster of each unit, `cluster_codes`), a resample draws as many
    clusters as the sample holds, with replacement; a unit's weight is the number of draws of its cluster. Every
    bootstrap of the suite draws its resamples here.
    """
    codes = [np.asarray(c, dtype=np.int64) for c in clusters]
    sizes = [int(c.max()) + 1 if len(c) else 0 for c in codes]
    own = [len(c) == g and np.array_equal(c, np.arange(g)) for c, g in zip(codes, sizes, strict=True)]  # unit = cluster
    for start in range(0, n_boot, batch):
        b = min(n_boot, start + batch) - start
        weights = []
        for c, g, alone in zip(codes, sizes, own, strict=True):
            if not g:  # an empty sample: nothing to draw
                weights.append(np.zeros((b, 0)))
                continue
            drawn = rng.integers(0, g, size=(b, g)) + g * np.arange(b)[:, None]
            counts = np.bincount(drawn.ravel(), minlength=b * g).reshape(b, g)
            weights.append((counts if alone else counts[:, c]).astype(float))
        yield start, weights


def batch_size(units: int, cost: int = 8, n_boot: int = N_BOOTSTRAP) -> int:
    """Resamples per call of a statistic over `units` units holding `cost` floats each (about 4 million floats)."""
    return max(1, min(n_boot, int(4e6 // max(cost * units, 1))))


def cluster_bootstrap_ci(
    statistic: Callable[..., np.ndarray],
    *clusters: np.ndarray,
    rng: np.random.Generator,
    confidence: float = 0.95,
    n_boot: int = N_BOOTSTRAP,
    cost: int = 8,
    batch: int | None = None,
) -> tuple[float, float]:
    """Percentile interval of a statistic over a joint bootstrap of several samples, each resampled by cluster.

    `clusters[s]` gives the cluster of every unit of sample s (`cluster_codes`): synthetic rows by
    content, control rows by patient. Every resample draws, for each sample independently, as many
    clusters as it holds, with replacement; a unit's weight is the number of draws of its cluster.
    `statistic(*weights)` gets one (b, n_s) weight array per sample and returns b values, so a
    weighted statistic runs vectorised. Resampling the real side too puts the variance of the
    split (which people landed in control) inside the interval; clustering keeps one patient, or
    one row repeated n times, one unit. `cost` (floats per unit and resample the statistic holds)
    sizes the batches; `batch` (resamples per call of the statistic) overrides it. The batches
    decide how the generator's draws are grouped, so a bootstrap reproduced with fewer units
    (clusters summed up front) keeps its numbers by giving the batch the units would have had.
    """
    codes = [np.asarray(c, dtype=np.int64) for c in clusters]
    if not codes or any(len(c) == 0 for c in codes):
        return (float("nan"), float("nan"))
    values = np.empty(n_boot)
    if batch is None:
        batch = batch_size(sum(len(c) for c in codes), cost, n_boot)
    batch = max(1, min(n_boot, batch))
    for start, weights in bootstrap_weights(*codes, rng=rng, n_boot=n_boot, batch=batch):
        values[start : start + len(weights[0])] = statistic(*weights)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)
