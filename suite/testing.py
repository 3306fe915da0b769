"""Contract checks any generator or check must pass; third-party packages call them in their CI.

from suite.testing import check_generator
check_generator(MyGenerator, train, metadata)
"""

from __future__ import annotations

import fnmatch
import inspect
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import pandas as pd

from suite.dataset import PreparedData
from suite.io import sha256_frame
from suite.metadata import Metadata
from suite.types import Context, Measurement


def _constructor_params(cls: type) -> dict[str, Any]:
    return {n: p.default for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}


def check_constructor(cls: type) -> None:
    """Keyword-only parameters with defaults, stored unchanged, nothing else set."""
    params = _constructor_params(cls)
    for name, default in params.items():
        assert default is not inspect.Parameter.empty, f"{cls.__name__}: parameter {name!r} needs a default"
    instance = cls()
    fitted = [k for k in vars(instance) if k.endswith("_")]
    assert not fitted, f"{cls.__name__}.__init__ sets fitted state {fitted}"
    for name, default in params.items():
        assert getattr(instance, name) is default or getattr(instance, name) == default, (
            f"{cls.__name__} does not store {name!r} unchanged"
        )
    clone = cls(**{n: getattr(instance, n) for n in params})
    assert {n: getattr(clone, n) for n in params} == {n: getattr(instance, n) for n in params}, (
        f"{cls.__name__}: params do not survive cloning"
    )


@dataclass(frozen=True)
class ContractResult:
    """One clause of the generator contract: its name, whether it held, and why not."""

    clause: str
    ok: bool
    message: str = ""


def _copy_rate(synthetic: pd.DataFrame, rows: pd.DataFrame) -> float:
    """Share of synthetic rows that equal some row of `rows` in every column."""
    keys = set(pd.util.hash_pandas_object(rows, index=False).tolist())
    hashes = pd.util.hash_pandas_object(synthetic, index=False)
    return float(hashes.isin(keys).mean()) if len(synthetic) else 0.0


