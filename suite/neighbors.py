"""Nearest-neighbour search for mixed-type records under Gower's (or an encoded Euclidean) distance.

This is the single engine behind every distance-based privacy check of the suite
(distance to closest record, nearest-neighbour distance ratio, membership inference).

Usage::

    enc = GowerEncoder(numerical=["age", "pan_day"], categorical=["gender", "result"])
    enc.fit(real)                      # ranges and categories come from the real data
    dist, idx = nearest(enc.transform(synthetic), enc.transform(real), k=1)

Distance rule (Gower 1971, with his rule for missing values).  For rows x, y::

    d(x, y) = sum_j w_j * d_j / sum_j w_j

* numerical column: ``d_j = |x_j - y_j| / range_j``; ``w_j = 0`` when either value is
  missing, else 1.  A column whose fitted range is 0 (or that was entirely missing at fit
  time) has ``d_j = 0`` (and ``w_j = 1`` when both values are present).
* categorical column: ``d_j = 0`` for equal codes, else 1, and ``w_j = 1`` always.  A missing
  value is a level of its own: missing == missing matches, missing vs a value does not.
* values outside the fitted range give ``d_j > 1``: ranges come from the data given to
  ``GowerEncoder.fit`` (normally the real data), as is usual for privacy checks.
* if ``sum_j w_j == 0`` (every column is numerical and missing on one side) the distance is
  **1.0**: when nothing is known about a pair, nothing shows the two records to be close, and
  a privacy check must not report such a pair as a (distance 0) copy.

Encoded Euclidean rule (``metric="euclidean"``): the plain Euclidean distance between the rows
of the matrix that one-hot encodes the categories and keeps the range-scaled numbers, that is::

    d(x, y)**2 = sum_num (x_j - y_j)**2 / range_j**2 + 2 * (categorical mismatches)
                 + (numerical columns missing on exactly one side)

* numbers are range-scaled as for Gower (same encoder, same ``Encoded`` arrays);
* a category is a one-hot vector (missing is a level of its own, unseen values levels of their
  own), so one mismatch adds 1 + 1 to the squared distance: a distance of sqrt(2) per mismatch;
* a missing number is imputed by the column's fitted median (``GowerEncoder.median_``, carried
  by ``Encoded.medians``; for arrays built without it, the reference's median) and every column
  with a missing value on either side gets a 0/1 "missing" indicator: missing vs present adds
  ``(median - value)**2 + 1``, missing vs missing adds 0;
* with no column at all every distance is 0.

Speed (numpy backend): :func:`nearest` computes each tile in float32 first and keeps as
candidates the pairs within a proven bound on the float32 error (below 1e-4 of a distance unit
for tables of a few dozen columns in the fitted ranges) of each row's k-th smallest value; only
the candidates get their float64 value.  The results (indices, ties, distances bit for bit) are
those of the float64 computation, which :func:`distance_matrix` does; tiles with too many
candidates (heavily tied data) are redone in float64.  ``backend="torch"`` computes the float64
tiles with torch instead (CPU, or CUDA when available); torch is imported only then.

Speed (numba backend, the default when numba imports): :mod:`suite._neighbors_numba` compiles the
same float64 arithmetic in the same order (so the same values bit for bit, the same neighbours and
ties) with threads over blocks of query rows and the reference in cache-sized column blocks;
identical query rows are searched once (and identical reference rows, for k=1), then expanded.
``SUITE_NEIGHBORS_BACKEND=numpy`` (or ``backend="numpy"``) forces the numpy reference path.

Memory: :func:`nearest` never materialises the n x m distance matrix.  It works on tiles of
``rows x cols`` pairs whose working arrays (about 20-30 bytes per pair, summed over the worker
threads) stay under ``memory_mb``; only inputs, outputs and O(n + m) helper arrays come on top.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import logging
import os
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd

from suite.encoding import as_float

T = TypeVar("T")

__all__ = [
    "METRICS",
    "BACKENDS",
    "Encoded",
    "GowerEncoder",
    "NeighbourCache",
    "cached_nearest",
    "distance_matrix",
    "gower_matrix",
    "nearest",
]

# Tuning constants (measured on a 2-core AMD EPYC, numpy 1.26).
_TARGET_TILE_PAIRS = 1 << 19  # pairs per tile: large enough to amortise Python overhead
_MAX_TILE_COLS = 1 << 16  # references wider than this are split into column blocks
_COL_BLOCK = 1 << 15  # block width then (numpy broadcasting is ~3x slower below 8192)
_ITERATIVE_MAX_K = 32  # k up to this: k successive argmins; above: one partition
_PARALLEL_MIN_PAIRS = 1 << 21  # below this many pairs a single thread is used
_SCREEN_FLOAT32 = True  # nearest: float32 tiles screen candidates, exact float64 values for those only
_FALLBACK_SHARE = 16  # a tile with more than 1 in this many pairs as candidates is redone in float64

#: distances nearest() and distance_matrix() know
METRICS = ("gower", "euclidean")
#: engines nearest() can run: "numba" (compiled, the default when numba imports), "numpy" (the reference), "torch"
BACKENDS = ("numba", "numpy", "torch")
#: environment variable that forces a backend for backend="auto" (e.g. SUITE_NEIGHBORS_BACKEND=numpy)
BACKEND_ENV = "SUITE_NEIGHBORS_BACKEND"

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- encoding


@dataclass(frozen=True, eq=False)
class Encoded:
    """A table encoded for the search: scaled numericals and categorical codes."""

    numerical: np.ndarray  # (n, p_num) float64, scaled, NaN = missing
    categorical: np.ndarray  # (n, p_cat) int32 codes, -1 = missing
    #: (p_num,) fitted medians on the same scale (NaN: column entirely missing at fit time), or None.
    #: Only the "euclidean" metric reads them (to impute missing numbers).
    medians: np.ndarray | None = None

    def __post_init__(self) -> None:
        num = np.ascontiguousarray(self.numerical, dtype=np.float64)
        cat = np.ascontiguousarray(self.categorical, dtype=np.int32)
        if self.medians is not None:
            med = np.array(self.medians, dtype=np.float64).reshape(-1)
            if num.ndim == 2 and med.shape[0] != num.shape[1]:
                raise ValueError(f"Encoded medians has {med.shape[0]} values for {num.shape[1]} numerical columns")
            object.__setattr__(self, "medians", med)
        if num.ndim != 2 or cat.ndim != 2:
            raise ValueError("Encoded arrays must be two-dimensional (rows x columns)")
        if num.shape[0] != cat.shape[0]:
            raise ValueError(
                f"Encoded arrays disagree on the row count: {num.shape[0]} numerical "
                f"rows vs {cat.shape[0]} categorical rows"
            )
        object.__setattr__(self, "numerical", num)
        object.__setattr__(self, "categorical", cat)

    def __len__(self) -> int:
        return int(self.numerical.shape[0])


def _to_object(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=object)


def _sorted_if_possible(values: np.ndarray) -> np.ndarray:
    try:
        return np.array(sorted(values), dtype=object)
    except TypeError:  # mixed, unorderable types: keep the order of first appearance
        return values


class GowerEncoder:
    """Fits Gower's scaling on real data and turns frames into arrays the search uses.

    ``fit`` learns, for every numerical column, its minimum and range (max - min over all
    given frames, NaN ignored) and, for every categorical column, the union of its categories.
    ``transform`` then gives an :class:`Encoded`:

    * numerical: ``(value - fitted min) / fitted range`` as float64 (the shift does not change
      any distance); NaN / None / pd.NA / NaT / +-inf -> NaN.  Datetime (also tz-aware, compared
      in UTC) and timedelta columns are numerical, in nanoseconds.  Booleans and pandas nullable
      types work.  A column of zero or undefined range encodes as 0.0 (NaN stays NaN).
    * categorical: int32 codes over the fitted categories; a missing value is code -1 (its
      own level).  A value unseen at fit time gets a code >= ``len(categories_[col])`` that
      matches no fitted category; equal unseen values get equal codes in every ``transform``
      call of the same encoder (the encoder keeps a private registry of them).
    * medians: the fitted median of every numerical column on the same scale (``median_``; only
      the ``"euclidean"`` metric reads it, to impute missing numbers).
    """

    def __init__(self, *, numerical: Sequence[str] = (), categorical: Sequence[str] = ()) -> None:
        self.numerical = numerical
        self.categorical = categorical

    # ------------------------------------------------------------------ helpers
    def _columns(self) -> tuple[list[str], list[str]]:
        num = list(self.numerical)
        cat = list(self.categorical)
        for kind, cols in (("numerical", num), ("categorical", cat)):
            dup = sorted({c for c in cols if cols.count(c) > 1}, key=str)
            if dup:
                raise ValueError(f"{kind} columns listed more than once: {dup}")
        both = sorted(set(num) & set(cat), key=str)
        if both:
            raise ValueError(f"columns listed as both numerical and categorical: {both}")
        return num, cat

    @staticmethod
    def _check_present(frame: pd.DataFrame, num: list[str], cat: list[str]) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        for kind, cols in (("numerical", num), ("categorical", cat)):
            for col in cols:
                if col not in frame.columns:
                    raise ValueError(f"column {col!r} (listed as {kind}) is not in the frame")

    # ------------------------------------------------------------------ API
    def fit(self, *frames: pd.DataFrame) -> GowerEncoder:
        """Learn numerical minima / ranges and categorical levels from all ``frames``."""
        if not frames:
            raise ValueError("fit needs at least one DataFrame")
        num, cat = self._columns()
        for frame in frames:
            self._check_present(frame, num, cat)

        mins = np.full(len(num), np.nan)
        ranges = np.zeros(len(num))
        medians = np.full(len(num), np.nan)
        for j, col in enumerate(num):
            values = np.concatenate([as_float(f[col], col) for f in frames])
            if values.size and not np.isnan(values).all():
                lo, hi = np.nanmin(values), np.nanmax(values)
                mins[j] = lo
                span = hi - lo
                ranges[j] = span if np.isfinite(span) and span > 0 else 0.0
                medians[j] = (np.nanmedian(values) - lo) / ranges[j] if ranges[j] > 0 else 0.0

        categories: dict[str, pd.Index] = {}
        for col in cat:
            values = np.concatenate([_to_object(f[col]) for f in frames])
            values = values[~pd.isna(values)]
            uniq = _sorted_if_possible(pd.unique(values))
            categories[col] = pd.Index(uniq, dtype=object, name=col)

        self.numerical_ = num
        self.categorical_ = cat
        self.min_ = mins
        self.range_ = ranges
        self.median_ = medians  # on the encoded (scaled) axis, for the "euclidean" metric
        self.categories_ = categories
        self._unseen: dict[str, dict[Hashable, int]] = {col: {} for col in cat}
        return self

    def transform(self, frame: pd.DataFrame) -> Encoded:
        """Encode ``frame`` with the fitted scaling (see the class docstring)."""
        if not hasattr(self, "categories_"):
            raise RuntimeError("this GowerEncoder is not fitted yet: call fit() first")
        num, cat = self.numerical_, self.categorical_
        self._check_present(frame, num, cat)
        n = len(frame)

        numerical = np.empty((n, len(num)), dtype=np.float64)
        for j, col in enumerate(num):
            values = as_float(frame[col], col)
            if self.range_[j] > 0:
                numerical[:, j] = (values - self.min_[j]) / self.range_[j]
            else:
                numerical[:, j] = np.where(np.isnan(values), np.nan, 0.0)

        categorical = np.empty((n, len(cat)), dtype=np.int32)
        for j, col in enumerate(cat):
            categorical[:, j] = self._codes(col, _to_object(frame[col]))
        return Encoded(numerical=numerical, categorical=categorical, medians=getattr(self, "median_", None))

    def _codes(self, col: str, values: np.ndarray) -> np.ndarray:
        levels = self.categories_[col]
        missing = pd.isna(values)
        codes = levels.get_indexer(values).astype(np.int64)
        codes[missing] = -1
        unseen = (codes < 0) & ~missing
        if unseen.any():
            registry = self._unseen.setdefault(col, {})
            inverse, new_values = pd.factorize(values[unseen])
            new_codes = np.empty(len(new_values), dtype=np.int64)
            for t, value in enumerate(new_values):
                new_codes[t] = registry.setdefault(value, len(levels) + len(registry))
            codes[unseen] = new_codes[inverse]
        if codes.size and codes.max() > np.iinfo(np.int32).max:
            raise ValueError(f"too many distinct values in categorical column {col!r}")
        return codes.astype(np.int32)


# --------------------------------------------------------------------------- kernel


def _check_pair(query: Encoded, reference: Encoded) -> None:
    if not isinstance(query, Encoded) or not isinstance(reference, Encoded):
        raise TypeError("query and reference must be Encoded (see GowerEncoder.transform)")
    if query.numerical.shape[1] != reference.numerical.shape[1]:
        raise ValueError(
            f"query has {query.numerical.shape[1]} numerical columns, reference has {reference.numerical.shape[1]}"
        )
    if query.categorical.shape[1] != reference.categorical.shape[1]:
        raise ValueError(
            f"query has {query.categorical.shape[1]} categorical columns, reference has "
            f"{reference.categorical.shape[1]}"
        )


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return metric


def _compact_codes(qc: np.ndarray, rc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes renumbered per column over the values present in either table (equality is kept).

    The smallest unsigned type that holds them (uint8 for up to 256 levels) makes the
    comparisons of the tiles up to 4x cheaper than on int32.
    """
    p = qc.shape[1]
    if p == 0:
        return np.empty((len(qc), 0), np.uint8), np.empty((0, len(rc)), np.uint8)
    n = len(qc)
    # each column's codes kept in its own smallest type until the widest is known: no (rows x columns) int64
    # array (80 MB for 300k rows x 34 columns, at every search of census_100k)
    columns, levels = [], 1
    for j in range(p):
        uniq, inverse = np.unique(np.concatenate((qc[:, j], rc[:, j])), return_inverse=True)
        columns.append(inverse.reshape(-1).astype(_code_type(len(uniq))))
        levels = max(levels, len(uniq))
    dtype = _code_type(levels)
    q_out = np.empty((n, p), dtype=dtype)
    r_out = np.empty((p, len(rc)), dtype=dtype)
    for j, codes in enumerate(columns):
        q_out[:, j] = codes[:n]
        r_out[j] = codes[n:]
    return q_out, r_out


