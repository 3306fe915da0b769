"""Membership inference: can an attacker holding the synthetic data tell who was in the training data?

Members are training records (whole entities when the data has an entity column), non-members
are control records no generator saw. Every member is scored (up to a bound) and every
non-member: non-members only calibrate the threshold, and a ROC curve needs no balance.
Each attacker scores every candidate (higher = "more likely a member"):

* ``distance``: minus the Gower distance to the nearest synthetic record (suite.neighbors).
* ``local``: local copying, log d_real(x) - log d_syn(x): how much closer the nearest synthetic
  record is to a candidate than the nearest real record nobody trained on (control and
  reference, the candidate's own records excluded),
  in the spirit of Ward et al.'s Data Plagiarism Index (2024). A near-copy of anyone, isolated or
  not, has a synthetic neighbour far closer than its real ones.
* ``density``: DOMIAS (van Breugel et al., AISTATS 2023): log p_syn(x) - log p_ref(x), kernel
  densities on a whitened numeric encoding, p_ref fitted on real unseen reference records.
* ``shadow``: the shadow-model attack of Stadler, Oprisanu and Troncoso (USENIX Security 2022)
  on the most isolated training records; it refits the generator many times, so it is off by
  default.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from suite.attacks._membership_features import (
    FPR_CANDIDATES,
    MIN_ABOVE_THRESHOLD,
    DensityEncoding,
    ShadowFeatures,
    estimable_fpr,
    frequent_codes,
    kde_log_density,
    roc_summary,
    split_epsilon,
)
from suite.encoding import as_float
from suite.neighbors import Encoded, GowerEncoder, nearest
from suite.registry import checks
from suite.seeding import derive_seed
from suite.stats import N_BOOTSTRAP, wilson_ci
from suite.types import Context, Goal, Measurement, MeasurementSpec, names, privacy

ATTACKERS = ("distance", "density", "local", "shadow")
#: The finer false-positive rate also read (into the excess's details) where the non-members allow it.
LOW_FPR = 0.001
#: Added to both distances of the local attacker (Gower units): an exact copy scores finitely.
LOCAL_EPS = 1e-6


@dataclass(frozen=True)
class Candidates:
    """The members and non-members an attacker scores.

    `rows` holds the candidate records (members first); `unit` gives each row's candidate
    (an entity, or the row itself) and `labels` each candidate's truth (1 = member).
    """

    rows: pd.DataFrame
    unit: np.ndarray
    labels: np.ndarray
    entities: np.ndarray | None  # entity code of each candidate (entity level only)
    overlap_dropped: int  # control entities that also have training rows (members, so not used)
    keys: np.ndarray | None = None  # who each row is: "e:<entity>", or "t:<row>" / "c:<row>" without entities

    @property
    def entity_level(self) -> bool:
        return self.entities is not None

    def details(self) -> dict:
        out = {
            "level": "entity" if self.entity_level else "record",
            "members": int(self.labels.sum()),
            "non_members": int(len(self.labels) - self.labels.sum()),
            "candidate_records": int(len(self.rows)),
        }
        if self.entity_level:
            out["entities"] = int(len(self.labels))
            out["control_entities_also_in_train"] = int(self.overlap_dropped)
        return out


def select_candidates(
    train: pd.DataFrame,
    control: pd.DataFrame,
    rng: np.random.Generator,
    train_entities: pd.Series | None = None,
    control_entities: pd.Series | None = None,
    max_members: int | None = None,
    max_non_members: int | None = None,
) -> Candidates:
    """Every member (train) and every non-member (control), whole entities at a time; a side with
    more than its `max_*` candidates is sampled down to that many.

    With entities, an entity that has rows in train is a member: its control rows (if any) are
    not used as non-members. Without entities every record is its own candidate.
    """

    def pick(pool: np.ndarray, limit: int | None) -> np.ndarray:
        return pool if limit is None or len(pool) <= limit else np.sort(rng.choice(pool, limit, replace=False))

    if train_entities is None or control_entities is None:
        t_rows, c_rows = pick(np.arange(len(train)), max_members), pick(np.arange(len(control)), max_non_members)
        rows = pd.concat([train.iloc[t_rows], control.iloc[c_rows]], ignore_index=True)
        labels = np.r_[np.ones(len(t_rows), dtype=np.int8), np.zeros(len(c_rows), dtype=np.int8)]
        keys = np.array([f"t:{i}" for i in t_rows] + [f"c:{i}" for i in c_rows], dtype=object)
        return Candidates(rows, np.arange(len(labels)), labels, None, 0, keys)
    if len(train_entities) != len(train) or len(control_entities) != len(control):
        raise ValueError("train_entities / holdout_entities must give one entity per row")
    codes = pd.factorize(pd.concat([train_entities, control_entities], ignore_index=True), use_na_sentinel=False)[0]
    t_codes, c_codes = codes[: len(train)], codes[len(train) :]
    members = pd.unique(t_codes)
    outsiders = pd.unique(c_codes)
    in_train = np.isin(outsiders, members)
    outsiders = outsiders[~in_train]
    chosen_m = np.sort(pick(members, max_members))
    chosen_o = np.sort(pick(outsiders, max_non_members))
    t_rows = np.flatnonzero(np.isin(t_codes, chosen_m))
    c_rows = np.flatnonzero(np.isin(c_codes, chosen_o))
    # candidates: the chosen member entities 0..m-1, then the chosen non-member entities m..m+o-1
    m = len(chosen_m)
    unit = np.r_[np.searchsorted(chosen_m, t_codes[t_rows]), m + np.searchsorted(chosen_o, c_codes[c_rows])]
    ents = np.r_[chosen_m, chosen_o]
    rows = pd.concat([train.iloc[t_rows], control.iloc[c_rows]], ignore_index=True)
    labels = np.r_[np.ones(m, dtype=np.int8), np.zeros(len(chosen_o), dtype=np.int8)]
    keys = _entity_keys(pd.concat([train_entities.iloc[t_rows], control_entities.iloc[c_rows]], ignore_index=True))
    return Candidates(rows, unit, labels, ents, int(in_train.sum()), keys)


def _entity_keys(entities: pd.Series) -> np.ndarray:
    return ("e:" + entities.astype(str)).to_numpy(dtype=object)


def unit_max(scores: np.ndarray, unit: np.ndarray, n_units: int) -> np.ndarray:
    """Each candidate's score: the highest score of its records (the most exposed record)."""
    out = np.full(n_units, -np.inf)
    np.maximum.at(out, unit, scores)
    return out


