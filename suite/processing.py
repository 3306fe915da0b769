"""Pre- and post-processing declared per generator in the scenario: imputation before fitting and
logical constraints on the output, enforced by rejection sampling with compliance reported. A
generator that can enforce a rule itself (`native_constraints`: SDV's inequality and fixed
combinations) is handed the rules its training rows obey; rejection still checks every row.

`Processed` wraps the generator, so every fit the run makes (the shadow attacks' refits too)
sees the same processing, and it keeps the Generator contract itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from suite.encoding import as_float
from suite.errors import ConfigError
from suite.metadata import Metadata
from suite.scenario import Constraint, FixedCombinationsConstraint, InequalityConstraint, RangeConstraint

#: Rejection rounds before the generator is declared unable to meet its constraints.
MAX_ROUNDS = 20


def constraint_columns(constraint: Constraint) -> list[str]:
    if isinstance(constraint, RangeConstraint):
        return [constraint.column]
    if isinstance(constraint, InequalityConstraint):
        return [constraint.low, constraint.high]
    return list(constraint.columns)


def check_constraints(constraints: Sequence[Constraint], metadata: Metadata, where: str) -> None:
    """Every column a constraint names exists and has a fitting type; a ConfigError otherwise."""
    problems = []
    for i, c in enumerate(constraints):
        for column in constraint_columns(c):
            if column not in metadata.columns:
                problems.append(f"constraints[{i}] ({c.kind}): no column {column!r} reaches the generator")
            elif not isinstance(c, FixedCombinationsConstraint) and column not in metadata.continuous:
                problems.append(f"constraints[{i}] ({c.kind}): column {column!r} is not a number or a date")
    if problems:
        raise ConfigError("; ".join(problems), source=where)


def combinations(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple]:
    """Each row's values of `columns` as a tuple (missing as None), comparable across tables."""
    part = frame[list(columns)].astype(object)
    return list(part.where(part.notna(), None).itertuples(index=False, name=None))


def complies(frame: pd.DataFrame, constraint: Constraint, allowed: set[tuple] | None = None) -> np.ndarray:
    """Per row, whether it obeys the constraint (a missing value obeys a range or an inequality)."""
    if isinstance(constraint, RangeConstraint):
        values = as_float(frame[constraint.column])
        ok = np.ones(len(frame), dtype=bool)
        if constraint.min is not None:
            ok &= ~(values < constraint.min)
        if constraint.max is not None:
            ok &= ~(values > constraint.max)
        return ok
    if isinstance(constraint, InequalityConstraint):
        low, high = as_float(frame[constraint.low]), as_float(frame[constraint.high])
        broken = low >= high if constraint.strict else low > high
        return ~broken
    keys = combinations(frame, constraint.columns)
    return np.fromiter((key in allowed for key in keys), dtype=bool, count=len(frame))


def impute(train: pd.DataFrame, metadata: Metadata, how: str, seed: int = 0) -> pd.DataFrame:
    """Missing values filled: numbers by IterativeImputer (as the ASyH pipeline does) or the median,
    categories by their most frequent value. Dtypes are kept; the input is not modified."""
    out = train.copy()
    numeric = [c for c in train.columns if c in metadata.continuous and train[c].dtype.kind in "fiub"]
    if numeric and train[numeric].isna().any().any():
        values = np.column_stack([as_float(train[c]) for c in numeric])
        usable = ~np.all(np.isnan(values), axis=0)
        if how == "iterative":
            from sklearn.experimental import enable_iterative_imputer  # noqa: F401
            from sklearn.impute import IterativeImputer

            filled = IterativeImputer(random_state=seed, max_iter=10).fit_transform(values[:, usable])
        else:
            filled = np.where(np.isnan(values[:, usable]), np.nanmedian(values[:, usable], axis=0), values[:, usable])
        for j, column in enumerate(c for c, u in zip(numeric, usable) if u):
            column_values = filled[:, j]
            if train[column].dtype.kind in "iu" or str(train[column].dtype).startswith("Int"):
                column_values = np.round(column_values)
            out[column] = pd.Series(column_values, index=train.index).astype(train[column].dtype)
    for column in train.columns:
        if column not in numeric and train[column].isna().any() and train[column].notna().any():
            out[column] = train[column].fillna(train[column].mode(dropna=True).iloc[0])
    return out


