"""Thresholds and judgements: the verdict is kept apart from the measurement.

The gate fails closed: only `pass` releases. A failed threshold says why: `risk shown` (even the
favourable end of the interval is past it) or `not shown safe` (the interval straddles it). A check
that errored or gave no finite number (`error`) and a threshold whose measurement never arrived
(`missing`) block too. A measurement that must refit the generator, asked of a table made elsewhere,
is `not applicable`: it neither passes nor blocks, and never counts as a pass of a gate. A `max` is
judged on max(value, upper bound), a `min` on min(value, lower bound): the ends of the check's
two-sided interval at the scenario's confidence.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from suite.types import Goal, Measurement


class Threshold(BaseModel):
    """`{max: 0.05}`, `{min: 0.8}`, both, or `{}` (reported, not gated)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max: float | None = None  # finite (`_finite`): nan would never compare, the gate would pass
    min: float | None = None

    @field_validator("max", "min")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError(
                f"a threshold must be a finite number (got {v}): a NaN or infinite bound turns the gate off; "
                "give a number, or write {} to report the measurement without a gate"
            )
        return v

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
    RISK_SHOWN = "risk shown"  # even the favourable bound is past the threshold: a leak was measured
    NOT_SHOWN_SAFE = "not shown safe"  # the interval straddles the threshold: this data cannot certify it
    ERROR = "error"
    MISSING = "missing"
    UNGATED = "ungated"  # reported for the reader; no threshold applies
    NOT_APPLICABLE = "not applicable"  # needs a refit this generator cannot give (a `file`): neither pass nor block

    @property
    def blocks(self) -> bool:
        return self in BLOCKING


#: The statuses that block a release, most serious first (the order reports list them in).
BLOCKING = (Status.RISK_SHOWN, Status.NOT_SHOWN_SAFE, Status.ERROR, Status.MISSING)


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
        "membership.local.auc": Threshold(max=0.6),
        "membership.local.excess_at_fpr": Threshold(max=0.015),
        "membership.isolated.excess_at_fpr": Threshold(max=0.05),
        "collisions.excess": Threshold(max=0.01),
        "dcr.share_closer_to_train": Threshold(max=0.6),
        "fidelity.quality": Threshold(min=0.7),
        "singling_out.univariate.risk": Threshold(max=0.1),
        "singling_out.multivariate.risk": Threshold(max=0.1),
        "linkability.risk": Threshold(max=0.05),
        "inference.max.excess": Threshold(max=0.05),
        "reconstruction.joint.rare_excess": Threshold(max=0.05),
        "membership.distance.auc": Threshold(max=0.6),
        "membership.density.auc": Threshold(max=0.6),
        "membership.distance.excess_at_fpr": Threshold(max=0.05),
        "membership.density.excess_at_fpr": Threshold(max=0.05),
        "shadow.worst_excess": Threshold(max=0.5),
        "dp_audit.epsilon_excess": Threshold(max=0.0),  # the generator's own DP claim, refuted by its audit
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
        "membership.local.auc": Threshold(max=0.55),
        "membership.local.excess_at_fpr": Threshold(max=0.01),
        "membership.isolated.excess_at_fpr": Threshold(max=0.03),
        "collisions.rate": Threshold(max=0.0),
        "collisions.excess": Threshold(max=0.005),
        "dcr.share_closer_to_train": Threshold(max=0.55),
        "fidelity.quality": Threshold(min=0.75),
        "singling_out.univariate.risk": Threshold(max=0.05),
        "singling_out.multivariate.risk": Threshold(max=0.05),
        "linkability.risk": Threshold(max=0.03),
        "inference.max.excess": Threshold(max=0.03),
        "reconstruction.joint.rare_excess": Threshold(max=0.03),
        "membership.distance.auc": Threshold(max=0.55),
        "membership.density.auc": Threshold(max=0.55),
        "membership.distance.excess_at_fpr": Threshold(max=0.02),
        "membership.density.excess_at_fpr": Threshold(max=0.02),
        "shadow.worst_excess": Threshold(max=0.3),
        "dp_audit.epsilon_excess": Threshold(max=0.0),  # the generator's own DP claim, refuted by its audit
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
        "membership.local.auc": Threshold(max=0.65),
        "membership.local.excess_at_fpr": Threshold(max=0.05),
        "membership.isolated.excess_at_fpr": Threshold(max=0.09),
        "collisions.excess": Threshold(max=0.02),
        "dcr.share_closer_to_train": Threshold(max=0.65),
        "fidelity.quality": Threshold(min=0.6),
        "singling_out.univariate.risk": Threshold(max=0.2),
        "singling_out.multivariate.risk": Threshold(max=0.2),
        "linkability.risk": Threshold(max=0.1),
        "inference.max.excess": Threshold(max=0.1),
        "reconstruction.joint.rare_excess": Threshold(max=0.1),
        "membership.distance.auc": Threshold(max=0.65),
        "membership.density.auc": Threshold(max=0.65),
        "membership.distance.excess_at_fpr": Threshold(max=0.09),
        "membership.density.excess_at_fpr": Threshold(max=0.09),
        "shadow.worst_excess": Threshold(max=0.7),
        "dp_audit.epsilon_excess": Threshold(max=0.0),  # the generator's own DP claim, refuted by its audit
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


