"""Tests of suite.neighbors (Gower encoding, distance matrix and nearest-neighbour search)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import suite.neighbors as neighbors
from suite.neighbors import Encoded, GowerEncoder, distance_matrix, gower_matrix, nearest

DATA = Path(__file__).parent.parent / "data" / "covid_testing.parquet"

NUMERICAL = ["pan_day", "age", "ct_result", "col_rec_tat", "rec_ver_tat"]
CATEGORICAL = [
    "gender",
    "clinic_name",
    "result",
    "demo_group",
    "drive_thru_ind",
    "orderset",
    "payor_group",
    "patient_class",
]
COLUMNS = [
    "gender",
    "pan_day",
    "clinic_name",
    "result",
    "demo_group",
    "age",
    "drive_thru_ind",
    "ct_result",
    "orderset",
    "payor_group",
    "patient_class",
    "col_rec_tat",
    "rec_ver_tat",
]


@pytest.fixture(scope="module")
def covid() -> pd.DataFrame:
    frame = pd.read_parquet(DATA, columns=COLUMNS)
    assert len(frame) == 15_524
    for col in ("ct_result", "payor_group", "patient_class"):
        assert frame[col].isna().any(), col
    return frame


def _encoder() -> GowerEncoder:
    return GowerEncoder(numerical=NUMERICAL, categorical=CATEGORICAL)


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=n, random_state=seed).reset_index(drop=True)


def _reference_matrix(x: pd.DataFrame, y: pd.DataFrame, numerical: list[str], categorical: list[str]) -> np.ndarray:
    """Gower's rule, one pair and one column at a time, straight from the frames."""
    ranges = {}
    for col in numerical:
        values = [float(v) for v in pd.concat([x[col], y[col]]) if not pd.isna(v)]
        ranges[col] = (max(values) - min(values)) if values else 0.0
    xs, ys = x.to_dict("records"), y.to_dict("records")
    out = np.empty((len(xs), len(ys)))
    for a, row_x in enumerate(xs):
        for b, row_y in enumerate(ys):
            total, weight = 0.0, 0
            for col in numerical:
                u, v = row_x[col], row_y[col]
                if pd.isna(u) or pd.isna(v):
                    continue
                weight += 1
                if ranges[col] > 0:
                    total += abs(float(u) - float(v)) / ranges[col]
            for col in categorical:
                u, v = row_x[col], row_y[col]
                weight += 1
                if pd.isna(u) and pd.isna(v):
                    continue
                if pd.isna(u) or pd.isna(v) or u != v:
                    total += 1.0
            out[a, b] = total / weight if weight else 1.0
    return out


# --------------------------------------------------------------------------- agreement


def test_matches_gower_package_without_missing_values(covid: pd.DataFrame) -> None:
    gower = pytest.importorskip("gower")
    complete = covid.dropna(subset=COLUMNS)
    x = _sample(complete, 300, seed=1)
    y = _sample(complete, 200, seed=2)
    # gower 0.1.2 computes the ranges over the union of both tables (it concatenates them),
    # and its ranges are right only for columns whose maximum is non-zero.
    union = pd.concat([x, y])
    assert (union[NUMERICAL].max() != 0).all()
    # Unequal row counts on purpose: with equal counts gower 0.1.2 assumes X is Y and
    # mirrors the upper triangle, which is wrong for two different tables.
    cat_features = [col in CATEGORICAL for col in COLUMNS]
    expected = gower.gower_matrix(x, y, cat_features=cat_features)

    enc = _encoder().fit(x, y)
    ours = gower_matrix(enc.transform(x), enc.transform(y))
    assert ours.shape == (300, 200)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
    # not trivially equal: the matrix has a real spread of values
    assert ours.min() < 0.05 and ours.max() > 0.5


def test_matches_plain_reference_with_missing_values(covid: pd.DataFrame) -> None:
    rng = np.random.default_rng(3)
    with_missing = covid[covid["ct_result"].isna()].sample(n=20, random_state=3)
    x = pd.concat([_sample(covid, 130, seed=4), with_missing]).reset_index(drop=True)
    y = _sample(covid, 120, seed=5)
    x, y = x.copy(), y.copy()
    # extra holes in other numerical columns, so that pairs miss different columns
    for frame in (x, y):
        for col in ("age", "pan_day", "rec_ver_tat"):
            frame.loc[rng.random(len(frame)) < 0.1, col] = np.nan
    assert x["payor_group"].isna().any() and y["patient_class"].isna().any()

    enc = _encoder().fit(x, y)
    ours = gower_matrix(enc.transform(x), enc.transform(y))
    expected = _reference_matrix(x, y, NUMERICAL, CATEGORICAL)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


