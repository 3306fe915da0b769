"""Reconstruction's bootstrap summed per quasi-identifier cluster gives the per-person bootstrap's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from suite.attacks.reconstruction import excess_with_ci
from suite.stats import cluster_bootstrap_ci, cluster_codes, newcombe_difference_ci


def per_person(h_train, h_control, clusters, rng, confidence):
    """`excess_with_ci` as it was: the statistic weighs every person."""
    h_t, h_c = h_train.astype(float), h_control.astype(float)
    n_t = len(h_t)

    def stat(w):
        w_t, w_c = w[:, :n_t], w[:, n_t:]
        return (w_t @ h_t) / np.maximum(w_t.sum(1), 1e-12) - (w_c @ h_c) / np.maximum(w_c.sum(1), 1e-12)

    point = float(h_t.mean() - h_c.mean())
    joint = cluster_codes(np.concatenate([np.asarray(c) for c in clusters]), n_t + len(h_c))
    low, high = cluster_bootstrap_ci(stat, joint, rng=rng, confidence=confidence, cost=2)
    n_low, n_high = newcombe_difference_ci(h_t.sum(), len(h_t), h_c.sum(), len(h_c), confidence)
    return point, (min(low, n_low, point), max(high, n_high, point))


@pytest.mark.parametrize(("n_t", "n_c", "tuples"), [(300, 200, 40), (5_000, 4_000, 3_000), (30_000, 25_000, 900)])
def test_the_cluster_sums_give_the_per_person_interval_to_the_last_bit(n_t, n_c, tuples):
    data = np.random.default_rng(n_t)
    clusters = (data.integers(0, tuples, n_t), data.integers(0, tuples, n_c))
    hits = (data.random(n_t) < 0.3, data.random(n_c) < 0.25)
    assert excess_with_ci(*hits, clusters, np.random.default_rng(1), 0.95) == per_person(
        *hits, clusters, np.random.default_rng(1), 0.95
    )


def test_hits_other_than_zero_or_one_take_the_per_person_path():
    data = np.random.default_rng(0)
    clusters = (data.integers(0, 50, 400), data.integers(0, 50, 300))
    hits = (data.random(400), data.random(300))
    assert excess_with_ci(*hits, clusters, np.random.default_rng(2), 0.9) == per_person(
        *hits, clusters, np.random.default_rng(2), 0.9
    )