class Processed:
    """A generator with imputation before `fit` and constraints enforced on `sample`."""

    name: ClassVar[str] = "processed"

    def __init__(self, inner: Any, impute: str = "none", constraints: Sequence[Constraint] = ()) -> None:
        self.inner = inner
        self.impute = impute
        self.constraints = list(constraints)

    def fit(self, train: pd.DataFrame, metadata: Metadata) -> Processed:
        check_constraints(self.constraints, metadata, where=f"generator {getattr(self.inner, 'name', '?')}")
        rows = train if self.impute == "none" else impute(train, metadata, self.impute)
        self.imputed_ = int(train.isna().sum().sum() - rows.isna().sum().sum())
        self.allowed_ = {
            i: set(
                train[c.columns].astype(object).where(train[c.columns].notna(), None).itertuples(index=False, name=None)
            )
            for i, c in enumerate(self.constraints)
            if isinstance(c, FixedCombinationsConstraint)
        }
        native = getattr(self.inner, "native_constraints", frozenset())
        # the model enforces a rule itself only when the training rows obey it (SDV refuses otherwise);
        # rejection below still checks every rule on every sampled row
        self.enforced_by_ = [
            "sdv" if c.kind in native and complies(rows, c, self.allowed_.get(i)).all() else "rejection"
            for i, c in enumerate(self.constraints)
        ]
        if native:
            self.inner.use_constraints([c for c, how in zip(self.constraints, self.enforced_by_) if how == "sdv"])
        self.inner.fit(rows, metadata)
        self.compliance_: dict[str, Any] = {}
        return self

    def _ok(self, frame: pd.DataFrame) -> np.ndarray:
        ok = np.ones(len(frame), dtype=bool)
        for i, c in enumerate(self.constraints):
            ok &= complies(frame, c, self.allowed_.get(i))
        return ok

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        if not hasattr(self, "allowed_"):
            raise RuntimeError("generator is not fitted: call fit(train, metadata) before sample()")
        if not self.constraints:
            return self.inner.sample(n, seed=seed)
        kept: list[pd.DataFrame] = []
        have, drawn, first_share = 0, 0, None
        for round_ in range(MAX_ROUNDS):
            batch = self.inner.sample(n, seed=seed + round_ * 7919)
            ok = self._ok(batch)
            first_share = float(ok.mean()) if first_share is None else first_share
            drawn += len(batch)
            kept.append(batch[ok])
            have += int(ok.sum())
            if have >= n:
                break
        if have < n:
            raise RuntimeError(
                f"only {have} of {drawn} sampled rows obey the constraints after {MAX_ROUNDS} rounds; "
                "the generator cannot produce them often enough (check the constraints)"
            )
        self.compliance_ = {
            "compliant_share_before_rejection": first_share,
            "rows_drawn": drawn,
            "rounds": round_ + 1,
        }
        return pd.concat(kept, ignore_index=True).iloc[:n].reset_index(drop=True)

    def fit_info(self) -> dict[str, Any]:
        hook = getattr(self.inner, "fit_info", None)
        info = dict(hook()) if callable(hook) else {}
        if self.impute != "none":
            info["imputation"] = {"method": self.impute, "values_filled": self.imputed_}
        if self.constraints:
            rules = [{**c.model_dump(), "enforced_by": how} for c, how in zip(self.constraints, self.enforced_by_)]
            info["constraints"] = {"rules": rules, **self.compliance_}
        return info
