"""Distance to closest record: are synthetic rows nearer to training rows than to unseen ones?"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from suite.neighbors import GowerEncoder, nearest
from suite.registry import checks
from suite.stats import bootstrap_ci
from suite.types import Context, Goal, Measurement

_BINS = 30


def size_corrected_share(share: np.ndarray | float, prior: float) -> np.ndarray | float:
    """Map the share of rows nearer to train onto the scale of equal-sized train and holdout.

    With n_t training and n_c holdout rows drawn from one population, a row that depends on
    neither has its nearest record in train with probability prior = n_t / (n_t + n_c). The
    odds of the observed share over the prior odds, turned back into a share, is 0.5 under
    no leakage and 1.0 when every row sits on a training record, whatever the two sizes.
    """
    share = np.asarray(share, dtype=float)
    odds = (share / prior) / np.maximum((share / prior) + (1.0 - share) / (1.0 - prior), 1e-300)
    return odds if odds.ndim else float(odds)


@checks.register("dcr")
class DCRMetric:
    """Share of synthetic rows whose closest real record (Gower distance) is a training record.

    Every synthetic row's nearest training row and nearest holdout-control row are found;
    the row counts for train when the training row is strictly nearer. A tie is neutral
    (it counts at the chance level). Train is larger than the control, so the share is
    corrected for the two sizes (`size_corrected_share`): 0.5 means the synthetic rows are
    no nearer to the people they were trained on than to other people, 1.0 means copies.
    The interval is a percentile bootstrap over synthetic rows.
    """

    name: ClassVar[str] = "dcr"
    measures: ClassVar[tuple[str, ...]] = ("dcr.share_closer_to_train", "dcr.median_distance_to_train")

    def __init__(self, *, max_rows: int = 20_000, memory_mb: float = 256.0) -> None:
        self.max_rows = max_rows
        self.memory_mb = memory_mb

    def evaluate(self, ctx: Context) -> list[Measurement]:
        rng = np.random.default_rng(ctx.seed)
        md = ctx.metadata
        train, control, synthetic = ctx.train, ctx.holdout, ctx.synthetic
        if len(synthetic) > self.max_rows:
            synthetic = synthetic.iloc[np.sort(rng.choice(len(synthetic), self.max_rows, replace=False))]
        encoder = GowerEncoder(numerical=md.continuous, categorical=md.discrete).fit(train, control)
        query, train_enc, control_enc = (encoder.transform(f) for f in (synthetic, train, control))
        d_train = nearest(query, train_enc, memory_mb=self.memory_mb)[0][:, 0]
        d_control = nearest(query, control_enc, memory_mb=self.memory_mb)[0][:, 0]
        d_unseen = nearest(control_enc, train_enc, memory_mb=self.memory_mb)[0][:, 0]
        prior = len(train) / (len(train) + len(control))
        closer = np.where(d_train < d_control, 1.0, np.where(d_train > d_control, 0.0, prior))
        raw = float(closer.mean())
        ci = bootstrap_ci(
            closer, lambda s: size_corrected_share(s[..., 0].mean(axis=-1), prior), rng=rng, confidence=ctx.confidence
        )
        top = float(max(d_train.max(initial=0.0), d_unseen.max(initial=0.0), 1e-12))
        edges = np.linspace(0.0, top, _BINS + 1)
        quantiles = lambda d: dict(zip(("p05", "p50", "p95"), np.quantile(d, [0.05, 0.5, 0.95]).tolist()))  # noqa: E731
        details = {
            "synthetic_rows": int(len(synthetic)),
            "train_rows": int(len(train)),
            "holdout_rows": int(len(control)),
            "raw_share": raw,
            "chance_share": prior,
            "ties": int((d_train == d_control).sum()),
            "exact_matches": int((d_train == 0).sum()),
            "histogram_edges": edges.tolist(),
            "histogram_synthetic_to_train": np.histogram(d_train, edges)[0].tolist(),
            "histogram_holdout_to_train": np.histogram(d_unseen, edges)[0].tolist(),
            "quantiles_synthetic_to_train": quantiles(d_train),
            "quantiles_holdout_to_train": quantiles(d_unseen),
        }
        median_ci = bootstrap_ci(d_train, lambda s: np.median(s[..., 0], axis=-1), rng=rng, confidence=ctx.confidence)
        return [
            Measurement(
                "dcr.share_closer_to_train",
                size_corrected_share(raw, prior),
                Goal.MINIMIZE,
                ci=ci,
                baseline=0.5,
                details=details,
                meaning=(
                    "share of synthetic rows nearer a training row than a holdout row, "
                    "size-corrected (0.5 = no leakage, 1 = copies)"
                ),
            ),
            Measurement(
                "dcr.median_distance_to_train",
                float(np.median(d_train)),
                Goal.MAXIMIZE,
                ci=median_ci,
                baseline=float(np.median(d_unseen)),
                details=details,
                meaning=(
                    "median Gower distance from a synthetic row to its closest training row; "
                    "baseline: the same for unseen real rows"
                ),
            ),
        ]
