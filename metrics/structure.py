"""Structure: does the synthetic table fill the space of the real one the way unseen real rows do?

Three views taken from the NHS synthetic-data pipeline:
Gower distances from synthetic rows to the training rows, principal components on shared axes,
and the Voas-Williamson goodness of fit of every pairwise cross-tabulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import ClassVar

import numpy as np
import pandas as pd

from suite.disclosure import coded_range
from suite.encoding import as_float
from suite.metadata import Metadata
from suite.metrics._tabular import (
    ColumnCodes,
    discretize,
    fit_codes,
    is_numeric,
    repeat_design_effect,
    subsample,
    variance_inflation,
)
from suite.neighbors import GowerEncoder, NeighbourCache, cached_nearest
from suite.registry import checks
from suite.types import Context, Goal, Measurement, MeasurementSpec, names, utility

#: Bins of the distance histograms in the details.
_DISTANCE_BINS = 30
#: Features listed per principal component in the details.
_TOP_FEATURES = 5
#: Cross-tabulations listed in the details (the worst by chi2 / dof).
_WORST_TABLES = 20
#: Significance level of the Voas-Williamson fit test.
_ALPHA = 0.05


# --------------------------------------------------------------------------- Gower distances


def distances_to_train(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    queries: list[pd.DataFrame],
    metadata: Metadata,
    *,
    memory_mb: float = 256.0,
    cache: NeighbourCache | None = None,
) -> list[np.ndarray]:
    """Gower distance from every row of each query table to its nearest training row (searched through
    `cache`, the task's `Context.neighbours`, when given).

    Uses the suite's engine (`suite.neighbors`): numbers and dates range-scaled, everything
    else compared as categories; ranges and levels are fitted on the real rows (train and holdout).
    """
    columns = list(train.columns)
    encoder = GowerEncoder(
        numerical=[c for c in columns if is_numeric(metadata, c)],
        categorical=[c for c in columns if not is_numeric(metadata, c)],
    ).fit(train, holdout)
    reference = encoder.transform(train)
    return [
        cached_nearest(cache, encoder.transform(q[columns]), reference, memory_mb=memory_mb)[0][:, 0] for q in queries
    ]


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs."""
    if a.size == 0 or b.size == 0:
        return 0.0
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    gap = np.searchsorted(a, points, side="right") / a.size - np.searchsorted(b, points, side="right") / b.size
    return float(np.abs(gap).max())


def _quantiles(d: np.ndarray) -> dict[str, float]:
    if d.size == 0:
        return {"p05": 0.0, "p50": 0.0, "p95": 0.0}
    return dict(zip(("p05", "p50", "p95"), (float(v) for v in np.quantile(d, [0.05, 0.5, 0.95]))))


# --------------------------------------------------------------------------- shared PCA axes


@dataclass(frozen=True)
class _Numeric:
    column: str
    mean: float
    std: float
    median: float
    indicator: bool  # a missing-indicator feature follows the value


@dataclass(frozen=True)
class _Categorical:
    coding: ColumnCodes
    kept: np.ndarray  # the codes present in the real data, one feature each


@dataclass(frozen=True)
class Axes:
    """Real and synthetic tables as one float matrix, every scale learned from the real table.

    Numbers are standardised with the real mean and standard deviation (missing values take
    the real median, and a 0/1 missing-indicator feature is added when the real column has any
    missing); categories are one-hot over the codes of `suite.metrics._tabular.fit_codes` (the real
    data's top levels, `other`, `missing`) that occur in the real data.
    """

    parts: tuple[_Numeric | _Categorical, ...]
    names: tuple[str, ...]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        blocks = []
        for part in self.parts:
            if isinstance(part, _Numeric):
                values = as_float(frame[part.column], part.column)
                missing = np.isnan(values)
                blocks.append(((np.where(missing, part.median, values) - part.mean) / part.std)[:, None])
                if part.indicator:
                    blocks.append(missing.astype(np.float64)[:, None])
            else:
                codes = part.coding.transform(frame[part.coding.column])
                blocks.append((codes[:, None] == part.kept[None, :]).astype(np.float64))
        return np.hstack(blocks) if blocks else np.zeros((len(frame), 0))


def fit_axes(real: pd.DataFrame, metadata: Metadata) -> Axes:
    """The shared encoding of `Axes`, learned from `real` (feature names: `column` or `column=level`)."""
    parts: list[_Numeric | _Categorical] = []
    names: list[str] = []
    for column in real.columns:
        if is_numeric(metadata, column):
            values = as_float(real[column], column)
            present = values[~np.isnan(values)]
            mean = float(present.mean()) if present.size else 0.0
            std = float(present.std()) if present.size else 0.0
            median = float(np.median(present)) if present.size else 0.0
            indicator = bool(present.size < values.size)
            parts.append(_Numeric(str(column), mean, std if std > 0 else 1.0, median, indicator))
            names += [str(column)] + ([f"{column} (missing)"] if indicator else [])
        else:
            coding = fit_codes(real[column], False)
            kept = np.flatnonzero(np.bincount(coding.transform(real[column]), minlength=coding.n_codes))
            parts.append(_Categorical(coding, kept))
            names += [f"{column}={coding.names[k]}" for k in kept]
    return Axes(tuple(parts), tuple(names))


def _edges(real: np.ndarray, grid: int, min_count: int = 10) -> np.ndarray:
    """`grid` equal cells over the 0.5-99.5 percentile range of the real coordinates, within their
    `coded_range` (no edge is one person's coordinate)."""
    lo, hi = (float(v) for v in np.percentile(real, [0.5, 99.5])) if real.size else (0.0, 0.0)
    if real.size:
        low, high = coded_range(real, min_count)
        lo, hi = max(lo, low), min(hi, high)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, grid + 1)


