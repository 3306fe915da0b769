"""Sequential CART: the contract, dependence and missingness kept, and no copying unless leaves are tiny."""

from __future__ import annotations

import numpy as np
import pytest

from suite.generators._columns import precision, round_to
from suite.generators.cart import CARTGenerator, knn_radius, reflect, silverman
from suite.metrics.collisions import CollisionsMetric
from suite.metrics.dcr import DCRMetric
from suite.metrics.dependence import DependenceMetric
from suite.metrics.missingness import MissingnessMetric
from suite.testing import check_generator, context_for
from tests.conftest import mixed_table

#: The leaves of one row each, without smoothing: the trees then return the training rows.
COPYING = {"min_samples_leaf": 1, "smoothing": False}


@pytest.fixture(scope="module")
def data(small_data):
    return small_data


@pytest.fixture(scope="module")
def contexts(data):
    return {
        "marginals": context_for(data, "marginals", seed=0),
        "cart": context_for(data, "cart", seed=0),
        "copying": context_for(data, "cart", seed=0, params=COPYING),
    }


def _value(check, ctx, name: str) -> float:
    return next(m.value for m in check.evaluate(ctx) if m.name == name)


def test_contract(data):
    check_generator(CARTGenerator, data.train, data.metadata)
    check_generator(CARTGenerator, data.train.iloc[:300].reset_index(drop=True), data.metadata)


def test_sample_before_fit_is_a_clear_error():
    with pytest.raises(RuntimeError, match="cart: call fit before sample"):
        CARTGenerator().sample(3, seed=0)


def test_keeps_dependence_far_better_than_marginals(contexts):
    cart = _value(DependenceMetric(), contexts["cart"], "dependence.correlation_mae")
    marginals = _value(DependenceMetric(), contexts["marginals"], "dependence.correlation_mae")
    # observed (seed 0): cart 0.030, marginals 0.21
    assert cart < 0.3 * marginals


def test_does_not_copy_training_rows(contexts):
    ctx = contexts["cart"]
    # observed (seed 0): dcr 0.535, collisions excess 0
    assert _value(DCRMetric(), ctx, "dcr.share_closer_to_train") < 0.58
    assert _value(CollisionsMetric(), ctx, "collisions.excess") < 0.01


def test_min_samples_leaf_matters(contexts):
    """Leaves of one row without smoothing reproduce the training rows; the defaults do not."""
    default = _value(DCRMetric(), contexts["cart"], "dcr.share_closer_to_train")
    copying = _value(DCRMetric(), contexts["copying"], "dcr.share_closer_to_train")
    assert copying > default + 0.3  # observed: 1.0 against 0.535
    assert _value(CollisionsMetric(), contexts["copying"], "collisions.excess") > 0.5


def test_keeps_co_missingness(contexts):
    train, synthetic = contexts["cart"].train, contexts["cart"].synthetic
    cart = _value(MissingnessMetric(), contexts["cart"], "missingness.co_missing_mae")
    marginals = _value(MissingnessMetric(), contexts["marginals"], "missingness.co_missing_mae")
    assert cart < 0.2 * marginals  # observed: 0.003 against 0.082
    both = lambda f: float((f["payor_group"].isna() & f["patient_class"].isna()).mean())  # noqa: E731
    assert abs(both(synthetic) - both(train)) < 0.03
    assert abs(synthetic["ct_result"].isna().mean() - train["ct_result"].isna().mean()) < 0.02


def test_values_stay_in_the_training_domain(contexts):
    train, synthetic = contexts["cart"].train, contexts["cart"].synthetic
    for column in ("clinic_name", "patient_class", "result"):
        assert set(synthetic[column].dropna()) <= set(train[column].dropna())
    for column in ("age", "pan_day", "col_rec_tat"):
        assert train[column].min() <= synthetic[column].min() and synthetic[column].max() <= train[column].max()
        assert np.allclose(synthetic[column], synthetic[column].round(1))  # the columns' precision
    # the dominant "not detected" value stays a spike instead of being smoothed away
    assert abs((synthetic["ct_result"] == 45).mean() - (train["ct_result"] == 45).mean()) < 0.03


