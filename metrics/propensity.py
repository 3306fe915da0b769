"""Propensity (distinguishability): can a classifier tell synthetic rows from real ones?

Real training rows and synthetic rows are balanced, labelled (synthetic = 1) and handed to
classifiers under cross-validation. Their out-of-fold probabilities give the propensity mean
squared error (pMSE) and the ROC AUC: both sit at their chance value (0 and 0.5) when the two
tables cannot be told apart. A boosted model fitted on all rows is then explained with SHAP:
the columns with the largest mean |SHAP| are those that give the synthetic data away.

Folds are grouped by row content. Identical rows (natural duplicates, and the `holdout`
calibration generator's rows drawn with replacement) always fall into one fold, so no model is
scored on a row it was trained on: otherwise a boosted model memorises the repeated rows and
the AUC of a faithful generator climbs far above 0.5.
"""

from __future__ import annotations

import functools
import warnings
from typing import ClassVar

import numpy as np
import pandas as pd

from suite.metrics._tabular import fit_features, subsample
from suite.registry import checks
from suite.stats import cluster_bootstrap_ci, cluster_codes
from suite.types import Context, Goal, Measurement, MeasurementSpec, names, utility

#: The classifiers the check knows, in the order they are reported.
MODELS = ("logistic", "gradient_boosting")
#: Columns listed in `top_features`.
_TOP = 10
#: Bins of the propensity-score histograms in the details.
_HIST_BINS = 20


def binned_auc(bins: np.ndarray, labels: np.ndarray, n_bins: int, weights: np.ndarray | None = None) -> np.ndarray:
    """ROC AUC (Mann-Whitney, ties count one half) of scores given as their rank among `n_bins`
    sorted distinct values, for every leading index at once.

    `bins` holds integers 0..n_bins-1 (equal scores share a bin), `labels` 1 for positives and
    0 for negatives, `weights` (optional) how often each row counts (a bootstrap resample), all
    broadcast to one shape (..., n). Counting positives and negatives per bin and accumulating
    the negatives below each bin needs no sort, so a bootstrap resample costs O(n). NaN where a
    slice lacks positives or negatives.
    """
    weights = np.ones(np.shape(bins)) if weights is None else np.asarray(weights, dtype=float)
    bins, labels, weights = np.broadcast_arrays(np.asarray(bins), np.asarray(labels, dtype=float), weights)
    lead = bins.shape[:-1]
    n = bins.shape[-1]
    b = int(np.prod(lead, dtype=np.int64))
    flat = (bins.reshape(b, n).astype(np.int64) + n_bins * np.arange(b, dtype=np.int64)[:, None]).ravel()
    weight = weights.reshape(b, n).ravel()
    positive = labels.reshape(b, n).ravel()
    pos = np.bincount(flat, weights=weight * positive, minlength=b * n_bins).reshape(b, n_bins)
    neg = np.bincount(flat, weights=weight * (1.0 - positive), minlength=b * n_bins).reshape(b, n_bins)
    below = np.cumsum(neg, axis=1) - neg
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(axis=1) / pairs
    return auc.reshape(lead)


