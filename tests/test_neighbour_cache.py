"""One neighbour search per task: the checks share `Context.neighbours` and their results do not change."""

from __future__ import annotations

import math
import pickle
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import suite.neighbors as neighbors
from suite.attacks.membership import MembershipAttack
from suite.metrics.dcr import DCRMetric
from suite.metrics.structure import StructureMetric
from suite.neighbors import GowerEncoder, NeighbourCache
from suite.testing import context_for


def _same(a, b) -> bool:
    return a.name == b.name and (a.value == b.value or (math.isnan(a.value) and math.isnan(b.value))) and a.ci == b.ci


def test_cache_answers_smaller_k_and_equal_content(covid) -> None:
    frame = covid.iloc[:400]
    enc = GowerEncoder(numerical=["age", "pan_day"], categorical=["gender", "result", "clinic_name"]).fit(frame)
    q, r = enc.transform(frame.iloc[:150]), enc.transform(frame.iloc[150:])
    cache = NeighbourCache()
    d5, i5 = cache.nearest(q, r, k=5)
    d1, i1 = cache.nearest(enc.transform(frame.iloc[:150]), r, k=1)  # another object, the same content
    assert (cache.searches, cache.hits) == (1, 1)
    want = neighbors.nearest(q, r, k=1)
    np.testing.assert_array_equal(d1, want[0])
    np.testing.assert_array_equal(i1, want[1])
    d1[:] = -1  # callers get copies: the cache is not changed through them
    np.testing.assert_array_equal(cache.nearest(q, r, k=5)[0], d5)
    cache.nearest(q, r, k=5, exclude_self=False, metric="euclidean")  # another metric: another search
    cache.nearest(q, r, k=8)  # a larger k: searched again, then answers the smaller ones
    assert cache.searches == 3
    np.testing.assert_array_equal(cache.nearest(q, r, k=5)[1], i5)
    assert pickle.loads(pickle.dumps(cache)).searches == 0  # another process starts empty


@pytest.mark.parametrize("generator", ["noisy_copy"])
def test_checks_share_searches_and_give_the_same_results(small_data, monkeypatch, generator: str) -> None:
    ctx = context_for(small_data, generator)
    calls: list[tuple[int, int, int]] = []
    real = neighbors.nearest

    def counted(query, reference, **kwargs):
        calls.append((len(query), len(reference), kwargs.get("k", 1)))
        return real(query, reference, **kwargs)

    monkeypatch.setattr(neighbors, "nearest", counted)
    checks = [DCRMetric(), MembershipAttack(attackers=("distance", "local")), StructureMetric()]

    def run(context):
        calls.clear()
        return [m for check in checks for m in check.evaluate(context)], len(calls)

    alone, n_alone = run(replace(ctx, neighbours=None))  # every check searches on its own
    shared, n_shared = run(replace(ctx, neighbours=NeighbourCache()))
    assert len(alone) == len(shared) and all(_same(a, b) for a, b in zip(alone, shared, strict=True))
    # 8 searches -> 6 (membership's distance and local attackers already share candidates -> synthetic
    # within the check): structure's synthetic -> train (k=1) and holdout -> train are dcr's (k >= 1) searches
    assert n_alone - n_shared >= 2, (n_alone, n_shared)


def test_one_cache_for_a_run_searches_what_no_release_changes_once(small_data) -> None:
    """The runner hands one cache to every task of a run: dcr's control -> train search and the membership
    local attacker's candidates -> control pool search do not depend on the release, so the second
    generator's checks read them, with the numbers a fresh cache gives."""
    cache = NeighbourCache()
    checks = [DCRMetric(), MembershipAttack(attackers=("distance", "local"))]
    for generator in ("holdout", "noisy_copy"):
        ctx = context_for(small_data, generator)
        before = cache.searches
        shared = [m for check in checks for m in check.evaluate(replace(ctx, neighbours=cache))]
        fresh = [m for check in checks for m in check.evaluate(replace(ctx, neighbours=NeighbourCache()))]
        assert all(_same(a, b) for a, b in zip(shared, fresh, strict=True))
    # the second task: only its release's searches (dcr's two, membership's one), not the other two
    assert cache.searches - before == 3, (cache.searches, before)


def test_the_runner_hands_one_cache_to_the_null_release_and_every_task(tmp_path, small_csv, monkeypatch) -> None:
    """`suite run` builds one NeighbourCache for the run: the null release and each task's contexts get it, so
    dcr's control -> train search is done once, not once per generator."""
    import suite.runner as runner
    from suite.cli import main
    from tests.conftest import write_scenario

    given: list = []
    real = runner.make_context

    def recording(*args, **kwargs):
        given.append(kwargs.get("neighbours"))
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "make_context", recording)
    scenario = write_scenario(tmp_path, small_csv, checks=["dcr"])
    assert main(["run", str(scenario), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    assert len(given) >= 3 and isinstance(given[0], NeighbourCache)  # the null release, then two generators
    assert all(cache is given[0] for cache in given)
    assert given[0].hits >= 2  # control -> train: searched by the null release, read by both generators


def test_sweep_keeps_the_searches_every_task_uses_and_drops_the_last_release_s() -> None:
    """After each task the runner sweeps the run's cache: a search the task did not use (an earlier release's own)
    is dropped, one it used (shared by every task, or its own release's) stays."""
    rng = np.random.default_rng(0)
    enc = GowerEncoder(numerical=["x", "y"], categorical=[])
    frames = [pd.DataFrame(rng.normal(size=(60, 2)), columns=["x", "y"]) for _ in range(4)]
    enc.fit(*frames)
    train, first, second, third = (enc.transform(f) for f in frames)
    cache = NeighbourCache()
    for release in (first, second, third):
        cache.nearest(train, train, exclude_self=True)  # shared: every task asks it
        cache.nearest(release, train)  # this release's own
        cache.sweep()
        assert len(cache._store) == 2  # the shared search and this release's, not the earlier releases'
    assert cache.searches == 4 and cache.hits == 2  # the shared search was done once
    # after the first task the runner also drops what a task made: the shared searches were made by the first
    cache.nearest(train, train, exclude_self=True)
    cache.nearest(first, train)
    assert cache.in_use()
    cache.sweep(keep_fresh=False)
    assert len(cache._store) == 1 and not cache.in_use()  # the shared search alone


def test_remember_makes_once_per_key_and_a_sweep_forgets_what_a_task_did_not_use() -> None:
    cache = NeighbourCache()
    table = pd.DataFrame({"x": [1.0, 2.0]})
    made: list[int] = []
    key = ("encoding", id(table))
    first = cache.remember(key, (table,), lambda: made.append(1) or table.to_numpy())
    again = cache.remember(key, (table,), lambda: made.append(1) or table.to_numpy())
    assert again is first and made == [1] and cache.recalled == 1
    cache.sweep()  # used since the last sweep: kept
    assert cache.remember(key, (table,), lambda: made.append(1) or table.to_numpy()) is first
    cache.sweep()
    cache.sweep()  # a task that did not use it: forgotten, and made again when asked
    cache.remember(key, (table,), lambda: made.append(1) or table.to_numpy())
    assert made == [1, 1]
