"""The scenario file: its pydantic schema and a loader whose errors point at the line.

Validation here checks the shape only (no registry, no data), so `suite validate` stays fast;
`suite.plan.resolve` then checks names, parameters and thresholds against the registries.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from suite.constraints import Constraint
from suite.errors import ECHO_LIMIT, ConfigError, brief
from suite.policy import Threshold


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: Seeds numpy, Python and torch all accept.
MAX_SEED = 2**32 - 1
#: The longest timeout: 30 days (a longer one is a typo; Python's thread wait refuses infinity).
MAX_SECONDS = 30 * 24 * 3600.0


def _seed() -> Any:
    return Field(0, ge=0, le=MAX_SEED)


def _timeout() -> Any:
    return Field(None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)


class RolesSpec(_Model):
    identifiers: list[str] = []
    quasi_identifiers: list[str] = []
    secrets: list[str] = []
    target: str | None = None
    entity: str | None = None
    sequence_index: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> RolesSpec:
        from suite.metadata import Roles

        problems = Roles(**self.model_dump()).normalized().problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self


#: Bytes in one file or folder name on Linux, macOS and Windows file systems; a longer name is an OS error.
NAME_MAX = 255


def _usable_path(value: Path | None) -> Path | None:
    """A path the operating system can look up: no NUL byte, no name longer than `NAME_MAX` bytes."""
    if value is None:
        return value
    if "\x00" in str(value):
        raise ValueError("the path holds a NUL byte; write the file's name")
    for part in value.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise ValueError(f"a name in this path is longer than {NAME_MAX} bytes ({brief(part)}); shorten it")
    return value


class DatasetSpec(_Model):
    path: Path
    metadata: Path | None = None
    roles: RolesSpec = RolesSpec()
    sheet: str | int | None = None

    _paths_usable = field_validator("path", "metadata")(_usable_path)

    @field_validator("sheet")
    @classmethod
    def _sheet_counts_from_zero(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, int) and value < 0:
            raise ValueError(f"sheet numbers count from 0 (got {value}); give the sheet's number or its name")
        return value


class SplitSpec(_Model):
    holdout: float = Field(0.3, gt=0.0, lt=1.0, allow_inf_nan=False)
    seed: int = _seed()
    #: The record `suite split` wrote when the training rows were handed to a table's maker; required by
    #: the `file` generator (docs/releasing.md).
    record: Path | None = None


class ReleaseSpec(_Model):
    """The release folder: the format of the judged tables written, and which repeat is released."""

    format: Literal["parquet", "csv"] = "parquet"
    repeat: int = Field(0, ge=0)


class Spec(_Model):
    name: str
    #: Seconds this check (or this generator's fit and sample) may take; past it, it blocks.
    timeout: float | None = _timeout()
    params: dict[str, Any] = {}


class FitOnSpec(_Model):
    """De-identify first (the ODI tutorial): `generalize` (with these params; bands as labels unless
    `representative` says otherwise) is fitted on the training rows, the generator learns its output, and
    the checks compare in the generalised space (docs/generators.md)."""

    generalize: dict[str, Any] = {}


class GeneratorSpec(Spec):
    label: str | None = None
    #: `candidate`: one of several tried, allowed to be blocked; `select` releases the best released one.
    expect: Literal["release", "block", "candidate"] = "release"
    #: Fill missing values before fitting: numbers with scikit-learn's IterativeImputer
    #: (`iterative`) or the median (`simple`), categories with their most frequent value.
    impute: Literal["none", "simple", "iterative"] = "none"
    #: Logical rules the synthetic rows must obey, enforced by rejection sampling.
    constraints: list[Constraint] = []
    #: Fit on a de-identified copy of the training rows instead of the rows themselves.
    fit_on: FitOnSpec | None = None

    @property
    def key(self) -> str:
        """How the scorecard names this generator: its label, else its registry name."""
        return self.label or self.name


class ReportSpec(_Model):
    """What reports may show. `min_count`: categories seen fewer times in the real data are never
    printed (default from the preset: docs/policies.md); `allow_records`: an explicit opt-in to
    reports that show rows of the real data (none do today)."""

    min_count: int | None = Field(None, ge=1)
    allow_records: bool = False


class SelectSpec(_Model):
    """After the gate, name the best released generator by one measurement (its goal decides the direction).

    Calibration generators (identity, holdout, uniform, noisy_copy) never qualify.
    """

    by: str = "utility.tstr_ratio"


class Scenario(_Model):
    version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)  # it names the run folder
    dataset: DatasetSpec
    split: SplitSpec = SplitSpec()
    generators: list[GeneratorSpec] = Field(min_length=1)
    checks: Literal["all"] | list[str | Spec] = "all"
    policy: dict[str, Threshold] = {}
    preset: Literal["default", "strict", "research", "none"] = "default"
    repeats: int = Field(1, ge=1, le=1_000)
    seed: int = _seed()
    sample_size: int | None = Field(None, ge=1, le=100_000_000)
    confidence: float = Field(0.95, gt=0.5, lt=1.0, allow_inf_nan=False)
    output: Path = Path("runs")
    report: ReportSpec = ReportSpec()
    select: SelectSpec | None = None
    release: ReleaseSpec = ReleaseSpec()
    #: Seconds any check may take unless its own `timeout` says otherwise (none: no limit).
    check_timeout: float | None = _timeout()

    @field_validator("checks", mode="before")
    @classmethod
    def _checks_shape(cls, value: Any) -> Any:
        if value == "all":
            return value
        if not isinstance(value, list):
            raise ValueError("expected `all` or a list of check names or {name, params} entries")
        for i, item in enumerate(value):
            if not isinstance(item, (str, dict)):
                raise ValueError(f"item {i}: expected a check name or {{name, params}} (got {brief(item)})")
        return [Spec(name=v) if isinstance(v, str) else v for v in value]

    @model_validator(mode="after")
    def _unique_generator_keys(self) -> Scenario:
        seen: set[str] = set()
        for g in self.generators:
            if g.key in seen:
                raise ValueError(f"two generators are named {g.key!r}; give each a distinct `label`")
            seen.add(g.key)
        return self

    @model_validator(mode="after")
    def _candidates_are_selected(self) -> Scenario:
        if self.select is None and any(g.expect == "candidate" for g in self.generators):
            raise ValueError(
                "a generator has `expect: candidate` but the scenario has no `select`; add `select: {by: ...}` "
                "to choose the candidate to release (docs/releasing.md)"
            )
        return self

    @field_validator("output")
    @classmethod
    def _output_stays_inside(cls, value: Path) -> Path:
        """A scenario may not write outside the folder the run starts in through `..`."""
        _usable_path(value)
        if ".." in value.parts:
            raise ValueError(
                f"{value} climbs out with '..'; name a folder under the working directory, an absolute path, "
                "or pass --out DIR on the command line"
            )
        return value


#: Nesting a scenario may reach (the schema needs about 6 levels; parameters a few more).
MAX_DEPTH = 64
#: Values a scenario may hold once its aliases are expanded: a real one has hundreds; nested aliases
#: ("billion laughs") reach billions from a few hundred bytes.
MAX_NODES = 100_000
_TOO_MANY = f"more than {MAX_NODES:,} values (aliases expanded); a scenario needs far fewer, check nested aliases"


class _ScenarioLoader(yaml.SafeLoader):
    """PyYAML's safe loader with bounds a scenario never needs to cross.

    It refuses a key given twice in one mapping (YAML keeps the last silently), nesting deeper than
    `MAX_DEPTH` (PyYAML composes recursively: 100,000 levels raise RecursionError), more than
    `MAX_NODES` values once aliases are expanded, and an alias inside its own anchor.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self._depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_DEPTH} levels deep; a scenario needs far fewer", mark
            )
        self._nodes += 1
        if self._nodes > MAX_NODES:  # stop early on a huge file; aliases are counted once composed
            raise yaml.composer.ComposerError(None, None, _TOO_MANY, self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None:
            _expanded_size(node, {}, set())
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {brief(key)} appears twice in one mapping (first on line {seen[key]}); merge the two",
                    key_node.start_mark,
                )
            if isinstance(key, str):
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_: set[int]) -> int:
    """How many values `node` holds with every alias expanded; a YAMLError past `MAX_NODES` or on a cycle.

    An alias is the same node object as its anchor, so `sizes` counts each node once (linear time).
    """
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_:
        raise yaml.composer.ComposerError(
            None, None, "an alias refers to the anchor it sits in; a scenario cannot contain itself", node.start_mark
        )
    open_.add(id(node))
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    total = 1 + sum(_expanded_size(child, sizes, open_) for child in children)
    open_.discard(id(node))
    if total > MAX_NODES:
        raise yaml.composer.ComposerError(None, None, _TOO_MANY, node.start_mark)
    sizes[id(node)] = total
    return total


