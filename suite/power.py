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

import numpy as np
from scipy.stats import norm

from suite.dataset import PreparedData
from suite.declarations import declared, is_privacy, spec_of
from suite.plan import Plan
from suite.policy import TARGET_PASS_RATE, Judgement, Status, Threshold, bounds, holdout_factor, judge
from suite.types import Measurement

if TYPE_CHECKING:
    from suite.neighbors import NeighbourCache

#: The largest holdout advice suggests: an even three-way split (train, control and reference a third each). Past
#: it the release is fitted on fewer people than either real half it is judged against.
MAX_HOLDOUT = 2 / 3


@dataclass(frozen=True)
class Power:
    """One gated privacy measurement of the null release, and what it says about this table."""

    measurement: str
    value: float | None
    ci: tuple[float, float] | None
    threshold: Threshold
    bound: float | None  # the tightest threshold a release without leakage passes TARGET_PASS_RATE of the time
    holdout_needed: float | None  # the holdout fraction that would certify the threshold (None: none would)
    note: str
    pass_rate: float | None = None  # the predicted share of releases without leakage that pass, at this size
    spread: float | None = None  # the standard error the null's interval implies
    center: float | None = None  # where a release without leakage scores in expectation (`_center`)

    @property
    def certifiable(self) -> bool:
        """A release without leakage passes this gate at least TARGET_PASS_RATE of the time."""
        return self.pass_rate is not None and self.pass_rate >= TARGET_PASS_RATE


def null_release(
    plan: Plan,
    data: PreparedData,
    evaluate: Callable[..., list[Measurement]] | None = None,
    neighbours: NeighbourCache | None = None,
    only: Callable[[str], bool] | None = None,
) -> list[Power]:
    """Run the plan's privacy checks on the reference rows as the release and judge them against the policy.
    `neighbours`: the run's `NeighbourCache`, so the searches the tasks repeat are done once; `only`: run just
    the checks that declare a measurement it accepts."""
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
        specs = declared(check.cls)
        if any(spec.kind == "privacy" for spec in specs):  # as the check declares
            if only is not None and not any(only(spec.name) for spec in specs if spec.kind == "privacy"):
                continue
            measurements += run_check(check, ctx, check.spec.timeout or sc.check_timeout)
    return powers(plan, measurements)


def powers(plan: Plan, measurements: list[Measurement]) -> list[Power]:
    """What the measurements of a release without leakage (the null release, or the `holdout` yardstick's own
    task, which is one) say about each gated privacy threshold of the plan."""
    sc = plan.scenario
    # privacy thresholds only, the preset's too: the yardstick's task measures utility as well
    policy, defaults = ({k: t for k, t in d.items() if is_privacy(k)} for d in (plan.policy, plan.defaults))
    by_name = {m.name: m for m in measurements}
    out = []
    for j in judge(measurements, policy, defaults):
        m = by_name.get(j.measurement)
        if j.threshold is None or not j.threshold.gates or m is None or j.status is Status.NOT_APPLICABLE:
            continue
        out.append(_power(m, j, sc.split.holdout, sc.confidence))
    return out