def _code_type(levels: int) -> type:
    """The smallest type `_compact_codes` keeps `levels` codes in."""
    return np.uint8 if levels <= 0x100 else np.uint16 if levels <= 0x10000 else np.int64


_UNIT32 = float(np.finfo(np.float32).eps) / 2  # unit roundoff of float32, 2**-24


class _Buffers:
    """Per-thread scratch memory for tiles of at most ``pairs`` pairs (8-byte slots, viewed as needed)."""

    def __init__(self, pairs: int, cnt_dtype: type, with_den: bool) -> None:
        self.tmp = np.empty(pairs, dtype=np.float64)
        self.mask = np.empty(pairs, dtype=np.bool_)
        self.cnt = np.empty(pairs, dtype=cnt_dtype)
        self.den = np.empty(pairs, dtype=np.float64) if with_den else None
        self.acc = np.empty(pairs, dtype=np.float64)

    @staticmethod
    def view(buf: np.ndarray, dtype: type, c: int, w: int) -> np.ndarray:
        return buf.view(dtype)[: c * w].reshape(c, w)


class _Side:
    """The numerical arrays of the kernel in one float precision."""

    def __init__(self, q_num: np.ndarray, r_num: np.ndarray, r_present: dict[int, np.ndarray], dtype: type) -> None:
        self.dtype = dtype
        self.q_num = q_num.astype(dtype)
        self.r_num = r_num.astype(dtype)
        self.r_present = {j: v.astype(dtype) for j, v in r_present.items()}


