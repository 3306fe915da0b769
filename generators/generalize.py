"""Classic de-identification, as a data protection officer would do it by hand: a baseline, not a generator.

The steps follow the ODI's anonymisation tutorial: remove direct identifiers, generalise the
quasi-identifiers (age bands, coarser numbers and dates, rare categories merged), then
suppress the records that are still too rare (k-anonymity). What comes out are REAL rows,
transformed; the scorecard shows them next to the synthetic generators so that the risk
left in a "traditionally anonymised" release is visible.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from suite.encoding import as_float
from suite.generators._columns import kind, require_fit, restore
from suite.metadata import Metadata
from suite.registry import generators

#: The value rare categories of a quasi-identifier are merged into.
OTHER = "other"
_AGE = re.compile(r"(^|[^a-z])age($|[^a-z])", re.IGNORECASE)


def is_age(column: str) -> bool:
    """A column named like an age: `age`, `Age`, `age_years`, `patient_age` (not `page` or `stage`)."""
    return bool(_AGE.search(column))


def _holds_text(values: pd.Series) -> bool:
    """Whether the column's dtype can hold the string "other"."""
    dtype = values.dtype
    return isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype) or dtype == "string"


def _holds_missing(values: pd.Series) -> bool:
    """Whether the column's dtype can hold a missing value without changing."""
    dtype = values.dtype
    return _holds_text(values) or pd.api.types.is_float_dtype(dtype) or pd.api.types.is_extension_array_dtype(dtype)


def equivalence_sizes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """For every row, how many rows share its values in `columns` (missing equals missing)."""
    if not columns:
        return np.full(len(frame), len(frame))
    codes = frame.groupby(columns, dropna=False, observed=True, sort=False).ngroup().to_numpy()
    return np.bincount(codes)[codes]


def _age_label(lower: float, width: int) -> str | None:
    """ "30-39" for the band of `width` years starting at 30 (whole years), "30 to < 32.5" otherwise."""
    if not np.isfinite(lower):
        return None
    if float(width).is_integer() and float(lower).is_integer():
        return f"{int(lower)}-{int(lower) + int(width) - 1}"
    return f"{lower:g} to < {lower + width:g}"


def _band_label(b: int, edges: np.ndarray) -> str:
    """The label of quantile band `b`: open at both ends, so no label shows a column's smallest or largest value."""
    if len(edges) <= 2:
        return "all"
    if b == 0:
        return f"< {edges[1]:g}"
    if b >= len(edges) - 2:
        return f">= {edges[-2]:g}"
    return f"{edges[b]:g} to < {edges[b + 1]:g}"


def _labelled(labels: list[str | None], present: np.ndarray, index: pd.Index) -> pd.Series:
    return pd.Series([label if ok else None for label, ok in zip(labels, present)], index=index, dtype=object)


