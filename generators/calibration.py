"""Calibration generators: known answers that prove the checks work.

`identity` returns training rows (every privacy check must block it), `holdout` returns real
rows no generator saw (what "no leakage" looks like), and `uniform` draws each column
independently and uniformly over its observed domain (private, and useless).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from generators._columns import kind, require_fit, restore, with_missing
from suite.encoding import as_float
from suite.metadata import Metadata
from suite.registry import generators


def _draw_rows(rows: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """`n` rows of `rows`: each row once in random order, then again at random when n is larger."""
    m = len(rows)
    order = rng.permutation(m)
    idx = order[:n] if n <= m else np.concatenate([order, rng.integers(0, m, n - m)])
    return rows.iloc[idx].reset_index(drop=True)


@generators.register("identity")
class IdentityGenerator:
    """Returns the training rows themselves: a release that every privacy check must block."""

    copies_rows: ClassVar[bool] = True  # a canary: the contract kit does not hold copying against it
    calibration: ClassVar[bool] = True  # a yardstick, never chosen as the generator to release
    name: ClassVar[str] = "identity"
    #: Which part of the split the runner fits this generator on.
    fit_on: ClassVar[str] = "train"

    def __init__(self) -> None:
        pass

    def fit(self, train: pd.DataFrame, metadata: Metadata) -> IdentityGenerator:
        self.rows_ = train.copy()
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "rows_")
        return _draw_rows(self.rows_, n, np.random.default_rng(seed))


@generators.register("holdout")
class HoldoutGenerator(IdentityGenerator):
    """Returns real rows from the reference half of the holdout: the "no leakage" baseline.

    The runner fits it on the reference rows, which are disjoint from both the training rows
    and the control rows that the checks compare against.
    """

    name: ClassVar[str] = "holdout"
    fit_on: ClassVar[str] = "reference"


@generators.register("uniform")
class UniformGenerator:
    """Each column drawn independently and uniformly over its observed domain.

    Numbers and dates are uniform between the column's minimum and maximum; categories are
    equally likely; missing values keep the column's missing share.
    """

    calibration: ClassVar[bool] = True
    name: ClassVar[str] = "uniform"

    def __init__(self) -> None:
        pass

    def fit(self, train: pd.DataFrame, metadata: Metadata) -> UniformGenerator:
        self.columns_: dict[str, tuple[str, object, float]] = {}
        self.dtypes_ = train.dtypes.copy()
        self.template_ = train.iloc[:0].copy()
        for column in train.columns:
            values = train[column]
            missing = float(values.isna().mean())
            if kind(metadata, column) == "categorical":
                domain: object = values.dropna().unique()
            else:
                numbers = as_float(values)
                finite = numbers[np.isfinite(numbers)]
                domain = (float(finite.min()), float(finite.max())) if len(finite) else (np.nan, np.nan)
            self.columns_[column] = (kind(metadata, column), domain, missing)
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "columns_")
        rng = np.random.default_rng(seed)
        out = {}
        for column, (k, domain, missing) in self.columns_.items():
            like = self.template_[column]
            if k == "categorical":
                values = np.asarray(domain, dtype=object)
                drawn = pd.Series(
                    values[rng.integers(0, len(values), n)] if len(values) else [None] * n, dtype=like.dtype
                )
            else:
                low, high = domain  # type: ignore[misc]
                numbers = rng.uniform(low, high, n) if np.isfinite(low) else np.full(n, np.nan)
                if pd.api.types.is_integer_dtype(like.dtype):
                    numbers = rng.integers(int(low), int(high) + 1, n).astype(float)
                drawn = restore(numbers, like)
            out[column] = with_missing(drawn, missing, rng)
        return pd.DataFrame(out)


@generators.register("noisy_copy")
class NoisyCopyGenerator:
    """Training rows with small noise on every number and date: a near copy to be blocked.

    Each numerical or datetime value moves by a normal draw with standard deviation `noise`
    times the column's standard deviation (rounded back to integers where the column holds
    integers); categories and missing values stay as they were. No row is an exact copy
    in its numbers, so only distance and membership checks can catch it.
    """

    copies_rows: ClassVar[bool] = True  # a canary: the contract kit does not hold copying against it
    calibration: ClassVar[bool] = True
    name: ClassVar[str] = "noisy_copy"

    def __init__(self, *, noise: float = 0.05) -> None:
        self.noise = noise

    def fit(self, train: pd.DataFrame, metadata: Metadata) -> NoisyCopyGenerator:
        self.rows_ = train.copy()
        self.scales_ = {}
        for column in train.columns:
            if kind(metadata, column) != "categorical":
                numbers = as_float(train[column])
                self.scales_[column] = float(np.nanstd(numbers)) if np.isfinite(numbers).any() else 0.0
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "rows_")
        rng = np.random.default_rng(seed)
        rows = _draw_rows(self.rows_, n, rng)
        for column, scale in self.scales_.items():
            numbers = as_float(rows[column]) + rng.normal(0.0, self.noise * scale, n)
            rows[column] = restore(numbers, rows[column]).to_numpy()
        return rows


@generators.register("verbatim_copy")
class VerbatimCopyGenerator:
    """A clean model's release with a share of training rows pasted in verbatim: a leak of a few people.

    `fraction` of the n rows are distinct training rows, unchanged; the rest come from the clean
    generator named by `base` (fitted on the same rows, with default parameters). A gate that blocks
    `identity` but releases this one only catches wholesale copies.
    """

    copies_rows: ClassVar[bool] = True
    calibration: ClassVar[bool] = True
    name: ClassVar[str] = "verbatim_copy"

    def __init__(self, *, fraction: float = 0.05, base: str = "marginals") -> None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.fraction = fraction
        self.base = base

    def fit(self, train: pd.DataFrame, metadata: Metadata) -> VerbatimCopyGenerator:
        self.rows_ = train.copy()
        self.base_ = generators.get(self.base)().fit(train, metadata)
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "rows_")
        rng = np.random.default_rng(seed)
        copied = min(len(self.rows_), int(round(self.fraction * n)))
        pasted = self.rows_.iloc[rng.choice(len(self.rows_), copied, replace=False)]
        clean = self.base_.sample(n - copied, seed=seed)
        out = pd.concat([clean, pasted], ignore_index=True)
        return out.iloc[rng.permutation(n)].reset_index(drop=True)