def test_smoothing_does_not_echo_an_extreme_value(data):
    """One row's extreme value is drawn from its leaf like any other; smoothing hides it."""
    train = data.train
    top = train["col_rec_tat"].max()
    assert (train["col_rec_tat"] == top).sum() == 1
    smooth = CARTGenerator().fit(train, data.metadata).sample(20_000, seed=1)
    raw = CARTGenerator(smoothing=False).fit(train, data.metadata).sample(20_000, seed=1)
    assert (raw["col_rec_tat"] == top).sum() >= 5  # observed: 8 exact copies
    assert not (smooth["col_rec_tat"] == top).any()
    assert (np.abs(smooth["col_rec_tat"] - top) < 0.01 * top).sum() <= 1


def test_fit_info_and_visit_order(data):
    generator = CARTGenerator().fit(data.train, data.metadata)
    info = generator.fit_info()
    assert sorted(info["order"]) == sorted(data.train.columns)
    # default order: categories by decreasing number of levels, then numbers in table order
    assert info["order"][0] == "clinic_name"
    numbers = [c for c in data.train.columns if c in data.metadata.continuous]
    assert info["order"][-len(numbers) :] == numbers
    assert info["trees"]["clinic_name"] == {"depth": 0, "leaves": 1}  # the first column is a bootstrap
    assert all(t.get("leaves", 1) >= 1 for t in info["trees"].values())
    assert "missing_indicator" in info["trees"]["ct_result"]
    # every leaf holds at least min_samples_leaf training rows
    for step in generator.steps_:
        for model in (step.get("model"), step.get("value_model"), step.get("missing_model")):
            if model is not None and model.tree is not None:
                assert model.count[model.count > 0].min() >= generator.min_samples_leaf
    ordered = CARTGenerator(order=["age", "result"]).fit(data.train, data.metadata).fit_info()["order"]
    assert ordered[:3] == ["age", "result", "clinic_name"]
    with pytest.raises(ValueError, match="not_a_column"):
        CARTGenerator(order=["not_a_column"]).fit(data.train, data.metadata)


def test_dates_and_nullable_types():
    frame, metadata = mixed_table()
    check_generator(CARTGenerator, frame, metadata)
    out = CARTGenerator(min_samples_leaf=5).fit(frame, metadata).sample(1000, seed=0)
    days = out["day"].dropna()
    assert (days == days.dt.floor("D")).all()  # dates keep their precision
    assert abs(out["day"].isna().mean() - frame["day"].isna().mean()) < 0.04
    assert out["empty"].isna().all()


def test_helpers():
    assert precision(np.array([1.5, 2.25, np.nan]), "numerical") == ("decimals", 2.0)
    assert precision(np.array([0.0, 86_400e9 * 3]), "datetime") == ("step", 86_400e9)
    assert np.array_equal(round_to(np.array([1.26, np.nan]), ("decimals", 1.0)), np.array([1.3, np.nan]), True)
    assert np.array_equal(reflect(np.array([-1.0, 5.0, 12.0]), 0.0, 10.0), np.array([1.0, 5.0, 8.0]))
    assert np.array_equal(knn_radius(np.array([1.0, 1.0, 1.0, 2.0, 5.0, 100.0]), 3), [0, 0, 0, 1, 4, 98])
    values = np.sort(np.random.default_rng(0).normal(size=40))
    sd = values.std(ddof=1)
    iqr = np.subtract(*np.quantile(values, [0.75, 0.25]))
    expected = 0.9 * min(sd, iqr / 1.34) * 40**-0.2  # R's bw.nrd0
    got = silverman(np.r_[values, 3.0, 3.0], np.array([0, 40]), np.array([40, 2]))
    assert np.allclose(got, [expected, 0.0])
