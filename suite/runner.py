"""Run a resolved plan: fit, sample, check and judge every generator, then build the scorecard."""

from __future__ import annotations

import ctypes
import fnmatch
import json
import numbers
import platform
import re
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache, partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar, TextIO

import pandas as pd
import pydantic_core

from suite.cache import CachedCheckInvalid, TaskCache, content_key, remove_leftovers
from suite.dataset import PreparedData, prepare
from suite.declarations import declared, privacy_checks
from suite.disclosure import Rare
from suite.errors import ConfigError
from suite.executors import execute
from suite.handover import check_recorded
from suite.histories import AsHistories, rows_of_entities
from suite.informative import canaries, settle, unshowable
from suite.io import new_run_dir, sha256_file, write_text_atomic
from suite.metadata import Roles, write_metadata
from suite.neighbors import NeighbourCache
from suite.plan import Component, Plan
from suite.policy import MIN_COUNT, TARGET_PASS_RATE, Status, judge
from suite.power import Power, joint_rate, null_release, powers, render
from suite.processing import Processed, check_constraints, fit_on_data
from suite.registry import RegistryError
from suite.registry import checks as check_registry
from suite.registry import generators as generator_registry
from suite.release import write_released
from suite.scorecard import GeneratorRecord, MeasurementRecord, Scorecard, Summary, explain
from suite.seeding import abandon, fit_with_seed
from suite.selection import CANDIDATE, candidate_confidence, candidates, select
from suite.types import Context, Goal, Measurement, PrivacyClaim, claim_of

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


_TASK_LINE = re.compile(  # "[scenario] key (i/of) repeat r/repeats: step", the tag _run_task writes
    r"^\[[^\]]*\] (?P<key>.+?) \((?P<index>\d+)/(?P<of>\d+)\)"
    r"(?: repeat (?P<repeat>\d+)/(?P<repeats>\d+))?: (?P<step>.*)$"
)
_DONE_LINE = re.compile(r"^\[[^\]]*\] done: (?P<key>.+) repeat (?P<repeat>\d+)/(?P<repeats>\d+)$")
_TO_KEEP = re.compile(r"fail|error|discarded|warning", re.IGNORECASE)  # a task's step worth a line above the bar


class Progress:
    """Progress on a stream (stderr by default): one line per step, or, when the stream is a terminal, a bar of
    the (generator, repeat) tasks done showing the current step, with the other messages printed above it.

    Use it as a context manager so the bar ends cleanly. While a bar runs, a `Progress()` made in the same
    process (a task's own) feeds it; tasks in worker processes print their lines.
    """

    _active: ClassVar[Progress | None] = None

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self._forward = Progress._active if stream is None and enabled else None
        self._bar: Any = None
        self._current: tuple[str, str] | None = None
        self._done: set[tuple[str, str]] = set()

    def __enter__(self) -> Progress:
        if self.enabled and self._forward is None and getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._bar = tqdm(total=None, file=self.stream, unit="task", dynamic_ncols=True, leave=True)
            Progress._active = self
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._finish_current()
            self._bar.set_description_str("done", refresh=False)
            self._bar.close()
            self._bar = None
            Progress._active = None

    def __call__(self, message: str) -> None:
        if self._forward is not None:
            self._forward(message)
        elif self._bar is not None:
            self._show(message)
        elif self.enabled:
            print(message, file=self.stream, flush=True)

    def _show(self, message: str) -> None:
        task, done = _TASK_LINE.match(message), _DONE_LINE.match(message)
        if task is not None:
            repeats = int(task["repeats"] or 1)
            if self._bar.total is None:
                self._bar.total = int(task["of"]) * repeats
            if self._current != (task["key"], task["repeat"] or "1"):
                self._finish_current()  # tasks in this process run one after the other
                self._current = (task["key"], task["repeat"] or "1")
            self._bar.set_description_str(message.split("] ", 1)[-1][:60], refresh=False)
            self._bar.refresh()
            if not _TO_KEEP.search(task["step"]):
                return
        elif done is not None:
            self._mark((done["key"], done["repeat"]))
        else:
            self._finish_current()  # a scenario-level line: the task that ran here has ended
        self._bar.write(message, file=self.stream)

    def _finish_current(self) -> None:
        if self._current is not None:
            self._mark(self._current)
            self._current = None

    def _mark(self, task: tuple[str, str]) -> None:
        if task not in self._done:
            self._done.add(task)
            self._bar.update(1)