class _Kernel:
    """Distances of query rows [i0, i1) to reference rows [j0, j1), tile by tile.

    Gower: ``(mismatches + sum |q - r| over usable numbers) / usable columns``.  Euclidean: the
    *squared* distance ``2 * mismatches + indicator mismatches + sum (q - r)**2`` (the square root
    is taken on the selected neighbours only: it does not change the order).
    """

    def __init__(self, query: Encoded, reference: Encoded, metric: str = "gower") -> None:
        self.metric = _check_metric(metric)
        self.euclidean = metric == "euclidean"
        self.p_num = query.numerical.shape[1]
        self.p_cat = query.categorical.shape[1]
        self.p = self.p_num + self.p_cat
        qn = query.numerical
        rt = np.ascontiguousarray(reference.numerical.T)  # (p_num, m)
        q_nan, r_nan = np.isnan(qn), np.isnan(rt)
        self.q_cat, self.r_cat = _compact_codes(query.categorical, reference.categorical)
        if self.euclidean:
            # missing number -> the fitted median (or the reference's, when the arrays carry none),
            # plus a 0/1 "was missing" indicator column for every column with a missing value
            fill = reference.medians if reference.medians is not None else query.medians
            if fill is None:
                with np.errstate(all="ignore"), _quiet_nanmedian():
                    fill = np.nanmedian(reference.numerical, axis=0) if len(reference) else np.zeros(self.p_num)
            fill = np.where(np.isnan(fill), 0.0, fill)
            q_num = np.where(q_nan, fill[None, :], qn)
            r_num = np.where(r_nan, fill[:, None], rt)
            ind = np.flatnonzero(q_nan.any(axis=0) | r_nan.any(axis=1))
            self.q_ind = np.ascontiguousarray(q_nan[:, ind].astype(np.uint8))
            self.r_ind = np.ascontiguousarray(r_nan[ind].astype(np.uint8))
            self.q_nan = np.zeros_like(q_nan)
            self.r_nan = np.zeros_like(r_nan)
        else:
            q_num = np.where(q_nan, 0.0, qn)  # NaN -> 0, masked out below
            r_num = np.where(r_nan, 0.0, rt)
            self.q_ind = np.empty((len(qn), 0), np.uint8)
            self.r_ind = np.empty((0, rt.shape[1]), np.uint8)
            self.q_nan, self.r_nan = q_nan, r_nan
        # reference missing values (Gower), per numerical column: sorted positions (for sparse
        # zeroing) and a 0/1 presence row (for dense masking)
        self.r_nan_pos = [np.flatnonzero(row) for row in self.r_nan]
        r_present = {j: (~self.r_nan[j]).astype(np.float64) for j in range(self.p_num) if self.r_nan_pos[j].size}
        self.r_miss = self.r_nan.sum(axis=0).astype(np.float64)  # (m,)
        self.cnt_dtype = np.uint8 if self.p_cat <= 0xFF else np.uint16 if self.p_cat <= 0xFFFF else np.uint32
        self.any_nan = bool(self.q_nan.any() or self.r_nan.any())
        self.f64 = _Side(q_num, r_num, r_present, np.float64)
        self._f32: _Side | None = None
        # float32 screening (see nearest): only with numerical columns (with categorical columns
        # alone the counts are exact small integers) and values of a moderate size
        q_abs = np.abs(q_num).max(axis=0) if len(q_num) else np.zeros(self.p_num)
        r_abs = np.abs(r_num).max(axis=1) if r_num.shape[1] else np.zeros(self.p_num)
        if self.euclidean:
            bound = 2.0 * self.p_cat + self.q_ind.shape[1] + float(np.sum((q_abs + r_abs) ** 2))
        else:
            bound = self.p_cat + float(np.sum(q_abs + r_abs))
        # |float32 value - float64 value| <= err for every pair: inputs rounded (u each), one
        # rounding per operation and p + 3 for the running sum, times 2 for slack
        err = 2.0 * (self.p + 4 + self.q_ind.shape[1]) * _UNIT32 * (bound + 1.0)
        self.screen_tol = 2.0 * err  # a true top-k value is at most 2 err above the float32 k-th value
        self.can_screen = self.p_num > 0 and np.isfinite(bound) and self.screen_tol < 1e-2

    @property
    def f32(self) -> _Side:
        if self._f32 is None:
            self._f32 = _Side(self.f64.q_num, self.f64.r_num, self.f64.r_present, np.float32)
        return self._f32

    def tile(
        self,
        i0: int,
        i1: int,
        j0: int,
        j1: int,
        bufs: _Buffers,
        out: np.ndarray | None = None,
        side: _Side | None = None,
        scale: bool = True,
    ) -> np.ndarray:
        """The tile's values (see the class docstring) in ``side``'s precision.

        ``scale=False``: a Gower tile without missing numbers is left undivided by the column
        count (the same for every pair of the tile), which does not change any row's order.
        """
        side = side or self.f64
        dt = side.dtype
        c, w = i1 - i0, j1 - j0
        acc = bufs.view(bufs.acc, dt, c, w) if out is None else out
        tmp = bufs.view(bufs.tmp, dt, c, w)
        mask = bufs.view(bufs.mask, np.bool_, c, w)

        # categorical mismatches, counted in small integers, then one cast into acc
        if self.p_cat:
            cnt = bufs.view(bufs.cnt, self.cnt_dtype, c, w)
            qc, rc = self.q_cat[i0:i1], self.r_cat[:, j0:j1]
            if self.cnt_dtype is np.uint8:
                np.not_equal(qc[:, 0:1], rc[0], out=cnt.view(np.bool_))
                for j in range(1, self.p_cat):
                    np.not_equal(qc[:, j : j + 1], rc[j], out=mask)
                    np.add(cnt, mask.view(np.uint8), out=cnt)
            else:
                cnt.fill(0)
                for j in range(self.p_cat):
                    np.not_equal(qc[:, j : j + 1], rc[j], out=mask)
                    np.add(cnt, mask, out=cnt, casting="unsafe")
            np.copyto(acc, cnt, casting="unsafe")
            if self.euclidean:  # one-hot vectors: a mismatch adds 1 + 1 to the squared distance
                np.add(acc, acc, out=acc)
        else:
            acc.fill(0.0)
        for j in range(self.q_ind.shape[1]):  # euclidean: missing-value indicators
            np.not_equal(self.q_ind[i0:i1, j : j + 1], self.r_ind[j, j0:j1], out=mask)
            np.add(acc, mask, out=acc)

        # numerical |q - r| (already divided by the range) or (q - r)**2; missing pairs (Gower) add 0
        q_nan = self.q_nan[i0:i1]
        q_has = q_nan.any(axis=0)
        qn = side.q_num[i0:i1]
        r_has = np.zeros(self.p_num, dtype=bool)
        for j in range(self.p_num):
            np.subtract(qn[:, j : j + 1], side.r_num[j, j0:j1], out=tmp)
            if self.euclidean:
                np.multiply(tmp, tmp, out=tmp)
            else:
                np.abs(tmp, out=tmp)
            pos = self.r_nan_pos[j]
            if pos.size:
                lo, hi = np.searchsorted(pos, (j0, j1))
                if hi > lo:
                    r_has[j] = True
                    if 8 * (hi - lo) < w:  # few missing references: zero their columns
                        tmp[:, pos[lo:hi] - j0] = 0.0
                    else:
                        np.multiply(tmp, side.r_present[j][j0:j1], out=tmp)
            if q_has[j]:
                tmp[q_nan[:, j]] = 0.0
            np.add(acc, tmp, out=acc)
        if self.euclidean:
            return acc

        # divide by the number of usable columns: p minus the numerical columns missing on
        # either side; the divisor is materialised only when both sides have missing values
        if self.p == 0:
            acc.fill(1.0)
            return acc
        q_any, r_any = bool(q_has.any()), bool(r_has.any())
        den: Any
        if not q_any and not r_any:
            if not scale:
                return acc
            den = dt(self.p)
        elif not q_any:
            den = (self.p - self.r_miss[j0:j1])[None, :].astype(dt)
        elif not r_any:
            den = (self.p - q_nan.sum(axis=1).astype(np.float64))[:, None].astype(dt)
        else:
            den = bufs.view(bufs.den, dt, c, w)
            miss_q = q_nan.sum(axis=1).astype(np.float64)
            np.subtract((self.p - miss_q)[:, None].astype(dt), self.r_miss[j0:j1].astype(dt), out=den)
            for j in np.flatnonzero(q_has & r_has):  # missing on both sides: counted twice
                rows = np.flatnonzero(q_nan[:, j])
                den[rows] += self.r_nan[j, j0:j1]
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(acc, den, out=acc)
        if self.p_cat == 0 and (q_any or r_any):  # only then can no column be usable
            if isinstance(den, np.ndarray) and den.shape == acc.shape:
                np.equal(den, 0.0, out=mask)
                np.copyto(acc, 1.0, where=mask)
            else:
                np.copyto(acc, 1.0, where=np.equal(den, 0.0))
        return acc

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Exact float64 values for query rows ``a`` and reference rows ``b`` (1-d, same length).

        The same operations in the same order as :meth:`tile` in float64, so the values are
        bit-for-bit those of :func:`distance_matrix` (squared for the euclidean metric).
        """
        size = a.size
        if self.p_cat:
            cnt = np.zeros(size, dtype=self.cnt_dtype)
            for j in range(self.p_cat):
                np.add(cnt, self.q_cat[a, j] != self.r_cat[j, b], out=cnt, casting="unsafe")
            acc = cnt.astype(np.float64)
            if self.euclidean:
                acc += acc
        else:
            acc = np.zeros(size)
        for j in range(self.q_ind.shape[1]):
            acc += self.q_ind[a, j] != self.r_ind[j, b]
        side = self.f64
        miss = np.zeros(size, dtype=np.int64) if self.any_nan else None
        for j in range(self.p_num):
            t = side.q_num[a, j] - side.r_num[j, b]
            if self.euclidean:
                t *= t
            else:
                np.abs(t, out=t)
                if miss is not None:
                    gone = self.q_nan[a, j] | self.r_nan[j, b]
                    t[gone] = 0.0
                    miss += gone
            acc += t
        if self.euclidean:
            return acc
        if self.p == 0:
            return np.ones(size)
        den = float(self.p) if miss is None else (self.p - miss).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            acc /= den
        if self.p_cat == 0 and miss is not None:
            acc[den == 0] = 1.0
        return acc


class _quiet_nanmedian:
    """Silences numpy's 'All-NaN slice' warning of nanmedian (such columns are filled with 0)."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


