"""Calibration generators: known answers that prove the checks work.

`identity` returns training rows (every privacy check must block it), `holdout` returns real
rows no generator saw (what "no leakage" looks like), and `uniform` draws each column
independently and uniformly over its observed domain (private, and useless).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from suite.encoding import as_float
from suite.generators._columns import kind, require_fit, restore, with_missing
from suite.histories import COUNT
from suite.metadata import Metadata
from suite.registry import generators
from suite.seeding import fit_with_seed


def _draw_rows(rows: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """`n` rows of `rows`: each row once in random order, then again at random when n is larger."""
    m = len(rows)
    order = rng.permutation(m)
    idx = order[:n] if n <= m else np.concatenate([order, rng.integers(0, m, n - m)])
    return rows.iloc[idx].reset_index(drop=True)


@generators.register("identity")
class IdentityGenerator:
    """Returns the training rows themselves: a release that every privacy check must block."""

    copies_rows: ClassVar[bool] = True  # a canary: the contract kit does not hold copying against it
    calibration: ClassVar[bool] = True  # a yardstick, never chosen as the generator to release
    #: A leak canary (`suite.informative`): "everyone" leaks every training person, "few" only some.
    canary: ClassVar[str | None] = "everyone"
    name: ClassVar[str] = "identity"
    #: Which part of the split the runner fits this generator on.
    fit_on: ClassVar[str] = "train"

    def __init__(self) -> None:
        pass

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> IdentityGenerator:
        self.rows_ = train.copy()
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "rows_")
        return _draw_rows(self.rows_, n, np.random.default_rng(seed))


@generators.register("holdout")
class HoldoutGenerator(IdentityGenerator):
    """Returns real rows from the reference half of the holdout: the "no leakage" baseline.

    The runner fits it on the reference rows, which are disjoint from both the training rows
    and the control rows that the checks compare against.
    """

    name: ClassVar[str] = "holdout"
    fit_on: ClassVar[str] = "reference"
    canary: ClassVar[str | None] = None  # real unseen rows leak nobody


@generators.register("uniform")
class UniformGenerator:
    """Each column drawn independently and uniformly over its observed domain.

    Numbers and dates are uniform between the column's minimum and maximum; categories are
    equally likely; missing values keep the column's missing share.
    """

    calibration: ClassVar[bool] = True
    name: ClassVar[str] = "uniform"

    def __init__(self) -> None:
        pass

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> UniformGenerator:
        self.columns_: dict[str, tuple[str, object, float]] = {}
        self.dtypes_ = train.dtypes.copy()
        self.template_ = train.iloc[:0].copy()
        for column in train.columns:
            values = train[column]
            missing = float(values.isna().mean())
            if kind(metadata, column) == "categorical":
                domain: object = values.dropna().unique()
            else:
                numbers = as_float(values)
                finite = numbers[np.isfinite(numbers)]
                domain = (float(finite.min()), float(finite.max())) if len(finite) else (np.nan, np.nan)
            self.columns_[column] = (kind(metadata, column), domain, missing)
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "columns_")
        rng = np.random.default_rng(seed)
        out = {}
        for column, (k, domain, missing) in self.columns_.items():
            like = self.template_[column]
            if k == "categorical":
                values = np.asarray(domain, dtype=object)
                drawn = pd.Series(
                    values[rng.integers(0, len(values), n)] if len(values) else [None] * n, dtype=like.dtype
                )
            else:
                low, high = domain  # type: ignore[misc]
                numbers = rng.uniform(low, high, n) if np.isfinite(low) else np.full(n, np.nan)
                if pd.api.types.is_integer_dtype(like.dtype):
                    numbers = rng.integers(int(low), int(high) + 1, n).astype(float)
                drawn = restore(numbers, like)
            out[column] = with_missing(drawn, missing, rng)
        return pd.DataFrame(out)


@generators.register("noisy_copy")
class NoisyCopyGenerator:
    """Training rows with small noise on every number and date: a near copy to be blocked.

    Each numerical or datetime value moves by a normal draw with standard deviation `noise`
    times the column's standard deviation (rounded back to integers where the column holds
    integers); categories and missing values stay as they were. No row is an exact copy
    in its numbers, so only distance and membership checks can catch it.
    """

    copies_rows: ClassVar[bool] = True  # a canary: the contract kit does not hold copying against it
    calibration: ClassVar[bool] = True
    canary: ClassVar[str | None] = "everyone"
    name: ClassVar[str] = "noisy_copy"

    def __init__(self, *, noise: float = 0.05) -> None:
        self.noise = noise

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> NoisyCopyGenerator:
        self.rows_ = train.copy()
        self.scales_ = {}
        for column in train.columns:
            if kind(metadata, column) != "categorical":
                numbers = as_float(train[column])
                self.scales_[column] = float(np.nanstd(numbers)) if np.isfinite(numbers).any() else 0.0
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "rows_")
        rng = np.random.default_rng(seed)
        rows = _draw_rows(self.rows_, n, rng)
        for column, scale in self.scales_.items():
            numbers = as_float(rows[column]) + rng.normal(0.0, self.noise * scale, n)
            rows[column] = restore(numbers, rows[column]).to_numpy()
        return rows


@generators.register("verbatim_copy")
class VerbatimCopyGenerator:
    """A clean model's release with a share of training rows pasted in verbatim: a leak of a few people.

    `fraction` of the n rows are distinct training rows, unchanged; the rest come from the clean
    generator named by `base` (fitted on the same rows, with default parameters). A gate that blocks
    `identity` but releases this one only catches wholesale copies.
    """

    copies_rows: ClassVar[bool] = True
    calibration: ClassVar[bool] = True
    canary: ClassVar[str | None] = "few"
    name: ClassVar[str] = "verbatim_copy"

    def __init__(self, *, fraction: float = 0.05, base: str = "marginals") -> None:
        self.fraction = _fraction(fraction, self.name)
        self.base = base

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> VerbatimCopyGenerator:
        self.rows_ = train.copy()
        self.base_ = _clean_base(self.base, train, metadata, self.name, seed)
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "rows_")
        rng = np.random.default_rng(seed)
        copied = min(len(self.rows_), int(round(self.fraction * n)))
        pasted = self.rows_.iloc[rng.choice(len(self.rows_), copied, replace=False)]
        return _mixed_in(self.base_.sample(n - copied, seed=seed), pasted, rng)


def _fraction(value: float, who: str) -> float:
    """A leak canary's share of leaked rows, in (0, 1]."""
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{who}: fraction must be in (0, 1], got {value}")
    return value


