"""Dependence: are the associations between columns of the real table kept in the synthetic one?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from suite.encoding import as_float
from suite.metrics._tabular import ColumnCodes, discretize, is_numeric, subsample
from suite.registry import checks
from suite.types import Context, Goal, Measurement, MeasurementSpec, names, utility

PEARSON = "pearson"
SPEARMAN = "spearman"
CRAMERS_V = "cramers_v"
CORRELATION_RATIO = "correlation_ratio"
#: Pairs listed in the details, worst first.
WORST = 10
#: A within-pair variance of standardised values below this counts as a constant column.
_VAR_TOL = 1e-12


@dataclass(frozen=True)
class Coded:
    """One table ready for the pair statistics: numbers as floats and every column as codes.

    `values` holds the numeric columns as float64 with NaN for missing (NaN in category columns);
    `codes` holds every column as integer codes fitted on the real table, the last code of each
    column being `missing` (categories: kept levels, `other`, `missing`; numbers: bins, `missing`).
    """

    values: np.ndarray
    codes: np.ndarray
    n_codes: tuple[int, ...]
    numeric: np.ndarray  # bool mask over columns


def encode(frame: pd.DataFrame, codes: np.ndarray, codings: list[ColumnCodes], *, ranks: bool = False) -> Coded:
    """The table as `Coded`; with `ranks`, numbers are replaced by their average ranks among present values."""
    from scipy.stats import rankdata

    numeric = np.array([k.numeric for k in codings], dtype=bool)
    values = np.full((len(frame), len(codings)), np.nan)
    for j, k in enumerate(codings):
        if k.numeric:
            x = as_float(frame[k.column], k.column)
            if ranks:
                present = np.isfinite(x)
                x[present] = rankdata(x[present])
            values[:, j] = x
    return Coded(values, codes, tuple(k.n_codes for k in codings), numeric)


def pearson_matrix(values: np.ndarray) -> np.ndarray:
    """Pearson correlation of every pair of columns over the rows where both are present.

    Columns are standardised first (correlation does not change; sums stay well conditioned
    even for dates in nanoseconds), then the pairwise-complete moments come from matrix
    products of the values and the presence mask. NaN where a pair has fewer than two rows
    or a column is constant over them.
    """
    n, p = values.shape
    out = np.full((p, p), np.nan)
    if p == 0 or n == 0:
        return out
    present = np.isfinite(values)
    counts = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, np.nansum(values, axis=0) / np.maximum(counts, 1), 0.0)
        centred = np.where(present, values - mean, 0.0)
        scale = np.sqrt((centred**2).sum(axis=0) / np.maximum(counts, 1))
    usable = (counts >= 2) & (scale > 0)
    z = np.where(present & usable, centred / np.where(usable, scale, 1.0), 0.0)
    m = (present & usable).astype(np.float64)
    pairs = m.T @ m  # rows where both are present
    sums = z.T @ m  # [i, j]: sum of z_i over rows where j is present too
    squares = (z * z).T @ m
    cross = z.T @ z
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_i = sums / pairs
        mean_j = mean_i.T
        cov = cross / pairs - mean_i * mean_j
        var_i = squares / pairs - mean_i**2
        var_j = var_i.T
        r = cov / np.sqrt(var_i * var_j)
    defined = (pairs >= 2) & (var_i > _VAR_TOL) & (var_j > _VAR_TOL)
    out[defined] = np.clip(r[defined], -1.0, 1.0)
    return out


def cramers_v(table: np.ndarray) -> float:
    """Bias-corrected Cramér's V of a contingency table (Bergsma 2013); NaN when undefined.

    Empty rows and columns are dropped; the chi-squared statistic gives phi^2, which is
    corrected as phi^2 - (k-1)(r-1)/(n-1) (floored at 0) and divided by the smaller of the
    corrected numbers of levels minus one, r - (r-1)^2/(n-1) - 1 and the same for k.
    """
    table = np.asarray(table, dtype=np.float64)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    r, k = table.shape
    n = table.sum()
    if r < 2 or k < 2 or n < 2:
        return float("nan")
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    phi2 = float(((table - expected) ** 2 / expected).sum() / n)
    phi2 = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    r_corr = r - (r - 1) ** 2 / (n - 1)
    k_corr = k - (k - 1) ** 2 / (n - 1)
    denominator = min(k_corr - 1.0, r_corr - 1.0)
    if denominator <= 0:
        return float("nan")
    return float(min(1.0, np.sqrt(phi2 / denominator)))


def correlation_ratio(values: np.ndarray, groups: np.ndarray, n_groups: int) -> float:
    """The correlation ratio eta = sqrt(between-group / total sum of squares) of numbers by category.

    `groups` are codes 0..n_groups-1; NaN values are left out. NaN when fewer than two rows
    or two groups remain, or the numbers are constant.
    """
    keep = np.isfinite(values)
    x, g = values[keep], groups[keep]
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan")
    counts = np.bincount(g, minlength=n_groups)
    if (counts > 0).sum() < 2:
        return float("nan")
    centred = x - x.mean()
    total = float((centred**2).sum())
    sums = np.bincount(g, weights=centred, minlength=n_groups)
    filled = counts > 0
    between = float((sums[filled] ** 2 / counts[filled]).sum())
    return float(min(1.0, np.sqrt(between / total)))


def _table(a: np.ndarray, ka: int, b: np.ndarray, kb: int) -> np.ndarray:
    return np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb)


def association_matrix(coded: Coded) -> np.ndarray:
    """Pearson (number-number), Cramér's V (category-category), eta (number-category); 1 on a defined diagonal."""
    p = coded.codes.shape[1]
    out = np.full((p, p), np.nan)
    num = np.flatnonzero(coded.numeric)
    cat = np.flatnonzero(~coded.numeric)
    out[np.ix_(num, num)] = pearson_matrix(coded.values[:, num])
    for a, i in enumerate(cat):
        ki = coded.n_codes[i]
        for j in cat[a + 1 :]:
            kj = coded.n_codes[j]
            # the last code of each column is `missing`: dropping that row and column leaves complete pairs
            table = _table(coded.codes[:, i], ki, coded.codes[:, j], kj)[: ki - 1, : kj - 1]
            out[i, j] = out[j, i] = cramers_v(table)
    for i in num:
        x = coded.values[:, i]
        for j in cat:
            kj = coded.n_codes[j]
            groups = coded.codes[:, j]
            keep = groups != kj - 1
            out[i, j] = out[j, i] = correlation_ratio(x[keep], groups[keep], kj)
    for i in range(p):
        if coded.numeric[i]:
            x = coded.values[:, i]
            varies = np.isfinite(x).sum() >= 2 and np.nanmax(x) > np.nanmin(x)
        else:
            varies = (np.bincount(coded.codes[:, i], minlength=coded.n_codes[i])[:-1] > 0).sum() >= 2
        out[i, i] = 1.0 if varies else np.nan
    return out


