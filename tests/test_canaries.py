"""The leak canaries of the calibration roster: what each one leaks, checked on real rows."""

from __future__ import annotations

import numpy as np

from suite.metrics.collisions import row_keys
from suite.registry import generators
from suite.runner import interval_level, make_context


def test_verbatim_copy_pastes_the_stated_share_of_distinct_training_rows(small_data) -> None:
    train, metadata = small_data.train, small_data.metadata
    n = len(train)
    out = generators.get("verbatim_copy")(fraction=0.05).fit(train, metadata).sample(n, seed=3)
    assert list(out.columns) == list(train.columns) and len(out) == n
    in_train = np.isin(row_keys(out, metadata), row_keys(train, metadata))
    # at least the pasted 5%; the marginals part adds only the rare chance collision
    assert 0.05 <= in_train.mean() < 0.08
    again = generators.get("verbatim_copy")(fraction=0.05).fit(train, metadata).sample(n, seed=3)
    assert again.equals(out)  # the seed fixes which people are pasted


def test_checks_get_the_two_sided_level_whose_ends_are_one_sided_bounds(small_data) -> None:
    # a 95% one-sided bound is the end of a 90% two-sided interval: the gate is a one-sided test
    ctx = make_context(None, small_data, small_data.reference, seed=0, confidence=0.95)  # type: ignore[arg-type]
    assert abs(ctx.confidence - 0.90) < 1e-12
    assert abs(interval_level(0.99) - 0.98) < 1e-12
