"""A third-party generator plugs in through its entry point, and the contract kit catches broken generators."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from suite.cli import main
from suite.registry import generators
from suite.testing import contract_table, generator_contract
from tests.conftest import ROOT, write_scenario

PLUGIN = ROOT / "tests" / "plugin_example"


@pytest.fixture
def plugin(monkeypatch):
    """The example package on sys.path, as `pip install` would put it (package plus dist-info)."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    generators.refresh()
    yield
    monkeypatch.undo()
    sys.modules.pop("suite_plugin_example", None)
    generators.refresh()


def test_plugin_is_listed_with_its_package(plugin, capsys):
    assert main(["list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "example.shuffled_marginals" in x)
    assert "suite-plugin-example==0.1.0" in line


def test_plugin_runs_from_a_scenario_and_passes_the_contract(plugin, tmp_path, small_csv, capsys):
    path = write_scenario(
        tmp_path, small_csv, generators=[{"name": "example.shuffled_marginals", "params": {"jitter": 0.1}}]
    )
    assert main(["run", str(path), "--quiet"]) in (0, 1)
    assert "example.shuffled_marginals" in capsys.readouterr().out
    assert main(["check-generator", "example.shuffled_marginals", "--rows", "600"]) == 0
    assert "15 of 15 contract clauses hold" in capsys.readouterr().out


class _Copier:
    name = "test.copier"

    def __init__(self) -> None:
        pass

    def fit(self, train, metadata):  # noqa: ANN001
        self.rows_ = train.reset_index(drop=True)
        return self

    def sample(self, n, *, seed):  # noqa: ANN001
        return self.rows_.sample(n=n, replace=True, random_state=seed).reset_index(drop=True)


class _Sloppy(_Copier):
    """Loses dtypes, invents a category, forgets missing values, ignores its seed and samples unfitted."""

    name = "test.sloppy"

    def fit(self, train, metadata):  # noqa: ANN001
        self.rows_ = train.reset_index(drop=True)
        return self

    def sample(self, n, *, seed):  # noqa: ANN001
        frame = self.rows_.head(1).copy() if hasattr(self, "rows_") else pd.DataFrame()
        frame = pd.concat([frame] * n, ignore_index=True).ffill().bfill().astype(str)
        if "gender" in frame:
            frame.loc[0, "gender"] = "invented"
        return frame


def _failed(cls, **kw):
    train, metadata = contract_table(600)
    return {r.clause for r in generator_contract(cls, train, metadata, **kw) if not r.ok}


def test_contract_catches_a_copier():
    assert _failed(_Copier) == {"copies no training row wholesale", "refuses to sample before fit"}


def test_contract_catches_a_sloppy_generator():
    failed = _failed(_Sloppy)
    assert {
        "same dtypes",
        "categories inside the training domain",
        "missing values kept",
        "another seed, other rows",
        "refuses to sample before fit",
        "dates come back as dates",
    } <= failed


def test_check_generator_command_reports_bad_params():
    assert main(["check-generator", "marginals", "--params", '{"binz": 3}']) == 2
    assert main(["check-generator", "marginals", "--params", "[1]"]) == 2
    assert main(["check-generator", "no.such.generator"]) == 2
