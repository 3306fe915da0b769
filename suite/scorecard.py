"""The scorecard: the versioned JSON every report and `suite compare` read.

Documented field by field in docs/scorecard.md; bump SCHEMA_VERSION on any breaking change.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_serializer, field_validator

from suite.policy import BLOCKING, Judgement, Status, Threshold, certify_advice
from suite.types import Measurement

SCHEMA_VERSION = "1.4"  # 1.1: `disclosure`; 1.2: `selection`; 1.3: `fail` split in two, `why`, `advice`, `release`;
# 1.4: status `not applicable`; `gates` (which leak canary each privacy gate caught), `canaries`, `informative`


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReleasedTable(_Model):
    """One file of the release folder and what it was judged as."""

    generator: str  # the scenario's key (label or name)
    file: str  # relative to the run folder
    format: Literal["parquet", "csv"]
    sha256: str  # of the file's bytes
    rows: int
    columns: list[str]
    params: dict[str, Any]
    seed: int
    repeat: int
    data_sha256: str  # the input table the gate judged it against


class MeasurementRecord(_Model):
    name: str
    repeat: int
    value: float | None
    ci: tuple[float, float] | None
    goal: Literal["minimize", "maximize"]
    baseline: float | None = None
    threshold: Threshold | None
    status: Status
    passed: bool | None
    reason: str
    meaning: str = ""
    error: str | None = None
    details: dict[str, Any] = {}
    advice: str | None = None  # for a `not shown safe` gate of a generator blocked by nothing else
    informative: bool | None = None  # a gated privacy measurement: did it fail a leak canary of this run?

    @field_validator("status", mode="before")
    @classmethod
    def _legacy_fail(cls, v: Any) -> Any:
        """Scorecards before 1.3 said `fail`: read it as `not shown safe` (it blocks, and claims no more)."""
        return Status.NOT_SHOWN_SAFE if v == "fail" else v

    @field_serializer("value", "baseline")
    def _finite(self, v: float | None) -> float | None:
        return v if v is not None and math.isfinite(v) else None

    @field_serializer("ci")
    def _finite_ci(self, v: tuple[float, float] | None) -> tuple[float, float] | None:
        return v if v is not None and all(math.isfinite(x) for x in v) else None

    @classmethod
    def build(cls, m: Measurement | None, j: Judgement, repeat: int) -> MeasurementRecord:
        """Join a measurement and its judgement (a missing measurement has none)."""
        passed = None if j.status in (Status.UNGATED, Status.NOT_APPLICABLE) else j.status is Status.PASS
        return cls(
            name=j.measurement,
            repeat=repeat,
            value=None if m is None else m.value,
            ci=None if m is None or m.ci is None else (float(m.ci[0]), float(m.ci[1])),
            goal="minimize" if m is None else m.goal.value,
            baseline=None if m is None else m.baseline,
            threshold=j.threshold,
            status=j.status,
            passed=passed,
            reason=j.reason,
            meaning="" if m is None else m.meaning,
            error=None if m is None else m.error,
            details={} if m is None else dict(m.details),
        )


class GeneratorRecord(_Model):
    name: str
    generator: str
    params: dict[str, Any]
    source: str
    verdict: Literal["release", "block"]
    expected: Literal["release", "block", "candidate"]  # a candidate may be blocked (`select` picks one)
    as_expected: bool
    confidence: float | None = None  # one-sided confidence of its privacy gates (split over the candidates)
    reasons: list[str]
    why: list[str] = []  # the classes of the gates that blocked it, most serious first: ["not shown safe"]
    measurements: list[MeasurementRecord]
    seconds: dict[str, float] = {}
    fit_info: list[dict[str, Any]] = []


def explain(records: list[MeasurementRecord], confidence: float) -> tuple[list[str], list[MeasurementRecord]]:
    """The classes that block a generator (its `why`) and its records, with `advice` on each
    `not shown safe` gate when nothing else blocks it (more holdout, or the threshold it certifies), for bounds
    one-sided at `confidence`."""
    why = [s.value for s in BLOCKING if any(r.status is s for r in records)]
    if why != [Status.NOT_SHOWN_SAFE.value]:
        return why, records
    out = []
    for r in records:
        if r.status is Status.NOT_SHOWN_SAFE and r.value is not None and r.ci is not None and r.threshold is not None:
            r = r.model_copy(update={"advice": certify_advice(r.value, r.ci, r.threshold, confidence)})
        out.append(r)
    return why, out


#: How the reason of a generator blocked for want of an informative gate begins (suite/informative.py).
UNSHOWN = "not shown safe: no informative"


class GateRecord(_Model):
    """One gated privacy measurement of the scenario and the leak canaries it failed (`suite.informative`)."""

    measurement: str
    attack: str | None  # the attack kind it counts for (membership, singling_out, ...); None for a distance check
    worst_case: bool  # informative only by failing a canary that leaks a few people
    canaries: dict[str, Literal["caught", "passed", "error"]]  # canary -> what the gate did on it
    informative: bool
    reason: str


class Summary(_Model):
    all_as_expected: bool
    released: list[str]
    blocked: list[str]
    unexpected: list[str]
    status_counts: dict[str, int]


class Selection(_Model):
    """The best released generator by one measurement (`select` in the scenario), or none and why."""

    by: str
    goal: Literal["minimize", "maximize"] | None
    chosen: str | None
    ranking: list[dict[str, Any]]  # released, non-calibration generators: name, mean value over repeats
    reason: str


class Scorecard(_Model):
    schema_version: str = SCHEMA_VERSION
    created: str
    scenario: dict[str, Any]
    dataset: dict[str, Any]
    metadata: dict[str, Any]
    policy: dict[str, Threshold]
    provenance: dict[str, Any]
    summary: Summary
    generators: list[GeneratorRecord]
    disclosure: dict[str, Any] = {"min_count": 10, "allow_records": False}
    selection: Selection | None = None
    release: list[ReleasedTable] = []  # the judged tables written to the run's release/ folder (docs/releasing.md)
    canaries: dict[str, str] = {}  # the scenario's leak canaries (`expect: block`): name -> "everyone" or "few"
    gates: list[GateRecord] = []  # each gated privacy measurement and the canaries it caught