def _clean_base(base: str, train: pd.DataFrame, metadata: Metadata, who: str, seed: int | None) -> object:
    """The clean generator a leak canary builds on, fitted on the same rows with default parameters and the
    canary's fit seed (the other canaries' fits draw nothing at random: `seed` is accepted and unused)."""
    if base in (who, "verbatim_copy", "outlier_copy", "partial_copy"):
        raise ValueError(f"{who}: base must name a clean generator, not a canary ({base!r})")
    return fit_with_seed(generators.get(base)(), train, metadata, seed)


def _history_structure(columns: list[str]) -> set[str]:
    """On a longitudinal table's history records (`suite.histories`: one record per patient): the columns
    that give the history its shape (the number of visits, the first visit time and the follow-up
    length), which a near-copy of a whole history keeps; empty on any other table."""
    if COUNT not in columns:
        return set()
    spans = [c for c in columns if c.endswith(".span") and f"{c[: -len('.span')]}.first" in columns]
    return {COUNT, *spans, *(f"{c[: -len('.span')]}.first" for c in spans)}


def _nudge(rows: pd.DataFrame, metadata: Metadata, train: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """`rows` with one value changed each: a number or date (of a column with many values, where the row
    has one) moved by a small step (1% of the column's standard deviation, at least one unit: 1 for
    integers, a day for dates), or, in a row without any number, one category replaced by another
    level of that column. No row stays an exact copy. On history records (a longitudinal table: each
    row is a patient's whole history) the history's shape is kept (`_history_structure`): the copy is
    that patient's whole history with one measured value moved."""
    out = rows.reset_index(drop=True).copy()
    structure = _history_structure(list(out.columns))
    numeric = [c for c in out.columns if kind(metadata, c) != "categorical" and c not in structure]
    categorical = [c for c in out.columns if kind(metadata, c) == "categorical"]
    steps = {}
    for c in numeric:
        values = as_float(train[c])
        finite = values[np.isfinite(values)]
        spread = float(np.std(finite)) if len(finite) else 0.0
        unit = 1.0 if pd.api.types.is_integer_dtype(train[c].dtype) else 0.0
        if kind(metadata, c) == "datetime":
            unit = 86_400e9
        steps[c] = max(0.01 * spread, unit, 1e-6)
    numbers = {c: as_float(out[c]).astype(float) for c in numeric}
    present = np.column_stack([np.isfinite(numbers[c]) for c in numeric]) if numeric else np.zeros((len(out), 0), bool)
    # one present number per row, chosen at random among the columns of many values (a flag or a
    # count of few values would leave its domain) when the row has one, else among all present
    wide = np.array([train[c].nunique() >= 10 for c in numeric], dtype=bool)
    usable = np.where((present & wide).any(axis=1, keepdims=True), present & wide, present)
    pick = np.argmax(np.where(usable, rng.random(present.shape), -1.0), axis=1) if numeric else None
    has_number = present.any(axis=1)
    for j, c in enumerate(numeric):
        moved = has_number & (pick == j)
        if moved.any():
            numbers[c][moved] += steps[c] * rng.choice([-1.0, 1.0], int(moved.sum()))
            out[c] = restore(numbers[c], out[c]).to_numpy()
    for i in np.flatnonzero(~has_number):
        for c in rng.permutation(categorical) if categorical else []:
            others = [v for v in pd.unique(train[c].dropna()) if v != out[c].iloc[i]]
            if others:
                column = out[c].copy()
                column.iloc[i] = others[rng.integers(len(others))]
                out[c] = column
                break
    return out


def _mixed_in(clean: pd.DataFrame, leaked: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = pd.concat([clean, leaked], ignore_index=True)
    return out.iloc[rng.permutation(len(out))].reset_index(drop=True)


@generators.register("outlier_copy")
class OutlierCopyGenerator:
    """A clean model's release with near-copies of the most isolated training rows: a leak of a few people.

    The `fraction` of training rows farthest from their `k` nearest other training rows (mean Gower
    distance, `suite.neighbors`) are pasted into the release of the clean generator `base` with one
    value each nudged (`_nudge`), so no exact-match check sees them. Outliers are the people a
    generator memorises (Stadler et al. 2022; Meeus et al. 2023): a worst-case gate must block this.
    `pick: random` copies rows drawn at random instead (a leak of ordinary people, to show a gate
    does not only catch outliers). On a longitudinal table the runner fits it on one record per
    patient (`suite.histories`), so it copies whole histories, their shape (visits, follow-up) intact.
    """

    copies_rows: ClassVar[bool] = True
    calibration: ClassVar[bool] = True
    canary: ClassVar[str | None] = "few"
    name: ClassVar[str] = "outlier_copy"

    def __init__(
        self, *, fraction: float = 0.02, base: str = "sdv.gaussian_copula", k: int = 5, pick: str = "isolated"
    ) -> None:
        if pick not in ("isolated", "random"):
            raise ValueError(f"outlier_copy: pick must be 'isolated' or 'random', got {pick!r}")
        _fraction(fraction, "outlier_copy")
        if int(k) < 1:
            raise ValueError(f"outlier_copy: k must be >= 1, got {k}")
        self.fraction = fraction
        self.base = base
        self.k = int(k)
        self.pick = pick

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> OutlierCopyGenerator:
        from suite.neighbors import GowerEncoder, isolation

        self.base_ = _clean_base(self.base, train, metadata, self.name, seed)
        self.metadata_ = metadata
        self.train_ = train.reset_index(drop=True)
        cols = list(train.columns)
        numerical = [c for c in cols if kind(metadata, c) != "categorical"]
        encoder = GowerEncoder(numerical=numerical, categorical=[c for c in cols if c not in numerical]).fit(train)
        enc = encoder.transform(train)
        score = isolation(enc, self.k)
        count = max(1, int(round(self.fraction * len(train))))
        if self.pick == "random":
            score = np.random.default_rng(len(train)).permutation(len(train)).astype(float)
        self.order_ = np.argsort(-score, kind="stable")[:count]  # the most isolated first
        self.isolation_ = score
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "order_")
        rng = np.random.default_rng(seed)
        copied = min(len(self.order_), int(round(self.fraction * n)))
        leaked = _nudge(self.train_.iloc[self.order_[:copied]], self.metadata_, self.train_, rng)
        return _mixed_in(self.base_.sample(n - copied, seed=seed), leaked, rng)


@generators.register("partial_copy")
class PartialCopyGenerator:
    """A clean model's rows carrying the quasi-identifiers and secrets of some training people.

    `fraction` of the n rows come from the clean generator `base`, then get the quasi-identifier and
    secret columns (`metadata.roles`) of as many distinct training rows drawn at random; the other
    columns stay synthetic. Someone who knows a person's quasi-identifiers reads their secret off the
    release: reconstruction must block this even though no whole row is copied. On a longitudinal
    table the rows are patients' history records, so it pastes patients, not visits.
    """

    copies_rows: ClassVar[bool] = True
    calibration: ClassVar[bool] = True
    canary: ClassVar[str | None] = "few"
    name: ClassVar[str] = "partial_copy"

    def __init__(self, *, fraction: float = 0.10, base: str = "sdv.gaussian_copula") -> None:
        _fraction(fraction, "partial_copy")
        self.fraction = fraction
        self.base = base

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> PartialCopyGenerator:
        roles = metadata.roles
        qi = [c for c in roles.quasi_identifiers if c in train.columns]
        secrets = [c for c in roles.secrets if c in train.columns and c not in qi]
        if not qi or not secrets:
            raise ValueError(
                "partial_copy pastes quasi-identifiers and secrets, but the metadata declares "
                f"{len(qi)} quasi-identifier(s) and {len(secrets)} secret(s) present in the table: declare "
                "`dataset.roles.quasi_identifiers` and `dataset.roles.secrets` in the scenario"
            )
        self.columns_ = qi + secrets
        self.train_ = train.reset_index(drop=True)
        self.base_ = _clean_base(self.base, train, metadata, self.name, seed)
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "columns_")
        rng = np.random.default_rng(seed)
        clean = self.base_.sample(n, seed=seed)
        copied = min(len(self.train_), int(round(self.fraction * n)))
        people = rng.choice(len(self.train_), copied, replace=False)
        rows = rng.choice(n, copied, replace=False)
        keep = np.setdiff1d(np.arange(n), rows)
        leaked = clean.iloc[rows].reset_index(drop=True)
        for c in self.columns_:
            leaked[c] = self.train_[c].iloc[people].reset_index(drop=True).astype(clean[c].dtype)
        return _mixed_in(clean.iloc[keep].reset_index(drop=True), leaked, rng)
