"""What output files may say about the real data: no category level rarer than `min_count`, no
value beyond the `min_count`-th smallest or largest of a real column.

Checks top- and bottom-code the numbers they report with `coded_range` (they know which numbers
are values of a real column); `scrub` is applied by the runner to every measurement's `details`
(and each generator's `fit_info`) before the scorecard is built, so a level of fewer than
`min_count` real rows never reaches scorecard.json or any report, whichever check wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from suite.types import Measurement

#: What a rare level is called once scrubbed.
RARE = "other (rare)"


#: JSON escapes for the characters that make markup: a JSON file read as HTML shows only text.
_INERT_JSON = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def inert_json(text: str) -> str:
    """JSON text with `<`, `>` and `&` written as escapes (they occur only inside strings, so the
    value read back is unchanged)."""
    return text.translate(_INERT_JSON)


def coded_range(values: np.ndarray, min_count: int) -> tuple[float, float]:
    """The `min_count`-th smallest and largest finite value: the range a report may show (top and
    bottom coding). With fewer than 2 * `min_count` values no order statistic is shared by
    `min_count` people, and both ends are the mean. (nan, nan) when there is no finite value."""
    x = np.sort(np.asarray(values, dtype=float))
    x = x[np.isfinite(x)]
    k = max(int(min_count), 1)
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size < 2 * k:
        mean = float(x.mean())
        return mean, mean
    return float(x[k - 1]), float(x[x.size - k])


@dataclass(frozen=True)
class Rare:
    """The levels of each categorical real column seen fewer than `min_count` times (as text).

    A string alone is scrubbed when it is a rare level of some column and neither a column name nor
    a common level of another column (then it says nothing about anyone); `column=level` when the
    level is rare in that column.
    """

    min_count: int
    levels: Mapping[str, frozenset[str]]
    alone: frozenset[str] = frozenset()

    @classmethod
    def of(cls, frames: Iterable[pd.DataFrame], categorical: Iterable[str], min_count: int) -> Rare:
        """Counted over all `frames` (the real rows: train and holdout) together."""
        frames = [f for f in frames if f is not None]
        levels: dict[str, frozenset[str]] = {}
        common = {str(c) for f in frames for c in f.columns}
        for column in categorical:
            parts = [f[column].dropna().astype(str) for f in frames if column in f.columns]
            if not parts:
                continue
            counts = pd.concat(parts, ignore_index=True).value_counts()
            few = counts.to_numpy() < min_count
            common.update(str(v) for v in counts.index[~few])
            if few.any():
                levels[str(column)] = frozenset(str(v) for v in counts.index[few])
        alone = frozenset().union(*levels.values()) - common
        return cls(int(min_count), levels, alone)

    def text(self, s: str) -> str:
        """`s` with a rare level (alone, or as `column=level`) replaced by `RARE`."""
        if s in self.alone:
            return RARE
        column, sep, level = s.partition("=")
        if sep and level in self.levels.get(column, ()):
            return f"{column}={RARE}"
        return s

    def scrub(self, value: Any) -> Any:
        """`value` with every string (dictionary keys included) passed through `text`, recursively."""
        if not self.levels:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(k) if isinstance(k, str) else k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub(v) for v in value)
        return value

    def redact(self, message: str | None) -> str | None:
        """Free text (an error message a library wrote) with every rare level of 3 or more characters
        replaced where it occurs, longest first."""
        found = [v for v in frozenset().union(*self.levels.values()) if len(v) >= 3 and message and v in message]
        if not found:
            return message
        pattern = "|".join(re.escape(v) for v in sorted(found, key=len, reverse=True))
        return re.sub(pattern, RARE, message)  # one pass: a replacement is never replaced again

    def measurements(self, measurements: list[Measurement]) -> list[Measurement]:
        """Each measurement with its `details` scrubbed and its error message redacted."""
        return [
            replace(m, details=self.scrub(dict(m.details)), error=self.redact(m.error)) if m.details or m.error else m
            for m in measurements
        ]
