"""Fidelity: how closely the synthetic table follows the training table.

Two views: sdmetrics' QualityReport (column shapes, column pair trends and their mean) and a
test per column (Kolmogorov-Smirnov for numbers and dates, chi-squared for categories) with its
total-variation distance. The per-column details also carry the two distributions as shares
(histograms on shared bins, level shares) for the report's overlays: aggregates only, with
levels seen fewer than `min_count` times in the real data folded into `other`, and the histogram
range top- and bottom-coded at the real data's `min_count`-th smallest and largest value
(`suite.disclosure`); `min_count` is never below the report's (`Context.min_count`).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from suite.disclosure import coded_range
from suite.encoding import as_float
from suite.metadata import Metadata
from suite.metrics._tabular import fit_codes, is_numeric, repeat_design_effect, subsample, variance_inflation
from suite.registry import checks
from suite.types import Context, Goal, Measurement, MeasurementSpec, names, utility


def sdv_metadata(metadata: Metadata) -> dict[str, Any]:
    """The multi-table metadata dictionary sdmetrics' unified reports read."""
    return {"tables": {"table": metadata.to_sdv_dict()}, "relationships": []}


#: the sdtypes sdmetrics' QualityReport compares as categories (TVComplement, ContingencySimilarity)
_DISCRETE_SDTYPES = frozenset({"categorical", "ordinal", "boolean"})