def nmi_matrix(codes: np.ndarray, n_codes: tuple[int, ...]) -> np.ndarray:
    """Normalised mutual information (arithmetic-mean normalisation, as sklearn's default) of every
    pair of coded columns, missing being a code of its own; NaN where a column is constant."""
    n, p = codes.shape
    out = np.full((p, p), np.nan)
    if n == 0:
        return out

    def entropy(counts: np.ndarray) -> float:
        q = counts[counts > 0] / n
        return float(-(q * np.log(q)).sum())

    h = [entropy(np.bincount(codes[:, i], minlength=n_codes[i])) for i in range(p)]
    for i in range(p):
        if h[i] <= 0:
            continue
        out[i, i] = 1.0
        for j in range(i + 1, p):
            if h[j] <= 0:
                continue
            table = _table(codes[:, i], n_codes[i], codes[:, j], n_codes[j]).astype(np.float64)
            rows, cols = table.sum(axis=1), table.sum(axis=0)
            nz = np.nonzero(table)
            joint = table[nz]
            mi = float((joint / n * (np.log(joint * n) - np.log(rows[nz[0]] * cols[nz[1]]))).sum())
            out[i, j] = out[j, i] = float(np.clip(mi / ((h[i] + h[j]) / 2.0), 0.0, 1.0))
    return out