# --------------------------------------------------------------------------- selection


def _select(d: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """The kk smallest entries of every row of ``d`` in (value, column) order; clobbers ``d``."""
    c, w = d.shape
    rows = np.arange(c)
    if kk <= _ITERATIVE_MAX_K:
        vals = np.empty((c, kk))
        idx = np.empty((c, kk), dtype=np.int64)
        for t in range(kk):
            best = d.argmin(axis=1)  # first occurrence: lowest column among ties
            idx[:, t] = best
            vals[:, t] = d[rows, best]
            if t + 1 < kk:
                d[rows, best] = np.inf
        return vals, idx
    kth = np.partition(d, kk - 1, axis=1)[:, kk - 1]
    flat = np.flatnonzero(d <= kth[:, None])  # includes every tie at the k-th value
    r = flat // w
    v = d.ravel()[flat]
    order = np.lexsort((v, r))  # stable: columns stay ascending within equal values
    counts = np.bincount(r, minlength=c)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pick = order[starts[:, None] + np.arange(kk)]
    return v[pick], flat[pick] - r[pick] * w


def _kth_value(d: np.ndarray, kk: int) -> np.ndarray:
    """The kk-th smallest value of every row of ``d`` (left unchanged)."""
    if kk == 1:
        return d.min(axis=1)
    if kk <= _ITERATIVE_MAX_K:
        c = d.shape[0]
        rows = np.arange(c)
        saved_i = np.empty((c, kk - 1), dtype=np.int64)
        saved_v = np.empty((c, kk - 1), dtype=d.dtype)
        for t in range(kk - 1):
            best = d.argmin(axis=1)
            saved_i[:, t] = best
            saved_v[:, t] = d[rows, best]
            d[rows, best] = np.inf
        kth = d.min(axis=1)
        for t in range(kk - 2, -1, -1):  # restore, last masked first
            d[rows, saved_i[:, t]] = saved_v[:, t]
        return kth
    return np.partition(d, kk - 1, axis=1)[:, kk - 1]


def _select_sparse(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, c: int, kk: int
) -> tuple[np.ndarray, np.ndarray]:
    """The kk smallest (value, column) candidates of each of the ``c`` rows (every row has >= kk)."""
    order = np.lexsort((cols, values, rows))
    counts = np.bincount(rows, minlength=c)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pick = order[starts[:, None] + np.arange(kk)]
    return values[pick], cols[pick]


def _accumulate(
    best_d: np.ndarray | None, best_i: np.ndarray | None, vals: np.ndarray, idx: np.ndarray, rows: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fold one column block's nearest (`vals`, `idx`) into the running best k of its `rows` rows."""
    if best_d is None and vals.shape[1] == k:
        return vals, idx
    if best_d is None or best_i is None:
        best_d = np.full((rows, k), np.inf)
        best_i = np.full((rows, k), -1, dtype=np.int64)
    return _merge(best_d, best_i, vals, idx, k)


def _merge(
    best_d: np.ndarray, best_i: np.ndarray, new_d: np.ndarray, new_i: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge two (value, index)-sorted candidate lists; every new index exceeds every old one."""
    all_d = np.concatenate((best_d, new_d), axis=1)
    all_i = np.concatenate((best_i, new_i), axis=1)
    order = np.argsort(all_d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(all_d, order, axis=1), np.take_along_axis(all_i, order, axis=1)


def _n_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _plan(
    n: int, m: int, k: int, memory_mb: float, kernel: _Kernel, threads: int | None = None
) -> tuple[int, int, int]:
    """(rows per tile, columns per tile, threads) under the memory budget."""
    bytes_per_pair = 8 + 8 + 1 + np.dtype(kernel.cnt_dtype).itemsize
    if kernel.any_nan:
        bytes_per_pair += 8
    if k > _ITERATIVE_MAX_K:
        bytes_per_pair += 8 + 1  # partition copy and candidate mask
    if kernel.can_screen and _SCREEN_FLOAT32:
        bytes_per_pair += 4  # candidates (at most 1 in _FALLBACK_SHARE pairs): positions, rows, values
    if threads is None:
        threads = min(_n_threads(), max(1, (n * m) // _PARALLEL_MIN_PAIRS))
    budget_pairs = int(memory_mb * 2**20 / threads // bytes_per_pair)
    max_pairs = max(1, min(budget_pairs, _TARGET_TILE_PAIRS))
    cols = m if m <= _MAX_TILE_COLS else _COL_BLOCK
    cols = max(1, min(cols, budget_pairs))
    rows = max(1, max_pairs // cols)
    threads = max(1, min(threads, -(-n // rows)))
    return rows, cols, threads


def _check_search(n: int, m: int, k: int, memory_mb: float, exclude_self: bool) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not memory_mb > 0:
        raise ValueError(f"memory_mb must be positive, got {memory_mb}")
    if exclude_self:
        if n != m:
            raise ValueError(f"exclude_self=True needs query and reference to be the same table, got {n} and {m} rows")
        if k > m - 1:
            raise ValueError(
                f"k={k} neighbours requested but the reference has only {m - 1} rows "
                f"besides the query row itself (exclude_self=True)"
            )
    elif k > m:
        raise ValueError(f"k={k} neighbours requested but the reference has only {m} rows")


class _Screen:
    """float32 screening of one tile, then exact float64 values for the candidates only.

    The float32 tile costs about half the float64 one (half the bytes per pass).  Every pair whose
    float32 value is within ``kernel.screen_tol`` (twice the proven bound on the float32 error) of
    the row's k-th smallest float32 value is a candidate; the candidates hold every true top-k
    pair, ties included, and get their exact value from :meth:`_Kernel.pairs`.  When a tile has
    too many candidates (heavily tied data), its float64 tile is computed instead, and a thread
    whose tiles keep falling back stops screening.
    """

    def __init__(self, kernel: _Kernel) -> None:
        self.kernel = kernel
        self.on = kernel.can_screen and _SCREEN_FLOAT32
        self.tiles = 0
        self.fallbacks = 0

    def select(
        self, i0: int, i1: int, j0: int, j1: int, bufs: _Buffers, kk: int, exclude_self: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        kernel = self.kernel
        c, w = i1 - i0, j1 - j0
        if self.on:
            d = kernel.tile(i0, i1, j0, j1, bufs, side=kernel.f32, scale=False)
            if exclude_self:
                _mask_diagonal(d, i0, i1, j0, j1)
            kth = _kth_value(d, kk).astype(np.float64)
            thr = np.nextafter((kth + kernel.screen_tol).astype(np.float32), np.float32(np.inf))
            mask = bufs.view(bufs.mask, np.bool_, c, w)
            np.less_equal(d, thr[:, None], out=mask)
            n_cand = int(np.count_nonzero(mask))
            self.tiles += 1
            if n_cand * _FALLBACK_SHARE <= c * w:
                flat = np.flatnonzero(mask)
                rows = flat // w
                cols = flat - rows * w
                values = kernel.pairs(rows + i0, cols + j0)
                if exclude_self:
                    values[rows + i0 == cols + j0] = np.inf
                return _select_sparse(rows, cols, values, c, kk)
            self.fallbacks += 1
            if self.tiles >= 4 and 2 * self.fallbacks > self.tiles:
                self.on = False  # the data is too tied for screening to pay off
        d = kernel.tile(i0, i1, j0, j1, bufs)
        if exclude_self:
            _mask_diagonal(d, i0, i1, j0, j1)
        return _select(d, kk)


def _mask_diagonal(d: np.ndarray, i0: int, i1: int, j0: int, j1: int) -> None:
    lo_s, hi_s = max(i0, j0), min(i1, j1)
    if lo_s < hi_s:
        diag = np.arange(lo_s, hi_s)
        d[diag - i0, diag - j0] = np.inf


def nearest(
    query: Encoded,
    reference: Encoded,
    *,
    k: int = 1,
    memory_mb: float = 256.0,
    exclude_self: bool = False,
    metric: str = "gower",
    backend: str = "auto",
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest reference rows of every query row under Gower (default) or encoded Euclidean distance.

    Returns (distances (n, k) float64 ascending, indices (n, k) int64).

    Ties are broken by the lower reference index, so results do not depend on ``memory_mb``.
    ``exclude_self=True`` means query and reference are the same table: row i never gets
    itself back (other rows identical to it still count, at distance 0).  A pair with no
    usable column is at distance 1.0 under Gower (see the module docstring).  The working arrays
    stay under ``memory_mb`` megabytes; the work is spread over the available CPU cores.

    ``metric="euclidean"``: see the module docstring (range-scaled numbers, one-hot categories,
    median + indicator for missing numbers).  ``backend="torch"`` computes the tiles with torch in
    float64 (on ``device``: ``"cuda"`` when ``torch.cuda.is_available()``, else ``"cpu"``, unless
    given); same results as numpy to about 1e-12.  ``backend="numba"`` runs the compiled kernel
    (:mod:`suite._neighbors_numba`: the same float64 values bit for bit, the same neighbours, ties
    included; identical query rows are searched once, and for k=1 identical reference rows too).
    ``"auto"`` (default) is numba when it imports, else numpy (said once in a log line); the
    environment variable ``SUITE_NEIGHBORS_BACKEND`` forces one (``numpy`` = the reference path).
    """
    _check_pair(query, reference)
    _check_metric(metric)
    backend = _resolve_backend(backend)
    k = int(k)
    n, m = len(query), len(reference)
    _check_search(n, m, k, memory_mb, exclude_self)
    out_d = np.empty((n, k), dtype=np.float64)
    out_i = np.empty((n, k), dtype=np.int64)
    if n == 0:
        return out_d, out_i
    for search in tuple(_HANDOVER) if backend != "torch" else ():  # a Dask cluster's blocked search
        options = {"k": k, "exclude_self": exclude_self, "metric": metric, "backend": backend, "memory_mb": memory_mb}
        found = search(query, reference, **options)
        if found is not None:
            return found

    kernel = _Kernel(query, reference, metric)
    if backend == "torch":
        _torch_nearest(kernel, n, m, k, memory_mb, exclude_self, device, out_d, out_i)
    elif backend == "numba":
        _numba_nearest(kernel, k, exclude_self, out_d, out_i)
    else:
        _numpy_nearest(kernel, n, m, k, memory_mb, exclude_self, out_d, out_i)
    if kernel.euclidean:
        np.sqrt(out_d, out=out_d)
    return out_d, out_i


#: searches nearest() offers its work to first; each returns None when it does not take it
_HANDOVER: list[Callable[..., tuple[np.ndarray, np.ndarray] | None]] = []


@contextlib.contextmanager
def handing_over(search: Callable[..., tuple[np.ndarray, np.ndarray] | None]) -> Iterator[None]:
    """While inside, :func:`nearest` first offers every numba/numpy search to ``search`` (same arguments, and
    the resolved backend); an answer other than None is returned as is.  Only
    :mod:`suite.neighbors_dask` uses it (on a Dask worker), so a local run never imports distributed."""
    _HANDOVER.append(search)
    try:
        yield
    finally:
        _HANDOVER.remove(search)


def _numpy_nearest(
    kernel: _Kernel,
    n: int,
    m: int,
    k: int,
    memory_mb: float,
    exclude_self: bool,
    out_d: np.ndarray,
    out_i: np.ndarray,
) -> None:
    rows, cols, threads = _plan(n, m, k, memory_mb, kernel)
    if kernel.can_screen and _SCREEN_FLOAT32:
        kernel.f32  # noqa: B018  (built once here, not by racing threads)

    def run(lo: int, hi: int) -> None:
        bufs = _Buffers(rows * cols, kernel.cnt_dtype, kernel.any_nan)
        screen = _Screen(kernel)
        for i0 in range(lo, hi, rows):
            i1 = min(i0 + rows, hi)
            c = i1 - i0
            best_d = best_i = None
            for j0 in range(0, m, cols):
                j1 = min(j0 + cols, m)
                vals, idx = screen.select(i0, i1, j0, j1, bufs, min(k, j1 - j0), exclude_self)
                idx += j0
                best_d, best_i = _accumulate(best_d, best_i, vals, idx, c, k)
            out_d[i0:i1] = best_d
            out_i[i0:i1] = best_i

    if threads == 1:
        run(0, n)
    else:
        per = -(-n // threads)
        per = -(-per // rows) * rows  # whole tiles per thread
        bounds = [(lo, min(lo + per, n)) for lo in range(0, n, per)]
        with ThreadPoolExecutor(max_workers=len(bounds)) as pool:
            for future in [pool.submit(run, lo, hi) for lo, hi in bounds]:
                future.result()


def _resolve_backend(backend: str) -> str:
    if backend == "auto":
        forced = os.environ.get(BACKEND_ENV, "").strip().lower()
        if forced and forced != "auto":
            if forced not in BACKENDS:
                raise ValueError(f"environment variable {BACKEND_ENV}={forced!r}: use one of {BACKENDS}")
            backend = forced
        else:
            return "numba" if _numba_module() is not None else "numpy"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or 'auto', got {backend!r}")
    if backend == "numba" and _numba_module() is None:
        raise ImportError(f"backend='numba' needs numba, which failed to import: {_numba_error[0]}")
    return backend


_numba_error: list[str] = [""]


def first_present(
    dist: np.ndarray, owner: np.ndarray, present: np.ndarray, backend: Literal["auto", "numba", "numpy"] = "auto"
) -> np.ndarray:
    """Per resample b and query row r (shape (b, n)), the distance to r's first kept neighbour whose owner
    `present[b]` holds: what a bootstrap that resamples the reference needs from one search with a few spare
    neighbours. `dist` (n, k) ascending and `owner` (n, k) (-1: never usable, e.g. the query's own record)
    come from the search; where none of the k is usable the k-th distance stands in. The numba kernel
    (`suite._neighbors_numba.first_present`) and this numpy path give the same numbers."""
    n, k = dist.shape
    kernel = _numba_module() if backend in ("auto", "numba") else None
    if kernel is not None and n and k:
        return kernel.first_present(
            np.ascontiguousarray(dist, dtype=np.float64),
            np.ascontiguousarray(owner, dtype=np.int64),
            np.ascontiguousarray(present, dtype=np.bool_),
        )
    if backend == "numba":
        raise RuntimeError(f"numba backend requested but unavailable ({_numba_error[0]})")
    out = np.broadcast_to(dist[:, -1], (len(present), n)).copy() if k else np.zeros((len(present), n))
    pending = np.arange(len(present) * n)
    for j in range(k):  # neighbour by neighbour, only for the (resample, row) pairs still without one
        b, r = np.divmod(pending, n)
        o = owner[r, j]
        found = (o >= 0) & present[b, np.maximum(o, 0)]
        out.ravel()[pending[found]] = dist[r[found], j]
        pending = pending[~found]
        if not len(pending):
            break
    return out


@functools.cache
def _numba_module() -> Any:
    """The compiled kernel's module, or None (with one log line) when numba cannot be imported."""
    try:
        return importlib.import_module("suite._neighbors_numba")
    except Exception as exc:  # noqa: BLE001  (any import failure: fall back to the reference path)
        _numba_error[0] = f"{type(exc).__name__}: {exc}"
        _log.warning("suite.neighbors: numba unavailable (%s); using the numpy reference path", _numba_error[0])
        return None


def _row_groups(*parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of every distinct row, ascending; each row's group) over the byte content of ``parts``."""
    n = len(parts[0])
    views = [np.ascontiguousarray(a).reshape(n, -1).view(np.uint8) for a in parts if a.size]
    mat = np.hstack(views) if views else np.empty((n, 0), np.uint8)
    if mat.shape[1] == 0:
        return np.zeros(min(n, 1), dtype=np.int64), np.zeros(n, dtype=np.int64)
    keys = np.ascontiguousarray(mat).view(np.dtype((np.void, mat.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first)  # groups numbered by their first row
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order].astype(np.int64), rank[inverse.reshape(-1)].astype(np.int64)


_DEDUP_SHARE = 0.9  # search distinct rows only when they are at most this share of the rows


def _numba_nearest(kernel: _Kernel, k: int, exclude_self: bool, out_d: np.ndarray, out_i: np.ndarray) -> None:
    """The compiled kernel, on distinct query rows (and, for k=1, distinct reference rows), expanded.

    ``exclude_self``: the k+1 nearest of each distinct row, then each row drops its own index (or,
    when absent, the last): the same set as the k nearest of the other rows, in the same order.
    """
    nb = _numba_module()
    f64 = kernel.f64
    kk = k + 1 if exclude_self else k
    q_parts = (f64.q_num, kernel.q_nan, kernel.q_cat, kernel.q_ind)
    first, group = _row_groups(*q_parts)
    q_dedup = len(first) <= _DEDUP_SHARE * len(group)
    if q_dedup:
        q_parts = tuple(np.ascontiguousarray(a[first]) for a in q_parts)
    r_parts = (f64.r_num, kernel.r_nan, kernel.r_cat, kernel.r_ind)
    r_first = None
    if kk == 1:
        r_first, _ = _row_groups(*(np.ascontiguousarray(a.T) for a in r_parts))
        if len(r_first) <= _DEDUP_SHARE * len(kernel.r_miss):
            r_parts = tuple(np.ascontiguousarray(a[:, r_first]) for a in r_parts)
        else:
            r_first = None
    r_miss = kernel.r_miss if r_first is None else np.ascontiguousarray(kernel.r_miss[r_first])
    r_col_nan = r_parts[1].any(axis=1)
    nq = len(q_parts[0])
    d = np.empty((nq, kk), dtype=np.float64)
    i = np.empty((nq, kk), dtype=np.int64)
    nb.topk(*q_parts, *r_parts, r_col_nan, r_miss, kernel.euclidean, kk, d, i)
    if r_first is not None:
        i = r_first[i]
    if q_dedup:
        d, i = d[group], i[group]
    if exclude_self:
        own = i == np.arange(len(i))[:, None]
        keep = np.argsort(own, axis=1, kind="stable")[:, :k]  # own index last, the others in order
        d, i = np.take_along_axis(d, keep, axis=1), np.take_along_axis(i, keep, axis=1)
    out_d[:] = d
    out_i[:] = i


def distance_matrix(query: Encoded, reference: Encoded, *, metric: str = "gower") -> np.ndarray:
    """Full distance matrix, for small tables and tests only (same rule and values as nearest)."""
    _check_pair(query, reference)
    _check_metric(metric)
    n, m = len(query), len(reference)
    out = np.empty((n, m), dtype=np.float64)
    if n == 0 or m == 0:
        return out
    kernel = _Kernel(query, reference, metric)
    rows = max(1, _TARGET_TILE_PAIRS // m)
    bufs = _Buffers(rows * m, kernel.cnt_dtype, kernel.any_nan)
    for i0 in range(0, n, rows):
        i1 = min(i0 + rows, n)
        kernel.tile(i0, i1, 0, m, bufs, out=out[i0:i1])
    if kernel.euclidean:
        np.sqrt(out, out=out)
    return out


def gower_matrix(query: Encoded, reference: Encoded) -> np.ndarray:
    """Full Gower distance matrix, for small tables and tests only (same rule as nearest)."""
    return distance_matrix(query, reference, metric="gower")


# --------------------------------------------------------------------------- one search per task


def fingerprint(encoded: Encoded) -> str:
    """A digest of an encoded table's content (numbers, codes, shapes, medians): equal tables, equal digests."""
    h = hashlib.blake2b(digest_size=16)
    for a in (encoded.numerical, encoded.categorical, encoded.medians):
        if a is None:
            h.update(b"none")
            continue
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


class NeighbourCache:
    """The neighbour searches of one task, each done once: every check that asks again reads the result.

    Keyed by the content of the encoded query and reference (:func:`fingerprint`), the metric and
    ``exclude_self``; a search with a larger k answers a smaller k (its first k columns: the order
    is total, ties by index).  Callers get copies.  ``searches`` and ``hits`` count what it did.
    Kept small: past ``max_mb`` of results the least recently used are dropped.  The runner gives one
    cache to a whole run, so the searches no release changes (control to train, candidates to the
    control pool) are done once for every task and the null release; after each task it calls
    :meth:`sweep`, which drops what that task did not use and, after the first task, what it made (its
    release's own searches), so the cache holds the shared searches, not every release's.  Not shared between
    processes (pickling gives an empty cache).
    """

    def __init__(self, max_mb: float = 512.0) -> None:
        self.max_mb = max_mb
        self.searches = 0
        self.hits = 0
        self.recalled = 0  # `remember` answered from memory
        self._store: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._used: set[tuple] = set()  # keys searched or read since the last `sweep`
        self._fresh: set[tuple] = set()  # keys first stored since the last `sweep`
        self._memo: dict[tuple, tuple[tuple, Any]] = {}  # `remember`: key -> (pinned objects, value)
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"max_mb": self.max_mb}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_mb"])  # type: ignore[misc]

    def nearest(
        self,
        query: Encoded,
        reference: Encoded,
        *,
        k: int = 1,
        exclude_self: bool = False,
        metric: str = "gower",
        **options: Any,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:func:`nearest` (same arguments and answer), searched at most once per key."""
        _check_pair(query, reference)
        key = (fingerprint(query), fingerprint(reference), _check_metric(metric), bool(exclude_self))
        with self._lock:
            self._used.add(key)
            found = self._store.pop(key, None)
            if found is not None:  # the most recently used last: the oldest unused is dropped first
                self._store[key] = found
        if found is not None and found[0].shape[1] >= k:
            self.hits += 1
            return found[0][:, :k].copy(), found[1][:, :k].copy()
        dist, idx = nearest(query, reference, k=k, exclude_self=exclude_self, metric=metric, **options)
        with self._lock:
            self.searches += 1
            if self._store.pop(key, None) is None:
                self._fresh.add(key)
            self._store[key] = (dist.copy(), idx.copy())
            while len(self._store) > 1 and self._mb() > self.max_mb:
                del self._store[next(iter(self._store))]
        return dist, idx

    def remember(self, key: tuple, pinned: tuple, make: Callable[[], T]) -> T:
        """`make()` once per `key`: what a check derives from the real tables alone and would otherwise redo for
        every release (the membership attack's candidates and their encoding). The key names the tables by
        identity (`id`), so `pinned` holds them: they stay alive, and no other table takes their id."""
        with self._lock:
            self._used.add(key)
            found = self._memo.get(key)
        if found is not None:
            self.recalled += 1
            return found[1]  # type: ignore[no-any-return]
        value = make()
        with self._lock:
            self._memo[key] = (pinned, value)
            self._fresh.add(key)
        return value

    def in_use(self) -> bool:
        """Whether anything was searched, read or remembered since the last sweep."""
        return bool(self._used)

    def sweep(self, *, keep_fresh: bool = True) -> int:
        """Drop every result not searched or read since the last sweep, and with `keep_fresh=False` every result
        first made since then too; return how many were dropped. Every task of a run runs the same checks, so a
        search no release changes is used by every task, and made by the first (or the null release): what a
        later task made, or did not use, belonged to one release alone."""
        with self._lock:
            drop = lambda key: key not in self._used or (not keep_fresh and key in self._fresh)  # noqa: E731
            stale = [key for key in self._store if drop(key)]
            for key in stale:
                del self._store[key]
            forgotten = [key for key in self._memo if drop(key)]
            for key in forgotten:
                del self._memo[key]
            self._used, self._fresh = set(), set()
        return len(stale) + len(forgotten)

    def _mb(self) -> float:
        return sum(d.nbytes + i.nbytes for d, i in self._store.values()) / 2**20


def cached_nearest(
    cache: NeighbourCache | None, query: Encoded, reference: Encoded, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """``cache.nearest(...)`` when there is a cache (``Context.neighbours``), else :func:`nearest`."""
    if cache is None:
        return nearest(query, reference, **kwargs)
    return cache.nearest(query, reference, **kwargs)


def isolation(
    encoded: Encoded, k: int = 5, *, memory_mb: float = 256.0, cache: NeighbourCache | None = None
) -> np.ndarray:
    """Each row's mean distance to its `k` nearest other rows (higher = more isolated): the vulnerability
    score by which the worst-case canary (`outlier_copy`) and the shadow attack choose people."""
    k = min(k, max(len(encoded) - 1, 1))
    return cached_nearest(cache, encoded, encoded, k=k, exclude_self=True, memory_mb=memory_mb)[0].mean(axis=1)


# --------------------------------------------------------------------------- torch backend


def _torch_device(device: str | None) -> Any:
    import torch  # lazily: importing torch costs about a second and is optional

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch, torch.device(device)


def _torch_nearest(
    kernel: _Kernel,
    n: int,
    m: int,
    k: int,
    memory_mb: float,
    exclude_self: bool,
    device: str | None,
    out_d: np.ndarray,
    out_i: np.ndarray,
) -> None:
    """The same tiles in torch float64 (torch spreads each operation over its own threads)."""
    torch, dev = _torch_device(device)
    f64 = kernel.f64

    def T(a: np.ndarray) -> Any:  # noqa: N802
        if a.dtype == np.uint16:  # torch has few uint16 kernels
            a = a.astype(np.int32)
        return torch.from_numpy(np.ascontiguousarray(a)).to(dev)

    q_num, r_num = T(f64.q_num), T(f64.r_num)
    q_cat, r_cat = T(kernel.q_cat), T(kernel.r_cat)
    q_ind, r_ind = T(kernel.q_ind), T(kernel.r_ind)
    q_nan, r_nan = T(kernel.q_nan), T(kernel.r_nan)
    q_has = kernel.q_nan.any(axis=0)
    r_has = kernel.r_nan.any(axis=1)
    q_miss = T(kernel.q_nan.sum(axis=1).astype(np.float64))
    r_miss = T(kernel.r_miss)
    rows, cols, _ = _plan(n, m, k, memory_mb, kernel, threads=1)
    on_cpu = dev.type == "cpu"
    # preallocated tile buffers: torch's fresh multi-megabyte temporaries cost page faults every time
    size = rows * cols
    acc_b = torch.empty(size, dtype=torch.float64, device=dev)
    tmp_b = torch.empty(size, dtype=torch.float64, device=dev)
    mask_b = torch.empty(size, dtype=torch.bool, device=dev)
    cnt_dtype = {np.uint8: torch.uint8, np.uint16: torch.int32}.get(kernel.cnt_dtype, torch.int64)
    cnt_b = torch.empty(size, dtype=cnt_dtype, device=dev)
    den_b = torch.empty(size, dtype=torch.float64, device=dev) if kernel.any_nan else None

    def tile(i0: int, i1: int, j0: int, j1: int) -> Any:
        c, w = i1 - i0, j1 - j0
        acc, tmp = acc_b[: c * w].view(c, w), tmp_b[: c * w].view(c, w)
        mask = mask_b[: c * w].view(c, w)
        mask8 = mask.view(torch.uint8)
        if kernel.p_cat:
            cnt = cnt_b[: c * w].view(c, w)
            cnt.zero_()
            for j in range(kernel.p_cat):
                torch.ne(q_cat[i0:i1, j : j + 1], r_cat[j, j0:j1], out=mask)
                cnt.add_(mask8 if cnt_dtype == torch.uint8 else mask)
            acc.copy_(cnt)
            if kernel.euclidean:
                acc.add_(acc)
        else:
            acc.zero_()
        for j in range(q_ind.shape[1]):
            torch.ne(q_ind[i0:i1, j : j + 1], r_ind[j, j0:j1], out=mask)
            acc.add_(mask)
        for j in range(kernel.p_num):
            torch.sub(q_num[i0:i1, j : j + 1], r_num[j, j0:j1], out=tmp)
            if kernel.euclidean:
                tmp.mul_(tmp)
            else:
                tmp.abs_()
                if r_has[j]:
                    tmp.masked_fill_(r_nan[j, j0:j1], 0.0)
                if q_has[j]:
                    tmp.masked_fill_(q_nan[i0:i1, j : j + 1], 0.0)
            acc.add_(tmp)
        if kernel.euclidean:
            return acc
        if kernel.p == 0:
            return acc.fill_(1.0)
        if not kernel.any_nan:
            return acc.div_(float(kernel.p))
        den = den_b[: c * w].view(c, w)
        torch.sub(kernel.p - q_miss[i0:i1, None], r_miss[None, j0:j1], out=den)
        for j in np.flatnonzero(q_has & r_has):  # missing on both sides: counted twice
            torch.logical_and(q_nan[i0:i1, j : j + 1], r_nan[j, j0:j1], out=mask)
            den.add_(mask)
        acc.div_(den)
        if kernel.p_cat == 0:
            torch.eq(den, 0.0, out=mask)
            acc.masked_fill_(mask, 1.0)
        return acc

    def select(d: Any, kk: int) -> tuple[np.ndarray, np.ndarray]:
        if on_cpu:
            return _select(d.numpy(), kk)
        if kk <= _ITERATIVE_MAX_K:  # argmin returns the first of equal values
            vals, idx = [], []
            ar = torch.arange(d.shape[0], device=dev)
            for t in range(kk):
                best = d.argmin(dim=1)
                idx.append(best)
                vals.append(d[ar, best])
                if t + 1 < kk:
                    d[ar, best] = float("inf")
            return torch.stack(vals, 1).cpu().numpy(), torch.stack(idx, 1).cpu().numpy()
        vals, idx = torch.sort(d, dim=1, stable=True)
        return vals[:, :kk].cpu().numpy(), idx[:, :kk].cpu().numpy()

    with torch.no_grad():
        for i0 in range(0, n, rows):
            i1 = min(i0 + rows, n)
            c = i1 - i0
            best_d = best_i = None
            for j0 in range(0, m, cols):
                j1 = min(j0 + cols, m)
                d = tile(i0, i1, j0, j1)
                if exclude_self:
                    lo_s, hi_s = max(i0, j0), min(i1, j1)
                    if lo_s < hi_s:
                        diag = torch.arange(lo_s, hi_s, device=dev)
                        d[diag - i0, diag - j0] = float("inf")
                vals, idx = select(d, min(k, j1 - j0))
                idx = idx.astype(np.int64) + j0
                best_d, best_i = _accumulate(best_d, best_i, vals, idx, c, k)
            out_d[i0:i1] = best_d
            out_i[i0:i1] = best_i
