"""Shared fixtures: the shipped quickstart data, a smaller slice of it, and one run of the quickstart's utility side."""

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


def write_small_csv(folder: Path, covid: pd.DataFrame | None = None) -> Path:
    """3,000 real rows of the quickstart table as CSV (whole patients, so entities stay intact)."""
    covid = pd.read_parquet(DATA) if covid is None else covid
    ids = covid["subject_id"].drop_duplicates().sample(frac=1.0, random_state=0)
    keep = covid[covid["subject_id"].isin(ids.iloc[:2400])].head(3000)
    path = folder / "covid_small.csv"
    keep.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory: pytest.TempPathFactory, covid: pd.DataFrame) -> Path:
    """3,000 real rows of the quickstart table as CSV (`write_small_csv`)."""
    return write_small_csv(tmp_path_factory.mktemp("data"), covid)


@pytest.fixture(scope="session")
def small_data(small_csv: Path):
    """The 3,000-row slice prepared as a run prepares it (quickstart roles, holdout 0.3, seed 0)."""
    from suite.dataset import prepare
    from suite.metadata import Roles

    return prepare(small_csv, metadata_path=METADATA, roles=Roles.from_dict(ROLES), holdout=0.3, seed=0)


def mixed_table(n: int = 400, seed: int = 0):
    """A small table of every awkward kind: dates with gaps, nullable integers, booleans, a pandas
    categorical with missing values and an all-missing column; with its metadata."""
    import numpy as np

    from suite.metadata import Metadata

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "day": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
            "count": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 50, n)), dtype="Int64"),
            "flag": rng.random(n) < 0.3,
            "group": pd.Categorical(rng.choice(["a", "b", None], n)),
            "empty": np.full(n, np.nan),
        }
    )
    frame.loc[rng.random(n) < 0.1, "day"] = pd.NaT
    metadata = Metadata(
        columns={
            "day": {"sdtype": "datetime"},
            "count": {"sdtype": "numerical"},
            "flag": {"sdtype": "boolean"},
            "group": {"sdtype": "categorical"},
            "empty": {"sdtype": "numerical"},
        }
    )
    return frame, metadata


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


#: The quickstart's attacks and leak canaries: the shipped scenario runs them (tests/test_quickstart.py,
#: slow); the default test run leaves them out of its quickstart (`quickstart_utility`).
ATTACK_CHECKS = ("singling_out", "linkability", "inference", "reconstruction", "membership")
LEAK_CANARIES = ("outlier_copy", "partial_copy")


def quickstart_utility(folder: Path) -> Path:
    """The shipped quickstart without its attacks and leak canaries, plus the utility yardsticks `marginals`
    (private, no dependence) and `uniform` (private noise) that the ground-truth tests need: same data,
    split, preset and utility checks, in a fraction of the time."""
    scenario = yaml.safe_load(QUICKSTART.read_text())
    for key in ("path", "metadata"):
        scenario["dataset"][key] = str((QUICKSTART.parent / scenario["dataset"][key]).resolve())
    scenario["checks"] = [
        c for c in scenario["checks"] if (c if isinstance(c, str) else c["name"]) not in ATTACK_CHECKS
    ]
    kept = [g for g in scenario["generators"] if g["name"] not in LEAK_CANARIES]
    scenario["generators"] = [{"name": "marginals", "expect": "block"}, *kept, {"name": "uniform", "expect": "block"}]
    path = folder / "quickstart.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory: pytest.TempPathFactory):
    """The quickstart's utility side (`quickstart_utility`), run once through the CLI entry point."""
    from suite.cli import main
    from suite.reports import read_json

    out = tmp_path_factory.mktemp("quickstart")
    code = main(["run", str(quickstart_utility(out)), "--out", str(out / "runs"), "--quiet"])
    (run_dir,) = (out / "runs").iterdir()
    return code, run_dir, read_json(run_dir / "scorecard.json")