def compare(real: np.ndarray, other: np.ndarray) -> tuple[float, np.ndarray, dict[str, int]]:
    """Mean absolute difference over the upper triangle: (value, |differences| with NaN where left out, counts).

    A pair undefined in the real table (a constant or empty column) is left out. A pair defined
    in the real table but not in the other one is scored as if the other had no association
    (0): a constant synthetic column keeps none of the real dependence.
    """
    p = real.shape[0]
    iu = np.triu_indices(p, k=1)
    r, o = real[iu], other[iu]
    real_defined = np.isfinite(r)
    other_missing = real_defined & ~np.isfinite(o)
    diff = np.where(real_defined, np.abs(r - np.where(np.isfinite(o), o, 0.0)), np.nan)
    full = np.full((p, p), np.nan)
    full[iu] = diff
    value = float(np.nanmean(diff)) if real_defined.any() else 0.0
    counts = {
        "pairs": int(r.size),
        "pairs_compared": int(real_defined.sum()),
        "pairs_undefined_in_real": int((~real_defined).sum()),
        "pairs_undefined_in_other_scored_as_zero": int(other_missing.sum()),
    }
    return value, full, counts


def _method(a_numeric: bool, b_numeric: bool, correlation: str) -> str:
    if a_numeric and b_numeric:
        return correlation
    return CORRELATION_RATIO if a_numeric or b_numeric else CRAMERS_V


