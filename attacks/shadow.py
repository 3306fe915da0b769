"""The shadow-model membership attack on its worst target (Stadler, Oprisanu and Troncoso, USENIX Security 2022).

The attacker knows the generator and real data like the training data (the holdout: control and
reference). It picks the training people most likely to be memorised (the most isolated: largest
mean Gower distance to their 5 nearest training rows, as Meeus et al. 2023 and the `outlier_copy`
canary rank them), refits the generator many times on shadow sets drawn from the real pool, each
target put in or left out at random (balanced), and trains one classifier per target to tell from
a shadow release whether the target was in. Held-out shadow fits give each target's TPR and FPR;
the gate is the most exposed target's TPR - FPR with exact (Clopper-Pearson) bounds, Bonferroni
corrected over the targets and the two rates. It measures the generator (the mechanism that made
the release), not only the one table: a target whose presence shows in the generator's output is
exposed in any release of it.

It refits the generator `fits` times, so it runs only when one timed fit says the whole attack fits
in `budget_s`; otherwise `shadow.worst_excess` is absent (nothing is judged, nothing passes) and
`shadow.predictions` (0) says why.
"""

from __future__ import annotations

import inspect
import sys
import time
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from suite.attacks._membership_features import ShadowFeatures, clopper_pearson, frequent_codes
from suite.neighbors import Encoded, GowerEncoder, isolation
from suite.registry import checks
from suite.seeding import derive_seed
from suite.types import Context, Goal, Measurement, MeasurementSpec, names, privacy, utility

#: Neighbours whose mean distance ranks training rows by isolation (as `outlier_copy` ranks them).
ISOLATION_K = 5


def bonferroni_level(confidence: float, tests: int) -> float:
    """The two-sided Clopper-Pearson level of each of `tests` rates so that all their one-sided bounds hold
    together at (1 + confidence) / 2, the one-sided level every gate reads."""
    return 1.0 - (1.0 - confidence) / tests


def excess_bounds(tp: int, n_in: int, fp: int, n_out: int, level: float) -> tuple[float, float]:
    """Exact bounds of TPR - FPR: (TPR low - FPR high, TPR high - FPR low), each rate's Clopper-Pearson
    interval at `level`."""
    t_lo, t_hi = clopper_pearson(tp, n_in, level)
    f_lo, f_hi = clopper_pearson(fp, n_out, level)
    return t_lo - f_hi, t_hi - f_lo


