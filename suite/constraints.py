"""The logical rules a scenario declares for a generator's output (range, inequality, fixed combinations,
conditional) and how a table is checked against them; the runner enforces them (suite/processing.py) and the
`rules` check reports compliance (metrics/rules.py)."""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from suite.encoding import as_float
from suite.errors import ConfigError, brief
from suite.metadata import Metadata


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RangeConstraint(_Rule):
    """Values of `column` within [min, max] (either end optional)."""

    kind: Literal["range"]
    column: str
    min: float | None = Field(None, allow_inf_nan=False)
    max: float | None = Field(None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> RangeConstraint:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}; swap them")
        return self


class InequalityConstraint(_Rule):
    """`low` <= `high` row by row (< with `strict`); rows missing either value comply."""

    kind: Literal["inequality"]
    low: str
    high: str
    strict: bool = False


class FixedCombinationsConstraint(_Rule):
    """Only combinations of `columns` that occur in the training data."""

    kind: Literal["fixed_combinations"]
    columns: list[str] = Field(min_length=2)


#: Comparisons a conditional rule may make: all on numbers and dates, `eq`, `ne` and `in` on categories.
OPERATORS = ("gt", "ge", "lt", "le", "eq", "ne", "in")
#: The comparisons that need an order (numbers and dates only).
ORDERING = frozenset({"gt", "ge", "lt", "le"})