@dataclass(frozen=True)
class Execution:
    """How the (generator, repeat) tasks run: where, on how many workers, and whether to reuse a run folder."""

    executor: str = "local"
    workers: int = 1
    address: str | None = None
    resume: Path | None = None  # an existing run folder of the same scenario: finished tasks are reused
    power: bool = True  # before fitting, warn about thresholds a clean release cannot certify (suite.power)
    debug: bool = False  # print a failing library's or plugin's own message and traceback on stderr


@dataclass(frozen=True)
class _TaskInput:
    plan: Plan
    data: PreparedData
    index: int
    repeat: int
    run_dir: Path
    verbose: bool
    debug: bool = False
    #: the run's neighbour searches, shared by its tasks in one process (a worker process starts empty)
    neighbours: NeighbourCache | None = None


@dataclass(frozen=True)
class _TaskOutput:
    measurements: list[Measurement]
    seconds: dict[str, float]
    fit_info: dict[str, Any] | None  # None when the generator failed
    failure: str | None = None  # the generator failed: the one reason its verdict gives for this repeat


RUN_FILE = "run.json"
SCORECARD_FILE = "scorecard.json"  # written by reports.write_json; its presence marks a finished run
DEBUG_HINT = "run with --debug to see the library's message"
NOT_MEASURED = "not measured: the generator failed (see the generator's reasons)"