def histogram_overlap(
    a: np.ndarray, b: np.ndarray, edges: tuple[np.ndarray, np.ndarray]
) -> tuple[float, np.ndarray, np.ndarray]:
    """Histogram intersection sum(min(p_a, p_b)) of two 2-D point clouds on shared cells.

    Points outside the grid count in its border cells. Returns (overlap, p_a, p_b), the
    two histograms normalised to sum 1 (all zeros for an empty cloud).
    """

    def density(points: np.ndarray) -> np.ndarray:
        x = np.clip(points[:, 0], edges[0][0], edges[0][-1])
        y = np.clip(points[:, 1], edges[1][0], edges[1][-1])
        counts = np.histogram2d(x, y, bins=edges)[0]
        return counts / max(counts.sum(), 1.0)

    pa, pb = density(a), density(b)
    return float(np.minimum(pa, pb).sum()), pa, pb


def _project(
    train: pd.DataFrame, others: list[pd.DataFrame], metadata: Metadata, components: int, seed: int
) -> tuple[np.ndarray, list[np.ndarray], list[float], np.ndarray, list[str]]:
    """PCA fitted on the real rows only: (train coordinates, others' coordinates on the first two
    components, explained variance ratios, loadings, feature names).

    Features constant in the real rows are left out, and so are components without variance (the
    real data has fewer dimensions): both would only project synthetic rows onto arbitrary axes.
    Missing axes are zeros.
    """
    from sklearn.decomposition import PCA

    axes = fit_axes(train, metadata)
    x_train = axes.transform(train)
    varies = x_train.var(axis=0) > 1e-12 if len(train) else np.zeros(x_train.shape[1], dtype=bool)
    names = [n for n, v in zip(axes.names, varies) if v]
    x_train = x_train[:, varies]
    x_others = [axes.transform(o)[:, varies] for o in others]
    k = min(components, x_train.shape[1], len(train))
    ratios: list[float] = []
    loadings = np.zeros((0, len(names)))
    coords = [np.zeros((len(x), 0)) for x in (x_train, *x_others)]
    if k >= 1:
        pca = PCA(n_components=k, random_state=seed).fit(x_train)
        keep = int((pca.explained_variance_ratio_ > 1e-9).sum())
        ratios = pca.explained_variance_ratio_[:keep].tolist()
        loadings = pca.components_[:keep]
        coords = [pca.transform(x)[:, : min(keep, 2)] for x in (x_train, *x_others)]
    coords = [np.hstack([z, np.zeros((len(z), 2 - z.shape[1]))]) for z in coords]
    return coords[0], coords[1:], ratios, loadings, names


# --------------------------------------------------------------------------- Voas-Williamson


def chi2_homogeneity(real: np.ndarray, synthetic: np.ndarray) -> tuple[float, int]:
    """Pearson's chi-squared homogeneity statistic of the 2 x K table (real counts, synthetic counts).

    Only the K cells observed in either row count; the degrees of freedom are K - 1. Equals
    `scipy.stats.chi2_contingency(table, correction=False)` on the observed cells.
    """
    real = np.asarray(real, dtype=float)
    synthetic = np.asarray(synthetic, dtype=float)
    seen = (real + synthetic) > 0
    real, synthetic = real[seen], synthetic[seen]
    n_real, n_synth = real.sum(), synthetic.sum()
    if real.size < 2 or n_real == 0 or n_synth == 0:
        return 0.0, max(real.size - 1, 0)
    total = real + synthetic
    expected_real = total * (n_real / (n_real + n_synth))
    expected_synth = total - expected_real
    chi2 = ((real - expected_real) ** 2 / expected_real).sum()
    chi2 += ((synthetic - expected_synth) ** 2 / expected_synth).sum()
    return float(chi2), int(real.size - 1)