def power(n_in: int, n_out: int, level: float) -> dict[str, float]:
    """What `n_in` + `n_out` held-out predictions can show at `level`: `certifiable` is the upper bound of
    the excess when the attack is at chance (half of each side called in: no gate below it can pass), and
    `detectable` the smallest observed excess whose lower bound is above 0 (a leak this small is shown)."""
    certifiable = excess_bounds(n_in // 2, n_in, n_out // 2, n_out, level)[1]
    detectable = 1.0
    for step in range(0, min(n_in, n_out) // 2 + 1):
        tp, fp = n_in // 2 + step, n_out // 2 - step
        if excess_bounds(tp, n_in, max(fp, 0), n_out, level)[0] > 0.0:
            detectable = tp / n_in - max(fp, 0) / n_out
            break
    return {"certifiable_excess": round(float(certifiable), 4), "detectable_excess": round(float(detectable), 4)}


def pick_targets(score: np.ndarray, entities: pd.Series | None, count: int) -> list[int]:
    """The `count` highest-scoring rows, one per entity."""
    out, seen = [], set()
    for row in np.argsort(-score, kind="stable"):
        key = row if entities is None else entities.iloc[row]
        if key in seen:
            continue
        seen.add(key)
        out.append(int(row))
        if len(out) == count:
            break
    return out


def balanced(n: int, rng: np.random.Generator) -> np.ndarray:
    """n labels, half of them 1 (one more 0 when n is odd), in random order."""
    return rng.permutation(np.arange(n) < n // 2).astype(np.int8)


@checks.register("shadow")
class ShadowAttack:
    """Shadow-model membership inference on the most exposed of the most isolated training people.

    `shadow.worst_excess` is, for the target whose presence shows most, the share of shadow releases
    made with it that the attacker calls "in" minus the share made without it called "in" (TPR - FPR
    at the classifier's own 0.5 cut; 0 = chance, 1 = its presence always shows). Its interval is exact
    (Clopper-Pearson per rate, Bonferroni over 2 x `targets` rates), from shadow fits the classifier
    never saw. `shadow.predictions` (ungated) is the number of those fits per target, 0 when the attack
    was skipped; its details give the cost, the budget and the power.

    What it does not prove: a pass says this classifier on these features cannot tell these targets'
    presence at this power (see `details.power`); a stronger attacker, other targets, or an attacker
    who knows more of the training data may still succeed.
    """

    name: ClassVar[str] = "shadow"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        privacy(
            "shadow.worst_excess",
            Goal.MINIMIZE,
            "membership",
            "shadow-model attack on the most exposed isolated person: TPR - FPR of telling their presence",
            no_leak=0.0,
            bounds=(-1, 1),
            refits=True,
            worst_case=True,
        ),
        utility(
            "shadow.predictions",
            Goal.MAXIMIZE,
            "held-out shadow fits per target the shadow attack made (0 = skipped; details say why)",
            scored=False,
            refits=True,
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)
    #: The parameter `suite.plan` sets to 80% of the check's timeout (`timeout`, or `check_timeout`) when not given.
    budget_param: ClassVar[str] = "budget_s"

    def __init__(
        self,
        *,
        targets: int = 5,
        predictions: int = 200,
        train_fits: int = 100,
        min_predictions: int = 150,
        budget_s: float = 120.0,
        memory_mb: float = 256.0,
    ) -> None:
        self.targets = targets
        self.predictions = predictions
        self.train_fits = train_fits
        self.min_predictions = min_predictions
        self.budget_s = budget_s
        self.memory_mb = memory_mb

    @classmethod
    def param_problems(cls, params: dict[str, Any]) -> list[str]:
        """Bad parameters, each with its fix; `suite validate` reports them (exit 2) before anything runs."""
        p = {**_defaults(cls), **params}
        out = []
        if p["targets"] < 1:
            out.append(f"params.targets: must be at least 1 (got {p['targets']})")
        if not 2 <= p["min_predictions"] <= p["predictions"]:
            out.append(
                f"params.min_predictions: must be between 2 and predictions ({p['predictions']}), "
                f"got {p['min_predictions']}"
            )
        if p["train_fits"] < 4:
            out.append(
                f"params.train_fits: must be at least 4 (2 with and 2 without each target), got {p['train_fits']}"
            )
        if not np.isfinite(p["budget_s"]) or p["budget_s"] <= 0:
            out.append(f"params.budget_s: must be a positive number of seconds (got {p['budget_s']})")
        return out

    def evaluate(self, ctx: Context) -> list[Measurement]:
        problems = self.param_problems({k: getattr(self, k) for k in _defaults(type(self))})
        if problems:
            raise ValueError("shadow: " + "; ".join(problems))
        start = time.perf_counter()
        plan: dict[str, Any] = {"budget_s": float(self.budget_s)}
        if ctx.fit_generator is None:
            return [
                self._note(0, plan, "the generator cannot be refitted here (a table made elsewhere, or a null run)")
            ]
        pool = pd.concat([f for f in (ctx.reference, ctx.holdout) if f is not None], ignore_index=True)
        size = min(len(pool), len(ctx.train))
        encoder = GowerEncoder(numerical=ctx.metadata.continuous, categorical=ctx.metadata.discrete).fit(
            *[f for f in (ctx.train, ctx.holdout, ctx.reference) if f is not None]
        )
        train_enc = encoder.transform(ctx.train)
        iso = isolation(train_enc, ISOLATION_K, memory_mb=self.memory_mb, cache=ctx.neighbours)
        targets = pick_targets(iso, ctx.train_entities, int(self.targets))
        rows = [_entity_rows(ctx, t) for t in targets]
        if sum(len(r) for r in rows) * 2 > size:
            return [
                self._note(0, plan, f"the real pool ({len(pool)} rows) is too small for shadow sets around the targets")
            ]
        plan.update(shadow_set_rows=size, real_pool_rows=int(len(pool)), target_count=len(targets))
        rng = np.random.default_rng(derive_seed(ctx.seed, "shadow"))
        featurise = ShadowFeatures(codes=frequent_codes(encoder.transform(pool)))
        target_enc = _take(train_enc, np.array(targets))
        radii = np.maximum(iso[targets], 1e-12)

        def shadow_features(included: np.ndarray, fit_no: int) -> np.ndarray:
            inside = pd.concat(
                [rows[0].iloc[:0], *(r for r, keep in zip(rows, included, strict=True) if keep)], ignore_index=True
            )
            background = pool.iloc[np.sort(rng.choice(len(pool), size - len(inside), replace=False))]
            model = ctx.fit_generator(pd.concat([background, inside], ignore_index=True))
            synthetic = encoder.transform(model.sample(size, seed=derive_seed(ctx.seed, "shadow.sample", fit_no)))
            return featurise(target_enc, synthetic, radii, self.memory_mb)

        clock = time.perf_counter()
        shadow_features(np.zeros(len(targets), dtype=bool), -1)  # the timed fit (every target out), then discarded
        per_fit = time.perf_counter() - clock
        n_train, n_test = self._affordable(per_fit, time.perf_counter() - start)
        wanted = int(self.train_fits) + int(self.predictions)
        plan.update(seconds_per_fit=round(per_fit, 4), fits_wanted=wanted, estimated_seconds=round(per_fit * wanted, 1))
        if n_test < self.min_predictions:
            why = (
                f"one fit, sample and featurisation took {per_fit:.3g} s, so {wanted} fits would take about "
                f"{per_fit * wanted:.0f} s, over budget_s={self.budget_s:g}; the {n_test} held-out fits it allows are "
                f"fewer than min_predictions={self.min_predictions}. Raise budget_s (and the check's timeout) to run it"
            )
            return [self._note(0, plan, why)]
        # each target in or out of each shadow set at random, balanced per target, independently of the others
        y_train = np.stack([balanced(n_train, rng) for _ in targets], axis=1)
        y_test = np.stack([balanced(n_test, rng) for _ in targets], axis=1)
        print(
            f"shadow: {n_train + n_test} generator fits on {size} rows each ({len(targets)} targets, "
            f"{n_test} held-out predictions per target)",
            file=sys.stderr,
            flush=True,
        )
        feats = [shadow_features(y, i) for i, y in enumerate(np.vstack([y_train, y_test]))]
        X = np.stack(feats)  # (fits, targets, features)
        level = bonferroni_level(ctx.confidence, 2 * len(targets))
        per_target: list[dict[str, Any]] = []
        for j, target in enumerate(targets):
            model = _classifier(derive_seed(ctx.seed, "shadow.rf", j)).fit(X[:n_train, j], y_train[:, j])
            called = _p_in(model, X[n_train:, j]) > 0.5
            truth = y_test[:, j].astype(bool)
            tp, fp, n_in, n_out = (
                int((called & truth).sum()),
                int((called & ~truth).sum()),
                int(truth.sum()),
                int((~truth).sum()),
            )
            low, high = excess_bounds(tp, n_in, fp, n_out, level)
            per_target.append(
                {
                    "isolation_rank": j + 1,
                    "isolation": round(float(iso[target]), 4),
                    "tpr": tp / n_in,
                    "fpr": fp / n_out,
                    "excess": tp / n_in - fp / n_out,
                    "ci": [low, high],
                }
            )
        worst = max(range(len(targets)), key=lambda j: (per_target[j]["ci"][1], per_target[j]["excess"]))
        top = per_target[worst]
        plan.update(held_out_predictions=n_test, train_fits=n_train, fits=n_train + n_test)
        plan["power"] = power(n_test // 2, n_test - n_test // 2, level)
        plan["seconds"] = round(time.perf_counter() - start, 3)
        details = {
            "attacker": "shadow",
            "worst_target": top["isolation_rank"],
            "targets": per_target,
            "target_rule": (
                f"the training people with the largest mean Gower distance to their {ISOLATION_K} nearest training "
                "rows (one row per person; the person's training rows go in or out together)"
            ),
            "interval": (
                f"Clopper-Pearson per rate, each two-sided at {level:.4g} (Bonferroni over {2 * len(targets)} rates: "
                f"TPR and FPR of {len(targets)} targets), on shadow fits the classifier never saw"
            ),
            "classifier": "random forest (100 trees) per target on order-free features of each shadow release",
            **plan,
        }
        meaning = (
            "shadow-model attack on the most exposed of the most isolated training people: share of releases "
            "with them called 'in' minus share without them called 'in' (0 = chance, 1 = their presence always shows)"
        )
        gate = Measurement(
            "shadow.worst_excess",
            top["excess"],
            Goal.MINIMIZE,
            ci=tuple(top["ci"]),
            baseline=0.0,
            details=details,
            meaning=meaning,
        )
        return [gate, self._note(n_test, plan, None)]

    def _affordable(self, per_fit: float, spent: float) -> tuple[int, int]:
        """(training fits, held-out fits) the budget allows after `spent` seconds, at most the requested ones,
        in the requested proportion."""
        wanted = int(self.train_fits) + int(self.predictions)
        fits = int((self.budget_s - spent) / max(per_fit, 1e-9)) + 1  # the timed fit is already made
        if fits >= wanted:
            return int(self.train_fits), int(self.predictions)
        n_test = fits * int(self.predictions) // wanted
        return max(4, fits - n_test), n_test

    def _note(self, predictions: int, plan: dict[str, Any], skipped: str | None) -> Measurement:
        details = dict(plan)
        if skipped is not None:
            details["skipped"] = f"shadow.worst_excess was not measured: {skipped}. Nothing was judged, nothing passed."
            print(f"shadow: skipped: {skipped}", file=sys.stderr, flush=True)
        return Measurement(
            "shadow.predictions",
            float(predictions),
            Goal.MAXIMIZE,
            details=details,
            meaning="held-out shadow fits per target (0 = the shadow attack was skipped; details say why)",
        )


def _defaults(cls: type) -> dict[str, Any]:
    return {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items() if k != "self"}


def _entity_rows(ctx: Context, target: int) -> pd.DataFrame:
    """The target record, or every training record of its entity (the person is in or out)."""
    if ctx.train_entities is None:
        return ctx.train.iloc[[target]]
    rows = np.flatnonzero((ctx.train_entities == ctx.train_entities.iloc[target]).to_numpy())
    return ctx.train.iloc[np.r_[target, rows[rows != target]]]


def _take(encoded: Encoded, idx: np.ndarray) -> Encoded:
    return Encoded(numerical=encoded.numerical[idx], categorical=encoded.categorical[idx])


def _classifier(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)


def _p_in(model: Any, X: np.ndarray) -> np.ndarray:
    """P(label 1) from a fitted classifier, also when it saw one class only."""
    proba = model.predict_proba(X)
    classes = list(model.classes_)
    return proba[:, classes.index(1)] if 1 in classes else np.zeros(len(X))
