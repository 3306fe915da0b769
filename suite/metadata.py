"""Table metadata: SDV's single-table JSON plus the roles the checks need.

The JSON is SDV's format (`{"columns": {name: {"sdtype": ...}}, "primary_key": ...}`), either
single-table or SDV 2's multi-table form holding exactly one table, with an optional `roles`
block of our own. When no file is given the metadata is detected with SDV and simplified to
what a reviewer can check: data-derived entries (value ranges, category lists) are removed,
so the written file never carries values of the real data.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from suite.errors import ConfigError

NUMERICAL = "numerical"
DATETIME = "datetime"
CATEGORICAL = "categorical"
BOOLEAN = "boolean"
ID = "id"
#: sdtypes measured as numbers (range-normalised); every other sdtype is compared as a category.
CONTINUOUS_SDTYPES = frozenset({NUMERICAL, DATETIME})
#: Spellings people write for an sdtype. SDV takes any other name as a kind of personal data (Faker's
#: `email`, `ssn`, ...), so `numeric` would silently turn a number column into a category.
_SDTYPE_TYPOS = {
    **dict.fromkeys(
        ("numerical", "numeric", "number", "numbers", "float", "int", "integer", "continuous", "double"), NUMERICAL
    ),
    **dict.fromkeys(("datetime", "date", "time", "timestamp", "dates", "date_time"), DATETIME),
    **dict.fromkeys(("categorical", "category", "categories", "categoric", "string", "str", "discrete"), CATEGORICAL),
    **dict.fromkeys(("boolean", "bool", "binary", "logical"), BOOLEAN),
}
_DATA_DERIVED_KEYS = ("range_min", "range_max", "range_values", "range_is_nullable", "high_cardinality")


@dataclass(frozen=True)
class Roles:
    """What each column means to the attacks: who is identified by what, and what is secret."""

    identifiers: tuple[str, ...] = ()
    quasi_identifiers: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    target: str | None = None
    entity: str | None = None
    sequence_index: str | None = None  # the time or visit number ordering an entity's rows

    def columns(self) -> list[str]:
        """Every column a role names, in role order, without repeats."""
        named = [
            *self.identifiers,
            *self.quasi_identifiers,
            *self.secrets,
            self.target,
            self.entity,
            self.sequence_index,
        ]
        return list(dict.fromkeys(c for c in named if c))

    def to_dict(self) -> dict[str, Any]:
        return {
            "identifiers": list(self.identifiers),
            "quasi_identifiers": list(self.quasi_identifiers),
            "secrets": list(self.secrets),
            "target": self.target,
            "entity": self.entity,
            "sequence_index": self.sequence_index,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Roles:
        data = dict(data or {})
        return cls(
            identifiers=tuple(data.get("identifiers") or ()),
            quasi_identifiers=tuple(data.get("quasi_identifiers") or ()),
            secrets=tuple(data.get("secrets") or ()),
            target=data.get("target"),
            entity=data.get("entity"),
            sequence_index=data.get("sequence_index"),
        )

    def merged(self, override: Roles) -> Roles:
        """These roles with every role that `override` sets replacing ours."""
        changes = {k: v for k, v in vars(override).items() if v is not None and v != () and v != []}
        return replace(self, **changes)


@dataclass(frozen=True)
class Metadata:
    """Column sdtypes (SDV's column specs), the primary key and the roles."""

    columns: Mapping[str, Mapping[str, Any]]
    primary_key: str | None = None
    roles: Roles = field(default_factory=Roles)

    def sdtype(self, column: str) -> str:
        return str(self.columns[column]["sdtype"])

    @property
    def continuous(self) -> list[str]:
        """Columns compared as numbers: numerical and datetime."""
        return [c for c in self.columns if self.sdtype(c) in CONTINUOUS_SDTYPES]

    @property
    def discrete(self) -> list[str]:
        """Columns compared as categories: everything that is not continuous."""
        return [c for c in self.columns if self.sdtype(c) not in CONTINUOUS_SDTYPES]

    def without(self, dropped: Iterable[str]) -> Metadata:
        """The metadata of the table once `dropped` columns are removed (roles pruned too)."""
        gone = set(dropped)
        roles = self.roles
        return Metadata(
            columns={c: dict(s) for c, s in self.columns.items() if c not in gone},
            primary_key=None if self.primary_key in gone else self.primary_key,
            roles=Roles(
                identifiers=tuple(c for c in roles.identifiers if c not in gone),
                quasi_identifiers=tuple(c for c in roles.quasi_identifiers if c not in gone),
                secrets=tuple(c for c in roles.secrets if c not in gone),
                target=None if roles.target in gone else roles.target,
                entity=None if roles.entity in gone else roles.entity,
                sequence_index=None if roles.sequence_index in gone else roles.sequence_index,
            ),
        )

    def with_roles(self, roles: Roles) -> Metadata:
        return replace(self, roles=roles)

    def to_sdv_dict(self) -> dict[str, Any]:
        """SDV's single-table dictionary (what sdmetrics and `Metadata.load_from_dict` read)."""
        out: dict[str, Any] = {"columns": {c: dict(s) for c, s in self.columns.items()}}
        if self.primary_key:
            out["primary_key"] = self.primary_key
        return out

    def to_json_dict(self) -> dict[str, Any]:
        """The file format: SDV single-table metadata plus our `roles` block."""
        return {**self.to_sdv_dict(), "METADATA_SPEC_VERSION": "SINGLE_TABLE_V1", "roles": self.roles.to_dict()}


def read_metadata(path: Path) -> Metadata:
    """Read SDV single-table metadata JSON (or a multi-table file holding one table)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            "metadata file not found; fix `dataset.metadata` or omit it to infer one", source=str(path)
        ) from None
    except PermissionError:
        raise ConfigError("metadata file is not readable; check its permissions", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start}); save the metadata as UTF-8 JSON", source=str(path)
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the metadata file: {exc.strerror}", source=str(path)) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", source=str(path)
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError("expected a JSON object with a `columns` mapping", source=str(path))
    table = raw
    if "tables" in raw:
        tables = raw["tables"]
        if not isinstance(tables, dict) or len(tables) != 1:
            raise ConfigError(
                "`tables` must hold exactly one table; this suite evaluates one table at a time", source=str(path)
            )
        table = next(iter(tables.values()))
    columns = table.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise ConfigError(
            '`columns` is missing or empty; give {name: {"sdtype": ...}} for every column', source=str(path)
        )
    problems = []
    for name, spec in columns.items():
        if not isinstance(spec, dict) or "sdtype" not in spec:
            problems.append(
                f"columns.{name}: every column needs an `sdtype` (numerical, datetime, categorical, boolean, id, ...)"
            )
            continue
        meant = _SDTYPE_TYPOS.get(str(spec["sdtype"]).strip().lower())
        if meant is not None and spec["sdtype"] != meant:
            problems.append(f"columns.{name}: sdtype {spec['sdtype']!r} is not an SDV sdtype; did you mean {meant!r}?")
    if problems:
        raise ConfigError.of(problems, source=str(path))
    return Metadata(
        columns={c: dict(s) for c, s in columns.items()},
        primary_key=table.get("primary_key"),
        roles=Roles.from_dict(raw.get("roles") or table.get("roles")),
    )


def infer_metadata(frame: pd.DataFrame) -> Metadata:
    """Detect sdtypes with SDV, then drop data-derived entries and fix SDV's guesses.

    SDV marks a column as `id` by its name (``test_id``) even when it repeats values; such a
    column is categorical here. Columns SDV flags as personal data (names, e-mails) keep
    their sdtype so the runner can warn when they are not declared identifiers.
    """
    from sdv.metadata import Metadata as SDVMetadata  # heavy: imported only when inferring

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        detected = SDVMetadata.detect_from_dataframes({"table": frame}).to_dict()["tables"]["table"]
    columns: dict[str, dict[str, Any]] = {}
    for name, spec in detected["columns"].items():
        spec = {k: v for k, v in spec.items() if k not in _DATA_DERIVED_KEYS}
        if spec["sdtype"] == ID and frame[name].duplicated().any():
            spec = {"sdtype": CATEGORICAL}
        if spec["sdtype"] == "ordinal":
            spec = {"sdtype": CATEGORICAL}
        if spec["sdtype"] == NUMERICAL:
            spec = {"sdtype": NUMERICAL}
        columns[name] = spec
    return Metadata(columns=columns, primary_key=detected.get("primary_key"))


#: Column entries that would copy values of the real data (SDV's detected ranges, level orders) into an output file.
_VALUE_KEYS = (*_DATA_DERIVED_KEYS, "order", "values")


def write_metadata(metadata: Metadata, path: Path) -> None:
    """Write the metadata as JSON, atomically, without entries that hold real values (`_VALUE_KEYS`)."""
    from suite.disclosure import inert_json
    from suite.io import write_text_atomic

    out = metadata.to_json_dict()
    out["columns"] = {c: {k: v for k, v in s.items() if k not in _VALUE_KEYS} for c, s in out["columns"].items()}
    write_text_atomic(path, inert_json(json.dumps(out, indent=2)) + "\n")
