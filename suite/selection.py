"""After the gate: the best released generator by one measurement (the scenario's `select`).

With `expect: candidate` generators, only candidates are ranked, and choosing the best of k released
tables is itself a test: each candidate's privacy gates are judged at the confidence split over the k
(Bonferroni), so the chosen table is certified at the scenario's confidence (docs/releasing.md).
"""

from __future__ import annotations

import math
from statistics import fmean

from suite.plan import Plan
from suite.scenario import Scenario
from suite.scorecard import GeneratorRecord, Selection

CANDIDATE = "candidate"


def candidates(scenario: Scenario) -> list[str]:
    """The keys of the generators marked `expect: candidate`."""
    return [g.key for g in scenario.generators if g.expect == CANDIDATE]


def candidate_confidence(scenario: Scenario) -> float:
    """The one-sided confidence of each candidate's privacy gates: 1 - (1 - confidence) / k (Bonferroni)."""
    return 1.0 - (1.0 - scenario.confidence) / max(len(candidates(scenario)), 1)


def select(plan: Plan, records: list[GeneratorRecord]) -> Selection | None:
    """Rank the released generators that are not calibration yardsticks by `select.by` (mean over repeats).

    Only a released generator can be chosen: the gate comes first, utility second. When the scenario
    marks candidates, only they are ranked (their confidence was split over them). A generator
    whose measurement is missing or not finite is left out of the ranking and named in the reason.
    """
    spec = plan.scenario.select
    if spec is None:
        return None
    calibration = {c.spec.key for c in plan.generators if getattr(c.cls, "calibration", False)}
    marked = set(candidates(plan.scenario))
    eligible = [r for r in records if r.verdict == "release" and r.name not in calibration]
    eligible = [r for r in eligible if r.name in marked] if marked else eligible
    goal = next((m.goal for r in records for m in r.measurements if m.name == spec.by), None)
    ranking, unmeasured = [], []
    for r in eligible:
        values = [m.value for m in r.measurements if m.name == spec.by]
        if not values or any(v is None or not math.isfinite(v) for v in values):
            unmeasured.append(r.name)
            continue
        ranking.append({"name": r.name, "value": fmean(values)})
    ranking.sort(key=lambda e: e["value"], reverse=goal == "maximize")
    skipped = f"; not measured: {', '.join(unmeasured)}" if unmeasured else ""
    if not ranking:
        nothing = "no candidate was released" if marked else "no generator other than the calibration ones was released"
        why = nothing if not eligible else "none was measured"
        return Selection(by=spec.by, goal=goal, chosen=None, ranking=[], reason=why + skipped)
    best = ranking[0]
    direction = "highest" if goal == "maximize" else "lowest"
    reason = (
        f"{best['name']} has the {direction} {spec.by} ({best['value']:.4g}) among {len(ranking)} released "
        f"{'candidate' if marked else 'generator'}(s){skipped}"
    )
    return Selection(by=spec.by, goal=goal, chosen=best["name"], ranking=ranking, reason=reason)
