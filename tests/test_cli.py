"""Bad input exits 2 with a message that names the problem, and never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, write_scenario


def _suite(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "suite", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def _assert_config_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ndataset: {path: a.csv\ngenerators: []\n")
    _assert_config_error(_suite("validate", str(path)), "bad.yaml", "line", "malformed YAML")


def test_unknown_generator_is_named_with_a_suggestion(tmp_path, small_csv):
    path = write_scenario(tmp_path, small_csv, generators=[{"name": "marginal"}])
    _assert_config_error(
        _suite("validate", str(path)), "generators[0].name", "unknown generator 'marginal'", "did you mean 'marginals'"
    )


def test_unknown_key_lists_the_accepted_ones_and_the_line(tmp_path, small_csv):
    path = write_scenario(tmp_path, small_csv, split={"holdout": 0.3, "sed": 1})
    result = _suite("validate", str(path))
    _assert_config_error(result, "split.sed", "unknown key 'sed'", "accepted keys: holdout, record, seed")
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "sed:" in text)
    assert f"line {line}" in result.stderr


def test_wrong_threshold_key_is_rejected(tmp_path, small_csv):
    path = write_scenario(tmp_path, small_csv, policy={"dcr.share_closer_to_trian": {"max": 0.6}})
    _assert_config_error(
        _suite("validate", str(path)), "policy.dcr.share_closer_to_trian", "did you mean 'dcr.share_closer_to_train'"
    )


def test_threshold_for_an_unselected_check_is_rejected(tmp_path, small_csv):
    path = write_scenario(tmp_path, small_csv, policy={"fidelity.quality": {"min": 0.8}})
    _assert_config_error(_suite("validate", str(path)), "policy.fidelity.quality", "no selected check produces")


def test_bad_parameter_type_and_unknown_parameter(tmp_path, small_csv):
    gens = [{"name": "marginals", "params": {"bins": "many"}}, {"name": "uniform", "params": {"epochs": 3}}]
    path = write_scenario(tmp_path, small_csv, generators=gens)
    _assert_config_error(
        _suite("validate", str(path)),
        "generators[0].params.bins",
        "'many'",
        "generators[1].params.epochs",
        "uniform has no parameter 'epochs'",
    )


def test_missing_column_in_roles_is_named(tmp_path, small_csv):
    roles = {"identifiers": ["subject_id"], "secrets": ["reslt"]}
    scenario = yaml.safe_load(write_scenario(tmp_path, small_csv).read_text())
    scenario["dataset"]["roles"] = roles
    path = tmp_path / "roles.yaml"
    path.write_text(yaml.safe_dump(scenario))
    _assert_config_error(_suite("run", str(path), "--quiet"), "'reslt'", "did you mean 'result'")
    assert not (tmp_path / "runs").exists(), "a bad dataset must fail before any run folder is made"


def test_missing_dataset_file(tmp_path):
    path = write_scenario(tmp_path, tmp_path / "nowhere.csv")
    _assert_config_error(_suite("validate", str(path)), "dataset.path", "file not found")


def test_missing_scenario_file_and_bad_usage(tmp_path):
    _assert_config_error(_suite("run", str(tmp_path / "absent.yaml")), "scenario file not found")
    assert _suite("frobnicate").returncode == 2


def test_metadata_that_does_not_match_the_table(tmp_path, small_csv):
    md = tmp_path / "md.json"
    md.write_text('{"columns": {"age": {"sdtype": "numerical"}, "weight": {"sdtype": "numerical"}}}')
    scenario = yaml.safe_load(write_scenario(tmp_path, small_csv).read_text())
    scenario["dataset"]["metadata"] = str(md)
    path = tmp_path / "md.yaml"
    path.write_text(yaml.safe_dump(scenario))
    _assert_config_error(_suite("run", str(path), "--quiet"), "md.json", "'weight'")


def test_validate_and_list_succeed(small_csv, tmp_path):
    result = _suite("validate", str(write_scenario(tmp_path, small_csv)))
    assert result.returncode == 0 and "valid" in result.stdout
    listed = _suite("list")
    assert listed.returncode == 0
    for name in ("identity", "holdout", "uniform", "marginals", "sdv.gaussian_copula", "collisions", "dcr", "fidelity"):
        assert name in listed.stdout


@pytest.mark.parametrize("expect, code", [("block", 0), ("release", 1)])
def test_exit_code_follows_expectations_and_the_worst_scenario_wins(tmp_path, small_csv, expect, code):
    gens = [{"name": "marginals"}, {"name": "identity", "expect": expect}]
    path = write_scenario(tmp_path, small_csv, generators=gens)
    result = _suite("run", str(path), "--quiet")
    assert result.returncode == code, result.stderr
    assert "identity" in result.stdout and "block" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [")
    assert _suite("run", str(path), str(bad), "--quiet").returncode == 2
