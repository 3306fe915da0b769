"""Run a resolved plan: fit, sample, check and judge every generator, then build the scorecard."""

from __future__ import annotations

import fnmatch
import json
import platform
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from suite.cache import TaskCache, content_key, remove_leftovers
from suite.dataset import PreparedData, prepare
from suite.disclosure import Rare
from suite.errors import ConfigError
from suite.executors import execute
from suite.histories import AsHistories, rows_of_entities
from suite.io import new_run_dir, sha256_file, write_text_atomic
from suite.metadata import Roles, write_metadata
from suite.plan import Component, Plan
from suite.policy import MIN_COUNT, judge
from suite.processing import Processed, check_constraints
from suite.registry import RegistryError
from suite.registry import checks as check_registry
from suite.registry import generators as generator_registry
from suite.scorecard import GeneratorRecord, MeasurementRecord, Scorecard, Summary
from suite.seeding import seeded
from suite.selection import select
from suite.types import Context, Goal, Measurement

_PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "sdv",
    "sdmetrics",
    "anonymeter",
    "torch",
    "pydantic",
    "shap",
    "matplotlib",
    "jinja2",
)


@dataclass(frozen=True)
class RunResult:
    scorecard: Scorecard
    run_dir: Path


class Progress:
    """One line per step on a stream (stderr by default): scenario, generator, stage."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(message, file=self.stream, flush=True)


@dataclass(frozen=True)
class Execution:
    """How the (generator, repeat) tasks run: where, on how many workers, and whether to reuse a run folder."""

    executor: str = "local"
    workers: int = 1
    address: str | None = None
    resume: Path | None = None  # an existing run folder of the same scenario: finished tasks are reused


@dataclass(frozen=True)
class _TaskInput:
    plan: Plan
    data: PreparedData
    index: int
    repeat: int
    run_dir: Path
    verbose: bool


@dataclass(frozen=True)
class _TaskOutput:
    measurements: list[Measurement]
    seconds: dict[str, float]
    fit_info: dict[str, Any] | None  # None when the generator failed


RUN_FILE = "run.json"


def run(
    plan: Plan, *, out: Path | None = None, progress: Progress | None = None, execution: Execution | None = None
) -> RunResult:
    """Execute the plan and write the scorecard's inputs into a fresh run folder (or the one resumed)."""
    say = progress or Progress(enabled=False)
    how = execution or Execution()
    sc = plan.scenario
    say(f"[{sc.name}] loading {sc.dataset.path.name}")
    roles = Roles(**sc.dataset.roles.model_dump())
    data = prepare(
        sc.dataset.path,
        metadata_path=sc.dataset.metadata,
        roles=roles,
        holdout=sc.split.holdout,
        seed=sc.split.seed,
        sheet=sc.dataset.sheet,
    )
    say(
        f"[{sc.name}] {data.fingerprint['rows']} rows: train {len(data.train)}, holdout control {len(data.control)}, "
        f"holdout reference {len(data.reference)}; dropped before any generator: {', '.join(data.dropped) or 'none'}"
    )
    for i, spec in enumerate(sc.generators):  # before any output exists: a bad rule is bad input
        where = f"{plan.path}: generators[{i}] ({spec.key})"
        check_sequential(plan.generators[i], data, where)
        check_constraints(spec.constraints, data.metadata, where=where)
    scenario_sha256 = sha256_file(plan.path)
    if how.resume is not None:
        run_dir = how.resume
        left = remove_leftovers(run_dir)
        say(
            f"[{sc.name}] resuming {run_dir}"
            + (f" ({left} temporary file(s) of the interrupted run removed)" if left else "")
        )
    else:
        run_dir = new_run_dir(out if out is not None else sc.output, sc.name)
        write_text_atomic(
            run_dir / RUN_FILE, json.dumps({"scenario": str(plan.path), "scenario_sha256": scenario_sha256}, indent=2)
        )
    metadata_file = run_dir / ("metadata.inferred.json" if data.metadata_inferred else "metadata.json")
    write_metadata(data.full_metadata, metadata_file)
    inputs = [
        _TaskInput(plan, data, i, r, run_dir, say.enabled)
        for i in range(len(plan.generators))
        for r in range(sc.repeats)
    ]
    outputs: dict[tuple[int, int], _TaskOutput] = {}
    for position, output in execute(_run_task, inputs, executor=how.executor, workers=how.workers, address=how.address):
        task = inputs[position]
        outputs[(task.index, task.repeat)] = output
        if how.workers > 1 or how.executor != "local":
            say(f"[{sc.name}] done: {sc.generators[task.index].key} repeat {task.repeat + 1}/{sc.repeats}")
    rare = Rare.of([data.train, data.control, data.reference], data.metadata.discrete, disclosure_min_count(plan))
    outputs = {k: _scrubbed(o, rare) for k, o in outputs.items()}  # no rare level reaches any output file
    records = [_record(plan, i, [outputs[(i, r)] for r in range(sc.repeats)], say) for i in range(len(plan.generators))]
    scorecard = Scorecard(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        scenario={
            "name": sc.name,
            "path": str(plan.path),
            "sha256": scenario_sha256,
            "spec": sc.model_dump(mode="json"),
        },
        dataset=data.fingerprint,
        metadata={
            "inferred": data.metadata_inferred,
            "file": metadata_file.name,
            "dropped_columns": list(data.dropped),
            "columns": {c: s["sdtype"] for c, s in data.metadata.columns.items()},
        },
        policy={**plan.defaults, **plan.policy},
        provenance=_provenance(plan),
        summary=_summary(records),
        generators=records,
        disclosure={
            "min_count": disclosure_min_count(plan),
            "allow_records": sc.report.allow_records,
        },
        selection=select(plan, records),
    )
    return RunResult(scorecard=scorecard, run_dir=run_dir)