def run(
    plan: Plan, *, out: Path | None = None, progress: Progress | None = None, execution: Execution | None = None
) -> RunResult:
    """Execute the plan and write the scorecard's inputs into a fresh run folder (or the one resumed)."""
    say = progress or Progress(enabled=False)
    how = execution or Execution()
    sc = plan.scenario
    say(f"[{sc.name}] loading {sc.dataset.path.name}")
    data = prepare_data(plan)
    say(
        f"[{sc.name}] {data.fingerprint['rows']} rows: train {len(data.train)}, holdout control {len(data.control)}, "
        f"holdout reference {len(data.reference)}; dropped before any generator: {', '.join(data.dropped) or 'none'}"
    )
    for i, spec in enumerate(sc.generators):  # before any output exists: a bad rule is bad input
        where = f"{plan.path}: generators[{i}] ({spec.key})"
        check_sequential(plan.generators[i], data, where)
        check_constraints(spec.constraints, data.metadata, where=where)
        try:
            fit_on_data(spec.fit_on, data)
        except ValueError as exc:  # generalize's own words (k above the rows...), no data values
            raise ConfigError(f"{where}: fit_on.generalize: {exc}") from None
        if is_external(plan.generators[i]):  # a table made elsewhere: its maker must have had this split only
            check_recorded(sc.split.record, data, sc.split.model_dump(), where)
        if callable(getattr(plan.generators[i].cls, "preflight", None)):  # inputs a generator reads (a file)
            component = plan.generators[i]
            component.build().preflight(fit_rows(component, data), fit_metadata(component, data))
    if warning := unshowable({**plan.defaults, **plan.policy}, canaries(plan.generators, sc.generators)):
        say(f"[{sc.name}] {warning}")  # before any fit: each gate must prove it can fire (suite.informative)
    # searches that do not involve the release (control to train, candidates to the control pool) are the
    # same for every task and the null release: one cache for the run finds each once (content-keyed)
    neighbours = NeighbourCache(max_mb=256.0)
    warn = how.power and how.resume is None
    yardstick = _yardstick(plan) if warn else None
    if warn and yardstick is None:
        _warn_weak(null_release(plan, data, neighbours=neighbours), sc.name, say)
        neighbours.sweep()  # the first task drops what only the null release used
    scenario_sha256 = sha256_file(plan.path)
    if how.resume is not None:
        run_dir = how.resume
        if _run_info(run_dir)["data_sha256"] != data.fingerprint["sha256"]:
            raise ConfigError(
                f"the data file {sc.dataset.path} changed since this run started; start a new run (its results "
                "would mix two tables)",
                source="--resume",
            )
        left = remove_leftovers(run_dir)
        say(
            f"[{sc.name}] resuming {run_dir}"
            + (f" ({left} temporary file(s) of the interrupted run removed)" if left else "")
        )
    else:
        where = "--out" if out is not None else f"{plan.path}: output"
        run_dir = new_run_dir(out if out is not None else sc.output, sc.name, explicit=out is not None, source=where)
        info = {
            "scenario": str(plan.path),
            "scenario_sha256": scenario_sha256,
            "data_sha256": data.fingerprint["sha256"],
        }
        write_text_atomic(run_dir / RUN_FILE, json.dumps(info, indent=2))
    metadata_file = run_dir / ("metadata.inferred.json" if data.metadata_inferred else "metadata.json")
    write_metadata(data.full_metadata, metadata_file)
    inputs = [
        _TaskInput(plan, data, i, r, run_dir, say.enabled, how.debug, neighbours)
        for i in range(len(plan.generators))
        for r in range(sc.repeats)
    ]
    unloaded = _unloaded_checks(sc.checks == "all")
    outputs: dict[tuple[int, int], _TaskOutput] = {}
    # the yardstick's first task is a null release itself: run first, it gives the warning before any fit
    first = [p for p, t in enumerate(inputs) if (t.index, t.repeat) == (yardstick, 0)]
    swept = False  # the first task's sweep keeps what it made: the searches every task shares
    for phase in (first, [p for p in range(len(inputs)) if p not in first]):
        todo = [inputs[p] for p in phase]
        done = execute(_run_task, todo, executor=how.executor, workers=how.workers, address=how.address) if todo else ()
        for position, output in done:
            task = todo[position]
            outputs[(task.index, task.repeat)] = replace(output, measurements=[*output.measurements, *unloaded])
            if output.failure is None:  # a failed generator ran no check: it used nothing, and says nothing
                # in one process: the shared searches stay (the first task made them), a release's own go
                used = neighbours.in_use()  # a task reused from the run folder ran no check: it made nothing
                neighbours.sweep(keep_fresh=not swept)
                swept = swept or used
            if how.workers > 1 or how.executor != "local":
                say(f"[{sc.name}] done: {sc.generators[task.index].key} repeat {task.repeat + 1}/{sc.repeats}")
        if phase is first and first:
            measured = outputs[(yardstick, 0)]
            if measured.failure is None:
                _warn_weak(powers(plan, measured.measurements), sc.name, say)
            else:  # the yardstick failed: the warning comes from a null release of its own
                _warn_weak(null_release(plan, data, neighbours=neighbours), sc.name, say)
    rare = Rare.of([data.train, data.control, data.reference], data.metadata.discrete, disclosure_min_count(plan))
    outputs = {k: _scrubbed(o, rare) for k, o in outputs.items()}  # no rare level reaches any output file
    for i, spec in enumerate(sc.generators):  # `fit_on`: nor a level rare among the generalised rows
        if spec.fit_on is not None:
            seen = fit_on_data(spec.fit_on, data)[0]
            extra = Rare.of([seen.train, seen.control, seen.reference], seen.metadata.discrete, rare.min_count)
            outputs = {k: _scrubbed(o, extra) if k[0] == i else o for k, o in outputs.items()}
    records = [_record(plan, i, [outputs[(i, r)] for r in range(sc.repeats)], say) for i in range(len(plan.generators))]
    leaks = canaries(plan.generators, sc.generators)  # each gate proves it can fire (suite.informative)
    records, gates = settle(records, leaks, lambda message: say(f"[{sc.name}] {message}"))
    while True:  # a chosen candidate whose table cannot be written blocks, and the next best is chosen
        selection = select(plan, records)
        released, unreleasable = write_released(
            sc,
            plan.generators,
            records,
            run_dir,
            data.fingerprint["sha256"],
            lambda i, r: _judged_sample(plan, data, run_dir, i, r),
            chosen=None if selection is None else selection.chosen,
        )
        records = [_unreleased(r, unreleasable[r.name]) if r.name in unreleasable else r for r in records]
        if not unreleasable:
            break
    for table in released:
        say(f"[{sc.name}] {table.generator}: the judged table is {run_dir / table.file}")
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
        summary=_summary(records, sc, selection),
        generators=records,
        disclosure={
            "min_count": disclosure_min_count(plan),
            "allow_records": sc.report.allow_records,
        },
        selection=selection,
        release=released,
        canaries=leaks,
        gates=gates,
    )
    return RunResult(scorecard=scorecard, run_dir=run_dir)


def trim_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim), after each check and once a run is
    over: a 100k-row check frees hundreds of MB in pieces the allocator would otherwise keep, and the next
    check's peak lands on top (census_100k's peak grew by about 50 MB a task); the reports' figure workers
    start beside what a finished run no longer holds. A no-op where the C library has no malloc_trim."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def _yardstick(plan: Plan) -> int | None:
    """The first generator fitted on the reference half with no `fit_on` transform (the `holdout` yardstick: real
    people that no check compares against): its first task is a release without leakage, as `suite plan`'s null
    release is, so the run need not measure both."""
    for i, (component, spec) in enumerate(zip(plan.generators, plan.scenario.generators, strict=True)):
        if getattr(component.cls, "fit_on", "train") == "reference" and spec.fit_on is None:
            return i
    return None


