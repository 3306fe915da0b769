"""ForestFlow: flow matching with gradient-boosted trees (Jolicoeur-Martineau, Fatras and Kachman, AISTATS 2024).

"Generating and imputing tabular data via diffusion and flow-based gradient-boosted trees"
replaces the neural network of a flow-matching model with a gradient-boosted regressor per
noise level. The ForestDiffusion package (1.0.6) trains one model per column per level in a
Python loop and needed 157 s for 1k rows x 14 columns with 2 levels; here each level is one
xgboost booster that predicts the whole velocity vector, and the defaults are sized so the
full COVID table (~10.9k rows) fits in about 15 s on one core.

xgboost (the CPU-only wheel `xgboost-cpu` is enough) is imported inside `fit`, so listing and
validating scenarios never loads it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from suite.encoding import as_float
from suite.generators._columns import decimals, kind, require_fit, restore
from suite.metadata import Metadata
from suite.registry import generators
from suite.seeding import fit_seed

#: Quantile knots kept per numerical column when `numeric_scaling="quantile"`.
_QUANTILES = 1000


@dataclass
class _Block:
    """How one training column lives in the encoded matrix, and how to read it back.

    Numbers and dates: one value column scaled to [-1, 1] (`low`, `high`), plus one missing
    indicator column (+1 missing, -1 present) when the column had missing values.
    Categories: a code block whose rows (`codebook`, levels x width, entries +-1) are the
    encodings of the levels; a sampled block is read back as the level whose code has the
    largest dot product with it (argmax of the dummies for a one-hot code).
    """

    column: str
    kind: str
    start: int
    width: int
    low: float = 0.0
    high: float = 0.0
    decimals: int | None = None
    missing: bool = False
    empty: bool = False
    levels: np.ndarray | None = None
    codebook: np.ndarray | None = None
    knots: np.ndarray | None = None


def _codebook(n_levels: int, onehot_max_levels: int) -> np.ndarray:
    """Codes of the levels in +-1: one column for two levels, dummies up to `onehot_max_levels`
    levels, the binary code of the level's index (analog bits) beyond."""
    if n_levels <= 2:
        return np.array([[1.0], [-1.0]])[:n_levels]
    if n_levels <= onehot_max_levels:
        return 2.0 * np.eye(n_levels) - 1.0
    bits = int(np.ceil(np.log2(n_levels)))
    return 2.0 * ((np.arange(n_levels)[:, None] >> np.arange(bits)) & 1).astype(float) - 1.0


