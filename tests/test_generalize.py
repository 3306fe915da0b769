"""The `generalize` baseline: classic de-identification (bands, truncation, "other", k-anonymity) of real rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from suite.attacks.singling_out import SinglingOutAttack
from suite.generators.generalize import GeneralizeGenerator, equivalence_sizes, is_age
from suite.metadata import Metadata, Roles
from suite.metrics.collisions import CollisionsMetric, row_keys
from suite.metrics.dcr import DCRMetric
from suite.testing import check_generator, context_for, generator_contract
from tests.conftest import ROLES

QIS = ROLES["quasi_identifiers"]


@pytest.fixture(scope="module")
def data(small_data):
    return small_data


@pytest.fixture(scope="module")
def fitted(data):
    return GeneralizeGenerator().fit(data.train, data.metadata)


def test_contract(data):
    """Every clause holds; the only value outside a category's training domain is "other" (the merged
    rare levels, `adds_categories`); blanking them instead (`rare_categories="missing"`) adds none."""
    failed = [r for r in generator_contract(GeneralizeGenerator, data.train, data.metadata) if not r.ok]
    assert [r.clause for r in failed] == ["categories inside the training domain"], failed
    assert failed[0].message == "values never seen in training: {'clinic_name': ['other']}"
    assert GeneralizeGenerator.adds_categories == ("other",) and GeneralizeGenerator.copies_rows
    check_generator(GeneralizeGenerator, data.train, data.metadata, params={"rare_categories": "missing"})


def test_sample_before_fit_raises():
    with pytest.raises(RuntimeError, match="call fit before sample"):
        GeneralizeGenerator().sample(3, seed=0)


def test_is_age():
    assert is_age("age") and is_age("Age") and is_age("patient_age") and is_age("age_years")
    assert not is_age("page") and not is_age("stage") and not is_age("agent")


def test_k_anonymity_on_the_quasi_identifiers(data, fitted):
    released = fitted.rows_
    assert equivalence_sizes(released, QIS).min() >= 5
    assert released.groupby(QIS, dropna=False).size().min() >= 5
    info = fitted.fit_info()
    assert info["k_achieved"] >= 5 and info["quasi_identifiers"] == QIS
    assert info["quasi_identifier_source"] == "declared"
    # the sample keeps k-anonymity too: it only repeats released rows
    sample = fitted.sample(len(data.train), seed=1)
    assert set(map(tuple, sample[QIS].astype(str).to_numpy())) <= set(map(tuple, released[QIS].astype(str).to_numpy()))


def test_generalisation_steps(data, fitted):
    train, released = data.train, fitted.rows_
    assert set(released["age"].dropna() % 10) == {5.0}  # midpoints of 10-year bands
    assert released["pan_day"].nunique() <= 5 and released["pan_day"].dtype == train["pan_day"].dtype
    counts = train["clinic_name"].value_counts()
    assert not set(counts.index[counts < 10]) & set(released["clinic_name"])
    assert "other" in set(released["clinic_name"])
    assert "clinic_name" in fitted.fit_info()["generalized"]


def test_suppression_count(data, fitted):
    info = fitted.fit_info()
    assert info["rows_in"] == len(data.train)
    assert info["rows_suppressed"] + len(fitted.rows_) == len(data.train)
    # five quasi-identifiers on 2,137 rows: some rows are too rare, most are not
    assert 0 < info["rows_suppressed"] < 0.5 * len(data.train)
    assert info["share_suppressed"] == pytest.approx(info["rows_suppressed"] / len(data.train), abs=1e-4)
    loose = GeneralizeGenerator(k=1).fit(data.train, data.metadata).fit_info()
    strict = GeneralizeGenerator(k=20).fit(data.train, data.metadata).fit_info()
    assert loose["rows_suppressed"] == 0 < info["rows_suppressed"] < strict["rows_suppressed"]


def test_returns_real_rows(data, fitted):
    """Every column outside the quasi-identifiers is a training row's, unchanged."""
    rest = [c for c in data.train.columns if c not in QIS]
    metadata = data.metadata.without(QIS)
    sample = fitted.sample(500, seed=0)
    assert np.isin(row_keys(sample[rest], metadata), row_keys(data.train[rest], metadata)).all()


def test_privacy_checks_see_real_rows(data):
    """The distance checks find it nearer the training rows than independent marginals; singling out
    (the attack that generalisation is meant to stop, and does not) finds many unique records."""
    ours = context_for(data, "generalize", seed=0)
    marginals = context_for(data, "marginals", seed=0)
    dcr = [{m.name: m.value for m in DCRMetric().evaluate(c)}["dcr.share_closer_to_train"] for c in (ours, marginals)]
    assert dcr[0] > dcr[1] + 0.08, dcr
    excess = [{m.name: m.value for m in CollisionsMetric().evaluate(c)}["collisions.excess"] for c in (ours, marginals)]
    assert excess[0] >= excess[1], excess
    risk = [
        {m.name: m.value for m in SinglingOutAttack().evaluate(c)}["singling_out.univariate.risk"]
        for c in (ours, marginals)
    ]
    assert risk[0] > 0.05 and risk[0] > 3 * risk[1], risk  # beyond chance (0.08 on this slice; marginals 0)


