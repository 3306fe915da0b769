"""Power planning: what this table can certify, measured on a null release before anything is fitted.

The null release is the reference half of the holdout: real people that no generator saw and that the
attacks do not compare against. Judged against train and control like any release, it shows the interval
a release without leakage gets on this table, so the user learns before an hour of fits whether each
privacy threshold can be certified at this size and holdout fraction (../docs/calibration.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from suite.dataset import PreparedData
from suite.declarations import declared, is_privacy
from suite.plan import Plan
from suite.policy import Judgement, Status, Threshold, bounds, holdout_factor, judge  # holdout_factor: re-exported
from suite.types import Measurement

if TYPE_CHECKING:
    from suite.neighbors import NeighbourCache

#: A holdout larger than this leaves too little to train on; advice never suggests more.
MAX_HOLDOUT = 0.5


@dataclass(frozen=True)
class Power:
    """One gated privacy measurement of the null release, and what it says about this table."""

    measurement: str
    value: float | None
    ci: tuple[float, float] | None
    threshold: Threshold
    certifiable: bool  # the null release's unfavourable bound is inside the threshold
    bound: float | None  # that bound: the tightest threshold this table certifies for a clean release
    holdout_needed: float | None  # the holdout fraction that would certify the threshold (None: no interval)
    note: str


def null_release(
    plan: Plan,
    data: PreparedData,
    evaluate: Callable[..., list[Measurement]] | None = None,
    neighbours: NeighbourCache | None = None,
) -> list[Power]:
    """Run the plan's privacy checks on the reference rows as the release and judge them against the policy.
    `neighbours`: the run's `NeighbourCache`, so the searches the tasks repeat are done once."""
    from suite.runner import _evaluate, make_context

    run_check = evaluate or _evaluate
    sc = plan.scenario
    ctx = make_context(
        None,  # type: ignore[arg-type]
        data,
        data.reference,
        seed=sc.seed,
        confidence=sc.confidence,
        neighbours=neighbours,
    )
    ctx = dataclasses.replace(ctx, fit_generator=None)  # nothing is fitted: refitting checks are not applicable
    measurements: list[Measurement] = []
    for check in plan.checks:
        if any(spec.kind == "privacy" for spec in declared(check.cls)):  # as the check declares
            measurements += run_check(check, ctx, check.spec.timeout or sc.check_timeout)
    policy = {k: t for k, t in plan.policy.items() if is_privacy(k)}
    by_name = {m.name: m for m in measurements}
    out = []
    for j in judge(measurements, policy, plan.defaults):
        m = by_name.get(j.measurement)
        if j.threshold is None or not j.threshold.gates or m is None or j.status is Status.NOT_APPLICABLE:
            continue
        out.append(_power(m, j, sc.split.holdout))
    return out


def _power(m: Measurement, j: Judgement, holdout: float) -> Power:
    """What the policy's judgement of the null release says about this table."""
    threshold = j.threshold
    assert threshold is not None
    if j.status is Status.ERROR:
        return Power(m.name, None, None, threshold, False, None, None, "the check could not run on the null release")
    low, high = bounds(m.value, m.ci)
    limit, bound = (threshold.max, high) if threshold.max is not None else (threshold.min, low)
    certifiable = j.status is Status.PASS
    needed: float | None = None
    if certifiable:
        note = "certifiable at this size"
    elif m.ci is None:
        note = "not certifiable: the null release itself is past the threshold"
    else:
        factor = holdout_factor(m.value, bound, float(limit))  # type: ignore[arg-type]
        if factor is None:
            note = f"not certifiable at any holdout: a clean release scores {m.value:.3g} here; {bound:.3g} is"
            note += " the tightest threshold this table certifies"
        else:
            needed = holdout * factor
            if needed <= MAX_HOLDOUT:
                note = f"not certifiable at holdout {holdout:g}: a holdout of about {needed:.2f} would certify it"
            else:
                note = f"not certifiable at any holdout up to {MAX_HOLDOUT:g}; the tightest certifiable is {bound:.3g}"
    return Power(m.name, m.value, m.ci, threshold, certifiable, bound, needed, note)


def render(rows: list[Power], name: str) -> str:
    """The plan as a text table: one line per gated privacy measurement."""
    if not rows:
        return f"{name}: no gated privacy measurement to plan"
    width = max(len(r.measurement) for r in rows)
    lines = [f"{name}: what a release with no leakage gets on this table (the holdout's reference half as release)"]
    for r in rows:
        interval = "" if r.ci is None else f"[{r.ci[0]:.3f}, {r.ci[1]:.3f}]"
        value = "error" if r.value is None else f"{r.value:.3f}"
        mark = "ok  " if r.certifiable else "WARN"
        lines.append(f"  {mark} {r.measurement:<{width}}  {value:>7} {interval:<17} {str(r.threshold):<10} {r.note}")
    return "\n".join(lines)