def disclosure_min_count(plan: Plan) -> int:
    """The smallest count an output file may show: `report.min_count`, else the preset's."""
    return plan.scenario.report.min_count or MIN_COUNT[plan.scenario.preset]


def _scrubbed(output: _TaskOutput, rare: Rare) -> _TaskOutput:
    fit_info = None if output.fit_info is None else rare.scrub(output.fit_info)
    return _TaskOutput(rare.measurements(output.measurements), output.seconds, fit_info)


def resumable(run_dir: Path) -> Path:
    """The scenario file of a run folder that `run --resume` can continue, checked unchanged."""
    info_file = Path(run_dir) / RUN_FILE
    if not info_file.is_file():
        raise ConfigError(
            f"{run_dir} is not a run folder this suite can resume (no {RUN_FILE}); give a folder a run created",
            source="--resume",
        )
    info = json.loads(info_file.read_text(encoding="utf-8"))
    path = Path(info["scenario"])
    if not path.is_file():
        raise ConfigError(f"the run's scenario file {path} is gone; start a new run", source="--resume")
    if sha256_file(path) != info["scenario_sha256"]:
        raise ConfigError(
            f"the scenario file {path} changed since this run started; start a new run (its results would mix "
            "two scenarios)",
            source="--resume",
        )
    return path


def task_key(plan: Plan, data: PreparedData, index: int, repeat: int) -> str:
    """The content hash a task's cached fit and sample are stored under."""
    sc = plan.scenario
    component, spec = plan.generators[index], sc.generators[index]
    return content_key(
        {
            "data": data.fingerprint["sha256"],
            "split": sc.split.model_dump(mode="json"),
            "metadata": data.full_metadata.to_json_dict(),
            "generator": spec.name,
            "source": _source(generator_registry, component),
            "params": component.params,
            "processing": {"impute": spec.impute, "constraints": [c.model_dump() for c in spec.constraints]},
            "seed": sc.seed + repeat,
            "n": sc.sample_size or len(data.train),
        }
    )


def _check_key(check: Component, seed: int, confidence: float, min_count: int) -> str:
    spec = {"check": check.spec.name, "params": check.params, "seed": seed, "confidence": confidence}
    return content_key({**spec, "min_count": min_count})