def _rounded(matrix: np.ndarray) -> list[list[float | None]]:
    return [[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in matrix]


def _worst(columns: list[str], real: np.ndarray, other: np.ndarray, diff: np.ndarray, methods: Any) -> list[dict]:
    iu = np.triu_indices(len(columns), k=1)
    d = diff[iu]
    order = [k for k in np.argsort(-np.where(np.isfinite(d), d, -1.0), kind="stable") if np.isfinite(d[k])][:WORST]
    out = []
    for k in order:
        i, j = int(iu[0][k]), int(iu[1][k])
        entry = {
            "columns": [columns[i], columns[j]],
            "real": round(float(real[i, j]), 4),
            "synthetic": None if not np.isfinite(other[i, j]) else round(float(other[i, j]), 4),
            "abs_difference": round(float(d[k]), 4),
        }
        if methods is not None:
            entry["method"] = methods[i][j]
        out.append(entry)
    return out


@checks.register("dependence")
class DependenceMetric:
    """How far the synthetic table's pairwise associations are from the real table's.

    Two matrices over all columns are built for the real training table and for the synthetic
    one. The association matrix uses Pearson's correlation between numbers (dates as numbers,
    rows where both are present), the bias-corrected Cramér's V (Bergsma 2013) between
    categories and the correlation ratio eta between a number and a category (complete rows
    in both cases; categories beyond the `max_levels` most frequent real ones share one
    `other` level). With `correlation="spearman"` numbers are replaced by their ranks first
    (Spearman's correlation, eta of the ranks), which one extreme value cannot dominate.
    The mutual-information matrix is the normalised mutual information of every pair after
    discretisation (`bins` real quantile bins for numbers, `max_levels` levels for
    categories, missing as a code of its own). Each measurement is the mean absolute
    difference between the real and synthetic matrices over all column pairs; pairs
    undefined in the real table (a constant or empty column) are left out, and a pair
    undefined only in the synthetic table counts as no association there. The baseline is
    the same distance between the training rows and the unseen holdout rows.
    """

    name: ClassVar[str] = "dependence"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        utility(
            "dependence.correlation_mae",
            Goal.MINIMIZE,
            "mean absolute difference of pairwise associations, real vs synthetic",
            bounds=(0, 2),
        ),
        utility(
            "dependence.mutual_information_mae",
            Goal.MINIMIZE,
            "mean absolute difference of pairwise mutual information",
            bounds=(0, 1),
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)

    def __init__(
        self, *, max_rows: int = 50_000, bins: int = 10, max_levels: int = 50, correlation: str = SPEARMAN
    ) -> None:
        if correlation not in (PEARSON, SPEARMAN):
            raise ValueError(f"dependence: correlation must be {PEARSON!r} or {SPEARMAN!r}, not {correlation!r}")
        self.max_rows = max_rows
        self.bins = bins
        self.max_levels = max_levels
        self.correlation = correlation

    def evaluate(self, ctx: Context) -> list[Measurement]:
        rng = np.random.default_rng(ctx.seed)
        columns = [str(c) for c in ctx.train.columns]
        train, holdout, synthetic = (
            subsample(f[columns], self.max_rows, rng) for f in (ctx.train, ctx.holdout, ctx.synthetic)
        )
        codings, train_codes, (holdout_codes, synthetic_codes) = discretize(
            train, [holdout, synthetic], ctx.metadata, bins=self.bins, max_levels=self.max_levels
        )
        ranks = self.correlation == SPEARMAN
        coded = {
            "real": encode(train, train_codes, codings, ranks=ranks),
            "holdout": encode(holdout, holdout_codes, codings, ranks=ranks),
            "synthetic": encode(synthetic, synthetic_codes, codings, ranks=ranks),
        }
        assoc = {k: association_matrix(v) for k, v in coded.items()}
        nmi = {k: nmi_matrix(v.codes, v.n_codes) for k, v in coded.items()}

        numeric = [is_numeric(ctx.metadata, c) for c in columns]
        methods = [
            [None if i == j else _method(a, b, self.correlation) for j, b in enumerate(numeric)]
            for i, a in enumerate(numeric)
        ]
        corr, corr_diff, corr_counts = compare(assoc["real"], assoc["synthetic"])
        corr_base, _, _ = compare(assoc["real"], assoc["holdout"])
        mi, mi_diff, mi_counts = compare(nmi["real"], nmi["synthetic"])
        mi_base, _, _ = compare(nmi["real"], nmi["holdout"])

        rows = {"real_rows": int(len(train)), "synthetic_rows": int(len(synthetic)), "holdout_rows": int(len(holdout))}
        corr_details = {
            "columns": columns,
            "real": _rounded(assoc["real"]),
            "synthetic": _rounded(assoc["synthetic"]),
            "holdout": _rounded(assoc["holdout"]),
            "method": methods,
            "correlation": self.correlation,
            "worst_pairs": _worst(columns, assoc["real"], assoc["synthetic"], corr_diff, methods),
            **corr_counts,
            **rows,
        }
        mi_details = {
            "columns": columns,
            "real": _rounded(nmi["real"]),
            "synthetic": _rounded(nmi["synthetic"]),
            "holdout": _rounded(nmi["holdout"]),
            "worst_pairs": _worst(columns, nmi["real"], nmi["synthetic"], mi_diff, None),
            "bins": self.bins,
            "max_levels": self.max_levels,
            **mi_counts,
            **rows,
        }
        return [
            Measurement(
                "dependence.correlation_mae",
                corr,
                Goal.MINIMIZE,
                baseline=corr_base,
                details=corr_details,
                meaning=(
                    f"mean absolute difference of pairwise associations ({self.correlation}, Cramér's V, eta) "
                    "between real and synthetic; baseline: real vs holdout"
                ),
            ),
            Measurement(
                "dependence.mutual_information_mae",
                mi,
                Goal.MINIMIZE,
                baseline=mi_base,
                details=mi_details,
                meaning=(
                    "mean absolute difference of pairwise normalised mutual information (binned columns) "
                    "between real and synthetic; baseline: real vs holdout"
                ),
            ),
        ]
