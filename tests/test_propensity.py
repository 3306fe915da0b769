"""Propensity: classifiers cannot tell real unseen rows from training rows, but see through noise;
folds grouped by row content keep resampled duplicates from inflating the AUC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import suite.metrics.propensity as propensity
from suite.dataset import prepare
from suite.metadata import Roles
from suite.metrics.propensity import PropensityMetric, binned_auc, content_groups, grouped_folds, rank_auc
from suite.testing import check_check, context_for
from suite.types import Context
from tests.conftest import DATA, METADATA, ROLES

#: Small enough for a fast module, large enough for stable orderings (3,000 rows a side).
FAST = {"max_rows": 6000, "shap_rows": 300}


@pytest.fixture(scope="module")
def data():
    return prepare(DATA, metadata_path=METADATA, roles=Roles.from_dict(ROLES), holdout=0.3, seed=0)


@pytest.fixture(scope="module")
def results(data):
    """Measurements by name for each calibration generator (seed 0)."""
    out = {}
    for generator in ("holdout", "marginals", "uniform"):
        ctx = context_for(data, generator, seed=0)
        out[generator] = {m.name: m for m in PropensityMetric(**FAST).evaluate(ctx)}
    return out


def test_contract(data):
    ctx = context_for(data, "marginals", seed=0)
    small = Context(ctx.train.iloc[:1500], ctx.holdout, ctx.synthetic.iloc[:1500], ctx.metadata, seed=3)
    measurements = check_check(PropensityMetric, small)
    assert [m.name for m in measurements] == ["propensity.pmse", "propensity.auc"]
    for m in measurements:
        assert m.error is None and m.ci[0] <= m.value <= m.ci[1]
        assert set(m.details["models"]) == {"logistic", "gradient_boosting"}
        assert m.details["top_features"], m.details.get("shap_error")


def test_unseen_real_rows_are_indistinguishable_and_noise_is_not(results):
    auc = {g: r["propensity.auc"] for g, r in results.items()}
    holdout = auc["holdout"]
    assert holdout.value < 0.56 or holdout.ci[0] <= 0.5 <= holdout.ci[1], holdout
    assert auc["uniform"].value > 0.95
    # independent columns keep each column's shape but lose the dependence between them
    assert holdout.ci[1] < auc["marginals"].ci[0] and auc["marginals"].value <= auc["uniform"].value
    assert auc["marginals"].value > 0.7


def test_pmse_orders_like_the_auc(results):
    pmse = {g: r["propensity.pmse"].value for g, r in results.items()}
    assert pmse["holdout"] < 0.03, pmse
    assert pmse["holdout"] < pmse["marginals"] <= pmse["uniform"] <= 0.25
    assert pmse["uniform"] > 0.2


def test_headline_is_the_worse_model(results):
    for r in results.values():
        for name, key in (("propensity.auc", "auc"), ("propensity.pmse", "pmse")):
            m = r[name]
            assert m.value == max(v[key] for v in m.details["models"].values())
            assert m.baseline == (0.5 if key == "auc" else 0.0)


def test_grouping_identical_rows_keeps_resampled_rows_from_inflating_the_auc(data, monkeypatch):
    """The holdout generator draws its rows with replacement: ungrouped folds let the boosted
    model score rows it was trained on, and the AUC of real-vs-real rises far above 0.5."""
    ctx = context_for(data, "holdout", seed=0)
    check = PropensityMetric(max_rows=6000, models=("gradient_boosting",), shap_rows=0)
    grouped = {m.name: m for m in check.evaluate(ctx)}["propensity.auc"]
    assert grouped.details["rows_with_duplicates"] > 1000  # the duplicates are there
    monkeypatch.setattr(propensity, "content_groups", lambda X: np.arange(len(X)))
    ungrouped = {m.name: m for m in check.evaluate(ctx)}["propensity.auc"]
    assert grouped.value < 0.56
    assert ungrouped.value > grouped.value + 0.1, (grouped.value, ungrouped.value)


def test_shap_names_the_column_replaced_by_noise(data):
    """Real unseen rows with one column swapped for uniform noise: that column gives them away."""
    rng = np.random.default_rng(1)
    fake = data.reference.reset_index(drop=True).copy()
    low, high = data.train["rec_ver_tat"].min(), data.train["rec_ver_tat"].max()
    fake["rec_ver_tat"] = rng.uniform(low, high, len(fake)).round(1)
    ctx = Context(data.train, data.control, fake, data.metadata, seed=0)
    ms = {m.name: m for m in PropensityMetric(max_rows=4000, shap_rows=500).evaluate(ctx)}
    top = ms["propensity.auc"].details["top_features"]
    assert top[0]["column"] == "rec_ver_tat", top
    assert top[0]["mean_abs_shap"] > 2 * top[1]["mean_abs_shap"]
    assert len(top) == 10 and all(a["mean_abs_shap"] >= b["mean_abs_shap"] for a, b in zip(top, top[1:]))
    assert ms["propensity.auc"].value > 0.8
    details = ms["propensity.auc"].details
    if details["shap_model"] != "native categories":  # shap 0.49 misreads native categorical splits
        assert details["shap_model"] == "category codes as ordinal numbers" and details["shap_note"]


def test_measurements_arrive_when_shap_fails(data, monkeypatch):
    import shap

    def broken(*args, **kwargs):
        raise RuntimeError("no explainer today")

    monkeypatch.setattr(shap, "TreeExplainer", broken)
    ctx = context_for(data, "uniform", seed=0)
    small = Context(ctx.train.iloc[:600], ctx.holdout, ctx.synthetic.iloc[:600], ctx.metadata, seed=0)
    ms = PropensityMetric(max_rows=1200, shap_rows=100).evaluate(small)
    assert [m.error for m in ms] == [None, None] and ms[1].value > 0.95
    # the exception's type, never its message (a library's message may quote a data value)
    assert ms[1].details["top_features"] == [] and "RuntimeError" in ms[1].details["shap_error"]
    assert "no explainer today" not in ms[1].details["shap_error"]


def test_vectorised_auc_agrees_with_sklearn():
    rng = np.random.default_rng(0)
    for ties in (False, True):
        scores = rng.random(500)
        if ties:
            scores = np.round(scores, 1)  # many tied scores
        labels = rng.integers(0, 2, 500)
        assert rank_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    # a batch of resamples at once, as the bootstrap calls it
    values, bins = np.unique(np.round(rng.random(300), 2), return_inverse=True)
    labels = rng.integers(0, 2, 300)
    idx = rng.integers(0, 300, size=(7, 300))
    batch = binned_auc(bins[idx], labels[idx], len(values))
    expected = [roc_auc_score(labels[i], values[bins[i]]) for i in idx]
    np.testing.assert_allclose(batch, expected, atol=1e-12)


def test_identical_rows_share_a_group_and_a_fold():
    X = np.array([[1.0, np.nan], [1.0, np.nan], [-0.0, 2.0], [0.0, 2.0], [1.0, 2.0]] * 40)
    groups = content_groups(X)
    assert groups[0] == groups[1] and groups[2] == groups[3] and groups[0] != groups[4] != groups[2]
    assert len(np.unique(groups)) == 3
    rng = np.random.default_rng(0)
    X = rng.integers(0, 30, size=(2000, 2)).astype(float)  # many repeated rows
    y = rng.integers(0, 2, 2000)
    groups = content_groups(X)
    fold = grouped_folds(groups, y, 5, rng)
    assert all(len(np.unique(fold[groups == g])) == 1 for g in np.unique(groups))
    sizes = np.bincount(fold)
    assert len(sizes) == 5 and sizes.min() > 0.8 * sizes.max()
    shares = np.array([y[fold == k].mean() for k in range(5)])
    assert np.ptp(shares) < 0.08


def test_rejects_unknown_models_and_too_few_folds():
    with pytest.raises(ValueError, match="random_forest"):
        PropensityMetric(models=("logistic", "random_forest"))
    with pytest.raises(ValueError, match="models"):
        PropensityMetric(models="logistic")
    with pytest.raises(ValueError, match="models"):
        PropensityMetric(models=())
    with pytest.raises(ValueError, match="folds"):
        PropensityMetric(folds=1)


def test_one_model_and_no_shap(data):
    ctx = context_for(data, "uniform", seed=0)
    small = Context(ctx.train.iloc[:800], ctx.holdout, ctx.synthetic.iloc[:800], ctx.metadata, seed=0)
    ms = PropensityMetric(models=["logistic"], shap_rows=0).evaluate(small)
    details = ms[0].details
    assert list(details["models"]) == ["logistic"] and details["top_features"] == []
    assert details["rows_per_table"] == 800
    assert pd.Series([m.value for m in ms]).notna().all()
