"""Pairwise dependence: each statistic against a plain reference, and the generators' known order on real data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from suite.dataset import prepare
from suite.metadata import Metadata, Roles
from suite.metrics._tabular import discretize
from suite.metrics.dependence import DependenceMetric, association_matrix, cramers_v, encode, nmi_matrix
from suite.testing import check_check, context_for
from suite.types import Context
from tests.conftest import DATA, METADATA, ROLES

GENERATORS = ("holdout", "sdv.gaussian_copula", "marginals", "uniform", "identity")


@pytest.fixture(scope="module")
def covid_contexts() -> dict[str, Context]:
    data = prepare(DATA, metadata_path=METADATA, roles=Roles.from_dict(ROLES), holdout=0.3, seed=0)
    return {g: context_for(data, g, seed=0) for g in GENERATORS}


@pytest.fixture(scope="module")
def covid_scores(covid_contexts) -> dict[str, dict[str, float]]:
    return {g: {m.name: m.value for m in DependenceMetric().evaluate(ctx)} for g, ctx in covid_contexts.items()}


def test_contract(covid_contexts):
    ms = check_check(DependenceMetric, covid_contexts["marginals"])
    assert [m.name for m in ms] == ["dependence.correlation_mae", "dependence.mutual_information_mae"]
    details = ms[0].details
    p = len(details["columns"])
    assert np.array(details["real"], dtype=float).shape == (p, p)
    assert len(details["worst_pairs"]) == 10
    assert all(m.baseline is not None and 0 <= m.baseline < 1 for m in ms)


def test_generators_in_their_known_order(covid_scores):
    corr = {g: s["dependence.correlation_mae"] for g, s in covid_scores.items()}
    mi = {g: s["dependence.mutual_information_mae"] for g, s in covid_scores.items()}
    assert corr["identity"] < 1e-12 and mi["identity"] < 1e-12  # the same rows, shuffled
    # observed (seed 0): holdout 0.033, copula 0.123, marginals 0.146, uniform 0.147
    assert corr["holdout"] < 0.5 * corr["sdv.gaussian_copula"]
    assert corr["marginals"] > 1.1 * corr["sdv.gaussian_copula"]
    # independent columns lose every association: uniform and marginals score alike, far from real
    assert corr["uniform"] >= 0.95 * corr["marginals"] and corr["marginals"] > 3 * corr["holdout"]
    # observed: holdout 0.007, copula 0.066, marginals 0.069, uniform 0.069
    assert mi["holdout"] < 0.25 * min(mi["sdv.gaussian_copula"], mi["marginals"], mi["uniform"])
    assert mi["uniform"] >= 0.95 * mi["marginals"]


def test_holdout_is_at_the_noise_level(covid_contexts):
    ms = {m.name: m for m in DependenceMetric().evaluate(covid_contexts["holdout"])}
    for m in ms.values():
        assert m.value < 1.5 * m.baseline  # unseen real rows differ from train by about sampling noise


def test_spearman_separates_the_copula_from_marginals(covid_contexts):
    # the covid train table has one col_rec_tat of 61,370 (p99.9 = 47): Pearson is driven by it, ranks are not
    score = {
        g: DependenceMetric(correlation="spearman").evaluate(covid_contexts[g])[0]
        for g in ("holdout", "sdv.gaussian_copula", "marginals")
    }
    # observed: holdout 0.029 (baseline 0.022), copula 0.131, marginals 0.175
    assert score["holdout"].value < 2 * score["holdout"].baseline
    assert score["marginals"].value > 1.2 * score["sdv.gaussian_copula"].value


# --- each statistic against a plain reference ------------------------------------------------------

NUM_MD = Metadata(
    columns={
        "a": {"sdtype": "numerical"},
        "b": {"sdtype": "numerical"},
        "c": {"sdtype": "numerical"},
        "when": {"sdtype": "datetime"},
    }
)


def _numeric_table(rng: np.random.Generator, n: int, rho: float) -> pd.DataFrame:
    a = rng.normal(size=n)
    b = rho * a + math.sqrt(1 - rho**2) * rng.normal(size=n)
    c = np.exp(rng.normal(size=n)) * 1e6 + 3.0 * a
    c[rng.random(n) < 0.2] = np.nan
    b[rng.random(n) < 0.1] = np.nan
    when = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.round(500 * (a + rng.normal(size=n))), unit="D")
    return pd.DataFrame({"a": a, "b": b, "c": c, "when": when})


def _pandas_corr(frame: pd.DataFrame) -> np.ndarray:
    as_numbers = frame.assign(when=frame["when"].astype("int64").astype(float))
    return as_numbers.corr().to_numpy()


def test_pearson_agrees_with_pandas():
    rng = np.random.default_rng(1)
    real, synthetic = _numeric_table(rng, 3000, 0.7), _numeric_table(rng, 2000, 0.1)
    codings, real_codes, (syn_codes,) = discretize(real, [synthetic], NUM_MD)
    for frame, codes in ((real, real_codes), (synthetic, syn_codes)):
        np.testing.assert_allclose(association_matrix(encode(frame, codes, codings)), _pandas_corr(frame), atol=1e-9)
    iu = np.triu_indices(4, k=1)
    expected = np.abs(_pandas_corr(real)[iu] - _pandas_corr(synthetic)[iu]).mean()
    m = DependenceMetric(correlation="pearson").evaluate(Context(real, real.iloc[:500], synthetic, NUM_MD, seed=0))[0]
    assert abs(m.value - expected) < 1e-9
    assert m.details["method"][0][1] == "pearson"


def test_spearman_agrees_with_pandas_without_missing_values():
    rng = np.random.default_rng(2)
    frame = _numeric_table(rng, 1500, 0.5).fillna(0.0)
    codings, codes, _ = discretize(frame, [], NUM_MD)
    expected = frame.assign(when=frame["when"].astype("int64")).corr(method="spearman").to_numpy()
    np.testing.assert_allclose(association_matrix(encode(frame, codes, codings, ranks=True)), expected, atol=1e-9)


def _reference_cramers_v(x: pd.Series, y: pd.Series) -> float:
    """Bergsma (2013), written out from the paper's formulas over the complete rows."""
    table = pd.crosstab(x, y).to_numpy(dtype=float)  # crosstab drops missing values
    n = table.sum()
    r, k = table.shape
    chi2 = 0.0
    for i in range(r):
        for j in range(k):
            e = table[i].sum() * table[:, j].sum() / n
            chi2 += (table[i, j] - e) ** 2 / e
    phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
    r_tilde = r - (r - 1) ** 2 / (n - 1)
    k_tilde = k - (k - 1) ** 2 / (n - 1)
    return math.sqrt(phi2 / min(k_tilde - 1, r_tilde - 1))


