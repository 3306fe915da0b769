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

from pydantic import BaseModel, ConfigDict, Field, model_validator

from suite.types import Goal, Measurement


class Threshold(BaseModel):
    """`{max: 0.05}`, `{min: 0.8}`, both, or `{}` (reported, not gated)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max: float | None = Field(None, allow_inf_nan=False)  # nan would never compare: the gate would pass
    min: float | None = Field(None, allow_inf_nan=False)

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
        "singling_out.univariate.risk": Threshold(max=0.1),
        "singling_out.multivariate.risk": Threshold(max=0.1),
        "linkability.risk": Threshold(max=0.05),
        "inference.max.excess": Threshold(max=0.05),
        "membership.distance.auc": Threshold(max=0.6),
        "membership.density.auc": Threshold(max=0.6),
        "membership.distance.excess_at_fpr": Threshold(max=0.05),
        "membership.density.excess_at_fpr": Threshold(max=0.05),
        "membership.shadow.success": Threshold(max=0.75),
        "fidelity.column_shapes": Threshold(min=0.8),
        "fidelity.column_pairs": Threshold(min=0.55),
        "fidelity.columns_passed": Threshold(min=0.5),
        "diagnostic.validity": Threshold(min=0.9),
        "diagnostic.structure": Threshold(min=1.0),
        "dependence.correlation_mae": Threshold(max=0.2),
        "dependence.mutual_information_mae": Threshold(max=0.1),
        "missingness.rate_mae": Threshold(max=0.05),
        "missingness.co_missing_mae": Threshold(max=0.1),
        "missingness.pattern_tvd": Threshold(max=0.6),
        "structure.gower_ks": Threshold(max=0.95),
        "structure.pca_overlap": Threshold(min=0.2),
        "structure.voas_williamson_fit": Threshold(min=0.15),
        "structure.voas_williamson_ratio": Threshold(max=10),
        "propensity.pmse": Threshold(max=0.24),
        "utility.tstr_ratio": Threshold(min=0.5),
    },
    "strict": {
        "collisions.rate": Threshold(max=0.0),
        "collisions.excess": Threshold(max=0.005),
        "dcr.share_closer_to_train": Threshold(max=0.55),
        "fidelity.quality": Threshold(min=0.75),
        "singling_out.univariate.risk": Threshold(max=0.05),
        "singling_out.multivariate.risk": Threshold(max=0.05),
        "linkability.risk": Threshold(max=0.03),
        "inference.max.excess": Threshold(max=0.03),
        "membership.distance.auc": Threshold(max=0.55),
        "membership.density.auc": Threshold(max=0.55),
        "membership.distance.excess_at_fpr": Threshold(max=0.02),
        "membership.density.excess_at_fpr": Threshold(max=0.02),
        "membership.shadow.success": Threshold(max=0.65),
        "fidelity.column_shapes": Threshold(min=0.85),
        "fidelity.column_pairs": Threshold(min=0.6),
        "fidelity.columns_passed": Threshold(min=0.6),
        "diagnostic.validity": Threshold(min=0.95),
        "diagnostic.structure": Threshold(min=1.0),
        "dependence.correlation_mae": Threshold(max=0.12),
        "dependence.mutual_information_mae": Threshold(max=0.06),
        "missingness.rate_mae": Threshold(max=0.02),
        "missingness.co_missing_mae": Threshold(max=0.05),
        "missingness.pattern_tvd": Threshold(max=0.3),
        "structure.gower_ks": Threshold(max=0.9),
        "structure.pca_overlap": Threshold(min=0.3),
        "structure.voas_williamson_fit": Threshold(min=0.25),
        "structure.voas_williamson_ratio": Threshold(max=5),
        "propensity.pmse": Threshold(max=0.2),
        "propensity.auc": Threshold(max=0.9),
        "utility.tstr_ratio": Threshold(min=0.7),
    },
    "research": {
        "collisions.excess": Threshold(max=0.02),
        "dcr.share_closer_to_train": Threshold(max=0.65),
        "fidelity.quality": Threshold(min=0.6),
        "singling_out.univariate.risk": Threshold(max=0.2),
        "singling_out.multivariate.risk": Threshold(max=0.2),
        "linkability.risk": Threshold(max=0.1),
        "inference.max.excess": Threshold(max=0.1),
        "membership.distance.auc": Threshold(max=0.65),
        "membership.density.auc": Threshold(max=0.65),
        "membership.distance.excess_at_fpr": Threshold(max=0.09),
        "membership.density.excess_at_fpr": Threshold(max=0.09),
        "membership.shadow.success": Threshold(max=0.85),
        "fidelity.column_shapes": Threshold(min=0.7),
        "fidelity.column_pairs": Threshold(min=0.45),
        "fidelity.columns_passed": Threshold(min=0.4),
        "diagnostic.validity": Threshold(min=0.8),
        "diagnostic.structure": Threshold(min=1.0),
        "dependence.correlation_mae": Threshold(max=0.3),
        "dependence.mutual_information_mae": Threshold(max=0.15),
        "missingness.rate_mae": Threshold(max=0.1),
        "missingness.co_missing_mae": Threshold(max=0.2),
        "missingness.pattern_tvd": Threshold(max=0.75),
        "structure.gower_ks": Threshold(max=0.98),
        "structure.pca_overlap": Threshold(min=0.1),
        "structure.voas_williamson_fit": Threshold(min=0.1),
        "structure.voas_williamson_ratio": Threshold(max=20),
        "propensity.pmse": Threshold(max=0.245),
        "utility.tstr_ratio": Threshold(min=0.3),
    },
    "none": {},
}
DEFAULT_POLICY = PRESETS["default"]

#: Reports never print a category seen fewer than this many times in the real data (per preset;
#: a scenario's `report.min_count` overrides it).
MIN_COUNT: dict[str, int] = {"default": 10, "strict": 20, "research": 5, "none": 10}


def preset_policy(preset: str, produced: Iterable[str]) -> dict[str, Threshold]:
    """The preset's thresholds for measurement names the selected checks may produce."""
    patterns = list(produced)
    return {name: t for name, t in PRESETS[preset].items() if any(fnmatch.fnmatchcase(name, p) for p in patterns)}


def judge(
    measurements: Iterable[Measurement],
    policy: Mapping[str, Threshold],
    defaults: Mapping[str, Threshold] | None = None,
) -> list[Judgement]:
    """Judge each measurement on the conservative end of its interval; fail closed.

    `policy` holds the scenario's thresholds: one whose measurement never arrives is
    `missing` and blocks. `defaults` (the preset) applies only to measurements that arrive,
    so a check configured to produce fewer measurements (one membership attacker) is not
    blocked for the others.
    """
    defaults = defaults or {}
    out: list[Judgement] = []
    seen: set[str] = set()
    for m in measurements:
        seen.add(m.name)
        out.append(_judge_one(m, policy.get(m.name, defaults.get(m.name))))
    for name, threshold in policy.items():
        if name not in seen and threshold.gates:
            reason = f"{name}: no measurement arrived for this threshold ({threshold})"
            out.append(Judgement(name, Status.MISSING, None, threshold, reason))
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
