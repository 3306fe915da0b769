"""Sequential CART (synthpop's default method): each column drawn from a tree fitted on the previous ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from suite.encoding import as_float
from suite.generators._columns import kind, precision, require_fit, restore, round_to
from suite.metadata import Metadata
from suite.registry import generators
from suite.seeding import fit_seed

#: A value holding more than this share of a column's present values is drawn without smoothing
#: (synthpop's rule: a spike, such as a test's "not detected" value, stays a spike).
DOMINANT = 0.7


def reflect(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Values folded back into [low, high] at the bounds, as often as needed (kernel smoothing's
    boundary correction: a draw near the maximum does not pile up on the maximum)."""
    width = high - low
    if not width > 0:
        return np.where(np.isnan(values), values, low)
    folded = np.mod(values - low, 2 * width)
    return low + np.where(folded <= width, folded, 2 * width - folded)


def silverman(values: np.ndarray, start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Silverman's rule-of-thumb bandwidth (R's bw.nrd0), 0.9 min(sd, IQR/1.34) m^-1/5, of every group.

    `values` are sorted by group and by value within a group; group g holds
    values[start[g] : start[g] + count[g]]. The IQR is left out where it is 0; a group of
    fewer than two values or of one repeated value gets bandwidth 0.
    """
    if not len(values):
        return np.zeros(len(count))
    m = count.astype(np.float64)
    groups = np.repeat(np.arange(len(count)), count)
    last = len(values) - 1

    def quantile(q: float) -> np.ndarray:
        pos = q * np.maximum(m - 1, 0)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
        frac = pos - lo
        at = lambda k: values[np.minimum(start + k, last)]  # noqa: E731
        return at(lo) * (1 - frac) + at(hi) * frac

    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(groups, weights=values, minlength=len(count)) / m
        squares = np.bincount(groups, weights=(values - mean[groups]) ** 2, minlength=len(count))
        sd = np.sqrt(squares / (m - 1))
        iqr = quantile(0.75) - quantile(0.25)
        spread = np.where(iqr > 0, np.minimum(sd, iqr / 1.34), sd)
        bandwidth = 0.9 * spread * m**-0.2
    return np.where((count >= 2) & np.isfinite(bandwidth), bandwidth, 0.0)


def knn_radius(x: np.ndarray, k: int, chunk: int = 20_000) -> np.ndarray:
    """For each value, the smallest radius around it that holds k of the values, itself included
    (0 for a value held k times; the distance to the farthest of its k-1 nearest others)."""
    n = len(x)
    m = min(k, n) - 1
    if m <= 0:
        return np.zeros(n)
    order = np.argsort(x, kind="stable")
    s = x[order]
    offsets = np.arange(1, m + 1)
    radius = np.empty(n)
    for lo in range(0, n, chunk):
        idx = np.arange(lo, min(lo + chunk, n))[:, None]
        left, right = idx - offsets, idx + offsets
        d_left = np.where(left >= 0, s[idx] - s[np.maximum(left, 0)], np.inf)
        d_right = np.where(right < n, s[np.minimum(right, n - 1)] - s[idx], np.inf)
        radius[lo : lo + len(idx)] = np.partition(np.concatenate([d_left, d_right], axis=1), m - 1, axis=1)[:, m - 1]
    out = np.empty(n)
    out[order] = radius
    return out


@dataclass
class _LeafSampler:
    """Draws a value for each row from the training values in the leaf the row falls into.

    `tree` is None when there is nothing to condition on (the first column, a constant target):
    every row then lands in leaf 0, which holds all training values (a bootstrap of the column).
    """

    tree: Any
    values: np.ndarray  # training targets sorted by leaf, then by value
    start: np.ndarray  # per leaf id: first position in `values`
    count: np.ndarray  # per leaf id: number of training rows
    spread: np.ndarray | None  # per value: standard deviation of its kernel noise (None: no smoothing)

    @classmethod
    def fit(
        cls, X: np.ndarray | None, y: np.ndarray, *, classify: bool, params: dict[str, Any], smooth: int | None
    ) -> _LeafSampler:
        """`smooth`: None draws training values exactly; k smooths each drawn value with an adaptive
        Gaussian kernel (the larger of its leaf's Silverman bandwidth and its k-nearest-value radius)."""
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

        tree = None
        if X is not None and X.shape[1] and len(np.unique(y)) > 1:
            model = DecisionTreeClassifier if classify else DecisionTreeRegressor
            tree = model(**params).fit(X, y)
            leaves = tree.apply(X)
            size = tree.tree_.node_count
        else:
            leaves = np.zeros(len(y), dtype=np.intp)
            size = 1
        order = np.lexsort((y, leaves))  # by leaf, then by value within a leaf
        count = np.bincount(leaves, minlength=size)
        start = np.concatenate([[0], np.cumsum(count)[:-1]])
        values = y[order]
        spread = None
        if smooth is not None and len(y):
            spread = np.maximum(silverman(values, start, count)[leaves[order]], knn_radius(y, smooth)[order])
            distinct, counts = np.unique(y, return_counts=True)
            if counts.max() > DOMINANT * len(y):
                spread[values == distinct[np.argmax(counts)]] = 0.0
        return cls(tree, values, start, count, spread)

    def draw(self, X: np.ndarray | None, n: int, rng: np.random.Generator) -> np.ndarray:
        leaf = np.zeros(n, dtype=np.intp) if self.tree is None or n == 0 else self.tree.apply(X)
        count = self.count[leaf]
        pick = self.start[leaf] + np.minimum((rng.random(n) * count).astype(np.intp), count - 1)
        out = self.values[pick]
        if self.spread is not None:
            out = out + rng.normal(0.0, 1.0, n) * self.spread[pick]
        return out

    def shape(self) -> dict[str, int]:
        if self.tree is None:
            return {"depth": 0, "leaves": 1}
        return {"depth": int(self.tree.get_depth()), "leaves": int(self.tree.get_n_leaves())}


@generators.register("cart")
class CARTGenerator:
    """Sequential CART, as synthpop's default `method = "cart"`.

    Columns are generated one at a time in a visit order: the columns named in `order` first,
    then the others in the default order, which puts categories first, by decreasing number
    of levels (missing counting as one), then numbers and dates in the table's order
    (synthpop's advice to visit many-level categories early: as predictors they are cheap,
    as tree targets they are hard; on the covid data this order kept dependence as well as
    the table's order while synthetic rows sat farther from the training rows). The first
    column is a bootstrap of its training values, missing values included. Each next column
    comes from a decision tree (scikit-learn, `min_samples_leaf`, `max_depth`) fitted on the
    columns before it: numbers and dates as floats (shifted to start at 0; missing as -1 plus
    a 0/1 missing indicator when the column has missing values), categories as integer codes
    (most frequent level first; missing a level of its own). A synthetic row goes down the
    tree and its value is drawn from the training values of the leaf it lands in (synthpop's
    "sample from the leaf", not the leaf's mean), so conditional shapes and missingness travel
    with the predictors: a category's missing level is drawn like any other level, and a
    number first draws its missing indicator from a classification tree, then, when not
    missing, its value from a regression tree fitted on the rows where it is present.

    Privacy: every leaf holds at least `min_samples_leaf` training rows. The default (30;
    synthpop's is 5) was chosen on the covid data, where leaves of 5 put synthetic rows
    measurably nearer to the training rows than to unseen ones (distance-to-closest-record
    share about 0.60-0.63) and leaves of 30 did not (about 0.53), at a small cost in
    dependence; leaves of 1 without smoothing return the training rows themselves. Leaves
    count rows, not people: one person with many rows can fill a small leaf. With
    `smoothing` (synthpop's `smoothing = "density"`), a drawn number or date gets Gaussian
    kernel noise whose standard deviation is the larger of its leaf's Silverman bandwidth
    and the radius around the value that holds `min_samples_leaf` training values (an
    adaptive kernel: 0 for a value that many rows share, wide for an isolated one, so an
    extreme value such as one person's 61,000-hour turnaround is not echoed, even nearly).
    Draws are reflected back into the training range and rounded to the column's precision
    (decimals, or day/hour/... steps for dates). A value holding more than 70% of a column
    (a spike such as ct_result's 45, "not detected") is drawn exactly, as synthpop does.
    Smoothed numbers may take values of the column's precision that no training row has
    (an age of 13.4 where only infants have fractional ages). The fitted trees keep the
    training values of their leaves, as synthpop's do: the fitted model is not itself
    releasable. Categories are never invented: every drawn level is a training level.
    """

    name: ClassVar[str] = "cart"
    requires: ClassVar[tuple[str, ...]] = ("sklearn",)

    def __init__(
        self,
        *,
        order: list[str] | None = None,
        min_samples_leaf: int = 30,
        max_depth: int | None = None,
        smoothing: bool = True,
    ) -> None:
        self.order = order
        self.min_samples_leaf = min_samples_leaf
        self.max_depth = max_depth
        self.smoothing = smoothing

    def _visit_order(self, train: pd.DataFrame, metadata: Metadata) -> list[str]:
        """`order` first, then the other columns in the default order."""
        columns = [str(c) for c in train.columns]
        listed = list(self.order or [])
        unknown = [c for c in listed if c not in columns]
        if unknown:
            raise ValueError(f"cart: order names columns the table does not have: {unknown}")
        if len(set(listed)) != len(listed):
            raise ValueError("cart: order repeats a column")
        levels = {c: int(train[c].nunique(dropna=False)) for c in columns if kind(metadata, c) == "categorical"}
        default = sorted(levels, key=lambda c: -levels[c]) + [c for c in columns if c not in levels]
        return listed + [c for c in default if c not in listed]

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> CARTGenerator:
        """`seed` breaks the trees' ties between equally good splits."""
        if self.min_samples_leaf < 1:
            raise ValueError("cart: min_samples_leaf must be at least 1")
        params = {
            "min_samples_leaf": self.min_samples_leaf,
            "max_depth": self.max_depth,
            "random_state": fit_seed(seed) % 2**32,
        }
        self.template_ = train.iloc[:0].copy()
        self.order_ = self._visit_order(train, metadata)
        self.steps_: list[dict[str, Any]] = []
        features: list[np.ndarray] = []
        for column in self.order_:
            X = np.column_stack(features) if features else None
            step: dict[str, Any] = {"column": column, "kind": kind(metadata, column), "features": len(features)}
            if step["kind"] == "categorical":
                codes, uniques = pd.factorize(train[column], use_na_sentinel=True)
                counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
                by_count = np.argsort(-counts, kind="stable")
                rank = np.empty(len(uniques), dtype=np.int64)
                rank[by_count] = np.arange(len(uniques))
                coded = np.where(codes >= 0, rank[np.maximum(codes, 0)], len(uniques)) if len(uniques) else codes * 0
                levels = np.asarray(uniques, dtype=object)[by_count]
                if (codes < 0).any():
                    levels = np.append(levels, None)
                step["levels"] = levels
                step["model"] = _LeafSampler.fit(X, coded, classify=True, params=params, smooth=None)
                features.append(coded.astype(np.float64))
            else:
                x = as_float(train[column], column)
                missing = np.isnan(x)
                present = x[~missing]
                step["rounding"] = precision(present, step["kind"])
                step["range"] = (float(present.min()), float(present.max())) if len(present) else (0.0, 0.0)
                step["missing_model"] = (
                    _LeafSampler.fit(X, missing.astype(np.int64), classify=True, params=params, smooth=None)
                    if missing.any()
                    else None
                )
                step["value_model"] = (
                    _LeafSampler.fit(
                        None if X is None else X[~missing],
                        present,
                        classify=False,
                        params=params,
                        smooth=self.min_samples_leaf if self.smoothing else None,
                    )
                    if len(present)
                    else None
                )
                features.append(np.where(missing, -1.0, x - step["range"][0]))
                if missing.any():
                    features.append(missing.astype(np.float64))
            self.steps_.append(step)
        self.width_ = len(features)
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "steps_", "sample")
        rng = np.random.default_rng(seed)
        feats = np.zeros((n, self.width_))
        filled = 0
        out: dict[str, pd.Series] = {}
        for step in self.steps_:
            column = step["column"]
            X = feats[:, : step["features"]] if step["features"] else None
            like = self.template_[column]
            if step["kind"] == "categorical":
                coded = step["model"].draw(X, n, rng).astype(np.int64)
                out[column] = pd.Series(step["levels"][coded], dtype=like.dtype)
                feats[:, filled] = coded
                filled += 1
                continue
            missing = np.zeros(n, dtype=bool)
            if step["missing_model"] is not None:
                missing = step["missing_model"].draw(X, n, rng).astype(bool)
            numbers = np.full(n, np.nan)
            if step["value_model"] is not None:
                present = ~missing
                drawn = step["value_model"].draw(None if X is None else X[present], int(present.sum()), rng)
                low, high = step["range"]
                numbers[present] = round_to(reflect(drawn, low, high), step["rounding"])
            out[column] = restore(numbers, like)
            feats[:, filled] = np.where(missing, -1.0, numbers - step["range"][0])
            filled += 1
            if step["missing_model"] is not None:
                feats[:, filled] = missing
                filled += 1
        return pd.DataFrame({c: out[c].reset_index(drop=True) for c in self.template_.columns})

    def fit_info(self) -> dict[str, Any]:
        """The visit order and, per column, the depth and number of leaves of its trees."""
        require_fit(self, "steps_", "fit_info")
        trees: dict[str, Any] = {}
        for step in self.steps_:
            if step["kind"] == "categorical":
                trees[step["column"]] = step["model"].shape()
                continue
            entry: dict[str, Any] = step["value_model"].shape() if step["value_model"] is not None else {}
            if step["missing_model"] is not None:
                entry["missing_indicator"] = step["missing_model"].shape()
            trees[step["column"]] = entry
        return {
            "order": list(self.order_),
            "trees": trees,
            "min_samples_leaf": self.min_samples_leaf,
            "max_depth": self.max_depth,
            "smoothing": self.smoothing,
        }