def _as_ranks(real: pd.Series, synthetic: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """Both columns of strings as each value's rank among the sorted distinct values of the two, as
    floats with missing values NaN; None when either holds anything but strings and missing values.

    sdmetrics groups and counts the category columns hundreds of times (every pair of columns);
    grouping floats is many times faster than grouping Python strings. The map is one-to-one and
    keeps the order of values, so groups come out in the same order and every count, share and score
    is the same to the last bit (tests/test_fidelity.py compares both on real tables).
    """
    values = []
    for column in (real, synthetic):
        if column.dtype != object:
            return None
        present = column[column.notna()].to_numpy()
        if not all(isinstance(v, str) for v in present):
            return None
        values.append(present)
    levels = np.unique(np.concatenate(values)) if values[0].size + values[1].size else np.array([], dtype=object)

    def ranks(column: pd.Series, present: np.ndarray) -> pd.Series:
        out = np.full(len(column), np.nan)
        out[column.notna().to_numpy()] = np.searchsorted(levels, present)
        return pd.Series(out, index=column.index, name=column.name)

    return ranks(real, values[0]), ranks(synthetic, values[1])


def quality_inputs(
    real: pd.DataFrame, synthetic: pd.DataFrame, metadata: Metadata
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables as sdmetrics' QualityReport gets them: category columns of strings as order-keeping
    float ranks (`_as_ranks`), which leaves every score unchanged and makes the report several times faster."""
    real, synthetic = real.copy(deep=False), synthetic.copy(deep=False)
    for column, spec in metadata.columns.items():
        if spec.get("sdtype") in _DISCRETE_SDTYPES and column in real.columns and column in synthetic.columns:
            ranked = _as_ranks(real[column], synthetic[column])
            if ranked is not None:
                real[column], synthetic[column] = ranked
    return real, synthetic


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=float)


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]


def numeric_test(
    real: np.ndarray,
    synthetic: np.ndarray,
    bins: int,
    deff: float = 1.0,
    min_count: int = 10,
    axis: str = "number",
) -> dict[str, Any]:
    """Two-sample KS test of the observed values, and TVD over the real data's quantile bins.

    `deff` (at least 1) divides the synthetic sample size when the p-value is computed
    (`repeat_design_effect`); 1 leaves scipy's own p-value. The histogram for the report spans the
    real values' `coded_range`: values of either table beyond it count in the outer bins; its bins
    are log-spaced when the real values are long-tailed (`plot_edges`). `axis` ("number", "datetime"
    or "duration", values in nanoseconds) tells the report how to label the bins.
    """
    from scipy import stats

    r, s = real[np.isfinite(real)], synthetic[np.isfinite(synthetic)]
    if r.size == 0 or s.size == 0:
        both = r.size == s.size
        return {
            "test": "ks",
            "statistic": 0.0 if both else 1.0,
            "p_value": 1.0 if both else 0.0,
            "tvd": 0.0 if both else 1.0,
        }
    ks = stats.ks_2samp(r, s)
    p_value = float(ks.pvalue)
    if deff > 1.0:
        n_eff = s.size / deff
        p_value = float(stats.kstwobign.sf(ks.statistic * np.sqrt(r.size * n_eff / (r.size + n_eff))))
    edges = np.unique(np.quantile(r, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size < 2:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    code = lambda v: np.clip(np.searchsorted(edges, v, side="right") - 1, 0, edges.size - 2)  # noqa: E731
    p = _shares(np.bincount(code(r), minlength=edges.size - 1))
    q = _shares(np.bincount(code(s), minlength=edges.size - 1))
    low, high = coded_range(r, min_count)
    plot_edges, scale = histogram_edges(r, low, high, bins)
    clipped = lambda v: np.clip(v, plot_edges[0], plot_edges[-1])  # noqa: E731
    return {
        "test": "ks",
        "statistic": float(ks.statistic),
        "p_value": p_value,
        "tvd": float(0.5 * np.abs(p - q).sum()),
        "distribution": {
            "kind": "histogram",
            "axis": axis,
            "scale": scale,
            "edges": _rounded(plot_edges),
            "real": _rounded(_shares(np.histogram(clipped(r), plot_edges)[0])),
            "synthetic": _rounded(_shares(np.histogram(clipped(s), plot_edges)[0])),
        },
    }


def histogram_edges(real: np.ndarray, low: float, high: float, bins: int) -> tuple[np.ndarray, str]:
    """Bin edges over [low, high] for the report's histogram, and their scale ("linear" or "log").

    Equal-width bins draw a long-tailed column (costs, counts, lab values) as one tall bar and a
    flat line. The alternative is edges spaced evenly in log(1 + (x - low) / s), s a tenth of the
    median distance of the values above `low`; it is chosen when it shows the real values spread
    over more bins: an entropy (bits) at least 10% higher than equal widths give.
    """
    if not np.isfinite(low) or low == high:
        centre = low if np.isfinite(low) else 0.0
        return np.linspace(centre - 0.5, centre + 0.5, bins + 1), "linear"
    linear = np.linspace(low, high, bins + 1)
    inside = np.clip(real[np.isfinite(real)], low, high)
    above = inside[inside > low] - low
    if above.size == 0:
        return linear, "linear"
    s = float(np.median(above)) / 10.0
    logged = low + s * np.expm1(np.linspace(0.0, np.log1p((high - low) / s), bins + 1))
    logged[0], logged[-1] = low, high
    if np.any(np.diff(logged) <= 0):
        return linear, "linear"

    def bits(edges: np.ndarray) -> float:
        p = np.histogram(inside, edges)[0] / inside.size
        p = p[p > 0]
        return float(-(p * np.log2(p)).sum())

    return (logged, "log") if bits(logged) > 1.1 * bits(linear) else (linear, "linear")


def _pooled(real: np.ndarray, synthetic: np.ndarray, other: int, min_expected: float = 5.0) -> np.ndarray:
    """The 2 x K table of level counts with the `other` cell (levels beyond the kept ones, or never
    seen in the real data) and every level whose expected count is below `min_expected` (Cochran's
    rule) pooled into one cell, so sparse levels do not make the chi-squared test reject."""
    total = real + synthetic
    expected = total * min(real.sum(), synthetic.sum()) / max(total.sum(), 1)
    keep = expected >= min_expected
    keep[other] = False
    table = np.vstack(
        [np.concatenate([real[keep], [real[~keep].sum()]]), np.concatenate([synthetic[keep], [synthetic[~keep].sum()]])]
    )
    return table[:, table.sum(axis=0) > 0]


def categorical_test(
    real: pd.Series, synthetic: pd.Series, max_levels: int, min_count: int, deff: float = 1.0
) -> dict[str, Any]:
    """Chi-squared homogeneity test of the two level distributions (missing as a level; sparse levels
    pooled), and their TVD.

    The p-value is that of the statistic divided by the variance inflation `deff` causes
    (`variance_inflation`, Rao-Scott first-order correction).
    """
    from scipy import stats

    coding = fit_codes(real, False, max_levels=max_levels)
    r = np.bincount(coding.transform(real), minlength=coding.n_codes)
    s = np.bincount(coding.transform(synthetic), minlength=coding.n_codes)
    table = _pooled(r, s, other=len(coding.levels))
    if table.shape[1] < 2:
        statistic, p_value = 0.0, 1.0
    else:
        chi2 = stats.chi2_contingency(table, correction=False)
        statistic = float(chi2.statistic)
        p_value = float(stats.chi2.sf(statistic / variance_inflation(len(real), len(synthetic), deff), chi2.dof))
    p, q = _shares(r), _shares(s)
    shown = [i for i in range(coding.n_codes) if r[i] >= min_count and coding.names[i] != "other"]
    rest = [i for i in range(coding.n_codes) if i not in shown]
    levels = [coding.names[i] for i in shown] + (["other (rare or unseen levels)"] if rest else [])
    real_shares = [p[i] for i in shown] + ([p[rest].sum()] if rest else [])
    synth_shares = [q[i] for i in shown] + ([q[rest].sum()] if rest else [])
    return {
        "test": "chi2",
        "statistic": statistic,
        "p_value": p_value,
        "tvd": float(0.5 * np.abs(p - q).sum()),
        "distribution": {
            "kind": "levels",
            "levels": levels,
            "real": _rounded(np.array(real_shares)),
            "synthetic": _rounded(np.array(synth_shares)),
        },
    }


@checks.register("fidelity")
class FidelityMetric:
    """sdmetrics' QualityReport scores (0 to 1) and a two-sample test per column.

    `fidelity.columns_passed` is the share of columns whose test keeps the hypothesis that
    real and synthetic values come from one distribution at level `alpha`. Both tables are
    first subsampled to the same `test_rows` so the tests' power, and the share, do not grow
    with the table: on a large table every test rejects tiny differences. A synthetic table
    that repeats whole rows more often than real data does (a resampler) counts as the smaller
    sample it effectively is (`repeat_design_effect`). `min_count` (default: the report's) can
    only raise the report's `min_count` for the level shares and histogram range in the details.
    """

    name: ClassVar[str] = "fidelity"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        utility(
            "fidelity.quality",
            Goal.MAXIMIZE,
            "sdmetrics quality score: mean of column shapes and pair trends (1 = identical)",
            bounds=(0, 1),
        ),
        utility("fidelity.column_shapes", Goal.MAXIMIZE, "how well each column's distribution is kept", bounds=(0, 1)),
        utility(
            "fidelity.column_pairs",
            Goal.MAXIMIZE,
            "how well correlations and contingency tables between column pairs are kept",
            bounds=(0, 1),
        ),
        utility(
            "fidelity.columns_passed",
            Goal.MAXIMIZE,
            "share of columns whose two-sample test finds no difference",
            bounds=(0, 1),
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)
    requires: ClassVar[tuple[str, ...]] = ("sdmetrics",)

    def __init__(
        self,
        *,
        max_rows: int = 50_000,
        test_rows: int = 5_000,
        alpha: float = 0.01,
        bins: int = 20,
        max_levels: int = 50,
        min_count: int | None = None,
    ) -> None:
        self.max_rows = max_rows
        self.test_rows = test_rows
        self.alpha = alpha
        self.bins = bins
        self.max_levels = max_levels
        self.min_count = min_count

    def evaluate(self, ctx: Context) -> list[Measurement]:
        rng = np.random.default_rng(ctx.seed)
        train, synthetic = subsample(ctx.train, self.max_rows, rng), subsample(ctx.synthetic, self.max_rows, rng)
        return [*self._quality(train, synthetic, ctx.metadata), self._column_tests(ctx, rng)]

    def _quality(self, train: pd.DataFrame, synthetic: pd.DataFrame, metadata: Metadata) -> list[Measurement]:
        from sdmetrics.reports import QualityReport

        report = QualityReport()
        train, synthetic = quality_inputs(train, synthetic, metadata)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report.generate({"table": train}, {"table": synthetic}, sdv_metadata(metadata), verbose=False)
        properties = dict(zip(report.get_properties()["Property"], report.get_properties()["Score"]))
        shapes = report.get_details("Column Shapes")
        pairs = report.get_details("Column Pair Trends")
        shape_scores = {str(r["Column"]): float(r["Score"]) for _, r in shapes.iterrows()}
        worst_pairs = pairs.sort_values("Score").head(10)
        pair_scores = [
            {
                "columns": [str(r["Column 1"]), str(r["Column 2"])],
                "metric": str(r["Metric"]),
                "score": float(r["Score"]),
            }
            for _, r in worst_pairs.iterrows()
        ]
        return [
            Measurement(
                "fidelity.quality",
                float(report.get_score()),
                Goal.MAXIMIZE,
                details={"properties": {k: float(v) for k, v in properties.items()}},
                meaning="sdmetrics quality score: mean of column shapes and column pair trends (1 = identical)",
            ),
            Measurement(
                "fidelity.column_shapes",
                float(properties["Column Shapes"]),
                Goal.MAXIMIZE,
                details={"by_column": shape_scores},
                meaning="how well each column's distribution is kept (KS / total variation complement)",
            ),
            Measurement(
                "fidelity.column_pairs",
                float(properties["Column Pair Trends"]),
                Goal.MAXIMIZE,
                details={"worst_pairs": pair_scores},
                meaning="how well correlations and contingency tables between column pairs are kept",
            ),
        ]

    def _column_tests(self, ctx: Context, rng: np.random.Generator) -> Measurement:
        n = min(len(ctx.train), len(ctx.synthetic), self.test_rows)
        train, synthetic = subsample(ctx.train, n, rng), subsample(ctx.synthetic, n, rng)
        deff = repeat_design_effect(train, synthetic)
        min_count = max(self.min_count or 1, ctx.min_count)  # never below the report's
        by_column: dict[str, dict[str, Any]] = {}
        for column in ctx.train.columns:
            if is_numeric(ctx.metadata, column):
                axis = {"M": "datetime", "m": "duration"}.get(getattr(ctx.train[column].dtype, "kind", ""), "number")
                result = numeric_test(
                    as_float(train[column]), as_float(synthetic[column]), self.bins, deff, min_count, axis
                )
            else:
                result = categorical_test(train[column], synthetic[column], self.max_levels, min_count, deff)
            result["passed"] = bool(result["p_value"] >= self.alpha)
            by_column[str(column)] = result
        passed = sum(r["passed"] for r in by_column.values())
        failed = sorted((c for c, r in by_column.items() if not r["passed"]), key=lambda c: -by_column[c]["tvd"])
        return Measurement(
            "fidelity.columns_passed",
            passed / max(len(by_column), 1),
            Goal.MAXIMIZE,
            details={
                "rows_per_table": n,
                "repeat_design_effect": deff,
                "alpha": self.alpha,
                "failed_columns": failed,
                "by_column": by_column,
            },
            meaning=(
                f"share of columns whose KS or chi-squared test (on {n} rows of each table) finds no difference "
                f"at level {self.alpha:g}"
            ),
        )
