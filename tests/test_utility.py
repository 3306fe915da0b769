"""ML utility (train on synthetic, test on real): scores, the skill ratio and its paired interval.

Ground truths on real data: the `holdout` generator (real unseen rows) keeps nearly all the
real model's skill, `marginals` (independent columns) and `uniform` (noise) keep none, and
the Gaussian copula (which keeps correlations) sits in between.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from suite.dataset import prepare
from suite.metadata import Metadata, Roles
from suite.metrics.utility import UtilityMetric, weighted_auc, weighted_r2
from suite.testing import check_check, context_for
from suite.types import Context, Goal
from tests.conftest import DATA, METADATA, ROLES

ROOT = DATA.parent.parent
NAMES = ["utility.tstr_ratio", "utility.tstr_score", "utility.trtr_score"]


def by_name(measurements):
    return {m.name: m for m in measurements}


def relabel(ctx: Context, fn) -> Context:
    """The context with `fn` applied to each of its three tables."""
    return dataclasses.replace(ctx, train=fn(ctx.train), holdout=fn(ctx.holdout), synthetic=fn(ctx.synthetic))


def with_target(ctx: Context, target: str | None) -> Context:
    roles = dataclasses.replace(ctx.metadata.roles, target=target)
    return dataclasses.replace(ctx, metadata=ctx.metadata.with_roles(roles))


@pytest.fixture(scope="module")
def covid():
    return prepare(DATA, metadata_path=METADATA, roles=Roles.from_dict(ROLES), holdout=0.3, seed=0)


@pytest.fixture(scope="module")
def contexts(covid):
    return {g: context_for(covid, g, seed=0) for g in ("holdout", "sdv.gaussian_copula", "marginals", "uniform")}


@pytest.fixture(scope="module")
def results(contexts):
    """The check on the covid `result` target (negative / positive / invalid) for each generator."""
    return {g: by_name(UtilityMetric().evaluate(ctx)) for g, ctx in contexts.items()}


def test_weighted_scores_match_sklearn_on_resampled_rows():
    from sklearn.metrics import r2_score, roc_auc_score

    rng = np.random.default_rng(3)
    n = 400
    score = np.round(rng.random(n), 2)  # ties
    positive = rng.random(n) < 0.2 + 0.5 * score
    y = rng.normal(size=n)
    pred = y + rng.normal(size=n)
    idx = rng.integers(0, n, size=(5, n))
    counts = np.stack([np.bincount(i, minlength=n) for i in idx]).astype(float)
    auc = weighted_auc(score, positive, counts)
    r2 = weighted_r2(y, pred, counts)
    for b in range(5):
        assert auc[b] == pytest.approx(roc_auc_score(positive[idx[b]], score[idx[b]]), abs=1e-12)
        assert r2[b] == pytest.approx(r2_score(y[idx[b]], pred[idx[b]]), abs=1e-12)
    assert weighted_auc(score, positive, np.ones((1, n)))[0] == pytest.approx(roc_auc_score(positive, score))
    assert np.isnan(weighted_auc(score, np.zeros(n, bool), np.ones((1, n)))[0])


def test_contract(contexts):
    ms = by_name(check_check(UtilityMetric, contexts["holdout"]))
    assert list(ms) == NAMES
    assert all(m.goal is Goal.MAXIMIZE and m.error is None for m in ms.values())
    details = ms["utility.tstr_ratio"].details
    json.dumps(details)  # plain JSON for the report
    assert details["task"] == "classification" and details["metric"] == "roc_auc_ovr_macro"
    assert details["chance"] == 0.5
    assert details["per_class_auc"]["classes"] == ["negative", "positive", "invalid"]
    assert details["target_balance"]["classes"][:3] == ["negative", "positive", "invalid"]
    assert sum(details["target_balance"]["real"]) == pytest.approx(1.0)
    # the real signal lives in ct_result (positives have low Ct values): both models find it first
    assert details["importances"]["trtr"][0]["feature"] == "ct_result"
    assert details["importances"]["tstr"][0]["feature"] == "ct_result"
    assert len(details["importances"]["tstr"]) == 10


def test_ground_truths_on_covid(results):
    ratio = {g: ms["utility.tstr_ratio"] for g, ms in results.items()}
    # real unseen rows are nearly as useful as the training rows (observed 0.97)
    assert ratio["holdout"].value > 0.85 and ratio["holdout"].ci[1] > 0.95
    # independent columns carry no signal about the target (observed 0.01, interval -0.08..0.11)
    assert abs(ratio["marginals"].value) < 0.2 and ratio["marginals"].ci[0] < 0 < ratio["marginals"].ci[1]
    # uniform noise: no skill (observed -0.18: models fitted on noise extrapolate badly)
    assert ratio["uniform"].value < 0.3
    # the copula keeps correlations: clearly above the independent generators, clearly below real rows
    # (observed 0.67, interval 0.59..0.75)
    copula = ratio["sdv.gaussian_copula"]
    assert copula.ci[0] > ratio["marginals"].ci[1] and copula.ci[0] > ratio["uniform"].ci[1]
    assert copula.ci[1] < ratio["holdout"].ci[0]
    # the real model is the same whatever the generator
    trtr = {ms["utility.trtr_score"].value for ms in results.values()}
    assert len(trtr) == 1 and 0.9 < trtr.pop() <= 1.0


def test_intervals_contain_the_values(results):
    for ms in results.values():
        for m in ms.values():
            assert m.ci[0] <= m.value <= m.ci[1], (m.name, m.value, m.ci)
        assert ms["utility.tstr_score"].baseline == ms["utility.trtr_score"].value
        assert ms["utility.trtr_score"].baseline == 0.5


def test_paired_bootstrap_on_identical_models(contexts):
    """Synthetic = train: both models are the same, so a paired interval of the ratio collapses to 1."""
    ctx = contexts["holdout"]
    same = dataclasses.replace(ctx, synthetic=ctx.train.copy())
    ms = by_name(UtilityMetric().evaluate(same))
    assert ms["utility.tstr_ratio"].value == 1.0
    assert ms["utility.tstr_ratio"].ci == (1.0, 1.0)
    assert ms["utility.tstr_score"].ci == ms["utility.trtr_score"].ci
    assert ms["utility.trtr_score"].ci[1] - ms["utility.trtr_score"].ci[0] > 0.01


def test_binary_target_and_missing_values(contexts):
    def positive(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.assign(result=(frame["result"] == "positive").map({True: "yes", False: "no"}))
        out.loc[out.index % 5 == 0, "result"] = None  # a fifth of every table lacks the target
        return out

    holdout = by_name(UtilityMetric().evaluate(relabel(contexts["holdout"], positive)))
    marginals = by_name(UtilityMetric().evaluate(relabel(contexts["marginals"], positive)))
    details = holdout["utility.tstr_ratio"].details
    assert details["metric"] == "roc_auc" and details["positive_class"] == "yes"
    n = {k: len(getattr(contexts["holdout"], k)) for k in ("train", "synthetic", "holdout")}
    assert details["rows_without_target"] == {k: (v + 4) // 5 for k, v in n.items()}
    assert details["test_rows"] == n["holdout"] - (n["holdout"] + 4) // 5
    # Ct values separate positives well; a few positives near Ct 40 decide how well (observed TRTR 0.954 here,
    # 0.9999 with every target kept: the AUC of a 5% class moves with the few rows at the boundary)
    assert holdout["utility.trtr_score"].value > 0.9
    assert 0.85 < holdout["utility.tstr_ratio"].value < 1.2  # observed 1.10
    assert abs(marginals["utility.tstr_ratio"].value) < 0.2


def test_synthetic_missing_a_class_or_inventing_one(contexts, results):
    ctx = contexts["holdout"]
    without = dataclasses.replace(ctx, synthetic=ctx.synthetic[ctx.synthetic["result"] != "invalid"])
    ms = by_name(UtilityMetric().evaluate(without))
    per_class = ms["utility.tstr_ratio"].details["per_class_auc"]
    assert per_class["classes"][2] == "invalid"
    assert per_class["tstr"][2] == 0.5  # never seen: probability 0 for every row, no skill
    assert ms["utility.tstr_ratio"].value < results["holdout"]["utility.tstr_ratio"].value - 0.1
    assert ms["utility.trtr_score"].value == results["holdout"]["utility.trtr_score"].value
    balance = ms["utility.tstr_ratio"].details["target_balance"]
    assert balance["synthetic"][2] == 0.0 and balance["real"][2] > 0.01

    invented = ctx.synthetic.copy()
    invented.loc[invented.index % 10 == 0, "result"] = "inconclusive"
    ms = by_name(UtilityMetric().evaluate(dataclasses.replace(ctx, synthetic=invented)))
    assert all(m.error is None and np.isfinite(m.value) for m in ms.values())
    assert ms["utility.tstr_ratio"].value > 0.8
    assert ms["utility.tstr_ratio"].details["target_balance"]["synthetic"][-1] == pytest.approx(0.1, abs=0.01)


def test_no_target_fails_closed(contexts):
    ms = UtilityMetric().evaluate(with_target(contexts["holdout"], None))
    assert [m.name for m in ms] == NAMES
    for m in ms:
        assert m.error == "utility needs a target: set dataset.roles.target in the scenario"
        assert np.isnan(m.value)


def test_unusable_targets():
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"x": rng.normal(size=n), "flat": np.zeros(n), "label": rng.choice(["a", "b"], n)})
    md = Metadata(
        columns={"x": {"sdtype": "numerical"}, "flat": {"sdtype": "numerical"}, "label": {"sdtype": "categorical"}},
        roles=Roles(target="label"),
    )
    ctx = Context(frame.iloc[:400], frame.iloc[400:], frame.iloc[:400], md, seed=0)

    constant = relabel(ctx, lambda f: f.assign(label="a"))
    for m in UtilityMetric().evaluate(constant):
        assert "single value" in m.error
    empty = relabel(ctx, lambda f: f.assign(label=None))
    for m in UtilityMetric().evaluate(empty):
        assert "missing in every training row" in m.error
    gone = with_target(ctx, "nope")
    assert all("not a column" in m.error for m in UtilityMetric().evaluate(gone))

    # features that carry nothing: the real model is at chance, so the ratio cannot be judged
    noise = dataclasses.replace(ctx, metadata=ctx.metadata.with_roles(Roles(target="label")))
    noise = relabel(noise, lambda f: f.assign(x=1.0))
    ms = by_name(UtilityMetric().evaluate(noise))
    assert "cannot be predicted from the real data" in ms["utility.tstr_ratio"].error
    assert ms["utility.trtr_score"].error is None and ms["utility.trtr_score"].value == 0.5
    assert ms["utility.tstr_ratio"].details["trtr_score"] == 0.5


def test_date_target_is_regression():
    rng = np.random.default_rng(1)
    n = 800
    x = rng.normal(size=n)
    when = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.round(30 * x + rng.normal(size=n)), unit="D")
    frame = pd.DataFrame({"x": x, "group": rng.choice(["u", "v"], n), "when": when})
    md = Metadata(
        columns={"x": {"sdtype": "numerical"}, "group": {"sdtype": "categorical"}, "when": {"sdtype": "datetime"}},
        roles=Roles(target="when"),
    )
    ctx = Context(frame.iloc[:500], frame.iloc[500:], frame.iloc[:500], md, seed=0)
    ms = by_name(UtilityMetric().evaluate(ctx))
    assert ms["utility.tstr_ratio"].details["metric"] == "r2"
    assert ms["utility.trtr_score"].value > 0.9
    assert ms["utility.tstr_ratio"].value == 1.0


def test_models_and_parameters(contexts):
    with pytest.raises(ValueError, match="model must be one of"):
        UtilityMetric(model="svm")
    ctx = contexts["holdout"]
    for model in ("linear", "random_forest"):
        ms = by_name(UtilityMetric(model=model, max_rows=3000).evaluate(ctx))
        details = ms["utility.tstr_ratio"].details
        assert details["model"] == model and details["train_rows"] == 3000 and details["synthetic_rows"] <= 3000
        assert ms["utility.trtr_score"].value > 0.85  # observed 0.92 (linear) and 0.98 (forest) on all rows
        assert ms["utility.tstr_ratio"].value > 0.8


@pytest.fixture(scope="module")
def flchain():
    return prepare(
        ROOT / "data" / "flchain.parquet", metadata_path=None, roles=Roles(target="kappa"), holdout=0.3, seed=0
    )


def test_regression_on_flchain(flchain):
    assert flchain.metadata.sdtype("kappa") == "numerical"
    ms = {g: by_name(UtilityMetric().evaluate(context_for(flchain, g, seed=0))) for g in ("holdout", "marginals")}
    details = ms["holdout"]["utility.tstr_ratio"].details
    assert details["task"] == "regression" and details["metric"] == "r2" and details["chance"] == 0.0
    assert details["target_balance"]["quantiles"] == [0.05, 0.25, 0.5, 0.75, 0.95]
    # kappa follows lambda and creatinine: real unseen rows keep the skill (observed R² 0.74, ratio 1.03)
    assert ms["holdout"]["utility.trtr_score"].value > 0.5
    assert 0.85 < ms["holdout"]["utility.tstr_ratio"].value < 1.15
    assert ms["marginals"]["utility.tstr_ratio"].value < 0.1  # observed -0.07
    for m in ms["holdout"].values():
        assert m.ci[0] <= m.value <= m.ci[1]
