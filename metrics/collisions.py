"""Exact copies: synthetic rows that equal a real training row in every column."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import gammaln

from suite.encoding import as_float
from suite.metadata import Metadata
from suite.registry import checks
from suite.stats import cluster_bootstrap_ci, cluster_codes
from suite.types import Context, Goal, Measurement, MeasurementSpec, names, privacy


def row_keys(frame: pd.DataFrame, metadata: Metadata) -> np.ndarray:
    """One 64-bit hash per row, equal for rows equal in every column whatever their dtypes.

    Numbers and dates are compared as float64 (dates as nanoseconds), everything else as
    text; missing equals missing, and -0.0 equals 0.0 (the hash reads the bits, so numbers are
    made canonical first).
    """
    canonical = {}
    for column in metadata.columns:
        values = frame[column]
        if column in metadata.continuous:
            numbers = as_float(values, column) + 0.0  # -0.0 + 0.0 is 0.0
            canonical[column] = np.where(np.isnan(numbers), np.nan, numbers)  # one NaN bit pattern
            continue
        text = values.astype(object).where(values.notna(), None)
        if pd.api.types.infer_dtype(text, skipna=True) != "string":  # text is its own _text: no per-cell call
            text = text.map(lambda v: None if v is None else _text(v))
        canonical[column] = text
    return pd.util.hash_pandas_object(pd.DataFrame(canonical), index=False).to_numpy()


def _text(value: object) -> str:
    return str(value + 0.0) if isinstance(value, float) else str(value)


def found(copies: np.ndarray, total: np.ndarray | float, draws: np.ndarray | float) -> np.ndarray:
    """Probability that `draws` records drawn without replacement from `total` include one of `copies`.

    The hypergeometric chance that a subsample of a table holds a row: it puts the training set
    and the control on equal sizes without a model of how matches grow with size. Computed only where
    a row has copies (elsewhere it is exactly 0): in the bootstrap few synthetic rows match anyone.
    """
    copies, total, draws = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (copies, total, draws)))
    out = np.zeros(copies.shape)
    hit = copies > 0
    copies, total, draws = copies[hit], total[hit], draws[hit]
    rest = total - copies
    fits = rest >= draws  # else every subsample holds a copy
    safe = lambda a: np.where(fits, a, 1.0)  # noqa: E731
    none = np.exp(
        gammaln(safe(rest + 1)) - gammaln(safe(rest - draws + 1)) - gammaln(total + 1) + gammaln(total - draws + 1)
    )
    out[hit] = np.where(fits, 1.0 - none, 1.0)
    return out


@checks.register("collisions")
class CollisionsMetric:
    """Share of synthetic rows that copy a training row, beyond the chance level the control shows.

    Real tables hold people who share every recorded value, so some matches happen by chance.
    The control rows (never seen by a generator) give that chance rate at the control's size;
    the training set is brought to the same size by the chance that a random subsample of its
    people, as many as the control holds, holds each synthetic row (hypergeometric), so both
    rates are measured at equal sizes, with no extrapolation. The excess is scaled back by
    n_train / n_control (people): a copy of a training row that occurs once counts 1, so the
    excess reads as a share of copied rows. The interval resamples distinct synthetic rows
    jointly with control people.
    """

    name: ClassVar[str] = "collisions"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        privacy(
            "collisions.rate",
            Goal.MINIMIZE,
            "copying",
            "share of synthetic rows equal to a training row in every column",
            bounds=(0, 1),
        ),
        privacy(
            "collisions.holdout_rate",
            Goal.MINIMIZE,
            "copying",
            "share of synthetic rows equal to a holdout (unseen) row in every column",
            bounds=(0, 1),
        ),
        privacy(
            "collisions.excess",
            Goal.MINIMIZE,
            "copying",
            "share of synthetic rows copied from training beyond what chance explains",
            bounds=(-1, 1),
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)

    def __init__(self) -> None:
        pass

    def evaluate(self, ctx: Context) -> list[Measurement]:
        md = ctx.metadata
        parts = [row_keys(f, md) for f in (ctx.synthetic, ctx.train, ctx.holdout)]
        codes = pd.factorize(np.concatenate(parts))[0]
        syn, train, control = np.split(codes, np.cumsum([len(p) for p in parts])[:-1])
        n_keys, n_train, n_control = int(codes.max(initial=-1)) + 1, len(train), len(control)
        # People, not rows, are what the split draws: a patient's rows land in one part together.
        people_t = cluster_codes(ctx.train_entities, n_train)
        people_c = cluster_codes(ctx.holdout_entities, n_control)
        n_people_t = int(people_t.max(initial=-1)) + 1
        one_row_c = np.unique(people_c, return_index=True)[1]
        train_people = np.bincount(np.unique(np.column_stack([train, people_t]), axis=0)[:, 0], minlength=n_keys)
        pairs_c = np.unique(np.column_stack([control, people_c]), axis=0)
        by_key = sparse.csr_matrix(
            (np.ones(len(pairs_c)), (pairs_c[:, 1], pairs_c[:, 0])), shape=(len(one_row_c), n_keys)
        )

        t_counts, t_inverse = np.unique(train_people[syn], return_inverse=True)

        def excess(w_syn: np.ndarray, w_control: np.ndarray) -> np.ndarray:
            present = (w_control[:, one_row_c] > 0).astype(float)  # control people drawn (twice is once)
            drawn = present.sum(axis=1, keepdims=True)
            draws = np.minimum(drawn, n_people_t)
            control_people = np.asarray((by_key.T @ present.T).T)
            # per distinct training count (the counts are fixed), then spread: the same numbers as row by row
            by_count = found(t_counts, n_people_t, draws)[:, t_inverse]
            chance = by_count - found(control_people[:, syn], drawn, draws)
            share = (w_syn * chance).sum(axis=1) / w_syn.sum(axis=1) * n_people_t / draws[:, 0]
            return np.clip(share, -1.0, 1.0)

        units = (cluster_codes(syn, len(syn)), people_c)
        value = float(excess(np.ones((1, len(syn))), np.ones((1, n_control)))[0])
        ci = cluster_bootstrap_ci(
            excess, *units, rng=np.random.default_rng(ctx.seed), confidence=ctx.confidence, cost=16
        )
        in_train = train_people[syn] > 0
        in_control = np.bincount(control, minlength=n_keys)[syn] > 0
        rate_t, rate_c = float(in_train.mean()), float(in_control.mean())
        draws = min(n_people_t, len(one_row_c))
        details = {
            "synthetic_rows": int(len(syn)),
            "distinct_synthetic_rows": int(len(np.unique(syn))),
            "copies_of_train": int(in_train.sum()),
            "copies_of_holdout": int(in_control.sum()),
            "train_rows": int(n_train),
            "holdout_rows": int(n_control),
            "train_rate_at_holdout_size": float(found(train_people[syn], n_people_t, draws).mean()),
            "expected_rate_by_chance": max(0.0, rate_t - value),
        }
        return [
            Measurement(
                "collisions.rate",
                rate_t,
                Goal.MINIMIZE,
                baseline=max(0.0, rate_t - value),
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
                meaning=(
                    "share of synthetic rows copied from training beyond chance "
                    "(train and holdout compared at equal sizes)"
                ),
            ),
        ]