def test_all_missing_pair_is_at_distance_one() -> None:
    x = pd.DataFrame({"a": [1.0, np.nan, np.nan, 4.0], "b": [np.nan, 2.0, np.nan, 8.0]})
    y = pd.DataFrame({"a": [np.nan, 2.0, 3.0], "b": [5.0, np.nan, 6.0]})
    enc = GowerEncoder(numerical=["a", "b"]).fit(x, y)
    ours = gower_matrix(enc.transform(x), enc.transform(y))
    expected = _reference_matrix(x, y, ["a", "b"], [])
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)
    assert ours[0, 0] == 1.0  # a only in x, b only in y: nothing comparable
    assert ours[2, 0] == 1.0  # x row entirely missing
    assert ours[0, 1] == pytest.approx(1 / 3)  # only a is comparable: |1 - 2| / 3
    dist, idx = nearest(enc.transform(x), enc.transform(y), k=3, backend="numpy", memory_mb=0.001)
    np.testing.assert_array_equal(dist, np.sort(ours, axis=1))
    assert (dist[2] == 1.0).all() and list(idx[2]) == [0, 1, 2]
    # missing values on one side only (the query rows are complete), either way round
    complete = enc.transform(x.iloc[[3, 3]])
    d = gower_matrix(complete, enc.transform(x))
    np.testing.assert_allclose(d, [[1.0, 1.0, 1.0, 0.0]] * 2, rtol=1e-12)
    np.testing.assert_allclose(gower_matrix(enc.transform(x), complete), d.T, rtol=1e-12)
    np.testing.assert_allclose(
        gower_matrix(complete, enc.transform(y)), [[0.5, 2 / 3, (1 / 3 + 2 / 6) / 2]] * 2, rtol=1e-12
    )


def test_no_columns_at_all() -> None:
    frame = pd.DataFrame({"unused": [1, 2, 3]})
    e = GowerEncoder().fit(frame).transform(frame)
    assert e.numerical.shape == (3, 0) and e.categorical.shape == (3, 0) and len(e) == 3
    np.testing.assert_array_equal(gower_matrix(e, e), np.ones((3, 3)))
    dist, idx = nearest(e, e, k=2)
    np.testing.assert_array_equal(dist, 1.0)
    np.testing.assert_array_equal(idx, [[0, 1]] * 3)


# --------------------------------------------------------------------------- nearest


