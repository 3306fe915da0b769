"""Shared statistics: bootstrap and Wilson intervals."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
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
