"""`suite compare OLD NEW`: what got worse between two runs, per generator and measurement.

A measurement got worse when the bound the gate judges (`conservative`: the higher of the value and
the upper end for a risk, the lower of the value and the lower end for a utility score) moved in
the bad direction by more than the tolerance, `max(abs_tol, rel_tol * |old|)`. Also a regression,
whatever the tolerance: a gate that passed and now blocks (any blocking status), a verdict that
went from release to block, and a generator or a gated measurement that disappeared. CI runs it
against the last accepted run and fails on exit 1. A non-finite or negative tolerance, or a scorecard
that lists a generator (or a generator's measurement) twice, is refused: either would hide a regression.
Scorecards before schema 1.3 said `fail` where 1.3 says `risk shown` or `not shown safe`; they are read
(as `not shown safe`, which blocks). A scorecard of a newer schema than this suite writes is refused.

Across versions, a measurement that was renamed (`RENAMES`, the one table of them) is reported as
`renamed`, never compared when its unit changed; one the new run has and the old lacks is `new`; one a
scorecard of an older schema has and the new lacks is `no longer measured`. None of these is a
regression, but a gate that passed and now blocks still is, under its new name too.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from suite.errors import ConfigError
from suite.policy import bounds, finite
from suite.scorecard import SCHEMA_VERSION, MeasurementRecord, Scorecard

ABS_TOL = 0.01
REL_TOL = 0.05


@dataclass(frozen=True)
class Rename:
    """A measurement renamed between versions: `old` (a regular expression) became `new` (a format of its groups)."""

    old: str
    new: str
    comparable: bool  # False: a different unit, so the old and the new value are never compared


#: Measurements renamed between releases; add a row here when a check renames one.
RENAMES = (
    Rename(r"membership\.(?P<a>.+)\.tpr_at_fpr_1pct", "membership.{a}.excess_at_fpr", comparable=False),
    Rename(r"membership\.(?P<a>.+)\.tpr_at_fpr_10pct", "membership.{a}.excess_at_fpr", comparable=False),
    Rename(r"inference\.(?P<s>.+)\.risk", "inference.{s}.excess", comparable=False),  # `inference.max.risk` too
)


def renamed(name: str) -> tuple[str, Rename] | None:
    """The new name of an old measurement and its rename, if it has one."""
    for rename in RENAMES:
        match = re.fullmatch(rename.old, name)
        if match is not None:
            return rename.new.format(**match.groupdict()), rename
    return None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@dataclass(frozen=True)
class Change:
    generator: str
    measurement: str  # "verdict" for the generator's verdict
    repeat: int
    old: str
    new: str
    kind: str  # "worse", "better", "blocks now", "passes now", "gone", "new", "renamed", "no longer measured"
    note: str = ""

    @property
    def regression(self) -> bool:
        return self.kind in ("worse", "blocks now", "gone")


def load_scorecard(path: Path) -> Scorecard:
    """A run folder (its scorecard.json) or a scorecard file; a clear error otherwise."""
    path = Path(path)
    file = path / "scorecard.json" if path.is_dir() else path
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no scorecard here; give a run folder or its scorecard.json", source=str(file)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start}); give a run folder or the scorecard.json a run wrote", source=str(file)
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the scorecard: {exc.strerror}", source=str(file)) from None
    _refuse_newer_schema(text, str(file))
    try:
        scorecard = Scorecard.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        where = f"{where}: " if where else ""
        raise ConfigError(
            f"not a valid scorecard: {where}{first['msg']}; give a run folder or the scorecard.json a run wrote",
            source=str(file),
        ) from None
    _refuse_duplicates(scorecard, str(file))
    return scorecard


def _refuse_newer_schema(text: str, source: str) -> None:
    """A scorecard of a schema this suite does not know yet: its fields would be misread, or refused cryptically."""
    try:
        found = json.loads(text).get("schema_version", SCHEMA_VERSION)
    except (ValueError, AttributeError, RecursionError):
        return  # not a JSON object: validation says so
    try:
        newer = _version(str(found)) > _version(SCHEMA_VERSION)
    except ValueError:
        raise ConfigError(
            f"schema_version {found!r} is not a version like {SCHEMA_VERSION!r}; give the scorecard.json a run wrote",
            source=source,
        ) from None
    if newer:
        raise ConfigError(
            f"schema_version {found} is newer than this suite reads ({SCHEMA_VERSION}); compare with the suite "
            "version that wrote it, or upgrade this one",
            source=source,
        )


def _refuse_duplicates(scorecard: Scorecard, source: str) -> None:
    """A generator, or one generator's (measurement, repeat), listed twice: which copy counts is unclear."""
    fix = "a scorecard lists each once; give the run's own scorecard.json, unedited"
    for name, n in Counter(g.name for g in scorecard.generators).items():
        if n > 1:
            raise ConfigError(f"generator {name!r} is listed {n} times; {fix}", source=source)
    for g in scorecard.generators:
        for (measurement, repeat), n in Counter((m.name, m.repeat) for m in g.measurements).items():
            if n > 1:
                where = f"generator {g.name!r}: measurement {measurement!r} (repeat {repeat + 1})"
                raise ConfigError(f"{where} is listed {n} times; {fix}", source=source)