def _expected_topk(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(matrix, axis=1, kind="stable")[:, :k]  # ties: lower index first
    return np.take_along_axis(matrix, order, axis=1), order


@pytest.mark.parametrize("k", [1, 3, 40])
def test_nearest_equals_full_matrix_at_any_memory_budget(covid: pd.DataFrame, k: int) -> None:
    x = _sample(covid, 250, seed=6)
    y = _sample(covid, 300, seed=7)
    enc = _encoder().fit(y)
    qx, ry = enc.transform(x), enc.transform(y)
    matrix = gower_matrix(qx, ry)
    exp_d, exp_i = _expected_topk(matrix, k)
    if k == 1:
        np.testing.assert_array_equal(exp_i[:, 0], matrix.argmin(axis=1))
    results = {}
    # 0.001 MB: tiles of 1 query row x ~30 reference rows; 0.01 MB: 1 x ~300; default: 1 tile
    for memory_mb in (0.001, 0.01, 256.0):
        dist, idx = nearest(qx, ry, k=k, backend="numpy", memory_mb=memory_mb)
        assert dist.shape == idx.shape == (250, k)
        assert dist.dtype == np.float64 and idx.dtype == np.int64
        np.testing.assert_array_equal(idx, exp_i)
        np.testing.assert_allclose(dist, exp_d, rtol=1e-12, atol=0)
        assert (np.diff(dist, axis=1) >= 0).all()
        results[memory_mb] = (dist, idx)
    for dist, idx in results.values():
        np.testing.assert_array_equal(dist, results[256.0][0])
        np.testing.assert_array_equal(idx, results[256.0][1])


def test_ties_prefer_the_lower_index(covid: pd.DataFrame) -> None:
    y = _sample(covid, 120, seed=8)
    twice = pd.concat([y, y], ignore_index=True)  # every record has an exact copy at +120
    enc = _encoder().fit(twice)
    q, r = enc.transform(y), enc.transform(twice)
    for memory_mb in (0.001, 256.0):
        dist, idx = nearest(q, r, k=2, backend="numpy", memory_mb=memory_mb)
        assert (dist == 0.0).all()
        first, second = idx[:, 0], idx[:, 1]
        # the record itself, or an identical one of lower index, then the next copy
        assert (first <= np.arange(120)).all()
        assert (second > first).all()
        np.testing.assert_array_equal(gower_matrix(q, r)[np.arange(120), second], 0.0)
    # many ties at every rank: the order must still be (distance, index), across tiles
    exp_d, exp_i = _expected_topk(gower_matrix(q, r), 20)
    for memory_mb in (0.001, 0.01, 256.0):
        dist, idx = nearest(q, r, k=20, backend="numpy", memory_mb=memory_mb)
        np.testing.assert_array_equal(idx, exp_i)
        np.testing.assert_array_equal(dist, exp_d)


def test_exclude_self(covid: pd.DataFrame) -> None:
    table = covid.dropna(subset=COLUMNS).drop_duplicates().sample(n=300, random_state=9)
    enc = _encoder().fit(table)
    t = enc.transform(table)
    matrix = gower_matrix(t, t)
    np.fill_diagonal(matrix, np.inf)
    assert matrix.min() > 0  # no two records at distance 0
    rows = np.arange(300)
    two_d, two_i = nearest(t, t, k=2)
    np.testing.assert_array_equal(two_i[:, 0], rows)  # with itself included, itself first
    four_d, four_i = nearest(t, t, k=4)
    for memory_mb in (0.001, 256.0):
        dist, idx = nearest(t, t, k=1, exclude_self=True, backend="numpy", memory_mb=memory_mb)
        assert (idx[:, 0] != rows).all()
        np.testing.assert_array_equal(idx[:, 0], two_i[:, 1])
        np.testing.assert_array_equal(dist[:, 0], two_d[:, 1])
        np.testing.assert_array_equal(idx[:, 0], matrix.argmin(axis=1))
        dist3, idx3 = nearest(t, t, k=3, exclude_self=True, backend="numpy", memory_mb=memory_mb)
        assert (idx3 != rows[:, None]).all()
        np.testing.assert_array_equal(idx3, four_i[:, 1:])
        np.testing.assert_array_equal(dist3, four_d[:, 1:])


def test_empty_query_and_bad_arguments(covid: pd.DataFrame) -> None:
    y = _sample(covid, 10, seed=10)
    enc = _encoder().fit(y)
    r = enc.transform(y)
    dist, idx = nearest(enc.transform(y.iloc[:0]), r, k=3)
    assert dist.shape == (0, 3) and idx.shape == (0, 3) and idx.dtype == np.int64
    with pytest.raises(ValueError, match=r"k=11 .* only 10 rows"):
        nearest(r, r, k=11)
    with pytest.raises(ValueError, match="exclude_self"):
        nearest(r, r, k=10, exclude_self=True)
    with pytest.raises(ValueError, match="at least 1"):
        nearest(r, r, k=0)
    other = GowerEncoder(numerical=["age"]).fit(y).transform(y)
    with pytest.raises(ValueError, match="numerical columns"):
        nearest(other, r)


def test_missing_column_is_a_clear_error(covid: pd.DataFrame) -> None:
    y = _sample(covid, 10, seed=11)
    with pytest.raises(ValueError, match="'no_such_column'"):
        GowerEncoder(numerical=["age", "no_such_column"]).fit(y)
    enc = _encoder().fit(y)
    with pytest.raises(ValueError, match="'clinic_name'"):
        enc.transform(y.drop(columns="clinic_name"))
    with pytest.raises(ValueError, match="both numerical and categorical"):
        GowerEncoder(numerical=["age"], categorical=["age"]).fit(y)


# --------------------------------------------------------------------------- encoding


def test_inputs_are_not_mutated(covid: pd.DataFrame) -> None:
    x = _sample(covid, 200, seed=12)
    y = _sample(covid, 150, seed=13)
    y["when"] = pd.date_range("2020-03-01", periods=150, freq="h", tz="America/New_York")
    y.loc[3, "when"] = pd.NaT
    x["when"] = pd.date_range("2020-03-02", periods=200, freq="h", tz="America/New_York")
    for frame in (x, y):
        frame["clinic_name"] = frame["clinic_name"].astype("category")
        frame["age"] = frame["age"].round().astype("Int64")
    x.loc[0, "age"] = pd.NA

    def fingerprint(frame: pd.DataFrame) -> tuple:
        hashes = pd.util.hash_pandas_object(frame, index=True).to_numpy().copy()
        return hashes, list(frame.columns), list(map(str, frame.dtypes))

    before = fingerprint(x), fingerprint(y)
    enc = GowerEncoder(numerical=NUMERICAL + ["when"], categorical=CATEGORICAL).fit(x, y)
    q, r = enc.transform(x), enc.transform(y)
    nearest(q, r, k=2, backend="numpy", memory_mb=0.01)
    gower_matrix(q, r)
    after = fingerprint(x), fingerprint(y)
    for (h0, c0, d0), (h1, c1, d1) in zip(before, after):
        np.testing.assert_array_equal(h0, h1)
        assert c0 == c1 and d0 == d1


def test_unseen_and_missing_categories() -> None:
    fit_frame = pd.DataFrame({"c": ["a", "b", None, "a"]})
    enc = GowerEncoder(categorical=["c"]).fit(fit_frame)
    assert list(enc.categories_["c"]) == ["a", "b"]
    new = pd.DataFrame({"c": ["a", "z", "z", None, "y", np.nan, pd.NA]})
    q = enc.transform(new)
    assert q.categorical.dtype == np.int32 and q.categorical.shape == (7, 1)
    d = gower_matrix(q, enc.transform(fit_frame))
    expected = np.array(
        [
            [0, 1, 1, 0],  # a
            [1, 1, 1, 1],  # z: unseen, matches nothing seen at fit time
            [1, 1, 1, 1],
            [1, 1, 0, 1],  # missing matches missing only
            [1, 1, 1, 1],  # y
            [1, 1, 0, 1],  # NaN and pd.NA are missing too
            [1, 1, 0, 1],
        ],
        dtype=float,
    )
    np.testing.assert_array_equal(d, expected)
    within = gower_matrix(q, q)
    assert within[1, 2] == 0.0  # z == z
    assert within[1, 4] == 1.0  # z != y
    assert within[3, 5] == within[3, 6] == 0.0  # None == NaN == pd.NA
    # equal unseen values match across separate transform calls, different ones do not
    other = enc.transform(pd.DataFrame({"c": ["y", "z", "w"]}))
    np.testing.assert_array_equal(gower_matrix(other, q)[:, [1, 4]], [[1, 0], [0, 1], [1, 1]])


def test_datetime_columns_are_numerical() -> None:
    naive = pd.Series(pd.to_datetime(["2021-01-01", "2021-01-03", None, "2021-01-11"]))
    frame = pd.DataFrame({"t": naive})
    enc = GowerEncoder(numerical=["t"]).fit(frame)
    assert enc.range_[0] == pytest.approx(10 * 86400e9)  # ten days in nanoseconds
    enc_t = enc.transform(frame)
    assert np.isnan(enc_t.numerical[2, 0])
    d = gower_matrix(enc_t, enc_t)
    assert d[0, 1] == pytest.approx(0.2) and d[0, 3] == pytest.approx(1.0)
    assert d[2, 0] == 1.0  # nothing comparable

    # tz-aware: compared as instants (in UTC), also across time zones
    aware = pd.DataFrame({"t": naive.dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo")})
    enc_aware = GowerEncoder(numerical=["t"]).fit(aware)
    np.testing.assert_allclose(enc_aware.transform(aware).numerical, enc_t.numerical)
    np.testing.assert_array_equal(enc_aware.range_, enc.range_)
    paris = pd.DataFrame({"t": aware["t"].dt.tz_convert("Europe/Paris")})
    np.testing.assert_array_equal(gower_matrix(enc_aware.transform(paris), enc_aware.transform(aware)), d)
    # other resolutions than nanoseconds
    seconds = pd.DataFrame({"t": naive.astype("datetime64[s]")})
    np.testing.assert_allclose(enc.transform(seconds).numerical, enc_t.numerical)


def test_nullable_types() -> None:
    frame = pd.DataFrame(
        {
            "n": pd.array([1, 5, pd.NA, 3], dtype="Int64"),
            "f": pd.array([0.5, pd.NA, 1.5, 1.0], dtype="Float64"),
            "b": pd.array([True, False, pd.NA, True], dtype="boolean"),
            "flag": pd.array([True, pd.NA, pd.NA, False], dtype="boolean"),
            "plain_bool": [True, False, False, True],
        }
    )
    enc = GowerEncoder(numerical=["n", "f", "b"], categorical=["flag", "plain_bool"]).fit(frame)
    e = enc.transform(frame)
    assert e.numerical.dtype == np.float64
    np.testing.assert_allclose(e.numerical[:, 0], [0, 1, np.nan, 0.5])
    np.testing.assert_allclose(e.numerical[:, 1], [0, np.nan, 1, 0.5])
    np.testing.assert_allclose(e.numerical[:, 2], [1, 0, np.nan, 1])
    plain = pd.DataFrame(
        {
            "n": [1.0, 5.0, np.nan, 3.0],
            "f": [0.5, np.nan, 1.5, 1.0],
            "b": [1.0, 0.0, np.nan, 1.0],
            "flag": [True, None, None, False],
            "plain_bool": [True, False, False, True],
        }
    )
    expected = _reference_matrix(plain, plain, ["n", "f", "b"], ["flag", "plain_bool"])
    np.testing.assert_allclose(gower_matrix(e, e), expected, rtol=1e-12, atol=1e-12)
    d = gower_matrix(e, e)
    assert d[1, 2] == 0.0  # only flag (NA == NA) and plain_bool are comparable, both equal
    assert d[0, 3] == pytest.approx((0.5 + 0.5 + 0 + 1 + 0) / 5)
    np.testing.assert_array_equal(np.diag(gower_matrix(e, e)), 0.0)


def test_zero_range_column_and_encoded_shape(covid: pd.DataFrame) -> None:
    frame = pd.DataFrame({"const": [2.0, 2.0, np.nan], "x": [0.0, 1.0, 2.0], "c": list("aab")})
    enc = GowerEncoder(numerical=["const", "x"], categorical=["c"]).fit(frame)
    e = enc.transform(pd.DataFrame({"const": [7.0, 2.0], "x": [0.0, 0.0], "c": ["a", "a"]}))
    assert isinstance(e, Encoded) and len(e) == 2
    np.testing.assert_array_equal(e.numerical[:, 0], [0.0, 0.0])
    assert gower_matrix(e, e)[0, 1] == 0.0
    assert math.isclose(gower_matrix(e, enc.transform(frame))[0, 2], (0 + 1 + 1) / 2)


# --------------------------------------------------------------------------- float32 screening


def _exact(monkeypatch: pytest.MonkeyPatch, *args, **kwargs):
    """nearest with the float32 screening switched off (every tile in float64)."""
    with monkeypatch.context() as patch:
        patch.setattr(neighbors, "_SCREEN_FLOAT32", False)
        return nearest(*args, **kwargs)


@pytest.mark.parametrize("complete", [False, True])
@pytest.mark.parametrize("k", [1, 5, 40])
def test_float32_screening_gives_the_float64_results(
    covid: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, complete: bool, k: int
) -> None:
    frame = covid.dropna(subset=COLUMNS) if complete else covid
    x, y = _sample(frame, 260, seed=20), _sample(frame, 310, seed=21)
    enc = _encoder().fit(y)
    qx, ry = enc.transform(x), enc.transform(y)
    kernel = neighbors._Kernel(qx, ry)
    assert kernel.can_screen and kernel.any_nan == (not complete)
    exp_d, exp_i = _expected_topk(gower_matrix(qx, ry), k)
    for memory_mb in (0.001, 0.01, 256.0):
        dist, idx = nearest(qx, ry, k=k, backend="numpy", memory_mb=memory_mb)
        np.testing.assert_array_equal(idx, exp_i)
        np.testing.assert_array_equal(dist, exp_d)  # bit for bit: candidates get float64 values
        slow_d, slow_i = _exact(monkeypatch, qx, ry, k=k, memory_mb=memory_mb)
        np.testing.assert_array_equal(idx, slow_i)
        np.testing.assert_array_equal(dist, slow_d)
    table = enc.transform(y)
    for memory_mb in (0.001, 256.0):
        dist, idx = nearest(table, table, k=k, exclude_self=True, backend="numpy", memory_mb=memory_mb)
        slow_d, slow_i = _exact(monkeypatch, table, table, k=k, exclude_self=True, memory_mb=memory_mb)
        np.testing.assert_array_equal(idx, slow_i)
        np.testing.assert_array_equal(dist, slow_d)
        assert (idx != np.arange(310)[:, None]).all()


def test_screening_keeps_differences_below_float32_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    # reference values 1e-9 apart: float32 sees them all equal, the true nearest has the highest index
    reference = pd.DataFrame({"x": 0.5 - 1e-9 * np.arange(50), "c": ["a"] * 50})
    bounds = pd.DataFrame({"x": [0.0, 1.0], "c": ["a", "b"]})
    query = pd.DataFrame({"x": [0.25, 0.75, 0.5 - 1e-9 * 20.4], "c": ["a", "b", "a"]})
    enc = GowerEncoder(numerical=["x"], categorical=["c"]).fit(reference, bounds)
    q, r = enc.transform(query), enc.transform(reference)
    assert len(np.unique(r.numerical.astype(np.float32))) < 50  # float32 cannot tell them apart
    dist, idx = nearest(q, r, k=3)
    exp_d, exp_i = _expected_topk(gower_matrix(q, r), 3)
    np.testing.assert_array_equal(idx, exp_i)
    np.testing.assert_array_equal(dist, exp_d)
    assert list(idx[0]) == [49, 48, 47] and list(idx[1]) == [0, 1, 2] and list(idx[2]) == [20, 21, 19]


def test_heavily_tied_tiles_fall_back_to_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(22)
    # four distinct records repeated: every tile is almost all ties
    base = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "c": list("abab")})
    reference = base.iloc[rng.integers(0, 4, 3000)].reset_index(drop=True)
    query = base.iloc[rng.integers(0, 4, 200)].reset_index(drop=True)
    enc = GowerEncoder(numerical=["x"], categorical=["c"]).fit(reference)
    q, r = enc.transform(query), enc.transform(reference)
    screens: list[neighbors._Screen] = []

    class Spy(neighbors._Screen):
        def __init__(self, kernel: neighbors._Kernel) -> None:
            super().__init__(kernel)
            screens.append(self)

    monkeypatch.setattr(neighbors, "_Screen", Spy)
    dist, idx = nearest(q, r, k=2, backend="numpy", memory_mb=0.5)
    assert screens and all(s.fallbacks > 0 for s in screens)
    assert not any(s.on for s in screens if s.tiles >= 4)  # the thread stopped screening
    exp_d, exp_i = _expected_topk(gower_matrix(q, r), 2)
    np.testing.assert_array_equal(idx, exp_i)
    np.testing.assert_array_equal(dist, exp_d)


def test_huge_values_are_not_screened() -> None:
    fit = pd.DataFrame({"x": [0.0, 1.0], "c": ["a", "b"]})
    enc = GowerEncoder(numerical=["x"], categorical=["c"]).fit(fit)
    q = enc.transform(pd.DataFrame({"x": [1e12, -3.0], "c": ["a", "b"]}))
    r = enc.transform(pd.DataFrame({"x": [1e12 + 1.0, 1e12, 0.0], "c": ["b", "a", "a"]}))
    assert not neighbors._Kernel(q, r).can_screen  # the float32 error bound would be too wide
    dist, idx = nearest(q, r, k=3)
    exp_d, exp_i = _expected_topk(gower_matrix(q, r), 3)
    np.testing.assert_array_equal(idx, exp_i)
    np.testing.assert_array_equal(dist, exp_d)
    assert idx[0, 0] == 1 and dist[0, 0] == 0.0


# --------------------------------------------------------------------------- euclidean metric


def _one_hot_matrix(
    frames: list[pd.DataFrame], fit: pd.DataFrame, numerical: list[str], categorical: list[str]
) -> list[np.ndarray]:
    """The encoded matrix by hand: range-scaled numbers, median + indicator for missing ones, one-hot."""
    both = pd.concat(frames, ignore_index=True)
    parts = []
    for col in numerical:
        values = both[col].astype(float)
        lo, hi = fit[col].min(), fit[col].max()
        span = hi - lo
        scaled = (values - lo) / span if span > 0 else values * 0.0
        median = (fit[col].median() - lo) / span if span > 0 else 0.0
        parts.append(scaled.fillna(median).to_numpy()[:, None])
        if values.isna().any():
            parts.append(values.isna().to_numpy(dtype=float)[:, None])
    for col in categorical:
        parts.append(pd.get_dummies(both[col].astype(object), dummy_na=True).to_numpy(dtype=float))
    matrix = np.hstack(parts)
    out, start = [], 0
    for frame in frames:
        out.append(matrix[start : start + len(frame)])
        start += len(frame)
    return out


@pytest.mark.parametrize("k", [1, 3, 40])
def test_euclidean_matches_cdist_on_the_encoded_matrix(
    covid: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, k: int
) -> None:
    from scipy.spatial.distance import cdist

    x = _sample(covid, 230, seed=23).copy()
    y = _sample(covid, 270, seed=24).copy()
    rng = np.random.default_rng(25)
    x.loc[rng.random(len(x)) < 0.1, "age"] = np.nan  # missing numbers on both sides
    y.loc[rng.random(len(y)) < 0.1, "pan_day"] = np.nan
    assert x["ct_result"].isna().any() and y["ct_result"].isna().any()
    enc = _encoder().fit(y)
    qx, ry = enc.transform(x), enc.transform(y)
    ex, ey = _one_hot_matrix([x, y], y, NUMERICAL, CATEGORICAL)
    expected = cdist(ex, ey)  # float64 Euclidean on the encoded matrix
    ours = distance_matrix(qx, ry, metric="euclidean")
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
    exp_d, exp_i = _expected_topk(ours, k)
    for memory_mb in (0.001, 256.0):
        dist, idx = nearest(qx, ry, k=k, metric="euclidean", backend="numpy", memory_mb=memory_mb)
        np.testing.assert_allclose(dist, np.sort(expected, axis=1)[:, :k], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(idx, exp_i)
        np.testing.assert_array_equal(dist, exp_d)
        slow_d, slow_i = _exact(monkeypatch, qx, ry, k=k, metric="euclidean", memory_mb=memory_mb)
        np.testing.assert_array_equal(idx, slow_i)
        np.testing.assert_array_equal(dist, slow_d)
    # the same table: exclude_self and exact copies at distance 0
    dist, idx = nearest(ry, ry, k=1, metric="euclidean")
    assert (dist[:, 0] == 0.0).all()
    dist, idx = nearest(ry, ry, k=2, exclude_self=True, metric="euclidean")
    full = distance_matrix(ry, ry, metric="euclidean")
    np.fill_diagonal(full, np.inf)
    np.testing.assert_array_equal(idx, _expected_topk(full, 2)[1])


def test_euclidean_rules_on_a_small_table() -> None:
    fit = pd.DataFrame({"x": [0.0, 4.0, 1.0, np.nan], "c": ["a", "b", "a", None]})
    enc = GowerEncoder(numerical=["x"], categorical=["c"]).fit(fit)
    assert enc.median_[0] == pytest.approx(0.25)  # median 1.0 on the range [0, 4]
    e = enc.transform(fit)
    assert e.medians is not None and e.medians[0] == pytest.approx(0.25)
    d = distance_matrix(e, e, metric="euclidean")
    # x: 0, 1, 0.25, missing (-> median 0.25 plus indicator 1); c: a, b, a, missing (its own level)
    assert d[0, 1] == pytest.approx(math.sqrt(1.0 + 2.0))  # |0 - 1|^2 + one category mismatch (1 + 1)
    assert d[0, 2] == pytest.approx(0.25)
    assert d[2, 3] == pytest.approx(math.sqrt(0.0 + 1.0 + 2.0))  # imputed equal, indicator, category
    # arrays without fitted medians (built by hand) impute with the reference's median
    bare = Encoded(numerical=e.numerical, categorical=e.categorical)
    np.testing.assert_allclose(distance_matrix(bare, bare, metric="euclidean"), d)
    with pytest.raises(ValueError, match="medians"):
        Encoded(numerical=e.numerical, categorical=e.categorical, medians=[0.1, 0.2])
    with pytest.raises(ValueError, match="metric"):
        nearest(e, e, metric="manhattan")
    with pytest.raises(ValueError, match="backend"):
        nearest(e, e, backend="jax")


# --------------------------------------------------------------------------- torch backend


def test_torch_is_imported_lazily() -> None:
    code = "import sys, suite.neighbors; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


@pytest.mark.parametrize("metric", ["gower", "euclidean"])
def test_torch_backend_gives_the_numpy_results(covid: pd.DataFrame, metric: str) -> None:
    pytest.importorskip("torch")
    x = _sample(covid, 180, seed=26).copy()
    y = _sample(covid, 230, seed=27).copy()
    y.loc[np.random.default_rng(28).random(len(y)) < 0.1, "age"] = np.nan
    enc = _encoder().fit(y)
    qx, ry = enc.transform(x), enc.transform(y)
    for k in (1, 3, 40):
        exp_d, exp_i = nearest(qx, ry, k=k, metric=metric)
        for memory_mb in (0.01, 256.0):
            dist, idx = nearest(qx, ry, k=k, metric=metric, backend="torch", memory_mb=memory_mb)
            np.testing.assert_allclose(dist, exp_d, rtol=0, atol=1e-12)
            np.testing.assert_array_equal(idx, exp_i)
    dist, idx = nearest(ry, ry, k=2, exclude_self=True, metric=metric, backend="torch", device="cpu")
    exp_d, exp_i = nearest(ry, ry, k=2, exclude_self=True, metric=metric)
    np.testing.assert_allclose(dist, exp_d, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(idx, exp_i)


# --------------------------------------------------------------------------- compiled (numba) backend


def _pbcseq() -> tuple[pd.DataFrame, list[str], list[str]]:
    """pbcseq: visits of the same patients (repeated values), missing numbers on both sides."""
    frame = pd.read_parquet(DATA.parent / "pbcseq.parquet")
    numerical = ["age", "bili", "chol", "albumin", "alk.phos", "ast", "platelet", "protime", "day"]
    categorical = ["sex", "ascites", "hepato", "spiders", "edema", "stage", "status"]
    return frame[numerical + categorical], numerical, categorical


def _assert_same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got[1], want[1])


def test_numba_pruned_path_gives_the_numpy_results() -> None:
    """Gower without missing numbers, where the compiled kernel skips the numbers and the division of pairs whose
    mismatches already exceed the k-th kept sum: census rows (many exact repeats, so many ties), with numbers
    and categories and with categories only, k = 1, 2, 10 and exclude_self, bit for bit the numpy path."""
    pytest.importorskip("numba")
    numerical = ["age", "wage_per_hour", "capital_gains", "dividends_from_stocks", "weeks_worked_in_year"]
    categorical = ["sex", "race", "education", "marital_stat", "class_of_worker", "hispanic_origin", "tax_filer_stat"]
    frame = pd.read_parquet(DATA.parent / "census_kdd.parquet", columns=numerical + categorical)
    rows = np.random.default_rng(7).choice(len(frame), 3_000, replace=False)
    x, y = frame.iloc[rows[:1_400]], frame.iloc[rows[1_400:]]
    for num in (numerical, []):
        enc = GowerEncoder(numerical=num, categorical=categorical).fit(x, y)
        qx, ry = enc.transform(x), enc.transform(y)
        assert not np.isnan(qx.numerical).any() and not np.isnan(ry.numerical).any()  # the pruned path runs
        for k in (1, 2, 10):
            got, want = nearest(qx, ry, k=k, backend="numba"), nearest(qx, ry, k=k, backend="numpy")
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
            got = nearest(ry, ry, k=k, exclude_self=True, backend="numba")
            want = nearest(ry, ry, k=k, exclude_self=True, backend="numpy")
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
        assert (np.diff(want[0], axis=1) == 0).any()  # ties among the kept neighbours were decided alike


@pytest.mark.parametrize("metric", ["gower", "euclidean"])
def test_numba_backend_gives_the_numpy_results(covid: pd.DataFrame, metric: str) -> None:
    pytest.importorskip("numba")
    # equal sizes, missing numbers and categories, and repeated rows (searched once, then expanded)
    x = _sample(covid, 600, seed=40)
    x = pd.concat([x, x.iloc[:150]], ignore_index=True)
    y = _sample(covid, 750, seed=41).copy()
    y.loc[np.random.default_rng(42).random(len(y)) < 0.1, "age"] = np.nan
    y = pd.concat([y.iloc[:200], y], ignore_index=True).iloc[:750]  # reference duplicates, in both orders
    enc = _encoder().fit(y)
    qx, ry = enc.transform(x), enc.transform(y)
    assert len(qx) == len(ry)
    for k in (1, 10):
        _assert_same(
            nearest(qx, ry, k=k, metric=metric, backend="numba"), nearest(qx, ry, k=k, metric=metric, backend="numpy")
        )
        _assert_same(
            nearest(ry, ry, k=k, exclude_self=True, metric=metric, backend="numba"),
            nearest(ry, ry, k=k, exclude_self=True, metric=metric, backend="numpy"),
        )
    # the distances are Gower's, to the full matrix
    dist, idx = nearest(qx, ry, k=10, metric=metric, backend="numba")
    full = distance_matrix(qx, ry, metric=metric)
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :10], rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.take_along_axis(full, idx, axis=1), dist, rtol=0, atol=1e-12)