def _halve(
    frame: pd.DataFrame, entities: pd.Series | None, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series | None]:
    """Split the control in two by entity (or row): (reference half, scored half, its entities)."""
    groups = np.arange(len(frame)) if entities is None else pd.factorize(entities, use_na_sentinel=False)[0]
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    first = np.zeros(n_groups, dtype=bool)
    first[rng.permutation(n_groups)[: n_groups // 2]] = True
    ref_rows, scored_rows = np.flatnonzero(first[groups]), np.flatnonzero(~first[groups])
    scored_ent = None if entities is None else entities.iloc[scored_rows].reset_index(drop=True)
    return (
        frame.iloc[ref_rows].reset_index(drop=True),
        frame.iloc[scored_rows].reset_index(drop=True),
        scored_ent,
    )


def _subsample(frame: pd.DataFrame, max_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), max_rows, replace=False))]


@checks.register("membership")
class MembershipAttack:
    """Membership inference: how well can someone holding the synthetic data pick out who was trained on?

    Each attacker ranks every training record (members, up to `max_members`) and every unseen
    control record (non-members); with an entity column the candidates are people, scored by
    their most exposed record. `auc` is the chance that a random member ranks above a random
    non-member (0.5 = no better than a coin, 1 = every member exposed). `excess_at_fpr` is the
    share of members the attacker finds while wrongly accusing a share `fpr` of non-members,
    minus `fpr` (0 = chance, whatever the rate): the number that matters for the few most
    exposed people. It is read at `fpr` (1%) when at least 10 non-members sit above the
    threshold, else at the lowest estimable rate of 0.1%, 1%, 5%, 10% (said in `details`);
    with fewer than 100 non-members its interval is every possible value (`not shown safe`).
    `epsilon_lower` (not gated) is the empirical epsilon lower bound the attack shows, from
    Clopper-Pearson bounds of TPR and FPR at a threshold chosen on a separate half (0 = nothing shown).
    `shadow.success` is the accuracy of a model trained to tell, from the synthetic data alone,
    whether one isolated record was in the training data (0.5 = chance).

    What they do not prove: an AUC near 0.5 says these attackers fail on this data, not that
    every attacker would; a stronger or better informed one may still succeed, and a
    score near 0.5 can hide a few exposed outliers (read the excess at low FPR and the shadow
    attack). Intervals are bootstraps over the people scored, members and non-members
    resampled jointly; the shadow interval treats each target as one unit.
    """

    name: ClassVar[str] = "membership"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        privacy(
            "membership.*.auc",
            Goal.MINIMIZE,
            "membership",
            "telling training people from unseen people (0.5 = chance, 1 = all exposed)",
            bounds=(0, 1),
        ),
        privacy(
            "membership.*.excess_at_fpr",
            Goal.MINIMIZE,
            "membership",
            "training people found beyond the share of unseen people accused (0 = chance)",
            bounds=(-1, 1),
        ),
        privacy(
            "membership.*.epsilon_lower",
            Goal.MINIMIZE,
            "membership",
            "empirical differential-privacy epsilon lower bound the attack shows (0 = nothing shown)",
            bounds=(0, float("inf")),
        ),
        privacy(
            "membership.shadow.success",
            Goal.MINIMIZE,
            "membership",
            "held-out accuracy of the shadow-model attack (0.5 = chance)",
            bounds=(0, 1),
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)

    def __init__(
        self,
        *,
        attackers: tuple[str, ...] = ("distance", "density", "local"),
        fpr: float = 0.01,
        max_fit_rows: int = 20_000,
        max_members: int = 100_000,
        max_non_members: int = 100_000,
        density_bandwidth: float = 0.05,
        reference_bandwidth: float = 0.2,
        shadow_targets: int = 5,
        shadow_sets: int = 10,
        shadow_size: int = 1000,
        memory_mb: float = 256.0,
    ) -> None:
        self.attackers = attackers
        self.fpr = fpr
        self.max_fit_rows = max_fit_rows
        self.max_members = max_members
        self.max_non_members = max_non_members
        self.density_bandwidth = density_bandwidth
        self.reference_bandwidth = reference_bandwidth
        self.shadow_targets = shadow_targets
        self.shadow_sets = shadow_sets
        self.shadow_size = shadow_size
        self.memory_mb = memory_mb

    # ------------------------------------------------------------------ entry point
    def evaluate(self, ctx: Context) -> list[Measurement]:
        attackers = tuple(dict.fromkeys(self.attackers))
        unknown = [a for a in attackers if a not in ATTACKERS]
        if unknown or not attackers:
            raise ValueError(f"membership: unknown attacker(s) {unknown}; choose among {list(ATTACKERS)}")
        if not 0.0 < self.fpr <= max(FPR_CANDIDATES):
            raise ValueError(f"membership: fpr must be in (0, {max(FPR_CANDIDATES)}], got {self.fpr}")
        if min(self.max_members, self.max_non_members) < 1:
            raise ValueError("membership: max_members and max_non_members must be >= 1")
        if "shadow" in attackers:
            if ctx.fit_generator is None:
                raise ValueError(
                    "membership: the shadow attacker refits the generator, but this context has no fit_generator; "
                    "run it through the suite's runner or drop 'shadow' from attackers"
                )
            if self.shadow_sets < 2 or self.shadow_targets < 2 or self.shadow_size < 2:
                raise ValueError(
                    "membership: shadow_sets, shadow_targets and shadow_size must be >= 2 "
                    "(the interval treats each target as one unit: one target gives none)"
                )
        out: list[Measurement] = []
        for attacker in attackers:
            start = time.perf_counter()
            if attacker == "shadow":
                out.append(self._shadow(ctx, start))
            else:
                out += self._ranking(attacker, ctx, start)
        return out

    # ------------------------------------------------------------------ shared pieces
    def _rng(self, ctx: Context, purpose: str) -> np.random.Generator:
        return np.random.default_rng(derive_seed(ctx.seed, "membership", purpose))

    def _gower(self, ctx: Context) -> GowerEncoder:
        md = ctx.metadata
        real = [f for f in (ctx.train, ctx.holdout, ctx.reference) if f is not None]
        return GowerEncoder(numerical=md.continuous, categorical=md.discrete).fit(*real)

    def _ranking(self, attacker: str, ctx: Context, start: float) -> list[Measurement]:
        details: dict = {"attacker": attacker}
        control, control_ent, reference = ctx.holdout, ctx.holdout_entities, ctx.reference
        if attacker == "local":
            details["reference"] = (
                "the real records nobody trained on (control and reference), the person's own excluded"
            )
        elif attacker == "density" and reference is None:
            reference, control, control_ent = _halve(control, control_ent, self._rng(ctx, "halve"))
            details["reference"] = "half of the control (no reference data given); the other half is scored"
        elif attacker == "density":
            details["reference"] = "the reference half of the holdout"
        cands = select_candidates(
            ctx.train,
            control,
            self._rng(ctx, "candidates"),
            ctx.train_entities,
            control_ent,
            self.max_members,
            self.max_non_members,
        )
        n_non = int(len(cands.labels) - cands.labels.sum())
        fpr = estimable_fpr(n_non, self.fpr)
        if attacker == "distance":
            rows = self._distance_scores(ctx, cands, details)
        elif attacker == "local":
            rows = self._local_scores(ctx, cands, details)
        else:
            rows = self._density_scores(ctx, cands, reference, details)
        scores = unit_max(rows, cands.unit, len(cands.labels))
        fine = estimable_fpr(n_non, LOW_FPR) == LOW_FPR and fpr != LOW_FPR  # the 0.1% reading, in details
        summary = roc_summary(
            scores,
            cands.labels,
            alphas=() if fpr is None else (fpr, LOW_FPR) if fine else (fpr,),
            rng=self._rng(ctx, f"bootstrap.{attacker}"),
            confidence=ctx.confidence,
            n_boot=N_BOOTSTRAP,
        )
        details.update(cands.details())
        details["bootstrap_unit"] = "person" if cands.entity_level else "record"
        details["seconds"] = round(time.perf_counter() - start, 3)
        unit = "people" if cands.entity_level else "records"
        if attacker == "local" and fpr is not None:
            details["exposed"] = exposed_summary(scores, cands, fpr, ctx)
        prefix = f"membership.{attacker}"
        auc = Measurement(
            f"{prefix}.auc",
            summary["point"]["auc"],
            Goal.MINIMIZE,
            ci=summary["ci"]["auc"],
            baseline=0.5,
            details={**details, "roc": summary["roc"]},
            meaning=(
                f"ROC AUC of the {attacker} attacker telling training {unit} from unseen ones "
                "(0.5 = chance, 1 = every member exposed)"
            ),
        )
        meaning = (
            f"share of training {unit} the {attacker} attacker finds beyond its false-alarm rate "
            "(TPR - FPR at a low FPR; 0 = chance, 1 = every member exposed)"
        )
        excess = excess_measurement(f"{prefix}.excess_at_fpr", fpr, self.fpr, summary, details, meaning)
        return [auc, excess, self._epsilon(prefix, scores, cands, ctx, details)]

    def _epsilon(self, prefix: str, scores: np.ndarray, cands: Candidates, ctx: Context, details: dict) -> Measurement:
        found = split_epsilon(scores, cands.labels, self._rng(ctx, f"epsilon.{prefix}"), ctx.confidence)
        value = found.pop("value")
        level = (1.0 + ctx.confidence) / 2.0
        found["method"] = (
            "threshold chosen on a random half of members and non-members (the highest bound over the "
            "non-members' quantiles), the bound computed on the other half, so the search does not inflate it; "
            f"Clopper-Pearson bounds, each one-sided at {level:.3g} (two-sided {ctx.confidence:.3g})"
        )
        keep = ("attacker", "level", "members", "non_members")
        return Measurement(
            f"{prefix}.epsilon_lower",
            value,
            Goal.MINIMIZE,
            baseline=0.0,
            details={**{k: details[k] for k in keep if k in details}, "epsilon": found},
            meaning=(
                "empirical epsilon lower bound: max(log(TPR/FPR), log((1-FPR)/(1-TPR))) at the attack's best "
                "threshold, TPR and FPR at their confidence bounds (0 = nothing shown; ungated)"
            ),
        )

    # ------------------------------------------------------------------ attackers
    def _distance_scores(self, ctx: Context, cands: Candidates, details: dict) -> np.ndarray:
        encoder = self._gower(ctx)
        dist = nearest(encoder.transform(cands.rows), encoder.transform(ctx.synthetic), memory_mb=self.memory_mb)[0]
        details["synthetic_records"] = int(len(ctx.synthetic))
        return -dist[:, 0]

    def _local_scores(self, ctx: Context, cands: Candidates, details: dict) -> np.ndarray:
        """log(d_real + eps) - log(d_syn + eps) per candidate record: d_syn to the nearest synthetic record,
        d_real to the nearest real record nobody trained on (control and reference rows) that is not the
        person's own. Members and non-members look into the same pool (less one person's rows), which
        holds no training row and so no source of a copy: the score means the same on both sides."""
        encoder = self._gower(ctx)
        query = encoder.transform(cands.rows)
        d_syn = nearest(query, encoder.transform(ctx.synthetic), memory_mb=self.memory_mb)[0][:, 0]
        parts = [(ctx.holdout, ctx.holdout_entities, "c")]
        if ctx.reference is not None:
            parts.append((ctx.reference, ctx.reference_entities, "r"))
        pool = pd.concat([frame for frame, _, _ in parts], ignore_index=True)
        pool_keys = np.concatenate(
            [
                _entity_keys(ents) if ents is not None else np.array([f"{tag}:{i}" for i in range(len(frame))], object)
                for frame, ents, tag in parts
            ]
        )
        codes = pd.factorize(np.concatenate([cands.keys, pool_keys]), use_na_sentinel=False)[0]
        own, pool_codes = codes[: len(cands.keys)], codes[len(cands.keys) :]
        k = int(min(len(pool), np.bincount(pool_codes).max() + 1, 64))
        dist, idx = nearest(query, encoder.transform(pool), k=k, memory_mb=self.memory_mb)
        other = pool_codes[idx] != own[:, None]
        first = np.argmax(other, axis=1)  # the nearest record of someone else (k exceeds any person's rows)
        d_real = np.where(other.any(axis=1), dist[np.arange(len(dist)), first], dist[:, -1])
        details.update(synthetic_records=int(len(ctx.synthetic)), real_pool_records=int(len(pool)), eps=LOCAL_EPS)
        return np.log(d_real + LOCAL_EPS) - np.log(d_syn + LOCAL_EPS)

    def _density_scores(self, ctx: Context, cands: Candidates, reference: pd.DataFrame, details: dict) -> np.ndarray:
        md = ctx.metadata
        rng = self._rng(ctx, "density")
        real = pd.concat([f for f in (ctx.train, ctx.holdout, ctx.reference) if f is not None], ignore_index=True)
        encoding = DensityEncoding(numerical=md.continuous, categorical=md.discrete)
        encoding.fit(_subsample(real, self.max_fit_rows, rng))
        synthetic = _subsample(ctx.synthetic, self.max_fit_rows, rng)
        reference = _subsample(reference, self.max_fit_rows, rng)
        query = encoding.transform(cands.rows)
        log_syn = kde_log_density(encoding.transform(synthetic), query, self.density_bandwidth)
        log_ref = kde_log_density(encoding.transform(reference), query, self.reference_bandwidth)
        details.update(
            dims=int(encoding.axes_.shape[1]),
            synthetic_fit_records=int(len(synthetic)),
            reference_fit_records=int(len(reference)),
            bandwidths={"synthetic": self.density_bandwidth, "reference": self.reference_bandwidth},
        )
        return log_syn - log_ref

    def _shadow(self, ctx: Context, start: float) -> Measurement:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.model_selection import GroupKFold

        k_targets = min(int(self.shadow_targets), len(ctx.train))
        n_sets = int(self.shadow_sets)
        pool = pd.concat([f for f in (ctx.reference, ctx.holdout) if f is not None], ignore_index=True)
        size = min(int(self.shadow_size), len(pool))
        fits = 2 * k_targets * n_sets
        print(
            f"membership.shadow: {fits} generator fits ({k_targets} targets x 2 x {n_sets} sets) "
            f"on {size} records each, then {fits} samples of {size} records",
            file=sys.stderr,
            flush=True,
        )
        encoder = self._gower(ctx)
        train_enc = encoder.transform(ctx.train)
        iso = nearest(train_enc, train_enc, k=1, exclude_self=True, memory_mb=self.memory_mb)[0][:, 0]
        targets = np.argsort(-iso, kind="stable")[:k_targets]
        codes = frequent_codes(encoder.transform(pool))
        featurise = ShadowFeatures(codes=codes)
        release = encoder.transform(ctx.synthetic)
        rng = self._rng(ctx, "shadow")
        chunks = max(1, min(10, len(ctx.synthetic) // size))
        shuffled = rng.permutation(len(ctx.synthetic))[: chunks * size]
        release_parts = [np.sort(part) for part in np.array_split(shuffled, chunks)]

        per_target, correct = [], []
        for t_i, target in enumerate(targets):
            target_rows = _entity_rows(ctx, int(target), max(1, size // 2))
            target_enc = _take(train_enc, np.array([target]))
            radius = float(max(iso[target], 1e-12))
            feats, labels, groups = [], [], []
            for s in range(n_sets):
                pick = rng.choice(len(pool), size, replace=False)  # random order: "in" swaps out the last rows
                base = pool.iloc[np.sort(pick)]
                keep = np.sort(pick[: size - len(target_rows)])
                with_target = pd.concat([pool.iloc[keep], target_rows], ignore_index=True)
                out_model = ctx.fit_generator(base.reset_index(drop=True))
                in_model = ctx.fit_generator(with_target)
                for label, model in ((1, in_model), (0, out_model)):
                    seed = derive_seed(ctx.seed, "membership.shadow", t_i, s, label)
                    synthetic = model.sample(size, seed=seed)
                    feats.append(featurise(target_enc, encoder.transform(synthetic), radius, self.memory_mb))
                    labels.append(label)
                    groups.append(s)
            X, y, g = np.vstack(feats), np.array(labels), np.array(groups)
            rf_seed = derive_seed(ctx.seed, "membership.shadow.rf", t_i)
            classifier = lambda seed=rf_seed: RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1)
            p_in = np.empty(len(y))
            for fit_idx, test_idx in GroupKFold(n_splits=min(5, n_sets)).split(X, y, g):
                p_in[test_idx] = _p_in(classifier().fit(X[fit_idx], y[fit_idx]), X[test_idx])
            right = np.where(p_in == 0.5, 0.5, ((p_in > 0.5) == (y == 1)).astype(float))
            correct.append(right)
            final = classifier().fit(X, y)
            release_x = [featurise(target_enc, _take(release, part), radius, self.memory_mb) for part in release_parts]
            on_release = _p_in(final, np.vstack(release_x))
            per_target.append(
                {
                    "target_index": int(target),
                    "held_out_accuracy": float(right.mean()),
                    "p_in_on_release": float(on_release.mean()),
                    "release_chunks_called_in": int((on_release > 0.5).sum()),
                }
            )
        trials = np.concatenate(correct)
        success = float(trials.mean())  # every target has 2 x n_sets predictions: the mean of the targets' means
        details = {
            "attacker": "shadow",
            "targets": per_target,
            "target_rule": "the training records farthest (Gower) from every other training record",
            "generator_fits": fits,
            "shadow_sets": n_sets,
            "shadow_size": size,
            "held_out_predictions": int(len(trials)),
            "interval": (
                f"Student t over the {len(per_target)} targets' accuracies (one target, one unit), "
                "never narrower than the Wilson interval of all predictions"
            ),
            "cross_validation": f"GroupKFold({min(5, n_sets)}) over shadow sets (in/out pairs kept together)",
            "release_chunks": chunks,
            "max_target_accuracy": float(max(t["held_out_accuracy"] for t in per_target)),
            "seconds": round(time.perf_counter() - start, 3),
        }
        return Measurement(
            "membership.shadow.success",
            success,
            Goal.MINIMIZE,
            ci=_cluster_ci(correct, ctx.confidence),
            baseline=0.5,
            details=details,
            meaning=(
                "held-out accuracy of shadow models telling whether an isolated record was trained on "
                "(0.5 = chance, 1 = its presence always shows)"
            ),
        )


def excess_measurement(
    name: str, fpr: float | None, requested: float, summary: dict, details: dict, meaning: str
) -> Measurement:
    """The excess exposure TPR - FPR at `fpr` (from `estimable_fpr`) as a gated measurement, its interval
    the TPR's joint bootstrap from `roc_summary`; an error measurement (it blocks) when `fpr` is None.
    `details` must give the numbers of `members` and `non_members`."""
    n_non = details["non_members"]
    details = {**details, "fpr_requested": requested, "min_non_members_above_threshold": MIN_ABOVE_THRESHOLD}
    if fpr is None:  # too few non-members to estimate any rate: the data cannot certify the gate
        worst = max(FPR_CANDIDATES)
        point = summary.get("point", {}).get(worst)
        details["fpr_note"] = (
            f"{n_non} non-members cannot estimate a true-positive rate at any false-positive rate up to "
            f"{worst:.0%}: it needs {MIN_ABOVE_THRESHOLD / worst:.0f} ({MIN_ABOVE_THRESHOLD} above the threshold); "
            "the interval is every possible value, so the gate is `not shown safe`: give the split a larger holdout"
        )
        details.update(fpr=worst, tpr=point)
        value = (point - worst) if point is not None and np.isfinite(point) else 0.0
        return Measurement(
            name, value, Goal.MINIMIZE, ci=(-worst, 1.0 - worst), baseline=0.0, details=details, meaning=meaning
        )
    tpr, (low, high) = summary["point"][fpr], summary["ci"][fpr]
    details.update(
        fpr=fpr,
        tpr=tpr,
        tpr_ci=[low, high],
        non_members_above_threshold=fpr * n_non,
        interval="members and non-members bootstrapped jointly; the threshold re-estimated in each resample",
    )
    if LOW_FPR in summary["point"] and fpr != LOW_FPR:
        t01, (l01, h01) = summary["point"][LOW_FPR], summary["ci"][LOW_FPR]
        details["excess_at_0_1pct"] = {
            "fpr": LOW_FPR,
            "tpr": t01,
            "value": t01 - LOW_FPR,
            "ci": [l01 - LOW_FPR, h01 - LOW_FPR],
        }
    if fpr != requested:
        details["fpr_note"] = (
            f"{n_non} non-members: {requested:g} leaves fewer than {MIN_ABOVE_THRESHOLD} above the threshold; "
            f"read at {fpr:g}, the lowest estimable rate"
        )
    return Measurement(
        name, tpr - fpr, Goal.MINIMIZE, ci=(low - fpr, high - fpr), baseline=0.0, details=details, meaning=meaning
    )


def exposed_summary(scores: np.ndarray, cands: Candidates, fpr: float, ctx: Context) -> dict:
    """How many members sit above the non-members' (1 - fpr) quantile beyond the fpr x members a
    chance attacker would flag, and which columns set those members apart from the other members:
    per column a two-sample statistic (Kolmogorov-Smirnov for numbers, total variation for
    categories), never a row or value. A category level is named only when at least `ctx.min_count`
    flagged members and `ctx.min_count` real rows hold it; with fewer than `ctx.min_count` flagged
    members no column is described."""
    from scipy.stats import ks_2samp

    labels = cands.labels.astype(bool)
    threshold = float(np.quantile(scores[~labels], 1.0 - fpr, method="higher"))
    flagged = labels & (scores > threshold)
    n_members, n_flagged = int(labels.sum()), int(flagged.sum())
    out: dict = {
        "fpr": fpr,
        "members_above_threshold": n_flagged,
        "expected_by_chance": round(fpr * n_members, 1),
        "exposed_beyond_chance": max(0, int(round(n_flagged - fpr * n_members))),
        "min_count": ctx.min_count,
    }
    if n_flagged < max(ctx.min_count, 1) or n_flagged == n_members:
        out["columns"] = "not described: fewer flagged members than min_count (or all of them)"
        return out
    flagged_rows = np.isin(cands.unit, np.flatnonzero(flagged))
    member_rows = cands.unit < n_members
    exposed, others = cands.rows[flagged_rows], cands.rows[member_rows & ~flagged_rows]
    real = pd.concat([f for f in (ctx.train, ctx.holdout) if f is not None], ignore_index=True)
    columns: dict = {}
    for col in cands.rows.columns:
        if col in ctx.metadata.continuous:
            a, b = as_float(exposed[col]), as_float(others[col])
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            if len(a) and len(b):
                columns[col] = {
                    "statistic": "ks",
                    "value": round(float(ks_2samp(a, b).statistic), 3),
                    "exposed_median_higher": bool(np.median(a) > np.median(b)),
                }
            continue
        counts = _levels(exposed[col]).value_counts()
        diff = (counts / counts.sum()).subtract(_levels(others[col]).value_counts(normalize=True), fill_value=0.0)
        real_counts = _levels(real[col]).value_counts()
        entry: dict = {"statistic": "total_variation", "value": round(float(diff.abs().sum() / 2.0), 3)}
        shown = [
            v
            for v in diff.sort_values(ascending=False).index
            if diff[v] > 0 and counts.get(v, 0) >= ctx.min_count and real_counts.get(v, 0) >= ctx.min_count
        ]
        if shown:
            entry["over_represented"] = str(shown[0])
        columns[col] = entry
    out["columns"] = dict(sorted(columns.items(), key=lambda kv: -kv[1]["value"]))
    return out


def _levels(values: pd.Series) -> pd.Series:
    """A column's values as text, missing as a level of its own."""
    return values.astype(str).where(values.notna(), "(missing)")


def _entity_rows(ctx: Context, target: int, limit: int) -> pd.DataFrame:
    """The target record, or the training records of its entity (the person is in or out), at most `limit`."""
    if ctx.train_entities is None:
        return ctx.train.iloc[[target]]
    rows = np.flatnonzero((ctx.train_entities == ctx.train_entities.iloc[target]).to_numpy())
    return ctx.train.iloc[np.r_[target, rows[rows != target]][:limit]]


def _cluster_ci(per_unit: list[np.ndarray], confidence: float) -> tuple[float, float]:
    """Interval of the mean accuracy when each unit's (a shadow target's) predictions are correlated:
    Student t over the units' means with k - 1 degrees of freedom (valid for the few units a shadow
    attack affords, where a bootstrap over five units is too narrow), widened to hold the Wilson
    interval of all predictions (k targets that happen to agree do not make it narrower); in [0, 1]."""
    from scipy import stats

    means = np.array([float(np.mean(u)) for u in per_unit])
    trials = np.concatenate(per_unit)
    low, high = wilson_ci(float(trials.sum()), len(trials), confidence)  # type: ignore[arg-type]
    if np.ptp(means) > 0.0:
        t_low, t_high = stats.ttest_1samp(means, 0.0).confidence_interval(confidence)
        low, high = min(low, float(t_low)), max(high, float(t_high))
    return float(max(0.0, low)), float(min(1.0, high))


def _take(encoded: Encoded, idx: np.ndarray) -> Encoded:
    return Encoded(numerical=encoded.numerical[idx], categorical=encoded.categorical[idx])


def _p_in(model, X: np.ndarray) -> np.ndarray:
    """P(label 1) from a fitted classifier, also when it saw one class only."""
    proba = model.predict_proba(X)
    classes = list(model.classes_)
    return proba[:, classes.index(1)] if 1 in classes else np.zeros(len(X))
