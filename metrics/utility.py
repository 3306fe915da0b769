"""ML utility: does a model trained on the synthetic table predict the real target as well as
one trained on the real training table? (train-synthetic-test-real against train-real-test-real)"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from suite.disclosure import RARE, coded_range
from suite.encoding import as_float
from suite.metrics._tabular import ColumnCodes, fit_codes, fit_features, is_numeric, subsample
from suite.registry import checks
from suite.stats import N_BOOTSTRAP, bootstrap_weights
from suite.types import Context, Goal, Measurement, MeasurementSpec, Need, names, utility

#: Models the check can train, by name.
MODELS = ("gradient_boosting", "random_forest", "linear")
#: The real model must beat chance by this much (AUC or R²) for the ratio to mean anything.
MIN_SKILL = 0.02
#: Classes with fewer real training rows are pooled into `other` in the reported class balance.
MIN_CLASS_ROWS = 10
#: Holdout rows and shuffles used for the permutation importances.
IMPORTANCE_ROWS = 1000
IMPORTANCE_REPEATS = 3
TOP_FEATURES = 10

_RATIO, _TSTR, _TRTR = "utility.tstr_ratio", "utility.tstr_score", "utility.trtr_score"
_MAX = Goal.MAXIMIZE


class _Unscorable(Exception):
    """The task cannot be set up or scored; the message explains why to the reader."""


# ---------------------------------------------------------------------------- scores (weighted, vectorised)
def weighted_auc(score: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of `score` for the `positive` rows under each row of `weights` (b, n): ties count half.

    With weights of ones this is sklearn's roc_auc_score; bootstrap resamples pass their
    row counts, so b resamples cost one sort. NaN where a resample lacks a positive or a negative.
    """
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # one group per distinct score
    w = weights[:, order]
    total = np.add.reduceat(w, starts, axis=1)
    p = np.add.reduceat(w * positive[order].astype(w.dtype), starts, axis=1)
    n = total - p
    below = np.cumsum(n, axis=1) - n
    num = np.einsum("bg,bg->b", p, below + 0.5 * n, dtype=np.float64)
    den = p.sum(axis=1, dtype=np.float64) * n.sum(axis=1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def weighted_r2(y: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """R² of `pred` for `y` under each row of `weights` (b, n), centred on each resample's mean."""
    total = weights.sum(axis=1)
    centre = y.mean()
    dy = y - centre
    mean = weights @ dy / total
    ss_tot = weights @ (dy * dy) - total * mean * mean
    ss_res = weights @ ((y - pred) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)


@dataclass(frozen=True)
class _Task:
    """The prediction task as the real training data defines it."""

    classification: bool
    coding: ColumnCodes | None  # classes as codes (classification)
    classes: tuple[int, ...]  # real training classes, most frequent first
    positive: int | None  # binary: the rarer real class, scored by its probability
    centre: float = 0.0  # regression: the target is standardised on the real training rows
    scale: float = 1.0

    @property
    def metric(self) -> str:
        if not self.classification:
            return "r2"
        return "roc_auc" if self.positive is not None else "roc_auc_ovr_macro"

    @property
    def chance(self) -> float:
        return 0.5 if self.classification else 0.0

    def target(self, series: pd.Series) -> np.ndarray:
        """Class codes (missing -> -1) or the standardised value (missing -> NaN)."""
        if self.classification:
            codes = self.coding.transform(series).astype(np.float64)
            codes[codes == self.coding.missing_code] = np.nan
            return codes
        return (as_float(series, str(series.name)) - self.centre) / self.scale

    def scored_classes(self, y: np.ndarray) -> tuple[int, ...]:
        """The classes whose AUC is scored on test labels `y`: the positive class of a binary
        task; otherwise every real class with MIN_CLASS_ROWS test rows (rarer ones would make
        the macro average noise), or every class present when none has that many."""
        if self.positive is not None:
            return (self.positive,) if 0 < (y == self.positive).sum() < len(y) else ()
        present = [k for k in self.classes if 0 < (y == k).sum() < len(y)]
        return tuple(k for k in present if (y == k).sum() >= MIN_CLASS_ROWS) or tuple(present)

    def per_class(self, pred: np.ndarray, y: np.ndarray, weights: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
        """One-vs-rest AUC of each class in `classes` (rows) under each weighting (columns)."""
        return np.vstack([weighted_auc(pred[:, k], y == k, weights) for k in classes])

    def score(self, pred: np.ndarray, y: np.ndarray, weights: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
        """The score of predictions `pred` (class probabilities or values) under each weighting."""
        if not self.classification:
            return weighted_r2(y, pred, weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample without some class: NaN, left out
            return np.nanmean(self.per_class(pred, y, weights, classes), axis=0)


def _task(train: pd.Series, column: str, classification: bool) -> _Task:
    if classification:
        coding = fit_codes(train, False)
        codes = coding.transform(train)
        counts = np.bincount(codes, minlength=coding.n_codes)[: coding.missing_code]
        classes = tuple(int(k) for k in np.argsort(-counts, kind="stable") if counts[k] > 0)
        if not classes:
            raise _Unscorable(f"the target {column!r} is missing in every training row; nothing to predict")
        if len(classes) < 2:
            raise _Unscorable(
                f"the target {column!r} takes a single value in the training data; there is nothing to predict"
            )
        return _Task(True, coding, classes, classes[1] if len(classes) == 2 else None)
    values = as_float(train, column)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise _Unscorable(f"the target {column!r} is missing in every training row; nothing to predict")
    if values.std() == 0:
        raise _Unscorable(
            f"the target {column!r} takes a single value in the training data; there is nothing to predict"
        )
    return _Task(False, None, (), None, float(values.mean()), float(values.std()))


# ---------------------------------------------------------------------------- models
class _Constant:
    """What a model learns from a training set holding one class: that class, always."""

    def __init__(self, label: float) -> None:
        self.classes_ = np.array([label])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.ones((len(x), 1))


def _model(kind: str, classification: bool, mask: np.ndarray, seed: int) -> Any:
    if kind == "gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
        return cls(categorical_features=mask if mask.any() else None, random_state=seed)
    if kind == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        cls = RandomForestClassifier if classification else RandomForestRegressor
        return cls(n_estimators=100, min_samples_leaf=2, max_features="sqrt", n_jobs=1, random_state=seed)
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    encode = ColumnTransformer(
        [
            (
                "numbers",
                make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
                np.flatnonzero(~mask),
            ),
            ("categories", OneHotEncoder(handle_unknown="ignore"), np.flatnonzero(mask)),
        ]
    )
    return make_pipeline(encode, LogisticRegression(max_iter=1000) if classification else Ridge(alpha=1.0))


def _fit(kind: str, task: _Task, x: np.ndarray, y: np.ndarray, mask: np.ndarray, seed: int) -> Any:
    if task.classification and np.unique(y).size < 2:
        return _Constant(float(y[0]))
    model = _model(kind, task.classification, mask, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and all-missing-column notices
        return model.fit(x, y.astype(np.int64) if task.classification else y)


def _predict(model: Any, task: _Task, x: np.ndarray) -> np.ndarray:
    """Values, or probabilities with one column per code: classes the model never saw get 0."""
    if not task.classification:
        return model.predict(x)
    out = np.zeros((len(x), task.coding.n_codes))
    out[:, np.asarray(model.classes_, dtype=np.int64)] = model.predict_proba(x)
    return out


def _importances(
    model: Any,
    task: _Task,
    x: np.ndarray,
    y: np.ndarray,
    classes: tuple[int, ...],
    names: tuple[str, ...],
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Permutation importance: the mean drop of the score when one feature's values are shuffled."""
    ones = np.ones((1, len(x)))
    base = float(task.score(_predict(model, task, x), y, ones, classes)[0])
    drops = []
    for j in range(x.shape[1]):
        lost = []
        for _ in range(IMPORTANCE_REPEATS):
            shuffled = x.copy()
            shuffled[:, j] = x[rng.permutation(len(x)), j]
            lost.append(base - float(task.score(_predict(model, task, shuffled), y, ones, classes)[0]))
        drops.append(float(np.nanmean(lost)) if np.isfinite(lost).any() else 0.0)
    top = np.argsort(-np.asarray(drops), kind="stable")[:TOP_FEATURES]
    return [{"feature": names[j], "importance": drops[j]} for j in top]


# ---------------------------------------------------------------------------- the check
@checks.register("utility")
class UtilityMetric:
    """Machine-learning utility of the synthetic table for the scenario's target column.

    A model (gradient boosting by default) is trained on the synthetic rows (TSTR) and another
    on the real training rows (TRTR); both predict the target of the real holdout rows no
    generator saw. The score is ROC AUC for a categorical target (macro one-vs-rest over
    classes when there are more than two) and R² for a numerical or date target. The ratio
    (TSTR - chance) / (TRTR - chance) is the share of the real model's skill above chance
    that the synthetic data keeps: 1 = as useful as the real data, 0 = no better than chance.
    Intervals are a paired percentile bootstrap over the holdout rows (the same N_BOOTSTRAP
    resamples score both models, computed as row-count weights). Rows without a target are
    dropped; train, synthetic and holdout rows are each capped at `max_rows`. `model` is
    "gradient_boosting" (HistGradientBoosting with native categories), "random_forest" or
    "linear" (logistic or ridge regression on imputed, scaled numbers and one-hot categories).
    """

    name: ClassVar[str] = "utility"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        utility(_RATIO, Goal.MAXIMIZE, "share of the real model's skill kept by a model trained on synthetic data"),
        utility(_TSTR, Goal.MAXIMIZE, "score on real unseen rows of a model trained on synthetic rows"),
        utility(_TRTR, Goal.MAXIMIZE, "score on real unseen rows of a model trained on real rows", scored=False),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)
    needs: ClassVar[tuple[Need, ...]] = (Need("target"),)
    requires: ClassVar[tuple[str, ...]] = ("sklearn",)

    def __init__(
        self,
        *,
        model: Literal["gradient_boosting", "random_forest", "linear"] = "gradient_boosting",
        max_rows: int = 50_000,
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"utility: model must be one of {list(MODELS)}, got {model!r}")
        self.model = model
        self.max_rows = max_rows

    def evaluate(self, ctx: Context) -> list[Measurement]:
        if self.model not in MODELS:
            raise ValueError(f"utility: model must be one of {list(MODELS)}, got {self.model!r}")
        if self.max_rows < 100:
            raise ValueError(f"utility: max_rows must be at least 100, got {self.max_rows}")
        target = ctx.metadata.roles.target
        if not target:
            return self._errors("utility needs a target: set dataset.roles.target in the scenario")
        for label, frame in (("training", ctx.train), ("holdout", ctx.holdout), ("synthetic", ctx.synthetic)):
            if target not in frame.columns:
                return self._errors(
                    f"the target {target!r} is not a column of the {label} table (is it an identifier or the entity?)"
                )
        import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime, so the thread limit below reaches it)
        from threadpoolctl import threadpool_limits

        try:
            # One OpenMP thread: HistGradientBoosting's threads collapse when other work shares the cores.
            with threadpool_limits(1):
                return self._evaluate(ctx, target)
        except _Unscorable as exc:
            return self._errors(str(exc))

    def _errors(self, message: str) -> list[Measurement]:
        return [Measurement.from_error(n, _MAX, message) for n in self.measures]

    def _evaluate(self, ctx: Context, target: str) -> list[Measurement]:
        rng = np.random.default_rng(ctx.seed)
        seed = int(ctx.seed) % 2**32
        md = ctx.metadata
        task = _task(ctx.train[target], target, not is_numeric(md, target))
        columns = [c for c in ctx.train.columns if c != target]
        features = fit_features(ctx.train, md, columns)
        dropped: dict[str, int] = {}
        sets = {}
        for label, frame in (("train", ctx.train), ("synthetic", ctx.synthetic), ("holdout", ctx.holdout)):
            y = task.target(frame[target])
            keep = ~np.isnan(y)
            dropped[label] = int((~keep).sum())
            part = subsample(frame.loc[keep], self.max_rows, rng)
            sets[label] = (part, task.target(part[target]))
        if len(sets["synthetic"][0]) == 0:
            raise _Unscorable(f"every synthetic row lacks the target {target!r}; no model can be trained on it")
        test, y_test = sets["holdout"]
        if len(test) == 0:
            raise _Unscorable(f"every holdout row lacks the target {target!r}; nothing to test the models on")
        classes = task.scored_classes(y_test) if task.classification else ()
        if task.classification and not classes:
            raise _Unscorable(f"the holdout rows hold a single class of {target!r}; an AUC needs two")
        if not task.classification and np.std(y_test) == 0:
            raise _Unscorable(f"the target {target!r} is constant in the holdout; R² is undefined")

        x_test = features.transform(test)
        models, preds = {}, {}
        for kind, label in (("tstr", "synthetic"), ("trtr", "train")):
            frame, y = sets[label]
            models[kind] = _fit(self.model, task, features.transform(frame), y, features.categorical, seed)
            preds[kind] = _predict(models[kind], task, x_test)
        ones = np.ones((1, len(y_test)))
        tstr, trtr = (float(task.score(preds[k], y_test, ones, classes)[0]) for k in ("tstr", "trtr"))
        boot_t, boot_r = self._bootstrap(task, preds, y_test, classes, rng)
        alpha = (1.0 - ctx.confidence) / 2.0
        interval = lambda v: tuple(float(q) for q in np.nanquantile(v, [alpha, 1.0 - alpha]))  # noqa: E731

        chance = task.chance
        sub = np.sort(rng.choice(len(test), min(IMPORTANCE_ROWS, len(test)), replace=False))
        details = {
            "target": target,
            "task": "classification" if task.classification else "regression",
            "metric": task.metric,
            "model": self.model,
            "tstr_score": tstr,
            "trtr_score": trtr,
            "chance": chance,
            "min_skill": MIN_SKILL,
            "train_rows": int(len(sets["train"][0])),
            "synthetic_rows": int(len(sets["synthetic"][0])),
            "test_rows": int(len(test)),
            "rows_without_target": dropped,
            "n_features": len(columns),
            "n_bootstrap": N_BOOTSTRAP,
            "target_balance": self._balance(task, ctx, target),
            "importances": {
                k: _importances(models[k], task, x_test[sub], y_test[sub], classes, features.columns, rng)
                for k in ("tstr", "trtr")
            },
            "importance_rows": int(len(sub)),
        }
        if task.positive is not None:
            details["positive_class"] = self._class_name(task, ctx, target, task.positive)
        elif task.classification:
            details["per_class_auc"] = {
                "classes": [self._class_name(task, ctx, target, k) for k in classes],
                "test_rows": [int((y_test == k).sum()) for k in classes],
                **{k: task.per_class(preds[k], y_test, ones, classes)[:, 0].tolist() for k in ("tstr", "trtr")},
            }

        skill = trtr - chance
        if skill < MIN_SKILL:
            ratio = Measurement.from_error(
                _RATIO,
                _MAX,
                f"the target {target!r} cannot be predicted from the real data ({task.metric} of the real model "
                f"{trtr:.3f}, chance {chance:g}); the utility gate cannot be judged",
            )
            ratio = replace(ratio, details=details)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                boot_ratio = np.where(boot_r - chance > 0, (boot_t - chance) / (boot_r - chance), np.nan)
            details["bootstrap_undefined_ratios"] = int(np.isnan(boot_ratio).sum())
            ratio = Measurement(
                _RATIO,
                (tstr - chance) / skill,
                _MAX,
                ci=interval(boot_ratio),
                baseline=1.0,
                details=details,
                meaning=(
                    "share of the real-data model's skill above chance kept by a model trained on synthetic data "
                    "(1 = as useful as real data, 0 = no better than chance)"
                ),
            )
        return [
            ratio,
            Measurement(
                _TSTR,
                tstr,
                _MAX,
                ci=interval(boot_t),
                baseline=trtr,
                details=details,
                meaning=f"{task.metric} on real holdout rows of a model trained on synthetic rows; baseline: TRTR",
            ),
            Measurement(
                _TRTR,
                trtr,
                _MAX,
                ci=interval(boot_r),
                baseline=chance,
                details=details,
                meaning=f"{task.metric} on real holdout rows of a model trained on real rows; baseline: chance",
            ),
        ]

    @staticmethod
    def _bootstrap(
        task: _Task, preds: dict[str, np.ndarray], y: np.ndarray, classes: tuple[int, ...], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Both scores under the same N_BOOTSTRAP resamples of the test rows (row counts as weights)."""
        n = len(y)
        out_t, out_r = np.empty(N_BOOTSTRAP), np.empty(N_BOOTSTRAP)
        batch = max(1, min(N_BOOTSTRAP, int(2e6 // n)))
        for start, (counts,) in bootstrap_weights(np.arange(n), rng=rng, batch=batch):
            b = len(counts)
            # float32 halves the memory traffic of the AUC passes; counts stay exact (< 2**24)
            weights = np.ascontiguousarray(counts, dtype=np.float32 if task.classification else np.float64)
            out_t[start : start + b] = task.score(preds["tstr"], y, weights, classes)
            out_r[start : start + b] = task.score(preds["trtr"], y, weights, classes)
        return out_t, out_r

    @staticmethod
    def _class_name(task: _Task, ctx: Context, target: str, k: int) -> str:
        """A class's name, or `RARE` when fewer than the report's `min_count` training rows hold it."""
        count = int((task.coding.transform(ctx.train[target]) == k).sum())
        return task.coding.names[k] if count >= ctx.min_count else RARE

    @staticmethod
    def _balance(task: _Task, ctx: Context, target: str) -> dict[str, Any]:
        """Class shares (real train vs synthetic, classes rarer than the report's `min_count` pooled) or
        target quantiles (top- and bottom-coded at the real target's `coded_range`)."""
        if not task.classification:
            qs = [0.05, 0.25, 0.5, 0.75, 0.95]
            low, high = coded_range(as_float(ctx.train[target], target), ctx.min_count)

            def quantiles(frame: pd.DataFrame) -> list[float]:
                values = as_float(frame[target], target)
                values = values[np.isfinite(values)]
                if not values.size:
                    return []
                found = np.quantile(values, qs)
                return (np.clip(found, low, high) if np.isfinite(low) else found).tolist()

            return {"quantiles": qs, "real": quantiles(ctx.train), "synthetic": quantiles(ctx.synthetic)}
        n_codes = task.coding.n_codes
        counts = {
            k: np.bincount(task.coding.transform(f[target]), minlength=n_codes)[: task.coding.missing_code]
            for k, f in (("real", ctx.train), ("synthetic", ctx.synthetic))
        }
        shown = [k for k in task.classes if counts["real"][k] >= max(MIN_CLASS_ROWS, ctx.min_count)]
        pooled = np.ones(task.coding.missing_code, dtype=bool)
        pooled[shown] = False
        out: dict[str, Any] = {"classes": [task.coding.names[k] for k in shown] + ["other"]}
        for label, c in counts.items():
            total = max(int(c.sum()), 1)
            out[label] = [float(c[k] / total) for k in shown] + [float(c[pooled].sum() / total)]
        return out
