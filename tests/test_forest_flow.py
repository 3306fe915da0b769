"""ForestFlow (flow matching with xgboost per noise level): contract, dependence, no copying, missing values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("xgboost")

from suite.generators.forest_flow import ForestFlowGenerator  # noqa: E402 - registers "forest_flow"
from suite.metadata import Metadata  # noqa: E402
from suite.metrics.collisions import CollisionsMetric  # noqa: E402
from suite.metrics.dcr import DCRMetric  # noqa: E402
from suite.metrics.dependence import DependenceMetric  # noqa: E402
from suite.testing import check_generator, context_for  # noqa: E402


class SmallForestFlow(ForestFlowGenerator):
    """Few levels and rounds: the contract, fast."""

    def __init__(self, *, n_t: int = 3, n_estimators: int = 3, duplicate_k: int = 2, seed: int = 0) -> None:
        super().__init__(n_t=n_t, n_estimators=n_estimators, duplicate_k=duplicate_k, seed=seed)


@pytest.fixture(scope="module")
def data(small_data):
    return small_data


@pytest.fixture(scope="module")
def ctx(data):
    """The default generator fitted and sampled as the runner does it (seed 0)."""
    return context_for(data, "forest_flow", seed=0)


def test_contract(data):
    check_generator(SmallForestFlow, data.train, data.metadata)


def test_sample_before_fit_raises():
    with pytest.raises(RuntimeError, match="call fit before sample"):
        ForestFlowGenerator().sample(5, seed=0)


def test_keeps_dependence_better_than_marginals(data, ctx):
    ours = DependenceMetric().evaluate(ctx)[0]
    marginals = DependenceMetric().evaluate(context_for(data, "marginals", seed=0))[0]
    assert ours.name == "dependence.correlation_mae"
    assert ours.value < 0.75 * marginals.value, (ours.value, marginals.value)


def test_does_not_copy_training_rows(ctx):
    dcr = {m.name: m.value for m in DCRMetric().evaluate(ctx)}
    collisions = {m.name: m.value for m in CollisionsMetric().evaluate(ctx)}
    assert dcr["dcr.share_closer_to_train"] < 0.6
    assert collisions["collisions.excess"] < 0.01


def test_domain_and_missing_share(data, ctx):
    train, synthetic = data.train, ctx.synthetic
    for column in data.metadata.discrete:
        assert set(synthetic[column].dropna()) <= set(train[column].dropna()), column
    for column in data.metadata.continuous:
        assert synthetic[column].min() >= train[column].min() and synthetic[column].max() <= train[column].max()
    for column in train.columns:
        share = train[column].isna().mean()
        assert abs(synthetic[column].isna().mean() - share) < max(0.05, share * 0.25), column
        assert (synthetic[column].isna().mean() > 0) == (share > 0), column


def test_same_seed_same_rows(data):
    first = SmallForestFlow().fit(data.train, data.metadata)
    second = SmallForestFlow().fit(data.train, data.metadata)
    pd.testing.assert_frame_equal(first.sample(300, seed=3), second.sample(300, seed=3))
    assert not first.sample(300, seed=3).equals(first.sample(300, seed=4))
    assert len(first.sample(0, seed=1)) == 0


def test_fit_info(data):
    generator = SmallForestFlow().fit(data.train, data.metadata)
    info = generator.fit_info()
    assert info["noise_levels"] == 3 and info["rounds_per_level"] == 3
    assert info["duplicates"] == 2 and info["rows_per_level"] == 2 * len(data.train)
    assert info["trees"] == 3 * 3 * info["encoded_columns"]
    assert info["fit_seconds"] > 0


def test_odd_dtypes_round_trip():
    """Dates, nullable integers, booleans, pandas categoricals, many levels and an empty column."""
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 400, n), unit="D"),
            "count": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 9, n)), dtype="Int64"),
            "flag": pd.array(rng.random(n) < 0.3, dtype="boolean"),
            "site": pd.Categorical(rng.choice(list("abc"), n), categories=list("abcz")),
            "code": rng.choice([f"c{i}" for i in range(20)], n).astype(object),
            "empty": np.full(n, np.nan),
        }
    )
    metadata = Metadata(
        columns={
            "when": {"sdtype": "datetime"},
            "count": {"sdtype": "numerical"},
            "flag": {"sdtype": "boolean"},
            "site": {"sdtype": "categorical"},
            "code": {"sdtype": "categorical"},
            "empty": {"sdtype": "numerical"},
        }
    )
    out = SmallForestFlow().fit(frame, metadata).sample(200, seed=0)
    assert list(out.dtypes) == list(frame.dtypes)
    assert out["when"].between(frame["when"].min(), frame["when"].max()).all()
    assert set(out["site"].dropna()) <= {"a", "b", "c"}
    assert set(out["code"]) <= set(frame["code"])
    assert out["empty"].isna().all() and out["count"].isna().any()
