"""The `vae` generator: contract, missing values, dependence kept, no copying, DP-SGD, reproducibility."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from suite.encoding import as_float  # noqa: E402
from suite.generators._columns import decimals  # noqa: E402
from suite.generators.vae import VAEGenerator  # noqa: E402
from suite.metadata import Metadata  # noqa: E402
from suite.metrics.collisions import CollisionsMetric  # noqa: E402
from suite.metrics.dcr import DCRMetric  # noqa: E402
from suite.metrics.dependence import DependenceMetric  # noqa: E402
from suite.plan import Component  # noqa: E402
from suite.runner import fit_generator, make_context  # noqa: E402
from suite.scenario import GeneratorSpec  # noqa: E402
from suite.seeding import seeded  # noqa: E402
from suite.testing import check_generator, context_for, contract_table  # noqa: E402

FIT_INFO_KEYS = {
    "epochs_run",
    "best_validation_loss",
    "dp",
    "epsilon_spent",
    "delta",
    "noise_multiplier",
    "noise_source",
}


@pytest.fixture(scope="module")
def data(small_data):
    return small_data


@pytest.fixture(scope="module")
def fitted(data):
    """The default vae fitted and sampled as a run does (seed 0), with the context the checks see."""
    component = Component(spec=GeneratorSpec(name="vae"), cls=VAEGenerator, params={})
    generator = fit_generator(component, data, 0)
    synthetic = generator.sample(len(data.train), seed=0)
    return generator, make_context(component, data, synthetic, seed=0)


def _values(check, ctx) -> dict[str, float]:
    return {m.name: m.value for m in check().evaluate(ctx)}


@pytest.mark.parametrize("params", [{"epochs": 3, "hidden": 32}, {"epochs": 2, "hidden": 32, "dp": True}])
def test_contract(data, params):
    check_generator(VAEGenerator, data.train, data.metadata, params=params)


def test_contract_with_dates():
    check_generator(VAEGenerator, *contract_table(600), params={"epochs": 3, "hidden": 32})


def test_sample_before_fit_raises():
    with pytest.raises(RuntimeError, match="vae: call fit before sample"):
        VAEGenerator().sample(3, seed=0)


def test_fit_info(fitted):
    generator, _ = fitted
    info = generator.fit_info()
    assert set(info) == FIT_INFO_KEYS
    json.dumps(info)
    assert 0 < info["epochs_run"] <= generator.epochs
    assert math.isfinite(info["best_validation_loss"])
    assert info["dp"] is False and info["epsilon_spent"] is None and info["noise_multiplier"] is None


def test_same_seed_same_rows(fitted):
    generator, _ = fitted
    first = generator.sample(400, seed=3)
    pd.testing.assert_frame_equal(first, generator.sample(400, seed=3))
    assert not first.equals(generator.sample(400, seed=4))


def test_missing_values_kept(data, fitted):
    train, synthetic = data.train, fitted[1].synthetic
    for column in ("payor_group", "ct_result", "patient_class"):
        share = train[column].isna().mean()
        assert abs(synthetic[column].isna().mean() - share) < 0.05, column
    for column in ("age", "pan_day", "gender", "result"):
        assert not synthetic[column].isna().any(), column


def test_values_inside_the_training_domain(data, fitted):
    train, synthetic = data.train, fitted[1].synthetic
    for column in data.metadata.continuous:
        real, fake = as_float(train[column]), as_float(synthetic[column])
        fake = fake[np.isfinite(fake)]
        assert np.nanmin(real) <= fake.min() and fake.max() <= np.nanmax(real), column
        assert decimals(fake) <= decimals(real), column  # rounded to the column's precision
    for column in data.metadata.discrete:
        assert set(synthetic[column].dropna()) <= set(train[column].dropna()), column
    # the point mass of ct_result (45: not detected) is a mode of its own, kept for negative tests
    # (the link to the rare positive results is learnt only weakly in 100 epochs: 41 against 44 at seed 0)
    negative = synthetic.loc[synthetic["result"] == "negative", "ct_result"].dropna()
    positive = synthetic.loc[synthetic["result"] == "positive", "ct_result"].dropna()
    assert (negative == 45).mean() > 0.8
    assert positive.mean() < negative.mean()


def test_keeps_dependence_better_than_marginals(data, fitted):
    vae = _values(DependenceMetric, fitted[1])["dependence.correlation_mae"]
    marginals = _values(DependenceMetric, context_for(data, "marginals", seed=0))["dependence.correlation_mae"]
    # seed 0: vae 0.072, marginals 0.21 (0.05 for real holdout rows, the noise floor)
    assert vae < 0.12
    assert vae < marginals - 0.07


def test_does_not_copy_training_rows(fitted):
    ctx = fitted[1]
    # seed 0: 0.55 (real holdout rows give 0.53 on this slice)
    assert _values(DCRMetric, ctx)["dcr.share_closer_to_train"] < 0.6
    assert _values(CollisionsMetric, ctx)["collisions.excess"] < 0.01


def test_dp_spends_at_most_epsilon(data, fitted):
    with seeded(0):
        private = VAEGenerator(dp=True, epochs=3, epsilon=3.0).fit(data.train, data.metadata)
    info = private.fit_info()
    assert set(info) == FIT_INFO_KEYS
    json.dumps(info)
    assert info["dp"] is True
    assert 0 < info["epsilon_spent"] <= 3.0 + 1e-3
    assert info["delta"] == pytest.approx(1.0 / len(data.train))
    assert info["noise_multiplier"] > 0
    # no peeking at held-out rows: a fixed number of epochs, no validation loss
    assert info["epochs_run"] == 3 and info["best_validation_loss"] is None
    rows = private.sample(300, seed=0)
    assert list(rows.columns) == list(data.train.columns)
    assert (rows.dtypes == data.train.dtypes).all()
    assert not rows.equals(fitted[0].sample(300, seed=0))
    with seeded(0):
        strict = VAEGenerator(dp=True, epochs=3, epsilon=1.0, delta=1e-5).fit(data.train, data.metadata)
    assert strict.fit_info()["epsilon_spent"] <= 1.0 + 1e-3
    assert strict.fit_info()["noise_multiplier"] > info["noise_multiplier"]


def test_early_stopping_on_a_plateau():
    """Independent columns: nothing to learn beyond the marginals, the validation loss flattens fast."""
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({"a": rng.choice(["x", "y", "z"], n), "b": rng.normal(size=n).round(2)})
    metadata = Metadata(columns={"a": {"sdtype": "categorical"}, "b": {"sdtype": "numerical"}})
    with seeded(0):
        generator = VAEGenerator(epochs=500, patience=3, hidden=32).fit(frame, metadata)
    info = generator.fit_info()
    assert 3 < info["epochs_run"] < 500
    assert math.isfinite(info["best_validation_loss"])


def test_mixed_types_and_edge_columns():
    """Dates, booleans, integer categories, nullable integers, constant and empty columns keep their dtypes."""
    rng = np.random.default_rng(1)
    n = 300
    when = pd.Series(pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"))
    when[rng.random(n) < 0.2] = pd.NaT
    count = pd.Series(rng.integers(0, 9, n), dtype="Int64")
    count[rng.random(n) < 0.1] = pd.NA
    frame = pd.DataFrame(
        {
            "when": when,
            "flag": rng.random(n) < 0.3,
            "code": rng.integers(1, 4, n),
            "count": count,
            "constant": np.full(n, 7.5),
            "empty": np.full(n, np.nan),
            "label": pd.Series(rng.choice(["a", "b", None], n), dtype="object"),
        }
    )
    sdtypes = {"when": "datetime", "flag": "boolean", "code": "categorical", "count": "numerical"}
    sdtypes |= {"constant": "numerical", "empty": "numerical", "label": "categorical"}
    metadata = Metadata(columns={c: {"sdtype": s} for c, s in sdtypes.items()})
    with seeded(0):
        generator = VAEGenerator(epochs=60, batch_size=64, hidden=32, max_levels=2).fit(frame, metadata)
    out = generator.sample(500, seed=0)
    assert (out.dtypes == frame.dtypes).all(), out.dtypes
    assert abs(out["when"].isna().mean() - 0.2) < 0.1
    assert out["when"].dropna().between(frame["when"].min(), frame["when"].max()).all()
    assert (out["when"].dropna().dt.normalize() == out["when"].dropna()).all()  # whole days, like the training dates
    assert set(out["code"]) <= {1, 2, 3}  # a pooled level comes back as one of the pooled values
    assert (out["constant"] == 7.5).all() and out["empty"].isna().all()
    assert out["count"].dropna().isin(range(9)).all()
    assert set(out["label"].dropna()) <= {"a", "b"} and out["label"].isna().any()
