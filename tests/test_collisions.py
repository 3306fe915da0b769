"""Exact-copy detection is dtype-blind and reports the excess over chance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from suite.metadata import Metadata
from suite.metrics.collisions import CollisionsMetric, row_keys
from suite.types import Context

#: columns of the quickstart table that many patients share
PROFILE = ["gender", "age", "clinic_name", "result", "payor_group", "pan_day"]

MD = Metadata(
    columns={"age": {"sdtype": "numerical"}, "sex": {"sdtype": "categorical"}, "code": {"sdtype": "categorical"}}
)


def test_row_keys_ignore_dtypes_and_treat_missing_as_equal():
    a = pd.DataFrame({"age": [1, 2, 3], "sex": ["f", "m", None], "code": [1, 2, 3]})
    b = pd.DataFrame({"age": [1.0, 2.0, 3.0], "sex": ["f", "m", np.nan], "code": ["1", "2", "3"]})
    assert (row_keys(a, MD) == row_keys(b, MD)).all()
    c = b.assign(age=[1.0, 2.5, 3.0])
    assert (row_keys(a, MD) == row_keys(c, MD)).tolist() == [True, False, True]


def test_excess_counts_copies_beyond_chance():
    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {"age": rng.normal(size=1000), "sex": rng.choice(["f", "m"], 1000), "code": rng.choice(list("abc"), 1000)}
    )
    holdout = pd.DataFrame(
        {"age": rng.normal(size=250), "sex": rng.choice(["f", "m"], 250), "code": rng.choice(list("abc"), 250)}
    )
    copied = pd.concat([train.iloc[:200], holdout.iloc[:0]]).reset_index(drop=True)
    fresh = pd.DataFrame(
        {"age": rng.normal(size=800), "sex": rng.choice(["f", "m"], 800), "code": rng.choice(list("abc"), 800)}
    )
    synthetic = pd.concat([copied, fresh], ignore_index=True)
    ms = {m.name: m for m in CollisionsMetric().evaluate(Context(train, holdout, synthetic, MD, seed=0))}
    assert ms["collisions.rate"].value == 0.2
    assert ms["collisions.holdout_rate"].value == 0.0
    assert abs(ms["collisions.excess"].value - 0.2) < 1e-12
    low, high = ms["collisions.excess"].ci
    assert low < 0.2 < high and high - low < 0.06


def test_row_keys_make_numbers_canonical():
    md = Metadata(columns={"x": {"sdtype": "numerical"}, "code": {"sdtype": "categorical"}})
    other_nan = np.frombuffer(np.uint64(0x7FF8000000000001).tobytes(), dtype=np.float64)[0]  # a NaN, other bits
    a = pd.DataFrame({"x": [0.0, np.nan, 1.5], "code": [0.0, 2.0, None]})
    b = pd.DataFrame({"x": [-0.0, other_nan, 1.5], "code": [-0.0, 2.0, np.nan]})
    assert (row_keys(a, md) == row_keys(b, md)).all()
    assert row_keys(a.assign(x=[0.0, 1.0, 1.5]), md)[1] != row_keys(a, md)[1]  # missing is not a number


def test_found_is_the_hypergeometric_chance_of_holding_a_copy():
    from scipy import stats

    from suite.metrics.collisions import found

    copies = np.array([0, 1, 3, 20, 998])
    expected = 1.0 - stats.hypergeom.pmf(0, 1000, copies, 250)
    assert found(copies, 1000, 250) == pytest.approx(expected, abs=1e-12)
    assert found(np.array([0, 1, 2]), 100, 100).tolist() == [0.0, 1.0, 1.0]  # the whole table: present or not


@pytest.fixture(scope="module")
def repeated():
    """The quickstart table cut to six columns that many patients share (about 40% of rows repeat another)."""
    from suite.dataset import prepare
    from suite.metadata import Roles
    from tests.conftest import DATA, METADATA, ROLES

    data = prepare(DATA, metadata_path=METADATA, roles=Roles.from_dict(ROLES), holdout=0.3, seed=0)
    md = data.metadata.without(tuple(c for c in data.metadata.columns if c not in PROFILE))
    train, control, reference = (f[PROFILE] for f in (data.train, data.control, data.reference))
    rng = np.random.default_rng(0)
    clean = reference.iloc[rng.integers(0, len(reference), len(train))].reset_index(drop=True)
    leaky = clean.copy()
    copied = rng.choice(len(train), len(train) // 10, replace=False)
    leaky.iloc[: len(copied)] = train.iloc[copied].to_numpy()

    def measure(synthetic):
        ctx = Context(
            train,
            control,
            synthetic,
            md,
            seed=0,
            train_entities=data.train_entities,
            holdout_entities=data.control_entities,
        )
        return {m.name: m for m in CollisionsMetric().evaluate(ctx)}

    return measure(clean), measure(leaky), len(train) / len(control)


def test_a_ten_percent_copy_is_flagged_on_a_table_with_repeated_records(repeated):
    clean, leaky, power = repeated
    excess = leaky["collisions.excess"]
    # observed: 0.062 [0.032, 0.091]; copies of profiles other real people share count only by how much they
    # raise the odds a training person holds them, so the 10% copy reads 0.06 on this table
    assert excess.value > 0.04 and excess.conservative() > 0.01
    assert excess.value > clean["collisions.excess"].value + 0.03  # observed: clean 0.019
    # the old chance model (the control's rate extrapolated to the training size) called the copy chance
    rate, holdout_rate = leaky["collisions.rate"].value, leaky["collisions.holdout_rate"].value
    assert rate - (1.0 - (1.0 - holdout_rate) ** power) < 0.0  # observed: -0.26


def test_clean_rows_are_near_zero_and_their_interval_covers_it(repeated):
    clean = repeated[0]["collisions.excess"]
    low, high = clean.ci
    assert low < 0.0 < high and abs(clean.value) < 0.05  # observed: 0.019 [-0.016, 0.051]
    assert high - low < 0.1  # the chance model of the equal-size extrapolation gave [-0.16, 0.18]


def test_over_splits_the_excess_of_unseen_rows_is_zero_on_average_and_its_interval_covers_it():
    """The null the gate certifies against: a release of real rows nobody trained on, judged over 60 random
    train/control splits of the other people on a table where ~40% of rows repeat another. The excess averages 0
    (its chance term is the split's exact expectation) and the 95% interval covers 0 at about its rate."""
    from suite.dataset import prepare, split_indices
    from suite.metadata import Roles
    from tests.conftest import DATA, METADATA, ROLES

    data = prepare(DATA, metadata_path=METADATA, roles=Roles.from_dict(ROLES), holdout=0.3, seed=0)
    md = data.metadata.without(tuple(c for c in data.metadata.columns if c not in PROFILE))
    pool = pd.concat([data.train, data.control], ignore_index=True)[PROFILE]
    people = pd.concat([data.train_entities, data.control_entities], ignore_index=True)
    release = data.reference[PROFILE].reset_index(drop=True)
    values, covered = [], []
    for seed in range(60):
        t, c, r = split_indices(len(pool), holdout=0.6, seed=seed, groups=people)  # control: 30% of the pool
        train = pool.iloc[np.sort(np.r_[t, r])].reset_index(drop=True)
        ents = people.iloc[np.sort(np.r_[t, r])].reset_index(drop=True)
        ctx = Context(
            train,
            pool.iloc[c].reset_index(drop=True),
            release,
            md,
            seed=seed,
            train_entities=ents,
            holdout_entities=people.iloc[c].reset_index(drop=True),
        )
        m = {m.name: m for m in CollisionsMetric().evaluate(ctx)}["collisions.excess"]
        values.append(m.value)
        covered.append(m.ci[0] <= 0.0 <= m.ci[1])
    values = np.array(values)
    assert abs(values.mean()) < 3 * values.std(ddof=1) / np.sqrt(len(values))  # observed: mean -0.0025, SD 0.012
    assert np.mean(covered) >= 0.88  # observed: 0.97


def test_row_keys_read_text_columns_without_a_per_cell_call(small_data):
    """Text columns skip the per-cell `_text` call (it returns text unchanged): the keys are those of calling it
    on every cell, on real rows with missing values; a column of numbers stored as objects still gets it."""
    from suite.metrics import collisions

    frame, md = small_data.train, small_data.metadata

    def per_cell(c: str) -> object:
        if c in md.continuous:
            x = collisions.as_float(frame[c], c) + 0.0
            return np.where(np.isnan(x), np.nan, x)
        values = frame[c].astype(object).where(frame[c].notna(), None)
        return values.map(lambda v: None if v is None else collisions._text(v))

    want = pd.util.hash_pandas_object(pd.DataFrame({c: per_cell(c) for c in md.columns}), index=False).to_numpy()
    assert frame[md.discrete].isna().any().any()  # missing text is covered
    np.testing.assert_array_equal(row_keys(frame, md), want)
    twins = frame.iloc[[0, 0]].reset_index(drop=True)
    twins[md.discrete[0]] = pd.Series([1.0, 1], dtype=object)  # "1.0" and "1": not the same text
    keys = row_keys(twins, md)
    assert keys[0] != keys[1]


def test_found_only_where_copies_and_per_count_give_the_dense_formula_bit_for_bit():
    """The bootstrap computes `found` only where there are copies, and per distinct count: the same numbers
    as the hypergeometric formula evaluated on every cell."""
    from scipy.special import gammaln

    from suite.metrics.collisions import found

    def dense(copies, total, draws):
        copies, total, draws = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (copies, total, draws)))
        rest = total - copies
        fits = rest >= draws
        safe = lambda a: np.where(fits, a, 1.0)  # noqa: E731
        none = np.exp(
            gammaln(safe(rest + 1)) - gammaln(safe(rest - draws + 1)) - gammaln(total + 1) + gammaln(total - draws + 1)
        )
        return np.where(copies <= 0, 0.0, np.where(fits, 1.0 - none, 1.0))

    rng = np.random.default_rng(3)
    copies = rng.poisson(0.3, size=(40, 5_000)).astype(float)  # mostly 0, a few small counts
    total = rng.integers(800, 1_000, size=(40, 1)).astype(float)
    draws = np.minimum(total, rng.integers(500, 900, size=(40, 1)).astype(float))
    np.testing.assert_array_equal(found(copies, total, draws), dense(copies, total, draws))
    counts, inverse = np.unique(copies[0], return_inverse=True)
    np.testing.assert_array_equal(found(counts, 1_000.0, draws)[:, inverse], found(copies[0], 1_000.0, draws))


def test_row_keys_text_integer_categories_once_per_value():
    """Integer and boolean categories are made text once per distinct value: the same keys as per cell."""
    from suite.metrics.collisions import _text

    frame = pd.read_parquet("data/adult.parquet").sample(n=2_000, random_state=0)  # a shuffled index
    frame["flag"] = frame["age"] > 40
    frame["code"] = (frame["age"] % 7).astype("uint8")
    metadata = Metadata(columns={c: {"sdtype": "numerical" if c == "fnlwgt" else "categorical"} for c in frame.columns})
    per_cell = {
        c: frame[c].to_numpy(dtype=float)
        if c == "fnlwgt"
        else frame[c].astype(object).map(lambda v: None if pd.isna(v) else _text(v)).to_numpy()
        for c in frame.columns
    }
    expected = pd.util.hash_pandas_object(pd.DataFrame(per_cell), index=False).to_numpy()
    np.testing.assert_array_equal(row_keys(frame, metadata), expected)
