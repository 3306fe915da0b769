"""Candidate distribution families for the `marginals` generator: fit, likelihood, AIC, sampling, checks.

Every family works on one column's finite values as float64 (dates as nanoseconds since the epoch)
and keeps its parameters in a plain JSON-able dict with named fields, which is what a data steward
reads and edits (docs/marginals.md). The marginals generator converts date locations to ISO text.

Likelihoods are comparable across families because every value is scored as the probability of
its cell on the column's observation grid: a column recorded with d decimals holds values on a grid
of width h = 10**-d, and a continuous family gives the cell [x - h/2, x + h/2] its probability
F(x + h/2) - F(x - h/2) (or f(x) * h when the cell is tiny against the spread of the data). That
is exactly the distribution the generator samples, since draws are rounded to d decimals. A point
mass (an atom of the histogram, a category) then scores its probability, a discrete family its pmf.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import stats

#: Tolerance on "probabilities sum to 1" when checking a model (edited JSON is rounded by hand).
SUM_TOLERANCE = 1e-6
#: The finest grid assumed for values recorded with more than 6 decimals.
FINEST_GRID = 1e-7
#: A structured string may be at most this long.
MAX_PATTERN_LENGTH = 64


@dataclass(frozen=True)
class ColumnData:
    """What a family sees of one column: its finite values and how they were recorded."""

    x: np.ndarray  # finite values (float64); object values for categorical columns
    kind: str  # numerical, datetime or categorical
    h: float = 1.0  # grid width: 10**-decimals (1 ns for dates)
    integer: bool = False  # every value a whole number (decimals == 0)
    bins: int = 50
    min_count: int = 5

    @property
    def span(self) -> float:
        return float(self.x.max() - self.x.min()) if len(self.x) else 0.0


class Family:
    """One candidate distribution: override `applies`, `fit`, `loglik`, `n_params`, `sample`, `check`."""

    name: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = ()
    #: The parameter fields, all required.
    fields: ClassVar[tuple[str, ...]] = ()
    #: Chosen whenever it applies, whatever the AIC (an opt-in family).
    preferred: ClassVar[bool] = False

    def applies(self, d: ColumnData) -> bool:
        return len(d.x) > 0

    def fit(self, d: ColumnData) -> dict[str, Any] | None:
        raise NotImplementedError

    def loglik(self, d: ColumnData, params: dict[str, Any]) -> float:
        raise NotImplementedError

    def n_params(self, params: dict[str, Any], kind: str) -> int:
        return len(self.fields)

    def sample(self, params: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def check(self, params: dict[str, Any], kind: str) -> list[str]:
        """Problems with `params` as 'field: what is wrong' (an empty list when they are fine)."""
        problems = _exact_fields(params, self.fields)
        if problems:
            return problems
        return [f"{f}: expected a finite number (got {params[f]!r})" for f in self.fields if not _finite(params[f])]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _exact_fields(params: dict[str, Any], fields: tuple[str, ...]) -> list[str]:
    problems = [f"{f}: missing field" for f in fields if f not in params]
    problems += [f"{k}: unknown field (expected {', '.join(fields)})" for k in params if k not in fields]
    return problems


def _check_probabilities(ps: list[Any], where: str) -> list[str]:
    bad = [i for i, p in enumerate(ps) if not _finite(p) or p < 0]
    if bad:
        return [f"{where}: probabilities must be finite numbers >= 0 (entry {bad[0]} is {ps[bad[0]]!r})"]
    total = float(sum(ps))
    if ps and abs(total - 1.0) > SUM_TOLERANCE:
        return [f"{where}: probabilities sum to {total:.6g}, not 1"]
    return []


def _grid_loglik(
    d: ColumnData, logpdf: Callable, cdf: Callable, sf: Callable, scale: float, half: float | None = None
) -> float:
    """Sum of log cell probabilities on the grid (see the module docstring)."""
    x, h = d.x, d.h
    half = h / 2 if half is None else half
    if d.kind != "datetime" and h * 1e4 >= max(scale, 1e-300):
        lo, hi = x - half, x + half
        p = np.maximum(cdf(hi) - cdf(lo), sf(lo) - sf(hi))
        return float(np.log(np.maximum(p, 1e-300)).sum())
    return float(logpdf(x).sum() + len(x) * math.log(h))


def _pad(d: ColumnData) -> float:
    """Half a grid cell for numbers (draws are rounded to the grid), nothing for dates."""
    return 0.0 if d.kind == "datetime" else d.h / 2


class Normal(Family):
    name = "normal"
    kinds = ("numerical",)
    fields = ("mean", "sd")

    def applies(self, d: ColumnData) -> bool:
        return len(d.x) >= 2 and d.x.std() > 0

    def fit(self, d: ColumnData) -> dict[str, Any]:
        return {"mean": float(d.x.mean()), "sd": float(d.x.std())}

    def loglik(self, d: ColumnData, params: dict[str, Any]) -> float:
        dist = stats.norm(params["mean"], params["sd"])
        return _grid_loglik(d, dist.logpdf, dist.cdf, dist.sf, params["sd"])

    def sample(self, params: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.normal(params["mean"], params["sd"], n)

    def check(self, params: dict[str, Any], kind: str) -> list[str]:
        return super().check(params, kind) or (["sd: must be > 0"] if params["sd"] <= 0 else [])


class LogNormal(Family):
    name = "lognormal"
    kinds = ("numerical",)
    fields = ("meanlog", "sdlog")

    def applies(self, d: ColumnData) -> bool:
        return len(d.x) >= 2 and bool((d.x > 0).all()) and np.log(d.x).std() > 0

    def fit(self, d: ColumnData) -> dict[str, Any]:
        logs = np.log(d.x)
        return {"meanlog": float(logs.mean()), "sdlog": float(logs.std())}

    def loglik(self, d: ColumnData, params: dict[str, Any]) -> float:
        dist = stats.lognorm(s=params["sdlog"], scale=math.exp(params["meanlog"]))
        return _grid_loglik(d, dist.logpdf, dist.cdf, dist.sf, float(d.x.std()) or 1.0)

    def sample(self, params: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.lognormal(params["meanlog"], params["sdlog"], n)

    def check(self, params: dict[str, Any], kind: str) -> list[str]:
        return super().check(params, kind) or (["sdlog: must be > 0"] if params["sdlog"] <= 0 else [])


class Uniform(Family):
    """Uniform between `low` and `high`. On a grid the ends sit half a cell outside the observed
    minimum and maximum, so rounded draws cover every grid point in [min, max] equally: for whole
    numbers this is the discrete uniform over {min, ..., max}."""

    name = "uniform"
    kinds = ("numerical", "datetime")
    fields = ("low", "high")

    def applies(self, d: ColumnData) -> bool:
        return len(d.x) >= 2 and d.span > 0

    def fit(self, d: ColumnData) -> dict[str, Any]:
        pad = _pad(d)
        return {"low": float(d.x.min() - pad), "high": float(d.x.max() + pad)}

    def loglik(self, d: ColumnData, params: dict[str, Any]) -> float:
        dist = stats.uniform(params["low"], params["high"] - params["low"])
        return _grid_loglik(d, dist.logpdf, dist.cdf, dist.sf, params["high"] - params["low"])

    def sample(self, params: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(params["low"], params["high"], n)

    def check(self, params: dict[str, Any], kind: str) -> list[str]:
        return super().check(params, kind) or (["high: must be > low"] if params["high"] <= params["low"] else [])


class Exponential(Family):
    """Exponential shifted to start at `loc` (the observed minimum; on a grid, the point of the
    minimum's cell that is likeliest): any column bounded below fits, negative or not; `rate` is
    1 / (mean - loc)."""

    name = "exponential"
    kinds = ("numerical",)
    fields = ("loc", "rate")

    def applies(self, d: ColumnData) -> bool:
        return len(d.x) >= 2 and d.span > 0

    def fit(self, d: ColumnData) -> dict[str, Any]:
        # on a grid the true start lies somewhere in the minimum's cell: try a few, keep the likeliest
        pad = _pad(d)
        fits = [
            {"loc": float(loc), "rate": float(1.0 / (d.x.mean() - loc))}
            for loc in d.x.min() - pad + 2 * pad * np.linspace(0.0, 0.9, 10 if pad else 1)
        ]
        return max(fits, key=lambda p: self.loglik(d, p))

    def loglik(self, d: ColumnData, params: dict[str, Any]) -> float:
        dist = stats.expon(params["loc"], 1.0 / params["rate"])
        return _grid_loglik(d, dist.logpdf, dist.cdf, dist.sf, 1.0 / params["rate"])

    def sample(self, params: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        return params["loc"] + rng.exponential(1.0 / params["rate"], n)

    def check(self, params: dict[str, Any], kind: str) -> list[str]:
        return super().check(params, kind) or (["rate: must be > 0"] if params["rate"] <= 0 else [])


class Poisson(Family):
    """Poisson counts (whole numbers >= 0 only) with mean `mean`."""

    name = "poisson"
    kinds = ("numerical",)
    fields = ("mean",)

    def applies(self, d: ColumnData) -> bool:
        return len(d.x) >= 2 and d.integer and bool((d.x >= 0).all()) and d.x.mean() > 0

    def fit(self, d: ColumnData) -> dict[str, Any]:
        return {"mean": float(d.x.mean())}

    def loglik(self, d: ColumnData, params: dict[str, Any]) -> float:
        return float(stats.poisson.logpmf(d.x, params["mean"]).sum())

    def sample(self, params: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.poisson(params["mean"], n).astype(float)

    def check(self, params: dict[str, Any], kind: str) -> list[str]:
        return super().check(params, kind) or (["mean: must be > 0"] if params["mean"] <= 0 else [])


def _levels(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and their counts, most frequent first (ties in first-seen order)."""
    if x.dtype == object:
        import pandas as pd

        counts = pd.Series(x, dtype=object).value_counts(sort=True)
        return counts.index.to_numpy(dtype=object), counts.to_numpy()
    values, counts = np.unique(x, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return values[order], counts[order]


class Categorical(Family):
    """Observed levels with their frequencies; levels seen fewer than `min_count` times are left
    out and the others renormalised. For categorical columns it is the only family (AIC is reported
    for the unsuppressed frequencies); for numbers it is offered when a column has at most `bins`
    distinct values, none of them rarer than `min_count`."""

    name = "categorical"
    kinds = ("numerical", "categorical")
    fields = ("categories",)

    def applies(self, d: ColumnData) -> bool:
        if d.kind == "categorical":
            return True
        if not len(d.x):
            return False
        values, counts = _levels(d.x)
        return len(values) <= d.bins and counts.min() >= d.min_count

    def fit(self, d: ColumnData) -> dict[str, Any]:
        values, counts = _levels(d.x)
        keep = counts >= d.min_count
        kept = counts[keep]
        p = kept / kept.sum() if len(kept) else kept.astype(float)
        return {
            "categories": [{"value": to_json_scalar(v), "p": share(q)} for v, q in zip(values[keep], p, strict=True)]
        }

    def loglik(self, d: ColumnData, params: dict[str, Any]) -> float:
        # the maximum likelihood of the observed frequencies (before rare levels are left out)
        _, counts = _levels(d.x)
        return float((counts * np.log(counts / counts.sum())).sum()) if len(counts) else 0.0

    def n_params(self, params: dict[str, Any], kind: str) -> int:
        m = len(params["categories"])
        # a number's levels are locations as well as probabilities; a label's only probabilities
        return max(2 * m - 1 if kind == "numerical" else m - 1, 0)

    def sample(self, params: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        cats = params["categories"]
        if not cats:
            return np.full(n, None, dtype=object)
        values = np.empty(len(cats), dtype=object)
        values[:] = [c["value"] for c in cats]
        p = np.array([c["p"] for c in cats], dtype=float)
        return values[rng.choice(len(cats), size=n, p=p / p.sum())]

    def check(self, params: dict[str, Any], kind: str) -> list[str]:
        problems = _exact_fields(params, self.fields)
        if problems:
            return problems
        cats = params["categories"]
        if not isinstance(cats, list):
            return ["categories: expected a list of {value, p}"]
        for i, c in enumerate(cats):
            if not isinstance(c, dict) or set(c) != {"value", "p"}:
                return [f"categories[{i}]: expected exactly the fields value and p (got {c!r})"]
            if kind == "numerical" and not _finite(c["value"]):
                return [f"categories[{i}].value: expected a number (got {c['value']!r})"]
        values = [c["value"] for c in cats]
        if len({repr(v) for v in values}) < len(values):
            return ["categories: a value is listed twice"]
        return _check_probabilities([c["p"] for c in cats], "categories[].p")


class Histogram(Family):
    """The nonparametric fallback: atoms (values holding at least 1/bins of the values and seen at
    least `min_count` times) and equal-frequency bins over the other values, at most `bins` and each
    holding at least `min_count` values, the outer edges at the `min_count`-th smallest and largest
    value (top and bottom coding); a bin is drawn with its share, then a value uniformly inside it.
    Parameters counted for AIC: every atom's value and every distinct bin edge (locations), and every
    probability but one."""

    name = "histogram"
    kinds = ("numerical", "datetime")
    fields = ("atoms", "bins")

    def applies(self, d: ColumnData) -> bool:
        return True

    def fit(self, d: ColumnData) -> dict[str, Any]:
        finite, bins, n = d.x, d.bins, len(d.x)
        if not n:
            return {"atoms": [], "bins": []}
        distinct, counts = np.unique(finite, return_counts=True)
        heavy = (counts * bins >= n) & (counts >= d.min_count)
        if len(distinct) - heavy.sum() <= bins:
            # few distinct values: every value seen min_count times is an atom (all of them with
            # min_count = 1, the original behaviour); the rarer ones are binned
            heavy = counts >= d.min_count
        rest = finite[~np.isin(finite, distinct[heavy])]
        atoms = [{"value": float(v), "p": float(c / n)} for v, c in zip(distinct[heavy], counts[heavy], strict=True)]
        out_bins: list[dict[str, float]] = []
        if len(np.unique(rest)) >= 2:
            # each bin holds at least min_count values: on a small table a bin per value would
            # place draws next to single real values (a shadow-model attack sees one record's presence)
            m = max(d.min_count, 1)
            k = max(1, min(bins, len(rest) // m))
            # top and bottom coding: the outer edges are the m-th smallest and largest values, so the
            # support never ends exactly at one person's extreme value
            ordered = np.sort(rest)
            low, high = (ordered[m - 1], ordered[-m]) if len(ordered) >= 2 * m else (ordered[0], ordered[-1])
            if low < high:
                rest = np.clip(rest, low, high)
            edges = np.unique(np.quantile(rest, np.linspace(0.0, 1.0, k + 1)))
            in_bins = np.histogram(rest, edges)[0]
            out_bins = [
                {"low": float(lo), "high": float(hi), "p": float(c / n)}
                for lo, hi, c in zip(edges[:-1], edges[1:], in_bins, strict=True)
                if c > 0
            ]
        total = sum(a["p"] for a in atoms) + sum(b["p"] for b in out_bins)
        for entry in [*atoms, *out_bins]:  # renormalised when a single rare value was left out
            entry["p"] = share(entry["p"] / total)
        return {"atoms": atoms, "bins": out_bins}

    def loglik(self, d: ColumnData, params: dict[str, Any]) -> float:
        x = d.x
        logp = np.full(len(x), -np.inf)
        bins = params["bins"]
        if bins:
            lows = np.array([b["low"] for b in bins])
            highs = np.array([b["high"] for b in bins])
            ps = np.array([b["p"] for b in bins])
            xc = np.clip(x, lows[0], highs[-1])  # top- and bottom-coded values count in the outer bins
            idx = np.clip(np.searchsorted(lows, xc, side="right") - 1, 0, len(bins) - 1)
            inside = (xc >= lows[idx]) & (xc <= highs[idx])
            width = np.maximum(highs[idx] - lows[idx], 1e-300)
            cell = ps[idx] * np.minimum(1.0, d.h / width)
            logp[inside] = np.log(np.maximum(cell[inside], 1e-300))
        for atom in params["atoms"]:
            logp[x == atom["value"]] = math.log(max(atom["p"], 1e-300))
        return float(logp.sum())

    def n_params(self, params: dict[str, Any], kind: str) -> int:
        atoms, bins = params["atoms"], params["bins"]
        edges = {b["low"] for b in bins} | {b["high"] for b in bins}
        return max(len(atoms) + len(edges) + len(atoms) + len(bins) - 1, 0)

    def sample(self, params: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        atoms, bins = params["atoms"], params["bins"]
        if not atoms and not bins:
            return np.full(n, np.nan)
        p = np.array([a["p"] for a in atoms] + [b["p"] for b in bins], dtype=float)
        which = rng.choice(len(p), size=n, p=p / p.sum())
        out = np.empty(n)
        atom = which < len(atoms)
        out[atom] = np.array([a["value"] for a in atoms], dtype=float)[which[atom]] if len(atoms) else 0.0
        b = which[~atom] - len(atoms)
        if len(bins):
            lows = np.array([x["low"] for x in bins], dtype=float)
            highs = np.array([x["high"] for x in bins], dtype=float)
            out[~atom] = rng.uniform(lows[b], highs[b])
        return out

    def check(self, params: dict[str, Any], kind: str) -> list[str]:
        problems = _exact_fields(params, self.fields)
        if problems:
            return problems
        atoms, bins = params["atoms"], params["bins"]
        if not isinstance(atoms, list) or not isinstance(bins, list):
            return ["atoms, bins: expected lists ([] for none)"]
        for i, a in enumerate(atoms):
            if not isinstance(a, dict) or set(a) != {"value", "p"}:
                return [f"atoms[{i}]: expected exactly the fields value and p (got {a!r})"]
            if not _finite(a["value"]):
                return [f"atoms[{i}].value: expected a number{' or date' if kind == 'datetime' else ''}"]
        last = -math.inf
        for i, b in enumerate(bins):
            if not isinstance(b, dict) or set(b) != {"low", "high", "p"}:
                return [f"bins[{i}]: expected exactly the fields low, high and p (got {b!r})"]
            if not (_finite(b["low"]) and _finite(b["high"])):
                return [f"bins[{i}].low/high: expected numbers{' or dates' if kind == 'datetime' else ''}"]
            if b["high"] <= b["low"]:
                return [f"bins[{i}].high: must be > low"]
            if b["low"] < last:
                return [f"bins[{i}].low: bins must be in increasing order and must not overlap"]
            last = b["high"]
        return _check_probabilities([a["p"] for a in atoms] + [b["p"] for b in bins], "atoms[].p + bins[].p")


def char_class(c: str) -> str:
    """`A` upper-case letter, `a` lower-case letter, `9` digit, else the character itself."""
    if c.isascii() and c.isupper():
        return "A"
    if c.isascii() and c.islower():
        return "a"
    if c.isascii() and c.isdigit():
        return "9"
    return c


def string_shape(values: np.ndarray) -> str | None:
    """The shared character-class pattern of `values` (like `AA99-999`), or None if there is none."""
    if not len(values) or not all(isinstance(v, str) for v in values):
        return None
    lengths = {len(v) for v in values}
    if len(lengths) != 1 or not 0 < lengths.pop() <= MAX_PATTERN_LENGTH:
        return None
    first = "".join(char_class(c) for c in values[0])
    for v in values:
        if "".join(char_class(c) for c in v) != first:
            return None
    return first if any(c in "Aa9" for c in first) else None


class StructuredString(Family):
    """Identifier-like strings of one shape (`AB12-345`: letters, digits and separators at fixed
    positions): each position drawn independently from its observed characters, so new strings of
    the same shape come out and no training string is stored. Opt-in (`structured_strings: true`):
    the strings it makes are new categories. Used, whatever the AIC, when more than half the
    non-missing values (at least 10) are distinct and all share one shape."""

    name = "structured_string"
    kinds = ("categorical",)
    # AIC would often pick the categorical (it memorises every string), which min_count then empties
    preferred = True
    fields = ("shape", "positions")

    def applies(self, d: ColumnData) -> bool:
        if len(d.x) < 10 or d.x.dtype != object:
            return False
        distinct = len(set(d.x.tolist()))
        return distinct > 0.5 * len(d.x) and string_shape(d.x) is not None

    def fit(self, d: ColumnData) -> dict[str, Any]:
        chars = np.array([list(v) for v in d.x.tolist()])
        positions = []
        for j in range(chars.shape[1]):
            values, counts = np.unique(chars[:, j], return_counts=True)
            order = np.argsort(-counts, kind="stable")
            positions.append({str(values[i]): share(counts[i] / counts.sum()) for i in order})
        return {"shape": string_shape(d.x), "positions": positions}

    def loglik(self, d: ColumnData, params: dict[str, Any]) -> float:
        total = 0.0
        for j, probs in enumerate(params["positions"]):
            total += sum(math.log(max(probs.get(v[j], 0.0), 1e-300)) for v in d.x.tolist())
        return total

    def n_params(self, params: dict[str, Any], kind: str) -> int:
        return sum(len(p) - 1 for p in params["positions"])

    def sample(self, params: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        columns = []
        for probs in params["positions"]:
            chars = np.array(list(probs), dtype=object)
            p = np.array(list(probs.values()), dtype=float)
            columns.append(chars[rng.choice(len(chars), size=n, p=p / p.sum())])
        out = np.empty(n, dtype=object)
        out[:] = ["".join(row) for row in zip(*columns, strict=True)] if columns else [""] * n
        return out

    def check(self, params: dict[str, Any], kind: str) -> list[str]:
        problems = _exact_fields(params, self.fields)
        if problems:
            return problems
        positions = params["positions"]
        if not isinstance(positions, list) or not positions:
            return ["positions: expected a non-empty list of {character: p} objects"]
        for j, probs in enumerate(positions):
            if not isinstance(probs, dict) or not probs:
                return [f"positions[{j}]: expected a non-empty object {{character: p}}"]
            if any(len(c) != 1 for c in probs):
                return [f"positions[{j}]: keys must be single characters"]
            problems = _check_probabilities(list(probs.values()), f"positions[{j}]")
            if problems:
                return problems
        shape = params["shape"]
        if not isinstance(shape, str) or len(shape) != len(positions):
            return [f"shape: expected a string of {len(positions)} characters, one per position"]
        return []


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Normal(),
        LogNormal(),
        Uniform(),
        Exponential(),
        Poisson(),
        Categorical(),
        Histogram(),
        StructuredString(),
    )
}
#: The nonparametric family every kind falls back to when no candidate is allowed or fits.
FALLBACK = {"numerical": "histogram", "datetime": "histogram", "categorical": "categorical"}


def candidates(kind: str, allowed: list[str] | None, structured_strings: bool) -> list[str]:
    """Family names tried for a column of `kind`, in tie-breaking order (simplest first)."""
    names = [n for n, f in FAMILIES.items() if kind in f.kinds]
    if not structured_strings:
        names.remove("structured_string") if "structured_string" in names else None
    if allowed is not None:
        names = [n for n in names if n in allowed]
    return names or [FALLBACK[kind]]


def aic(family: Family, d: ColumnData, params: dict[str, Any]) -> float | None:
    """Akaike's information criterion 2k - 2 log L (None when some value has no probability)."""
    ll = family.loglik(d, params)
    if not math.isfinite(ll):
        return None
    return 2.0 * family.n_params(params, d.kind) - 2.0 * ll


def choose(d: ColumnData, names: list[str]) -> tuple[str, dict[str, Any], dict[str, float | None]]:
    """Fit every candidate that applies; return the lowest-AIC one, its params and every AIC."""
    scores: dict[str, float | None] = {}
    fitted: dict[str, dict[str, Any]] = {}
    for name in names:
        family = FAMILIES[name]
        if not family.applies(d):
            continue
        params = family.fit(d)
        if params is None:
            continue
        fitted[name] = params
        scores[name] = aic(family, d, params)
    finite = {n: s for n, s in scores.items() if s is not None}
    preferred = [n for n in fitted if FAMILIES[n].preferred]
    if preferred:  # asked for explicitly (structured strings): wins whenever it applies
        best = preferred[0]
    elif finite:
        best = min(finite, key=lambda n: (finite[n], names.index(n)))
    else:
        best = next(iter(fitted), FALLBACK[d.kind])
        if best not in fitted:
            fitted[best] = FAMILIES[best].fit(d) or {}
    return best, fitted[best], scores


def share(p: float) -> float:
    """A probability rounded to 8 significant digits: readable, and sums stay within 1e-6 of 1."""
    return float(f"{float(p):.8g}")


def to_json_scalar(value: Any) -> Any:
    """A category value as plain JSON: numpy scalars unwrapped, anything else exotic as text."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