class _Rows:
    """How the contract counts, cuts and compares a generator's tables: rows, or (sequential) entities' visits."""

    def __init__(self, entity: str | None = None, schema: Any = None) -> None:
        self.entity, self.schema = entity, schema

    def count(self, frame: pd.DataFrame) -> int:
        return len(frame) if self.entity is None else int(frame[self.entity].nunique(dropna=False))

    def head(self, frame: pd.DataFrame, k: int) -> pd.DataFrame:
        if self.entity is None:
            return frame.head(k).reset_index(drop=True)
        keep = frame[self.entity].drop_duplicates().head(k)
        return frame[frame[self.entity].isin(keep)].reset_index(drop=True)

    def halves(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self.entity is None:
            half = len(frame) // 2
            return frame.iloc[:half], frame.iloc[half:]
        ids = frame[self.entity].drop_duplicates()
        first = frame[self.entity].isin(ids.head(len(ids) // 2))
        return frame[first].reset_index(drop=True), frame[~first].reset_index(drop=True)

    def records(self, frame: pd.DataFrame) -> pd.DataFrame:
        """What the copy clause compares: rows, or one record per history."""
        if self.entity is None:
            return frame
        return self.schema.transform(frame.drop(columns=[self.entity]), frame[self.entity])[0]


def _rows_for(cls: type, train: pd.DataFrame, metadata: Metadata) -> _Rows:
    if not getattr(cls, "sequential", False):
        return _Rows()
    from suite.histories import HistorySchema

    entity, index = metadata.roles.entity, metadata.roles.sequence_index
    if not entity or not index or entity not in train.columns:
        raise ValueError(
            "a sequential generator's contract runs on visits: the table needs its entity column, and the "
            "metadata roles.entity and roles.sequence_index (see suite.testing.sequence_table)"
        )
    visits = train.drop(columns=[entity])
    return _Rows(entity, HistorySchema.fit(visits, train[entity], metadata, index))


def generator_contract(
    cls: type, train: pd.DataFrame, metadata: Metadata, *, params: dict[str, Any] | None = None, n: int = 200
) -> list[ContractResult]:
    """Run every clause of the generator contract and report each (the `check-generator` command).

    Every fit gets seed 0 as the runner gives the scenario's seed: `fit(..., seed=0)`, or for a `fit`
    without `seed` (today's third-party plugins) under `seeded(0)` (`suite.seeding.fit_with_seed`). A
    generator whose `fit` takes `seed` must not read global random state: refitted with the same seed
    under another global state, it samples the same rows. The copy clause
    fits on one half of `train` and asks that the sample match rows of that half no more often than
    rows of the other half (natural duplicates count on both sides), unless the class declares
    `copies_rows = True` (the calibration canaries and the de-identification baseline).
    A sequential generator (`sequential = True`) is given visits with the entity column
    (`sequence_table`): n counts entities, and copies are whole histories.
    """
    from suite.generators._columns import ENTROPY
    from suite.seeding import fit_takes_seed, fit_with_seed, seeded

    params = dict(params or {})
    rows = _rows_for(cls, train, metadata)
    name = getattr(cls, "name", cls.__name__)
    results: list[ContractResult] = []

    def clause(title: str, ok: bool, message: str = "") -> bool:
        results.append(ContractResult(title, bool(ok), "" if ok else message))
        return bool(ok)

    try:
        check_constructor(cls)
        clause("constructor: keyword parameters with defaults, stored unchanged", True)
    except AssertionError as exc:
        clause("constructor: keyword parameters with defaults, stored unchanged", False, str(exc))
    try:
        cls(**params).sample(5, seed=0)
        clause("refuses to sample before fit", False, f"{name}.sample worked before fit")
    except Exception as exc:  # noqa: BLE001 - any clear error will do
        clause("refuses to sample before fit", "fit" in str(exc).lower(), f"unclear error: {type(exc).__name__}: {exc}")

    def fit(table: pd.DataFrame, world: int = 101) -> Any:
        """A fresh generator fitted with seed 0, the global random state set to `world` around the call."""
        with seeded(world):
            return fit_with_seed(cls(**params), table, metadata, 0)

    before = sha256_frame(train)
    try:
        generator = cls(**params)
        with seeded(101):
            fitted = fit_with_seed(generator, train, metadata, 0)
        first = generator.sample(n, seed=7)
    except Exception as exc:  # noqa: BLE001
        clause("fits and samples", False, f"{type(exc).__name__}: {exc}")
        return results
    clause("fit returns self", fitted is generator, f"{name}.fit returned {type(fitted).__name__}")
    clause("fit leaves its input intact", sha256_frame(train) == before, f"{name}.fit modified the training table")
    if not clause("sample returns a DataFrame", isinstance(first, pd.DataFrame), f"got {type(first).__name__}"):
        return results
    unit = "rows" if rows.entity is None else "entities"
    at_most = getattr(cls, "at_most_n", False)  # returns its rows, never one twice: at most n (`generalize`)
    counted = 0 < rows.count(first) <= n if at_most else rows.count(first) == n
    clause(f"requested {unit} count", counted, f"sample({n}) returned {rows.count(first)} {unit}")
    clause(
        "same columns in the same order",
        list(first.columns) == list(train.columns),
        f"columns {list(first.columns)} instead of {list(train.columns)}",
    )
    common = [c for c in train.columns if c in first.columns]
    wrong = {
        c: (str(train[c].dtype), str(first[c].dtype))
        for c in common
        if train[c].dtype != first[c].dtype and c != rows.entity  # entity ids are made up: any type
    }
    clause("same dtypes", not wrong, f"dtypes changed (train, sample): {wrong}")
    outside = {}
    for column in common:
        if column in metadata.columns and column not in metadata.continuous and column != rows.entity:
            seen = set(train[column].dropna().astype(str))
            new = set(first[column].dropna().astype(str)) - seen
            if new:
                outside[column] = sorted(new)[:3]
    clause("categories inside the training domain", not outside, f"values never seen in training: {outside}")
    dates = [c for c in common if pd.api.types.is_datetime64_any_dtype(train[c])]
    bad_dates = [c for c in dates if first[c].notna().any() and not pd.api.types.is_datetime64_any_dtype(first[c])]
    clause("dates come back as dates", not bad_dates, f"not dates: {bad_dates}")
    gaps = [c for c in common if train[c].isna().mean() >= 0.1 and not first[c].isna().any()]
    clause("missing values kept", not gaps, f"missing in >= 10% of training rows, never in the sample: {gaps}")
    info = generator.fit_info() if callable(getattr(generator, "fit_info", None)) else {}
    if isinstance(info, dict) and info.get("noise_source") == ENTROPY:
        # private noise from the OS's entropy differs between refits by design (random_state pins it)
        clause("same seed, same rows (refitted; private noise from entropy: not expected)", True)
    else:
        _same_rows(clause, "same seed, same rows (refitted)", first, lambda: fit(train).sample(n, seed=7))
        if fit_takes_seed(cls):
            _same_rows(
                clause,
                "fit(seed=) ignores global random state (refitted under another)",
                first,
                lambda: fit(train, world=202).sample(n, seed=7),
            )
    other = generator.sample(n, seed=8)
    clause(
        "another seed, other rows",
        not first.equals(other) or train.drop_duplicates().shape[0] <= 1,
        f"{name}.sample ignores its seed",
    )
    try:
        tiny = fit(rows.head(train, 20)).sample(30, seed=1)
        fits = 0 < rows.count(tiny) <= 30 if at_most else rows.count(tiny) == 30
        clause(f"fits a 20-{unit[:-1]} table", fits, f"sample(30) returned {rows.count(tiny)} {unit}")
    except Exception as exc:  # noqa: BLE001
        clause(f"fits a 20-{unit[:-1]} table", False, f"{type(exc).__name__}: {exc}")
    if getattr(cls, "copies_rows", False):
        clause("copies no training row wholesale (exempt: copies_rows = True)", True)
    else:
        seen_half, unseen_half = rows.halves(train)
        sample = fit(seen_half.reset_index(drop=True)).sample(max(n, 500), seed=3)
        sample, seen_half, unseen_half = (rows.records(f) for f in (sample, seen_half, unseen_half))
        own, other_rate = _copy_rate(sample, seen_half), _copy_rate(sample, unseen_half)
        clause(
            "copies no training row wholesale",
            own <= other_rate + 0.02,
            f"{own:.1%} of sampled rows are rows it was fitted on, against {other_rate:.1%} for rows it never saw",
        )
    return results


def _same_rows(
    clause: Callable[[str, bool, str], bool], title: str, first: pd.DataFrame, again: Callable[[], pd.DataFrame]
) -> None:
    """The clause `title`: the frame `again()` returns equals `first`."""
    try:
        pd.testing.assert_frame_equal(first, again())
        clause(title, True, "")
    except AssertionError as exc:
        clause(title, False, str(exc).splitlines()[0])


def check_generator(
    cls: type, train: pd.DataFrame, metadata: Metadata, *, params: dict[str, Any] | None = None, n: int = 200
) -> None:
    """The generator contract as a pytest helper: fails with every clause that did not hold."""
    failed = [r for r in generator_contract(cls, train, metadata, params=params, n=n) if not r.ok]
    assert not failed, f"{getattr(cls, 'name', cls.__name__)} breaks the contract:\n" + "\n".join(
        f"- {r.clause}: {r.message}" for r in failed
    )


def check_check(cls: type, ctx: Context) -> list[Measurement]:
    """The check contract: declared names, finite values or an error, stable under the same seed."""
    check_constructor(cls)
    before = [sha256_frame(f) for f in (ctx.train, ctx.holdout, ctx.synthetic)]
    measurements = cls().evaluate(ctx)
    assert [sha256_frame(f) for f in (ctx.train, ctx.holdout, ctx.synthetic)] == before, (
        f"{cls.__name__} modified its inputs"
    )
    assert measurements, f"{cls.__name__} produced no measurement"
    for m in measurements:
        assert isinstance(m, Measurement), f"{cls.__name__} returned {type(m).__name__}, not a Measurement"
        assert any(fnmatch.fnmatchcase(m.name, p) for p in cls.measures), (
            f"{m.name!r} is not among {cls.__name__}.measures"
        )
        assert m.name.startswith(cls.name + "."), f"{m.name!r} must start with the check's name {cls.name!r}"
        declared_goal = next((s.goal for s in getattr(cls, "declares", ()) if s.matches(m.name)), m.goal)
        assert m.goal == declared_goal, f"{m.name}: goal {m.goal} differs from the declared {declared_goal}"
        assert m.error is not None or math.isfinite(m.value), f"{m.name} is {m.value} without an error"
        if m.ci is not None:
            assert m.ci[0] <= m.ci[1], f"{m.name}: interval {m.ci} is reversed"
    again = cls().evaluate(ctx)
    assert [(m.name, m.value, m.ci) for m in again] == [(m.name, m.value, m.ci) for m in measurements], (
        f"{cls.__name__} is not reproducible"
    )
    return measurements


def context_for(
    data: PreparedData, generator: str, *, seed: int = 0, params: dict[str, Any] | None = None, n: int | None = None
) -> Context:
    """The Context a run builds for `generator` on prepared data: fitted, sampled, seeded as the runner does."""
    from suite.plan import Component
    from suite.registry import generators
    from suite.runner import fit_generator, make_context
    from suite.scenario import GeneratorSpec

    params = dict(params or {})
    spec = GeneratorSpec(name=generator, params=params)
    component = Component(spec=spec, cls=generators.get(generator), params=params)
    synthetic = fit_generator(component, data, seed).sample(n or len(data.train), seed=seed)
    return make_context(component, data, synthetic[list(data.train.columns)].reset_index(drop=True), seed=seed)


def shipped(name: str) -> AbstractContextManager[Path]:
    """A table shipped with the package (`suite.data`: data/ in a checkout, inside the wheel when installed)."""
    return as_file(files("suite.data") / name)


def contract_table(rows: int = 1_500, seed: int = 0) -> tuple[pd.DataFrame, Metadata]:
    """The shipped data the contract runs on: real COVID-19 test rows (numbers, categories,
    missing values) with a date column derived from the pandemic day, so dates are exercised too.
    Identifiers are dropped as a run drops them."""
    from suite.metadata import read_metadata

    with shipped("covid_testing.parquet") as table, shipped("covid_testing.metadata.json") as meta:
        frame, metadata = pd.read_parquet(table), read_metadata(meta)
    dropped = ["subject_id", "fake_first_name", "fake_last_name"]
    frame = frame.drop(columns=dropped).sample(n=min(rows, len(frame)), random_state=seed).reset_index(drop=True)
    frame["test_date"] = pd.Timestamp("2020-03-01") + pd.to_timedelta(frame["pan_day"].astype("float64"), unit="D")
    columns = {c: dict(s) for c, s in metadata.columns.items() if c not in dropped}
    columns["test_date"] = {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"}
    return frame, Metadata(columns=columns)


def sequence_table(patients: int | None = None, seed: int = 0) -> tuple[pd.DataFrame, Metadata]:
    """The shipped longitudinal data a sequential generator's contract runs on: the PBC follow-up
    visits (entity `id`, sequence index `day`), `patients` of them drawn at random (all by default)."""
    from suite.metadata import read_metadata

    with shipped("pbcseq.parquet") as table, shipped("pbcseq.metadata.json") as meta:
        frame, metadata = pd.read_parquet(table), read_metadata(meta)
    if patients is not None:
        ids = frame["id"].drop_duplicates().sample(n=min(patients, frame["id"].nunique()), random_state=seed)
        frame = frame[frame["id"].isin(ids)].reset_index(drop=True)
    return frame, metadata


def contract_data_for(cls: type, rows: int = 1_500) -> tuple[pd.DataFrame, Metadata]:
    """The table `check-generator` uses: visits for a sequential generator, rows otherwise."""
    if getattr(cls, "sequential", False):
        return sequence_table()
    return contract_table(rows)
