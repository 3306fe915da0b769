"""Table metadata: SDV's single-table JSON plus the roles the checks need.

The JSON is SDV's format (`{"columns": {name: {"sdtype": ...}}, "primary_key": ...}`), either
single-table or SDV 2's multi-table form holding exactly one table, with an optional `roles`
block of our own. When no file is given the metadata is detected with SDV and simplified to
what a reviewer can check: data-derived entries (value ranges, category lists) are removed,
so the written file never carries values of the real data.
"""

from __future__ import annotations

import json
import unicodedata
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

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
#: SDV's own sdtypes and the personal-data sdtypes RDT anonymises by name; any other name must be a Faker method.
SDV_SDTYPES = frozenset(
    {NUMERICAL, DATETIME, CATEGORICAL, BOOLEAN, ID, "ordinal", "unknown"}
    | {"address", "email", "ipv4_address", "ipv6_address", "mac_address", "name", "phone_number", "ssn"}
    | {"user_agent_string"}
)
#: Roles naming one column each, and roles naming a list of columns.
SINGLE_ROLES = ("target", "entity", "sequence_index")
LIST_ROLES = ("identifiers", "quasi_identifiers", "secrets")
#: Pairs of roles one column cannot hold at once: identifiers and the entity are dropped before any
#: generator or check sees them, so naming them as something to attack or predict misleads.
_CONFLICTS = (
    *((dropped, used) for dropped in ("identifiers", "entity") for used in ("quasi_identifiers", "secrets", "target")),
    ("identifiers", "sequence_index"),
    ("entity", "sequence_index"),
)

_ONE = {
    "identifiers": "identifier",
    "quasi_identifiers": "quasi-identifier",
    "secrets": "secret",
    "target": "target",
    "entity": "entity",
    "sequence_index": "sequence index",
}


def nfc(name: object) -> str:
    """A column name as text in Unicode NFC: "é" typed as one character or as e + accent is one name."""
    return unicodedata.normalize("NFC", str(name))


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

    def normalized(self) -> Roles:
        """The same roles with every column name in Unicode NFC (as table headers are read)."""
        return Roles(
            **{r: tuple(nfc(c) for c in getattr(self, r)) for r in LIST_ROLES},
            **{r: None if getattr(self, r) is None else nfc(getattr(self, r)) for r in SINGLE_ROLES},
        )

    def problems(self, dropped: Iterable[str] = ()) -> list[str]:
        """What is contradictory in these roles: a column listed twice in one role, or holding two roles
        that exclude each other. `dropped` are columns the metadata removes (sdtype id)."""
        out = []
        for role in LIST_ROLES:
            names = list(getattr(self, role))
            twice = sorted({c for c in names if names.count(c) > 1})
            if twice:
                out.append(f"{role} lists {', '.join(map(repr, twice))} twice; list each column once")
        held: dict[str, list[str]] = {}
        for role in (*LIST_ROLES, *SINGLE_ROLES):
            value = getattr(self, role)
            for c in dict.fromkeys(value if role in LIST_ROLES else [value] if value else []):
                held.setdefault(c, []).append(role)
        for c, roles in held.items():
            for a, b in _CONFLICTS:
                if a in roles and b in roles:
                    out.append(
                        f"column {c!r} is both in {a} and in {b}; an {_ONE[a]} is dropped before any generator or "
                        f"check sees it, so it cannot also be the {_ONE[b]}: take it out of one of the two roles"
                    )
        gone = set(dropped)
        for c, roles in held.items():
            used = [r for r in roles if r not in ("identifiers", "entity")]
            if c in gone and used:
                out.append(
                    f"column {c!r} is in {used[0]} but has sdtype id (dropped before any generator or check sees "
                    f"it): give it another sdtype in the metadata file (dataset.metadata; write one if the metadata "
                    f"was inferred) or take it out of {used[0]}"
                )
        return out


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


class _RolesFile(BaseModel):
    """The `roles` block of a metadata file (the scenario's `dataset.roles` has the same keys)."""

    model_config = ConfigDict(extra="forbid")
    identifiers: list[StrictStr] = []
    quasi_identifiers: list[StrictStr] = []
    secrets: list[StrictStr] = []
    target: StrictStr | None = None
    entity: StrictStr | None = None
    sequence_index: StrictStr | None = None


class _ColumnFile(BaseModel):
    model_config = ConfigDict(extra="allow")  # SDV's per-sdtype keys (computer_representation, ...)
    sdtype: StrictStr
    datetime_format: StrictStr | None = None  # a strftime pattern such as "%Y-%m-%d"


class _TableFile(BaseModel):
    model_config = ConfigDict(extra="allow")  # SDV's other keys (alternate_keys, ...)
    columns: dict[str, _ColumnFile] = Field(min_length=1)
    primary_key: StrictStr | None = None
    sequence_key: StrictStr | list[StrictStr] | None = None  # SDV's entity of a sequential table: roles.entity
    sequence_index: StrictStr | None = None  # SDV's order of an entity's rows: roles.sequence_index
    roles: _RolesFile | None = None


_HINTS = {
    "identifiers": 'a list of column names, e.g. ["patient_id"]',
    "quasi_identifiers": 'a list of column names, e.g. ["age", "sex"]',
    "secrets": 'a list of column names, e.g. ["diagnosis"]',
    "sdtype": "one name such as numerical, datetime, categorical, boolean or id",
    "target": "one column name",
    "entity": "one column name",
    "sequence_index": "one column name",
    "primary_key": "one column name (composite keys are not supported)",
    "sequence_key": "one column name: the entity, such as the patient id",
    "roles": 'a mapping of roles to column names, e.g. {"secrets": ["diagnosis"]}',
}


