"""Exact copies: synthetic rows that equal a real training row in every column."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from suite.encoding import as_float
from suite.metadata import Metadata
from suite.registry import checks
from suite.stats import bootstrap_ci
from suite.types import Context, Goal, Measurement


def row_keys(frame: pd.DataFrame, metadata: Metadata) -> np.ndarray:
    """One 64-bit hash per row, equal for rows equal in every column whatever their dtypes.

    Numbers and dates are compared as float64 (dates as nanoseconds), everything else as
    text; missing equals missing.
    """
    canonical = {}
    for column in metadata.columns:
        values = frame[column]
        if column in metadata.continuous:
            numbers = as_float(values, column)
            canonical[column] = numbers
        else:
            canonical[column] = (
                values.astype(object).where(values.notna(), None).map(lambda v: None if v is None else str(v))
            )
    return pd.util.hash_pandas_object(pd.DataFrame(canonical), index=False).to_numpy()


@checks.register("collisions")
class CollisionsMetric:
    """Share of synthetic rows that copy a training row, against the chance level from the holdout.

    Real tables hold people who share every recorded value, so some matches happen by
    chance. The control rows (never seen by a generator) give that chance rate; it is
    scaled to the training set's size with a Poisson model,
    expected = 1 - (1 - rate_control) ** (n_train / n_control), and the excess over it is
    what the generator copied.
    """

    name: ClassVar[str] = "collisions"
    measures: ClassVar[tuple[str, ...]] = ("collisions.rate", "collisions.holdout_rate", "collisions.excess")

    def __init__(self) -> None:
        pass

    def evaluate(self, ctx: Context) -> list[Measurement]:
        md = ctx.metadata
        synthetic = row_keys(ctx.synthetic, md)
        in_train = np.isin(synthetic, row_keys(ctx.train, md)).astype(float)
        in_control = np.isin(synthetic, row_keys(ctx.holdout, md)).astype(float)
        power = len(ctx.train) / max(len(ctx.holdout), 1)

        def excess(samples: np.ndarray) -> np.ndarray:
            rate_t = samples[..., 0].mean(axis=-1)
            rate_c = samples[..., 1].mean(axis=-1)
            return rate_t - (1.0 - (1.0 - rate_c) ** power)

        pair = np.column_stack([in_train, in_control])
        value = float(excess(pair[None])[0])
        ci = bootstrap_ci(pair, excess, rng=np.random.default_rng(ctx.seed), confidence=ctx.confidence)
        rate_t, rate_c = float(in_train.mean()), float(in_control.mean())
        expected = 1.0 - (1.0 - rate_c) ** power
        details = {
            "synthetic_rows": int(len(synthetic)),
            "copies_of_train": int(in_train.sum()),
            "copies_of_holdout": int(in_control.sum()),
            "train_rows": int(len(ctx.train)),
            "holdout_rows": int(len(ctx.holdout)),
            "expected_rate_by_chance": expected,
        }
        return [
            Measurement(
                "collisions.rate",
                rate_t,
                Goal.MINIMIZE,
                baseline=expected,
                details=details,
                meaning="share of synthetic rows that equal a training row in every column",
            ),
            Measurement(
                "collisions.holdout_rate",
                rate_c,
                Goal.MINIMIZE,
                details=details,
                meaning="share of synthetic rows that equal a holdout row (never seen): the chance level",
            ),
            Measurement(
                "collisions.excess",
                value,
                Goal.MINIMIZE,
                ci=ci,
                baseline=0.0,
                details=details,
                meaning="share of synthetic rows copied from training beyond what chance explains",
            ),
        ]
