"""The same scenario, data and seeds give the same measurements."""

from __future__ import annotations

import pytest

from suite.cli import main
from suite.reports import read_json
from tests.conftest import quickstart_utility, write_scenario

#: Every check but the anonymeter attacks, whose seeding has its own test (tests/test_attacks_anonymeter.py).
CHECKS = ["collisions", "dcr", "fidelity", "membership"]


def _values(scorecard):
    return [(g.name, m.name, m.repeat, m.value, m.ci, m.status) for g in scorecard.generators for m in g.measurements]


def _run(scenario, out):
    # 0 or 1: what must agree is every measurement and status (on 3,000 rows some gates are `not shown safe`)
    assert main(["run", str(scenario), "--out", str(out), "--quiet"]) in (0, 1)
    (run_dir,) = out.iterdir()
    return read_json(run_dir / "scorecard.json")


def test_two_runs_with_the_same_seeds_agree(tmp_path, small_csv):
    gens = [{"name": "marginals"}, {"name": "sdv.gaussian_copula"}, {"name": "identity", "expect": "block"}]
    scenario = write_scenario(tmp_path, small_csv, generators=gens, checks=CHECKS, repeats=2)
    first, second = _run(scenario, tmp_path / "a"), _run(scenario, tmp_path / "b")
    assert _values(first) == _values(second)
    assert {m.repeat for g in first.generators for m in g.measurements} == {0, 1}
    other = write_scenario(tmp_path, small_csv, name="other", generators=gens, checks=CHECKS, repeats=2, seed=1)
    assert _values(_run(other, tmp_path / "c")) != _values(first), "the seed must matter"


@pytest.mark.slow
def test_quickstart_is_reproducible_end_to_end(tmp_path, quickstart_run):
    assert _values(_run(quickstart_utility(tmp_path), tmp_path / "runs")) == _values(quickstart_run[2])
