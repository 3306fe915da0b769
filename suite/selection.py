"""After the gate: the best released generator by one measurement (the scenario's `select`)."""

from __future__ import annotations

import math
from statistics import fmean

from suite.plan import Plan
from suite.scorecard import GeneratorRecord, Selection


def select(plan: Plan, records: list[GeneratorRecord]) -> Selection | None:
    """Rank the released generators that are not calibration yardsticks by `select.by` (mean over repeats).

    Only a released generator can be chosen: the gate comes first, utility second. A generator
    whose measurement is missing or not finite is left out of the ranking and named in the reason.
    """
    spec = plan.scenario.select
    if spec is None:
        return None
    calibration = {c.spec.key for c in plan.generators if getattr(c.cls, "calibration", False)}
    candidates = [r for r in records if r.verdict == "release" and r.name not in calibration]
    goal = next((m.goal for r in records for m in r.measurements if m.name == spec.by), None)
    ranking, unmeasured = [], []
    for r in candidates:
        values = [m.value for m in r.measurements if m.name == spec.by]
        if not values or any(v is None or not math.isfinite(v) for v in values):
            unmeasured.append(r.name)
            continue
        ranking.append({"name": r.name, "value": fmean(values)})
    ranking.sort(key=lambda e: e["value"], reverse=goal == "maximize")
    skipped = f"; not measured: {', '.join(unmeasured)}" if unmeasured else ""
    if not ranking:
        why = "no generator other than the calibration ones was released" if not candidates else "none was measured"
        return Selection(by=spec.by, goal=goal, chosen=None, ranking=[], reason=why + skipped)
    best = ranking[0]
    direction = "highest" if goal == "maximize" else "lowest"
    reason = (
        f"{best['name']} has the {direction} {spec.by} ({best['value']:.4g}) among {len(ranking)} released "
        f"generator(s){skipped}"
    )
    return Selection(by=spec.by, goal=goal, chosen=best["name"], ranking=ranking, reason=reason)
