"""Rules: does the synthetic table obey the scenario's declared constraints, and which deterministic rules
does the training table hold (suggestions found by shallow decision trees, never enforced unless declared)?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from suite.constraints import (
    ConditionalConstraint,
    Constraint,
    FixedCombinationsConstraint,
    combinations,
    complies,
    meets,
)
from suite.disclosure import coded_range
from suite.encoding import as_float
from suite.metadata import Metadata
from suite.metrics._tabular import subsample
from suite.registry import checks
from suite.stats import wilson_ci
from suite.types import Context, Goal, Measurement, MeasurementSpec, names, utility

#: Category levels per column a tree may split on (the most frequent ones).
MAX_LEVELS = 50
#: The label of training rows a rule may not predict: a missing value, or a level rarer than `min_count`.
_OTHER = "\x00other"


@checks.register("rules")
class RulesMetric:
    """Compliance of the synthetic rows with the generator's declared constraints (`rules.compliance`: the
    share obeying all of them; `rules.<i>.compliance`: constraint i alone), and rule discovery.

    Discovery fits, for each categorical column, a decision tree of depth `max_depth` on the other
    columns of the training rows; each pure leaf that at least `min_count` training rows reach (and
    `ctx.min_count` in any case) becomes a suggested conditional rule in the scenario's syntax (a column
    with one common level is skipped: its rules would describe the rarer rows). Only
    levels seen `min_count` times enter a tree, and thresholds are rounded to the fewest digits that
    split the training rows the same way, so a suggestion names no rare level and no extreme value.
    """

    name: ClassVar[str] = "rules"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        utility("rules.compliance", Goal.MAXIMIZE, "share of synthetic rows obeying every rule", bounds=(0, 1)),
        utility("rules.*.compliance", Goal.MAXIMIZE, "share of synthetic rows obeying one rule", bounds=(0, 1)),
        utility("rules.discovered", Goal.MAXIMIZE, "deterministic rules found in the training rows (suggestions)"),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)

    def __init__(self, *, max_depth: int = 2, min_count: int = 10, max_rules: int = 20, max_rows: int = 50_000) -> None:
        self.max_depth = max_depth
        self.min_count = min_count
        self.max_rules = max_rules
        self.max_rows = max_rows

    def evaluate(self, ctx: Context) -> list[Measurement]:
        out = _compliance(ctx) if ctx.rules else []
        found = discover(
            ctx.train,
            ctx.metadata,
            max(self.min_count, ctx.min_count),
            max_depth=self.max_depth,
            seed=ctx.seed,
            max_rows=self.max_rows,
        )
        found = sorted(found, key=lambda r: -r["support"])[: self.max_rules]
        for rule in found:
            rule["synthetic_compliance"] = float(complies(ctx.synthetic, _as_constraint(rule["rule"])).mean())
        out.append(
            Measurement(
                "rules.discovered",
                float(len(found)),
                Goal.MAXIMIZE,
                details={"suggestions": found, "enforced": False},
                meaning="deterministic rules found in the training rows (suggestions: declare one to enforce it)",
            )
        )
        return out


def _compliance(ctx: Context) -> list[Measurement]:
    """`rules.compliance` and one `rules.<i>.compliance` per declared rule, with the control rows' as baseline."""

    def obeys(frame: pd.DataFrame) -> np.ndarray:
        return np.column_stack([complies(frame, r, _allowed(ctx.train, r)) for r in ctx.rules])

    synthetic, control = obeys(ctx.synthetic), obeys(ctx.holdout)
    n = len(ctx.synthetic)

    def measure(name: str, ok: np.ndarray, real: np.ndarray, meaning: str) -> Measurement:
        k = int(ok.sum())
        return Measurement(
            name,
            k / n if n else float("nan"),
            Goal.MAXIMIZE,
            ci=wilson_ci(k, n, ctx.confidence) if n else None,
            baseline=float(real.mean()) if len(real) else None,
            meaning=meaning,
            details={"rows": n, "rows_breaking": n - k},
        )

    out = [
        measure(
            "rules.compliance",
            synthetic.all(axis=1),
            control.all(axis=1),
            "share of synthetic rows obeying every declared constraint (baseline: real control rows)",
        )
    ]
    for i, rule in enumerate(ctx.rules):
        out.append(
            measure(
                f"rules.{i}.compliance",
                synthetic[:, i],
                control[:, i],
                f"share of synthetic rows obeying constraints[{i}] ({rule.kind})",
            )
        )
    return out


def _allowed(train: pd.DataFrame, rule: Constraint) -> set[tuple] | None:
    return set(combinations(train, rule.columns)) if isinstance(rule, FixedCombinationsConstraint) else None


def _as_constraint(rule: dict[str, Any]) -> ConditionalConstraint:
    return ConditionalConstraint.model_validate(rule)