def test_numba_backend_on_a_table_with_missing_numbers_everywhere() -> None:
    pytest.importorskip("numba")
    frame, numerical, categorical = _pbcseq()
    half = len(frame) // 2
    x, y = frame.iloc[:half].reset_index(drop=True), frame.iloc[half : 2 * half].reset_index(drop=True)
    assert x[numerical].isna().any().any() and y[numerical].isna().any().any()
    for num, cat in ((numerical, categorical), (numerical, []), ([], categorical)):
        enc = GowerEncoder(numerical=num, categorical=cat).fit(x, y)
        qx, ry = enc.transform(x), enc.transform(y)
        for k in (1, 10):
            _assert_same(nearest(qx, ry, k=k, backend="numba"), nearest(qx, ry, k=k, backend="numpy"))
    # rows whose numbers are all missing: no usable column, distance 1.0 (as the numpy path says)
    z = pd.DataFrame({"a": [np.nan, 1.0, np.nan, 3.0], "b": [np.nan, np.nan, 2.0, 4.0]})
    ez = GowerEncoder(numerical=["a", "b"]).fit(z).transform(z)
    _assert_same(nearest(ez, ez, k=2, backend="numba"), nearest(ez, ez, k=2, backend="numpy"))
    none = Encoded(numerical=np.empty((3, 0)), categorical=np.empty((3, 0), np.int32))
    _assert_same(nearest(none, none, k=2, backend="numba"), nearest(none, none, k=2, backend="numpy"))


