"""Fail closed: a generator or check that raises anything (SystemExit included), hangs past its timeout or
returns NaN or a non-number blocks the release, with a reason in the suite's words, and the run goes on."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import suite.registry as registry_module
from suite.cli import main
from suite.plan import Component, resolve
from suite.registry import checks, generators
from suite.runner import Execution, run
from suite.scenario import Spec, load_scenario
from suite.types import Context, Goal, Measurement
from tests.conftest import write_scenario

LEAK = "could not convert string to float: 'asthma'"  # a library message quoting a data value


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


class Exits:
    name: ClassVar[str] = "exits"
    measures: ClassVar[tuple[str, ...]] = ("exits.risk",)

    def evaluate(self, ctx: Context) -> list[Measurement]:
        raise SystemExit(0)


class NoValue:
    name: ClassVar[str] = "novalue"
    measures: ClassVar[tuple[str, ...]] = ("novalue.risk",)

    def evaluate(self, ctx: Context) -> list[Measurement]:
        return [Measurement("novalue.risk", None, Goal.MINIMIZE)]  # type: ignore[arg-type]


class TextValue:
    name: ClassVar[str] = "text"
    measures: ClassVar[tuple[str, ...]] = ("text.risk",)

    def evaluate(self, ctx: Context) -> list[Measurement]:
        return [Measurement("text.risk", "asthma", Goal.MINIMIZE)]  # type: ignore[arg-type]


class NumpyDetails:
    name: ClassVar[str] = "numpy"
    measures: ClassVar[tuple[str, ...]] = ("numpy.risk",)

    def evaluate(self, ctx: Context) -> list[Measurement]:
        return [Measurement("numpy.risk", 0.0, Goal.MINIMIZE, details={"rows": np.int64(len(ctx.train))})]


class Honest:
    name: ClassVar[str] = "honest"
    measures: ClassVar[tuple[str, ...]] = ("honest.risk",)

    def evaluate(self, ctx: Context) -> list[Measurement]:
        return [Measurement("honest.risk", 0.0, Goal.MINIMIZE)]


class Dodges:
    """Calls its gated measurement `not applicable` without declaring a refit: a way to dodge the gate."""

    name: ClassVar[str] = "dodge"
    measures: ClassVar[tuple[str, ...]] = ("dodge.risk",)

    def evaluate(self, ctx: Context) -> list[Measurement]:
        return [Measurement.inapplicable("dodge.risk", Goal.MINIMIZE, "trust me")]


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
        (Raises, {}, "check raises failed: RuntimeError; run with --debug to see the library's message"),
        (Hangs, {"timeout": 0.5}, "hangs timed out"),
        (NotANumber, {}, "nan.risk: the check returned nan, not a number"),
        (Exits, {}, "check exits failed: SystemExit"),
        (Exits, {"timeout": 5}, "check exits failed: SystemExit"),  # raised in the timeout's thread
        (NoValue, {}, "returned novalue.risk with a value of type NoneType, not a number"),
        (TextValue, {}, "returned text.risk with a value of type str, not a number"),
        (NumpyDetails, {}, "returned numpy.risk with details the scorecard cannot hold"),
        (Dodges, {}, "check dodge called dodge.risk not applicable; the generator can be refitted"),
    ],
)
def test_a_broken_check_blocks_with_its_reason(tmp_path, small_csv, check, spec, reason):
    start = time.perf_counter()
    card = run(_plan(tmp_path, small_csv, check, **spec), out=tmp_path / "o").scorecard
    assert time.perf_counter() - start < 25  # the hanging check did not hold the run
    (g,) = card.generators
    assert g.verdict == "block" and not g.as_expected
    assert any(reason in r for r in g.reasons), g.reasons
    text = card.model_dump_json()
    assert "diverged" not in text and "asthma" not in text  # the plugin's own words stay out of the scorecard
    (m,) = [m for m in g.measurements if m.name == f"{check.name}.risk"]
    assert m.status.blocks
    # the real check still ran and passed: only the broken one blocks
    assert next(m for m in g.measurements if m.name == "collisions.excess").status.value == "pass"


class RaisesTwice(Raises):
    name: ClassVar[str] = "twice"
    measures: ClassVar[tuple[str, ...]] = ("twice.risk", "twice.share")


def test_a_failed_check_is_one_reason_however_many_measurements_it_declares(tmp_path, small_csv):
    (g,) = run(_plan(tmp_path, small_csv, RaisesTwice), out=tmp_path / "o").scorecard.generators
    assert [m.status.value for m in g.measurements if m.name.startswith("twice.")] == ["error", "error"]
    assert g.reasons == [
        "twice.risk, twice.share: the check failed (check twice failed: RuntimeError; run with --debug to see the "
        "library's message)"
    ]


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
    assert g.reasons == [
        "generator marginals failed during fit: marginals fit did not finish within its timeout of 1 s; "
        "check its params and the metadata"
    ]


def test_an_abandoned_call_does_not_rewind_the_global_generators_when_it_ends():
    """A fit past its timeout keeps running in its thread; when its `seeded` block ends there, it must not put
    back the global state it found, which by then belongs to later work (a CopulaGAN contract refit drew other
    rows in full test runs, 30 s after a timed-out fit had started)."""
    import threading

    from suite.runner import _TimedOut, within
    from suite.seeding import seeded

    done = threading.Event()

    def slow_fit() -> None:
        with seeded(0):
            time.sleep(0.5)
        done.set()

    with pytest.raises(_TimedOut):
        within(0.05, slow_fit, "slow fit")
    np.random.seed(5)
    first = np.random.random()
    assert done.wait(5)
    second = np.random.random()
    np.random.seed(5)
    assert [first, second] == [np.random.random(), np.random.random()]


class Failing:
    """Fails in `stage` with `error` (set by each test): a generator that breaks, or a library inside it."""

    name: ClassVar[str] = "test.failing"
    error: ClassVar[BaseException] = ValueError(LEAK)
    stage: ClassVar[str] = "fit"

    def __init__(self) -> None:
        pass

    def fit(self, train, metadata):  # noqa: ANN001, ANN201
        if self.stage == "fit":
            raise self.error
        return self

    def sample(self, n: int, *, seed: int):  # noqa: ANN201
        raise self.error


class Leaky:
    """A check whose library fails with a message quoting a data value."""

    name: ClassVar[str] = "test.leaky"
    measures: ClassVar[tuple[str, ...]] = ("test.leaky.risk",)

    def __init__(self) -> None:
        pass

    def evaluate(self, ctx: Context) -> list[Measurement]:
        raise ValueError(LEAK)


@pytest.fixture
def registered():
    """`test.failing` and `test.leaky` registered for the run, removed afterwards."""
    for registry, cls in ((generators, Failing), (checks, Leaky)):
        registry.load()
        registry._add(cls.name, cls, "tests")
    yield
    for registry, cls in ((generators, Failing), (checks, Leaky)):
        del registry._classes[cls.name], registry._sources[cls.name]


def _cli_run(tmp_path, small_csv, checks_=("collisions",), *flags: str) -> tuple[int, Path, dict]:
    tmp_path.mkdir(exist_ok=True)
    path = write_scenario(
        tmp_path, small_csv, generators=[{"name": "test.failing"}, {"name": "holdout"}], checks=list(checks_)
    )
    out = tmp_path / "o"
    code = main(["run", str(path), "--out", str(out), *flags])
    (run_dir,) = list(out.iterdir())
    return code, run_dir, json.loads((run_dir / "scorecard.json").read_text())


@pytest.mark.parametrize(
    ("error", "stage"),
    [(SystemExit(0), "fit"), (GeneratorExit(), "sample"), (type("Custom", (BaseException,), {})(), "fit")],
)
def test_any_exception_in_a_generator_blocks_it_and_the_run_goes_on(
    registered, monkeypatch, tmp_path, small_csv, error, stage
):
    monkeypatch.setattr(Failing, "error", error)
    monkeypatch.setattr(Failing, "stage", stage)
    code, run_dir, card = _cli_run(tmp_path, small_csv, ("collisions",), "--quiet")
    assert code == 1  # test.failing was expected to be released
    failing, holdout = card["generators"]
    assert holdout["verdict"] == "release"  # the other generator was judged
    assert failing["verdict"] == "block"
    kind = type(error).__name__
    assert failing["reasons"] == [
        f"generator test.failing failed during {stage}: {kind}; run with --debug to see the library's message; "
        "check its params and the metadata"
    ]
    assert failing["measurements"] and all(m["status"] == "error" for m in failing["measurements"])
    assert all(m["reason"].endswith("not measured, the generator failed") for m in failing["measurements"])
    report = (run_dir / "report.md").read_text()
    assert report.count(f"failed during {stage}") == 1  # said once, not under every measurement


def test_library_messages_reach_only_the_debug_log(registered, tmp_path, small_csv, capsys):
    """A library's message may quote a data value: reports and the scorecard carry the suite's words only."""
    code, run_dir, card = _cli_run(tmp_path, small_csv, ("collisions", "test.leaky"))
    err = capsys.readouterr().err
    assert code == 1 and "asthma" not in err and "run with --debug to see the library's message" in err
    assert [g["verdict"] for g in card["generators"]] == ["block", "block"]
    assert any("check test.leaky failed: ValueError" in r for r in card["generators"][1]["reasons"])
    for file in run_dir.rglob("*"):
        assert not file.is_file() or b"asthma" not in file.read_bytes(), file
    _, run_dir, _ = _cli_run(tmp_path / "debug", small_csv, ("collisions", "test.leaky"), "--quiet", "--debug")
    err = capsys.readouterr().err
    assert err.count(LEAK) >= 2 and "failed during fit; the library's message" in err  # generator and check
    for file in run_dir.rglob("*"):
        assert not file.is_file() or b"asthma" not in file.read_bytes(), file


class ExitsInFit:
    """SystemExit(0) in fit, in a worker process (the class must be importable there)."""

    name: ClassVar[str] = "marginals"

    def fit(self, train, metadata):  # noqa: ANN001, ANN201
        raise SystemExit(0)

    def sample(self, n: int, *, seed: int):  # noqa: ANN201
        raise AssertionError("never reached")


@pytest.mark.slow  # spawns two worker processes (~15 s); the task's code is the one tested above
def test_system_exit_in_a_worker_process_blocks_only_its_generator(tmp_path, small_csv):
    path = write_scenario(
        tmp_path, small_csv, generators=[{"name": "marginals"}, {"name": "holdout"}], checks=["collisions"]
    )
    plan = resolve(*load_scenario(path))
    exits = Component(spec=plan.generators[0].spec, cls=ExitsInFit, params={})
    plan = replace(plan, generators=[exits, plan.generators[1]])
    card = run(plan, out=tmp_path / "o", execution=Execution(workers=2)).scorecard
    assert [g.verdict for g in card.generators] == ["block", "release"]
    assert card.generators[0].reasons[0].startswith("generator marginals failed during fit: SystemExit;")


@pytest.fixture
def broken_check_plugin(monkeypatch):
    """An installed check plugin whose import fails."""

    def boom():
        raise ImportError("No module named 'acme_heavy'")

    ep = type("EP", (), {"name": "acme.attack", "value": "acme:Attack", "dist": None, "load": staticmethod(boom)})
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [ep] if group == "suite.checks" else [])
    checks.refresh()
    yield
    monkeypatch.undo()
    checks.refresh()


def test_a_check_plugin_that_does_not_load_blocks_every_generator_with_checks_all(
    broken_check_plugin, tmp_path, small_csv
):
    path = write_scenario(tmp_path, small_csv, generators=[{"name": "holdout"}], checks="all")
    plan = resolve(*load_scenario(path))
    assert plan.scenario.checks == "all"
    plan = replace(plan, checks=[c for c in plan.checks if c.spec.name == "collisions"])  # keep the run short
    (g,) = run(plan, out=tmp_path / "o").scorecard.generators
    assert g.verdict == "block"
    (m,) = [m for m in g.measurements if m.name == "acme.attack.error"]
    assert m.status.value == "error" and "could not be loaded: ImportError" in m.error
    assert "acme_heavy" not in m.error
    assert any("check plugin acme.attack could not be loaded" in r for r in g.reasons)


def test_only_a_declared_refit_on_a_generator_that_cannot_be_refitted_is_not_applicable(small_data):
    """A check that only refits is not run on a file (no fit_generator); a plugin that calls a measurement
    `not applicable` without declaring a refit gets an error that blocks."""
    from suite.runner import _evaluate
    from suite.types import privacy

    class Refits:
        name: ClassVar[str] = "refits"
        declares = (privacy("refits.epsilon", Goal.MINIMIZE, "membership", "an audit", refits=True),)
        measures: ClassVar[tuple[str, ...]] = ("refits.epsilon",)

        def evaluate(self, ctx: Context) -> list[Measurement]:
            raise AssertionError("never run without a refit")

    d = small_data
    ctx = Context(train=d.train, holdout=d.control, synthetic=d.reference, metadata=d.metadata, seed=0)
    (m,) = _evaluate(Component(spec=Spec(name="refits"), cls=Refits, params={}), ctx)
    assert m.name == "refits.epsilon" and m.error is None and "cannot be refitted" in m.not_applicable
    (m,) = _evaluate(Component(spec=Spec(name="dodge"), cls=Dodges, params={}), ctx)
    assert m.not_applicable is None and "does not declare that it refits" in m.error
