"""Shared encodings of the utility metrics: columns as bins or category codes (`suite.encoding.fit_codes`), tables as
feature matrices. The real table defines every encoding; other tables are mapped onto it, so
a synthetic value the real data never had lands in an `other` code instead of a new one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from suite.encoding import BINS, MAX_LEVELS, ColumnCodes, as_float, fit_codes
from suite.metadata import Metadata


def is_numeric(metadata: Metadata, column: str) -> bool:
    """Numbers and dates are compared as numbers; every other sdtype as categories."""
    return column in metadata.continuous


def subsample(frame: pd.DataFrame, n: int | None, rng: np.random.Generator) -> pd.DataFrame:
    """At most `n` rows, drawn without replacement and kept in their original order."""
    if n is None or len(frame) <= n:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), n, replace=False))]


def discretize(
    real: pd.DataFrame,
    others: list[pd.DataFrame],
    metadata: Metadata,
    *,
    bins: int = BINS,
    max_levels: int = MAX_LEVELS,
) -> tuple[list[ColumnCodes], np.ndarray, list[np.ndarray]]:
    """Every column of `real` as codes fitted on `real`: (the codings, real codes, each other's codes).

    Code matrices have one column per table column, in the table's order.
    """
    codings = [fit_codes(real[c], is_numeric(metadata, c), bins=bins, max_levels=max_levels) for c in real.columns]
    encode = lambda frame: (
        np.column_stack([k.transform(frame[k.column]) for k in codings])
        if codings
        else np.empty((len(frame), 0), np.int64)
    )  # noqa: E731
    return codings, encode(real), [encode(o) for o in others]


@dataclass(frozen=True)
class Features:
    """Tables as float matrices for a model: numbers (NaN kept) and category codes side by side."""

    columns: tuple[str, ...]
    categorical: np.ndarray  # bool mask over columns
    codings: tuple[ColumnCodes | None, ...]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.columns)), dtype=np.float64)
        for j, (column, coding) in enumerate(zip(self.columns, self.codings)):
            out[:, j] = as_float(frame[column], column) if coding is None else coding.transform(frame[column])
        return out


def fit_features(
    real: pd.DataFrame, metadata: Metadata, columns: list[str], *, max_levels: int = MAX_LEVELS
) -> Features:
    """Feature encoding learned from `real`: numeric columns as floats, the others as codes
    (kept levels, `other`, `missing`), ready for HistGradientBoosting's `categorical_features`."""
    codings = tuple(
        None if is_numeric(metadata, c) else fit_codes(real[c], False, max_levels=max_levels) for c in columns
    )
    mask = np.array([k is not None for k in codings], dtype=bool)
    return Features(tuple(columns), mask, codings)


def _repeats(frame: pd.DataFrame) -> float:
    """Kish's design effect of whole-row repeats: sum of squared multiplicities over rows (1 = no repeats)."""
    if len(frame) == 0:
        return 1.0
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    counts = np.unique(hashes, return_counts=True)[1].astype(np.float64)
    return float((counts**2).sum() / len(frame))


def repeat_design_effect(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """How much the synthetic sample's whole-row repeats exceed those of a real sample of its size.

    A generator that resamples records (the `holdout` calibration generator draws unseen real
    rows with replacement) repeats rows far more often than independent draws do; two-sample
    tests that treat its rows as independent then reject too often. Dividing a test's sample
    size by this factor (Kish's design effect relative to the real table's natural repeats, on
    samples of equal size) is the first-order correction of Rao and Scott. Values at least 1.
    """
    n = min(len(real), len(synthetic))
    if n == 0:
        return 1.0
    rng = np.random.default_rng(0)
    return max(1.0, _repeats(subsample(synthetic, n, rng)) / _repeats(subsample(real, n, rng)))


def variance_inflation(n_real: int, n_synthetic: int, deff: float) -> float:
    """By how much a two-sample statistic's null variance grows when the synthetic sample has design
    effect `deff`: (1/n_real + deff/n_synthetic) / (1/n_real + 1/n_synthetic). Divide a chi-squared
    statistic by it (Rao-Scott, first order); 1 when `deff` is 1."""
    if n_real <= 0 or n_synthetic <= 0:
        return 1.0
    return (1.0 / n_real + deff / n_synthetic) / (1.0 / n_real + 1.0 / n_synthetic)
