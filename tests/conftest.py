"""Shared fixtures: the shipped quickstart data, a smaller slice of it, and one quickstart run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "covid_testing.parquet"
METADATA = ROOT / "data" / "covid_testing.metadata.json"
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
IDENTIFIERS = ["subject_id", "fake_first_name", "fake_last_name"]
ROLES = {
    "identifiers": IDENTIFIERS,
    "quasi_identifiers": ["gender", "age", "clinic_name", "pan_day", "drive_thru_ind"],
    "secrets": ["result", "ct_result", "payor_group"],
    "target": "result",
    "entity": "subject_id",
}


@pytest.fixture(scope="session")
def covid() -> pd.DataFrame:
    return pd.read_parquet(DATA)


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory: pytest.TempPathFactory, covid: pd.DataFrame) -> Path:
    """3,000 real rows of the quickstart table as CSV (whole patients, so entities stay intact)."""
    ids = covid["subject_id"].drop_duplicates().sample(frac=1.0, random_state=0)
    keep = covid[covid["subject_id"].isin(ids.iloc[:2400])].head(3000)
    path = tmp_path_factory.mktemp("data") / "covid_small.csv"
    keep.to_csv(path, index=False)
    return path


def write_scenario(folder: Path, data: Path, **overrides: object) -> Path:
    """A scenario file over `data` with the quickstart roles; `overrides` replace top-level keys."""
    scenario: dict = {
        "name": "small",
        "dataset": {"path": str(data), "metadata": str(METADATA), "roles": ROLES},
        "split": {"holdout": 0.3, "seed": 0},
        "generators": [{"name": "marginals"}, {"name": "identity", "expect": "block"}],
        "checks": ["collisions", "dcr"],
        "output": str(folder / "runs"),
    }
    scenario.update(overrides)
    path = folder / f"{scenario['name']}.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory: pytest.TempPathFactory):
    """The shipped quickstart scenario, run once through the CLI entry point."""
    from reports import read_json
    from suite.cli import main

    out = tmp_path_factory.mktemp("quickstart")
    code = main(["run", str(QUICKSTART), "--out", str(out), "--quiet"])
    (run_dir,) = out.iterdir()
    return code, run_dir, read_json(run_dir / "scorecard.json")
