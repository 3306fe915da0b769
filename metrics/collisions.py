"""Exact copies: synthetic rows that equal a real training row in every column."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
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
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iub":  # never missing: text per distinct value
            distinct, where = np.unique(values.to_numpy(), return_inverse=True)
            canonical[column] = np.array([_text(v) for v in distinct.tolist()], dtype=object)[where]
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

    The hypergeometric chance that a random part of a table holds a row: with `total` real people
    of whom `copies` hold a synthetic row's values, the chance the split put one of them among the
    `draws` training people. Computed only where a row has copies (elsewhere it is exactly 0).
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
    """Share of synthetic rows that copy a training row, beyond what chance explains.

    Real tables hold people who share every recorded value, so some matches happen by chance.
    Chance is read off the real people themselves: a synthetic row whose values c real people
    (training and control together) hold would, if the generator had seen nobody, match a
    training person with the hypergeometric chance that the split put at least one of those c
    people in training. That expectation is exact under the split, whatever the table's repeats,
    so a row matching a profile many people share adds almost nothing either way; the signal,
    and the variance, come from rows matching the rare profiles. The excess (observed minus
    expected, per synthetic row) is scaled by (training + control) / control people, so a
    verbatim copy of a person no one else resembles counts 1 and the excess reads as a share of
    copied rows. The interval resamples distinct synthetic rows: each one's term already holds
    the split's randomness (which of its c people landed in training), so no control resample
    is needed to cover it.
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
            no_leak=0.0,
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
        train_people, n_people_t = _people_per_key(train, cluster_codes(ctx.train_entities, n_train), n_keys)
        control_people, n_people_c = _people_per_key(control, cluster_codes(ctx.holdout_entities, n_control), n_keys)
        pooled = n_people_t + n_people_c
        chance = found(train_people[syn] + control_people[syn], pooled, n_people_t)
        scale = pooled / n_people_c
        term = ((train_people[syn] > 0) - chance) * scale
        value = float(np.clip(term.mean(), -1.0, 1.0)) if len(term) else 0.0

        def excess(w_syn: np.ndarray) -> np.ndarray:
            return np.clip((w_syn @ term) / w_syn.sum(axis=1), -1.0, 1.0)

        ci = cluster_bootstrap_ci(
            excess, cluster_codes(syn, len(syn)), rng=np.random.default_rng(ctx.seed), confidence=ctx.confidence
        )
        in_train = train_people[syn] > 0
        in_control = control_people[syn] > 0
        rate_t, rate_c = float(in_train.mean()), float(in_control.mean())
        expected = float(chance.mean()) if len(chance) else 0.0
        details = {
            "synthetic_rows": int(len(syn)),
            "distinct_synthetic_rows": int(len(np.unique(syn))),
            "copies_of_train": int(in_train.sum()),
            "copies_of_holdout": int(in_control.sum()),
            "train_rows": int(n_train),
            "holdout_rows": int(n_control),
            "expected_rate_by_chance": expected,
            "rows_matching_a_profile_one_real_person_holds": int(((train_people + control_people)[syn] == 1).sum()),
            "scale": scale,
            "chance": (
                "per synthetic row, the hypergeometric chance that at least one of the real people (training and "
                "control) holding its values landed in training"
            ),
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
                meaning=(
                    "share of synthetic rows copied from training beyond chance "
                    "(chance: the split's own odds of putting a matching real person in training)"
                ),
            ),
        ]


def _people_per_key(keys: np.ndarray, people: np.ndarray, n_keys: int) -> tuple[np.ndarray, int]:
    """How many distinct people hold each key (a person with the key on several rows counts once), and the number
    of people."""
    pairs = np.unique(np.column_stack([keys, people]), axis=0)
    return np.bincount(pairs[:, 0], minlength=n_keys), int(people.max(initial=-1)) + 1