def _warn_weak(rows: list[Power], name: str, say: Progress) -> None:
    """Print the plan's lines for the gates a release without leakage would not pass 90% of the time, and the
    rate at which it passes them all when that is below 90% (each gate may pass alone: many gates compound)."""
    weak = [p for p in rows if not p.certifiable]
    joint = joint_rate(rows)
    if weak or (joint is not None and joint < TARGET_PASS_RATE):
        say(render(weak or rows, f"[{name}] warning: thresholds this table may not certify", everyone=rows))


def _judged_sample(plan: Plan, data: PreparedData, run_dir: Path, index: int, repeat: int) -> pd.DataFrame | None:
    """The sample a task was judged on, as its cache holds it (None if it could not be kept)."""
    cached = TaskCache(run_dir, task_key(plan, data, index, repeat)).load_sample()
    return None if cached is None else cached[0]


def _unreleased(record: GeneratorRecord, why: str) -> GeneratorRecord:
    """A released generator whose judged table could not be written blocks: nothing else may be shared."""
    return record.model_copy(
        update={
            "verdict": "block",
            "as_expected": record.expected in ("block", CANDIDATE),
            "reasons": [*record.reasons, why],
        }
    )


def prepare_data(plan: Plan) -> PreparedData:
    """The scenario's table loaded, typed and split as every run of it sees it."""
    sc = plan.scenario
    return prepare(
        sc.dataset.path,
        metadata_path=sc.dataset.metadata,
        roles=Roles(**sc.dataset.roles.model_dump()),
        holdout=sc.split.holdout,
        seed=sc.split.seed,
        sheet=sc.dataset.sheet,
    )


def _unloaded_checks(everything: bool) -> list[Measurement]:
    """With `checks: all`, one blocking `<check>.error` per check plugin that could not be loaded:
    a missing check weakens the gate, so it is named in the scorecard rather than skipped."""
    if not everything:
        return []
    return [
        Measurement.from_error(
            f"{name}.error",
            Goal.MINIMIZE,
            f"check plugin {name} could not be loaded: {kind}; `suite list` shows its package and error",
        )
        for name, kind in check_registry.broken_kinds().items()
    ]


def disclosure_min_count(plan: Plan) -> int:
    """The smallest count an output file may show: `report.min_count`, else the preset's."""
    return plan.scenario.report.min_count or MIN_COUNT[plan.scenario.preset]


def _scrubbed(output: _TaskOutput, rare: Rare) -> _TaskOutput:
    fit_info = None if output.fit_info is None else rare.scrub(output.fit_info)
    return replace(output, measurements=rare.measurements(output.measurements), fit_info=fit_info)


def _run_info(run_dir: Path) -> dict[str, str]:
    """run.json of a run folder that `run --resume` can continue: readable, complete, and not finished."""
    info_file = Path(run_dir) / RUN_FILE
    if not info_file.is_file():
        raise ConfigError(
            f"{run_dir} is not a run folder this suite can resume (no {RUN_FILE}); give a folder a run created",
            source="--resume",
        )
    if (Path(run_dir) / SCORECARD_FILE).is_file():
        raise ConfigError(
            f"{run_dir} is a finished run: its results are in {Path(run_dir) / SCORECARD_FILE} and the reports beside "
            "it; resume only continues an interrupted run, so start a new run to compute it again",
            source="--resume",
        )
    keys = ("scenario", "scenario_sha256", "data_sha256")
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        info = None
    if not isinstance(info, dict) or not all(isinstance(info.get(k), str) for k in keys):
        raise ConfigError(
            f"{info_file} is damaged or was written by another version (it needs {', '.join(keys)}); this run "
            "cannot be checked, so start a new run",
            source="--resume",
        )
    return info