@generators.register("generalize")
class GeneralizeGenerator:
    """Real rows, generalised and suppressed to k-anonymity on the quasi-identifiers.

    1. Direct identifiers: nothing to do here. The suite drops every declared identifier,
       the entity column and id columns before any generator sees the table.
    2. Quasi-identifiers are the columns of `metadata.roles.quasi_identifiers`. When none is
       declared, every categorical column with at most `auto_qi_max_levels` distinct values
       acts as one (the attributes an outsider is likely to know: sex, group, site).
    3. Numbers among them are banded: a column named like an age (`age`, `patient_age`) into
       bands of `age_band` years, any other number with more than `bands` distinct values
       into `bands` equal-frequency (quantile) bands. Each value becomes its band's
       `representative`, in the column's dtype: the middle (`"midpoint"`, the default: the
       centre of the age band, the mean of the band's smallest and largest value; it keeps
       means unbiased) or the lower edge (`"lower"`: the multiple of `age_band`, the band's
       smallest value; how "30-39" is usually written as a number), or the band's label (`"label"`:
       "30-39", "< 12.5", "12.5 to < 40", ">= 40"; the column becomes a category, which only
       `fit_on: {generalize: ...}` handles: see `transform` and `metadata_for`).
    4. Dates among them are truncated to the start of their `date_unit` (year or month).
    5. Categories among them seen fewer than `min_category` times are merged into "other"
       (`rare_categories="other"`; a pandas Categorical gets "other" as a new category) or
       blanked (`"missing"`: local suppression, which adds no value to the column's domain).
       A column whose dtype cannot hold the replacement (integer or boolean codes) keeps its
       rare levels; suppression deals with them.
    6. Rows whose combination of (generalised) quasi-identifiers occurs fewer than `k` times
       are suppressed, so every combination left occurs at least k times. When that would
       suppress more than `max_suppressed` of the rows (a small table, many QIs), the QI with
       the most distinct values left is generalised completely (one value for the whole
       column: the representative of its whole range, "other" / missing, the earliest
       truncated date, or the most common code) and suppression is tried again: Sweeney's
       Datafly heuristic in its coarsest form.

    Columns that are not quasi-identifiers are released unchanged. `sample(n, seed)` returns n
    rows of the released table in random order, each at most once: asked for more rows than
    suppression left, it returns them all (`fit_info` says how many were asked and returned),
    never re-drawn duplicates (a table of people drawn twice is not a sample of more people).
    Expect the privacy checks to block it: that is the point of the baseline.
    """

    name: ClassVar[str] = "generalize"
    #: Returns real rows on purpose: the contract kit does not hold copying against it.
    copies_rows: ClassVar[bool] = True
    #: sample(n) returns at most n rows: its rows, never one drawn twice (the runner and the contract accept fewer).
    at_most_n: ClassVar[bool] = True
    #: The one value it may add to a category column's domain (with `rare_categories="other"`).
    adds_categories: ClassVar[tuple[str, ...]] = (OTHER,)

    def __init__(
        self,
        *,
        k: int = 5,
        age_band: int = 10,
        bands: int = 5,
        date_unit: Literal["year", "month"] = "year",
        min_category: int = 10,
        representative: Literal["lower", "midpoint", "label"] = "midpoint",
        rare_categories: Literal["other", "missing"] = "other",
        max_suppressed: float = 0.5,
        auto_qi_max_levels: int = 20,
    ) -> None:
        self.k = k
        self.age_band = age_band
        self.bands = bands
        self.date_unit = date_unit
        self.min_category = min_category
        self.representative = representative
        self.rare_categories = rare_categories
        self.max_suppressed = max_suppressed
        self.auto_qi_max_levels = auto_qi_max_levels

    # -- one step per column kind ------------------------------------------------------------

    def _middle(self, low: float, high: float) -> float:
        return (low + high) / 2 if self.representative == "midpoint" else low

    def _band(self, column: str, values: pd.Series) -> tuple[pd.Series, str]:
        numbers = as_float(values, column)
        present = np.isfinite(numbers)
        if is_age(column) and self.age_band > 0:
            self.steps_[column] = ("age", None, None)
            return self._banded(column, values), f"age bands of {self.age_band} ({self.representative})"
        distinct = np.unique(numbers[present])
        if len(distinct) <= max(self.bands, 1):
            self.steps_[column] = ("keep", None, None)
            return values.copy(), f"kept ({len(distinct)} distinct values <= bands)"
        edges = np.unique(np.quantile(numbers[present], np.linspace(0.0, 1.0, self.bands + 1)))
        which = np.searchsorted(edges[1:-1], numbers, side="right")
        middles = {
            int(b): self._middle(numbers[(which == b) & present].min(), numbers[(which == b) & present].max())
            for b in np.unique(which[present])
        }
        self.steps_[column] = ("quantile", edges, middles)
        return self._banded(column, values), f"{len(edges) - 1} quantile bands ({self.representative})"

    def _banded(self, column: str, values: pd.Series) -> pd.Series:
        """`values` in the bands learned for `column` (`steps_`): representatives, or labels."""
        how, edges, middles = self.steps_[column]
        numbers = as_float(values, column)
        present = np.isfinite(numbers)
        if how == "age":
            lower = np.floor(numbers / self.age_band) * self.age_band
            if self.representative == "label":
                return _labelled([_age_label(x, self.age_band) for x in lower], present, values.index)
            return restore(self._middle(lower, lower + self.age_band), values)
        which = np.searchsorted(edges[1:-1], numbers, side="right")
        if self.representative == "label":
            return _labelled([_band_label(int(b), edges) for b in which], present, values.index)
        centre = [middles.get(int(b), self._middle(edges[b], edges[b + 1])) for b in which]
        return restore(np.where(present, centre, np.nan), values)

    def _truncate(self, values: pd.Series) -> pd.Series:
        tz = getattr(values.dtype, "tz", None)
        local = values.dt.tz_localize(None) if tz is not None else values
        cut = local.dt.to_period("Y" if self.date_unit == "year" else "M").dt.start_time
        if tz is not None:
            cut = cut.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
        return cut.astype(values.dtype)

    def _can_replace(self, values: pd.Series) -> bool:
        return _holds_text(values) if self.rare_categories == "other" else _holds_missing(values)

    def _replace(self, values: pd.Series, which: pd.Series) -> pd.Series:
        """`values` with the rows of `which` set to "other" or missing (`rare_categories`)."""
        out = values.copy()
        if self.rare_categories == "missing":
            out[which] = None
            return out
        if isinstance(out.dtype, pd.CategoricalDtype) and OTHER not in out.cat.categories:
            out = out.cat.add_categories([OTHER])
        out[which] = OTHER
        return out

    def _merge_rare(self, values: pd.Series) -> tuple[pd.Series, str]:
        counts = values.value_counts(dropna=True)
        rare = counts.index[(counts > 0) & (counts < self.min_category)]
        if not len(rare):
            return values.copy(), f"kept (no level seen < {self.min_category} times)"
        if not self._can_replace(values):
            return values.copy(), f"kept {len(rare)} rare level(s): dtype {values.dtype} cannot hold the replacement"
        into = f"merged into {OTHER!r}" if self.rare_categories == "other" else "set missing"
        return self._replace(values, values.isin(rare)), f"{len(rare)} level(s) seen < {self.min_category} times {into}"

    def _collapse(self, column: str, values: pd.Series, kind_: str) -> pd.Series:
        """The column generalised completely: one value for every present row (remembered in `collapsed_`)."""
        present = values.notna()
        if kind_ == "numerical" and self.representative == "label":
            self.collapsed_[column] = "all"
        elif kind_ == "numerical":
            numbers = as_float(values, column)
            finite = numbers[np.isfinite(numbers)]
            self.collapsed_[column] = self._middle(finite.min(), finite.max()) if len(finite) else np.nan
        elif kind_ == "datetime":
            self.collapsed_[column] = values[present].min() if present.any() else None
        elif self._can_replace(values):
            self.collapsed_[column] = None  # "other" or missing, as rare levels are
        else:
            self.collapsed_[column] = values[present].mode().iloc[0] if present.any() else None
        return self._collapsed(column, values, kind_)

    def _collapsed(self, column: str, values: pd.Series, kind_: str) -> pd.Series:
        one = self.collapsed_[column]
        present = values.notna()
        if kind_ == "numerical" and self.representative != "label":
            numbers = as_float(values, column)
            return restore(np.where(np.isfinite(numbers), one, np.nan), values)
        if one is None and kind_ == "categorical":
            return self._replace(values, present) if self._can_replace(values) else values.copy()
        out = values.copy()
        if present.any() and one is not None:
            out[present] = one
        return out

    # -- fit and sample ----------------------------------------------------------------------

    def _quasi_identifiers(self, train: pd.DataFrame, metadata: Metadata) -> tuple[list[str], str]:
        declared = [c for c in metadata.roles.quasi_identifiers if c in train.columns]
        if declared:
            return declared, "declared"
        few = [
            c
            for c in train.columns
            if kind(metadata, c) == "categorical" and train[c].nunique(dropna=True) <= self.auto_qi_max_levels
        ]
        return few, f"inferred: categorical columns with <= {self.auto_qi_max_levels} levels"

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> GeneralizeGenerator:
        """The fit draws nothing at random: `seed` is accepted for the one idiom and unused."""
        if self.k < 1:
            raise ValueError("generalize: k must be at least 1")
        if len(train) < self.k:
            raise ValueError(f"generalize: {len(train)} rows cannot be {self.k}-anonymous; lower k")
        table = train.copy()
        qis, source = self._quasi_identifiers(train, metadata)
        self.kinds_ = {c: kind(metadata, c) for c in qis}
        self.steps_: dict[str, tuple[str, Any, Any]] = {}
        self.collapsed_: dict[str, Any] = {}
        generalized: dict[str, str] = {}
        for column in qis:
            values = table[column]
            k = self.kinds_[column]
            if k == "numerical":
                table[column], generalized[column] = self._band(column, values)
            elif k == "datetime":
                table[column], generalized[column] = self._truncate(values), f"truncated to the {self.date_unit}"
            else:
                counts = values.value_counts(dropna=True)
                self.steps_[column] = (
                    "rare",
                    frozenset(counts.index[(counts > 0) & (counts < self.min_category)]),
                    None,
                )
                table[column], generalized[column] = self._merge_rare(values)
        keep = equivalence_sizes(table, qis) >= self.k
        collapsed: list[str] = []
        while (~keep).mean() > self.max_suppressed:
            # Datafly: generalise the QI with the most distinct values left completely, then retry
            left = [c for c in qis if c not in collapsed]
            if not left:
                break
            column = max(left, key=lambda c: table[c].nunique(dropna=False))
            table[column] = self._collapse(column, table[column], self.kinds_[column])
            generalized[column] += "; then generalised completely (one value)"
            collapsed.append(column)
            keep = equivalence_sizes(table, qis) >= self.k
        self.kept_ = np.asarray(keep, dtype=bool)  # the training rows released (not suppressed)
        self.rows_ = table[keep].reset_index(drop=True)
        self.info_ = {
            "quasi_identifiers": qis,
            "quasi_identifier_source": source,
            "direct_identifiers": "dropped by the suite before fit",
            "generalized": generalized,
            "generalized_completely": collapsed,
            "k": self.k,
            "k_achieved": int(equivalence_sizes(self.rows_, qis).min()),
            "equivalence_classes": int(self.rows_.groupby(qis, dropna=False, observed=True).ngroups if qis else 1),
            "rows_in": int(len(train)),
            "rows_suppressed": int((~keep).sum()),
            "share_suppressed": round(float((~keep).mean()), 4),
        }
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Other rows (control, reference, a shadow set) generalised as the training rows were: the same bands,
        truncation, merged levels and collapsed columns; no row is suppressed."""
        require_fit(self, "steps_", "transform")
        out = frame.reset_index(drop=True)
        for column, k in self.kinds_.items():
            values = out[column]
            how = self.steps_[column][0]
            if how in ("age", "quantile"):
                values = self._banded(column, values)
            elif k == "datetime":
                values = self._truncate(values)
            elif how == "rare" and self.steps_[column][1] and self._can_replace(values):
                values = self._replace(values, values.isin(self.steps_[column][1]))
            if column in self.collapsed_:
                values = self._collapsed(column, values, k)
            out[column] = values
        return out.set_axis(frame.index)

    def metadata_for(self, metadata: Metadata) -> Metadata:
        """The metadata of the generalised table: a column banded into labels is a category."""
        require_fit(self, "steps_", "metadata_for")
        labelled = {
            c for c, (how, _, _) in self.steps_.items() if self.representative == "label" and how in ("age", "quantile")
        }
        labelled |= {c for c, v in self.collapsed_.items() if self.kinds_[c] == "numerical" and isinstance(v, str)}
        columns = {c: ({"sdtype": "categorical"} if c in labelled else dict(s)) for c, s in metadata.columns.items()}
        return Metadata(columns=columns, primary_key=metadata.primary_key, roles=metadata.roles)

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "rows_", "sample")
        rng = np.random.default_rng(seed)
        idx = rng.permutation(len(self.rows_))[:n]
        self.sampled_ = {"rows_asked": int(n), "rows_returned": int(len(idx))}
        if len(idx) < n:
            self.sampled_["note"] = "fewer rows than asked: suppression left these; none is drawn twice"
        return self.rows_.iloc[idx].reset_index(drop=True)

    def fit_info(self) -> dict[str, Any]:
        return {**getattr(self, "info_", {}), **({"sample": self.sampled_} if hasattr(self, "sampled_") else {})}
