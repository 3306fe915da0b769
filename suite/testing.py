"""Contract checks any generator or check must pass; third-party packages call them in their CI.

from suite.testing import check_generator
check_generator(MyGenerator, train, metadata)
"""

from __future__ import annotations

import fnmatch
import inspect
import math
from typing import Any

import pandas as pd

from suite.dataset import PreparedData
from suite.io import sha256_frame
from suite.metadata import Metadata
from suite.types import Context, Measurement


def _constructor_params(cls: type) -> dict[str, Any]:
    return {n: p.default for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}


def check_constructor(cls: type) -> None:
    """Keyword-only parameters with defaults, stored unchanged, nothing else set."""
    params = _constructor_params(cls)
    for name, default in params.items():
        assert default is not inspect.Parameter.empty, f"{cls.__name__}: parameter {name!r} needs a default"
    instance = cls()
    fitted = [k for k in vars(instance) if k.endswith("_")]
    assert not fitted, f"{cls.__name__}.__init__ sets fitted state {fitted}"
    for name, default in params.items():
        assert getattr(instance, name) is default or getattr(instance, name) == default, (
            f"{cls.__name__} does not store {name!r} unchanged"
        )
    clone = cls(**{n: getattr(instance, n) for n in params})
    assert {n: getattr(clone, n) for n in params} == {n: getattr(instance, n) for n in params}, (
        f"{cls.__name__}: params do not survive cloning"
    )


def check_generator(cls: type, train: pd.DataFrame, metadata: Metadata, *, n: int = 200) -> None:
    """The generator contract: fit returns self and keeps inputs intact; sample(n) has the
    training columns and dtypes, n rows, and depends only on its seed."""
    check_constructor(cls)
    before = sha256_frame(train)
    generator = cls()
    assert generator.fit(train, metadata) is generator, f"{cls.__name__}.fit must return self"
    assert sha256_frame(train) == before, f"{cls.__name__}.fit modified its input"
    first = generator.sample(n, seed=7)
    assert isinstance(first, pd.DataFrame), f"{cls.__name__}.sample must return a DataFrame"
    assert len(first) == n, f"{cls.__name__}.sample({n}) returned {len(first)} rows"
    assert list(first.columns) == list(train.columns), f"{cls.__name__}.sample returned columns {list(first.columns)}"
    wrong = {c: (str(train[c].dtype), str(first[c].dtype)) for c in train.columns if train[c].dtype != first[c].dtype}
    assert not wrong, f"{cls.__name__}.sample changed dtypes (train, sample): {wrong}"
    again = cls().fit(train, metadata).sample(n, seed=7)
    pd.testing.assert_frame_equal(first, again, obj=f"{cls.__name__} with the same seed")
    other = generator.sample(n, seed=8)
    assert not first.equals(other) or train.drop_duplicates().shape[0] <= 1, f"{cls.__name__}.sample ignores its seed"


def check_check(cls: type, ctx: Context) -> list[Measurement]:
    """The check contract: declared names, finite values or an error, stable under the same seed."""
    check_constructor(cls)
    before = [sha256_frame(f) for f in (ctx.train, ctx.holdout, ctx.synthetic)]
    measurements = cls().evaluate(ctx)
    assert [sha256_frame(f) for f in (ctx.train, ctx.holdout, ctx.synthetic)] == before, (
        f"{cls.__name__} modified its inputs"
    )
    assert measurements, f"{cls.__name__} produced no measurement"
    for m in measurements:
        assert isinstance(m, Measurement), f"{cls.__name__} returned {type(m).__name__}, not a Measurement"
        assert any(fnmatch.fnmatchcase(m.name, p) for p in cls.measures), (
            f"{m.name!r} is not among {cls.__name__}.measures"
        )
        assert m.name.startswith(cls.name + "."), f"{m.name!r} must start with the check's name {cls.name!r}"
        assert m.error is not None or math.isfinite(m.value), f"{m.name} is {m.value} without an error"
        if m.ci is not None:
            assert m.ci[0] <= m.ci[1], f"{m.name}: interval {m.ci} is reversed"
    again = cls().evaluate(ctx)
    assert [(m.name, m.value, m.ci) for m in again] == [(m.name, m.value, m.ci) for m in measurements], (
        f"{cls.__name__} is not reproducible"
    )
    return measurements


def context_for(
    data: PreparedData, generator: str, *, seed: int = 0, params: dict[str, Any] | None = None, n: int | None = None
) -> Context:
    """The Context a run builds for `generator` on prepared data: fitted, sampled, seeded as the runner does."""
    from suite.plan import Component
    from suite.registry import generators
    from suite.runner import fit_generator, make_context
    from suite.scenario import GeneratorSpec

    params = dict(params or {})
    spec = GeneratorSpec(name=generator, params=params)
    component = Component(spec=spec, cls=generators.get(generator), params=params)
    synthetic = fit_generator(component, data, seed).sample(n or len(data.train), seed=seed)
    return make_context(component, data, synthetic[list(data.train.columns)].reset_index(drop=True), seed=seed)
