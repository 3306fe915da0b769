"""Column values as numbers and categories as codes: the one conversion of each that every check uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Categories kept by name; rarer ones share one `other` code.
MAX_LEVELS = 50
#: Quantile bins of a numeric column when it is discretized.
BINS = 10


def as_float(series: pd.Series, name: str | None = None) -> np.ndarray:
    """Numbers, booleans, nullable types, datetimes and timedeltas as float64 (missing -> NaN)."""
    dtype = series.dtype
    try:
        if isinstance(dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert(None)  # UTC wall time, tz removed
            dtype = series.dtype
        if dtype.kind in "mM":  # datetime64 / timedelta64, any unit
            unit = "datetime64[ns]" if dtype.kind == "M" else "timedelta64[ns]"
            raw = series.to_numpy().astype(unit)
            out = raw.view(np.int64).astype(np.float64)
            out[np.isnat(raw)] = np.nan
        else:
            out = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"numerical column {name or series.name!r} (dtype {series.dtype}) cannot be read as numbers: {exc}"
        ) from exc
    out = np.array(out, dtype=np.float64, copy=True)
    out[~np.isfinite(out)] = np.nan  # +-inf carry no usable distance: treat as missing
    return out


def category_labels(series: pd.Series) -> np.ndarray:
    """Category values as text in an object array (missing as None): tables with different dtypes for
    one column (categorical, object, string) compare by their printed values."""
    missing = series.isna().to_numpy()
    text = series.astype(str).to_numpy(dtype=object)
    text[missing] = None
    return text


@dataclass(frozen=True)
class ColumnCodes:
    """How one column becomes small integer codes: bins for numbers, levels for categories.

    Codes are 0..n_codes-1: the bins or kept levels first, then `other` (categories only),
    then `missing`. `names` labels every code for reports.
    """

    column: str
    numeric: bool
    edges: np.ndarray | None
    levels: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def n_codes(self) -> int:
        return len(self.names)

    @property
    def missing_code(self) -> int:
        return self.n_codes - 1

    def transform(self, series: pd.Series) -> np.ndarray:
        if self.numeric:
            values = as_float(series, self.column)
            codes = np.clip(np.searchsorted(self.edges, values, side="right") - 1, 0, len(self.edges) - 2)
            codes = codes.astype(np.int64)
            codes[np.isnan(values)] = self.missing_code
            return codes
        labels = category_labels(series)
        codes = pd.Index(self.levels, dtype=object).get_indexer(labels).astype(np.int64)
        codes[codes < 0] = len(self.levels)  # other
        codes[pd.isna(labels)] = self.missing_code
        return codes


def fit_codes(real: pd.Series, numeric: bool, *, bins: int = BINS, max_levels: int = MAX_LEVELS) -> ColumnCodes:
    """Codes learned from the real column: quantile bins (distinct edges) or its most frequent levels."""
    column = str(real.name)
    if numeric:
        values = as_float(real, column)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            edges = np.array([0.0, 1.0])
        else:
            edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)))
            if edges.size < 2:
                edges = np.array([edges[0], edges[0] + 1.0])
        names = tuple(
            f"[{lo:.4g}, {hi:.4g}{']' if i == len(edges) - 2 else ')'}"
            for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))
        )
        return ColumnCodes(column, True, edges, (), (*names, "missing"))
    counts = pd.Series(category_labels(real)).value_counts(dropna=True)
    levels = tuple(str(v) for v in counts.index[:max_levels])
    return ColumnCodes(column, False, None, levels, (*levels, "other", "missing"))
