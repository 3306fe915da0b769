"""The structure check: Gower-distance KS, PCA overlap and Voas-Williamson fit order the calibration
generators as expected on the COVID data, and its pieces agree with plain reference computations."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from suite.dataset import prepare
from suite.metadata import Metadata, Roles
from suite.metrics._tabular import discretize
from suite.metrics.structure import (
    StructureMetric,
    chi2_homogeneity,
    cross_tabulations,
    distances_to_train,
    histogram_overlap,
    ks_statistic,
)
from suite.testing import check_check, context_for
from suite.types import Context
from tests.conftest import DATA, METADATA, ROLES

GENERATORS = ("holdout", "sdv.gaussian_copula", "marginals", "uniform", "identity")


@pytest.fixture(scope="module")
def data():
    return prepare(DATA, metadata_path=METADATA, roles=Roles.from_dict(ROLES), holdout=0.3, seed=0)


@pytest.fixture(scope="module")
def results(data) -> dict[str, dict]:
    """Measurements by generator at seed 0 (the holdout context also goes through check_check)."""
    out = {}
    for generator in GENERATORS:
        ctx = context_for(data, generator, seed=0)
        ms = check_check(StructureMetric, ctx) if generator == "holdout" else StructureMetric().evaluate(ctx)
        out[generator] = {m.name: m for m in ms}
    # The runner's `holdout` release draws len(train) rows from the ~2.3k reference rows, so each
    # comes back ~4.7 times; repeated rows inflate every chi-squared count test. Real unseen rows,
    # each once, are what the Voas-Williamson ordering is about.
    ctx = context_for(data, "holdout", seed=0, n=len(data.reference))
    out["holdout_once"] = {m.name: m for m in StructureMetric().evaluate(ctx)}
    return out


def values(results, name):
    return {g: ms[name].value for g, ms in results.items()}


def test_contract_and_details(results):
    ms = results["holdout"]
    assert set(ms) == set(StructureMetric.measures)
    json.dumps({name: m.details for name, m in ms.items()}, allow_nan=False)
    pca = ms["structure.pca_overlap"].details
    assert len(pca["histogram_real"]) == 30 and len(pca["histogram_real"][0]) == 30
    assert abs(sum(map(sum, pca["histogram_real"])) - 1.0) < 1e-3
    assert len(pca["grid_edges_pc1"]) == 31
    assert all(0 <= r <= 1 for r in pca["explained_variance_ratio"])
    assert any(t["feature"].startswith("age") for comp in pca["top_loadings"] for t in comp)
    worst = ms["structure.voas_williamson_fit"].details["worst_tables"]
    assert 0 < len(worst) <= 20
    assert [t["chi2_per_dof"] for t in worst] == sorted((t["chi2_per_dof"] for t in worst), reverse=True)


def test_gower_ks_separates_copies_noise_and_unseen_rows(results):
    ks = values(results, "structure.gower_ks")
    identity = results["identity"]["structure.gower_ks"]
    assert identity.details["exact_matches"] == identity.details["synthetic_rows"]
    assert ks["identity"] > 0.95  # every distance is 0, few holdout rows have an exact twin in train
    assert ks["uniform"] > 0.9  # far-away noise
    assert ks["holdout"] < 0.1  # unseen real rows sit where other unseen real rows do
    baseline = results["holdout"]["structure.gower_ks"].baseline
    assert baseline is not None and abs(ks["holdout"] - baseline) < 0.05
    for generator in ("sdv.gaussian_copula", "marginals"):
        assert ks["holdout"] + 0.2 < ks[generator] < ks["uniform"], generator


def test_pca_overlap_orders_generators(results):
    overlap = values(results, "structure.pca_overlap")
    assert overlap["identity"] == pytest.approx(1.0)  # a copy of train is train
    assert overlap["holdout"] > 0.7
    assert abs(overlap["holdout"] - results["holdout"]["structure.pca_overlap"].baseline) < 0.05
    for generator in ("sdv.gaussian_copula", "marginals"):
        assert overlap["uniform"] + 0.1 < overlap[generator] < overlap["holdout"] - 0.2, generator
    assert overlap["uniform"] < 0.2


def test_voas_williamson_orders_generators(results):
    fit = values(results, "structure.voas_williamson_fit")
    ratio = values(results, "structure.voas_williamson_ratio")
    for generator in ("sdv.gaussian_copula", "marginals", "uniform"):
        assert fit["holdout_once"] > fit[generator], generator
    assert fit["holdout"] > fit["uniform"] + 0.2
    for generator in ("holdout", "holdout_once", "sdv.gaussian_copula", "marginals"):
        assert fit["uniform"] < fit[generator] and ratio["uniform"] > 10 * ratio[generator], generator
    assert fit["uniform"] < 0.1
    # real unseen rows fit about as often as the holdout control does against train
    baseline = results["holdout_once"]["structure.voas_williamson_fit"].baseline
    assert abs(fit["holdout_once"] - baseline) < 0.2
    assert 0.8 < ratio["holdout_once"] < 1.6
    assert ratio["marginals"] > ratio["holdout_once"]


# --------------------------------------------------------------------------- pieces


def test_chi2_matches_scipy_on_observed_cells():
    real = np.array([30, 12, 0, 7, 51, 3])
    synthetic = np.array([25, 20, 0, 2, 44, 9])
    chi2, dof = chi2_homogeneity(real, synthetic)
    keep = (real + synthetic) > 0
    expected = stats.chi2_contingency(np.vstack([real[keep], synthetic[keep]]), correction=False)
    assert chi2 == pytest.approx(expected.statistic, rel=1e-12)
    assert dof == expected.dof == 4
    assert chi2_homogeneity(real, real) == (0.0, 4)


def test_cross_tabulation_chi2_matches_scipy_on_a_small_table():
    rng = np.random.default_rng(1)
    md = Metadata(columns={"x": {"sdtype": "numerical"}, "c": {"sdtype": "categorical"}})
    real = pd.DataFrame({"x": rng.normal(size=400), "c": rng.choice(list("abc"), 400)})
    skewed = rng.choice(list("abcd"), 400, p=[0.4, 0.3, 0.2, 0.1])
    synthetic = pd.DataFrame({"x": rng.normal(0.3, 1.0, 400), "c": skewed})
    codings, c_real, (c_synth,) = discretize(real, [synthetic], md, bins=4)
    ((columns, chi2, dof),) = cross_tabulations(codings, c_real, c_synth)
    assert columns == ("x", "c")
    cells = lambda codes: pd.Series(list(zip(codes[:, 0], codes[:, 1]))).value_counts()  # noqa: E731
    table = pd.concat([cells(c_real), cells(c_synth)], axis=1).fillna(0).to_numpy().T
    expected = stats.chi2_contingency(table, correction=False)
    assert chi2 == pytest.approx(expected.statistic, rel=1e-10)
    assert dof == expected.dof


def test_ks_statistic_matches_scipy():
    rng = np.random.default_rng(2)
    a = np.round(rng.random(300), 1)  # ties, within and across samples
    b = np.round(rng.random(170) * 0.8, 1)
    assert ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert ks_statistic(np.zeros(10), np.ones(5)) == 1.0


def _plain_gower(x: dict, y: dict, ranges: dict, numerical: list[str], categorical: list[str]) -> float:
    """Gower (1971): range-scaled numbers skipped when either is missing; categories with missing as a level."""
    total, weight = 0.0, 0
    for col in numerical:
        if pd.isna(x[col]) or pd.isna(y[col]):
            continue
        total += abs(x[col] - y[col]) / ranges[col] if ranges[col] > 0 else 0.0
        weight += 1
    for col in categorical:
        a = None if pd.isna(x[col]) else x[col]
        b = None if pd.isna(y[col]) else y[col]
        total += 0.0 if a == b else 1.0
        weight += 1
    return total / weight if weight else 1.0


def test_nearest_distances_agree_with_plain_gower():
    rng = np.random.default_rng(3)

    def table(n: int) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "age": rng.integers(18, 90, n).astype(float),
                "sex": rng.choice(["f", "m"], n),
                "score": rng.normal(size=n),
                "site": rng.choice(["a", "b", "c", None], n),
            }
        )
        frame.loc[rng.random(n) < 0.2, "score"] = np.nan
        return frame

    md = Metadata(
        columns={
            "age": {"sdtype": "numerical"},
            "sex": {"sdtype": "categorical"},
            "score": {"sdtype": "numerical"},
            "site": {"sdtype": "categorical"},
        }
    )
    train, holdout, synthetic = table(40), table(15), table(25)
    synthetic.loc[0] = train.loc[7]  # an exact copy
    d_synth, d_holdout = distances_to_train(train, holdout, [synthetic, holdout], md)
    real = pd.concat([train, holdout])
    ranges = {c: real[c].max() - real[c].min() for c in ("age", "score")}
    for query, got in ((synthetic, d_synth), (holdout, d_holdout)):
        want = [
            min(_plain_gower(q, t, ranges, ["age", "score"], ["sex", "site"]) for t in train.to_dict("records"))
            for q in query.to_dict("records")
        ]
        np.testing.assert_allclose(got, want, atol=1e-12)
    assert d_synth[0] == 0.0


def test_histogram_overlap_is_intersection_with_clipping():
    edges = (np.linspace(0, 1, 3), np.linspace(0, 1, 3))
    a = np.array([[0.1, 0.1], [0.9, 0.9]])
    b = np.array([[0.2, 0.2], [5.0, -3.0]])  # the second point is clipped into the (high x, low y) cell
    overlap, pa, pb = histogram_overlap(a, b, edges)
    assert overlap == pytest.approx(0.5)
    assert pb[1, 0] == pytest.approx(0.5)
    assert histogram_overlap(a, a, edges)[0] == pytest.approx(1.0)


# --------------------------------------------------------------------------- edge cases


def _small_context(frame_of, md: Metadata, seed: int = 0) -> Context:
    return Context(frame_of(300, 1), frame_of(120, 2), frame_of(250, 3), md, seed=seed, reference=frame_of(100, 4))


@pytest.mark.parametrize(
    ("kind", "columns"),
    [
        ("single numeric column", {"x": "numerical"}),
        ("single categorical column", {"c": "categorical"}),
        ("constant columns", {"k": "numerical", "kc": "categorical", "x": "numerical"}),
        ("only constant columns", {"k": "numerical", "kc": "categorical"}),
        ("missing values", {"x": "numerical", "c": "categorical", "gone": "numerical"}),
    ],
)
def test_edge_cases_give_finite_measurements(kind, columns):
    def frame_of(n: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        data = {
            "x": rng.normal(size=n),
            "c": rng.choice(["a", "b", "c"], n).astype(object),
            "k": np.full(n, 5.0),
            "kc": np.full(n, "same", dtype=object),
            "gone": np.full(n, np.nan),
        }
        frame = pd.DataFrame({c: data[c] for c in columns})
        if kind == "missing values":
            frame.loc[rng.random(n) < 0.3, "x"] = np.nan
            frame.loc[rng.random(n) < 0.2, "c"] = None
        return frame

    md = Metadata(columns={c: {"sdtype": s} for c, s in columns.items()})
    ms = check_check(StructureMetric, _small_context(frame_of, md))
    assert all(math.isfinite(m.value) for m in ms), kind
    json.dumps({m.name: m.details for m in ms}, allow_nan=False)
    assert all(m.baseline is None or math.isfinite(m.baseline) for m in ms)
