"""Shared machinery of the anonymeter attacks: targets, data types, pinned randomness, results.

The three attacks (`singling_out`, `linkability`, `inference`) attack the same prepared
frames; singling out and linkability run anonymeter's evaluators and report its three numbers
the same way (inference runs anonymeter's attack itself, `attacks/inference.py`):

- **targets**: when the data has an entity column, train and control are reduced to one row
  per entity (a random row, drawn from the scenario's seed), so each attack target is a
  distinct person; the synthetic data (which has no entity column) stays whole;
- **types**: exactly the metadata's columns; numbers and dates as float64 (missing -> NaN,
  which anonymeter reads as missing), everything else as text with one sentinel for missing
  values, so anonymeter treats each column as the metadata says;
- **randomness**: `pinned_randomness(seed)` makes every draw anonymeter makes come from the seed;
- **results**: `attack_measurements` turns anonymeter's `EvaluationResults` into a `risk`
  measurement (residual risk over the control, anonymeter's interval) and an
  `attack_advantage` measurement (attack minus naive guess, Newcombe's interval).

What in anonymeter 1.1 draws randomness, and how each is pinned here:

- `SinglingOutEvaluator` takes `seed=` (the query generation and the random baseline queries);
- `linkability_evaluator._random_links` calls `np.random.default_rng()` without a seed: the
  `np` that anonymeter's modules see is replaced, while an evaluator runs, by a proxy whose
  `random.default_rng()` returns a generator seeded from the seed and a call counter;
- `DataFrame.sample` without `random_state` (linkability targets) draws from numpy's global
  generator: `suite.seeding.seeded` seeds it;
- polars: `DataFrame.sample` without a seed (anonymeter's singling-out size correction, which
  the suite no longer calls) gets one from the same counter; `Series.unique()` and
  `DataFrame.group_by()` return their groups in an order that changes from call to call,
  and singling out draws from those lists (univariate candidates, baseline query values),
  so they are asked to keep the order of first appearance (`maintain_order=True`), which
  is one of the orders they were free to return.

Everything is restored on exit; a lock keeps two evaluations in one process from
interleaving their patches.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from suite.encoding import as_float
from suite.metadata import Metadata
from suite.seeding import derive_seed, seeded
from suite.stats import newcombe_difference_ci
from suite.types import Context, Goal, Measurement

#: Stands for a missing value in a categorical column (anonymeter's encoders cannot sort None with text).
MISSING = "\x00missing"

_LOCK = threading.RLock()


# --------------------------------------------------------------------------------------------
# randomness


class _Proxy:
    """A stand-in for a module: `overrides` first, everything else from `target`."""

    def __init__(self, target: Any, **overrides: Any) -> None:
        self._target = target
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def _anonymeter_modules() -> list[Any]:
    """anonymeter's loaded modules, except those holding numba-compiled functions.

    numba reads a module's `np` when it compiles, and cannot compile against a proxy; those
    modules (the neighbour search) draw nothing at random.
    """
    import anonymeter.evaluators  # noqa: F401  (loads every evaluator module)

    named = [m for n, m in list(sys.modules.items()) if (n == "anonymeter" or n.startswith("anonymeter.")) and m]
    return [m for m in named if not any(hasattr(v, "py_func") for v in vars(m).values())]


def _keep_order(method: Any) -> Any:
    def wrapper(self: Any, *args: Any, maintain_order: bool = True, **kwargs: Any) -> Any:
        return method(self, *args, maintain_order=maintain_order, **kwargs)

    wrapper.__wrapped__ = method  # type: ignore[attr-defined]
    return wrapper


@contextmanager
def pinned_randomness(seed: int) -> Iterator[None]:
    """While the block runs, every random draw anonymeter makes comes from `seed`.

    See the module docstring for what is pinned and why. Not reentrant across threads: a
    process-wide lock serialises blocks.
    """
    import polars as pl

    counter = itertools.count()
    real_default_rng = np.random.default_rng

    def next_seed() -> int:
        return int(np.random.SeedSequence([seed % 2**63, next(counter)]).generate_state(1, dtype=np.uint64)[0])

    def default_rng(seed_: Any = None) -> np.random.Generator:
        return real_default_rng(next_seed() if seed_ is None else seed_)

    np_proxy = _Proxy(np, random=_Proxy(np.random, default_rng=default_rng))
    real_sample = pl.DataFrame.sample

    def sample(self: Any, *args: Any, seed: int | None = None, **kwargs: Any) -> Any:
        return real_sample(self, *args, seed=next_seed() if seed is None else seed, **kwargs)

    class_patches = [
        (pl.Series, "unique", _keep_order(pl.Series.unique)),
        (pl.DataFrame, "group_by", _keep_order(pl.DataFrame.group_by)),
        (pl.DataFrame, "sample", sample),
    ]
    with _LOCK, seeded(seed):
        saved_np = [(m, m.np) for m in _anonymeter_modules() if getattr(m, "np", None) is np]
        saved_cls = [(cls, name, cls.__dict__[name]) for cls, name, _ in class_patches]
        try:
            for module, _ in saved_np:
                module.np = np_proxy
            for cls, name, patched in class_patches:
                setattr(cls, name, patched)
            yield
        finally:
            for module, original in saved_np:
                module.np = original
            for cls, name, original in saved_cls:
                setattr(cls, name, original)


@dataclass
class Notes:
    """What anonymeter said while it ran: its warnings and its log lines (counts and rates, never data)."""

    warnings: list[str]
    log: list[str]

    def as_details(self) -> dict[str, list[str]]:
        return {"warnings": list(dict.fromkeys(self.warnings)), "log": list(dict.fromkeys(self.log))}


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


@contextmanager
def captured_notes() -> Iterator[Notes]:
    """Catch the warnings and the anonymeter log records raised in the block instead of showing them.

    anonymeter's own messages carry counts and rates only, so their text is kept; for a
    warning from any other library only its category is kept (its text might quote data).
    """
    notes = Notes(warnings=[], log=[])
    logger = logging.getLogger("anonymeter")
    handler = _ListHandler(notes.log)
    logger.addHandler(handler)
    propagate = logger.propagate
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield notes
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    import anonymeter

    package = os.path.dirname(os.path.abspath(anonymeter.__file__)) + os.sep
    for w in caught:
        own = os.path.abspath(str(w.filename)).startswith(package)  # not a folder that merely has the name
        notes.warnings.append(str(w.message) if own else f"{w.category.__name__} from {w.filename.rsplit('/', 1)[-1]}")


# --------------------------------------------------------------------------------------------
# data


def one_row_per_entity(frame: pd.DataFrame, entities: pd.Series, rng: np.random.Generator) -> pd.DataFrame:
    """A random row of each entity (rows aligned by position), in the frame's order."""
    if len(entities) != len(frame):
        raise ValueError(f"entity ids ({len(entities)}) do not line up with the rows ({len(frame)})")
    codes = pd.factorize(entities, use_na_sentinel=False)[0]
    order = rng.permutation(len(codes))
    _, first = np.unique(codes[order], return_index=True)
    return frame.iloc[np.sort(order[first])].reset_index(drop=True)


