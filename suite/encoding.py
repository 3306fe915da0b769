"""Column values as numbers: the one conversion every check and generator uses."""

from __future__ import annotations

import numpy as np
import pandas as pd


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
