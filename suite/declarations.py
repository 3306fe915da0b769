"""What the registered checks declare: each measurement's kind, attack family, goal and meaning, and
the roles each check needs. Reports, presets, `suite.power` and `validate` read these, never a list
kept beside the checks.

A plugin written to the older contract (`measures` only) still works: its measurements are kind
"utility", with the goal each measurement carries, and are left out of the utility summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from suite.registry import checks
from suite.types import MeasurementSpec, Need

#: The order families are shown in (others follow, sorted).
FAMILIES = ("copying", "membership", "singling_out", "linkability", "inference")


def declared(cls: type) -> tuple[MeasurementSpec, ...]:
    """The measurements a check class declares (built from `measures` for an older plugin)."""
    specs = getattr(cls, "declares", None)
    if specs:
        return tuple(specs)
    return tuple(MeasurementSpec(p, None, "", kind="utility", scored=False) for p in getattr(cls, "measures", ()))


def needs(cls: type) -> tuple[Need, ...]:
    """The roles a check class needs (a plain string is a role needed once)."""
    return tuple(n if isinstance(n, Need) else Need(str(n)) for n in getattr(cls, "needs", ()))


def all_specs() -> list[tuple[str, MeasurementSpec]]:
    """(check name, spec) for every registered check."""
    return [(name, spec) for name in checks.names() for spec in declared(checks.get(name))]


def spec_of(measurement: str) -> MeasurementSpec:
    """The declaration that matches a measurement name: an exact name first, then a pattern; a
    measurement no registered check declares is an undeclared utility measurement."""
    specs = [s for _, s in all_specs()]
    for spec in sorted(specs, key=lambda s: any(c in s.name for c in "*?[")):
        if spec.matches(measurement):
            return spec
    return MeasurementSpec(measurement, None, "", kind="utility", scored=False)


def is_privacy(measurement: str) -> bool:
    return spec_of(measurement).kind == "privacy"


def privacy_checks() -> tuple[str, ...]:
    """The registered checks that declare at least one privacy measurement."""
    return tuple(name for name in checks.names() if any(s.kind == "privacy" for s in declared(checks.get(name))))


def family_order(families: Iterable[str]) -> list[str]:
    found = set(families)
    return [f for f in FAMILIES if f in found] + sorted(found - set(FAMILIES))


def missing_roles(cls: type, params: Mapping[str, Any], roles: Any) -> list[Need]:
    """The needs of a check that neither `roles` (a `suite.metadata.Roles`) nor its params meet."""
    out = []
    for need in needs(cls):
        if need.unless is not None and params.get(need.unless) is not None:
            continue
        value = getattr(roles, need.role, None)
        count = 0 if not value else (1 if isinstance(value, str) else len(value))
        if count < need.at_least:
            out.append(need)
    return out


def presets_table() -> str:
    """docs/policies.md's table of presets: one row per preset measurement, with its declared kind."""
    from suite.policy import PRESETS

    presets = [p for p, thresholds in PRESETS.items() if thresholds]
    keys = list(dict.fromkeys(k for p in presets for k in PRESETS[p]))
    order = family_order(s.family or "" for s in map(spec_of, keys) if s.kind == "privacy")

    def rank(key: str) -> int:  # privacy by attack family, then utility; preset order within each
        spec = spec_of(key)
        return order.index(spec.family or "") if spec.kind == "privacy" else len(order)

    lines = ["| measurement | kind | " + " | ".join(presets) + " |", "|---|---|" + "---|" * len(presets)]
    for key in sorted(keys, key=rank):
        spec = spec_of(key)
        kind = f"privacy ({spec.family})" if spec.kind == "privacy" else spec.kind
        cells = [str(PRESETS[p][key]) if key in PRESETS[p] else "-" for p in presets]
        lines.append(f"| `{key}` | {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
