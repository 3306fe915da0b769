"""The scenario file: its pydantic schema and a loader whose errors point at the line.

Validation here checks the shape only (no registry, no data), so `suite validate` stays fast;
`suite.plan.resolve` then checks names, parameters and thresholds against the registries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from suite.errors import ConfigError
from suite.policy import Threshold


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RolesSpec(_Model):
    identifiers: list[str] = []
    quasi_identifiers: list[str] = []
    secrets: list[str] = []
    target: str | None = None
    entity: str | None = None
    sequence_index: str | None = None


class DatasetSpec(_Model):
    path: Path
    metadata: Path | None = None
    roles: RolesSpec = RolesSpec()
    sheet: str | int | None = None


class SplitSpec(_Model):
    holdout: float = Field(0.3, gt=0.0, lt=1.0)
    seed: int = 0


class Spec(_Model):
    name: str
    #: Seconds this check (or this generator's fit and sample) may take; past it, it blocks.
    timeout: float | None = Field(None, gt=0)
    params: dict[str, Any] = {}


class RangeConstraint(_Model):
    """Values of `column` within [min, max] (either end optional)."""

    kind: Literal["range"]
    column: str
    min: float | None = None
    max: float | None = None


class InequalityConstraint(_Model):
    """`low` <= `high` row by row (< with `strict`); rows missing either value comply."""

    kind: Literal["inequality"]
    low: str
    high: str
    strict: bool = False


class FixedCombinationsConstraint(_Model):
    """Only combinations of `columns` that occur in the training data."""

    kind: Literal["fixed_combinations"]
    columns: list[str] = Field(min_length=2)


Constraint = Annotated[
    RangeConstraint | InequalityConstraint | FixedCombinationsConstraint, Field(discriminator="kind")
]


class GeneratorSpec(Spec):
    label: str | None = None
    expect: Literal["release", "block"] = "release"
    #: Fill missing values before fitting: numbers with scikit-learn's IterativeImputer
    #: (`iterative`) or the median (`simple`), categories with their most frequent value.
    impute: Literal["none", "simple", "iterative"] = "none"
    #: Logical rules the synthetic rows must obey, enforced by rejection sampling.
    constraints: list[Constraint] = []

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
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    dataset: DatasetSpec
    split: SplitSpec = SplitSpec()
    generators: list[GeneratorSpec] = Field(min_length=1)
    checks: Literal["all"] | list[str | Spec] = "all"
    policy: dict[str, Threshold] = {}
    preset: Literal["default", "strict", "research", "none"] = "default"
    repeats: int = Field(1, ge=1)
    seed: int = 0
    sample_size: int | None = Field(None, ge=1)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    output: Path = Path("runs")
    report: ReportSpec = ReportSpec()
    select: SelectSpec | None = None
    #: Seconds any check may take unless its own `timeout` says otherwise (none: no limit).
    check_timeout: float | None = Field(None, gt=0)

    @field_validator("checks", mode="before")
    @classmethod
    def _checks_shape(cls, value: Any) -> Any:
        if value == "all":
            return value
        if not isinstance(value, list):
            raise ValueError("expected `all` or a list of check names or {name, params} entries")
        for i, item in enumerate(value):
            if not isinstance(item, (str, dict)):
                raise ValueError(f"item {i}: expected a check name or {{name, params}} (got {item!r})")
        return [Spec(name=v) if isinstance(v, str) else v for v in value]

    @model_validator(mode="after")
    def _unique_generator_keys(self) -> Scenario:
        seen: set[str] = set()
        for g in self.generators:
            if g.key in seen:
                raise ValueError(f"two generators are named {g.key!r}; give each a distinct `label`")
            seen.add(g.key)
        return self

    @field_validator("output")
    @classmethod
    def _output_stays_inside(cls, value: Path) -> Path:
        """A scenario may not write outside the folder the run starts in through `..`."""
        if ".." in value.parts:
            raise ValueError(
                f"{value} climbs out with '..'; name a folder under the working directory, an absolute path, "
                "or pass --out DIR on the command line"
            )
        return value


def load_scenario(path: Path | str) -> tuple[Scenario, Path]:
    """Read and validate a scenario file; return it with the file's resolved path.

    Relative dataset and metadata paths are resolved against the scenario's folder.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("scenario file not found", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read scenario file: {exc.strerror}", source=str(path)) from None
    try:
        raw = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}malformed YAML ({problem})", source=str(path)) from None
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
    return scenario.model_copy(update={"dataset": dataset}), path.resolve()


def _under(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else base / p


def format_loc(loc: tuple[Any, ...]) -> str:
    """`('generators', 1, 'params')` -> `generators[1].params`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
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


#: Names pydantic puts in an error's location for the branch of a union; not fields of the file.
_UNION_TAGS = {"str", "int", "float", "Spec", "GeneratorSpec"}


def _describe(exc: ValidationError, root: yaml.Node | None) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in _UNION_TAGS)))
        field = format_loc(loc) or "(top level)"
        line = _line_of(root, loc)
        where = f"line {line}: " if line else ""
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            message = f"unknown key {loc[-1]!r}" + (f"; accepted keys: {', '.join(allowed)}" if allowed else "")
        elif err["type"] == "missing":
            message = "required field is missing"
        elif err["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        elif "input" in err and err["type"] not in {"model_type"}:
            message += f" (got {err['input']!r})"
        lines.append(f"{where}{field}: {message}")
    return lines


def _allowed_keys(parent: tuple[Any, ...]) -> list[str]:
    """The accepted keys of the model found at `parent` in the scenario."""
    model: type[BaseModel] | None = Scenario
    for part in parent:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        for arg in list(candidates):
            candidates.extend(getattr(arg, "__args__", ()))
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return sorted(model.model_fields) if model else []