def conservative(m: MeasurementRecord) -> float | None:
    """The bound the gate judges: the worse for the goal of the value and its interval's ends."""
    if m.value is None or not finite(m.value, m.ci):
        return None
    low, high = bounds(m.value, m.ci)
    return high if m.goal == "minimize" else low


def _shown(m: MeasurementRecord | None) -> str:
    if m is None:
        return "absent"
    value = conservative(m)
    return f"{'n/a' if value is None else f'{value:.4g}'} ({m.status.value})"


def _measurement_change(
    generator: str,
    old: MeasurementRecord,
    new: MeasurementRecord | None,
    abs_tol: float,
    rel_tol: float,
    *,
    same_schema: bool = True,
) -> Change | None:
    key = (generator, old.name, old.repeat)
    if new is None:
        if not same_schema:
            return Change(*key, _shown(old), "absent", "no longer measured", "the new version does not measure it")
        return Change(*key, _shown(old), "absent", "gone") if old.status.value != "ungated" else None
    if new.name != old.name:
        key = (generator, f"{old.name} -> {new.name}", old.repeat)
    if not old.status.blocks and new.status.blocks:
        return Change(*key, _shown(old), _shown(new), "blocks now", new.reason)
    if "not applicable" in (old.status.value, new.status.value) and old.status != new.status:  # not a pass
        return Change(*key, _shown(old), _shown(new), f"{new.status.value} now", new.reason)
    if old.status.blocks and not new.status.blocks:
        return Change(*key, _shown(old), _shown(new), "passes now")
    rename = renamed(old.name) if new.name != old.name else None
    if rename is not None and not rename[1].comparable:
        return Change(*key, _shown(old), _shown(new), "renamed", "not comparable (a different unit)")
    a, b = conservative(old), conservative(new)
    if a is None or b is None:
        return None
    tolerance = max(abs_tol, rel_tol * abs(a))
    delta = b - a if old.goal == "minimize" else a - b  # > 0: worse
    if delta > tolerance:
        return Change(*key, _shown(old), _shown(new), "worse", f"by {delta:.4g} (tolerance {tolerance:.3g})")
    if delta < -tolerance:
        return Change(*key, _shown(old), _shown(new), "better", f"by {-delta:.4g}")
    return None


