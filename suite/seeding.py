"""Deterministic randomness for code that draws from global generators (SDV, anonymeter, torch)."""

from __future__ import annotations

import inspect
import random
import sys
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import numpy as np

#: Threads a caller stopped waiting for (`suite.runner.within`): their `seeded` blocks do not restore the global
#: generators when they end. Python cannot stop such a thread; a restore seconds later would rewind the state
#: under whatever fit runs by then, so that a refit under the same seed drew other rows.
_ABANDONED: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def abandon(thread: threading.Thread) -> None:
    """Mark a thread whose result nobody waits for: its `seeded` blocks leave the global generators alone."""
    _ABANDONED.add(thread)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python's, numpy's and (when imported) torch's global generators; restore them after.

    Libraries that draw from module-level generators become reproducible inside the block,
    and nothing outside it sees a changed global state. A block in a thread that was abandoned
    (`abandon`) does not restore: by the time it ends, the state belongs to other work.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch = sys.modules.get("torch")
    torch_state = torch.random.get_rng_state() if torch is not None else None
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if torch is not None:
        torch.manual_seed(seed)
    try:
        yield
    finally:
        if threading.current_thread() not in _ABANDONED:
            random.setstate(py_state)
            np.random.set_state(np_state)
            if torch is not None and torch_state is not None:
                torch.random.set_rng_state(torch_state)


def derive_seed(*parts: object) -> int:
    """A stable 32-bit seed from several parts (a base seed, a name, a repeat index)."""
    import hashlib

    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def fit_seed(seed: int | None) -> int:
    """The seed a fit draws from: `seed`, or when None (a direct call) one read from numpy's global
    generator without advancing it, so a caller's `seeded` block still fixes the fit (scikit-learn's
    `random_state=None` convention)."""
    if seed is not None:
        return int(seed)
    peek = np.random.RandomState()
    peek.set_state(np.random.get_state())
    return int(peek.randint(0, 2**31 - 1))


@cache
def _fit_takes_seed(cls: type) -> bool:
    try:
        params = inspect.signature(cls.fit).parameters
    except (TypeError, ValueError):  # a builtin or C-level fit: no seed
        return False
    seed = params.get("seed")
    return seed is not None and seed.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def fit_takes_seed(generator: object) -> bool:
    """Whether `generator.fit` takes `seed=` (today's idiom) rather than reading global random state."""
    return _fit_takes_seed(generator if isinstance(generator, type) else type(generator))


def fit_with_seed(generator: Any, train: Any, metadata: Any, seed: int | None) -> Any:
    """`generator.fit(train, metadata, seed=seed)`; a plugin whose `fit(train, metadata)` takes no seed is
    fitted under `seeded(seed)` instead (global random state), so it keeps working unchanged."""
    if fit_takes_seed(generator):
        return generator.fit(train, metadata, seed=seed)
    if seed is None:
        return generator.fit(train, metadata)
    with seeded(seed):
        return generator.fit(train, metadata)