def _power(m: Measurement, j: Judgement, holdout: float, confidence: float) -> Power:
    """What the policy's judgement of the null release says about this table.

    The interval's unfavourable half-width over the one-sided z of `confidence` is the measurement's
    standard error on this table. A release without leakage scores the measurement's declared no-leak
    value in expectation (the null's own value where it is far past that: the table's floor), so
    it passes with probability Phi(margin / se - z). One null draw passing or failing is luck; this rate
    is not. The holdout that would reach `TARGET_PASS_RATE` assumes the standard error shrinks as
    1 / sqrt(holdout) (`refine` replaces it with a second measured size). A measurement adjusted for a
    reference attacker is read as it was before the adjustment (details `unadjusted`): the null release is the
    reference itself, whose excess the adjustment cancels almost exactly, while a fitted release's is narrowed
    less (docs/attacks.md)."""
    threshold = j.threshold
    assert threshold is not None
    plain = m.details.get("unadjusted")
    if isinstance(plain, dict):  # adjusted for a reference attacker: what a release unlike the reference gets
        m = dataclasses.replace(m, value=float(plain["value"]), ci=tuple(plain["ci"]))
    if j.status is Status.ERROR:
        return Power(m.name, None, None, threshold, None, None, "the check could not run on the null release")
    low, high = bounds(m.value, m.ci)
    side, limit = _side(threshold)
    z = float(norm.ppf(confidence))
    se = ((high - m.value) if side > 0 else (m.value - low)) / z
    center = _center(m, se * z, side)
    margin = (limit - center) * side
    if se <= 0:
        rate = 1.0 if j.status is Status.PASS else 0.0
        note = _note(rate, None, None)
        return Power(m.name, m.value, m.ci, threshold, m.value, None, note, rate, 0.0, center)
    rate = float(norm.cdf(margin / se - z))
    bound = center + side * se * (z + _Z_TARGET)
    factor = holdout_factor(se * z, margin, confidence)
    needed = None if factor is None else holdout * factor
    note = _note(rate, needed, bound)
    declared_range = spec_of(m.name).bounds
    if declared_range is not None and not declared_range[0] < bound < declared_range[1]:
        bound = float(np.clip(bound, *declared_range))  # e.g. an excess whose interval is every possible value
        if needed is None or needed > MAX_HOLDOUT:
            note = f"a clean release passes about {rate:.0%} of the time at this size; no threshold inside the "
            note += f"measurement's range {list(declared_range)} is passed {TARGET_PASS_RATE:.0%} of the time"
    return Power(m.name, m.value, m.ci, threshold, bound, needed, note, rate, se, center)


_Z_TARGET = float(norm.ppf(TARGET_PASS_RATE))


def _side(threshold: Threshold) -> tuple[float, float]:
    """+1 and the max for a `max` gate, -1 and the min for a `min` one: margins times the side are safe when > 0."""
    if threshold.max is not None:
        return 1.0, float(threshold.max)
    return -1.0, float(threshold.min)  # type: ignore[arg-type]


def _center(m: Measurement, half: float, side: float) -> float:
    """Where a release without leakage scores in expectation: the declared no-leak value, or the null's own
    value when it lies past that on the unsafe side by twice its bound's half-width (the table's floor: a
    valid one-sided 95% bound gets there by chance in about 1 draw of 2,000, where once past the bound
    would be 1 in 20 and would make the plan call a certifiable gate hopeless)."""
    no_leak = spec_of(m.name).no_leak
    if no_leak is None or (m.value - no_leak) * side > 2.0 * half:
        return float(m.value)
    return float(no_leak)


def _note(rate: float, needed: float | None, bound: float | None) -> str:
    """The plan's advice for one gate, in words."""
    passes = f"a clean release passes about {rate:.0%} of the time at this size"
    if rate >= TARGET_PASS_RATE:
        return passes
    if needed is not None and needed <= MAX_HOLDOUT:
        return f"{passes}; a holdout of about {needed:.2f} would make it {TARGET_PASS_RATE:.0%}"
    if bound is None:
        return passes
    up_to = "" if needed is None else f" up to {MAX_HOLDOUT:.2g}"
    return (
        f"{passes}; not certifiable at any holdout{up_to}: {bound:.3g} is the tightest threshold passed"
        f" {TARGET_PASS_RATE:.0%} of the time at this size"
    )


def _law(r: Power, big: Power, holdout: float, larger_holdout: float) -> float:
    """The exponent b of se = a * holdout^b through a gate's two measured spreads."""
    assert r.spread and big.spread
    return float(np.log(big.spread / r.spread) / np.log(larger_holdout / holdout))


def refine(
    rows: list[Power], larger: list[Power], holdout: float, larger_holdout: float, confidence: float
) -> list[Power]:
    """The advice of `rows` (measured at `holdout`) remade from a second null release at `larger_holdout`.

    Two sizes give each gate its own law, se = a * holdout^b, instead of the 1 / sqrt(holdout) guess: an
    excess scaled by the control's share (collisions) shrinks much faster than that."""
    z = float(norm.ppf(confidence))
    at = {r.measurement: r for r in larger}
    out = []
    for r in rows:
        big = at.get(r.measurement)
        if r.certifiable or not r.spread or big is None or not big.spread:  # a spread comes with a rate and bound
            out.append(r)
            continue
        assert big.center is not None and big.bound is not None and big.pass_rate is not None
        side, limit = _side(r.threshold)
        margin = (limit - big.center) * side
        slope = _law(r, big, holdout, larger_holdout)
        needed = None
        if margin > 0 and slope < 0:
            needed = float(holdout * (margin / (z + _Z_TARGET) / r.spread) ** (1.0 / slope))
        note = f"a clean release passes about {r.pass_rate:.0%} of the time at this size"
        note += f", {big.pass_rate:.0%} at holdout {larger_holdout:.2g} (measured)"
        if needed is not None and needed <= MAX_HOLDOUT:
            note += f"; a holdout of about {needed:.2f} would make it {TARGET_PASS_RATE:.0%}"
        else:
            needed = None
            note += f"; not certifiable at any holdout up to {MAX_HOLDOUT:.2g}: {big.bound:.3g} is the tightest "
            note += f"threshold passed {TARGET_PASS_RATE:.0%} of the time at holdout {larger_holdout:.2g}"
        out.append(dataclasses.replace(r, holdout_needed=needed, note=note))
    return out


