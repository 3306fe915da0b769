"""Longitudinal tables: a patient's whole history becomes one record.

A table with an entity (`roles.entity`) and a sequence index (`roles.sequence_index`) holds several
rows per patient. Every check compares records, and on such a table the record is the history:
two patients whose visits are each plausible can still be one real patient's sequence copied.
`HistorySchema` is fitted on the training rows and turns any long table (train, holdout,
synthetic) into one row per entity with the same columns:

* `n_records`: how many rows the entity has;
* `<index>.first` and `<index>.span` (last minus first; days for dates) of the sequence index;
* a *static* column (one value per entity in every training history, like sex or baseline age)
  keeps its name and its first non-missing value;
* a time-varying number or date: `<col>.first`, `<col>.last` and (numbers) `<col>.mean`;
* a time-varying category: `<col>.first` and `<col>.last`.

Roles follow: a static quasi-identifier, secret or target keeps its name, a time-varying one
becomes `<col>.last` (the latest value is what an attacker would most likely know).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from suite.errors import ConfigError
from suite.metadata import CONTINUOUS_SDTYPES, NUMERICAL, Metadata, Roles

COUNT = "n_records"


@dataclass(frozen=True)
class HistorySchema:
    """Which columns are static and how each becomes features of a history (fitted on train)."""

    sequence_index: str
    static: tuple[str, ...]
    varying: tuple[str, ...]
    metadata: Metadata  # of the long table, without the entity

    @classmethod
    def fit(cls, long: pd.DataFrame, entities: pd.Series, metadata: Metadata, sequence_index: str) -> HistorySchema:
        if sequence_index not in long.columns:
            raise ConfigError(
                f"dataset.roles.sequence_index names {sequence_index!r}, which is not a column of the table "
                "(or it was dropped as an identifier); name the visit time or visit number column"
            )
        if metadata.sdtype(sequence_index) not in CONTINUOUS_SDTYPES:
            raise ConfigError(
                f"dataset.roles.sequence_index {sequence_index!r} has sdtype {metadata.sdtype(sequence_index)!r}; "
                "it must be numerical or datetime (declare it so in the metadata)"
            )
        if long[sequence_index].isna().any():
            raise ConfigError(
                f"dataset.roles.sequence_index {sequence_index!r} has missing values; every row needs its time"
            )
        codes = pd.factorize(entities, use_na_sentinel=False)[0]
        others = [c for c in long.columns if c != sequence_index]
        distinct = long[others].groupby(codes).nunique(dropna=True).max()
        static = [c for c in others if int(distinct[c]) <= 1]
        varying = [c for c in others if int(distinct[c]) > 1]
        return cls(sequence_index, tuple(static), tuple(varying), metadata)

    def feature(self, column: str) -> str:
        """The history column that carries a long column's role (static: itself; varying: its last value)."""
        if column in self.static:
            return column
        if column == self.sequence_index:
            return f"{column}.span"
        return f"{column}.last"

    def history_metadata(self) -> Metadata:
        md = self.metadata
        columns: dict[str, dict] = {COUNT: {"sdtype": NUMERICAL}}
        index_type = md.sdtype(self.sequence_index)
        columns[f"{self.sequence_index}.first"] = {"sdtype": index_type}
        columns[f"{self.sequence_index}.span"] = {"sdtype": NUMERICAL}
        for c in self.static:
            columns[c] = dict(md.columns[c])
        for c in self.varying:
            spec = dict(md.columns[c])
            columns[f"{c}.first"] = spec
            columns[f"{c}.last"] = spec
            if md.sdtype(c) == NUMERICAL:
                columns[f"{c}.mean"] = {"sdtype": NUMERICAL}
        roles = md.roles
        keep = lambda names: tuple(dict.fromkeys(self.feature(c) for c in names if c in md.columns))  # noqa: E731
        return Metadata(
            columns=columns,
            roles=Roles(
                quasi_identifiers=keep(roles.quasi_identifiers),
                secrets=keep(roles.secrets),
                target=self.feature(roles.target) if roles.target in md.columns else None,
            ),
        )

    def transform(self, long: pd.DataFrame, entities: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
        """One row per entity (in order of first appearance) and the entity of each row."""
        if len(entities) != len(long):
            raise ValueError(f"entity ids ({len(entities)}) do not line up with the rows ({len(long)})")
        codes, uniques = pd.factorize(pd.Series(entities).reset_index(drop=True), use_na_sentinel=False)
        order = np.lexsort((np.arange(len(long)), _sortable(long[self.sequence_index]), codes))
        rows = long.iloc[order].reset_index(drop=True)
        groups = rows.groupby(codes[order], sort=True)
        out: dict[str, pd.Series] = {COUNT: groups.size().astype("int64")}
        index = groups[self.sequence_index]
        first, last = index.first(), index.last()
        out[f"{self.sequence_index}.first"] = first
        span = last - first
        out[f"{self.sequence_index}.span"] = (
            span.dt.total_seconds() / 86_400.0 if pd.api.types.is_timedelta64_dtype(span) else span.astype("float64")
        )
        for c in self.static:
            out[c] = _keep_dtype(groups[c].first(), long[c])
        for c in self.varying:
            out[f"{c}.first"] = _keep_dtype(groups[c].first(), long[c])
            out[f"{c}.last"] = _keep_dtype(groups[c].last(), long[c])
            if self.metadata.sdtype(c) == NUMERICAL:
                out[f"{c}.mean"] = groups[c].mean().astype("float64")
        frame = pd.DataFrame(out).reset_index(drop=True)
        return frame, pd.Series(uniques, name="entity")

    def columns(self) -> list[str]:
        return list(self.history_metadata().columns)


def _sortable(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("int64").to_numpy()
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def _keep_dtype(values: pd.Series, like: pd.Series) -> pd.Series:
    """groupby.first/last keep most dtypes; integer columns with a missing history come back as float."""
    values = values.reset_index(drop=True)
    if values.dtype == like.dtype:
        return values
    try:
        return values.astype(like.dtype)
    except (TypeError, ValueError):
        return values


class AsHistories:
    """A fitted sequential generator whose `sample(n)` returns `n` histories (one record each); not `exact`
    (a table made elsewhere): the histories of the visits it returns, however many."""

    def __init__(self, generator: object, schema: HistorySchema, entity: str, exact: bool = True) -> None:
        self.generator = generator
        self.schema = schema
        self.entity = entity
        self.exact = exact
        self.name = getattr(generator, "name", type(generator).__name__)

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        visits = self.generator.sample(n, seed=seed)  # type: ignore[attr-defined]
        if not isinstance(visits, pd.DataFrame) or self.entity not in visits.columns:
            raise ValueError(
                f"{self.name} is sequential: sample() must return the visits with the entity column {self.entity!r}"
            )
        expected = [*self.schema.metadata.columns]
        missing = [c for c in expected if c not in visits.columns]
        if missing:
            raise ValueError(f"{self.name}: sample() returned visits without the columns {missing}")
        frame, entities = self.schema.transform(visits[expected], visits[self.entity])
        if self.exact and len(frame) != n:
            raise ValueError(f"{self.name}: sample({n}) returned the visits of {len(frame)} entities")
        return frame

    def fit_info(self) -> dict:
        hook = getattr(self.generator, "fit_info", None)
        return hook() if callable(hook) else {}


def rows_of_entities(records: pd.DataFrame, parts: list[tuple[pd.DataFrame, pd.Series]]) -> list[object]:
    """The entity of each history record, found by its content among the given (histories, entities) parts.

    A shadow attack hands the generator back a selection of records; a sequential generator
    needs those records' visits, so each record is traced to its entity.
    """
    lookup: dict[int, object] = {}
    for frame, entities in parts:
        for key, entity in zip(pd.util.hash_pandas_object(frame, index=False).to_numpy(), entities, strict=True):
            lookup.setdefault(int(key), entity)
    keys = pd.util.hash_pandas_object(records.reset_index(drop=True), index=False).to_numpy()
    missing = [i for i, k in enumerate(keys) if int(k) not in lookup]
    if missing:
        raise ValueError(f"{len(missing)} history record(s) match no entity of the data; cannot refit on visits")
    return [lookup[int(k)] for k in keys]
