"""Fidelity and diagnostic checks on the shipped real data: per-column tests, sdmetrics scores, no leaks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from suite.metrics._tabular import repeat_design_effect
from suite.metrics.diagnostic import DiagnosticMetric
from suite.metrics.fidelity import (
    FidelityMetric,
    categorical_test,
    histogram_edges,
    numeric_test,
    quality_inputs,
    sdv_metadata,
)
from suite.registry import checks
from suite.testing import check_check, context_for


@pytest.fixture(scope="module")
def data(small_data):
    return small_data


@pytest.fixture(scope="module")
def results(data):
    out = {}
    for generator in ("holdout", "marginals", "uniform", "identity"):
        ctx = context_for(data, generator, seed=0)
        out[generator] = {m.name: m for m in FidelityMetric().evaluate(ctx) + DiagnosticMetric().evaluate(ctx)}
    return out


def test_registered_with_their_measurements():
    assert checks.get("fidelity") is FidelityMetric and checks.get("diagnostic") is DiagnosticMetric
    assert "fidelity.columns_passed" in FidelityMetric.measures
    assert DiagnosticMetric.measures == ("diagnostic.validity", "diagnostic.structure")


@pytest.mark.parametrize("cls", [FidelityMetric, DiagnosticMetric])
def test_contract(data, cls):
    check_check(cls, context_for(data, "marginals", seed=0))


def test_ks_and_chi_squared_agree_with_scipy_without_repeats():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=400), rng.normal(0.3, 1.0, size=300)
    ks = numeric_test(a, b, bins=10)
    ref = stats.ks_2samp(a, b)
    assert ks["statistic"] == pytest.approx(ref.statistic, abs=1e-12)
    assert ks["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    x = pd.Series(rng.choice(list("abc"), 500, p=[0.5, 0.3, 0.2]))
    y = pd.Series(rng.choice(list("abc"), 400, p=[0.4, 0.4, 0.2]))
    chi = categorical_test(x, y, max_levels=50, min_count=10)
    table = np.array([[(x == v).sum() for v in "abc"], [(y == v).sum() for v in "abc"]])
    ref = stats.chi2_contingency(table, correction=False)
    assert chi["statistic"] == pytest.approx(ref.statistic, rel=1e-9)
    assert chi["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    shares = lambda s: s.value_counts(normalize=True).reindex(list("abc"), fill_value=0.0)  # noqa: E731
    assert chi["tvd"] == pytest.approx(0.5 * np.abs(shares(x) - shares(y)).sum(), abs=1e-12)


def test_resampled_rows_count_as_the_smaller_sample_they_are(data):
    rng = np.random.default_rng(1)
    real = data.train
    resampled = data.reference.iloc[rng.integers(0, 300, size=len(real))]
    assert repeat_design_effect(real, resampled) > 3.0
    fresh = data.control
    assert repeat_design_effect(real, fresh) < 1.2
    column = "age"
    naive = numeric_test(real[column].to_numpy(float), resampled[column].to_numpy(float), bins=10)
    corrected = numeric_test(
        real[column].to_numpy(float),
        resampled[column].to_numpy(float),
        bins=10,
        deff=repeat_design_effect(real, resampled),
    )
    assert corrected["statistic"] == naive["statistic"] and corrected["p_value"] > naive["p_value"]


def test_holdout_keeps_every_column_and_uniform_few(results):
    passed = {g: r["fidelity.columns_passed"].value for g, r in results.items()}
    # a small slice: 428 reference patients redrawn to 2,137 rows; entity clusters make a few tests reject
    assert passed["holdout"] >= 0.75 and passed["identity"] == 1.0
    assert passed["uniform"] <= 0.3
    assert passed["marginals"] > passed["uniform"]
    uniform = results["uniform"]["fidelity.columns_passed"].details
    assert set(uniform["failed_columns"]) >= {"age", "clinic_name"}


def test_quality_ranks_holdout_over_marginals_over_uniform(results):
    quality = {g: r["fidelity.quality"].value for g, r in results.items()}
    assert quality["identity"] == pytest.approx(1.0)
    assert quality["holdout"] > quality["marginals"] > quality["uniform"]
    shapes = {g: r["fidelity.column_shapes"].value for g, r in results.items()}
    pairs = {g: r["fidelity.column_pairs"].value for g, r in results.items()}
    assert shapes["marginals"] > 0.95 and pairs["marginals"] < shapes["marginals"] - 0.15  # shapes kept, pairs lost


def test_distributions_show_no_rare_level(results, data):
    counts = data.train["clinic_name"].astype(str).value_counts()
    rare = set(counts[counts < 10].index)
    assert rare, "the slice should hold clinics seen fewer than 10 times"
    for r in results.values():
        shown = r["fidelity.columns_passed"].details["by_column"]["clinic_name"]["distribution"]
        assert not rare & set(shown["levels"])
        assert sum(shown["real"]) == pytest.approx(1.0, abs=1e-4)


def test_diagnostic_catches_values_outside_the_real_domain(data):
    ctx = context_for(data, "identity", seed=0)
    assert {m.name: m.value for m in DiagnosticMetric().evaluate(ctx)}["diagnostic.validity"] == 1.0
    broken = ctx.synthetic.copy()
    broken.loc[: len(broken) // 2, "age"] = 1_000.0
    broken["clinic_name"] = "never seen"
    ms = {m.name: m for m in DiagnosticMetric().evaluate(replace(ctx, synthetic=broken))}
    validity = ms["diagnostic.validity"]
    assert validity.value < 0.95
    assert {"age", "clinic_name"} <= set(validity.details["columns_below_1"])
    assert validity.details["by_column"]["clinic_name"]["score"] == 0.0


def test_sparse_levels_are_pooled_before_the_chi_squared_test():
    rng = np.random.default_rng(3)
    levels = [f"l{i}" for i in range(40)]
    weights = np.r_[np.full(4, 0.2), np.full(36, 0.2 / 36)]  # four common levels, 36 rare ones
    rejections = 0
    for _ in range(40):
        a = pd.Series(rng.choice(levels, 300, p=weights))
        b = pd.Series(rng.choice(levels, 300, p=weights))
        rejections += categorical_test(a, b, max_levels=50, min_count=10)["p_value"] < 0.01
    assert rejections <= 3  # about 0.4 expected at level 0.01; unpooled sparse cells reject far more often
    far = pd.Series(rng.choice(levels[:4], 300))
    assert categorical_test(pd.Series(rng.choice(levels, 300, p=weights)), far, 50, 10)["p_value"] < 1e-6


def test_histogram_bins_follow_a_long_tail_and_stay_in_the_coded_range():
    """Equal-width bins draw a long-tailed column as a few bars; log-spaced bins spread it, and no edge
    leaves the top- and bottom-coded range (no real extreme in the scorecard)."""
    from suite.disclosure import coded_range

    adult = pd.read_parquet("data/adult.parquet")
    gains = adult["capital-gain"].to_numpy(dtype=float)
    gains = gains[gains > 0]
    low, high = coded_range(gains, 10)
    edges, scale = histogram_edges(gains, low, high, 20)
    linear = np.linspace(low, high, 21)
    share = lambda e: np.histogram(np.clip(gains, low, high), e)[0].max() / gains.size  # noqa: E731
    assert scale == "log" and share(edges) < share(linear)
    assert edges[0] == low and edges[-1] == high and np.all(np.diff(edges) > 0)
    ages = adult["age"].to_numpy(dtype=float)
    assert histogram_edges(ages, *coded_range(ages, 10), 20)[1] == "linear"


@pytest.mark.parametrize(
    ("table", "generator"),
    [("census", "marginals"), ("census", "holdout"), ("covid", "marginals"), ("covid", "uniform")],
)
def test_quality_inputs_leave_every_sdmetrics_score_unchanged(data, table, generator):
    """Category strings handed to sdmetrics as order-keeping float ranks (`quality_inputs`, several times
    faster): the QualityReport's score and every column's and pair's score are the same to the last bit,
    on real tables with missing levels, levels one table lacks and numbers-as-categories."""
    import warnings

    from sdmetrics.reports import QualityReport

    from suite.dataset import prepare
    from suite.metadata import Roles

    if table == "census":
        census = prepare(
            Path("data/census_kdd.parquet"),
            metadata_path=Path("data/census_kdd.metadata.json"),
            roles=Roles(identifiers=["instance_weight", "split"]),
            holdout=0.5,
            seed=0,
        )
        rows = lambda f: f.sample(n=3_000, random_state=0).reset_index(drop=True)  # noqa: E731
        data = replace(census, train=rows(census.train), control=rows(census.control), reference=rows(census.reference))
    ctx = context_for(data, generator, seed=0)
    real, synthetic = ctx.train.copy(), ctx.synthetic.copy()
    synthetic.loc[:9, real.select_dtypes("object").columns[0]] = "a level real data lacks"

    def report(r: pd.DataFrame, s: pd.DataFrame) -> QualityReport:
        out = QualityReport()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.generate({"table": r}, {"table": s}, sdv_metadata(ctx.metadata), verbose=False)
        return out

    ranked_real, ranked_synthetic = quality_inputs(real, synthetic, ctx.metadata)
    assert ranked_real.select_dtypes("object").shape[1] < real.select_dtypes("object").shape[1]  # strings were ranked
    before, after = report(real, synthetic), report(ranked_real, ranked_synthetic)
    assert after.get_score() == before.get_score()
    for name in ("Column Shapes", "Column Pair Trends"):
        pd.testing.assert_frame_equal(after.get_details(name), before.get_details(name), check_exact=True)
