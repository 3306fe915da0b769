"""One nearest-neighbour search split over a Dask cluster: (query block x reference block) tasks, merged.

:func:`blocked_nearest` cuts the encoded query and reference into blocks of ``block_rows`` rows, scatters
them to the workers, runs :func:`suite.neighbors.nearest` on every (query block, reference block) pair in
its own task and folds each partial top-k into the answer by (distance, global index).  Every pair's
distance is the same float64 arithmetic as in one process (the blocks are slices of the one encoding,
which carries the ranges and medians fitted on the whole table), and both orders break ties by the lower
reference index, so the answer is the one-process answer: the same distances bit for bit, the same indices.

:func:`on_cluster` wraps a run's task (the dask executor submits it): while the task executes, every
search of its thread with more than ``pairs`` query x reference pairs goes to :func:`blocked_nearest`
through ``distributed.worker_client`` (the task secedes from the worker's thread pool while it waits).
A search of a check that runs in a thread of its own (a check with a ``timeout``) stays in the task's
process: that thread cannot secede, and waiting without seceding could hold every worker thread.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from suite.errors import ConfigError
from suite.neighbors import (
    Encoded,
    _check_metric,
    _check_pair,
    _check_search,
    _Kernel,
    _quiet_nanmedian,
    handing_over,
    nearest,
)

#: query x reference pairs above which a search of a run on a Dask cluster is split into blocks
PAIRS_ENV = "SUITE_BLOCKED_PAIRS"
DEFAULT_PAIRS = 2e9
#: rows per block (query and reference alike): 25,000 x 25,000 is about a second of the compiled kernel
BLOCK_ROWS_ENV = "SUITE_BLOCK_ROWS"
DEFAULT_BLOCK_ROWS = 25_000

_SEARCH_LOCK = threading.Lock()  # one block search at a time per worker process, on the worker's threads


def settings(environ: dict[str, str] | None = None) -> tuple[float, int]:
    """(pairs, block rows) from ``SUITE_BLOCKED_PAIRS`` / ``SUITE_BLOCK_ROWS`` (read where `suite run` runs)."""
    env = os.environ if environ is None else environ
    out = []
    for name, default, kind in ((PAIRS_ENV, DEFAULT_PAIRS, float), (BLOCK_ROWS_ENV, DEFAULT_BLOCK_ROWS, int)):
        text = env.get(name, "").strip()
        try:
            value = kind(float(text)) if text else default
        except (ValueError, OverflowError):  # not a number, or an infinite number of rows
            value = -1
        if not value >= 1:
            raise ConfigError(
                f"expected a number of at least 1 (got {text!r}); unset it for the default {default:g}",
                source=f"environment variable {name}",
            )
        out.append(value)
    return float(out[0]), int(out[1])


def on_cluster(fn: Callable[[Any], Any], pairs: float | None = None, block_rows: int | None = None) -> Callable:
    """``fn`` as a Dask task whose large searches are split over the cluster (settings read here, on the client)."""
    default_pairs, default_rows = settings()
    return functools.partial(
        _run_task, fn, pairs=default_pairs if pairs is None else pairs, block_rows=block_rows or default_rows
    )


def _run_task(fn: Callable[[Any], Any], payload: Any, *, pairs: float, block_rows: int) -> Any:
    search = functools.partial(_offered, threading.get_ident(), pairs, block_rows)
    with handing_over(search):
        return fn(payload)


def _offered(
    owner: int, pairs: float, block_rows: int, query: Encoded, reference: Encoded, **options: Any
) -> tuple[np.ndarray, np.ndarray] | None:
    """The blocked search, for a search of the task's own thread above ``pairs`` pairs; else None."""
    if threading.get_ident() != owner or len(query) * len(reference) <= pairs:
        return None
    from distributed import worker_client

    with worker_client() as client:  # secedes: the worker runs block tasks meanwhile
        return blocked_nearest(client, query, reference, block_rows=block_rows, **options)


def _block(enc: Encoded, lo: int, hi: int, medians: np.ndarray | None) -> Encoded:
    return Encoded(enc.numerical[lo:hi], enc.categorical[lo:hi], medians=medians)


