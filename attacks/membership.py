"""Membership inference: can an attacker holding the synthetic data tell who was in the training data?

Members are training records (whole entities when the data has an entity column), non-members
are control records no generator saw. Every member is scored (up to a bound) and every
non-member: non-members only calibrate the threshold, and a ROC curve needs no balance.
Each attacker scores every candidate (higher = "more likely a member"):

* ``distance``: minus the Gower distance to the nearest synthetic record (suite.neighbors).
* ``local``: local copying, log d_real(x) - log d_syn(x): how much closer the nearest synthetic
  record is to a candidate than the nearest control record (real, never trained on, never
  released by the `holdout` yardstick; the candidate's own records excluded),
  in the spirit of Ward et al.'s Data Plagiarism Index (2024). A near-copy of anyone, isolated or
  not, has a synthetic neighbour far closer than its real ones.
* ``isolated``: the local score, judged only among the people the real data leaves most isolated
  (the 10% farthest from their nearest control records, as many more as 100 non-members need;
  members and non-members chosen by the same rule): the people a generator memorises first
  (Stadler et al. 2022; Meeus et al. 2023). A leak of a few isolated people is a few percent of
  everyone but a large share of them.
* ``density``: DOMIAS (van Breugel et al., AISTATS 2023): log p_syn(x) - log p_ref(x), kernel
  densities on a whitened numeric encoding, p_ref fitted on real unseen reference records.

The shadow-model attack, which refits the generator, is the `shadow` check (attacks/shadow.py).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from suite.attacks._membership_features import (
    DensityEncoding,
    auc_summary,
    break_ties,
    kde_log_density,
    label_slots,
    split_epsilon,
    tail_excess,
)
from suite.encoding import as_float
from suite.neighbors import Encoded, GowerEncoder, NeighbourCache, cached_nearest, first_present
from suite.registry import checks
from suite.seeding import derive_seed
from suite.stats import N_BOOTSTRAP
from suite.types import Context, Goal, Measurement, MeasurementSpec, names, privacy

ATTACKERS = ("distance", "density", "local", "isolated")
#: The finer false-positive rate also read (into the excess's details) where the non-members allow it.
LOW_FPR = 0.001
#: The coarsest false-positive rate the excess may be read at (the MIDST challenge's operating point).
MAX_FPR = 0.1
#: Added to both distances of the local attacker (Gower units): an exact copy scores finitely.
LOCAL_EPS = 1e-6
#: Control neighbours the local attacker keeps past a person's own rows, for the bootstrap that resamples the control.
LOCAL_SPARE = 8
#: The isolated attacker's group: this share of the candidates farthest from the control, at least
#: ISOLATED_MIN_NON_MEMBERS non-members (the fewest that estimate a rate at the coarsest FPR).
ISOLATED_SHARE = 0.1
ISOLATED_MIN_NON_MEMBERS = 100
#: Isolation: the mean distance to this many nearest control records of other people.
ISOLATION_K = 5


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

    def subset(self, chosen: np.ndarray) -> Candidates:
        """The candidates `chosen` (sorted unit numbers), renumbered in order, members still first."""
        rows = np.flatnonzero(np.isin(self.unit, chosen))
        return Candidates(
            self.rows.iloc[rows].reset_index(drop=True),
            np.searchsorted(chosen, self.unit[rows]),
            self.labels[chosen],
            None if self.entities is None else self.entities[chosen],
            self.overlap_dropped,
            None if self.keys is None else self.keys[rows],
        )

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
    exposed people. It is read at `fpr` (1%) whatever the number of non-members, at their k-th highest
    score (k >= 1), with exact bounds (`tail_excess`): the false-positive rate of that order statistic is
    Beta-distributed, the members above it binomial, so no bootstrap quantile is needed.
    `epsilon_lower` (not gated) is the empirical epsilon lower bound the attack shows, from
    Clopper-Pearson bounds of TPR and FPR at a threshold chosen on a separate half (0 = nothing shown).

    What they do not prove: an AUC near 0.5 says these attackers fail on this data, not that
    every attacker would; a stronger or better informed one may still succeed, and a
    score near 0.5 can hide a few exposed outliers (read the excess at low FPR and the `shadow`
    check). An AUC's interval is DeLong's for scores fixed before any resample (distance, density), a
    bootstrap resampling members and non-members jointly for the local attackers, whose scores depend on
    the control itself.
    """

    name: ClassVar[str] = "membership"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        privacy(
            "membership.*.auc",
            Goal.MINIMIZE,
            "membership",
            "telling training people from unseen people (0.5 = chance, 1 = all exposed)",
            no_leak=0.5,
            bounds=(0, 1),
        ),
        privacy(
            "membership.*.excess_at_fpr",
            Goal.MINIMIZE,
            "membership",
            "training people found beyond the share of unseen people accused (0 = chance)",
            no_leak=0.0,
            bounds=(-1, 1),
            worst_case=True,  # a low false-positive rate: the few most exposed people
        ),
        privacy(
            "membership.*.epsilon_lower",
            Goal.MINIMIZE,
            "membership",
            "empirical differential-privacy epsilon lower bound the attack shows (0 = nothing shown)",
            no_leak=0.0,
            bounds=(0, float("inf")),
            worst_case=True,
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)

    def __init__(
        self,
        *,
        attackers: tuple[str, ...] = ("distance", "density", "local", "isolated"),
        fpr: float = 0.01,
        max_fit_rows: int = 20_000,
        max_members: int = 100_000,
        max_non_members: int = 100_000,
        density_bandwidth: float = 0.05,
        reference_bandwidth: float = 0.2,
        memory_mb: float = 256.0,
    ) -> None:
        self.attackers = attackers
        self.fpr = fpr
        self.max_fit_rows = max_fit_rows
        self.max_members = max_members
        self.max_non_members = max_non_members
        self.density_bandwidth = density_bandwidth
        self.reference_bandwidth = reference_bandwidth
        self.memory_mb = memory_mb

    # ------------------------------------------------------------------ entry point
    def evaluate(self, ctx: Context) -> list[Measurement]:
        attackers = tuple(dict.fromkeys(self.attackers))
        if "shadow" in attackers:
            raise ValueError(
                "membership: the shadow attacker is now the `shadow` check (attacks/shadow.py); "
                "drop 'shadow' from attackers and list `shadow` under checks"
            )
        unknown = [a for a in attackers if a not in ATTACKERS]
        if unknown or not attackers:
            raise ValueError(f"membership: unknown attacker(s) {unknown}; choose among {list(ATTACKERS)}")
        if not 0.0 < self.fpr <= MAX_FPR:
            raise ValueError(f"membership: fpr must be in (0, {MAX_FPR}], got {self.fpr}")
        if min(self.max_members, self.max_non_members) < 1:
            raise ValueError("membership: max_members and max_non_members must be >= 1")
        if ctx.neighbours is None:  # the attackers' common search (candidates to synthetic rows) is done once
            ctx = replace(ctx, neighbours=NeighbourCache())
        out: list[Measurement] = []
        shared: dict = {}  # the candidates and their encoding, drawn and computed once for all attackers
        for attacker in attackers:
            start = time.perf_counter()
            out += self._ranking(attacker, ctx, start, shared)
        return out

    # ------------------------------------------------------------------ shared pieces
    def _rng(self, ctx: Context, purpose: str) -> np.random.Generator:
        return np.random.default_rng(derive_seed(ctx.seed, "membership", purpose))

    def _gower(self, ctx: Context) -> GowerEncoder:
        md = ctx.metadata
        real = [f for f in (ctx.train, ctx.holdout, ctx.reference) if f is not None]
        return GowerEncoder(numerical=md.continuous, categorical=md.discrete).fit(*real)

    def _ranking(self, attacker: str, ctx: Context, start: float, shared: dict | None = None) -> list[Measurement]:
        shared = {} if shared is None else shared
        details: dict = {"attacker": attacker}
        control, control_ent, reference = ctx.holdout, ctx.holdout_entities, ctx.reference
        halved = attacker == "density" and reference is None
        if attacker in ("local", "isolated"):
            details["reference"] = (
                "the control records (real, never trained on, not released by the holdout yardstick), "
                "the person's own excluded"
            )
        elif halved:
            reference, control, control_ent = _halve(control, control_ent, self._rng(ctx, "halve"))
            details["reference"] = "half of the control (no reference data given); the other half is scored"
        elif attacker == "density":
            details["reference"] = "the reference half of the holdout"
        key = "candidates.halved" if halved else "candidates"
        if key not in shared:  # the same seed gives every attacker the same candidates: draw them once

            def draw() -> Candidates:
                rng = self._rng(ctx, "candidates")
                return select_candidates(
                    ctx.train, control, rng, ctx.train_entities, control_ent, self.max_members, self.max_non_members
                )

            tables = (ctx.train, control, ctx.train_entities, control_ent)
            # the real tables alone decide the draw: the run's cache keeps it for every release (not when halved:
            # the halves are new tables each time)
            memo = ("membership.candidates", *map(id, tables), ctx.seed, self.max_members, self.max_non_members)
            shared[key] = draw() if ctx.neighbours is None or halved else ctx.neighbours.remember(memo, tables, draw)
        cands = shared[key]
        rescore = None
        if attacker == "distance":
            rows = self._distance_scores(ctx, cands, details, shared)
        elif attacker in ("local", "isolated"):
            if "local" not in shared:  # one search and one set of distances for both
                shared["local"] = self._local_scores(ctx, cands, shared)
            local = shared["local"]
            details.update(
                synthetic_records=int(len(ctx.synthetic)), real_pool_records=int(len(ctx.holdout)), eps=LOCAL_EPS
            )
            details["interval_real_side"] = (
                "the AUC's bootstrap resamples the control with the non-members (they are the same people): a "
                "candidate whose nearest control record a resample drops is scored against the next one"
            )
            if attacker == "isolated":
                chosen = isolated_units(local, cands, details)
                local = local.subset(np.isin(cands.unit, chosen))
                cands = cands.subset(chosen)
            rows = local.scores()
            rescore = local.rescorer(cands, self._rng(ctx, f"bootstrap.{attacker}.control"))
        elif attacker == "density":
            rows = self._density_scores(ctx, cands, reference, details)
        scores = unit_max(rows, cands.unit, len(cands.labels))
        summary = auc_summary(
            scores,
            cands.labels,
            rng=self._rng(ctx, f"bootstrap.{attacker}"),
            confidence=ctx.confidence,
            n_boot=N_BOOTSTRAP,
            rescore=rescore,
        )
        details.update(cands.details())
        details["interval_unit"] = "person" if cands.entity_level else "record"
        details["seconds"] = round(time.perf_counter() - start, 3)
        unit = "people" if cands.entity_level else "records"
        prefix = f"membership.{attacker}"
        auc = Measurement(
            f"{prefix}.auc",
            summary["point"]["auc"],
            Goal.MINIMIZE,
            ci=summary["ci"]["auc"],
            baseline=0.5,
            details={**details, "roc": summary["roc"], "interval": summary["interval"]},
            meaning=(
                f"ROC AUC of the {attacker} attacker telling training {unit} from unseen ones "
                "(0.5 = chance, 1 = every member exposed)"
            ),
        )
        among = "the most isolated " if attacker == "isolated" else ""
        meaning = (
            f"share of {among}training {unit} the {'local' if among else attacker} attacker finds beyond its "
            f"false-alarm rate among {among}unseen {unit} (TPR - FPR at a low FPR; 0 = chance, 1 = all exposed)"
        )
        excess = exact_excess(f"{prefix}.excess_at_fpr", scores, cands, self.fpr, ctx, details, meaning)
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
    def _to_synthetic(self, ctx: Context, cands: Candidates, shared: dict) -> tuple[GowerEncoder, Encoded, np.ndarray]:
        """The Gower encoder, the candidates' encoding and each candidate record's distance to its nearest
        synthetic record. The encodings are made once per evaluation (`shared`); the search goes through
        `ctx.neighbours`, so the distance and local attackers (and any later task that asks the same) share it."""
        if shared.get("encoded_for") is not cands:

            def encode() -> tuple[GowerEncoder, Encoded]:
                encoder = self._gower(ctx)
                return encoder, encoder.transform(cands.rows)

            # the encoder is fitted on the real tables and the candidates are real: one encoding for every release
            real = (cands, ctx.train, ctx.holdout, ctx.reference)
            memo = ("membership.encoding", *map(id, real))
            encoder, query = encode() if ctx.neighbours is None else ctx.neighbours.remember(memo, real, encode)
            shared.update(encoded_for=cands, encoder=encoder, query=query, synthetic=encoder.transform(ctx.synthetic))
        d_syn = cached_nearest(ctx.neighbours, shared["query"], shared["synthetic"], memory_mb=self.memory_mb)[0]
        return shared["encoder"], shared["query"], d_syn[:, 0]

    def _distance_scores(
        self, ctx: Context, cands: Candidates, details: dict, shared: dict | None = None
    ) -> np.ndarray:
        d_syn = self._to_synthetic(ctx, cands, {} if shared is None else shared)[2]
        details["synthetic_records"] = int(len(ctx.synthetic))
        return -d_syn

    def _local_scores(self, ctx: Context, cands: Candidates, shared: dict | None = None) -> LocalScores:
        """log(d_real + eps) - log(d_syn + eps) per candidate record: d_syn to the nearest synthetic record,
        d_real to the nearest control record that is not the person's own. Members and non-members look
        into the same pool (less one person's rows), which holds no training row and so no source of a
        copy: the score means the same on both sides. The reference rows stay out of the pool: they are
        what the `holdout` yardstick releases, and a pool holding the release would cap every score at 0
        for it (its nearest real record is never farther than its nearest synthetic one), so the yardstick
        would show none of a clean release's spread. A few neighbours past the person's own rows are kept,
        so a bootstrap that resamples the control can score against the next one (`LocalScores`)."""
        encoder, query, d_syn = self._to_synthetic(ctx, cands, {} if shared is None else shared)
        pool = ctx.holdout
        pool_keys = (
            _entity_keys(ctx.holdout_entities)
            if ctx.holdout_entities is not None
            else np.array([f"c:{i}" for i in range(len(pool))], dtype=object)
        )
        codes = pd.factorize(np.concatenate([cands.keys, pool_keys]), use_na_sentinel=False)[0]
        own, pool_codes = codes[: len(cands.keys)], codes[len(cands.keys) :]
        k = int(min(len(pool), np.bincount(pool_codes).max() + LOCAL_SPARE, 64 + LOCAL_SPARE))
        dist, idx = cached_nearest(ctx.neighbours, query, encoder.transform(pool), k=k, memory_mb=self.memory_mb)
        person = np.where(pool_codes[idx] == own[:, None], -1, pool_codes[idx])
        return LocalScores(d_syn, dist, person, own, int(codes.max()) + 1)

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