CAT_MD = Metadata(columns={"x": {"sdtype": "categorical"}, "y": {"sdtype": "categorical"}})


def _category_table(rng: np.random.Generator, n: int, strength: float) -> pd.DataFrame:
    x = rng.choice(list("abcde"), n, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    y = np.where(rng.random(n) < strength, np.char.upper(x.astype(str)), rng.choice(list("ABCDEFG"), n))
    frame = pd.DataFrame({"x": x, "y": y}).astype(object)
    frame.loc[rng.random(n) < 0.1, "x"] = None
    return frame


def test_cramers_v_agrees_with_the_reference():
    from scipy.stats.contingency import association

    rng = np.random.default_rng(3)
    real, synthetic = _category_table(rng, 800, 0.6), _category_table(rng, 700, 0.2)
    v_real = _reference_cramers_v(real["x"], real["y"])
    v_syn = _reference_cramers_v(synthetic["x"], synthetic["y"])
    assert 0.3 < v_real < 0.9 and 0.0 < v_syn < 0.4
    m = DependenceMetric().evaluate(Context(real, real.iloc[:300], synthetic, CAT_MD, seed=0))[0]
    assert abs(m.value - abs(v_real - v_syn)) < 1e-9
    assert m.details["method"][0][1] == "cramers_v"
    # the bias correction only shrinks V, and vanishes as n grows
    table = pd.crosstab(real["x"], real["y"]).to_numpy()
    assert abs(cramers_v(table) - v_real) < 1e-12
    assert cramers_v(table) < association(table, method="cramer")
    assert abs(cramers_v(table * 1000) - association(table * 1000, method="cramer")) < 1e-3
    # undefined: a single level on one side
    assert math.isnan(cramers_v(np.array([[5, 3, 2]])))


def _reference_eta(x: pd.Series, g: pd.Series) -> float:
    frame = pd.DataFrame({"x": x, "g": g}).dropna()
    mean = frame["x"].mean()
    between = sum(len(part) * (part["x"].mean() - mean) ** 2 for _, part in frame.groupby("g"))
    total = ((frame["x"] - mean) ** 2).sum()
    return math.sqrt(between / total)


MIX_MD = Metadata(columns={"x": {"sdtype": "numerical"}, "g": {"sdtype": "categorical"}})


def _mixed_table(rng: np.random.Generator, n: int, effect: float) -> pd.DataFrame:
    g = rng.choice(["u", "v", "w", "z"], n)
    x = effect * pd.Series(g).map({"u": 0.0, "v": 1.0, "w": 3.0, "z": -2.0}).to_numpy() + rng.normal(size=n)
    x[rng.random(n) < 0.1] = np.nan
    frame = pd.DataFrame({"x": x, "g": pd.Series(g, dtype=object)})
    frame.loc[rng.random(n) < 0.05, "g"] = None
    return frame


def test_correlation_ratio_agrees_with_the_reference():
    rng = np.random.default_rng(4)
    real, synthetic = _mixed_table(rng, 1000, 1.0), _mixed_table(rng, 900, 0.2)
    e_real, e_syn = _reference_eta(real["x"], real["g"]), _reference_eta(synthetic["x"], synthetic["g"])
    assert e_real > 0.6 and e_syn < 0.4
    m = DependenceMetric(correlation="pearson").evaluate(Context(real, real.iloc[:300], synthetic, MIX_MD, seed=0))[0]
    assert abs(m.value - abs(e_real - e_syn)) < 1e-9
    assert m.details["method"][0][1] == "correlation_ratio"


def test_normalised_mutual_information_agrees_with_sklearn():
    from sklearn.metrics import normalized_mutual_info_score

    rng = np.random.default_rng(5)
    categories = _category_table(rng, 1200, 0.5).rename(columns={"x": "h", "y": "k"})
    frame = pd.concat([_mixed_table(rng, 1200, 1.0), categories], axis=1)
    md = Metadata(columns={**MIX_MD.columns, "h": {"sdtype": "categorical"}, "k": {"sdtype": "categorical"}})
    codings, codes, _ = discretize(frame, [], md, bins=7)
    ours = nmi_matrix(codes, tuple(k.n_codes for k in codings))
    for i in range(4):
        for j in range(4):
            assert abs(ours[i, j] - normalized_mutual_info_score(codes[:, i], codes[:, j])) < 1e-9


def test_constant_and_empty_columns_give_finite_measurements():
    rng = np.random.default_rng(6)
    md = Metadata(
        columns={
            "a": {"sdtype": "numerical"},
            "b": {"sdtype": "numerical"},
            "flat": {"sdtype": "numerical"},
            "empty": {"sdtype": "numerical"},
            "one": {"sdtype": "categorical"},
            "none": {"sdtype": "categorical"},
            "g": {"sdtype": "categorical"},
        }
    )

    def table(n: int) -> pd.DataFrame:
        a = rng.normal(size=n)
        return pd.DataFrame(
            {
                "a": a,
                "b": a + rng.normal(size=n),
                "flat": np.full(n, 3.0),
                "empty": np.full(n, np.nan),
                "one": pd.Series(["same"] * n, dtype=object),
                "none": pd.Series([None] * n, dtype=object),
                "g": pd.Series(np.where(a > 0, "hi", "lo"), dtype=object),
            }
        )

    real, holdout, synthetic = table(500), table(200), table(400)
    ms = check_check(DependenceMetric, Context(real, holdout, synthetic, md, seed=0))
    for m in ms:
        assert math.isfinite(m.value) and math.isfinite(m.baseline)
        # only a-b, a-g and b-g are defined among the 21 pairs
        assert m.details["pairs"] == 21 and m.details["pairs_compared"] == 3
        assert m.details["pairs_undefined_in_real"] == 18
    corr = ms[0].details
    flat = corr["columns"].index("flat")
    assert corr["real"][flat] == [None] * 7 and corr["synthetic"][0][1] is not None
    # a column that varies in the real table but is constant in the synthetic one loses its associations
    frozen = synthetic.assign(b=1.0)
    m = DependenceMetric().evaluate(Context(real, holdout, frozen, md, seed=0))[0]
    assert m.details["pairs_undefined_in_other_scored_as_zero"] == 2
    assert m.value > 0.3


def test_single_column_and_unknown_option():
    frame = pd.DataFrame({"a": np.arange(50.0)})
    md = Metadata(columns={"a": {"sdtype": "numerical"}})
    ms = DependenceMetric().evaluate(Context(frame, frame, frame, md, seed=0))
    assert [m.value for m in ms] == [0.0, 0.0]
    with pytest.raises(ValueError, match="correlation"):
        DependenceMetric(correlation="kendall")
