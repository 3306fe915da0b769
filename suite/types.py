"""Core value types and protocols shared by generators, checks and the runner.

Kept free of heavy imports: only the standard library, numpy and pandas.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from typing import Self

    from suite.metadata import Metadata


class Goal(StrEnum):
    """Which direction of a measurement is better."""

    MINIMIZE = "minimize"  # risks, shares of copies
    MAXIMIZE = "maximize"  # fidelity, utility


@dataclass(frozen=True)
class Measurement:
    """One number a check produced, with what is needed to judge and explain it."""

    name: str
    value: float
    goal: Goal
    ci: tuple[float, float] | None = None
    baseline: float | None = None
    meaning: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    not_applicable: str | None = None  # why this measurement cannot be made for this generator (see `inapplicable`)

    def conservative(self) -> float:
        """The worse for the goal of the value and its interval's ends (so a value outside its own
        interval is not hidden by it)."""
        ends = (self.value,) if self.ci is None else (self.value, *self.ci)
        return max(ends) if self.goal is Goal.MINIMIZE else min(ends)

    @classmethod
    def from_error(cls, name: str, goal: Goal, error: str) -> Measurement:
        """A measurement standing for a check that could not run: it blocks the release."""
        return cls(name=name, value=float("nan"), goal=goal, error=error)

    @classmethod
    def inapplicable(cls, name: str, goal: Goal, why: str) -> Measurement:
        """A measurement that refits the generator (its spec says `refits`), asked of one that cannot be refitted
        (a table made elsewhere): listed `not applicable`, neither pass nor block. The runner accepts it only then;
        anywhere else it is an error that blocks."""
        return cls(name=name, value=float("nan"), goal=goal, not_applicable=why)


Kind = Literal["privacy", "utility"]

#: The attack kinds a release needs at least one informative passing gate of (../shared/VERDICTS.md).
#: Distance checks (family `copying`: dcr, collisions) are gates too, but not an attack kind.
ATTACK_KINDS = ("membership", "singling_out", "linkability", "inference")


@dataclass(frozen=True)
class MeasurementSpec:
    """What a check declares about one measurement it emits (or a family of them, by pattern).

    `name` is a name or an fnmatch pattern (`membership.*.auc`). `kind` is "privacy" (a risk an
    attacker could exploit; `family` says which attack: membership, singling_out, linkability,
    inference, copying, ...) or "utility". `bounds` is the range a value can take, when known.
    `scored`: False for a utility measurement that is not a property of the generator (the score
    of a model trained on real rows), left out of the report's utility summary. `refits`: making it
    refits the generator (shadow models, a DP audit), which a table made elsewhere (`file`) cannot be:
    there it is `not applicable` (a check whose every measurement refits is not run at all). `attack`: the attack
    kind (`ATTACK_KINDS`) a gate on it counts for, when it is not the family itself (reconstruction is
    attribute inference). `worst_case`: the gate looks at the few most exposed people (a low false-positive
    rate, exact reconstruction), so it proves it can fire only on a canary that leaks a few people
    (`suite.informative`). `self_audited`: the gate holds a generator to its own promise (a DP audit's
    bound against the claimed epsilon), not to an attacker's success; its positive control is a
    generator with its promise broken, not a leak canary of the run, so the informative rule skips it.
    `no_leak`: what a release without leakage scores in expectation (0 for an excess, 0.5 for an AUC);
    `suite plan` predicts a clean release's pass rate from it and the interval's width.
    """

    name: str
    goal: Goal | None  # None: a plugin's measurement declared by `measures` only (its own goal applies)
    meaning: str
    kind: Kind = "utility"
    family: str | None = None
    bounds: tuple[float, float] | None = None
    scored: bool = True
    refits: bool = False
    attack: str | None = None
    worst_case: bool = False
    self_audited: bool = False
    no_leak: float | None = None

    def matches(self, measurement: str) -> bool:
        return fnmatch.fnmatchcase(measurement, self.name)

    @property
    def attack_kind(self) -> str | None:
        """The attack kind a release needs an informative gate of (None: a distance check, a utility score)."""
        if self.kind != "privacy":
            return None
        kind = self.attack or self.family
        return kind if kind in ATTACK_KINDS else None


@dataclass(frozen=True)
class Need:
    """A role a check cannot run without: `Need("quasi_identifiers", at_least=2, unless="aux_cols")`.

    `unless` names a parameter of the check that supplies the columns instead of the role.
    """

    role: str
    at_least: int = 1
    unless: str | None = None

    def __str__(self) -> str:
        return self.role if self.at_least == 1 else f"at least {self.at_least} {self.role}"


def worst_of(name: str, parts: Mapping[str, Measurement], meaning: str, *, label: str, summary: str) -> Measurement:
    """The part with the highest unfavourable bound (then value), reported under `name` with its interval.

    Gating the worst part's bound is gating every part (an intersection-union test); `details` names the
    part (`label`), lists every part's value and interval (`summary`) and carries the worst part's details.
    """
    key = max(parts, key=lambda k: (parts[k].conservative(), parts[k].value))
    top = parts[key]
    return Measurement(
        name,
        top.value,
        top.goal,
        ci=top.ci,
        baseline=0.0,
        meaning=meaning,
        details={
            label: key,
            summary: {k: {"value": m.value, "ci": list(m.ci or ())} for k, m in parts.items()},
            **dict(top.details),
        },
    )


def privacy(name: str, goal: Goal, family: str, meaning: str, **kw: Any) -> MeasurementSpec:
    """Declare a privacy measurement in one line."""
    return MeasurementSpec(name, goal, meaning, kind="privacy", family=family, **kw)


def utility(name: str, goal: Goal, meaning: str, **kw: Any) -> MeasurementSpec:
    """Declare a utility measurement in one line."""
    return MeasurementSpec(name, goal, meaning, kind="utility", **kw)


def names(specs: tuple[MeasurementSpec, ...]) -> tuple[str, ...]:
    """The names (or patterns) of declared measurements: a built-in check's `measures`."""
    return tuple(s.name for s in specs)