def bounds(value: float, ci: tuple[float, float] | None) -> tuple[float, float]:
    """The lowest and highest of the value and its interval's ends: a `max` is judged on the high
    one, a `min` on the low one, so a value outside its own interval cannot pass."""
    ends = (value,) if ci is None else (value, *ci)
    return min(ends), max(ends)


def finite(value: float, ci: tuple[float, float] | None) -> bool:
    """True when the value and both ends of its interval are finite numbers (else it cannot be judged)."""
    try:
        return all(math.isfinite(float(x)) for x in (value, *(() if ci is None else ci)))
    except (TypeError, ValueError):  # None, a string: not a number
        return False


#: The share of releases without leakage a certifiable gate passes (the calibration study's bar: 18 of 20 seeds).
TARGET_PASS_RATE = 0.9


def holdout_factor(half: float, margin: float, confidence: float) -> float | None:
    """How many times the holdout would certify a threshold `margin` past the centre, `TARGET_PASS_RATE` of the
    time, when today's bound is `half` past it and the standard error (half / z) shrinks as 1/sqrt(holdout):
    ((z + z_target) * se / margin)^2. None when the margin is not positive (the centre itself is past the
    threshold: no holdout certifies it). The plan (suite.power) and a blocked generator's advice both read it."""
    if margin <= 0 or half < 0:
        return None
    z = NormalDist().inv_cdf(confidence)
    return ((z + NormalDist().inv_cdf(TARGET_PASS_RATE)) * half / z / margin) ** 2


def certify_advice(value: float, ci: tuple[float, float], threshold: Threshold, confidence: float) -> str:
    """For a `not shown safe` gate: the tightest threshold this data certifies (its unfavourable bound) and
    roughly how many times the holdout rows would certify the current one `TARGET_PASS_RATE` of the time if
    the estimate held (`holdout_factor`, the plan's rule)."""
    low, high = bounds(value, ci)
    parts = []
    for side, limit, bound in (("max", threshold.max, high), ("min", threshold.min, low)):
        if limit is None or (bound <= limit if side == "max" else bound >= limit):
            continue
        certify = f"the tightest {side} this data certifies is {bound:.4g}"
        factor = holdout_factor(abs(bound - value), (limit - value) * (1 if side == "max" else -1), confidence)
        if factor is None:
            parts.append(f"{certify}; cannot certify {side} {limit:g}: the estimate itself is past the threshold")
        else:
            parts.append(
                f"{certify}; about {factor:.3g}x the holdout rows would certify {side} {limit:g} "
                f"{TARGET_PASS_RATE:.0%} of the time if the estimate held"
            )
    return "; ".join(parts)


def judge(
    measurements: Iterable[Measurement],
    policy: Mapping[str, Threshold],
    defaults: Mapping[str, Threshold] | None = None,
) -> list[Judgement]:
    """Judge each measurement on its unfavourable bound (see `bounds`); fail closed.

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


def _said(m: Measurement, x: float, end: str, rule: str) -> str:
    """`upper bound 0.62 > max 0.6 (value 0.55)`, or `value 0.7 > max 0.6` without an interval."""
    if m.ci is None:
        return f"value {x:.4g} {rule}"
    if x == m.value and not min(m.ci) <= x <= max(m.ci):
        return f"value {x:.4g} {rule} (outside its own interval [{m.ci[0]:.4g}, {m.ci[1]:.4g}])"
    return f"{end} bound {x:.4g} {rule} (value {m.value:.4g})"


def _judge_one(m: Measurement, threshold: Threshold | None) -> Judgement:
    if m.error is not None:
        return Judgement(m.name, Status.ERROR, None, threshold, f"{m.name}: the check failed ({m.error})")
    if m.not_applicable is not None:
        reason = f"{m.name}: not applicable, neither pass nor block ({m.not_applicable})"
        return Judgement(m.name, Status.NOT_APPLICABLE, None, threshold, reason)
    if not finite(m.value, m.ci):
        got = f"{m.value}" + ("" if m.ci is None else f" with interval {tuple(m.ci)}")
        return Judgement(m.name, Status.ERROR, None, threshold, f"{m.name}: the check returned {got}, not a number")
    low, high = bounds(m.value, m.ci)
    observed = high if m.goal is Goal.MINIMIZE else low
    if threshold is None or not threshold.gates:
        return Judgement(m.name, Status.UNGATED, observed, threshold, f"{m.name}: reported, not gated")
    problems: list[tuple[Status, str]] = []
    passes: list[str] = []
    for limit, worst, best, sign, side in (
        (threshold.max, high, low, ">", "max"),
        (threshold.min, low, high, "<", "min"),
    ):
        if limit is None:
            continue
        bad, good = ("upper", "lower") if side == "max" else ("lower", "upper")
        rule = f"{sign} {side} {limit:g}"
        if not (worst > limit if side == "max" else worst < limit):
            passes.append(_said(m, worst, bad, f"within {side} {limit:g}"))
        elif best > limit if side == "max" else best < limit:
            problems.append((Status.RISK_SHOWN, "risk shown: " + _said(m, best, good, rule)))
        else:
            problems.append((Status.NOT_SHOWN_SAFE, "not shown safe: " + _said(m, worst, bad, rule)))
    if problems:
        status = min((s for s, _ in problems), key=BLOCKING.index)
        return Judgement(m.name, status, observed, threshold, f"{m.name}: " + "; ".join(t for _, t in problems))
    return Judgement(m.name, Status.PASS, observed, threshold, f"{m.name}: " + "; ".join(passes))