def load_scenario(path: Path | str) -> tuple[Scenario, Path]:
    """Read and validate a scenario file; return it with the file's resolved path.

    Relative dataset and metadata paths are resolved against the scenario's folder.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("scenario file not found", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start}); save the scenario file as UTF-8", source=str(path)
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read scenario file: {exc.strerror}", source=str(path)) from None
    loader = _ScenarioLoader(text)
    try:
        root = loader.get_single_node()
        raw = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = (getattr(exc, "problem", None) or str(exc))[: 4 * ECHO_LIMIT]  # a tag or key can be any length
        raise ConfigError(f"{where}malformed YAML ({problem})", source=str(path)) from None
    finally:
        loader.dispose()
    if not isinstance(raw, dict):
        raise ConfigError(
            "a scenario is a YAML mapping with at least `name`, `dataset` and `generators`", source=str(path)
        )
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError.of(_describe(exc, root), source=str(path)) from None
    base = path.resolve().parent
    dataset = scenario.dataset.model_copy(
        update={
            "path": _under(base, scenario.dataset.path),
            "metadata": _under(base, scenario.dataset.metadata) if scenario.dataset.metadata else None,
        }
    )
    split = scenario.split
    if split.record is not None:
        split = split.model_copy(update={"record": _under(base, split.record)})
    generators = [
        g.model_copy(update={"params": {**g.params, "path": str(_under(base, Path(g.params["path"])))}})
        if g.name == "file" and isinstance(g.params.get("path"), str)
        else g
        for g in scenario.generators
    ]
    if scenario.release.repeat >= scenario.repeats:
        raise ConfigError(
            f"release.repeat: {scenario.release.repeat} names no repeat (the scenario runs {scenario.repeats}; "
            "repeats count from 0)",
            source=str(path),
        )
    update = {"dataset": dataset, "split": split, "generators": generators}
    return scenario.model_copy(update=update), path.resolve()


def _under(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else base / p


def format_loc(loc: tuple[Any, ...]) -> str:
    """`('generators', 1, 'params')` -> `generators[1].params`."""
    out = ""
    for part in loc:
        name = part if isinstance(part, int) or len(str(part)) <= ECHO_LIMIT else brief(part)
        out += f"[{name}]" if isinstance(name, int) else (f".{name}" if out else str(name))
    return out


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its nearest ancestor that exists."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    child = value if not isinstance(value, yaml.ScalarNode) or value.value != "" else key
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through lists, dicts, unions and Annotated), in order."""
    found: list[type[BaseModel]] = []
    pending = [annotation]
    while pending:
        item = pending.pop(0)
        if isinstance(item, type) and issubclass(item, BaseModel):
            found.append(item)
        pending.extend(getattr(item, "__args__", ()))
    return list(dict.fromkeys(found))