def _run_task(task: _TaskInput) -> _TaskOutput:
    """Fit, sample and check one (generator, repeat), reusing what the run folder's cache holds."""
    plan, data, index, repeat = task.plan, task.data, task.index, task.repeat
    say = Progress(enabled=task.verbose)
    sc = plan.scenario
    component, spec = plan.generators[index], sc.generators[index]
    key = spec.key
    n = sc.sample_size or len(data.train)
    seed = sc.seed + repeat
    cache = TaskCache(task.run_dir, task_key(plan, data, index, repeat))
    tag = f"[{sc.name}] {key} ({index + 1}/{len(plan.generators)})" + (
        f" repeat {repeat + 1}/{sc.repeats}" if sc.repeats > 1 else ""
    )
    seconds: Counter[str] = Counter()
    cached = cache.load_sample()
    reused = cached is not None
    if cached is not None:
        synthetic, facts = cached
        fit_info = facts.get("fit_info", {})
        seconds.update(facts.get("seconds", {}))
        say(f"{tag}: fit and sample reused from the run folder")
    else:
        try:
            generator = cache.load_generator()
            if generator is None:
                say(f"{tag}: fit on {len(fit_rows(component, data))} rows")
                start = time.perf_counter()
                generator = within(spec.timeout, lambda: fit_generator(component, data, seed), f"{key} fit")
                seconds["fit"] += time.perf_counter() - start
                cache.save_generator(generator)
            else:
                say(f"{tag}: fitted generator reused from the run folder")
            say(f"{tag}: sample {n} rows")
            start = time.perf_counter()
            drawn = within(spec.timeout, lambda: generator.sample(n, seed=seed), f"{key} sample")
            synthetic = _conform(drawn, data.train, n)
            seconds["sample"] += time.perf_counter() - start
            fit_info = _fit_info(generator)
        except Exception as exc:  # the generator failed: every check errors, the gate blocks
            error = f"generator failed: {type(exc).__name__}: {exc}"
            say(f"{tag}: {error}")
            measurements = [m for check in plan.checks for m in _error_measurements(check, error)]
            return _TaskOutput(measurements, dict(seconds), None)
        cache.save_sample(synthetic, {"fit_info": fit_info, "seconds": dict(seconds)})
    min_count = disclosure_min_count(plan)
    ctx = make_context(component, data, synthetic, seed=seed, confidence=sc.confidence, min_count=min_count)
    measurements: list[Measurement] = []
    for check in plan.checks:
        check_key = _check_key(check, seed, sc.confidence, min_count)
        done = cache.load_check(check_key) if reused else None
        if done is not None:
            found, spent = done
        else:
            say(f"{tag}: {check.spec.name}")
            start = time.perf_counter()
            found = _evaluate(check, ctx, check.spec.timeout or sc.check_timeout)
            spent = time.perf_counter() - start
            cache.save_check(check_key, found, spent)
        measurements += found
        seconds[f"check.{check.spec.name}"] += spent
    return _TaskOutput(measurements, dict(seconds), fit_info)


def _record(plan: Plan, index: int, outputs: list[_TaskOutput], say: Progress) -> GeneratorRecord:
    """Judge every repeat of one generator and build its scorecard entry."""
    sc = plan.scenario
    component, spec = plan.generators[index], sc.generators[index]
    key = spec.key
    records: list[MeasurementRecord] = []
    seconds: Counter[str] = Counter()
    fit_info: list[dict[str, Any]] = []
    for repeat, output in enumerate(outputs):
        seconds.update(output.seconds)
        if output.fit_info is not None:
            fit_info.append({"repeat": repeat, **output.fit_info})
        by_name = {m.name: m for m in output.measurements}
        for j in judge(output.measurements, plan.policy, plan.defaults):
            records.append(MeasurementRecord.build(by_name.get(j.measurement), j, repeat))
    blocking = [r for r in records if r.status.blocks]
    verdict = "block" if blocking else "release"
    prefix = (lambda r: f"repeat {r.repeat + 1}: ") if sc.repeats > 1 else (lambda r: "")
    reasons = list(dict.fromkeys(prefix(r) + r.reason for r in blocking))
    say(f"[{sc.name}] {key}: {verdict}" + (f" ({len(reasons)} reason(s))" if reasons else ""))
    return GeneratorRecord(
        name=key,
        generator=spec.name,
        params=component.params,
        source=_source(generator_registry, component),
        verdict=verdict,
        expected=spec.expect,
        as_expected=verdict == spec.expect,
        reasons=reasons,
        measurements=records,
        seconds={k: round(v, 3) for k, v in seconds.items()},
        fit_info=fit_info,
    )


