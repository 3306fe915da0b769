"""Resolve a scenario against the registries: every configuration error is found here, before any fit."""

from __future__ import annotations

import difflib
import fnmatch
import importlib.util
import inspect
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, ValidationError, create_model

from suite.declarations import declared, missing_roles
from suite.errors import ConfigError, brief
from suite.metadata import Roles, read_metadata
from suite.policy import Threshold, preset_policy
from suite.registry import RegistryError, checks, generators
from suite.scenario import GeneratorSpec, Scenario, Spec, format_loc
from suite.types import claim_of


@dataclass(frozen=True)
class Component:
    """A registered class with its validated parameters."""

    spec: Spec
    cls: type
    params: dict[str, Any]

    def build(self) -> Any:
        return self.cls(**self.params)


@dataclass(frozen=True)
class Plan:
    scenario: Scenario
    path: Path
    generators: list[Component]
    checks: list[Component]
    policy: dict[str, Threshold]
    defaults: dict[str, Threshold]


def resolve(scenario: Scenario, path: Path) -> Plan:
    """Check names, parameters, optional packages and policy keys; collect every problem at once."""
    problems: list[str] = []
    gens = [_component(generators, g, ("generators", i), problems) for i, g in enumerate(scenario.generators)]
    specs = [Spec(name=n) for n in checks.names()] if scenario.checks == "all" else list(scenario.checks)
    for i, (g, c) in enumerate(zip(scenario.generators, gens)):
        if c is not None and g.expect == "candidate" and getattr(c.cls, "calibration", False):
            problems.append(
                f"generators[{i}].expect: {g.name} is a calibration yardstick, never released; it cannot be a candidate"
            )
    chks = [_component(checks, c, ("checks", i), problems) for i, c in enumerate(specs)]
    for i, c in enumerate(chks):
        if c is not None:
            problems += _fit_budget(c, c.spec.timeout or scenario.check_timeout, format_loc(("checks", i)))
    roles = _known_roles(scenario)
    if roles is not None:
        for i, c in enumerate(chks):
            if c is not None:
                where = f"checks ({c.spec.name})" if scenario.checks == "all" else format_loc(("checks", i))
                found = _role_problems(c, roles, where, from_file=scenario.dataset.metadata is not None)
                suffix = "; or list the checks to run in `checks` (every registered check runs by default)"
                problems += [p + suffix for p in found] if scenario.checks == "all" else found
    produced = [p for c in chks if c is not None for p in c.cls.measures]
    for name in scenario.policy:
        if not any(fnmatch.fnmatchcase(name, p) for p in produced):
            close = difflib.get_close_matches(name, produced, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                f"policy.{name}: no selected check produces this measurement; "
                f"{hint}produced: {', '.join(produced) or 'none'}"
            )
    select = scenario.select
    if select is not None and not any(fnmatch.fnmatchcase(select.by, p) for p in produced):
        close = difflib.get_close_matches(select.by, produced, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        problems.append(f"select.by: no selected check produces {select.by!r}; {hint}name a measurement of a check")
    if any(g.name == "file" for g in scenario.generators) and scenario.split.record is None:
        problems.append(
            "split.record: a `file` generator gates a table made outside the suite, which is fair only if its maker "
            "never saw the holdout; run `suite split SCENARIO --out DIR`, hand over DIR/train.csv, and set "
            "split.record: DIR/split.json (docs/releasing.md)"
        )
    elif scenario.split.record is not None and not scenario.split.record.is_file():
        problems.append(f"split.record: file not found: {scenario.split.record}; run `suite split` first")
    if gens and all(g is not None and getattr(g.cls, "external", False) for g in gens):
        problems += _refit_problems(scenario.policy, [c for c in chks if c is not None])
    if not scenario.dataset.path.is_file():
        problems.append(
            f"dataset.path: file not found: {scenario.dataset.path} (relative paths start at the scenario file)"
        )
    if scenario.dataset.metadata is not None and not scenario.dataset.metadata.is_file():
        problems.append(
            f"dataset.metadata: file not found: {scenario.dataset.metadata} (omit the key to infer the metadata)"
        )
    problems += _fit_on_problems(scenario)
    if not problems:
        problems += _constraint_problems(scenario)
    if problems:
        raise ConfigError.of(problems, source=str(path))
    return Plan(
        scenario=scenario,
        path=path,
        generators=[g for g in gens if g is not None],
        checks=[c for c in chks if c is not None],
        policy=dict(scenario.policy),
        defaults=preset_policy(scenario.preset, produced),
    )


def _refit_problems(policy: dict[str, Threshold], chks: list[Component]) -> list[str]:
    """Thresholds on measurements that refit the generator, in a scenario whose every generator is a table made
    elsewhere: they could only ever be `not applicable`, a gate that never gates."""
    refits = [s for c in chks for s in declared(c.cls) if s.refits]
    return [
        f"policy.{name}: this measurement refits the generator, which no generator of this scenario can be (each is "
        "a table made elsewhere, `file`): it would be `not applicable`, never judged; remove the threshold"
        for name in policy
        if any(s.matches(name) or fnmatch.fnmatchcase(s.name, name) for s in refits)
    ]


def _fit_on_problems(scenario: Scenario) -> list[str]:
    """`fit_on: {generalize: params}`: the params bind to `generalize`; the generator refits on rows (not a file)."""
    from suite.processing import generalize_params

    problems = []
    for i, g in enumerate(scenario.generators):
        if g.fit_on is None:
            continue
        where = f"generators[{i}].fit_on.generalize"
        cls = generators.get(g.name) if g.name in generators.names() else None
        if cls is not None and (getattr(cls, "external", False) or getattr(cls, "sequential", False)):
            problems.append(f"generators[{i}].fit_on: {g.name} does not fit on rows; remove fit_on")
        try:
            validate_params(generators.get("generalize"), generalize_params(g.fit_on), where=where)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def _constraint_problems(scenario: Scenario) -> list[str]:
    """The generators' constraints checked against the metadata file's columns (a run checks them again
    on the data, also when the metadata is inferred)."""
    if scenario.dataset.metadata is None or not any(g.constraints for g in scenario.generators):
        return []
    from suite.metadata import read_metadata
    from suite.processing import check_constraints

    metadata = read_metadata(scenario.dataset.metadata)
    metadata = metadata.without([*metadata.roles.identifiers, *scenario.dataset.roles.identifiers])
    problems = []
    for i, g in enumerate(scenario.generators):
        try:
            check_constraints(g.constraints, metadata, where=f"generators[{i}] ({g.key})")
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def _known_roles(scenario: Scenario) -> Roles | None:
    """The roles known before the data is read: the scenario's, over the metadata file's when one is
    given. None when the metadata file cannot be read (that error is reported when the data is loaded)."""
    scenario_roles = Roles(**scenario.dataset.roles.model_dump()).normalized()
    if scenario.dataset.metadata is None:
        return scenario_roles
    try:
        return read_metadata(scenario.dataset.metadata).roles.merged(scenario_roles)
    except ConfigError:
        return None


def _role_problems(check: Component, roles: Roles, where: str, *, from_file: bool) -> list[str]:
    """One problem per role a check needs that neither the roles nor its params give."""
    out = []
    for need in missing_roles(check.cls, check.params, roles):
        fix = f"set dataset.roles.{need.role}" + (" (or the metadata file's roles)" if from_file else "")
        if need.unless is not None:
            fix += f", or pass `{need.unless}` in the check's params"
        out.append(f"{where}: check {check.spec.name} needs {need} (dataset.roles.{need.role}); {fix}")
    return out


def _component(
    registry: Any, spec: Spec | GeneratorSpec, loc: tuple[Any, ...], problems: list[str]
) -> Component | None:
    where = format_loc(loc)
    try:
        cls = registry.get(spec.name)
    except RegistryError as exc:
        problems.append(f"{where}.name: {exc}")
        return None
    missing = [m for m in getattr(cls, "requires", ()) if importlib.util.find_spec(m) is None]
    if missing:
        problems.append(f"{where}: {spec.name} needs the package(s) {', '.join(missing)}; install them with pip")
        return None
    try:
        params = _validate_params(cls, spec.params)
    except ValidationError as exc:
        for err in exc.errors():
            field = format_loc((*loc, "params", *err["loc"]))
            if err["type"] == "extra_forbidden":
                accepted = ", ".join(_parameters(cls)) or "none"
                close = difflib.get_close_matches(str(err["loc"][-1]), list(_parameters(cls)), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                unknown = brief(err["loc"][-1])
                problems.append(f"{field}: {spec.name} has no parameter {unknown}; {hint}accepted: {accepted}")
            else:
                problems.append(f"{field}: {err['msg']} (got {brief(err.get('input'))})")
        return None
    problems.extend(f"{where}.{p}" for p in getattr(cls, "param_problems", lambda _: [])(params))
    if registry is generators:
        try:  # a declared privacy claim is checked before any fit: the audit and the report read it
            claim_of(cls(**params))
        except (TypeError, ValueError) as exc:
            problems.append(f"{where}.params: {spec.name} declares a malformed privacy claim ({exc}); fix these params")
            return None
    return Component(spec=spec, cls=cls, params=params)


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    return {n: p for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}


def _fit_budget(c: Component, timeout: float | None, where: str) -> list[str]:
    """A check with a time budget (`budget_param`, e.g. the shadow check's `budget_s`) spends at most 80% of
    its timeout unless told otherwise; a budget at or past the timeout would be cut off, so it is an error."""
    param = getattr(c.cls, "budget_param", None)
    if param is None or timeout is None:
        return []
    if param not in c.params:
        c.params[param] = min(_parameters(c.cls)[param].default, 0.8 * timeout)
    elif c.params[param] >= timeout:
        return [
            f"{where}.params.{param}: {c.params[param]:g} s is not below the check's timeout ({timeout:g} s), so the "
            f"check would be cut off and block; lower {param} or raise the timeout"
        ]
    return []


def _validate_params(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """Validate `params` against the constructor's signature and type hints with pydantic."""
    hints = typing.get_type_hints(cls.__init__)
    fields = {
        name: (hints.get(name, Any), ... if p.default is inspect.Parameter.empty else p.default)
        for name, p in _parameters(cls).items()
    }
    model = create_model(
        f"{cls.__name__}Params", __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True), **fields
    )
    validated = model.model_validate(params)
    return {name: getattr(validated, name) for name in params}


def validate_params(cls: type, params: dict[str, Any], *, where: str) -> dict[str, Any]:
    """`_validate_params` with a ConfigError naming `where`, each bad parameter and what is accepted."""
    try:
        return _validate_params(cls, params)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if err["type"] == "extra_forbidden":
                accepted = ", ".join(_parameters(cls)) or "none"
                problems.append(f"no parameter {brief(err['loc'][-1])}; accepted: {accepted}")
            else:
                problems.append(f"{'.'.join(map(str, err['loc']))}: {err['msg']} (got {brief(err.get('input'))})")
        raise ConfigError("; ".join(problems), source=where) from None