def resumable(run_dir: Path) -> Path:
    """The scenario file of a run folder that `run --resume` can continue, checked unchanged."""
    info = _run_info(run_dir)
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
            "processing": {"impute": spec.impute, "constraints": [c.model_dump() for c in spec.constraints]}
            | ({"fit_on": spec.fit_on.model_dump()} if spec.fit_on else {}),
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
    seed = sc.seed + repeat
    cache = TaskCache(task.run_dir, task_key(plan, data, index, repeat))
    data, fit_on_info = fit_on_data(spec.fit_on, data)  # `fit_on`: generator and checks see the de-identified rows
    n = sc.sample_size or len(data.train)
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
        stage = "fit"
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
            stage = "sample"
            say(f"{tag}: sample {n} rows")
            start = time.perf_counter()
            drawn = within(spec.timeout, lambda: generator.sample(n, seed=seed), f"{key} sample")
            synthetic = _conform(drawn, data.train, _rows_expected(component, drawn, n))
            seconds["sample"] += time.perf_counter() - start
            fit_info = {**_fit_info(generator), **fit_on_info}
            del generator  # a copying generator holds the training rows: not kept through the checks
        except BaseException as exc:  # SystemExit included: the generator failed, its checks error, the gate blocks
            _reraise_interrupt(exc)
            failure = f"generator {key} failed during {stage}: {_describe(exc)}; check its params and the metadata"
            say(f"{tag}: {failure}")
            _log(task.debug, f"{tag}: generator {key} failed during {stage}", exc)
            measurements = [m for check in plan.checks for m in _error_measurements(check, NOT_MEASURED)]
            return _TaskOutput(measurements, dict(seconds), None, failure)
        cache.save_sample(synthetic, {"fit_info": fit_info, "seconds": dict(seconds)})
    min_count = disclosure_min_count(plan)
    privacy_confidence = judged_confidence(sc, spec)
    contexts = {
        level: make_context(
            component, data, synthetic, seed=seed, confidence=level, min_count=min_count, neighbours=task.neighbours
        )
        for level in {sc.confidence, privacy_confidence}
    }
    measurements: list[Measurement] = []
    for check in plan.checks:
        confidence = privacy_confidence if check.spec.name in privacy_checks() else sc.confidence
        ctx = contexts[confidence]
        check_key = _check_key(check, seed, confidence, min_count)
        try:
            done = cache.load_check(check_key) if reused else None
        except CachedCheckInvalid as exc:
            say(f"{tag}: {check.spec.name}: {exc}; discarded, computed again")
            done = None
        if done is not None:
            found, spent = done
        else:
            say(f"{tag}: {check.spec.name}")
            start = time.perf_counter()
            found = _evaluate(check, ctx, check.spec.timeout or sc.check_timeout, debug=task.debug, tag=tag)
            spent = time.perf_counter() - start
            cache.save_check(check_key, found, spent)
        measurements += found
        seconds[f"check.{check.spec.name}"] += spent
        trim_memory()
    return _TaskOutput(measurements, dict(seconds), fit_info)


def _record(plan: Plan, index: int, outputs: list[_TaskOutput], say: Progress) -> GeneratorRecord:
    """Judge every repeat of one generator and build its scorecard entry."""
    sc = plan.scenario
    component, spec = plan.generators[index], sc.generators[index]
    key = spec.key
    records: list[MeasurementRecord] = []
    seconds: Counter[str] = Counter()
    fit_info: list[dict[str, Any]] = []
    reasons: list[str] = []
    prefix = (lambda repeat: f"repeat {repeat + 1}: ") if sc.repeats > 1 else (lambda repeat: "")
    for repeat, output in enumerate(outputs):
        seconds.update(output.seconds)
        if output.fit_info is not None:
            fit_info.append({"repeat": repeat, **output.fit_info})
        by_name = {m.name: m for m in output.measurements}
        if output.failure is not None:  # one reason for the failed generator, said once
            reasons.append(prefix(repeat) + output.failure)
        blocking: list[MeasurementRecord] = []
        for j in judge(output.measurements, plan.policy, plan.defaults):
            m = by_name.get(j.measurement)
            unmeasured = output.failure is not None and (m is None or m.error == NOT_MEASURED)
            if unmeasured:
                j = replace(j, reason=f"{j.measurement}: not measured, the generator failed")
            record = MeasurementRecord.build(m, j, repeat)
            records.append(record)
            if record.status.blocks and not unmeasured:
                blocking.append(record)
        reasons += [prefix(repeat) + reason for reason in _reasons(blocking)]
    reasons = list(dict.fromkeys(reasons))
    why, records = explain(records, sc.confidence)
    verdict = "block" if any(r.status.blocks for r in records) else "release"
    say(f"[{sc.name}] {key}: {verdict}" + (f" ({len(reasons)} reason(s))" if reasons else ""))
    return GeneratorRecord(
        name=key,
        generator=spec.name,
        params=component.params,
        source=_source(generator_registry, component),
        verdict=verdict,
        expected=spec.expect,
        as_expected=verdict == spec.expect or spec.expect == CANDIDATE,
        confidence=judged_confidence(sc, spec),
        reasons=reasons,
        why=why,
        measurements=records,
        seconds={k: round(v, 3) for k, v in seconds.items()},
        fit_info=fit_info,
    )


def judged_confidence(scenario: Any, spec: Any) -> float:
    """The one-sided confidence of a generator's privacy gates: the scenario's, split over the candidates
    for a candidate (`suite.selection.candidate_confidence`)."""
    return candidate_confidence(scenario) if spec.expect == CANDIDATE else scenario.confidence