def _fit_info(generator: Any) -> dict[str, Any]:
    """What the generator reports about its fit (`fit_info()`, optional): epochs, a privacy budget
    spent. Made JSON-safe here; a hook that fails is recorded, not raised (the fit itself worked)."""
    hook = getattr(generator, "fit_info", None)
    if not callable(hook):
        return {}
    try:
        return json.loads(json.dumps(hook(), default=str))
    except Exception as exc:  # noqa: BLE001 - reported in the scorecard
        return {"fit_info_error": f"{type(exc).__name__}: {exc}"}


def is_sequential(component: Component) -> bool:
    """A generator of whole histories (`sequential = True`, like `sdv.par`), fitted on visits."""
    return bool(getattr(component.cls, "sequential", False))


def check_sequential(component: Component, data: PreparedData, where: str) -> None:
    """A sequential generator needs a longitudinal table and takes no row-level processing."""
    spec = component.spec
    if is_sequential(component):
        if data.long is None:
            raise ConfigError(
                f"{where}: {spec.name} generates sequences; set dataset.roles.entity and dataset.roles.sequence_index "
                "(the patient id and the visit time), or choose a row-level generator"
            )
        if getattr(spec, "impute", "none") != "none" or getattr(spec, "constraints", None):
            raise ConfigError(f"{where}: impute and constraints are not available for a sequential generator")


def fit_rows(component: Component, data: PreparedData) -> pd.DataFrame:
    """The rows a generator is fitted on: train, the reference half for `fit_on = "reference"` (holdout),
    or the training visits with their entity column for a sequential generator."""
    if is_sequential(component) and data.long is not None:
        return data.long.with_entities()
    return data.reference if getattr(component.cls, "fit_on", "train") == "reference" else data.train


def fit_generator(component: Component, data: PreparedData, seed: int, rows: pd.DataFrame | None = None) -> Any:
    """A fresh generator fitted under the seed, on `rows` or on its own rows (`fit_rows`).

    A generator fitted on other rows than train (`holdout`) ignores `rows`: its output never
    depends on the training data, whatever a shadow attack hands it.
    """
    if is_sequential(component):
        return _fit_sequential(component, data, seed, rows)
    own = fit_rows(component, data)
    chosen = rows if rows is not None and own is data.train else own
    generator = component.build()
    spec = component.spec
    if getattr(spec, "impute", "none") != "none" or getattr(spec, "constraints", None):
        generator = Processed(generator, impute=spec.impute, constraints=spec.constraints)
    with seeded(seed):
        return generator.fit(chosen.copy(), data.metadata)


def _fit_sequential(component: Component, data: PreparedData, seed: int, rows: pd.DataFrame | None) -> AsHistories:
    """Fit on visits; `rows` (history records, from a shadow attack) are traced back to their entities' visits."""
    check_sequential(component, data, component.spec.name)
    long = data.long
    assert long is not None
    visits = long.with_entities()
    if rows is not None:
        parts = [(data.train, data.train_entities), (data.control, data.control_entities)]
        parts.append((data.reference, data.reference_entities))
        wanted = rows_of_entities(rows, parts)  # type: ignore[arg-type]
        everyone = pd.concat([long.with_entities(k) for k in ("train", "control", "reference")], ignore_index=True)
        by_entity = everyone.groupby(long.entity, sort=False).indices
        # a record drawn twice becomes two entities, as a row drawn twice is two rows
        visits = pd.concat(
            [everyone.iloc[by_entity[e]].assign(**{long.entity: f"shadow-{k}"}) for k, e in enumerate(wanted)],
            ignore_index=True,
        )
    with seeded(seed):
        fitted = component.build().fit(visits, long.metadata)
    return AsHistories(fitted, long.schema, long.entity)


