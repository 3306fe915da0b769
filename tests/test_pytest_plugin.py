"""The pytest plugin a generator package uses: one line runs the contract, one line gates a scenario."""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_scenario

pytest_plugins = ["pytester"]

INNER = '''
import pandas as pd


class Copier:
    """Returns training rows: it breaks the contract's copy clause."""

    name = "acme.copier"

    def __init__(self) -> None:
        pass

    def fit(self, train: pd.DataFrame, metadata) -> "Copier":
        self.train_ = train.copy()
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        if not hasattr(self, "train_"):
            raise RuntimeError("call fit before sample")
        return self.train_.sample(n, replace=True, random_state=seed).reset_index(drop=True)


def test_example_plugin_keeps_the_contract(suite_contract):
    suite_contract("example.shuffled_marginals", params=dict(jitter=0.1))  # found through its entry point


def test_copier_breaks_the_contract(suite_contract):
    suite_contract(Copier)


def test_gate_as_expected(suite_gate):
    card = suite_gate(r"{clean}")
    assert [g["verdict"] for g in card["generators"]] == ["release", "block"]


def test_gate_fails_on_a_leak(suite_gate):
    suite_gate(r"{leaky}")
'''


def test_the_fixtures_pass_a_clean_generator_and_fail_a_leaking_one(
    pytester: pytest.Pytester, small_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = write_scenario(tmp_path, small_csv, name="clean", checks=["collisions"])
    leaky = write_scenario(tmp_path, small_csv, name="leaky", checks=["collisions"], generators=[{"name": "identity"}])
    # A fresh interpreter, as the plugin package's CI runs it: this checkout's suite and the example package, unchanged.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "tests" / "plugin_example")]))
    pytester.makepyfile(test_acme=INNER.format(clean=clean, leaky=leaky))
    # Installed (pip install -e .), pytest loads the plugin through its pytest11 entry point; from a bare checkout, -p.
    autoloaded = any(ep.value == "suite.pytest_plugin" for ep in entry_points(group="pytest11"))
    plugin = [] if autoloaded else ["-p", "suite.pytest_plugin"]
    result = pytester.runpytest_subprocess(*plugin, "-p", "no:cacheprovider", timeout=600)
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    assert "test_copier_breaks_the_contract" in out and "copies no training row" in out
    assert "- identity: block (expected release)" in out
    failed = {line.split("::")[1].split()[0] for line in result.outlines if line.startswith("FAILED")}
    assert failed == {"test_copier_breaks_the_contract", "test_gate_fails_on_a_leak"}


def _doc_block(first_line: str) -> str:
    """The fenced block of docs/plugins.md whose first line is `first_line`."""
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    return next(b.split("\n", 1)[1] for b in text.split("```")[1::2] if b.split("\n", 1)[1].startswith(first_line))


def test_the_documented_ci_scenario_validates_for_a_plugin_generator(tmp_path: Path, monkeypatch) -> None:
    import shutil
    from importlib.resources import files

    from suite.cli import main
    from suite.registry import generators

    scenario = _doc_block("# tests/gate.yaml")
    scenario = scenario.replace("acme.bootstrap, params: {smoothing: 0.2}", "example.shuffled_marginals")
    for name in ("covid_testing.parquet", "covid_testing.metadata.json"):  # as the documented workflow copies them
        shutil.copy(files("suite.data") / name, tmp_path)
    (tmp_path / "gate.yaml").write_text(scenario)
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugin_example"))
    generators.refresh()
    try:
        assert main(["validate", str(tmp_path / "gate.yaml")]) == 0
    finally:
        monkeypatch.undo()
        generators.refresh()


def test_every_public_name_is_documented_and_reexported() -> None:
    import importlib

    import suite.api

    doc = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8").split("## The public API")[1].split("\n## ")[0]
    for name in suite.api.__all__:
        assert f"`{name}`" in doc, f"suite.api.{name} is not in docs/plugins.md's API table"
        row = next(line for line in doc.splitlines() if f"`{name}`" in line and line.startswith("|"))
        home = row.split("|")[2].strip().strip("`")
        assert getattr(importlib.import_module(home), name) is getattr(suite.api, name)
