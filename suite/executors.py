"""Where the runner's tasks execute: this process, a pool of local processes, or a Dask cluster.

Each task (one generator, one repeat) is independent and seeded by itself, so the scorecard is
the same whichever executor ran it. `local` with one worker runs tasks in this process, in
order; with more, a pool of `spawn`ed processes (a clean interpreter each: no forked torch or
BLAS threads). `dask` submits them to a distributed cluster: an existing scheduler
(`address="tcp://host:8786"`) or, without an address, a LocalCluster of `workers` processes. There, a
neighbour search larger than `SUITE_BLOCKED_PAIRS` pairs is itself split over the cluster (suite.neighbors_dask).
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from suite.errors import ConfigError

EXECUTORS = ("local", "dask")


def execute(
    fn: Callable[[Any], Any],
    payloads: Sequence[Any],
    *,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield (position, result) for every payload as it finishes; a task's exception is re-raised."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; choose {' or '.join(EXECUTORS)}", source="--executor")
    if workers < 1:
        raise ConfigError("needs at least 1 worker", source="--workers")
    if executor == "dask":
        yield from _dask(fn, payloads, workers=workers, address=address)
    elif workers == 1 or len(payloads) <= 1:
        for i, payload in enumerate(payloads):
            yield i, fn(payload)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(payloads)), mp_context=context) as pool:
            futures = {pool.submit(fn, p): i for i, p in enumerate(payloads)}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise


def _dask(
    fn: Callable[[Any], Any], payloads: Sequence[Any], *, workers: int, address: str | None
) -> Iterator[tuple[int, Any]]:
    try:
        from distributed import Client, LocalCluster
        from distributed import as_completed as dask_completed
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise ConfigError("the dask executor needs the `distributed` package: pip install distributed") from None
    from suite.neighbors_dask import on_cluster  # a large search inside a task is split over the cluster

    fn = on_cluster(fn)
    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout=30)
        except OSError as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}", source="--address") from None
    try:
        run = uuid.uuid4().hex[:12]  # a shared scheduler must never hand back another run's result
        futures = [client.submit(fn, p, pure=False, key=f"suite-task-{run}-{i}") for i, p in enumerate(payloads)]
        position = {f.key: i for i, f in enumerate(futures)}
        for future in dask_completed(futures):
            yield position[future.key], future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