def make_context(
    component: Component,
    data: PreparedData,
    synthetic: pd.DataFrame,
    *,
    seed: int,
    confidence: float = 0.95,
    min_count: int = 10,
) -> Context:
    """The Context every check of one (generator, repeat) sees."""
    return Context(
        train=data.train,
        holdout=data.control,
        synthetic=synthetic,
        metadata=data.metadata,
        seed=seed,
        confidence=confidence,
        train_entities=data.train_entities,
        holdout_entities=data.control_entities,
        reference=data.reference,
        reference_entities=data.reference_entities,
        fit_generator=partial(_refit, component, data, seed),
        min_count=min_count,
    )


def _refit(component: Component, data: PreparedData, seed: int, rows: pd.DataFrame) -> Any:
    return fit_generator(component, data, seed, rows)


def _conform(synthetic: pd.DataFrame, train: pd.DataFrame, n: int) -> pd.DataFrame:
    """Check a generator's output against the contract: n rows, the training columns."""
    if not isinstance(synthetic, pd.DataFrame):
        raise TypeError(f"sample() returned {type(synthetic).__name__}, not a DataFrame")
    missing = [c for c in train.columns if c not in synthetic.columns]
    extra = [c for c in synthetic.columns if c not in train.columns]
    if missing or extra:
        raise ValueError(f"sample() returned the wrong columns (missing {missing}, unexpected {extra})")
    if len(synthetic) != n:
        raise ValueError(f"sample({n}) returned {len(synthetic)} rows")
    return synthetic[list(train.columns)].reset_index(drop=True)


class _TimedOut(Exception):
    pass


def within(seconds: float | None, fn: Callable[[], Any], what: str) -> Any:
    """`fn()`, or `_TimedOut` after `seconds` (None: no limit).

    Python cannot stop a thread: a call past its time is left running in the background (a daemon
    thread) and its result is ignored; the gate has already blocked on it.
    """
    if seconds is None:
        return fn()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"suite-{what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise _TimedOut(f"{what} did not finish within its timeout of {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _evaluate(check: Component, ctx: Context, timeout: float | None = None) -> list[Measurement]:
    """Run one check; an exception, a timeout or an undeclared measurement name becomes an error that blocks."""
    try:
        measurements = list(within(timeout, lambda: check.build().evaluate(ctx), check.spec.name))
    except _TimedOut as exc:
        return _error_measurements(check, f"{check.spec.name} timed out: {exc}")
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return _error_measurements(check, f"{check.spec.name} raised {detail}")
    patterns = check.cls.measures
    out = []
    for m in measurements:
        if not any(fnmatch.fnmatchcase(m.name, p) for p in patterns):
            out.append(
                Measurement.from_error(
                    m.name, m.goal, f"{check.spec.name} produced {m.name!r}, which its `measures` does not declare"
                )
            )
        else:
            out.append(m)
    return out


def _error_measurements(check: Component, error: str) -> list[Measurement]:
    names = [p for p in check.cls.measures if not any(ch in p for ch in "*?[")] or [f"{check.spec.name}.error"]
    return [Measurement.from_error(name, Goal.MINIMIZE, error) for name in names]


def _summary(records: list[GeneratorRecord]) -> Summary:
    counts = Counter(m.status.value for r in records for m in r.measurements)
    return Summary(
        all_as_expected=all(r.as_expected for r in records),
        released=[r.name for r in records if r.verdict == "release"],
        blocked=[r.name for r in records if r.verdict == "block"],
        unexpected=[r.name for r in records if not r.as_expected],
        status_counts=dict(sorted(counts.items())),
    )


def _source(registry: Any, component: Component) -> str:
    """Where a component comes from: its registry entry, or its class for one handed in directly (tests)."""
    try:
        return registry.source(component.spec.name)
    except RegistryError:
        return f"{component.cls.__module__}.{component.cls.__qualname__}"


def _provenance(plan: Plan) -> dict[str, Any]:
    versions = {}
    for package in ("synth-release-gate", *_PACKAGES):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "generators": {c.spec.name: _source(generator_registry, c) for c in plan.generators},
        "checks": {c.spec.name: _source(check_registry, c) for c in plan.checks},
        "split_seed": plan.scenario.split.seed,
        "seeds": [plan.scenario.seed + r for r in range(plan.scenario.repeats)],
    }
