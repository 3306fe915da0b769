"""Each gate proves it can fire: which leak canaries of the scenario every gated privacy measurement fails.

A leak canary is a generator whose class declares `canary` ("everyone": `identity`, `noisy_copy`; "few":
`verbatim_copy`, `outlier_copy`, `partial_copy`; a plugin declares its own) and that the scenario runs
with `expect: block`. A gate *catches* a canary when it blocks it (`risk shown` or `not shown safe`) in
every repeat. A gate is *informative* when it catches at least one canary; a worst-case gate
(`MeasurementSpec.worst_case`) only when it catches one that leaks a few people, since failing a copy of
everyone says nothing about the tail. An uninformative gate's pass is reported but is not evidence.

A release needs, per attack kind the scenario gates (`suite.types.ATTACK_KINDS`), at least one
informative gate that the generator passes; otherwise it is blocked as `not shown safe`. A scenario
without leak canaries cannot show any gate informative: every generator it gates on an attack is
blocked that way, with a warning (../shared/VERDICTS.md). Canaries themselves are left as judged: a
canary released is the gate's own failure and must stay visible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from suite.declarations import spec_of
from suite.policy import BLOCKING, Status
from suite.scorecard import UNSHOWN, GateRecord, GeneratorRecord

CAUGHT, PASSED, ERROR = "caught", "passed", "error"
NOT_SHOWN_SAFE = Status.NOT_SHOWN_SAFE.value
_CAUGHT_BY = (Status.RISK_SHOWN, Status.NOT_SHOWN_SAFE)


def canaries(components: Iterable[Any], specs: Iterable[Any]) -> dict[str, str]:
    """The scenario's leak canaries, key -> "everyone" or "few": generators whose class declares `canary`
    and that the scenario expects blocked."""
    return {
        spec.key: str(leak)
        for component, spec in zip(components, specs)
        if spec.expect == "block" and (leak := getattr(component.cls, "canary", None))
    }


def unshowable(thresholds: Mapping[str, Any], leaks: Mapping[str, str]) -> str | None:
    """Before any fit: a warning when the thresholds in force gate an attack kind and no leak canary runs
    (every generator so gated will be blocked as `not shown safe`), else None."""
    kinds = {spec_of(name).attack_kind for name, t in thresholds.items() if t.gates} - {None}
    if leaks or not kinds:
        return None
    return (
        f"warning: no leak canary runs, so no {'/'.join(sorted(kinds))} gate can show it fires and no generator "
        "can be released on them (not shown safe); add identity, outlier_copy and partial_copy with `expect: block`"
    )


def _gated(records: Iterable[GeneratorRecord]) -> list[str]:
    """The gated privacy measurements of the run that a leak canary can test, in the order they first appear."""
    names = (
        m.name
        for r in records
        for m in r.measurements
        if m.threshold is not None
        and m.threshold.gates
        and m.status is not Status.NOT_APPLICABLE
        and spec_of(m.name).kind == "privacy"
        and not spec_of(m.name).self_audited  # held to its own claim: no canary of the run tests it
    )
    return list(dict.fromkeys(names))


def _cell(record: GeneratorRecord | None, name: str) -> str:
    """What gate `name` did on a canary: caught in every repeat, errored or missing in one, else passed."""
    statuses = [m.status for m in record.measurements if m.name == name] if record is not None else []
    if not statuses or any(s in (Status.ERROR, Status.MISSING, Status.UNGATED) for s in statuses):
        return ERROR
    return CAUGHT if all(s in _CAUGHT_BY for s in statuses) else PASSED


def gates(records: list[GeneratorRecord], leaks: Mapping[str, str]) -> list[GateRecord]:
    """Per gated privacy measurement: the cell of every canary and whether the gate is informative."""
    by_name = {r.name: r for r in records}
    out = []
    for name in _gated(records):
        spec = spec_of(name)
        cells = {c: _cell(by_name.get(c), name) for c in leaks}
        counts = [c for c, cell in cells.items() if cell == CAUGHT and (leaks[c] == "few" or not spec.worst_case)]
        if counts:
            reason = f"{name} fails {', '.join(counts)}"
        elif not leaks:
            reason = f"{name}: the scenario runs no leak canary, so nothing shows this gate can fire"
        elif spec.worst_case and any(cell == CAUGHT for cell in cells.values()):
            reason = (
                f"{name} is a worst-case gate but fails no canary that leaks a few people (only copies of everyone)"
            )
        else:
            reason = f"{name} fails none of the scenario's leak canaries ({', '.join(leaks)})"
        out.append(
            GateRecord(
                measurement=name,
                attack=spec.attack_kind,
                worst_case=spec.worst_case,
                canaries=cells,
                informative=bool(counts),
                reason=reason,
            )
        )
    return out


def _unshown(record: GeneratorRecord, found: list[GateRecord]) -> list[str]:
    """The attack kinds the run gates for which `record` passes no informative gate in every repeat."""
    passed = {m.name for m in record.measurements if m.status is Status.PASS}
    failed = {m.name for m in record.measurements if m.status is not Status.PASS}
    kinds = dict.fromkeys(g.attack for g in found if g.attack)
    ok = {g.attack for g in found if g.informative and g.measurement in passed - failed}
    return [k for k in kinds if k not in ok]


def _blocked(record: GeneratorRecord, kinds: list[str], found: list[GateRecord]) -> GeneratorRecord:
    reasons = []
    for kind in kinds:
        said = "; ".join(g.reason for g in found if g.attack == kind)
        reasons.append(
            f"{UNSHOWN} {kind} gate, so passing {kind} is not evidence ({said}); run leak "
            "canaries (identity, outlier_copy, partial_copy) with `expect: block`, or configure the attack so "
            "that it catches one"
        )
    why = [s.value for s in BLOCKING if s.value in record.why or s.value == NOT_SHOWN_SAFE]
    return record.model_copy(
        update={
            "verdict": "block",
            "as_expected": record.expected in ("block", "candidate"),
            "reasons": [*record.reasons, *reasons],
            "why": why,
        }
    )


def settle(
    records: list[GeneratorRecord], leaks: Mapping[str, str], say: Callable[[str], None] = lambda _: None
) -> tuple[list[GeneratorRecord], list[GateRecord]]:
    """Mark every gated privacy measurement informative or not, and block each released generator (other
    than a canary) that passes no informative gate of an attack kind the run gates."""
    found = gates(records, leaks)
    informative = {g.measurement: g.informative for g in found}
    if found and not leaks:
        say(
            "warning: the scenario runs no leak canary, so no privacy gate can show it fires; add identity, "
            "outlier_copy and partial_copy with `expect: block`"
        )
    for g in found:
        if not g.informative:
            say(f"warning: {g.reason}: its pass is not evidence (uninformative)")
    out = []
    for r in records:
        measurements = [
            m if m.status is Status.NOT_APPLICABLE else m.model_copy(update={"informative": informative.get(m.name)})
            for m in r.measurements
        ]
        r = r.model_copy(update={"measurements": measurements})
        if r.verdict == "release" and r.name not in leaks and (kinds := _unshown(r, found)):
            r = _blocked(r, kinds, found)
            say(f"{r.name}: block (not shown safe: no informative {', '.join(kinds)} gate)")
        out.append(r)
    return out, found
