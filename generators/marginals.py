"""Independent marginals: each column drawn from its own parametric or histogram model, no column pairs kept.

The fitted model is a small JSON document (`to_json`, `save`, `from_json`, `load`) that a data steward
can read, edit and hand back (`model: path.json`); its format is described in docs/marginals.md.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from suite.encoding import as_float
from suite.errors import ConfigError
from suite.generators._columns import decimals, kind, require_fit, restore, with_missing
from suite.generators._families import FAMILIES, FINEST_GRID, ColumnData, candidates, choose, share
from suite.metadata import Metadata
from suite.registry import generators

#: The `format` field of every model file; a later incompatible format gets a new number.
FORMAT = "marginals/1"
FamilyName = Literal[
    "normal", "lognormal", "uniform", "exponential", "poisson", "categorical", "histogram", "structured_string"
]
KINDS = ("numerical", "datetime", "categorical")
#: Parameter fields that are positions on the value axis: ISO date text in a datetime column's JSON.
_LOCATIONS = ("low", "high", "value")
_COLUMN_FIELDS = {"kind", "dtype", "missing", "family", "params", "decimals", "aic", "suppressed", "note"}
_TOP_FIELDS = {"format", "generator", "params", "fitted_on", "columns"}


@generators.register("marginals")
class MarginalsGenerator:
    """Draws every column independently from the distribution family that fits it best (AIC).

    Numbers try normal, log-normal, uniform, exponential (shifted to the minimum), Poisson (whole
    numbers >= 0), categorical (at most `bins` distinct values, none rare) and an equal-frequency
    histogram; dates try uniform and the histogram; categories are drawn with their observed
    frequencies, leaving out levels seen fewer than `min_count` times. Opt-in
    `structured_strings` draws identifier-like strings (`AB12-345`) position by position, so no
    real identifier is stored or echoed. The missing share of every column is kept. `families`
    restricts the candidates; `model` samples from an edited JSON model instead of the training
    data. Dependence between columns is lost by design: the floor any model must beat.
    """

    name: ClassVar[str] = "marginals"

    def __init__(
        self,
        *,
        bins: int = 50,
        families: list[FamilyName] | None = None,
        min_count: int = 5,
        structured_strings: bool = False,
        model: str | None = None,
    ) -> None:
        self.bins = bins
        self.families = families
        self.min_count = min_count
        self.structured_strings = structured_strings
        self.model = model

    # -- fitting -----------------------------------------------------------------------------------

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> MarginalsGenerator:
        """The fit draws nothing at random: `seed` is accepted for the one idiom and unused."""
        if self.model is not None:
            source = str(self.model)
            model = _validate(_read(Path(self.model)), source)
            _match(model, train, metadata, source)
            self.model_ = model
            self.template_ = train.iloc[:0].copy()
            return self
        self._check_params()
        columns = {c: self._fit_column(train[c], kind(metadata, c)) for c in train.columns}
        self.model_ = {
            "format": FORMAT,
            "generator": "marginals",
            "params": {
                "bins": self.bins,
                "families": self.families,
                "min_count": self.min_count,
                "structured_strings": self.structured_strings,
            },
            "fitted_on": {"rows": int(len(train))},
            "columns": columns,
        }
        self.template_ = train.iloc[:0].copy()
        return self

    @classmethod
    def param_problems(cls, params: dict[str, Any]) -> list[str]:
        """What is wrong with the model file `params["model"]` names (nothing without one); `suite validate`
        and the start of `suite run` ask, so a broken model is bad input (exit 2), not a blocked generator."""
        if params.get("model") is None:
            return []
        try:
            _validate(_read(Path(params["model"])), str(params["model"]))
        except ConfigError as exc:
            return [f"params.model: {exc}"]
        return []

    def preflight(self, train: pd.DataFrame, metadata: Metadata) -> None:
        """Before any fit: a model file must be valid and describe exactly the training columns (ConfigError)."""
        if self.model is not None:
            _match(_validate(_read(Path(self.model)), str(self.model)), train, metadata, str(self.model))

    def _check_params(self) -> None:
        problems = []
        if not isinstance(self.bins, int) or self.bins < 1:
            problems.append(f"bins: expected a whole number >= 1 (got {self.bins!r})")
        if not isinstance(self.min_count, int) or self.min_count < 1:
            problems.append(f"min_count: expected a whole number >= 1 (got {self.min_count!r})")
        unknown = [f for f in self.families or [] if f not in FAMILIES]
        if unknown:
            problems.append(f"families: unknown {unknown}; known: {', '.join(FAMILIES)}")
        if problems:
            raise ConfigError.of(problems, source="marginals params")

    def _fit_column(self, values: pd.Series, k: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"kind": k, "dtype": str(values.dtype), "missing": share(values.isna().mean())}
        if k == "categorical":
            data = ColumnData(
                x=values.dropna().to_numpy(dtype=object), kind=k, bins=self.bins, min_count=self.min_count
            )
        else:
            numbers = as_float(values)
            finite = numbers[np.isfinite(numbers)]
            places = decimals(finite) if k == "numerical" else 0
            grid = 10.0**-places if places is not None else FINEST_GRID
            data = ColumnData(x=finite, kind=k, h=grid, integer=places == 0, bins=self.bins, min_count=self.min_count)
            if k == "numerical":
                entry["decimals"] = places
        family, params, scores = choose(data, candidates(k, self.families, self.structured_strings))
        entry["family"] = family
        entry["params"] = _to_dates(params) if k == "datetime" else params
        entry["aic"] = {n: None if s is None else round(s, 2) for n, s in scores.items()}
        if family == "categorical" and k == "categorical":
            counts = values.value_counts(dropna=True)
            rare = counts[counts < self.min_count]
            if len(rare):
                entry["suppressed"] = {"levels": int(len(rare)), "share": round(float(rare.sum() / len(values)), 6)}
        return entry

    # -- sampling ----------------------------------------------------------------------------------

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "model_")
        rng = np.random.default_rng(seed)
        out = {}
        for column in self.template_.columns:
            entry = self.model_["columns"][column]
            like = self.template_[column]
            family = FAMILIES[entry["family"]]
            params = _from_dates(entry["params"]) if entry["kind"] == "datetime" else entry["params"]
            drawn_values = family.sample(params, n, rng)
            if entry["kind"] == "categorical":
                drawn = _categories(drawn_values, like)
            else:
                numbers = np.asarray(drawn_values, dtype=float)
                if entry.get("decimals") is not None:
                    numbers = np.round(numbers, entry["decimals"])
                drawn = restore(numbers, like)
            out[column] = with_missing(drawn, entry["missing"], rng)
        return pd.DataFrame(out)

    # -- the model as JSON -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The fitted model as plain JSON data (see docs/marginals.md)."""
        require_fit(self, "model_", "to_json")
        model = copy.deepcopy(self.model_)
        model["columns"] = {c: model["columns"][c] for c in self.template_.columns}
        return model

    def save(self, path: str | Path) -> None:
        """Write the model as JSON, atomically (a reader never sees half a file)."""
        from suite.io import write_text_atomic

        write_text_atomic(Path(path), dumps(self.to_json()) + "\n")

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "marginals model") -> MarginalsGenerator:
        """A fitted generator from a model (as `to_json` returns it, perhaps edited); bad models raise
        ConfigError naming `source`, the column and the field."""
        model = _validate(data, source)
        params = model.get("params") or {}
        names = ("bins", "families", "min_count", "structured_strings")
        generator = cls(**{k: params[k] for k in names if k in params})
        generator.model_ = model
        generator.template_ = pd.DataFrame(
            {c: pd.Series([], dtype=_dtype(e)) for c, e in model["columns"].items()}, index=pd.RangeIndex(0)
        )
        return generator

    @classmethod
    def load(cls, path: str | Path) -> MarginalsGenerator:
        return cls.from_json(_read(Path(path)), source=str(path))

    def fit_info(self) -> dict[str, Any]:
        """The family chosen for each column (recorded in the scorecard)."""
        require_fit(self, "model_", "fit_info")
        return {c: self.model_["columns"][c]["family"] for c in self.template_.columns}