def cross_tabulations(
    codings: list[ColumnCodes], real: np.ndarray, synthetic: np.ndarray
) -> list[tuple[tuple[str, ...], float, int]]:
    """(columns, chi2, dof) of every pair of columns (each column alone when there is only one)."""
    p = len(codings)
    groups = list(combinations(range(p), 2)) if p >= 2 else [(j,) for j in range(p)]
    out = []
    for group in groups:
        size = 1
        cell_r = np.zeros(len(real), dtype=np.int64)
        cell_s = np.zeros(len(synthetic), dtype=np.int64)
        for j in group:
            k = codings[j].n_codes
            cell_r, cell_s, size = cell_r * k + real[:, j], cell_s * k + synthetic[:, j], size * k
        chi2, dof = chi2_homogeneity(np.bincount(cell_r, minlength=size), np.bincount(cell_s, minlength=size))
        out.append((tuple(codings[j].column for j in group), chi2, dof))
    return out


def _fits(tables: list[tuple[tuple[str, ...], float, int]]) -> np.ndarray:
    from scipy.stats import chi2 as chi2_dist

    chi2 = np.array([t[1] for t in tables], dtype=float)
    dof = np.array([t[2] for t in tables], dtype=float)
    critical = np.where(dof > 0, chi2_dist.ppf(1.0 - _ALPHA, np.maximum(dof, 1)), 0.0)
    return (dof == 0) | (chi2 < critical)


def _corrected(
    tables: list[tuple[tuple[str, ...], float, int]], deff: float
) -> list[tuple[tuple[str, ...], float, int]]:
    """Each table's chi2 divided by the synthetic sample's repeat design effect (Rao-Scott, first order)."""
    return [(columns, chi2 / deff, dof) for columns, chi2, dof in tables]


def _ratio(tables: list[tuple[tuple[str, ...], float, int]]) -> float:
    ratios = [chi2 / dof for _, chi2, dof in tables if dof > 0]
    return float(np.median(ratios)) if ratios else 0.0


# --------------------------------------------------------------------------- the check