@dataclass(frozen=True)
class LocalScores:
    """The local attacker's distances per candidate record, kept so that a resample of the control can be scored.

    `dist` holds each record's nearest control distances (ascending) and `person` the control person of each
    (-1 for the record's own person); `own` is each record's person code, `n_codes` the number of codes.
    """

    d_syn: np.ndarray
    dist: np.ndarray
    person: np.ndarray
    own: np.ndarray
    n_codes: int

    def scores(self, present: np.ndarray | None = None) -> np.ndarray:
        """Each record's score (b, records) against the control people `present` (b, codes) holds, or (records,)
        against the whole control. A record whose kept neighbours a resample all dropped takes the farthest
        kept distance (slightly favouring the member side, for about exp(-k) of its records)."""
        if present is None:
            return self.scores(np.ones((1, self.n_codes), dtype=bool))[0]
        d_real = first_present(self.dist, self.person, present)
        return np.log(d_real + LOCAL_EPS) - np.log(self.d_syn + LOCAL_EPS)

    def subset(self, rows: np.ndarray) -> LocalScores:
        """The distances of the candidate records `rows` (a boolean mask) alone."""
        return LocalScores(self.d_syn[rows], self.dist[rows], self.person[rows], self.own[rows], self.n_codes)

    def rescorer(self, cands: Candidates, rng: np.random.Generator) -> Rescorer:
        """The `rescore` of `roc_summary`: the non-members are the control people, so a control person is in a
        resample when drawn as a non-member; control people not among the candidates (`max_non_members`, or
        outside the isolated attacker's group) are kept with the bootstrap's chance, 1 - 1/e."""
        return Rescorer(self, cands, rng)

    def values(self) -> np.ndarray:
        """Every score a record can take (records, k): against each of its kept control neighbours, as `scores`
        computes it (the same numbers)."""
        return np.log(self.dist + LOCAL_EPS) - np.log(self.d_syn + LOCAL_EPS)[:, None]


