"""Independent marginals: each column drawn from its own distribution, no column pairs kept."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from generators._columns import decimals, kind, require_fit, restore, with_missing
from suite.encoding import as_float
from suite.metadata import Metadata
from suite.registry import generators


def _histogram(finite: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Atoms (values holding at least 1/bins of the mass, or all values when few are distinct),
    equal-frequency bin edges for the rest, and the probability of each atom then each bin."""
    if not len(finite):
        return np.array([]), np.array([]), np.array([])
    distinct, counts = np.unique(finite, return_counts=True)
    heavy = counts * bins >= len(finite)
    rest = finite[~np.isin(finite, distinct[heavy])]
    if len(distinct) - heavy.sum() <= bins:
        return distinct, np.array([]), counts / len(finite)
    edges = np.unique(np.quantile(rest, np.linspace(0.0, 1.0, bins + 1)))
    in_bins = np.histogram(rest, edges)[0]
    return distinct[heavy], edges, np.concatenate([counts[heavy], in_bins]) / len(finite)


@generators.register("marginals")
class MarginalsGenerator:
    """Draws every column independently from a histogram of its training values.

    Numbers and dates with more distinct values than `bins` come from an equal-frequency
    histogram: a bin is drawn with its observed share, then a value uniformly inside it,
    rounded to the column's precision. Values are not drawn near individual training values,
    so a tail record is not echoed (only the bin edges, which are quantiles, are learned).
    Columns with at most `bins` distinct values, and categories, are drawn with their
    observed frequencies; the missing share is kept. Dependence between columns is lost by
    design: this is the floor any model must beat (DataSynthesizer's independent mode).
    """

    name: ClassVar[str] = "marginals"

    def __init__(self, *, bins: int = 50) -> None:
        self.bins = bins

    def fit(self, train: pd.DataFrame, metadata: Metadata) -> MarginalsGenerator:
        self.template_ = train.iloc[:0].copy()
        self.columns_: dict[str, dict] = {}
        for column in train.columns:
            values = train[column]
            entry: dict = {"kind": kind(metadata, column), "missing": float(values.isna().mean())}
            if entry["kind"] == "categorical":
                counts = values.value_counts(dropna=True)
                entry["categories"] = counts.index.to_numpy(dtype=object)
                entry["p"] = (counts / counts.sum()).to_numpy(dtype=float) if len(counts) else np.array([])
            else:
                numbers = as_float(values)
                finite = numbers[np.isfinite(numbers)]
                entry["decimals"] = decimals(finite)
                entry["values"], entry["edges"], entry["p"] = _histogram(finite, self.bins)
            self.columns_[column] = entry
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "columns_")
        rng = np.random.default_rng(seed)
        out = {}
        for column, entry in self.columns_.items():
            like = self.template_[column]
            if entry["kind"] == "categorical":
                cats = entry["categories"]
                drawn = pd.Series(
                    cats[rng.choice(len(cats), size=n, p=entry["p"])] if len(cats) else [None] * n, dtype=like.dtype
                )
            else:
                values, edges, p = entry["values"], entry["edges"], entry["p"]
                if not len(p):
                    numbers = np.full(n, np.nan)
                else:
                    which = rng.choice(len(p), size=n, p=p)
                    numbers = np.empty(n)
                    atom = which < len(values)
                    numbers[atom] = values[which[atom]]
                    b = which[~atom] - len(values)
                    numbers[~atom] = rng.uniform(edges[b], edges[b + 1])
                if entry["decimals"] is not None:
                    numbers = np.round(numbers, entry["decimals"])
                drawn = restore(numbers, like)
            out[column] = with_missing(drawn, entry["missing"], rng)
        return pd.DataFrame(out)
