"""Missingness: does the synthetic table leave values out where, and together with what, the real one does?"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from suite.metrics._tabular import subsample
from suite.registry import checks
from suite.types import Context, Goal, Measurement, MeasurementSpec, names, utility

#: A missingness pattern held by fewer real rows than this is never named in a report.
MIN_PATTERN_ROWS = 10
#: Patterns listed by name in the details.
TOP_PATTERNS = 10
COMPARES = (
    "real: the training rows as given, before any imputation (a generator's `impute` fills gaps only in the rows "
    "it learns); synthetic: the generator's output; baseline: real vs the unseen holdout rows"
)
NO_GAPS = (
    "the synthetic table has no missing value where the real one has some: a generator fitted on imputed rows "
    "(`impute`) reproduces none, so these distances measure the missingness imputation removed"
)


def missing_mask(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Rows x columns, True where a value is missing."""
    if not columns:
        return np.zeros((len(frame), 0), dtype=bool)
    return frame[columns].isna().to_numpy(dtype=bool)


def rates(mask: np.ndarray) -> np.ndarray:
    """Share of rows missing each column (0 for an empty table)."""
    return mask.mean(axis=0) if len(mask) else np.zeros(mask.shape[1])


def co_missing(mask: np.ndarray) -> np.ndarray:
    """P(column i and column j both missing); the diagonal holds the missing rates."""
    m = mask.astype(np.float64)
    return (m.T @ m) / max(len(mask), 1)


