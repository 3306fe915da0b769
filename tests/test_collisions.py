"""Exact-copy detection is dtype-blind and reports the excess over chance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from metrics.collisions import CollisionsMetric, row_keys
from suite.metadata import Metadata
from suite.types import Context

MD = Metadata(
    columns={"age": {"sdtype": "numerical"}, "sex": {"sdtype": "categorical"}, "code": {"sdtype": "categorical"}}
)


def test_row_keys_ignore_dtypes_and_treat_missing_as_equal():
    a = pd.DataFrame({"age": [1, 2, 3], "sex": ["f", "m", None], "code": [1, 2, 3]})
    b = pd.DataFrame({"age": [1.0, 2.0, 3.0], "sex": ["f", "m", np.nan], "code": ["1", "2", "3"]})
    assert (row_keys(a, MD) == row_keys(b, MD)).all()
    c = b.assign(age=[1.0, 2.5, 3.0])
    assert (row_keys(a, MD) == row_keys(c, MD)).tolist() == [True, False, True]


def test_excess_counts_copies_beyond_chance():
    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {"age": rng.normal(size=1000), "sex": rng.choice(["f", "m"], 1000), "code": rng.choice(list("abc"), 1000)}
    )
    holdout = pd.DataFrame(
        {"age": rng.normal(size=250), "sex": rng.choice(["f", "m"], 250), "code": rng.choice(list("abc"), 250)}
    )
    copied = pd.concat([train.iloc[:200], holdout.iloc[:0]]).reset_index(drop=True)
    fresh = pd.DataFrame(
        {"age": rng.normal(size=800), "sex": rng.choice(["f", "m"], 800), "code": rng.choice(list("abc"), 800)}
    )
    synthetic = pd.concat([copied, fresh], ignore_index=True)
    ms = {m.name: m for m in CollisionsMetric().evaluate(Context(train, holdout, synthetic, MD, seed=0))}
    assert ms["collisions.rate"].value == 0.2
    assert ms["collisions.holdout_rate"].value == 0.0
    assert abs(ms["collisions.excess"].value - 0.2) < 1e-12
    low, high = ms["collisions.excess"].ci
    assert low < 0.2 < high and high - low < 0.06