def discover(
    train: pd.DataFrame,
    metadata: Metadata,
    min_count: int,
    *,
    max_depth: int = 2,
    seed: int = 0,
    max_rows: int = 50_000,
) -> list[dict[str, Any]]:
    """Deterministic rules of the training rows: `[{"rule": {kind, if, then}, "support": rows}]`.

    The trees learn from at most `max_rows` rows (a seeded subsample); a rule is kept only when every
    training row meeting its `if` meets its `then`, and at least `min_count` rows meet its `if`.
    """
    from sklearn.tree import DecisionTreeClassifier

    rows = subsample(train, max_rows, np.random.default_rng(seed)).reset_index(drop=True)
    features, describe = _features(rows, metadata, min_count)
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    for target in metadata.discrete:
        if target not in train.columns:
            continue
        y = _labels(rows[target], min_count)
        if len(set(y) - {_OTHER}) < 2:
            continue  # one common level: a rule would only tell it from missing or rare ones (fewer than min_count)
        own = [j for j, (column, _) in enumerate(describe) if column != target]
        if not own:
            continue
        tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_count, random_state=seed)
        tree.fit(features[:, own], y)
        for leaf, path in _leaves(tree.tree_):
            counts = tree.tree_.value[leaf][0]
            label = tree.classes_[int(np.argmax(counts))]
            if label == _OTHER or np.count_nonzero(counts) != 1:
                continue
            conditions = _conditions(path, [describe[j] for j in own], rows, min_count)
            if conditions is None:
                continue
            level = _level(train[target], label)
            rule = {"kind": "conditional", "if": conditions, "then": {target: level}}
            constraint = _as_constraint(rule)
            support = int(meets(train, constraint.if_).sum())
            key = repr(constraint.model_dump())
            if support >= min_count and complies(train, constraint).all() and key not in seen:
                seen.add(key)
                found.append({"rule": constraint.model_dump(), "support": support})
    return found


def _labels(values: pd.Series, min_count: int) -> np.ndarray:
    """Each row's level as text; missing values and levels rarer than `min_count` as one label no rule predicts."""
    text = values.astype(object).where(values.notna(), None).map(lambda v: _OTHER if v is None else str(v))
    counts = text.value_counts()
    return text.where(text.map(counts) >= min_count, _OTHER).to_numpy(dtype=object)


def _level(values: pd.Series, label: str) -> Any:
    """The column's own value whose text is `label` (a number stays a number in the rule)."""
    for v in values.dropna().unique():
        if str(v) == label:
            return v.item() if isinstance(v, np.generic) else v
    return label


def _features(train: pd.DataFrame, metadata: Metadata, min_count: int) -> tuple[np.ndarray, list[tuple[str, Any]]]:
    """The training rows as a number matrix: numbers and dates as they are (missing as NaN), each category
    level seen at least `min_count` times as a 0/1 column. `describe[j]` is (column, None) for a number
    or (column, level) for a level's indicator."""
    columns: list[np.ndarray] = []
    describe: list[tuple[str, Any]] = []
    for column in train.columns:
        if column not in metadata.columns:
            continue
        if column in metadata.continuous:
            columns.append(as_float(train[column], column))
            describe.append((column, None))
            continue
        counts = train[column].value_counts(dropna=True)
        for level in counts.index[counts >= min_count][:MAX_LEVELS]:
            columns.append((train[column] == level).to_numpy(dtype=float))
            describe.append((column, level.item() if isinstance(level, np.generic) else level))
    matrix = np.column_stack(columns) if columns else np.empty((len(train), 0))
    return matrix, describe


def _leaves(tree: Any) -> list[tuple[int, list[tuple[int, float, bool]]]]:
    """Each leaf with its path: (feature, threshold, went left) per split from the root."""
    out = []
    pending: list[tuple[int, list[tuple[int, float, bool]]]] = [(0, [])]
    while pending:
        node, path = pending.pop()
        left, right = tree.children_left[node], tree.children_right[node]
        if left == right:  # a leaf
            if path:
                out.append((node, path))
            continue
        f, t = int(tree.feature[node]), float(tree.threshold[node])
        pending.append((left, [*path, (f, t, True)]))
        pending.append((right, [*path, (f, t, False)]))
    return out


def _conditions(
    path: Sequence[tuple[int, float, bool]], describe: Sequence[tuple[str, Any]], train: pd.DataFrame, min_count: int
) -> dict[str, dict[str, Any]] | None:
    """A leaf's path as `{column: {op: value}}`; None when a threshold cannot be shown (no value between
    the `min_count`-th smallest and largest of its column splits the rows the same way)."""
    out: dict[str, dict[str, Any]] = {}
    for f, threshold, left in path:
        column, level = describe[f]
        if level is not None:  # a 0/1 indicator: left is "not this level"
            out.setdefault(column, {})["ne" if left else "eq"] = level
            continue
        value = _rounded(train[column], threshold, min_count)
        if value is None:
            return None
        out.setdefault(column, {})["le" if left else "gt"] = value
    return out


def _rounded(values: pd.Series, threshold: float, min_count: int) -> Any:
    """The threshold with the fewest significant digits (a date: to the day) that splits `values` as it does,
    inside the range a report may show; None if there is none."""
    x = as_float(values)
    low, high = coded_range(x, min_count)
    below = int(np.sum(x <= threshold))
    is_date = values.dtype.kind == "M" or isinstance(values.dtype, pd.DatetimeTZDtype)
    if is_date:
        day = pd.Timestamp(int(threshold)).floor("D")
        candidates = [(float(day.value), day.date().isoformat())]
    else:
        candidates = [(r, r) for digits in range(1, 8) if (r := float(f"{threshold:.{digits}g}")) is not None]
    for number, shown in candidates:
        if low <= number <= high and int(np.sum(x <= number)) == below:
            if not is_date and float(shown).is_integer():
                return int(shown)
            return shown
    return None