def test_backend_auto_falls_back_to_numpy_and_the_environment_forces_it(
    covid: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    enc = _encoder().fit(covid.iloc[:300])
    e = enc.transform(covid.iloc[:300])
    want = nearest(e, e, k=3, backend="numpy")
    used: list[str] = []
    real_numba, real_numpy = neighbors._numba_nearest, neighbors._numpy_nearest
    monkeypatch.setattr(neighbors, "_numba_nearest", lambda *a: (used.append("numba"), real_numba(*a))[1])
    monkeypatch.setattr(neighbors, "_numpy_nearest", lambda *a: (used.append("numpy"), real_numpy(*a))[1])
    monkeypatch.setenv(neighbors.BACKEND_ENV, "numpy")
    _assert_same(nearest(e, e, k=3), want)
    assert used == ["numpy"]
    monkeypatch.setenv(neighbors.BACKEND_ENV, "cuda")
    with pytest.raises(ValueError, match=neighbors.BACKEND_ENV):
        nearest(e, e)
    monkeypatch.delenv(neighbors.BACKEND_ENV)
    if neighbors._numba_module() is not None:
        used.clear()
        _assert_same(nearest(e, e, k=3), want)
        assert used == ["numba"]
    # numba failing to import: one log line, the numpy path, the same answer
    neighbors._numba_module.cache_clear()
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba -> ImportError
    monkeypatch.delitem(sys.modules, "suite._neighbors_numba", raising=False)
    try:
        used.clear()
        with caplog.at_level("WARNING", logger="suite.neighbors"):
            _assert_same(nearest(e, e, k=3), want)
        assert used == ["numpy"]
        assert "numba unavailable" in caplog.text and "numpy reference path" in caplog.text
        with pytest.raises(ImportError, match="numba"):
            nearest(e, e, backend="numba")
    finally:
        neighbors._numba_module.cache_clear()


def test_first_present_numba_and_numpy_agree_and_follow_the_rule() -> None:
    rng = np.random.default_rng(0)
    n, k, owners, b = 400, 6, 50, 7
    dist = np.sort(rng.random((n, k)), axis=1)
    owner = rng.integers(-1, owners, size=(n, k))
    present = rng.random((b, owners)) < 0.4
    fast = neighbors.first_present(dist, owner, present, backend="numba")
    slow = neighbors.first_present(dist, owner, present, backend="numpy")
    assert np.array_equal(fast, slow)
    for bb in range(b):  # the rule, written out
        for r in range(n):
            usable = [j for j in range(k) if owner[r, j] >= 0 and present[bb, owner[r, j]]]
            assert slow[bb, r] == dist[r, usable[0] if usable else k - 1]


def _compact_codes_before(qc: np.ndarray, rc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_compact_codes` as it was: one (rows x columns) int64 array, then cast."""
    p = qc.shape[1]
    if p == 0:
        return np.empty((len(qc), 0), np.uint8), np.empty((0, len(rc)), np.uint8)
    n = len(qc)
    new = np.empty((n + len(rc), p), dtype=np.int64)
    levels = 1
    for j in range(p):
        uniq, inverse = np.unique(np.concatenate((qc[:, j], rc[:, j])), return_inverse=True)
        new[:, j] = inverse.reshape(-1)
        levels = max(levels, len(uniq))
    dtype = np.uint8 if levels <= 0x100 else np.uint16 if levels <= 0x10000 else np.int64
    new = new.astype(dtype)
    return np.ascontiguousarray(new[:n]), np.ascontiguousarray(new[n:].T)


def test_compact_codes_column_by_column_gives_the_old_codes() -> None:
    """The search's compacted category codes, now built column by column in their small type (no int64 array of
    every code): the same codes, type and layout as before, on census_kdd's 34 categorical columns (missing values
    and unseen levels among them), with a column of over 256 levels (uint16) and of over 65,536 (int64)."""
    frame = pd.read_parquet(DATA.parent / "census_kdd.parquet").drop(columns=["instance_weight", "split"])
    categorical = [c for c in frame.columns if frame[c].dtype == object]
    assert len(categorical) >= 25
    rows = np.random.default_rng(3).permutation(len(frame))[:75_000]
    x, y = frame.iloc[rows[:40_000]], frame.iloc[rows[40_000:]]
    enc = GowerEncoder(categorical=categorical).fit(x.iloc[:2_000])  # the other rows hold unseen levels
    qc, rc = enc.transform(x).categorical, enc.transform(y).categorical
    seen = np.array([len(enc.categories_[c]) for c in categorical])
    assert (qc == -1).any() and (qc >= seen).any() and (rc >= seen).any()
    wide = np.c_[qc, np.arange(len(qc)) % 300], np.c_[rc, np.arange(len(rc)) % 299]
    wider = np.c_[qc, np.arange(len(qc))], np.c_[rc, -1 - np.arange(len(rc))]
    for q, r in ((qc, rc), wide, wider, (qc[:, :0], rc[:, :0]), (qc[:0], rc)):
        got, want = neighbors._compact_codes(q, r), _compact_codes_before(q, r)
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape and a.flags.c_contiguous
            np.testing.assert_array_equal(a, b)
    assert neighbors._compact_codes(*wide)[0].dtype == np.uint16
    assert neighbors._compact_codes(*wider)[0].dtype == np.int64
