"""From a scenario's dataset entry to the frames the run uses.

Loads the table, reads or infers its metadata, applies the roles, coerces each column to
its sdtype, drops the columns no generator may see (identifiers, the entity, ids) and
splits by entity into train | control | reference. The input file is only read.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from suite.coercion import NUMBER_AS_TEXT as _NUMBER_AS_TEXT
from suite.coercion import DataWarning
from suite.coercion import coerce as _coerce
from suite.coercion import first_row as _row
from suite.coercion import huge_integers as _huge
from suite.coercion import outside_date_range as _outside_date_range
from suite.coercion import outside_error as _outside_error
from suite.errors import ConfigError
from suite.histories import HistorySchema
from suite.io import read_table, sha256_file
from suite.metadata import (
    BOOLEAN,
    CATEGORICAL,
    CONTINUOUS_SDTYPES,
    DATETIME,
    ID,
    NUMERICAL,
    Metadata,
    Roles,
    infer_metadata,
    nfc,
    read_metadata,
)

#: The smallest control or reference part the checks can work with.
MIN_PART_ROWS = 20
_PERSONAL_SDTYPES = {"first_name", "last_name", "name", "email", "phone_number", "ssn", "address", "street_address"}


@dataclass(frozen=True)
class PreparedData:
    """The table once loaded, typed and split; `metadata` describes the generator-facing columns."""

    train: pd.DataFrame
    control: pd.DataFrame
    reference: pd.DataFrame
    metadata: Metadata
    full_metadata: Metadata
    metadata_inferred: bool
    dropped: tuple[str, ...]
    train_entities: pd.Series | None
    control_entities: pd.Series | None
    reference_entities: pd.Series | None
    fingerprint: dict
    long: LongData | None = None  # the rows per visit, when the table is longitudinal


@dataclass(frozen=True)
class LongData:
    """A longitudinal table's rows (one per visit) beside the histories the checks compare.

    Sequential generators (`sequential = True`) are fitted on `train` with the entity column
    put back under its own name; `schema` turns their output into histories.
    """

    train: pd.DataFrame
    control: pd.DataFrame
    reference: pd.DataFrame
    train_entities: pd.Series
    control_entities: pd.Series
    reference_entities: pd.Series
    metadata: Metadata  # of the rows per visit, without the entity; roles name entity and sequence_index
    schema: HistorySchema

    @property
    def entity(self) -> str:
        return str(self.metadata.roles.entity)

    def with_entities(self, part: str = "train") -> pd.DataFrame:
        """A part's rows with the entity column first (what a sequential generator is fitted on)."""
        rows = getattr(self, part)
        return pd.concat([getattr(self, f"{part}_entities").rename(self.entity), rows], axis=1)