def _reasons(blocking: list[MeasurementRecord]) -> list[str]:
    """One reason per blocking measurement, but a check's error shared by several of its measurements once."""
    names: dict[str, list[str]] = {}
    for r in blocking:
        if r.status is Status.ERROR and r.error:
            names.setdefault(r.error, []).append(r.name)
    out = []
    for r in blocking:
        same = names.get(r.error or "", []) if r.status is Status.ERROR else []
        if len(same) <= 1:
            out.append(r.reason)
        elif r.name == same[0]:
            out.append(f"{', '.join(same)}: the check failed ({r.error})")
    return out


def _fit_info(generator: Any) -> dict[str, Any]:
    """What the generator reports about its fit (`fit_info()`, optional): epochs, a privacy budget
    spent. Made JSON-safe here; a hook that fails is recorded, not raised (the fit itself worked)."""
    hook = getattr(generator, "fit_info", None)
    if not callable(hook):
        return {}
    try:
        return json.loads(json.dumps(hook(), default=str))
    except BaseException as exc:  # noqa: BLE001 - reported in the scorecard
        _reraise_interrupt(exc)
        return {"fit_info_error": f"fit_info() failed: {type(exc).__name__}; {DEBUG_HINT}"}


def is_external(component: Component | None) -> bool:
    """A table made outside the suite (`file`): whatever n is asked, it is the file; nothing can be refitted."""
    return bool(getattr(getattr(component, "cls", None), "external", False))


def is_sequential(component: Component) -> bool:
    """A generator of whole histories (`sequential = True`, like `sdv.par`), fitted on visits."""
    return bool(getattr(component.cls, "sequential", False))


def check_sequential(component: Component, data: PreparedData, where: str) -> None:
    """A sequential generator needs a longitudinal table; it and a `file` of visits take no row-level processing."""
    spec = component.spec
    if is_sequential(component) and data.long is None:
        raise ConfigError(
            f"{where}: {spec.name} generates sequences; set dataset.roles.entity and dataset.roles.sequence_index "
            "(the patient id and the visit time), or choose a row-level generator"
        )
    if learns_visits(component, data) and (
        getattr(spec, "impute", "none") != "none" or getattr(spec, "constraints", None)
    ):
        kind = "a sequential generator" if is_sequential(component) else "a file of visits"
        raise ConfigError(f"{where}: impute and constraints are not available for {kind}")


def fit_rows(component: Component, data: PreparedData) -> pd.DataFrame:
    """The rows a generator is fitted on: train, the reference half for `fit_on = "reference"` (holdout),
    or the training visits with their entity column for a sequential generator."""
    if learns_visits(component, data):
        return data.long.with_entities()  # type: ignore[union-attr]
    return data.reference if getattr(component.cls, "fit_on", "train") == "reference" else data.train


def learns_visits(component: Component, data: PreparedData) -> bool:
    """The generator learns (or, a `file`, returns) visits with their entity, judged as histories."""
    return data.long is not None and (is_sequential(component) or is_external(component))


def fit_metadata(component: Component, data: PreparedData) -> Any:
    """The metadata of `fit_rows`: of the visits (without the entity) or of the records the checks compare."""
    return data.long.metadata if learns_visits(component, data) else data.metadata  # type: ignore[union-attr]


def fit_generator(component: Component, data: PreparedData, seed: int, rows: pd.DataFrame | None = None) -> Any:
    """A fresh generator fitted under the seed, on `rows` or on its own rows (`fit_rows`).

    A generator fitted on other rows than train (`holdout`) ignores `rows`: its output never
    depends on the training data, whatever a shadow attack hands it.
    """
    if is_sequential(component) or learns_visits(component, data):
        return _fit_sequential(component, data, seed, rows)
    own = fit_rows(component, data)
    chosen = rows if rows is not None and own is data.train else own
    generator = component.build()
    spec = component.spec
    if getattr(spec, "impute", "none") != "none" or getattr(spec, "constraints", None):
        generator = Processed(generator, impute=spec.impute, constraints=spec.constraints)
    return fit_with_seed(generator, chosen.copy(), data.metadata, seed)


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
    fitted = fit_with_seed(component.build(), visits, long.metadata, seed)
    return AsHistories(fitted, long.schema, long.entity, exact=not is_external(component))


def interval_level(confidence: float) -> float:
    """The two-sided level whose ends are one-sided bounds at `confidence` (0.95 -> 0.90).

    Each gate is a one-sided test ("risk >= threshold" rejected at the scenario's confidence), so the
    checks compute two-sided intervals at this level and the gate reads the end that matters.
    """
    return 2.0 * confidence - 1.0