@contextlib.contextmanager
def _worker_cores(compiled: bool) -> Iterator[None]:
    """The compiled kernel on the threads this worker declares (``--nthreads``), not on every core of its machine:
    several worker processes on one machine would otherwise each start a thread per core."""
    cores = None
    if compiled:
        try:
            from distributed import get_worker

            cores = get_worker().state.nthreads
        except (ValueError, AttributeError):  # not inside a worker's task
            cores = None
    if cores is None:
        yield
        return
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(cores), numba.config.NUMBA_NUM_THREADS)))  # this thread only
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _partial(
    query: Encoded, reference: Encoded, offset: int, k: int, kk: int, exclude_self: bool, **options: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block's top-``kk`` as (distances, global reference indices, sort keys), padded to ``k`` columns.

    The sort key is the distance, or for the euclidean metric the squared distance one process orders by
    (two squares that differ may have the same square root).  Padding: (inf, max index, inf).
    """
    with _SEARCH_LOCK, _worker_cores(options.get("backend") == "numba"):
        d, i = nearest(query, reference, k=kk, exclude_self=exclude_self, **options)
    key = d
    if options.get("metric") == "euclidean":
        rows = np.repeat(np.arange(len(i)), kk)
        key = _Kernel(query, reference, "euclidean").pairs(rows, i.ravel()).reshape(i.shape)
    pad = k - kk
    if pad:
        d, key = (np.hstack((a, np.full((len(a), pad), np.inf))) for a in (d, key))
        i = np.hstack((i, np.full((len(i), pad), np.iinfo(np.int64).max - offset)))
    return d, i + offset, key


def merge_topk(best: tuple[np.ndarray, ...], new: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """The k best of two (distances, indices, sort keys) candidate lists per row: by key, ties to the lower index."""
    k = best[0].shape[1]
    d, i, key = (np.concatenate((a, b), axis=1) for a, b in zip(best, new))
    order = np.lexsort((i, key), axis=1)[:, :k]
    return tuple(np.take_along_axis(a, order, axis=1) for a in (d, i, key))


def blocked_nearest(
    client: Any,
    query: Encoded,
    reference: Encoded,
    *,
    k: int = 1,
    exclude_self: bool = False,
    metric: str = "gower",
    backend: str = "auto",
    memory_mb: float = 256.0,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`suite.neighbors.nearest` on ``client``'s cluster, in blocks of ``block_rows`` rows: the same answer.

    The blocks are scattered (each worker receives the blocks its tasks need, never the whole table); the
    partial top-k come back one at a time and are merged here, so this process holds the answer plus one
    partial.  ``exclude_self``: query and reference are the same table, cut at the same rows, and a diagonal
    block excludes itself.
    """
    _check_pair(query, reference)
    _check_metric(metric)
    k, n, m = int(k), len(query), len(reference)
    _check_search(n, m, k, memory_mb, exclude_self)
    if block_rows < 1:
        raise ValueError(f"block_rows must be at least 1, got {block_rows}")
    out = (np.full((n, k), np.inf), np.full((n, k), np.iinfo(np.int64).max), np.full((n, k), np.inf))
    if n == 0:
        return out[0], out[1]
    medians = reference.medians if reference.medians is not None else query.medians
    if medians is None and metric == "euclidean":  # what one process imputes: the whole reference's medians
        with np.errstate(all="ignore"), _quiet_nanmedian():
            medians = np.nanmedian(reference.numerical, axis=0)
    q_cuts = [(lo, min(lo + block_rows, n)) for lo in range(0, n, block_rows)]
    r_cuts = [(lo, min(lo + block_rows, m)) for lo in range(0, m, block_rows)]
    q_blocks = client.scatter([_block(query, lo, hi, medians) for lo, hi in q_cuts], hash=False)
    same = query is reference  # one table: its blocks are scattered once
    if not same:
        r_blocks = client.scatter([_block(reference, lo, hi, medians) for lo, hi in r_cuts], hash=False)
    else:
        r_blocks = q_blocks
    run = uuid.uuid4().hex[:12]
    options = {"metric": metric, "backend": backend, "memory_mb": memory_mb}
    futures, rows_of = [], {}
    for a, (q_lo, q_hi) in enumerate(q_cuts):
        for b, (r_lo, r_hi) in enumerate(r_cuts):
            diagonal = exclude_self and a == b
            kk = min(k, r_hi - r_lo - diagonal)
            if kk < 1:
                continue
            future = client.submit(
                _partial, q_blocks[a], r_blocks[b], r_lo, k, kk, diagonal, **options,
                key=f"suite-nearest-{run}-{a}-{b}", pure=False,
            )  # fmt: skip
            futures.append(future)
            rows_of[future.key] = slice(q_lo, q_hi)
    from distributed import as_completed

    try:
        for future, partial in as_completed(futures, with_results=True):
            rows = rows_of[future.key]
            merged = merge_topk(tuple(a[rows] for a in out), partial)
            for a, b in zip(out, merged):
                a[rows] = b
            future.release()
    finally:
        client.cancel([*futures, *q_blocks, *([] if same else r_blocks)])
    return out[0], out[1]