def load_dataset(
    path: Path, *, metadata_path: Path | None, roles: Roles, sheet: str | int | None = None
) -> tuple[pd.DataFrame, Metadata, bool]:
    """Read the table and its metadata (or infer it), apply the roles and check them against the data."""
    frame = read_table(path, sheet=sheet)
    source = str(path)
    if frame.shape[1] == 0 or len(frame) == 0:
        raise ConfigError("the table is empty; a release check needs real rows", source=source)
    if len(frame) < 2:
        raise ConfigError("the table has one row; nothing can be split or compared", source=source)
    names = [nfc(c) for c in frame.columns]
    renamed = [str(c) for c, n in zip(frame.columns, names) if str(c) != n]
    frame.columns = names
    if frame.columns.duplicated().any():
        dup = frame.columns[frame.columns.duplicated()][0]
        raise ConfigError(f"column {dup!r} appears twice; rename one", source=source)
    if renamed:
        warnings.warn(
            f"{source}: column name(s) {[nfc(c) for c in renamed]} were written in a decomposed Unicode form (NFD, "
            "as macOS does); they are read in the composed form (NFC), like the metadata and the roles",
            DataWarning,
            stacklevel=2,
        )
    _check_objects(frame, source)
    sep = frame.attrs.get("delimiter")
    if sep is not None and sep != ("\t" if path.suffix.lower() == ".tsv" else ","):
        warnings.warn(
            f"{source}: the columns are separated by {sep!r}, not by what the file name suggests (detected from the "
            f"first lines; {frame.shape[1]} columns)",
            DataWarning,
            stacklevel=2,
        )
    inferred = metadata_path is None
    metadata = _infer(frame, source) if inferred else read_metadata(metadata_path)
    from_file = bool(metadata.roles.columns())
    metadata = metadata.with_roles(metadata.roles.merged(roles.normalized()))
    md_source = str(metadata_path) if metadata_path else "inferred metadata"
    not_in_data = [c for c in metadata.columns if c not in frame.columns]
    if not_in_data:
        raise ConfigError(
            f"metadata names column(s) {not_in_data} that the table {path.name} lacks; "
            "remove them from the metadata or fix the names",
            source=md_source,
        )
    not_in_md = [c for c in frame.columns if c not in metadata.columns]
    if not_in_md:
        raise ConfigError(
            f"the table has column(s) {not_in_md} that the metadata does not describe; add them with an sdtype "
            '(`{"sdtype": "id"}` drops a column before any generator sees it)',
            source=md_source,
        )
    unknown = [c for c in metadata.roles.columns() if c not in frame.columns]
    if unknown:
        close = {c: _closest(c, list(frame.columns)) for c in unknown}
        hints = ", ".join(f"{c!r}" + (f" (did you mean {m!r}?)" if m else "") for c, m in close.items())
        raise ConfigError(f"dataset.roles names column(s) not in the table: {hints}", source=source)
    conflicts = metadata.roles.problems(c for c in metadata.columns if metadata.sdtype(c) == ID)
    if conflicts:
        origin = "dataset.roles" + (f" (with the roles in {Path(str(metadata_path)).name})" if from_file else "")
        raise ConfigError.of([f"{origin}: {p}" for p in conflicts], source=source)
    if metadata.primary_key is not None:
        _unique_key(frame[metadata.primary_key], metadata.primary_key, md_source)
    if inferred:
        metadata = _huge_integers_as_categories(frame, metadata, source)
    coerced = _coerce(frame, metadata, source)
    coerced.attrs = dict(frame.attrs)  # how the file was read (the CSV separator)
    return coerced, metadata, inferred


def _check_objects(frame: pd.DataFrame, source: str) -> None:
    """Cells no column type can hold: lists and records (Parquet list, struct or map columns), and date
    objects (Parquet date32) beyond the dates pandas holds."""
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object:
            continue
        kind = pd.api.types.infer_dtype(values, skipna=True)  # one pass in C; text columns stop here
        if kind in ("string", "empty", "integer", "floating", "boolean", "decimal", "bytes"):
            continue
        nested = values.map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray)))
        if nested.any():
            raise ConfigError(
                f"column {column!r} holds lists or records (a nested Parquet type), first at row {_row(nested)}; "
                "the suite compares plain values: flatten it into one column per field, or drop it from the table",
                source=source,
            )
        dates = values.map(lambda v: isinstance(v, dt.date))
        if dates.any():
            outside = _outside_date_range(values, dates, None, at_most=None)  # one outlier anywhere breaks SDV
            if outside.any():
                raise _outside_error(outside, column, source)


def _unique_key(values: pd.Series, column: str, source: str) -> None:
    """A primary key names one row each: no value missing or repeated."""
    bad = values.isna() | values.duplicated(keep="first")
    if bad.any():
        raise ConfigError(
            f"primary_key: column {column!r} is missing or repeated in {int(bad.sum())} row(s), first at row "
            f"{_row(bad)}; a primary key names one row each: fix the data, or remove primary_key from the metadata",
            source=source,
        )


def _huge_integers_as_categories(frame: pd.DataFrame, metadata: Metadata, source: str) -> Metadata:
    """Inferred metadata: a numerical column of integers beyond 2**53 (record numbers, hashes) becomes a category."""
    huge = [c for c in frame.columns if metadata.sdtype(c) == NUMERICAL and _huge(frame[c]).any()]
    if not huge:
        return metadata
    warnings.warn(
        f"{source}: column(s) {huge} hold integers beyond 2**53, which floats cannot keep apart; they are treated "
        "as categories, not numbers. Declare them identifiers (dataset.roles.identifiers) if they number records",
        DataWarning,
        stacklevel=3,
    )
    columns = {c: ({"sdtype": CATEGORICAL} if c in huge else dict(s)) for c, s in metadata.columns.items()}
    return Metadata(columns=columns, primary_key=metadata.primary_key, roles=metadata.roles)