def _measurement_changes(
    generator: str,
    old: list[MeasurementRecord],
    new: list[MeasurementRecord],
    abs_tol: float,
    rel_tol: float,
    same_schema: bool,
) -> list[Change]:
    """One generator's measurement changes: each old one against its new self, or its new name (`RENAMES`)."""
    after = {(m.name, m.repeat): m for m in new}
    old_names = {m.name for m in old}
    known = set(old_names)  # and the new names of renamed ones: not `new`
    changes: list[Change] = []
    for m in old:
        counterpart = after.get((m.name, m.repeat))
        rename = renamed(m.name) if counterpart is None else None
        if rename is not None and rename[0] not in old_names:  # the old run did not also have the new name
            counterpart = after.get((rename[0], m.repeat))
        if rename is not None:
            known.add(rename[0])
        change = _measurement_change(generator, m, counterpart, abs_tol, rel_tol, same_schema=same_schema)
        if change is not None:
            changes.append(change)
    for m in new:
        if m.name not in known:
            known.add(m.name)
            changes.append(Change(generator, m.name, m.repeat, "absent", _shown(m), "new"))
    return changes


def compare(old: Scorecard, new: Scorecard, *, abs_tol: float = ABS_TOL, rel_tol: float = REL_TOL) -> list[Change]:
    """Every change beyond the tolerance between two scorecards, regressions first."""
    for flag, tol in (("--abs-tol", abs_tol), ("--rel-tol", rel_tol)):
        if not isinstance(tol, int | float) or not math.isfinite(tol) or tol < 0:
            raise ConfigError(
                f"the tolerance must be a finite number >= 0 (got {tol}); omit it for the default", source=flag
            )
    changes: list[Change] = []
    same_schema = old.schema_version == new.schema_version
    new_generators = {g.name: g for g in new.generators}
    for g in old.generators:
        h = new_generators.get(g.name)
        if h is None:
            changes.append(Change(g.name, "verdict", 0, g.verdict, "absent", "gone"))
            continue
        if g.verdict == "release" and h.verdict == "block":
            changes.append(Change(g.name, "verdict", 0, g.verdict, h.verdict, "blocks now", "; ".join(h.reasons)))
        elif g.verdict == "block" and h.verdict == "release":
            changes.append(Change(g.name, "verdict", 0, g.verdict, h.verdict, "passes now"))
        changes += _measurement_changes(g.name, g.measurements, h.measurements, abs_tol, rel_tol, same_schema)
    for name in new_generators.keys() - {g.name for g in old.generators}:
        changes.append(Change(name, "verdict", 0, "absent", new_generators[name].verdict, "new"))
    return sorted(changes, key=lambda c: (not c.regression, c.generator, c.measurement, c.repeat))


def caveats(old: Scorecard, new: Scorecard) -> list[str]:
    """What makes the two runs not directly comparable (reported, not an error)."""
    notes = []
    if old.schema_version != new.schema_version:
        notes.append(
            f"schema {old.schema_version} vs {new.schema_version}: renamed measurements are listed, "
            "and compared only where their unit is unchanged"
        )
    if old.dataset.get("sha256") != new.dataset.get("sha256"):
        notes.append("the two runs used different data (dataset sha256 differs)")
    if old.provenance.get("seeds") != new.provenance.get("seeds"):
        notes.append(f"the seeds differ ({old.provenance.get('seeds')} vs {new.provenance.get('seeds')})")
    if old.scenario.get("sha256") != new.scenario.get("sha256"):
        notes.append("the scenario file changed")
    return notes


def render_changes(changes: list[Change], notes: list[str]) -> str:
    lines = [f"note: {n}" for n in notes]
    regressions = [c for c in changes if c.regression]
    if not changes:
        lines.append("no change beyond the tolerance")
        return "\n".join(lines)
    rows = [("generator", "measurement", "old", "new", "change", "")]
    rows += [
        (c.generator, c.measurement + (f" (repeat {c.repeat + 1})" if c.repeat else ""), c.old, c.new, c.kind, c.note)
        for c in changes
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + ("  " + r[5] if r[5] else "") for r in rows]
    lines.append(f"{len(regressions)} regression(s), {len(changes) - len(regressions)} other change(s)")
    return "\n".join(lines)
