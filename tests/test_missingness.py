"""Missingness fidelity: rates, co-missingness and row patterns, on real data and on tables built by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from suite.dataset import prepare
from suite.metadata import Metadata, Roles
from suite.metrics.missingness import MissingnessMetric
from suite.testing import check_check, context_for
from suite.types import Context
from tests.conftest import DATA, METADATA, ROLES

FLCHAIN = DATA.parent / "flchain.parquet"
NAMES = ("missingness.rate_mae", "missingness.co_missing_mae", "missingness.pattern_tvd")


def _scores(ctx: Context) -> dict[str, float]:
    return {m.name: m.value for m in MissingnessMetric().evaluate(ctx)}


@pytest.fixture(scope="module")
def flchain_contexts() -> dict[str, Context]:
    data = prepare(FLCHAIN, metadata_path=None, roles=Roles(target="death"), holdout=0.3, seed=0)
    return {g: context_for(data, g, seed=0) for g in ("holdout", "marginals", "uniform", "identity")}


@pytest.fixture(scope="module")
def covid_contexts() -> dict[str, Context]:
    data = prepare(DATA, metadata_path=METADATA, roles=Roles.from_dict(ROLES), holdout=0.3, seed=0)
    return {g: context_for(data, g, seed=0) for g in ("holdout", "marginals", "uniform")}


def test_contract(flchain_contexts):
    ms = check_check(MissingnessMetric, flchain_contexts["marginals"])
    assert [m.name for m in ms] == list(NAMES)
    details = ms[0].details
    assert details["co_missing"]["columns"] == ["creatinine", "chapter"]
    rates = details["rates"]
    assert abs(rates["creatinine"]["real"] - 0.17) < 0.02 and abs(rates["chapter"]["real"] - 0.72) < 0.02
    assert rates["age"] == {"real": 0.0, "synthetic": 0.0, "holdout": 0.0}
    shares = [p["real"] for p in details["patterns"]] + [details["other_patterns"]["real"]]
    assert abs(sum(shares) + details["rare_patterns"]["real"] - 1.0) < 1e-5


def test_rates_kept_by_generators_that_keep_missing_shares(flchain_contexts):
    scores = {g: _scores(ctx) for g, ctx in flchain_contexts.items()}
    # marginals and uniform both draw each column's missing share (observed rate_mae 0.0008, 0.0009)
    assert scores["marginals"]["missingness.rate_mae"] < 0.01
    assert scores["uniform"]["missingness.rate_mae"] < 0.01
    assert all(v == 0.0 for v in scores["identity"].values())
    # missingness drawn per column loses the patterns: observed TVD holdout 0.015, marginals 0.048
    assert scores["marginals"]["missingness.pattern_tvd"] > 2 * scores["holdout"]["missingness.pattern_tvd"]


def test_filled_in_values_are_caught(flchain_contexts):
    ctx = flchain_contexts["identity"]
    filled = ctx.synthetic.fillna({"creatinine": ctx.synthetic["creatinine"].median(), "chapter": "none"})
    assert not filled.isna().any().any()
    ms = {m.name: m for m in MissingnessMetric().evaluate(Context(ctx.train, ctx.holdout, filled, ctx.metadata, 0))}
    mean_rate = ctx.train.isna().mean().mean()  # about (0.17 + 0.72) / 11
    assert 0.06 < mean_rate < 0.1
    assert abs(ms["missingness.rate_mae"].value - mean_rate) < 1e-12
    assert ms["missingness.rate_mae"].value > 20 * ms["missingness.rate_mae"].baseline
    # every real row missing anything now has the all-present pattern
    assert abs(ms["missingness.pattern_tvd"].value - ctx.train.isna().any(axis=1).mean()) < 1e-12


def test_covid_patterns(covid_contexts):
    # payor_group and patient_class (45% each) are missing in the same rows; independent draws break that
    scores = {g: _scores(ctx) for g, ctx in covid_contexts.items()}
    # observed: pattern TVD holdout 0.009, marginals 0.496, uniform 0.503; co-missing 0.004 / 0.084 / 0.083
    for g in ("marginals", "uniform"):
        assert scores[g]["missingness.pattern_tvd"] > 0.3 > 0.05 > scores["holdout"]["missingness.pattern_tvd"]
        assert scores[g]["missingness.co_missing_mae"] > 5 * scores["holdout"]["missingness.co_missing_mae"]


MD = Metadata(columns={c: {"sdtype": "numerical"} for c in "abcd"})


def _table(rng: np.random.Generator, n: int, *, together: bool) -> pd.DataFrame:
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=list("abcd"))
    a = rng.random(n) < 0.3
    b = a if together else rng.random(n) < 0.3
    frame.loc[a, "a"] = np.nan
    frame.loc[b, "b"] = np.nan
    return frame


def test_co_missingness_and_patterns_against_references():
    rng = np.random.default_rng(0)
    real, holdout = _table(rng, 4000, together=True), _table(rng, 1000, together=True)
    same, independent = _table(rng, 4000, together=True), _table(rng, 4000, together=False)
    kept = _scores(Context(real, holdout, same, MD, seed=0))
    broken = _scores(Context(real, holdout, independent, MD, seed=0))
    assert kept["missingness.rate_mae"] < 0.02 and broken["missingness.rate_mae"] < 0.02
    # joint rate 0.3 against 0.09 over the single pair of columns with missing values
    assert broken["missingness.co_missing_mae"] > 0.15 > 0.03 > kept["missingness.co_missing_mae"]
    assert broken["missingness.pattern_tvd"] > 0.3 > 0.05 > kept["missingness.pattern_tvd"]
    # plain references
    ra, ia = real.isna(), independent.isna()
    joint = lambda m: (m["a"] & m["b"]).mean()  # noqa: E731
    assert abs(broken["missingness.co_missing_mae"] - abs(joint(ra) - joint(ia))) < 1e-12
    shares = lambda m: m.apply(tuple, axis=1).value_counts(normalize=True)  # noqa: E731
    p, q = shares(ra).align(shares(ia), fill_value=0.0)
    assert abs(broken["missingness.pattern_tvd"] - 0.5 * (p - q).abs().sum()) < 1e-12


def test_rare_patterns_are_never_named():
    rng = np.random.default_rng(1)
    real = pd.DataFrame(rng.normal(size=(1000, 4)), columns=list("abcd"))
    real.iloc[:300, 0] = np.nan  # 300 rows missing a
    real.iloc[300:305, [1, 2]] = np.nan  # 5 rows missing b and c: a small group
    synthetic = real.sample(frac=1.0, random_state=0).reset_index(drop=True)
    synthetic.iloc[:40, 3] = np.nan  # a pattern real rows never have
    details = MissingnessMetric().evaluate(Context(real, real.iloc[:100], synthetic, MD, seed=0))[0].details
    named = [p["missing"] for p in details["patterns"]]
    assert ["a"] in named and [] in named
    assert ["b", "c"] not in named and ["d"] not in named and ["a", "d"] not in named
    assert details["rare_patterns"]["real"] == 0.005
    assert details["rare_patterns"]["synthetic"] > 0.035


def test_no_missing_values_give_zero():
    rng = np.random.default_rng(2)
    tables = [pd.DataFrame(rng.normal(size=(n, 4)), columns=list("abcd")) for n in (300, 100, 200)]
    ms = check_check(MissingnessMetric, Context(*tables, MD, seed=0))
    for m in ms:
        assert m.value == 0.0 and m.baseline == 0.0 and not math.isnan(m.value)
    assert ms[0].details["co_missing"] == {"columns": [], "real": [], "synthetic": []}
