"""pytest plugin (entry point `pytest11`, active once the suite is installed): the gate in a plugin's own tests.

def test_contract(suite_contract):
    suite_contract(MyGenerator, params={"smoothing": 0.2})  # or a registered name: "acme.bootstrap"

def test_does_not_leak(suite_gate):
    suite_gate("tests/gate.yaml")  # every generator's verdict must equal its `expect` (release by default)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def run_contract(generator: type | str, *, params: dict[str, Any] | None = None, rows: int = 1_500) -> None:
    """The generator contract on the shipped data (visits for a sequential generator), as `check-generator`
    runs it; fails with every clause that does not hold. A name is looked up in the registry (entry points)."""
    from suite.registry import generators
    from suite.testing import check_generator, contract_data_for

    cls = generators.get(generator) if isinstance(generator, str) else generator
    train, metadata = contract_data_for(cls, rows)
    check_generator(cls, train, metadata, params=params)


def run_gate(scenario: str | Path, out: Path) -> dict[str, Any]:
    """`suite run scenario` into `out`; fails unless every generator's verdict equals its `expect`
    (exit 0), with each generator's verdict and reasons. Returns the scorecard as a dict."""
    from suite.cli import main
    from suite.reports import read_json

    Path(out).mkdir(parents=True, exist_ok=False)  # one scenario's run folder per `out`
    code = main(["run", str(scenario), "--out", str(out), "--quiet"])
    cards = list(Path(out).glob("*/scorecard.json"))
    assert len(cards) == 1, f"suite run {scenario} wrote no scorecard (exit {code}); run it by hand to see why"
    card = read_json(cards[0])
    lines = [f"- {g.name}: {g.verdict} (expected {g.expected}): {'; '.join(g.reasons)}" for g in card.generators]
    assert code == 0, f"suite run {scenario} exited {code}:\n" + "\n".join(lines)
    return card.model_dump(mode="json")


@pytest.fixture
def suite_contract() -> Callable[..., None]:
    """`suite_contract(MyGenerator)`: the generator contract on the shipped data (see `run_contract`)."""
    return run_contract


@pytest.fixture
def suite_gate(tmp_path: Path) -> Callable[[str | Path], dict[str, Any]]:
    """`suite_gate("gate.yaml")`: run a scenario, fail unless every verdict is as expected (see `run_gate`)."""
    calls = itertools.count()
    return lambda scenario: run_gate(scenario, tmp_path / f"suite-run-{next(calls)}")
