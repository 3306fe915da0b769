"""Fail closed: a check that raises, hangs past its timeout or returns NaN blocks the release, with the reason."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import ClassVar

import pytest

from suite.plan import Component, resolve
from suite.runner import run
from suite.scenario import Spec, load_scenario
from suite.types import Context, Goal, Measurement
from tests.conftest import write_scenario


class Raises:
    name: ClassVar[str] = "raises"
    measures: ClassVar[tuple[str, ...]] = ("raises.risk",)

    def evaluate(self, ctx: Context) -> list[Measurement]:
        raise RuntimeError("the attack model diverged")


class Hangs:
    name: ClassVar[str] = "hangs"
    measures: ClassVar[tuple[str, ...]] = ("hangs.risk",)

    def evaluate(self, ctx: Context) -> list[Measurement]:
        time.sleep(30)
        return [Measurement("hangs.risk", 0.0, Goal.MINIMIZE)]


class NotANumber:
    name: ClassVar[str] = "nan"
    measures: ClassVar[tuple[str, ...]] = ("nan.risk",)

    def evaluate(self, ctx: Context) -> list[Measurement]:
        return [Measurement("nan.risk", float("nan"), Goal.MINIMIZE)]


class Honest:
    name: ClassVar[str] = "honest"
    measures: ClassVar[tuple[str, ...]] = ("honest.risk",)

    def evaluate(self, ctx: Context) -> list[Measurement]:
        return [Measurement("honest.risk", 0.0, Goal.MINIMIZE)]


def _plan(tmp_path, small_csv, check: type, **spec):
    """A run of `holdout` (which every real check releases) with one injected check gated at max 0.1."""
    path = write_scenario(tmp_path, small_csv, generators=[{"name": "holdout"}], checks=["collisions"])
    plan = resolve(*load_scenario(path))
    injected = Component(spec=Spec(name=check.name, **spec), cls=check, params={})
    policy = {**plan.policy, f"{check.name}.risk": {"max": 0.1}}
    from suite.policy import Threshold

    policy = {k: v if isinstance(v, Threshold) else Threshold(**v) for k, v in policy.items()}
    return replace(plan, checks=[*plan.checks, injected], policy=policy)


@pytest.mark.parametrize(
    ("check", "spec", "reason"),
    [
        (Raises, {}, "raises raised RuntimeError: the attack model diverged"),
        (Hangs, {"timeout": 0.5}, "hangs timed out"),
        (NotANumber, {}, "nan.risk: the check returned nan, not a number"),
    ],
)
def test_a_broken_check_blocks_with_its_reason(tmp_path, small_csv, check, spec, reason):
    start = time.perf_counter()
    card = run(_plan(tmp_path, small_csv, check, **spec), out=tmp_path / "o").scorecard
    assert time.perf_counter() - start < 25  # the hanging check did not hold the run
    (g,) = card.generators
    assert g.verdict == "block" and not g.as_expected
    assert any(reason in r for r in g.reasons), g.reasons
    (m,) = [m for m in g.measurements if m.name == f"{check.name}.risk"]
    assert m.status.blocks
    # the real check still ran and passed: only the broken one blocks
    assert next(m for m in g.measurements if m.name == "collisions.excess").status.value == "pass"


def test_the_same_run_releases_with_an_honest_check(tmp_path, small_csv):
    card = run(_plan(tmp_path, small_csv, Honest), out=tmp_path / "o").scorecard
    assert card.generators[0].verdict == "release"


def test_a_scenario_wide_check_timeout_applies_to_every_check(tmp_path, small_csv):
    plan = _plan(tmp_path, small_csv, Hangs)
    plan = replace(plan, scenario=plan.scenario.model_copy(update={"check_timeout": 0.5}))
    card = run(plan, out=tmp_path / "o").scorecard
    assert any("hangs timed out" in r for r in card.generators[0].reasons)


class SlowGenerator:
    """Fits forever (a sleep: nothing global is touched while its abandoned thread lingers)."""

    name: ClassVar[str] = "slow"

    def fit(self, train, metadata):  # noqa: ANN001, ANN201
        time.sleep(30)
        return self

    def sample(self, n: int, *, seed: int):  # noqa: ANN201
        raise AssertionError("never reached")


def test_a_generator_past_its_timeout_blocks(tmp_path, small_csv):
    path = write_scenario(tmp_path, small_csv, generators=[{"name": "marginals", "timeout": 1}], checks=["collisions"])
    plan = resolve(*load_scenario(path))
    slow = Component(spec=plan.generators[0].spec, cls=SlowGenerator, params={})
    start = time.perf_counter()
    card = run(replace(plan, generators=[slow]), out=tmp_path / "o").scorecard
    assert time.perf_counter() - start < 25
    (g,) = card.generators
    assert g.verdict == "block"
    assert any("generator failed" in r and "timeout of 1 s" in r for r in g.reasons), g.reasons
