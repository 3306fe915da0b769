"""Distance to closest record: are synthetic rows nearer to training rows than to unseen ones?"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from suite.metrics.collisions import row_keys
from suite.neighbors import GowerEncoder, cached_nearest
from suite.registry import checks
from suite.stats import cluster_bootstrap_ci, cluster_codes
from suite.types import Context, Goal, Measurement, MeasurementSpec, names, privacy

_BINS = 30
#: Nearest control (and training) records kept per synthetic row: the bootstrap falls back on the
#: next one when it drops the nearest, and ties are counted among them.
_K = 5
#: At most this many training neighbours (train is larger than the control: k scales with the sizes).
_K_TRAIN_MAX = 50
#: Distances this close count as a tie (Gower distances are exact sums of a few terms).
_TIE = 1e-12


def size_corrected_share(share: np.ndarray | float, prior: np.ndarray | float) -> np.ndarray | float:
    """Map the share of rows nearer to train onto the scale of equal-sized train and holdout.

    With n_t training and n_c holdout rows drawn from one population, a row that depends on
    neither has its nearest record in train with probability prior = n_t / (n_t + n_c); when
    several records tie, the share of training records among them has that expectation too. The
    odds of the observed share over the prior odds, turned back into a share, is 0.5 under no
    leakage and 1.0 when every row sits on a training record, whatever the two sizes.
    """
    share = np.asarray(share, dtype=float)
    prior = np.asarray(prior, dtype=float)
    odds = (share / prior) / np.maximum((share / prior) + (1.0 - share) / (1.0 - prior), 1e-300)
    return odds if odds.ndim else float(odds)


def train_credit(
    d_train: np.ndarray, d_control: np.ndarray, drawn: np.ndarray, prior: np.ndarray | float
) -> np.ndarray:
    """Per synthetic row, the share of training records among the real records nearest to it.

    `d_train` (n, k) and `d_control` (n, k) are each row's k nearest distances (ascending);
    `drawn` (..., n, k) says whether each control neighbour is in the (resampled) control. A row
    nearer to train counts 1, nearer to control 0; a tie (within 1e-12) counts the training
    records' share among the tied ones, which is `prior` on average when the row depends on
    neither, so `size_corrected_share` maps it to 0.5. When every kept neighbour of both sides
    ties, the counts beyond k are unknown and the row counts `prior`. A row whose k control
    neighbours a resample all dropped takes the k-th distance (one record there): an
    approximation that slightly favours the control (the true next distance is at least that
    large), for about exp(-k) of the rows of a resample.
    """
    present = drawn.astype(bool)
    nearest_c = np.where(present, d_control, np.inf).min(axis=-1)
    lost = ~present.any(axis=-1)
    nearest_c = np.where(lost, d_control[:, -1], nearest_c)
    edge = np.minimum(d_train[:, 0], nearest_c)[..., None] + _TIE
    tied_t = (d_train <= edge).sum(axis=-1)
    tied_c = (present & (d_control <= edge)).sum(axis=-1) + lost * (d_control[:, -1] <= edge[..., 0])
    full = (d_train[:, -1] <= edge[..., 0]) & (d_control[:, -1] <= edge[..., 0])
    return np.where(full, prior, tied_t / np.maximum(tied_t + tied_c, 1))


class BootstrapCredit:
    """`train_credit` for many resamples of the control, from tables built once.

    A resample changes only which control neighbours are present. With each row's control
    distances ascending, the nearest present one is the first present: every quantity
    `train_credit` derives from that distance (the tie edge, the tied training records, whether
    every kept neighbour ties) is tabulated per row for each possible first present neighbour
    (or none), and the tied present control records are those among the first `within` ones, a
    bit count of the present neighbours' mask. Same integers, same division: the same credits to
    the last bit. Rows whose distances are not ascending (or over 16 neighbours) use `train_credit`.
    """

    def __init__(self, d_train: np.ndarray, d_control: np.ndarray, i_control: np.ndarray) -> None:
        self.d_train, self.d_control, self.i_control = d_train, d_control, i_control
        n, k = d_control.shape
        self.tabulated = 0 < k <= 16 and bool(np.all(np.diff(d_control, axis=1) >= 0))
        if not self.tabulated:
            return
        self.rows = np.arange(n)[None, :]  # indexes the (resample, row) tables below
        # first present neighbour f (k: none, the row takes the k-th distance), as `train_credit` finds it
        nearest = np.column_stack([d_control, d_control[:, -1]])  # (n, k + 1)
        edge = np.minimum(d_train[:, :1], nearest) + _TIE
        self.tied_t = (d_train[:, None, :] <= edge[:, :, None]).sum(axis=-1)  # (n, k + 1)
        self.full = (d_train[:, -1:] <= edge) & (d_control[:, -1:] <= edge)
        within = (d_control[:, None, :] <= edge[:, :, None]).sum(axis=-1)  # control distances at the edge
        self.within_mask = (np.int64(1) << within) - 1  # the first `within` neighbours' bits
        self.lost_tied = (d_control[:, -1] <= edge[:, k]).astype(np.int64)
        codes = np.arange(1 << k)
        self.first = np.where(codes > 0, np.log2(np.maximum(codes & -codes, 1)).astype(np.int64), k)
        self.popcount = np.array([bin(c).count("1") for c in codes], dtype=np.int64)

    def __call__(self, present: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """Per resample (rows of `present`, (b, control rows) bool) and synthetic row, the training credit."""
        if not self.tabulated:
            return train_credit(self.d_train, self.d_control, present[:, self.i_control], prior)
        bits = np.zeros((present.shape[0], len(self.i_control)), dtype=np.int64)
        for j in range(self.i_control.shape[1]):
            bits |= present[:, self.i_control[:, j]].astype(np.int64) << j
        first = self.first[bits]
        tied_t = self.tied_t[self.rows, first]
        tied_c = np.where(bits == 0, self.lost_tied, self.popcount[bits & self.within_mask[self.rows, first]])
        return np.where(self.full[self.rows, first], prior, tied_t / np.maximum(tied_t + tied_c, 1))


@checks.register("dcr")
class DCRMetric:
    """Share of synthetic rows whose closest real record (Gower distance) is a training record.

    Every synthetic row's nearest training row and nearest holdout-control row are found;
    the row counts for train when the training row is strictly nearer, and a tie counts the
    share of training records among the tied ones (`train_credit`). Train is larger than the
    control, so the share is corrected for the two sizes (`size_corrected_share`): 0.5 means
    the synthetic rows are no nearer to the people they were trained on than to other people,
    1.0 means copies. The interval is a percentile bootstrap that resamples distinct synthetic
    rows (a row repeated n times is one unit) jointly with control people, so it covers the
    split's variance too.
    """

    name: ClassVar[str] = "dcr"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        privacy(
            "dcr.share_closer_to_train",
            Goal.MINIMIZE,
            "copying",
            "share of synthetic rows nearer a training row than an unseen row (0.5 = no leak)",
            no_leak=0.5,
            bounds=(0, 1),
        ),
        privacy(
            "dcr.median_distance_to_train",
            Goal.MAXIMIZE,
            "copying",
            "median distance from a synthetic row to its closest training row",
            bounds=(0, 1),
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)

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
        # as many training neighbours, relative to the sizes, as control ones: tie counts then saturate alike
        k_train = min(int(np.ceil(_K * len(train) / max(len(control), 1))), _K_TRAIN_MAX, len(train))
        d_train = cached_nearest(ctx.neighbours, query, train_enc, k=max(k_train, 1), memory_mb=self.memory_mb)[0]
        d_control, i_control = cached_nearest(
            ctx.neighbours, query, control_enc, k=min(_K, len(control)), memory_mb=self.memory_mb
        )
        d_unseen = cached_nearest(ctx.neighbours, control_enc, train_enc, memory_mb=self.memory_mb)[0][:, 0]
        prior = len(train) / (len(train) + len(control))
        closer = train_credit(d_train, d_control, np.ones_like(d_control), prior)
        raw = float(closer.mean())
        # One bootstrap unit per distinct synthetic row and per control person (or row): the
        # interval then covers the split (which people are in control), not only the sampling of rows.
        units = (
            cluster_codes(row_keys(synthetic, md), len(synthetic)),
            cluster_codes(ctx.holdout_entities, len(control)),
        )

        credit_of = BootstrapCredit(d_train, d_control, i_control)

        def share(w_syn: np.ndarray, w_control: np.ndarray) -> np.ndarray:
            # A resample holds each control record at most once for the search: a record drawn twice
            # is no nearer than once, and the chance level follows the distinct records drawn (a
            # resample holds about 63% of them: the interval is that of a smaller control, wider).
            present = w_control > 0
            prior_b = len(train) / (len(train) + present.sum(axis=1))
            credit = credit_of(present, prior_b[:, None])
            return size_corrected_share((w_syn * credit).sum(axis=1) / w_syn.sum(axis=1), prior_b)

        ci = cluster_bootstrap_ci(share, *units, rng=rng, confidence=ctx.confidence, cost=4 * (_K + k_train))
        d_train = d_train[:, 0]
        d_control = d_control[:, 0]
        top = float(max(d_train.max(initial=0.0), d_unseen.max(initial=0.0), 1e-12))
        edges = np.linspace(0.0, top, _BINS + 1)
        quantiles = lambda d: dict(zip(("p05", "p50", "p95"), np.quantile(d, [0.05, 0.5, 0.95]).tolist()))  # noqa: E731
        details = {
            "synthetic_rows": int(len(synthetic)),
            "train_rows": int(len(train)),
            "holdout_rows": int(len(control)),
            "raw_share": raw,
            "chance_share": prior,
            "ties": int((np.abs(d_train - d_control) <= _TIE).sum()),
            "exact_matches": int((d_train == 0).sum()),
            "histogram_edges": edges.tolist(),
            "histogram_synthetic_to_train": np.histogram(d_train, edges)[0].tolist(),
            "histogram_holdout_to_train": np.histogram(d_unseen, edges)[0].tolist(),
            "quantiles_synthetic_to_train": quantiles(d_train),
            "quantiles_holdout_to_train": quantiles(d_unseen),
        }
        order = np.argsort(d_train, kind="stable")

        def median(w_syn: np.ndarray) -> np.ndarray:
            below = np.cumsum(w_syn[:, order], axis=1) < w_syn.sum(axis=1, keepdims=True) / 2.0
            return d_train[order][below.sum(axis=1)]

        median_ci = cluster_bootstrap_ci(median, units[0], rng=rng, confidence=ctx.confidence)
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