def _problems(exc: ValidationError) -> list[str]:
    """One line per pydantic error: the field path, what is wrong and what is expected."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
        index = next((p for p in reversed(err["loc"]) if isinstance(p, int)), None)
        where = ".".join(loc) + (f"[{index}]" if index is not None else "")
        hint = next((_HINTS[p] for p in reversed(loc) if p in _HINTS), None)
        if err["type"] == "extra_forbidden":
            known = ", ".join(_RolesFile.model_fields)
            out.append(f"{where}: unknown key; the roles are {known}")
        elif err["type"] == "missing" and loc[-1:] == ["sdtype"]:
            out.append(f"{where}: every column needs an `sdtype` (numerical, datetime, categorical, boolean, id, ...)")
        elif len(loc) == 2 and loc[0] == "columns":
            out.append(f'{where}: expected {{"sdtype": ...}} (got {type(err["input"]).__name__})')
        elif err["type"] == "too_short" and loc == ["columns"]:
            out.append('columns: empty; give {name: {"sdtype": ...}} for every column')
        elif index is not None:
            out.append(f"{where}: expected a column name (got {type(err['input']).__name__})")
        elif hint:
            out.append(f"{where}: expected {hint} (got {type(err['input']).__name__})")
        else:
            out.append(f"{where}: {err['msg']}")
    return out


def _known_sdtype(sdtype: str) -> bool:
    """An sdtype SDV accepts: its own, or the name of a Faker method (personal data it anonymises)."""
    if sdtype in SDV_SDTYPES:
        return True
    if not sdtype.isidentifier() or sdtype.startswith("_"):
        return False
    from faker import Faker  # small; installed with SDV

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return callable(getattr(Faker(), sdtype, None))


def _sequence_roles(parsed: _TableFile, columns: Mapping[str, Any], role_data: dict[str, Any]) -> list[str]:
    """SDV's `sequence_key` and `sequence_index` as the entity and sequence_index roles (set in `role_data`);
    the problems that stop it (a composite key, an unknown column, a role the file's `roles` sets otherwise)."""
    key = parsed.sequence_key
    if isinstance(key, list):
        if len(key) != 1:
            return [
                "sequence_key: composite keys are not supported; give the one column naming the entity (patient id)"
            ]
        key = key[0]
    problems = []
    if parsed.sequence_index is not None and key is None:
        problems.append(
            "sequence_index: set without sequence_key; add sequence_key: the column naming whose rows are ordered "
            "(the patient id)"
        )
    for key_name, role, value in (
        ("sequence_key", "entity", key),
        ("sequence_index", "sequence_index", parsed.sequence_index),
    ):
        if value is None:
            continue
        value = nfc(value)
        if value not in columns:
            problems.append(f"{key_name}: {value!r} is not one of the columns; fix the name or remove the key")
        elif role_data.get(role) not in (None, value):
            problems.append(f"{key_name}: {value!r} but roles.{role} is {role_data[role]!r}; keep one of the two")
        else:
            role_data[role] = value
    return problems


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
    except RecursionError:
        raise ConfigError(
            "JSON nested too deep to read; metadata is a `columns` mapping a few levels deep", source=str(path)
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
    if not isinstance(table, dict) or not isinstance(table.get("columns"), dict) or not table["columns"]:
        raise ConfigError(
            '`columns` is missing or empty; give {name: {"sdtype": ...}} for every column', source=str(path)
        )
    roles = raw.get("roles") if "tables" in raw and "roles" in raw else table.get("roles")
    try:
        parsed = _TableFile.model_validate({**table, "roles": roles})
    except ValidationError as exc:
        raise ConfigError.of(_problems(exc), source=str(path)) from None
    columns = {nfc(c): spec.model_dump(exclude_unset=True) for c, spec in parsed.columns.items()}
    problems = []
    if len(columns) < len(parsed.columns):
        twice = [c for c in parsed.columns if c != nfc(c) and nfc(c) in parsed.columns]
        problems.append(f"columns: {twice} is written twice (in two Unicode forms of the same name); keep one")
    for name, spec in columns.items():
        sdtype = spec["sdtype"]
        meant = _SDTYPE_TYPOS.get(sdtype.strip().lower())
        if meant is not None and sdtype != meant:
            problems.append(f"columns.{name}: sdtype {sdtype!r} is not an SDV sdtype; did you mean {meant!r}?")
        elif meant is None and not _known_sdtype(sdtype):
            problems.append(
                f"columns.{name}: sdtype {sdtype!r} is unknown; use numerical, datetime, categorical, boolean or id "
                "(or a personal-data sdtype SDV knows, such as email or phone_number)"
            )
    primary_key = None if parsed.primary_key is None else nfc(parsed.primary_key)
    if primary_key is not None and primary_key not in columns:
        problems.append(f"primary_key: {primary_key!r} is not one of the columns; fix the name or remove the key")
    role_data = parsed.roles.model_dump() if parsed.roles else {}
    problems += _sequence_roles(parsed, columns, role_data)
    roles = Roles.from_dict(role_data).normalized()  # checked against each other once merged with the scenario's
    if problems:
        raise ConfigError.of(problems, source=str(path))
    return Metadata(columns=columns, primary_key=primary_key, roles=roles)


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
