"""Columns typed as their sdtype says: the input table's (suite/dataset.py) and a table made elsewhere (the
`file` generator). Errors name the file, the column, how many values are wrong and the first row, never a value."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from suite.errors import ConfigError
from suite.io import read_table
from suite.metadata import BOOLEAN, DATETIME, NUMERICAL, Metadata


class DataWarning(UserWarning):
    """Something in the data that may leak or mislead, but does not stop the run."""


#: Integers beyond 2**53 have no exact float: distances, encodings and most generators work in floats.
EXACT_FLOAT_INTEGERS = 2**53


def huge_integers(values: pd.Series) -> pd.Series:
    """Where an integer column (or integers written as text) holds values a float cannot keep exactly."""
    if pd.api.types.is_integer_dtype(values):
        big = values.abs() > EXACT_FLOAT_INTEGERS if values.dtype.kind == "i" else values > EXACT_FLOAT_INTEGERS
        return big.fillna(False).astype(bool)
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        text = values.astype("string").str.strip()
        return text.str.fullmatch(r"[-+]?\d{16,}").fillna(False).astype(bool) & (
            pd.to_numeric(text, errors="coerce").abs() > EXACT_FLOAT_INTEGERS
        )
    return pd.Series(False, index=values.index)


def first_row(mask: pd.Series) -> int:
    """The 1-based row (header excluded) of the first True in `mask`: a place to look, not a value to print."""
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


def coerce(frame: pd.DataFrame, metadata: Metadata, source: str) -> pd.DataFrame:
    """A new frame whose columns carry the dtype their sdtype implies.

    Messages name the column, how many values are wrong and the first row, never a value: an error
    message ends up in CI logs, which are not covered by the reports' suppression rules.
    """
    out = {}
    dropped = {*metadata.roles.identifiers, metadata.roles.entity}  # never a number to a generator or a check
    for column in frame.columns:
        values = frame[column]
        sdtype = metadata.sdtype(column)
        if sdtype == NUMERICAL:
            values = _to_number(values, column, source, exact=column not in dropped)
        elif sdtype == DATETIME:
            values = _to_datetime(values, column, metadata.columns[column].get("datetime_format"), source)
        elif sdtype == BOOLEAN:
            values = _to_boolean(values, column, source)
        out[column] = values
    return pd.DataFrame(out, index=frame.index)


#: A number written with thousands separators, a decimal comma, a unit or a qualifier: "1,234", "12 mg", "<5".
NUMBER_AS_TEXT = r"[<>~≤≥]?\s*[-+]?(\d{1,3}([,' ]\d{3})+|\d+)([.,]\d+)?\s*([A-Za-zµ%/][A-Za-zµ%/0-9.^]*)?"


def _to_number(values: pd.Series, column: str, source: str, *, exact: bool = True) -> pd.Series:
    """The column as numbers; `exact`: refuse integers a float cannot hold exactly."""
    huge = huge_integers(values) if exact else pd.Series(False, index=values.index)
    if huge.any():
        raise ConfigError(
            f"column {column!r} is declared numerical but {int(huge.sum())} value(s) are integers beyond 2**53, "
            f"first at row {first_row(huge)}; as floats (which every distance and most generators use) such integers "
            "collapse into fewer distinct values. If they number records, add the column to "
            "dataset.roles.identifiers (or give it sdtype id); otherwise declare it categorical in the metadata",
            source=source,
        )
    if not pd.api.types.is_numeric_dtype(values):
        converted = pd.to_numeric(values, errors="coerce")
        bad = converted.isna() & values.notna()
        if bad.any():
            text = values[bad].astype(str).str.strip()
            if text.str.fullmatch(NUMBER_AS_TEXT).mean() >= 0.5:
                what = (
                    "numbers written as text (thousands separators or decimal commas like 1,234, units or "
                    "qualifiers like '12 mg' or '<5')"
                )
                fix = "write plain numbers (a dot for decimals, the unit in the column name)"
            else:
                what = "text that is not a number"
                fix = "clean the column (leave unknown values empty)"
            raise ConfigError(
                f"column {column!r} is declared numerical but holds {int(bad.sum())} value(s) of {what}, "
                f"first at row {first_row(bad)}; {fix}, or declare it categorical in the metadata",
                source=source,
            )
        values = converted
    infinite = pd.Series(np.isinf(values.to_numpy(dtype=float, na_value=np.nan)), index=values.index)
    if infinite.any():
        raise ConfigError(
            f"column {column!r} holds {int(infinite.sum())} infinite value(s), first at row {first_row(infinite)}; "
            "no generator or distance can use them: replace them with a number or leave them empty (missing)",
            source=source,
        )
    return values


_OFFSET = r".*(Z|[+-]\d\d:?\d\d|UTC|GMT)$"


def _to_datetime(values: pd.Series, column: str, fmt: str | None, source: str) -> pd.Series:
    """Parse a datetime column; times with zones become UTC times without a zone (one clock for all rows)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return _in_nanoseconds(_without_zone(values, column, source), column, source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted = pd.to_datetime(values, format=fmt, errors="coerce")
        if not pd.api.types.is_datetime64_any_dtype(converted):  # mixed offsets: pandas returns objects
            converted = pd.to_datetime(values, format=fmt, errors="coerce", utc=True)
    bad = converted.isna() & values.notna()
    if bad.any():
        outside = outside_date_range(values, bad, fmt)
        if outside.any():
            raise outside_error(outside, column, source)
        text = values[values.notna()].astype(str).str.strip()
        zoned = text.str.fullmatch(_OFFSET)
        if zoned.any() and not zoned.all():
            problem = "mixes values with and without a time-zone offset; give every value an offset, or none"
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                each = pd.to_datetime(values[bad], format="mixed", errors="coerce", utc=True)
            if fmt is None and each.notna().all():
                problem = (
                    "mixes date formats (or day-first and month-first dates): give the one format as datetime_format "
                    'in the metadata (e.g. "%Y-%m-%d" or "%d/%m/%Y") and write every value in it'
                )
            elif fmt is not None:
                problem = f"does not match datetime_format {fmt!r}: fix the format in the metadata or clean the column"
            else:
                problem = "holds values that are not dates: clean the column (leave unknown dates empty)"
        raise ConfigError(
            f"column {column!r} is declared datetime but {int(bad.sum())} value(s) do not parse, "
            f"first at row {first_row(bad)}; the column {problem}",
            source=source,
        )
    guessed = [str(w.message) for w in caught if "dayfirst" in str(w.message) or "infer format" in str(w.message)]
    if guessed and fmt is None:
        warnings.warn(
            f"{source}: column {column!r}: the datetime format was guessed ({guessed[0].split('.')[0]}); give "
            "datetime_format in the metadata to be sure each date is read as meant",
            DataWarning,
            stacklevel=3,
        )
    return _in_nanoseconds(_without_zone(converted, column, source), column, source)


#: The dates pandas holds (nanoseconds since 1970 in 64 bits), as naive datetimes.
DATE_RANGE = (dt.datetime(1677, 9, 21, 0, 12, 43, 145225), dt.datetime(2262, 4, 11, 23, 47, 16, 854775))


def outside_error(outside: pd.Series, column: str, source: str) -> ConfigError:
    return ConfigError(
        f"column {column!r} holds {int(outside.sum())} date(s) outside the range pandas can hold (1677-09-21 to "
        f"2262-04-11), first at row {first_row(outside)}; placeholders such as 9999-12-31 for 'unknown' or 'never' "
        "should be empty cells (a flag column can keep their meaning), or declare the column categorical",
        source=source,
    )


def _in_nanoseconds(values: pd.Series, column: str, source: str) -> pd.Series:
    """Datetimes in pandas' default unit (nanoseconds), as every check and generator expects them."""
    if values.dt.unit == "ns":
        return values
    low, high = DATE_RANGE
    outside = values.notna() & ((values < low) | (values > high))
    if outside.any():
        raise outside_error(outside, column, source)
    return values.astype("datetime64[ns]")


def _as_datetime(value: object, fmt: str | None) -> dt.datetime | None:
    """A cell as a naive datetime when it is a date pandas could not hold, else None."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, np.datetime64):
        return _as_datetime(value.astype("datetime64[us]").item(), fmt)
    if not isinstance(value, str):
        return None
    from dateutil import parser

    try:
        when = dt.datetime.strptime(value.strip(), fmt) if fmt else parser.parse(value.strip())
    except (ValueError, OverflowError):
        return None
    return when.replace(tzinfo=None)


def outside_date_range(
    values: pd.Series, where: pd.Series, fmt: str | None, *, at_most: int | None = 1000
) -> pd.Series:
    """Which of the cells at `where` (the first `at_most` of them) are valid dates outside `DATE_RANGE`."""
    low, high = DATE_RANGE
    out = pd.Series(False, index=values.index)
    for i, value in values[where].head(at_most).items():
        when = _as_datetime(value, fmt)
        out[i] = when is not None and not low <= when <= high
    return out


def _without_zone(values: pd.Series, column: str, source: str) -> pd.Series:
    if getattr(values.dt, "tz", None) is None:
        return values
    warnings.warn(
        f"{source}: column {column!r} carries time zones; its times are converted to UTC and compared and "
        "synthesised without a zone",
        DataWarning,
        stacklevel=3,
    )
    return values.dt.tz_convert("UTC").dt.tz_localize(None)


_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


def _to_boolean(values: pd.Series, column: str, source: str) -> pd.Series:
    present = values.dropna()
    if pd.api.types.is_bool_dtype(values) or present.empty:
        return values
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        text = values.astype(str).str.strip().str.lower()
        parsed = pd.Series(pd.NA, index=values.index, dtype="boolean")
        parsed[text.isin(_TRUE) & values.notna()] = True
        parsed[text.isin(_FALSE) & values.notna()] = False
        bad = parsed.isna() & values.notna()
        if bad.any():
            raise ConfigError(
                f"column {column!r} is declared boolean but {int(bad.sum())} value(s) are not true/false, yes/no or "
                f"1/0, first at row {first_row(bad)}; clean the column or declare it categorical in the metadata",
                source=source,
            )
        return parsed
    if present.nunique() > 2:
        raise ConfigError(
            f"column {column!r} is declared boolean but holds {present.nunique()} distinct values; "
            "declare it categorical or numerical in the metadata",
            source=source,
        )
    if pd.api.types.is_numeric_dtype(values):  # 0/1 flags become true/false, as SDV's boolean sdtype requires
        bad = values.notna() & ~values.isin([0, 1])
        if bad.any():
            raise ConfigError(
                f"column {column!r} is declared boolean but {int(bad.sum())} number(s) are not 0 or 1, first at row "
                f"{first_row(bad)}; recode it as 0/1 or declare it categorical in the metadata",
                source=source,
            )
        return values.astype("boolean")
    return values


def read_external(path: Path, columns: list[str], metadata: Metadata, where: str) -> pd.DataFrame:
    """A table made elsewhere, checked against the training columns and typed as they are (exit 2 if it cannot be)."""
    frame = read_table(Path(path))
    missing = [c for c in columns if c not in frame.columns]
    extra = [c for c in frame.columns if c not in columns]
    if missing or extra:
        raise ConfigError(
            f"{where}: {path} does not have the training table's columns"
            + (f"; missing {missing}" if missing else "")
            + (f"; not in the training table {extra}" if extra else "")
            + ": it must have exactly the columns of the handed-over train file"
        )
    if frame.empty:
        raise ConfigError(f"{where}: {path} has no rows")
    typed = [c for c in columns if c in metadata.columns]  # the entity column (visits) keeps its ids as they are
    return frame[columns].assign(**coerce(frame[typed], metadata, f"{where}: {path}"))
