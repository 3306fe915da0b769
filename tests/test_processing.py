"""Imputation before fitting and constraints on the output, declared per generator in the scenario."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from suite.cli import main
from suite.constraints import FixedCombinationsConstraint, InequalityConstraint, RangeConstraint
from suite.processing import Processed, impute
from suite.registry import generators
from suite.reports import read_json
from suite.testing import contract_table
from tests.conftest import write_scenario


@pytest.fixture(scope="module")
def table():
    return contract_table(1_000)


def test_constraints_hold_on_every_row_and_compliance_is_reported(table):
    train, metadata = table
    rules = [
        RangeConstraint(kind="range", column="age", min=1, max=60),
        InequalityConstraint(kind="inequality", low="col_rec_tat", high="rec_ver_tat"),
        FixedCombinationsConstraint(kind="fixed_combinations", columns=["clinic_name", "patient_class"]),
    ]
    plain = generators.get("marginals")().fit(train, metadata).sample(2_000, seed=1)
    gen = Processed(generators.get("marginals")(), constraints=rules).fit(train, metadata)
    out = gen.sample(2_000, seed=1)
    assert len(out) == 2_000 and list(out.columns) == list(train.columns)
    assert out["age"].between(1, 60).all()
    both = out[["col_rec_tat", "rec_ver_tat"]].dropna()
    assert (both["col_rec_tat"] <= both["rec_ver_tat"]).all()
    seen = set(map(tuple, train[["clinic_name", "patient_class"]].astype(object).where(train.notna(), None).values))
    got = set(map(tuple, out[["clinic_name", "patient_class"]].astype(object).where(out.notna(), None).values))
    assert got <= seen
    # independent marginals break these rules often: rejection did the work, and says how much
    assert not plain["age"].between(1, 60).all()
    info = gen.fit_info()["constraints"]
    assert 0.0 < info["compliant_share_before_rejection"] < 0.95 and info["rows_drawn"] > 2_000


def test_impossible_constraints_fail_the_generator_clearly(table):
    train, metadata = table
    rule = RangeConstraint(kind="range", column="age", min=500)
    gen = Processed(generators.get("marginals")(), constraints=[rule]).fit(train, metadata)
    with pytest.raises(RuntimeError, match="obey the constraints"):
        gen.sample(100, seed=0)


def test_iterative_imputation_fills_numbers_and_categories(table):
    train, metadata = table
    assert train["ct_result"].isna().any() and train["payor_group"].isna().any()
    filled = impute(train, metadata, "iterative")
    assert not filled[["ct_result", "payor_group", "col_rec_tat"]].isna().any().any()
    assert (filled.dtypes == train.dtypes).all()
    assert train["ct_result"].isna().any()  # the input is untouched
    kept = train["ct_result"].notna()
    assert np.allclose(filled.loc[kept, "ct_result"], train.loc[kept, "ct_result"])


def test_imputed_generator_samples_reproducibly_without_gaps(table):
    train, metadata = table
    make = lambda: Processed(generators.get("marginals")(), impute="simple").fit(train, metadata)  # noqa: E731
    out = make().sample(300, seed=2)
    assert (out.dtypes == train.dtypes).all() and not out["payor_group"].isna().any()
    pd.testing.assert_frame_equal(out, make().sample(300, seed=2))


def test_scenario_declares_processing_and_the_scorecard_reports_it(tmp_path, small_csv):
    path = write_scenario(
        tmp_path,
        small_csv,
        generators=[
            {
                "name": "marginals",
                "impute": "iterative",
                "constraints": [{"kind": "inequality", "low": "col_rec_tat", "high": "rec_ver_tat"}],
            }
        ],
        checks=["collisions"],
    )
    assert main(["run", str(path), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    (info,) = read_json(run_dir / "scorecard.json").generators[0].fit_info
    assert info["imputation"]["method"] == "iterative" and info["imputation"]["values_filled"] > 0
    assert info["constraints"]["rules"][0]["kind"] == "inequality"
    assert 0 < info["constraints"]["compliant_share_before_rejection"] <= 1


def test_a_rule_on_a_missing_column_is_bad_input(tmp_path, small_csv, capsys):
    bad = {"name": "marginals", "constraints": [{"kind": "range", "column": "agee", "max": 3}]}
    path = write_scenario(tmp_path, small_csv, generators=[bad], checks=["collisions"])
    assert main(["run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "agee" in err and "generators[0]" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_sdv_enforces_the_rules_its_training_rows_obey(table):
    """SDV's own constraint objects carry a rule the data obeys; a rule the data breaks falls back to rejection."""
    train, metadata = table
    obeying = train[~(train["col_rec_tat"] > train["rec_ver_tat"])].reset_index(drop=True)
    rules = [
        InequalityConstraint(kind="inequality", low="col_rec_tat", high="rec_ver_tat"),
        FixedCombinationsConstraint(kind="fixed_combinations", columns=["clinic_name", "patient_class"]),
        RangeConstraint(kind="range", column="age", min=1, max=60),  # SDV has no fixed-bound range: rejection
    ]
    gen = Processed(generators.get("sdv.gaussian_copula")(), constraints=rules).fit(obeying, metadata)
    out = gen.sample(1_000, seed=0)
    info = gen.fit_info()["constraints"]
    assert [r["enforced_by"] for r in info["rules"]] == ["sdv", "sdv", "rejection"]
    assert [type(c).__name__ for c in gen.inner.model_.get_constraints()] == ["Inequality", "FixedCombinations"]
    both = out[["col_rec_tat", "rec_ver_tat"]].dropna()
    assert (both["col_rec_tat"] <= both["rec_ver_tat"]).all() and out["age"].between(1, 60).all()
    # the training rows of `table` break the inequality: SDV would refuse them, so rejection takes over
    fallback = Processed(generators.get("sdv.gaussian_copula")(), constraints=rules[:1]).fit(train, metadata)
    assert fallback.fit_info()["constraints"]["rules"][0]["enforced_by"] == "rejection"
    assert (
        fallback.sample(500, seed=0).dropna(subset=["col_rec_tat", "rec_ver_tat"]).eval("col_rec_tat <= rec_ver_tat")
    ).all()