def test_inferred_quasi_identifiers_and_odd_dtypes():
    """No declared QIs: few-level categories act as QIs; Categorical gets "other"; dates truncated."""
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "sex": rng.choice(["f", "m"], n).astype(object),
            "site": pd.Categorical(rng.choice(["a", "b", "c", "rare"], n, p=[0.4, 0.3, 0.29, 0.01])),
            "code": rng.choice([1, 2, 99], n, p=[0.5, 0.49, 0.01]),
            "seen": pd.to_datetime("2021-03-04") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
            "value": rng.normal(size=n),
        }
    )
    sdtypes = {"sex": "categorical", "site": "categorical", "code": "categorical", "seen": "datetime"}
    metadata = Metadata(columns={c: {"sdtype": sdtypes.get(c, "numerical")} for c in frame.columns})
    generator = GeneralizeGenerator(k=3).fit(frame, metadata)
    info = generator.fit_info()
    assert info["quasi_identifiers"] == ["sex", "site", "code"]
    assert info["quasi_identifier_source"].startswith("inferred")
    out = generator.sample(n, seed=0)
    assert "other" in out["site"].cat.categories and "rare" not in set(out["site"])
    assert out["code"].dtype == frame["code"].dtype and "kept" in info["generalized"]["code"]
    assert equivalence_sizes(generator.rows_, info["quasi_identifiers"]).min() >= 3
    assert out["value"].isin(frame["value"]).all()

    declared = metadata.with_roles(Roles(quasi_identifiers=("seen", "sex")))
    dated = GeneralizeGenerator(k=2, date_unit="month").fit(frame, declared).sample(n, seed=0)
    assert dated["seen"].dtype == frame["seen"].dtype and (dated["seen"].dt.day == 1).all()
    assert dated["site"].dtype == frame["site"].dtype  # not a QI here: released unchanged


def test_small_table_generalises_further_instead_of_suppressing_everything(data):
    """20 rows, five QIs: bands alone leave every row unique; Datafly generalises whole columns until
    at most `max_suppressed` of the rows go."""
    tiny = data.train.head(20).reset_index(drop=True)
    generator = GeneralizeGenerator().fit(tiny, data.metadata)
    info = generator.fit_info()
    assert info["generalized_completely"] and info["share_suppressed"] <= 0.5
    assert equivalence_sizes(generator.rows_, QIS).min() >= 5
    for column in info["generalized_completely"]:
        assert generator.rows_[column].nunique(dropna=True) <= 1
    assert len(generator.sample(30, seed=0)) == len(generator.rows_) < 30  # its rows, none drawn twice
    with pytest.raises(ValueError, match="cannot be 30-anonymous"):
        GeneralizeGenerator(k=30).fit(tiny, data.metadata)


def test_rare_categories_missing(data):
    generator = GeneralizeGenerator(rare_categories="missing").fit(data.train, data.metadata)
    counts = data.train["clinic_name"].value_counts()
    released = generator.rows_["clinic_name"]
    assert not set(released.dropna()) - set(counts.index[counts >= 10])
    assert released.isna().any() and "set missing" in generator.fit_info()["generalized"]["clinic_name"]


def test_asked_for_more_rows_than_suppression_left_it_returns_them_once(tmp_path, small_csv, data, fitted):
    """No re-drawn duplicates: sample(n) with n above the released rows returns each released row once,
    says so in fit_info, and a run records (and writes) the shorter table."""
    n = len(data.train)
    sample = fitted.sample(n, seed=3)
    assert len(sample) == len(fitted.rows_) < n  # some rows were suppressed
    assert not sample.duplicated().sum() > fitted.rows_.duplicated().sum()  # nothing drawn twice
    info = fitted.fit_info()["sample"]
    assert info["rows_asked"] == n and info["rows_returned"] == len(sample) and "fewer" in info["note"]
    assert len(fitted.sample(100, seed=3)) == 100 and "note" not in fitted.fit_info()["sample"]

    from suite.cli import main
    from tests.conftest import write_scenario

    path = write_scenario(tmp_path, small_csv, generators=[{"name": "generalize"}], checks=["collisions"])
    assert main(["run", str(path), "--out", str(tmp_path / "runs"), "--quiet", "--no-plan"]) in (0, 1)
    (run_dir,) = list((tmp_path / "runs").iterdir())
    import json

    record = json.loads((run_dir / "scorecard.json").read_text())["generators"][0]
    assert record["fit_info"][0]["sample"]["rows_returned"] == len(fitted.rows_)
    assert not any("returned" in r and "rows" in r for r in record["reasons"])  # not a broken contract