def make_context(
    component: Component,
    data: PreparedData,
    synthetic: pd.DataFrame,
    *,
    seed: int,
    confidence: float = 0.95,
    min_count: int = 10,
    neighbours: NeighbourCache | None = None,
) -> Context:
    """The Context every check of one (generator, repeat) sees; its intervals' ends are one-sided bounds at
    `confidence` (the scenario's). `neighbours`: a cache of searches to share (the run's), else a fresh one."""
    return Context(
        train=data.train,
        holdout=data.control,
        synthetic=synthetic,
        metadata=data.metadata,
        seed=seed,
        confidence=interval_level(confidence),
        train_entities=data.train_entities,
        holdout_entities=data.control_entities,
        reference=data.reference,
        reference_entities=data.reference_entities,
        fit_generator=None if is_external(component) else partial(_refit, component, data, seed),
        min_count=min_count,
        rules=tuple(getattr(getattr(component, "spec", None), "constraints", ())),
        privacy_claim=_claim(component),
        neighbours=NeighbourCache() if neighbours is None else neighbours,
    )


def _claim(component: Component | None) -> PrivacyClaim | None:
    """The generator's declared privacy claim; none for a table made outside the suite, or for a sequential
    generator (it refits on whole histories: a row-level audit cannot hand it canary rows)."""
    if component is None or is_external(component) or is_sequential(component):
        return None
    return claim_of(component.build())


def _refit(component: Component, data: PreparedData, seed: int, rows: pd.DataFrame) -> Any:
    return fit_generator(component, data, seed, rows)


def _rows_expected(component: Component, drawn: Any, n: int) -> int:
    """The rows a sample must have: n; a file's own rows (`external`); at most n for a generator that never
    draws a row twice (`at_most_n`, like `generalize`)."""
    count = len(drawn) if hasattr(drawn, "__len__") else n
    if is_external(component) or (getattr(component.cls, "at_most_n", False) and 0 < count <= n):
        return count
    return n


def _conform(synthetic: pd.DataFrame, train: pd.DataFrame, n: int) -> pd.DataFrame:
    """Check a generator's output against the contract: n rows, the training columns."""
    if not isinstance(synthetic, pd.DataFrame):
        raise _Broken(f"sample() returned {type(synthetic).__name__}, not a DataFrame")
    missing = [c for c in train.columns if c not in synthetic.columns]
    extra = [str(c) for c in synthetic.columns if c not in train.columns][:10]
    if missing or extra:
        raise _Broken(f"sample() returned the wrong columns (missing {missing}, unexpected {extra})")
    if len(synthetic) != n:
        raise _Broken(f"sample({n}) returned {len(synthetic)} rows")
    return synthetic[list(train.columns)].reset_index(drop=True)


class _Broken(Exception):
    """A contract the suite checks was broken; the message is the suite's own words (no data values)."""


class _TimedOut(_Broken):
    pass


def _reraise_interrupt(exc: BaseException) -> None:
    """Ctrl-C stops the run; every other exception (SystemExit, GeneratorExit...) is a failure to record."""
    if isinstance(exc, KeyboardInterrupt):
        raise exc


def _describe(exc: BaseException) -> str:
    """An exception in the suite's words: the text of a library or plugin may quote data values, so only
    its type is reported (its message goes to the log with --debug)."""
    if isinstance(exc, _Broken):
        return str(exc)
    return f"{type(exc).__name__}; {DEBUG_HINT}"