# -- helpers -----------------------------------------------------------------------------------------


def _categories(values: np.ndarray, like: pd.Series) -> pd.Series:
    """Drawn labels in the column's dtype; a column whose every level was left out comes back missing
    (in the nullable variant of an integer or boolean dtype, which cannot hold missing values)."""
    dtype = like.dtype
    if len(values) and pd.isna(pd.Series(values, dtype=object)).all():
        if pd.api.types.is_bool_dtype(dtype) and not pd.api.types.is_extension_array_dtype(dtype):
            dtype = "boolean"
        elif pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_extension_array_dtype(dtype):
            dtype = "Int64"
    return pd.Series(values, dtype=dtype)


def _to_iso(value: float) -> str:
    return pd.Timestamp(int(value)).isoformat()


def _to_dates(params: Any) -> Any:
    """A datetime column's parameters with every location (low, high, value) as ISO text."""
    if isinstance(params, dict):
        return {k: _to_iso(v) if k in _LOCATIONS and isinstance(v, float) else _to_dates(v) for k, v in params.items()}
    if isinstance(params, list):
        return [_to_dates(v) for v in params]
    return params


def _from_dates(params: Any, problems: list[str] | None = None, where: str = "params") -> Any:
    """ISO text back to nanoseconds since the epoch (UTC) as floats."""
    if isinstance(params, dict):
        out = {}
        for k, v in params.items():
            if k in _LOCATIONS and isinstance(v, str):
                try:
                    out[k] = float(pd.Timestamp(v).value)
                except (ValueError, TypeError):
                    if problems is not None:
                        problems.append(f"{where}.{k}: not a date: {v!r} (write ISO 8601, like 2020-03-01T00:00:00)")
                    out[k] = v
            elif k in _LOCATIONS and problems is not None:
                problems.append(f"{where}.{k}: expected a date as ISO 8601 text (got {v!r})")
                out[k] = v
            else:
                out[k] = _from_dates(v, problems, f"{where}.{k}")
        return out
    if isinstance(params, list):
        return [_from_dates(v, problems, f"{where}[{i}]") for i, v in enumerate(params)]
    return params