def _comparable(value: Any, where: str) -> Any:
    """A value a condition compares with: text, a finite number, a boolean or a date (kept as ISO text)."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value} is not a value a column holds; give a finite number")
    if not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"{where}: expected a number, a date or a category (got {brief(value)})")
    return value


def _conditions(value: Any, part: str) -> dict[str, dict[str, Any]]:
    """`{column: value}` or `{column: {op: value, ...}}` as `{column: {op: value}}` (a bare value is `eq`)."""
    if not isinstance(value, dict) or not value:
        raise ValueError(f"`{part}`: expected a mapping of column names to conditions, like {{income: {{gt: 50000}}}}")
    out: dict[str, dict[str, Any]] = {}
    for column, condition in value.items():
        where = f"column {brief(column)}"
        if not isinstance(condition, dict):
            out[str(column)] = {"eq": _comparable(condition, where)}
            continue
        unknown = [k for k in condition if k not in OPERATORS]
        if unknown or not condition:
            got = f" (got {brief(unknown[0])})" if unknown else ""
            raise ValueError(f"{where}: conditions are {', '.join(OPERATORS)}{got}")
        ops: dict[str, Any] = {}
        for op, v in condition.items():
            if op == "in":
                if not isinstance(v, list) or not v:
                    raise ValueError(f"{where}, in: expected a non-empty list of values")
                ops[op] = [_comparable(x, f"{where}, in") for x in v]
            else:
                ops[op] = _comparable(v, f"{where}, {op}")
        out[str(column)] = ops
    return out


class ConditionalConstraint(_Rule):
    """If every condition of `if` holds in a row, every condition of `then` must hold too.

    Conditions: `{column: value}` (equal) or `{column: {gt|ge|lt|le|eq|ne|in: value}}`; a missing value
    meets no condition (a row missing an `if` column is outside the rule; one missing a `then` column breaks it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    kind: Literal["conditional"]
    if_: dict[str, Any] = Field(alias="if")
    then: dict[str, Any]

    @field_validator("if_", mode="before")
    @classmethod
    def _if(cls, value: Any) -> dict[str, dict[str, Any]]:
        return _conditions(value, "if")

    @field_validator("then", mode="before")
    @classmethod
    def _then(cls, value: Any) -> dict[str, dict[str, Any]]:
        return _conditions(value, "then")


Constraint = Annotated[
    RangeConstraint | InequalityConstraint | FixedCombinationsConstraint | ConditionalConstraint,
    Field(discriminator="kind"),
]


def constraint_columns(constraint: Constraint) -> list[str]:
    if isinstance(constraint, RangeConstraint):
        return [constraint.column]
    if isinstance(constraint, InequalityConstraint):
        return [constraint.low, constraint.high]
    if isinstance(constraint, ConditionalConstraint):
        return list(dict.fromkeys([*constraint.if_, *constraint.then]))
    return list(constraint.columns)


def check_constraints(constraints: Sequence[Constraint], metadata: Metadata, where: str) -> None:
    """Every column a constraint names exists and has a fitting type; a ConfigError otherwise."""
    problems = []
    for i, c in enumerate(constraints):
        for column in constraint_columns(c):
            if column not in metadata.columns:
                problems.append(f"constraints[{i}] ({c.kind}): no column {column!r} reaches the generator")
            elif isinstance(c, ConditionalConstraint):
                problems += _conditional_problems(c, column, metadata, f"constraints[{i}] ({c.kind})")
            elif not isinstance(c, FixedCombinationsConstraint) and column not in metadata.continuous:
                problems.append(f"constraints[{i}] ({c.kind}): column {column!r} is not a number or a date")
    if problems:
        raise ConfigError("; ".join(problems), source=where)


def _conditional_problems(rule: ConditionalConstraint, column: str, metadata: Metadata, where: str) -> list[str]:
    """What is wrong with the conditions a conditional rule puts on `column` (given its sdtype)."""
    problems = []
    for part, conditions in (("if", rule.if_), ("then", rule.then)):
        for op, value in conditions.get(column, {}).items():
            values = value if op == "in" else [value]
            if op in ORDERING and column not in metadata.continuous:
                problems.append(
                    f"{where}: {part}.{column}.{op}: column {column!r} is a category; gt, ge, lt and le compare "
                    "numbers and dates (use eq, ne or in)"
                )
            elif metadata.sdtype(column) == "datetime" and any(_timestamp(v) is None for v in values):
                problems.append(
                    f"{where}: {part}.{column}.{op}: column {column!r} holds dates; write a date (2020-05-01)"
                )
            elif column in metadata.continuous and metadata.sdtype(column) != "datetime":
                if any(isinstance(v, str) and _number(v) is None for v in values):
                    problems.append(f"{where}: {part}.{column}.{op}: column {column!r} holds numbers; write a number")
    return problems


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _timestamp(value: Any) -> float | None:
    """A date as nanoseconds since 1970 (as `as_float` reads a datetime column), or None."""
    if isinstance(value, bool) or not isinstance(value, str):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if stamp is pd.NaT:
        return None
    return float((stamp.tz_convert(None) if stamp.tzinfo else stamp).value)


def _condition(series: pd.Series, op: str, value: Any) -> np.ndarray:
    """Per row, whether the value meets `op value`. A missing value meets no condition; a value the column
    cannot hold (text in a number column) equals no row."""
    present = series.notna().to_numpy()
    if series.dtype.kind in "mM" or isinstance(series.dtype, pd.DatetimeTZDtype):
        x, read = as_float(series), _timestamp
    elif series.dtype.kind in "fiub":
        x, read = as_float(series), _number
    else:
        x, read = series.astype(object).map(str).to_numpy(), str
    targets = [t for v in (value if op == "in" else [value]) if (t := read(v)) is not None]
    if not targets:
        return present.copy() if op == "ne" else np.zeros(len(series), dtype=bool)
    if op == "in":
        return np.isin(x, np.asarray(targets, dtype=x.dtype)) & present
    compare = {"gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal}
    compare |= {"eq": np.equal, "ne": np.not_equal}
    with np.errstate(invalid="ignore"):
        return np.asarray(compare[op](x, targets[0]), dtype=bool) & present


def meets(frame: pd.DataFrame, conditions: Mapping[str, Mapping[str, Any]]) -> np.ndarray:
    """Per row, whether every condition (`{column: {op: value}}`) holds."""
    ok = np.ones(len(frame), dtype=bool)
    for column, ops in conditions.items():
        for op, value in ops.items():
            ok &= _condition(frame[column], op, value)
    return ok


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
    if isinstance(constraint, ConditionalConstraint):
        return ~(meets(frame, constraint.if_) & ~meets(frame, constraint.then))
    keys = combinations(frame, constraint.columns)
    return np.fromiter((key in allowed for key in keys), dtype=bool, count=len(frame))