def _category_text(values: pd.Series) -> pd.Series:
    """Values as text, equal whatever the dtype that carries them (1, 1.0 and True agree); missing -> MISSING."""
    codes, texts = _text_codes(values)
    return pd.Series(np.array(texts, dtype=object)[codes] if len(codes) else [], dtype=object)


def _text_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each value's code into its distinct texts (`_category_text` is texts[codes]): numbers and booleans as
    repr(float) once per distinct bit pattern (0.0 and -0.0 apart, as repr tells them), plain strings as they
    are, anything else as str(value); missing -> MISSING. Two rows share a code exactly when their texts are
    equal, without a text object (or a frame of them) per row."""
    missing = values.isna().to_numpy()
    index: dict[str, int] = {}
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        # one text per distinct float (bit pattern), then one code per distinct text (NaN payloads share 'nan')
        bits, inverse = np.unique(as_float(values).view(np.int64), return_inverse=True)
        texts = (repr(float(v)) for v in bits.view(np.float64))
        codes = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64, count=len(bits))
        codes = codes[inverse.reshape(-1)]
    else:
        objects = values.to_numpy(dtype=object)
        if set(map(type, objects[~missing])) <= {str}:  # plain strings are their own text: hashed, not called
            codes, uniques = pd.factorize(np.where(missing, MISSING, objects), use_na_sentinel=False)
            return codes.astype(np.int64), [str(u) for u in uniques]
        cells = (index.setdefault(str(v), len(index)) for v in objects)
        codes = np.fromiter(cells, dtype=np.int64, count=len(values))
    if missing.any():
        codes[missing] = index.setdefault(MISSING, len(index))
    return codes, list(index)


def unique_polars(frame: pd.DataFrame, metadata: Metadata) -> Any:
    """What anonymeter's singling out makes of `to_anonymeter(frame, metadata)`: a polars frame with its safe
    column names, duplicate rows dropped (the first of each kept, in the frame's order), equal to
    `pl.DataFrame(_safe_column_names(to_anonymeter(frame, metadata))).unique(maintain_order=True)`.

    Built column by column from codes, without the text frame or the polars copy of every row: at 100k x 41
    those cost about 250 MB a frame, which set the run's peak memory. Rows are deduplicated on the codes
    (equal codes, equal texts) and on the numbers as polars compares them (the same float column).
    """
    import polars as pl
    from anonymeter.evaluators.singling_out_evaluator import _safe_column_names

    missing = [c for c in metadata.columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks the metadata's column(s) {missing}")
    columns = list(metadata.columns)
    names = list(_safe_column_names(pd.DataFrame(columns=columns)).columns)
    continuous = set(metadata.continuous)
    parts: list[Any] = []
    keys: dict[str, Any] = {}
    for i, c in enumerate(columns):
        if c in continuous:
            # NaN as missing (null), as pl.DataFrame(a pandas frame) reads it
            part: Any = pl.Series(names[i], as_float(frame[c], c), nan_to_null=True)
            keys[f"k{i}"] = part
        else:
            codes, texts = _text_codes(frame[c])
            part = (codes, texts)
            small = next(t for t in (np.uint8, np.uint16, np.uint32, np.int64) if len(texts) <= np.iinfo(t).max)
            keys[f"k{i}"] = pl.Series(codes.astype(small))  # the narrowest codes: less for `unique` to encode
        parts.append(part)
    if not keys:
        return pl.DataFrame(_safe_column_names(to_anonymeter(frame, metadata))).unique(maintain_order=True)
    kept = pl.DataFrame(keys).with_row_index("row").unique(subset=list(keys), maintain_order=True)["row"]
    rows = kept.to_numpy()
    del keys
    out = []
    for name, part in zip(names, parts):
        if isinstance(part, tuple):
            codes, texts = part
            out.append(pl.Series(name, texts, dtype=pl.String).gather(codes[rows]))
        else:
            out.append(part.gather(kept))
    return pl.DataFrame(out)


def to_anonymeter(frame: pd.DataFrame, metadata: Metadata) -> pd.DataFrame:
    """A new frame of the metadata's columns that anonymeter reads as the metadata says.

    Numerical and datetime columns become float64 (dates as nanoseconds; missing and
    infinite values as NaN, which polars and anonymeter's neighbour search read as missing);
    every other column becomes text, with missing values as one sentinel category (anonymeter's
    label encoder cannot sort None among strings, and a numeric-looking category such as a 0/1
    flag must not be compared as a number). The input frame is not modified.
    """
    missing = [c for c in metadata.columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks the metadata's column(s) {missing}")
    continuous = set(metadata.continuous)
    out = {
        c: (pd.Series(as_float(frame[c], c)) if c in continuous else _category_text(frame[c])) for c in metadata.columns
    }
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


@dataclass(frozen=True)
class AttackData:
    """Train targets, control targets and the synthetic table, ready for anonymeter."""

    train: pd.DataFrame
    control: pd.DataFrame
    synthetic: pd.DataFrame
    entity_level: bool
    train_rows: int
    control_rows: int

    def capped(self, n_attacks: int) -> tuple[int, dict[str, Any]]:
        """`n_attacks`, capped at the number of train and control targets, and what was capped."""
        if n_attacks < 1:
            raise ValueError(f"n_attacks must be a positive number of attacks, got {n_attacks}")
        n = min(n_attacks, len(self.train), len(self.control))
        if n < 1:
            raise ValueError("no target left to attack: train or control is empty")
        return n, {
            "n_attacks_requested": int(n_attacks),
            "n_attacks": int(n),
            "n_attacks_capped": n < n_attacks,
            "cap_reason": (
                f"only {len(self.train)} train and {len(self.control)} control targets" if n < n_attacks else None
            ),
        }

    def details(self) -> dict[str, Any]:
        return {
            "entity_level": self.entity_level,
            "train_rows": self.train_rows,
            "control_rows": self.control_rows,
            "train_targets": int(len(self.train)),
            "control_targets": int(len(self.control)),
            "synthetic_rows": int(len(self.synthetic)),
        }


def attack_data(ctx: Context, *, convert: bool = True) -> AttackData:
    """The context's frames as anonymeter's ori, control and syn, one row per entity when there are entities.

    The entity reduction uses a seed derived from `ctx.seed` (the same for all three
    attacks, so they attack the same people). `convert=False` leaves the frames as the context has
    them (only reduced to one row per entity), for a caller that converts them itself (`unique_polars`).
    """
    train, control = ctx.train, ctx.holdout
    entity_level = ctx.train_entities is not None
    if entity_level:
        rng = np.random.default_rng(derive_seed(ctx.seed, "anonymeter.entities"))
        train = one_row_per_entity(train, ctx.train_entities, rng)
        if ctx.holdout_entities is not None:
            control = one_row_per_entity(control, ctx.holdout_entities, rng)
    md = ctx.metadata
    as_anonymeter = (lambda frame: to_anonymeter(frame, md)) if convert else (lambda frame: frame)
    return AttackData(
        train=as_anonymeter(train),
        control=as_anonymeter(control),
        synthetic=as_anonymeter(ctx.synthetic),
        entity_level=entity_level,
        train_rows=int(len(ctx.train)),
        control_rows=int(len(ctx.holdout)),
    )


def reference_rows(ctx: Context) -> pd.DataFrame | None:
    """The context's reference rows (real people in neither training nor the control) as anonymeter's frames, the
    release of the reference attacker (`suite.attacks.inference.adjusted_excess`); None when there are none. Made
    once per run when the context has the run's `NeighbourCache`."""
    reference = ctx.reference
    if reference is None or len(reference) == 0:
        return None
    make = lambda: to_anonymeter(reference, ctx.metadata)  # noqa: E731
    if ctx.neighbours is None:
        return make()
    return ctx.neighbours.remember(("anonymeter.reference", id(reference)), (reference,), make)  # type: ignore[no-any-return]


def check_columns(columns: list[str], metadata: Metadata, what: str) -> None:
    unknown = [c for c in columns if c not in metadata.columns]
    if unknown:
        raise ValueError(f"{what} names column(s) {unknown} that the table does not have (or that are identifiers)")


# --------------------------------------------------------------------------------------------
# results


def _rate(n_attacks: float, n_success: float, rate: Any) -> dict[str, float]:
    return {
        "n_attacks": int(n_attacks),
        "n_success": float(n_success) if not float(n_success).is_integer() else int(n_success),
        "rate": float(rate.value),
        "error": float(rate.error),
    }


def attack_measurements(
    prefix: str,
    results: Any,
    confidence: float,
    *,
    what: str,
    details: Mapping[str, Any],
) -> list[Measurement]:
    """`<prefix>.risk` and `<prefix>.attack_advantage` from anonymeter's `EvaluationResults`.

    `risk` is anonymeter's residual risk over the control, (attack - control) / (1 - control),
    clipped to [0, 1], with anonymeter's interval; `baseline` is the naive attacker's success
    rate. `attack_advantage` is the attack's success share minus the naive attacker's, with
    Newcombe's interval: at or below 0, the attack got nothing out of the synthetic data that
    a random guess would not (and anonymeter warns that its risk "cannot be trusted").
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        risk = results.risk()
    attack = _rate(results.n_attacks_ori, results.n_success, results.attack_rate)
    baseline = _rate(results.n_attacks_baseline, results.n_baseline, results.baseline_rate)
    control = _rate(results.n_attacks_control, results.n_control, results.control_rate)
    p_attack = results.n_success / results.n_attacks_ori
    p_naive = results.n_baseline / results.n_attacks_baseline
    advantage = p_attack - p_naive
    advantage_ci = newcombe_difference_ci(
        results.n_success, results.n_attacks_ori, results.n_baseline, results.n_attacks_baseline, confidence
    )
    shared = {
        **details,
        "attack": attack,
        "control": control,
        "baseline": baseline,
        "attack_share": float(p_attack),
        "naive_share": float(p_naive),
        "attack_no_better_than_naive": bool(results.baseline_rate.value >= results.attack_rate.value),
        "confidence": confidence,
    }
    return [
        Measurement(
            f"{prefix}.risk",
            float(risk.value),
            Goal.MINIMIZE,
            ci=(float(risk.ci[0]), float(risk.ci[1])),
            baseline=float(results.baseline_rate.value),
            meaning=f"{what}: success on training targets beyond success on unseen (control) people, 0..1",
            details=shared,
        ),
        Measurement(
            f"{prefix}.attack_advantage",
            float(advantage),
            Goal.MINIMIZE,
            ci=advantage_ci,
            baseline=0.0,
            meaning=f"{what}: success share minus a naive random guess's (<= 0: the attack learned nothing)",
            details=shared,
        ),
    ]