def _dtype(entry: dict[str, Any]) -> Any:
    dtype = pd.api.types.pandas_dtype(entry["dtype"])
    if isinstance(dtype, pd.CategoricalDtype) and entry["family"] == "categorical":
        return pd.CategoricalDtype([c["value"] for c in entry["params"]["categories"]])
    return dtype


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "marginals model file not found (relative paths start at the working directory)", source=str(path)
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the marginals model: {exc.strerror}", source=str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", source=str(path)
        ) from None


def _validate(data: Any, source: str) -> dict[str, Any]:
    """A deep copy of `data` if it is a valid model, else ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError("a marginals model is a JSON object with `format` and `columns`", source=source)
    problems: list[str] = []
    unknown = sorted(set(data) - _TOP_FIELDS)
    if unknown:
        problems.append(f"unknown top-level field(s) {unknown}; expected {sorted(_TOP_FIELDS)}")
    if data.get("format") != FORMAT:
        problems.append(f"field format: expected {FORMAT!r} (got {data.get('format')!r})")
    if "params" in data and not isinstance(data["params"], dict):
        problems.append("field params: expected an object")
    columns = data.get("columns")
    if not isinstance(columns, dict) or not columns:
        problems.append("field columns: expected an object with one entry per column")
        raise ConfigError.of(problems, source=source)
    for column, entry in columns.items():
        problems += [f"column {column!r}: {p}" for p in _column_problems(entry)]
    if problems:
        raise ConfigError.of(problems, source=source)
    return copy.deepcopy(data)


def _column_problems(entry: Any) -> list[str]:
    if not isinstance(entry, dict):
        return ["expected an object with kind, dtype, missing, family and params"]
    problems = [f"field {f}: missing" for f in ("kind", "dtype", "missing", "family", "params") if f not in entry]
    problems += [
        f"field {f}: unknown (expected {', '.join(sorted(_COLUMN_FIELDS))})" for f in entry if f not in _COLUMN_FIELDS
    ]
    if problems:
        return problems
    k, family = entry["kind"], entry["family"]
    if k not in KINDS:
        return [f"field kind: expected one of {', '.join(KINDS)} (got {k!r})"]
    try:
        pd.api.types.pandas_dtype(entry["dtype"])
    except (TypeError, ValueError):
        problems.append(f"field dtype: not a pandas dtype: {entry['dtype']!r}")
    missing = entry["missing"]
    if not isinstance(missing, (int, float)) or isinstance(missing, bool) or not 0.0 <= missing <= 1.0:
        problems.append(f"field missing: expected a share between 0 and 1 (got {missing!r})")
    places = entry.get("decimals")
    if places is not None and (not isinstance(places, int) or isinstance(places, bool) or not 0 <= places <= 15):
        problems.append(f"field decimals: expected a whole number 0-15 or null (got {places!r})")
    if family not in FAMILIES:
        return [*problems, f"field family: unknown family {family!r}; known: {', '.join(FAMILIES)}"]
    if k not in FAMILIES[family].kinds:
        allowed = [n for n, f in FAMILIES.items() if k in f.kinds]
        return [*problems, f"field family: {family!r} does not apply to {k} columns; use one of {', '.join(allowed)}"]
    params = entry["params"]
    if not isinstance(params, dict):
        return [*problems, "field params: expected an object"]
    if k == "datetime":
        date_problems: list[str] = []
        params = _from_dates(params, date_problems, "params")
        if date_problems:
            return [*problems, *(f"field {p}" for p in date_problems)]
    return [*problems, *(f"field params.{p}" for p in FAMILIES[family].check(params, k))]


def _match(model: dict[str, Any], train: pd.DataFrame, metadata: Metadata, source: str) -> None:
    """The model must describe exactly the training columns, each of the kind the metadata gives it."""
    ours, theirs = list(model["columns"]), list(train.columns)
    problems = []
    lacking = [c for c in theirs if c not in ours]
    extra = [c for c in ours if c not in theirs]
    if lacking:
        problems.append(f"the model has no entry for the training column(s) {lacking}")
    if extra:
        problems.append(f"the model describes column(s) {extra} that the training table lacks")
    for c in theirs:
        if c in model["columns"] and model["columns"][c]["kind"] != kind(metadata, c):
            problems.append(
                f"column {c!r}: field kind: the model says {model['columns'][c]['kind']!r}, the metadata makes it "
                f"{kind(metadata, c)!r}"
            )
    if problems:
        raise ConfigError.of(problems, source=source)


def dumps(obj: Any, indent: int = 0, width: int = 110) -> str:
    """JSON with small objects and lists on one line, so a model reads one bin or category per line."""
    flat = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    if len(flat) + indent <= width or not isinstance(obj, (dict, list)) or not obj:
        return flat
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, dict):
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {dumps(v, indent + 2, width)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    items = [f"{inner}{dumps(v, indent + 2, width)}" for v in obj]
    return "[\n" + ",\n".join(items) + f"\n{pad}]"