def pattern_counts(*masks: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The distinct rows over all masks (each a pattern: which columns are missing) and each mask's counts of them."""
    p = masks[0].shape[1]
    packed = [np.packbits(m, axis=1) if p else np.zeros((len(m), 1), np.uint8) for m in masks]
    width = packed[0].shape[1]
    keys = [np.ascontiguousarray(k).view(np.dtype((np.void, width))).ravel() for k in packed]
    distinct, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    inverse = inverse.ravel()
    counts, start = [], 0
    for k in keys:
        counts.append(np.bincount(inverse[start : start + len(k)], minlength=len(distinct)))
        start += len(k)
    patterns = np.unpackbits(distinct.view(np.uint8).reshape(len(distinct), width), axis=1)[:, :p].astype(bool)
    return patterns, counts


def _share(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


def distances(real: np.ndarray, other: np.ndarray) -> tuple[float, float, float]:
    """(rate MAE, co-missing MAE, pattern TVD) between two missing masks.

    The co-missing MAE averages over the pairs of columns that have missing values in
    either table: the other pairs are never missing together in either, and would only
    dilute the mean with the number of complete columns.
    """
    p = real.shape[1]
    real_rates, other_rates = rates(real), rates(other)
    rate_mae = float(np.abs(real_rates - other_rates).mean()) if p else 0.0
    # a pair can be missing together only if both columns have missing values in one of the tables
    cols = np.flatnonzero((real_rates > 0) | (other_rates > 0))
    iu = np.triu_indices(len(cols), k=1)
    co_real, co_other = co_missing(real[:, cols]), co_missing(other[:, cols])
    co_mae = float(np.abs(co_real[iu] - co_other[iu]).mean()) if iu[0].size else 0.0
    _, (a, b) = pattern_counts(real, other)
    tvd = float(0.5 * np.abs(_share(a) - _share(b)).sum())
    return rate_mae, co_mae, tvd


def _r(v: float) -> float:
    return round(float(v), 6)


@checks.register("missingness")
class MissingnessMetric:
    """How faithfully the synthetic table reproduces where values are missing.

    Three distances between the real training table and the synthetic one: the mean absolute
    difference of the columns' missing rates; the mean absolute difference, over the pairs of
    columns that have missing values in either table, of the share of rows missing both
    columns (co-missingness); and the total
    variation distance between the distributions of row missingness patterns (the set of
    columns a row is missing). A table without missing values scores 0 on all three against
    another one. The baseline is the same distance between the training rows and the unseen
    holdout rows. The details name a pattern only when at least 10 real rows (or the report's
    `min_count`, if higher) hold it; rarer
    patterns, and patterns found only in the synthetic table, are reported together.

    What it compares (`details["compares"]`): the real rows as given, before any imputation, with the
    synthetic rows as the generator returned them. A generator with `impute` learned rows in which every
    gap was filled, so its output has none there: the distances then measure the missingness imputation
    removed (`details["note"]` says so when the synthetic table has no missing value at all).
    """

    name: ClassVar[str] = "missingness"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        utility(
            "missingness.rate_mae",
            Goal.MINIMIZE,
            "mean absolute difference of the columns' missing rates",
            bounds=(0, 1),
        ),
        utility(
            "missingness.co_missing_mae",
            Goal.MINIMIZE,
            "mean absolute difference of joint missing rates",
            bounds=(0, 1),
        ),
        utility(
            "missingness.pattern_tvd",
            Goal.MINIMIZE,
            "total variation distance between row missingness patterns",
            bounds=(0, 1),
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)

    def __init__(self, *, max_rows: int = 200_000) -> None:
        self.max_rows = max_rows

    def evaluate(self, ctx: Context) -> list[Measurement]:
        rng = np.random.default_rng(ctx.seed)
        columns = [str(c) for c in ctx.train.columns]
        train, holdout, synthetic = (
            subsample(f[columns], self.max_rows, rng) for f in (ctx.train, ctx.holdout, ctx.synthetic)
        )
        real, syn, hold = (missing_mask(f, columns) for f in (train, synthetic, holdout))
        values = distances(real, syn)
        baselines = distances(real, hold)

        real_rates, syn_rates, hold_rates = rates(real), rates(syn), rates(hold)
        with_missing = [j for j in range(len(columns)) if real_rates[j] > 0 or syn_rates[j] > 0]
        sub = np.ix_(with_missing, with_missing)
        matrix = lambda mask: [[_r(v) for v in row] for row in co_missing(mask)[sub]]  # noqa: E731

        patterns, (real_counts, syn_counts) = pattern_counts(real, syn)
        real_share, syn_share = _share(real_counts), _share(syn_counts)
        min_rows = max(MIN_PATTERN_ROWS, ctx.min_count)  # never below the report's
        named = np.flatnonzero(real_counts >= min_rows)
        named = named[np.argsort(-real_counts[named], kind="stable")]
        top, rest = named[:TOP_PATTERNS], named[TOP_PATTERNS:]
        rare = np.setdiff1d(np.arange(len(patterns)), named)
        details = {
            "compares": COMPARES,
            **({"note": NO_GAPS} if real.any() and not syn.any() else {}),
            "columns": columns,
            "real_rows": int(len(train)),
            "synthetic_rows": int(len(synthetic)),
            "holdout_rows": int(len(holdout)),
            "rates": {
                c: {"real": _r(real_rates[j]), "synthetic": _r(syn_rates[j]), "holdout": _r(hold_rates[j])}
                for j, c in enumerate(columns)
            },
            "co_missing": {
                "columns": [columns[j] for j in with_missing],
                "real": matrix(real),
                "synthetic": matrix(syn),
            },
            "patterns": [
                {
                    "missing": [columns[j] for j in np.flatnonzero(patterns[k])],
                    "real": _r(real_share[k]),
                    "synthetic": _r(syn_share[k]),
                }
                for k in top
            ],
            "other_patterns": {"real": _r(real_share[rest].sum()), "synthetic": _r(syn_share[rest].sum())},
            "rare_patterns": {"real": _r(real_share[rare].sum()), "synthetic": _r(syn_share[rare].sum())},
            "min_pattern_rows": min_rows,
            "real_patterns": int((real_counts > 0).sum()),
            "synthetic_patterns": int((syn_counts > 0).sum()),
        }
        names = ("missingness.rate_mae", "missingness.co_missing_mae", "missingness.pattern_tvd")
        meanings = (
            "mean absolute difference of the columns' missing rates, real (before any imputation) vs synthetic; "
            "baseline: real vs holdout",
            "mean absolute difference of the share of rows missing both columns, over pairs of columns "
            "with missing values, real vs synthetic",
            "total variation distance between the shares of row missingness patterns (which columns are missing)",
        )
        return [
            Measurement(name, value, Goal.MINIMIZE, baseline=base, meaning=meaning, details=details)
            for name, value, base, meaning in zip(names, values, baselines, meanings)
        ]