def rank_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of `scores` for binary `labels` (1 = positive), ties counting one half."""
    values, bins = np.unique(np.asarray(scores, dtype=float), return_inverse=True)
    return float(binned_auc(bins.ravel(), labels, len(values)))


def content_groups(X: np.ndarray) -> np.ndarray:
    """One integer per row, equal exactly for rows with equal content (NaN equals NaN)."""
    missing = np.isnan(X)
    key = np.column_stack([np.where(missing, 0.0, X) + 0.0, missing])  # + 0.0 turns -0.0 into 0.0
    return np.unique(key, axis=0, return_inverse=True)[1].ravel()


def grouped_folds(groups: np.ndarray, y: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """A fold per row: rows of one group share a fold, and folds get alike mixes of groups.

    Groups are shuffled, ordered by their synthetic share and size, and dealt round-robin, so
    every fold receives about the same number of groups of each composition (stratified by
    label) in O(n log n), unlike sklearn's StratifiedGroupKFold, which loops over groups.
    """
    size = np.bincount(groups)
    share = np.bincount(groups, weights=y) / size
    order = np.lexsort((rng.permutation(len(size)), size, share))
    fold_of_group = np.empty(len(size), dtype=np.int64)
    fold_of_group[order] = np.arange(len(size)) % folds
    return fold_of_group[groups]


def _logistic(mask: np.ndarray, seed: int):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    numbers, categories = np.flatnonzero(~mask).tolist(), np.flatnonzero(mask).tolist()
    if numbers:
        impute = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
        parts.append(("numbers", Pipeline([("impute", impute), ("scale", StandardScaler())]), numbers))
    if categories:
        parts.append(("categories", OneHotEncoder(handle_unknown="ignore"), categories))
    return Pipeline(
        [
            ("encode", ColumnTransformer(parts)),
            ("model", LogisticRegression(max_iter=2000, random_state=seed)),
        ]
    )


#: The boosted model: a fixed number of rounds (no early stopping, whose validation split would
#: not be grouped by content) and leaves of at least 50 rows, so that a model with nothing to find
#: does not scatter its probabilities (which alone would raise the pMSE) while a real difference,
#: such as values off the real data's grid, is still found.
BOOSTING = {
    "max_iter": 100,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 50,
    "early_stopping": False,
}


def _boosting(mask: np.ndarray | None, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        **BOOSTING,
        categorical_features=mask if mask is not None and mask.any() else None,
        random_state=seed,
    )


@functools.lru_cache(maxsize=1)
def shap_reads_categorical_splits() -> bool:
    """Whether shap's TreeExplainer follows HistGradientBoosting's native categorical splits.

    shap 0.49 reads such a split as a numeric threshold and silently returns values that do
    not add up to the model's output; a tiny model with a non-ordinal category tells.
    """
    import shap
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 8, 400), rng.normal(size=400)]).astype(float)
    y = np.isin(X[:, 0], [1, 4, 6]).astype(int)
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features=[True, False], random_state=0)
    model.fit(X, y)
    if not any(node["is_categorical"] for tree in model._predictors for node in tree[0].nodes):
        return False  # no categorical split to test (sklearn changed): do not rely on it
    try:
        explainer = shap.TreeExplainer(model)
        values = np.asarray(explainer.shap_values(X[:50])).reshape(50, -1)
        total = values.sum(axis=1) + np.ravel(explainer.expected_value)[0]
        return bool(np.allclose(total, model.decision_function(X[:50]), atol=1e-6))
    except Exception:  # noqa: BLE001 - any failure means: do not rely on it
        return False


def _histogram(p: np.ndarray) -> list[int]:
    return np.histogram(p, np.linspace(0.0, 1.0, _HIST_BINS + 1))[0].tolist()


@checks.register("propensity")
class PropensityMetric:
    """How well classifiers tell synthetic rows from real training rows (pMSE and ROC AUC).

    Real and synthetic rows are subsampled to the same size (at most `max_rows` in all) and
    encoded as the real rows define (numbers as floats with missing values, categories as
    codes). Each model in `models` (`logistic`: one-hot and standardised logistic regression;
    `gradient_boosting`: histogram gradient boosting with native categories) predicts, out of
    fold in `folds` folds grouped by row content, the probability p that a row is synthetic.
    pMSE = mean((p - c)^2) with c the synthetic share (0.5): 0 when indistinguishable, 0.25
    when perfectly separated. AUC: 0.5 when indistinguishable, 1 when trivially told apart.
    The headline is the worse (larger) of the models; the interval is a percentile bootstrap
    of that maximum over the out-of-fold predictions, resampling training people and distinct
    synthetic rows jointly. Baselines are the chance values (0.5,
    0), not a real-vs-real run, which would cost another cross-validation.

    Details carry per-model values and propensity histograms, and `top_features`: the columns
    with the largest mean |SHAP| of a boosted model fitted on all balanced rows and explained
    on `shap_rows` of them (explanatory only; `shap_rows=0` skips it).
    """

    name: ClassVar[str] = "propensity"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        utility(
            "propensity.pmse",
            Goal.MINIMIZE,
            "how well a classifier tells synthetic from real rows (0 = not at all)",
            bounds=(0, 0.25),
        ),
        utility(
            "propensity.auc",
            Goal.MINIMIZE,
            "ROC AUC of a classifier telling synthetic from real rows (0.5 = indistinguishable)",
            bounds=(0, 1),
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)
    requires: ClassVar[tuple[str, ...]] = ("sklearn", "shap")

    def __init__(
        self,
        *,
        max_rows: int = 20_000,
        folds: int = 5,
        models: tuple[str, ...] = MODELS,
        shap_rows: int = 2000,
    ) -> None:
        if isinstance(models, str) or not models:
            raise ValueError(f"propensity: models must be a non-empty list of {', '.join(MODELS)}; got {models!r}")
        unknown = [m for m in models if m not in MODELS]
        if unknown:
            raise ValueError(
                f"propensity: unknown models {', '.join(map(repr, unknown))}; choose from {', '.join(MODELS)}"
            )
        if folds < 2:
            raise ValueError(f"propensity: folds must be at least 2, got {folds}")
        self.max_rows = max_rows
        self.folds = folds
        self.models = models
        self.shap_rows = shap_rows

    def evaluate(self, ctx: Context) -> list[Measurement]:
        from sklearn.exceptions import ConvergenceWarning
        from threadpoolctl import threadpool_limits

        rng = np.random.default_rng(ctx.seed)
        columns = list(ctx.train.columns)
        models = list(dict.fromkeys(self.models))
        n = min(len(ctx.train), len(ctx.synthetic), max(self.max_rows // 2, 1))
        rows = subsample(pd.Series(np.arange(len(ctx.train))), n, rng).to_numpy()
        real = ctx.train.iloc[rows]
        synthetic = subsample(ctx.synthetic[columns], n, rng)
        features = fit_features(ctx.train, ctx.metadata, columns)
        X = np.vstack([features.transform(real), features.transform(synthetic)])
        y = np.repeat([0, 1], [len(real), len(synthetic)])
        share = float(y.mean())
        groups = content_groups(X)
        group_sizes = np.bincount(groups)
        folds = min(self.folds, len(group_sizes))
        if n < 2 or folds < 2:
            raise ValueError(f"propensity needs at least 2 distinct rows of each table; got {n} rows a side")
        fold = grouped_folds(groups, y, folds, rng)
        # Bootstrap units: training people (or rows) and distinct synthetic rows, resampled jointly.
        people = None if ctx.train_entities is None else ctx.train_entities.iloc[rows]
        units = (cluster_codes(people, len(real)), cluster_codes(groups[len(real) :], len(synthetic)))

        oof: dict[str, np.ndarray] = {}
        # One OpenMP thread: identical results on any machine, and no collapse of
        # HistGradientBoosting's threads when other work shares the cores.
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            for model_name in models:
                p = np.empty(len(y))
                for k in range(folds):
                    test = fold == k
                    model = (
                        _logistic(features.categorical, ctx.seed)
                        if model_name == "logistic"
                        else _boosting(features.categorical, ctx.seed)
                    )
                    model.fit(X[~test], y[~test])
                    p[test] = model.predict_proba(X[test])[:, 1]
                oof[model_name] = p

        def weighted_pmse(p: np.ndarray, w: np.ndarray) -> np.ndarray:
            return (w * (p - share) ** 2).sum(axis=-1) / w.sum(axis=-1)

        def interval(statistic) -> list[float]:
            both = lambda w_real, w_syn: statistic(np.hstack([w_real, w_syn]))  # noqa: E731
            return list(cluster_bootstrap_ci(both, *units, rng=rng, confidence=ctx.confidence, cost=4 * len(oof)))

        per_model: dict[str, dict] = {}
        binned = []
        for model_name, p in oof.items():
            values, bins = np.unique(p, return_inverse=True)
            bins, n_bins = bins.ravel(), len(values)
            binned.append((bins, n_bins))
            per_model[model_name] = {
                "auc": float(binned_auc(bins, y, n_bins)),
                "auc_ci": interval(functools.partial(binned_auc, bins, y, n_bins)),
                "pmse": float(np.mean((p - share) ** 2)),
                "pmse_ci": interval(functools.partial(weighted_pmse, p)),
                "accuracy": float(np.mean((p > 0.5) == (y == 1))),
                "histogram_real": _histogram(p[y == 0]),
                "histogram_synthetic": _histogram(p[y == 1]),
            }

        auc_ci = tuple(interval(lambda w: np.max([binned_auc(b, y, k, w) for b, k in binned], axis=0)))
        pmse_ci = tuple(interval(lambda w: np.max([weighted_pmse(p, w) for p in oof.values()], axis=0)))
        auc = max(m["auc"] for m in per_model.values())
        pmse = max(m["pmse"] for m in per_model.values())

        with threadpool_limits(1):
            explained = self._explain(X, y, features.categorical, columns, ctx.seed, rng)
        details = {
            "rows_per_table": int(n),
            "synthetic_share": share,
            "folds": int(folds),
            "distinct_rows": int(len(group_sizes)),
            "rows_with_duplicates": int((group_sizes[groups] > 1).sum()),
            "models": per_model,
            "worst_auc_model": max(per_model, key=lambda k: per_model[k]["auc"]),
            "worst_pmse_model": max(per_model, key=lambda k: per_model[k]["pmse"]),
            "histogram_edges": np.linspace(0.0, 1.0, _HIST_BINS + 1).tolist(),
            "baseline": "chance values (AUC 0.5, pMSE 0), not a real-vs-real cross-validation",
            **explained,
        }
        return [
            Measurement(
                "propensity.pmse",
                pmse,
                Goal.MINIMIZE,
                ci=pmse_ci,
                baseline=0.0,
                details=details,
                meaning=(
                    "propensity mean squared error of the best-separating classifier "
                    "(0 = indistinguishable from real, 0.25 = perfectly separated)"
                ),
            ),
            Measurement(
                "propensity.auc",
                auc,
                Goal.MINIMIZE,
                ci=auc_ci,
                baseline=0.5,
                details=details,
                meaning="ROC AUC of the best classifier telling synthetic from real rows (0.5 = indistinguishable)",
            ),
        ]

    def _explain(
        self,
        X: np.ndarray,
        y: np.ndarray,
        categorical: np.ndarray,
        columns: list[str],
        seed: int,
        rng: np.random.Generator,
    ) -> dict:
        """Mean |SHAP| per column of a boosted model fitted on all rows; the reason when it fails."""
        rows = int(min(max(self.shap_rows, 0), len(y)))
        out: dict = {"top_features": [], "shap_rows": rows}
        if rows == 0:
            out["shap_note"] = "skipped (shap_rows = 0)"
            return out
        explain_rows = np.sort(rng.choice(len(y), rows, replace=False))
        try:
            import shap

            native = not categorical.any() or shap_reads_categorical_splits()
            model = _boosting(categorical if native else None, seed).fit(X, y)
            values = np.asarray(shap.TreeExplainer(model).shap_values(X[explain_rows]), dtype=float)
            values = values.reshape(rows, len(columns))  # log-odds of "synthetic", one column per feature
        except Exception as exc:  # noqa: BLE001 - the explanation is optional; the measurements stand
            # the exception type only: a library's message may quote a data value (docs/threat-model.md)
            out["shap_error"] = f"shap could not explain the classifier: {type(exc).__name__}"
            return out
        importance = np.abs(values).mean(axis=0)
        order = np.argsort(-importance, kind="stable")[:_TOP]
        out["top_features"] = [{"column": columns[j], "mean_abs_shap": float(importance[j])} for j in order]
        out["shap_model"] = (
            "no categorical columns"
            if not categorical.any()
            else ("native categories" if native else "category codes as ordinal numbers")
        )
        if not native:
            out["shap_note"] = (
                "shap's TreeExplainer misreads HistGradientBoosting's native categorical splits, so the "
                "explained model (not the scored ones) treats category codes as ordered numbers"
            )
        return out