class Rescorer:
    """The local attacker's scores in a resample of the control (`LocalScores.rescorer`).

    Called with a batch of non-member counts (b, non-members), it returns every candidate's score in each
    resample (b, candidates): the reference. `roc` gives the same resamples' AUC and TPRs directly: a record's
    score in a resample is one of its k precomputed `LocalScores.values`, so all of them are sorted once and each
    resample walks that order (`suite.attacks._roc_numba.rescored_roc_stats`), with no per-resample sort. Both
    draw the same random numbers (the control people outside the candidates), so either gives the same interval.
    """

    def __init__(self, local: LocalScores, cands: Candidates, rng: np.random.Generator) -> None:
        self.local, self.cands, self.rng = local, cands, rng
        neg_units = np.flatnonzero(cands.labels == 0)
        row_of_unit = np.full(len(cands.labels), -1)
        row_of_unit[cands.unit] = np.arange(len(cands.unit))
        self.slot = np.full(local.n_codes, -1)
        self.slot[local.own[row_of_unit[neg_units]]] = np.arange(len(neg_units))
        self.drawn_as = np.flatnonzero(self.slot >= 0)
        pool = np.unique(local.person[local.person >= 0])
        self.undrawn = pool[self.slot[pool] < 0]
        self.by_unit = np.argsort(cands.unit, kind="stable")
        self.starts = np.flatnonzero(np.r_[True, np.diff(cands.unit[self.by_unit]) != 0])
        self._listed: tuple[np.ndarray, ...] | None = None  # built by the first `roc`
        self._sizes: tuple[int, int, bool] = (0, 0, True)

    def present(self, counts_neg: np.ndarray) -> np.ndarray:
        """Which control people (b, codes) each resample holds (draws the undrawn people's chances)."""
        present = np.zeros((len(counts_neg), self.local.n_codes), dtype=bool)
        present[:, self.drawn_as] = counts_neg[:, self.slot[self.drawn_as]] > 0
        if len(self.undrawn):
            present[:, self.undrawn] = self.chance(len(counts_neg))
        return present

    def chance(self, b: int) -> np.ndarray:
        """Which of the control people outside the candidates (b, undrawn) each of b resamples holds."""
        return self.rng.random((b, len(self.undrawn))) < 1.0 - np.exp(-1.0)

    def __call__(self, counts_neg: np.ndarray) -> np.ndarray:
        rows = self.local.scores(self.present(counts_neg))
        if len(self.starts) == len(self.cands.unit):  # one row each
            out = np.empty_like(rows)
            out[:, self.cands.unit] = rows
            return out
        return np.maximum.reduceat(rows[:, self.by_unit], self.starts, axis=1)  # units are 0..n-1, each with a row

    def roc(
        self, batches: Iterable[tuple[np.ndarray, np.ndarray]], alphas: tuple[float, ...]
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """AUC (b,) and TPR at each of `alphas` (b, len(alphas)) of the resamples of `batches` ((member counts,
        non-member counts) each, whole numbers), as `resampled_roc` gives them on the rescored scores (the AUC up
        to the order of the trapezoids' sum), a few hundred resamples at a time (`rescored_roc_stats` runs them
        in parallel, LANES to a thread). The random draws are those of `present`, batch by batch."""
        from concurrent.futures import Future, ThreadPoolExecutor

        import numba

        kernel = importlib.import_module("suite.attacks._roc_numba")
        listed = self._entries(kernel)
        size = kernel.LANES * max(1, min(numba.get_num_threads(), 4))
        alphas_ = np.asarray(alphas, dtype=float)
        n_pos = self._sizes[0]
        counts = drawn = np.empty((0, 0))
        filled = 0
        running: Future | None = None
        # one chunk rescored in a second thread (the kernel holds no GIL) while this one draws the next
        with ThreadPoolExecutor(max_workers=1) as pool:
            for counts_pos, counts_neg in batches:
                b = len(counts_pos)
                if not len(counts):  # room for `size` resamples and one batch more
                    counts = np.empty((size + b, n_pos + counts_neg.shape[1]), dtype=np.uint8)
                    drawn = np.empty((size + b, len(self.undrawn)), dtype=bool)
                if counts.dtype == np.uint8 and max(counts_pos.max(initial=0), counts_neg.max(initial=0)) > 255:
                    counts = counts.astype(float)  # a unit drawn over 255 times: whole numbers all the same
                counts[filled : filled + b, :n_pos] = counts_pos
                counts[filled : filled + b, n_pos:] = counts_neg
                if len(self.undrawn):
                    drawn[filled : filled + b] = self.chance(b)
                filled += b
                if filled >= size:
                    if running is not None:
                        yield running.result()
                    chunk = (counts[:filled], drawn[:filled])
                    running = pool.submit(kernel.rescored_roc_stats, *listed, *chunk, *self._sizes, alphas_)
                    counts, filled = np.empty((0, 0)), 0
            if running is not None:
                yield running.result()
            if filled:
                yield kernel.rescored_roc_stats(*listed, counts[:filled], drawn[:filled], *self._sizes, alphas_)

    def _entries(self, kernel: Any) -> tuple[np.ndarray, ...]:
        """Once: every (record, neighbour) a resample can pick, by descending score, and where each control
        person's presence is read (`rescored_roc_stats`)."""
        if self._listed is None:
            owner = np.ascontiguousarray(self.local.person, dtype=np.int32)
            keep = kernel.choosable(owner)
            values = self.local.values()[keep]
            order = np.argsort(-values)
            ranked = values[order]
            rank = np.full(owner.shape, -1, dtype=np.int32)
            rank[keep] = np.argsort(order)  # each listed entry's position in the order
            unit = self.cands.unit[np.nonzero(keep)[0]][order]
            labels = np.asarray(self.cands.labels).astype(bool)
            n_pos, n_cols = int(labels.sum()), len(labels)
            col = np.where(labels, label_slots(labels), n_pos + label_slots(labels))  # members first
            src = np.full(self.local.n_codes, n_cols + len(self.undrawn), dtype=np.int64)  # never held
            src[self.drawn_as] = n_pos + self.slot[self.drawn_as]
            src[self.undrawn] = n_cols + np.arange(len(self.undrawn))
            self._listed = (
                rank,
                unit.astype(np.int32),
                col[unit].astype(np.int32),
                labels[unit],
                np.cumsum(np.r_[False, ranked[1:] != ranked[:-1]]).astype(np.int32),
                owner,
                src,
            )
            self._sizes = (n_pos, n_cols, len(self.starts) == len(self.cands.unit))
        return self._listed


def isolated_units(local: LocalScores, cands: Candidates, details: dict) -> np.ndarray:
    """The candidates (sorted unit numbers) the real data leaves most isolated: a record's isolation is its mean
    distance to its ISOLATION_K nearest control records of other people (members and non-members measured
    against the same pool, so under no leakage the two are alike in the group), a person's that of their most
    isolated record; kept are the ISOLATED_SHARE most isolated candidates, more when that holds fewer than
    ISOLATED_MIN_NON_MEMBERS non-members."""
    others = local.person >= 0
    first = np.cumsum(others, axis=1) <= ISOLATION_K
    per_row = np.where(others & first, local.dist, 0.0).sum(axis=1) / np.maximum((others & first).sum(axis=1), 1)
    per_unit = unit_max(per_row, cands.unit, len(cands.labels))
    neg = cands.labels == 0
    n_non = int(neg.sum())
    share = min(1.0, max(ISOLATED_SHARE, ISOLATED_MIN_NON_MEMBERS / max(n_non, 1)))
    cut = float(np.quantile(per_unit, 1.0 - share, method="lower"))
    chosen = np.flatnonzero(per_unit >= cut)
    details["isolated"] = {
        "share": round(share, 4),
        "isolation": f"mean Gower distance to the {ISOLATION_K} nearest control records of other people",
        "isolation_cut": cut,
        "members": int(cands.labels[chosen].sum()),
        "non_members": int(len(chosen) - cands.labels[chosen].sum()),
        "of_members": int(cands.labels.sum()),
        "of_non_members": n_non,
    }
    return chosen


def exact_excess(
    name: str, scores: np.ndarray, cands: Candidates, fpr: float, ctx: Context, details: dict, meaning: str
) -> Measurement:
    """An attacker's excess exposure: TPR - FPR at the non-members' `fpr` quantile (their k-th highest score,
    k >= 1), bounded exactly (`tail_excess`) rather than by a bootstrap quantile, which needs 10 non-members
    above the threshold (1,000 at 1%): a clinic's control of a few hundred or thousand people, or the isolated
    attacker's group, is read at 1% this way. The reading at LOW_FPR goes into the details where the
    non-members hold a k-th highest for it (999 of them at 0.1%). With the people exposed (`exposed_summary`)."""
    ties = np.random.default_rng(derive_seed(ctx.seed, "membership", name, "ties"))
    ranked, tied_at = break_ties(scores, ties)  # one tie-break for both rates
    found = tail_excess(ranked, cands.labels, fpr, ctx.confidence, tied_at=tied_at)
    n_non = int(len(cands.labels) - np.asarray(cands.labels).astype(bool).sum())
    if fpr > LOW_FPR and LOW_FPR * (n_non + 1) >= 1:
        fine = tail_excess(ranked, cands.labels, LOW_FPR, ctx.confidence, tied_at=tied_at)
        details = {**details, "excess_at_0_1pct": {k: fine[k] for k in ("fpr", "tpr", "value", "ci")}}
    details = {
        **details,
        "fpr_requested": fpr,
        "fpr": found["fpr"],
        "tpr": found["tpr"],
        "tpr_ci": found["tpr_ci"],
        "fpr_ci": found["fpr_ci"],
        "threshold_rank": found["rank"],
        "ties": found["ties"],
        "members_tied_with_threshold": found["members_tied"],
        "interval": (
            "exact: the false-positive rate of the non-members' k-th highest score is Beta(k, n - k + 1), the "
            "members above it binomial (Clopper-Pearson); each bound one-sided, split over the two rates"
        ),
        "exposed": exposed_summary(scores, cands, found["fpr"], ctx),
    }
    return Measurement(
        name,
        found["value"],
        Goal.MINIMIZE,
        ci=found["ci"],
        baseline=0.0,
        details=details,
        meaning=meaning,
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
        real_counts = _level_counts(real[col])
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


def _level_counts(values: pd.Series) -> pd.Series:
    """`_levels(values).value_counts()`, by level (its order aside): counted on the values, then each distinct
    value made text once (values whose texts agree summed), not every row. Objects other than strings are made
    text one by one: value_counts would take 1, 1.0 and True for one value."""
    if values.dtype == object and not set(map(type, values.dropna())) <= {str}:
        return _levels(values).value_counts()
    counts = values.value_counts(dropna=False)
    counts = counts[counts > 0]  # a categorical's unused categories
    return counts.groupby(_levels(pd.Series(counts.index, dtype=values.dtype)).to_numpy()).sum()