@checks.register("structure")
class StructureMetric:
    """Structure of the synthetic table against the real one, in three views.

    * Gower distances: every synthetic row's distance to its nearest training row, against the
      same distance from every holdout-control row (real rows no generator saw). The two
      samples are compared with the two-sample Kolmogorov-Smirnov statistic: 0 when synthetic
      rows sit as far from the training data as unseen real rows do; copies (distances 0) and
      far-away noise (large distances) both raise it. The suite's Gower engine
      (`suite.neighbors`) is used, ranges fitted on the real rows. Baseline: the same statistic
      for the reference half of the holdout (other unseen real rows), when the run has one.
    * PCA on shared axes: real and synthetic rows encoded alike (`fit_axes`, every scale from
      the real rows), principal components fitted on the training rows only (features constant
      there left out), both projected.
      The overlap of the two clouds on the first two components is the histogram intersection
      sum(min(p_real, p_synthetic)) over a `grid` x `grid` grid spanning the real 0.5-99.5
      percentile box (points outside count in the border cells): 1 = identical. Baseline: the
      same between training and holdout rows.
    * Voas-Williamson: for every pair of columns (numbers in `bins` quantile bins, categories
      as codes; `suite.metrics._tabular.discretize`), the 2 x K table of real and synthetic counts
      over the K observed cells of the pair's cross-tabulation, and Pearson's chi-squared
      homogeneity statistic with K - 1 degrees of freedom. Following Voas & Williamson (2001,
      "Evaluating goodness-of-fit measures for synthetic microdata"), a table fits when the
      statistic is below its 5% critical value. The exact chi-squared quantile is used here;
      the often quoted normal approximation dof + 1.96 * sqrt(2 * dof) is the same idea (chi2
      is about normal with mean dof and variance 2 dof; 1.96 makes it slightly more lenient
      than the one-sided 5% point, about dof + 1.645 * sqrt(2 * dof)). Reported: the share
      of tables that fit, and the median of chi2 / dof (about 1 when the tables differ by
      sampling noise only). A test's power grows with its sample, so the training,
      synthetic and holdout rows are all subsampled to one size (the smallest of the three,
      at most `max_rows`) and the baselines (training against holdout) are computed at the
      same size as the values. A synthetic table that repeats whole rows more often than real
      data does (a resampler such as the `holdout` calibration generator) is the smaller sample
      it effectively is: every chi2 is divided by the variance inflation its repeat design effect
      causes (Rao-Scott first-order correction, `suite.metrics._tabular.variance_inflation`) before
      it is judged.

    Every table is first cut to at most `max_rows` rows (seeded). Details carry aggregates
    only (histograms, quantiles, loadings, per-table statistics), never a real record.
    """

    name: ClassVar[str] = "structure"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        utility(
            "structure.gower_ks",
            Goal.MINIMIZE,
            "distances synthetic->train vs unseen->train (0 = as far as unseen real rows)",
            bounds=(0, 1),
        ),
        utility(
            "structure.pca_overlap",
            Goal.MAXIMIZE,
            "overlap of real and synthetic rows on the first two principal components",
            bounds=(0, 1),
        ),
        utility(
            "structure.voas_williamson_fit",
            Goal.MAXIMIZE,
            "share of pairwise cross-tabulations that fit",
            bounds=(0, 1),
        ),
        utility(
            "structure.voas_williamson_ratio",
            Goal.MINIMIZE,
            "median chi-squared per degree of freedom of those tables (1 = noise)",
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)
    requires: ClassVar[tuple[str, ...]] = ("sklearn", "scipy")

    def __init__(
        self,
        *,
        max_rows: int = 20_000,
        pca_components: int = 5,
        grid: int = 30,
        bins: int = 10,
        memory_mb: float = 256.0,
    ) -> None:
        self.max_rows = max_rows
        self.pca_components = pca_components
        self.grid = grid
        self.bins = bins
        self.memory_mb = memory_mb

    def evaluate(self, ctx: Context) -> list[Measurement]:
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(ctx.seed).spawn(3)]
        return [*self._gower(ctx, rngs[0]), *self._pca(ctx, rngs[1]), *self._voas_williamson(ctx, rngs[2])]

    # ------------------------------------------------------------------ views

    def _gower(self, ctx: Context, rng: np.random.Generator) -> list[Measurement]:
        queries = [subsample(ctx.synthetic, self.max_rows, rng), subsample(ctx.holdout, self.max_rows, rng)]
        if ctx.reference is not None and len(ctx.reference):
            queries.append(subsample(ctx.reference, self.max_rows, rng))
        d_synth, d_holdout, *d_reference = distances_to_train(
            ctx.train, ctx.holdout, queries, ctx.metadata, memory_mb=self.memory_mb, cache=ctx.neighbours
        )
        baseline = ks_statistic(d_reference[0], d_holdout) if d_reference else None
        top = float(max(d_synth.max(initial=0.0), d_holdout.max(initial=0.0), 1e-12))
        edges = np.linspace(0.0, top, _DISTANCE_BINS + 1)
        details = {
            "synthetic_rows": int(len(d_synth)),
            "holdout_rows": int(len(d_holdout)),
            "train_rows": int(len(ctx.train)),
            "exact_matches": int((d_synth == 0).sum()),
            "holdout_exact_matches": int((d_holdout == 0).sum()),
            "baseline_reference_rows": int(len(d_reference[0])) if d_reference else 0,
            "histogram_edges": edges.tolist(),
            "histogram_synthetic_to_train": np.histogram(d_synth, edges)[0].tolist(),
            "histogram_holdout_to_train": np.histogram(d_holdout, edges)[0].tolist(),
            "quantiles_synthetic_to_train": _quantiles(d_synth),
            "quantiles_holdout_to_train": _quantiles(d_holdout),
        }
        return [
            Measurement(
                "structure.gower_ks",
                ks_statistic(d_synth, d_holdout),
                Goal.MINIMIZE,
                baseline=baseline,
                details=details,
                meaning=(
                    "KS statistic between the Gower distances synthetic->train and holdout->train "
                    "(0 = as far from train as unseen real rows; copies and noise raise it)"
                ),
            )
        ]

    def _pca(self, ctx: Context, rng: np.random.Generator) -> list[Measurement]:
        columns = list(ctx.train.columns)
        train = subsample(ctx.train, self.max_rows, rng)
        synthetic = subsample(ctx.synthetic, self.max_rows, rng)[columns]
        holdout = subsample(ctx.holdout, self.max_rows, rng)[columns]
        z_train, (z_synth, z_holdout), ratios, loadings, names = _project(
            train, [synthetic, holdout], ctx.metadata, self.pca_components, ctx.seed
        )
        edges = tuple(_edges(z_train[:, j], self.grid, ctx.min_count) for j in (0, 1))
        overlap, p_real, p_synth = histogram_overlap(z_train, z_synth, edges)
        baseline = histogram_overlap(z_train, z_holdout, edges)[0]
        top = [
            [
                {"feature": names[f], "loading": round(float(row[f]), 4)}
                for f in np.argsort(-np.abs(row), kind="stable")[:_TOP_FEATURES]
            ]
            for row in loadings
        ]
        details = {
            "train_rows": int(len(train)),
            "synthetic_rows": int(len(synthetic)),
            "holdout_rows": int(len(holdout)),
            "features": len(names),  # features that vary in the real rows
            "explained_variance_ratio": [round(float(r), 4) for r in ratios],
            "top_loadings": top,
            "grid_edges_pc1": edges[0].tolist(),
            "grid_edges_pc2": edges[1].tolist(),
            "histogram_real": np.round(p_real, 5).tolist(),
            "histogram_synthetic": np.round(p_synth, 5).tolist(),
        }
        return [
            Measurement(
                "structure.pca_overlap",
                overlap,
                Goal.MAXIMIZE,
                baseline=baseline,
                details=details,
                meaning=(
                    "overlap of real and synthetic rows on the first two principal components of the real "
                    "data (histogram intersection, 1 = identical); baseline: train vs holdout"
                ),
            )
        ]

    def _voas_williamson(self, ctx: Context, rng: np.random.Generator) -> list[Measurement]:
        columns = list(ctx.train.columns)
        n = min(len(ctx.train), len(ctx.synthetic), len(ctx.holdout), self.max_rows)
        train = subsample(ctx.train, n, rng)
        synthetic = subsample(ctx.synthetic, n, rng)[columns]
        holdout = subsample(ctx.holdout, n, rng)[columns]
        codings, c_train, (c_synth, c_holdout) = discretize(train, [synthetic, holdout], ctx.metadata, bins=self.bins)
        deff, base_deff = repeat_design_effect(train, synthetic), repeat_design_effect(train, holdout)
        tables = _corrected(cross_tabulations(codings, c_train, c_synth), variance_inflation(n, n, deff))
        base_tables = _corrected(cross_tabulations(codings, c_train, c_holdout), variance_inflation(n, n, base_deff))
        fits, base_fits = _fits(tables), _fits(base_tables)
        fit = float(fits.mean()) if len(tables) else 1.0
        base_fit = float(base_fits.mean()) if len(base_tables) else 1.0
        ratio, base_ratio = _ratio(tables), _ratio(base_tables)

        from scipy.stats import chi2 as chi2_dist

        order = sorted(range(len(tables)), key=lambda t: -(tables[t][1] / tables[t][2] if tables[t][2] else 0.0))
        worst = [
            {
                "columns": list(tables[t][0]),
                "chi2": float(tables[t][1]),
                "dof": int(tables[t][2]),
                "chi2_per_dof": float(tables[t][1] / tables[t][2]) if tables[t][2] else 0.0,
                "p_value": float(chi2_dist.sf(tables[t][1], tables[t][2])) if tables[t][2] else 1.0,
                "fits": bool(fits[t]),
            }
            for t in order[:_WORST_TABLES]
        ]
        details = {
            "rows_per_table": int(n),
            "repeat_design_effect": deff,
            "tables": len(tables),
            "tables_fitting": int(fits.sum()),
            "holdout_tables_fitting": int(base_fits.sum()),
            "significance": _ALPHA,
            "bins": self.bins,
            "fit_share_train_vs_holdout": base_fit,
            "median_chi2_per_dof_train_vs_holdout": base_ratio,
            "worst_tables": worst,
        }
        return [
            Measurement(
                "structure.voas_williamson_fit",
                fit,
                Goal.MAXIMIZE,
                baseline=base_fit,
                details=details,
                meaning=(
                    "share of pairwise cross-tabulations where real and synthetic counts agree at 5% "
                    "(Voas-Williamson chi-squared test, equal sample sizes); baseline: train vs holdout"
                ),
            ),
            Measurement(
                "structure.voas_williamson_ratio",
                ratio,
                Goal.MINIMIZE,
                baseline=base_ratio,
                details=details,
                meaning=(
                    "median chi2 / dof of the pairwise cross-tabulations, real vs synthetic "
                    "(about 1 = sampling noise); baseline: train vs holdout"
                ),
            ),
        ]
