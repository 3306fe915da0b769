"""Attribute inference: can the synthetic data reveal a real person's secret column?

anonymeter's attack (the secret of the nearest synthetic row on the auxiliary columns), run
on every target with the suite's neighbour search and judged by the absolute excess of the
success on training people over control people, adjusted for the same attack on the reference rows
(`adjusted_excess`; Newcombe's interval where it cannot be). anonymeter 1.1's own
evaluator is not used: it scores a number right within 5% *of the guess* (a date of 2018
against 2020 is a hit, any negative guess is right), attacks one count of targets on each side
(so no more training people than control people), and reports a ratio, (attack - control) /
(1 - control), that explodes for a dominant secret.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from suite.attacks._anonymeter import attack_data, check_columns, reference_rows
from suite.metadata import Metadata
from suite.neighbors import GowerEncoder, nearest
from suite.registry import checks
from suite.seeding import derive_seed
from suite.stats import AdjustedDifference, adjusted_difference, newcombe_difference_ci
from suite.types import Context, Goal, Measurement, MeasurementSpec, Need, names, privacy, worst_of

_NS_PER_DAY = 86_400 * 10**9

#: How many of the reference rows nearest a target the reference attacker reads (the tied nearest ones among them).
REFERENCE_NEIGHBOURS = 32


def tuple_codes(*frames: pd.DataFrame, columns: list[str]) -> list[np.ndarray]:
    """One code per row of each frame: equal codes for equal tuples of `columns` (missing equals missing)."""
    joined = pd.concat([f[columns] for f in frames], ignore_index=True)
    codes = joined.groupby(columns, dropna=False, sort=False).ngroup().to_numpy()
    bounds = np.cumsum([0, *(len(f) for f in frames)])
    return [codes[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def tolerance_for(train_secret: pd.Series, fraction: float) -> float:
    """The largest error of a right guess of a number: `fraction` of its interquartile range in training data.

    0 (an exact match) when the range is 0 or the column is entirely missing.
    """
    values = pd.to_numeric(train_secret, errors="coerce").to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0
    q1, q3 = np.quantile(values, [0.25, 0.75])
    return float(fraction * (q3 - q1))


def correct_guesses(guesses: np.ndarray, secrets: np.ndarray, tolerance: float | None) -> np.ndarray:
    """Which guesses are right: exact for categories (`tolerance` None), within `tolerance` for numbers.

    A missing secret is guessed right by a missing guess only (anonymeter's rule; for a category
    "missing" is a level of its own).
    """
    if tolerance is None:
        return np.asarray(guesses, dtype=object) == np.asarray(secrets, dtype=object)
    g = np.asarray(guesses, dtype=float)
    s = np.asarray(secrets, dtype=float)
    with np.errstate(invalid="ignore"):
        close = np.abs(g - s) <= tolerance
    return close | (np.isnan(g) & np.isnan(s))


def nearest_secrets(
    targets: pd.DataFrame,
    synthetic: pd.DataFrame,
    encoder: GowerEncoder,
    aux: list[str],
    secret: str,
    memory_mb: float = 256.0,
) -> np.ndarray:
    """The secret of the synthetic row nearest each target on the `aux` columns (ties: the first row)."""
    idx = nearest(encoder.transform(targets[aux]), encoder.transform(synthetic[aux]), memory_mb=memory_mb)[1]
    return synthetic[secret].to_numpy()[idx[:, 0]]


def tied_share(
    targets: pd.DataFrame,
    rows: pd.DataFrame,
    encoder: GowerEncoder,
    aux: list[str],
    secret: str,
    tolerance: float | None,
    k: int = REFERENCE_NEIGHBOURS,
    memory_mb: float = 256.0,
) -> np.ndarray:
    """Each target's chance that the attack guesses right from `rows`: the share of right secrets among the rows
    nearest it on `aux` (every row at the nearest distance, up to `k` of them in the rows' order)."""
    k = min(k, len(rows))
    dist, idx = nearest(encoder.transform(targets[aux]), encoder.transform(rows[aux]), k=k, memory_mb=memory_mb)
    tied = (dist <= dist[:, :1]) | (np.arange(k) == 0)  # the nearest row counts whatever its distance
    found = rows[secret].to_numpy()[idx]
    wanted = np.repeat(targets[secret].to_numpy(), k)
    right = correct_guesses(found.reshape(-1), wanted, tolerance).reshape(idx.shape)
    return (right & tied).sum(axis=1) / tied.sum(axis=1)


def adjusted_excess(
    hits: tuple[np.ndarray, np.ndarray],
    reference_hits: tuple[np.ndarray, np.ndarray] | None,
    clusters: tuple[np.ndarray, np.ndarray] | None,
    plain: tuple[float, tuple[float, float]],
    confidence: float,
) -> tuple[float, tuple[float, float], dict[str, Any]]:
    """The excess of training over control successes, adjusted for the reference attacker's (the same attack
    with the reference rows as its release: real people nobody trained on, so its excess is 0 but for the
    split's luck, which it shares with the attack's). `plain` is the unadjusted excess and interval, kept
    where no adjustment can be made (no reference, or too few people: `suite.stats.adjusted_difference`);
    `clusters` are the targets' quasi-identifier tuples, needed with `reference_hits` only.
    Returns the value, the interval and the details that say which was used."""
    adj: AdjustedDifference | None = None
    if reference_hits is not None and clusters is not None:
        adj = adjusted_difference(hits, reference_hits, clusters, confidence)
    value, ci = plain
    details: dict[str, Any] = {"unadjusted": {"value": value, "ci": list(ci)}}
    if adj is None:
        details["adjustment"] = "none: " + (
            "no reference rows" if reference_hits is None else "too few people or clusters, or no spread to use"
        )
        return value, ci, details
    details["adjustment"] = {
        "covariate": "the same attack's success with the reference rows as the release (real unseen people)",
        "reference_success": {"train": float(np.mean(reference_hits[0])), "control": float(np.mean(reference_hits[1]))},  # type: ignore[index]
        "theta": adj.theta,
        "clusters": adj.clusters,
        "interval": "normal, cluster-robust standard error (clusters: quasi-identifier tuples)",
    }
    return adj.value, adj.ci, details


def success_share(hits: np.ndarray) -> dict[str, Any]:
    """Targets, successes and their share (None for no target: JSON has no NaN); inference and reconstruction
    report their attacks' successes this way."""
    n = int(np.size(hits))
    return {"n_targets": n, "n_success": int(np.sum(hits)), "rate": float(np.mean(hits)) if n else None}


def _rate(share: dict[str, Any]) -> float:
    """A share's rate as a number (NaN for no target, which the policy blocks as an error)."""
    return float("nan") if share["rate"] is None else share["rate"]


@checks.register("inference")
class InferenceAttack:
    """Attribute inference: guessing a person's secret column from the synthetic row most like them.

    For each secret column (`dataset.roles.secrets`), the attacker knows a target's
    auxiliary columns (by default the quasi-identifiers), finds the nearest synthetic row on
    them (Gower's distance, `suite.neighbors`; ties go to a random one of the tied rows) and
    guesses that row's secret. A guess is right when it equals the secret (categories) or is
    within `tolerance` times the secret's interquartile range in the training data (numbers;
    dates likewise, in days in the details; a range of 0 asks for an exact match).

    The attack runs on every control person (never shown to the generator) and on every
    training person (or `n_attacks` of them, drawn from the seed). `inference.<secret>.excess`
    is the success share on training people minus that on control people, adjusted for the
    reference attacker's (the same attack with the reference rows as its release, whose excess
    is the split's luck alone: `adjusted_excess`), with a cluster-robust normal interval; without
    reference rows or with fewer than 30 people a side, Newcombe's interval for the difference of
    two independent proportions (hybrid Wilson score, method 10), kept in the details as
    `unadjusted`. Guessing control people well is what any good model of the population does, so only
    the excess on the people the generator was trained on counts. `inference.max.excess` is
    the secret whose excess has the highest upper bound, with that secret's interval (so a
    threshold on it holds for every secret); its details name the column.
    `inference.<secret>.attack_advantage` is the training success minus a naive attacker's,
    who guesses the secret of a random synthetic row (Newcombe's interval, counts in details).

    With an entity column (one patient, many rows), train and control are reduced to one
    random row per entity before the attack (drawn from the scenario's seed), so each target
    is a distinct person; the synthetic table is used whole.

    What it means: an excess near 0 says the synthetic data tells an attacker no more about
    the secrets of the people it was trained on than about anyone else's. What it does not
    prove: that the secret cannot be inferred at all (population-level inference is the
    control success, in the details), nor that other auxiliary columns or a better model
    could not do more. The interval's width is set by the smaller side, usually the control
    people: a few hundred of them cannot certify an excess below about 0.05-0.1.
    """

    name: ClassVar[str] = "inference"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        privacy(
            "inference.max.excess",
            Goal.MINIMIZE,
            "inference",
            "attribute inference: the worst secret column's excess",
            no_leak=0.0,
            bounds=(-1, 1),
        ),
        privacy(
            "inference.*.excess",
            Goal.MINIMIZE,
            "inference",
            "share of training people whose secret is guessed, minus unseen people's (0 = no leak)",
            no_leak=0.0,
            bounds=(-1, 1),
        ),
        privacy(
            "inference.*.attack_advantage",
            Goal.MINIMIZE,
            "inference",
            "guessing success beyond random guesses",
            bounds=(-1, 1),
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)
    needs: ClassVar[tuple[Need, ...]] = (Need("secrets", unless="secrets"),)

    def __init__(
        self,
        *,
        secrets: list[str] | None = None,
        aux_cols: list[str] | None = None,
        tolerance: float = 0.05,
        n_attacks: int | None = None,
        memory_mb: float = 256.0,
    ) -> None:
        self.secrets = secrets
        self.aux_cols = aux_cols
        self.tolerance = tolerance
        self.n_attacks = n_attacks
        self.memory_mb = memory_mb

    def _secrets(self, metadata: Metadata) -> list[str]:
        secrets = list(self.secrets) if self.secrets is not None else list(metadata.roles.secrets)
        if not secrets:
            raise ValueError(
                "inference needs at least one secret column: declare `dataset.roles.secrets` "
                "or pass `secrets` in the check's params"
            )
        check_columns(secrets, metadata, "inference secrets")
        if "max" in secrets:
            raise ValueError("inference: a secret column named 'max' clashes with inference.max.excess; rename it")
        return secrets

    def _aux(self, metadata: Metadata, secret: str) -> list[str]:
        if self.aux_cols is not None:
            check_columns(list(self.aux_cols), metadata, "inference aux_cols")
            aux = [c for c in self.aux_cols if c != secret]
        else:
            aux = [c for c in metadata.roles.quasi_identifiers if c != secret]
            if not aux:
                aux = [c for c in metadata.columns if c != secret]
        if not aux:
            raise ValueError(f"inference: no auxiliary column is left to infer {secret!r} from")
        return aux

    def _check_params(self) -> None:
        if not (isinstance(self.tolerance, int | float) and 0 <= self.tolerance < 1):
            raise ValueError(
                "inference: tolerance is a fraction of the secret's interquartile range, in [0, 1); "
                f"got {self.tolerance!r}"
            )
        if self.n_attacks is not None and self.n_attacks < 1:
            raise ValueError(
                f"inference: n_attacks must be a positive number of training targets (or null), got {self.n_attacks}"
            )

    def _reference(
        self,
        ctx: Context,
        train: pd.DataFrame,
        control: pd.DataFrame,
        encoder: GowerEncoder,
        aux: list[str],
        secret: str,
        tol: float | None,
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None:
        """The reference attacker's chance of a right guess for each training and control target (`tied_share`
        on the reference rows, in an order drawn from the seed) and the targets' quasi-identifier clusters
        (`tuple_codes` on `aux`), or None without reference rows. Both read the real tables only, so a run makes
        them once for all its releases (`NeighbourCache.remember`)."""
        reference = reference_rows(ctx)
        if reference is None:
            return None

        def make() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
            order = np.random.default_rng(derive_seed(ctx.seed, self.name, secret, "reference"))
            rows = reference.iloc[order.permutation(len(reference))].reset_index(drop=True)
            hits = tuple(
                tied_share(t, rows, encoder, aux, secret, tol, memory_mb=self.memory_mb) for t in (train, control)
            )
            return hits, tuple(tuple_codes(train, control, columns=aux))  # type: ignore[return-value]

        if ctx.neighbours is None:
            return make()
        real = (ctx.train, ctx.holdout, ctx.reference)
        key = ("inference.reference", *map(id, real), ctx.seed, secret, tuple(aux), tol, self.n_attacks)
        return ctx.neighbours.remember(key, real, make)  # type: ignore[no-any-return]

    def evaluate(self, ctx: Context) -> list[Measurement]:
        self._check_params()
        md = ctx.metadata
        secrets = self._secrets(md)
        data = attack_data(ctx)
        if len(data.train) == 0 or len(data.control) == 0 or len(data.synthetic) == 0:
            raise ValueError("inference: no target left to attack: train, control or synthetic is empty")
        train = data.train
        if self.n_attacks is not None and self.n_attacks < len(train):
            pick = np.random.default_rng(derive_seed(ctx.seed, self.name, "targets"))
            train = train.iloc[np.sort(pick.choice(len(train), self.n_attacks, replace=False))]
        continuous = set(md.continuous)
        out: list[Measurement] = []
        excesses: dict[str, Measurement] = {}
        for secret in secrets:
            aux = self._aux(md, secret)
            rng = np.random.default_rng(derive_seed(ctx.seed, self.name, secret))
            # a random order of the synthetic rows: the search breaks ties by the lower index
            synthetic = data.synthetic.iloc[rng.permutation(len(data.synthetic))].reset_index(drop=True)
            encoder = GowerEncoder(
                numerical=[c for c in aux if c in continuous], categorical=[c for c in aux if c not in continuous]
            ).fit(data.train, data.control)
            regression = secret in continuous
            tol = tolerance_for(data.train[secret], self.tolerance) if regression else None
            hits_train = correct_guesses(
                nearest_secrets(train, synthetic, encoder, aux, secret, self.memory_mb), train[secret], tol
            )
            hits_control = correct_guesses(
                nearest_secrets(data.control, synthetic, encoder, aux, secret, self.memory_mb),
                data.control[secret],
                tol,
            )
            reference = self._reference(ctx, train, data.control, encoder, aux, secret, tol)
            reference_hits, clusters = (None, None) if reference is None else reference
            naive = synthetic[secret].to_numpy()[rng.integers(0, len(synthetic), len(train))]
            hits_naive = correct_guesses(naive, train[secret], tol)
            attack, control, baseline = (
                success_share(hits_train),
                success_share(hits_control),
                success_share(hits_naive),
            )
            details: dict[str, Any] = {
                "secret": secret,
                "regression": regression,
                "aux_cols": aux,
                "tolerance_fraction_of_iqr": float(self.tolerance) if regression else None,
                "tolerance": tol,
                **({"tolerance_days": tol / _NS_PER_DAY} if regression and md.sdtype(secret) == "datetime" else {}),
                **data.details(),
                "n_attacks_requested": self.n_attacks,
                "attack": attack,
                "control": control,
                "baseline": baseline,
                "attack_no_better_than_naive": bool(_rate(baseline) >= _rate(attack)),
                "confidence": ctx.confidence,
            }
            x_t, n_t, x_c, n_c = attack["n_success"], attack["n_targets"], control["n_success"], control["n_targets"]
            plain = (_rate(attack) - _rate(control), newcombe_difference_ci(x_t, n_t, x_c, n_c, ctx.confidence))
            value, ci, adjustment = adjusted_excess(
                (hits_train, hits_control), reference_hits, clusters, plain, ctx.confidence
            )
            excess = Measurement(
                f"inference.{secret}.excess",
                value,
                Goal.MINIMIZE,
                ci=ci,
                baseline=0.0,
                meaning=f"inference of {secret}: success share on training people minus on unseen (control) people",
                details={**details, **adjustment},
            )
            advantage = Measurement(
                f"inference.{secret}.attack_advantage",
                _rate(attack) - _rate(baseline),
                Goal.MINIMIZE,
                ci=newcombe_difference_ci(x_t, n_t, baseline["n_success"], baseline["n_targets"], ctx.confidence),
                baseline=0.0,
                meaning=f"inference of {secret}: success share minus a naive random guess's (<= 0: learned nothing)",
                details=details,
            )
            excesses[secret] = excess
            out += [excess, advantage]
        meaning = "attribute inference: the worst secret column's excess (highest upper bound, its interval)"
        out.append(worst_of("inference.max.excess", excesses, meaning, label="column", summary="columns"))
        return out
