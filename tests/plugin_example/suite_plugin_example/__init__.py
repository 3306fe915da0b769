"""A third-party generator package, as small as one can be: it registers `example.shuffled_marginals`
through the `suite.generators` entry-point group (see the dist-info folder next to this package,
which is what `pip install` writes for a package whose pyproject.toml declares

    [project.entry-points."suite.generators"]
    "example.shuffled_marginals" = "suite_plugin_example:ShuffledMarginals"
)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd


class ShuffledMarginals:
    """Each column's training values shuffled independently, then perturbed: marginals, no dependence."""

    name: ClassVar[str] = "example.shuffled_marginals"

    def __init__(self, *, jitter: float = 0.05) -> None:
        self.jitter = jitter

    def fit(self, train: pd.DataFrame, metadata) -> ShuffledMarginals:  # noqa: ANN001
        self.train_ = train.copy()
        self.numeric_ = [c for c in train.columns if c in metadata.continuous and train[c].dtype.kind in "fi"]
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        if not hasattr(self, "train_"):
            raise RuntimeError("example.shuffled_marginals: call fit before sample")
        rng = np.random.default_rng(seed)
        out = {}
        for column in self.train_.columns:
            values = self.train_[column].to_numpy()[rng.integers(0, len(self.train_), n)]
            series = pd.Series(values, dtype=self.train_[column].dtype)
            if column in self.numeric_:
                spread = float(np.nanstd(self.train_[column].to_numpy(dtype=float))) or 1.0
                noisy = series.astype(float) + rng.normal(0.0, self.jitter * spread, n)
                series = noisy.round(0).astype(self.train_[column].dtype) if series.dtype.kind == "i" else noisy
            out[column] = series
        return pd.DataFrame(out)[list(self.train_.columns)]