#: What a privacy claim may treat as public (`PrivacyClaim.public`); the audit acts on "domain".
PUBLIC_PARTS = ("n", "domain", "marginals")


@dataclass(frozen=True)
class PrivacyClaim:
    """A generator's differential-privacy claim: (`epsilon`, `delta`)-DP for one `unit` (a row or a person).

    `neighbours`: "replace" (one unit changed, n public: bounded DP) or "add_remove" (one unit added or
    removed). `delta` None means 1/n of the rows fitted on. `public` names what the claim does not
    protect (PUBLIC_PARTS): "n" the row count, "domain" each column's values as read from the data
    (category levels, numeric range, frequent values, precision, which columns have missing values),
    "marginals" each column's distribution; `note` says it in words. A generator declares one through
    `privacy_claim()`, which may return None (no claim: the audit does not apply).
    """

    epsilon: float
    delta: float | None = 0.0
    unit: Literal["row", "person"] = "row"
    neighbours: Literal["replace", "add_remove"] = "replace"
    public: tuple[str, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.epsilon, int | float) and math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ValueError(f"privacy claim: epsilon must be a positive finite number, got {self.epsilon!r}")
        if self.delta is not None and not 0.0 <= self.delta < 1.0:
            raise ValueError(f"privacy claim: delta must be in [0, 1) or None (1/n), got {self.delta!r}")
        if self.unit not in ("row", "person"):
            raise ValueError(f"privacy claim: unit must be 'row' or 'person', got {self.unit!r}")
        if self.neighbours not in ("replace", "add_remove"):
            raise ValueError(f"privacy claim: neighbours must be 'replace' or 'add_remove', got {self.neighbours!r}")
        unknown = [p for p in self.public if p not in PUBLIC_PARTS]
        if unknown:
            raise ValueError(f"privacy claim: unknown public part(s) {unknown}; choose among {list(PUBLIC_PARTS)}")


def claim_of(generator: object) -> PrivacyClaim | None:
    """The generator's declared privacy claim (`privacy_claim()`), None when it declares none."""
    declare = getattr(generator, "privacy_claim", None)
    if not callable(declare):
        return None
    claim = declare()
    if claim is not None and not isinstance(claim, PrivacyClaim):
        raise TypeError(f"privacy_claim() returned {type(claim).__name__}, not a PrivacyClaim or None")
    return claim


@dataclass(frozen=True)
class Context:
    """Everything a check may need, built once per (generator, repeat).

    `holdout` is the control half of the holdout: real records that no generator saw and that
    the `holdout` calibration generator never returns; attacks use it as their non-members
    and their baseline population. `reference` is the other half (what the `holdout`
    generator returns): real unseen records, for example to fit a reference density.
    `train_entities`, `holdout_entities` and `reference_entities` give each row's entity
    when the data has an entity column. `fit_generator` fits a fresh copy of the generator
    under test on another table (shadow-model attacks); it is None where refitting is
    impossible. `min_count` is the report's disclosure threshold (`report.min_count`, or the
    preset's): details name no category level rarer than that and show no real value beyond
    the `min_count`-th smallest or largest (`suite.disclosure`). `rules` are the constraints the
    scenario declares for the generator under test (`suite.constraints.Constraint`), empty when none.
    `privacy_claim` is the generator's declared differential-privacy claim (`claim_of`), None when none.
    `neighbours` holds the task's nearest-neighbour searches so that each is done once
    (`suite.neighbors.cached_nearest`); None searches every time.
    """

    train: pd.DataFrame
    holdout: pd.DataFrame
    synthetic: pd.DataFrame
    metadata: Metadata
    seed: int
    confidence: float = 0.95
    train_entities: pd.Series | None = None
    holdout_entities: pd.Series | None = None
    reference: pd.DataFrame | None = None
    reference_entities: pd.Series | None = None
    fit_generator: Callable[[pd.DataFrame], Generator] | None = None
    min_count: int = 10
    rules: tuple[Any, ...] = ()
    privacy_claim: PrivacyClaim | None = None
    #: the task's neighbour searches, each done once (`suite.neighbors.NeighbourCache`; the runner gives one)
    neighbours: Any = field(default=None, repr=False, compare=False)


@runtime_checkable
class Generator(Protocol):
    """Learns a table and samples a synthetic one with the same columns and dtypes.

    `fit` takes its seed as `sample` does: `fit(train, metadata, *, seed=None)`, and reads no global
    random state. A `fit(train, metadata)` without `seed` (older plugins) still works: the runner fits
    it under `suite.seeding.seeded(seed)` instead.
    """

    name: ClassVar[str]

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> Self: ...

    def sample(self, n: int, *, seed: int) -> pd.DataFrame: ...


@runtime_checkable
class Check(Protocol):
    """An attack or a metric: turns a Context into measurements.

    Built-ins also declare `declares: ClassVar[tuple[MeasurementSpec, ...]]` (what each measurement
    is) and `needs: ClassVar[tuple[Need, ...]]` (the roles it cannot run without), and derive
    `measures` from `declares`; a plugin with `measures` only still works (`suite.declarations`).
    """

    name: ClassVar[str]
    measures: ClassVar[tuple[str, ...]]

    def evaluate(self, ctx: Context) -> list[Measurement]: ...
