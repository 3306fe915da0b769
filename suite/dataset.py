"""From a scenario's dataset entry to the frames the run uses.

Loads the table, reads or infers its metadata, applies the roles, coerces each column to
its sdtype, drops the columns no generator may see (identifiers, the entity, ids) and
splits by entity into train | control | reference. The input file is only read.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from suite.errors import ConfigError
from suite.histories import HistorySchema
from suite.io import read_table, sha256_file
from suite.metadata import BOOLEAN, DATETIME, ID, NUMERICAL, Metadata, Roles, infer_metadata, read_metadata

#: The smallest control or reference part the checks can work with.
MIN_PART_ROWS = 20
_PERSONAL_SDTYPES = {"first_name", "last_name", "name", "email", "phone_number", "ssn", "address", "street_address"}


class DataWarning(UserWarning):
    """Something in the data that may leak or mislead, but does not stop the run."""


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
    if frame.columns.duplicated().any():
        dup = frame.columns[frame.columns.duplicated()][0]
        raise ConfigError(f"column {dup!r} appears twice; rename one", source=source)
    frame.columns = [str(c) for c in frame.columns]
    inferred = metadata_path is None
    metadata = infer_metadata(frame) if inferred else read_metadata(metadata_path)
    metadata = metadata.with_roles(metadata.roles.merged(roles))
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
            f"the table has column(s) {not_in_md} that the metadata does not describe; add them with an sdtype",
            source=md_source,
        )
    unknown = [c for c in metadata.roles.columns() if c not in frame.columns]
    if unknown:
        close = {c: _closest(c, list(frame.columns)) for c in unknown}
        hints = ", ".join(f"{c!r}" + (f" (did you mean {m!r}?)" if m else "") for c, m in close.items())
        raise ConfigError(f"dataset.roles names column(s) not in the table: {hints}", source=source)
    return _coerce(frame, metadata, source), metadata, inferred


def _closest(name: str, options: list[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(name, options, n=1)
    return found[0] if found else None


def _coerce(frame: pd.DataFrame, metadata: Metadata, source: str) -> pd.DataFrame:
    """A new frame whose columns carry the dtype their sdtype implies."""
    out = {}
    for column in frame.columns:
        values = frame[column]
        sdtype = metadata.sdtype(column)
        if sdtype == NUMERICAL and not pd.api.types.is_numeric_dtype(values):
            converted = pd.to_numeric(values, errors="coerce")
            bad = values[converted.isna() & values.notna()]
            if len(bad):
                raise ConfigError(
                    f"column {column!r} is declared numerical but holds {len(bad)} value(s) that are not numbers; "
                    "clean the column or declare it categorical in the metadata",
                    source=source,
                )
            values = converted
        elif sdtype == DATETIME and not pd.api.types.is_datetime64_any_dtype(values):
            fmt = metadata.columns[column].get("datetime_format")
            converted = pd.to_datetime(values, format=fmt, errors="coerce")
            if (converted.isna() & values.notna()).any():
                raise ConfigError(
                    f"column {column!r} is declared datetime but some values do not parse"
                    + (f" with datetime_format {fmt!r}" if fmt else "")
                    + "; give the right datetime_format in the metadata or clean the column",
                    source=source,
                )
            values = converted
        elif sdtype == BOOLEAN and values.dtype == object:
            values = values.astype("boolean")
        out[column] = values
    return pd.DataFrame(out, index=frame.index)


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