def _infer(frame: pd.DataFrame, source: str) -> Metadata:
    try:
        return infer_metadata(frame)
    except Exception as exc:  # SDV's detection on a table it cannot type: bad input, not a crash
        raise ConfigError(
            f"could not infer the metadata ({type(exc).__name__}: {exc}); write a metadata JSON for the table "
            "and name it in dataset.metadata",
            source=source,
        ) from exc


def _closest(name: str, options: list[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(name, options, n=1)
    return found[0] if found else None


#: Warn when at least this share of rows repeats another row exactly.
REPEATED_ROWS = 0.5
#: A categorical column with this many levels, or more than half as many levels as values, is high-cardinality.
HIGH_CARDINALITY = 1000


def _inspect_columns(frame: pd.DataFrame, metadata: Metadata, dropped: tuple[str, ...], source: str) -> list[str]:
    """Warn about columns that may leak or teach a generator nothing; return the empty ones (to drop).

    An empty column (every value missing) holds nothing to learn or to leak; it is dropped with a
    warning, unless a role names it, which is an error (a secret or target with no values cannot be attacked
    or predicted).
    """
    roles = metadata.roles
    role_of = {c: r for r in ("quasi_identifiers", "secrets") for c in getattr(roles, r)}
    role_of.update({getattr(roles, r): r for r in ("target", "sequence_index") if getattr(roles, r)})
    kept = [c for c in frame.columns if c not in dropped]
    present: dict[str, int] = {}  # non-missing values per column
    levels: dict[str, np.ndarray] = {}  # distinct non-missing values per column
    for c in kept:
        missing = frame[c].isna()
        present[c] = len(frame) - int(missing.sum())
        if present[c]:
            levels[c] = frame[c][~missing].unique()
    empty = [c for c in kept if not present[c]]
    named = [c for c in empty if c in role_of]
    if named:
        raise ConfigError(
            "every value is missing in column(s) named by dataset.roles: "
            + ", ".join(f"{c!r} ({role_of[c]})" for c in named)
            + "; fix the data or take them out of the roles",
            source=source,
        )
    notes: list[str] = []
    if empty:
        notes.append(
            f"column(s) {empty} are empty (every value missing): nothing to learn or to leak, so they are dropped "
            "before any generator sees them; remove them from the table to silence this"
        )
    rest = [c for c in kept if c not in empty]
    n_rows = len(frame)
    constant = [c for c in rest if len(levels[c]) == 1 and present[c] == n_rows]
    if constant:
        notes.append(
            f"column(s) {constant} hold one value in every row: every generator reproduces them and no check learns "
            "anything from them; drop them unless the released table must keep them"
        )
    id_like, high, as_text = [], [], []
    for c in rest:
        values, sdtype, n_unique = frame[c], metadata.sdtype(c), len(levels[c])
        if c in constant or sdtype in _PERSONAL_SDTYPES or c == roles.sequence_index:
            continue
        integer_or_text = pd.api.types.is_integer_dtype(values) or not (
            pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)
        )
        if integer_or_text and sdtype not in (DATETIME, BOOLEAN) and n_rows >= 2 and n_unique == n_rows:
            id_like.append(c)  # n_unique == n_rows: no value missing, none repeated
            continue
        if sdtype in CONTINUOUS_SDTYPES or sdtype == BOOLEAN:
            continue
        if n_unique >= HIGH_CARDINALITY or (n_unique >= 50 and n_unique > 0.5 * present[c]):
            high.append(f"{c!r} ({n_unique} levels)")
        if values.dtype == object:
            text = pd.Series(levels[c])  # levels, not rows: cheap on long tables
            if not pd.to_numeric(text, errors="coerce").notna().all():
                if text.astype(str).str.strip().str.fullmatch(_NUMBER_AS_TEXT).mean() >= 0.9:
                    as_text.append(c)
    if id_like:
        notes.append(
            f"column(s) {id_like} have a different value in every row, like a record number, but are not declared "
            "identifiers: a generator that learns them can copy them, and an exact value links a synthetic row to "
            "a person. Add them to dataset.roles.identifiers (or give them sdtype id) if they identify records"
        )
    if high:
        notes.append(
            f"categorical column(s) {', '.join(high)} have very many levels: rare levels single people out, and "
            "generators and attacks get slow. Declare the column an identifier, drop it, or group its levels"
        )
    repeated = float(frame[rest].duplicated(keep=False).mean()) if rest else 0.0
    if repeated >= REPEATED_ROWS:
        notes.append(
            f"{repeated:.0%} of the rows repeat another row exactly: a copy of the training rows then looks like "
            "unseen data to the checks, so a copying generator (the `identity` canary) may be released. The gate "
            "can only tell copying from generating on tables whose records mostly differ"
        )
    if as_text:
        notes.append(
            f"column(s) {as_text} look like numbers stored as text (thousands separators or units) and are treated "
            "as categories; write plain numbers and declare them numerical in the metadata"
        )
    for note in notes:
        warnings.warn(f"{source}: {note}", DataWarning, stacklevel=3)
    return empty


def split_indices(
    n_rows: int, *, holdout: float, seed: int, groups: pd.Series | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions of train, control and reference.

    The holdout share of entities (rows when there is no entity) is drawn with `seed` and cut
    in two halves: control (what the attacks compare against) and reference (what the
    `holdout` generator returns). No entity has rows in two parts.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        codes = np.arange(n_rows)
    else:
        codes = pd.factorize(groups, use_na_sentinel=False)[0]
    n_groups = int(codes.max()) + 1
    order = rng.permutation(n_groups)
    n_holdout = int(round(holdout * n_groups))
    n_control = n_holdout // 2 + n_holdout % 2
    part = np.zeros(n_groups, dtype=np.int8)  # 0 train, 1 control, 2 reference
    part[order[:n_control]] = 1
    part[order[n_control:n_holdout]] = 2
    row_part = part[codes]
    return tuple(np.flatnonzero(row_part == k) for k in (0, 1, 2))  # type: ignore[return-value]


def prepare(
    path: Path, *, metadata_path: Path | None, roles: Roles, holdout: float, seed: int, sheet: str | int | None = None
) -> PreparedData:
    """Load, type, split and strip the dataset of a scenario."""
    frame, metadata, inferred = load_dataset(path, metadata_path=metadata_path, roles=roles, sheet=sheet)
    roles = metadata.roles
    if roles.sequence_index and not roles.entity:
        raise ConfigError(
            "dataset.roles.sequence_index is set but dataset.roles.entity is not; a sequence is ordered within "
            "an entity: name the patient id column as dataset.roles.entity",
            source=str(path),
        )
    ids = [c for c in frame.columns if metadata.sdtype(c) == ID]
    dropped = tuple(dict.fromkeys([*roles.identifiers, *([roles.entity] if roles.entity else []), *ids]))
    if roles.entity and frame[roles.entity].isna().any():
        missing = frame[roles.entity].isna()
        raise ConfigError(
            f"dataset.roles.entity column {roles.entity!r} is empty in {int(missing.sum())} row(s) "
            f"(first at row {_row(missing)}); every row needs the id of its person: fill them in or remove those rows",
            source=str(path),
        )
    empty = _inspect_columns(frame, metadata, dropped, str(path))
    dropped = tuple(dict.fromkeys([*dropped, *empty]))
    personal = [c for c in frame.columns if metadata.sdtype(c) in _PERSONAL_SDTYPES and c not in dropped]
    if personal:
        warnings.warn(
            f"{path}: column(s) {personal} look like personal data but are not declared identifiers; they will reach "
            "the generators. Add them to dataset.roles.identifiers if they identify people.",
            DataWarning,
            stacklevel=2,
        )
    kept = [c for c in frame.columns if c not in dropped]
    if not kept:
        raise ConfigError(
            "every column is an identifier, the entity or an id; nothing is left to synthesise", source=str(path)
        )
    entities = frame[roles.entity] if roles.entity else None
    train_idx, control_idx, reference_idx = split_indices(len(frame), holdout=holdout, seed=seed, groups=entities)
    for label, idx in (("control", control_idx), ("reference", reference_idx)):
        if len(idx) < MIN_PART_ROWS:
            raise ConfigError(
                f"split.holdout {holdout} leaves {len(idx)} rows in the {label} half of the holdout; "
                f"at least {MIN_PART_ROWS} are needed: raise split.holdout or use a larger table",
                source=str(path),
            )
    if len(train_idx) < MIN_PART_ROWS:
        raise ConfigError(
            f"split.holdout {holdout} leaves only {len(train_idx)} training rows; lower it", source=str(path)
        )
    data = frame[kept]
    part = lambda idx: data.iloc[idx].reset_index(drop=True)  # noqa: E731
    ent = lambda idx: None if entities is None else entities.iloc[idx].reset_index(drop=True)  # noqa: E731
    fingerprint = {
        "path": str(path),
        "sha256": sha256_file(path),
        "rows": int(len(frame)),
        "columns": int(frame.shape[1]),
        "train_rows": int(len(train_idx)),
        "control_rows": int(len(control_idx)),
        "reference_rows": int(len(reference_idx)),
        "entities": None if entities is None else int(entities.nunique(dropna=False)),
        **({"delimiter": frame.attrs["delimiter"]} if "delimiter" in frame.attrs else {}),
    }
    if roles.sequence_index:
        return _histories(
            {
                k: (part(idx), ent(idx))
                for k, idx in (("train", train_idx), ("control", control_idx), ("reference", reference_idx))
            },
            metadata=metadata,
            dropped=dropped,
            inferred=inferred,
            fingerprint=fingerprint,
            source=str(path),
        )
    return PreparedData(
        train=part(train_idx),
        control=part(control_idx),
        reference=part(reference_idx),
        metadata=metadata.without(dropped),
        full_metadata=metadata,
        metadata_inferred=inferred,
        dropped=dropped,
        train_entities=ent(train_idx),
        control_entities=ent(control_idx),
        reference_entities=ent(reference_idx),
        fingerprint=fingerprint,
    )


def _histories(
    parts: dict[str, tuple[pd.DataFrame, pd.Series]],
    *,
    metadata: Metadata,
    dropped: tuple[str, ...],
    inferred: bool,
    fingerprint: dict,
    source: str,
) -> PreparedData:
    """A longitudinal table: the checks compare one record per entity (`suite.histories`)."""
    long_md = metadata.without(dropped)
    long_md = long_md.with_roles(
        Roles(
            **{**vars(long_md.roles), "entity": metadata.roles.entity, "sequence_index": metadata.roles.sequence_index}
        )
    )
    try:
        schema = HistorySchema.fit(*parts["train"], long_md, str(metadata.roles.sequence_index))
    except ConfigError as exc:
        raise ConfigError(str(exc), source=source) from None
    flat = {k: schema.transform(rows, entities) for k, (rows, entities) in parts.items()}
    for label in ("control", "reference"):
        if len(flat[label][0]) < MIN_PART_ROWS:
            raise ConfigError(
                f"the {label} half of the holdout has {len(flat[label][0])} entities; at least {MIN_PART_ROWS} are "
                "needed: raise split.holdout or use a table with more patients",
                source=source,
            )
    fingerprint = {**fingerprint, "records": {k: int(len(v[0])) for k, v in flat.items()}, "record": "history"}
    return PreparedData(
        train=flat["train"][0],
        control=flat["control"][0],
        reference=flat["reference"][0],
        metadata=schema.history_metadata(),
        full_metadata=metadata,
        metadata_inferred=inferred,
        dropped=dropped,
        train_entities=flat["train"][1],
        control_entities=flat["control"][1],
        reference_entities=flat["reference"][1],
        fingerprint=fingerprint,
        long=LongData(
            *(parts[k][0] for k in ("train", "control", "reference")),
            *(parts[k][1] for k in ("train", "control", "reference")),
            metadata=long_md,
            schema=schema,
        ),
    )
