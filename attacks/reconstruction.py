"""Reconstruction of secrets from quasi-identifiers: does the release carry real people's secrets?

Two attackers know a target's quasi-identifiers (`dataset.roles.quasi_identifiers`) and want one
secret column (`dataset.roles.secrets`):

* ``exact`` (the NIST CRC red team's correct-attribution test, 2025): the target's exact
  quasi-identifier tuple appears in the synthetic table in a row carrying the target's true secret
  (a number within `tolerance` times its interquartile range, as in `attacks/inference.py`).
* ``ml``: a gradient-boosting model (sklearn's HistGradientBoosting) trained on the synthetic table
  to predict the secret from the quasi-identifiers, right as above (Annamalai et al. 2024).

Each is scored on training people and on control people (never shown to the generator); only the
excess on training people counts, since a good model of the population reconstructs anyone's secret
as well. Targets are people: one random row per entity, the same ones the anonymeter attacks use.

The gated scores are read on the people whose quasi-identifier tuple is rare among the real people
attacked (training and control pooled): unique, where enough control people are (`rare_among`). For
them a synthetic row with their tuple is about them, not about a crowd that shares it. On a table
where many people share each tuple, the release carries a common tuple with anyone's secret, and the
excess over all people is diluted by that chance (on the adult table 64% of control people find their
occupation under their tuple); among unique people chance is small, so a leak of a few people shows
as a risk and a clean release as safe.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from suite.attacks._anonymeter import attack_data, check_columns, reference_rows
from suite.attacks.inference import adjusted_excess, correct_guesses, success_share, tolerance_for, tuple_codes
from suite.metadata import Metadata
from suite.registry import checks
from suite.seeding import derive_seed
from suite.stats import batch_size, cluster_bootstrap_ci, cluster_codes, newcombe_difference_ci
from suite.types import Context, Goal, Measurement, MeasurementSpec, Need, names, privacy, worst_of

#: A categorical quasi-identifier with more levels than this enters the model as an ordinal code.
_MAX_CATEGORIES = 250


def exact_hits(
    target_codes: np.ndarray, secrets: np.ndarray, syn_codes: np.ndarray, syn_secrets: np.ndarray, tol: float | None
) -> np.ndarray:
    """Whether some synthetic row with the target's tuple carries its secret (categories: equal;
    numbers: within `tol`, a missing secret matched by a missing one)."""
    if tol is None:
        have = set(zip(syn_codes.tolist(), pd.Series(syn_secrets, dtype=object).tolist(), strict=True))
        return np.array([(c, s) in have for c, s in zip(target_codes.tolist(), secrets.tolist(), strict=True)])
    values = np.asarray(syn_secrets, dtype=float)
    wanted = np.asarray(secrets, dtype=float)
    missing_codes = set(syn_codes[np.isnan(values)].tolist())
    hits = np.isnan(wanted) & np.isin(target_codes, list(missing_codes))
    present, ok = ~np.isnan(values), ~np.isnan(wanted)
    if present.any() and ok.any():
        syn = pd.DataFrame({"code": syn_codes[present], "value": values[present]}).sort_values("value")
        tgt = pd.DataFrame({"code": target_codes[ok], "value": wanted[ok], "row": np.flatnonzero(ok)})
        matched = pd.merge_asof(
            tgt.sort_values("value"),
            syn.rename(columns={"value": "near"}),
            left_on="value",
            right_on="near",
            by="code",
            direction="nearest",
        )
        close = correct_guesses(matched["near"].to_numpy(), matched["value"].to_numpy(), tol)
        close &= matched["near"].notna().to_numpy()
        hits[matched["row"].to_numpy()[close]] = True
    return hits


def rare_among(
    c_train: np.ndarray, c_control: np.ndarray, min_control: int, max_rarity: int = 5
) -> tuple[np.ndarray, np.ndarray, int]:
    """Which training and control people hold a rare tuple (codes in one space), and how rare: held by at
    most `r` of them pooled, `r` the smallest count (1: unique) that leaves at least `min_control` control
    people. Unique people are the ones a tuple points at; where too few are, the next-rarest are added,
    up to tuples held by `max_rarity` people (5, the k of common k-anonymity practice). Past that nobody
    is rare enough to be told apart from a crowd: everyone is taken (`r` the largest count)."""
    pooled = np.concatenate([c_train, c_control])
    counts = np.bincount(pooled) if len(pooled) else np.zeros(0, dtype=int)
    own = counts[c_control]
    reached = [r for r in range(1, max_rarity + 1) if (own <= r).sum() >= min_control]
    r = reached[0] if reached else int(counts.max(initial=1))
    return counts[c_train] <= r, own <= r, r


def joint_hits(
    targets: pd.DataFrame,
    synthetic: pd.DataFrame,
    qi: list[str],
    tolerances: dict[str, float | None],
    max_pairs: int = 2_000_000,
) -> np.ndarray:
    """Whether one synthetic row carries the target's exact quasi-identifier tuple and every secret of
    `tolerances` at once (categories equal, numbers within their tolerance, missing matching missing).

    Categorical secrets join the tuple; numbers are compared on the (target, synthetic row) pairs that
    share it, `max_pairs` at a time."""
    exact = qi + [c for c, tol in tolerances.items() if tol is None]
    numeric = {c: tol for c, tol in tolerances.items() if tol is not None}
    c_t, c_s = tuple_codes(targets, synthetic, columns=exact)
    if not numeric:
        return np.isin(c_t, c_s)
    per_code = np.bincount(c_s, minlength=int(max(c_t.max(initial=0), c_s.max(initial=0))) + 1)
    hits = np.zeros(len(targets), dtype=bool)
    syn = pd.DataFrame({"code": c_s, "syn": np.arange(len(c_s))})
    load = np.cumsum(per_code[c_t]) if len(c_t) else np.zeros(0)
    bounds = np.searchsorted(load, np.arange(max_pairs, int(load[-1]) + max_pairs, max_pairs)) if len(load) else []
    lo = 0
    for hi in [*(int(b) + 1 for b in bounds), len(c_t)]:
        hi = min(hi, len(c_t))
        if hi <= lo:
            continue
        pairs = pd.DataFrame({"code": c_t[lo:hi], "row": np.arange(lo, hi)}).merge(syn, on="code")
        row, at = pairs["row"].to_numpy(), pairs["syn"].to_numpy()
        ok = np.ones(len(pairs), dtype=bool)
        for secret, tol in numeric.items():
            found = pd.to_numeric(synthetic[secret], errors="coerce").to_numpy(dtype=float)[at]
            ok &= correct_guesses(
                found, pd.to_numeric(targets[secret], errors="coerce").to_numpy(dtype=float)[row], tol
            )
        hits[row[ok]] = True
        lo = hi
    return hits


def rare_excess(
    hits: tuple[np.ndarray, np.ndarray],
    clusters: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    confidence: float,
) -> tuple[float, tuple[float, float]]:
    """`excess_with_ci` on the rare people (training, control). Nobody on either side: 0, nobody to single
    out; nobody on one side only: no estimate, the interval is all of [-1, 1]."""
    (h_t, h_c), (c_t, c_c) = hits, clusters
    if len(h_t) == 0 and len(h_c) == 0:
        return 0.0, (0.0, 0.0)
    if len(h_t) == 0 or len(h_c) == 0:
        return 0.0, (-1.0, 1.0)
    return excess_with_ci(h_t, h_c, (c_t, c_c), rng, confidence)


def model_guesses(
    synthetic: pd.DataFrame, targets: list[pd.DataFrame], qi: list[str], secret: str, regression: bool, seed: int
) -> list[np.ndarray]:
    """A HistGradientBoosting model fitted on the synthetic rows (quasi-identifiers -> secret), its guess
    for every row of each of `targets`. Categories are coded by their synthetic levels (unseen: missing). A
    number the release sometimes leaves missing is guessed missing when a classifier says so; a number
    guessed is snapped to the nearest value the release holds (`_snap`)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    def features(frame: pd.DataFrame) -> np.ndarray:
        cols = []
        for c in qi:
            if c in levels:
                codes = levels[c].get_indexer(frame[c].astype(object))
                cols.append(np.where(codes < 0, np.nan, codes).astype(float))
            else:
                cols.append(pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float))
        return np.column_stack(cols)

    levels = {
        c: pd.Index(pd.unique(synthetic[c].astype(object)))
        for c in qi
        if synthetic[c].dtype == object or isinstance(synthetic[c].dtype, pd.CategoricalDtype)
    }
    categorical = [c in levels and len(levels[c]) <= _MAX_CATEGORIES for c in qi]
    y = synthetic[secret]

    def classify(x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        if not len(y):
            return [np.full(len(t), None, dtype=object) for t in targets]
        # a class held by one synthetic row cannot be learned, and breaks the stratified split of the model's
        # early stopping (on above 10,000 rows): it is left out of the fit (adult's occupation, split seed 19)
        codes = pd.factorize(y, use_na_sentinel=False)[0]
        counts = np.bincount(codes)
        if (counts >= 2).sum() < 2:  # fewer than two classes to learn: the most common one
            guess = y[np.argmax(codes == counts.argmax())]
            return [np.full(len(t), guess, dtype=object) for t in targets]
        kept = counts[codes] >= 2
        x, y = x[kept], y[kept]
        model = HistGradientBoostingClassifier(categorical_features=categorical, random_state=seed).fit(x, y)
        return [model.predict(features(t)) if len(t) else np.empty(0, dtype=object) for t in targets]

    with threadpool_limits(1):  # OpenMP threads on a shared machine cost far more than they save here
        x = features(synthetic)
        if not regression:
            return classify(x, y.astype(object).to_numpy())
        # a number: whether it is missing (a classifier, when the release has missing values), then its value
        values = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
        keep = ~np.isnan(values)
        missing = classify(x, np.where(keep, "value", "missing").astype(object)) if not keep.all() else None
        if not keep.any():
            return [np.full(len(t), np.nan) for t in targets]
        model = HistGradientBoostingRegressor(categorical_features=categorical, random_state=seed)
        model.fit(x[keep], values[keep])
        grid = np.unique(values[keep])
        out = []
        for i, t in enumerate(targets):
            guess = _snap(model.predict(features(t)), grid) if len(t) else np.empty(0)
            if missing is not None:
                guess = np.where(missing[i] == "missing", np.nan, guess)
            out.append(guess)
        return out


def _snap(guesses: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Each guess moved to the nearest value of the sorted `grid` (the values the release holds): a model's
    average of 45 and 39.8 is no value anyone has, and a secret with an interquartile range of 0 is
    judged by exact match."""
    right = np.clip(np.searchsorted(grid, guesses), 1, max(len(grid) - 1, 1))
    left = right - 1
    pick = np.where(
        np.abs(guesses - grid[left]) <= np.abs(grid[np.minimum(right, len(grid) - 1)] - guesses), left, right
    )
    return grid[np.minimum(pick, len(grid) - 1)]


def excess_with_ci(
    hits_train: np.ndarray,
    hits_control: np.ndarray,
    clusters: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    confidence: float,
) -> tuple[float, tuple[float, float]]:
    """Training hit share minus control hit share, with a percentile bootstrap that resamples people by
    quasi-identifier tuple (people who share a tuple share their synthetic evidence), widened to hold
    Newcombe's interval. `clusters` gives each side's tuple codes in one code space: a tuple held by
    training and control people is one cluster, drawn with both sides together, so the evidence it
    shares with both cancels in the difference as it does in the point estimate (resampling the two
    sides' clusters independently counted it twice: on the quickstart's null about 1.7 times Newcombe's
    width, which no table of 2,000 control people could certify at 0.05)."""
    h_t, h_c = hits_train.astype(float), hits_control.astype(float)
    n_t = len(h_t)
    point = float(h_t.mean() - h_c.mean())
    joint = cluster_codes(np.concatenate([np.asarray(c) for c in clusters]), n_t + len(h_c))
    if np.all((h_t == 0) | (h_t == 1)) and np.all((h_c == 0) | (h_c == 1)):
        # Hits of 0 or 1 and draw counts are integers, so every weighted sum is an exact integer whatever
        # the order of the additions: summed per cluster up front (people and hits per side), the statistic
        # runs on a few thousand clusters instead of every person, with the same draws (the batches people
        # would have had) and the same values to the last bit.
        t_codes, c_codes = joint[:n_t], joint[n_t:]
        g = int(joint.max()) + 1 if len(joint) else 0
        people_t, hits_t = np.bincount(t_codes, minlength=g).astype(float), np.bincount(t_codes, h_t, minlength=g)
        people_c, hits_c = np.bincount(c_codes, minlength=g).astype(float), np.bincount(c_codes, h_c, minlength=g)

        def by_cluster(w: np.ndarray) -> np.ndarray:
            return (w @ hits_t) / np.maximum(w @ people_t, 1e-12) - (w @ hits_c) / np.maximum(w @ people_c, 1e-12)

        low, high = cluster_bootstrap_ci(
            by_cluster, np.arange(g), rng=rng, confidence=confidence, batch=batch_size(len(joint), cost=2)
        )
    else:

        def stat(w: np.ndarray) -> np.ndarray:
            w_t, w_c = w[:, :n_t], w[:, n_t:]
            return (w_t @ h_t) / np.maximum(w_t.sum(1), 1e-12) - (w_c @ h_c) / np.maximum(w_c.sum(1), 1e-12)

        low, high = cluster_bootstrap_ci(stat, joint, rng=rng, confidence=confidence, cost=2)
    # never narrower than Newcombe's interval for independent people: a bootstrap of shares of 0 (or 1)
    # on both sides has no spread at all, which is no evidence of a small excess
    n_low, n_high = newcombe_difference_ci(h_t.sum(), len(h_t), h_c.sum(), len(h_c), confidence)
    return point, (min(low, n_low, point), max(high, n_high, point))


@checks.register("reconstruction")
class ReconstructionAttack:
    """Reconstruction: reading a real person's secret off the release from their quasi-identifiers.

    `reconstruction.<secret>.excess`: the share of training people whose exact quasi-identifier
    tuple appears in a synthetic row carrying their true secret, minus the same share for control
    people (exact tuples, as the NIST CRC red team matches them: a tuple nudged by one unit is not a
    match). `reconstruction.<secret>.ml_excess`: the same difference for a gradient-boosting model
    trained on the synthetic table to predict the secret. `reconstruction.max.excess`: the worst of
    all of these (the highest upper bound), with its interval; its details name the secret and the
    attacker. Numbers are right within `tolerance` times the secret's interquartile range in
    training data. Intervals are percentile bootstraps with people who share a quasi-identifier
    tuple resampled together (one cluster, training and control people alike).

    The gated ones read the exact attacker on the people whose tuple is rare among the training and
    control people (unique, or the rarest level up to 5 that leaves `min_rare_control` control people,
    else everyone; details `rarity`): `reconstruction.<secret>.rare_excess`, their worst,
    `reconstruction.max.rare_excess`, and `reconstruction.joint.rare_excess`, one synthetic row carrying
    the tuple and every secret at once. These are adjusted for the exact attacker on the reference rows
    (real unseen people: `suite.attacks.inference.adjusted_excess`), the bootstrap interval kept in the
    details as `unadjusted`.
    A unique person's tuple in the release is about that person; chance matches are rare there, so a
    leak of a few people is shown rather than diluted by the crowds that share common tuples.

    What it means: an excess above 0 says some training people's secrets travel with their
    quasi-identifiers into the release, the pattern of a partial copy. What it does not prove: an
    excess near 0 does not rule out reconstruction from other columns, a stronger model, or for
    a few people too few to move a share of thousands (the membership `local` attacker looks at
    them); control people's success (details) is what the population model reveals to anyone.
    """

    name: ClassVar[str] = "reconstruction"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        privacy(
            "reconstruction.max.excess",
            Goal.MINIMIZE,
            "reconstruction",
            "secrets reconstructed from quasi-identifiers: the worst secret and attacker's excess",
            no_leak=0.0,
            bounds=(-1, 1),
            attack="inference",  # secrets reconstructed from quasi-identifiers: attribute inference
            worst_case=True,  # exact tuples: the people a release exposes, not an average guess
        ),
        privacy(
            "reconstruction.max.rare_excess",
            Goal.MINIMIZE,
            "reconstruction",
            "people of rare quasi-identifier tuples whose tuple carries their secret: the worst secret's excess",
            no_leak=0.0,
            bounds=(-1, 1),
            attack="inference",
            worst_case=True,
        ),
        privacy(
            "reconstruction.joint.rare_excess",
            Goal.MINIMIZE,
            "reconstruction",
            "people of rare quasi-identifier tuples whose tuple carries all their secrets in one row, excess",
            no_leak=0.0,
            bounds=(-1, 1),
            attack="inference",
            worst_case=True,
        ),
        privacy(
            "reconstruction.*.rare_excess",
            Goal.MINIMIZE,
            "reconstruction",
            "people of rare quasi-identifier tuples whose exact tuple carries their true secret, excess",
            no_leak=0.0,
            bounds=(-1, 1),
            attack="inference",
            worst_case=True,
        ),
        privacy(
            "reconstruction.*.excess",
            Goal.MINIMIZE,
            "reconstruction",
            "training people whose exact quasi-identifiers carry their true secret, minus unseen people's",
            no_leak=0.0,
            bounds=(-1, 1),
            attack="inference",
            worst_case=True,
        ),
        privacy(
            "reconstruction.*.ml_excess",
            Goal.MINIMIZE,
            "reconstruction",
            "a model trained on the release predicts training people's secret better than unseen people's",
            no_leak=0.0,
            bounds=(-1, 1),
            attack="inference",
            worst_case=True,
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)
    needs: ClassVar[tuple[Need, ...]] = (
        Need("secrets", unless="secrets"),
        Need("quasi_identifiers", unless="quasi_identifiers"),
    )

    def __init__(
        self,
        *,
        secrets: list[str] | None = None,
        quasi_identifiers: list[str] | None = None,
        tolerance: float = 0.05,
        attackers: tuple[str, ...] = ("exact", "ml"),
        max_fit_rows: int = 50_000,
        min_rare_control: int = 500,
    ) -> None:
        self.secrets = secrets
        self.quasi_identifiers = quasi_identifiers
        self.tolerance = tolerance
        self.attackers = attackers
        self.max_fit_rows = max_fit_rows
        self.min_rare_control = min_rare_control

    def _columns(self, md: Metadata) -> tuple[list[str], list[str]]:
        secrets = list(self.secrets) if self.secrets is not None else list(md.roles.secrets)
        qi = list(self.quasi_identifiers) if self.quasi_identifiers is not None else list(md.roles.quasi_identifiers)
        if not secrets or not qi:
            raise ValueError(
                "reconstruction needs quasi-identifiers and secrets: declare `dataset.roles.quasi_identifiers` "
                "and `dataset.roles.secrets` (or pass `quasi_identifiers` and `secrets` in the check's params)"
            )
        check_columns(secrets, md, "reconstruction secrets")
        check_columns(qi, md, "reconstruction quasi_identifiers")
        clash = sorted({"max", "joint"} & set(secrets))
        if clash:
            raise ValueError(
                f"reconstruction: a secret column named {clash[0]!r} clashes with reconstruction.{clash[0]}.*: "
                "rename the column"
            )
        if not (isinstance(self.tolerance, int | float) and 0 <= self.tolerance < 1):
            raise ValueError(f"reconstruction: tolerance is a fraction of the IQR in [0, 1), got {self.tolerance!r}")
        if (
            isinstance(self.min_rare_control, bool)
            or not isinstance(self.min_rare_control, int)
            or self.min_rare_control < 1
        ):
            raise ValueError(
                f"reconstruction: min_rare_control is a count of control people >= 1, got {self.min_rare_control!r}"
            )
        bad = [a for a in self.attackers if a not in ("exact", "ml")]
        if bad or not self.attackers:
            raise ValueError(f"reconstruction: attackers must be among ['exact', 'ml'], got {list(self.attackers)}")
        return secrets, qi

    def evaluate(self, ctx: Context) -> list[Measurement]:
        md = ctx.metadata
        secrets, all_qi = self._columns(md)
        data = attack_data(ctx)
        if len(data.train) == 0 or len(data.control) == 0 or len(data.synthetic) == 0:
            raise ValueError("reconstruction: no target left to attack: train, control or synthetic is empty")
        train, control, synthetic = data.train, data.control, data.synthetic
        if len(synthetic) > self.max_fit_rows:
            pick = np.random.default_rng(derive_seed(ctx.seed, self.name, "fit rows"))
            fit_rows = synthetic.iloc[np.sort(pick.choice(len(synthetic), self.max_fit_rows, replace=False))]
        else:
            fit_rows = synthetic
        continuous = set(md.continuous)
        # the reference attacker's release: real people nobody trained on (`adjusted_excess`); none without them
        reference = reference_rows(ctx)
        refs = [] if reference is None else [reference]
        out: list[Measurement] = []
        gated: list[Measurement] = []
        rare_ones: list[Measurement] = []
        tolerances: dict[str, float | None] = {}
        for secret in secrets:
            start = time.perf_counter()
            qi = [c for c in all_qi if c != secret]
            if not qi:
                raise ValueError(f"reconstruction: no quasi-identifier is left to reconstruct {secret!r} from")
            regression = secret in continuous
            tol = tolerance_for(data.train[secret], self.tolerance) if regression else None
            tolerances[secret] = tol
            c_train, c_control, c_syn, *c_ref = tuple_codes(train, control, synthetic, *refs, columns=qi)
            base: dict[str, Any] = {
                "secret": secret,
                "quasi_identifiers": qi,
                "regression": regression,
                "tolerance_fraction_of_iqr": float(self.tolerance) if regression else None,
                "tolerance": tol,
                **data.details(),
                "interval": (
                    "percentile bootstrap, people sharing a quasi-identifier tuple resampled as one cluster "
                    "(training and control people together), widened to hold Newcombe's interval"
                ),
                "confidence": ctx.confidence,
            }
            for attacker in self.attackers:
                if attacker == "exact":
                    h_t = exact_hits(c_train, train[secret].to_numpy(), c_syn, synthetic[secret].to_numpy(), tol)
                    h_c = exact_hits(c_control, control[secret].to_numpy(), c_syn, synthetic[secret].to_numpy(), tol)
                    name, what = f"reconstruction.{secret}.excess", "exact quasi-identifier tuple carrying the secret"
                else:
                    seed = derive_seed(ctx.seed, self.name, secret, "model") % 2**32
                    g_t, g_c = model_guesses(fit_rows, [train, control], qi, secret, regression, seed)
                    h_t = _right(g_t, train[secret].to_numpy(), tol)
                    h_c = _right(g_c, control[secret].to_numpy(), tol)
                    name, what = f"reconstruction.{secret}.ml_excess", "gradient boosting on the synthetic table"
                rng = np.random.default_rng(derive_seed(ctx.seed, self.name, secret, attacker))
                value, ci = excess_with_ci(h_t, h_c, (c_train, c_control), rng, ctx.confidence)
                details = {
                    **base,
                    "attacker": attacker,
                    "attack": success_share(h_t),
                    "control": success_share(h_c),
                    "seconds": round(time.perf_counter() - start, 3),
                }
                m = Measurement(
                    name,
                    value,
                    Goal.MINIMIZE,
                    ci=ci,
                    baseline=0.0,
                    details=details,
                    meaning=f"reconstruction of {secret} ({what}): success share on training people minus on control",
                )
                out.append(m)
                gated.append(m)
                if attacker == "exact":
                    rare = rare_among(c_train, c_control, self.min_rare_control)
                    name = f"reconstruction.{secret}.rare_excess"
                    x = None
                    if reference is not None:
                        ref_secret = reference[secret].to_numpy()
                        x = tuple(
                            exact_hits(c, people[secret].to_numpy(), c_ref[0], ref_secret, tol)
                            for c, people in ((c_train, train), (c_control, control))
                        )
                    m = self._rare(name, (h_t, h_c), (c_train, c_control), rare, details, ctx, x)
                    out.append(m)
                    rare_ones.append(m)
        meaning = "reconstruction: the worst secret and attacker's excess (highest upper bound, its interval)"
        worst = worst_of(
            "reconstruction.max.excess",
            {m.name: m for m in gated},
            meaning,
            label="measurement",
            summary="measurements",
        )
        out.append(replace(worst, details={"column": worst.details["secret"], **worst.details}))
        if rare_ones:
            worst = worst_of(
                "reconstruction.max.rare_excess",
                {m.name: m for m in rare_ones},
                "reconstruction among people with rare quasi-identifiers: the worst secret's excess",
                label="measurement",
                summary="measurements",
            )
            out.append(replace(worst, details={"column": worst.details["secret"], **worst.details}))
            out.append(self._joint(train, control, synthetic, reference, all_qi, tolerances, data.details(), ctx))
        return out

    def _rare(
        self,
        name: str,
        hits: tuple[np.ndarray, np.ndarray],
        codes: tuple[np.ndarray, np.ndarray],
        rare: tuple[np.ndarray, np.ndarray, int],
        details: dict[str, Any],
        ctx: Context,
        reference_hits: tuple[np.ndarray, ...] | None = None,
    ) -> Measurement:
        """The exact attacker's excess read on the people of rare tuples only (`rare_excess`), adjusted for the
        reference attacker's where there are reference rows (`adjusted_excess`)."""
        (h_t, h_c), (c_t, c_c), (r_t, r_c, rarity) = hits, codes, rare
        rng = np.random.default_rng(derive_seed(ctx.seed, self.name, name))
        plain = rare_excess((h_t[r_t], h_c[r_c]), (c_t[r_t], c_c[r_c]), rng, ctx.confidence)
        x = None if reference_hits is None else (reference_hits[0][r_t], reference_hits[1][r_c])
        value, ci, adjustment = adjusted_excess((h_t[r_t], h_c[r_c]), x, (c_t[r_t], c_c[r_c]), plain, ctx.confidence)
        return Measurement(
            name,
            value,
            Goal.MINIMIZE,
            ci=ci,
            baseline=0.0,
            details={
                **details,
                **adjustment,
                "rarity": rarity,
                "targets": (
                    f"people whose quasi-identifier tuple is held by at most {rarity} of the training and control "
                    f"people (1: unique; the rarest level up to 5 leaving at least {self.min_rare_control} control "
                    "people, else everyone)"
                ),
                "attack": success_share(h_t[r_t]),
                "control": success_share(h_c[r_c]),
            },
            meaning=(
                f"reconstruction of {details['secret']} for people with rare quasi-identifiers: training minus control"
            ),
        )

    def _joint(
        self,
        train: pd.DataFrame,
        control: pd.DataFrame,
        synthetic: pd.DataFrame,
        reference: pd.DataFrame | None,
        all_qi: list[str],
        tolerances: dict[str, float | None],
        data_details: dict[str, Any],
        ctx: Context,
    ) -> Measurement:
        """`reconstruction.joint.rare_excess`: one synthetic row carries a rare person's tuple and every
        secret (a whole record of secrets reconstructed, as a copy of the person would)."""
        start = time.perf_counter()
        qi = [c for c in all_qi if c not in tolerances]
        if not qi:
            raise ValueError("reconstruction: every quasi-identifier is also a secret: none is left to match on")
        c_train, c_control = tuple_codes(train, control, columns=qi)
        rare = rare_among(c_train, c_control, self.min_rare_control)
        h_t = joint_hits(train, synthetic, qi, tolerances)
        h_c = joint_hits(control, synthetic, qi, tolerances)
        details = {
            "secret": "all",
            "secrets": list(tolerances),
            "quasi_identifiers": qi,
            "tolerances": tolerances,
            **data_details,
            "interval": (
                "percentile bootstrap, people sharing a quasi-identifier tuple resampled as one cluster, "
                "widened to hold Newcombe's interval"
            ),
            "confidence": ctx.confidence,
            "seconds": round(time.perf_counter() - start, 3),
        }
        x = None if reference is None else tuple(joint_hits(p, reference, qi, tolerances) for p in (train, control))
        m = self._rare("reconstruction.joint.rare_excess", (h_t, h_c), (c_train, c_control), rare, details, ctx, x)
        return replace(m, meaning="reconstruction of every secret at once for people with rare quasi-identifiers")


def _right(guesses: np.ndarray, secrets: np.ndarray, tol: float | None) -> np.ndarray:
    """Model guesses judged as `correct_guesses` judges them (a model never guesses a missing number)."""
    if tol is None:
        return correct_guesses(np.asarray(guesses, dtype=object), np.asarray(secrets, dtype=object), None)
    return correct_guesses(np.asarray(guesses, dtype=float), np.asarray(secrets, dtype=float), tol)