def _log(debug: bool, what: str, exc: BaseException) -> None:
    """With --debug, the library's own message and traceback on stderr (never in a report)."""
    if debug and not isinstance(exc, _Broken):
        print(f"{what}; the library's message:", file=sys.stderr, flush=True)
        traceback.print_exception(exc, file=sys.stderr)


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
        abandon(worker)  # its `seeded` blocks must not rewind the global generators under later work
        raise _TimedOut(f"{what} did not finish within its timeout of {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _evaluate(
    check: Component, ctx: Context, timeout: float | None = None, *, debug: bool = False, tag: str = ""
) -> list[Measurement]:
    """Run one check; an exception of any kind (SystemExit included), a timeout, a malformed result or an
    undeclared measurement name becomes an error that blocks. Errors are in the suite's words."""
    name = check.spec.name
    specs = declared(check.cls)
    if ctx.fit_generator is None and specs and all(s.refits for s in specs):  # it only refits: nothing to run
        return _inapplicable(check)
    try:
        measurements = list(within(timeout, lambda: check.build().evaluate(ctx), name))
    except _TimedOut as exc:
        return _error_measurements(check, f"check {name} timed out: {exc}")
    except BaseException as exc:
        _reraise_interrupt(exc)
        _log(debug, f"{tag}: check {name} failed", exc)
        return _error_measurements(check, f"check {name} failed: {_describe(exc)}")
    problems = [_malformed(m) for m in measurements]
    if any(p is not None and not isinstance(getattr(m, "name", None), str) for m, p in zip(measurements, problems)):
        return _error_measurements(check, f"check {name} returned something other than Measurement objects")
    patterns = check.cls.measures
    out = []
    for m, problem in zip(measurements, problems):
        if problem is not None:
            goal = m.goal if isinstance(m.goal, Goal) else Goal.MINIMIZE
            out.append(Measurement.from_error(m.name, goal, f"check {name} returned {problem}"))
        elif not any(fnmatch.fnmatchcase(m.name, p) for p in patterns):
            out.append(
                Measurement.from_error(
                    m.name, m.goal, f"{check.spec.name} produced {m.name!r}, which its `measures` does not declare"
                )
            )
        elif m.not_applicable is not None and not _may_skip(m, specs, ctx):  # fail closed: only a refit may not apply
            why = "it does not declare that it refits" if ctx.fit_generator is None else "the generator can be refitted"
            out.append(Measurement.from_error(m.name, m.goal, f"check {name} called {m.name} not applicable; {why}"))
        else:
            out.append(m)
    return out


def _malformed(m: Any) -> str | None:
    """What is wrong with a check's result, in the suite's words (never the value itself), or None."""
    if not isinstance(m, Measurement) or not isinstance(m.name, str):
        return f"a {type(m).__name__}, not a Measurement"

    def number(v: Any) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool)

    if not number(m.value):
        return f"{m.name} with a value of type {type(m.value).__name__}, not a number"
    if not isinstance(m.goal, Goal):
        return f"{m.name} with a goal that is not a suite.types.Goal"
    if m.ci is not None and not (hasattr(m.ci, "__len__") and len(m.ci) == 2 and all(map(number, m.ci))):
        return f"{m.name} with an interval that is not two numbers"
    if m.baseline is not None and not number(m.baseline):
        return f"{m.name} with a baseline of type {type(m.baseline).__name__}, not a number"
    if not isinstance(m.details, Mapping) or not (m.error is None or isinstance(m.error, str)):
        return f"{m.name} with details that are not a mapping or an error that is not text"
    try:
        pydantic_core.to_json(dict(m.details))  # as the scorecard will write them
    except (pydantic_core.PydanticSerializationError, TypeError, ValueError):
        return f"{m.name} with details the scorecard cannot hold (JSON types only: convert numpy values with .item())"
    return None


def _may_skip(m: Measurement, specs: tuple[Any, ...], ctx: Context) -> bool:
    """A measurement may be `not applicable` only when it refits the generator and this one cannot be refitted."""
    return ctx.fit_generator is None and any(s.refits and s.matches(m.name) for s in specs)


def _inapplicable(check: Component) -> list[Measurement]:
    """A check whose every measurement refits the generator, on one that cannot be refitted (a `file`)."""
    why = f"check {check.spec.name} refits the generator; a table made elsewhere cannot be refitted"
    names = [p for p in check.cls.measures if not any(ch in p for ch in "*?[")] or [f"{check.spec.name}.*"]
    goals = {s.name: s.goal for s in declared(check.cls)}
    return [Measurement.inapplicable(n, goals.get(n) or Goal.MINIMIZE, why) for n in names]


def _error_measurements(check: Component, error: str) -> list[Measurement]:
    names = [p for p in check.cls.measures if not any(ch in p for ch in "*?[")] or [f"{check.spec.name}.error"]
    goals = {name: next((s.goal for s in declared(check.cls) if s.goal and s.matches(name)), None) for name in names}
    return [Measurement.from_error(name, goals[name] or Goal.MINIMIZE, error) for name in names]


def _summary(records: list[GeneratorRecord], scenario: Any, selection: Any) -> Summary:
    """Verdicts against expectations; with candidates, one of them must also be released and selected."""
    counts = Counter(m.status.value for r in records for m in r.measurements)
    tried = candidates(scenario)
    unexpected = [r.name for r in records if not r.as_expected]
    if tried and (selection is None or selection.chosen not in tried):
        unexpected.append(f"no candidate was released and selected (candidates: {', '.join(tried)})")
    return Summary(
        all_as_expected=not unexpected,
        released=[r.name for r in records if r.verdict == "release"],
        blocked=[r.name for r in records if r.verdict == "block"],
        unexpected=unexpected,
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