def joint_rate(rows: list[Power]) -> float | None:
    """The share of releases without leakage that pass every gate, the gates taken as independent (None when a
    gate has no rate: it could not run)."""
    rates = [r.pass_rate for r in rows]
    return None if any(rate is None for rate in rates) else float(np.prod(rates))


def joint_advice(
    rows: list[Power], larger: list[Power], holdout: float, larger_holdout: float, confidence: float
) -> str | None:
    """When a clean release would pass every gate less than `TARGET_PASS_RATE` of the time: that rate at
    `larger_holdout` (measured: `larger` is the null release there, for the gates that fall short of
    certain) and the smallest holdout up to MAX_HOLDOUT at which each gate's two-size law (`refine`) brings
    the product to the target. Every gate can be certifiable alone while the table still blocks a clean
    release too often: ten gates at 95% pass together 60% of the time."""
    now = joint_rate(rows)
    if now is None or now >= TARGET_PASS_RATE or not larger:
        return None
    z = float(norm.ppf(confidence))
    at = {r.measurement: r for r in larger}
    grid = np.linspace(holdout, larger_holdout, 201)
    log_rate = np.zeros_like(grid)
    measured = 1.0
    for r in rows:
        big = at.get(r.measurement)
        if not r.spread or big is None or not big.spread or big.center is None:  # no law: its rate stays
            log_rate += np.log(max(r.pass_rate or 0.0, 1e-300))
            measured *= r.pass_rate or 0.0
            continue
        measured *= big.pass_rate or 0.0
        side, limit = _side(r.threshold)
        spread = r.spread * (grid / holdout) ** _law(r, big, holdout, larger_holdout)  # may grow: fewer trained on
        log_rate += norm.logcdf((limit - big.center) * side / spread - z)
    text = f"{measured:.0%} at holdout {larger_holdout:.2g} (measured)"
    reached = np.flatnonzero(np.exp(log_rate) >= TARGET_PASS_RATE)
    if len(reached):
        return f"{text}; a holdout of about {grid[reached[0]]:.2f} would make it {TARGET_PASS_RATE:.0%}"
    return f"{text}; no holdout up to {MAX_HOLDOUT:.2g} makes it {TARGET_PASS_RATE:.0%}"


def render(rows: list[Power], name: str, advice: str | None = None, everyone: list[Power] | None = None) -> str:
    """The plan as a text table: one line per gated privacy measurement, and the joint rate of `everyone` (by
    default the rows; with the joint `advice` of `joint_advice`, if any)."""
    if not rows:
        return f"{name}: no gated privacy measurement to plan"
    width = max(len(r.measurement) for r in rows)
    lines = [f"{name}: what a release with no leakage gets on this table (the holdout's reference half as release)"]
    for r in rows:
        interval = "" if r.ci is None else f"[{r.ci[0]:.3f}, {r.ci[1]:.3f}]"
        value = "error" if r.value is None else f"{r.value:.3f}"
        mark = "ok  " if r.certifiable else "WARN"
        lines.append(f"  {mark} {r.measurement:<{width}}  {value:>7} {interval:<17} {str(r.threshold):<10} {r.note}")
    joint = joint_rate(rows if everyone is None else everyone)
    if joint is not None:
        lines.append(
            f"  jointly, a clean release passes every gate above about {joint:.0%} of the time at this size "
            "(the gates taken as independent)" + (f"; {advice}" if advice else "")
        )
    return "\n".join(lines)
