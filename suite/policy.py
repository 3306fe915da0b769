"""Thresholds and judgements: the verdict is kept apart from the measurement.

The gate fails closed: only `pass` releases. A check that errored or gave no finite number
(`error`) and a threshold whose measurement never arrived (`missing`) block the release.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, model_validator

from suite.types import Goal, Measurement


class Threshold(BaseModel):
    """`{max: 0.05}`, `{min: 0.8}`, both, or `{}` (reported, not gated)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    @property
    def gates(self) -> bool:
        return self.max is not None or self.min is not None

    def __str__(self) -> str:
        parts = [
            f"min {self.min:g}" if self.min is not None else "",
            f"max {self.max:g}" if self.max is not None else "",
        ]
        return ", ".join(p for p in parts if p) or "not gated"


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    MISSING = "missing"
    UNGATED = "ungated"  # reported for the reader; no threshold applies

    @property
    def blocks(self) -> bool:
        return self in (Status.FAIL, Status.ERROR, Status.MISSING)


@dataclass(frozen=True)
class Judgement:
    measurement: str
    status: Status
    observed: float | None
    threshold: Threshold | None
    reason: str


#: Built-in presets: thresholds used for a measurement a selected check produces when the
#: scenario sets none. `default` is for a release review; `strict` for data that leaves a
#: controlled environment; `research` for sharing inside a trusted research environment;
#: `none` gates only what the scenario names. The reasons for each number are in
#: docs/policies.md; keep the two in step.
PRESETS: dict[str, dict[str, Threshold]] = {
    "default": {
        "collisions.excess": Threshold(max=0.01),
        "dcr.share_closer_to_train": Threshold(max=0.6),
        "fidelity.quality": Threshold(min=0.7),
    },
    "strict": {
        "collisions.rate": Threshold(max=0.0),
        "collisions.excess": Threshold(max=0.005),
        "dcr.share_closer_to_train": Threshold(max=0.55),
        "fidelity.quality": Threshold(min=0.75),
    },
    "research": {
        "collisions.excess": Threshold(max=0.02),
        "dcr.share_closer_to_train": Threshold(max=0.65),
        "fidelity.quality": Threshold(min=0.6),
    },
    "none": {},
}
DEFAULT_POLICY = PRESETS["default"]


def effective_policy(
    scenario_policy: Mapping[str, Threshold], produced: Iterable[str], preset: str = "default"
) -> dict[str, Threshold]:
    """Scenario thresholds, plus the preset's for measurement patterns the selected checks produce."""
    patterns = list(produced)
    defaults = PRESETS[preset]
    policy = {name: t for name, t in defaults.items() if any(fnmatch.fnmatchcase(name, p) for p in patterns)}
    policy.update(scenario_policy)
    return policy


def judge(measurements: Iterable[Measurement], policy: Mapping[str, Threshold]) -> list[Judgement]:
    """Judge each measurement on the conservative end of its interval; fail closed."""
    out: list[Judgement] = []
    seen: set[str] = set()
    for m in measurements:
        seen.add(m.name)
        threshold = policy.get(m.name)
        out.append(_judge_one(m, threshold))
    for name, threshold in policy.items():
        if name not in seen and threshold.gates:
            out.append(
                Judgement(
                    name,
                    Status.MISSING,
                    None,
                    threshold,
                    f"{name}: no measurement arrived for this threshold ({threshold})",
                )
            )
    return out


def _judge_one(m: Measurement, threshold: Threshold | None) -> Judgement:
    if m.error is not None:
        return Judgement(m.name, Status.ERROR, None, threshold, f"{m.name}: the check failed ({m.error})")
    observed = m.conservative()
    if not math.isfinite(observed):
        return Judgement(
            m.name, Status.ERROR, None, threshold, f"{m.name}: the check returned {observed}, not a number"
        )
    if threshold is None or not threshold.gates:
        return Judgement(m.name, Status.UNGATED, observed, threshold, f"{m.name}: reported, not gated")
    which = "value" if m.ci is None else ("upper interval bound" if m.goal is Goal.MINIMIZE else "lower interval bound")
    if m.ci is not None and threshold.max is not None and threshold.min is not None:
        which = "interval"
    problems = []
    if threshold.max is not None:
        worst = m.value if m.ci is None else max(m.ci)
        if worst > threshold.max:
            problems.append(f"{which} {worst:.4g} > max {threshold.max:g}")
    if threshold.min is not None:
        worst = m.value if m.ci is None else min(m.ci)
        if worst < threshold.min:
            problems.append(f"{which} {worst:.4g} < min {threshold.min:g}")
    if problems:
        return Judgement(m.name, Status.FAIL, observed, threshold, f"{m.name}: " + "; ".join(problems))
    return Judgement(m.name, Status.PASS, observed, threshold, f"{m.name}: {which} {observed:.4g} within {threshold}")
