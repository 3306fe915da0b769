"""Pre- and post-processing declared per generator in the scenario: de-identification (`fit_on`) and
imputation before fitting, logical constraints on the output, enforced by rejection sampling with compliance reported. A
generator that can enforce a rule itself (`native_constraints`: SDV's inequality and fixed
combinations) is handed the rules its training rows obey; rejection still checks every row.

`Processed` wraps the generator, so every fit the run makes (the shadow attacks' refits too)
sees the same processing, and it keeps the Generator contract itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from suite.constraints import Constraint, FixedCombinationsConstraint, check_constraints, combinations, complies
from suite.dataset import PreparedData
from suite.encoding import as_float
from suite.metadata import Metadata
from suite.scenario import FitOnSpec
from suite.seeding import fit_with_seed

#: Rejection rounds before the generator is declared unable to meet its constraints.
MAX_ROUNDS = 20


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


#: A level of a category explains a column's missingness only when at least this many rows have it.
STRUCTURAL_MIN_ROWS = 10


def structural_fills(train: pd.DataFrame, filled: pd.DataFrame, metadata: Metadata) -> list[dict[str, Any]]:
    """Imputed values where the real value does not exist: a column missing in every row of some level of a
    category (cause of death for the living), by the category whose such levels hold most of the filled rows.
    One entry per column with the rows filled; no level is named (a report may not print a rare one)."""
    out = []
    for column in train.columns:
        was = train[column].isna().to_numpy()
        now_filled = was & filled[column].notna().to_numpy()
        if not now_filled.any():
            continue
        best: tuple[int, str] = (0, "")
        for other in metadata.discrete:
            if other == column or other not in train.columns or train[other].isna().any():
                continue
            by_level = pd.DataFrame({"level": train[other].to_numpy(), "missing": was}).groupby("level", observed=True)
            stats = by_level["missing"].agg(["mean", "size"])
            always = stats.index[(stats["mean"] == 1.0) & (stats["size"] >= STRUCTURAL_MIN_ROWS)]
            if len(always) and len(always) < len(stats):
                best = max(best, (int((now_filled & train[other].isin(always).to_numpy()).sum()), other))
        if best[0]:
            out.append({"column": column, "missing_when": best[1], "rows_filled": best[0]})
    return out


class Processed:
    """A generator with imputation before `fit` and constraints enforced on `sample`."""

    name: ClassVar[str] = "processed"

    def __init__(self, inner: Any, impute: str = "none", constraints: Sequence[Constraint] = ()) -> None:
        self.inner = inner
        self.impute = impute
        self.constraints = list(constraints)

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> Processed:
        """Impute and check the rules, then fit the inner generator with `seed` (`fit_with_seed`)."""
        check_constraints(self.constraints, metadata, where=f"generator {getattr(self.inner, 'name', '?')}")
        rows = train if self.impute == "none" else impute(train, metadata, self.impute)
        self.imputed_ = int(train.isna().sum().sum() - rows.isna().sum().sum())
        self.structural_ = [] if rows is train else structural_fills(train, rows, metadata)
        # learned on the rows the generator fits (after imputation): its output can only repeat those
        self.allowed_ = {
            i: set(combinations(rows, c.columns))
            for i, c in enumerate(self.constraints)
            if isinstance(c, FixedCombinationsConstraint)
        }
        self.breaking_ = [
            0 if isinstance(c, FixedCombinationsConstraint) else int((~complies(rows, c)).sum())
            for c in self.constraints
        ]
        for i, (c, k) in enumerate(zip(self.constraints, self.breaking_)):
            if k:
                warnings.warn(
                    f"generator {getattr(self.inner, 'name', '?')}: constraints[{i}] ({c.kind}): {k} of {len(rows)} "
                    "training rows break this rule; the generator learns from them and rejection keeps them out of "
                    "its output (check the rule)",
                    stacklevel=2,
                )
        native = getattr(self.inner, "native_constraints", frozenset())
        # the model enforces a rule itself only when the training rows obey it (SDV refuses otherwise);
        # rejection below still checks every rule on every sampled row
        self.enforced_by_ = [
            "sdv" if c.kind in native and complies(rows, c, self.allowed_.get(i)).all() else "rejection"
            for i, c in enumerate(self.constraints)
        ]
        if native:
            self.inner.use_constraints([c for c, how in zip(self.constraints, self.enforced_by_) if how == "sdv"])
        fit_with_seed(self.inner, rows, metadata, seed)
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
            if have >= n or getattr(self.inner, "at_most_n", False):  # its rows, never one drawn twice
                break
        if have < n and not (have and getattr(self.inner, "at_most_n", False)):
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
            if self.structural_:
                info["imputation"]["structurally_missing_filled"] = self.structural_
                info["imputation"]["note"] = (
                    "impute filled values that do not exist in the real data: "
                    + "; ".join(
                        f"{f['column']} in {f['rows_filled']} rows where it is missing for every row of a level of "
                        f"{f['missing_when']}"
                        for f in self.structural_
                    )
                    + " (the synthetic rows carry such values; a fixed_combinations rule learns them as allowed)"
                )
        if self.constraints:
            rules = [
                {**c.model_dump(), "enforced_by": how, "training_rows_breaking": k}
                for c, how, k in zip(self.constraints, self.enforced_by_, self.breaking_)
            ]
            info["constraints"] = {"rules": rules, **self.compliance_}
        return info


def generalize_params(fit_on: FitOnSpec) -> dict[str, Any]:
    """The `generalize` parameters of a `fit_on`: bands come out as labels ("10-19") unless the scenario says."""
    return {"representative": "label", **fit_on.generalize}


def fit_on_data(fit_on: FitOnSpec | None, data: PreparedData) -> tuple[PreparedData, dict[str, Any]]:
    """The data a `fit_on` generator and its checks see, and what the de-identification did (for `fit_info`).

    `generalize` is fitted on the training rows; its output (the rows it did not suppress) is the training
    table the generator learns and whose people the attacks treat as members; control and reference are
    generalised by the same fitted `generalize` (no suppression), so every check compares in one space.
    """
    if fit_on is None:
        return data, {}
    from dataclasses import replace

    from suite.registry import generators

    generalize = generators.get("generalize")(**generalize_params(fit_on)).fit(data.train, data.metadata)
    kept = generalize.kept_

    def entities(values: pd.Series | None) -> pd.Series | None:
        return None if values is None else pd.Series(values.to_numpy()[kept], name=values.name)

    generalised = replace(
        data,
        train=generalize.rows_,
        control=generalize.transform(data.control),
        reference=generalize.transform(data.reference),
        metadata=generalize.metadata_for(data.metadata),
        train_entities=entities(data.train_entities),
    )
    return generalised, {"fit_on": {"generalize": generalize.fit_info()}}
