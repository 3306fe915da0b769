"""A third-party generator plugs in through its entry point, and the contract kit catches broken generators."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from suite.cli import main
from suite.plan import Component
from suite.registry import generators
from suite.runner import fit_generator
from suite.scenario import GeneratorSpec
from suite.seeding import fit_takes_seed, fit_with_seed, seeded
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


class _ColumnShuffler:
    """Each column drawn on its own from the training values, shifted by an offset the fit draws."""

    name = "test.column_shuffler"

    def __init__(self) -> None:
        pass

    def _draw_offset(self, rng: np.random.Generator) -> None:
        self.offset_ = int(rng.integers(0, 1_000_000))

    def sample(self, n, *, seed):  # noqa: ANN001
        rng = np.random.default_rng(seed + self.offset_)
        return pd.DataFrame(
            {c: self.rows_[c].to_numpy()[rng.integers(0, len(self.rows_), n)] for c in self.rows_.columns}
        ).astype(self.rows_.dtypes.to_dict())


class _SeededFit(_ColumnShuffler):
    """Today's idiom: the fit draws from its `seed` only."""

    def fit(self, train, metadata, *, seed=None):  # noqa: ANN001
        self.rows_ = train.reset_index(drop=True)
        self._draw_offset(np.random.default_rng(seed))
        return self


class _TakesSeedReadsGlobal(_ColumnShuffler):
    """Takes `seed` but draws from numpy's global generator: a fit the seed does not fix."""

    def fit(self, train, metadata, *, seed=None):  # noqa: ANN001
        self.rows_ = train.reset_index(drop=True)
        self.offset_ = int(np.random.randint(0, 1_000_000))
        return self


class _OldStyleReadsGlobal(_TakesSeedReadsGlobal):
    """A plugin written to the older contract: `fit(train, metadata)`, global random state."""

    def fit(self, train, metadata):  # noqa: ANN001
        return super().fit(train, metadata)


SEED_CLAUSES = {"same seed, same rows (refitted)", "fit(seed=) ignores global random state (refitted under another)"}


def test_contract_refuses_a_fit_that_takes_seed_but_reads_global_state():
    assert _failed(_TakesSeedReadsGlobal) & SEED_CLAUSES == {
        "fit(seed=) ignores global random state (refitted under another)"
    }
    assert not _failed(_SeededFit) & SEED_CLAUSES


def test_an_old_style_fit_keeps_working_under_the_global_seed():
    train, metadata = contract_table(600)
    results = {r.clause: r.ok for r in generator_contract(_OldStyleReadsGlobal, train, metadata)}
    assert results["same seed, same rows (refitted)"]
    assert "fit(seed=) ignores global random state (refitted under another)" not in results


def test_fit_with_seed_passes_the_seed_or_seeds_the_global_state():
    train, metadata = contract_table(300)
    assert fit_takes_seed(_SeededFit) and not fit_takes_seed(_OldStyleReadsGlobal())
    new = fit_with_seed(_SeededFit(), train, metadata, 5)
    assert new.offset_ == _SeededFit().fit(train, metadata, seed=5).offset_
    with seeded(5):
        expected = int(np.random.randint(0, 1_000_000))
    state = np.random.get_state()[1].copy()
    assert fit_with_seed(_OldStyleReadsGlobal(), train, metadata, 5).offset_ == expected
    assert (np.random.get_state()[1] == state).all(), "the global state is restored after an old-style fit"


@pytest.mark.parametrize(
    ("name", "params", "draws"),
    [
        ("cart", {}, False),  # the seed only breaks ties between equally good splits
        ("bayesian_network", {"epsilon": None}, False),  # without privacy its fit draws nothing
        ("vae", {"epochs": 2}, True),
        ("forest_flow", {"n_t": 2, "n_estimators": 2}, True),
    ],
)
def test_runner_fits_built_ins_with_the_seed_whatever_the_global_state(name, params, draws, small_data):
    data = small_data
    component = Component(spec=GeneratorSpec(name=name, params=params), cls=generators.get(name), params=params)
    with seeded(1):
        first = fit_generator(component, data, 3).sample(200, seed=0)
    with seeded(2):
        same = fit_generator(component, data, 3).sample(200, seed=0)
    pd.testing.assert_frame_equal(first, same)
    if draws:
        assert not fit_generator(component, data, 4).sample(200, seed=0).equals(first), "the fit's seed must matter"


def test_every_built_in_generator_takes_its_seed_in_fit():
    built_in = [n for n in generators.names() if generators.source(n) == "builtin"]
    assert "marginals" in built_in and "sdv.gaussian_copula" in built_in
    assert [n for n in built_in if not fit_takes_seed(generators.get(n))] == []