@generators.register("forest_flow")
class ForestFlowGenerator:
    """Flow matching whose velocity field is a gradient-boosted forest per noise level (ForestFlow).

    Encoding. Numbers and dates go to [-1, 1]: by their mid-rank (`numeric_scaling="quantile"`,
    the default, read back through 1,000 quantiles of the column) or min-max scaled as in the
    paper (`"minmax"`, which squeezes a heavy-tailed column, such as a turnaround time whose
    maximum is 30,000 times its median, into a sliver next to -1). A column with missing values gets a binary
    missing indicator (+1 missing, -1 present) and its missing entries take the column mean
    for training; the paper lets xgboost route NaN inputs instead, but an explicit indicator
    also lets the generator *produce* missing values at the observed share. Categories (a
    missing value is one more level) with two levels take one +-1 column; up to
    `onehot_max_levels` levels they are dummy coded in +-1 and read back by argmax, as in the
    paper; beyond that they are coded in binary (ceil(log2 L) "analog bits", read back as the
    level whose code is nearest), because the cost of boosting grows with the square of the
    encoded width (inputs x outputs): 88 clinics cost 7 columns instead of 88.

    Training. The encoded table x1 is stacked `duplicate_k` times (fewer when that would
    exceed `max_rows` rows; at least once) and paired with Gaussian noise x0, drawn afresh for
    each level from `seed`. For each of the `n_t` levels t_i = i / n_t (i = 0 .. n_t - 1) one
    xgboost booster (hist, `n_estimators` rounds of depth `max_depth`) learns the velocity
    x1 - x0 from x_t = t x1 + (1 - t) x0. `multi_strategy="one_output_per_tree"` (the default)
    grows one tree per output column per round inside that booster; `"multi_output_tree"`
    grows one tree whose leaves hold the whole vector. Measured on the COVID slice, the
    multi-output trees were both slower (their split search costs bins x inputs x outputs
    per node) and much worse at keeping dependence (every split has to serve all outputs),
    so they are kept as an option only (same settings, COVID slice: correlation error 0.155
    against 0.102). The paper uses 50 levels, 100 duplicates and 100 trees of depth 7; these
    defaults (10 levels, <= 5 duplicates, 15 rounds of depth 6) fit the full COVID table in
    about 15 s on one core; 20 levels x 50 rounds of depth 7 took 9 times longer for a
    correlation error of 0.084 instead of 0.096. The fit's seed (`fit(..., seed=)`, the run's)
    draws the training noise and seeds xgboost, so that a refit gives the same model; the
    constructor's `seed`, when set, pins it instead. The sample's seed draws the starting noise.

    Sampling. Start from N(0, I) drawn with the sample seed and take one Euler step of size
    1 / n_t per level with that level's model (every model is used once, from t = 0), then
    decode: categories by argmax, numbers clipped to the training range and rounded to the
    column's precision, missing where the indicator is positive.
    """

    name: ClassVar[str] = "forest_flow"
    requires: ClassVar[tuple[str, ...]] = ("xgboost",)

    def __init__(
        self,
        *,
        n_t: int = 10,
        duplicate_k: int = 5,
        max_rows: int = 10_000,
        n_estimators: int = 15,
        max_depth: int = 6,
        learning_rate: float = 0.3,
        max_bin: int = 32,
        onehot_max_levels: int = 8,
        numeric_scaling: Literal["minmax", "quantile"] = "quantile",
        multi_strategy: Literal["multi_output_tree", "one_output_per_tree"] = "one_output_per_tree",
        n_jobs: int = 1,
        seed: int | None = None,
    ) -> None:
        self.n_t = n_t
        self.duplicate_k = duplicate_k
        self.max_rows = max_rows
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.max_bin = max_bin
        self.onehot_max_levels = onehot_max_levels
        self.multi_strategy = multi_strategy
        self.numeric_scaling = numeric_scaling
        self.n_jobs = n_jobs
        self.seed = seed

    # -- encoding ---------------------------------------------------------------------------

    def _encode(self, train: pd.DataFrame, metadata: Metadata) -> np.ndarray:
        blocks: list[_Block] = []
        parts: list[np.ndarray] = []
        start = 0
        for column in train.columns:
            values = train[column]
            k = kind(metadata, column)
            if k == "categorical":
                counts = values.value_counts(dropna=False)
                counts = counts[counts > 0]  # a Categorical dtype lists unobserved categories too
                levels = counts.index.to_numpy(dtype=object)
                codebook = _codebook(len(levels), self.onehot_max_levels)
                codes = pd.Index(counts.index).get_indexer(values)
                block = _Block(column, k, start, codebook.shape[1], levels=levels, codebook=codebook)
                parts.append(codebook[codes])
            else:
                numbers = as_float(values, column)
                present = np.isfinite(numbers)
                if not present.any():  # nothing to learn: the column is sampled as all missing
                    blocks.append(_Block(column, k, start, 0, empty=True))
                    continue
                low, high = float(numbers[present].min()), float(numbers[present].max())
                span = high - low
                knots = None
                if span <= 0:
                    scaled = np.zeros_like(numbers)
                elif self.numeric_scaling == "quantile":
                    ordered = np.sort(numbers[present])
                    mid = (np.searchsorted(ordered, numbers, "left") + np.searchsorted(ordered, numbers, "right")) / 2
                    scaled = 2.0 * mid / len(ordered) - 1.0
                    knots = np.quantile(ordered, np.linspace(0.0, 1.0, _QUANTILES))
                else:
                    scaled = 2.0 * (numbers - low) / span - 1.0
                scaled[~present] = scaled[present].mean()
                missing = not present.all()
                block = _Block(column, k, start, 1 + missing, low, high, decimals(numbers[present]), missing)
                block.knots = knots
                parts.append(scaled[:, None])
                if missing:
                    parts.append(np.where(present, -1.0, 1.0)[:, None])
            blocks.append(block)
            start += block.width
        self.blocks_ = blocks
        self.width_ = start
        if not parts:
            return np.zeros((len(train), 0), dtype=np.float32)
        return np.hstack(parts).astype(np.float32)

    def _decode(self, x: np.ndarray) -> pd.DataFrame:
        n = len(x)
        out = {}
        for b in self.blocks_:
            like = self.template_[b.column]
            if b.empty:
                out[b.column] = restore(np.full(n, np.nan), like)
                continue
            block = x[:, b.start : b.start + b.width].astype(np.float64)
            if b.kind == "categorical":
                chosen = b.levels[np.argmax(block @ b.codebook.T, axis=1)]
                chosen = np.array([None if pd.isna(v) else v for v in chosen], dtype=object)
                out[b.column] = pd.Series(chosen, dtype=like.dtype)
                continue
            numbers = np.clip(block[:, 0], -1.0, 1.0)
            if b.knots is not None:
                numbers = np.interp((numbers + 1.0) / 2.0, np.linspace(0.0, 1.0, len(b.knots)), b.knots)
            else:
                numbers = b.low + (numbers + 1.0) / 2.0 * (b.high - b.low)
            numbers = np.clip(numbers, b.low, b.high)
            if b.decimals is not None:
                numbers = np.round(numbers, b.decimals)
            if b.missing:
                numbers[block[:, 1] > 0] = np.nan
            out[b.column] = restore(numbers, like)
        return pd.DataFrame(out)

    # -- fit and sample ---------------------------------------------------------------------

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> ForestFlowGenerator:
        import xgboost as xgb

        if self.n_t < 1 or self.duplicate_k < 1 or self.n_estimators < 1:
            raise ValueError("forest_flow: n_t, duplicate_k and n_estimators must be at least 1")
        if len(train) == 0:
            raise ValueError("forest_flow: cannot fit on an empty table")
        started = time.perf_counter()
        self.template_ = train.iloc[:0].copy()
        self.copies_ = max(1, min(self.duplicate_k, self.max_rows // len(train)))
        x1 = np.tile(self._encode(train, metadata), (self.copies_, 1))
        drawn = fit_seed(self.seed if self.seed is not None else seed)
        rng = np.random.default_rng(drawn)
        params = {
            "objective": "reg:squarederror",
            "tree_method": "hist",
            "multi_strategy": self.multi_strategy,
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "max_bin": self.max_bin,
            "nthread": self.n_jobs,
            "seed": drawn % 2**31,
            "verbosity": 0,
        }
        self.models_: list[Any] = []
        if self.width_:
            for t in np.arange(self.n_t) / self.n_t:
                x0 = rng.standard_normal(x1.shape, dtype=np.float32)
                xt = (t * x1 + (1.0 - t) * x0).astype(np.float32)
                matrix = xgb.QuantileDMatrix(xt, label=x1 - x0, max_bin=self.max_bin, nthread=self.n_jobs)
                self.models_.append(xgb.train(params, matrix, num_boost_round=self.n_estimators))
        self.rows_ = len(train)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "models_", "sample")
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n, self.width_), dtype=np.float32)
        step = np.float32(1.0 / self.n_t)
        for model in self.models_ if n else []:
            velocity = np.asarray(model.inplace_predict(x), dtype=np.float32).reshape(n, self.width_)
            x = x + step * velocity
        return self._decode(x)

    def fit_info(self) -> dict[str, Any]:
        if not hasattr(self, "models_"):
            return {}
        return {
            "noise_levels": self.n_t,
            "rounds_per_level": self.n_estimators,
            "trees": self.n_t * self.n_estimators * (self.width_ if self.multi_strategy != "multi_output_tree" else 1),
            "multi_strategy": self.multi_strategy,
            "duplicates": self.copies_,
            "rows_per_level": self.rows_ * self.copies_,
            "encoded_columns": self.width_,
            "fit_seconds": round(self.fit_seconds_, 3),
        }