def _kind_of(model: type[BaseModel]) -> str | None:
    """The `kind` literal of a constraint model (the discriminator pydantic puts in an error's location)."""
    field = model.model_fields.get("kind")
    values = getattr(field.annotation, "__args__", ()) if field is not None else ()
    return str(values[0]) if len(values) == 1 else None


#: Names pydantic puts in an error's location for the branch of a union; not fields of the file.
_UNION_TAGS = {"str", "int", "float", "Spec", "GeneratorSpec"} | {
    kind for model in _models_in(Constraint) if (kind := _kind_of(model))
}


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or part in _UNION_TAGS)


def _describe(exc: ValidationError, root: yaml.Node | None) -> list[str]:
    errors = exc.errors()
    locs = [tuple(p for p in err["loc"] if not _is_tag(p)) for err in errors]
    lines = []
    for err, loc in zip(errors, locs):
        # A union reports every branch that failed; when a deeper error explains the failure (an unknown
        # key inside `{name, params}`), the branch errors ("Input should be 'all'") are noise.
        branch = any(_is_tag(p) for p in err["loc"])
        if branch and loc and any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs):
            continue
        field = format_loc(loc) or "(top level)"
        line = _line_of(root, loc)
        where = f"line {line}: " if line else ""
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(tuple(err["loc"][:-1]))
            close = difflib.get_close_matches(str(loc[-1])[:ECHO_LIMIT], allowed, n=1, cutoff=0.6)
            message = (
                f"unknown key {brief(loc[-1])}"
                + (f"; did you mean {close[0]!r}?" if close else "")
                + (f"{'' if close else ';'} accepted keys: {', '.join(allowed)}" if allowed else "")
            )
        elif err["type"] == "missing":
            message = "required field is missing"
        elif err["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        elif "input" in err and err["type"] not in {"model_type"}:
            message += f" (got {brief(err['input'])})"
        lines.append(f"{where}{field}: {message}")
    return lines


def _allowed_keys(parent: tuple[Any, ...]) -> list[str]:
    """The accepted keys of the model found at `parent` (a pydantic error location) in the scenario.

    Follows lists (indices), dicts (`policy`: the measurement name is a key, not a field) and
    unions, where the branch pydantic names in the location (`Spec`, a constraint's `kind`) picks the model.
    """
    models: list[type[BaseModel]] = [Scenario]
    dict_key_next = False
    for part in parent:
        if isinstance(part, int) or (isinstance(part, str) and "[" in part):
            continue
        if dict_key_next:
            dict_key_next = False
            continue
        tagged = [m for m in models if part in (m.__name__, _kind_of(m))]
        if tagged and not any(part in m.model_fields for m in models):
            models = tagged
            continue
        field = next((m.model_fields[part] for m in models if part in m.model_fields), None)
        if field is None:
            return []
        models = _models_in(field.annotation)
        dict_key_next = getattr(field.annotation, "__origin__", None) is dict
        if not models:
            return []
    return sorted({f.alias or name for m in models for name, f in m.model_fields.items()})
