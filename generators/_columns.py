"""Small per-column helpers the simple generators share."""

from __future__ import annotations

import secrets

import numpy as np
import pandas as pd

from suite.metadata import DATETIME, NUMERICAL, Metadata
from suite.seeding import fit_seed


def kind(metadata: Metadata, column: str) -> str:
    """`numerical`, `datetime` or `categorical` (every other sdtype is drawn as a category)."""
    sdtype = metadata.sdtype(column)
    return sdtype if sdtype in (NUMERICAL, DATETIME) else "categorical"


def decimals(values: np.ndarray, limit: int = 6) -> int | None:
    """The fewest decimals that represent every value exactly, or None if more than `limit`."""
    finite = values[np.isfinite(values)]
    for d in range(limit + 1):
        if np.allclose(finite, np.round(finite, d), rtol=0, atol=10.0 ** -(d + 3)):
            return d
    return None


#: Steps a date column may be rounded to (nanoseconds), coarsest first: a day, an hour, a minute,
#: a second, a millisecond, a microsecond.
DATE_STEPS = (86_400e9, 3_600e9, 60e9, 1e9, 1e6, 1e3)


def date_step(values: np.ndarray) -> float | None:
    """The coarsest of `DATE_STEPS` that every date (nanoseconds) is a whole multiple of."""
    finite = values[np.isfinite(values)]
    for step in DATE_STEPS:
        if np.all(np.mod(finite, step) == 0):
            return step
    return None


def precision(values: np.ndarray, column_kind: str) -> tuple[str, float] | None:
    """How drawn numbers are rounded to look like the column's: ("decimals", d) for numbers,
    ("step", ns) for dates (`date_step`), None when the values show no such precision."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None
    if column_kind == "datetime":
        step = date_step(finite)
        return None if step is None else ("step", step)
    d = decimals(finite)
    return None if d is None else ("decimals", float(d))


def round_to(values: np.ndarray, rounding: tuple[str, float] | None) -> np.ndarray:
    """`values` rounded as `precision` says (NaN stays NaN)."""
    if rounding is None:
        return values
    how, amount = rounding
    if how == "step":
        return np.round(values / amount) * amount
    return np.round(values, int(amount))


def restore(values: np.ndarray, like: pd.Series) -> pd.Series:
    """Numbers drawn for a column, turned back into that column's dtype (integers rounded)."""
    if pd.api.types.is_datetime64_any_dtype(like):
        out = pd.Series(pd.to_datetime(np.where(np.isnan(values), np.nan, np.round(values)), unit="ns"))
        tz = getattr(like.dtype, "tz", None)
        return out.dt.tz_localize("UTC").dt.tz_convert(tz) if tz is not None else out.astype(like.dtype)
    if pd.api.types.is_integer_dtype(like.dtype):
        rounded = np.round(values)
        if np.isnan(rounded).any():
            return pd.Series(rounded).astype(
                "Int64" if not pd.api.types.is_extension_array_dtype(like.dtype) else like.dtype
            )
        return pd.Series(rounded).astype(like.dtype)
    if pd.api.types.is_bool_dtype(like.dtype):
        return pd.Series(values).astype(like.dtype)
    return pd.Series(values).astype(like.dtype)


def with_missing(values: pd.Series, rate: float, rng: np.random.Generator) -> pd.Series:
    """The values with a share `rate` of them, drawn at random, set to missing."""
    if rate <= 0:
        return values
    mask = rng.random(len(values)) < rate
    if not pd.api.types.is_extension_array_dtype(values.dtype) and pd.api.types.is_integer_dtype(values.dtype):
        values = values.astype("float64")
    values = values.copy()
    values[mask] = None
    return values


def require_fit(generator: object, attribute: str, method: str = "sample") -> None:
    """A clear error for a generator used before `fit` (the contract kit checks it)."""
    if not hasattr(generator, attribute):
        name = getattr(generator, "name", type(generator).__name__)
        raise RuntimeError(f"{name}: call fit before {method}")


#: `fit_info()["noise_source"]` of a private fit whose noise came from the operating system's entropy.
ENTROPY = "operating system entropy"


def noise_seed(random_state: int | None, private: bool, seed: int | None = None) -> tuple[int, str]:
    """The seed of a fit's randomness and where it came from.

    Differentially private noise drawn from a known seed can be regenerated and subtracted, and a
    scenario's seed is public; so a private fit draws its seed from the operating system's entropy
    unless `random_state` pins it. A fit without privacy follows the fit's `seed` (the run's seed for
    the repeat; `suite.seeding.fit_seed` when None).
    """
    if random_state is not None:
        return int(random_state), "random_state (pinned: whoever holds it can regenerate the noise)"
    if private:
        return secrets.randbits(31), ENTROPY
    return fit_seed(seed), "the run's seed"
